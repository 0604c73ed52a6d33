//! The stages of one image's pipeline: this module holds what they share
//! (the run's context, the stage runner, which stages run); an image's
//! whole pipeline (`image.rs`) and each stage have their own file.

use crate::backend::Backend;
use crate::record::{
    self, Growth, ImageResult, Outcome, OutputDirs, PlatformImage, RunLog, StageResult, Status,
};
use crate::run::{Event, RunOptions, Stage, Target, secs_between, secs_since};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};
use strata_core::inputs::{self, ReuseFrom};
use strata_core::reference::ImageRef;
use strata_engine::BuildRequest;
use strata_report::image_diff;
use strata_report::junit::{self, CaseOutcome, TestCase};
use strata_report::{ManifestData, manifest_json, manifest_markdown, ref_file_stem};
use tokio::sync::{mpsc, watch};

mod build;
mod error;
mod gates;
mod image;
mod manifest;
mod prune;
mod push;
mod test;

use build::*;
pub use error::FailureKind;
use error::StageError;
use gates::*;
pub(crate) use image::run_image;
pub use manifest::sbom_path;
use manifest::*;
pub(crate) use prune::remove_leftovers;
use prune::*;
use push::*;
use test::*;

/// What every stage of a run shares.
pub(crate) struct StageCtx<B: Backend> {
    pub engine: B,
    /// Engines of given platforms (`--engine linux/arm64=…`): a platform's
    /// builds and tests run there; the others on `engine`.
    pub engines: BTreeMap<String, B>,
    pub options: RunOptions,
    /// The builder `options.builder` resolved to on this engine.
    pub builder: strata_engine::Builder,
    pub dirs: OutputDirs,
    pub run_log: RunLog,
    pub events: Option<mpsc::UnboundedSender<Event>>,
    pub cancel: watch::Receiver<bool>,
    /// When the run started: each stage records its start from it.
    pub started: Instant,
    /// The image each build replaced under its reference (its ID), which
    /// the image's prune stage removes: a run prunes only what it left.
    pub replaced: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// How much each image grew since its previous build, by reference, as
    /// its manifest stage found.
    pub growth: std::sync::Mutex<std::collections::HashMap<String, Growth>>,
    /// The bytes each image's prune stage freed, by reference.
    pub reclaimed: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The pytest runs that may run at once (`RunOptions::test_jobs`).
    pub pytest_slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// The image ID each build of this run made, by reference: what its
    /// tests ran on and what its push must send.
    pub built: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The images (key and plan) a child in this run is built on for real:
    /// those must be in the engine even when reused.
    pub built_on: std::collections::HashSet<(String, String)>,
    /// Each image's packages being read from its export, by reference:
    /// started when its build ends, so the reading runs beside its tests
    /// and push; its manifest stage writes the SBOM from it.
    pub inventories: std::sync::Mutex<std::collections::HashMap<String, PendingInventory>>,
    /// Inventories read already (by a gate that needs the SBOM), by
    /// reference, for the manifest stage.
    pub inventories_read:
        std::sync::Mutex<std::collections::HashMap<String, strata_sbom::ImageInventory>>,
    /// Where each image (each platform's) stands in the registry once its
    /// push stage ended, by reference: what its gates check.
    pub pushed_at: std::sync::Mutex<std::collections::HashMap<String, PushedAt>>,
}

/// Where an image stands in the registry after its push stage.
#[derive(Debug, Clone)]
pub(crate) struct PushedAt {
    /// Its manifest's digest.
    pub digest: strata_core::reference::Digest,
    /// Whether the run's tag names it already; `false` when only its
    /// inputs tag was pushed, the run's tag waiting for its gates.
    pub tagged: bool,
}

/// What [`Backend::inventory`] answers.
pub(crate) type InventoryResult =
    Result<Result<strata_sbom::ImageInventory, strata_sbom::SbomError>, strata_engine::EngineError>;

/// An inventory being read; stopped when dropped unread (the image failed
/// before its manifest stage, or the run ended).
pub(crate) struct PendingInventory(tokio::task::JoinHandle<InventoryResult>);

