//! Running a structure-test file as CST's docker driver runs it, over the
//! [`Driver`] trait: every test gets containers of its own, made from the
//! image under test with the file's `containerRunOptions`; a command runs
//! as the container's command (the image's entrypoint cleared, no shell);
//! files are read from the engine's archive of a container that is created
//! and never started, so an image with no shell at all is tested the same.

use crate::expand::expand;
use crate::mode::go_file_mode;
use crate::types::{
    CommandTest, FileContentTest, FileExistenceTest, LicenseTest, MetadataTest, RunOptions,
    SchemaVersion, StructureFile,
};
use std::collections::HashMap;
use std::fmt;
use std::time::Instant;

mod driver;
pub use driver::{
    ArchiveEntry, ContainerSpec, Driver, DriverError, EntryKind, ExecOutput, FileStat, HostEnv,
    HostOptions, ImageConfig, Step,
};

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
    /// An entry of `licenseTests`.
    License,
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
            Kind::License => "License Test",
            Kind::Metadata => "Metadata Test",
        }
    }
}

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseResult {
    /// The name CST reports: `Command Test: <name>`, `File Existence
    /// Test: <name>`, `File Content Test: <name>`, `License Test`,
    /// `Metadata Test`; the bare test name when its containers could not be
    /// prepared, as CST names those.
    pub name: String,
    /// What it tested.
    pub kind: Kind,
    /// Whether every check held.
    pub passed: bool,
    /// Each check that failed, in CST's words; empty when passed.
    pub failures: Vec<String>,
    /// For command tests, the command's stdout then stderr; empty
    /// otherwise.
    pub output: String,
    /// How long the case took, in seconds.
    pub duration_secs: f64,
}

/// Runs every test of `file` against `image` as CST's docker driver does:
/// command tests, file content tests, file existence tests, licence tests,
/// then the metadata test (CST's order), one [`CaseResult`] each.
///
/// Where CST would take an engine error for a missing file (a
/// `shouldExist: false` test) or drop a test, the test fails with the
/// engine's reason instead, so nothing passes for a run option the engine
/// refused.
pub async fn run<D: Driver + Sync>(
    file: &StructureFile,
    driver: &D,
    image: &str,
    host_env: &HostEnv,
) -> Vec<CaseResult> {
    let config = driver.config(image).await;
    let ctx = Ctx::new(file, image, config.as_ref().ok(), host_env);
    let mut out = Vec::with_capacity(file.len());
    for test in &file.command_tests {
        out.push(command_case(test, driver, &ctx).await);
    }
    for test in &file.file_content_tests {
        out.push(content_case(test, driver, &ctx).await);
    }
    for test in &file.file_existence_tests {
        out.push(existence_case(test, driver, &ctx).await);
    }
    for test in &file.license_tests {
        out.push(license_case(test, driver, &ctx).await);
    }
    if let Some(test) = &file.metadata_test {
        out.push(metadata_case(test, &config));
    }
    out
}

/// What every test of a file shares.
struct Ctx<'a> {
    file: &'a StructureFile,
    version: SchemaVersion,
    image: &'a str,
    options: &'a RunOptions,
    host: HostOptions,
    /// The image's environment.
    image_env: HashMap<String, String>,
    /// `globalEnvVars` (schema 2.0.0), values expanded against the image's
    /// environment, as CST commits them onto the image.
    globals: Vec<(String, String)>,
    /// The run options' variables, set instead of a command test's own.
    option_env: Vec<(String, String)>,
    /// A warning about the run options' `envFile`.
    env_file_warning: Option<String>,
}

