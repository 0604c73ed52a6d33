//! The manifest stage: what is inside an image, and what changed since
//! its previous published build.

use super::*;

/// Gives the run's reference to an image already built from the same
/// inputs, pulling it (pinned by digest) when it stands in a registry.
/// The manifest the build of a reused image recorded for this very
/// reference (a resumed image: an earlier attempt or a job of this run
/// wrote it), if any: what its manifest stage writes instead of making it.
pub(super) fn recorded_manifest<'t, B: Backend>(
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

pub(super) async fn manifest<B: Backend>(ctx: &StageCtx<B>, target: &Target) -> StageOutcome {
    let reference = &target.build.reference;
    if let Some(recorded) = recorded_manifest(ctx, target) {
        let stem = ref_file_stem(reference);
        for (ext, text) in [("md", &recorded.markdown), ("json", &recorded.json)] {
            let path = ctx.dirs.manifests.join(format!("{stem}.{ext}"));
            record::write_atomic(&path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        return Ok(Done::Said(format!(
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
    let inventory = read_inventory(ctx, target).await?;
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
        packages: Some(inventory.packages),
        trigger: Some(target.build.reason.to_string()),
        since_stable: None,
    };
    let mut data = data;
    if let (Some((since, stable)), Some(packages)) = (target.stable_packages(), &data.packages) {
        data.since_stable = Some(strata_report::StableChanges {
            since: since.to_string(),
            packages: strata_sbom::diff::diff(stable, packages),
        });
    }
    write_sbom(
        ctx,
        target,
        &data.reference,
        data.digest.as_deref().unwrap_or(&data.image_id),
        &data.created,
        data.packages.as_deref().unwrap_or_default(),
    )?;
    let mut compared = String::new();
    if let Some(previous) = &target.previous {
        match target.previous_manifest() {
            Some(recorded) => {
                let side = image_diff::ImageSide::from(recorded);
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
            // Running the previous image's info commands again would cost
            // a pull and a container per build; a build that left no
            // record (made by an older strata, or by hand) is not compared.
            None => compared = format!("; not compared with {previous}: its build left no record"),
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
    Ok(Done::Said(if failing == 0 {
        strata_core::text::count(data.info.len(), "info command") + &compared
    } else {
        format!(
            "{}, {failing} failing (recorded in the manifest){compared}",
            strata_core::text::count(data.info.len(), "info command")
        )
    }))
}

/// Writes the SBOM of `reference`, `artifacts/sbom/<image>.<format>.json`,
/// about its pushed `digest` (its image ID when not pushed): what the run
/// pushes beside the image after it.
pub(super) fn write_sbom<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    reference: &str,
    digest: &str,
    created: &str,
    packages: &[strata_sbom::Package],
) -> Result<(), String> {
    let platform = ctx.platform_of(target);
    let subject = strata_sbom::spdx::Subject {
        reference,
        digest,
        platform: &platform,
        created,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let format = ctx.options.sbom_format;
    let document = format.document(&subject, packages);
    let path = sbom_path(&ctx.dirs.artifacts, reference, format);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    record::write_atomic(&path, &document)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Where a run writes the SBOM of image `reference` in `format`.
pub fn sbom_path(
    artifacts: &std::path::Path,
    reference: &str,
    format: strata_sbom::Format,
) -> std::path::PathBuf {
    artifacts.join("sbom").join(format!(
        "{}.{}",
        ref_file_stem(reference),
        format.extension()
    ))
}
