//! What is inside an image, without a scanner binary.
//!
//! [`inventory`] reads an image as the engine exports it (`docker save`'s
//! tar, streamed: memory holds only the package databases it finds, never a
//! layer) and lists every package the image's own package managers
//! recorded: Debian and Ubuntu (`/var/lib/dpkg/status`, `status.d/`),
//! Alpine (`/lib/apk/db/installed`), Python distributions (`*.dist-info`,
//! `*.egg-info` under any `site-packages` or `dist-packages`), conda
//! (`conda-meta/*.json`), R (`DESCRIPTION` of every package of an R
//! library) and npm globals (`lib/node_modules/*/package.json`), each with
//! the layer that added it. [`spdx`] and [`cyclonedx`] write the standard
//! documents; [`diff`] compares two inventories, and [`spdx::packages`]
//! reads one back from an SPDX document strata wrote.

pub mod cyclonedx;
pub mod diff;
mod layers;
mod metadata;
pub mod spdx;

pub use layers::{ImageInventory, inventory};

use serde::{Deserialize, Serialize};

/// Which package manager recorded a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// dpkg (Debian, Ubuntu).
    Deb,
    /// apk (Alpine).
    Apk,
    /// Python distributions (pip and others).
    Pypi,
    /// conda.
    Conda,
    /// R packages.
    Cran,
    /// npm, installed globally.
    Npm,
}

impl Ecosystem {
    /// Its purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Conda => "conda",
            Ecosystem::Cran => "cran",
            Ecosystem::Npm => "npm",
        }
    }
}

/// One package of an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    /// Its package manager.
    pub ecosystem: Ecosystem,
    /// Its name, as its package manager spells it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its package URL.
    pub purl: String,
    /// Its license, as its metadata states it, when it does.
    pub license: Option<String>,
    /// The diff ID (`sha256:…` of the uncompressed layer) of the layer that
    /// added it, when known.
    pub layer: Option<String>,
}

impl Package {
    /// What identifies it across two builds: ecosystem and name (an
    /// architecture-qualified deb is still one package).
    pub fn key(&self) -> (Ecosystem, &str) {
        (self.ecosystem, &self.name)
    }
}

/// A standard SBOM format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// SPDX 2.3 JSON.
    #[default]
    Spdx,
    /// CycloneDX 1.5 JSON.
    CycloneDx,
}

impl Format {
    /// The ending of its files' names (`<image>.spdx.json`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Spdx => "spdx.json",
            Format::CycloneDx => "cdx.json",
        }
    }

    /// Its media type: the `artifactType` of its registry artifact.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => spdx::MEDIA_TYPE,
            Format::CycloneDx => cyclonedx::MEDIA_TYPE,
        }
    }

    /// The format whose media type is `media_type`.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        [Format::Spdx, Format::CycloneDx]
            .into_iter()
            .find(|f| f.media_type() == media_type)
    }

    /// The document of `packages` in image `subject`.
    pub fn document(self, subject: &spdx::Subject<'_>, packages: &[Package]) -> Vec<u8> {
        match self {
            Format::Spdx => spdx::document(subject, packages),
            Format::CycloneDx => cyclonedx::document(subject, packages),
        }
    }

    /// The packages a document of this format lists.
    ///
    /// # Errors
    ///
    /// [`SbomError::Document`] when it is not such a document.
    pub fn packages(self, document: &[u8]) -> Result<Vec<Package>, SbomError> {
        match self {
            Format::Spdx => spdx::packages(document),
            Format::CycloneDx => cyclonedx::packages(document),
        }
    }
}

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SbomError {
    /// The exported image could not be read (a broken stream or tar).
    #[error("reading the exported image: {0}")]
    Read(#[from] std::io::Error),
    /// The export holds no `manifest.json`, or one that does not describe
    /// one image.
    #[error("the exported image has no usable manifest.json: {0}")]
    Manifest(String),
    /// A document that is not the SBOM strata writes.
    #[error("not an SPDX document strata can read: {0}")]
    Document(String),
}
