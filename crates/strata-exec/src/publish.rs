//! The run's end in the registry, once every image ran: the record of what
//! each build left, put beside its image; each multi-platform image's
//! index under the run's tag; and the run's tag on the images it reused or
//! did not rebuild. Every rule of what a run may tag is here, over the
//! [`Publisher`] interface, so the rules are tested without a registry.
//!
//! - A record is put for each image built here, or reused and tested again
//!   here (its test files changed): what it passed, with which test files.
//! - An index is put for a multi-platform image that passed, once its
//!   platforms all ran here (not in a run narrowed by `--platform`).
//! - Only a run of the whole range (not a `--only` or `--platform` job of
//!   a job graph, whose siblings may still fail) tags the images it did not
//!   build, and only when every image of the run passed: reused images at
//!   the digest they were found at, unchanged images at the digest the run
//!   planned with (a tag that moved since fails, naming both).
//! - A run that signs (`RunEnd::signer`) signs each index by its digest
//!   before the run's tag names it (one that cannot be signed is not
//!   tagged), each SBOM it puts beside an image, and each unchanged image
//!   as it was published (with its platforms' images and SBOMs) before
//!   its tag names it.

use crate::record::{ImageResult, Outcome, RunRecord, Status};
use crate::run::{EarlierBuild, RecordedManifest, Stage};
use crate::sign::Signer;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use strata_core::plan::Plan;
use strata_core::reference::{Digest, ImageRef};
use strata_registry::{PlatformImage, RegistryError, TagError};

