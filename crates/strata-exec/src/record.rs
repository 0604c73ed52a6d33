//! What a run records: per image and stage, and the files it writes them to.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It ran and passed.
    Ok,
    /// It ran and failed.
    Failed,
    /// It did not run (not asked for, or nothing to run).
    Skipped,
}

/// How one image ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every stage that ran passed.
    Built,
    /// An image built from the same inputs was given its tag: not built.
    Reused,
    /// It was already built and tested (and, online, pushed) under this
    /// run's tag, by an earlier attempt of the run stopped by a fault or by
    /// the run's jobs on other runners: this run picked up after it, not
    /// building it again.
    Resumed,
    /// A stage failed.
    Failed,
    /// It never started (its parent failed, or the run was interrupted).
    Skipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Built => "built",
            Outcome::Reused => "reused",
            Outcome::Resumed => "resumed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        })
    }
}

/// One stage of one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// The stage's name.
    pub stage: String,
    /// How it ended.
    pub status: Status,
    /// How long it took, in seconds.
    pub duration_secs: f64,
    /// When it started, in seconds from the run's start: where the report's
    /// timeline draws it. `None` for a stage that did not run, and in
    /// records written before it was kept (read with the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_secs: Option<f64>,
    /// What happened, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The test cases a test stage ran (pytest's and structure tests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<strata_report::junit::TestCase>,
    /// For an image of several platforms, each platform's part of the
    /// stage, in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<strata_report::site::PlatformSpan>,
}

/// One image of the run: `artifacts/<ref>.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageResult {
    /// The image's key.
    pub image: String,
    /// The plan.
    pub plan: String,
    /// The full reference built.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Whether every stage that ran passed.
    pub success: bool,
    /// What kind of failure ended it, when one did: `engine_gone`,
    /// `out_of_space`, `engine`, `tests`, `timed_out`, `interrupted`,
    /// `provenance` (what would be published is not what was built),
    /// `registry`, `budget` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::stages::FailureKind>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or was skipped; what it produced otherwise.
    pub message: String,
    /// The local image ID this run built (the engine's ID, the digest of
    /// its config), which its tests ran on and its push sent: anyone can
    /// check the pushed manifest's config against it. `None` for an image
    /// not built in the run, and for one of several platforms (each
    /// platform's image has its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// The key of what its basic tests run
    /// ([`strata_core::inputs::test_key`]): what a reuse of it compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_key: Option<String>,
    /// The digest it was pushed at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Seconds from its first stage's start to its last stage's end.
    pub duration_secs: f64,
    /// Every stage, in order.
    pub stages: Vec<StageResult>,
    /// Each platform's image of a multi-platform build, as pushed; the
    /// run's tag names their index once every platform passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<PlatformImage>,
    /// Its input key (`io.strata.inputs`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// The image it reused instead of building (same inputs), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
    /// How much it grew since its previous published build, when its
    /// manifest compared them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<Growth>,
    /// Bytes its prune stage gave back to the engine's data root (the free
    /// space the filesystem gained), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaimed_bytes: Option<u64>,
}

/// One platform's image of a multi-platform build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformImage {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Its own reference, `<ref>-linux-arm64`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The local image ID this run built for the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Its pushed digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Its input key (each platform's image has its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

/// An image's size against its previous published build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Growth {
    /// The previous build's reference.
    pub since: String,
    /// Bytes gained (negative when it shrank).
    pub bytes: i64,
}

/// One image a run made of a spec image: the image itself, or one of its
/// platforms' images.
#[derive(Debug, Clone, Copy)]
pub struct MadeImage<'a> {
    /// Its reference.
    pub reference: &'a str,
    /// The digest it was pushed at.
    pub digest: Option<&'a str>,
    /// Its input key.
    pub inputs: Option<&'a String>,
    /// Its platform, for one of several platforms' images.
    pub platform: Option<&'a str>,
}

impl ImageResult {
    /// The images it is made of: each platform's image of a multi-platform
    /// build, else itself.
    pub fn made_images(&self) -> Vec<MadeImage<'_>> {
        match self.platforms.as_slice() {
            [] => vec![MadeImage {
                reference: &self.reference,
                digest: self.digest.as_deref(),
                inputs: self.inputs.as_ref(),
                platform: None,
            }],
            some => some
                .iter()
                .map(|p| MadeImage {
                    reference: &p.reference,
                    digest: p.digest.as_deref(),
                    inputs: p.inputs.as_ref(),
                    platform: Some(&p.platform),
                })
                .collect(),
        }
    }

    /// The stage that failed, if any.
    pub fn failed_stage(&self) -> Option<&StageResult> {
        self.stages.iter().find(|s| s.status == Status::Failed)
    }
}

