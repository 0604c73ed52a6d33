//! JUnit XML: the test report every CI system reads.
//!
//! A run's `artifacts/junit.xml` has one `<testsuite>` per image and test
//! stage, holding pytest's own cases (read from the file pytest writes with
//! `--junitxml`) and each structure test as a case. Reading uses
//! `roxmltree`; writing is done here because XML 1.0 cannot hold most
//! control characters (test output is full of terminal colour codes), which
//! general-purpose escapers pass through: [`xml_text`] drops them.

use std::fmt::Write as _;

/// One test and how it went.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TestCase {
    /// The test's name.
    pub name: String,
    /// Where it comes from: the test module for pytest, the file for a
    /// structure test.
    pub classname: String,
    /// Seconds it ran.
    pub time_secs: f64,
    /// Its result.
    pub outcome: CaseOutcome,
    /// What it printed (the command's output for a structure test).
    pub output: String,
}

/// The result of a test case.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum CaseOutcome {
    /// It passed.
    Passed,
    /// An assertion failed.
    Failed {
        /// The short reason.
        message: String,
        /// The whole report (traceback, every failed check).
        details: String,
    },
    /// It could not run (a fixture or the container failed).
    Error {
        /// The short reason.
        message: String,
        /// The whole report.
        details: String,
    },
    /// It was skipped.
    Skipped {
        /// Why.
        message: String,
    },
}

impl TestCase {
    /// Whether the case failed or errored.
    pub fn is_failure(&self) -> bool {
        matches!(
            self.outcome,
            CaseOutcome::Failed { .. } | CaseOutcome::Error { .. }
        )
    }
}

/// The tests of one image's test stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TestSuite {
    /// `<ref> <stage>`, e.g. `org/base:2024.1-a1b2c3d basic-tests`.
    pub name: String,
    /// Its cases, in the order they ran.
    pub cases: Vec<TestCase>,
    /// Seconds the stage ran.
    pub time_secs: f64,
}

impl TestSuite {
    fn count(&self, f: impl Fn(&CaseOutcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(&c.outcome)).count()
    }
}

/// Why a JUnit file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a JUnit XML report: {0}")]
pub struct JunitError(String);

