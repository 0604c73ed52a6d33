//! `strata build`: execute the plan on the local engine.

use crate::failure::Failure;
use crate::output::{Format, Reporter, print_json, print_out};
use crate::planning::{self, PlanArgs};
use crate::progress::{self, Mode};
use crate::schedule::{schedule, schedule_text};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_core::text::count;
use strata_exec::{Executor, RunOptions, Target};
use tokio::sync::{mpsc, watch};

/// The options of every command that runs stages of the plan's images
/// (`build`, `test`, `manifest`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Images to run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<std::num::NonZeroUsize>,
    /// pytest runs at once (default 1: image tests may publish fixed host
    /// ports; builds, structure tests and pushes stay parallel). Raise it
    /// when the tests share nothing on the host.
    #[arg(long, value_name = "N", default_value = "1", env = "STRATA_TEST_JOBS")]
    pub test_jobs: std::num::NonZeroUsize,
    /// Only this image (its parent must be published or built already).
    #[arg(long, value_name = "IMAGE")]
    pub only: Option<String>,
    /// Where artifacts/, logs/ and manifests/ are written (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The engine that builds and tests a platform's images (repeatable):
    /// PLATFORM=ADDRESS, e.g. linux/arm64=tcp://arm-builder:2375 or
    /// linux/arm64=unix:///run/arm.sock; other platforms use the default
    /// engine.
    #[arg(long = "engine", value_name = "PLATFORM=ADDRESS")]
    pub engines: Vec<crate::flags::EngineFlag>,
    /// Run the basic tests of images reused from an identical earlier build
    /// too (they passed before it was pushed, with the same test files).
    #[arg(long)]
    pub retest: bool,
    /// A stage's time limit for this run, over spec.yml's `timeouts:`
    /// (repeatable): STAGE=DURATION, e.g. basic_tests=45m or build=4h.
    #[arg(long = "timeout", value_name = "STAGE=DURATION")]
    pub timeouts: Vec<crate::flags::TimeoutFlag>,
    /// The Python that runs the image tests.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "python3",
        env = "STRATA_PYTHON"
    )]
    pub python: String,
    /// The format of each image's SBOM (per platform), written to
    /// artifacts/sbom/ and pushed beside the image.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "spdx",
        env = "STRATA_SBOM_FORMAT"
    )]
    pub sbom_format: crate::flags::SbomFormat,
}

/// The options of `strata build`: those of a run, and what only a build
/// does (push, secrets, a dry run).
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Print the schedule and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Push images after their basic tests.
    #[arg(long, overrides_with = "no_push")]
    pub push: bool,
    /// Keep images local (the default until --push is given).
    #[arg(long, overrides_with = "push")]
    pub no_push: bool,
    /// Push even when the images folder has uncommitted changes (the tags
    /// then end in -dirty).
    #[arg(long)]
    pub allow_dirty: bool,
    /// A build secret for `RUN --mount=type=secret,id=ID` (repeatable):
    /// id=ID,src=FILE or id=ID,env=VAR. Its value never reaches logs,
    /// artifacts or the image.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// Sign every image, index and SBOM pushed, by digest, in cosign's
    /// format, with this private key (PEM; cosign's encrypted key file
    /// takes its password from COSIGN_PASSWORD).
    #[arg(long, value_name = "FILE", env = "STRATA_SIGN_KEY")]
    pub sign_key: Option<PathBuf>,
}

impl BuildArgs {
    /// `strata test` and `strata manifest`: a run of images already built,
    /// which pushes nothing.
    pub fn of_run(run: &RunArgs) -> BuildArgs {
        BuildArgs {
            run: run.clone(),
            dry_run: false,
            push: false,
            no_push: true,
            allow_dirty: false,
            secrets: Vec::new(),
            sign_key: None,
        }
    }
}

