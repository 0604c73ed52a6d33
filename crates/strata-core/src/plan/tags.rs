//! The tags of a run: the suffix every tag of a plan ends in, and the order
//! in which a parent's most recent tag is looked for.

use super::*;

/// The suffix added to every tag of a plan of a working tree with
/// uncommitted changes: such images are never mistaken for a commit's.
pub const DIRTY_SUFFIX: &str = "-dirty";

/// The tags where an image's most recent build for a plan is looked for,
/// in order, the first found winning: for each of `suffixes` (the head's
/// and its ancestors' short hashes, newest first, then branch names: see
/// the CLI's lookups), `<prefix>-<suffix>-base-<refresh>` (a rebuild of
/// that commit on the bases its roots stand on now, see
/// [`super::refresh_marker`]) then `<prefix>-<suffix>`; last, the plan's
/// stable tag. The registry and the local store are searched in this same
/// order.
pub fn tag_candidates(plan: &PlanSpec, suffixes: &[String], refresh: Option<&str>) -> Vec<String> {
    let prefix = &plan.tag_prefix.value;
    suffixes
        .iter()
        .flat_map(|s| {
            let rebuilt = refresh.map(|r| format!("{prefix}-{s}{REFRESH_INFIX}{r}"));
            rebuilt.into_iter().chain([format!("{prefix}-{s}")])
        })
        .chain([plan.stable_tag()])
        .collect()
}

/// How the tag suffix is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuffixSource {
    /// The head commit's 7-character hash.
    Hash(String),
    /// The branch name, made into a valid tag.
    Branch(String),
}

/// Why a tag suffix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuffixError {
    /// The branch name has nothing a tag can be made of.
    #[error("the branch name '{0}' cannot be made into a tag: use --tag-suffix hash")]
    Unusable(String),
    /// The suffix would produce a promotion tag.
    #[error(
        "the tag suffix '{suffix}' would make the tag '{tag}', which is a promotion tag: builds never write it; use --tag-suffix hash or another branch name"
    )]
    PromotionTag {
        /// The suffix.
        suffix: String,
        /// The tag it makes.
        tag: String,
    },
    /// The hash is not a commit hash.
    #[error("'{0}' is not a commit hash")]
    BadHash(String),
}

/// Picks the tag suffix (ending in [`DIRTY_SUFFIX`] when `dirty`: the
/// plan is of a working tree with uncommitted changes) and checks that no
/// plan's tag made with it is a promotion tag (`<prefix>-stable`, or
/// `stable`).
pub fn tag_suffix(spec: &Spec, source: &SuffixSource, dirty: bool) -> Result<String, SuffixError> {
    let marker = if dirty { DIRTY_SUFFIX } else { "" };
    let suffix = match source {
        SuffixSource::Hash(sha) => {
            if sha.len() < 7 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(SuffixError::BadHash(sha.clone()));
            }
            sha[..7].to_ascii_lowercase()
        }
        SuffixSource::Branch(branch) => {
            let tag = Tag::sanitize(branch).ok_or_else(|| SuffixError::Unusable(branch.clone()))?;
            // Every plan's `<prefix>-<suffix>` must itself be a valid tag, so
            // the suffix gets what the longest prefix leaves of the limit.
            let room = spec
                .plans
                .iter()
                .map(|p| MAX_TAG_LEN.saturating_sub(p.tag_prefix.value.len() + 1 + marker.len()))
                .min()
                .unwrap_or(MAX_TAG_LEN);
            if room == 0 {
                return Err(SuffixError::Unusable(branch.clone()));
            }
            // A sanitized tag is ASCII, so byte slicing is safe.
            tag.as_str()[..tag.as_str().len().min(room)].to_string()
        }
    } + marker;
    for plan in &spec.plans {
        let tag = format!("{}-{suffix}", plan.tag_prefix.value);
        let promotion = spec.plans.iter().any(|p| p.stable_tag() == tag)
            || tag == "stable"
            || suffix == "stable";
        if promotion {
            return Err(SuffixError::PromotionTag { suffix, tag });
        }
    }
    Ok(suffix)
}
