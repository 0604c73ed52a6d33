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
        /// Why, as [`PushCause::classify`] reads the engine's answer: what
        /// decides whether trying again may succeed.
        cause: PushCause,
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

    /// True when trying the same request again may succeed: a push that
    /// failed for a transient cause (see [`PushCause::is_transient`]). An
    /// engine that went away is not: a retry would only wait for it.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::PushFailed { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }
}

/// Why a push failed. The daemon's push stream carries only a message (an
/// HTTP status only when the request itself failed), so
/// [`PushCause::classify`] is the one place that reads that text, against
/// the phrases the engine and Go's network stack use, word by word: a tag
/// or digest that happens to hold `500` or `eof` decides nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushCause {
    /// The registry wants credentials, or refused the ones given (401).
    Unauthorized,
    /// The credentials may not push there (403).
    Denied,
    /// The repository or a blob the manifest names does not exist.
    NotFound,
    /// The registry's host name does not resolve.
    Dns,
    /// Nothing listens at the registry's address.
    Refused,
    /// The connection dropped or timed out mid-way.
    Network,
    /// The registry answered with a server error (5xx), 429 or 408.
    Server(u16),
    /// Anything else (an invalid manifest, a TLS mismatch): final.
    Other,
}

impl PushCause {
    /// Whether trying again may succeed: a dropped connection, a timeout or
    /// a server error. DNS failures, refused connections, credentials and
    /// missing things are final.
    pub fn is_transient(self) -> bool {
        matches!(self, PushCause::Network | PushCause::Server(_))
    }

    /// Reads the cause from the HTTP status of a failed request, when there
    /// is one, else from the engine's message (see the type's docs).
    pub fn classify(status: Option<u16>, message: &str) -> PushCause {
        if let Some(status) = status {
            return match status {
                401 => PushCause::Unauthorized,
                403 => PushCause::Denied,
                404 => PushCause::NotFound,
                408 | 429 | 500..=599 => PushCause::Server(status),
                _ => PushCause::Other,
            };
        }
        let text = message.to_ascii_lowercase();
        // Distribution's answers relayed by the engine: `received unexpected
        // HTTP status: 503 Service Unavailable`, `unknown: …` for a 5xx body.
        if let Some(status) = http_status_in(&text) {
            return PushCause::classify(Some(status), message);
        }
        const TABLE: [(&str, PushCause); 21] = [
            ("unauthorized", PushCause::Unauthorized),
            ("authentication required", PushCause::Unauthorized),
            ("no basic auth credentials", PushCause::Unauthorized),
            ("denied", PushCause::Denied),
            ("name unknown", PushCause::NotFound),
            ("blob unknown", PushCause::NotFound),
            ("not found", PushCause::NotFound),
            ("no such host", PushCause::Dns),
            ("server misbehaving", PushCause::Dns),
            ("temporary failure in name resolution", PushCause::Dns),
            ("connection refused", PushCause::Refused),
            ("connection reset", PushCause::Network),
            ("broken pipe", PushCause::Network),
            ("i/o timeout", PushCause::Network),
            ("tls handshake timeout", PushCause::Network),
            ("timed out", PushCause::Network),
            ("use of closed network connection", PushCause::Network),
            ("unexpected eof", PushCause::Network),
            ("internal server error", PushCause::Server(500)),
            ("bad gateway", PushCause::Server(502)),
            ("service unavailable", PushCause::Server(503)),
        ];
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '/'))
            .filter(|w| !w.is_empty())
            .collect();
        let says = |phrase: &str| {
            let phrase: Vec<&str> = phrase.split(' ').collect();
            words.windows(phrase.len()).any(|w| w == phrase.as_slice())
        };
        if let Some((_, cause)) = TABLE.iter().find(|(phrase, _)| says(phrase)) {
            return *cause;
        }
        // Go's `Put "…": EOF`: the connection closed with no answer.
        if words.last() == Some(&"eof") {
            return PushCause::Network;
        }
        PushCause::Other
    }
}

