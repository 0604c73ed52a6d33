//! `strata report`: the report site of one or more runs' output folders,
//! which every `build` also writes into its own output folder
//! (`report/`). The pages are rendered by [`strata_report::site`]; here
//! the run records, manifests and logs are read and the pages written.

use crate::failure::Failure;
use crate::output::{Format, Reporter};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use strata_exec::{BuildRecord, ImageResult, RunRecord};
use strata_report::ManifestData;
use strata_report::site::{self, Site};

/// `strata report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run's output folder (holding artifacts/run.json, manifests/ and
    /// logs/); repeat it to chart earlier runs too: the newest run is
    /// reported, the others are its history. Default: the current folder.
    #[arg(long, value_name = "DIR")]
    pub from: Vec<PathBuf>,
    /// The folder the report is written to.
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
    /// Also chart the earlier builds recorded in the registry: the build
    /// records strata keeps beside each image it pushes
    /// (`<name>:inputs-<hex>.record`), the newest 30 builds of each image
    /// of the run reported, grouped into the runs that made them (those
    /// of the runs given are not charted twice). A registry that cannot
    /// be read is a warning and the report is written without them.
    #[arg(long)]
    pub registry_history: bool,
}

/// The folder of the report `build` writes, under its output folder.
pub const BUILD_REPORT_DIR: &str = "report";