/// With `--only` (a job of `strata plan --format jobs`), a parent the plan
/// rebuilds is built by another job: it is found in the registry under the
/// run's tag and pinned by digest, or the job fails at once, naming the
/// missing image and the job that pushes it.
fn pin_parents_of_this_run(targets: &mut [Target]) -> Result<(), Failure> {
    let built_here: Vec<(String, String)> = targets
        .iter()
        .map(|t| (t.build.image.clone(), t.build.plan.clone()))
        .collect();
    let registry = crate::registry::client()?;
    let runtime = crate::runtime()?;
    for t in targets.iter_mut() {
        let Some(parent) = t.build.parent.clone() else {
            continue;
        };
        if t.build.base_source != Some(strata_core::plan::BaseSource::ThisRun)
            || built_here.contains(&(parent.clone(), t.build.plan.clone()))
        {
            continue;
        }
        let Some(base) = t.build.base_ref.clone() else {
            continue;
        };
        // A platform's job builds on its parent's image of that platform.
        let platform = match t.build.platforms.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            _ => {
                return Err(Failure::input(format!(
                    "--only {}: it is built for {} on '{parent}', which another job builds; build one platform per job (--platform, as `strata plan --format jobs` gives)",
                    t.build.image,
                    t.build.platforms.join(", ")
                )));
            }
        };
        let suffix = platform
            .as_deref()
            .and_then(|p| p.parse::<strata_core::platform::Platform>().ok())
            .map(|p| p.tag_suffix())
            .unwrap_or_default();
        let base = format!("{base}{suffix}");
        let job = strata_core::jobs::job_id(&parent, &t.build.plan, platform.as_deref());
        let reference: strata_core::reference::ImageRef = base
            .parse()
            .map_err(|e| Failure::input(format!("{base}: {e}")))?;
        let found = runtime
            .block_on(registry.head_manifest(&reference))
            .map_err(|e| {
                Failure::env(format!(
                    "cannot look up {base}, which job {job} pushes: {e}"
                ))
            })?;
        let Some(info) = found else {
            return Err(Failure::work(format!(
                "{base} is not in the registry: job {job} builds and pushes it, and has failed or not finished; run this job after it"
            )));
        };
        // Its key is made on the parent's image ID, as where the parent
        // is built in the same run.
        let pinned = reference.name().with_digest(info.digest.clone());
        t.build.base_ids = runtime
            .block_on(strata_registry::image_ids(registry, &pinned))
            .map_err(|e| {
                Failure::env(format!("cannot read {pinned}, which job {job} pushed: {e}"))
            })?;
        t.build.extend_base(&format!("{suffix}@{}", info.digest));
        t.build.base_source = Some(strata_core::plan::BaseSource::Registry);
    }
    Ok(())
}

/// What a run abandoned by a second Ctrl-C must not leave behind: the
/// containers of its engines (strata's own, by run label, and those the
/// image tests started from its images) and the folder of REV's files.
struct Leftovers {
    engines: Vec<strata_engine::Engine>,
    images: Vec<String>,
    folder: Option<PathBuf>,
}

impl Leftovers {
    /// How long the abandoning cleanup may take: the user asked twice to stop.
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

    /// Removes them, within [`Leftovers::LIMIT`]; what fails is left, as
    /// there is no one to tell.
    async fn remove(&self) {
        let containers = async {
            for engine in &self.engines {
                let _ = engine.remove_containers(engine.run_id()).await;
                for image in &self.images {
                    let _ = engine.remove_containers_of_image(image).await;
                }
            }
        };
        let _ = tokio::time::timeout(Self::LIMIT, containers).await;
        if let Some(folder) = &self.folder {
            let _ = std::fs::remove_dir_all(folder);
        }
    }
}

