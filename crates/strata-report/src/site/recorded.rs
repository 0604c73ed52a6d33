//! Earlier runs recalled from the build records strata keeps in the
//! registry beside each image it pushed (`name:inputs-<hex>.record`): each
//! record is one image of one earlier run, so records are grouped by the
//! run that wrote them (its revision and when it finished) into
//! [`Run`]s the history charts read, with each image's size (from its
//! recorded manifest) and duration.
//!
//! Pure: the caller reads the records; [`with_recorded`] only plans.

use super::{Image, Made, Outcome, Run};
use crate::ManifestData;
use std::collections::{BTreeMap, BTreeSet};

/// One build record, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBuild {
    /// The spec image whose repository holds it.
    pub image: String,
    /// Its plan, when its manifest names one.
    pub plan: Option<String>,
    /// The reference its build pushed (for an image of several platforms,
    /// one platform's image: each has its own record).
    pub reference: String,
    /// The commit its run built.
    pub revision: String,
    /// When its run finished (RFC 3339, UTC).
    pub finished: String,
    /// How long the image took, when the record says (older ones do not).
    pub duration_secs: Option<f64>,
    /// Its manifest, when recorded: its size.
    pub manifest: Option<ManifestData>,
}

/// What [`with_recorded`] left out, for the caller to say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recalled {
    /// Earlier runs made of records.
    pub runs: usize,
    /// Records of a run given already (same revision and reference).
    pub duplicates: usize,
    /// Records of runs that finished after the run reported.
    pub later: usize,
    /// Records of an image or plan the run reported does not have.
    pub unmatched: usize,
    /// Records beyond the newest `per_image` builds of their image.
    pub over_limit: usize,
}

/// `given` (oldest first, the last the run reported) with the earlier
/// runs `records` make, oldest first, the reported run still last: at
/// most the newest `per_image` recorded builds of each image and plan,
/// leaving out records of the runs given (the run's own records, and those
/// of `--from` folders) and of runs that finished after the reported one.
pub fn with_recorded(
    given: Vec<Run>,
    records: Vec<RecordedBuild>,
    per_image: usize,
) -> (Vec<Run>, Recalled) {
    let mut recalled = Recalled::default();
    let Some(reported) = given.last() else {
        return (given, recalled);
    };
    // Each record's plan: its own, else that of the reported run's image
    // of its key (a stack without plans has one).
    let mut kept: Vec<(String, RecordedBuild)> = Vec::new();
    for record in records {
        if given.iter().any(|run| is_of(run, &record)) {
            recalled.duplicates += 1;
            continue;
        }
        // A reported run without an end (interrupted before it wrote
        // one) leaves out none as later.
        if !reported.finished.is_empty() && record.finished > reported.finished {
            recalled.later += 1;
            continue;
        }
        let plan = reported
            .images
            .iter()
            .find(|i| i.image == record.image && record.plan.as_ref().is_none_or(|p| *p == i.plan))
            .map(|i| i.plan.clone());
        match plan {
            Some(plan) => kept.push((plan, record)),
            None => recalled.unmatched += 1,
        }
    }
    // The newest `per_image` builds (revision and finish) of each image
    // and plan; an image of several platforms has a record per platform.
    let mut builds: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for (plan, r) in &kept {
        builds
            .entry((r.image.clone(), plan.clone()))
            .or_default()
            .insert((r.finished.clone(), r.revision.clone()));
    }
    let newest: BTreeSet<(String, String, String, String)> = builds
        .into_iter()
        .flat_map(|((image, plan), runs)| {
            runs.into_iter()
                .rev()
                .take(per_image)
                .map(move |(finished, revision)| (image.clone(), plan.clone(), finished, revision))
        })
        .collect();
    // Grouped by run (finish, revision), then image and plan.
    type ImageRecords = BTreeMap<(String, String), Vec<RecordedBuild>>;
    let mut runs: BTreeMap<(String, String), ImageRecords> = BTreeMap::new();
    for (plan, r) in kept {
        let key = (
            r.image.clone(),
            plan,
            r.finished.clone(),
            r.revision.clone(),
        );
        if !newest.contains(&key) {
            recalled.over_limit += 1;
            continue;
        }
        let (image, plan, finished, revision) = key;
        runs.entry((finished, revision))
            .or_default()
            .entry((image, plan))
            .or_default()
            .push(r);
    }
    recalled.runs = runs.len();
    let mut all: Vec<Run> = runs
        .into_iter()
        .map(|((finished, revision), images)| recalled_run(finished, revision, images))
        .collect();
    let mut given = given;
    let reported = given.pop();
    all.append(&mut given);
    // Oldest first, as the runs given are sorted: RFC 3339 times in UTC
    // sort as text (a recalled run starts, as far as it is known, when it
    // finished).
    all.sort_by(|a, b| a.started.cmp(&b.started));
    all.extend(reported);
    (all, recalled)
}

