//! `junit.xml`: one test case per threshold and per SQL check, so a CI system shows which gate
//! failed and why.

use std::fmt::Write;

use super::Summary;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn xml(s: &Summary) -> String {
    let failures = s.thresholds.iter().filter(|v| !v.passed).count()
        + s.sql_checks.iter().filter(|c| !c.passed).count();
    let tests = s.thresholds.len() + s.sql_checks.len();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"harness\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">",
        s.elapsed_s
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\" timestamp=\"{}\">",
        esc(&s.scenario.name),
        s.elapsed_s,
        esc(&s.started_at)
    );
    for v in &s.thresholds {
        let name = format!("{}: {}", v.metric, v.threshold);
        let _ = write!(
            out,
            "    <testcase classname=\"thresholds\" name=\"{}\">",
            esc(&name)
        );
        if !v.passed {
            let msg = v.reason.clone().unwrap_or_default();
            let _ = write!(
                out,
                "<failure message=\"{}\" type=\"threshold\"/>",
                esc(&msg)
            );
        }
        out.push_str("</testcase>\n");
    }
    for c in &s.sql_checks {
        let _ = write!(
            out,
            "    <testcase classname=\"sql_checks\" name=\"{}\">",
            esc(&c.name)
        );
        if !c.passed {
            let msg = match &c.error {
                Some(e) => e.clone(),
                None => format!("expected {:?}, observed {:?}", c.expected, c.observed),
            };
            let _ = write!(
                out,
                "<failure message=\"{}\" type=\"sql_check\"/>",
                esc(&msg)
            );
        }
        out.push_str("</testcase>\n");
    }
    if let Some(r) = &s.reason {
        let _ = writeln!(out, "    <system-out>{}</system-out>", esc(r));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