impl Drop for PendingInventory {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts reading `target`'s packages from its export, for its manifest
/// stage.
fn start_inventory<B: Backend>(ctx: &StageCtx<B>, target: &Target) {
    if !ctx.options.stages.contains(&Stage::Manifest) {
        return;
    }
    let engine = ctx.engine_for(target).clone();
    let reference = target.build.reference.clone();
    let task = tokio::spawn(async move { engine.inventory(&reference).await });
    if let Ok(mut pending) = ctx.inventories.lock() {
        pending.insert(target.build.reference.clone(), PendingInventory(task));
    }
}

/// The target's packages, read once: as its gates read them, from the
/// reading its build started, or now.
async fn read_inventory<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
) -> Result<strata_sbom::ImageInventory, String> {
    let reference = &target.build.reference;
    let read_before = ctx
        .inventories_read
        .lock()
        .ok()
        .and_then(|mut read| read.remove(reference));
    if let Some(inventory) = read_before {
        return Ok(inventory);
    }
    let pending = ctx
        .inventories
        .lock()
        .ok()
        .and_then(|mut pending| pending.remove(reference));
    let read = match pending {
        Some(mut pending) => (&mut pending.0)
            .await
            .map_err(|e| format!("reading the packages of {reference} stopped: {e}"))?,
        None => ctx.engine_for(target).inventory(reference).await,
    };
    read.map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the packages of {reference}: {e}"))
}

/// What ties an image's run to its children's: it tells when its own build
/// has ended, and its prune stage waits until its children's have (they are
/// built on its local copy, which prune removes).
pub(crate) struct Family {
    /// Set once this image's build stage has ended; dropped unset when it
    /// never started, which ends the wait just the same.
    pub built: watch::Sender<bool>,
    /// Each child's `built`.
    pub children_built: Vec<watch::Receiver<bool>>,
    /// The image's slot among the `--jobs` running at once, given back
    /// while it waits for its children, who may need it to run at all.
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The `--jobs` slots, to take one again after a push: a push (and the
    /// wait for the parent's) holds none, so that builds and tests go on
    /// while images upload.
    pub slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Family {
    /// Resolves when every child's build has ended (or will never start).
    async fn children_built(&mut self) {
        for child in &mut self.children_built {
            let _ = child.wait_for(|built| *built).await;
        }
    }
}

impl<B: Backend> StageCtx<B> {
    /// The engine that builds and tests `target`: its platform's, if one
    /// was given, else the run's.
    pub(crate) fn engine_for(&self, target: &Target) -> &B {
        target
            .platform
            .as_ref()
            .and_then(|p| self.engines.get(&p.to_string()))
            .unwrap_or(&self.engine)
    }

    fn emit(&self, event: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Records an image's end: artifacts file, run log, event.
    pub(crate) fn finished(&self, result: &ImageResult) {
        let path = self
            .dirs
            .artifacts
            .join(format!("{}.yaml", ref_file_stem(&result.reference)));
        if let Err(e) = record::write_yaml(&path, result) {
            self.run_log
                .line(&format!("cannot write {}: {e}", path.display()));
        }
        self.run_log.line(&format!(
            "{} {}: {}",
            result.reference, result.outcome, result.message
        ));
        self.emit(Event::ImageFinished(Box::new(result.clone())));
    }

    /// The image ID this run built under `reference`, if it built one.
    pub(crate) fn built_id(&self, reference: &str) -> Option<String> {
        self.built.lock().ok()?.get(reference).cloned()
    }

    fn record_pushed(&self, target: &Target, digest: strata_core::reference::Digest, tagged: bool) {
        if let Ok(mut pushed) = self.pushed_at.lock() {
            pushed.insert(target.build.reference.clone(), PushedAt { digest, tagged });
        }
    }

    /// The platform `target` is built for (`linux/arm64`): its own, else
    /// the run's.
    fn platform_of(&self, target: &Target) -> String {
        target
            .platform
            .as_ref()
            .map_or_else(|| self.options.platform.clone(), ToString::to_string)
    }

    fn pushed_at(&self, target: &Target) -> Option<PushedAt> {
        self.pushed_at
            .lock()
            .ok()?
            .get(&target.build.reference)
            .cloned()
    }

    fn log_path(&self, reference: &str, what: &str) -> PathBuf {
        self.dirs
            .logs
            .join(format!("{}.{what}.log", ref_file_stem(reference)))
    }

    /// Resolves when the run is cancelled.
    async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                // The sender is gone: nobody can cancel any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// What a stage made, when it passed: the image it built, the digest the
/// image stands at in the registry, or what it did in words. Its result's
/// message says it; the pipeline reads the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Done {
    /// Nothing to tell.
    Nothing,
    /// What it did, in words.
    Said(String),
    /// The build made this image (its ID).
    Built { id: String },
    /// The image stands in the registry at this digest: pushed now, or
    /// reused from there.
    Pushed {
        digest: strata_core::reference::Digest,
    },
}

impl Done {
    /// The message of the stage's result (`run.json`): an image ID or a
    /// digest as it is, for tools that read them.
    fn message(&self) -> Option<String> {
        match self {
            Done::Nothing => None,
            Done::Said(said) => Some(said.clone()),
            Done::Built { id } => Some(id.clone()),
            Done::Pushed { digest } => Some(digest.to_string()),
        }
    }
}

type StageOutcome = Result<Done, StageError>;

/// The test cases a test stage has run so far: kept outside the stage's
/// future, so the cases that finished survive a time limit or an interrupt.
type Cases = std::sync::Mutex<Vec<TestCase>>;

/// Runs one stage, timing it, reporting it, and abandoning it on cancel or
/// when it passes its time limit `limit`.
async fn stage<B: Backend, F>(
    ctx: &StageCtx<B>,
    reference: &str,
    stage: Stage,
    limit: Duration,
    run: F,
) -> (StageResult, StageOutcome)
where
    F: std::future::Future<Output = StageOutcome>,
{
    ctx.emit(Event::StageStarted {
        reference: reference.to_string(),
        stage,
    });
    ctx.run_log.line(&format!("{reference} {stage} started"));
    let start = Instant::now();
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, run) => r.unwrap_or_else(|_| Err(StageError::new(
            FailureKind::TimedOut,
            format!("timed out after {}", strata_core::limits::format_duration(limit)),
        ))),
        () = ctx.cancelled() => Err(StageError::new(FailureKind::Interrupted, "interrupted")),
    };
    let result = StageResult {
        stage: stage.name().to_string(),
        status: if outcome.is_ok() {
            Status::Ok
        } else {
            Status::Failed
        },
        duration_secs: secs_since(start),
        started_secs: Some(secs_between(ctx.started, start)),
        message: match &outcome {
            Ok(done) => done.message(),
            Err(e) => Some(e.message.clone()),
        },
        tests: Vec::new(),
        platforms: Vec::new(),
    };
    ctx.run_log.line(&format!(
        "{reference} {stage} {} in {:.1}s{}",
        if outcome.is_ok() { "ok" } else { "FAILED" },
        result.duration_secs,
        result
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    ));
    ctx.emit(Event::StageFinished {
        reference: reference.to_string(),
        result: result.clone(),
    });
    (result, outcome)
}

fn not_run(stage: Stage, why: &str) -> StageResult {
    StageResult {
        stage: stage.name().into(),
        status: Status::Skipped,
        duration_secs: 0.0,
        started_secs: None,
        message: Some(why.into()),
        tests: Vec::new(),
        platforms: Vec::new(),
    }
}

/// Why stage `s` does not run for `target`, if it does not: the rules of
/// which stages run, in one place.
pub(crate) fn skip_reason(options: &RunOptions, target: &Target, s: Stage) -> Option<String> {
    if !options.stages.contains(&s) {
        return Some("not asked for".into());
    }
    match s {
        Stage::BasicTests if !target.image.basic_tests => Some("basic_tests: false".into()),
        Stage::BasicTests if !options.retest && target.tests_passed_before() => {
            target.build.reuse.as_ref().map(|r| {
                format!(
                    "same inputs as {r}, whose tests passed with the same test files before it was pushed (--retest runs them)"
                )
            })
        }
        Stage::Push if !options.push => Some("not pushing (--no-push)".into()),
        Stage::Gates if target.gates.is_empty() => Some("no gates".into()),
        Stage::Gates if !options.push => {
            Some("not pushing (--no-push): gates check pushed images".into())
        }
        Stage::IntegrationTests if !target.image.integration_tests => {
            Some("integration_tests: false".into())
        }
        Stage::Prune if !target.image.prune => Some("prune: false".into()),
        _ => None,
    }
}

/// The image a target reuses instead of building, if any: the plan's
/// choice, unless this run's builder is not the one its key names (an
/// engine without BuildKit under `--builder auto`).
fn reused<'t, B: Backend>(ctx: &StageCtx<B>, target: &'t Target) -> Option<&'t ReuseFrom> {
    target
        .build
        .reuse
        .as_ref()
        .filter(|_| target.build.input_parts.builder == ctx.builder.name())
}