/// `prune reclaimed 1.2 GB on the engine (3 images)`: what the prune stages
/// gave back, when any measured it.
fn reclaimed_line(images: &[strata_exec::ImageResult]) -> Option<String> {
    let measured: Vec<u64> = images.iter().filter_map(|i| i.reclaimed_bytes).collect();
    (!measured.is_empty()).then(|| {
        format!(
            "prune reclaimed {} on the engine ({})",
            strata_core::limits::format_size(measured.iter().sum()),
            count(measured.len(), "image")
        )
    })
}

/// Tells what the run's end published, or failed to.
fn report_published(reporter: &Reporter, done: &strata_exec::publish::Published) {
    use strata_exec::publish::Published;
    use strata_registry::TagError;
    match done {
        Published::Record {
            reference,
            result: Err(e),
        } => reporter.note(&format!(
            "warning: {reference}: {e}; runs reusing it will not list its tests"
        )),
        Published::Record { result: Ok(()), .. } => {}
        Published::Sbom {
            reference,
            result: Ok(digest),
        } => reporter.note(&format!("{reference}: SBOM beside it at {digest}")),
        Published::Sbom {
            reference,
            result: Err(e),
        } => reporter.note(&format!(
            "warning: {reference}: its SBOM could not be put beside it: {e}; it is in the run's artifacts/sbom/"
        )),
        Published::Index {
            reference,
            platforms,
            result: Ok(digest),
        } => reporter.note(&format!(
            "{reference}: index of {} at {digest}",
            count(*platforms, "platform")
        )),
        Published::Reused {
            reference,
            from,
            result: Ok(digest),
        } => reporter.note(&format!(
            "tagged {reference} at {digest} (same inputs as {from})"
        )),
        Published::Unchanged {
            reference,
            result: Ok(digest),
        } => reporter.note(&format!("tagged {reference} at {digest} (unchanged)")),
        Published::Signature {
            signed,
            result: Ok(()),
            ..
        } => reporter.detail(&format!("{signed}: signed")),
        Published::Signature {
            reference,
            signed,
            result: Err(e),
        } => reporter.note(&format!(
            "error: {reference}: the signature of {signed} could not be put: {e}"
        )),
        Published::Unchanged {
            reference,
            result: Err(e @ TagError::NotPublished),
        } => reporter.note(&format!("warning: {reference}: {e}")),
        Published::Index {
            reference,
            result: Err(e),
            ..
        }
        | Published::Reused {
            reference,
            result: Err(e),
            ..
        } => reporter.note(&format!("error: {reference}: {e}")),
        Published::Unchanged {
            reference,
            result: Err(e),
        } => reporter.note(&format!("error: {reference}: {e}")),
    }
}

/// Checks, before anything is built, that `python` can run the image tests.
fn check_pytest(python: &str) -> Result<(), Failure> {
    let ok = std::process::Command::new(python)
        .args(["-c", "import pytest, docker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(Failure::env(format!(
            "the image tests need pytest and the docker Python package for {python}: install them with `{python} -m pip install pytest docker` (or point --python at a Python that has them)"
        )))
    }
}

/// Writes the images folder of `commit` into a temporary folder, removed
/// when the returned handle is dropped: the build contexts, `.dockerignore`
/// files and tests of a `--head REV` run are REV's.
fn export_images(
    repo: &strata_git::Repo,
    dir: &crate::stack::ImagesDir,
    commit: &str,
) -> Result<(tempfile::TempDir, PathBuf), Failure> {
    let temp = tempfile::Builder::new()
        .prefix(&format!("strata-{}-", &commit[..7.min(commit.len())]))
        .tempdir()
        .map_err(|e| {
            Failure::env(format!(
                "cannot make a temporary folder for {commit}'s files: {e}"
            ))
        })?;
    let images = temp.path().join(
        dir.path
            .file_name()
            .unwrap_or(std::ffi::OsStr::new("images")),
    );
    repo.snapshot(commit)?
        .export(dir.in_repo.as_deref().unwrap_or(""), &images)?;
    // One level down, so that tests see a folder named like the user's.
    Ok((temp, images))
}

