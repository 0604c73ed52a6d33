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

use std::fmt;

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// One literal character.
    Lit(char),
    /// `?`: one character but `/`.
    AnyOne,
    /// `*`: any run of characters but `/`.
    Star,
    /// `**` followed by more pattern: `(.*/)?`.
    DirStar,
    /// Trailing `**` after a wildcard: `.*`.
    All,
    /// `[...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// One compiled pattern of a [`PatternMatcher`].
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    match_type: MatchType,
    toks: Vec<Tok>,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Pattern({}{})",
            if self.exclusion { "!" } else { "" },
            self.cleaned
        )
    }
}

impl Pattern {
    /// The cleaned pattern, without its `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// True for a `!` exception.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    fn new(cleaned: String, exclusion: bool) -> Result<Pattern, PatternError> {
        validate(&cleaned).map_err(|reason| PatternError {
            pattern: cleaned.clone(),
            reason: reason.to_string(),
        })?;
        let (match_type, toks) = compile(&cleaned).map_err(|reason| PatternError {
            pattern: cleaned.clone(),
            reason: reason.to_string(),
        })?;
        Ok(Pattern {
            cleaned,
            exclusion,
            match_type,
            toks,
        })
    }

    /// Whether `path` (slash-separated, relative) matches this pattern on its own.
    pub fn matches(&self, path: &str) -> bool {
        match self.match_type {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => {
                let prefix = &self.cleaned[..self.cleaned.len() - 2];
                path.starts_with(prefix)
            }
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix
                    .strip_prefix('/')
                    .is_some_and(|rest| !rest.is_empty() && path == rest)
            }
            MatchType::Regexp => {
                let chars: Vec<char> = path.chars().collect();
                let mut seen = vec![false; (self.toks.len() + 1) * (chars.len() + 1)];
                match_toks(&self.toks, &chars, 0, 0, &mut seen)
            }
        }
    }
}

/// Checks `pattern` the way Go's `filepath.Match(pattern, ".")` does on Unix.
fn validate(pattern: &str) -> Result<(), &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 >= chars.len() {
                    return Err("trailing backslash");
                }
                i += 2;
            }
            '[' => {
                let (_, next) = parse_class(&chars, i + 1)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a class starting just after `[`; returns it and the index after `]`.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Tok, usize), &'static str> {
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err("unclosed character class"),
            Some(']') if !ranges.is_empty() => return Ok((Tok::Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let lo = class_char(chars, &mut i)?;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            i += 1;
            hi = class_char(chars, &mut i)?;
            if hi < lo {
                return Err("invalid character class range");
            }
        }
        ranges.push((lo, hi));
    }
}

/// Go's `getEsc`: one (possibly escaped) character of a class.
fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
    match chars.get(*i) {
        None => Err("unclosed character class"),
        Some('-') | Some(']') => Err("misplaced '-' or ']' in character class"),
        Some('\\') => {
            *i += 1;
            let c = *chars.get(*i).ok_or("unclosed character class")?;
            *i += 1;
            Ok(c)
        }
        Some(c) => {
            *i += 1;
            Ok(*c)
        }
    }
}

/// moby's `Pattern.compile`, producing tokens instead of a regexp string.
fn compile(pattern: &str) -> Result<(MatchType, Vec<Tok>), &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = MatchType::Exact;
    let mut i = 0;
    let mut iteration = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // Treat **/ as **.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    // "**" at the end: accept everything, like .gitignore.
                    if kind == MatchType::Exact {
                        kind = MatchType::Prefix;
                    } else {
                        toks.push(Tok::All);
                        kind = MatchType::Regexp;
                    }
                } else {
                    toks.push(Tok::DirStar);
                    kind = MatchType::Regexp;
                }
                if iteration == 0 {
                    kind = MatchType::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = MatchType::Regexp;
            }
            '?' => {
                toks.push(Tok::AnyOne);
                kind = MatchType::Regexp;
            }
            '\\' => {
                if let Some(&next) = chars.get(i) {
                    toks.push(Tok::Lit(next));
                    i += 1;
                    kind = MatchType::Regexp;
                } else {
                    toks.push(Tok::Lit('\\'));
                }
            }
            '[' => {
                let (class, next) = parse_class(&chars, i)?;
                toks.push(class);
                i = next;
                kind = MatchType::Regexp;
            }
            c => toks.push(Tok::Lit(c)),
        }
        iteration += 1;
    }
    Ok((kind, toks))
}

