//! Registry-side promotion: move a set of tags all-or-nothing.
//!
//! 1. Every source is fetched and verified (all must exist), every target's
//!    current manifest is read (bytes and digest, or absent). Nothing is
//!    written if any of this fails.
//! 2. Each source's exact bytes are put under its target tag (no layer is
//!    pulled or pushed; an index is copied whole, digest unchanged).
//! 3. If a put fails, the targets already moved are put back to their old
//!    bytes. A target that did not exist before cannot be un-tagged through
//!    the distribution API: it is reported as left in place.

use std::collections::HashSet;
use std::fmt;

use strata_core::reference::{Digest, ImageRef};

use crate::client::Registry;
use crate::error::RegistryError;
use crate::manifest::Manifest;

/// One tag to move: `to` (a `name:tag`) will name what `from` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The source, by tag or digest.
    pub from: ImageRef,
    /// The target; must have a tag and no digest.
    pub to: ImageRef,
}

impl Move {
    /// A move from `from` to `to`.
    pub fn new(from: ImageRef, to: ImageRef) -> Self {
        Move { from, to }
    }
}

/// What happened (or, in a dry run, would happen) to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The source.
    pub from: ImageRef,
    /// The target tag.
    pub to: ImageRef,
    /// What the target named before (`None`: it did not exist).
    pub old_digest: Option<Digest>,
    /// What the target names now: the source's digest.
    pub new_digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
}

impl Moved {
    /// Whether the target already named the source (nothing to do).
    pub fn unchanged(&self) -> bool {
        self.old_digest.as_ref() == Some(&self.new_digest)
    }
}

impl fmt::Display for Moved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.old_digest {
            Some(old) if self.unchanged() => write!(f, "{}: unchanged at {old}", self.to),
            Some(old) => write!(
                f,
                "{}: {old} -> {} (from {})",
                self.to, self.new_digest, self.from
            ),
            None => write!(
                f,
                "{}: (new) -> {} (from {})",
                self.to, self.new_digest, self.from
            ),
        }
    }
}

/// The result of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionReport {
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// One entry per move, in the order given.
    pub moves: Vec<Moved>,
}

/// A promotion that did not complete. Each message says which tags are in
/// which state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromotionError {
    /// The list of moves is not usable (nothing was moved).
    #[error("cannot promote: {0}; nothing was moved")]
    InvalidMoves(String),
    /// Some sources are missing or unusable (nothing was moved).
    #[error("cannot promote: {}; nothing was moved", list_problems(.problems))]
    Sources {
        /// Each failing source and why.
        problems: Vec<(ImageRef, RegistryError)>,
    },
    /// A target's current manifest could not be read (nothing was moved).
    #[error("cannot promote: reading the current {target} failed: {source}; nothing was moved")]
    Target {
        /// The target.
        target: ImageRef,
        /// Why.
        source: RegistryError,
    },
    /// A put failed part-way; the tags already moved were put back where
    /// possible.
    #[error("{}", describe_failure(.failed, .cause, .restored, .left_in_place, .not_restored))]
    Failed {
        /// The target whose put failed.
        failed: ImageRef,
        /// Why.
        cause: RegistryError,
        /// Targets put back to their old digests.
        restored: Vec<ImageRef>,
        /// Targets that did not exist before and now name the source.
        left_in_place: Vec<Moved>,
        /// Targets that could not be put back, and why.
        not_restored: Vec<(Moved, RegistryError)>,
    },
}

impl PromotionError {
    /// Whether the promotion failed because of the environment (the
    /// registry unreachable, credentials missing or refused: see
    /// [`RegistryError::is_environment`]) rather than because of what the
    /// registry holds.
    pub fn is_environment(&self) -> bool {
        match self {
            PromotionError::InvalidMoves(_) => false,
            PromotionError::Sources { problems } => {
                problems.iter().any(|(_, e)| e.is_environment())
            }
            PromotionError::Target { source, .. } => source.is_environment(),
            PromotionError::Failed { cause, .. } => cause.is_environment(),
        }
    }
}

