//! An in-memory engine for the executor's tests (feature `testing`): its
//! builds take a set time on tokio's clock and it can fail a build, a test
//! or a push, panic, move a tag to other content after a build (as another
//! process retagging on the engine would), or go away after a number of
//! calls, so the scheduler's and the stages' rules are tested without
//! Docker. The real engine is tested end to end in strata-cli's tests.

use crate::Backend;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_engine::{
    BuildRequest, BuiltImage, CommandOutput, EngineError, HistoryEntry, ImageInfo, RegistryAuth,
};
use strata_structure::{CaseResult, Kind, StructureFile};

#[derive(Default)]
struct State {
    /// `start <image>` / `end <image>`, in order.
    events: Vec<String>,
    running: usize,
    most_running: usize,
    /// The references pushed, which the engine then knows the digest of.
    pushed: BTreeSet<String>,
    /// The images pulled, which the engine then holds.
    pulled: BTreeSet<String>,
    /// How many builds ended.
    built: usize,
}

/// The first layer of every image the fake builds.
pub const BASE_LAYER: &str = "sha256:layer-base";

/// An engine whose builds take `build_time` of tokio's clock and fail or
/// panic for the images named.
#[derive(Clone, Default)]
pub struct Fake {
    state: Arc<Mutex<State>>,
    pub build_time: Duration,
    pub failing: BTreeSet<String>,
    pub panicking: BTreeSet<String>,
    /// How long each image's structure tests take.
    pub test_time: BTreeMap<String, Duration>,
    /// Whether inspecting an image finds it (tagged with the reference
    /// asked for) although it was not built: an image built is always
    /// found, as in an engine.
    pub stores_images: bool,
    /// Images whose structure tests fail.
    pub failing_tests: BTreeSet<String>,
    /// Images whose push the registry refuses.
    pub failing_pushes: BTreeSet<String>,
    /// How long each push takes; `push <image>` is recorded at its end.
    pub push_time: Duration,
    /// Images whose reference names another image once built: another
    /// process tagged something else with it.
    pub retagged: BTreeSet<String>,
    /// The engine goes away once this many builds ended: every request
    /// after that finds it unreachable.
    pub gone_after: Option<usize>,
    /// Images whose `inputs-<hex>` tag the engine cannot put (and so never
    /// finds under it).
    pub untaggable: BTreeSet<String>,
}

impl Fake {
    /// An engine whose builds take `build_time`.
    pub fn new(build_time: Duration) -> Fake {
        Fake {
            build_time,
            ..Fake::default()
        }
    }

    /// What happened, in order: `start <image>`, `end <image>`, `test <image>`,
    /// `push <image>`, `pull <image>`, `remove <image>`.
    pub fn events(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.events.clone())
            .unwrap_or_default()
    }

    /// The references pushed, sorted.
    pub fn pushed(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.pushed.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The most builds that ran at once.
    pub fn most_running(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.most_running)
            .unwrap_or_default()
    }

    /// The error of every request once the engine went away.
    fn gone(&self) -> Result<(), EngineError> {
        let built = self.state.lock().map_or(0, |s| s.built);
        match self.gone_after {
            Some(after) if built >= after => Err(EngineError::Unreachable {
                host: "unix:///fake.sock".into(),
                reason: "connection refused".into(),
            }),
            _ => Ok(()),
        }
    }

    fn record(&self, event: String, delta: isize) {
        if let Ok(mut s) = self.state.lock() {
            s.events.push(event);
            s.running = s.running.saturating_add_signed(delta);
            s.most_running = s.most_running.max(s.running);
        }
    }
}

/// The digest the fake registry gives `reference`'s image: its image's
/// name in hex, padded to a digest's length.
pub fn pushed_digest(reference: &str) -> String {
    let hex: String = image_of(reference)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex:0<64.64}")
}

/// `t/a:1-0123456` → `a`.
fn image_of(reference: &str) -> String {
    reference
        .trim_start_matches("docker.io/")
        .trim_start_matches("t/")
        .split([':', '@'])
        .next()
        .unwrap_or_default()
        .to_string()
}

