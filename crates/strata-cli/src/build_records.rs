//! The record of what a build left (the tests the image passed before it
//! was pushed, its manifest), kept in its registry beside it
//! (`name:inputs-<hex>.record`, an OCI note of annotations): written after
//! a run for each image it built and pushed, read before a run for each
//! image it reuses, whose basic tests are then reported as they ran and
//! whose manifest is written as it was (in the finish of a job graph,
//! every job's), without pulling the image when nothing else needs it.

use std::path::Path;
use strata_exec::Target;

/// The record of each image this run built and pushed: where it goes
/// (`name:inputs-<hex>.record`) and what it says. Test outputs are left
/// out: names, times and outcomes are what a later run reports. `out` is
/// the run's output folder, whose manifests are recorded.
pub fn of_run(
    record: &strata_exec::RunRecord,
    revision: &str,
    out: &Path,
) -> Vec<(String, strata_exec::EarlierBuild)> {
    record
        .images
        .iter()
        .filter(|i| i.success && i.outcome == strata_exec::Outcome::Built)
        .filter_map(|i| {
            // One platform's image (a job's) has a record of its own; the
            // cases of a run of several platforms are not told apart.
            let key = match i.platforms.as_slice() {
                [] => i.inputs.as_ref()?,
                [one] => one.inputs.as_ref()?,
                _ => return None,
            };
            let (name, _) = strata_engine::split_reference(&i.reference).ok()?;
            let tests = i
                .stages
                .iter()
                .find(|s| s.stage == strata_exec::Stage::BasicTests.name())?;
            let cases = tests
                .tests
                .iter()
                .map(|c| strata_report::junit::TestCase {
                    output: String::new(),
                    ..c.clone()
                })
                .collect();
            let described: Vec<&str> = match i.platforms.as_slice() {
                [] => vec![i.reference.as_str()],
                some => some.iter().map(|p| p.reference.as_str()).collect(),
            };
            let manifests = described
                .into_iter()
                .filter_map(|reference| {
                    let stem = strata_report::ref_file_stem(reference);
                    let read = |ext: &str| {
                        std::fs::read_to_string(out.join("manifests").join(format!("{stem}.{ext}")))
                            .ok()
                    };
                    let (json, markdown) = (read("json")?, read("md")?);
                    Some((
                        reference.to_string(),
                        strata_exec::RecordedManifest { json, markdown },
                    ))
                })
                .collect();
            let earlier = strata_exec::EarlierBuild {
                reference: i.reference.clone(),
                revision: revision.to_string(),
                finished: record.finished.clone(),
                cases,
                manifests,
            };
            Some((
                format!("{name}:{}", strata_core::inputs::record_tag(key)),
                earlier,
            ))
        })
        .collect()
}

/// Puts one record of [`of_run`] in the registry, as a note.
pub async fn put(
    registry: &strata_registry::Registry,
    reference: &str,
    earlier: &strata_exec::EarlierBuild,
) -> Result<(), String> {
    let target: strata_core::reference::ImageRef = reference.parse().map_err(|e| format!("{e}"))?;
    let json = serde_json::to_string(earlier).map_err(|e| e.to_string())?;
    let annotations = std::collections::BTreeMap::from([(
        strata_exec::EarlierBuild::ANNOTATION.to_string(),
        json,
    )]);
    strata_registry::put_note(
        registry,
        &target,
        strata_exec::EarlierBuild::ARTIFACT_TYPE,
        &annotations,
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Gives each target reused from the registry the tests its build passed,
/// as recorded beside it: for an image of several platforms, each
/// platform's (its cases named after their platform). A record that cannot
/// be read only leaves them out.
pub fn attach(targets: &mut [Target]) {
    let wanted: Vec<usize> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.build
                .reuse
                .as_deref()
                .is_some_and(strata_core::inputs::in_registry)
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
        let reference = format!("{name}:{}", strata_core::inputs::record_tag(key))
            .parse::<strata_core::reference::ImageRef>()
            .ok()?;
        let note = runtime.block_on(strata_registry::get_note(
            &registry,
            &reference,
            strata_exec::EarlierBuild::ARTIFACT_TYPE,
        ));
        let json = note.ok()??.remove(strata_exec::EarlierBuild::ANNOTATION)?;
        serde_json::from_str(&json).ok()
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
                    }
                    None => merged = Some(found),
                }
            }
            merged
        };
    }
}
