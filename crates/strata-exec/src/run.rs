//! The vocabulary of a run: its stages, options, targets and events, and
//! why it cannot start. The scheduler (`schedule.rs`) and the stages
//! (`stages.rs`) both speak it; neither depends on the other's internals.

use crate::backend::Backend;
use crate::record::{ImageResult, StageResult};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use strata_core::plan::{Build, Plan};
use strata_core::spec::{ImageSpec, InfoCmd, Spec};
use strata_engine::RegistryAuth;
use strata_structure::StructureFile;

/// The stages of an image's pipeline, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Build the image.
    Build,
    /// Run `tests_common/` and `<image>/test/`.
    BasicTests,
    /// Push it.
    Push,
    /// Run its gates on what was pushed, then give it the run's tag.
    Gates,
    /// Run `<image>/integration_tests/`.
    IntegrationTests,
    /// Write its manifest.
    Manifest,
    /// Reclaim engine space.
    Prune,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Build,
        Stage::BasicTests,
        Stage::Push,
        Stage::Gates,
        Stage::IntegrationTests,
        Stage::Manifest,
        Stage::Prune,
    ];

    /// The stage's key in spec.yml's `timeouts:` and `--timeout`.
    pub fn key(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::BasicTests => "basic_tests",
            Stage::Push => "push",
            Stage::Gates => "gates",
            Stage::IntegrationTests => "integration_tests",
            Stage::Manifest => "manifest",
            Stage::Prune => "prune",
        }
    }

    /// The stage's name in logs and artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Build => "build",
            Stage::BasicTests => "basic-tests",
            Stage::Push => "push",
            Stage::Gates => "gates",
            Stage::IntegrationTests => "integration-tests",
            Stage::Manifest => "manifest",
            Stage::Prune => "prune",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the executor reports as it goes, for progress displays.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stage started.
    StageStarted {
        /// The image ref.
        reference: String,
        /// The stage.
        stage: Stage,
    },
    /// A stage ended.
    StageFinished {
        /// The image ref.
        reference: String,
        /// Its result.
        result: StageResult,
    },
    /// An image is done (built, failed or skipped).
    ImageFinished(Box<ImageResult>),
    /// A line of an image's build log (what `logs/<ref>.build.log` gets).
    BuildOutput {
        /// The image ref.
        reference: String,
        /// The line, without its ending.
        line: String,
    },
}

/// One image of one plan to run, with what its stages need from the spec.
#[derive(Debug, Clone)]
pub struct Target {
    /// The gates it passes after its push (see [`strata_core::gates`]).
    pub gates: Vec<strata_core::gates::Gate>,
    /// The plan's entry.
    pub build: Build,
    /// The image's spec entry.
    pub image: ImageSpec,
    /// Its info commands, resolved.
    pub info_cmds: Vec<(String, InfoCmd)>,
    /// A published image to pull and use as build cache (`prepull: true`).
    pub cache_from: Option<String>,
    /// Its previous published build (pinned by digest; looked up for
    /// `prepull: true` images, which pull it anyway), which its
    /// manifest is compared with; never this run's own tag.
    pub previous: Option<String>,
    /// The manifest of `previous` as its build recorded it in the registry,
    /// by platform (`linux/amd64`): what the manifest stage compares with,
    /// never running a container of the previous image. Empty when there is
    /// no previous build or it left no record.
    pub previous_manifests: BTreeMap<String, strata_report::ManifestData>,
    /// Its plan's stable tag's reference (`name:<prefix>stable`), and the
    /// packages of each platform's image there as their SBOMs beside them
    /// in the registry list them (`""` for a single image): what the
    /// manifest stage lists the packages changed since. Empty when there is
    /// no stable image or it has no SBOM.
    pub stable_packages: Option<(String, BTreeMap<String, Vec<strata_sbom::Package>>)>,
    /// What its basic tests run.
    pub basic_tests: StageTests,
    /// What its integration tests run.
    pub integration_tests: StageTests,
    /// The one platform this target builds, when it is a platform's image
    /// of a multi-platform build (see [`Target::variants`]).
    pub platform: Option<strata_core::platform::Platform>,
    /// For an image reused from the registry: what its build left, as the
    /// run that built it (another run or job) recorded it: the basic tests
    /// it passed, reported with where they ran in place of running them
    /// again, and its manifest, written as it is instead of pulling the
    /// image to make it again.
    pub earlier: Option<EarlierBuild>,
    /// The key of what its basic tests run (see
    /// [`strata_core::inputs::test_key`]), read from the images folder the
    /// run tests with when the run starts; `None` until then, or when a
    /// file could not be read.
    pub test_key: Option<String>,
}