/// Runs `strata build` (and `test` and `manifest`, which run some stages).
pub fn run(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &BuildArgs,
    stages: &[strata_exec::Stage],
    format: Format,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let mut prepared = prepare(cwd, images_flag, args, reporter)?;
    // The key is read (and opened) before anything is built: a wrong file
    // or password fails at once. `--sign-key` (or STRATA_SIGN_KEY) wins
    // over the spec's `signing.key`. A run that does not push signs nothing.
    let spec_key = prepared
        .planned
        .stack
        .spec
        .sign_key
        .as_ref()
        .map(|k| cwd.join(&k.value));
    let signer = crate::sign::signer(
        args.sign_key
            .as_deref()
            .or(spec_key.as_deref())
            .filter(|_| prepared.push),
    )?;
    if args.dry_run || prepared.targets.is_empty() {
        print_schedule(&prepared, args.dry_run, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    // `--head REV` builds and tests REV's own files, never the working tree's.
    let head_files = match &prepared.planned.head_commit {
        Some(commit) => Some(export_images(
            &prepared.planned.repo,
            &prepared.planned.dir,
            commit,
        )?),
        None => None,
    };
    let out_dir = args.run.out.clone().unwrap_or_else(|| cwd.to_path_buf());
    let options = run_options(
        args,
        &prepared,
        stages,
        head_files.as_ref(),
        &out_dir,
        signer,
        reporter,
    )?;
    strata_exec::read_test_keys(&mut prepared.targets, &options.images_dir);
    if strata_exec::runs_pytest(&options, &prepared.targets) {
        check_pytest(&args.run.python)?;
    }
    let temporary = head_files
        .as_ref()
        .map(|(temp, _)| temp.path().to_path_buf());
    crate::runtime()?.block_on(async {
        let (record, untagged) = execute(&mut prepared, args, options, temporary, reporter).await?;
        if format == Format::Json {
            print_json(&record)?;
        }
        finish(
            &prepared.planned.plan,
            &record,
            &untagged,
            &out_dir,
            reporter,
        )
    })
}

/// What a run is given once planned: the plan, its targets and where the
/// images it does not rebuild stand.
struct Prepared {
    planned: planning::Planned,
    targets: Vec<Target>,
    /// Where each image the run does not rebuild stood when planned.
    published: std::collections::BTreeMap<(String, String), String>,
    coverage: strata_exec::publish::Coverage,
    push: bool,
}

/// Plans the run and readies its targets: a job's parents pinned, each
/// image's previous build (cache, comparison), the records of reused
/// images, and where the images it does not rebuild stand. Refuses a push
/// of uncommitted changes.
fn prepare(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &BuildArgs,
    reporter: &Reporter,
) -> Result<Prepared, Failure> {
    let mut planned = planning::make(cwd, images_flag, &args.run.plan, reporter)?;
    if let Some(only) = &args.run.only {
        if planned.stack.spec.image(only).is_none() {
            return Err(Failure::input(format!(
                "--only {only}: no such image in the spec"
            )));
        }
    }
    let mut targets = strata_exec::targets(
        &planned.plan,
        &planned.stack.spec,
        args.run.only.as_deref(),
        &planned.stack.tests,
    );
    let push = args.push && !args.no_push;
    if args.run.only.is_some() && !args.run.plan.offline {
        pin_parents_of_this_run(&mut targets)?;
    }
    if push && !planned.uncommitted.is_empty() && !args.allow_dirty {
        let files: Vec<String> = planned
            .uncommitted
            .iter()
            .map(|u| format!("{} ({})", u.path, u.change.as_str()))
            .collect();
        return Err(Failure::input(format!(
            "--push refuses a working tree with uncommitted changes under the images folder: {}; commit them (or stash them), or pass --allow-dirty to push images tagged -dirty",
            files.join(", ")
        )));
    }
    attach_previous(&mut planned, &mut targets, reporter);
    if !args.run.plan.offline {
        crate::build_records::attach(&mut targets);
    }
    let coverage = strata_exec::publish::Coverage {
        one_image: args.run.only.is_some(),
        some_platforms: !args.run.plan.platforms.is_empty(),
    };
    // Where the images it does not rebuild stand, which only a run of the
    // whole range tags (see strata_exec::publish).
    let published = if push && coverage.whole_range() {
        planned.published(|b| !b.rebuild)?
    } else {
        Default::default()
    };
    Ok(Prepared {
        planned,
        targets,
        published,
        coverage,
        push,
    })
}

/// Gives each `prepull` image its own previous build: its cache, and what
/// its manifest is compared with (`prepull: false` pulls no earlier build
/// at all). Optional: when the registry cannot say where it is, the build
/// goes on without.
fn attach_previous(planned: &mut planning::Planned, targets: &mut [Target], reporter: &Reporter) {
    let prepull: Vec<(String, String)> = targets
        .iter()
        .filter(|t| t.image.prepull)
        .map(|t| (t.build.image.clone(), t.build.plan.clone()))
        .collect();
    let previous = planned
        .published(|b| b.rebuild && prepull.contains(&(b.image.clone(), b.plan.clone())))
        .unwrap_or_else(|e| {
            reporter.note(&format!(
                "warning: building without cache from earlier builds and without comparing with them: {e}"
            ));
            Default::default()
        });
    for t in targets.iter_mut() {
        let found = previous.get(&(t.build.image.clone(), t.build.plan.clone()));
        t.cache_from = found.cloned();
        // A re-run of the same commit finds its own tag: nothing to compare.
        let own = |r: &String| {
            let found = r.parse::<strata_core::reference::ImageRef>();
            let run = t
                .build
                .reference
                .parse::<strata_core::reference::ImageRef>();
            matches!((found, run), (Ok(f), Ok(r)) if f.name() == r.name() && f.tag() == r.tag())
        };
        t.previous = found.filter(|r| !own(r)).cloned();
    }
    crate::build_records::attach_previous_manifests(targets);
    // Offline, no registry is asked.
    if planned.lookup.is_some() {
        crate::build_records::attach_stable_packages(targets, &planned.stack.spec);
    }
}

/// `--dry-run`'s schedule, or a run with nothing to build: its empty
/// record (`--format json`) or `nothing to build`.
fn print_schedule(prepared: &Prepared, dry_run: bool, format: Format) -> Result<(), Failure> {
    let plan = &prepared.planned.plan;
    let scheduled = schedule(&prepared.targets);
    match (dry_run, format == Format::Json) {
        (true, true) => print_json(&serde_json::json!({
            "head": plan.head,
            "base": plan.base,
            "dry_run": true,
            "schedule": scheduled,
        })),
        (false, true) => {
            let now = strata_exec::now_rfc3339();
            print_json(&strata_exec::RunRecord {
                plan: strata_exec::PlanRecord::of(plan),
                started: now.clone(),
                finished: now,
                success: true,
                interrupted: false,
                images: Vec::new(),
            })
        }
        (_, false) => print_out(&schedule_text(&scheduled)),
    }
}

/// The executor's options for this run.
fn run_options(
    args: &BuildArgs,
    prepared: &Prepared,
    stages: &[strata_exec::Stage],
    head_files: Option<&(tempfile::TempDir, PathBuf)>,
    out_dir: &Path,
    signer: Option<std::sync::Arc<dyn strata_exec::sign::Signer>>,
    reporter: &Reporter,
) -> Result<RunOptions, Failure> {
    let planned = &prepared.planned;
    let secrets = args
        .secrets
        .iter()
        .map(|flag| strata_engine::BuildSecret::from_flag(flag))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::input(e.to_string()))?;
    let revision = if planned.plan.dirty {
        format!("{}{}", planned.plan.head, strata_core::plan::DIRTY_SUFFIX)
    } else {
        planned.plan.head.clone()
    };
    Ok(RunOptions {
        images_dir: head_files
            .map_or_else(|| planned.dir.path.clone(), |(_, images)| images.clone()),
        out_dir: out_dir.to_path_buf(),
        jobs: args.run.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            |n| n.get(),
        ),
        test_jobs: args.run.test_jobs.get(),
        push: prepared.push,
        revision,
        python: args.run.python.clone(),
        auth: crate::registry::auth_for(*reporter),
        stages: stages.to_vec(),
        builder: args.run.plan.builder.into(),
        secrets,
        timeouts: args
            .run
            .timeouts
            .iter()
            .map(|t| (t.stage.to_string(), t.limit))
            .collect(),
        retest: args.run.retest,
        platform: strata_core::inputs::host_platform(),
        sbom_format: args.run.sbom_format.into(),
        source: planned
            .repo
            .remote_url()
            .and_then(|url| strata_core::source::public_url(&url)),
        signer,
    })
}

