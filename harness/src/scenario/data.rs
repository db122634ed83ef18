//! Data files (`[data.NAME]`): CSV with a header, a JSON array of objects, or NDJSON, read once
//! and shared read-only by every VU, used in templates as `{{NAME.column}}`.
//!
//! CSV and NDJSON files are memory-mapped and indexed every [`STRIDE`] rows; a row is parsed
//! when an iteration picks it. After indexing the mapped pages are released (`MADV_DONTNEED`:
//! the kernel keeps them in its page cache, not in the process), so a 1,000,000-row file costs
//! its index (~1 byte per row) plus the pages of rows in use, whatever the VU count. The file
//! must not change while a run uses it. A JSON array is parsed whole (meant for small files).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

/// Rows between two index entries.
const STRIDE: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Path, relative to the scenario file.
    pub file: PathBuf,
    /// `csv`, `json` or `ndjson` (default: from the file's extension).
    pub format: Option<Format>,
    /// Which row an iteration gets.
    #[serde(default)]
    pub select: Select,
    /// With `select = "unique"`, what happens when every row has been used.
    #[serde(default)]
    pub exhausted: Exhausted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Json,
    Ndjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Select {
    /// Row after row, starting over after the last.
    #[default]
    Sequential,
    Random,
    /// Each row at most once across the whole run.
    Unique,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Exhausted {
    /// The scenarios reading the file stop starting iterations; the run goes on.
    #[default]
    Stop,
    /// The run is aborted and fails.
    Fail,
}

/// A data file that cannot be used; `line` is 1-based where one applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is empty")]
    Empty { path: String },
    #[error("{path} has a header but no rows")]
    NoRows { path: String },
    #[error("{path}:{line}: {message}")]
    Row {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: cannot tell the format from the extension; set format = \"csv\", \"json\" or \"ndjson\"")]
    Format { path: String },
}

/// A loaded data file.
pub struct DataSet {
    pub columns: Vec<String>,
    rows: Rows,
    len: u64,
    select: Select,
    pub exhausted: Exhausted,
    next: AtomicU64,
    rng: Mutex<fastrand::Rng>,
}

impl std::fmt::Debug for DataSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSet")
            .field("columns", &self.columns)
            .field("len", &self.len)
            .finish()
    }
}

enum Rows {
    /// A mapped CSV or NDJSON file and the offset of every STRIDE-th row.
    Mapped {
        map: Mapped,
        index: Vec<u64>,
        format: Format,
    },
    /// A JSON array, parsed.
    Parsed(Vec<Vec<String>>),
}

