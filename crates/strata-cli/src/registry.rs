//! The registry side of the CLI: credentials for pushes, where unchanged
//! parents are published, and the run's tag for images it did not rebuild.

use crate::failure::Failure;
use crate::output::Reporter;
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_core::plan::{Published, PublishedLookup};
use strata_core::reference::{ImageName, ImageRef};
use strata_core::spec::{ImageSpec, PlanSpec};
use strata_engine::RegistryAuth;
use strata_exec::AuthFor;
use strata_registry::{Credentials, Registry, RegistryError, RegistryOptions};

/// Push credentials from the Docker config (and its helpers), per registry.
pub fn auth_for(reporter: Reporter) -> AuthFor {
    Arc::new(
        move |registry: &str| match strata_registry::credentials_for_registry(registry) {
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
        },
    )
}

/// A registry client with the environment's settings.
pub fn client() -> Result<Registry, Failure> {
    Registry::new(RegistryOptions::default()).map_err(|e| Failure::env(e.to_string()))
}

/// Where an image's most recent published tag for a plan is, searched in
/// the order of [`strata_core::plan::tag_candidates`] over
/// [`crate::planning::lookup_suffixes`], the first found winning, and
/// pinned by digest.
pub struct RegistryLookup {
    runtime: tokio::runtime::Runtime,
    registry: Registry,
    suffixes: Vec<String>,
    tags: BTreeMap<String, Option<Vec<String>>>,
    /// The first registry failure; the plan cannot be trusted after one.
    pub error: Option<RegistryError>,
}

impl RegistryLookup {
    /// A lookup trying `suffixes` (see the type's documentation) in order.
    /// A failure is kept in `error`: the plan cannot be trusted after one.
    pub fn new(suffixes: Vec<String>) -> Result<RegistryLookup, Failure> {
        let runtime = crate::runtime()?;
        Ok(RegistryLookup {
            runtime,
            registry: client()?,
            suffixes,
            tags: BTreeMap::new(),
            error: None,
        })
    }

    fn published(
        &mut self,
        name: &ImageName,
        image_name: &str,
        plan: &PlanSpec,
    ) -> Result<Published, RegistryError> {
        let key = name.to_string();
        if !self.tags.contains_key(&key) {
            let listed = match self.runtime.block_on(self.registry.list_tags(name)) {
                Ok(tags) => Some(tags),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            self.tags.insert(key.clone(), listed);
        }
        let Some(Some(tags)) = self.tags.get(&key) else {
            return Ok(Published::Missing);
        };
        for tag in strata_core::plan::tag_candidates(plan, &self.suffixes) {
            if !tags.contains(&tag) {
                continue;
            }
            let Ok(reference) = format!("{name}:{tag}").parse::<ImageRef>() else {
                continue;
            };
            if let Some(info) = self
                .runtime
                .block_on(self.registry.head_manifest(&reference))?
            {
                return Ok(Published::At(format!("{image_name}:{tag}@{}", info.digest)));
            }
        }
        Ok(Published::Missing)
    }
}

impl PublishedLookup for RegistryLookup {
    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec) -> Published {
        if self.error.is_some() {
            return Published::Missing;
        }
        // A valid spec gives every image a valid name.
        let Some(image_name) = image.image_name.as_ref().map(|n| n.value.clone()) else {
            return Published::Missing;
        };
        let Ok(name) = image_name.parse::<ImageName>() else {
            return Published::Missing;
        };
        match self.published(&name, &image_name, plan) {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e);
                Published::Missing
            }
        }
    }
}

/// Why an unchanged image did not get the run's tag.
pub enum TagError {
    /// It is published nowhere, so there is nothing to tag.
    NotPublished(String),
    /// The registry failed to tag it.
    Registry(String),
}

/// After a run that pushed: gives every image of the stack that the run did
/// not rebuild the run's tag, at the digest it stands at (the one its
/// children were built on), so the tag names a complete, consistent stack.
pub async fn tag_unchanged(
    registry: &Registry,
    plan: &strata_core::plan::Plan,
    published: &BTreeMap<(String, String), String>,
) -> Vec<(String, Result<String, TagError>)> {
    let mut out = Vec::new();
    for b in plan.builds.iter().filter(|b| !b.rebuild) {
        let Some(from) = published.get(&(b.image.clone(), b.plan.clone())) else {
            out.push((
                b.reference.clone(),
                Err(TagError::NotPublished(
                    "not published anywhere; the tag does not cover it".into(),
                )),
            ));
            continue;
        };
        let result = match (from.parse::<ImageRef>(), b.reference.parse::<ImageRef>()) {
            (Ok(from), Ok(to)) => registry
                .copy(&from, &to)
                .await
                .map(|c| c.digest.to_string())
                .map_err(|e| TagError::Registry(e.to_string())),
            (Err(e), _) | (_, Err(e)) => Err(TagError::Registry(e.to_string())),
        };
        out.push((b.reference.clone(), result));
    }
    out
}