/// Runs the targets on the engines, then publishes the run's end: the run's
/// record and the references the run's tag could not name. An engine that
/// went away during a failed run is the environment's failure.
async fn execute(
    prepared: &mut Prepared,
    args: &BuildArgs,
    options: RunOptions,
    temporary: Option<PathBuf>,
    reporter: &Reporter,
) -> Result<(strata_exec::RunRecord, Vec<String>), Failure> {
    let engine = crate::engine().await.map_err(|e| {
        // An unreachable engine's message already names the engine.
        Failure::env(if e.is_unreachable() {
            e.to_string()
        } else {
            format!("Docker engine: {e}")
        })
    })?;
    let mut engines = std::collections::BTreeMap::new();
    for flag in &args.run.engines {
        let (platform, address) = (&flag.platform, &flag.address);
        let other = strata_engine::Engine::connect_to(address)
            .await
            .map_err(|e| Failure::env(format!("--engine {platform}={address}: {e}")))?
            .with_run_id(engine.run_id());
        engines.insert(platform.to_string(), other);
    }
    // Asked after a failed run: did the engine itself go away?
    let probes: Vec<strata_engine::Engine> = std::iter::once(engine.clone())
        .chain(engines.values().cloned())
        .collect();
    let out_dir = options.out_dir.clone();
    let cancel = on_interrupt(Leftovers {
        engines: probes.clone(),
        images: prepared
            .targets
            .iter()
            .flat_map(Target::variants)
            .map(|t| t.build.reference)
            .collect(),
        folder: temporary,
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let mode = Mode::detect(reporter.quiet);
    let display = tokio::spawn(progress::show(
        mode,
        reporter.verbose,
        out_dir.join("logs"),
        rx,
    ));
    std::fs::create_dir_all(out_dir.join("logs")).map_err(|e| {
        Failure::env(format!(
            "cannot create {}: {e}",
            out_dir.join("logs").display()
        ))
    })?;
    crate::trace::log_to(&out_dir.join("logs/run.log"));
    let push_stage = options.stages.contains(&strata_exec::Stage::Push);
    let signer = options.signer.clone();
    let executor = Executor::new(engine, options, Some(tx)).with_engines(engines);
    let targets = std::mem::take(&mut prepared.targets);
    let record = executor
        .run(&prepared.planned.plan, targets, cancel)
        .await
        .map_err(|e| Failure::env(e.to_string()))?;
    drop(executor);
    let _ = display.await;
    // Written whatever the run's end: a failed run's report is the one read.
    crate::report::after_build(
        &out_dir,
        &record,
        &prepared.planned.dir.path,
        &prepared.planned.stack.spec,
        reporter,
    );
    // References the registry failed to tag: the run's tag then does not
    // name the whole stack, so the run fails.
    let mut untagged = Vec::new();
    if prepared.push && push_stage {
        let end = strata_exec::publish::RunEnd {
            plan: &prepared.planned.plan,
            record: &record,
            published: &prepared.published,
            coverage: prepared.coverage,
            revision: &prepared.planned.plan.head,
            out_dir: &out_dir,
            signer: signer.as_deref(),
        };
        for done in strata_exec::publish::publish(crate::registry::client()?, &end).await {
            report_published(reporter, &done);
            untagged.extend(done.untagged().map(str::to_string));
        }
    }
    if !record.success && !record.interrupted {
        // An image that failed for it, or an engine that does not answer
        // now: the engine went away.
        let gone = record
            .images
            .iter()
            .find(|i| i.failure == Some(strata_exec::FailureKind::EngineGone))
            .map(|i| i.message.clone());
        for probe in &probes {
            let said = match (probe.ping().await, &gone) {
                (Err(e), _) => e.to_string(),
                (Ok(()), Some(message)) => message.clone(),
                (Ok(()), None) => continue,
            };
            return Err(Failure::env(format!(
                "{said}: the engine went away during the run; what finished, what was cut off and what never started is in {}",
                out_dir.join("artifacts").display()
            )));
        }
    }
    Ok((record, untagged))
}

/// The cancel signal of a run: the first Ctrl-C stops its stages, which
/// clean up; a second abandons the run at once, after removing
/// `leftovers`.
fn on_interrupt(leftovers: Leftovers) -> watch::Receiver<bool> {
    let (cancel_tx, cancel_rx) = watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: stopping running stages and cleaning up (press Ctrl-C again to abandon the run at once)"
            );
            let _ = cancel_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("abandoning the run: removing its containers and temporary folders");
                leftovers.remove().await;
                std::process::exit(130);
            }
        }
    });
    cancel_rx
}

