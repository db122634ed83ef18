//! Prometheus rule files (`groups: [{name, interval?, rules: [{alert|record, expr, …}]}]`):
//! the alerting rules a scenario says its system runs, read with their file and line so a
//! mistake reads `alerts.yml:12:7: …`, and checked by `promtool` when it is installed.
//!
//! The YAML is parsed into `serde_yaml::Value`, which keeps no positions; the line of each
//! group and rule comes from a scan of the text for the block sequences under `groups:` and
//! `rules:`, used only when it finds exactly the entries the parse found (else the line is
//! looked up by the rule's name). Checks follow Prometheus 2.42's `rulefmt`: unknown fields,
//! a rule with neither or both of `alert` and `record`, no `expr`, bad durations, fields a
//! recording rule may not have, repeated group names, invalid label names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_yaml::{Mapping, Value};

/// One alerting rule of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    pub file: PathBuf,
    pub group: String,
    pub name: String,
    pub expr: String,
    /// `for`, in seconds (0 when not written).
    pub for_s: f64,
    /// `labels.severity`.
    pub severity: Option<String>,
    /// The line of the rule's entry (`- alert: …`), 1-based.
    pub line: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("cannot read rule file {}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// YAML, but not a rule file Prometheus would load.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("promtool check rules failed:\n{output}")]
    Promtool { output: String },
}

const GROUP_FIELDS: [&str; 4] = ["name", "interval", "limit", "rules"];
const RULE_FIELDS: [&str; 7] = [
    "alert",
    "record",
    "expr",
    "for",
    "keep_firing_for",
    "labels",
    "annotations",
];
/// Prometheus's duration units, largest first, in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The alerting rules of the file at `path` (recording rules are checked, not returned).
pub fn load(path: &Path) -> Result<Vec<AlertRule>, RuleError> {
    let text = std::fs::read_to_string(path).map_err(|source| RuleError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// The alerting rules of `text`, read from `file` (named in errors and in each rule).
pub fn parse(file: &Path, text: &str) -> Result<Vec<AlertRule>, RuleError> {
    let root: Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let at = format!(" at line {line} column {column}");
        RuleError::Parse {
            file: file.to_owned(),
            line,
            column,
            message: e.to_string().replacen(&at, "", 1),
        }
    })?;
    let doc = Doc {
        file,
        text,
        groups: blocks(text, "groups"),
        rules: blocks(text, "rules"),
    };
    let groups = doc.groups(&root)?;
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let at = doc.group_pos(gi, g);
        let g = g
            .as_mapping()
            .ok_or_else(|| doc.invalid(at, "a group must be a mapping with `name` and `rules`"))?;
        out.extend(doc.group(gi, g, at, &mut names)?);
    }
    Ok(out)
}

/// A position in the text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

const START: Pos = Pos { line: 1, column: 1 };

/// One `key:` of the text and where its block sequence's entries start (`None` when the value
/// is written inline, `[…]`).
#[derive(Debug)]
struct Block {
    items: Option<Vec<Pos>>,
}

/// A file being checked: its text and the entries the scan found.
struct Doc<'a> {
    file: &'a Path,
    text: &'a str,
    groups: Vec<Block>,
    rules: Vec<Block>,
}

