//! The build stage: an image built (or reused from an identical earlier
//! build), labelled, within its size budget, on the base the plan pinned.

use super::*;

use strata_core::plan::{BASE_DIGEST_LABEL, BASE_ID_LABEL, BASE_NAME_LABEL};

pub(super) const REVISION_LABEL: &str = "org.opencontainers.image.revision";
pub(super) const CREATED_LABEL: &str = "org.opencontainers.image.created";

/// Checks that a local base (offline, or the parent this run built) still
/// is the image it was pinned to: a tag moved since must not slip another
/// base in.
pub(super) async fn check_local_base<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_id: Option<&str>,
) -> Result<(), String> {
    let planned = parent_id.or(target.build.base_image_id.as_deref());
    let (Some(base), Some(id)) = (&target.build.base_ref, planned) else {
        return Ok(());
    };
    match ctx.engine_for(target).inspect_image(base).await {
        Ok(Some(info)) if info.id == id => Ok(()),
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
pub(super) fn labels<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_id: Option<&str>,
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
    // A root records the image outside the stack it is built on, as the
    // plan found it: what `--bases` compares with where it stands later.
    if let Some(external) = &target.build.external_base {
        labels.insert(BASE_NAME_LABEL.into(), external.reference.clone());
        if let Some(digest) = &external.digest {
            labels.insert(BASE_DIGEST_LABEL.into(), digest.clone());
        }
        if let Some(id) = external.id_for(&target.build.input_parts.platform) {
            labels.insert(BASE_ID_LABEL.into(), id.clone());
        }
    }
    labels.extend(provenance(target));
    if let Some(base) = &target.build.base_ref {
        labels.insert(BASE_NAME_LABEL.into(), base.clone());
        // A parent built in this run is pushed while its children build:
        // its digest is known only to a base pinned by it.
        let pinned = base
            .parse::<ImageRef>()
            .ok()
            .and_then(|r| r.digest().map(ToString::to_string));
        if let Some(d) = pinned {
            labels.insert(BASE_DIGEST_LABEL.into(), d);
        }
        // The base's image ID: what the input key is made on.
        let id = parent_id
            .map(str::to_string)
            .or_else(|| target.build.base_image_id.clone())
            .or_else(|| {
                target
                    .build
                    .base_id(&target.build.input_parts.platform)
                    .cloned()
            });
        if let Some(id) = id {
            labels.insert(BASE_ID_LABEL.into(), id);
        }
    }
    labels
}

/// How the image was made, beside its source and revision, so that a
/// verifier can tell what a signature of it vouches for: the platform it
/// was built for, the strata that built it and why the plan built it.
/// Metadata only: none of it is in the input key, so reuse is unchanged.
fn provenance(target: &Target) -> [(String, String); 3] {
    [
        (
            "io.strata.platform".into(),
            target.build.input_parts.platform.clone(),
        ),
        (
            "io.strata.version".into(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("io.strata.reason".into(), target.build.reason.to_string()),
    ]
}

/// The created time of `before`, the image already at the target's ref,
/// when it was built from the same revision. Building a revision again then
/// gives the same labels, so the layer cache still applies: a label that
/// changes on every run makes every image after the root rebuild from
/// scratch.
pub(super) fn previous_created<B: Backend>(
    ctx: &StageCtx<B>,
    before: Option<&strata_engine::ImageInfo>,
) -> Option<String> {
    let info = before?;
    if info.labels.get(REVISION_LABEL) != Some(&ctx.options.revision) {
        return None;
    }
    info.labels.get(CREATED_LABEL).cloned()
}

/// Whether this run needs a reused image in the engine: to build a child
/// on it, to test it, to make its manifest, or to read its packages for a
/// gate given its SBOM. A resumed image whose manifest was recorded and
/// that nothing tests, gates on its SBOM or builds on is only tagged, in
/// the registry, after the run: a finish of a job graph pulls nothing.
pub(super) fn needed_here<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> bool {
    let tests_run =
        |s: Stage| skip_reason(&ctx.options, target, s).is_none() && !target.tests(s).is_empty();
    let sbom_gated = skip_reason(&ctx.options, target, Stage::Gates).is_none()
        && target
            .gates
            .iter()
            .any(strata_core::gates::Gate::needs_sbom);
    recorded_manifest(ctx, target).is_none()
        || sbom_gated
        || tests_run(Stage::BasicTests)
        || tests_run(Stage::IntegrationTests)
        || ctx
            .built_on
            .contains(&(target.build.image.clone(), target.build.plan.clone()))
}

pub(super) async fn reuse<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    from: &ReuseFrom,
) -> StageOutcome {
    let reference = &target.build.reference;
    if let ReuseFrom::Registry(pinned) = from {
        if !needed_here(ctx, target) {
            return Ok(Done::Said(format!(
                "same inputs as {from}: not built, and not pulled (nothing in this run needs it here)"
            )));
        }
        let auth = auth_for(ctx, pinned.name().registry().to_string()).await;
        ctx.engine_for(target)
            .pull(&pinned.to_string(), auth.as_ref())
            .await
            .map_err(|e| {
                StageError::new(
                    FailureKind::Registry,
                    format!("cannot pull {from}, which has the same inputs: {e}"),
                )
            })?;
    }
    let run = ImageRef::from_str(reference).map_err(|e| e.to_string())?;
    let tag = run.tag().map_or("latest", |t| t.as_str());
    ctx.engine_for(target)
        .tag(&from.to_string(), &run.name().to_string(), tag)
        .await
        .map_err(|e| format!("cannot tag {from} as {reference}: {e}"))?;
    Ok(Done::Said(format!("same inputs as {from}: not built")))
}

pub(super) async fn build<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    parent_id: Option<&str>,
    key: Option<&str>,
) -> StageOutcome {
    let log_path = ctx.log_path(&target.build.reference, "build");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    check_local_base(ctx, target, parent_id)
        .await
        .map_err(|e| StageError::new(FailureKind::Provenance, e))?;
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
            let mut labels = labels(ctx, target, parent_id, created);
            if let Some(key) = key {
                labels.insert(inputs::LABEL.to_string(), key.to_string());
            }
            labels
        },
        cache_from: match &target.cache_from {
            Some(cache) => cache_for(ctx, target, cache, &mut log).await,
            None => Vec::new(),
        },
        builder: ctx.builder,
        pull: target
            .build
            .external_base
            .as_ref()
            .is_some_and(|b| b.digest.is_some()),
        platform: target.platform.as_ref().map(ToString::to_string),
        secrets: ctx.options.secrets.clone(),
        // The base and the cache may come from private registries.
        registry_auth: {
            let mut auths = Vec::new();
            let external = target.build.external_base.as_ref().map(|b| &b.reference);
            for from in [
                target.build.base_ref.as_ref(),
                external,
                target.cache_from.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                let auth = auth_for(ctx, registry_of(from)).await;
                if let Some(auth) = auth.filter(|a| !auths.contains(a)) {
                    auths.push(auth);
                }
            }
            auths
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
            let kind = match StageError::kind_of(&e) {
                FailureKind::Engine
                    if fullest
                        .as_ref()
                        .is_some_and(strata_engine::DiskSpace::is_nearly_full) =>
                {
                    FailureKind::OutOfSpace
                }
                kind => kind,
            };
            let e = engine_error(engine, &e, fullest.as_ref()).await;
            let _ = writeln!(log, "ERROR: {e}");
            return Err(StageError::new(
                kind,
                format!("{e} (log: {})", log_path.display()),
            ));
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
    check_external_base(ctx, target, &built.id)
        .await
        .map_err(|e| {
            let _ = writeln!(log, "strata: {e}");
            StageError::new(FailureKind::Provenance, e)
        })?;
    if let Some(max) = target.image.max_size {
        check_size(ctx, target, &built.id, max).await.map_err(|e| {
            let _ = writeln!(log, "strata: {e}");
            StageError::new(FailureKind::Budget, e)
        })?;
    }
    Ok(Done::Built { id: built.id })
}

/// How often a build samples its engine's free disk space.
pub(super) const DISK_SAMPLE: Duration = Duration::from_millis(100);

/// What to tell of an engine error: its text, and for a lack of disk
/// space where the engine keeps its data, the room left there, and what
/// frees some. A failure while the disk was nearly full (`fullest`, the
/// least free space seen during the operation) is told as one, whatever
/// the engine's message said.
pub(super) async fn engine_error<B: Backend>(
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

/// Checks that a root was built on the image outside the stack that the
/// plan found, which its key and labels name: its layers start with that
/// image's. The base's tag may have moved between the plan and the build
/// (or the engine held another image under its name), and nothing else
/// would tell.
pub(super) async fn check_external_base<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    id: &str,
) -> Result<(), String> {
    let Some(external) = &target.build.external_base else {
        return Ok(());
    };
    let platform = ctx.platform_of(target);
    let Some(expected) = external.layers_for(&platform).filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let info = ctx
        .engine_for(target)
        .inspect_image(id)
        .await
        .map_err(|e| format!("cannot check what {id} was built on: {e}"))?
        .ok_or_else(|| format!("the image {id} is gone; what it was built on cannot be checked"))?;
    if info.layers.starts_with(expected) {
        return Ok(());
    }
    let planned = external
        .digest
        .as_ref()
        .or_else(|| external.id_for(&platform))
        .map_or(String::new(), |p| format!(" at {p}"));
    Err(format!(
        "{} was not built on {}{planned}, as planned (its layers do not start with that image's): the base moved since the plan; nothing of it is pushed (run again)",
        target.build.reference, external.reference
    ))
}

/// Fails an image above its `max_size`, before anything pushes it, with
/// what would help shrink it: its three largest layers.
pub(super) async fn check_size<B: Backend>(
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

/// A published image as build cache. BuildKit reads the cache metadata
/// the image carries (`BUILDKIT_INLINE_CACHE`) from the registry and fetches
/// only the layers of the steps it hits, so nothing is pulled; the classic
/// builder uses only local images, so it is pulled. A failed pull only
/// costs the cache, so it is logged, not fatal.
pub(super) async fn cache_for<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    cache: &str,
    log: &mut std::fs::File,
) -> Vec<String> {
    if ctx.builder == strata_engine::Builder::BuildKit {
        let _ = writeln!(log, "strata: BuildKit reads build cache from {cache}");
        return vec![cache.to_string()];
    }
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
