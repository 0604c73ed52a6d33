//! The connection to the engine, builds, images, push and pull.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{BuildInfoAux, ImageId};
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, CreateImageOptions, ListImagesOptions, PushImageOptions,
    RemoveImageOptions, TagImageOptions,
};
use futures_util::StreamExt;

use crate::auth::{RegistryAuth, scrub};
use crate::context;
use crate::error::{EngineError, Result, is_connection_error, one_line, root_cause, server_error};

/// The engine address used when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long [`Engine::connect`] waits for the engine to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long any request may wait for the engine's response headers. Long,
/// because the engine answers a build only after it has received the whole
/// context, and a push or pull only once it has started.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// A connection to a Docker engine.
///
/// Cheap to clone (clones share the connection pool). Every container it
/// creates carries the label [`crate::RUN_LABEL`]`=<run id>`, so that
/// [`Engine::remove_containers`] can clean up after an interrupted run.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    host: String,
    api_version: String,
    pub(crate) run_id: String,
    /// Its data root, asked once: [`Engine::disk_space`] is then one
    /// `statvfs`, cheap enough to sample during a build.
    data_root: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("host", &self.host)
            .field("api_version", &self.api_version)
            .field("run_id", &self.run_id)
            .finish()
    }
}

/// Where an engine keeps its data, and the room it has: see
/// [`Engine::disk_space`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    /// The engine's data root (`docker info`'s `DockerRootDir`).
    pub data_root: String,
    /// Bytes free for the engine on its filesystem, when measured here.
    pub free_bytes: Option<u64>,
    /// The filesystem's size, when measured here.
    pub total_bytes: Option<u64>,
}

impl DiskSpace {
    /// Whether its filesystem is nearly full (under 5% or 64 MiB free),
    /// as a build that fills it leaves it: then whatever a failed step
    /// says, the likely cause is the lack of space. Unmeasured: no.
    pub fn is_nearly_full(&self) -> bool {
        const FLOOR: u64 = 64 * 1024 * 1024;
        match (self.free_bytes, self.total_bytes) {
            (Some(free), Some(total)) => free < FLOOR || free.saturating_mul(20) < total,
            _ => false,
        }
    }
}

impl std::fmt::Display for DiskSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = strata_core::limits::format_size;
        match (self.free_bytes, self.total_bytes) {
            (Some(free), Some(total)) => write!(
                f,
                "the engine's data root {} has {} free of {}",
                self.data_root,
                size(free),
                size(total)
            ),
            _ => write!(
                f,
                "the engine's data root is {} (its free space cannot be read from this machine)",
                self.data_root
            ),
        }
    }
}

/// What to build. The context folder is streamed to the engine as a tar,
/// honouring its `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRequest {
    /// The build context folder.
    pub context_dir: PathBuf,
    /// The Dockerfile, relative to `context_dir` (and inside it).
    pub dockerfile: String,
    /// Full references to tag the result with, e.g. `ghcr.io/org/img:2023.2-abc1234`.
    pub tags: Vec<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Labels added to the image.
    pub labels: BTreeMap<String, String>,
    /// Images whose layers may be used as cache (they must be present locally;
    /// see [`Engine::pull`]).
    pub cache_from: Vec<String>,
    /// The builder that builds it.
    pub builder: Builder,
    /// Build secrets, for `RUN --mount=type=secret` (BuildKit only).
    pub secrets: Vec<BuildSecret>,
    /// Credentials for the registries the build pulls from (its base's):
    /// served by BuildKit's session, or sent as the classic builder's
    /// registry config. Never logged.
    pub registry_auth: Vec<RegistryAuth>,
    /// The platform to build for (`linux/arm64`); `None`: the engine's own.
    /// Another platform's `RUN` steps run under the engine host's
    /// emulation (QEMU registered with binfmt_misc).
    pub platform: Option<String>,
}

/// A build secret: what `RUN --mount=type=secret,id=ID` reads. Only where
/// it is read from is held here; the value is read by the build session
/// when BuildKit asks for it, and never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSecret {
    /// The id the Dockerfile names.
    pub id: String,
    /// Where its value comes from.
    pub source: SecretSource,
}

/// Why a `--secret` flag cannot be used. The messages name the flag's id,
/// file or variable, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFlagError {
    /// The flag is not `id=ID,src=FILE` or `id=ID,env=VAR`.
    #[error("--secret '{0}': write id=ID,src=FILE or id=ID,env=VAR")]
    Syntax(String),
    /// The file cannot be read.
    #[error("--secret id={id}: cannot read {}: {reason}", path.display())]
    File {
        /// The secret's id.
        id: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The variable is not set.
    #[error("--secret id={id}: the environment variable {var} is not set")]
    Env {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
    },
}

