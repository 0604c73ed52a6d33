//! The input key of a build: a digest of everything that decides an
//! image's bytes up to timestamps, so that strata never builds the same
//! inputs twice.
//!
//! The key covers, in this order of a canonical JSON document:
//! - `context`: the image folder's content: `git-tree:<oid>` when the folder
//!   is as committed, `files:sha256:<hex>` of its files otherwise;
//! - `dockerfile`: the Dockerfile's path in the folder;
//! - `build_args`: the effective build args, without the base arg (whose
//!   value names the parent's tag, which changes with every commit);
//! - `base`: the base image's digest (or, when the base is only local, its
//!   image ID); nothing for a root;
//! - `platform` (`linux/amd64`) and `builder` (`buildkit`, `classic`).
//!
//! Nothing else: not the commit, its message, the tag or the time, so a
//! merge commit of a branch's images finds them. It is written on the image
//! as [`LABEL`] and, in a registry, as the tag [`reuse_tag`] beside the
//! run's tags, which a later run looks up with one request per image.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The label holding an image's input key.
pub const LABEL: &str = "io.strata.inputs";

/// The prefix of the registry tag naming an image by its input key.
pub const TAG_PREFIX: &str = "inputs-";

/// What a build's key is made of, except its base (known only once the
/// parent is built or found).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputParts {
    /// `git-tree:<oid>` or `files:sha256:<hex>`.
    pub context: String,
    /// The Dockerfile's path in the folder.
    pub dockerfile: String,
    /// The effective build args, without the base arg.
    pub build_args: BTreeMap<String, String>,
    /// `os/arch`.
    pub platform: String,
    /// `buildkit` or `classic`.
    pub builder: String,
}

/// The input key (`sha256:<hex>`) of `parts` built on `base` (the base's
/// digest or image ID; `None` for a root).
pub fn key(parts: &InputParts, base: Option<&str>) -> String {
    // serde_json writes struct fields in declaration order and maps in key
    // order: the document, so the key, is canonical.
    let document = serde_json::json!({
        "version": 1,
        "context": parts.context,
        "dockerfile": parts.dockerfile,
        "build_args": parts.build_args,
        "base": base,
        "platform": parts.platform,
        "builder": parts.builder,
    });
    let digest = Sha256::digest(document.to_string().as_bytes());
    format!("sha256:{}", hex(&digest))
}

/// The key (`sha256:<hex>`) of what an image's basic tests run: each file
/// of its test folders and of the pytest configuration beside them, by its
/// path relative to the images folder, in path order. An image reused from
/// an earlier build skips its tests only when they ran with this key: a
/// change to `tests_common/`, `conftest.py` or an inherited test makes it
/// test again, though its bytes (its input key) are the same.
pub fn test_key(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"strata test inputs v1\0");
    for (path, bytes) in files {
        hasher.update((path.len() as u64).to_be_bytes());
        hasher.update(path.as_bytes());
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}

/// The registry tag naming an image by its key: `inputs-<hex>`.
pub fn reuse_tag(key: &str) -> String {
    format!("{TAG_PREFIX}{}", key.strip_prefix("sha256:").unwrap_or(key))
}

/// The registry tag of the record of what the build of an image of key
/// `key` left (the tests it passed, its manifest): `inputs-<hex>.record`,
/// beside its reuse tag.
pub fn record_tag(key: &str) -> String {
    format!("{}.record", reuse_tag(key))
}

/// An image already built from a build's inputs, which a run reuses
/// instead of building: parsed once, where it is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReuseFrom {
    /// In a registry, pinned by digest (`name:inputs-<hex>@sha256:…`).
    Registry(crate::reference::ImageRef),
    /// Offline, in the local image store, by image ID (`sha256:…`).
    Local(String),
}

impl ReuseFrom {
    /// The registry image `reference` pins; `None` when it names no digest
    /// (a tag alone could move under the run).
    pub fn pinned(reference: crate::reference::ImageRef) -> Option<ReuseFrom> {
        reference
            .digest()
            .is_some()
            .then_some(ReuseFrom::Registry(reference))
    }