impl<'a> Ctx<'a> {
    fn new(
        file: &'a StructureFile,
        image: &'a str,
        config: Option<&ImageConfig>,
        host_env: &HostEnv,
    ) -> Ctx<'a> {
        let image_env = config.map(|c| env_map(&c.env)).unwrap_or_default();
        let globals = match file.schema_version {
            // Schema 1.0.0 sets global variables only with a test's setup.
            SchemaVersion::V1 => Vec::new(),
            SchemaVersion::V2 => file
                .global_env_vars
                .iter()
                .map(|v| (v.key.clone(), expand(&v.value, &image_env)))
                .collect(),
        };
        let options = &file.run_options;
        let mut option_env = Vec::new();
        let mut env_file_warning = None;
        match &host_env.env_file {
            Some(Ok(vars)) => option_env.extend(
                vars.iter()
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                    .cloned(),
            ),
            Some(Err(e)) => {
                env_file_warning = Some(format!(
                    "[unable to load envFile {}: {e}]\n",
                    options.env_file.as_deref().unwrap_or_default()
                ));
            }
            None => {}
        }
        for name in &options.env_vars {
            if let Some(value) = host_env.vars.get(name).filter(|v| !v.is_empty()) {
                option_env.push((name.clone(), value.clone()));
            }
        }
        Ctx {
            file,
            version: file.schema_version,
            image,
            options,
            host: HostOptions::from(options),
            image_env,
            globals,
            option_env,
            env_file_warning,
        }
    }

    /// The image's environment with the global variables over it: what
    /// CST's `$VAR` substitution sees.
    fn env_with_globals(&self) -> HashMap<String, String> {
        let mut env = self.image_env.clone();
        env.extend(self.globals.iter().cloned());
        env
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

fn key_values(vars: &[(String, String)]) -> Vec<String> {
    vars.iter().map(|(k, v)| format!("{k}={v}")).collect()
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
    fn new(name: String, kind: Kind) -> Case {
        Case {
            name,
            kind,
            start: Instant::now(),
            failures: Vec::new(),
            output: String::new(),
        }
    }

    fn fail(&mut self, reason: impl Into<String>) {
        self.failures.push(reason.into());
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

/// The name CST reports for a test: `Command Test: python`.
fn log_name(kind: Kind, name: &str) -> String {
    format!("{}: {name}", kind.label())
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

async fn command_case<D: Driver + Sync>(test: &CommandTest, d: &D, ctx: &Ctx<'_>) -> CaseResult {
    let mut case = Case::new(log_name(Kind::Command, &test.name), Kind::Command);
    let mut env_now = ctx.env_with_globals();
    // Setup commands get the test's variables expanded against the image's
    // environment; schema 1.0.0 puts the global ones first.
    let setup_vars: Vec<(String, String)> = match ctx.version {
        SchemaVersion::V1 => ctx.image_env_vars(
            ctx.file
                .global_env_vars
                .iter()
                .chain(&test.env_vars)
                .map(|v| (v.key.as_str(), v.value.as_str())),
        ),
        SchemaVersion::V2 => test
            .env_vars
            .iter()
            .map(|v| (v.key.clone(), expand(&v.value, &env_now)))
            .collect(),
    };
    let user = ctx.options.user.clone();
    let mut committed: Vec<String> = Vec::new();
    let mut current = ctx.image.to_string();
    for argv in &test.setup {
        let spec = ContainerSpec {
            argv: argv.clone(),
            env: key_values(&[ctx.globals.clone(), setup_vars.clone()].concat()),
            user: user.clone(),
            tty: false,
            host: ctx.host.clone(),
        };
        match d.run_and_commit(&current, &spec).await {
            Ok(id) => {
                committed.push(id.clone());
                current = id;
            }
            Err(e) => {
                case.name = test.name.clone();
                case.fail(format!("error in setup: {e}"));
                remove_images(d, &committed).await;
                return case.finish();
            }
        }
    }
    if !test.setup.is_empty() {
        env_now.extend(setup_vars.iter().cloned());
    }
    let argv: Vec<String> = std::iter::once(&test.command)
        .chain(&test.args)
        .map(|a| expand(a, &env_now))
        .collect();
    // CST passes a test's own variables as written (the engine expands
    // nothing), and with run options set, the options' variables instead.
    let own: Vec<(String, String)> = if ctx.options.is_set() {
        ctx.option_env.clone()
    } else {
        test.env_vars
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect()
    };
    if ctx.options.is_set()
        && let Some(warning) = &ctx.env_file_warning
    {
        case.output.push_str(warning);
    }
    let spec = ContainerSpec {
        argv,
        env: key_values(&[ctx.globals.clone(), own].concat()),
        user,
        tty: ctx.options.allocate_tty,
        host: ctx.host.clone(),
    };
    match d.run(&current, &spec).await {
        Ok(out) => {
            push_output(&mut case.output, &out);
            check_command(test, ctx.version, &out, &mut case);
        }
        Err(e) => case.fail(e.to_string()),
    }
    remove_images(d, &committed).await;
    case.finish()
}

impl Ctx<'_> {
    /// Variables expanded against the image's own environment.
    fn image_env_vars<'v>(
        &self,
        vars: impl Iterator<Item = (&'v str, &'v str)>,
    ) -> Vec<(String, String)> {
        vars.map(|(k, v)| (k.to_string(), expand(v, &self.image_env)))
            .collect()
    }
}

/// Removes the images a test's setup committed, newest first. A failure
/// leaves an unnamed image behind, as CST's warning does, and decides
/// nothing about the test.
async fn remove_images<D: Driver + Sync>(d: &D, images: &[String]) {
    for image in images.iter().rev() {
        let _ = d.remove_image(image).await;
    }
}

/// The checks of a command test, in CST's order and words.
fn check_command(test: &CommandTest, version: SchemaVersion, out: &ExecOutput, case: &mut Case) {
    // Schema 2.0.0 quotes the text searched; 1.0.0 does not.
    let quoted = |text: &str| match version {
        SchemaVersion::V1 => String::new(),
        SchemaVersion::V2 => format!(" '{text}'"),
    };
    for p in &test.expected_error {
        if !p.is_match(&out.stderr) {
            case.fail(format!(
                "Expected string '{}' not found in error{}",
                p.as_str(),
                quoted(&out.stderr)
            ));
        }
    }
    for p in &test.excluded_error {
        if p.is_match(&out.stderr) {
            case.fail(format!(
                "Excluded string '{}' found in error{}",
                p.as_str(),
                quoted(&out.stderr)
            ));
        }
    }
    for p in &test.expected_output {
        if !p.is_match(&out.stdout) {
            case.fail(format!(
                "Expected string '{}' not found in output{}",
                p.as_str(),
                quoted(&out.stdout)
            ));
        }
    }
    for p in &test.excluded_output {
        if p.is_match(&out.stdout) {
            case.fail(format!(
                "Excluded string '{}' found in output{}",
                p.as_str(),
                quoted(&out.stdout)
            ));
        }
    }
    if out.exit_code != test.exit_code {
        case.fail(format!(
            "Test '{}' exited with incorrect error code. Expected: {}, Actual: {}",
            test.name, test.exit_code, out.exit_code
        ));
    }
}

/// Go's `path.Base`: the last element, trailing slashes removed.
fn go_base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Go's `filepath.Clean` of an archive entry's name, as far as names in a
/// container's archive go: `./`, duplicate and trailing slashes removed.
fn go_clean(name: &str) -> String {
    let parts: Vec<&str> = name
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    match (name.starts_with('/'), parts.is_empty()) {
        (true, true) => "/".to_string(),
        (false, true) => ".".to_string(),
        (true, false) => format!("/{}", parts.join("/")),
        (false, false) => parts.join("/"),
    }
}

/// Why a file test could not look at a path: the engine's error, or no
/// entry of the archive answering to the path.
enum Lookup {
    Engine(DriverError),
    NotInImage(String),
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Engine(e) => e.fmt(f),
            Lookup::NotInImage(path) => write!(f, "File {path} not found in image"),
        }
    }
}

