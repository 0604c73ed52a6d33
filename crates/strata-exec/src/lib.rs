//! The executor: turns a plan into a concurrent schedule of stages on the
//! Docker engine, and records what happened.
//!
//! Per image: build → basic tests → push → integration tests → manifest →
//! prune. Images run concurrently up to `jobs`; a child starts as soon as
//! its parent has passed its basic tests (and its push, when pushing). A
//! failed stage fails its image, its descendants are skipped, and unrelated
//! images carry on. Results, logs and manifests are written as the run goes,
//! so they survive a failure or an interrupt.
//!
//! The engine is reached through [`Backend`], which the Docker engine
//! implements; the scheduler's tests run it over an in-memory fake.

mod backend;
mod describe;
pub mod publish;
mod record;
mod run;
mod schedule;
pub mod sign;
mod stages;
mod test_inputs;
#[cfg(feature = "testing")]
pub mod testing;

pub use backend::Backend;
pub use describe::image_side;
pub use record::{
    BuildRecord, ImageResult, Outcome, PlanRecord, PlatformImage, RunRecord, StageResult, Status,
    now_rfc3339, write_atomic, write_json,
};
pub use run::{
    AuthFor, BuilderChoice, EarlierBuild, Event, ExecError, FolderTests, RecordedManifest,
    RunOptions, Stage, StageTests, Target, targets,
};
pub use schedule::{Executor, read_test_keys, runs_pytest};
pub use stages::FailureKind;
