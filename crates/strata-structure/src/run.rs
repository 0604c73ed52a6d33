//! Running a structure-test file's tests against one container of the image
//! under test, reached through the [`Container`] trait.

use crate::expand::expand;
use crate::mode::go_file_mode;
use crate::types::{
    CommandTest, ExecutableBy, FileContentTest, FileExistenceTest, MetadataTest, Pattern,
    StructureFile,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::future::Future;
use std::time::Instant;

/// What the runner needs from a container of the image under test. One
/// container serves every test of an image, so what a command test's
/// `setup` changes stays for the tests after it (CST, which starts a
/// container per test, would not see it); `teardown` can undo it.
pub trait Container {
    /// Why the container could not do what was asked (e.g. the engine went
    /// away). It fails the test case at hand, with this text as the reason.
    type Error: Display;

    /// Runs `argv` (no shell; `argv[0]` is the program) with extra
    /// environment variables, on top of the image's, applied in order (a
    /// key appears at most once); returns stdout, stderr and the exit code.
    /// The image's entrypoint is not involved, as in CST.
    fn exec(
        &self,
        argv: &[String],
        env: &[(String, String)],
    ) -> impl Future<Output = Result<ExecOutput, Self::Error>> + Send;

    /// The file or directory at `path` (not following a final symlink), or
    /// `None` when absent.
    fn stat(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<FileStat>, Self::Error>> + Send;

    /// The content of the regular file at `path` (following symlinks), or
    /// `None` when absent.
    fn read_file(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Self::Error>> + Send;
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its exit code.
    pub exit_code: i64,
}

impl ExecOutput {
    /// True when the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// What a file-existence test looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStat {
    /// The unix `st_mode`: type bits (`S_IFDIR`, `S_IFLNK`, ...) and
    /// permission bits (with setuid, setgid, sticky). For a mode in Go's
    /// encoding (Docker's container path stat), see
    /// [`crate::st_mode_from_go`].
    pub mode: u32,
    /// The owner's numeric id.
    pub uid: u64,
    /// The group's numeric id.
    pub gid: u64,
}

impl FileStat {
    /// The permission bits, setuid, setgid and sticky included.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFREG
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFDIR
    }

    /// True for a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFLNK
    }
}

/// The image's config as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Environment variables, each `KEY=VALUE`.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The entrypoint, if any.
    pub entrypoint: Option<Vec<String>>,
    /// The cmd, if any.
    pub cmd: Option<Vec<String>>,
    /// Exposed ports, each `PORT/PROTOCOL` (`8888/tcp`).
    pub exposed_ports: Vec<String>,
    /// Declared volumes.
    pub volumes: Vec<String>,
    /// The working directory (empty when unset).
    pub workdir: String,
    /// The user (empty when unset).
    pub user: String,
}

/// What a test case tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An entry of `commandTests`.
    Command,
    /// An entry of `fileExistenceTests`.
    FileExistence,
    /// An entry of `fileContentTests`.
    FileContent,
    /// The `metadataTest`.
    Metadata,
}

impl Kind {
    /// The words CST uses for the kind: `Command Test`, `File Existence
    /// Test`, `File Content Test`, `Metadata Test`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Command => "Command Test",
            Kind::FileExistence => "File Existence Test",
            Kind::FileContent => "File Content Test",
            Kind::Metadata => "Metadata Test",
        }
    }
}

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseResult {
    /// The test's name (`Metadata Test` for the metadata test).
    pub name: String,
    /// What it tested.
    pub kind: Kind,
    /// Whether every check held.
    pub passed: bool,
    /// Each check that failed, and why; empty when passed.
    pub failures: Vec<String>,
    /// For command tests, the command's stdout then stderr, after notes on
    /// setup and teardown commands that did not exit 0; empty otherwise.
    pub output: String,
    /// How long the case took, in seconds.
    pub duration_secs: f64,
}

/// Runs every test of `file`: command tests (setup commands first, then the
/// command, then teardown, in the one container), file existence, file
/// content, metadata; one [`CaseResult`] per test case, in file order. A
/// container error fails the case at hand, with the error as its failure.
pub async fn run<C: Container + Sync>(
    file: &StructureFile,
    container: &C,
    config: &ImageConfig,
) -> Vec<CaseResult> {
    let env = Env::new(file, config);
    let mut out = Vec::with_capacity(file.len());
    for test in &file.command_tests {
        out.push(command_case(test, container, &env).await);
    }
    for test in &file.file_existence_tests {
        out.push(existence_case(test, container, &env).await);
    }
    for test in &file.file_content_tests {
        out.push(content_case(test, container).await);
    }
    if let Some(test) = &file.metadata_test {
        out.push(metadata_case(test, config));
    }
    out
}