/// The status of `received unexpected HTTP status: 503 …` or
/// `unexpected status code 502`, the two forms the engine relays.
fn http_status_in(text: &str) -> Option<u16> {
    ["http status: ", "status code "].iter().find_map(|marker| {
        let at = text.find(marker)? + marker.len();
        let digits: String = text[at..].chars().take(3).collect();
        (digits.len() == 3)
            .then(|| digits.parse::<u16>().ok())
            .flatten()
            .filter(|s| (100..600).contains(s))
    })
}

/// Whether the engine's (or a build step's) text reports ENOSPC. The engine
/// gives no error code for it, only the C library's message, so this is the
/// one place that reads it.
pub fn says_out_of_space(text: &str) -> bool {
    text.to_lowercase().contains("no space left on device")
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
    use super::PushCause::{self, *};

    /// Messages recorded from Docker 20.10's push stream and from
    /// distribution's answers, with the cause each must be read as.
    const RECORDED: [(&str, PushCause); 19] = [
        (
            "received unexpected HTTP status: 503 Service Unavailable",
            Server(503),
        ),
        (
            "received unexpected HTTP status: 500 Internal Server Error",
            Server(500),
        ),
        ("unexpected status code 502 Bad Gateway", Server(502)),
        (
            "Put \"http://127.0.0.1:5000/v2/a/blobs/uploads/x\": write tcp 127.0.0.1:1->127.0.0.1:5000: write: connection reset by peer",
            Network,
        ),
        (
            "Patch \"http://127.0.0.1:5000/v2/a/blobs/uploads/x\": EOF",
            Network,
        ),
        (
            "Get \"https://registry.example/v2/\": net/http: TLS handshake timeout",
            Network,
        ),
        (
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: i/o timeout",
            Network,
        ),
        (
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused",
            Refused,
        ),
        (
            "Get \"https://registry.invalid/v2/\": dial tcp: lookup registry.invalid on 10.0.0.1:53: no such host",
            Dns,
        ),
        (
            "Get \"https://r.example/v2/\": dial tcp: lookup r.example on 127.0.0.11:53: server misbehaving",
            Dns,
        ),
        ("unauthorized: authentication required", Unauthorized),
        ("no basic auth credentials", Unauthorized),
        ("denied: requested access to the resource is denied", Denied),
        (
            "name unknown: repository name not known to registry",
            NotFound,
        ),
        ("manifest invalid: manifest invalid", Other),
        (
            "Get \"https://127.0.0.1:5000/v2/\": http: server gave HTTP response to HTTPS client",
            Other,
        ),
        // A tag or digest that holds `500`, `eof` or `timeout` decides
        // nothing: these are the refusals they are.
        ("tag does not exist: 2024.1-500eof", Other),
        (
            "manifest blob unknown: blob unknown to registry: sha256:5000eof",
            NotFound,
        ),
        ("unknown: tag geofence-timeout-500 is invalid", Other),
    ];

    #[test]
    fn recorded_daemon_messages_are_classified() {
        for (message, cause) in RECORDED {
            assert_eq!(PushCause::classify(None, message), cause, "{message}");
        }
    }

    #[test]
    fn statuses_decide_first_and_only_network_and_server_errors_retry() {
        assert_eq!(PushCause::classify(Some(401), "retry later"), Unauthorized);
        assert_eq!(PushCause::classify(Some(502), "unauthorized"), Server(502));
        assert_eq!(PushCause::classify(Some(429), ""), Server(429));
        for cause in [Unauthorized, Denied, NotFound, Dns, Refused, Other] {
            assert!(!cause.is_transient(), "{cause:?}");
        }
        for cause in [Network, Server(503), Server(429)] {
            assert!(cause.is_transient(), "{cause:?}");
        }
    }
}
