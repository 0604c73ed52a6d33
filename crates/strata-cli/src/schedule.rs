//! The schedule `strata build --dry-run` prints: each image of the run,
//! what it waits for and what it is built on.

use strata_exec::Target;

/// One image of the schedule `--dry-run` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Scheduled {
    image: String,
    plan: String,
    #[serde(rename = "ref")]
    reference: String,
    reason: String,
    /// Its parent in the stack.
    parent: Option<String>,
    /// How many images of this run it waits for, up its ancestry.
    level: usize,
    /// The parent built earlier in this run, which it waits for.
    after: Option<String>,
    /// What it is built on (`null` for a root).
    base_ref: Option<String>,
    /// Where the base comes from: `this_run`, `registry` (pinned by digest)
    /// or `local` (offline, pinned by image ID).
    base_source: Option<strata_core::plan::BaseSource>,
    /// The local image ID the base is pinned to.
    base_image_id: Option<String>,
    /// The test folders its test stages run.
    tests: strata_core::test_folders::TestFolders,
}

/// The schedule: each image with the image of this run it waits for.
pub(crate) fn schedule(targets: &[Target]) -> Vec<Scheduled> {
    let mut depth: std::collections::BTreeMap<(String, String), usize> = Default::default();
    let mut out = Vec::new();
    for t in targets {
        let wait = t
            .build
            .parent
            .as_ref()
            .and_then(|p| depth.get(&(p.clone(), t.build.plan.clone())).copied());
        let level = wait.map_or(0, |d| d + 1);
        depth.insert((t.build.image.clone(), t.build.plan.clone()), level);
        out.push(Scheduled {
            image: t.build.image.clone(),
            plan: t.build.plan.clone(),
            reference: t.build.reference.clone(),
            reason: t.build.reason.to_string(),
            parent: t.build.parent.clone(),
            level,
            after: wait.and(t.build.parent.clone()),
            base_ref: t.build.base_ref.clone(),
            base_source: t.build.base_source,
            base_image_id: t.build.base_image_id.clone(),
            tests: t.build.tests.clone(),
        });
    }
    out
}

/// The schedule as text: each image after the one it waits for.
pub(crate) fn schedule_text(schedule: &[Scheduled]) -> String {
    let mut out = String::new();
    for s in schedule {
        let after = match (&s.after, &s.base_ref, &s.base_image_id) {
            (Some(p), _, _) => format!("after {p}"),
            (None, Some(b), Some(id)) => format!("on local image {b} ({id})"),
            (None, Some(b), None) => format!("on {b}"),
            (None, None, _) if s.parent.is_some() => {
                // `--only` with a parent this run rebuilds but does not build.
                "on its parent of this run (not built by this run)".to_string()
            }
            (None, None, _) => "root".to_string(),
        };
        out.push_str(&format!(
            "{}{} [{}] {} — {}; {after}\n",
            "  ".repeat(s.level),
            s.image,
            s.plan,
            s.reference,
            s.reason
        ));
        if !s.tests.basic.is_empty() {
            out.push_str(&format!(
                "{}  tests: {}\n",
                "  ".repeat(s.level),
                s.tests.basic.join(", ")
            ));
        }
    }
    if schedule.is_empty() {
        out.push_str("nothing to build\n");
    }
    out
}