impl Doc<'_> {
    fn invalid(&self, at: Pos, message: impl Into<String>) -> RuleError {
        RuleError::Invalid {
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            message: message.into(),
        }
    }

    /// The `groups` list of the document.
    fn groups<'v>(&self, root: &'v Value) -> Result<&'v Vec<Value>, RuleError> {
        let shape = "a rule file is `groups: [{name: …, rules: [{alert: …, expr: …}]}]`";
        let top = match root {
            Value::Mapping(m) => m,
            Value::Null => return Err(self.invalid(START, format!("empty file: {shape}"))),
            _ => return Err(self.invalid(START, format!("not a mapping: {shape}"))),
        };
        for key in top.keys() {
            let k = key_text(key);
            if k != "groups" {
                let at = find_line(self.text, &[&format!("{k}:")]).unwrap_or(START);
                return Err(self.invalid(at, format!("unknown field `{k}`: {shape}")));
            }
        }
        match top.get("groups") {
            Some(Value::Sequence(groups)) => Ok(groups),
            Some(Value::Null) | None => Err(self.invalid(START, format!("no `groups`: {shape}"))),
            Some(_) => Err(self.invalid(START, format!("`groups` is not a list: {shape}"))),
        }
    }

    fn group_pos(&self, gi: usize, g: &Value) -> Pos {
        let scanned = match self.groups.as_slice() {
            [Block { items: Some(items) }] => items.get(gi).copied(),
            _ => None,
        };
        let name = g.get("name").map(key_text).unwrap_or_default();
        scanned
            .or_else(|| find_line(self.text, &named("name", &name)))
            .unwrap_or(START)
    }

    /// Where the `ri`-th rule of group `gi` (of `count` rules) starts.
    fn rule_pos(&self, gi: usize, ri: usize, count: usize, rule: &Value, group: Pos) -> Pos {
        let aligned = self.rules.len() == self.group_count();
        let scanned = match self.rules.get(gi) {
            Some(Block { items: Some(items) }) if aligned && items.len() == count => {
                items.get(ri).copied()
            }
            _ => None,
        };
        scanned
            .or_else(|| {
                let key = ["alert", "record"]
                    .into_iter()
                    .find(|k| rule.get(k).is_some())?;
                find_line(self.text, &named(key, &key_text(rule.get(key)?)))
            })
            .unwrap_or(group)
    }

    fn group_count(&self) -> usize {
        match self.groups.as_slice() {
            [Block { items: Some(items) }] => items.len(),
            _ => usize::MAX,
        }
    }

    /// The alerting rules of one group, after checking the group's own fields.
    fn group(
        &self,
        gi: usize,
        g: &Mapping,
        at: Pos,
        names: &mut BTreeSet<String>,
    ) -> Result<Vec<AlertRule>, RuleError> {
        unknown_field(g, &GROUP_FIELDS, "group").map_err(|m| self.invalid(at, m))?;
        let name = match g.get("name") {
            Some(v) if !key_text(v).is_empty() => key_text(v),
            _ => return Err(self.invalid(at, "a group needs a `name`")),
        };
        if !names.insert(name.clone()) {
            return Err(self.invalid(at, format!("group `{name}` is repeated in the file")));
        }
        if let Some(v) = g.get("interval") {
            duration_field(v, "interval").map_err(|m| self.invalid(at, group_msg(&name, &m)))?;
        }
        let rules = match g.get("rules") {
            Some(Value::Sequence(r)) => r,
            Some(Value::Null) | None => {
                return Err(self.invalid(at, format!("group `{name}` has no `rules`")))
            }
            Some(_) => {
                return Err(self.invalid(at, format!("group `{name}`: `rules` is not a list")))
            }
        };
        let mut out = Vec::new();
        for (ri, r) in rules.iter().enumerate() {
            let pos = self.rule_pos(gi, ri, rules.len(), r, at);
            let rule = check_rule(r)
                .map_err(|m| self.invalid(pos, format!("group `{name}`, rule {}: {m}", ri + 1)))?;
            if let Some(mut rule) = rule {
                rule.file = self.file.to_owned();
                rule.group = name.clone();
                rule.line = pos.line;
                out.push(rule);
            }
        }
        Ok(out)
    }
}

fn group_msg(group: &str, m: &str) -> String {
    format!("group `{group}`: {m}")
}