/// The target's input key: the plan's, or computed now that its base is
/// known. A key is made on the image ID of the base (see
/// [`strata_core::plan::ImageIds`]): the parent this run built (`parent_id`),
/// the published base's as the plan read it, or the local base's.
async fn input_key<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_id: Option<&str>,
) -> Option<String> {
    let mut parts = target.build.input_parts.clone();
    if parts.builder == ctx.builder.name()
        && let Some(key) = &target.build.inputs
    {
        return Some(key.clone());
    }
    parts.builder = ctx.builder.name().to_string();
    let Some(base_ref) = &target.build.base_ref else {
        // A root: made on its external base, as the plan found it.
        let external = target.build.external_base.as_ref();
        let base = external.and_then(|b| b.id_for(&parts.platform));
        return Some(inputs::key(&parts, base.map(String::as_str)));
    };
    let base = match parent_id
        .map(str::to_string)
        .or_else(|| target.build.base_id(&parts.platform).cloned())
        .or_else(|| target.build.base_image_id.clone())
    {
        Some(base) => base,
        None => {
            ctx.engine_for(target)
                .inspect_image(base_ref)
                .await
                .ok()??
                .id
        }
    };
    Some(inputs::key(&parts, Some(&base)))
}

/// Runs stage `s` of one target (an image, or one platform's image).
async fn run_stage<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    s: Stage,
    cases: &Cases,
    parent_id: Option<&str>,
    key: Option<&str>,
    pushed: bool,
) -> StageOutcome {
    match s {
        Stage::Build => match reused(ctx, target) {
            Some(from) => reuse(ctx, target, from).await,
            None => {
                let built = build(ctx, target, parent_id, key).await;
                if built.is_ok() {
                    start_inventory(ctx, target);
                }
                built
            }
        },
        Stage::BasicTests | Stage::IntegrationTests => tests(ctx, target, s, cases).await,
        Stage::Push => {
            let pushed = match reused(ctx, target).and_then(ReuseFrom::digest) {
                // Tagged registry-side after the run, at the digest it
                // stands at: a push could change it.
                Some(digest) => {
                    ctx.record_pushed(target, digest.clone(), true);
                    Done::Pushed {
                        digest: digest.clone(),
                    }
                }
                None => push(ctx, target, key).await?,
            };
            // An image with gates is signed once they pass.
            if let Done::Pushed { digest } = &pushed
                && target.gates.is_empty()
            {
                sign_pushed(ctx, target, digest).await?;
            }
            Ok(pushed)
        }
        Stage::Gates => gates(ctx, target, cases).await,
        Stage::Manifest => manifest(ctx, target).await,
        Stage::Prune => prune(ctx, target, key, pushed).await,
    }
}

