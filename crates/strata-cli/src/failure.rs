//! How a command fails, and the exit code each kind of failure gets.

use std::fmt;
use std::process::ExitCode;

/// The kinds of failure, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The work failed: an image or a test failed (exit 1).
    Work,
    /// The input is wrong: spec, flags, files (exit 2).
    BadInput,
    /// The environment is wrong: not a repository, engine or registry unreachable (exit 3).
    Environment,
}

/// A failed command: what to tell the user and which exit code to give.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The kind, which picks the exit code.
    pub kind: Kind,
    /// The message, already saying what to do.
    pub message: String,
}

impl Failure {
    /// Bad input (exit 2).
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::BadInput,
            message: message.into(),
        }
    }

    /// The environment (exit 3).
    pub fn env(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::Environment,
            message: message.into(),
        }
    }

    /// The work failed (exit 1).
    pub fn work(message: impl Into<String>) -> Self {
        Failure {
            kind: Kind::Work,
            message: message.into(),
        }
    }

    /// The exit code of this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self.kind {
            Kind::Work => 1,
            Kind::BadInput => 2,
            Kind::Environment => 3,
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<strata_git::GitError> for Failure {
    fn from(e: strata_git::GitError) -> Self {
        use strata_git::GitError as G;
        match e {
            // An unknown revision is usually missing history (a shallow
            // clone), hence the environment; a malformed one is bad input.
            G::InvalidRevision { .. } | G::AmbiguousRevision { .. } | G::NotACommit { .. } => {
                Failure::input(e.to_string())
            }
            _ => Failure::env(e.to_string()),
        }
    }
}