/// What the run's end asks of a registry; [`strata_registry::Registry`]
/// implements it.
pub trait Publisher: Sync {
    /// Puts `record` as a note under `target` (`name:inputs-<hex>.record`).
    fn put_record(
        &self,
        target: &ImageRef,
        record: &EarlierBuild,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
    /// Puts an index of `images` under `target`'s tag, each platform's
    /// image checked to be of its platform.
    fn put_index(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> impl Future<Output = Result<Digest, RegistryError>> + Send;
    /// Puts the index [`Publisher::put_index`] would put, by its digest
    /// alone, untagged; returns it pinned (`name@sha256:…`).
    fn put_index_untagged(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> impl Future<Output = Result<ImageRef, RegistryError>> + Send;
    /// Puts `to`'s tag on the manifest `from` names (pinned by digest).
    fn copy(
        &self,
        from: &ImageRef,
        to: &ImageRef,
    ) -> impl Future<Output = Result<Digest, RegistryError>> + Send;
    /// Puts an SBOM (`content`, in `format`, named `file_name`) beside the
    /// image `subject` names by digest, as a referrer of it.
    fn put_sbom(
        &self,
        subject: &ImageRef,
        format: strata_sbom::Format,
        file_name: &str,
        content: Vec<u8>,
    ) -> impl Future<Output = Result<Digest, RegistryError>> + Send;
    /// Puts `to`'s tag on the manifest `from` (`name:tag@digest`) pins,
    /// once `from`'s tag is checked to still name it.
    fn tag_pinned(
        &self,
        from: &ImageRef,
        to: &ImageRef,
    ) -> impl Future<Output = Result<Digest, TagError>> + Send;
}

impl Publisher for strata_registry::Registry {
    async fn put_record(
        &self,
        target: &ImageRef,
        record: &EarlierBuild,
    ) -> Result<(), RegistryError> {
        // Serialising plain data cannot fail; were it to, nothing is put.
        let json = serde_json::to_string(record).map_err(|e| RegistryError::BadResponse {
            host: target.name().api_host().to_string(),
            what: format!("the record of {target}"),
            problem: e.to_string(),
        })?;
        let annotations = BTreeMap::from([(EarlierBuild::ANNOTATION.to_string(), json)]);
        strata_registry::put_note(self, target, EarlierBuild::ARTIFACT_TYPE, &annotations)
            .await
            .map(|_| ())
    }

    async fn put_index(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> Result<Digest, RegistryError> {
        strata_registry::put_index(self, target, images).await
    }

    async fn put_index_untagged(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> Result<ImageRef, RegistryError> {
        strata_registry::put_index_untagged(self, target, images).await
    }

    async fn copy(&self, from: &ImageRef, to: &ImageRef) -> Result<Digest, RegistryError> {
        strata_registry::Registry::copy(self, from, to)
            .await
            .map(|c| c.digest)
    }

    async fn tag_pinned(&self, from: &ImageRef, to: &ImageRef) -> Result<Digest, TagError> {
        strata_registry::tag_pinned(self, from, to).await
    }

    async fn put_sbom(
        &self,
        subject: &ImageRef,
        format: strata_sbom::Format,
        file_name: &str,
        content: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let artifact = strata_registry::referrers::Artifact {
            artifact_type: format.media_type(),
            file_name,
            content,
            annotations: BTreeMap::new(),
        };
        strata_registry::referrers::put_referrer(self, subject, artifact).await
    }
}

/// What a run covered, which decides what its end may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// It ran one image of the plan (`--only`, a job of a job graph).
    pub one_image: bool,
    /// It ran some of the spec's platforms only (`--platform`).
    pub some_platforms: bool,
}

impl Coverage {
    /// A run of the whole range: it may tag the images it did not build.
    pub fn whole_range(self) -> bool {
        !self.one_image && !self.some_platforms
    }
}

/// The run, as its end needs it.
#[derive(Clone, Copy)]
pub struct RunEnd<'r> {
    /// The plan run.
    pub plan: &'r Plan,
    /// What happened.
    pub record: &'r RunRecord,
    /// Where each image the run does not rebuild stood when the run was
    /// planned, by `(image, plan)`: `name:tag@digest`.
    pub published: &'r BTreeMap<(String, String), String>,
    /// What the run covered.
    pub coverage: Coverage,
    /// The commit built (`<sha>-dirty` for a working tree's changes).
    pub revision: &'r str,
    /// The run's output folder, whose manifests the records carry.
    pub out_dir: &'r Path,
    /// Signs each index and SBOM put, when the run signs.
    pub signer: Option<&'r dyn Signer>,
}

/// One thing the run's end did, or failed to do.
#[derive(Debug)]
pub enum Published {
    /// The record of what an image's build left, beside it.
    Record {
        /// Where it was put (`name:inputs-<hex>.record`).
        reference: String,
        /// Whether it was.
        result: Result<(), RegistryError>,
    },
    /// A multi-platform image's index under the run's tag.
    Index {
        /// The run's reference of the image.
        reference: String,
        /// How many platforms it lists.
        platforms: usize,
        /// Its digest.
        result: Result<Digest, RegistryError>,
    },
    /// An image reused from the same inputs, given the run's tag.
    Reused {
        /// The run's reference of the image.
        reference: String,
        /// The image reused (`name:inputs-<hex>@sha256:…`).
        from: String,
        /// The digest the run's tag names.
        result: Result<Digest, RegistryError>,
    },
    /// An image's SBOM (one platform's, for a multi-platform image), beside
    /// it as a referrer of its digest.
    Sbom {
        /// The image's reference (its platform's).
        reference: String,
        /// The SBOM artifact's digest.
        result: Result<Digest, RegistryError>,
    },
    /// The signature of an SBOM put beside an image.
    Signature {
        /// The image's reference (its platform's).
        reference: String,
        /// What was signed (`name@sha256:…`).
        signed: String,
        /// Whether the signature was put.
        result: Result<(), RegistryError>,
    },
    /// An image the run did not rebuild, given the run's tag.
    Unchanged {
        /// The run's reference of the image.
        reference: String,
        /// The digest the run's tag names.
        result: Result<Digest, TagError>,
    },
}

impl Published {
    /// The run's reference this is about, when the run's tag failed to
    /// name it, or an artifact of it could not be signed: the tag then
    /// does not name the whole stack, signed. A record that could not be
    /// put, or an unchanged image published nowhere, leaves the tag whole.
    pub fn untagged(&self) -> Option<&str> {
        match self {
            Published::Index {
                reference,
                result: Err(_),
                ..
            }
            | Published::Reused {
                reference,
                result: Err(_),
                ..
            }
            | Published::Signature {
                reference,
                result: Err(_),
                ..
            } => Some(reference),
            Published::Unchanged {
                reference,
                result: Err(e),
            } if !matches!(e, TagError::NotPublished) => Some(reference),
            _ => None,
        }
    }
}

/// Publishes the run's end (see the module documentation), in order:
/// records, indexes, then the run's tag on what it did not build.
pub async fn publish<P: Publisher>(registry: &P, end: &RunEnd<'_>) -> Vec<Published> {
    let mut done = Vec::new();
    for (reference, record) in records(end) {
        let result = match reference.parse::<ImageRef>() {
            Ok(target) => registry.put_record(&target, &record).await,
            Err(e) => Err(e.into()),
        };
        done.push(Published::Record { reference, result });
    }
    for (reference, subject, format, path) in sboms(end) {
        let result = match std::fs::read(&path) {
            Ok(content) => {
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                registry
                    .put_sbom(&subject, format, &file_name, content)
                    .await
            }
            Err(e) => Err(RegistryError::Client(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        };
        let signing = match (&result, end.signer) {
            (Ok(digest), Some(signer)) => {
                Some((signer, subject.name().with_digest(digest.clone())))
            }
            _ => None,
        };
        done.push(Published::Sbom {
            reference: reference.clone(),
            result,
        });
        if let Some((signer, signed)) = signing {
            done.push(Published::Signature {
                reference,
                result: signer.sign(&signed).await,
                signed: signed.to_string(),
            });
        }
    }
    if !end.coverage.some_platforms {
        for image in end
            .record
            .images
            .iter()
            .filter(|i| i.success && !i.platforms.is_empty())
        {
            let result = match index_of(image) {
                Ok((target, images)) => match end.signer {
                    Some(signer) => put_signed_index(registry, signer, &target, &images).await,
                    None => registry.put_index(&target, &images).await,
                },
                Err(e) => Err(e),
            };
            done.push(Published::Index {
                reference: image.reference.clone(),
                platforms: image.platforms.len(),
                result,
            });
        }
    }
    if !(end.record.success && end.coverage.whole_range()) {
        return done;
    }
    // A multi-platform image's tag names its index, put above.
    for image in end.record.images.iter().filter(|i| {
        i.platforms.is_empty() && matches!(i.outcome, Outcome::Reused | Outcome::Resumed)
    }) {
        // Reused from a registry: pinned by digest (offline, an image ID).
        let Some(from) = image
            .reused
            .as_deref()
            .and_then(|r| r.parse::<ImageRef>().ok())
            .filter(|r| r.digest().is_some())
        else {
            continue;
        };
        let result = match image.reference.parse::<ImageRef>() {
            Ok(to) => registry.copy(&from, &to).await,
            Err(e) => Err(e.into()),
        };
        done.push(Published::Reused {
            reference: image.reference.clone(),
            from: from.to_string(),
            result,
        });
    }
    for b in end.plan.builds.iter().filter(|b| !b.rebuild) {
        let result = match end.published.get(&(b.image.clone(), b.plan.clone())) {
            None => Err(TagError::NotPublished),
            Some(from) => match (from.parse::<ImageRef>(), b.reference.parse::<ImageRef>()) {
                (Ok(from), Ok(to)) => tag_unchanged(registry, end.signer, &from, &to).await,
                (Err(e), _) | (_, Err(e)) => Err(TagError::Reference(e)),
            },
        };
        done.push(Published::Unchanged {
            reference: b.reference.clone(),
            result,
        });
    }
    done
}

/// Gives an image the run did not rebuild the run's tag at the digest it
/// was planned with (`from`, `name:tag@digest`), signed first as it was
/// published when the run signs: the run's tag never names an unsigned
/// image, though an earlier run made it without the key.
async fn tag_unchanged<P: Publisher>(
    registry: &P,
    signer: Option<&dyn Signer>,
    from: &ImageRef,
    to: &ImageRef,
) -> Result<Digest, TagError> {
    if let Some(signer) = signer {
        let pinned = match from.digest() {
            Some(digest) => from.name().with_digest(digest.clone()),
            None => from.clone(),
        };
        signer.sign_published(&pinned).await?;
    }
    registry.tag_pinned(from, to).await
}

/// Puts an index by its digest, signs it, then tags it: the run's tag
/// never names an unsigned index.
async fn put_signed_index<P: Publisher>(
    registry: &P,
    signer: &dyn Signer,
    target: &ImageRef,
    images: &[PlatformImage],
) -> Result<Digest, RegistryError> {
    let pinned = registry.put_index_untagged(target, images).await?;
    signer.sign(&pinned).await?;
    registry.copy(&pinned, target).await
}

/// The SBOMs the run's manifest stages wrote for images it built and
/// pushed: each image's (each platform's) reference, its pushed digest, and
/// the file.
fn sboms(end: &RunEnd<'_>) -> Vec<(String, ImageRef, strata_sbom::Format, std::path::PathBuf)> {
    let artifacts = end.out_dir.join("artifacts");
    let mut out = Vec::new();
    for i in end
        .record
        .images
        .iter()
        .filter(|i| i.success && i.outcome == Outcome::Built)
    {
        for made in i.made_images() {
            let (reference, digest) = (made.reference, made.digest);
            let (Ok(image), Some(Ok(digest))) = (
                reference.parse::<ImageRef>(),
                digest.map(str::parse::<Digest>),
            ) else {
                continue;
            };
            for format in [strata_sbom::Format::Spdx, strata_sbom::Format::CycloneDx] {
                let path = crate::stages::sbom_path(&artifacts, reference, format);
                if path.is_file() {
                    let subject = image.name().with_digest(digest.clone());
                    out.push((reference.to_string(), subject, format, path));
                }
            }
        }
    }
    out
}

/// The index of a multi-platform image's pushed platforms: its target and
/// each platform's image pinned by digest.
fn index_of(image: &ImageResult) -> Result<(ImageRef, Vec<PlatformImage>), RegistryError> {
    let target: ImageRef = image.reference.parse()?;
    let mut images = Vec::with_capacity(image.platforms.len());
    for p in &image.platforms {
        let pushed: ImageRef = p.reference.parse()?;
        let digest: Digest = p
            .digest
            .as_deref()
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(pushed.clone()),
            })?
            .parse()?;
        images.push(PlatformImage {
            platform: p.platform.parse()?,
            manifest: pushed.name().with_digest(digest),
        });
    }
    Ok((target, images))
}

/// The record of each image this run built, or reused and tested again:
/// where it goes (`name:inputs-<hex>.record`) and what it says. Test
/// outputs are left out: names, times and outcomes are what a later run
/// reports.
pub fn records(end: &RunEnd<'_>) -> Vec<(String, EarlierBuild)> {
    let tested_here = |i: &ImageResult| {
        i.stages
            .iter()
            .any(|s| s.stage == Stage::BasicTests.name() && s.status == Status::Ok)
    };
    let mut records = Vec::new();
    for i in end
        .record
        .images
        .iter()
        .filter(|i| i.success && (i.outcome == Outcome::Built || tested_here(i)))
    {
        let Ok(reference) = i.reference.parse::<ImageRef>() else {
            continue;
        };
        let Some(tests) = i
            .stages
            .iter()
            .find(|s| s.stage == Stage::BasicTests.name())
        else {
            continue;
        };
        // Each platform's image has its own key and record; its cases are
        // named after it (`linux/arm64: checks.yaml`), which its record
        // leaves out.
        for made in i.made_images() {
            let (image_ref, key, platform) = (made.reference, made.inputs, made.platform);
            let Some(key) = key else { continue };
            let prefix = platform.map(|p| format!("{p}: ")).unwrap_or_default();
            let cases = tests
                .tests
                .iter()
                .filter_map(|c| {
                    Some(strata_report::junit::TestCase {
                        classname: c.classname.strip_prefix(&prefix)?.to_string(),
                        output: String::new(),
                        ..c.clone()
                    })
                })
                .collect();
            let manifests = recorded_manifest(end.out_dir, image_ref)
                .map(|m| (image_ref.to_string(), m))
                .into_iter()
                .collect();
            records.push((
                format!(
                    "{}:{}",
                    reference.name(),
                    strata_core::inputs::record_tag(key)
                ),
                EarlierBuild {
                    reference: image_ref.to_string(),
                    revision: end.revision.to_string(),
                    finished: end.record.finished.clone(),
                    cases,
                    test_key: i.test_key.clone(),
                    manifests,
                    duration_secs: Some(i.duration_secs).filter(|d| d.is_finite()),
                },
            ));
        }
    }
    records
}

/// The manifest files the run wrote for `reference`.
fn recorded_manifest(out: &Path, reference: &str) -> Option<RecordedManifest> {
    let stem = strata_report::ref_file_stem(reference);
    let read = |ext: &str| {
        std::fs::read_to_string(out.join("manifests").join(format!("{stem}.{ext}"))).ok()
    };
    Some(RecordedManifest {
        json: read("json")?,
        markdown: read("md")?,
    })
}