/// The text of a scalar key or value (`for: 0` is the number 0 to YAML, "0" to Prometheus).
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn unknown_field(m: &Mapping, known: &[&str], what: &str) -> Result<(), String> {
    match m
        .keys()
        .map(key_text)
        .find(|k| !known.contains(&k.as_str()))
    {
        Some(k) => Err(format!(
            "unknown field `{k}` in a {what} (known: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// One rule checked: an alerting rule (its file, group and line left for the caller), or
/// `None` for a valid recording rule; the error is the message without a position.
fn check_rule(r: &Value) -> Result<Option<AlertRule>, String> {
    let m = r
        .as_mapping()
        .ok_or("a rule must be a mapping with `alert` or `record`, and `expr`")?;
    unknown_field(m, &RULE_FIELDS, "rule")?;
    let text = |k: &str| m.get(k).map(key_text);
    let name = match (text("alert"), text("record")) {
        (Some(_), Some(_)) => return Err("a rule has `alert` or `record`, not both".into()),
        (None, None) => return Err("neither `alert` nor `record`".into()),
        (Some(a), None) if a.is_empty() => return Err("`alert` has no name".into()),
        (Some(a), None) => a,
        (None, Some(r)) => {
            if !valid_name(&r, true) {
                return Err(format!("`record: {r}` is not a valid metric name"));
            }
            for k in ["for", "keep_firing_for", "annotations"] {
                if m.contains_key(k) {
                    return Err(format!(
                        "recording rule `{r}`: a recording rule has no `{k}`"
                    ));
                }
            }
            r
        }
    };
    let expr = match m.get("expr") {
        Some(v) if is_scalar(v) && !key_text(v).trim().is_empty() => key_text(v),
        Some(_) => return Err(format!("`{name}`: `expr` is empty")),
        None => return Err(format!("`{name}`: no `expr`")),
    };
    let for_s = match m.get("for") {
        Some(v) => duration_field(v, "for").map_err(|e| format!("`{name}`: {e}"))?,
        None => 0.0,
    };
    if let Some(v) = m.get("keep_firing_for") {
        duration_field(v, "keep_firing_for").map_err(|e| format!("`{name}`: {e}"))?;
    }
    for k in ["labels", "annotations"] {
        string_map(m.get(k), k).map_err(|e| format!("`{name}`: {e}"))?;
    }
    if text("record").is_some() {
        return Ok(None);
    }
    let severity = m
        .get("labels")
        .and_then(|l| l.get("severity"))
        .map(key_text);
    Ok(Some(AlertRule {
        file: PathBuf::new(),
        group: String::new(),
        name,
        expr,
        for_s,
        severity,
        line: 0,
    }))
}

/// `labels` / `annotations`: absent, or a mapping of names to scalars.
fn string_map(v: Option<&Value>, what: &str) -> Result<(), String> {
    let m = match v {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Mapping(m)) => m,
        Some(_) => return Err(format!("`{what}` must be a mapping of names to texts")),
    };
    for (k, v) in m {
        let k = key_text(k);
        if !valid_name(&k, false) {
            return Err(format!("`{what}`: `{k}` is not a valid label name"));
        }
        if !is_scalar(v) {
            return Err(format!("`{what}.{k}` must be a text"));
        }
    }
    Ok(())
}

/// Prometheus's metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name (no `:`).
fn valid_name(s: &str, metric: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic()
            || c == '_'
            || (metric && c == ':')
            || (!first && c.is_ascii_digit())
    };
    let mut chars = s.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

fn duration_field(v: &Value, key: &str) -> Result<f64, String> {
    let t = key_text(v);
    duration_secs(&t).ok_or_else(|| {
        format!(
            "`{key}: {t}` is not a Prometheus duration (whole numbers of y, w, d, h, m, s, ms, \
             largest first, e.g. 2m or 1h30m)"
        )
    })
}

/// A Prometheus duration (`1y 1w 1d 1h 1m 1s 1ms`, combined largest first as in `1h30m`,
/// whole numbers; `0` alone is zero) in seconds.
pub fn duration_secs(text: &str) -> Option<f64> {
    if text == "0" {
        return Some(0.0);
    }
    if text.is_empty() {
        return None;
    }
    let (mut rest, mut total, mut last) = (text, 0u64, None::<usize>);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // `ms` before `m`: the longest unit that matches.
        let (i, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())?;
        if last.is_some_and(|l| i <= l) {
            return None;
        }
        last = Some(i);
        total = total.checked_add(n.checked_mul(*ms)?)?;
        rest = &rest[unit.len()..];
    }
    Some(total as f64 / 1000.0)
}

/// `key: name` with the name plain or quoted, as a rule file may write it.
fn named(key: &str, name: &str) -> [String; 3] {
    [
        format!("{key}: {name}"),
        format!("{key}: \"{name}\""),
        format!("{key}: '{name}'"),
    ]
}

/// The first line whose content (after any `- `) starts with one of `needles`, or that holds
/// one inline (`{alert: X, …}`).
fn find_line<S: AsRef<str>>(text: &str, needles: &[S]) -> Option<Pos> {
    text.lines().enumerate().find_map(|(i, raw)| {
        let l = split_line(raw)?;
        let at = needles.iter().find_map(|n| {
            let n = n.as_ref();
            if l.content.starts_with(n) && ends_value(&l.content[n.len()..]) {
                return Some(l.content_col);
            }
            let c = raw.find(&format!("{{{n}"))?;
            ends_value(&raw[c + 1 + n.len()..]).then_some(c + 1)
        })?;
        Some(Pos {
            line: i + 1,
            column: at + 1,
        })
    })
}

/// True when what follows a matched `key: name` ends the value (so `A` does not match `AB`).
fn ends_value(after: &str) -> bool {
    let t = after.trim_start();
    t.is_empty() || t.starts_with('#') || t.starts_with(',') || t.starts_with('}')
}

/// A non-blank, non-comment line: its indentation, whether it starts a sequence entry, and
/// where its content starts after any `- ` markers (0-based columns).
struct Line<'a> {
    indent: usize,
    dash: bool,
    content_col: usize,
    content: &'a str,
}

fn split_line(raw: &str) -> Option<Line<'_>> {
    let raw = raw.trim_end_matches('\r');
    let indent = raw.len() - raw.trim_start_matches(' ').len();
    let mut content = &raw[indent..];
    if content.is_empty() || content.starts_with('#') {
        return None;
    }
    let dash = content == "-" || content.starts_with("- ");
    let mut col = indent;
    while content == "-" || content.starts_with("- ") {
        let after = content[1..].trim_start_matches(' ');
        col += content.len() - after.len();
        content = after;
    }
    Some(Line {
        indent,
        dash,
        content_col: col,
        content,
    })
}

