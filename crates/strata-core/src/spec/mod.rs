//! The stack's spec (`images/spec.yml`): its model, and reading it from text.
//!
//! Both schemas found in real repositories are read into one model:
//! - current: `tag: {prefix}`, per image `build_args` and `info_cmds`, and
//!   top-level `all_info_cmds`;
//! - older: `plans:` (or `tags:`) of `{tag_prefix, tag_stable_postfix}`, per
//!   image `dbuild_env: {common: {...}, PLAN: {...}}` and `skip_plans`, and
//!   `manifests` where the current schema says `info_cmds`/`all_info_cmds`.
//!
//! Reading checks the shape of each entry; cross-entry rules (parents exist,
//! no cycles, names are valid) live in [`crate::validate`].

use crate::diag::{Diagnostic, Pos};
use std::collections::BTreeMap;

/// The plan name of a spec that declares no plans.
pub const DEFAULT_PLAN: &str = "default";
/// The stable postfix used when a plan names none.
pub const DEFAULT_STABLE_POSTFIX: &str = "-stable";

/// A value and where it was written. Equality ignores the position, so two
/// specs compare equal when they say the same thing.
#[derive(Debug, Clone, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// Which of the two spec schemas a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    /// `tag.prefix`, `build_args`, `info_cmds`.
    Current,
    /// `plans`/`tags`, `dbuild_env`, `skip_plans`, `manifests`.
    Legacy,
}

/// The whole stack as the spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The file the spec was read from, as shown in messages.
    pub file: String,
    /// The schema the file uses.
    pub schema: Schema,
    /// The declared roots (`root:`), if any; roots are otherwise inferred.
    pub roots: Vec<Located<String>>,
    /// The images, in the order the file lists them.
    pub images: Vec<ImageSpec>,
    /// The plans (tracks); a spec without plans has one, [`DEFAULT_PLAN`].
    pub plans: Vec<PlanSpec>,
    /// The info commands images may name, by key.
    pub info_cmds: BTreeMap<String, InfoCmd>,
    /// The platforms every image is built for (`platforms:`); empty: the
    /// engine's own.
    pub platforms: Vec<Located<String>>,
    /// The private key pushed images are signed with (`signing: {key:
    /// PATH}`), unless `--sign-key` or `STRATA_SIGN_KEY` names another: a
    /// path, relative to where strata runs, never the key itself.
    pub sign_key: Option<Located<String>>,
    /// The gates every image passes after its push (see [`crate::gates`]).
    pub gates: Vec<crate::gates::Gate>,
}

/// One image of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The image's key: also the name of its folder under `images/`.
    pub key: Located<String>,
    /// The repository the image is pushed to, without a tag.
    pub image_name: Option<Located<String>>,
    /// The parent image's key.
    pub depend_on: Option<Located<String>>,
    /// Build args for every plan (`build_args`, or `dbuild_env.common`).
    pub build_args: BTreeMap<String, String>,
    /// Build args per plan (`dbuild_env.<PLAN>`).
    pub plan_args: BTreeMap<String, Located<BTreeMap<String, String>>>,
    /// Plans this image is not built in.
    pub skip_plans: Vec<Located<String>>,
    /// Keys of the info commands run for this image's manifest.
    pub info_cmds: Vec<Located<String>>,
    /// Run `integration_tests/` after push.
    pub integration_tests: bool,
    /// Run the basic tests after build (default true).
    pub basic_tests: bool,
    /// Reclaim engine space after this image.
    pub prune: bool,
    /// The build may pull the previous published tag as cache (default
    /// true, as in the pipeline strata replaces).
    pub prepull: bool,
    /// The basic tests include every ancestor's `test/` (default true).
    pub inherit_tests: bool,
    /// Time limits per stage key (`timeouts: {build: 4h}`), over the
    /// defaults of [`crate::limits`].
    pub timeouts: BTreeMap<String, std::time::Duration>,
    /// The largest the image may be, in bytes (`max_size: 12GB`).
    pub max_size: Option<u64>,
    /// The platforms this image is built for, narrowing the spec's.
    pub platforms: Vec<Located<String>>,
    /// Its own gates (see [`crate::gates::of_image`]).
    pub gates: Vec<crate::gates::Gate>,
}

impl ImageSpec {
    /// The image's key.
    pub fn name(&self) -> &str {
        &self.key.value
    }

    /// The parent's key, if any.
    pub fn parent(&self) -> Option<&str> {
        self.depend_on.as_ref().map(|d| d.value.as_str())
    }

    /// Whether the image is built in `plan`.
    pub fn in_plan(&self, plan: &str) -> bool {
        !self.skip_plans.iter().any(|p| p.value == plan)
    }
}

/// A plan: one track of the stack with its own tag prefix and args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSpec {
    /// The plan's name.
    pub name: Located<String>,
    /// Tags of this plan are `<tag_prefix>-<suffix>`.
    pub tag_prefix: Located<String>,
    /// The stable tag is `<tag_prefix><stable_postfix>`.
    pub stable_postfix: String,
}

impl PlanSpec {
    /// The plan's stable tag, e.g. `2023.2-stable`.
    pub fn stable_tag(&self) -> String {
        format!("{}{}", self.tag_prefix.value, self.stable_postfix)
    }
}

/// A command run inside an image to document it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InfoCmd {
    /// The section title in the manifest.
    pub description: String,
    /// The shell command.
    pub command: String,
}

impl Spec {
    /// The image with key `key`.
    pub fn image(&self, key: &str) -> Option<&ImageSpec> {
        self.images.iter().find(|i| i.name() == key)
    }

    /// The plan named `name`.
    pub fn plan(&self, name: &str) -> Option<&PlanSpec> {
        self.plans.iter().find(|p| p.name.value == name)
    }

    /// The keys of every image, in file order.
    pub fn image_keys(&self) -> impl Iterator<Item = &str> {
        self.images.iter().map(ImageSpec::name)
    }
}

/// What reading a spec gave: the spec (unless it could not be read at all)
/// and every problem found on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The spec, or `None` when the file is not a readable spec at all.
    pub spec: Option<Spec>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

mod parse;
#[cfg(test)]
mod tests;

pub use parse::{conflict_markers, parse};
