//! What the executor's tests share: a plan of a small stack, made by the
//! real planner.

use std::collections::BTreeMap;
use strata_core::changes::{self, ChangeRules, ChangeSet, Reason};
use strata_core::graph::Graph;
use strata_core::plan::{self, Plan, PlanOptions, Published, PublishedLookup};
use strata_core::spec::{ImageSpec, PlanSpec};
use strata_exec::Target;

/// root → a → c, root → b.
pub const STACK: &str = "\
images:
  root: {image_name: t/root}
  a: {image_name: t/a, depend_on: root}
  b: {image_name: t/b, depend_on: root}
  c: {image_name: t/c, depend_on: a}
tag: {prefix: '1'}
";

struct NothingPublished;

impl PublishedLookup for NothingPublished {
    fn lookup(&mut self, _: &ImageSpec, _: &PlanSpec, _: Option<&str>) -> Published {
        Published::Missing
    }
}

/// Every image of `stack`, rebuilt.
pub fn plan_of(stack: &str) -> (Plan, Vec<Target>) {
    let spec = strata_core::spec::parse(stack, "spec.yml")
        .spec
        .unwrap_or_else(|| panic!("the test stack parses"));
    let graph = Graph::new(&spec).unwrap_or_else(|_| panic!("the test stack is a graph"));
    let rules = ChangeRules::default();
    let detected = changes::detect(
        &spec,
        &ChangeSet {
            images_dir: "images",
            paths: &[],
            uncommitted: &BTreeMap::new(),
            commits: &[],
            rules: &rules,
            old_spec: None,
            forced: Some(Reason::All),
        },
    );
    let options = PlanOptions {
        head: "0123456789abcdef".into(),
        suffix: "0123456".into(),
        ..PlanOptions::default()
    };
    let plan = plan::plan(&spec, &graph, &detected, &options, &mut NothingPublished);
    let targets = strata_exec::targets(&plan, &spec, None, &BTreeMap::new());
    (plan, targets)
}