/// Every `key:` of the text in order, with the entries of its block sequence.
fn blocks(text: &str, key: &str) -> Vec<Block> {
    let mut out = Vec::new();
    // The open block: its key's column, its entries' column once seen, its entries.
    let mut open: Option<(usize, Option<usize>, Vec<Pos>)> = None;
    let opener = format!("{key}:");
    for (i, raw) in text.lines().enumerate() {
        let Some(l) = split_line(raw) else { continue };
        if let Some((key_col, item_col, items)) = &mut open {
            let inside = match *item_col {
                None if l.dash && l.indent >= *key_col => {
                    *item_col = Some(l.indent);
                    true
                }
                None => false,
                Some(c) => l.indent > c || (l.indent == c && l.dash),
            };
            if inside {
                if l.dash && Some(l.indent) == *item_col {
                    items.push(Pos {
                        line: i + 1,
                        column: l.indent + 1,
                    });
                }
                continue;
            }
            let (_, _, items) = open.take().expect("open");
            out.push(Block { items: Some(items) });
        }
        if let Some(after) = l.content.strip_prefix(&opener) {
            let after = after.trim_start();
            if after.is_empty() || after.starts_with('#') {
                open = Some((l.content_col, None, Vec::new()));
            } else {
                out.push(Block { items: None });
            }
        }
    }
    if let Some((_, _, items)) = open {
        out.push(Block { items: Some(items) });
    }
    out
}

/// `promtool` on PATH, else Debian's `/usr/bin/promtool`.
pub fn promtool() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("promtool"))
        .chain([PathBuf::from("/usr/bin/promtool")])
        .find(|p| p.is_file())
}