/// What a build left, recorded in its registry beside the image it pushed
/// (see [`EarlierBuild::ANNOTATION`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlierBuild {
    /// The reference that build pushed.
    pub reference: String,
    /// Its revision.
    pub revision: String,
    /// When its run finished.
    pub finished: String,
    /// Its basic tests' cases (their output left out).
    pub cases: Vec<strata_report::junit::TestCase>,
    /// The key of the test inputs those cases ran with
    /// ([`strata_core::inputs::test_key`]); a reuse skips its tests only
    /// when its own key is the same. `None` in records of older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_key: Option<String>,
    /// Its manifest files (`manifests/<ref>.json` and `.md`), by the
    /// reference they describe (a platform's image has its own).
    #[serde(default)]
    pub manifests: BTreeMap<String, RecordedManifest>,
    /// How long the image took in its run, in seconds (its stages, first
    /// start to last end; for an image of several platforms, all of them):
    /// what `strata report --registry-history` charts. Its size is in its
    /// manifest. `None` in records of older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<f64>,
}

/// An image's manifest as its build wrote it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedManifest {
    /// `manifests/<ref>.json`.
    pub json: String,
    /// `manifests/<ref>.md`.
    pub markdown: String,
}

impl EarlierBuild {
    /// The note's `artifactType` in the registry.
    pub const ARTIFACT_TYPE: &str = "application/vnd.strata.build-record.v1+json";
    /// The annotation holding the record, as JSON.
    pub const ANNOTATION: &str = "io.strata.build-record";
}

impl Target {
    /// What each stage runs on: the target itself, or for a build of
    /// several platforms one target per platform, under its own tag
    /// (`<ref>-linux-arm64`), built on its parent's image of the same
    /// platform when the parent is built in this run.
    pub fn variants(&self) -> Vec<Target> {
        let platforms: Vec<strata_core::platform::Platform> = self
            .build
            .platforms
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        if platforms.is_empty() {
            return vec![self.clone()];
        }
        platforms
            .into_iter()
            .map(|p| {
                let mut t = self.clone();
                let suffix = p.tag_suffix();
                t.build.reference.push_str(&suffix);
                t.build.tag.push_str(&suffix);
                if t.build.base_source == Some(strata_core::plan::BaseSource::ThisRun) {
                    t.build.extend_base(&suffix);
                }
                // The platform's own key and reuse (see `Build::per_platform`).
                let own = t
                    .build
                    .per_platform
                    .get(&p.to_string())
                    .cloned()
                    .unwrap_or_default();
                t.build.inputs = own.inputs;
                t.build.reuse = own.reuse;
                t.build.resumed = own.resumed;
                t.build.input_parts.platform = p.to_string();
                t.platform = Some(p);
                t
            })
            .collect()
    }

    /// The recorded manifest of its previous build on its own platform
    /// (for a target of the engine's platform, the only one recorded, or
    /// the engine's).
    pub fn previous_manifest(&self) -> Option<&strata_report::ManifestData> {
        match &self.platform {
            Some(p) => self.previous_manifests.get(&p.to_string()),
            None if self.previous_manifests.len() == 1 => self.previous_manifests.values().next(),
            None => self
                .previous_manifests
                .get(&strata_core::inputs::host_platform()),
        }
    }

