//! The typed errors of the engine adapter.

use std::path::PathBuf;

/// Everything that can go wrong talking to the Docker engine.
///
/// Messages are single lines and never contain registry credentials: the
/// adapter scrubs any secret it was given from messages the engine returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine could not be reached (no socket, connection refused,
    /// permission denied, unsupported `DOCKER_HOST`, timeout). The CLI maps
    /// this to exit code 3; see [`EngineError::is_unreachable`].
    #[error("cannot reach the Docker engine at {host}: {reason}; is it running? (docker info)")]
    Unreachable {
        /// The engine address tried, e.g. `unix:///var/run/docker.sock`.
        host: String,
        /// Why, in one line.
        reason: String,
    },

    /// An image, container or exec instance does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for and the engine's message.
        what: String,
    },

    /// The build failed: a step returned an error (`errorDetail` in the
    /// engine's build stream), or the engine rejected the build request.
    #[error("build failed: {message}")]
    BuildFailed {
        /// The engine's message, e.g.
        /// `The command '/bin/sh -c exit 3' returned a non-zero code: 3`.
        message: String,
    },

    /// The build context could not be read or its `.dockerignore` is invalid.
    #[error("build context {}: {message}", path.display())]
    Context {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A push failed (registry unreachable, authentication, manifest errors).
    #[error("push of {reference} failed: {message}")]
    PushFailed {
        /// The image reference being pushed.
        reference: String,
        /// The engine's message, with any credential scrubbed.
        message: String,
        /// Whether trying again may succeed (a dropped connection, a
        /// timeout, a 5xx), as [`push_failure_is_transient`] reads it.
        transient: bool,
    },

    /// A pull failed.
    #[error("pull of {reference} failed: {message}")]
    PullFailed {
        /// The image reference being pulled.
        reference: String,
        /// The engine's message, with any credential scrubbed.
        message: String,
    },

    /// A reference, tag or argument the engine would reject anyway.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
    },

    /// The engine's disk is full: a build step or a request failed with
    /// `no space left on device`. See [`crate::Engine::disk_space`] for
    /// where the engine keeps its data and how much room is left.
    #[error("the engine ran out of disk space during {operation}: {message}")]
    OutOfSpace {
        /// The operation, e.g. `build`.
        operation: &'static str,
        /// The engine's message (a failed build: the failed step).
        message: String,
    },

    /// Any other error the engine returned.
    #[error("Docker engine error during {operation}: {message}")]
    Api {
        /// The operation, e.g. `inspect image`.
        operation: &'static str,
        /// The engine's message.
        message: String,
    },
}

impl EngineError {
    /// True when the engine itself could not be reached (exit code 3 in the CLI).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EngineError::Unreachable { .. })
    }

    /// True when the engine's disk is full.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, EngineError::OutOfSpace { .. })
    }

    /// The error as [`EngineError::OutOfSpace`] when it is one: its message
    /// says so, or (`seen`) the output of the step that failed did. A build
    /// step that runs out of space usually fails with its command's exit
    /// code, the reason only in its output.
    pub(crate) fn out_of_space_if(self, seen: bool) -> EngineError {
        match self {
            EngineError::BuildFailed { message } if seen || says_out_of_space(&message) => {
                EngineError::OutOfSpace {
                    operation: "build",
                    message,
                }
            }
            EngineError::Api { operation, message } if says_out_of_space(&message) => {
                EngineError::OutOfSpace { operation, message }
            }
            e => e,
        }
    }

    /// True when the error says an image, container or exec does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    /// True when trying the same request again may succeed: the engine was
    /// unreachable, or a push failed for a transient reason.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Unreachable { .. } => true,
            EngineError::PushFailed { transient, .. } => *transient,
            _ => false,
        }
    }
}

/// Whether the engine's (or a build step's) text reports ENOSPC. The engine
/// gives no error code for it, only the C library's message, so this is the
/// one place that reads it.
pub fn says_out_of_space(text: &str) -> bool {
    text.to_lowercase().contains("no space left on device")
}

/// Whether a push failure the engine reported is worth retrying. The
/// daemon's push stream carries only a message, never a status code or an
/// error type, so this is the one place that reads that text: refusals
/// (authentication, a missing repository, an invalid manifest) are final;
/// dropped connections, timeouts and 5xx answers are transient.
pub(crate) fn push_failure_is_transient(status: Option<u16>, message: &str) -> bool {
    if let Some(status) = status {
        return status >= 500 || status == 429 || status == 408;
    }
    let text = message.to_lowercase();
    const FINAL: [&str; 6] = [
        "unauthorized",
        "denied",
        "authentication required",
        "not found",
        "does not exist",
        "invalid",
    ];
    const TRANSIENT: [&str; 13] = [
        "connection reset",
        "connection refused",
        "broken pipe",
        "eof",
        "timeout",
        "timed out",
        "500",
        "502",
        "503",
        "504",
        "internal server error",
        "bad gateway",
        "service unavailable",
    ];
    !FINAL.iter().any(|p| text.contains(p)) && TRANSIENT.iter().any(|t| text.contains(t))
}

/// Result with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Collapses a message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s
        .split(['\n', '\r'])
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(part.trim());
    }
    out
}

/// True when a bollard error means the engine is not reachable at all.
pub(crate) fn is_connection_error(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    match err {
        B::HyperLegacyError { err } => err.is_connect() || source_is_io_connect(err),
        B::IOError { err } => io_is_connect(err),
        B::SocketNotFoundError(_) | B::UnsupportedURISchemeError { .. } => true,
        B::RequestTimeoutError => false,
        _ => false,
    }
}

fn io_is_connect(err: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        err.kind(),
        K::ConnectionRefused
            | K::NotFound
            | K::PermissionDenied
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::AddrNotAvailable
    )
}

fn source_is_io_connect(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = err.source();
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io_is_connect(io);
        }
        cur = e.source();
    }
    false
}

/// The innermost cause of an error chain, as one line (hyper errors say
/// "client error (Connect)" at the top and the useful part underneath).
pub(crate) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let m = e.to_string();
        if !m.is_empty() && !msg.contains(&m) {
            msg = format!("{msg}: {m}");
        }
        cur = e.source();
    }
    one_line(&msg)
}

/// The HTTP status and message of an engine error response, if it is one.
pub(crate) fn server_error(err: &bollard::errors::Error) -> Option<(u16, String)> {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => Some((*status_code, one_line(message))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::push_failure_is_transient;

    #[test]
    fn transient_push_failures_are_told_apart() {
        assert!(push_failure_is_transient(
            None,
            "received unexpected HTTP status: 503 Service Unavailable"
        ));
        assert!(push_failure_is_transient(
            None,
            "write tcp: connection reset by peer"
        ));
        assert!(push_failure_is_transient(Some(502), "bad gateway"));
        assert!(!push_failure_is_transient(
            None,
            "unauthorized: authentication required"
        ));
        assert!(!push_failure_is_transient(None, "manifest invalid"));
        assert!(!push_failure_is_transient(Some(401), "retry later"));
    }
}
