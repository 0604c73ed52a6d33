//! Image configs read from the registry: the platform an image is for, the
//! labels its build gave it and its image ID, without pulling a layer.

use crate::{Registry, RegistryError};
use std::collections::BTreeMap;
use strata_core::platform::Platform;
use strata_core::reference::ImageRef;

/// The most an image config may weigh.
const MAX_CONFIG_BYTES: usize = 4 * 1024 * 1024;

/// What strata reads of an image's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageConfig {
    /// The image's own manifest, pinned by digest (`name@sha256:…`): for a
    /// platform of an index, that platform's.
    pub manifest: ImageRef,
    /// Its platform as its config states it.
    pub platform: Platform,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// Its image ID: the config's digest.
    pub id: strata_core::reference::Digest,
    /// `rootfs.diff_ids`: its layers, bottom first, as an image built on
    /// it starts.
    pub layers: Vec<String>,
}

impl ImageConfig {
    /// Whether it is an image of `wanted` (a missing variant on either side
    /// matches any, as registries and engines treat it).
    pub fn is_for(&self, wanted: &Platform) -> bool {
        let variant_matches = match (&wanted.variant, &self.platform.variant) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        };
        self.platform.os == wanted.os && self.platform.arch == wanted.arch && variant_matches
    }
}

/// The config of each image `reference` names: one for an image manifest,
/// each platform's for an index (in the index's order).
///
/// # Errors
/// The registry's; nothing at `reference` is [`RegistryError::NotFound`].
pub async fn image_configs(
    registry: &Registry,
    reference: &ImageRef,
) -> Result<Vec<ImageConfig>, RegistryError> {
    let manifest = registry.existing_manifest(reference).await?;
    match manifest.contents() {
        crate::manifest::Contents::Image { .. } => {
            Ok(vec![config_of(registry, reference, &manifest).await?])
        }
        crate::manifest::Contents::Index { manifests } => {
            let mut configs = Vec::with_capacity(manifests.len());
            for entry in manifests {
                let pinned = reference.name().with_digest(entry.digest.clone());
                let image = registry.existing_manifest(&pinned).await?;
                configs.push(config_of(registry, &pinned, &image).await?);
            }
            Ok(configs)
        }
    }
}

/// The image ID (config digest) of each image `reference` names: under
/// `""` for an image manifest, by platform for an index (one request per
/// platform; entries that name no platform are left out).
///
/// # Errors
/// The registry's; nothing at `reference` is [`RegistryError::NotFound`].
pub async fn image_ids(
    registry: &Registry,
    reference: &ImageRef,
) -> Result<strata_core::plan::ImageIds, RegistryError> {
    let manifest = registry.existing_manifest(reference).await?;
    let mut ids = strata_core::plan::ImageIds::new();
    match manifest.contents() {
        crate::manifest::Contents::Image { config, .. } => {
            ids.insert(String::new(), config.digest.to_string());
        }
        crate::manifest::Contents::Index { manifests } => {
            for entry in manifests {
                let Some(platform) = &entry.platform else {
                    continue;
                };
                let pinned = reference.name().with_digest(entry.digest.clone());
                if let crate::manifest::Contents::Image { config, .. } =
                    registry.existing_manifest(&pinned).await?.contents()
                {
                    ids.insert(platform.clone(), config.digest.to_string());
                }
            }
        }
    }
    Ok(ids)
}

/// The config of the image manifest `manifest` (found at `reference`).
pub(crate) async fn config_of(
    registry: &Registry,
    reference: &ImageRef,
    manifest: &crate::Manifest,
) -> Result<ImageConfig, RegistryError> {
    let crate::manifest::Contents::Image { config, .. } = manifest.contents() else {
        return Err(RegistryError::BadManifest {
            reference: reference.to_string(),
            problem: crate::manifest::ManifestError::BadField(
                "an index of indexes: each entry of an index must be an image".to_string(),
            ),
        });
    };
    let bytes = registry
        .get_blob(reference.name(), &config.digest, MAX_CONFIG_BYTES)
        .await?
        .ok_or_else(|| RegistryError::NotFound {
            reference: Box::new(reference.clone()),
        })?;
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(rename = "Labels", default)]
        labels: Option<BTreeMap<String, String>>,
    }
    #[derive(serde::Deserialize, Default)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        rootfs: RootFs,
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        variant: Option<String>,
        #[serde(default)]
        config: Option<Inner>,
    }
    let found: Config = serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadResponse {
        host: reference.name().api_host().to_string(),
        what: format!("the image config of {reference}"),
        problem: e.to_string(),
    })?;
    Ok(ImageConfig {
        manifest: reference.name().with_digest(manifest.digest().clone()),
        platform: Platform {
            os: found.os,
            arch: found.architecture,
            variant: found.variant,
        },
        labels: found.config.and_then(|c| c.labels).unwrap_or_default(),
        id: config.digest.clone(),
        layers: found.rootfs.diff_ids,
    })
}