/// The environment tests see: the image's variables with `globalEnvVars`
/// over them (for `$VAR` substitution), and the global variables alone (set
/// for every command).
struct Env {
    vars: HashMap<String, String>,
    globals: Vec<(String, String)>,
}

impl Env {
    fn new(file: &StructureFile, config: &ImageConfig) -> Env {
        let image = env_map(&config.env);
        // CST sets global variables on the image, their values expanded
        // against the image's own environment.
        let globals: Vec<(String, String)> = file
            .global_env_vars
            .iter()
            .map(|v| (v.key.clone(), expand(&v.value, &image)))
            .collect();
        let mut vars = image;
        for (k, v) in &globals {
            vars.insert(k.clone(), v.clone());
        }
        Env {
            vars,
            globals: merge(&[], &globals),
        }
    }
}

/// `KEY=VALUE` entries as a map; a later entry wins, an entry without `=`
/// has an empty value.
fn env_map(env: &[String]) -> HashMap<String, String> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

/// `base` then `over`, each key once, a later value winning.
fn merge(base: &[(String, String)], over: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(base.len() + over.len());
    for (k, v) in base.iter().chain(over) {
        out.retain(|(seen, _)| seen != k);
        out.push((k.clone(), v.clone()));
    }
    out
}

/// A test case being run.
struct Case {
    name: String,
    kind: Kind,
    start: Instant,
    failures: Vec<String>,
    output: String,
}

impl Case {
    fn new(name: &str, kind: Kind) -> Case {
        Case {
            name: name.to_string(),
            kind,
            start: Instant::now(),
            failures: Vec::new(),
            output: String::new(),
        }
    }

    fn fail(&mut self, reason: impl Into<String>) {
        self.failures.push(reason.into());
    }

    /// Adds a line of commentary (about setup or teardown) to the output,
    /// then what that command printed.
    fn note(&mut self, line: &str, printed: Option<&ExecOutput>) {
        self.output.push_str(&format!("[{line}]\n"));
        if let Some(out) = printed {
            push_output(&mut self.output, out);
        }
    }

    fn finish(self) -> CaseResult {
        CaseResult {
            name: self.name,
            kind: self.kind,
            passed: self.failures.is_empty(),
            failures: self.failures,
            output: self.output,
            duration_secs: self.start.elapsed().as_secs_f64(),
        }
    }
}

/// Appends stdout then stderr, each ending in a newline when not empty.
fn push_output(buf: &mut String, out: &ExecOutput) {
    for text in [&out.stdout, &out.stderr] {
        if !text.is_empty() {
            buf.push_str(text);
            if !text.ends_with('\n') {
                buf.push('\n');
            }
        }
    }
}

/// An argv as a reader would type it: `sh -c "echo hi"`.
fn show_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Matched text for a message, quoted and cut to a readable length.
fn snippet(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}...")
    }
}

async fn command_case<C: Container + Sync>(test: &CommandTest, c: &C, env: &Env) -> CaseResult {
    let mut case = Case::new(&test.name, Kind::Command);
    let own: Vec<(String, String)> = test
        .env_vars
        .iter()
        .map(|v| (v.key.clone(), expand(&v.value, &env.vars)))
        .collect();
    let exec_env = merge(&env.globals, &own);

    for argv in &test.setup {
        match c.exec(argv, &exec_env).await {
            // CST does not check setup commands' exit codes.
            Ok(out) if out.exit_code != 0 => case.note(
                &format!(
                    "setup command {} exited with code {}",
                    show_argv(argv),
                    out.exit_code
                ),
                Some(&out),
            ),
            Ok(_) => {}
            Err(e) => {
                case.fail(format!(
                    "setup command {} could not run: {e}",
                    show_argv(argv)
                ));
                return case.finish();
            }
        }
    }

    let argv: Vec<String> = std::iter::once(&test.command)
        .chain(&test.args)
        .map(|a| expand(a, &env.vars))
        .collect();
    match c.exec(&argv, &exec_env).await {
        Ok(out) => {
            push_output(&mut case.output, &out);
            check_command(test, &out, &mut case);
        }
        Err(e) => case.fail(format!("command {} could not run: {e}", show_argv(&argv))),
    }

    // Teardown runs without the test's own variables and, as in CST, its
    // outcome does not decide the test.
    for argv in &test.teardown {
        match c.exec(argv, &env.globals).await {
            Ok(out) if out.exit_code != 0 => case.note(
                &format!(
                    "teardown command {} exited with code {}",
                    show_argv(argv),
                    out.exit_code
                ),
                Some(&out),
            ),
            Ok(_) => {}
            Err(e) => case.note(
                &format!("teardown command {} could not run: {e}", show_argv(argv)),
                None,
            ),
        }
    }
    case.finish()
}

