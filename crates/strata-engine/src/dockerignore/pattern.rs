//! One `.dockerignore` pattern: Go `filepath.Match` syntax with `**`,
//! compiled to tokens and matched against a path.

use super::*;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
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
    pub(super) match_type: MatchType,
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

    pub(super) fn new(cleaned: String, exclusion: bool) -> Result<Pattern, PatternError> {
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
pub(super) fn validate(pattern: &str) -> Result<(), &'static str> {
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
pub(super) fn parse_class(chars: &[char], mut i: usize) -> Result<(Tok, usize), &'static str> {
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
pub(super) fn class_char(chars: &[char], i: &mut usize) -> Result<char, &'static str> {
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
pub(super) fn compile(pattern: &str) -> Result<(MatchType, Vec<Tok>), &'static str> {
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
pub(super) fn match_toks(
    toks: &[Tok],
    s: &[char],
    ti: usize,
    si: usize,
    seen: &mut [bool],
) -> bool {
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