/// Renders the suites as one JUnit XML document.
pub fn render(suites: &[TestSuite]) -> String {
    let total = |f: &dyn Fn(&TestSuite) -> usize| suites.iter().map(f).sum::<usize>();
    let tests = total(&|s| s.cases.len());
    let failures = total(&|s| s.count(|o| matches!(o, CaseOutcome::Failed { .. })));
    let errors = total(&|s| s.count(|o| matches!(o, CaseOutcome::Error { .. })));
    let skipped = total(&|s| s.count(|o| matches!(o, CaseOutcome::Skipped { .. })));
    let time: f64 = suites.iter().map(|s| s.time_secs).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"strata\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    for suite in suites {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml_text(&suite.name),
            suite.cases.len(),
            suite.count(|o| matches!(o, CaseOutcome::Failed { .. })),
            suite.count(|o| matches!(o, CaseOutcome::Error { .. })),
            suite.count(|o| matches!(o, CaseOutcome::Skipped { .. })),
            suite.time_secs
        );
        for case in &suite.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\">",
                xml_text(&case.name),
                xml_text(&case.classname),
                case.time_secs
            );
            match &case.outcome {
                CaseOutcome::Passed => {}
                CaseOutcome::Failed { message, details } => {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{}</failure>",
                        xml_text(message),
                        xml_text(details)
                    );
                }
                CaseOutcome::Error { message, details } => {
                    let _ = write!(
                        out,
                        "<error message=\"{}\">{}</error>",
                        xml_text(message),
                        xml_text(details)
                    );
                }
                CaseOutcome::Skipped { message } => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml_text(message));
                }
            }
            if !case.output.is_empty() {
                let _ = write!(out, "<system-out>{}</system-out>", xml_text(&case.output));
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text made safe for XML content and attribute values: the five markup
/// characters escaped, and characters XML 1.0 cannot hold (most control
/// characters, lone surrogates cannot occur in `str`) dropped.
pub fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept as references so attribute values keep their line breaks.
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            c if c < '\u{20}' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Reads every `<testcase>` of a JUnit XML report (pytest's `--junitxml`
/// among them), in document order.
pub fn parse(xml: &str) -> Result<Vec<TestCase>, JunitError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| JunitError(e.to_string()))?;
    let root = doc.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(JunitError(format!(
            "the root element is <{}>, not <testsuites> or <testsuite>",
            root.tag_name().name()
        )));
    }
    let text_of = |n: roxmltree::Node<'_, '_>| {
        n.descendants()
            .filter(roxmltree::Node::is_text)
            .filter_map(|t| t.text())
            .collect::<String>()
    };
    Ok(root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let child = |name: &str| case.children().find(|c| c.has_tag_name(name));
            let message =
                |n: roxmltree::Node<'_, '_>| n.attribute("message").unwrap_or("").to_string();
            let outcome = if let Some(f) = child("failure") {
                CaseOutcome::Failed {
                    message: message(f),
                    details: text_of(f),
                }
            } else if let Some(e) = child("error") {
                CaseOutcome::Error {
                    message: message(e),
                    details: text_of(e),
                }
            } else if let Some(s) = child("skipped") {
                CaseOutcome::Skipped {
                    message: message(s),
                }
            } else {
                CaseOutcome::Passed
            };
            let output = ["system-out", "system-err"]
                .into_iter()
                .filter_map(child)
                .map(text_of)
                .collect::<Vec<_>>()
                .join("\n");
            TestCase {
                name: case.attribute("name").unwrap_or("").to_string(),
                classname: case.attribute("classname").unwrap_or("").to_string(),
                time_secs: case
                    .attribute("time")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0),
                outcome,
                output,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="0.5" timestamp="2026-11-26T04:00:00" hostname="h"><testcase classname="tests_common.test_common" name="test_shell_works" time="0.2" /><testcase classname="base.test.test_base" name="test_fails" time="0.1"><failure message="AssertionError: assert 1 == 2">def test_fails():
&gt;       assert 1 == 2</failure><system-out>printed &amp; more</system-out></testcase><testcase classname="m" name="test_skip" time="0.0"><skipped type="pytest.skip" message="not here">skip</skipped></testcase></testsuite></testsuites>"#;

    #[test]
    fn reads_pytest_reports() {
        let cases = parse(PYTEST).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].name, "test_shell_works");
        assert_eq!(cases[0].outcome, CaseOutcome::Passed);
        assert_eq!(
            cases[1].outcome,
            CaseOutcome::Failed {
                message: "AssertionError: assert 1 == 2".into(),
                details: "def test_fails():\n>       assert 1 == 2".into()
            }
        );
        assert_eq!(cases[1].output, "printed & more");
        assert!(cases[1].is_failure() && !cases[2].is_failure());
        assert_eq!(
            cases[2].outcome,
            CaseOutcome::Skipped {
                message: "not here".into()
            }
        );
    }

    #[test]
    fn refuses_what_is_not_junit() {
        assert!(parse("not xml").is_err());
        assert!(parse("<html/>").unwrap_err().to_string().contains("<html>"));
    }

    #[test]
    fn renders_what_it_reads_back_with_counts() {
        let mut cases = parse(PYTEST).unwrap();
        cases.push(TestCase {
            name: "say \"hi\" <loud>".into(),
            classname: "checks.yaml".into(),
            time_secs: 0.01,
            outcome: CaseOutcome::Error {
                message: "engine\u{1b}[31m gone".into(),
                details: "line1\nline2".into(),
            },
            output: "\u{0}bell\u{7}".into(),
        });
        let suites = [
            TestSuite {
                name: "o/a:1 basic-tests".into(),
                cases: cases.clone(),
                time_secs: 1.5,
            },
            TestSuite {
                name: "o/b:1 basic-tests".into(),
                cases: Vec::new(),
                time_secs: 0.0,
            },
        ];
        let xml = render(&suites);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("failures"), Some("1"));
        assert_eq!(root.attribute("errors"), Some("1"));
        assert_eq!(root.attribute("skipped"), Some("1"));
        assert_eq!(
            root.children()
                .filter(|n| n.has_tag_name("testsuite"))
                .count(),
            2
        );
        let back = parse(&xml).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[3].name, "say \"hi\" <loud>");
        assert_eq!(
            back[3].outcome,
            CaseOutcome::Error {
                message: "engine[31m gone".into(),
                details: "line1\nline2".into()
            }
        );
        assert_eq!(back[3].output, "bell");
        assert_eq!(back[1], cases[1]);
    }
}