/// Tells how the run went (the summary, the failed tests, GitHub's step
/// summary) and picks its exit code.
fn finish(
    plan: &strata_core::plan::Plan,
    record: &strata_exec::RunRecord,
    untagged: &[String],
    out_dir: &Path,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let rows = progress::summary_rows(plan, &record.images);
    let failed_tests = record.failed_tests();
    let reclaimed = reclaimed_line(&record.images);
    if !reporter.quiet {
        eprint!("\n{}", strata_report::summary_text(&rows));
        if let Some(line) = &reclaimed {
            eprintln!("{line}");
        }
        for (suite, test) in &failed_tests {
            eprintln!("failed test: {test} ({suite})");
        }
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        use std::io::Write;
        let reclaimed = reclaimed
            .as_ref()
            .map(|l| format!("\n{l}\n"))
            .unwrap_or_default();
        let markdown = strata_report::summary_markdown(&rows)
            + &reclaimed
            + &strata_report::failed_tests_markdown(&failed_tests);
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| f.write_all(markdown.as_bytes()));
        if let Err(e) = appended {
            reporter.note(&format!("cannot append to GITHUB_STEP_SUMMARY: {e}"));
        }
    }
    reporter.detail(&format!(
        "artifacts in {}",
        out_dir.join("artifacts").display()
    ));
    if record.interrupted {
        Ok(ExitCode::from(130))
    } else if record.success && !untagged.is_empty() {
        Err(Failure::work(format!(
            "the run's tag could not be put on {}: {}; the tag does not name the whole stack",
            count(untagged.len(), "image"),
            untagged.join(", ")
        )))
    } else if record.success {
        Ok(ExitCode::SUCCESS)
    } else {
        let failed: Vec<&str> = record
            .images
            .iter()
            .filter(|i| !i.success)
            .map(|i| i.reference.as_str())
            .collect();
        Err(Failure::work(format!(
            "{} did not build: {}; see {}",
            count(failed.len(), "image"),
            failed.join(", "),
            out_dir.join("logs").display()
        )))
    }
}