impl BuildSecret {
    /// Reads a `--secret` flag as `docker build` writes it:
    /// `id=ID,src=FILE` (or `source=`), `id=ID,env=VAR`, with an optional
    /// `type=file|env`. Checks that the file is readable or the variable
    /// set, without reading the value.
    pub fn from_flag(flag: &str) -> Result<BuildSecret, SecretFlagError> {
        let syntax = || SecretFlagError::Syntax(flag.to_string());
        let (mut id, mut file, mut env, mut kind) = (None, None, None, None);
        for part in flag.split(',') {
            let (key, value) = part.split_once('=').ok_or_else(syntax)?;
            let slot = match key.trim() {
                "id" => &mut id,
                "src" | "source" => &mut file,
                "env" => &mut env,
                "type" => &mut kind,
                _ => return Err(syntax()),
            };
            if slot.replace(value.to_string()).is_some() || value.is_empty() {
                return Err(syntax());
            }
        }
        let id = id.ok_or_else(syntax)?;
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(syntax());
        }
        let source = match (kind.as_deref(), file, env) {
            (None | Some("file"), Some(path), None) => {
                let path = PathBuf::from(path);
                std::fs::File::open(&path).map_err(|e| SecretFlagError::File {
                    id: id.clone(),
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?;
                SecretSource::File(path)
            }
            (None | Some("env"), None, Some(var)) => {
                if std::env::var_os(&var).is_none() {
                    return Err(SecretFlagError::Env { id, var });
                }
                SecretSource::Env(var)
            }
            _ => return Err(syntax()),
        };
        Ok(BuildSecret { id, source })
    }
}

/// Where a build secret's value is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file's content.
    File(PathBuf),
    /// An environment variable of strata's process.
    Env(String),
}

/// The largest build context sent with secrets: that path holds the
/// context in memory (bollard's session upload), so it is bounded.
pub const MAX_SECRET_CONTEXT: u64 = 512 * 1024 * 1024;

/// The engine's builder that runs a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Builder {
    /// BuildKit, over the engine's session endpoint: `RUN --mount`, other
    /// platforms, labels as image metadata rather than history steps.
    #[default]
    BuildKit,
    /// The classic (legacy) builder.
    Classic,
}

impl Builder {
    /// Its name, as the run log says it.
    pub fn name(self) -> &'static str {
        match self {
            Builder::BuildKit => "BuildKit",
            Builder::Classic => "the classic builder",
        }
    }
}

impl BuildRequest {
    /// The build args sent: the request's, plus, with BuildKit, inline cache
    /// metadata (`BUILDKIT_INLINE_CACHE=1`) unless the request sets it, so
    /// the image can serve as a later build's `cache_from`.
    fn effective_build_args(&self) -> BTreeMap<String, String> {
        let mut args = self.build_args.clone();
        if self.builder == Builder::BuildKit {
            args.entry("BUILDKIT_INLINE_CACHE".to_string())
                .or_insert_with(|| "1".to_string());
        }
        args
    }

    /// The registry credentials in bollard's form, by server address.
    fn credentials(&self) -> Vec<(String, bollard::auth::DockerCredentials)> {
        self.registry_auth
            .iter()
            .map(|a| (a.server_address().to_string(), a.to_bollard()))
            .collect()
    }

    /// A request for `context_dir` with its `Dockerfile` and nothing else set.
    pub fn new(context_dir: impl Into<PathBuf>) -> BuildRequest {
        BuildRequest {
            context_dir: context_dir.into(),
            dockerfile: "Dockerfile".to_string(),
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            cache_from: Vec::new(),
            builder: Builder::default(),
            secrets: Vec::new(),
            registry_auth: Vec::new(),
            platform: None,
        }
    }
}

/// The result of a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The image id, `sha256:...`.
    pub id: String,
    /// The tags it was given (those of the request).
    pub tags: Vec<String>,
}

/// What the engine knows about a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id, `sha256:...`.
    pub id: String,
    /// Its tags, e.g. `org/img:tag`.
    pub repo_tags: Vec<String>,
    /// Its registry digests, e.g. `org/img@sha256:...` (empty until pushed or pulled).
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Labels from the image config.
    pub labels: BTreeMap<String, String>,
    /// Creation time as the engine reports it (RFC 3339).
    pub created: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
}

/// A local image found by [`Engine::images_by_label`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    /// The label's value.
    pub value: String,
    /// The image ID.
    pub id: String,
    /// Its tags, `name:tag`.
    pub repo_tags: Vec<String>,
}

/// One layer (or metadata step) of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id of this step, or `<missing>` for steps built elsewhere.
    pub id: String,
    /// When the step was created, in seconds since the Unix epoch.
    pub created: i64,
    /// The instruction that created it.
    pub created_by: String,
    /// Bytes the step added.
    pub size: u64,
    /// Tags pointing at this step.
    pub tags: Vec<String>,
    /// The step's comment.
    pub comment: String,
}

