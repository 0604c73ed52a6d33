//! The record of what a build left (the tests the image passed before it
//! was pushed, with which test files, its manifest), kept in its registry
//! beside it (`name:inputs-<hex>.record`, an OCI note of annotations):
//! written by the run's end (`strata_exec::publish`), read here before a
//! run for each image it reuses, whose basic tests are then reported as
//! they ran and whose manifest is written as it was (in the finish of a
//! job graph, every job's), without pulling the image when nothing else
//! needs it. The same records give each rebuilt image the manifest of its
//! previous build, which its own is compared with.

use strata_exec::Target;

/// Gives each target reused from the registry the tests its build passed,
/// as recorded beside it: for an image of several platforms, each
/// platform's (its cases named after their platform). A record that cannot
/// be read only leaves them out.
pub fn attach(targets: &mut [Target]) {
    let wanted: Vec<usize> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            matches!(
                t.build.reuse,
                Some(strata_core::inputs::ReuseFrom::Registry(_))
            )
        })
        .map(|(i, _)| i)
        .collect();
    if wanted.is_empty() {
        return;
    }
    let (Ok(registry), Ok(runtime)) = (crate::registry::client(), crate::runtime()) else {
        return;
    };
    let read = |name: &str, key: &str| -> Option<strata_exec::EarlierBuild> {
        let name = name.parse::<strata_core::reference::ImageName>().ok()?;
        runtime.block_on(read_record(registry, &name, key))
    };
    for i in wanted {
        let t = &mut targets[i];
        let Ok((name, _)) = strata_engine::split_reference(&t.build.reference) else {
            continue;
        };
        t.earlier = if t.build.per_platform.is_empty() {
            t.build.inputs.as_deref().and_then(|key| read(&name, key))
        } else {
            let mut merged: Option<strata_exec::EarlierBuild> = None;
            for (platform, own) in &t.build.per_platform {
                let Some(mut found) = own.inputs.as_deref().and_then(|key| read(&name, key)) else {
                    continue;
                };
                for case in &mut found.cases {
                    case.classname = format!("{platform}: {}", case.classname);
                }
                match &mut merged {
                    Some(m) => {
                        m.cases.append(&mut found.cases);
                        m.manifests.append(&mut found.manifests);
                        // Every platform passed with the same test files,
                        // or the image tests again.
                        if m.test_key != found.test_key {
                            m.test_key = None;
                        }
                    }
                    None => merged = Some(found),
                }
            }
            merged
        };
    }
}

/// Gives each target with a previous build the manifest that build
/// recorded, per platform: its images' configs name their input keys
/// (`io.strata.inputs`), which name their records. A previous build that
/// cannot be read is only not compared.
pub fn attach_previous_manifests(targets: &mut [Target]) {
    if targets.iter().all(|t| t.previous.is_none()) {
        return;
    }
    let (Ok(registry), Ok(runtime)) = (crate::registry::client(), crate::runtime()) else {
        return;
    };
    for t in targets.iter_mut() {
        let Some(previous) = t
            .previous
            .as_deref()
            .and_then(|p| p.parse::<strata_core::reference::ImageRef>().ok())
        else {
            continue;
        };
        t.previous_manifests = runtime.block_on(previous_manifests(registry, &previous));
    }
}

/// Gives each target the packages of its plan's stable image, as the
/// SBOMs beside it in the registry list them: what its manifest lists the
/// packages changed since. A stable image without an SBOM (or none at all)
/// is only not compared.
pub fn attach_stable_packages(targets: &mut [Target], spec: &strata_core::spec::Spec) {
    let (Ok(registry), Ok(runtime)) = (crate::registry::client(), crate::runtime()) else {
        return;
    };
    for t in targets.iter_mut() {
        let Some(plan) = spec.plans.iter().find(|p| p.name.value == t.build.plan) else {
            continue;
        };
        let Some(stable) = t
            .build
            .reference
            .parse::<strata_core::reference::ImageRef>()
            .ok()
            .and_then(|r| Some(r.name().with_tag(plan.stable_tag().parse().ok()?)))
        else {
            continue;
        };
        let packages = runtime.block_on(stable_packages(registry, &stable));
        if !packages.is_empty() {
            t.stable_packages = Some((stable.to_string(), packages));
        }
    }
}

/// The packages of each platform's image at `stable` (`""` for a single
/// image), from the SBOMs (SPDX, else CycloneDX) that refer to them.
async fn stable_packages(
    registry: &strata_registry::Registry,
    stable: &strata_core::reference::ImageRef,
) -> std::collections::BTreeMap<String, Vec<strata_sbom::Package>> {
    use strata_registry::manifest::Contents;
    let mut found = std::collections::BTreeMap::new();
    let Ok(Some(manifest)) = registry.get_manifest(stable).await else {
        return found;
    };
    let subjects: Vec<(String, strata_core::reference::Digest)> = match manifest.contents() {
        Contents::Image { .. } => vec![(String::new(), manifest.digest().clone())],
        Contents::Index { manifests } => manifests
            .iter()
            .filter_map(|m| Some((m.platform.clone()?, m.digest.clone())))
            .collect(),
    };
    let name = stable.name();
    for (platform, digest) in subjects {
        let Ok(referrers) =
            strata_registry::referrers::referrers(registry, name, &digest, None).await
        else {
            continue;
        };
        // Its SBOM in either format (a run writes the one it is asked
        // for), SPDX first.
        let Some((format, sbom)) = [strata_sbom::Format::Spdx, strata_sbom::Format::CycloneDx]
            .into_iter()
            .find_map(|f| {
                let sbom = referrers
                    .iter()
                    .find(|r| r.artifact_type == f.media_type())?;
                Some((f, sbom))
            })
        else {
            continue;
        };
        let Ok(Some(document)) =
            strata_registry::referrers::artifact_content(registry, name, &sbom.digest, 256 << 20)
                .await
        else {
            continue;
        };
        if let Ok(packages) = format.packages(&document) {
            found.insert(platform, packages);
        }
    }
    found
}

/// The recorded manifest of each platform's image of `previous`.
async fn previous_manifests(
    registry: &strata_registry::Registry,
    previous: &strata_core::reference::ImageRef,
) -> std::collections::BTreeMap<String, strata_report::ManifestData> {
    let mut found = std::collections::BTreeMap::new();
    let Ok(configs) = strata_registry::image_configs(registry, previous).await else {
        return found;
    };
    for config in configs {
        let Some(key) = config.labels.get(strata_core::inputs::LABEL) else {
            continue;
        };
        let manifest = read_record(registry, previous.name(), key)
            .await
            .and_then(|r| r.manifests.into_values().next())
            .and_then(|m| serde_json::from_str::<strata_report::ManifestData>(&m.json).ok());
        if let Some(manifest) = manifest {
            found.insert(config.platform.to_string(), manifest);
        }
    }
    found
}

/// The record the build of input key `key` left in repository `name`, when
/// there is one that can be read.
async fn read_record(
    registry: &strata_registry::Registry,
    name: &strata_core::reference::ImageName,
    key: &str,
) -> Option<strata_exec::EarlierBuild> {
    let tag = strata_core::inputs::record_tag(key).parse().ok()?;
    let note = strata_registry::get_note(
        registry,
        &name.with_tag(tag),
        strata_exec::EarlierBuild::ARTIFACT_TYPE,
    )
    .await
    .ok()??;
    serde_json::from_str(note.get(strata_exec::EarlierBuild::ANNOTATION)?).ok()
}
