//! One image's whole pipeline: its stages in order (each platform's image
//! in turn), what its children wait for (its basic tests to build on it,
//! its push and gates to push), and its result.

use super::*;

/// Runs an image's whole pipeline. `gate` is called exactly once: with
/// what its children are built on once its basic tests passed (they build
/// while it pushes), or with the failure.
pub(crate) async fn run_image<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent: Parent,
    gate: impl FnOnce(Result<Parent, String>),
    mut family: Family,
) -> ImageResult {
    let start = Instant::now();
    let mut gate = Some(gate);
    let mut open_gate = |g: Result<Parent, String>| {
        if let Some(f) = gate.take() {
            f(g);
        }
    };
    // Dropped unsent when the image fails before its push: its children,
    // already building, are then not pushed.
    let (push_tx, push_rx) = watch::channel(ParentPush::Running);
    let image = ImageRun::new(ctx, target, &parent).await;
    let mut stages = Vec::new();
    let mut failure: Option<(Stage, StageError)> = None;
    let mut digest: Option<String> = None;
    let mut push_skipped: Option<String> = None;
    for s in Stage::ALL {
        if let Some((failed, _)) = &failure {
            stages.push(not_run(s, &format!("{failed} failed")));
            continue;
        }
        let in_registry = pushed_ok(&stages);
        let skip = skip_reason(&ctx.options, target, s);
        if s == Stage::Prune && skip.is_none() && in_registry {
            // Its children are built on its local copy: prune waits for
            // them, without holding a slot they may need.
            drop(family.permit.take());
            tokio::select! {
                () = family.children_built() => {}
                () = ctx.cancelled() => {}
            }
        }
        let not_pushing = skip.clone().filter(|_| s == Stage::Push);
        let (result, outcome) = match s {
            Stage::Push if skip.is_none() => {
                drop(family.permit.take());
                match parent_pushed(ctx, &parent, &image.variants).await {
                    Ok(()) => image.stage(s, skip, in_registry).await,
                    Err(e) => image.refused(s, e).await,
                }
            }
            _ => image.stage(s, skip, in_registry).await,
        };
        if s == Stage::Build {
            let _ = family.built.send(true);
        }
        if s == Stage::BasicTests && outcome.is_ok() {
            for (v, key) in image.variants.iter().zip(&image.keys) {
                mark_tested(ctx, v, key.as_deref()).await;
            }
        }
        stages.push(result);
        match outcome {
            Ok(Done::Pushed { digest: pushed }) => digest = Some(pushed.to_string()),
            Ok(_) => {}
            Err(e) => {
                open_gate(Err(format!("{s} failed")));
                failure = Some((s, e));
            }
        }
        // Children build on what this image is once tested, on its local
        // image, while it pushes.
        if failure.is_none() && s == Stage::BasicTests {
            open_gate(Ok(image.as_parent(push_rx.clone())));
        }
        // Its children are pushed once it is: pushed and through its gates.
        if s == Stage::Push {
            push_skipped = not_pushing;
            if let Some((_, e)) = &failure {
                let _ = push_tx.send(ParentPush::NotPushed(format!("its push failed: {e}")));
            }
        }
        if s == Stage::Gates {
            let _ = push_tx.send(match (&failure, push_skipped.take()) {
                (Some((_, e)), _) => ParentPush::NotPushed(format!("its gates failed: {e}")),
                (None, Some(why)) => ParentPush::NotPushed(why),
                (None, None) => ParentPush::Pushed(image.image_ids()),
            });
        }
        if s == Stage::Push {
            // The stages after the push take a slot.
            if family.permit.is_none() {
                tokio::select! {
                    permit = family.slots.clone().acquire_owned() => family.permit = permit.ok(),
                    () = ctx.cancelled() => {}
                }
            }
        }
    }
    open_gate(Ok(image.as_parent(push_rx)));
    let result = image.result(failure, digest, stages, start);
    ctx.finished(&result);
    result
}

/// The image ID among `ids` that `v` is built on: its platform's, else the
/// image's of the engine's platform.
fn id_for<'i>(ids: &'i strata_core::plan::ImageIds, v: &Target) -> Option<&'i String> {
    ids.get(&id_key(v))
        .or_else(|| ids.get(&v.build.input_parts.platform))
        .or_else(|| ids.get(""))
}