/// Runs `strata report`.
pub fn run(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &ReportArgs,
    format: Format,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let from: Vec<PathBuf> = if args.from.is_empty() {
        vec![cwd.to_path_buf()]
    } else {
        args.from.iter().map(|f| cwd.join(f)).collect()
    };
    let out = cwd.join(&args.out);
    let mut runs = Vec::new();
    for dir in &from {
        let path = dir.join("artifacts/run.json");
        let record: RunRecord = crate::promote::read_json(&path)?.ok_or_else(|| {
            Failure::input(format!(
                "{} is not there; --from names a run's output folder (where `strata build` wrote artifacts/)",
                path.display()
            ))
        })?;
        runs.push((dir.clone(), record));
    }
    // Oldest first: RFC 3339 times in UTC sort as text.
    runs.sort_by(|a, b| a.1.started.cmp(&b.1.started));
    let (title, budgets) = match stack_here(cwd, images_flag) {
        Some((images, spec)) => (stack_title(&images), budgets(&spec)),
        // Runs copied away from their stack still report, untitled by it.
        None => (
            folder_name(runs.last().map_or(cwd, |(dir, _)| dir.as_path())),
            BTreeMap::new(),
        ),
    };
    let runs: Vec<(&Path, &RunRecord)> = runs.iter().map(|(d, r)| (d.as_path(), r)).collect();
    create_dir(&out)?;
    let mut site_runs = site_runs(&out, &runs, &budgets, reporter);
    if args.registry_history {
        site_runs = crate::report_history::recall(site_runs, reporter);
    }
    let charted = site_runs.len();
    let wrote = write_site(&out, title, site_runs)?;
    if format == Format::Json {
        crate::output::print_json(&serde_json::json!({
            "out": out,
            "runs": runs.len(),
            "charted": charted,
            "pages": wrote,
        }))?;
    } else {
        reporter.note(&format!(
            "report of {} written to {}",
            strata_core::text::count(charted, "run"),
            out.join("index.html").display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the report of the run `build` just made into `<out_dir>/report/`.
/// A report that cannot be written is a warning: the run's results are in
/// `artifacts/` whatever happens here.
pub fn after_build(
    out_dir: &Path,
    record: &RunRecord,
    images_dir: &Path,
    spec: &strata_core::spec::Spec,
    reporter: &Reporter,
) {
    let out = out_dir.join(BUILD_REPORT_DIR);
    match write(
        &out,
        &stack_title(images_dir),
        &[(out_dir, record)],
        &budgets(spec),
        reporter,
    ) {
        Ok(_) => reporter.note(&format!("report: {}", out.join("index.html").display())),
        Err(e) => reporter.note(&format!("warning: the run's report was not written: {e}")),
    }
}

/// Renders and writes the site of `runs` (each with its output folder)
/// into `out`; the files written.
fn write(
    out: &Path,
    title: &str,
    runs: &[(&Path, &RunRecord)],
    budgets: &BTreeMap<String, u64>,
    reporter: &Reporter,
) -> Result<Vec<PathBuf>, Failure> {
    create_dir(out)?;
    let runs = site_runs(out, runs, budgets, reporter);
    write_site(out, title.to_string(), runs)
}

/// Makes the report's folder.
fn create_dir(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::env(format!("cannot create {}: {e}", out.display())))
}

/// The runs as the site sees them (each read from its output folder,
/// which the report in `out` links to).
fn site_runs(
    out: &Path,
    runs: &[(&Path, &RunRecord)],
    budgets: &BTreeMap<String, u64>,
    reporter: &Reporter,
) -> Vec<site::Run> {
    runs.iter()
        .map(|(dir, record)| site_run(dir, out, record, budgets, reporter))
        .collect()
}

/// Renders the site of `runs` (oldest first, the last reported) and
/// writes it into `out`, which exists; the files written.
fn write_site(out: &Path, title: String, runs: Vec<site::Run>) -> Result<Vec<PathBuf>, Failure> {
    let site = Site { title, runs };
    let files = site::render(&site).map_err(|e| Failure::input(e.to_string()))?;
    remove_stale_pages(out, &files);
    let mut wrote = Vec::new();
    for file in files {
        let path = out.join(&file.name);
        strata_exec::write_atomic(&path, file.contents.as_bytes())
            .map_err(|e| Failure::env(format!("cannot write {}: {e}", path.display())))?;
        wrote.push(path);
    }
    Ok(wrote)
}

/// Removes the image pages an earlier report left in `out` that this one
/// does not have (a build of another commit names its pages anew), so the
/// folder holds one report.
fn remove_stale_pages(out: &Path, files: &[site::SiteFile]) {
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let page = name.starts_with(site::IMAGE_PAGE_PREFIX) && name.ends_with(".html");
        if page && !files.iter().any(|f| f.name == name) {
            // Left behind, it only misleads; failing to remove it is harmless.
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The report's title: the stack's name, which is the name of the folder
/// holding its images folder (the repository's, or `example`).
fn stack_title(images_dir: &Path) -> String {
    let images = std::path::absolute(images_dir).unwrap_or_else(|_| images_dir.to_path_buf());
    folder_name(images.parent().unwrap_or(&images))
}

/// A folder's own name (of its absolute path), or `strata`.
fn folder_name(dir: &Path) -> String {
    std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "strata".into())
}

/// Each image's size budget (`max_size`), by key.
fn budgets(spec: &strata_core::spec::Spec) -> BTreeMap<String, u64> {
    spec.images
        .iter()
        .filter_map(|i| Some((i.name().to_string(), i.max_size?)))
        .collect()
}

/// The images folder and spec of the stack where `strata report` runs,
/// when its spec reads: its name and budgets go in the report.
fn stack_here(
    cwd: &Path,
    images_flag: Option<&Path>,
) -> Option<(PathBuf, strata_core::spec::Spec)> {
    let repo = strata_git::Repo::discover(cwd).ok();
    let dir = crate::stack::images_dir(cwd, images_flag, repo.as_ref());
    match crate::stack::load(&crate::stack::Source::WorkTree, &dir) {
        Ok((Some(stack), _)) => Some((dir.path, stack.spec)),
        _ => None,
    }
}

/// One run as the report sees it: every image of its plan, parents first,
/// with its result where the run had one, its manifests and its logs.
fn site_run(
    dir: &Path,
    out: &Path,
    record: &RunRecord,
    budgets: &BTreeMap<String, u64>,
    reporter: &Reporter,
) -> site::Run {
    let files = RunFiles::read(dir, out);
    let images = record
        .plan
        .builds
        .iter()
        .map(|build| {
            let field = |key: &str| {
                build
                    .rest
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let result = record
                .images
                .iter()
                .find(|r| r.image == build.image && r.plan == build.plan);
            let mut image = match result {
                Some(result) => site_image(dir, result, build, &files, reporter),
                None => site::Image {
                    image: build.image.clone(),
                    plan: build.plan.clone(),
                    reference: build.reference.clone(),
                    parent: None,
                    outcome: site::Outcome::NotRebuilt,
                    reason: None,
                    message: "not rebuilt: the plan found nothing that changed it".into(),
                    duration_secs: 0.0,
                    stages: Vec::new(),
                    growth: None,
                    budget_bytes: None,
                    made: Vec::new(),
                    logs: Vec::new(),
                },
            };
            image.parent = field("parent");
            image.reason = field("reason").filter(|_| build.rebuild);
            image.budget_bytes = budgets.get(&build.image).copied();
            image
        })
        .collect();
    site::Run {
        started: record.started.clone(),
        finished: record.finished.clone(),
        head: record.plan.head.clone(),
        success: record.success,
        interrupted: record.interrupted,
        images,
    }
}

/// The images a result made, as `(platform, reference)`: those it
/// pushed, else (a run that did not push records none) each platform's
/// the plan names, else the image itself.
fn made_images(result: &ImageResult, build: &BuildRecord) -> Vec<(Option<String>, String)> {
    let planned: Vec<strata_core::platform::Platform> = build
        .rest
        .get("platforms")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|p| p.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if result.platforms.is_empty() && !planned.is_empty() {
        return planned
            .iter()
            .map(|p| {
                (
                    Some(p.to_string()),
                    format!("{}{}", result.reference, p.tag_suffix()),
                )
            })
            .collect();
    }
    result
        .made_images()
        .into_iter()
        .map(|m| (m.platform.map(str::to_string), m.reference.to_string()))
        .collect()
}

/// One image's result, with the manifests of the images it made.
fn site_image(
    dir: &Path,
    result: &ImageResult,
    build: &BuildRecord,
    files: &RunFiles,
    reporter: &Reporter,
) -> site::Image {
    let made: Vec<site::Made> = made_images(result, build)
        .into_iter()
        .map(|(platform, reference)| site::Made {
            manifest: read_manifest(dir, &reference, reporter),
            platform,
            reference,
        })
        .collect();
    let stems: Vec<String> = std::iter::once(result.reference.as_str())
        .chain(made.iter().map(|m| m.reference.as_str()))
        .map(strata_report::ref_file_stem)
        .collect();
    site::Image {
        image: result.image.clone(),
        plan: result.plan.clone(),
        reference: result.reference.clone(),
        parent: None,
        outcome: match result.outcome {
            strata_exec::Outcome::Built => site::Outcome::Built,
            strata_exec::Outcome::Reused => site::Outcome::Reused,
            strata_exec::Outcome::Resumed => site::Outcome::Resumed,
            strata_exec::Outcome::Failed => site::Outcome::Failed,
            strata_exec::Outcome::Skipped => site::Outcome::Skipped,
        },
        reason: None,
        message: result.message.clone(),
        duration_secs: result.duration_secs,
        stages: result
            .stages
            .iter()
            .map(|s| site::Stage {
                name: s.stage.clone(),
                status: match s.status {
                    strata_exec::Status::Ok => site::StageStatus::Ok,
                    strata_exec::Status::Failed => site::StageStatus::Failed,
                    strata_exec::Status::Skipped => site::StageStatus::Skipped,
                },
                started_secs: s.started_secs,
                duration_secs: s.duration_secs,
                message: s.message.clone(),
                tests: s.tests.clone(),
                platforms: s.platforms.clone(),
            })
            .collect(),
        growth: result.growth.as_ref().map(|g| site::Growth {
            since: g.since.clone(),
            bytes: g.bytes,
        }),
        budget_bytes: None,
        made,
        logs: files.of(&stems),
    }
}

/// `manifests/<ref>.json` of a run, when there; a file that does not read
/// is said and left out.
fn read_manifest(dir: &Path, reference: &str, reporter: &Reporter) -> Option<ManifestData> {
    let path = dir
        .join("manifests")
        .join(format!("{}.json", strata_report::ref_file_stem(reference)));
    let text = std::fs::read_to_string(&path).ok()?;
    serde_json::from_str(&text)
        .map_err(|e| {
            reporter.note(&format!(
                "warning: {}: {e}; left out of the report",
                path.display()
            ))
        })
        .ok()
}

/// The files of a run's `logs/` and `manifests/` folders the report links
/// to: the logs (`<stem>.<what>.log`) and the Markdown manifests
/// (`<stem>.md`) of each image.
struct RunFiles {
    logs: Listing,
    manifests: Listing,
}

impl RunFiles {
    fn read(run: &Path, out: &Path) -> RunFiles {
        RunFiles {
            logs: Listing::read(&run.join("logs"), out, ".log"),
            manifests: Listing::read(&run.join("manifests"), out, ".md"),
        }
    }

    /// The links of the images whose file stems are `stems`: logs, then
    /// manifests.
    fn of(&self, stems: &[String]) -> Vec<site::LogLink> {
        let mut links = self.logs.of(stems);
        links.extend(self.manifests.of(stems));
        links
    }
}

/// The names of one folder's files with one ending, and how the report's
/// folder reaches that folder.
struct Listing {
    names: Vec<String>,
    /// Their ending (`.log`).
    ending: &'static str,
    /// The folder, relative to the report's (`../logs` for a build's).
    href: String,
}

impl Listing {
    fn read(folder: &Path, out: &Path, ending: &'static str) -> Listing {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(ending))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Listing {
            names,
            ending,
            href: relative(out, folder),
        }
    }

    /// The files of the images whose file stems are `stems`: named
    /// `<stem><ending>` or `<stem>.<what><ending>`, `<what>` without a
    /// dot (a stage's name), so another reference's files never match.
    fn of(&self, stems: &[String]) -> Vec<site::LogLink> {
        let of_stem = |name: &str, stem: &str| {
            name.strip_prefix(stem)
                .and_then(|rest| rest.strip_suffix(self.ending))
                .is_some_and(|what| {
                    what.is_empty() || what.strip_prefix('.').is_some_and(|w| !w.contains('.'))
                })
        };
        self.names
            .iter()
            .filter(|n| stems.iter().any(|s| of_stem(n, s)))
            .map(|n| site::LogLink {
                name: n.clone(),
                href: site::url_path(&format!("{}/{n}", self.href)),
            })
            .collect()
    }
}

/// The path of `to` from folder `from`, `/`-separated (`../logs`); both
/// made absolute and resolved first, so a report and its run may be
/// anywhere. Where no relative path exists (another drive), the absolute.
fn relative(from: &Path, to: &Path) -> String {
    let resolve = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let (from, to) = (resolve(from), resolve(to));
    let (a, b): (Vec<Component<'_>>, Vec<Component<'_>>) =
        (from.components().collect(), to.components().collect());
    let shared = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if shared == 0 {
        return to.to_string_lossy().into_owned();
    }
    let up = std::iter::repeat_n("..".to_string(), a.len() - shared);
    let down = b[shared..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let joined: Vec<String> = up.chain(down).collect();
    if joined.is_empty() {
        ".".into()
    } else {
        joined.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_logs_are_reached_from_the_report_by_a_relative_path() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        for d in ["run/logs", "run/report", "site/report"] {
            std::fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            relative(&root.join("run/report"), &root.join("run/logs")),
            "../logs"
        );
        assert_eq!(
            relative(&root.join("site/report"), &root.join("run/logs")),
            "../../run/logs"
        );
        assert_eq!(relative(&root.join("run"), &root.join("run")), ".");
        for name in [
            "o+a=1.build.log",
            "o+a=1-linux-arm64.basic-tests.log",
            "o+ab=1.build.log",
            "o+a=1.2.build.log",
            "o+a=1.basic-tests.junit.xml",
        ] {
            std::fs::write(root.join("run/logs").join(name), "").unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::create_dir_all(root.join("run/manifests")).unwrap_or_else(|e| panic!("{e}"));
        for name in [
            "o+a=1-linux-arm64.md",
            "o+a=1-linux-arm64.json",
            "o+ab=1.md",
        ] {
            std::fs::write(root.join("run/manifests").join(name), "")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let files = RunFiles::read(&root.join("run"), &root.join("run/report"));
        let links = files.of(&["o+a=1".into(), "o+a=1-linux-arm64".into()]);
        let hrefs: Vec<&str> = links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "../logs/o+a=1-linux-arm64.basic-tests.log",
                "../logs/o+a=1.build.log",
                "../manifests/o+a=1-linux-arm64.md"
            ]
        );
    }
}
