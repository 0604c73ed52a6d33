//! The stages of one image's pipeline.

use crate::backend::Backend;
use crate::record::{
    self, Growth, ImageResult, Outcome, OutputDirs, PlatformImage, RunLog, StageResult, Status,
};
use crate::run::{Event, RunOptions, Stage, Target, secs_since};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant};
use strata_core::inputs;
use strata_core::reference::ImageRef;
use strata_engine::BuildRequest;
use strata_report::image_diff;
use strata_report::junit::{self, CaseOutcome, TestCase};
use strata_report::{ManifestData, manifest_json, manifest_markdown, ref_file_stem};
use tokio::sync::{mpsc, watch};

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
    /// The image each build replaced under its reference (its ID), which
    /// the image's prune stage removes: a run prunes only what it left.
    pub replaced: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// How much each image grew since its previous build, by reference, as
    /// its manifest stage found.
    pub growth: std::sync::Mutex<std::collections::HashMap<String, Growth>>,
    /// The bytes each image's prune stage freed, by reference.
    pub reclaimed: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    /// The image ID each build of this run made, by reference: what its
    /// tests ran on and what its push must send.
    pub built: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The images (key and plan) a child in this run is built on for real:
    /// those must be in the engine even when reused.
    pub built_on: std::collections::HashSet<(String, String)>,
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
}

impl Family {
    /// Resolves when every child's build has ended (or will never start).
    async fn children_built(&mut self) {
        for child in &mut self.children_built {
            let _ = child.wait_for(|built| *built).await;
        }
    }
}

/// pytest's exit code when it collected no tests: a pass for strata.
const PYTEST_NO_TESTS: i32 = 5;

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

type StageOutcome = Result<Option<String>, String>;

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
) -> (StageResult, Result<Option<String>, String>)
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
        r = tokio::time::timeout(limit, run) => r.unwrap_or_else(|_| Err(format!(
            "timed out after {}",
            strata_core::limits::format_duration(limit)
        ))),
        () = ctx.cancelled() => Err("interrupted".to_string()),
    };
    let result = StageResult {
        stage: stage.name().to_string(),
        status: if outcome.is_ok() {
            Status::Ok
        } else {
            Status::Failed
        },
        duration_secs: secs_since(start),
        message: match &outcome {
            Ok(m) => m.clone(),
            Err(e) => Some(e.clone()),
        },
        tests: Vec::new(),
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
        message: Some(why.into()),
        tests: Vec::new(),
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
fn reused<'t, B: Backend>(ctx: &StageCtx<B>, target: &'t Target) -> Option<&'t str> {
    target
        .build
        .reuse
        .as_deref()
        .filter(|_| target.build.input_parts.builder == ctx.builder.name())
}

/// The target's input key: the plan's, or computed now that its base is
/// known (the parent this run built: its pushed digest, else its image ID).
async fn input_key<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_digest: Option<&str>,
) -> Option<String> {
    let mut parts = target.build.input_parts.clone();
    if parts.builder == ctx.builder.name()
        && let Some(key) = &target.build.inputs
    {
        return Some(key.clone());
    }
    parts.builder = ctx.builder.name().to_string();
    let Some(base_ref) = &target.build.base_ref else {
        return Some(inputs::key(&parts, None));
    };
    let pinned = base_ref.split_once('@').map(|(_, d)| d.to_string());
    let base = match parent_digest
        .map(str::to_string)
        .or(pinned)
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
    parent_digest: Option<&str>,
    key: Option<&str>,
    pushed: bool,
) -> StageOutcome {
    match s {
        Stage::Build => match reused(ctx, target) {
            Some(from) => reuse(ctx, target, from).await,
            None => build(ctx, target, parent_digest, key).await,
        },
        Stage::BasicTests | Stage::IntegrationTests => tests(ctx, target, s, cases).await,
        Stage::Push => match reused(ctx, target).filter(|r| inputs::in_registry(r)) {
            // Tagged registry-side after the run, at the digest it stands
            // at: a push could change it.
            Some(from) => Ok(from.split_once('@').map(|(_, d)| d.to_string())),
            None => push(ctx, target, key).await,
        },
        Stage::Manifest => manifest(ctx, target).await,
        Stage::Prune => prune(ctx, target, key, pushed).await,
    }
}

/// What an image's children are built on once its gate opens: its pushed
/// digest, and for an image of several platforms each platform's, by
/// platform (`linux/arm64`). Empty when nothing was pushed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pushed {
    pub digest: Option<String>,
    pub platforms: BTreeMap<String, String>,
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

