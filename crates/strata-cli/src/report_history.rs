//! `strata report --registry-history`: earlier runs recalled from the
//! build records strata keeps in the registry beside each image it pushed
//! (`name:inputs-<hex>.record`, see `build_records`). For each image of the
//! run reported, its repository's record tags are listed and the records
//! read; [`strata_report::site::with_recorded`] turns them into the runs
//! the history charts. Here they are only read.

use crate::output::Reporter;
use std::collections::{BTreeMap, BTreeSet};
use strata_core::reference::{ImageName, ImageRef, Tag};
use strata_exec::EarlierBuild;
use strata_registry::{Registry, RegistryError};
use strata_report::ManifestData;
use strata_report::site::{self, RecordedBuild};

/// The newest recorded builds of each image charted.
pub const BUILDS_PER_IMAGE: usize = 30;

/// The most records read from one repository: record tags are named by
/// input keys, which say nothing of when, so every one read is a request.
pub const MAX_RECORDS_READ: usize = 200;

/// Records read at once from one repository.
const READS_AT_ONCE: usize = 8;

/// `runs` (oldest first, the last reported) with the earlier runs the
/// registry's records of the reported run's images make.
///
/// A registry that cannot be listed (unreachable, credentials refused) is
/// a warning naming it and what to do, and the report is written without
/// its history: `strata report` typically runs in CI after a build, often
/// a failed one, to publish what happened; failing it for want of charts
/// would lose the report of the run itself, which is what the reader came
/// for. A record that cannot be read is skipped with a note.
pub fn recall(runs: Vec<site::Run>, reporter: &Reporter) -> Vec<site::Run> {
    let Some(reported) = runs.last() else {
        return runs;
    };
    let mut repositories: BTreeMap<String, (ImageName, BTreeSet<String>)> = BTreeMap::new();
    for image in &reported.images {
        let Ok(reference) = image.reference.parse::<ImageRef>() else {
            reporter.note(&format!(
                "note: {} of {} is not an image reference; no registry history for it",
                image.reference, image.image
            ));
            continue;
        };
        repositories
            .entry(reference.name().to_string())
            .or_insert_with(|| (reference.name().clone(), BTreeSet::new()))
            .1
            .insert(image.image.clone());
    }
    let (registry, runtime) = match (crate::registry::client(), crate::runtime()) {
        (Ok(registry), Ok(runtime)) => (registry, runtime),
        (Err(e), _) | (_, Err(e)) => {
            reporter.note(&format!("warning: the registry history is left out: {e}"));
            return runs;
        }
    };
    let mut records = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for (name, keys) in repositories.values() {
        let host = name.registry().to_string();
        if failed.contains(&host) {
            continue;
        }
        match runtime.block_on(read_repository(registry, name, keys)) {
            Ok((found, notes)) => {
                for note in notes {
                    reporter.note(&format!("note: {note}"));
                }
                records.extend(found);
            }
            Err(e) => {
                reporter.note(&format!(
                    "warning: cannot list the build records of {name} in {host}: {e}; \
                     the report is written without their history. Check that {host} \
                     can be reached from here and that the Docker config's credentials \
                     for it may pull {name}, or leave out --registry-history"
                ));
                if e.is_environment() {
                    // Each other repository there would fail the same way,
                    // after the same retries.
                    failed.insert(host);
                }
            }
        }
    }
    let (runs, recalled) = site::with_recorded(runs, records, BUILDS_PER_IMAGE);
    let mut said = vec![format!(
        "{} recalled from the registry's build records",
        strata_core::text::count(recalled.runs, "earlier run")
    )];
    let newest = format!("beyond each image's newest {BUILDS_PER_IMAGE} builds");
    for (left_out, why) in [
        (recalled.duplicates, "of runs given"),
        (recalled.later, "of later runs"),
        (
            recalled.unmatched,
            "of images or plans not in the run reported",
        ),
        (recalled.over_limit, newest.as_str()),
    ] {
        if left_out > 0 {
            said.push(format!(
                "{} {why} left out",
                strata_core::text::count(left_out, "record")
            ));
        }
    }
    reporter.note(&said.join("; "));
    runs
}