/// CST's `StatFile`: the archive's entry named as the path's last element,
/// if it is a directory, file or link.
async fn stat<D: Driver + Sync>(d: &D, ctx: &Ctx<'_>, path: &str) -> Result<FileStat, Lookup> {
    let entry = d
        .archive_entry(ctx.image, path, &ctx.host, false)
        .await
        .map_err(Lookup::Engine)?;
    let known = matches!(
        entry.kind,
        EntryKind::Directory | EntryKind::Regular | EntryKind::HardLink | EntryKind::Symlink
    );
    if known && go_clean(&entry.name) == go_base(path) {
        Ok(entry.stat)
    } else {
        Err(Lookup::NotInImage(path.to_string()))
    }
}

/// How many symbolic links [`read_file`] follows: CST has no bound (a loop
/// never ends), Linux stops at 40.
const MAX_SYMLINKS: usize = 40;

/// CST's `ReadFile`: a file's content, following symbolic links by asking
/// for the link's target as stored (which the engine reads from `/`).
async fn read_file<D: Driver + Sync>(d: &D, ctx: &Ctx<'_>, path: &str) -> Result<Vec<u8>, String> {
    let mut current = path.to_string();
    for _ in 0..=MAX_SYMLINKS {
        let entry = d
            .archive_entry(ctx.image, &current, &ctx.host, true)
            .await
            .map_err(|e| e.to_string())?;
        let named = go_clean(&entry.name) == go_base(&current);
        match entry.kind {
            EntryKind::Directory if named => {
                return Err(format!(
                    "Cannot read specified path: {current} is a directory, not a file"
                ));
            }
            EntryKind::Symlink => current = entry.link_name.unwrap_or_default(),
            EntryKind::Regular | EntryKind::HardLink if named => {
                return Ok(entry.content.unwrap_or_default());
            }
            _ => return Err(format!("File {current} not found in image")),
        }
    }
    Err(format!(
        "{path}: more than {MAX_SYMLINKS} levels of symbolic links"
    ))
}

