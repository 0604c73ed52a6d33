//! strata's OCI registry adapter.
//!
//! A small async client of the OCI distribution API ([`Registry`]) for what
//! strata does in a registry: read, write and copy manifests by tag and by
//! digest, list tags, and promote a set of tags all-or-nothing
//! ([`Registry::promote`]) without pulling or pushing a layer.
//!
//! Credentials come from the Docker config ([`DockerConfig`], including
//! `credsStore` and `credHelpers`); [`credentials_for_registry`] hands them to
//! other crates (e.g. for `docker push` through the engine). Secrets are
//! wrapped in [`Secret`], which never prints its value.
//!
//! The stack's registry rules live here too: where a parent is published
//! ([`PublishedTags`]) and whole-stack tagging ([`tag_unchanged`]).
//!
//! Signatures in cosign's layout (`sha256-<hex>.sig`) are stored and read
//! by [`signatures`].
//!
//! With the `test-support` feature, [`testing`] starts a real
//! `docker-registry` on loopback for tests.

mod auth;
mod client;
mod config;
mod credentials;
mod error;
pub mod manifest;
mod note;
mod promote;
pub mod referrers;
mod secret;
pub mod signatures;
mod stack;

#[cfg(feature = "test-support")]
pub mod testing;

pub use client::{
    Copied, CredentialSource, INSECURE_REGISTRIES_ENV, MAX_TAG_PAGES, Registry, RegistryOptions,
    RetryPolicy, insecure_registries_from_env, uses_plain_http,
};
pub use config::{ImageConfig, image_configs, image_ids};
pub use credentials::{
    CredentialError, Credentials, DockerConfig, HELPER_TIMEOUT, credentials_for_registry,
};
pub use error::RegistryError;
pub use manifest::{Manifest, ManifestInfo};
pub use note::{get_note, put_note};
pub use promote::{Move, Moved, PromotionError, PromotionReport};
pub use secret::Secret;
pub use stack::{
    MovedTo, PlatformImage, PublishedTags, TagError, put_index, put_index_untagged, tag_pinned,
    tag_unchanged,
};