impl Backend for Fake {
    fn run_id(&self) -> &str {
        "fake-run"
    }
    fn api_version(&self) -> &str {
        "1.41"
    }
    fn offers_buildkit(&self) -> bool {
        true
    }
    fn build<F>(
        &self,
        request: &BuildRequest,
        mut log: F,
    ) -> impl Future<Output = Result<BuiltImage, EngineError>> + Send
    where
        F: FnMut(&str) + Send,
    {
        let image = image_of(request.tags.first().map_or("", String::as_str));
        let tags = request.tags.clone();
        let fake = self.clone();
        async move {
            fake.gone()?;
            fake.record(format!("start {image}"), 1);
            log(&format!("building {image}"));
            tokio::time::sleep(fake.build_time).await;
            fake.record(format!("end {image}"), -1);
            if let Ok(mut s) = fake.state.lock() {
                s.built += 1;
            }
            if fake.panicking.contains(&image) {
                panic!("the fake engine broke on {image}");
            }
            if fake.failing.contains(&image) {
                return Err(EngineError::BuildFailed {
                    message: format!("{image} does not build"),
                });
            }
            Ok(BuiltImage {
                id: format!("sha256:{image}"),
                tags,
            })
        }
    }
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        self.gone()?;
        let (pushed, built) = self.state.lock().map_or((false, false), |s| {
            // Any tag of the image pushed gives the registry its digest.
            let image = image_of(reference);
            let started = format!("end {image}");
            let pushed = s.pushed.iter().any(|p| image_of(p) == image);
            (pushed, s.events.contains(&started))
        });
        let name = reference
            .parse::<strata_core::reference::ImageRef>()
            .map_or_else(|_| reference.to_string(), |r| r.name().to_string());
        let image = image_of(reference);
        if self.untaggable.contains(&image) && reference.contains(":inputs-") {
            return Ok(None);
        }
        Ok((self.stores_images || built).then(|| ImageInfo {
            id: if built && self.retagged.contains(&image) {
                format!("sha256:other-{image}")
            } else {
                format!("sha256:{image}")
            },
            repo_tags: vec![reference.to_string()],
            repo_digests: if pushed {
                vec![format!("{name}@{}", pushed_digest(reference))]
            } else {
                Vec::new()
            },
            size: 1,
            labels: BTreeMap::new(),
            created: String::new(),
            architecture: "amd64".into(),
            os: "linux".into(),
            // Every image is built on the same base layer.
            layers: vec![BASE_LAYER.to_string(), format!("sha256:layer-{image}")],
        }))
    }
    async fn history(&self, _: &str) -> Result<Vec<HistoryEntry>, EngineError> {
        Ok(Vec::new())
    }
    async fn run_commands(&self, _: &str, _: &[String]) -> Result<Vec<CommandOutput>, EngineError> {
        Ok(Vec::new())
    }
    async fn inventory(
        &self,
        reference: &str,
    ) -> Result<Result<strata_sbom::ImageInventory, strata_sbom::SbomError>, EngineError> {
        self.gone()?;
        let image = image_of(reference);
        let held = self
            .state
            .lock()
            .is_ok_and(|s| s.events.contains(&format!("end {image}")) || s.pulled.contains(&image));
        if !(self.stores_images || held) {
            return Err(EngineError::NotFound {
                what: format!("no such image: {reference}"),
            });
        }
        Ok(Ok(strata_sbom::ImageInventory {
            packages: Vec::new(),
            layers: Vec::new(),
            distribution: None,
        }))
    }
    async fn run_structure_tests(
        &self,
        image: &str,
        files: &[StructureFile],
    ) -> Result<Vec<Vec<CaseResult>>, EngineError> {
        self.gone()?;
        let image = image_of(image);
        self.record(format!("test {image}"), 0);
        tokio::time::sleep(self.test_time.get(&image).copied().unwrap_or_default()).await;
        let passed = !self.failing_tests.contains(&image);
        Ok(files
            .iter()
            .map(|f| {
                f.command_tests
                    .iter()
                    .map(|t| CaseResult {
                        name: t.name.clone(),
                        kind: Kind::Command,
                        passed,
                        failures: Vec::new(),
                        output: String::new(),
                        duration_secs: 0.0,
                    })
                    .collect()
            })
            .collect())
    }
    async fn push<F>(
        &self,
        reference: &str,
        _: Option<&RegistryAuth>,
        _: F,
    ) -> Result<String, EngineError>
    where
        F: FnMut(&str) + Send,
    {
        self.gone()?;
        let image = image_of(reference);
        if self.failing_pushes.contains(&image) {
            return Err(EngineError::PushFailed {
                reference: reference.to_string(),
                message: "denied: requested access to the resource is denied".into(),
                cause: strata_engine::PushCause::Denied,
            });
        }
        tokio::time::sleep(self.push_time).await;
        self.record(format!("push {image}"), 0);
        if let Ok(mut s) = self.state.lock() {
            s.pushed.insert(reference.to_string());
        }
        Ok(pushed_digest(reference))
    }
    async fn pull(&self, reference: &str, _: Option<&RegistryAuth>) -> Result<(), EngineError> {
        let image = image_of(reference);
        self.record(format!("pull {image}"), 0);
        if let Ok(mut s) = self.state.lock() {
            s.pulled.insert(image);
        }
        Ok(())
    }
    async fn tag(&self, source: &str, _: &str, tag: &str) -> Result<(), EngineError> {
        if self.untaggable.contains(&image_of(source)) && tag.starts_with("inputs-") {
            return Err(EngineError::Unreachable {
                host: "unix:///fake.sock".into(),
                reason: format!("cannot tag {tag}"),
            });
        }
        Ok(())
    }
    async fn remove_image(&self, reference: &str) -> Result<(), EngineError> {
        self.record(format!("remove {}", image_of(reference)), 0);
        Ok(())
    }
    async fn disk_space(&self) -> Result<strata_engine::DiskSpace, EngineError> {
        Ok(strata_engine::DiskSpace {
            data_root: "/fake".into(),
            free_bytes: None,
            total_bytes: None,
        })
    }
    async fn remove_containers(&self, _: &str) -> Result<usize, EngineError> {
        Ok(0)
    }
    async fn remove_containers_of_image(&self, _: &str) -> Result<usize, EngineError> {
        Ok(0)
    }
}
