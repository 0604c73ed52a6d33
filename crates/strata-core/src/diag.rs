//! Diagnostics: problems found in a user's files, each with a place and a fix.

use std::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// strata cannot go on; the input must be fixed.
    Error,
    /// strata goes on, but the input is probably not what its author meant.
    Warning,
}

/// A position in a text file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number, in characters.
    pub column: usize,
}

/// One problem in one file, at one place, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as the user knows it (e.g. `images/spec.yml`).
    pub file: String,
    /// Where in the file; `None` when the problem is the file as a whole.
    pub pos: Option<Pos>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &str, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_string(),
            pos,
            message: message.into(),
            help: None,
        }
    }

    /// A warning at `pos` in `file`.
    pub fn warning(file: &str, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, pos, message)
        }
    }

    /// The same diagnostic with a hint on what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with the offending source line and a caret under
    /// the column, the way compilers do, given the file's text.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = self.to_string();
        if let (Some(pos), Some(text)) = (self.pos, source) {
            if let Some(line) = text.lines().nth(pos.line.saturating_sub(1)) {
                let gutter = pos.line.to_string();
                let shown: String = line.chars().take(200).collect();
                out.push_str(&format!("\n {gutter} | {shown}"));
                let pad = " ".repeat(gutter.len());
                let caret_at = " ".repeat(pos.column.saturating_sub(1).min(200));
                out.push_str(&format!("\n {pad} | {caret_at}^"));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("\n  help: {help}"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match self.pos {
            Some(p) => write!(
                f,
                "{}:{}:{}: {level}: {}",
                self.file, p.line, p.column, self.message
            ),
            None => write!(f, "{}: {level}: {}", self.file, self.message),
        }
    }
}

/// The help for an unknown key: the closest known one, or the list of
/// known ones when none is close.
pub fn unknown_key_help(key: &str, known: &[&str]) -> String {
    match closest(key, known.iter().copied()) {
        Some(near) => format!("did you mean '{near}'?"),
        None => format!("known keys: {}", known.join(", ")),
    }
}

/// Suggests the candidate closest to `word` (by Jaro-Winkler similarity), if
/// any is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_unrelated_words() {
        let keys = ["depend_on", "image_name", "build_args"];
        assert_eq!(closest("depnds_on", keys), Some("depend_on"));
        assert_eq!(closest("imag_name", keys), Some("image_name"));
        assert_eq!(closest("zzz", keys), None);
    }

    #[test]
    fn render_points_at_the_column() {
        let d = Diagnostic::error("spec.yml", Some(Pos { line: 2, column: 3 }), "bad")
            .with_help("fix it");
        let r = d.render(Some("a: 1\nb: [\n"));
        assert!(r.starts_with("spec.yml:2:3: error: bad"), "{r}");
        assert!(r.contains(" 2 | b: [\n   |   ^"), "{r}");
        assert!(r.ends_with("help: fix it"), "{r}");
    }
}
