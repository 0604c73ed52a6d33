//! The tests of a structure-test file, as [`crate::parse`] reads them.

use std::fmt;

/// A regular expression from a structure-test file, matched anywhere in the
/// text it is tested against (CST's `regexp.MatchString`: not anchored).
///
/// The syntax is Go's RE2, which the `regex` crate shares; one difference is
/// that `\d`, `\w` and `\s` also match non-ASCII digits, letters and spaces.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: regex::Regex,
}

/// Why a [`Pattern`] could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PatternError {
    /// What is wrong with the expression, in one line.
    pub reason: String,
}

impl Pattern {
    /// Compiles `text` as a regular expression.
    pub fn new(text: &str) -> Result<Pattern, PatternError> {
        regex::Regex::new(text)
            .map(|regex| Pattern { regex })
            .map_err(|e| PatternError {
                reason: one_line(&e.to_string()),
            })
    }

    /// The expression as written in the file.
    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the expression matches anywhere in `haystack`.
    pub fn is_match(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack)
    }

    /// The first text in `haystack` the expression matches.
    pub fn find<'h>(&self, haystack: &'h str) -> Option<&'h str> {
        self.regex.find(haystack).map(|m| m.as_str())
    }
}

/// The `regex` crate explains syntax errors over several lines (the
/// expression, a caret, then `error: ...`); a diagnostic wants the last.
fn one_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "))
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Display for Pattern {
    /// The expression between slashes: `/Usage.*/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.as_str())
    }
}

/// An environment variable to set (`globalEnvVars`, a command test's
/// `envVars`). Its value may refer to the image's variables (`$PATH`,
/// `${HOME}`), which are substituted before the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub key: String,
    /// Its value, before substitution.
    pub value: String,
}

/// One entry of `commandTests`: a program run in the container, its output
/// and exit code checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTest {
    /// The test's name.
    pub name: String,
    /// Commands (argv lists) run before `command`, in order. Their exit
    /// codes are not checked, as in CST.
    pub setup: Vec<Vec<String>>,
    /// Commands (argv lists) after `command`: read, and not run, as CST's
    /// docker driver does not run them (each test has containers of its
    /// own, so there is nothing to undo).
    pub teardown: Vec<Vec<String>>,
    /// Variables set for the setup commands and the command.
    pub env_vars: Vec<EnvVar>,
    /// The program to run. It and `args` have `$VAR` / `${VAR}` replaced by
    /// the image's environment before running, as CST does (even inside
    /// `sh -c` scripts).
    pub command: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The exit code the command must end with (default 0).
    pub exit_code: i64,
    /// Expressions that must match stdout.
    pub expected_output: Vec<Pattern>,
    /// Expressions that must not match stdout.
    pub excluded_output: Vec<Pattern>,
    /// Expressions that must match stderr.
    pub expected_error: Vec<Pattern>,
    /// Expressions that must not match stderr.
    pub excluded_error: Vec<Pattern>,
}

/// Who must be able to execute a file (`isExecutableBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutableBy {
    /// Anyone: at least one of the three execute bits.
    Any,
    /// The owner's execute bit.
    Owner,
    /// The group's execute bit.
    Group,
    /// Others' execute bit.
    Other,
}

impl ExecutableBy {
    /// Every accepted value, as written in a file.
    pub const NAMES: [&'static str; 4] = ["any", "owner", "group", "other"];

    /// The value as written in a file.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutableBy::Any => "any",
            ExecutableBy::Owner => "owner",
            ExecutableBy::Group => "group",
            ExecutableBy::Other => "other",
        }
    }

    /// The value written `text`, if it is one.
    pub fn from_name(text: &str) -> Option<ExecutableBy> {
        match text {
            "any" => Some(ExecutableBy::Any),
            "owner" => Some(ExecutableBy::Owner),
            "group" => Some(ExecutableBy::Group),
            "other" => Some(ExecutableBy::Other),
            _ => None,
        }
    }

    /// The permission bits of which at least one must be set.
    pub fn mask(self) -> u32 {
        match self {
            ExecutableBy::Any => 0o111,
            ExecutableBy::Owner => 0o100,
            ExecutableBy::Group => 0o010,
            ExecutableBy::Other => 0o001,
        }
    }
}