/// What the image's push left: its digest and its platforms'.
fn pushed_now(digest: &Option<String>, platforms: &std::sync::Mutex<Vec<PlatformImage>>) -> Pushed {
    Pushed {
        digest: digest.clone(),
        platforms: platforms
            .lock()
            .map(|p| {
                p.iter()
                    .filter_map(|i| Some((i.platform.clone(), i.digest.clone()?)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Runs an image's whole pipeline. `gate` is called exactly once: with the
/// pushed digest (if any) when children may start, or with the failure.
pub(crate) async fn run_image<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent: Pushed,
    gate: impl FnOnce(Result<Pushed, String>),
    mut family: Family,
) -> ImageResult {
    let reference = target.build.reference.as_str();
    let start = Instant::now();
    let mut gate = Some(gate);
    let mut open_gate = |g: Result<Pushed, String>| {
        if let Some(f) = gate.take() {
            f(g);
        }
    };
    let mut stages = Vec::new();
    let mut failure: Option<(Stage, String)> = None;
    let mut digest: Option<String> = None;
    let variants = target.variants();
    // What each variant is built on: the parent's pushed image, of the
    // same platform for a platform's image.
    let parent_of = |v: &Target| match &v.platform {
        Some(p) => parent.platforms.get(&p.to_string()).map(String::as_str),
        None => parent.digest.as_deref(),
    };
    // Each variant's key (each platform's image has its own).
    let mut variant_keys = Vec::with_capacity(variants.len());
    for v in &variants {
        variant_keys.push(input_key(ctx, v, parent_of(v)).await);
    }
    // The image's own key: a build of several platforms has only theirs.
    let key = match variants.as_slice() {
        [one] if one.platform.is_none() => variant_keys[0].clone(),
        _ => None,
    };
    let pushed: std::sync::Mutex<Vec<PlatformImage>> = Default::default();
    for s in Stage::ALL {
        if let Some((failed, _)) = &failure {
            stages.push(not_run(s, &format!("{failed} failed")));
            continue;
        }
        let limit =
            strata_core::limits::timeout(s.key(), &target.image.timeouts, &ctx.options.timeouts)
                .unwrap_or(Duration::MAX);
        let cases = Cases::default();
        let skip = skip_reason(&ctx.options, target, s);
        let in_registry = pushed_ok(&stages);
        if s == Stage::Prune && skip.is_none() && in_registry {
            // Its children are built on its local copy: prune waits for
            // them, without holding a slot they may need.
            drop(family.permit.take());
            tokio::select! {
                () = family.children_built() => {}
                () = ctx.cancelled() => {}
            }
        }
        let (mut result, outcome) = if let Some(why) = skip {
            (not_run(s, &why), Ok(None))
        } else if variants.len() == 1 && variants[0].platform.is_none() {
            let run = run_stage(
                ctx,
                target,
                s,
                &cases,
                parent_of(target),
                key.as_deref(),
                in_registry,
            );
            stage(ctx, reference, s, limit, run).await
        } else {
            // Each platform in turn; the first that fails fails the image,
            // so no index of part of its platforms is ever published.
            let run = async {
                let mut said = Vec::new();
                for (v, key) in variants.iter().zip(&variant_keys) {
                    let platform = v
                        .platform
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    let from = cases.lock().map_or(0, |c| c.len());
                    let m = run_stage(ctx, v, s, &cases, parent_of(v), key.as_deref(), in_registry)
                        .await;
                    name_cases_after(&cases, from, &platform);
                    let m = m.map_err(|e| format!("{platform}: {e}"))?;
                    if s == Stage::Push {
                        if let Ok(mut pushed) = pushed.lock() {
                            pushed.push(PlatformImage {
                                platform: platform.clone(),
                                reference: v.build.reference.clone(),
                                image_id: ctx.built_id(&v.build.reference),
                                digest: m.clone(),
                                inputs: key.clone(),
                            });
                        }
                    }
                    said.push(format!("{platform}: {}", m.unwrap_or_else(|| "ok".into())));
                }
                // The image's digest is its index's, put after the run.
                Ok((s != Stage::Push).then(|| said.join("; ")))
            };
            stage(ctx, reference, s, limit, run).await
        };
        if outcome.is_err()
            && matches!(
                s,
                Stage::BasicTests | Stage::IntegrationTests | Stage::Manifest
            )
        {
            // A stage cut off leaves the containers its tests started.
            for v in &variants {
                let _ = ctx
                    .engine_for(v)
                    .remove_containers_of_image(&v.build.reference)
                    .await;
            }
        }
        result.tests = cases.into_inner().unwrap_or_default();
        if let (Stage::BasicTests, Status::Skipped, Some(earlier)) =
            (s, &result.status, &target.earlier)
            && reused(ctx, target).is_some()
        {
            // Reported as run where they ran, which the message says.
            result.tests = earlier.cases.clone();
            result.message = Some(format!(
                "{}: {} when {} was built (revision {}, {})",
                result.message.take().unwrap_or_default(),
                strata_core::text::count(earlier.cases.len(), "test") + " passed",
                earlier.reference,
                earlier.revision,
                earlier.finished
            ));
        }
        if let Err(e) = &outcome
            && result.tests.iter().all(|c| !c.is_failure())
            && matches!(s, Stage::BasicTests | Stage::IntegrationTests)
        {
            // The report must show a failed stage even when no test case
            // says why (a time limit, a crash, a collection error).
            result.tests.push(TestCase {
                name: s.name().to_string(),
                classname: reference.to_string(),
                time_secs: result.duration_secs,
                outcome: CaseOutcome::Error {
                    message: e.clone(),
                    details: e.clone(),
                },
                output: String::new(),
            });
        }
        if s == Stage::Build {
            let _ = family.built.send(true);
        }
        if s == Stage::BasicTests && outcome.is_ok() {
            for (v, key) in variants.iter().zip(&variant_keys) {
                mark_tested(ctx, v, key.as_deref()).await;
            }
        }
        stages.push(result);
        match outcome {
            Ok(message) => {
                if s == Stage::Push {
                    digest = message;
                }
            }
            Err(e) => {
                open_gate(Err(format!("{s} failed")));
                failure = Some((s, e));
            }
        }
        // Children build on what this image is once tested (and pushed).
        if failure.is_none() && (s == Stage::Push) {
            open_gate(Ok(pushed_now(&digest, &pushed)));
        }
    }
    open_gate(Ok(pushed_now(&digest, &pushed)));
    let reused = reused(ctx, target).map(str::to_string);
    let (outcome, message) = match (&failure, &reused) {
        (Some((s, e)), _) => (Outcome::Failed, format!("{s} failed: {e}")),
        (None, Some(from)) if target.build.resumed => (
            Outcome::Resumed,
            format!(
                "already built and tested under this run's tag at the same inputs ({from}): not built again"
            ),
        ),
        (None, Some(from)) => (Outcome::Reused, format!("same inputs as {from}: not built")),
        (None, None) => (Outcome::Built, format!("built {reference}")),
    };
    let result = ImageResult {
        image: target.build.image.clone(),
        plan: target.build.plan.clone(),
        reference: reference.to_string(),
        success: failure.is_none(),
        outcome,
        message,
        image_id: if target.build.platforms.is_empty() {
            ctx.built_id(reference)
        } else {
            None
        },
        test_key: target.test_key.clone(),
        digest,
        duration_secs: secs_since(start),
        stages,
        inputs: key,
        reused,
        platforms: pushed.into_inner().unwrap_or_default(),
        growth: ctx.growth.lock().ok().and_then(|mut g| g.remove(reference)),
        reclaimed_bytes: ctx
            .reclaimed
            .lock()
            .ok()
            .and_then(|mut r| r.remove(reference)),
    };
    ctx.finished(&result);
    result
}

const REVISION_LABEL: &str = "org.opencontainers.image.revision";
const CREATED_LABEL: &str = "org.opencontainers.image.created";
/// The local image ID of an offline build's base.
const BASE_ID_LABEL: &str = "io.strata.base.id";

/// Checks that a base pinned to a local image ID (offline) still is that
/// image: a tag moved since the plan must not slip another base in.
async fn check_local_base<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> Result<(), String> {
    let (Some(base), Some(id)) = (&target.build.base_ref, &target.build.base_image_id) else {
        return Ok(());
    };
    match ctx.engine_for(target).inspect_image(base).await {
        Ok(Some(info)) if info.id == *id => Ok(()),
        Ok(Some(info)) => Err(format!(
            "the base {base} is now image {}, not {id} as planned: it was re-tagged since; run strata again",
            info.id
        )),
        Ok(None) => Err(format!(
            "the base {base} ({id}) is gone from the local store since the plan; run strata again"
        )),
        Err(e) => Err(format!("cannot check the base {base}: {e}")),
    }
}

/// The OCI annotations every image carries, so it can be traced to its
/// commit and its parent.
fn labels<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_digest: Option<&str>,
    created: String,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (REVISION_LABEL.to_string(), ctx.options.revision.clone()),
        (CREATED_LABEL.to_string(), created),
        (
            "org.opencontainers.image.version".to_string(),
            target.build.tag.clone(),
        ),
        ("io.strata.image".to_string(), target.build.image.clone()),
        ("io.strata.plan".to_string(), target.build.plan.clone()),
    ]);
    if let Some(source) = &ctx.options.source {
        labels.insert("org.opencontainers.image.source".into(), source.clone());
    }
    if let Some(base) = &target.build.base_ref {
        labels.insert("org.opencontainers.image.base.name".into(), base.clone());
        let pinned = base
            .parse::<ImageRef>()
            .ok()
            .and_then(|r| r.digest().map(ToString::to_string));
        if let Some(d) = parent_digest.map(str::to_string).or(pinned) {
            labels.insert("org.opencontainers.image.base.digest".into(), d);
        }
        // Offline, the base is a local image: its ID is what it was pinned to.
        if let Some(id) = &target.build.base_image_id {
            labels.insert(BASE_ID_LABEL.into(), id.clone());
        }
    }
    labels
}

/// The created time of `before`, the image already at the target's ref,
/// when it was built from the same revision. Building a revision again then
/// gives the same labels, so the layer cache still applies: a label that
/// changes on every run makes every image after the root rebuild from
/// scratch.
fn previous_created<B: Backend>(
    ctx: &StageCtx<B>,
    before: Option<&strata_engine::ImageInfo>,
) -> Option<String> {
    let info = before?;
    if info.labels.get(REVISION_LABEL) != Some(&ctx.options.revision) {
        return None;
    }
    info.labels.get(CREATED_LABEL).cloned()
}

/// Gives the run's reference to an image already built from the same
/// inputs, pulling it (pinned by digest) when it stands in a registry.
/// The manifest the build of a reused image recorded for this very
/// reference (a resumed image: an earlier attempt or a job of this run
/// wrote it), if any: what its manifest stage writes instead of making it.
fn recorded_manifest<'t, B: Backend>(
    ctx: &StageCtx<B>,
    target: &'t Target,
) -> Option<&'t crate::run::RecordedManifest> {
    reused(ctx, target)?;
    target
        .earlier
        .as_ref()?
        .manifests
        .get(&target.build.reference)
}