/// Runs context work (reading the folder, writing the tar) on a blocking
/// thread, its failure a [`EngineError::Context`].
async fn on_context_thread<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, context::ContextError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Api {
            operation: "build",
            message: format!("context thread failed: {e}"),
        })?
        .map_err(|e| EngineError::Context {
            path: e.path,
            message: e.message,
        })
}

/// `os/arch[/variant]` as BuildKit's solve takes it.
fn build_platform(platform: &str) -> Result<bollard::grpc::build::ImageBuildPlatform> {
    let mut parts = platform.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(os), Some(architecture), variant, None)
            if !os.is_empty() && !architecture.is_empty() =>
        {
            Ok(bollard::grpc::build::ImageBuildPlatform {
                os: os.to_string(),
                architecture: architecture.to_string(),
                variant: variant.map(str::to_string),
            })
        }
        _ => Err(EngineError::InvalidRequest {
            message: format!("platform '{platform}': write os/arch[/variant], e.g. linux/arm64"),
        }),
    }
}

/// Whether a Dockerfile mounts a build secret (`--mount=type=secret`):
/// only such builds go through the secrets session; the others keep the
/// streamed context and step progress.
fn mounts_a_secret(dockerfile: &std::path::Path) -> bool {
    std::fs::read_to_string(dockerfile)
        .map(|text| text.contains("type=secret"))
        .unwrap_or(false)
}

/// A session id unique within the process (with the run id, unique on the
/// engine): BuildKit refuses two builds sharing one.
fn next_session() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Seconds since the epoch of a protobuf timestamp (whose type bollard
/// does not export).
macro_rules! seconds {
    ($t:expr) => {
        $t.as_ref()
            .map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9)
    };
}

/// BuildKit's status message as the progress renderer takes it.
fn progress_update(status: bollard::moby::buildkit::v1::StatusResponse) -> crate::progress::Update {
    crate::progress::Update {
        vertexes: status
            .vertexes
            .into_iter()
            .map(|v| crate::progress::VertexUpdate {
                started: seconds!(v.started),
                completed: seconds!(v.completed),
                digest: v.digest,
                name: v.name,
                cached: v.cached,
                error: v.error,
            })
            .collect(),
        logs: status
            .logs
            .into_iter()
            .map(|l| crate::progress::LogChunk {
                timestamp: seconds!(l.timestamp),
                vertex: l.vertex,
                data: l.msg,
            })
            .collect(),
        warnings: status
            .warnings
            .into_iter()
            .map(|w| (w.vertex, String::from_utf8_lossy(&w.short).into_owned()))
            .collect(),
    }
}

/// A failed BuildKit build's one-line message: the step, its error and the
/// last line of its output.
fn failed_step_message(failed: &crate::progress::FailedStep) -> String {
    let last = failed
        .tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!("; last output: {}", l.trim()))
        .unwrap_or_default();
    one_line(&format!("{}: {}{last}", failed.step, failed.error))
}

/// Splits `name[:tag]` into name (as written) and tag (default `latest`),
/// by strata's one reference grammar (`strata_core::reference`). Digest
/// references are rejected: they cannot be tagged or pushed.
pub fn split_reference(reference: &str) -> Result<(String, String)> {
    use strata_core::reference::{ImageName, ImageRef};
    let invalid = |why: String| EngineError::InvalidRequest {
        message: format!("{reference}: {why}"),
    };
    if reference.parse::<ImageName>().is_ok() {
        return Ok((reference.to_string(), "latest".to_string()));
    }
    let parsed = reference
        .parse::<ImageRef>()
        .map_err(|e| invalid(e.to_string()))?;
    if parsed.digest().is_some() {
        return Err(invalid(
            "a digest reference cannot be tagged or pushed".to_string(),
        ));
    }
    let tag = parsed
        .tag()
        .map(|t| t.as_str().to_string())
        .ok_or_else(|| invalid("no tag".to_string()))?;
    let name = reference
        .strip_suffix(&format!(":{tag}"))
        .ok_or_else(|| invalid("not a valid image reference".to_string()))?;
    Ok((name.to_string(), tag))
}

/// Emits complete lines of a chunked text stream to a sink.
struct LineSplitter {
    pending: String,
}

impl LineSplitter {
    fn new() -> LineSplitter {
        LineSplitter {
            pending: String::new(),
        }
    }

    fn push(&mut self, text: &str, sink: &mut impl FnMut(&str)) {
        self.pending.push_str(text);
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            sink(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn finish(&mut self, sink: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            sink(line.trim_end_matches('\r'));
        }
    }
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST` (`unix://` or `tcp://`;
    /// [`DEFAULT_HOST`] when unset), negotiates the API version (so API 1.41
    /// engines such as Docker 20.10 and current ones both work) and pings it.
    ///
    /// An engine that does not answer is [`EngineError::Unreachable`], whose
    /// message is one line saying what to do. TLS (`DOCKER_TLS_VERIFY`) and
    /// `ssh://` hosts are not supported.
    pub async fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        Engine::connect_to(&host).await
    }