/// One entry of `fileExistenceTests`: whether a path exists, and its mode
/// and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileExistenceTest {
    /// The test's name.
    pub name: String,
    /// The path; `$VAR` is replaced by the image's environment, as in CST.
    pub path: String,
    /// Whether the path must exist (default true) or must not.
    pub should_exist: bool,
    /// The mode as Go renders it (`-rw-r--r--`, `drwxr-xr-x`), see
    /// [`crate::go_file_mode`].
    pub permissions: Option<String>,
    /// The owner's numeric id.
    pub uid: Option<u64>,
    /// The group's numeric id.
    pub gid: Option<u64>,
    /// Who must be able to execute it.
    pub is_executable_by: Option<ExecutableBy>,
}

/// One entry of `fileContentTests`: what a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContentTest {
    /// The test's name.
    pub name: String,
    /// The file's path, used as written: CST substitutes no variables here.
    pub path: String,
    /// Expressions that must match the content.
    pub expected_contents: Vec<Pattern>,
    /// Expressions that must not match the content.
    pub excluded_contents: Vec<Pattern>,
}

/// What a metadata value must be: exactly some text, or matched by an
/// expression (`isRegex: true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// The value must be this text.
    Exact(String),
    /// The expression must match somewhere in the value.
    Regex(Pattern),
}

impl ValueMatch {
    /// Whether `actual` satisfies this.
    pub fn matches(&self, actual: &str) -> bool {
        match self {
            ValueMatch::Exact(text) => text == actual,
            ValueMatch::Regex(pattern) => pattern.is_match(actual),
        }
    }
}

impl ValueMatch {
    /// The value as the file gives it: the text, or the expression.
    pub fn as_written(&self) -> &str {
        match self {
            ValueMatch::Exact(text) => text,
            ValueMatch::Regex(pattern) => pattern.as_str(),
        }
    }
}

impl fmt::Display for ValueMatch {
    /// `'text'` or `/expression/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueMatch::Exact(text) => write!(f, "{text:?}"),
            ValueMatch::Regex(pattern) => pattern.fmt(f),
        }
    }
}

/// An environment variable or label the image must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The variable's or label's name.
    pub key: String,
    /// What its value must be.
    pub value: ValueMatch,
}

/// The `metadataTest`: the image's configuration. Lists are checked item by
/// item; `None` and empty text mean "not checked".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataTest {
    /// Variables the image's environment must hold (`envVars`).
    pub env_vars: Vec<KeyValue>,
    /// Variables the image's environment must not hold (`unboundEnvVars`).
    pub unbound_env_vars: Vec<String>,
    /// Labels the image must carry.
    pub labels: Vec<KeyValue>,
    /// Ports that must be exposed: `8888` (any protocol, as CST compares
    /// port numbers) or `8888/udp` (that protocol).
    pub exposed_ports: Vec<String>,
    /// Ports that must not be exposed, written as in `exposed_ports`.
    pub unexposed_ports: Vec<String>,
    /// The exact entrypoint; `Some(vec![])` means "none".
    pub entrypoint: Option<Vec<String>>,
    /// The exact cmd; `Some(vec![])` means "none".
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    pub workdir: Option<String>,
    /// Volumes the image must declare.
    pub volumes: Vec<String>,
    /// Volumes the image must not declare (`unmountedVolumes`).
    pub unmounted_volumes: Vec<String>,
    /// The user.
    pub user: Option<String>,
}

impl MetadataTest {
    /// Whether nothing is checked; CST skips such a metadata test.
    pub fn is_empty(&self) -> bool {
        self == &MetadataTest::default()
    }
}

/// The schema versions CST reads; they differ in keys and in how tests run
/// (see [`crate::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaVersion {
    /// `1.0.0`: a command test's `command` is the whole argv; no metadata
    /// test, no run options, no owner or executable checks.
    V1,
    /// `2.0.0`, CST's current schema.
    V2,
}

impl SchemaVersion {
    /// The version as written in a file.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::V1 => "1.0.0",
            SchemaVersion::V2 => "2.0.0",
        }
    }
}

