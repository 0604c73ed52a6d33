//! The schedule: which image runs when, and what happens around it.

use crate::backend::Backend;
use crate::record::{
    self, ImageResult, Outcome, OutputDirs, RunLog, RunRecord, StageResult, Status,
};
use crate::run::{Event, ExecError, RunOptions, Stage, Target};
use crate::stages::{self, StageCtx};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_core::plan::Plan;
use strata_engine::Engine;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

/// Whether running `targets` with `options` starts pytest: some target has
/// a test stage to run and a folder of Python tests for it. (The CLI checks
/// that pytest is installed before building anything.)
pub fn runs_pytest(options: &RunOptions, targets: &[Target]) -> bool {
    targets.iter().any(|t| {
        [Stage::BasicTests, Stage::IntegrationTests]
            .into_iter()
            .any(|s| stages::skip_reason(options, t, s).is_none() && !t.tests(s).pytest.is_empty())
    })
}

/// Reads each target's test key ([`Target::test_key`]) from the images
/// folder its tests run from, where not read yet: before
/// [`runs_pytest`] asks which tests run, or by the run itself.
pub fn read_test_keys(targets: &mut [Target], images_dir: &std::path::Path) {
    for t in targets.iter_mut().filter(|t| t.test_key.is_none()) {
        t.read_test_key(images_dir);
    }
}

