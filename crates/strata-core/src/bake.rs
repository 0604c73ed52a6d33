//! The plan as a `docker-bake.json` for `docker buildx bake` on remote
//! BuildKit builders (`strata plan --format bake`): one target per image
//! and plan the run builds, a child pointed through a named context at its
//! parent's target, or at its published parent pinned by digest
//! (`docker-image://…@sha256:…`); one group per plan and `default` for all.

use crate::plan::{BaseSource, Plan};
use serde_json::{Map, Value, json};

/// The bake target name of an image in a plan: `<plan>-<image>`, with
/// characters bake does not take made `-`.
pub fn target_name(image: &str, plan: &str) -> String {
    crate::jobs::job_id(image, plan, None)
}

/// The bake file of `plan`: `images_dir` is the images folder relative to
/// where bake runs (the repository's root: `images`).
pub fn bake_file(plan: &Plan, images_dir: &str) -> Value {
    let mut targets = Map::new();
    let mut groups: Map<String, Value> = Map::new();
    let mut all = Vec::new();
    for b in plan.rebuilds() {
        let name = target_name(&b.image, &b.plan);
        let context = if images_dir.is_empty() {
            b.image.clone()
        } else {
            format!("{images_dir}/{}", b.image)
        };
        let mut target = json!({
            "context": context,
            "dockerfile": "Dockerfile",
            "args": b.build_args,
            "tags": [b.reference],
            "labels": {
                "org.opencontainers.image.revision": plan.head,
                "org.opencontainers.image.version": b.tag,
                "io.strata.image": b.image,
                "io.strata.plan": b.plan,
            },
        });
        if !b.platforms.is_empty() {
            target["platforms"] = json!(b.platforms);
        }
        // A parent built in the same bake: its FROM (the parent's ref in
        // this run, as the base arg makes it) is served by its target.
        if b.base_source == Some(BaseSource::ThisRun)
            && let (Some(parent), Some(base)) = (&b.parent, &b.base_ref)
        {
            target["contexts"] =
                json!({ base: format!("target:{}", target_name(parent, &b.plan)) });
        }
        // A published parent: its FROM names the parent's tag (the base arg
        // without the digest), which the context pins by digest.
        if b.base_source == Some(BaseSource::Registry)
            && let Some((tagged, digest)) = b.base_ref.as_deref().and_then(|r| r.split_once('@'))
        {
            target["contexts"] = json!({ tagged: format!("docker-image://{tagged}@{digest}") });
            if let Some(arg) = &b.base_arg
                && let Some((tag, _)) = b.build_args.get(arg).and_then(|v| v.split_once('@'))
            {
                target["args"][arg] = json!(tag);
            }
        }
        if let Some(plan_targets) = groups
            .entry(b.plan.clone())
            .or_insert_with(|| json!({ "targets": [] }))["targets"]
            .as_array_mut()
        {
            plan_targets.push(json!(name));
        }
        all.push(json!(name));
        targets.insert(name, target);
    }
    groups.insert("default".into(), json!({ "targets": all }));
    json!({ "group": groups, "target": targets })
}