    /// Its stable image's reference and packages on its own platform (a
    /// single image's whatever its platform).
    pub fn stable_packages(&self) -> Option<(&str, &[strata_sbom::Package])> {
        let (reference, by_platform) = self.stable_packages.as_ref()?;
        let packages = match &self.platform {
            Some(p) => by_platform.get(&p.to_string()),
            None => by_platform
                .get("")
                .or_else(|| by_platform.get(&strata_core::inputs::host_platform())),
        }?;
        Some((reference.as_str(), packages.as_slice()))
    }

    /// Reads the key of its basic tests' inputs under `images_dir`.
    pub(crate) fn read_test_key(&mut self, images_dir: &std::path::Path) {
        self.test_key = crate::test_inputs::basic_test_key(images_dir, &self.build.tests.basic);
    }

    /// Whether its basic tests already passed with the inputs they have
    /// now, in the earlier build it reuses (recorded beside it).
    pub fn tests_passed_before(&self) -> bool {
        self.earlier
            .as_ref()
            .and_then(|e| e.test_key.as_ref())
            .is_some_and(|k| self.test_key.as_ref() == Some(k))
    }

    /// What test stage `s` runs (nothing for the other stages).
    pub fn tests(&self, s: Stage) -> &StageTests {
        static NONE: StageTests = StageTests {
            pytest: Vec::new(),
            structure: Vec::new(),
        };
        match s {
            Stage::BasicTests => &self.basic_tests,
            Stage::IntegrationTests => &self.integration_tests,
            _ => &NONE,
        }
    }
}

/// The tests of one test stage of one image.
#[derive(Debug, Clone, Default)]
pub struct StageTests {
    /// The folders pytest runs (relative to the images folder), in order.
    pub pytest: Vec<String>,
    /// The structure-test files, read.
    pub structure: Vec<StructureFile>,
}

impl StageTests {
    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.pytest.is_empty() && self.structure.is_empty()
    }
}

/// What a test folder holds, as the CLI found it.
#[derive(Debug, Clone, Default)]
pub struct FolderTests {
    /// Python test files: pytest runs the folder.
    pub python: bool,
    /// Its structure-test files, read.
    pub structure: Vec<StructureFile>,
}

fn stage_tests(folders: &[String], found: &BTreeMap<String, FolderTests>) -> StageTests {
    let mut tests = StageTests::default();
    for f in folders {
        if let Some(t) = found.get(f) {
            if t.python {
                tests.pytest.push(f.clone());
            }
            tests.structure.extend(t.structure.iter().cloned());
        }
    }
    tests
}

/// The builds a run executes: the plan's rebuilt ones (of `only`, when
/// given), parents first, with what each test stage runs of the test
/// folders `found`.
pub fn targets(
    plan: &Plan,
    spec: &Spec,
    only: Option<&str>,
    found: &BTreeMap<String, FolderTests>,
) -> Vec<Target> {
    plan.rebuilds()
        .filter(|b| only.is_none_or(|o| o == b.image))
        .filter_map(|b| {
            let image = spec.image(&b.image)?.clone();
            let info_cmds = image
                .info_cmds
                .iter()
                .filter_map(|k| {
                    spec.info_cmds
                        .get(&k.value)
                        .map(|c| (k.value.clone(), c.clone()))
                })
                .collect();
            let gates = strata_core::gates::of_image(spec, &image);
            Some(Target {
                build: b.clone(),
                gates,
                image,
                info_cmds,
                cache_from: None,
                previous: None,
                previous_manifests: BTreeMap::new(),
                stable_packages: None,
                basic_tests: stage_tests(&b.tests.basic, found),
                integration_tests: stage_tests(&b.tests.integration, found),
                platform: None,
                earlier: None,
                test_key: None,
            })
        })
        .collect()
}

/// Gives the engine the credentials of a registry host, if any.
pub type AuthFor = Arc<dyn Fn(&str) -> Option<RegistryAuth> + Send + Sync>;

