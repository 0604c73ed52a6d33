//! Offline, where an unchanged parent stands in the local image store: the
//! same tags, in the same order, as the registry lookup searches, each
//! found one pinned by its image ID.

use std::collections::BTreeMap;
use strata_core::plan::{
    ExternalBase, ImageIds, Published, PublishedLookup, RecordedBase, Reusable, tag_candidates,
};
use strata_core::spec::{ImageSpec, PlanSpec};

/// Looks parents up in the local store (`--offline`). The engine is asked
/// once, on the first lookup (a plan that needs none never connects).
pub struct LocalLookup {
    suffixes: Vec<String>,
    /// Every `name:tag` of the local store with its image ID, once read.
    tags: Option<BTreeMap<String, String>>,
    /// The local store's images that carry an input key, once read.
    keyed: Option<Vec<strata_engine::LabelledImage>>,
    /// Why the local store could not be searched, if it could not: nothing
    /// is found then, so every parent a child needs is built in the run.
    pub unreachable: Option<String>,
}

impl LocalLookup {
    /// A lookup trying `suffixes` (see [`crate::planning::lookup_suffixes`])
    /// in the local store of the engine `DOCKER_HOST` names.
    pub fn new(suffixes: Vec<String>) -> LocalLookup {
        LocalLookup {
            suffixes,
            tags: None,
            keyed: None,
            unreachable: None,
        }
    }

    fn read_tags(&mut self) -> &BTreeMap<String, String> {
        let unreachable = &mut self.unreachable;
        self.tags.get_or_insert_with(|| {
            let listed = crate::runtime()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime.block_on(async {
                        let engine = crate::engine().await.map_err(|e| e.to_string())?;
                        engine.local_tags().await.map_err(|e| e.to_string())
                    })
                });
            listed.unwrap_or_else(|e| {
                *unreachable = Some(e);
                BTreeMap::new()
            })
        })
    }
}

/// What the local store's engine says of image `reference` (a name, a
/// tag or an ID, as `docker inspect` takes it), if it has it.
fn inspect(reference: &str) -> Option<strata_engine::ImageInfo> {
    crate::runtime().ok()?.block_on(async {
        let engine = crate::engine().await.ok()?;
        engine.inspect_image(reference).await.ok()?
    })
}

impl PublishedLookup for LocalLookup {
    /// Offline, a root's base is the image the local store has under its
    /// name (the engine names `ubuntu` and `docker.io/library/ubuntu:latest`
    /// alike), which the engine builds on for that image's own platform:
    /// by its image ID and layers, under that platform (another platform's
    /// build starts from other layers, which are not known here). A
    /// reference pinned by digest is fixed by the Dockerfile itself.
    fn external_base(&mut self, reference: &str, _: &[String]) -> Option<ExternalBase> {
        let pinned = reference
            .parse::<strata_core::reference::ImageRef>()
            .ok()?
            .digest()
            .is_some();
        let info = inspect(reference).filter(|_| !pinned)?;
        let platform = format!("{}/{}", info.os, info.architecture);
        Some(ExternalBase {
            reference: reference.to_string(),
            digest: None,
            ids: ImageIds::from([(platform.clone(), info.id)]),
            layers: BTreeMap::from([(platform, info.layers)]),
        })
    }

    fn recorded_base(&mut self, published: &Published, _: &str) -> Option<RecordedBase> {
        let Published::Local { id, .. } = published else {
            return None;
        };
        Some(RecordedBase::from_labels(&inspect(id)?.labels))
    }

    /// Offline, the newest image of the local store labelled with the key
    /// and carrying the key's `inputs-<hex>` tag in the image's repository,
    /// which a run puts on an image once its basic tests passed (as the
    /// registry's lookup looks in the image's own repository): an image
    /// built but never tested is not reused.
    fn reusable(&mut self, image: &ImageSpec, key: &str, run_reference: &str) -> Option<Reusable> {
        let unreachable = &mut self.unreachable;
        let keyed = self.keyed.get_or_insert_with(|| {
            let listed = crate::runtime()
                .map_err(|e| e.to_string())
                .and_then(|runtime| {
                    runtime.block_on(async {
                        let engine = crate::engine().await.map_err(|e| e.to_string())?;
                        engine
                            .images_by_label(strata_core::inputs::LABEL)
                            .await
                            .map_err(|e| e.to_string())
                    })
                });
            listed.unwrap_or_else(|e| {
                *unreachable = Some(e);
                Vec::new()
            })
        });
        let tested = format!(
            "{}:{}",
            image
                .image_name
                .as_ref()
                .map_or(image.name(), |n| n.value.as_str()),
            strata_core::inputs::reuse_tag(key)
        );
        keyed
            .iter()
            .find(|i| i.value == key && i.repo_tags.contains(&tested))
            .map(|i| Reusable {
                reference: strata_core::inputs::ReuseFrom::Local(i.id.clone()),
                image_id: i.id.clone(),
                resumed: i.repo_tags.iter().any(|t| t == run_reference),
            })
    }

    fn lookup(&mut self, image: &ImageSpec, plan: &PlanSpec, refresh: Option<&str>) -> Published {
        let name = image
            .image_name
            .as_ref()
            .map_or(image.name(), |n| n.value.as_str())
            .to_string();
        let candidates = tag_candidates(plan, &self.suffixes, refresh);
        let tags = self.read_tags();
        candidates
            .into_iter()
            .find_map(|tag| {
                let reference = format!("{name}:{tag}");
                tags.get(&reference).map(|id| Published::Local {
                    reference,
                    id: id.clone(),
                })
            })
            .unwrap_or(Published::Missing)
    }
}