/// Whether this run needs a reused image in the engine: to build a child
/// on it, to test it, or to make its manifest. A resumed image whose
/// manifest was recorded and that nothing tests or builds on is only
/// tagged, in the registry, after the run: a finish of a job graph pulls
/// nothing.
fn needed_here<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> bool {
    let tests_run =
        |s: Stage| skip_reason(&ctx.options, target, s).is_none() && !target.tests(s).is_empty();
    recorded_manifest(ctx, target).is_none()
        || tests_run(Stage::BasicTests)
        || tests_run(Stage::IntegrationTests)
        || ctx
            .built_on
            .contains(&(target.build.image.clone(), target.build.plan.clone()))
}

async fn reuse<B: Backend>(ctx: &StageCtx<B>, target: &Target, from: &str) -> StageOutcome {
    let reference = &target.build.reference;
    if inputs::in_registry(from) && !needed_here(ctx, target) {
        return Ok(Some(format!(
            "same inputs as {from}: not built, and not pulled (nothing in this run needs it here)"
        )));
    }
    if inputs::in_registry(from) {
        let auth = auth_for(ctx, registry_of(from)).await;
        ctx.engine_for(target)
            .pull(from, auth.as_ref())
            .await
            .map_err(|e| format!("cannot pull {from}, which has the same inputs: {e}"))?;
    }
    let (repo, tag) = strata_engine::split_reference(reference).map_err(|e| e.to_string())?;
    ctx.engine_for(target)
        .tag(from, &repo, &tag)
        .await
        .map_err(|e| format!("cannot tag {from} as {reference}: {e}"))?;
    Ok(Some(format!("same inputs as {from}: not built")))
}

