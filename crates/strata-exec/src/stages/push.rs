//! The push stage: the image the run built and tested, and nothing else,
//! pushed with its tested inputs tag; transient failures tried again.

use super::*;

/// The registry host of a reference, by Docker's rules (`docker.io` when
/// it names none).
pub(super) fn registry_of(reference: &str) -> String {
    reference.parse::<ImageRef>().map_or_else(
        |_| strata_core::reference::DEFAULT_REGISTRY.to_string(),
        |r| r.name().registry().to_string(),
    )
}

/// The credentials for a registry host, asked on a blocking thread: a
/// credential helper is a process, and must not stall the runtime.
pub(super) async fn auth_for<B: Backend>(
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
pub(super) fn tested_reference<B: Backend>(
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
pub(super) async fn mark_tested<B: Backend>(ctx: &StageCtx<B>, target: &Target, key: Option<&str>) {
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
/// reuses. Only the run's own tag failing fails the stage. An image with
/// gates is pushed under its tested reference alone (or, lacking one, a
/// [`gates_staging_reference`]): its gates stage puts the run's tag once
/// they pass, so no run tag ever names an image they refuse.
pub(super) async fn push<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    key: Option<&str>,
) -> StageOutcome {
    let log_path = ctx.log_path(&target.build.reference, "push");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let built = ctx.built_id(&target.build.reference);
    if let Some(built) = &built {
        still_the_built_image(ctx, target, built, None).await?;
    }
    let mut tested = None;
    if let Some((name, tag)) = tested_reference(ctx, target, key) {
        let reference = format!("{name}:{tag}");
        let engine = ctx.engine_for(target);
        let same = match (
            engine.inspect_image(&reference).await,
            engine.inspect_image(&target.build.reference).await,
        ) {
            (Ok(Some(a)), Ok(Some(b))) => a.id == b.id,
            _ => false,
        };
        tested = same.then_some(reference);
    }
    let staged = match (&tested, target.gates.is_empty()) {
        (_, true) => None,
        (Some(tested), false) => Some(tested.clone()),
        (None, false) => Some(gates_staging_reference(ctx, target).await?),
    };
    let first = staged.as_ref().unwrap_or(&target.build.reference);
    let digest = push_reference(ctx, target, first, &mut log, &log_path).await?;
    if let Some(built) = &built {
        still_the_built_image(ctx, target, built, Some(&digest)).await?;
    }
    if staged.is_none()
        && let Some(tested) = &tested
        && let Err(e) = push_reference(ctx, target, tested, &mut log, &log_path).await
    {
        ctx.run_log.line(&format!(
            "{}: {e}; later runs will build these inputs again",
            target.build.reference
        ));
    }
    ctx.record_pushed(target, digest.clone(), staged.is_none());
    Ok(Done::Pushed { digest })
}

/// Where an image with gates that has no tested inputs tag (no key, a
/// reused image, or its local tag could not be put) waits for its gates in
/// the registry: `name:gates-<its image ID's first 12 hex>`, tagged
/// locally now. Pushing the run's tag instead would name it before its
/// gates pass; when it cannot be tagged, nothing is pushed.
async fn gates_staging_reference<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
) -> Result<String, StageError> {
    let reference = &target.build.reference;
    let cannot = |why: String| {
        StageError::from(format!(
            "cannot stage {reference} for its gates ({why}); nothing was pushed, so no tag names it before they pass"
        ))
    };
    let engine = ctx.engine_for(target);
    let info = engine
        .inspect_image(reference)
        .await
        .map_err(|e| cannot(e.to_string()))?
        .ok_or_else(|| cannot("the image is gone".into()))?;
    let short: String = info
        .id
        .trim_start_matches("sha256:")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let (name, _) = strata_engine::split_reference(reference).map_err(|e| cannot(e.to_string()))?;
    let tag = format!("gates-{short}");
    engine
        .tag(reference, &name, &tag)
        .await
        .map_err(|e| cannot(e.to_string()))?;
    Ok(format!("{name}:{tag}"))
}

/// Signs the image the target stands at in the registry (`digest`), when
/// the run signs: pushed now, or reused (signed already by this key, it
/// keeps its one signature; the SBOMs its build put are signed with it).
/// A signature that cannot be put fails the
/// image (`signing`): its descendants are skipped, no index lists it and
/// the run fails. (An image of the engine's platform alone and without
/// gates carries the run's tag from its push already: the engine pushes
/// by tag.)
pub(super) async fn sign_pushed<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    digest: &strata_core::reference::Digest,
) -> Result<(), StageError> {
    let Some(signer) = &ctx.options.signer else {
        return Ok(());
    };
    let signing = |message: String| StageError::new(FailureKind::Signing, message);
    let name = ImageRef::from_str(&target.build.reference).map_err(|e| signing(e.to_string()))?;
    let pinned = name.name().with_digest(digest.clone());
    let signed = match reused(ctx, target) {
        Some(_) => signer.sign_published(&pinned).await,
        None => signer.sign(&pinned).await,
    };
    signed.map_err(|e| {
        signing(format!(
            "{pinned} was pushed but its signature could not be put: {e}; the image failed (run again to sign it)"
        ))
    })?;
    ctx.run_log.line(&format!("{pinned} signed"));
    Ok(())
}