/// How a run executes.
#[derive(Clone)]
pub struct RunOptions {
    /// The images folder (each image's build context is its folder).
    pub images_dir: PathBuf,
    /// Where `artifacts/`, `logs/` and `manifests/` are written.
    pub out_dir: PathBuf,
    /// Images run at once.
    pub jobs: usize,
    /// pytest runs at once (the image tests teams write start containers
    /// that may publish fixed host ports, so by default one at a time);
    /// builds, structure tests, pushes and manifests stay parallel.
    pub test_jobs: usize,
    /// Push images after their basic tests.
    pub push: bool,
    /// The head commit, for the images' revision label.
    pub revision: String,
    /// The Python that runs pytest.
    pub python: String,
    /// Credentials for pushes, by registry host.
    pub auth: AuthFor,
    /// The stages to run; the others are skipped (`strata test` runs the
    /// tests of images already built, `strata manifest` their manifests).
    pub stages: Vec<Stage>,
    /// Which builder builds (`--builder`).
    pub builder: BuilderChoice,
    /// The repository's public URL, for `org.opencontainers.image.source`.
    pub source: Option<String>,
    /// Build secrets (`--secret`), offered to every build.
    pub secrets: Vec<strata_engine::BuildSecret>,
    /// Time limits by stage key (`--timeout`), over the images' own.
    pub timeouts: BTreeMap<String, std::time::Duration>,
    /// Run the basic tests of reused images too (`--retest`).
    pub retest: bool,
    /// The engine's platform (`linux/amd64`): tests of an image built for
    /// no declared platform see it as `TEST_PLATFORM`.
    pub platform: String,
    /// The format of the SBOM written (and pushed) for each image and
    /// platform (`--sbom-format`).
    pub sbom_format: strata_sbom::Format,
    /// Signs each image pushed, by digest (`--sign-key`); `None` signs
    /// nothing.
    pub signer: Option<Arc<dyn crate::sign::Signer>>,
}

/// The builder a run asks for (`--builder`, `STRATA_BUILDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuilderChoice {
    /// BuildKit where the engine offers it, else the classic builder.
    #[default]
    Auto,
    /// BuildKit; a run fails at once if the engine does not offer it.
    BuildKit,
    /// The classic builder.
    Classic,
}

impl BuilderChoice {
    /// The builder a run on `engine` uses, or why it cannot run.
    pub fn resolve(self, engine: &impl Backend) -> Result<strata_engine::Builder, ExecError> {
        match self {
            BuilderChoice::Classic => Ok(strata_engine::Builder::Classic),
            BuilderChoice::Auto if engine.offers_buildkit() => Ok(strata_engine::Builder::BuildKit),
            BuilderChoice::Auto => Ok(strata_engine::Builder::Classic),
            BuilderChoice::BuildKit if engine.offers_buildkit() => {
                Ok(strata_engine::Builder::BuildKit)
            }
            BuilderChoice::BuildKit => Err(ExecError::NoBuildKit {
                api_version: engine.api_version().to_string(),
            }),
        }
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("images_dir", &self.images_dir)
            .field("out_dir", &self.out_dir)
            .field("jobs", &self.jobs)
            .field("push", &self.push)
            .field("signs", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `--builder buildkit` on an engine without BuildKit's API.
    #[error(
        "--builder buildkit: the engine speaks API {api_version}, and BuildKit needs 1.39 or newer (Docker 18.09); use --builder classic or upgrade the engine"
    )]
    NoBuildKit {
        /// The engine's API version.
        api_version: String,
    },
    /// The output folders could not be made.
    #[error("cannot write the run's output under {dir}: {source}")]
    Output {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Seconds since `start`, rounded to milliseconds.
pub(crate) fn secs_since(start: Instant) -> f64 {
    secs_between(start, Instant::now())
}

/// Seconds from `start` to `end` (0 if `end` is earlier), rounded to
/// milliseconds.
pub(crate) fn secs_between(start: Instant, end: Instant) -> f64 {
    (end.saturating_duration_since(start).as_secs_f64() * 1000.0).round() / 1000.0
}