    /// Whether the engine still answers: [`EngineError::Unreachable`] when it
    /// does not within [`CONNECT_TIMEOUT`] (it was stopped or killed).
    pub async fn ping(&self) -> Result<()> {
        let unreachable = |reason: String| EngineError::Unreachable {
            host: self.host.clone(),
            reason: one_line(&reason),
        };
        tokio::time::timeout(CONNECT_TIMEOUT, self.docker.ping())
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(root_cause(&e)))?;
        Ok(())
    }

    /// Like [`Engine::connect`], with an explicit engine address.
    pub async fn connect_to(host: &str) -> Result<Engine> {
        let unreachable = |reason: String| EngineError::Unreachable {
            host: host.to_string(),
            reason: one_line(&reason),
        };
        let docker = Docker::connect_with_host(host)
            .map_err(|e| unreachable(root_cause(&e)))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(root_cause(&e)))?;
        tokio::time::timeout(CONNECT_TIMEOUT, docker.ping())
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| unreachable(root_cause(&e)))?;
        let api_version = docker.client_version().to_string();
        Ok(Engine {
            docker,
            host: host.to_string(),
            api_version,
            run_id: default_run_id(),
            data_root: Default::default(),
        })
    }

    /// Uses `run_id` as the value of [`crate::RUN_LABEL`] on every container
    /// created from now on (by default a per-process id, see [`Engine::run_id`]).
    pub fn with_run_id(mut self, run_id: impl Into<String>) -> Engine {
        self.run_id = run_id.into();
        self
    }

    /// The run id labelling the containers this engine creates.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The engine address, e.g. `unix:///var/run/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated API version, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Maps a bollard error for `operation`: unreachable engine, 404, or other.
    pub(crate) fn map_err(
        &self,
        operation: &'static str,
        what: &str,
        err: BollardError,
    ) -> EngineError {
        if is_connection_error(&err) {
            return EngineError::Unreachable {
                host: self.host.clone(),
                reason: root_cause(&err),
            };
        }
        match server_error(&err) {
            Some((404, message)) => EngineError::NotFound {
                what: format!("{what}: {message}"),
            },
            Some((_, message)) => EngineError::Api { operation, message }.out_of_space_if(false),
            None => EngineError::Api {
                operation,
                message: root_cause(&err),
            },
        }
    }

    /// Where the engine keeps its images and how much room is left there.
    ///
    /// The free space is read with `statvfs` on the data root, so only for
    /// an engine on a local socket whose data root this process sees: a
    /// remote engine's disk is not this machine's to measure.
    pub async fn disk_space(&self) -> Result<DiskSpace> {
        let data_root = self
            .data_root
            .get_or_try_init(|| async {
                let info = tokio::time::timeout(REQUEST_TIMEOUT, self.docker.info())
                    .await
                    .map_err(|_| EngineError::Unreachable {
                        host: self.host.clone(),
                        reason: format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
                    })?
                    .map_err(|e| self.map_err("info", "info", e))?;
                Ok::<_, EngineError>(info.docker_root_dir.unwrap_or_default())
            })
            .await?
            .clone();
        let measured = (self.host.starts_with("unix://") && !data_root.is_empty())
            .then(|| rustix::fs::statvfs(data_root.as_str()).ok())
            .flatten();
        Ok(DiskSpace {
            free_bytes: measured
                .as_ref()
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize)),
            total_bytes: measured
                .as_ref()
                .map(|s| s.f_blocks.saturating_mul(s.f_frsize)),
            data_root,
        })
    }

    /// Whether the engine offers BuildKit through its API: the session
    /// endpoint BuildKit builds need came with API 1.39 (Docker 18.09).
    pub fn offers_buildkit(&self) -> bool {
        let mut parts = self
            .api_version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (1, 39)
    }

    /// Builds an image with the request's builder and tags it with every
    /// tag of the request.
    ///
    /// The context folder is tarred on a blocking thread into a bounded
    /// channel that feeds the request body, so it is never held in memory.
    /// `.dockerignore` is honoured with Docker's rules (see
    /// [`crate::dockerignore`]); the Dockerfile and `.dockerignore` are always
    /// sent; symbolic links are sent as links, never followed.
    ///
    /// Every line of build output is passed to `log`, without its line
    /// ending, as it arrives: the classic builder's `stream` and `status`
    /// messages, or BuildKit's progress rendered as `--progress=plain`
    /// renders it (see [`crate::progress`]).
    ///
    /// A failing step is [`EngineError::BuildFailed`] naming the step and,
    /// with BuildKit, its last lines of output. Dropping the returned future
    /// drops the HTTP request, which makes the engine abort the build.
    ///
    /// With BuildKit the context is still sent as the request body (streamed,
    /// never held in memory); the session bollard opens beside the request
    /// serves registry credentials only. Images are built with inline cache
    /// metadata (`BUILDKIT_INLINE_CACHE=1`) so a later build can use them as
    /// `cache_from`.
    ///
    /// A build that fails for lack of disk space (its message, or the output
    /// of the step that failed, says `no space left on device`) is
    /// [`EngineError::OutOfSpace`].
    pub async fn build<F>(&self, request: &BuildRequest, mut log: F) -> Result<BuiltImage>
    where
        F: FnMut(&str) + Send,
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        let out_of_space = AtomicBool::new(false);
        let built = self
            .build_logged(request, |line: &str| {
                if crate::error::says_out_of_space(line) {
                    out_of_space.store(true, Ordering::Relaxed);
                }
                log(line)
            })
            .await;
        built.map_err(|e| e.out_of_space_if(out_of_space.load(Ordering::Relaxed)))
    }

    async fn build_logged<F>(&self, request: &BuildRequest, mut log: F) -> Result<BuiltImage>
    where
        F: FnMut(&str) + Send,
    {
        let mut extra_tags = Vec::new();
        for (i, tag) in request.tags.iter().enumerate() {
            let parts = split_reference(tag)?;
            if i > 0 {
                extra_tags.push(parts);
            }
        }
        let dockerfile = context::dockerfile_in_context(&request.dockerfile).ok_or_else(|| {
            EngineError::Context {
                path: PathBuf::from(&request.dockerfile),
                message: "the Dockerfile must be a relative path inside the context folder"
                    .to_string(),
            }
        })?;

        let root = request.context_dir.clone();
        let df = dockerfile.clone();
        let plan = on_context_thread(move || context::plan(&root, &df)).await?;

        if !request.secrets.is_empty() {
            if request.builder != Builder::BuildKit {
                return Err(EngineError::BuildFailed {
                    message: "build secrets need BuildKit; use --builder auto or buildkit"
                        .to_string(),
                });
            }
            if mounts_a_secret(&request.context_dir.join(&dockerfile)) {
                return self
                    .build_with_secrets(request, plan, &dockerfile, extra_tags, &mut log)
                    .await;
            }
        }
        let (body, producer) = context::stream(plan);
        let to_map = |m: &BTreeMap<String, String>| -> Option<HashMap<String, String>> {
            (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        };
        let buildkit = request.builder == Builder::BuildKit;
        let options = BuildImageOptions {
            dockerfile,
            t: request.tags.first().cloned(),
            buildargs: to_map(&request.effective_build_args()),
            labels: to_map(&request.labels),
            cachefrom: (!request.cache_from.is_empty()).then(|| request.cache_from.clone()),
            rm: true,
            forcerm: true,
            version: if buildkit {
                BuilderVersion::BuilderBuildKit
            } else {
                BuilderVersion::BuilderV1
            },
            session: buildkit.then(|| format!("strata-{}-{}", self.run_id, next_session())),
            platform: request.platform.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut progress = crate::progress::PlainProgress::default();
        let credentials = (!request.registry_auth.is_empty())
            .then(|| request.credentials().into_iter().collect::<HashMap<_, _>>());

        let mut image_id: Option<String> = None;
        let mut short_id: Option<String> = None;
        let mut lines = LineSplitter::new();
        let outcome: Result<()> = {
            let mut stream =
                self.docker
                    .build_image(options, credentials, Some(bollard::body_try_stream(body)));
            let mut outcome = Ok(());
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(text) = &info.stream {
                            lines.push(text, &mut |l: &str| {
                                if let Some(id) = l.strip_prefix("Successfully built ") {
                                    short_id = Some(id.trim().to_string());
                                }
                                log(l)
                            });
                        }
                        if let Some(status) = &info.status {
                            let line = match &info.id {
                                Some(id) => format!("{id}: {status}"),
                                None => status.clone(),
                            };
                            log(&line);
                        }
                        match info.aux {
                            Some(BuildInfoAux::Default(ImageId { id: Some(id) })) => {
                                image_id = Some(id);
                            }
                            Some(BuildInfoAux::BuildKit(status)) => {
                                progress.update(&progress_update(status), &mut |l: &str| log(l));
                            }
                            _ => {}
                        }
                    }
                    Err(BollardError::DockerStreamError { error }) => {
                        outcome = Err(EngineError::BuildFailed {
                            message: match progress.failed() {
                                Some(failed) => failed_step_message(&failed),
                                None => one_line(&error),
                            },
                        });
                        break;
                    }
                    Err(err) => {
                        outcome = Err(match server_error(&err) {
                            Some((_, message)) => EngineError::BuildFailed { message },
                            None => self.map_err("build", "build", err),
                        });
                        break;
                    }
                }
            }
            outcome
        };
        lines.finish(&mut |l: &str| log(l));
        progress.finish(&mut |l: &str| log(l));
        // The stream (and with it the request body) is dropped: the producer
        // stops at its next write if it has not finished.
        let produced = producer.await.map_err(|e| EngineError::Api {
            operation: "build",
            message: format!("context thread failed: {e}"),
        })?;
        if let Err(e) = produced {
            if e.message.contains("the build request was dropped") && outcome.is_err() {
                outcome?;
            }
            return Err(EngineError::Context {
                path: e.path,
                message: e.message,
            });
        }
        outcome?;

        let id = match (image_id, short_id, request.tags.first()) {
            (Some(id), _, _) => id,
            (None, Some(short), _) => self.image_id(&short).await?,
            (None, None, Some(tag)) => self.image_id(tag).await?,
            (None, None, None) => {
                return Err(EngineError::BuildFailed {
                    message: "the engine reported no image id".to_string(),
                });
            }
        };
        for (repo, tag) in &extra_tags {
            self.tag(&id, repo, tag).await?;
        }
        Ok(BuiltImage {
            id,
            tags: request.tags.clone(),
        })
    }

    /// A BuildKit build whose Dockerfile mounts secrets: through a session
    /// that serves them (bollard's solve over the engine's gRPC endpoint),
    /// with the context uploaded whole, so at most [`MAX_SECRET_CONTEXT`]
    /// bytes of it. That path reports no step progress, which the log says.
    async fn build_with_secrets<F>(
        &self,
        request: &BuildRequest,
        plan: context::ContextPlan,
        dockerfile: &str,
        extra_tags: Vec<(String, String)>,
        log: &mut F,
    ) -> Result<BuiltImage>
    where
        F: FnMut(&str) + Send,
    {
        use bollard::grpc::build::{
            ImageBuildFrontendOptions, ImageBuildLoadInput, SecretSource as Source,
        };
        let Some(name) = request.tags.first() else {
            return Err(EngineError::BuildFailed {
                message: "a build with secrets needs a tag".to_string(),
            });
        };
        let tar =
            on_context_thread(move || context::tar_in_memory(&plan, MAX_SECRET_CONTEXT)).await?;
        let mut options =
            ImageBuildFrontendOptions::builder().dockerfile(std::path::Path::new(dockerfile));
        for (k, v) in &request.effective_build_args() {
            options = options.buildarg(k, v);
        }
        for (k, v) in &request.labels {
            options = options.label(k, v);
        }
        // This path is a solve of its own: the platform and the cache the
        // engine's build endpoint takes as query parameters must be given
        // here too, or the image is built for the engine's platform.
        if let Some(platform) = request.platform.as_deref() {
            options = options.platforms(&build_platform(platform)?);
        }
        for cache in &request.cache_from {
            options = options.cachefrom(&bollard::moby::buildkit::v1::CacheOptionsEntry {
                r#type: "registry".to_string(),
                attrs: HashMap::from([("ref".to_string(), cache.clone())]),
            });
        }
        for secret in &request.secrets {
            let source = match &secret.source {
                SecretSource::File(path) => Source::File(path.clone()),
                SecretSource::Env(var) => Source::Env(var.clone()),
            };
            options = options.set_secret(&secret.id, &source);
        }
        log("#0 BuildKit with a secrets session: step progress is not reported on this path");
        // bollard's solve future is not Send, so it runs on a thread of its
        // own with a single-threaded runtime, the engine connection cloned.
        let docker = self.docker.clone();
        let name_owned = name.clone();
        let options = options.build();
        let registry_auth = request.credentials();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime.block_on(async {
                        let driver = bollard::grpc::driver::moby::Moby::new(&docker);
                        bollard::grpc::driver::Build::docker_build(
                            driver,
                            &name_owned,
                            options,
                            ImageBuildLoadInput::Upload(bytes::Bytes::from(tar)),
                            (!registry_auth.is_empty()).then(|| {
                                registry_auth
                                    .iter()
                                    .map(|(host, c)| (host.as_str(), c.clone()))
                                    .collect()
                            }),
                            None,
                        )
                        .await
                        .map_err(|e| e.to_string())
                    })
                });
            let _ = tx.send(result);
        });
        let solved = rx
            .await
            .unwrap_or_else(|_| Err("the build thread stopped".to_string()));
        solved.map_err(|e| {
            let message = one_line(&e);
            log(&format!("#0 ERROR: {message}"));
            EngineError::BuildFailed { message }
        })?;
        let id = self.image_id(name).await?;
        log(&format!("#0 DONE {id}"));
        for (repo, tag) in &extra_tags {
            self.tag(&id, repo, tag).await?;
        }
        Ok(BuiltImage {
            id,
            tags: request.tags.clone(),
        })
    }

    async fn image_id(&self, reference: &str) -> Result<String> {
        match self.inspect_image(reference).await? {
            Some(info) => Ok(info.id),
            None => Err(EngineError::NotFound {
                what: format!("image {reference}"),
            }),
        }
    }

    /// The local image `reference` (name, name:tag, id or digest reference),
    /// or `None` when the engine has no such image.
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        let raw = match self.docker.inspect_image(reference).await {
            Ok(raw) => raw,
            Err(err) => {
                return match self.map_err("inspect image", reference, err) {
                    EngineError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        let labels = raw
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Some(ImageInfo {
            id: raw.id.unwrap_or_default(),
            repo_tags: raw.repo_tags.unwrap_or_default(),
            repo_digests: raw.repo_digests.unwrap_or_default(),
            size: raw.size.map_or(0, |s| u64::try_from(s).unwrap_or(0)),
            labels,
            created: raw.created.map(|c| c.to_string()).unwrap_or_default(),
            architecture: raw.architecture.unwrap_or_default(),
            os: raw.os.unwrap_or_default(),
        }))
    }

    /// The history of image `reference`, newest step first (the layer table
    /// of a manifest). [`EngineError::NotFound`] when the image is absent.
    pub async fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>> {
        let items = self
            .docker
            .image_history(reference)
            .await
            .map_err(|e| self.map_err("image history", &format!("image {reference}"), e))?;
        Ok(items
            .into_iter()
            .map(|h| HistoryEntry {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                size: u64::try_from(h.size).unwrap_or(0),
                tags: h.tags,
                comment: h.comment,
            })
            .collect())
    }

    /// Tags local image `source` as `repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        self.docker
            .tag_image(
                source,
                Some(TagImageOptions {
                    repo: Some(repo.to_string()),
                    tag: Some(tag.to_string()),
                }),
            )
            .await
            .map_err(|e| self.map_err("tag image", &format!("image {source}"), e))
    }

    /// Removes a tag (or, given an id or its last tag, the image). Not
    /// forced: an image used by a container stays, and the engine's conflict
    /// is returned as an error.
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        self.docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                    platforms: None,
                }),
                None,
            )
            .await
            .map(|_| ())
            .map_err(|e| self.map_err("remove image", &format!("image {reference}"), e))
    }

    /// Every tagged image of the local store: each `name:tag` with the ID
    /// of the image it names (`sha256:...`), in one request however many
    /// there are.
    pub async fn local_tags(&self) -> Result<BTreeMap<String, String>> {
        let images = self
            .docker
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|e| self.map_err("list images", "local images", e))?;
        Ok(images
            .into_iter()
            .flat_map(|image| {
                let id = image.id;
                image
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .map(move |t| (t, id.clone()))
            })
            .collect())
    }

    /// The local images carrying label `label`, newest first: each with the
    /// label's value, its ID and its tags, in one request.
    pub async fn images_by_label(&self, label: &str) -> Result<Vec<LabelledImage>> {
        let filters =
            std::collections::HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let mut images = self
            .docker
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.map_err("list images", "local images", e))?;
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(images
            .into_iter()
            .filter_map(|i| {
                Some(LabelledImage {
                    value: i.labels.get(label)?.clone(),
                    id: i.id,
                    repo_tags: i.repo_tags,
                })
            })
            .collect())
    }

    /// Pushes `reference` (`name:tag`; `latest` when no tag) and returns the
    /// pushed manifest digest (`sha256:...`).
    ///
    /// Progress lines go to `log` (per-layer byte counts are left out).
    /// Errors in the engine's stream are [`EngineError::PushFailed`]; a
    /// missing local image is [`EngineError::NotFound`].
    ///
    /// The digest is the engine's `<tag>: digest: sha256:... size: N` line
    /// (the same value as the stream's `aux.Digest`, which bollard's model
    /// does not expose), falling back to the image's `RepoDigests`.
    pub async fn push<F>(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        mut log: F,
    ) -> Result<String>
    where
        F: FnMut(&str) + Send,
    {
        let (repo, tag) = split_reference(reference)?;
        let failed_with = |status: Option<u16>, message: String| {
            let message = scrub(one_line(&message), auth);
            // API 1.41 engines report a missing local image inside the
            // stream (HTTP 200), newer ones as a 404.
            if message.contains("does not exist locally") {
                EngineError::NotFound {
                    what: format!("image {reference}: {message}"),
                }
            } else {
                EngineError::PushFailed {
                    reference: reference.to_string(),
                    cause: crate::error::PushCause::classify(status, &message),
                    message,
                }
            }
        };
        let failed = |message: String| failed_with(None, message);
        let mut digest: Option<String> = None;
        {
            let mut stream = self.docker.push_image(
                &repo,
                Some(PushImageOptions {
                    tag: Some(tag.clone()),
                    platform: None,
                }),
                auth.map(RegistryAuth::to_bollard),
            );
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                            return Err(failed(detail));
                        }
                        let Some(status) = info.status else { continue };
                        if let Some(d) = parse_digest_line(&status) {
                            digest = Some(d);
                        }
                        let is_progress = info
                            .progress_detail
                            .is_some_and(|p| p.current.is_some() || p.total.is_some());
                        if !is_progress {
                            log(&scrub(status, auth));
                        }
                    }
                    Err(BollardError::DockerStreamError { error }) => return Err(failed(error)),
                    Err(err) => {
                        return Err(self.stream_error(
                            "push",
                            reference,
                            err,
                            |status, message| match status {
                                Some(404) => EngineError::NotFound {
                                    what: format!("image {reference}: {}", scrub(message, auth)),
                                },
                                _ => failed_with(status, message),
                            },
                        ));
                    }
                }
            }
        }
        if let Some(d) = digest {
            return Ok(d);
        }
        let info = self.inspect_image(reference).await?;
        let prefix = format!("{repo}@");
        info.and_then(|i| {
            i.repo_digests
                .iter()
                .find_map(|d| d.strip_prefix(&prefix).map(str::to_string))
        })
        .ok_or_else(|| failed("the engine reported no digest".to_string()))
    }

    /// Pulls `reference` (`name:tag`, `name@sha256:...`; `latest` when no
    /// tag), e.g. to use a previous build as cache. An image the registry
    /// does not have is [`EngineError::NotFound`]; other failures are
    /// [`EngineError::PullFailed`].
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<()> {
        let (from_image, tag) = match reference.split_once('@') {
            Some((name, digest)) => (name.to_string(), digest.to_string()),
            None => split_reference(reference)?,
        };
        let failed = |message: String| {
            let message = scrub(one_line(&message), auth);
            let lower = message.to_ascii_lowercase();
            if lower.contains("not found") || lower.contains("manifest unknown") {
                EngineError::NotFound {
                    what: format!("image {reference}: {message}"),
                }
            } else {
                EngineError::PullFailed {
                    reference: reference.to_string(),
                    message,
                }
            }
        };
        let mut stream = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(from_image),
                tag: Some(tag),
                ..Default::default()
            }),
            None,
            auth.map(RegistryAuth::to_bollard),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(failed(detail));
                    }
                }
                Err(BollardError::DockerStreamError { error }) => return Err(failed(error)),
                Err(err) => {
                    return Err(
                        self.stream_error("pull", reference, err, |_, message| failed(message))
                    );
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    /// The error of a push or pull whose request broke: the engine gone, or
    /// its answer (HTTP status, when it gave one, and message) classified by
    /// the operation's own `failed`.
    fn stream_error(
        &self,
        operation: &'static str,
        reference: &str,
        err: BollardError,
        failed: impl Fn(Option<u16>, String) -> EngineError,
    ) -> EngineError {
        if is_connection_error(&err) {
            return self.map_err(operation, reference, err);
        }
        match server_error(&err) {
            Some((status, message)) => failed(Some(status), message),
            None => failed(None, root_cause(&err)),
        }
    }
}