impl DataSet {
    /// Reads and indexes `spec.file` (relative to `dir`); `seed` seeds `random` selection.
    pub fn load(spec: &DataSpec, dir: &Path, seed: u64) -> Result<Arc<DataSet>, DataError> {
        let path = dir.join(&spec.file);
        let shown = spec.file.display().to_string();
        let format = match spec.format {
            Some(f) => f,
            None => match path.extension().and_then(|e| e.to_str()) {
                Some("csv") => Format::Csv,
                Some("json") => Format::Json,
                Some("ndjson" | "jsonl") => Format::Ndjson,
                _ => return Err(DataError::Format { path: shown }),
            },
        };
        let read_err = |e: std::io::Error| DataError::Read {
            path: shown.clone(),
            message: e.to_string(),
        };
        let (columns, rows, len) = match format {
            Format::Json => {
                let text = std::fs::read(&path).map_err(read_err)?;
                let (columns, rows) = parse_json_array(&text, &shown)?;
                let len = rows.len() as u64;
                (columns, Rows::Parsed(rows), len)
            }
            Format::Csv | Format::Ndjson => {
                let map = Mapped::open(&path).map_err(read_err)?;
                let (columns, index, len) = match format {
                    Format::Csv => index_csv(map.bytes(), &shown)?,
                    _ => index_ndjson(map.bytes(), &shown)?,
                };
                map.release();
                (columns, Rows::Mapped { map, index, format }, len)
            }
        };
        if len == 0 {
            return Err(DataError::NoRows { path: shown });
        }
        Ok(Arc::new(DataSet {
            columns,
            rows,
            len,
            select: spec.select,
            exhausted: spec.exhausted,
            next: AtomicU64::new(0),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn select(&self) -> Select {
        self.select
    }

    /// The row the next iteration of `segment` gets; None once its `unique` rows are used up.
    /// Sequential and unique picks walk the rows this segment owns, so no row is used by two
    /// workers of one run.
    pub fn pick(&self, segment: &super::Segment) -> Option<Vec<String>> {
        let i = match self.select {
            Select::Sequential => segment.nth(self.next.fetch_add(1, Relaxed)) % self.len,
            Select::Random => self.rng.lock().expect("rng").u64(0..self.len),
            Select::Unique => {
                let i = segment.nth(self.next.fetch_add(1, Relaxed));
                if i >= self.len {
                    return None;
                }
                i
            }
        };
        Some(self.row(i))
    }

    /// Row `i` (0-based, after the header).
    pub fn row(&self, i: u64) -> Vec<String> {
        match &self.rows {
            Rows::Parsed(rows) => rows[i as usize].clone(),
            Rows::Mapped { map, index, format } => {
                let bytes = map.bytes();
                let mut at = index[i as usize / STRIDE] as usize;
                for _ in 0..i as usize % STRIDE {
                    at = match format {
                        Format::Csv => skip_blank(bytes, csv_record(bytes, at).1),
                        _ => line_end(bytes, at) + 1,
                    };
                }
                match format {
                    Format::Csv => csv_record(bytes, at).0,
                    _ => {
                        let line = &bytes[at..line_end(bytes, at)];
                        let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
                        self.columns.iter().map(|c| json_text(&v[c])).collect()
                    }
                }
            }
        }
    }
}

/// A read-only private mapping of a whole file.
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and never written through; it lives as long as the value.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

impl Mapped {
    fn open(path: &Path) -> std::io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len() as usize;
        if len == 0 {
            return Ok(Mapped {
                ptr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh read-only private mapping of an open file; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr..ptr+len is mapped readable for the life of self.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Drops the pages read while indexing from this process (they stay in the page cache).
    fn release(&self) {
        if self.len > 0 {
            // SAFETY: advice on our own read-only mapping; pages are re-read on next access.
            unsafe { libc::madvise(self.ptr, self.len, libc::MADV_DONTNEED) };
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping the mapping this value owns, once.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// The start of the next non-blank CSV record at or after `at` (blank lines are no rows).
fn skip_blank(b: &[u8], mut at: usize) -> usize {
    while at < b.len() {
        let (fields, next, _) = csv_record(b, at);
        if !(fields.len() == 1 && fields[0].trim().is_empty()) {
            break;
        }
        at = next;
    }
    at
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| from + p)
}

/// One CSV record (RFC 4180: quoted fields, `""` inside quotes, CRLF or LF) starting at
/// `from`: its fields, the offset after it, and the line breaks inside it.
fn csv_record(b: &[u8], from: usize) -> (Vec<String>, usize, usize) {
    let (mut fields, mut field) = (Vec::new(), Vec::new());
    let (mut i, mut quoted, mut breaks) = (from, false, 0);
    while i < b.len() {
        let c = b[i];
        if quoted {
            match c {
                b'"' if b.get(i + 1) == Some(&b'"') => {
                    field.push(b'"');
                    i += 1;
                }
                b'"' => quoted = false,
                b'\n' => {
                    breaks += 1;
                    field.push(c)
                }
                _ => field.push(c),
            }
        } else {
            match c {
                b'"' if field.is_empty() => quoted = true,
                b',' => fields.push(String::from_utf8_lossy(&std::mem::take(&mut field)).into()),
                b'\n' => {
                    i += 1;
                    break;
                }
                b'\r' if b.get(i + 1) == Some(&b'\n') => {}
                _ => field.push(c),
            }
        }
        i += 1;
    }
    fields.push(String::from_utf8_lossy(&field).into());
    (fields, i, breaks)
}

fn index_csv(b: &[u8], path: &str) -> Result<(Vec<String>, Vec<u64>, u64), DataError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty { path: path.into() });
    }
    let (header, mut at, breaks) = csv_record(b, 0);
    let mut line = 2 + breaks;
    if let Some(dup) = header
        .iter()
        .enumerate()
        .find(|(i, h)| header[..*i].contains(h))
    {
        return Err(DataError::Row {
            path: path.into(),
            line: 1,
            message: format!("column `{}` appears twice in the header", dup.1),
        });
    }
    let (mut index, mut n) = (Vec::new(), 0u64);
    while at < b.len() {
        let start = at;
        let (fields, next, breaks) = csv_record(b, at);
        at = next;
        let blank = fields.len() == 1 && fields[0].trim().is_empty();
        if blank {
            line += 1 + breaks; // an empty line is no row (a one-column file included)
            continue;
        }
        if fields.len() != header.len() {
            return Err(DataError::Row {
                path: path.into(),
                line,
                message: format!(
                    "{} fields where the header has {} ({})",
                    fields.len(),
                    header.len(),
                    header.join(",")
                ),
            });
        }
        if (n as usize).is_multiple_of(STRIDE) {
            index.push(start as u64);
        }
        n += 1;
        line += 1 + breaks;
    }
    Ok((header, index, n))
}

fn index_ndjson(b: &[u8], path: &str) -> Result<(Vec<String>, Vec<u64>, u64), DataError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty { path: path.into() });
    }
    let (mut columns, mut index, mut n) = (None::<Vec<String>>, Vec::new(), 0u64);
    let (mut at, mut line) = (0, 0);
    while at < b.len() {
        line += 1;
        let end = line_end(b, at);
        let text = &b[at..end];
        let start = at;
        at = end + 1;
        if text.iter().all(u8::is_ascii_whitespace) {
            if at >= b.len() {
                break;
            }
            return Err(DataError::Row {
                path: path.into(),
                line,
                message: "an empty line (NDJSON has one object per line)".into(),
            });
        }
        let row = |message: String| DataError::Row {
            path: path.into(),
            line,
            message,
        };
        let v: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| row(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| row("not a JSON object".into()))?;
        match &columns {
            None => columns = Some(obj.keys().cloned().collect()),
            Some(cols) => {
                if let Some(c) = cols.iter().find(|c| !obj.contains_key(*c)) {
                    return Err(row(format!("no key `{c}` (the first row has it)")));
                }
            }
        }
        if (n as usize).is_multiple_of(STRIDE) {
            index.push(start as u64);
        }
        n += 1;
    }
    Ok((columns.unwrap_or_default(), index, n))
}

fn parse_json_array(b: &[u8], path: &str) -> Result<(Vec<String>, Vec<Vec<String>>), DataError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::Empty { path: path.into() });
    }
    let at = |e: &serde_json::Error, message: String| DataError::Row {
        path: path.into(),
        line: e.line(),
        message,
    };
    let v: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(b)
        .map_err(|e| at(&e, format!("not a JSON array of objects: {e}")))?;
    let columns: Vec<String> = v
        .first()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(v.len());
    for (i, o) in v.iter().enumerate() {
        if let Some(c) = columns.iter().find(|c| !o.contains_key(*c)) {
            return Err(DataError::Row {
                path: path.into(),
                line: 0,
                message: format!("element {i} has no key `{c}` (the first element has it)"),
            });
        }
        rows.push(columns.iter().map(|c| json_text(&o[c])).collect());
    }
    Ok((columns, rows))
}

