//! Reading the stack from disk or from a commit: the spec, the change rules
//! and the Dockerfiles, with every problem reported in one go.

use crate::failure::Failure;
use crate::output::Reporter;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_core::changes::{ChangeRules, parse_change_rules};
use strata_core::diag::Diagnostic;
use strata_core::dockerfile::{self, DockerfileBase};
use strata_core::graph::Graph;
use strata_core::spec::{self, Spec};
use strata_core::validate;
use strata_exec::FolderTests;

/// Where the stack's files come from.
pub enum Source<'a> {
    /// The working tree.
    WorkTree,
    /// A commit of the repository, with the revision as the user wrote it
    /// (diagnostics name its files `REV:images/spec.yml`, as `git show`
    /// does, since the file on disk may say something else).
    Commit(strata_git::Snapshot<'a>, String),
}

impl Source<'_> {
    /// How a file of the images folder is named to the user.
    pub fn shown(&self, dir: &ImagesDir, name: &str) -> String {
        match self {
            Source::WorkTree => dir.display(name),
            Source::Commit(_, rev) => format!("{rev}:{}", dir.repo_path(name)),
        }
    }
}

/// The images folder: where it is on disk and how paths name it in git.
#[derive(Debug, Clone)]
pub struct ImagesDir {
    /// The folder on disk.
    pub path: PathBuf,
    /// The folder relative to the repository root, with `/` separators
    /// (`images`), when inside a repository.
    pub in_repo: Option<String>,
}

impl ImagesDir {
    /// A file of the folder, as shown to the user.
    pub fn display(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    /// A file of the folder as git names it, relative to the repository
    /// root (`images/base/Dockerfile`).
    pub fn repo_path(&self, name: &str) -> String {
        match self.in_repo.as_deref() {
            Some("") | None => name.to_string(),
            Some(dir) => format!("{dir}/{name}"),
        }
    }
}

/// A stack that read without errors.
pub struct Stack {
    /// The spec.
    pub spec: Spec,
    /// Its graph.
    pub graph: Graph,
    /// The ChangeIgnore/BuildAll rules.
    pub rules: ChangeRules,
    /// Each image's Dockerfile base, where its Dockerfile could be read.
    pub dockerfiles: BTreeMap<String, DockerfileBase>,
    /// The test folders that exist (of those the inheritance rule names),
    /// with what each holds.
    pub tests: BTreeMap<String, FolderTests>,
}

fn read(source: &Source<'_>, dir: &ImagesDir, name: &str) -> Result<Option<String>, Failure> {
    match source {
        Source::WorkTree => {
            let path = dir.path.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
                    Failure::input(format!("{}: the file is not UTF-8 text", path.display()))
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Failure::env(format!("cannot read {}: {e}", path.display()))),
            }
        }
        Source::Commit(snapshot, _) => Ok(snapshot.file(&dir.repo_path(name))?),
    }
}

/// The names of the files directly in folder `name` of the images folder,
/// or `None` when there is no such folder.
fn files_in(
    source: &Source<'_>,
    dir: &ImagesDir,
    name: &str,
) -> Result<Option<Vec<String>>, Failure> {
    match source {
        Source::WorkTree => {
            let path = dir.path.join(name);
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(Failure::env(format!("cannot read {}: {e}", path.display()))),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry
                    .map_err(|e| Failure::env(format!("cannot read {}: {e}", path.display())))?;
                // Links are not followed: a test file is the folder's own.
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
            names.sort_unstable();
            Ok(Some(names))
        }
        Source::Commit(snapshot, _) => Ok(snapshot.files_in(&dir.repo_path(name))?),
    }
}

/// What the test folders the inheritance rule names hold: Python tests
/// (pytest runs the folder) and structure-test files (a `.yaml`/`.yml` file
/// whose top level has `schemaVersion`), read and checked.
fn test_folders(
    source: &Source<'_>,
    dir: &ImagesDir,
    spec: &Spec,
    diags: &mut Vec<Found>,
) -> Result<BTreeMap<String, FolderTests>, Failure> {
    let mut found = BTreeMap::new();
    for folder in strata_core::test_folders::all_candidates(spec) {
        let Some(files) = files_in(source, dir, &folder)? else {
            continue;
        };
        let mut tests = FolderTests {
            python: files.iter().any(|f| f.ends_with(".py")),
            structure: Vec::new(),
        };
        for file in files
            .iter()
            .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        {
            let name = format!("{folder}/{file}");
            let Some(text) = read(source, dir, &name)? else {
                continue;
            };
            if !strata_structure::is_structure_file(&text) {
                continue;
            }
            match strata_structure::parse(&text, &source.shown(dir, &name)) {
                Ok(parsed) => tests.structure.push(parsed),
                Err(errors) => diags.extend(errors.into_iter().map(|d| (d, Some(text.clone())))),
            }
        }
        found.insert(folder, tests);
    }
    Ok(found)
}

