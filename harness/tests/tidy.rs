//! The architecture's invariants as tests (in the spirit of rust-analyzer's tidy tests): who
//! may import `report`, who may print, who may decide exit codes, that the harness names no
//! route or metric of the bundled app outside `stack/` and `demo/`, and that functions stay
//! short. Each failure names file:line. Test code (`#[cfg(test)]` and `tests.rs`) is exempt.

use std::path::{Path, PathBuf};

/// Every non-test source file under `harness/src`, as (path relative to src, lines).
fn sources() -> Vec<(String, Vec<String>)> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap().display().to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            let all: Vec<String> = text.lines().map(str::to_owned).collect();
            // Unit tests sit at the end of a file: `#[cfg(test)]` then `mod tests`.
            let end = all
                .windows(2)
                .position(|w| {
                    w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod tests")
                })
                .unwrap_or(all.len());
            let lines = all[..end].to_vec();
            (rel, lines)
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code part of a line (no `//` comment).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    line
}

/// Every line matching `hit` in a file `allowed` does not accept, as `file:line: text`.
fn offenders(
    allowed: impl Fn(&str) -> bool,
    hit: impl Fn(&str) -> bool,
    comments_too: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (file, lines) in sources() {
        if allowed(&file) {
            continue;
        }
        for (i, l) in lines.iter().enumerate() {
            let text = if comments_too { l.as_str() } else { code(l) };
            if hit(text) {
                out.push(format!("harness/src/{file}:{}: {}", i + 1, l.trim()));
            }
        }
    }
    out
}

fn in_dir(file: &str, dirs: &[&str]) -> bool {
    dirs.iter()
        .any(|d| file == *d || file.starts_with(&format!("{d}/")))
}

#[test]
fn only_run_demo_event_and_the_cli_import_report() {
    let found = offenders(
        |f| {
            in_dir(
                f,
                &["report", "run", "demo", "event.rs", "main.rs", "lib.rs"],
            )
        },
        |l| l.contains("crate::report") || l.contains("harness::reports"),
        false,
    );
    assert!(
        found.is_empty(),
        "report is imported from below it:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_report_and_main_print() {
    let prints = ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("];
    let found = offenders(
        |f| in_dir(f, &["report", "main.rs"]),
        |l| prints.iter().any(|p| l.contains(p)),
        false,
    );
    assert!(
        found.is_empty(),
        "printing outside report/ and main.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_main_and_lib_decide_exit_codes() {
    let found = offenders(
        |f| in_dir(f, &["main.rs", "lib.rs"]),
        |l| l.contains("exit::") || l.contains("process::exit"),
        false,
    );
    assert!(
        found.is_empty(),
        "exit codes decided outside main.rs/lib.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_bundled_app_is_named_only_where_it_is_started_or_reproduced() {
    // Its routes and the metric prefixes of its /metrics (kafka_consumer_lag is the harness's
    // own lag probe series, not the app's).
    let names = [
        "/api/orders",
        "/api/coupons",
        "admin/faults",
        "db_pool_",
        "coupon_",
        "kafka_producer_",
        "order_hold_ms",
        "consumer_insert_delay",
    ];
    let found = offenders(
        |f| in_dir(f, &["stack", "demo"]),
        |l| names.iter().any(|n| l.contains(n)),
        true,
    );
    assert!(
        found.is_empty(),
        "the bundled app is named in harness/src:\n{}",
        found.join("\n")
    );
}

#[test]
fn functions_stay_under_eighty_lines() {
    let mut long = Vec::new();
    for (file, lines) in sources() {
        let mut i = 0;
        while i < lines.len() {
            let t = code(&lines[i]).trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "pub(super) async fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn {
                i += 1;
                continue;
            }
            let (mut depth, mut opened, mut j) = (0i64, false, i);
            while j < lines.len() {
                let c = strip_literals(code(&lines[j]));
                depth += c.matches('{').count() as i64 - c.matches('}').count() as i64;
                opened |= c.contains('{');
                if (opened && depth <= 0) || (!opened && c.trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            let n = j - i + 1;
            if n > 80 {
                long.push(format!("harness/src/{file}:{}: {n} lines: {}", i + 1, t));
            }
            i += 1;
        }
    }
    assert!(
        long.is_empty(),
        "functions over 80 lines:\n{}",
        long.join("\n")
    );
}

/// The line without the contents of string and char literals (their braces do not count).
fn strip_literals(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => in_str = false,
            (true, _) => {}
            (false, '"') => in_str = true,
            (false, '\'') if chars.clone().nth(1) == Some('\'') => {
                chars.next();
                chars.next();
            }
            (false, _) => out.push(c),
        }
    }
    out
}