/// The checks of a command test, in CST's order.
fn check_command(test: &CommandTest, out: &ExecOutput, case: &mut Case) {
    expect(
        &test.expected_error,
        &out.stderr,
        "expected error",
        "stderr",
        case,
    );
    exclude(
        &test.excluded_error,
        &out.stderr,
        "excluded error",
        "stderr",
        case,
    );
    expect(
        &test.expected_output,
        &out.stdout,
        "expected output",
        "stdout",
        case,
    );
    exclude(
        &test.excluded_output,
        &out.stdout,
        "excluded output",
        "stdout",
        case,
    );
    if out.exit_code != test.exit_code {
        case.fail(format!(
            "exit code {}, expected {}",
            out.exit_code, test.exit_code
        ));
    }
}

fn expect(patterns: &[Pattern], text: &str, what: &str, place: &str, case: &mut Case) {
    for p in patterns {
        if !p.is_match(text) {
            case.fail(format!("{what} {p} not found in {place}"));
        }
    }
}

fn exclude(patterns: &[Pattern], text: &str, what: &str, place: &str, case: &mut Case) {
    for p in patterns {
        if let Some(found) = p.find(text) {
            case.fail(format!("{what} {p} found in {place}: {}", snippet(found)));
        }
    }
}

async fn existence_case<C: Container + Sync>(
    test: &FileExistenceTest,
    c: &C,
    env: &Env,
) -> CaseResult {
    let mut case = Case::new(&test.name, Kind::FileExistence);
    let path = expand(&test.path, &env.vars);
    match c.stat(&path).await {
        Err(e) => case.fail(format!("could not examine {path}: {e}")),
        Ok(None) => {
            if test.should_exist {
                case.fail(format!("{path} does not exist"));
            }
        }
        Ok(Some(_)) if !test.should_exist => case.fail(format!("{path} exists but should not")),
        Ok(Some(stat)) => check_stat(test, &path, stat, &mut case),
    }
    case.finish()
}

fn check_stat(test: &FileExistenceTest, path: &str, stat: FileStat, case: &mut Case) {
    let actual = go_file_mode(stat.mode);
    if let Some(want) = &test.permissions {
        if *want != actual {
            case.fail(format!("{path} has permissions {actual}, expected {want}"));
        }
    }
    if let Some(by) = test.is_executable_by {
        if stat.mode & by.mask() == 0 {
            let who = match by {
                ExecutableBy::Any => "anyone",
                ExecutableBy::Owner => "its owner",
                ExecutableBy::Group => "its group",
                ExecutableBy::Other => "others",
            };
            case.fail(format!(
                "{path} is not executable by {who} (permissions {actual})"
            ));
        }
    }
    if let Some(want) = test.uid {
        if stat.uid != want {
            case.fail(format!("{path} has uid {}, expected {want}", stat.uid));
        }
    }
    if let Some(want) = test.gid {
        if stat.gid != want {
            case.fail(format!("{path} has gid {}, expected {want}", stat.gid));
        }
    }
}

async fn content_case<C: Container + Sync>(test: &FileContentTest, c: &C) -> CaseResult {
    let mut case = Case::new(&test.name, Kind::FileContent);
    let path = &test.path;
    match c.read_file(path).await {
        Err(e) => case.fail(format!("could not read {path}: {e}")),
        Ok(None) => case.fail(format!("{path} does not exist")),
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            expect(
                &test.expected_contents,
                &text,
                "expected content",
                path,
                &mut case,
            );
            exclude(
                &test.excluded_contents,
                &text,
                "excluded content",
                path,
                &mut case,
            );
        }
    }
    case.finish()
}

