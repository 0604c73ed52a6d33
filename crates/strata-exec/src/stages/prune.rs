//! The prune stage and the run's cleanup: the run's own images and
//! containers leave the engine, never anyone else's.

use super::*;

/// Gives the engine's space back: removes the image the build replaced
/// under its reference, and, once the image is pushed (its children built,
/// which its caller waits for), this run's own copy of it: its tags of this
/// run, the image going with its last tag, so one that another run or
/// person tagged stays. Measures what the engine's data root gained.
pub(super) async fn prune<B: Backend>(
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
            Err(e) if e.is_unreachable() => {
                return Err(StageError::new(FailureKind::EngineGone, e.to_string()));
            }
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
                Err(e) if e.is_unreachable() => {
                    return Err(StageError::new(FailureKind::EngineGone, e.to_string()));
                }
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
    Ok(Done::Said(format!("{}{freed}", said.join("; "))))
}

/// Removes the image this run's build replaced under the target's
/// reference, if nothing else uses it (another tag, a child image, a
/// container): never anything another process made or still needs.
pub(super) async fn prune_replaced<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
) -> Result<String, String> {
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
                    Err(e) if e.is_unreachable() => {
                        return Err(e.to_string());
                    }
                    Err(e) => return Ok(format!("kept {short}, the image it replaced: {e}")),
                }
            }
        }
        Err(e) if e.is_unreachable() => {
            return Err(e.to_string());
        }
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
pub(super) const LATE_CONTAINERS: Duration = Duration::from_secs(2);

pub(super) async fn sweep<B: Backend>(ctx: &StageCtx<B>, targets: &[Target]) -> usize {
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