async fn build<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_digest: Option<&str>,
    key: Option<&str>,
) -> StageOutcome {
    let log_path = ctx.log_path(&target.build.reference, "build");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    check_local_base(ctx, target).await?;
    let before = ctx
        .engine_for(target)
        .inspect_image(&target.build.reference)
        .await
        .ok()
        .flatten();
    let created = previous_created(ctx, before.as_ref()).unwrap_or_else(record::now_rfc3339);
    let request = BuildRequest {
        context_dir: ctx.options.images_dir.join(&target.build.image),
        dockerfile: "Dockerfile".into(),
        tags: vec![target.build.reference.clone()],
        build_args: target.build.build_args.clone(),
        labels: {
            let mut labels = labels(ctx, target, parent_digest, created);
            if let Some(key) = key {
                labels.insert(inputs::LABEL.to_string(), key.to_string());
            }
            labels
        },
        cache_from: match &target.cache_from {
            Some(cache) => pull_cache(ctx, target, cache, &mut log).await,
            None => Vec::new(),
        },
        builder: ctx.builder,
        platform: target.platform.as_ref().map(ToString::to_string),
        secrets: ctx.options.secrets.clone(),
        // The base may be pulled from a private registry.
        registry_auth: match &target.build.base_ref {
            Some(base) => auth_for(ctx, registry_of(base)).await.into_iter().collect(),
            None => Vec::new(),
        },
    };
    let engine = ctx.engine_for(target);
    // The engine's disk at its fullest during the build: a step that
    // fills it may fail saying anything (or nothing) about it, and the
    // space comes back once the failed step is cleaned up.
    let mut fullest: Option<strata_engine::DiskSpace> = None;
    let built = {
        let building = engine.build(&request, |line| {
            let _ = writeln!(log, "{line}");
            ctx.emit(Event::BuildOutput {
                reference: target.build.reference.clone(),
                line: line.to_string(),
            });
        });
        tokio::pin!(building);
        loop {
            tokio::select! {
                built = &mut building => break built,
                () = tokio::time::sleep(DISK_SAMPLE) => {
                    if let Ok(space) = engine.disk_space().await
                        && fullest.as_ref().is_none_or(|f| space.free_bytes < f.free_bytes)
                    {
                        fullest = Some(space);
                    }
                }
            }
        }
    };
    let built = match built {
        Ok(built) => built,
        Err(e) => {
            let e = engine_error(engine, &e, fullest.as_ref()).await;
            let _ = writeln!(log, "ERROR: {e}");
            return Err(format!("{e} (log: {})", log_path.display()));
        }
    };
    if let Ok(mut ids) = ctx.built.lock() {
        ids.insert(target.build.reference.clone(), built.id.clone());
    }
    if let Some(before) = before.filter(|b| b.id != built.id) {
        if let Ok(mut replaced) = ctx.replaced.lock() {
            replaced.insert(target.build.reference.clone(), before.id);
        }
    }
    if let Some(max) = target.image.max_size {
        check_size(ctx, target, &built.id, max)
            .await
            .inspect_err(|e| {
                let _ = writeln!(log, "strata: {e}");
            })?;
    }
    Ok(Some(built.id))
}

/// How often a build samples its engine's free disk space.
const DISK_SAMPLE: Duration = Duration::from_millis(100);

/// What to tell of an engine error: its text, and for a lack of disk
/// space where the engine keeps its data, the room left there, and what
/// frees some. A failure while the disk was nearly full (`fullest`, the
/// least free space seen during the operation) is told as one, whatever
/// the engine's message said.
async fn engine_error<B: Backend>(
    engine: &B,
    e: &strata_engine::EngineError,
    fullest: Option<&strata_engine::DiskSpace>,
) -> String {
    let filled = fullest.filter(|f| !e.is_out_of_space() && f.is_nearly_full());
    if !e.is_out_of_space() && filled.is_none() {
        return e.to_string();
    }
    let space = match engine.disk_space().await {
        Ok(space) => space.to_string(),
        Err(why) => format!("the engine's data root could not be asked for ({why})"),
    };
    let what = match filled {
        Some(fullest) => {
            format!("{e}; the engine ran out of disk space: while it ran, {fullest}; now {space}")
        }
        None => format!("{e}; {space}"),
    };
    format!(
        "{what}. Free space on the engine (docker image prune, docker builder prune), or give the images \
         of the stack `prune: true` so a run removes its own once they are pushed and their children built"
    )
}

/// Fails an image above its `max_size`, before anything pushes it, with
/// what would help shrink it: its three largest layers.
async fn check_size<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    id: &str,
    max: u64,
) -> Result<(), String> {
    use strata_core::limits::format_size;
    let info = ctx
        .engine_for(target)
        .inspect_image(id)
        .await
        .map_err(|e| format!("cannot check the size against max_size: {e}"))?
        .ok_or_else(|| format!("the image {id} is gone; its size cannot be checked"))?;
    if info.size <= max {
        return Ok(());
    }
    let mut layers = ctx
        .engine_for(target)
        .history(id)
        .await
        .map_err(|e| format!("cannot read the layers: {e}"))?;
    layers.sort_by_key(|l| std::cmp::Reverse(l.size));
    let largest: Vec<String> = layers
        .iter()
        .take(3)
        .map(|l| {
            format!(
                "{} `{}`",
                format_size(l.size),
                strata_report::clean_command(&l.created_by)
            )
        })
        .collect();
    Err(format!(
        "the image is {}, over its max_size of {}; largest layers: {}",
        format_size(info.size),
        format_size(max),
        largest.join(", ")
    ))
}

/// Pulls a published image to use as build cache; a failed pull only costs
/// the cache, so it is logged, not fatal.
async fn pull_cache<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    cache: &str,
    log: &mut std::fs::File,
) -> Vec<String> {
    let registry = registry_of(cache);
    match ctx
        .engine_for(target)
        .pull(cache, auth_for(ctx, registry).await.as_ref())
        .await
    {
        Ok(()) => {
            let _ = writeln!(log, "strata: using {cache} as build cache");
            vec![cache.to_string()]
        }
        Err(e) => {
            let _ = writeln!(
                log,
                "strata: could not pull {cache} for cache ({e}); building without it"
            );
            Vec::new()
        }
    }
}

/// The registry host of a reference, by Docker's rules (`docker.io` when
/// it names none).
fn registry_of(reference: &str) -> String {
    reference.parse::<ImageRef>().map_or_else(
        |_| strata_core::reference::DEFAULT_REGISTRY.to_string(),
        |r| r.name().registry().to_string(),
    )
}

/// Most bytes of a test case's output kept in the run's records and
/// junit.xml; the whole output is in the stage's log.
const CASE_OUTPUT_MAX: usize = 64 * 1024;