fn metadata_case(test: &MetadataTest, config: &ImageConfig) -> CaseResult {
    let mut case = Case::new(Kind::Metadata.label(), Kind::Metadata);
    let env = env_map(&config.env);
    for kv in &test.env_vars {
        match env.get(&kv.key) {
            None => case.fail(format!("env var {} is not set in the image", kv.key)),
            Some(actual) if !kv.value.matches(actual) => case.fail(format!(
                "env var {} is {actual:?}, expected {}",
                kv.key, kv.value
            )),
            Some(_) => {}
        }
    }
    for key in &test.unbound_env_vars {
        if let Some(actual) = env.get(key) {
            case.fail(format!(
                "env var {key} is set (to {actual:?}) but should not be"
            ));
        }
    }
    for kv in &test.labels {
        match config.labels.get(&kv.key) {
            None => case.fail(format!("label {} is not set on the image", kv.key)),
            Some(actual) if !kv.value.matches(actual) => case.fail(format!(
                "label {} is {actual:?}, expected {}",
                kv.key, kv.value
            )),
            Some(_) => {}
        }
    }
    check_list(
        &test.entrypoint,
        &config.entrypoint,
        "entrypoint",
        &mut case,
    );
    check_list(&test.cmd, &config.cmd, "cmd", &mut case);
    if let Some(want) = &test.workdir {
        if *want != config.workdir {
            case.fail(format!(
                "workdir is {:?}, expected {want:?}",
                config.workdir
            ));
        }
    }
    if let Some(want) = &test.user {
        if *want != config.user {
            case.fail(format!("user is {:?}, expected {want:?}", config.user));
        }
    }
    for port in &test.exposed_ports {
        if !port_exposed(port, &config.exposed_ports) {
            case.fail(format!("port {port} is not exposed"));
        }
    }
    for port in &test.unexposed_ports {
        if port_exposed(port, &config.exposed_ports) {
            case.fail(format!("port {port} is exposed but should not be"));
        }
    }
    for volume in &test.volumes {
        if !config.volumes.contains(volume) {
            case.fail(format!("volume {volume} is not declared"));
        }
    }
    for volume in &test.unmounted_volumes {
        if config.volumes.contains(volume) {
            case.fail(format!("volume {volume} is declared but should not be"));
        }
    }
    case.finish()
}

/// `entrypoint`/`cmd`: when given, the image's list must equal it (an
/// absent list counts as empty).
fn check_list(
    want: &Option<Vec<String>>,
    actual: &Option<Vec<String>>,
    what: &str,
    case: &mut Case,
) {
    let Some(want) = want else { return };
    let actual = actual.as_deref().unwrap_or(&[]);
    if want.as_slice() != actual {
        case.fail(format!("{what} is {actual:?}, expected {want:?}"));
    }
}

/// Whether `port` is exposed: CST compares port numbers only (`8888`
/// matches `8888/tcp`); a port written with its protocol must match both.
fn port_exposed(port: &str, exposed: &[String]) -> bool {
    exposed.iter().any(|e| {
        if port.contains('/') {
            e == port
        } else {
            e.split('/').next() == Some(port)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_each_key_once_later_winning() {
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        let merged = merge(
            &[kv("A", "1"), kv("B", "2")],
            &[kv("A", "3"), kv("C", "4"), kv("C", "5")],
        );
        assert_eq!(merged, vec![kv("B", "2"), kv("A", "3"), kv("C", "5")]);
    }

    #[test]
    fn env_entries_split_at_the_first_equals() {
        let map = env_map(&["A=b=c".into(), "EMPTY=".into(), "BARE".into(), "A=d".into()]);
        assert_eq!(map["A"], "d");
        assert_eq!(map["EMPTY"], "");
        assert_eq!(map["BARE"], "");
    }

    #[test]
    fn ports_match_by_number_or_with_protocol() {
        let exposed = vec!["8888/tcp".to_string(), "53/udp".to_string()];
        assert!(port_exposed("8888", &exposed));
        assert!(port_exposed("8888/tcp", &exposed));
        assert!(!port_exposed("8888/udp", &exposed));
        assert!(port_exposed("53", &exposed));
        assert!(!port_exposed("888", &exposed));
    }

    #[test]
    fn argv_and_snippets_read_well() {
        let argv = [
            "sh".to_string(),
            "-c".into(),
            "echo hi".into(),
            String::new(),
        ];
        assert_eq!(show_argv(&argv), r#"sh -c "echo hi" """#);
        assert_eq!(snippet("abc"), "\"abc\"");
        assert!(snippet(&"x".repeat(200)).ends_with("\"..."));
    }
}
