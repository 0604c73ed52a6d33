//! `.dockerignore` with Docker's own rules.
//!
//! A port of what the Docker CLI does when it sends a build context:
//! the reader of buildkit's `dockerignore.ReadAll` ([`parse_dockerignore`])
//! and moby's `patternmatcher` ([`PatternMatcher`]):
//!
//! - lines starting with `#` are comments; lines are trimmed; empty lines skipped;
//! - patterns are cleaned like Go's `filepath.Clean` and a leading `/` is dropped;
//! - Go `filepath.Match` syntax: `*` (any run of characters but `/`), `?` (one
//!   character but `/`), `[...]` classes with ranges and `^` negation, `\`
//!   escapes; a malformed pattern is an error;
//! - `**` matches any number of directories (including none);
//! - `!pattern` re-includes what earlier patterns excluded; patterns are
//!   evaluated in order and the last match wins;
//! - a path is also excluded when one of its parent directories matches.
//!
//! Known deviation: inside `[...]` moby hands `*` and `?` to Go's regexp
//! engine unchanged (so `[*]` is a regexp oddity there); here class contents
//! are always literal characters and ranges.

/// A malformed `.dockerignore` pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad .dockerignore pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written (after cleaning).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads a `.dockerignore` file into patterns, the way buildkit's
/// `dockerignore.ReadAll` does (the CLI and the engine both use it).
///
/// A UTF-8 byte order mark is dropped, lines starting with `#` are comments,
/// lines are trimmed, `!` exceptions keep their `!`, each pattern is cleaned
/// (`filepath.Clean`) and a leading `/` is removed.
pub fn parse_dockerignore(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = go_clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push(cleaned);
    }
    out
}

/// Go's `path.Clean`: the shortest path equivalent to `path` by purely
/// lexical processing (no duplicate `/`, no `.` elements, `..` resolved where
/// possible, no trailing `/`; the empty path becomes `.`).
pub fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

mod pattern;
#[cfg(test)]
mod tests;

pub use pattern::Pattern;

/// Per-pattern match results of a directory, handed to its children
/// (moby's `MatchInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

/// An ordered list of `.dockerignore` patterns (moby's `PatternMatcher`).
#[derive(Debug, Clone, Default)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles patterns (as returned by [`parse_dockerignore`], or raw):
    /// each is trimmed, empty ones are skipped, each is cleaned, a leading `!`
    /// makes an exception. A lone `!` or a malformed pattern is an error.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<PatternMatcher, PatternError> {
        let mut out = PatternMatcher::default();
        for raw in patterns {
            let p = raw.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = go_clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError {
                        pattern: p.clone(),
                        reason: "illegal exclusion pattern: \"!\"".to_string(),
                    });
                }
                exclusion = true;
                out.exclusions = true;
                p = rest.to_string();
            }
            out.patterns.push(Pattern::new(p, exclusion)?);
        }
        Ok(out)
    }

    /// True when any pattern is a `!` exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `file` matches exactly (no parent directory matching).
    pub fn matches_exact(&self, file: &str) -> bool {
        let mut matched = false;
        for p in &self.patterns {
            if p.is_exclusion() != matched {
                continue;
            }
            if p.matches(file) {
                matched = !p.is_exclusion();
            }
        }
        matched
    }

    /// Whether `file` (slash-separated, relative to the context) is excluded:
    /// it or one of its parent directories matches a pattern, and no later
    /// exception matches it.
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        let parent = parent_of(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.is_exclusion() != matched {
                continue;
            }
            let mut m = p.matches(file);
            if !m && parent != "." {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        m = true;
                        break;
                    }
                }
            }
            if m {
                matched = !p.is_exclusion();
            }
        }
        matched
    }

    /// moby's `MatchesUsingParentResults`, what the CLI uses while walking a
    /// context: like [`Self::matches_or_parent_matches`], reusing the results
    /// of the parent directory (`MatchInfo::default()` for none). Returns
    /// whether `file` is excluded and the results to hand to its children.
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let have_parent = parent.parent_matched.len() == self.patterns.len();
        let mut matched = false;
        let mut info = MatchInfo {
            parent_matched: vec![false; self.patterns.len()],
        };
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = have_parent && parent.parent_matched[i];
            if !m {
                if p.is_exclusion() != matched {
                    continue;
                }
                m = p.matches(file);
                if !m && !have_parent {
                    let parent_path = parent_of(file);
                    if parent_path != "." {
                        let dirs: Vec<&str> = parent_path.split('/').collect();
                        for k in 0..dirs.len() {
                            if p.matches(&dirs[..=k].join("/")) {
                                m = true;
                                break;
                            }
                        }
                    }
                }
            }
            info.parent_matched[i] = m;
            if m {
                matched = !p.is_exclusion();
            }
        }
        (matched, info)
    }

    /// Whether an excluded directory must still be walked because an
    /// exception pattern starts with it (moby's check, e.g. `!dir/file`).
    pub fn must_walk_excluded_dir(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let dir_slash = format!("{dir}/");
        self.patterns
            .iter()
            .filter(|p| p.is_exclusion())
            .any(|p| format!("{}/", p.as_str()).starts_with(&dir_slash))
    }
}

/// Go's `filepath.Dir` for slash paths.
fn parent_of(file: &str) -> String {
    match file.rfind('/') {
        Some(i) => go_clean(&file[..=i]),
        None => ".".to_string(),
    }
}

/// moby's deprecated `patternmatcher.Matches(file, patterns)` (only one
/// parent level checked), used by the CLI to decide whether the Dockerfile
/// and `.dockerignore` need a `!` exception to be sent.
pub fn cli_matches(file: &str, matcher: &PatternMatcher) -> bool {
    let file = go_clean(file);
    if file == "." {
        return false;
    }
    let parent = parent_of(&file);
    let parent_dirs: Vec<&str> = parent.split('/').collect();
    let mut matched = false;
    for p in &matcher.patterns {
        if p.is_exclusion() != matched {
            continue;
        }
        let mut m = p.matches(&file);
        if !m && parent != "." {
            let n = p.as_str().split('/').count();
            if n <= parent_dirs.len() {
                m = p.matches(&parent_dirs[..n].join("/"));
            }
        }
        if m {
            matched = !p.is_exclusion();
        }
    }
    matched
}
