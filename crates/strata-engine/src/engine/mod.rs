//! The connection to the engine; its builds, local images, pushes and
//! pulls each have a file of their own.

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

mod build;
mod images;
mod pull;
mod push;

pub use build::{
    BuildRequest, BuildSecret, Builder, BuiltImage, MAX_SECRET_CONTEXT, SecretFlagError,
    SecretSource,
};
pub use images::{HistoryEntry, ImageInfo, LabelledImage};

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

/// A run id unique enough for one machine: process id and start time.
fn default_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
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

    /// The error of a push or pull whose request broke: the engine gone, or
    /// its answer (HTTP status, when it gave one, and message) classified by
    /// the operation's own `failed`.
    pub(super) fn stream_error(
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

#[cfg(test)]
mod tests {
    use super::push::parse_digest_line;
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
}