/// Runs plans on an engine (the Docker engine, or any [`Backend`]).
pub struct Executor<B: Backend = Engine> {
    engine: B,
    engines: BTreeMap<String, B>,
    options: RunOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl<B: Backend> Executor<B> {
    /// An executor on `engine`; events go to `events` when given.
    pub fn new(
        engine: B,
        options: RunOptions,
        events: Option<mpsc::UnboundedSender<Event>>,
    ) -> Executor<B> {
        Executor {
            engine,
            engines: BTreeMap::new(),
            options,
            events,
        }
    }

    /// Sends each platform's builds and tests to its own engine
    /// (`--engine linux/arm64=…`, by `os/arch`); the others stay on the
    /// executor's engine.
    pub fn with_engines(mut self, engines: BTreeMap<String, B>) -> Executor<B> {
        self.engines = engines;
        self
    }

    /// Runs `targets` (from [`targets`]) of `plan`. Setting `cancel` to true
    /// stops the run: running stages are abandoned (builds aborted, test
    /// processes killed), their containers removed, the rest skipped, and
    /// everything so far is written.
    pub async fn run(
        &self,
        plan: &Plan,
        targets: Vec<Target>,
        cancel: watch::Receiver<bool>,
    ) -> Result<RunRecord, ExecError> {
        let started = record::now_rfc3339();
        let mut targets = targets;
        read_test_keys(&mut targets, &self.options.images_dir);
        let ctx = Arc::new(self.context(&targets, cancel.clone())?);
        let (children, roots) = family_tree(&targets);

        let permits = Arc::new(Semaphore::new(self.options.jobs.max(1)));
        let (gate_tx, mut gate_rx) =
            mpsc::unbounded_channel::<(usize, Result<stages::Parent, String>)>();
        let mut results: Vec<Option<ImageResult>> = vec![None; targets.len()];
        let mut set: JoinSet<(usize, ImageResult)> = JoinSet::new();
        // Which image each task runs, to tell a panicked task's image.
        let tasks: std::cell::RefCell<std::collections::HashMap<tokio::task::Id, usize>> =
            Default::default();
        // Images whose gate opened: their children were started.
        let mut gated = vec![false; targets.len()];
        // Each image's "build ended" signal, taken by its task when it starts.
        let (built, built_rx): (Vec<_>, Vec<_>) =
            targets.iter().map(|_| watch::channel(false)).unzip();
        let built = std::cell::RefCell::new(built.into_iter().map(Some).collect::<Vec<_>>());
        let start = |set: &mut JoinSet<(usize, ImageResult)>, i: usize, parent: stages::Parent| {
            let ctx = ctx.clone();
            let target = targets[i].clone();
            let permits = permits.clone();
            let gate = gate_tx.clone();
            let Some(built) = built.borrow_mut()[i].take() else {
                return;
            };
            let children_built = children[i].iter().map(|&c| built_rx[c].clone()).collect();
            let handle = set.spawn(async move {
                let result = match permits.clone().acquire_owned().await {
                    Ok(permit) => {
                        let family = stages::Family {
                            built,
                            children_built,
                            permit: Some(permit),
                            slots: permits.clone(),
                        };
                        stages::run_image(
                            &ctx,
                            &target,
                            parent,
                            |g| {
                                let _ = gate.send((i, g));
                            },
                            family,
                        )
                        .await
                    }
                    Err(_) => skipped(&target, "the run stopped before it started".into()),
                };
                (i, result)
            });
            tasks.borrow_mut().insert(handle.id(), i);
        };
        // A gate opens when an image may have children: they start on it,
        // or, if it failed, every descendant is skipped. It opens once: a
        // gate that arrives after its image's panic was handled is ignored.
        let open_gate = |set: &mut JoinSet<(usize, ImageResult)>,
                         results: &mut [Option<ImageResult>],
                         gated: &mut [bool],
                         i: usize,
                         gate: Result<stages::Parent, String>| {
            if std::mem::replace(&mut gated[i], true) {
                return;
            }
            match gate {
                Ok(parent) => {
                    for &c in &children[i] {
                        start(set, c, parent.clone());
                    }
                }
                Err(why) => skip_descendants(&ctx, &targets, &children, results, i, &why),
            }
        };
        for &r in &roots {
            start(&mut set, r, stages::Parent::default());
        }
        loop {
            tokio::select! {
                Some((i, gate)) = gate_rx.recv() => open_gate(&mut set, &mut results, &mut gated, i, gate),
                Some(joined) = set.join_next(), if !set.is_empty() => match joined {
                    Ok((i, result)) => results[i] = Some(result),
                    // A task that panicked is its image's failure, reported
                    // as such; children it had not let start are skipped.
                    Err(e) => {
                        let Some(i) = tasks.borrow().get(&e.id()).copied() else {
                            continue;
                        };
                        let why = if e.is_panic() {
                            format!("strata failed while running it: {}", panic_message(e))
                        } else {
                            "its task was cancelled".to_string()
                        };
                        let result = failed(&targets[i], why.clone());
                        ctx.finished(&result);
                        results[i] = Some(result);
                        open_gate(&mut set, &mut results, &mut gated, i, Err(why));
                    }
                },
                else => break,
            }
            // Every image sends its gate before it ends, so once nothing
            // runs, the gates still queued decide whether anything starts.
            while set.is_empty() {
                let Ok((i, gate)) = gate_rx.try_recv() else {
                    break;
                };
                open_gate(&mut set, &mut results, &mut gated, i, gate);
            }
            if set.is_empty() {
                break;
            }
        }
        let interrupted = *cancel.borrow();
        let cleaned = stages::remove_leftovers(&ctx, &targets, interrupted).await;
        if cleaned > 0 {
            ctx.run_log.line(&format!(
                "removed {} left by interrupted stages",
                strata_core::text::count(cleaned, "container")
            ));
        }
        let images: Vec<ImageResult> = results
            .into_iter()
            .zip(&targets)
            .map(|(r, t)| {
                r.unwrap_or_else(|| {
                    let result = skipped(
                        t,
                        if interrupted {
                            "interrupted".into()
                        } else {
                            "its parent did not finish".into()
                        },
                    );
                    ctx.finished(&result);
                    result
                })
            })
            .collect();
        let record = RunRecord {
            plan: record::PlanRecord::of(plan),
            started,
            finished: record::now_rfc3339(),
            success: !interrupted && images.iter().all(|i| i.success),
            interrupted,
            images,
        };
        write_record(&ctx, &record);
        Ok(record)
    }

    /// What every stage of the run shares: its output folders and log, the
    /// builder it resolved to, and the images built on for real.
    fn context(
        &self,
        targets: &[Target],
        cancel: watch::Receiver<bool>,
    ) -> Result<StageCtx<B>, ExecError> {
        let dirs =
            OutputDirs::create(&self.options.out_dir).map_err(|source| ExecError::Output {
                dir: self.options.out_dir.clone(),
                source,
            })?;
        let run_log =
            RunLog::create(&dirs.logs.join("run.log")).map_err(|source| ExecError::Output {
                dir: dirs.logs.clone(),
                source,
            })?;
        let builder = self.options.builder.resolve(&self.engine)?;
        run_log.line(&format!(
            "run {}: {} to build, jobs={}, builder: {}",
            self.engine.run_id(),
            strata_core::text::count(targets.len(), "image"),
            self.options.jobs,
            builder.name()
        ));
        Ok(StageCtx {
            engine: self.engine.clone(),
            engines: self.engines.clone(),
            options: self.options.clone(),
            builder,
            dirs,
            run_log,
            events: self.events.clone(),
            cancel,
            started: std::time::Instant::now(),
            replaced: Default::default(),
            growth: Default::default(),
            reclaimed: Default::default(),
            built: Default::default(),
            pytest_slots: Arc::new(Semaphore::new(self.options.test_jobs.max(1))),
            built_on: targets
                .iter()
                .filter(|t| t.build.reuse.is_none())
                .filter_map(|t| Some((t.build.parent.clone()?, t.build.plan.clone())))
                .collect(),
            inventories: std::sync::Mutex::new(std::collections::HashMap::new()),
            inventories_read: Default::default(),
            pushed_at: Default::default(),
        })
    }
}

/// Skips every descendant of target `i`, which failed for `why`.
fn skip_descendants<B: Backend>(
    ctx: &StageCtx<B>,
    targets: &[Target],
    children: &[Vec<usize>],
    results: &mut [Option<ImageResult>],
    i: usize,
    why: &str,
) {
    let mut stack = children[i].clone();
    while let Some(c) = stack.pop() {
        let result = skipped(
            &targets[c],
            format!("parent failed: {} ({why})", targets[i].build.reference),
        );
        ctx.finished(&result);
        results[c] = Some(result);
        stack.extend(children[c].iter().copied());
    }
}

/// The text of a panic, for the image it stopped.
fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Each target's children among the targets (by index), and the targets
/// with no parent among them.
fn family_tree(targets: &[Target]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index: BTreeMap<(String, String), usize> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.build.image.clone(), t.build.plan.clone()), i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); targets.len()];
    let mut roots = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match t
            .build
            .parent
            .as_ref()
            .and_then(|p| index.get(&(p.clone(), t.build.plan.clone())))
        {
            Some(&p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    (children, roots)
}

/// Writes the run's `artifacts/run.json` and `junit.xml`; a file that
/// cannot be written is said in the run log, the run goes on.
fn write_record<B: Backend>(ctx: &StageCtx<B>, record: &RunRecord) {
    if let Err(e) = record::write_json(&ctx.dirs.artifacts.join("run.json"), record) {
        ctx.run_log
            .line(&format!("cannot write artifacts/run.json: {e}"));
    }
    let junit = strata_report::junit::render(&record.junit_suites());
    if let Err(e) = record::write_atomic(&ctx.dirs.artifacts.join("junit.xml"), junit.as_bytes()) {
        ctx.run_log
            .line(&format!("cannot write artifacts/junit.xml: {e}"));
    }
    ctx.run_log.line(&format!(
        "run finished: {}",
        if record.success { "success" } else { "failed" }
    ));
}

/// The result of an image whose run broke off (its task panicked).
fn failed(target: &Target, why: String) -> ImageResult {
    ImageResult {
        outcome: Outcome::Failed,
        failure: Some(crate::stages::FailureKind::Other),
        ..skipped(target, why)
    }
}

/// The result of an image that never started.
fn skipped(target: &Target, why: String) -> ImageResult {
    ImageResult {
        image: target.build.image.clone(),
        plan: target.build.plan.clone(),
        reference: target.build.reference.clone(),
        success: false,
        failure: None,
        outcome: Outcome::Skipped,
        message: why.clone(),
        image_id: None,
        test_key: target.test_key.clone(),
        digest: None,
        duration_secs: 0.0,
        stages: Stage::ALL
            .iter()
            .map(|s| StageResult {
                stage: s.name().into(),
                status: Status::Skipped,
                duration_secs: 0.0,
                started_secs: None,
                message: Some(why.clone()),
                tests: Vec::new(),
                platforms: Vec::new(),
            })
            .collect(),
        inputs: target.build.inputs.clone(),
        reused: None,
        platforms: Vec::new(),
        growth: None,
        reclaimed_bytes: None,
    }
}