/// Runs a test stage: the structure tests of its folders in one container
/// of the image, then pytest on the folders that hold Python tests, the
/// way the seed layout's users run it (`python3 -m pytest -x <dirs>` in the
/// images folder, `TEST_IMAGE=<ref>`). Every case lands in `cases`.
async fn tests<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    s: Stage,
    cases: &Cases,
) -> StageOutcome {
    let tests = target.tests(s);
    if tests.is_empty() {
        return Ok(Some("no tests".into()));
    }
    let reference = &target.build.reference;
    let log_path = ctx.log_path(reference, s.name());
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let record = |new: Vec<TestCase>| {
        if let Ok(mut c) = cases.lock() {
            c.extend(new);
        }
    };
    if !tests.structure.is_empty() {
        let results = ctx
            .engine_for(target)
            .run_structure_tests(reference, &tests.structure)
            .await;
        let results = match results {
            Ok(results) => results,
            Err(e) => {
                let e = engine_error(ctx.engine_for(target), &e, None).await;
                let _ = writeln!(log, "ERROR: {e}");
                return Err(format!(
                    "structure tests: {e} (log: {})",
                    log_path.display()
                ));
            }
        };
        let mut new = Vec::new();
        for (file, file_cases) in tests.structure.iter().zip(results) {
            for case in file_cases {
                let _ = writeln!(
                    log,
                    "{} {}: {}{}",
                    if case.passed { "PASS" } else { "FAIL" },
                    file.file,
                    case.name,
                    case.failures
                        .iter()
                        .map(|f| format!("\n    {f}"))
                        .collect::<String>()
                );
                new.push(structure_case(&file.file, case));
            }
        }
        record(new);
    }
    if !tests.pytest.is_empty() {
        let report = ctx.dirs.logs.join(format!(
            "{}.{}.junit.xml",
            ref_file_stem(reference),
            s.name()
        ));
        let ran = pytest(ctx, target, &tests.pytest, &report, &log_path, &mut log).await;
        // pytest writes its report even when tests fail.
        let found = std::fs::read_to_string(&report)
            .map_err(|e| e.to_string())
            .and_then(|xml| junit::parse(&xml).map_err(|e| e.to_string()));
        let failing = match found {
            Ok(found) => {
                let failing = found.iter().any(TestCase::is_failure);
                record(found.into_iter().map(bounded).collect());
                failing
            }
            Err(e) => {
                let _ = writeln!(log, "strata: cannot read {}: {e}", report.display());
                false
            }
        };
        if ran? == PytestEnd::TestsFailed && !failing {
            return Err(format!(
                "pytest reported failed tests, but its report names none; see {}",
                log_path.display()
            ));
        }
    }
    let (failure, out_of_space) = match verdict(cases, &log_path) {
        Verdict::Passed(message) => return Ok(Some(message)),
        Verdict::Failed {
            message,
            out_of_space,
        } => (message, out_of_space),
    };
    if !out_of_space {
        return Err(failure);
    }
    let space = match ctx.engine_for(target).disk_space().await {
        Ok(space) => space.to_string(),
        Err(e) => format!("the engine's data root could not be asked for ({e})"),
    };
    Err(format!(
        "{failure}; a failing test ran out of disk space: {space}"
    ))
}

/// What a test stage's cases add up to.
enum Verdict {
    Passed(String),
    Failed {
        message: String,
        /// A failing case's text says the disk was full.
        out_of_space: bool,
    },
}

/// The verdict over every case, read under the lock (outputs can be large:
/// no copy).
fn verdict(cases: &Cases, log_path: &Path) -> Verdict {
    let Ok(all) = cases.lock() else {
        return Verdict::Failed {
            message: "the test results could not be read".into(),
            out_of_space: false,
        };
    };
    let failed: Vec<&TestCase> = all.iter().filter(|c| c.is_failure()).collect();
    if all.is_empty() {
        return Verdict::Passed("no tests collected".into());
    }
    if failed.is_empty() {
        let passed = all
            .iter()
            .filter(|c| c.outcome == CaseOutcome::Passed)
            .count();
        return Verdict::Passed(strata_core::text::count(passed, "test") + " passed");
    }
    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    Verdict::Failed {
        message: format!(
            "{} of {} failed: {}; see {}",
            failed.len(),
            strata_core::text::count(all.len(), "test"),
            strata_core::text::list_some(&names, 5),
            log_path.display()
        ),
        out_of_space: failed.iter().any(|c| {
            strata_engine::says_out_of_space(&c.output)
                || matches!(&c.outcome, CaseOutcome::Failed { details, .. } | CaseOutcome::Error { details, .. }
                    if strata_engine::says_out_of_space(details))
        }),
    }
}

/// A structure test's result as a test case.
fn structure_case(file: &str, case: strata_structure::CaseResult) -> TestCase {
    let outcome = if case.passed {
        CaseOutcome::Passed
    } else {
        CaseOutcome::Failed {
            message: case.failures.first().cloned().unwrap_or_default(),
            details: case.failures.join("\n"),
        }
    };
    bounded(TestCase {
        name: case.name,
        classname: file.to_string(),
        time_secs: case.duration_secs,
        outcome,
        output: case.output,
    })
}

/// A case with its output cut to [`CASE_OUTPUT_MAX`] bytes.
fn bounded(mut case: TestCase) -> TestCase {
    if case.output.len() > CASE_OUTPUT_MAX {
        let mut end = CASE_OUTPUT_MAX;
        while !case.output.is_char_boundary(end) {
            end -= 1;
        }
        case.output.truncate(end);
        case.output
            .push_str("\n[cut: the whole output is in the stage's log]");
    }
    case
}

/// Kills a process group when dropped: pytest runs in its own group, so a
/// stage past its time limit (or interrupted) stops everything pytest
/// started, not only pytest.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process
            // group; it touches no memory. A group already gone is ESRCH,
            // which is what we want.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// How a pytest run that is not an error ended.
#[derive(Debug, PartialEq, Eq)]
enum PytestEnd {
    /// Every test passed, or there were none.
    Passed,
    /// Some tests failed (exit code 1): its report says which.
    TestsFailed,
}