/// A JSON value as template text: strings unquoted, the rest as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (PathBuf, DataSpec) {
        let dir = std::env::temp_dir().join(format!("harness-data-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
        let spec = DataSpec {
            file: name.into(),
            format: None,
            select: Select::Sequential,
            exhausted: Exhausted::Stop,
        };
        (dir, spec)
    }

    #[test]
    fn csv_rows_are_read_with_quotes_and_past_the_index_stride() {
        let mut text = "id,email\n".to_owned();
        for i in 0..40 {
            text.push_str(&format!("{i},\"u{i}@x, \"\"q\"\"\"\r\n"));
        }
        let (dir, spec) = write("u.csv", &text);
        let d = DataSet::load(&spec, &dir, 1).unwrap();
        assert_eq!(d.columns, ["id", "email"]);
        assert_eq!(d.len(), 40);
        assert_eq!(d.row(37), ["37", "u37@x, \"q\""]);
        let whole = crate::scenario::Segment::whole();
        assert_eq!(d.pick(&whole).unwrap()[0], "0");
        assert_eq!(d.pick(&whole).unwrap()[0], "1");
    }

    #[test]
    fn blank_lines_are_no_rows_and_keep_line_numbers() {
        let (dir, spec) = write("b.csv", "email\na@x\n\nb@x\n\n\n");
        let d = DataSet::load(&spec, &dir, 1).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.row(1), ["b@x"]);
        let (dir, spec) = write("bl.csv", "a,b\n1,2\n\n3\n");
        let e = DataSet::load(&spec, &dir, 1).unwrap_err().to_string();
        assert!(e.contains("bl.csv:4:"), "{e}");
    }

    #[test]
    fn unique_rows_run_out() {
        let (dir, mut spec) = write("two.csv", "a\n1\n2\n");
        spec.select = Select::Unique;
        let (d, whole) = (
            DataSet::load(&spec, &dir, 1).unwrap(),
            crate::scenario::Segment::whole(),
        );
        assert!(d.pick(&whole).is_some() && d.pick(&whole).is_some());
        assert_eq!(d.pick(&whole), None);
    }

    #[test]
    fn workers_never_share_a_unique_row() {
        let rows: String = (0..10).map(|i| format!("{i}\n")).collect();
        let (dir, mut spec) = write("ten.csv", &format!("a\n{rows}"));
        spec.select = Select::Unique;
        let mut seen = Vec::new();
        for i in 0..3 {
            let seg = crate::scenario::Segment::of_workers(i, 3).unwrap();
            let d = DataSet::load(&spec, &dir, 1).unwrap();
            while let Some(r) = d.pick(&seg) {
                seen.push(r[0].clone());
            }
        }
        seen.sort();
        let all: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(seen, all, "each row exactly once over the workers");
    }

    #[test]
    fn ragged_empty_and_missing_files_are_errors_with_lines() {
        let (dir, spec) = write("r.csv", "a,b\n1,2\n3\n");
        let e = DataSet::load(&spec, &dir, 1).unwrap_err().to_string();
        assert!(
            e.contains("r.csv:3: 1 fields where the header has 2"),
            "{e}"
        );
        let (dir, spec) = write("e.csv", "");
        assert!(DataSet::load(&spec, &dir, 1)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let (dir, spec) = write("h.csv", "a,b\n");
        assert!(matches!(
            DataSet::load(&spec, &dir, 1),
            Err(DataError::NoRows { .. })
        ));
        let (dir, mut spec) = write("x.csv", "a\n1\n");
        spec.file = "nope.csv".into();
        assert!(matches!(
            DataSet::load(&spec, &dir, 1),
            Err(DataError::Read { .. })
        ));
    }

    #[test]
    fn json_and_ndjson_rows() {
        let (dir, spec) = write("p.json", r#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#);
        let d = DataSet::load(&spec, &dir, 1).unwrap();
        assert_eq!(d.row(1), ["2", "b"]);
        let (dir, spec) = write(
            "p.ndjson",
            "{\"id\":1,\"n\":\"a\"}\n{\"id\":2,\"n\":\"b\"}\n",
        );
        let d = DataSet::load(&spec, &dir, 1).unwrap();
        assert_eq!(d.columns, ["id", "n"]);
        assert_eq!(d.row(1), ["2", "b"]);
        let (dir, spec) = write("bad.ndjson", "{\"id\":1}\n{\"x\":2}\n");
        let e = DataSet::load(&spec, &dir, 1).unwrap_err().to_string();
        assert!(e.contains("bad.ndjson:2: no key `id`"), "{e}");
    }
}
