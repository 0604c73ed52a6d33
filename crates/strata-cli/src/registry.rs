//! The registry side of the CLI: credentials for pushes, the client with
//! the environment's settings, and planning's (blocking) view of
//! [`strata_registry::PublishedTags`].

use crate::failure::Failure;
use crate::output::Reporter;
use std::sync::Arc;
use strata_core::plan::{ExternalBase, Published, PublishedLookup, RecordedBase, Reusable};
use strata_core::reference::ImageRef;
use strata_core::spec::{ImageSpec, PlanSpec};
use strata_engine::RegistryAuth;
use strata_exec::AuthFor;
use strata_registry::{Credentials, PublishedTags, Registry, RegistryError, RegistryOptions};

/// Push credentials from the Docker config (and its helpers), per registry,
/// asked once per registry per run (a helper is a process, and may prompt
/// or wait on a keychain; it is stopped after
/// [`strata_registry::HELPER_TIMEOUT`]).
pub fn auth_for(reporter: Reporter) -> AuthFor {
    let asked: std::sync::Mutex<std::collections::HashMap<String, Option<RegistryAuth>>> =
        Default::default();
    Arc::new(move |registry: &str| {
        if let Some(known) = asked.lock().ok().and_then(|a| a.get(registry).cloned()) {
            return known;
        }
        let auth = match strata_registry::credentials_for_registry(registry) {
            Ok(Some(Credentials::Basic { username, password })) => {
                Some(RegistryAuth::basic(registry, username, password.expose()))
            }
            Ok(Some(Credentials::IdentityToken { token, .. })) => {
                Some(RegistryAuth::identity_token(registry, token.expose()))
            }
            Ok(None) => None,
            Err(e) => {
                reporter.note(&format!("warning: no credentials for {registry}: {e}"));
                None
            }
        };
        if let Ok(mut a) = asked.lock() {
            a.insert(registry.to_string(), auth.clone());
        }
        auth
    })
}

/// A registry client with the environment's settings.
pub fn client() -> Result<&'static Registry, Failure> {
    // One client for the whole command: planning's lookups, a job's parent
    // pins, the records and the run's end share its token cache.
    static CLIENT: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client =
        Registry::new(RegistryOptions::default()).map_err(|e| Failure::env(e.to_string()))?;
    Ok(CLIENT.get_or_init(|| client))
}

/// Where unchanged parents are published, for planning (which is not
/// async): [`strata_registry::PublishedTags`] on the process's runtime.
pub struct RegistryLookup {
    runtime: &'static tokio::runtime::Runtime,
    registry: &'static Registry,
    tags: PublishedTags,
    /// The first registry failure; the plan cannot be trusted after one.
    pub error: Option<RegistryError>,
    /// The first failure to look up an image to reuse: the plan is still
    /// right (those images are built), so it is a warning, and no more
    /// lookups of the kind are made.
    pub reuse_error: Option<RegistryError>,
    /// `--bases`: a root's base is asked of its registry even when the
    /// local store has an image under its name.
    fresh_bases: bool,
    /// The local store, where a root's base is looked for first otherwise.
    local: crate::local::LocalLookup,
    /// The roots' bases that could not be found, with why: their roots'
    /// keys are made without them, and `--bases` cannot tell if they moved.
    pub unresolved_bases: Vec<(String, String)>,
}

impl RegistryLookup {
    /// A lookup trying `suffixes` (see [`crate::planning::lookup_suffixes`])
    /// in order. A failure is kept in `error`.
    /// `fresh_bases` (`--bases`): roots' bases are asked of their
    /// registries, not found in the local store.
    pub fn new(suffixes: Vec<String>, fresh_bases: bool) -> Result<RegistryLookup, Failure> {
        Ok(RegistryLookup {
            runtime: crate::runtime()?,
            registry: client()?,
            tags: PublishedTags::new(suffixes),
            error: None,
            reuse_error: None,
            fresh_bases,
            local: crate::local::LocalLookup::new(Vec::new()),
            unresolved_bases: Vec::new(),
        })
    }
}