/// Runs pytest on `dirs`, writing JUnit XML to `report`.
async fn pytest<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    dirs: &[String],
    report: &Path,
    log_path: &Path,
    log: &mut std::fs::File,
) -> Result<PytestEnd, String> {
    let cannot_write = |e: std::io::Error| format!("cannot write {}: {e}", log_path.display());
    let _ = std::fs::remove_file(report);
    let out = log.try_clone().map_err(cannot_write)?;
    let err = log.try_clone().map_err(cannot_write)?;
    let mut child = tokio::process::Command::new(&ctx.options.python)
        .args(["-m", "pytest", "-x", "-p", "no:cacheprovider"])
        .arg(format!("--junitxml={}", report.display()))
        .args(dirs)
        .current_dir(&ctx.options.images_dir)
        .env("TEST_IMAGE", &target.build.reference)
        .env(
            "TEST_PLATFORM",
            target
                .platform
                .as_ref()
                .map_or_else(|| ctx.options.platform.clone(), ToString::to_string),
        )
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {} -m pytest: {e}", ctx.options.python))?;
    let _group = ProcessGroup(child.id());
    let status = child.wait().await.map_err(|e| format!("pytest: {e}"))?;
    match status.code() {
        Some(0 | PYTEST_NO_TESTS) => Ok(PytestEnd::Passed),
        Some(1) => Ok(PytestEnd::TestsFailed),
        Some(code) => Err(format!(
            "pytest exited with {code} (an error outside the tests); see {}",
            log_path.display()
        )),
        None => Err(format!("pytest was killed; see {}", log_path.display())),
    }
}

/// The credentials for a registry host, asked on a blocking thread: a
/// credential helper is a process, and must not stall the runtime.
async fn auth_for<B: Backend>(
    ctx: &StageCtx<B>,
    registry: String,
) -> Option<strata_engine::RegistryAuth> {
    let auth = ctx.options.auth.clone();
    tokio::task::spawn_blocking(move || auth(&registry))
        .await
        .unwrap_or(None)
}

/// The local tag that says an image of these inputs passed its basic
/// tests (`name:inputs-<hex>`, the registry's reuse tag): put once its
/// tests pass, pushed with it, and what an offline run reuses. `None` for
/// an image with no key, reused (its tag exists) or built per platform.
fn tested_reference<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    key: Option<&str>,
) -> Option<(String, String)> {
    // The image of a multi-platform build is its platforms' images.
    if reused(ctx, target).is_some()
        || (target.platform.is_none() && !target.build.platforms.is_empty())
    {
        return None;
    }
    let (name, _) = strata_engine::split_reference(&target.build.reference).ok()?;
    Some((name, inputs::reuse_tag(key?)))
}

/// Tags an image whose basic tests passed (or that has none by its spec)
/// with its [`tested_reference`]. An image whose tests were not asked for
/// is not marked: nothing says it would pass them.
async fn mark_tested<B: Backend>(ctx: &StageCtx<B>, target: &Target, key: Option<&str>) {
    if skip_reason(&ctx.options, target, Stage::BasicTests)
        .is_some_and(|why| why != "basic_tests: false")
    {
        return;
    }
    let Some((name, tag)) = tested_reference(ctx, target, key) else {
        return;
    };
    if let Err(e) = ctx
        .engine_for(target)
        .tag(&target.build.reference, &name, &tag)
        .await
    {
        ctx.run_log.line(&format!(
            "{}: cannot tag {name}:{tag} ({e}); later runs will build these inputs again",
            target.build.reference
        ));
    }
}

/// Pushes the target's image, then its [`tested_reference`] when that tag
/// stands at the same image: the registry's record that these inputs were
/// built and tested, which a later run (a merge, a rerun after a fault)
/// reuses. Only the run's own tag failing fails the stage.
async fn push<B: Backend>(ctx: &StageCtx<B>, target: &Target, key: Option<&str>) -> StageOutcome {
    let log_path = ctx.log_path(&target.build.reference, "push");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let built = ctx.built_id(&target.build.reference);
    if let Some(built) = &built {
        still_the_built_image(ctx, target, built, None).await?;
    }
    let digest = push_reference(ctx, target, &target.build.reference, &mut log, &log_path).await?;
    if let (Some(built), Some(digest)) = (&built, &digest) {
        still_the_built_image(ctx, target, built, Some(digest)).await?;
    }
    if let Some((name, tag)) = tested_reference(ctx, target, key) {
        let tested = format!("{name}:{tag}");
        let engine = ctx.engine_for(target);
        let same = match (
            engine.inspect_image(&tested).await,
            engine.inspect_image(&target.build.reference).await,
        ) {
            (Ok(Some(a)), Ok(Some(b))) => a.id == b.id,
            _ => false,
        };
        if same && let Err(e) = push_reference(ctx, target, &tested, &mut log, &log_path).await {
            ctx.run_log.line(&format!(
                "{}: {e}; later runs will build these inputs again",
                target.build.reference
            ));
        }
    }
    Ok(digest)
}

/// Checks that the target's reference still names `built`, the image this
/// run built and tested, on the engine (another process may have tagged
/// something else with it), and after the push (`pushed`) that the engine
/// pushed that image: its registry digests hold the pushed one. A push
/// sends a name, so this is what makes it send the built image.
async fn still_the_built_image<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    built: &str,
    pushed: Option<&str>,
) -> Result<(), String> {
    let reference = &target.build.reference;
    let info = ctx
        .engine_for(target)
        .inspect_image(reference)
        .await
        .map_err(|e| format!("cannot check what {reference} names before pushing it: {e}"))?;
    let now = info.as_ref().map_or("nothing", |i| i.id.as_str());
    let when = if pushed.is_some() {
        "while it was pushed"
    } else {
        "after its tests"
    };
    if now != built {
        return Err(format!(
            "{reference} names {now} on the engine, not {built}, the image this run built and tested: another process tagged it {when}; nothing of it is published (run again)"
        ));
    }
    if let (Some(digest), Some(info)) = (pushed, &info) {
        let name = ImageRef::from_str(reference).map_err(|e| e.to_string())?;
        let name = name.name();
        // The engine writes repository digests in Docker's short form
        // (`org/img@…` for Docker Hub): compared parsed.
        let carries = info.repo_digests.iter().any(|d| {
            d.parse::<ImageRef>()
                .is_ok_and(|r| r.name() == name && r.digest().is_some_and(|d| d.as_str() == digest))
        });
        if !carries {
            return Err(format!(
                "the engine pushed {name}@{digest}, which is not the image this run built ({built}); its tag is not put (run again)"
            ));
        }
    }
    Ok(())
}