fn list_problems(problems: &[(ImageRef, RegistryError)]) -> String {
    problems
        .iter()
        .map(|(r, e)| match e {
            RegistryError::NotFound { .. } => format!("source {r} does not exist"),
            e => format!("source {r}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_failure(
    failed: &ImageRef,
    cause: &RegistryError,
    restored: &[ImageRef],
    left: &[Moved],
    not_restored: &[(Moved, RegistryError)],
) -> String {
    let mut s = format!("promotion failed moving {failed}: {cause}");
    if !restored.is_empty() {
        let r: Vec<String> = restored.iter().map(|r| r.to_string()).collect();
        s.push_str(&format!(
            "; put back to their previous digests: {}",
            r.join(", ")
        ));
    }
    if !left.is_empty() {
        let l: Vec<String> = left
            .iter()
            .map(|m| format!("{} -> {}", m.to, m.new_digest))
            .collect();
        s.push_str(&format!(
            "; LEFT IN PLACE (they did not exist before and the registry API cannot remove a tag; delete them in the registry's UI if unwanted): {}",
            l.join(", ")
        ));
    }
    if !not_restored.is_empty() {
        let n: Vec<String> = not_restored
            .iter()
            .map(|(m, e)| {
                format!(
                    "{} (now {}, was {}): {e}",
                    m.to,
                    m.new_digest,
                    m.old_digest
                        .as_ref()
                        .map_or("absent".to_string(), |d| d.to_string())
                )
            })
            .collect();
        s.push_str(&format!("; COULD NOT PUT BACK: {}", n.join("; ")));
    }
    if left.is_empty() && not_restored.is_empty() {
        s.push_str("; every tag is as it was");
    }
    s
}

struct Prepared {
    moved: Moved,
    source: Manifest,
    old: Option<Manifest>,
}

impl Registry {
    /// Moves every target tag to its source's manifest, all-or-nothing (see
    /// the module documentation). With `dry_run`, only step 1 runs and the
    /// report says what would move.
    pub async fn promote(
        &self,
        moves: &[Move],
        dry_run: bool,
    ) -> Result<PromotionReport, PromotionError> {
        let mut targets = HashSet::new();
        for m in moves {
            if m.to.tag().is_none() || m.to.digest().is_some() {
                return Err(PromotionError::InvalidMoves(format!(
                    "target {} must be `name:tag` (no digest)",
                    m.to
                )));
            }
            if !targets.insert(m.to.clone()) {
                return Err(PromotionError::InvalidMoves(format!(
                    "target {} appears more than once",
                    m.to
                )));
            }
            if m.from.name().registry() != m.to.name().registry() {
                return Err(PromotionError::InvalidMoves(
                    RegistryError::CrossRegistry {
                        from: Box::new(m.from.clone()),
                        to: Box::new(m.to.clone()),
                        to_registry: m.to.name().registry().to_string(),
                    }
                    .to_string(),
                ));
            }
        }

        // 1. Check every source, then read every target.
        let mut sources = Vec::with_capacity(moves.len());
        let mut problems = Vec::new();
        for m in moves {
            match self.get_manifest(&m.from).await {
                Ok(Some(manifest)) => sources.push(manifest),
                Ok(None) => problems.push((
                    m.from.clone(),
                    RegistryError::NotFound {
                        reference: Box::new(m.from.clone()),
                    },
                )),
                Err(e) => problems.push((m.from.clone(), e)),
            }
        }
        if !problems.is_empty() {
            return Err(PromotionError::Sources { problems });
        }
        let mut prepared = Vec::with_capacity(moves.len());
        for (m, source) in moves.iter().zip(sources) {
            let old = self
                .get_manifest(&m.to)
                .await
                .map_err(|source| PromotionError::Target {
                    target: m.to.clone(),
                    source,
                })?;
            prepared.push(Prepared {
                moved: Moved {
                    from: m.from.clone(),
                    to: m.to.clone(),
                    old_digest: old.as_ref().map(|o| o.digest().clone()),
                    new_digest: source.digest().clone(),
                    media_type: source.media_type().to_string(),
                },
                source,
                old,
            });
        }
        let report = PromotionReport {
            dry_run,
            moves: prepared.iter().map(|p| p.moved.clone()).collect(),
        };
        if dry_run {
            return Ok(report);
        }

        // 2. Put each source under its target.
        let mut done: Vec<&Prepared> = Vec::new();
        for p in &prepared {
            if p.moved.unchanged() {
                continue;
            }
            let result = match self
                .ensure_contents(p.moved.from.name(), p.moved.to.name(), &p.source)
                .await
            {
                Ok(()) => self.put_manifest(&p.moved.to, &p.source).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => done.push(p),
                Err(cause) => {
                    // 3. Put back what was moved, newest first.
                    let mut restored = Vec::new();
                    let mut left_in_place = Vec::new();
                    let mut not_restored = Vec::new();
                    for d in done.iter().rev() {
                        match &d.old {
                            None => left_in_place.push(d.moved.clone()),
                            Some(old) => match self.put_manifest(&d.moved.to, old).await {
                                Ok(_) => restored.push(d.moved.to.clone()),
                                Err(e) => not_restored.push((d.moved.clone(), e)),
                            },
                        }
                    }
                    tracing::warn!(failed = %p.moved.to, "promotion failed; moved tags put back");
                    return Err(PromotionError::Failed {
                        failed: p.moved.to.clone(),
                        cause,
                        restored,
                        left_in_place,
                        not_restored,
                    });
                }
            }
        }
        Ok(report)
    }
}