/// What an image's children are built on once its gate opens (its basic
/// tests passed): the image ID of each of its images (keyed as
/// [`strata_core::plan::ImageIds`]), and its push, which a child's push
/// waits for. Children build while it pushes, on its local image; none is
/// pushed before it, nor if what it pushed is not what they were built on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parent {
    /// Its reference, for messages.
    pub reference: String,
    /// Its images' IDs: under `""` for one of the engine's platform, by
    /// platform (`linux/arm64`) for each platform's.
    pub ids: strata_core::plan::ImageIds,
    /// Its push; `None` for a root.
    pub push: Option<watch::Receiver<ParentPush>>,
}

/// Where a parent's push stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParentPush {
    /// Not ended yet.
    Running,
    /// It pushed (or it stood in the registry already): the image ID of
    /// each image, keyed as [`Parent::ids`].
    Pushed(strata_core::plan::ImageIds),
    /// It did not push, and why: it failed, or the run does not push.
    NotPushed(String),
}

/// The key of a target's image among its parent's [`Parent::ids`].
fn id_key(target: &Target) -> String {
    target
        .platform
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Waits for the parent's push before the child's: fails when the parent
/// was not pushed, or pushed other images than the child was built on.
async fn parent_pushed<B: Backend>(
    ctx: &StageCtx<B>,
    parent: &Parent,
    variants: &[Target],
) -> Result<(), StageError> {
    let Some(push) = &parent.push else {
        return Ok(());
    };
    let mut push = push.clone();
    let state = tokio::select! {
        state = push.wait_for(|p| *p != ParentPush::Running) => state
            .map(|s| s.clone())
            .unwrap_or_else(|_| ParentPush::NotPushed("it stopped before its push".into())),
        () = ctx.cancelled() => return Err(StageError::new(FailureKind::Interrupted, "interrupted")),
    };
    let pushed = match state {
        ParentPush::Pushed(ids) => ids,
        // `wait_for` returned it: never `Running`.
        ParentPush::Running => strata_core::plan::ImageIds::new(),
        ParentPush::NotPushed(why) => {
            return Err(StageError::new(
                FailureKind::Provenance,
                format!(
                    "not pushed: its parent {} was not ({why})",
                    parent.reference
                ),
            ));
        }
    };
    for v in variants {
        let key = id_key(v);
        let Some(built_on) = parent.ids.get(&key) else {
            continue;
        };
        if pushed.get(&key) != Some(built_on) {
            return Err(StageError::new(
                FailureKind::Provenance,
                format!(
                    "not pushed: it was built on {built_on}, but its parent {} pushed {}",
                    parent.reference,
                    pushed
                        .get(&key)
                        .map_or("nothing of its platform", String::as_str)
                ),
            ));
        }
    }
    Ok(())
}

/// Names the cases from `from` on after the platform they ran on
/// (`linux/arm64: checks.yaml`): an image's platforms run the same tests.
fn name_cases_after(cases: &Cases, from: usize, platform: &str) {
    if let Ok(mut cases) = cases.lock() {
        for case in cases.iter_mut().skip(from) {
            case.classname = format!("{platform}: {}", case.classname);
        }
    }
}