/// `promtool check rules FILES…`, which also parses every `expr` as PromQL: `None` when
/// promtool is not installed. Blocking (a short child process); call it off the async workers.
pub fn promtool_check(paths: &[PathBuf]) -> Option<Result<(), RuleError>> {
    let bin = promtool()?;
    if paths.is_empty() {
        return Some(Ok(()));
    }
    let out = Command::new(&bin)
        .args(["check", "rules"])
        .args(paths)
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            return Some(Err(RuleError::Promtool {
                output: format!("cannot run {}: {e}", bin.display()),
            }))
        }
    };
    if out.status.success() {
        return Some(Ok(()));
    }
    // promtool writes "Checking FILE" to stdout and the failure to stderr.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let output: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    Some(Err(RuleError::Promtool {
        output: output.join("\n"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in a directory of its own, removed with it on drop.
    struct Temp(PathBuf);

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn temp_file(name: &str, text: &str) -> Temp {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("harness-rules-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        Temp(p)
    }

    const GOOD: &str = r#"# Two groups, both entry styles.
groups:
  - name: pool
    interval: 15s
    rules:
      # A comment between rules.
      - alert: PoolTimeouts
        expr: |
          sum(rate(x_total[1m]))
          - 3 > 0
        for: 1h30m
        labels:
          severity: critical
        annotations:
          summary: "timeouts {{ $value }}"
      - record: job:x:rate1m
        expr: rate(x_total[1m])
  -  name: "lag"
     rules:
     -   expr: lag > 1000
         alert: 'LagHigh'
         keep_firing_for: 30s
     - {alert: Inline, expr: up == 0, for: 500ms}
"#;

    #[test]
    fn alerting_rules_come_with_group_for_severity_and_line() {
        let file = temp_file("alerts.yml", GOOD);
        let rules = load(&file.0).unwrap();
        let got: Vec<(&str, &str, f64, Option<&str>, usize)> = rules
            .iter()
            .map(|r| {
                let sev = r.severity.as_deref();
                (r.group.as_str(), r.name.as_str(), r.for_s, sev, r.line)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("pool", "PoolTimeouts", 5400.0, Some("critical"), 7),
                ("lag", "LagHigh", 0.0, None, 20),
                ("lag", "Inline", 0.5, None, 23),
            ]
        );
        assert_eq!(rules[0].expr, "sum(rate(x_total[1m]))\n- 3 > 0\n");
        assert_eq!(rules[0].file, file.0);
    }

    fn invalid(text: &str) -> (usize, usize, String) {
        match parse(Path::new("alerts.yml"), text) {
            Err(e @ RuleError::Invalid { line, column, .. }) => (line, column, e.to_string()),
            other => panic!("{other:?}"),
        }
    }

    fn rule_file(rules: &str) -> String {
        format!(
            "groups:\n  - name: g\n    rules:\n      - alert: Fine\n        expr: up == 0\n{rules}"
        )
    }

    #[test]
    fn structural_mistakes_name_the_line_of_the_offending_rule() {
        let (l, c, m) = invalid(&rule_file("      - expr: up == 0\n        for: 1m\n"));
        assert_eq!((l, c), (6, 7));
        assert_eq!(
            m,
            "alerts.yml:6:7: group `g`, rule 2: neither `alert` nor `record`"
        );
        let (l, _, m) = invalid(&rule_file("      - alert: NoExpr\n        for: 1m\n"));
        assert_eq!(l, 6);
        assert!(m.ends_with("rule 2: `NoExpr`: no `expr`"), "{m}");
        let (l, _, m) = invalid(&rule_file(
            "      - alert: Bad\n        expr: up\n        for: 2x\n",
        ));
        assert_eq!(l, 6);
        assert!(m.contains("`for: 2x` is not a Prometheus duration"), "{m}");
        let (_, _, m) = invalid(&rule_file(
            "      - alert: T\n        expr: up\n        anotations: {}\n",
        ));
        assert!(m.contains("unknown field `anotations` in a rule"), "{m}");
        let (_, _, m) = invalid(&rule_file(
            "      - record: r\n        expr: up\n        for: 1m\n",
        ));
        assert!(m.contains("a recording rule has no `for`"), "{m}");
        let (_, _, m) = invalid(&rule_file(
            "      - alert: A\n        record: b\n        expr: up\n",
        ));
        assert!(m.contains("not both"), "{m}");
        let (_, _, m) = invalid(&rule_file(
            "      - alert: L\n        expr: up\n        labels: {0x: a}\n",
        ));
        assert!(m.contains("`0x` is not a valid label name"), "{m}");
    }

    #[test]
    fn file_and_group_mistakes_are_placed_too() {
        assert!(invalid("").2.contains("empty file"));
        let (l, c, m) = invalid("group:\n  - name: g\n");
        assert_eq!((l, c), (1, 1));
        assert!(m.contains("unknown field `group`"), "{m}");
        assert!(invalid("groups:\n").2.contains("no `groups`"));
        let two = "groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n";
        let (l, _, m) = invalid(two);
        assert_eq!(l, 4);
        assert!(m.contains("group `g` is repeated"), "{m}");
        let (l, _, m) = invalid("groups:\n  - name: a\n    rules: []\n  - name: b\n");
        assert_eq!(l, 4);
        assert!(m.contains("group `b` has no `rules`"), "{m}");
        let (_, _, m) = invalid("groups:\n  - name: a\n    interval: 1 m\n    rules: []\n");
        assert!(m.contains("`interval: 1 m`"), "{m}");
    }

    #[test]
    fn yaml_syntax_errors_carry_serde_yaml_s_position() {
        let text = "groups:\n  - name: g\n    rules:\n      - alert: A\n     expr: x\n";
        match parse(Path::new("alerts.yml"), text) {
            Err(e @ RuleError::Parse { line, .. }) => {
                assert_eq!(line, 5, "{e}");
                let m = e.to_string();
                assert!(m.starts_with("alerts.yml:5:"), "{m}");
                assert!(!m.contains("at line 5 column"), "position once: {m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rules_written_inline_fall_back_to_their_name_s_line() {
        let text =
            "groups: [{name: g, rules: [{alert: A, expr: up}, {alert: B, expr: up, for: 3}]}]\n";
        let (l, _, m) = invalid(text);
        assert_eq!(l, 1);
        assert!(m.contains("`B`: `for: 3`"), "{m}");
        let text = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n- name: h\n  rules: [{alert: B, expr: up}]\n";
        let rules = parse(Path::new("x.yml"), text).unwrap();
        let lines: Vec<usize> = rules.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 7]);
    }

    #[test]
    fn prometheus_durations() {
        for (t, s) in [
            ("0", 0.0),
            ("10s", 10.0),
            ("2m", 120.0),
            ("1h30m", 5400.0),
            ("1d", 86_400.0),
            ("1w", 604_800.0),
            ("1y", 31_536_000.0),
            ("1s500ms", 1.5),
            ("90s", 90.0),
        ] {
            assert_eq!(duration_secs(t), Some(s), "{t}");
        }
        for t in [
            "", "2x", "1.5m", "30m1h", "1m1m", "10", "-1m", "1 m", "m", "1M",
        ] {
            assert_eq!(duration_secs(t), None, "{t}");
        }
    }

    #[test]
    fn promtool_agrees_when_installed() {
        let good = temp_file("good.yml", GOOD);
        let bad = temp_file(
            "bad.yml",
            &rule_file("      - alert: B\n        expr: sum(up\n"),
        );
        match promtool() {
            None => assert!(promtool_check(std::slice::from_ref(&good.0)).is_none()),
            Some(_) => {
                assert!(matches!(
                    promtool_check(std::slice::from_ref(&good.0)),
                    Some(Ok(()))
                ));
                match promtool_check(&[good.0.clone(), bad.0.clone()]) {
                    Some(Err(RuleError::Promtool { output })) => {
                        assert!(output.contains("bad.yml"), "{output}");
                        assert!(output.contains("parse error"), "{output}");
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn the_shipped_incident_rules_load_and_pass_promtool() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/alerts/incident.rules.yml");
        let rules = load(&file).unwrap();
        assert!(rules.len() >= 3, "{rules:?}");
        assert!(rules.iter().all(|r| r.severity.is_some()), "{rules:?}");
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        for n in ["HikariCPConnectionTimeout", "KafkaConsumerLagHigh"] {
            assert!(names.contains(&n), "{names:?}");
        }
        if promtool().is_some() {
            let checked = promtool_check(&[file]);
            assert!(matches!(checked, Some(Ok(()))), "{checked:?}");
        }
    }
}
