//! strata-engine: the thin adapter between strata and the Docker Engine API.
//!
//! Everything strata asks of the engine goes through [`Engine`]:
//! [`Engine::build`] (BuildKit or the classic builder, context streamed as
//! a tar honouring `.dockerignore`), [`Engine::run_commands`] (commands in one throw-away
//! container), [`Engine::inspect_image`], [`Engine::history`],
//! [`Engine::tag`], [`Engine::remove_image`], [`Engine::local_tags`],
//! [`Engine::push`] and [`Engine::pull`], and for structure tests an
//! implementation of [`strata_structure::Driver`] (containers made as
//! container-structure-test's docker driver makes them) and
//! [`Engine::image_config`].
//!
//! It works with Docker 20.10 (API 1.41) and current engines: the API
//! version is negotiated on [`Engine::connect`]. Errors are
//! [`EngineError`]s; [`EngineError::is_unreachable`] tells the CLI to exit
//! with code 3. Registry credentials ([`RegistryAuth`]) never appear in
//! `Debug`/`Display` output or error messages.
//!
//! Log output (build and push progress) is delivered to a caller-supplied
//! sink, an `FnMut(&str) + Send` closure called once per line (without the
//! line ending) on the task that drives the future; wrap an
//! `mpsc::Sender<String>` in a closure to get a channel.

#![warn(missing_docs)]

mod auth;
mod container;
mod context;
pub mod dockerignore;
mod engine;
mod error;
mod progress;
mod run;

pub use auth::RegistryAuth;
pub use container::{ExecOutput, FileStat, ImageConfig, MAX_READ_FILE};
pub use engine::{
    BuildRequest, BuildSecret, Builder, BuiltImage, CONNECT_TIMEOUT, DEFAULT_HOST, DiskSpace,
    Engine, HistoryEntry, ImageInfo, LabelledImage, MAX_SECRET_CONTEXT, REQUEST_TIMEOUT,
    SecretFlagError, SecretSource, split_reference,
};
pub use error::{EngineError, PushCause, Result, says_out_of_space};
pub use run::{CommandOutput, IDLE_SCRIPT, RUN_LABEL};
