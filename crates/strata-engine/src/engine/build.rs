//! Builds: BuildKit through the engine's API (with a secrets session when a
//! Dockerfile mounts one), or the classic builder; their progress as plain
//! lines.

use super::*;

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
    /// Resolve each `FROM` image in its registry, not from an image the
    /// local store has under its name (which the engine otherwise prefers):
    /// for a base the plan found in its registry, so the image built on is
    /// the one its key and labels name, not a stale local copy.
    pub pull: bool,
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
            pull: false,
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

/// Runs context work (reading the folder, writing the tar) on a blocking
/// thread, its failure a [`EngineError::Context`].
pub(super) async fn on_context_thread<T: Send + 'static>(
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
pub(super) fn build_platform(platform: &str) -> Result<bollard::grpc::build::ImageBuildPlatform> {
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
pub(super) fn mounts_a_secret(dockerfile: &std::path::Path) -> bool {
    std::fs::read_to_string(dockerfile)
        .map(|text| text.contains("type=secret"))
        .unwrap_or(false)
}

/// A session id unique within the process (with the run id, unique on the
/// engine): BuildKit refuses two builds sharing one.
pub(super) fn next_session() -> u64 {
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
pub(super) fn progress_update(
    status: bollard::moby::buildkit::v1::StatusResponse,
) -> crate::progress::Update {
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
pub(super) fn failed_step_message(failed: &crate::progress::FailedStep) -> String {
    let last = failed
        .tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!("; last output: {}", l.trim()))
        .unwrap_or_default();
    one_line(&format!("{}: {}{last}", failed.step, failed.error))
}

/// Emits complete lines of a chunked text stream to a sink.
pub(super) struct LineSplitter {
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

    pub(super) async fn build_logged<F>(
        &self,
        request: &BuildRequest,
        mut log: F,
    ) -> Result<BuiltImage>
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
            pull: request.pull.then(|| "1".to_string()),
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
    pub(super) async fn build_with_secrets<F>(
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
        if request.pull {
            options = options.pull(true);
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

    pub(super) async fn image_id(&self, reference: &str) -> Result<String> {
        match self.inspect_image(reference).await? {
            Some(info) => Ok(info.id),
            None => Err(EngineError::NotFound {
                what: format!("image {reference}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
