//! `junit.xml`: one test case per threshold and per SQL check, so a CI system shows which gate
//! failed and why.

use std::fmt::{self, Write};

use super::Summary;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn xml(s: &Summary) -> String {
    let mut out = String::new();
    print_all(&mut out, s).expect("writing to a String cannot fail");
    out
}

/// The document: one suite with the threshold cases, then the SQL check cases.
pub fn print_all<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    out.write_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    print_suite_open(out, s)?;
    print_threshold_cases(out, s)?;
    print_sql_cases(out, s)?;
    if let Some(r) = &s.reason {
        writeln!(out, "    <system-out>{}</system-out>", esc(r))?;
    }
    out.write_str("  </testsuite>\n</testsuites>\n")
}

fn print_suite_open<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    let failures = s.thresholds.iter().filter(|v| !v.passed).count()
        + s.sql_checks.iter().filter(|c| !c.passed).count();
    let tests = s.thresholds.len() + s.sql_checks.len();
    writeln!(
        out,
        "<testsuites name=\"harness\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">",
        s.elapsed_s
    )?;
    writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\" timestamp=\"{}\">",
        esc(&s.scenario.name),
        s.elapsed_s,
        esc(&s.started_at)
    )?;
    if s.http.tls_insecure {
        writeln!(
            out,
            "    <properties><property name=\"tls_insecure\" value=\"true: certificates were not verified\"/></properties>"
        )?;
    }
    Ok(())
}

/// One test case; a failure element when `failure` is (message, type).
fn print_case<W: Write>(
    out: &mut W,
    class: &str,
    name: &str,
    failure: Option<(String, &str)>,
) -> fmt::Result {
    write!(
        out,
        "    <testcase classname=\"{class}\" name=\"{}\">",
        esc(name)
    )?;
    if let Some((msg, kind)) = failure {
        write!(out, "<failure message=\"{}\" type=\"{kind}\"/>", esc(&msg))?;
    }
    out.write_str("</testcase>\n")
}

fn print_threshold_cases<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    for v in &s.thresholds {
        let failure = (!v.passed).then(|| (v.reason.clone().unwrap_or_default(), "threshold"));
        let name = format!("{}: {}", v.metric, v.threshold);
        print_case(out, "thresholds", &name, failure)?;
    }
    Ok(())
}

fn print_sql_cases<W: Write>(out: &mut W, s: &Summary) -> fmt::Result {
    for c in &s.sql_checks {
        let failure = (!c.passed).then(|| {
            let msg = match &c.error {
                Some(e) => e.clone(),
                None => format!("expected {:?}, observed {:?}", c.expected, c.observed),
            };
            (msg, "sql_check")
        });
        print_case(out, "sql_checks", &c.name, failure)?;
    }
    Ok(())
}