async fn content_case<D: Driver + Sync>(
    test: &FileContentTest,
    d: &D,
    ctx: &Ctx<'_>,
) -> CaseResult {
    let mut case = Case::new(log_name(Kind::FileContent, &test.name), Kind::FileContent);
    let path = &test.path;
    let bytes = match read_file(d, ctx, path).await {
        Ok(bytes) => bytes,
        Err(e) => {
            case.fail(format!("Failed to open {path}. Error: {e}"));
            return case.finish();
        }
    };
    let contents = String::from_utf8_lossy(&bytes);
    for p in &test.expected_contents {
        if !p.is_match(&contents) {
            case.fail(format!(
                "Expected string '{}' not found in file content string '{contents}'",
                p.as_str()
            ));
        }
    }
    for p in &test.excluded_contents {
        if p.is_match(&contents) {
            // Schema 1.0.0 words this failure as a missing expected string.
            let message = match ctx.version {
                SchemaVersion::V1 => "Expected string '{}' not found",
                SchemaVersion::V2 => "Excluded string '{}' found",
            };
            case.fail(format!(
                "{} in file content string '{contents}'",
                message.replace("{}", p.as_str())
            ));
        }
    }
    case.finish()
}

async fn existence_case<D: Driver + Sync>(
    test: &FileExistenceTest,
    d: &D,
    ctx: &Ctx<'_>,
) -> CaseResult {
    let mut case = Case::new(
        log_name(Kind::FileExistence, &test.name),
        Kind::FileExistence,
    );
    // Schema 2.0.0 expands `$VAR` in the path; messages name it as written.
    let path = match ctx.version {
        SchemaVersion::V1 => test.path.clone(),
        SchemaVersion::V2 => expand(&test.path, &ctx.env_with_globals()),
    };
    let shown = &test.path;
    let stat = match stat(d, ctx, &path).await {
        Ok(stat) => stat,
        // An engine error that is not "no such file" (a run option it
        // refused) fails the test; CST would count it as absence.
        Err(Lookup::Engine(e)) if test.should_exist || !e.not_found => {
            case.fail(format!("Error examining file in container: {e}"));
            return case.finish();
        }
        Err(e) if test.should_exist => {
            case.fail(format!("Error examining file in container: {e}"));
            return case.finish();
        }
        Err(_) => return case.finish(),
    };
    if !test.should_exist {
        case.fail(format!("File {shown} should not exist but does"));
        return case.finish();
    }
    let mode = go_file_mode(stat.mode);
    if let Some(want) = &test.permissions
        && *want != mode
    {
        case.fail(format!(
            "{shown} has incorrect permissions. Expected: {want}, Actual: {mode}"
        ));
    }
    if let Some(by) = test.is_executable_by
        && stat.mode & by.mask() == 0
    {
        case.fail(format!(
            "{shown} has incorrect executable bit. Expected to be executable by {}, Actual: {mode}",
            by.as_str()
        ));
    }
    if let Some(want) = test.uid
        && stat.uid != want
    {
        case.fail(format!(
            "{shown} has incorrect user ownership. Expected: {want}, Actual: {}",
            stat.uid
        ));
    }
    if let Some(want) = test.gid
        && stat.gid != want
    {
        case.fail(format!(
            "{shown} has incorrect group ownership. Expected: {want}, Actual: {}",
            stat.gid
        ));
    }
    case.finish()
}

/// Where Debian keeps each package's `copyright` file.
const DEBIAN_DOC_ROOT: &str = "/usr/share/doc";
/// Packages CST's licence test skips.
const LICENSE_ALLOWED_PACKAGES: &[&str] = &["libgnutls30"];
/// Words whose presence (in any case) in a licence file fails CST's test.
const LICENSE_REFUSED_WORDS: &[&str] = &["AGPL", "WTFPL"];

async fn license_case<D: Driver + Sync>(test: &LicenseTest, d: &D, ctx: &Ctx<'_>) -> CaseResult {
    let mut case = Case::new(Kind::License.label().to_string(), Kind::License);
    if test.debian {
        let dirs = match d.archive_dirs(ctx.image, DEBIAN_DOC_ROOT, &ctx.host).await {
            Ok(dirs) => dirs,
            Err(e) => {
                case.fail(format!("Error reading directory: {e}"));
                return case.finish();
            }
        };
        // The package folders: entries `doc/<package>/`, one level down.
        let packages = dirs.iter().filter_map(|name| {
            match name.trim_end_matches('/').split('/').collect::<Vec<_>>()[..] {
                [_, package] => Some(package.to_string()),
                _ => None,
            }
        });
        for package in packages {
            if LICENSE_ALLOWED_PACKAGES.contains(&package.as_str()) {
                continue;
            }
            let file = format!("{DEBIAN_DOC_ROOT}/{package}/copyright");
            if let Err(e) = stat(d, ctx, &file).await {
                case.fail(format!("Error reading license file for {package}: {e}"));
            }
            if let Err(e) = check_license(d, ctx, &file).await {
                case.fail(e);
            }
        }
    }
    for file in &test.files {
        if let Err(e) = check_license(d, ctx, file).await {
            case.fail(e);
        }
    }
    case.finish()
}

