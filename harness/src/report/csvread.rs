//! Reads `timeseries.csv` back (for `harness report` and the HTML charts): a header of column
//! names and one row per second, empty cells meaning "no value in that second".

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

/// Why a `timeseries.csv` cannot be read back; `line` counts from 1 (the header).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("empty file (no header line)")]
    Empty,
    #[error("first column must be `second`, found `{0}`")]
    FirstColumn(String),
    #[error("line {line}: {cells} cells, header has {columns}")]
    Width {
        line: usize,
        cells: usize,
        columns: usize,
    },
    #[error("line {line}: `{cell}` is not a number")]
    NotANumber { line: usize, cell: String },
}

impl Table {
    pub fn parse(text: &str) -> Result<Table, CsvError> {
        let mut lines = text.lines();
        let header = lines.next().ok_or(CsvError::Empty)?;
        let columns = cells(header);
        if columns.first().map(String::as_str) != Some("second") {
            return Err(CsvError::FirstColumn(columns[0].clone()));
        }
        let mut rows = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != columns.len() {
                return Err(CsvError::Width {
                    line: i + 2,
                    cells: cells.len(),
                    columns: columns.len(),
                });
            }
            let row = cells
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        Ok(None)
                    } else {
                        c.parse::<f64>()
                            .map(Some)
                            .map_err(|_| CsvError::NotANumber {
                                line: i + 2,
                                cell: (*c).to_owned(),
                            })
                    }
                })
                .collect::<Result<Vec<_>, CsvError>>()?;
            rows.push(row);
        }
        Ok(Table { columns, rows })
    }

    pub fn column(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }

    pub fn seconds(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r[0].unwrap_or(0.0)).collect()
    }
}

/// The header's cells; a cell in double quotes may hold `,` and `""` (a quote), as probe
/// series selectors need.
fn cells(line: &str) -> Vec<String> {
    let (mut out, mut cell, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            '"' if quoted || cell.is_empty() => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    out.push(cell);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_timeseries_writes() {
        let w = crate::metrics::Window {
            second: 0,
            requests: 5,
            failed: 1,
            p95_ms: Some(2.5),
            ..Default::default()
        };
        let t = Table::parse(&crate::report::timeseries::csv(&[w])).unwrap();
        assert_eq!(t.column("requests").unwrap(), vec![Some(5.0)]);
        assert_eq!(t.column("p50_ms").unwrap(), vec![None]);
        assert_eq!(t.column("p95_ms").unwrap(), vec![Some(2.5)]);
    }

    #[test]
    fn selector_columns_round_trip() {
        let series = r#"sum(node_cpu_seconds_total{cpu="0",mode!="idle"})"#;
        let mut w = crate::metrics::Window::default();
        w.gauges.insert(series.into(), 3.5);
        w.gauges.insert("plain".into(), 1.0);
        let text = crate::report::timeseries::csv(&[w]);
        let t = Table::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(t.column(series).unwrap(), vec![Some(3.5)]);
        assert_eq!(t.column("plain").unwrap(), vec![Some(1.0)]);
    }

    #[test]
    fn corrupt_files_are_named_errors() {
        assert!(Table::parse("").unwrap_err().to_string().contains("empty"));
        assert!(Table::parse("a,b\n1,2\n")
            .unwrap_err()
            .to_string()
            .contains("second"));
        assert!(Table::parse("second,x\n1\n")
            .unwrap_err()
            .to_string()
            .contains("line 2"));
        assert!(Table::parse("second,x\n1,abc\n")
            .unwrap_err()
            .to_string()
            .contains("`abc`"));
    }
}