/// `<tag>: digest: sha256:<hex> size: <n>` → `sha256:<hex>`.
fn parse_digest_line(status: &str) -> Option<String> {
    let rest = &status[status.find("digest: ")? + "digest: ".len()..];
    let digest = rest.split_whitespace().next()?;
    (digest.starts_with("sha256:") && digest.len() == "sha256:".len() + 64)
        .then(|| digest.to_string())
}

/// A run id unique enough for one machine: process id and start time.
fn default_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reference_cases() {
        let ok = |r: &str| split_reference(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!(ok("img"), ("img".into(), "latest".into()));
        assert_eq!(ok("org/img:1.0"), ("org/img".into(), "1.0".into()));
        assert_eq!(
            ok("127.0.0.1:5000/org/img"),
            ("127.0.0.1:5000/org/img".into(), "latest".into())
        );
        assert_eq!(
            ok("127.0.0.1:5000/img:2023.2-abc"),
            ("127.0.0.1:5000/img".into(), "2023.2-abc".into())
        );
        assert!(split_reference("img@sha256:abc").is_err());
        assert!(split_reference("img:").is_err());
        assert!(split_reference("").is_err());
    }

    #[test]
    fn digest_line() {
        let hex = "a".repeat(64);
        assert_eq!(
            parse_digest_line(&format!("latest: digest: sha256:{hex} size: 527")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(parse_digest_line("Pushed"), None);
        assert_eq!(parse_digest_line("x: digest: sha256:short size: 1"), None);
    }

    #[test]
    fn line_splitter_joins_chunks() {
        let mut out = Vec::new();
        let mut s = LineSplitter::new();
        let mut sink = |l: &str| out.push(l.to_string());
        s.push("Step 1/2 : FR", &mut sink);
        s.push("OM x\n ---> abc\r\nlast", &mut sink);
        s.finish(&mut sink);
        assert_eq!(out, vec!["Step 1/2 : FROM x", " ---> abc", "last"]);
    }
}