/// Pushes `reference` (the target's, or another tag of its image), trying
/// transient failures again with backoff.
async fn push_reference<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    reference: &str,
    log: &mut std::fs::File,
    log_path: &Path,
) -> Result<Option<String>, String> {
    let auth = auth_for(ctx, registry_of(reference)).await;
    let policy = strata_core::retry::RetryPolicy::default();
    let mut attempt = 1;
    loop {
        let pushed = ctx
            .engine_for(target)
            .push(reference, auth.as_ref(), |line| {
                let _ = writeln!(log, "{line}");
            })
            .await;
        match pushed {
            Ok(digest) => return Ok(Some(digest)),
            Err(e) if policy.tries_again(attempt) && e.is_transient() => {
                let delay = policy.delay(attempt, None);
                let _ = writeln!(
                    log,
                    "strata: push attempt {attempt} failed ({e}); retrying in {:.2}s",
                    delay.as_secs_f64()
                );
                ctx.run_log.line(&format!(
                    "{reference} push attempt {attempt} failed: {e}; retrying"
                ));
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(format!(
                    "{e} (registry {}, after {}; log: {})",
                    registry_of(reference),
                    strata_core::text::count(attempt as usize, "attempt"),
                    log_path.display()
                ));
            }
        }
    }
}

async fn manifest<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> StageOutcome {
    let reference = &target.build.reference;
    if let Some(recorded) = recorded_manifest(ctx, target) {
        let stem = ref_file_stem(reference);
        for (ext, text) in [("md", &recorded.markdown), ("json", &recorded.json)] {
            let path = ctx.dirs.manifests.join(format!("{stem}.{ext}"));
            record::write_atomic(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        return Ok(Some(format!(
            "as its build recorded it ({})",
            target.earlier.as_ref().map_or("", |e| e.revision.as_str())
        )));
    }
    let commands: Vec<String> = target
        .info_cmds
        .iter()
        .map(|(_, c)| c.command.clone())
        .collect();
    let outputs = if commands.is_empty() {
        Vec::new()
    } else {
        ctx.engine_for(target)
            .run_commands(reference, &commands)
            .await
            .map_err(|e| e.to_string())?
    };
    let history = ctx
        .engine_for(target)
        .history(reference)
        .await
        .map_err(|e| e.to_string())?;
    let info = ctx
        .engine_for(target)
        .inspect_image(reference)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{reference} is not in the engine"))?;
    let data = ManifestData {
        reference: reference.clone(),
        image: target.build.image.clone(),
        plan: target.build.plan.clone(),
        image_id: info.id,
        digest: info
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string()),
        size: info.size,
        created: info.created,
        revision: ctx.options.revision.clone(),
        base_ref: target.build.base_ref.clone(),
        layers: history.into_iter().map(crate::describe::layer_of).collect(),
        info: crate::describe::info_outputs(&target.info_cmds, outputs),
        changes: None,
    };
    let mut data = data;
    let mut compared = String::new();
    if let Some(previous) = &target.previous {
        match previous_side(ctx, target, previous, &target.info_cmds).await {
            Ok(side) => {
                let diff = image_diff::compare(&side, &image_diff::ImageSide::from(&data));
                compared = format!(
                    "; {} since {previous}",
                    image_diff::format_growth(diff.growth)
                );
                if let Ok(mut growth) = ctx.growth.lock() {
                    growth.insert(
                        reference.clone(),
                        Growth {
                            since: previous.clone(),
                            bytes: diff.growth,
                        },
                    );
                }
                data.changes = Some(diff);
            }
            // The comparison documents; it never fails the image.
            Err(e) => compared = format!("; not compared with {previous}: {e}"),
        }
    }
    let stem = ref_file_stem(reference);
    let failing = data.info.iter().filter(|i| i.exit_code != 0).count();
    for (ext, text) in [
        ("md", manifest_markdown(&data)),
        ("json", manifest_json(&data)),
    ] {
        let path = ctx.dirs.manifests.join(format!("{stem}.{ext}"));
        record::write_atomic(&path, text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(Some(if failing == 0 {
        strata_core::text::count(data.info.len(), "info command") + &compared
    } else {
        format!(
            "{}, {failing} failing (recorded in the manifest){compared}",
            strata_core::text::count(data.info.len(), "info command")
        )
    }))
}

/// The previous published build of an image as the manifest compares it:
/// pulled when the engine does not have it, its layers and the same info
/// commands' output.
async fn previous_side<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    previous: &str,
    info_cmds: &[(String, strata_core::spec::InfoCmd)],
) -> Result<image_diff::ImageSide, String> {
    let info = match ctx.engine_for(target).inspect_image(previous).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            let auth = auth_for(ctx, registry_of(previous)).await;
            ctx.engine_for(target)
                .pull(previous, auth.as_ref())
                .await
                .map_err(|e| e.to_string())?;
            ctx.engine_for(target)
                .inspect_image(previous)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "not in the engine after its pull".to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    crate::describe::image_side(ctx.engine_for(target), previous, info.size, info_cmds)
        .await
        .map_err(|e| e.to_string())
}

/// Whether the image is in its registry: its push stage ran and passed, or
/// it was reused from there (tagged registry-side after the run).
fn pushed_ok(stages: &[StageResult]) -> bool {
    stages
        .iter()
        .any(|r| r.stage == Stage::Push.name() && r.status == Status::Ok)
}

/// Gives the engine's space back: removes the image the build replaced
/// under its reference, and, once the image is pushed (its children built,
/// which its caller waits for), this run's own copy of it: its tags of this
/// run, the image going with its last tag, so one that another run or
/// person tagged stays. Measures what the engine's data root gained.
async fn prune<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    key: Option<&str>,
    pushed: bool,
) -> StageOutcome {
    let engine = ctx.engine_for(target);
    let free = || async { engine.disk_space().await.ok().and_then(|s| s.free_bytes) };
    let before = free().await;
    let mut said = vec![prune_replaced(ctx, target).await?];
    let tested = tested_reference(ctx, target, key).map(|(name, tag)| format!("{name}:{tag}"));
    if !pushed {
        said.push(format!(
            "kept {}: not pushed, so this engine holds its only copy",
            target.build.reference
        ));
    }
    // Called per platform for a multi-platform build: that platform's image.
    let own = match target.platform {
        Some(_) => vec![target.clone()],
        None => target.variants(),
    };
    for v in own.into_iter().filter(|_| pushed) {
        let engine = ctx.engine_for(&v);
        let reference = &v.build.reference;
        let own = match engine.inspect_image(reference).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                said.push(format!("{reference} is gone already"));
                continue;
            }
            Err(e) if e.is_unreachable() => return Err(e.to_string()),
            Err(e) => {
                said.push(format!("kept {reference}: {e}"));
                continue;
            }
        };
        let mut ours = vec![reference.clone()];
        if let Some(tested) = &tested
            && own.repo_tags.contains(tested)
        {
            ours.push(tested.clone());
        }
        for tag in &ours {
            match engine.remove_image(tag).await {
                Ok(()) => {}
                Err(e) if e.is_unreachable() => return Err(e.to_string()),
                Err(e) => said.push(format!("kept {tag}: {e}")),
            }
        }
        let others = own.repo_tags.iter().filter(|t| !ours.contains(t)).count();
        said.push(match others {
            0 => format!("removed {reference}"),
            n => format!(
                "untagged {reference} (the image stays: {} not this run's)",
                strata_core::text::count(n, "other tag")
            ),
        });
    }
    let freed = match (before, free().await) {
        (Some(before), Some(after)) => {
            let freed = after.saturating_sub(before);
            if let Ok(mut reclaimed) = ctx.reclaimed.lock() {
                reclaimed.insert(target.build.reference.clone(), freed);
            }
            format!(
                "; the engine's data root gained {}",
                strata_core::limits::format_size(freed)
            )
        }
        _ => String::new(),
    };
    Ok(Some(format!("{}{freed}", said.join("; "))))
}

