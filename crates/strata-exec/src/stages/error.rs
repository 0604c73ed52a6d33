//! Why a stage failed: a kind, which the run's record keeps and the CLI's
//! exit code reads, and the message that tells it.

use serde::{Deserialize, Serialize};
use strata_engine::EngineError;

/// What ended an image's run (`failure` in `run.json` and its artifact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The engine could not be reached: it went away during the run.
    EngineGone,
    /// The engine's disk filled.
    OutOfSpace,
    /// The engine refused or failed a build or another operation.
    Engine,
    /// A test failed, or the tests could not reach a verdict.
    Tests,
    /// A stage passed its time limit.
    TimedOut,
    /// The run was interrupted.
    Interrupted,
    /// What would be published is not what was built and tested: a base
    /// or a reference moved to other content.
    Provenance,
    /// The registry refused or failed a push or a pull.
    Registry,
    /// The image is over its size budget.
    Budget,
    /// What was pushed could not be signed (`--sign-key`): it is not
    /// published unsigned.
    Signing,
    /// A gate (a scanner, a policy) refused the pushed image.
    Gate,
    /// Anything else: the stage's own files, a tool it runs.
    Other,
}

/// A stage's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageError {
    pub kind: FailureKind,
    pub message: String,
}

impl StageError {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> StageError {
        StageError {
            kind,
            message: message.into(),
        }
    }

    /// The kind of an engine's error: the engine gone, its disk full, the
    /// registry behind a push or pull, or the engine's own.
    pub(crate) fn kind_of(e: &EngineError) -> FailureKind {
        match e {
            _ if e.is_unreachable() => FailureKind::EngineGone,
            _ if e.is_out_of_space() => FailureKind::OutOfSpace,
            EngineError::PushFailed { .. } | EngineError::PullFailed { .. } => {
                FailureKind::Registry
            }
            _ => FailureKind::Engine,
        }
    }

    /// The same failure, its message prefixed (`linux/arm64: …`).
    pub(crate) fn within(self, prefix: &str) -> StageError {
        StageError {
            kind: self.kind,
            message: format!("{prefix}: {}", self.message),
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A helper's message, for failures with no kind of their own.
impl From<String> for StageError {
    fn from(message: String) -> StageError {
        StageError::new(FailureKind::Other, message)
    }
}