/// Checks that the target's reference still names `built`, the image this
/// run built and tested, on the engine (another process may have tagged
/// something else with it), and after the push (`pushed`) that the engine
/// pushed that image: its registry digests hold the pushed one. A push
/// sends a name, so this is what makes it send the built image.
pub(super) async fn still_the_built_image<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    built: &str,
    pushed: Option<&strata_core::reference::Digest>,
) -> Result<(), StageError> {
    let reference = &target.build.reference;
    let info = ctx
        .engine_for(target)
        .inspect_image(reference)
        .await
        .map_err(|e| {
            StageError::new(
                StageError::kind_of(&e),
                format!("cannot check what {reference} names before pushing it: {e}"),
            )
        })?;
    let provenance = |message: String| StageError::new(FailureKind::Provenance, message);
    let now = info.as_ref().map_or("nothing", |i| i.id.as_str());
    let when = if pushed.is_some() {
        "while it was pushed"
    } else {
        "after its tests"
    };
    if now != built {
        return Err(provenance(format!(
            "{reference} names {now} on the engine, not {built}, the image this run built and tested: another process tagged it {when}; nothing of it is published (run again)"
        )));
    }
    if let (Some(digest), Some(info)) = (pushed, &info) {
        let name = ImageRef::from_str(reference).map_err(|e| provenance(e.to_string()))?;
        let name = name.name();
        // The engine writes repository digests in Docker's short form
        // (`org/img@…` for Docker Hub): compared parsed.
        let carries = info.repo_digests.iter().any(|d| {
            d.parse::<ImageRef>()
                .is_ok_and(|r| r.name() == name && r.digest() == Some(digest))
        });
        if !carries {
            return Err(provenance(format!(
                "the engine pushed {name}@{digest}, which is not the image this run built ({built}); its tag is not put (run again)"
            )));
        }
    }
    Ok(())
}

/// Pushes `reference` (the target's, or another tag of its image), trying
/// transient failures again with backoff.
pub(super) async fn push_reference<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    reference: &str,
    log: &mut std::fs::File,
    log_path: &Path,
) -> Result<strata_core::reference::Digest, StageError> {
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
            Ok(digest) => {
                return digest.parse().map_err(|e| {
                    StageError::new(
                        FailureKind::Engine,
                        format!("the engine reported {digest} for {reference}, not a digest: {e}"),
                    )
                });
            }
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
                return Err(StageError::new(
                    StageError::kind_of(&e),
                    format!(
                        "{e} (registry {}, after {}; log: {})",
                        registry_of(reference),
                        strata_core::text::count(attempt as usize, "attempt"),
                        log_path.display()
                    ),
                ));
            }
        }
    }
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