impl PublishedLookup for RegistryLookup {
    /// The image's `inputs-<hex>` tag, from the repository's tag list that
    /// the parent lookups read anyway: when it is there, its digest and its
    /// manifest (the image ID), however many tags the repository holds.
    fn reusable(&mut self, image: &ImageSpec, key: &str, run_reference: &str) -> Option<Reusable> {
        if self.error.is_some() || self.reuse_error.is_some() {
            return None;
        }
        let image_name = image.image_name.as_ref()?.value.as_str();
        let tag = strata_core::inputs::reuse_tag(key);
        let run_reference: strata_core::reference::ImageRef = run_reference.parse().ok()?;
        let run_tag = run_reference.tag()?.as_str();
        let found = self.runtime.block_on(async {
            let Some((reference, digest)) =
                self.tags.tagged(self.registry, image_name, &tag).await?
            else {
                return Ok(None);
            };
            // The run's own tag at the same digest: pushed by an earlier
            // attempt of this run (one more request, only when it exists).
            let resumed = self
                .tags
                .tagged(self.registry, image_name, run_tag)
                .await?
                .is_some_and(|(_, at)| at == digest);
            // `tagged` pins what it finds by digest.
            let Some(pinned) = reference.parse::<strata_core::reference::ImageRef>().ok() else {
                return Ok(None);
            };
            // A child's key is made on its image ID: one more request.
            let ids = strata_registry::image_ids(self.registry, &pinned).await?;
            let (Some(image_id), Some(reference)) = (
                ids.get("").cloned(),
                strata_core::inputs::ReuseFrom::pinned(pinned),
            ) else {
                return Ok(None);
            };
            Ok(Some(Reusable {
                reference,
                image_id,
                resumed,
            }))
        });
        match found {
            Ok(found) => found,
            Err(e) => {
                self.reuse_error = Some(e);
                None
            }
        }
    }

    /// A published parent's image IDs: one request for an image, one more
    /// per platform for an index. A failure only leaves the child's key to
    /// its build.
    fn image_ids(&mut self, reference: &str) -> Option<strata_core::plan::ImageIds> {
        let reference = reference.parse().ok()?;
        self.runtime
            .block_on(strata_registry::image_ids(self.registry, &reference))
            .ok()
    }

    /// The engine builds on the image its local store has under a root's
    /// base name (it prefers it to the registry's) when that image is of
    /// every platform the root is built for, so that is what the root's
    /// key is made on; otherwise the registry's digest (and each
    /// platform's image ID), and always under `--bases`.
    fn external_base(&mut self, reference: &str, platforms: &[String]) -> Option<ExternalBase> {
        if !self.fresh_bases
            && let Some(local) = self.local.external_base(reference, platforms)
            && platforms.iter().all(|p| local.id_for(p).is_some())
        {
            return Some(local);
        }
        let found = reference
            .parse::<ImageRef>()
            .map_err(|e| e.to_string())
            .and_then(|r| {
                self.runtime.block_on(async {
                    let head = self
                        .registry
                        .head_manifest(&r)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| "not in its registry".to_string())?;
                    let pinned = r.name().with_digest(head.digest.clone());
                    let configs = strata_registry::image_configs(self.registry, &pinned)
                        .await
                        .map_err(|e| e.to_string())?;
                    // Keyed as `ImageIds`: `""` for an image, by platform
                    // for an index.
                    let single = configs.len() == 1 && configs[0].manifest == pinned;
                    let key = |c: &strata_registry::ImageConfig| match single {
                        true => String::new(),
                        false => c.platform.to_string(),
                    };
                    Ok(ExternalBase {
                        reference: reference.to_string(),
                        digest: Some(head.digest.to_string()),
                        ids: configs.iter().map(|c| (key(c), c.id.to_string())).collect(),
                        layers: configs.iter().map(|c| (key(c), c.layers.clone())).collect(),
                    })
                })
            });
        match found {
            Ok(found) => Some(found),
            Err(why) => {
                self.unresolved_bases.push((reference.to_string(), why));
                None
            }
        }
    }

    /// The labels of the published image's config: for an index,
    /// `platform`'s image's (each platform's records the base's digest
    /// alike, but its own image ID), else the first's.
    fn recorded_base(&mut self, published: &Published, platform: &str) -> Option<RecordedBase> {
        let Published::At(reference) = published else {
            return None;
        };
        let reference: ImageRef = reference.parse().ok()?;
        let configs = self
            .runtime
            .block_on(strata_registry::image_configs(self.registry, &reference))
            .ok()?;
        let config = configs
            .iter()
            .find(|c| strata_core::platform::same(&c.platform.to_string(), platform))
            .or(configs.first())?;
        Some(RecordedBase::from_labels(&config.labels))
    }

    /// The lookup, its failure left out of the plan's: a run without read
    /// access to the registry still builds (and fails at its push).
    fn lookup_for_tag(
        &mut self,
        image: &ImageSpec,
        plan: &PlanSpec,
        refresh: Option<&str>,
    ) -> Published {
        let failed_before = self.error.is_some();
        let found = self.lookup(image, plan, refresh);
        if !failed_before {
            self.error = None;
        }
        found
    }

    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec, refresh: Option<&str>) -> Published {
        if self.error.is_some() {
            return Published::Missing;
        }
        // A valid spec gives every image a name.
        let Some(image_name) = image.image_name.as_ref().map(|n| n.value.as_str()) else {
            return Published::Missing;
        };
        match self.runtime.block_on(
            self.tags
                .published(self.registry, image_name, plan, refresh),
        ) {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e);
                Published::Missing
            }
        }
    }
}
