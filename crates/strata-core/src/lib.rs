//! strata's planning core: the stack's spec, its validation, the image graph,
//! the change rules, tags and build args, and the plan they produce.
//!
//! Nothing here does I/O: every function takes text and data and returns
//! data, so the same inputs always give the same plan, and every rule can be
//! tested on its own. Reading files, asking git, the engine or the registry
//! is the job of the adapter crates.

pub mod bake;
pub mod changes;
pub mod diag;
pub mod dockerfile;
pub mod gates;
pub mod graph;
pub mod inputs;
pub mod jobs;
pub mod limits;
pub mod plan;
pub mod platform;
pub mod reference;
pub mod retry;
pub mod source;
pub mod spec;
pub mod test_folders;
pub mod text;
pub mod validate;
pub mod yaml;
