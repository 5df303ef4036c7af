//! JUnit XML for CI systems: one `<testcase>` per threshold or compared
//! metric, a `<failure>` with a message for each that failed.
//!
//! Takes finished verdicts ([`Case`]s) and a writer; knows nothing of how
//! they were reached. The shape is the common subset Jenkins, GitLab and
//! GitHub test reporters read.

use std::io::{self, Write};

/// One test case: a threshold over one run, or one compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Groups cases (e.g. `contend.thresholds.run-1`, `contend.compare`).
    pub classname: String,
    /// The case's name (the expression, or the metric).
    pub name: String,
    /// `None` when it passed; the reason when it failed.
    pub failure: Option<String>,
    /// Details shown beside the verdict (value, change, evidence).
    pub output: String,
}

/// Writes `cases` as one `<testsuite>` named `suite` inside `<testsuites>`.
pub fn write(w: &mut dyn Write, suite: &str, cases: &[Case]) -> io::Result<()> {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        w,
        r#"<testsuites name="contend" tests="{}" failures="{failures}">"#,
        cases.len()
    )?;
    writeln!(
        w,
        r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="0" skipped="0">"#,
        escape(suite),
        cases.len()
    )?;
    for case in cases {
        write!(
            w,
            r#"    <testcase classname="{}" name="{}">"#,
            escape(&case.classname),
            escape(&case.name)
        )?;
        if let Some(message) = &case.failure {
            write!(
                w,
                r#"<failure message="{}" type="regression">{}</failure>"#,
                escape(message),
                escape(message)
            )?;
        }
        if !case.output.is_empty() {
            write!(w, "<system-out>{}</system-out>", escape(&case.output))?;
        }
        writeln!(w, "</testcase>")?;
    }
    writeln!(w, "  </testsuite>")?;
    writeln!(w, "</testsuites>")
}

/// Escapes text for an attribute or element body; drops the control
/// characters XML 1.0 does not allow.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_xml_reserves() {
        let cases = [
            ("p99 < 250ms", "p99 &lt; 250ms"),
            (
                "a & \"b\" > 'c'",
                "a &amp; &quot;b&quot; &gt; &apos;c&apos;",
            ),
            ("bell\u{7}", "bell"),
            ("two\nlines", "two&#10;lines"),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), want);
        }
    }

    #[test]
    fn writes_counts_and_failures() {
        let cases = vec![
            Case {
                classname: "c".into(),
                name: "p99 < 1ms".into(),
                failure: None,
                output: String::new(),
            },
            Case {
                classname: "c".into(),
                name: "error_rate < 1%".into(),
                failure: Some("5.00%".into()),
                output: "x".into(),
            },
        ];
        let mut out = Vec::new();
        write(&mut out, "contend thresholds", &cases).unwrap();
        let xml = String::from_utf8(out).unwrap();
        assert!(
            xml.contains(r#"<testsuites name="contend" tests="2" failures="1">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase classname="c" name="p99 &lt; 1ms"></testcase>"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="5.00%" type="regression">5.00%</failure>"#),
            "{xml}"
        );
    }
}