async fn check_license<D: Driver + Sync>(d: &D, ctx: &Ctx<'_>, file: &str) -> Result<(), String> {
    let bytes = read_file(d, ctx, file)
        .await
        .map_err(|e| format!("Error reading license file for {file}: {e}"))?;
    let upper = String::from_utf8_lossy(&bytes).to_uppercase();
    match LICENSE_REFUSED_WORDS.iter().find(|w| upper.contains(*w)) {
        Some(word) => Err(format!(
            "Invalid license for {file}, license contains {word}"
        )),
        None => Ok(()),
    }
}

/// A list as Go's `%v` prints it: `[a b c]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn metadata_case(test: &MetadataTest, config: &Result<ImageConfig, DriverError>) -> CaseResult {
    let mut case = Case::new(Kind::Metadata.label().to_string(), Kind::Metadata);
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            case.fail(format!("Error retrieving image config: {e}"));
            return case.finish();
        }
    };
    let env = env_map(&config.env);
    for kv in &test.env_vars {
        match env.get(&kv.key) {
            None => case.fail(format!("variable {} not found in image env", kv.key)),
            Some(actual) if !kv.value.matches(actual) => case.fail(format!(
                "env var {} value {actual} does not match expected value: {}",
                kv.key,
                kv.value.as_written()
            )),
            Some(_) => {}
        }
    }
    for key in &test.unbound_env_vars {
        if env.contains_key(key) {
            case.fail(format!(
                "env variable {key} should not be present in image metadata"
            ));
        }
    }
    for kv in &test.labels {
        match config.labels.get(&kv.key) {
            None => case.fail(format!("label {} not found in image metadata", kv.key)),
            Some(actual) if !kv.value.matches(actual) => case.fail(format!(
                "label {} value {actual} does not match expected value: {}",
                kv.key,
                kv.value.as_written()
            )),
            Some(_) => {}
        }
    }
    check_list(&test.cmd, &config.cmd, "Cmd", "Cmd", &mut case);
    check_list(
        &test.entrypoint,
        &config.entrypoint,
        "entrypoint",
        "entrypoint",
        &mut case,
    );
    if let Some(want) = &test.workdir
        && *want != config.workdir
    {
        case.fail(format!(
            "Image workdir {} does not match config workdir: {want}",
            config.workdir
        ));
    }
    if let Some(want) = &test.user
        && *want != config.user
    {
        case.fail(format!(
            "Image user {} does not match config user: {want}",
            config.user
        ));
    }
    // CST lists the image's ports by number alone (`8888`, not `8888/tcp`)
    // and compares the text: a port written with its protocol never matches.
    let ports: Vec<&str> = config
        .exposed_ports
        .iter()
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for port in &test.exposed_ports {
        if !ports.contains(&port.as_str()) {
            case.fail(format!("Port {port} not found in config"));
        }
    }
    for port in &test.unexposed_ports {
        if ports.contains(&port.as_str()) {
            case.fail(format!("Port {port} should not be exposed"));
        }
    }
    for volume in &test.volumes {
        if !config.volumes.contains(volume) {
            case.fail(format!("Volume {volume} not found in config"));
        }
    }
    for volume in &test.unmounted_volumes {
        if config.volumes.contains(volume) {
            case.fail(format!("Volume {volume} should not be mounted"));
        }
    }
    case.finish()
}

/// `cmd`/`entrypoint`: when given, the image's list must equal it (an
/// absent list counts as empty); CST reports a length mismatch once and
/// then every differing item.
fn check_list(
    want: &Option<Vec<String>>,
    actual: &Option<Vec<String>>,
    first: &str,
    item: &str,
    case: &mut Case,
) {
    let Some(want) = want else { return };
    let actual = actual.as_deref().unwrap_or(&[]);
    if want.len() != actual.len() {
        case.fail(format!(
            "Image {first} {} does not match expected {first}: {}",
            go_list(actual),
            go_list(want)
        ));
        return;
    }
    for (w, a) in want.iter().zip(actual) {
        if w != a {
            case.fail(format!(
                "Image config {item} {} does not match expected value: {}",
                go_list(actual),
                go_list(want)
            ));
        }
    }
}

#[cfg(test)]
mod tests;