/// Backtracking match of tokens against a path, memoising failed states.
fn match_toks(toks: &[Tok], s: &[char], ti: usize, si: usize, seen: &mut [bool]) -> bool {
    if ti == toks.len() {
        return si == s.len();
    }
    let key = ti * (s.len() + 1) + si;
    if seen[key] {
        return false;
    }
    seen[key] = true;
    match &toks[ti] {
        Tok::Lit(c) => si < s.len() && s[si] == *c && match_toks(toks, s, ti + 1, si + 1, seen),
        Tok::AnyOne => si < s.len() && s[si] != '/' && match_toks(toks, s, ti + 1, si + 1, seen),
        Tok::Class { negated, ranges } => {
            si < s.len()
                && (ranges.iter().any(|(lo, hi)| *lo <= s[si] && s[si] <= *hi) != *negated)
                && match_toks(toks, s, ti + 1, si + 1, seen)
        }
        Tok::Star => {
            let mut j = si;
            loop {
                if match_toks(toks, s, ti + 1, j, seen) {
                    return true;
                }
                if j < s.len() && s[j] != '/' {
                    j += 1;
                } else {
                    return false;
                }
            }
        }
        Tok::DirStar => {
            // (.*/)? where '.' is any character but a newline.
            if match_toks(toks, s, ti + 1, si, seen) {
                return true;
            }
            for j in si..s.len() {
                if s[j] == '\n' {
                    break;
                }
                if s[j] == '/' && match_toks(toks, s, ti + 1, j + 1, seen) {
                    return true;
                }
            }
            false
        }
        Tok::All => {
            let mut j = si;
            loop {
                if match_toks(toks, s, ti + 1, j, seen) {
                    return true;
                }
                if j < s.len() && s[j] != '\n' {
                    j += 1;
                } else {
                    return false;
                }
            }
        }
    }
}

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
            if p.exclusion != matched {
                continue;
            }
            if p.matches(file) {
                matched = !p.exclusion;
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
            if p.exclusion != matched {
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
                matched = !p.exclusion;
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
                if p.exclusion != matched {
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
                matched = !p.exclusion;
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
            .filter(|p| p.exclusion)
            .any(|p| format!("{}/", p.cleaned).starts_with(&dir_slash))
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
        if p.exclusion != matched {
            continue;
        }
        let mut m = p.matches(&file);
        if !m && parent != "." {
            let n = p.cleaned.split('/').count();
            if n <= parent_dirs.len() {
                m = p.matches(&parent_dirs[..n].join("/"));
            }
        }
        if m {
            matched = !p.exclusion;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum T {
        Fail,
        Exact,
        Inexact,
    }

    fn pm(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).unwrap_or_else(|e| panic!("{patterns:?}: {e}"))
    }

    /// Same check as moby's `Matches(file, patterns)` test helper: clean, "." never matches.
    fn moby_matches(file: &str, patterns: &[&str]) -> Result<bool, PatternError> {
        let m = PatternMatcher::new(patterns)?;
        let file = go_clean(file);
        if file == "." {
            return Ok(false);
        }
        Ok(m.matches_or_parent_matches(&file))
    }

    // moby/patternmatcher TestMatches.
    const CASES: &[(&str, &str, T)] = &[
        ("**", "file", T::Exact),
        ("**", "file/", T::Exact),
        ("**/", "file", T::Exact),
        ("**/", "file/", T::Exact),
        ("**", "/", T::Exact),
        ("**/", "/", T::Exact),
        ("**", "dir/file", T::Exact),
        ("**/", "dir/file", T::Exact),
        ("**", "dir/file/", T::Exact),
        ("**/", "dir/file/", T::Exact),
        ("**/**", "dir/file", T::Exact),
        ("**/**", "dir/file/", T::Exact),
        ("dir/**", "dir/file", T::Exact),
        ("dir/**", "dir/file/", T::Exact),
        ("dir/**", "dir/dir2/file", T::Exact),
        ("dir/**", "dir/dir2/file/", T::Exact),
        ("**/dir", "dir", T::Exact),
        ("**/dir", "dir/file", T::Inexact),
        ("**/dir2/*", "dir/dir2/file", T::Exact),
        ("**/dir2/*", "dir/dir2/file/", T::Inexact),
        ("**/dir2/**", "dir/dir2/dir3/file", T::Exact),
        ("**/dir2/**", "dir/dir2/dir3/file/", T::Exact),
        ("**file", "file", T::Exact),
        ("**file", "dir/file", T::Exact),
        ("**/file", "dir/file", T::Exact),
        ("**file", "dir/dir/file", T::Exact),
        ("**/file", "dir/dir/file", T::Exact),
        ("**/file*", "dir/dir/file", T::Exact),
        ("**/file*", "dir/dir/file.txt", T::Exact),
        ("**/file*txt", "dir/dir/file.txt", T::Exact),
        ("**/file*.txt", "dir/dir/file.txt", T::Exact),
        ("**/file*.txt*", "dir/dir/file.txt", T::Exact),
        ("**/**/*.txt", "dir/dir/file.txt", T::Exact),
        ("**/**/*.txt2", "dir/dir/file.txt", T::Fail),
        ("**/*.txt", "file.txt", T::Exact),
        ("**/**/*.txt", "file.txt", T::Exact),
        ("a**/*.txt", "a/file.txt", T::Exact),
        ("a**/*.txt", "a/dir/file.txt", T::Exact),
        ("a**/*.txt", "a/dir/dir/file.txt", T::Exact),
        ("a/*.txt", "a/dir/file.txt", T::Fail),
        ("a/*.txt", "a/file.txt", T::Exact),
        ("a/*.txt**", "a/file.txt", T::Exact),
        ("a[b-d]e", "ae", T::Fail),
        ("a[b-d]e", "ace", T::Exact),
        ("a[b-d]e", "aae", T::Fail),
        ("a[^b-d]e", "aze", T::Exact),
        (".*", ".foo", T::Exact),
        (".*", "foo", T::Fail),
        ("abc.def", "abcdef", T::Fail),
        ("abc.def", "abc.def", T::Exact),
        ("abc.def", "abcZdef", T::Fail),
        ("abc?def", "abcZdef", T::Exact),
        ("abc?def", "abcdef", T::Fail),
        ("**/foo/bar", "foo/bar", T::Exact),
        ("**/foo/bar", "dir/foo/bar", T::Exact),
        ("**/foo/bar", "dir/dir2/foo/bar", T::Exact),
        ("abc/**", "abc", T::Fail),
        ("abc/**", "abc/def", T::Exact),
        ("abc/**", "abc/def/ghi", T::Exact),
        ("**/.foo", ".foo", T::Exact),
        ("**/.foo", "bar.foo", T::Fail),
        ("a(b)c/def", "a(b)c/def", T::Exact),
        ("a(b)c/def", "a(b)c/xyz", T::Fail),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", T::Exact),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            T::Exact,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            T::Exact,
        ),
        ("a\\\\", "a\\", T::Exact),
        ("a\\*b", "a*b", T::Exact),
    ];

    const MULTI: &[(&[&str], &str, T)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", T::Fail),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            T::Exact,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            T::Fail,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            T::Fail,
        ),
    ];

    #[test]
    fn matches_exact_cases() {
        for (pattern, text, pass) in CASES {
            let m = pm(&[pattern]);
            assert_eq!(
                m.matches_exact(text),
                *pass == T::Exact,
                "pattern={pattern:?} text={text:?}"
            );
        }
    }

    #[test]
    fn matches_or_parent_matches_cases() {
        for (pattern, text, pass) in CASES {
            let m = pm(&[pattern]);
            assert_eq!(
                m.matches_or_parent_matches(text),
                *pass != T::Fail,
                "pattern={pattern:?} text={text:?}"
            );
        }
        for (patterns, text, pass) in MULTI {
            let m = pm(patterns);
            assert_eq!(
                m.matches_or_parent_matches(text),
                *pass != T::Fail,
                "patterns={patterns:?} text={text:?}"
            );
        }
    }

    fn using_parent_results(m: &PatternMatcher, text: &str) -> bool {
        let parent = parent_of(text);
        let mut info = MatchInfo::default();
        if parent != "." {
            let dirs: Vec<&str> = parent.split('/').collect();
            for i in 0..dirs.len() {
                info = m
                    .matches_using_parent_results(&dirs[..=i].join("/"), &info)
                    .1;
            }
        }
        m.matches_using_parent_results(text, &info).0
    }

    #[test]
    fn matches_using_parent_results_cases() {
        for (pattern, text, pass) in CASES {
            let m = pm(&[pattern]);
            assert_eq!(
                using_parent_results(&m, text),
                *pass != T::Fail,
                "pattern={pattern:?} text={text:?}"
            );
            // No context: falls back to checking the parents.
            assert_eq!(
                m.matches_using_parent_results(text, &MatchInfo::default())
                    .0,
                *pass != T::Fail,
                "no context: pattern={pattern:?} text={text:?}"
            );
        }
        for (patterns, text, pass) in MULTI {
            let m = pm(patterns);
            assert_eq!(
                using_parent_results(&m, text),
                *pass != T::Fail,
                "patterns={patterns:?} text={text:?}"
            );
        }
    }

    #[test]
    fn simple_moby_cases() {
        assert!(moby_matches("fileutils.go", &["*"]).unwrap());
        assert!(moby_matches("fileutils.go", &["*.go"]).unwrap());
        assert!(moby_matches("fileutils.go", &["!fileutils.go", "*.go"]).unwrap());
        assert!(!moby_matches("docs/README.md", &["docs", "!docs/README.md"]).unwrap());
        assert!(!moby_matches("docs/README.md", &["docs/", "!docs/README.md"]).unwrap());
        assert!(!moby_matches("docs/README.md", &["docs/*", "!docs/README.md"]).unwrap());
        assert!(!moby_matches("fileutils.go", &["*.go", "!fileutils.go"]).unwrap());
        assert!(!moby_matches(".", &["*.go"]).unwrap());
        assert!(moby_matches("fileutils.go", &["!"]).is_err());
        assert!(!moby_matches("/any/path/there", &[]).unwrap());
        assert!(moby_matches("/any/path/there", &["["]).is_err());
    }

    #[test]
    fn clean_patterns() {
        assert_eq!(pm(&["docs", "config"]).patterns().len(), 2);
        assert_eq!(pm(&["docs", "config", ""]).patterns().len(), 2);
        assert!(pm(&["docs", "!docs/README.md"]).has_exclusions());
        assert!(pm(&["docs", "  !docs/README.md"]).has_exclusions());
        assert!(pm(&["docs", "!docs/README.md  "]).has_exclusions());
        assert!(!pm(&["docs"]).has_exclusions());
        assert!(PatternMatcher::new(&["!"]).is_err());
    }

    // Go's filepath.Match tests, as moby's TestMatch runs them.
    #[test]
    fn go_match_cases() {
        let cases: &[(&str, &str, Result<bool, ()>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(true)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(())),
            ("[-]", "-", Err(())),
            ("[x-]", "x", Err(())),
            ("[x-]", "-", Err(())),
            ("[x-]", "z", Err(())),
            ("[-x]", "x", Err(())),
            ("[-x]", "-", Err(())),
            ("[-x]", "a", Err(())),
            ("\\", "a", Err(())),
            ("[a-b-c]", "a", Err(())),
            ("[", "a", Err(())),
            ("[^", "a", Err(())),
            ("[^bc", "a", Err(())),
            ("a[", "a", Err(())),
            ("a[", "ab", Err(())),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, s, want) in cases {
            let got = moby_matches(s, &[pattern]).map_err(|_| ());
            assert_eq!(got, *want, "Match({pattern:?}, {s:?})");
        }
    }

    #[test]
    fn match_types_like_moby_compile() {
        let kind = |p: &str| pm(&[p]).patterns()[0].match_type.clone();
        assert_eq!(kind("*"), MatchType::Regexp);
        assert_eq!(kind("**"), MatchType::Suffix);
        assert_eq!(kind("**/**"), MatchType::Regexp);
        assert_eq!(kind("dir/**"), MatchType::Prefix);
        assert_eq!(kind("**/dir"), MatchType::Suffix);
        assert_eq!(kind("**file"), MatchType::Suffix);
        assert_eq!(kind("abc"), MatchType::Exact);
        assert_eq!(kind("a[b-d]e"), MatchType::Regexp);
        // The suffix fast path: "**file" matches any path ending in "file".
        assert!(pm(&["**file"]).matches_exact("dir/myfile"));
        assert!(!pm(&["**/file"]).matches_exact("dir/myfile"));
    }

    #[test]
    fn dockerignore_reader() {
        let text = "\u{feff}# comment\n  # not a comment\n\n/abs/path\n! keep/me \r\nfoo//bar/./baz/\n..\n*.log\n!\n";
        assert_eq!(
            parse_dockerignore(text),
            vec![
                "# not a comment",
                "abs/path",
                "!keep/me",
                "foo/bar/baz",
                "..",
                "*.log",
                "!",
            ]
        );
        // "/" alone stays "/" (len 1), as in buildkit.
        assert_eq!(parse_dockerignore("/\n"), vec!["/"]);
        // A lone "!" is rejected when compiled.
        assert!(PatternMatcher::new(&parse_dockerignore("!\n")).is_err());
    }

    #[test]
    fn go_clean_cases() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("a/b/", "a/b"),
            ("a//b", "a/b"),
            ("./a/./b", "a/b"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("**/", "**"),
        ] {
            assert_eq!(go_clean(input), want, "{input:?}");
        }
    }

    #[test]
    fn parent_of_cases() {
        assert_eq!(parent_of("a"), ".");
        assert_eq!(parent_of("a/b"), "a");
        assert_eq!(parent_of("a/b/c"), "a/b");
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("file/"), "file");
    }

    #[test]
    fn excluded_dir_with_exception_is_walked() {
        let m = pm(&["docs", "!docs/keep.md"]);
        assert!(m.matches_or_parent_matches("docs"));
        assert!(m.must_walk_excluded_dir("docs"));
        assert!(!m.must_walk_excluded_dir("doc"));
        assert!(!m.matches_or_parent_matches("docs/keep.md"));
        assert!(m.matches_or_parent_matches("docs/other.md"));
        assert!(!pm(&["docs"]).must_walk_excluded_dir("docs"));
    }

    #[test]
    fn cli_exception_check_for_build_files() {
        assert!(cli_matches("Dockerfile", &pm(&["*"])));
        assert!(cli_matches(".dockerignore", &pm(&[".*"])));
        assert!(!cli_matches("Dockerfile", &pm(&["*.md"])));
        assert!(cli_matches("build/Dockerfile", &pm(&["build"])));
    }
}