/// One image's run: its platforms' images (one, for an image of the
/// engine's platform), their input keys and what each pushed.
struct ImageRun<'r, B: Backend> {
    ctx: &'r StageCtx<B>,
    target: &'r Target,
    parent: &'r Parent,
    variants: Vec<Target>,
    /// Each variant's key (each platform's image has its own).
    keys: Vec<Option<String>>,
    /// The image's own key: a build of several platforms has only theirs.
    key: Option<String>,
    pushed: std::sync::Mutex<Vec<PlatformImage>>,
}

impl<'r, B: Backend> ImageRun<'r, B> {
    async fn new(ctx: &'r StageCtx<B>, target: &'r Target, parent: &'r Parent) -> Self {
        let mut run = ImageRun {
            ctx,
            target,
            parent,
            variants: target.variants(),
            keys: Vec::new(),
            key: None,
            pushed: Default::default(),
        };
        for v in &run.variants {
            let key = input_key(ctx, v, run.parent_of(v)).await;
            run.keys.push(key);
        }
        run.key = match run.variants.as_slice() {
            [one] if one.platform.is_none() => run.keys[0].clone(),
            _ => None,
        };
        run
    }

    /// What a variant is built on when its parent is built in this run:
    /// the parent's image ID, of the same platform for a platform's image.
    fn parent_of(&self, v: &Target) -> Option<&'r str> {
        id_for(&self.parent.ids, v).map(String::as_str)
    }

    /// Its images' IDs, keyed as [`Parent::ids`]: built in this run, or
    /// reused.
    fn image_ids(&self) -> strata_core::plan::ImageIds {
        self.variants
            .iter()
            .filter_map(|v| {
                let reused = match &v.platform {
                    Some(p) => v
                        .build
                        .per_platform
                        .get(&p.to_string())
                        .and_then(|pp| pp.reuse_id.clone()),
                    None => v.build.reuse_id.clone(),
                };
                let id = self.ctx.built_id(&v.build.reference).or(reused)?;
                Some((id_key(v), id))
            })
            .collect()
    }

    /// What its children are built on (see [`Parent`]).
    fn as_parent(&self, push: watch::Receiver<ParentPush>) -> Parent {
        Parent {
            reference: self.target.build.reference.clone(),
            ids: self.image_ids(),
            push: Some(push),
        }
    }

    /// Stage `s`, failed before it ran.
    async fn refused(&self, s: Stage, e: StageError) -> (StageResult, StageOutcome) {
        let reference = self.target.build.reference.as_str();
        stage(self.ctx, reference, s, Duration::MAX, async { Err(e) }).await
    }

    /// Runs stage `s` (unless `skip` says why not) within its time limit,
    /// with its test cases in its result.
    async fn stage(
        &self,
        s: Stage,
        skip: Option<String>,
        in_registry: bool,
    ) -> (StageResult, StageOutcome) {
        let (ctx, target) = (self.ctx, self.target);
        let reference = target.build.reference.as_str();
        let limit =
            strata_core::limits::timeout(s.key(), &target.image.timeouts, &ctx.options.timeouts)
                .unwrap_or(Duration::MAX);
        let cases = Cases::default();
        let spans = std::sync::Mutex::new(Vec::new());
        let (mut result, outcome) = match skip {
            Some(why) => (not_run(s, &why), Ok(Done::Nothing)),
            None => {
                let run = self.each_variant(s, &cases, &spans, in_registry);
                stage(ctx, reference, s, limit, run).await
            }
        };
        result.platforms = spans.into_inner().unwrap_or_default();
        if outcome.is_err()
            && matches!(
                s,
                Stage::BasicTests | Stage::IntegrationTests | Stage::Manifest
            )
        {
            // A stage cut off leaves the containers its tests started.
            for v in &self.variants {
                let _ = ctx
                    .engine_for(v)
                    .remove_containers_of_image(&v.build.reference)
                    .await;
            }
        }
        result.tests = cases.into_inner().unwrap_or_default();
        self.report_cases(s, &mut result, &outcome);
        (result, outcome)
    }

    /// Runs stage `s` of the image: of its one image, or of each platform's
    /// in turn, the first that fails failing the image (so no index of part
    /// of its platforms is ever published), each platform's part timed in
    /// `spans`.
    async fn each_variant(
        &self,
        s: Stage,
        cases: &Cases,
        spans: &std::sync::Mutex<Vec<strata_report::site::PlatformSpan>>,
        in_registry: bool,
    ) -> StageOutcome {
        let ctx = self.ctx;
        if let [one] = self.variants.as_slice()
            && one.platform.is_none()
        {
            let parent = self.parent_of(self.target);
            return run_stage(
                ctx,
                self.target,
                s,
                cases,
                parent,
                self.key.as_deref(),
                in_registry,
            )
            .await;
        }
        let mut said = Vec::new();
        for (v, key) in self.variants.iter().zip(&self.keys) {
            let platform = v
                .platform
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let from = cases.lock().map_or(0, |c| c.len());
            let started = Instant::now();
            let m = run_stage(
                ctx,
                v,
                s,
                cases,
                self.parent_of(v),
                key.as_deref(),
                in_registry,
            )
            .await;
            if let Ok(mut spans) = spans.lock() {
                spans.push(strata_report::site::PlatformSpan {
                    platform: platform.clone(),
                    started_secs: secs_between(ctx.started, started),
                    duration_secs: secs_since(started),
                    ok: m.is_ok(),
                });
            }
            name_cases_after(cases, from, &platform);
            let done = m.map_err(|e| e.within(&platform))?;
            if s == Stage::Push
                && let Ok(mut pushed) = self.pushed.lock()
            {
                pushed.push(PlatformImage {
                    platform: platform.clone(),
                    reference: v.build.reference.clone(),
                    image_id: ctx.built_id(&v.build.reference),
                    digest: match &done {
                        Done::Pushed { digest } => Some(digest.to_string()),
                        _ => None,
                    },
                    inputs: key.clone(),
                });
            }
            said.push(format!(
                "{platform}: {}",
                done.message().unwrap_or_else(|| "ok".into())
            ));
        }
        // The image's digest is its index's, put after the run.
        Ok(if s == Stage::Push {
            Done::Nothing
        } else {
            Done::Said(said.join("; "))
        })
    }

    /// The test cases a test stage reports beyond those it ran: a reused
    /// image's, as its build ran them, and a case for a stage that failed
    /// with no failing case to say why (a time limit, a crash, a
    /// collection error).
    fn report_cases(&self, s: Stage, result: &mut StageResult, outcome: &StageOutcome) {
        if let (Stage::BasicTests, Status::Skipped, Some(earlier)) =
            (s, &result.status, &self.target.earlier)
            && reused(self.ctx, self.target).is_some()
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
        if let Err(e) = outcome
            && result.tests.iter().all(|c| !c.is_failure())
            && matches!(s, Stage::BasicTests | Stage::IntegrationTests)
        {
            result.tests.push(TestCase {
                name: s.name().to_string(),
                classname: self.target.build.reference.clone(),
                time_secs: result.duration_secs,
                outcome: CaseOutcome::Error {
                    message: e.message.clone(),
                    details: e.message.clone(),
                },
                output: String::new(),
            });
        }
    }

    /// The image's result, once its stages ran (or were not run).
    fn result(
        self,
        failure: Option<(Stage, StageError)>,
        digest: Option<String>,
        stages: Vec<StageResult>,
        start: Instant,
    ) -> ImageResult {
        let (ctx, target) = (self.ctx, self.target);
        let reference = target.build.reference.as_str();
        let reused = reused(ctx, target).map(ToString::to_string);
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
        ImageResult {
            image: target.build.image.clone(),
            plan: target.build.plan.clone(),
            reference: reference.to_string(),
            success: failure.is_none(),
            failure: failure.as_ref().map(|(_, e)| e.kind),
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
            inputs: self.key,
            reused,
            platforms: self.pushed.into_inner().unwrap_or_default(),
            growth: ctx.growth.lock().ok().and_then(|mut g| g.remove(reference)),
            reclaimed_bytes: ctx
                .reclaimed
                .lock()
                .ok()
                .and_then(|mut r| r.remove(reference)),
        }
    }
}

/// Whether the image is in its registry: its push stage ran and passed, or
/// it was reused from there (tagged registry-side after the run).
fn pushed_ok(stages: &[StageResult]) -> bool {
    stages
        .iter()
        .any(|r| r.stage == Stage::Push.name() && r.status == Status::Ok)
}