/// One entry of `licenseTests`: Debian copyright files, and other files,
/// must not name a licence CST refuses (AGPL, WTFPL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicenseTest {
    /// Check `/usr/share/doc/<package>/copyright` of every package folder.
    pub debian: bool,
    /// Further files to check.
    pub files: Vec<String>,
}

/// `containerRunOptions`: how every container of the file is created.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunOptions {
    /// The user commands run as (`user`).
    pub user: Option<String>,
    /// Privileged containers (`privileged`).
    pub privileged: bool,
    /// A terminal for the command (`allocateTty`): stderr then comes
    /// through stdout, as with `docker run -t`.
    pub allocate_tty: bool,
    /// Names of variables of strata's own environment passed to the
    /// command (`envVars`).
    pub env_vars: Vec<String>,
    /// A dotenv file whose variables are passed to the command (`envFile`),
    /// relative to the folder strata runs in, as CST reads it relative to
    /// its own.
    pub env_file: Option<String>,
    /// Kernel capabilities added to the containers (`capabilities`).
    pub capabilities: Vec<String>,
    /// Bind mounts, `host:container[:options]` (`bindMounts`).
    pub bind_mounts: Vec<String>,
}

impl RunOptions {
    /// Whether any option is given; CST applies the options (and replaces
    /// a command test's own variables by the options' ones) only then.
    pub fn is_set(&self) -> bool {
        self != &RunOptions::default()
    }
}

/// A parsed structure-test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureFile {
    /// The file, as given to [`crate::parse`].
    pub file: String,
    /// Its `schemaVersion`.
    pub schema_version: SchemaVersion,
    /// Variables set for every command test (`globalEnvVars`); they also
    /// take part in `$VAR` substitution.
    pub global_env_vars: Vec<EnvVar>,
    /// `commandTests`, in file order.
    pub command_tests: Vec<CommandTest>,
    /// `fileExistenceTests`, in file order.
    pub file_existence_tests: Vec<FileExistenceTest>,
    /// `fileContentTests`, in file order.
    pub file_content_tests: Vec<FileContentTest>,
    /// `metadataTest`, unless absent or checking nothing.
    pub metadata_test: Option<MetadataTest>,
    /// `licenseTests`, in file order.
    pub license_tests: Vec<LicenseTest>,
    /// `containerRunOptions`.
    pub run_options: RunOptions,
}

impl StructureFile {
    /// The number of test cases [`crate::run`] reports: one per command,
    /// file-existence, file-content and licence test, and one for the
    /// metadata test.
    pub fn len(&self) -> usize {
        self.command_tests.len()
            + self.file_existence_tests.len()
            + self.file_content_tests.len()
            + self.license_tests.len()
            + usize::from(self.metadata_test.is_some())
    }

    /// Whether the file holds no test case.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_and_explain_errors_in_one_line() {
        let p = Pattern::new("Usage").unwrap();
        assert!(p.is_match("apt 2.4\nUsage: apt-get [options]"));
        assert_eq!(p.find("xx Usage"), Some("Usage"));
        assert_eq!(p.to_string(), "/Usage/");
        let err = Pattern::new("(unclosed").unwrap_err();
        assert_eq!(err.reason, "unclosed group");
        assert!(!err.reason.contains('\n'));
    }

    #[test]
    fn value_matches_exactly_or_by_regex() {
        assert!(ValueMatch::Exact("a".into()).matches("a"));
        assert!(!ValueMatch::Exact("a".into()).matches("ab"));
        let re = ValueMatch::Regex(Pattern::new("[0-9]+").unwrap());
        assert!(re.matches("v12"));
        assert!(!re.matches("v"));
        assert_eq!(re.to_string(), "/[0-9]+/");
        assert_eq!(ValueMatch::Exact("x y".into()).to_string(), "\"x y\"");
    }

    #[test]
    fn executable_by_names_round_trip() {
        for name in ExecutableBy::NAMES {
            assert_eq!(ExecutableBy::from_name(name).unwrap().as_str(), name);
        }
        assert_eq!(ExecutableBy::from_name("root"), None);
    }
}