/// Whether `record` was written by `run`: its commit, and an image of the
/// run made its reference.
fn is_of(run: &Run, record: &RecordedBuild) -> bool {
    run.head == record.revision
        && run.images.iter().any(|i| {
            i.reference == record.reference
                || i.made.iter().any(|m| m.reference == record.reference)
        })
}

/// One recalled run: its images, each from its records (one, or one per
/// platform).
fn recalled_run(
    finished: String,
    revision: String,
    images: BTreeMap<(String, String), Vec<RecordedBuild>>,
) -> Run {
    let images = images
        .into_iter()
        .map(|((image, plan), mut records)| {
            records.sort_by(|a, b| a.reference.cmp(&b.reference));
            let duration = records
                .iter()
                .filter_map(|r| r.duration_secs)
                .filter(|d| d.is_finite() && *d >= 0.0)
                .reduce(f64::max);
            Image {
                image,
                plan,
                reference: records
                    .first()
                    .map(|r| r.reference.clone())
                    .unwrap_or_default(),
                parent: None,
                // A record is written for an image its run built and
                // tested; one without a duration (an older strata's) is
                // not charted as taking none.
                outcome: if duration.is_some() {
                    Outcome::Built
                } else {
                    Outcome::Reused
                },
                reason: None,
                message: "recalled from its build record in the registry".into(),
                duration_secs: duration.unwrap_or(0.0),
                stages: Vec::new(),
                growth: None,
                budget_bytes: None,
                made: records
                    .into_iter()
                    .map(|r| Made {
                        platform: None,
                        reference: r.reference,
                        manifest: r.manifest,
                    })
                    .collect(),
                logs: Vec::new(),
            }
        })
        .collect();
    Run {
        started: finished.clone(),
        finished,
        head: revision,
        success: true,
        interrupted: false,
        images,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(head: &str, finished: &str, images: &[(&str, &str)]) -> Run {
        Run {
            started: finished.replace(":05:", ":00:"),
            finished: finished.into(),
            head: head.into(),
            success: true,
            interrupted: false,
            images: images
                .iter()
                .map(|(image, reference)| Image {
                    image: (*image).into(),
                    plan: "default".into(),
                    reference: (*reference).into(),
                    parent: None,
                    outcome: Outcome::Built,
                    reason: None,
                    message: String::new(),
                    duration_secs: 3.0,
                    stages: Vec::new(),
                    growth: None,
                    budget_bytes: None,
                    made: Vec::new(),
                    logs: Vec::new(),
                })
                .collect(),
        }
    }

    fn manifest(reference: &str, size: u64) -> ManifestData {
        ManifestData {
            reference: reference.into(),
            image: "a".into(),
            plan: "default".into(),
            image_id: String::new(),
            digest: None,
            size,
            created: String::new(),
            revision: String::new(),
            base_ref: None,
            layers: Vec::new(),
            info: Vec::new(),
            changes: None,
            packages: None,
            since_stable: None,
            trigger: None,
        }
    }

    fn record(image: &str, reference: &str, revision: &str, finished: &str) -> RecordedBuild {
        RecordedBuild {
            image: image.into(),
            plan: None,
            reference: reference.into(),
            revision: revision.into(),
            finished: finished.into(),
            duration_secs: Some(7.0),
            manifest: Some(manifest(reference, 1000)),
        }
    }

    fn heads(runs: &[Run]) -> Vec<&str> {
        runs.iter().map(|r| r.head.as_str()).collect()
    }

    #[test]
    fn records_are_grouped_into_runs_oldest_first_before_the_reported_run() {
        let reported = run(
            "c3",
            "2026-01-03T00:05:00Z",
            &[("a", "o/a:1-c3"), ("b", "o/b:1-c3")],
        );
        let records = vec![
            record("a", "o/a:1-c2", "c2", "2026-01-02T00:05:00Z"),
            record("b", "o/b:1-c2", "c2", "2026-01-02T00:05:00Z"),
            record("a", "o/a:1-c1", "c1", "2026-01-01T00:05:00Z"),
        ];
        let (runs, recalled) = with_recorded(vec![reported], records, 30);
        assert_eq!(heads(&runs), ["c1", "c2", "c3"]);
        assert_eq!(recalled.runs, 2);
        let c2 = &runs[1];
        let names: Vec<&str> = c2.images.iter().map(|i| i.image.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(c2.images[0].size(), Some(1000));
        assert_eq!(c2.images[0].duration_secs, 7.0);
        assert_eq!(c2.images[0].outcome, Outcome::Built);
        assert_eq!(c2.images[0].plan, "default");
        assert_eq!(c2.started, "2026-01-02T00:05:00Z");
    }

    #[test]
    fn the_reported_runs_own_records_and_those_of_runs_given_do_not_appear_twice() {
        let earlier = run("c1", "2026-01-01T00:05:00Z", &[("a", "o/a:1-c1")]);
        let reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        let records = vec![
            record("a", "o/a:1-c2", "c2", "2026-01-02T00:05:00Z"),
            record("a", "o/a:1-c1", "c1", "2026-01-01T00:05:00Z"),
            record("a", "o/a:1-c0", "c0", "2026-01-00T00:05:00Z"),
        ];
        let (runs, recalled) = with_recorded(vec![earlier, reported], records, 30);
        assert_eq!(heads(&runs), ["c0", "c1", "c2"]);
        assert_eq!(recalled.duplicates, 2);
        // The given earlier run is the one from its folder, not a record's.
        assert_eq!(runs[1].images[0].duration_secs, 3.0);
    }

    #[test]
    fn a_reference_made_by_a_platform_of_the_reported_run_is_its_own() {
        let mut reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        reported.images[0].made.push(Made {
            platform: Some("linux/arm64".into()),
            reference: "o/a:1-c2-linux-arm64".into(),
            manifest: None,
        });
        let records = vec![record(
            "a",
            "o/a:1-c2-linux-arm64",
            "c2",
            "2026-01-02T00:05:00Z",
        )];
        let (runs, recalled) = with_recorded(vec![reported], records, 30);
        assert_eq!(runs.len(), 1);
        assert_eq!(recalled.duplicates, 1);
    }

    #[test]
    fn the_platforms_of_one_build_are_one_image_sized_by_the_largest() {
        let reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        let mut arm = record("a", "o/a:1-c1-linux-arm64", "c1", "2026-01-01T00:05:00Z");
        arm.manifest = Some(manifest("o/a:1-c1-linux-arm64", 3000));
        arm.duration_secs = Some(9.0);
        let amd = record("a", "o/a:1-c1-linux-amd64", "c1", "2026-01-01T00:05:00Z");
        let (runs, _) = with_recorded(vec![reported], vec![arm, amd], 30);
        assert_eq!(heads(&runs), ["c1", "c2"]);
        assert_eq!(runs[0].images.len(), 1);
        assert_eq!(runs[0].images[0].size(), Some(3000));
        assert_eq!(runs[0].images[0].duration_secs, 9.0);
        assert_eq!(runs[0].images[0].reference, "o/a:1-c1-linux-amd64");
    }

    #[test]
    fn only_the_newest_builds_of_each_image_are_kept() {
        let reported = run("c9", "2026-01-09T00:05:00Z", &[("a", "o/a:1-c9")]);
        let records: Vec<RecordedBuild> = (1..=5)
            .map(|d| {
                record(
                    "a",
                    &format!("o/a:1-c{d}"),
                    &format!("c{d}"),
                    &format!("2026-01-0{d}T00:05:00Z"),
                )
            })
            .collect();
        let (runs, recalled) = with_recorded(vec![reported], records, 2);
        assert_eq!(heads(&runs), ["c4", "c5", "c9"]);
        assert_eq!(recalled.over_limit, 3);
    }

    #[test]
    fn later_runs_unknown_images_and_other_plans_are_left_out() {
        let reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        let later = record("a", "o/a:1-c3", "c3", "2026-01-03T00:05:00Z");
        let gone = record("z", "o/z:1-c1", "c1", "2026-01-01T00:05:00Z");
        let mut other_plan = record("a", "o/a:2-c1", "c1", "2026-01-01T00:05:00Z");
        other_plan.plan = Some("next".into());
        let (runs, recalled) = with_recorded(vec![reported], vec![later, gone, other_plan], 30);
        assert_eq!(heads(&runs), ["c2"]);
        assert_eq!(
            recalled,
            Recalled {
                runs: 0,
                duplicates: 0,
                later: 1,
                unmatched: 2,
                over_limit: 0,
            }
        );
    }

    #[test]
    fn a_reported_run_without_an_end_keeps_every_earlier_record() {
        let mut reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        reported.finished = String::new();
        let records = vec![record("a", "o/a:1-c1", "c1", "2026-01-01T00:05:00Z")];
        let (runs, recalled) = with_recorded(vec![reported], records, 30);
        assert_eq!(heads(&runs), ["c1", "c2"]);
        assert_eq!(recalled.later, 0);
    }

    #[test]
    fn an_older_record_without_a_duration_charts_its_size_only() {
        let reported = run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]);
        let mut old = record("a", "o/a:1-c1", "c1", "2026-01-01T00:05:00Z");
        old.duration_secs = None;
        let (runs, _) = with_recorded(vec![reported], vec![old], 30);
        let image = &runs[0].images[0];
        assert!(!image.outcome.ran(), "{image:?}");
        assert_eq!(image.size(), Some(1000));
    }

    #[test]
    fn no_records_leave_the_runs_given_as_they_were() {
        let given = vec![
            run("c1", "2026-01-01T00:05:00Z", &[("a", "o/a:1-c1")]),
            run("c2", "2026-01-02T00:05:00Z", &[("a", "o/a:1-c2")]),
        ];
        let (runs, recalled) = with_recorded(given.clone(), Vec::new(), 30);
        assert_eq!(runs, given);
        assert_eq!(recalled, Recalled::default());
        let (runs, _) = with_recorded(Vec::new(), vec![record("a", "r", "c", "t")], 30);
        assert!(runs.is_empty());
    }
}