/// The records in repository `name`, of the spec images `keys` (which
/// publish there), and a note for each that could not be read. Only
/// listing the repository's tags fails the whole.
async fn read_repository(
    registry: &'static Registry,
    name: &ImageName,
    keys: &BTreeSet<String>,
) -> Result<(Vec<RecordedBuild>, Vec<String>), RegistryError> {
    let mut tags: Vec<String> = registry
        .list_tags(name)
        .await?
        .into_iter()
        .filter(|t| t.starts_with("inputs-") && t.ends_with(".record"))
        .collect();
    tags.sort();
    let mut notes = Vec::new();
    if tags.len() > MAX_RECORDS_READ {
        notes.push(format!(
            "{name} holds {} build records; {MAX_RECORDS_READ} of them are read, \
             so its history may miss some builds",
            tags.len()
        ));
        tags.truncate(MAX_RECORDS_READ);
    }
    let mut found = Vec::new();
    for chunk in tags.chunks(READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for tag in chunk {
            let (name, tag) = (name.clone(), tag.clone());
            reads.spawn(async move { read_record(registry, &name, &tag).await });
        }
        while let Some(read) = reads.join_next().await {
            match read {
                Ok(Ok(record)) => match recorded(record, keys) {
                    Ok(record) => found.push(record),
                    Err(note) => notes.push(note),
                },
                Ok(Err(note)) => notes.push(note),
                Err(e) => notes.push(format!("a read of {name}'s records stopped: {e}")),
            }
        }
    }
    Ok((found, notes))
}

/// The record at `name:tag`, or why it cannot be read.
async fn read_record(
    registry: &Registry,
    name: &ImageName,
    tag: &str,
) -> Result<EarlierBuild, String> {
    let at = format!("{name}:{tag}");
    let tag: Tag = tag.parse().map_err(|e| format!("{at}: {e}; skipped"))?;
    let note =
        strata_registry::get_note(registry, &name.with_tag(tag), EarlierBuild::ARTIFACT_TYPE)
            .await
            .map_err(|e| format!("{at} cannot be read ({e}); skipped"))?
            .ok_or_else(|| format!("{at} is not a strata build record; skipped"))?;
    let json = note.get(EarlierBuild::ANNOTATION).ok_or_else(|| {
        format!(
            "{at} has no {} annotation; skipped",
            EarlierBuild::ANNOTATION
        )
    })?;
    serde_json::from_str(json)
        .map_err(|e| format!("{at} does not read as a build record ({e}); skipped"))
}

/// A record as the report needs it: the spec image it is of (its manifest
/// says, or its repository's only image), its plan and its size.
fn recorded(record: EarlierBuild, keys: &BTreeSet<String>) -> Result<RecordedBuild, String> {
    let manifest: Option<ManifestData> = record
        .manifests
        .get(&record.reference)
        .or_else(|| record.manifests.values().next())
        .and_then(|m| serde_json::from_str(&m.json).ok());
    let image = match &manifest {
        Some(m) if keys.contains(&m.image) => m.image.clone(),
        _ if keys.len() == 1 => keys.iter().next().cloned().unwrap_or_default(),
        _ => {
            return Err(format!(
                "the record of {} does not say which of {} it is of; skipped",
                record.reference,
                keys.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    };
    Ok(RecordedBuild {
        image,
        plan: manifest
            .as_ref()
            .map(|m| m.plan.clone())
            .filter(|p| !p.is_empty()),
        reference: record.reference,
        revision: record.revision,
        finished: record.finished,
        duration_secs: record.duration_secs,
        manifest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json_of: Option<(&str, &str)>) -> EarlierBuild {
        let manifests = json_of
            .map(|(image, plan)| {
                let json = serde_json::json!({
                    "reference": "o/a:1-c1", "image": image, "plan": plan,
                    "image_id": "", "digest": null, "size": 1234, "created": "",
                    "revision": "c1", "base_ref": null, "layers": [], "info": []
                });
                (
                    "o/a:1-c1".to_string(),
                    strata_exec::RecordedManifest {
                        json: json.to_string(),
                        markdown: String::new(),
                    },
                )
            })
            .into_iter()
            .collect();
        EarlierBuild {
            reference: "o/a:1-c1".into(),
            revision: "c1".into(),
            finished: "2026-01-01T00:00:00Z".into(),
            cases: Vec::new(),
            test_key: None,
            manifests,
            duration_secs: Some(4.0),
        }
    }

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_record_is_of_the_image_its_manifest_names_with_its_size_and_plan() {
        let read = recorded(record(Some(("a", "next"))), &keys(&["a", "b"]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.image, "a");
        assert_eq!(read.plan.as_deref(), Some("next"));
        assert_eq!(read.manifest.map(|m| m.size), Some(1234));
        assert_eq!(read.duration_secs, Some(4.0));
    }

    #[test]
    fn a_record_without_a_manifest_is_of_its_repositorys_only_image() {
        let read = recorded(record(None), &keys(&["a"])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.image.as_str(), read.plan), ("a", None));
        let said = recorded(record(None), &keys(&["a", "b"])).err();
        assert!(
            said.as_deref()
                .is_some_and(|s| s.contains("o/a:1-c1") && s.contains("a, b")),
            "{said:?}"
        );
    }
}