    /// The digest it stands at in its registry; `None` offline.
    pub fn digest(&self) -> Option<&crate::reference::Digest> {
        match self {
            ReuseFrom::Registry(r) => r.digest(),
            ReuseFrom::Local(_) => None,
        }
    }
}

impl std::fmt::Display for ReuseFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReuseFrom::Registry(r) => write!(f, "{r}"),
            ReuseFrom::Local(id) => f.write_str(id),
        }
    }
}

/// Written as the plan's JSON contract has it: the reference or the ID.
impl serde::Serialize for ReuseFrom {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The platform of the machine strata runs on, as the engine names it
/// (`linux/amd64`): the default target of a local engine.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    };
    format!("linux/{arch}")
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keys_change_with_any_path_or_byte() {
        let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            pairs
                .iter()
                .map(|(p, b)| (p.to_string(), b.as_bytes().to_vec()))
                .collect()
        };
        let base = test_key(&files(&[("conftest.py", "x"), ("a/test/t.py", "y")]));
        assert!(base.starts_with("sha256:"));
        assert_eq!(
            base,
            test_key(&files(&[("a/test/t.py", "y"), ("conftest.py", "x")]))
        );
        for other in [
            files(&[("conftest.py", "x"), ("a/test/t.py", "z")]),
            files(&[("conftest.py", "x"), ("a/test/u.py", "y")]),
            files(&[("conftest.py", "x")]),
            // Path and content boundaries cannot be traded.
            files(&[("conftest.p", "yx"), ("a/test/t.py", "y")]),
        ] {
            assert_ne!(base, test_key(&other), "{other:?}");
        }
    }

    fn parts() -> InputParts {
        InputParts {
            context: "git-tree:0123".into(),
            dockerfile: "Dockerfile".into(),
            build_args: BTreeMap::from([("PY".into(), "3.11".into())]),
            platform: "linux/amd64".into(),
            builder: "buildkit".into(),
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let k = key(&parts(), Some("sha256:base"));
        assert_eq!(k, key(&parts(), Some("sha256:base")));
        assert!(k.starts_with("sha256:") && k.len() == 71, "{k}");
        assert_eq!(reuse_tag(&k), format!("inputs-{}", &k[7..]));
        assert!(reuse_tag(&k).len() <= crate::reference::MAX_TAG_LEN);
    }

    #[test]
    fn each_input_changes_the_key() {
        let base = key(&parts(), Some("sha256:base"));
        let changed: Vec<(&str, String)> = vec![
            ("context", {
                let mut p = parts();
                p.context = "git-tree:4567".into();
                key(&p, Some("sha256:base"))
            }),
            ("dockerfile", {
                let mut p = parts();
                p.dockerfile = "other/Dockerfile".into();
                key(&p, Some("sha256:base"))
            }),
            ("a build arg's value", {
                let mut p = parts();
                p.build_args.insert("PY".into(), "3.12".into());
                key(&p, Some("sha256:base"))
            }),
            ("another build arg", {
                let mut p = parts();
                p.build_args.insert("EXTRA".into(), String::new());
                key(&p, Some("sha256:base"))
            }),
            ("platform", {
                let mut p = parts();
                p.platform = "linux/arm64".into();
                key(&p, Some("sha256:base"))
            }),
            ("builder", {
                let mut p = parts();
                p.builder = "classic".into();
                key(&p, Some("sha256:base"))
            }),
            ("base", key(&parts(), Some("sha256:other"))),
            ("no base", key(&parts(), None)),
        ];
        for (what, k) in &changed {
            assert_ne!(*k, base, "{what} did not change the key");
        }
        let mut all: Vec<&String> = changed.iter().map(|(_, k)| k).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), changed.len(), "two inputs gave one key");
    }

    #[test]
    fn an_arg_value_cannot_pose_as_another_arg() {
        let mut a = parts();
        a.build_args = BTreeMap::from([("A".into(), "1\",\"B\":\"2".into())]);
        let mut b = parts();
        b.build_args = BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]);
        assert_ne!(key(&a, None), key(&b, None));
    }

    #[test]
    fn the_host_platform_is_an_engine_platform() {
        assert!(host_platform().starts_with("linux/"));
        assert!(!host_platform().contains("x86_64"));
    }
}