/// Removes the image this run's build replaced under the target's
/// reference, if nothing else uses it (another tag, a child image, a
/// container): never anything another process made or still needs.
async fn prune_replaced<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> Result<String, String> {
    let replaced = ctx
        .replaced
        .lock()
        .ok()
        .and_then(|mut r| r.remove(&target.build.reference));
    let Some(id) = replaced else {
        return Ok("nothing replaced".into());
    };
    let short = id.get(..19).unwrap_or(&id);
    let engine = ctx.engine_for(target);
    // Removing an image by ID drops its tags too: one tagged since (by
    // anyone) is someone's, and kept. Its tested marker (its inputs tag in
    // this repository) is strata's own, and goes with it.
    let marker = strata_engine::split_reference(&target.build.reference)
        .map(|(name, _)| format!("{name}:{}", inputs::TAG_PREFIX))
        .map_err(|e| e.to_string())?;
    match engine.inspect_image(&id).await {
        Ok(None) => {
            return Ok(format!("{short}, the image it replaced, is gone already"));
        }
        Ok(Some(info)) => {
            let (markers, others): (Vec<&String>, Vec<&String>) =
                info.repo_tags.iter().partition(|t| t.starts_with(&marker));
            if !others.is_empty() {
                let others: Vec<&str> = others.iter().map(|t| t.as_str()).collect();
                return Ok(format!(
                    "kept {short}, the image it replaced: still tagged {}",
                    others.join(", ")
                ));
            }
            for tag in markers {
                match engine.remove_image(tag).await {
                    Ok(()) => {}
                    Err(e) if e.is_unreachable() => return Err(e.to_string()),
                    Err(e) => return Ok(format!("kept {short}, the image it replaced: {e}")),
                }
            }
        }
        Err(e) if e.is_unreachable() => return Err(e.to_string()),
        Err(e) => return Ok(format!("kept {short}, the image it replaced: {e}")),
    }
    // Its last marker took it away already.
    if matches!(engine.inspect_image(&id).await, Ok(None)) {
        return Ok(format!("removed {short}, the image it replaced"));
    }
    match ctx.engine_for(target).remove_image(&id).await {
        Ok(()) => Ok(format!("removed {short}, the image it replaced")),
        Err(e) if e.is_unreachable() => Err(e.to_string()),
        // Still tagged elsewhere, a parent, or in use: kept, as it should be.
        Err(e) => Ok(format!("kept {short}, the image it replaced: {e}")),
    }
}

/// Removes the containers interrupted stages left: strata's own (by run
/// label) and those the image tests started from the images of this run.
///
/// After an interrupt it sweeps twice, a moment apart: a test process killed
/// while its `docker run` request was in flight leaves a container that the
/// engine finishes creating after the client is gone.
pub(crate) async fn remove_leftovers<B: Backend>(
    ctx: &StageCtx<B>,
    targets: &[Target],
    interrupted: bool,
) -> usize {
    let mut removed = sweep(ctx, targets).await;
    if interrupted {
        tokio::time::sleep(LATE_CONTAINERS).await;
        removed += sweep(ctx, targets).await;
    }
    removed
}

/// How long an engine may take to finish creating a container whose client
/// was killed mid-request.
const LATE_CONTAINERS: Duration = Duration::from_secs(2);

async fn sweep<B: Backend>(ctx: &StageCtx<B>, targets: &[Target]) -> usize {
    let mut removed = 0;
    for engine in std::iter::once(&ctx.engine).chain(ctx.engines.values()) {
        removed += engine.remove_containers(engine.run_id()).await.unwrap_or(0);
    }
    for t in targets.iter().flat_map(Target::variants) {
        removed += ctx
            .engine_for(&t)
            .remove_containers_of_image(&t.build.reference)
            .await
            .unwrap_or(0);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_docker_rules() {
        assert_eq!(registry_of("127.0.0.1:5000/o/i:t"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/o/i:t"), "ghcr.io");
        assert_eq!(registry_of("localhost/i:t"), "localhost");
        assert_eq!(registry_of("ucsdets/i:t"), "docker.io");
    }
}
