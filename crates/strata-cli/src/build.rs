//! `strata build`: execute the plan on the local engine.

use crate::failure::Failure;
use crate::output::Reporter;
use crate::planning::{self, PlanArgs};
use crate::progress::{self, Mode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_exec::{Executor, RunOptions, Target};
use tokio::sync::{mpsc, watch};

/// The options of `strata build`.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Images to run at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Only this image (its parent must be published or built already).
    #[arg(long, value_name = "IMAGE")]
    pub only: Option<String>,
    /// Print the schedule and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Push images after their basic tests.
    #[arg(long, overrides_with = "no_push")]
    pub push: bool,
    /// Keep images local (the default until --push is given).
    #[arg(long, overrides_with = "push")]
    pub no_push: bool,
    /// Where artifacts/, logs/ and manifests/ are written (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The Python that runs the image tests.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "python3",
        env = "STRATA_PYTHON"
    )]
    pub python: String,
}

/// The schedule as text: each image after the one it waits for.
fn schedule_text(targets: &[Target]) -> String {
    let mut out = String::new();
    let mut depth: std::collections::BTreeMap<(String, String), usize> = Default::default();
    for t in targets {
        let wait = t
            .build
            .parent
            .as_ref()
            .and_then(|p| depth.get(&(p.clone(), t.build.plan.clone())).copied());
        let level = wait.map_or(0, |d| d + 1);
        depth.insert((t.build.image.clone(), t.build.plan.clone()), level);
        let after = match (&t.build.parent, wait) {
            (Some(p), Some(_)) => format!("after {p}"),
            (_, _) => match &t.build.base_ref {
                Some(b) => format!("on {b}"),
                None if t.build.parent.is_some() => {
                    "on its parent's published tag (unresolved)".to_string()
                }
                None => "root".to_string(),
            },
        };
        out.push_str(&format!(
            "{}{} [{}] {} — {}; {after}\n",
            "  ".repeat(level),
            t.build.image,
            t.build.plan,
            t.build.reference,
            t.build.reason
        ));
    }
    if targets.is_empty() {
        out.push_str("nothing to build\n");
    }
    out
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

/// Runs `strata build`.
pub fn run(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &BuildArgs,
    stages: &[strata_exec::Stage],
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let mut planned = planning::make(cwd, images_flag, &args.plan, reporter)?;
    if let Some(only) = &args.only {
        if planned.stack.spec.image(only).is_none() {
            return Err(Failure::input(format!(
                "--only {only}: no such image in the spec"
            )));
        }
    }
    let mut targets =
        strata_exec::targets(&planned.plan, &planned.stack.spec, args.only.as_deref());
    let push = args.push && !args.no_push;
    // Published images: a prepull image's own previous build (cache), and,
    // when pushing, every image the run does not rebuild (it gets the run's tag).
    let prepull: Vec<(String, String)> = targets
        .iter()
        .filter(|t| t.image.prepull)
        .map(|t| (t.build.image.clone(), t.build.plan.clone()))
        .collect();
    let published = planned.published(|b| {
        (b.rebuild && prepull.contains(&(b.image.clone(), b.plan.clone()))) || (push && !b.rebuild)
    })?;
    for t in &mut targets {
        t.cache_from = published
            .get(&(t.build.image.clone(), t.build.plan.clone()))
            .cloned();
    }
    if args.dry_run || targets.is_empty() {
        print!("{}", schedule_text(&targets));
        return Ok(ExitCode::SUCCESS);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        return Err(Failure::input("--jobs must be at least 1"));
    }
    let out_dir = args.out.clone().unwrap_or_else(|| cwd.to_path_buf());
    let options = RunOptions {
        images_dir: planned.dir.path.clone(),
        out_dir: out_dir.clone(),
        jobs,
        push,
        revision: planned.plan.head.clone(),
        python: args.python.clone(),
        auth: crate::registry::auth_for(*reporter),
        stages: stages.to_vec(),
    };
    if strata_exec::runs_pytest(&options, &targets) {
        check_pytest(&args.python)?;
    }
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        let engine = strata_engine::Engine::connect().await.map_err(|e| {
            // An unreachable engine's message already names the engine.
            Failure::env(if e.is_unreachable() { e.to_string() } else { format!("Docker engine: {e}") })
        })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mode = Mode::detect(reporter.quiet);
        let display = tokio::spawn(progress::show(mode, out_dir.join("logs"), rx));
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: stopping running stages and cleaning up (press Ctrl-C again to abandon the cleanup)");
                let _ = cancel_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let executor = Executor::new(engine, options, Some(tx));
        let record = executor
            .run(&planned.plan, targets, cancel_rx)
            .await
            .map_err(|e| Failure::env(e.to_string()))?;
        drop(executor);
        let _ = display.await;
        // References the registry failed to tag: the run's tag then does
        // not name the whole stack, so the run fails.
        let mut untagged = Vec::new();
        if push && record.success && stages.contains(&strata_exec::Stage::Push) {
            let registry = crate::registry::client()?;
            for (reference, tagged) in crate::registry::tag_unchanged(&registry, &planned.plan, &published).await {
                match tagged {
                    Ok(digest) => reporter.note(&format!("tagged {reference} at {digest} (unchanged)")),
                    Err(crate::registry::TagError::NotPublished(e)) => reporter.note(&format!("warning: {reference}: {e}")),
                    Err(crate::registry::TagError::Registry(e)) => {
                        reporter.note(&format!("error: {reference}: {e}"));
                        untagged.push(reference);
                    }
                }
            }
        }
        let rows = progress::summary_rows(&planned.plan, &record.images);
        if !reporter.quiet {
            eprint!("\n{}", strata_report::summary_text(&rows));
        }
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
            use std::io::Write;
            let appended = std::fs::OpenOptions::new().append(true).create(true).open(&path).and_then(|mut f| f.write_all(strata_report::summary_markdown(&rows).as_bytes()));
            if let Err(e) = appended {
                reporter.note(&format!("cannot append to GITHUB_STEP_SUMMARY: {e}"));
            }
        }
        reporter.detail(&format!("artifacts in {}", out_dir.join("artifacts").display()));
        if record.interrupted {
            Ok(ExitCode::from(130))
        } else if record.success && !untagged.is_empty() {
            Err(Failure::work(format!("the run's tag could not be put on {} unchanged image(s): {}; the tag does not name the whole stack", untagged.len(), untagged.join(", "))))
        } else if record.success {
            Ok(ExitCode::SUCCESS)
        } else {
            let failed: Vec<&str> = record.images.iter().filter(|i| !i.success).map(|i| i.reference.as_str()).collect();
            Err(Failure::work(format!("{} image(s) did not build: {}; see {}", failed.len(), failed.join(", "), out_dir.join("logs").display())))
        }
    })
}
