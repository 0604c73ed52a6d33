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
    let mut records = Vec::new();
    // An image built here, or reused and tested again here (its test
    // files changed): its record says which test files it passed with.
    let tested_here = |i: &strata_exec::ImageResult| {
        i.stages.iter().any(|s| {
            s.stage == strata_exec::Stage::BasicTests.name() && s.status == strata_exec::Status::Ok
        })
    };
    for i in record
        .images
        .iter()
        .filter(|i| i.success && (i.outcome == strata_exec::Outcome::Built || tested_here(i)))
    {
        let Ok((name, _)) = strata_engine::split_reference(&i.reference) else {
            continue;
        };
        let Some(tests) = i
            .stages
            .iter()
            .find(|s| s.stage == strata_exec::Stage::BasicTests.name())
        else {
            continue;
        };
        // Each platform's image has its own key and record; its cases are
        // named after it (`linux/arm64: checks.yaml`), which its record
        // leaves out.
        let parts: Vec<(&str, Option<&String>, Option<&str>)> = match i.platforms.as_slice() {
            [] => vec![(i.reference.as_str(), i.inputs.as_ref(), None)],
            some => some
                .iter()
                .map(|p| {
                    (
                        p.reference.as_str(),
                        p.inputs.as_ref(),
                        Some(p.platform.as_str()),
                    )
                })
                .collect(),
        };
        for (reference, key, platform) in parts {
            let Some(key) = key else { continue };
            let prefix = platform.map(|p| format!("{p}: ")).unwrap_or_default();
            let cases = tests
                .tests
                .iter()
                .filter_map(|c| {
                    Some(strata_report::junit::TestCase {
                        classname: c.classname.strip_prefix(&prefix)?.to_string(),
                        output: String::new(),
                        ..c.clone()
                    })
                })
                .collect();
            let manifests = recorded_manifest(out, reference)
                .map(|m| (reference.to_string(), m))
                .into_iter()
                .collect();
            let earlier = strata_exec::EarlierBuild {
                reference: reference.to_string(),
                revision: revision.to_string(),
                finished: record.finished.clone(),
                cases,
                test_key: i.test_key.clone(),
                manifests,
            };
            records.push((
                format!("{name}:{}", strata_core::inputs::record_tag(key)),
                earlier,
            ));
        }
    }
    records
}

/// The manifest files the run wrote for `reference`.
fn recorded_manifest(out: &Path, reference: &str) -> Option<strata_exec::RecordedManifest> {
    let stem = strata_report::ref_file_stem(reference);
    let read = |ext: &str| {
        std::fs::read_to_string(out.join("manifests").join(format!("{stem}.{ext}"))).ok()
    };
    Some(strata_exec::RecordedManifest {
        json: read("json")?,
        markdown: read("md")?,
    })
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
