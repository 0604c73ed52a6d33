//! The `.dockerignore` reader's and matcher's unit tests, from moby's and
//! Go's own test tables.

use super::pattern::*;
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
