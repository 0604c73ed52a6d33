//! What the executor asks of an engine, as an interface: the real Docker
//! engine ([`strata_engine::Engine`]) implements it by delegation, and the
//! scheduler's unit tests drive it with an in-memory fake.

use std::future::Future;
use strata_engine::{
    BuildRequest, BuiltImage, CommandOutput, Engine, EngineError, HistoryEntry, ImageInfo,
    RegistryAuth,
};
use strata_sbom::{ImageInventory, SbomError};
use strata_structure::{CaseResult, HostEnv, StructureFile};

/// The variables of a structure-test file's `envFile`, read as CST reads it
/// (a dotenv file, relative to the folder the tool runs in), in file order.
fn read_env_file(path: &str) -> Result<Vec<(String, String)>, String> {
    dotenvy::from_path_iter(path)
        .and_then(|vars| vars.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())
}

/// The engine operations a run uses. Futures are `Send`: images run on
/// tasks of a multi-threaded runtime.
pub trait Backend: Clone + Send + Sync + 'static {
    /// The id labelling the containers this run creates.
    fn run_id(&self) -> &str;
    /// The engine's API version.
    fn api_version(&self) -> &str;
    /// Whether the engine offers BuildKit.
    fn offers_buildkit(&self) -> bool;
    /// Builds an image, passing each log line to `log`.
    fn build<F>(
        &self,
        request: &BuildRequest,
        log: F,
    ) -> impl Future<Output = Result<BuiltImage, EngineError>> + Send
    where
        F: FnMut(&str) + Send;
    /// A local image, or `None`.
    fn inspect_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send;
    /// An image's history, newest first.
    fn history(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, EngineError>> + Send;
    /// Runs commands in one throw-away container of `image`.
    fn run_commands(
        &self,
        image: &str,
        commands: &[String],
    ) -> impl Future<Output = Result<Vec<CommandOutput>, EngineError>> + Send;
    /// What is inside local image `reference`: its packages, read from the
    /// engine's export of it (the outer error is the engine's, the inner
    /// one what the export held).
    fn inventory(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Result<ImageInventory, SbomError>, EngineError>> + Send;
    /// Runs structure-test files against `image` as container-structure-test
    /// runs them (containers of their own per test, removed afterwards):
    /// each file's cases, in order.
    fn run_structure_tests(
        &self,
        image: &str,
        files: &[StructureFile],
    ) -> impl Future<Output = Result<Vec<Vec<CaseResult>>, EngineError>> + Send;
    /// Pushes an image; returns the pushed digest.
    fn push<F>(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        log: F,
    ) -> impl Future<Output = Result<String, EngineError>> + Send
    where
        F: FnMut(&str) + Send;
    /// Pulls an image.
    fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Tags local image `source` as `repo:tag`.
    fn tag(
        &self,
        source: &str,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Removes an image that nothing else uses.
    fn remove_image(&self, reference: &str)
    -> impl Future<Output = Result<(), EngineError>> + Send;
    /// Where the engine keeps its data and the room left there.
    fn disk_space(
        &self,
    ) -> impl Future<Output = Result<strata_engine::DiskSpace, EngineError>> + Send;
    /// Removes the containers labelled with `run_id`.
    fn remove_containers(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<usize, EngineError>> + Send;
    /// Removes the containers started from `reference`.
    fn remove_containers_of_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<usize, EngineError>> + Send;
}

impl Backend for Engine {
    fn run_id(&self) -> &str {
        Engine::run_id(self)
    }
    fn api_version(&self) -> &str {
        Engine::api_version(self)
    }
    fn offers_buildkit(&self) -> bool {
        Engine::offers_buildkit(self)
    }
    fn build<F>(
        &self,
        request: &BuildRequest,
        log: F,
    ) -> impl Future<Output = Result<BuiltImage, EngineError>> + Send
    where
        F: FnMut(&str) + Send,
    {
        Engine::build(self, request, log)
    }
    fn inspect_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>, EngineError>> + Send {
        Engine::inspect_image(self, reference)
    }
    fn history(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Vec<HistoryEntry>, EngineError>> + Send {
        Engine::history(self, reference)
    }
    fn run_commands(
        &self,
        image: &str,
        commands: &[String],
    ) -> impl Future<Output = Result<Vec<CommandOutput>, EngineError>> + Send {
        Engine::run_commands(self, image, commands)
    }
    fn inventory(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Result<ImageInventory, SbomError>, EngineError>> + Send {
        self.read_export(reference, |export| strata_sbom::inventory(export))
    }
    async fn run_structure_tests(
        &self,
        image: &str,
        files: &[StructureFile],
    ) -> Result<Vec<Vec<CaseResult>>, EngineError> {
        // A missing image is the environment's fault, not a test's.
        self.image_config(image).await?;
        let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
        let mut results = Vec::with_capacity(files.len());
        for file in files {
            let host_env = HostEnv {
                vars: vars.clone(),
                env_file: file.run_options.env_file.as_deref().map(read_env_file),
            };
            results.push(strata_structure::run(file, self, image, &host_env).await);
        }
        Ok(results)
    }
    fn push<F>(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        log: F,
    ) -> impl Future<Output = Result<String, EngineError>> + Send
    where
        F: FnMut(&str) + Send,
    {
        Engine::push(self, reference, auth, log)
    }
    fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> impl Future<Output = Result<(), EngineError>> + Send {
        Engine::pull(self, reference, auth)
    }
    fn tag(
        &self,
        source: &str,
        repo: &str,
        tag: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send {
        Engine::tag(self, source, repo, tag)
    }
    fn remove_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<(), EngineError>> + Send {
        Engine::remove_image(self, reference)
    }
    fn disk_space(
        &self,
    ) -> impl Future<Output = Result<strata_engine::DiskSpace, EngineError>> + Send {
        Engine::disk_space(self)
    }
    fn remove_containers(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<usize, EngineError>> + Send {
        Engine::remove_containers(self, run_id)
    }
    fn remove_containers_of_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<usize, EngineError>> + Send {
        Engine::remove_containers_of_image(self, reference)
    }
}