/// The whole run: `artifacts/run.json`. Written and read (`strata wiki`)
/// through this same type, so a renamed field fails loudly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The plan that was executed (the `strata plan` JSON).
    pub plan: PlanRecord,
    /// When the run started (RFC 3339, UTC).
    pub started: String,
    /// When it ended.
    pub finished: String,
    /// Whether every image built.
    pub success: bool,
    /// Whether the run was interrupted.
    pub interrupted: bool,
    /// Every image the run was to build.
    pub images: Vec<ImageResult>,
}

impl RunRecord {
    /// The run's test report: one suite per image and test stage that ran
    /// (or was cut off), in the order of the run's images.
    pub fn junit_suites(&self) -> Vec<strata_report::junit::TestSuite> {
        self.images
            .iter()
            .flat_map(|image| {
                image
                    .stages
                    .iter()
                    .filter(|s| !s.tests.is_empty())
                    .map(|s| strata_report::junit::TestSuite {
                        name: format!("{} {}", image.reference, s.stage),
                        cases: s.tests.clone(),
                        time_secs: s.duration_secs,
                    })
            })
            .collect()
    }

    /// The failed test cases of the run, as `(suite, case)` names.
    pub fn failed_tests(&self) -> Vec<(String, String)> {
        self.junit_suites()
            .into_iter()
            .flat_map(|suite| {
                suite
                    .cases
                    .into_iter()
                    .filter(|c| c.is_failure())
                    .map(move |c| (suite.name.clone(), c.name))
            })
            .collect()
    }
}

/// The plan in a run record: the fields readers use, typed, and every other
/// field of the `strata plan` JSON kept as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The head commit.
    pub head: String,
    /// The base commit.
    pub base: Option<String>,
    /// One entry per image per plan.
    pub builds: Vec<BuildRecord>,
    /// The plan's other fields.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// One image of one plan in a run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The image's key.
    pub image: String,
    /// The plan's name.
    pub plan: String,
    /// Whether the run rebuilt it.
    pub rebuild: bool,
    /// The run's tag.
    pub tag: String,
    /// `<image_name>:<tag>`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The build's other fields.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl PlanRecord {
    /// The record of `plan`.
    pub fn of(plan: &strata_core::plan::Plan) -> PlanRecord {
        let rest = |value: serde_json::Value, known: &[&str]| match value {
            serde_json::Value::Object(mut map) => {
                for k in known {
                    map.remove(*k);
                }
                map
            }
            _ => serde_json::Map::new(),
        };
        PlanRecord {
            head: plan.head.clone(),
            base: plan.base.clone(),
            builds: plan
                .builds
                .iter()
                .map(|b| BuildRecord {
                    image: b.image.clone(),
                    plan: b.plan.clone(),
                    rebuild: b.rebuild,
                    tag: b.tag.clone(),
                    reference: b.reference.clone(),
                    rest: rest(
                        serde_json::to_value(b).unwrap_or_default(),
                        &["image", "plan", "rebuild", "tag", "ref"],
                    ),
                })
                .collect(),
            rest: rest(
                serde_json::to_value(plan).unwrap_or_default(),
                &["head", "base", "builds"],
            ),
        }
    }
}

/// The folders a run writes to, under its working directory.
#[derive(Debug, Clone)]
pub struct OutputDirs {
    /// `artifacts/`.
    pub artifacts: PathBuf,
    /// `logs/`.
    pub logs: PathBuf,
    /// `manifests/`.
    pub manifests: PathBuf,
}

impl OutputDirs {
    /// The folders under `root`, created.
    pub fn create(root: &Path) -> std::io::Result<OutputDirs> {
        let dirs = OutputDirs {
            artifacts: root.join("artifacts"),
            logs: root.join("logs"),
            manifests: root.join("manifests"),
        };
        for d in [&dirs.artifacts, &dirs.logs, &dirs.manifests] {
            std::fs::create_dir_all(d)?;
        }
        Ok(dirs)
    }
}