/// A diagnostic and the text of the file it points into.
pub type Found = (Diagnostic, Option<String>);

/// Reads and checks everything: spec, its cross-entry rules, the layout
/// (Dockerfiles), and `change_ignore.json`. Returns all diagnostics, and the
/// stack when there is no error.
pub fn load(source: &Source<'_>, dir: &ImagesDir) -> Result<(Option<Stack>, Vec<Found>), Failure> {
    let spec_file = source.shown(dir, "spec.yml");
    let Some(text) = read(source, dir, "spec.yml")? else {
        return Err(Failure::input(format!(
            "no spec at {spec_file}: strata reads images/spec.yml; run it in your repository (-C DIR) or point --images-dir at the folder that holds spec.yml"
        )));
    };
    let parsed = spec::parse(&text, &spec_file);
    let mut diags: Vec<Found> = parsed
        .diagnostics
        .iter()
        .cloned()
        .map(|d| (d, Some(text.clone())))
        .collect();
    let mut dockerfiles = BTreeMap::new();
    let mut rules = ChangeRules::default();
    let mut tests = BTreeMap::new();
    if let Some(spec) = &parsed.spec {
        diags.extend(
            validate::validate(spec)
                .into_iter()
                .map(|d| (d, Some(text.clone()))),
        );
        let mut present = BTreeMap::new();
        for image in spec
            .images
            .iter()
            .filter(|i| validate::is_plain_folder_name(i.name()))
        {
            let name = format!("{}/Dockerfile", image.name());
            if let Some(df) = read(source, dir, &name)? {
                present.insert(image.name().to_string(), ());
                if let Some(base) = dockerfile::base_of(&df) {
                    diags.extend(
                        dockerfile::base_warnings(spec, image, &base, &source.shown(dir, &name))
                            .into_iter()
                            .map(|d| (d, Some(df.clone()))),
                    );
                    dockerfiles.insert(image.name().to_string(), base);
                }
            }
        }
        tests = test_folders(source, dir, spec, &mut diags)?;
        let shown = dir.path.display().to_string();
        diags.extend(
            validate::check_layout(spec, &shown, |k| present.contains_key(k))
                .into_iter()
                .map(|d| (d, Some(text.clone()))),
        );
    }
    let ci_file = source.shown(dir, "change_ignore.json");
    if let Some(ci) = read(source, dir, "change_ignore.json")? {
        match parse_change_rules(&ci, &ci_file) {
            Ok((r, warnings)) => {
                rules = r;
                diags.extend(warnings.into_iter().map(|d| (d, Some(ci.clone()))));
            }
            Err(errors) => diags.extend(errors.into_iter().map(|d| (d, Some(ci.clone())))),
        }
    }
    let failed = diags.iter().any(|(d, _)| d.is_error());
    let stack = match (parsed.spec, failed) {
        (Some(spec), false) => match Graph::new(&spec) {
            Ok(graph) => Some(Stack {
                spec,
                graph,
                rules,
                dockerfiles,
                tests,
            }),
            Err(_) => None,
        },
        _ => None,
    };
    Ok((stack, diags))
}

/// Loads the stack and prints its diagnostics; fails (exit 2) on any error.
pub fn load_or_fail(
    source: &Source<'_>,
    dir: &ImagesDir,
    reporter: &Reporter,
) -> Result<Stack, Failure> {
    let (stack, diags) = load(source, dir)?;
    let errors = diags.iter().filter(|(d, _)| d.is_error()).count();
    for (d, text) in &diags {
        if d.is_error() || !reporter.quiet {
            reporter.diagnostic(d, text.as_deref());
        }
    }
    match stack {
        Some(stack) if errors == 0 => Ok(stack),
        _ => Err(Failure::input(format!(
            "{} has {}; run `strata validate` for the full list",
            source.shown(dir, "spec.yml"),
            strata_core::text::count(errors, "error")
        ))),
    }
}

/// Finds the images folder: `--images-dir`, or `images` under the
/// repository root (or under DIR when not in a repository).
pub fn images_dir(base: &Path, flag: Option<&Path>, repo: Option<&strata_git::Repo>) -> ImagesDir {
    let path = match flag {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => base.join(p),
        // `images/` where strata runs, else at the repository root.
        None if base.join("images").is_dir() => base.join("images"),
        None => repo.map_or_else(|| base.join("images"), |r| r.workdir().join("images")),
    };
    let in_repo = repo.and_then(|r| {
        let abs = std::path::absolute(&path).ok()?;
        let root = std::fs::canonicalize(r.workdir()).ok()?;
        let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
        let rel = abs.strip_prefix(&root).ok()?;
        Some(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
        )
    });
    ImagesDir { path, in_repo }
}
