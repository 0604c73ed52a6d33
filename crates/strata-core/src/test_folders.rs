//! Which test folders each image's test stages run: the inheritance rule.
//!
//! An image's basic tests are `tests_common/`, the `test/` of every
//! ancestor, parents first, and its own `test/`: what held for the parent
//! must hold for the child (the rule jupyter/docker-stacks uses).
//! `inherit_tests: false` on an image leaves its ancestors' folders out.
//! Its integration tests are its own `integration_tests/`.

use crate::spec::Spec;
use std::collections::BTreeSet;

/// The folder of tests every image runs.
pub const COMMON: &str = "tests_common";

/// The test folders of one image, relative to the images folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TestFolders {
    /// The basic tests' folders, in the order they run.
    pub basic: Vec<String>,
    /// The integration tests' folders.
    pub integration: Vec<String>,
}

/// The folders the rule names for `image`, whether they exist or not.
pub fn candidates(spec: &Spec, image: &str) -> TestFolders {
    let mut chain = vec![image.to_string()];
    let inherit = spec.image(image).is_none_or(|i| i.inherit_tests);
    if inherit {
        let mut current = spec.image(image).and_then(|i| i.parent());
        // A cyclic spec is refused by validation; the bound keeps this
        // function total all the same.
        while let Some(parent) = current.filter(|_| chain.len() <= spec.images.len()) {
            chain.push(parent.to_string());
            current = spec.image(parent).and_then(|i| i.parent());
        }
    }
    let basic = std::iter::once(COMMON.to_string())
        .chain(chain.iter().rev().map(|i| format!("{i}/test")))
        .collect();
    TestFolders {
        basic,
        integration: vec![format!("{image}/integration_tests")],
    }
}

/// Every folder the rule can name in `spec`: what the shell looks for.
pub fn all_candidates(spec: &Spec) -> BTreeSet<String> {
    spec.image_keys()
        .flat_map(|i| {
            let c = candidates(spec, i);
            c.basic.into_iter().chain(c.integration)
        })
        .collect()
}

/// The folders of `image` that exist (`existing` holds the folders found).
pub fn of_image(spec: &Spec, image: &str, existing: &BTreeSet<String>) -> TestFolders {
    let c = candidates(spec, image);
    let keep = |v: Vec<String>| v.into_iter().filter(|f| existing.contains(f)).collect();
    TestFolders {
        basic: keep(c.basic),
        integration: keep(c.integration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Spec {
        let parsed = crate::spec::parse(text, "spec.yml");
        assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);
        parsed.spec.unwrap()
    }

    const STACK: &str = "
images:
  base: {image_name: o/base}
  mid: {image_name: o/mid, depend_on: base}
  leaf: {image_name: o/leaf, depend_on: mid}
  alone: {image_name: o/alone, depend_on: base, inherit_tests: false}
  other: {image_name: o/other}
tag: {prefix: '1'}
";

    #[test]
    fn ancestors_tests_run_parents_first() {
        let s = spec(STACK);
        assert_eq!(
            candidates(&s, "leaf").basic,
            ["tests_common", "base/test", "mid/test", "leaf/test"]
        );
        assert_eq!(candidates(&s, "base").basic, ["tests_common", "base/test"]);
        assert_eq!(
            candidates(&s, "leaf").integration,
            ["leaf/integration_tests"]
        );
    }

    #[test]
    fn inherit_tests_false_keeps_only_its_own() {
        let s = spec(STACK);
        assert_eq!(
            candidates(&s, "alone").basic,
            ["tests_common", "alone/test"]
        );
    }

    #[test]
    fn unrelated_images_do_not_share_tests() {
        let s = spec(STACK);
        assert_eq!(
            candidates(&s, "other").basic,
            ["tests_common", "other/test"]
        );
    }

    #[test]
    fn only_existing_folders_are_kept() {
        let s = spec(STACK);
        let existing = BTreeSet::from(["base/test".to_string(), "leaf/integration_tests".into()]);
        let f = of_image(&s, "leaf", &existing);
        assert_eq!(f.basic, ["base/test"]);
        assert_eq!(f.integration, ["leaf/integration_tests"]);
        assert!(all_candidates(&s).contains("mid/test"));
        assert!(all_candidates(&s).contains(COMMON));
    }
}