/// `logs/run.log`: one timestamped line per event, shared by every task.
#[derive(Debug)]
pub struct RunLog {
    file: Mutex<std::fs::File>,
}

impl RunLog {
    /// Opens (truncating) the run log.
    pub fn create(path: &Path) -> std::io::Result<RunLog> {
        Ok(RunLog {
            file: Mutex::new(std::fs::File::create(path)?),
        })
    }

    /// Appends a line with the current time.
    pub fn line(&self, message: &str) {
        if let Ok(mut f) = self.file.lock() {
            // A full disk must not stop the build; the line is lost, not the run.
            let _ = writeln!(f, "{} {message}", now_rfc3339());
        }
    }
}

/// Writes `value` as YAML to `path`, through a temporary file so a reader
/// never sees half a file.
pub fn write_yaml<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = strata_report::to_yaml(value).map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Writes `value` as pretty JSON to `path`, the same way as [`write_yaml`].
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = strata_report::to_json(value).map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file in the same folder,
/// flushed to disk and renamed into place: a reader (or a run killed at any
/// moment) sees the file complete or as it was, never half-written. The
/// temporary file's name is unique to the process and the call, so two
/// writers never share one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The current time as RFC 3339 UTC, to the second.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    strata_report::text::rfc3339(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["run.json"]);
        // A folder that cannot be written: an error, nothing left behind.
        assert!(write_atomic(&dir.path().join("no/such/dir/x"), b"x").is_err());
    }

    #[test]
    fn results_serialise_to_yaml_with_the_stage_list() {
        let r = ImageResult {
            image: "a".into(),
            plan: "default".into(),
            reference: "x/a:1-abc".into(),
            success: false,
            failure: Some(crate::stages::FailureKind::Engine),
            outcome: Outcome::Failed,
            message: "build failed".into(),
            image_id: None,
            test_key: None,
            digest: None,
            duration_secs: 1.5,
            stages: vec![StageResult {
                tests: Vec::new(),
                platforms: Vec::new(),
                stage: "build".into(),
                status: Status::Failed,
                duration_secs: 1.5,
                started_secs: Some(0.25),
                message: Some("exit 1".into()),
            }],
            inputs: None,
            reused: None,
            platforms: Vec::new(),
            growth: None,
            reclaimed_bytes: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        write_yaml(&path, &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("success: false"), "{text}");
        assert!(text.contains("stage: build"), "{text}");
        assert!(text.contains("status: failed"), "{text}");
        assert!(!text.contains("digest"), "{text}");
    }

    #[test]
    fn a_plan_record_keeps_every_field_of_the_plan_and_reads_back() {
        let text = "images:\n  a: {image_name: o/a}\n  b: {image_name: o/b, depend_on: a}\ntag: {prefix: '1'}\n";
        let spec = strata_core::spec::parse(text, "spec.yml").spec.unwrap();
        let graph = strata_core::graph::Graph::new(&spec).unwrap();
        let rules = strata_core::changes::ChangeRules::default();
        let detected = strata_core::changes::detect(
            &spec,
            &strata_core::changes::ChangeSet {
                images_dir: "images",
                paths: &[],
                uncommitted: &Default::default(),
                commits: &[],
                rules: &rules,
                old_spec: None,
                forced: Some(strata_core::changes::Reason::All),
            },
        );
        struct Nothing;
        impl strata_core::plan::PublishedLookup for Nothing {
            fn lookup(
                &mut self,
                _: &strata_core::spec::ImageSpec,
                _: &strata_core::spec::PlanSpec,
                _: Option<&str>,
            ) -> strata_core::plan::Published {
                strata_core::plan::Published::Missing
            }
        }
        let options = strata_core::plan::PlanOptions {
            head: "0123456789".into(),
            suffix: "0123456".into(),
            ..Default::default()
        };
        let plan = strata_core::plan::plan(&spec, &graph, &detected, &options, &mut Nothing);
        let record = PlanRecord::of(&plan);
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written, serde_json::to_value(&plan).unwrap());
        let read: PlanRecord = serde_json::from_value(written).unwrap();
        assert_eq!(read, record);
        assert_eq!(read.builds[1].reference, plan.builds[1].reference);
        assert_eq!(read.head, "0123456789");
    }
}
