//! The planner's unit tests.

use super::*;
use crate::changes::{ChangeRules, ChangeSet, Commit, detect};
use crate::spec;

const STACK: &str = "\
images:
  root: {image_name: ghcr.io/o/root, build_args: {PY: '3.11'}}
  mid: {image_name: ghcr.io/o/mid, depend_on: root}
  leaf: {image_name: ghcr.io/o/leaf, depend_on: mid}
  side: {image_name: ghcr.io/o/side, depend_on: root}
tag: {prefix: '2024.1'}
";

struct Map(BTreeMap<String, Published>, Vec<String>);
impl PublishedLookup for Map {
    fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec, _: Option<&str>) -> Published {
        self.1.push(image.name().to_string());
        self.0
            .get(image.name())
            .cloned()
            .unwrap_or(Published::Missing)
    }
}

/// The spec of `text`, its graph, and what a one-commit range of
/// `paths` with commit `head` and `message` changes in it.
fn detected(
    text: &str,
    paths: &[String],
    head: &str,
    message: &str,
) -> (spec::Spec, Graph, crate::changes::Detected) {
    let spec = spec::parse(text, "spec.yml").spec.unwrap();
    let graph = Graph::new(&spec).unwrap();
    let commits = vec![Commit {
        sha: head.into(),
        message: message.into(),
    }];
    let rules = ChangeRules::default();
    let set = ChangeSet {
        images_dir: "images",
        paths,
        uncommitted: &BTreeMap::new(),
        commits: &commits,
        rules: &rules,
        old_spec: None,
        forced: None,
    };
    let detected = detect(&spec, &set);
    (spec, graph, detected)
}

fn make(text: &str, paths: &[&str], lookup: &mut dyn PublishedLookup) -> Plan {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let (spec, graph, detected) = detected(text, &paths, "1234567abc", "m");
    let options = PlanOptions {
        head: "1234567abc".into(),
        suffix: "1234567".into(),
        changed_files: paths.clone(),
        ..PlanOptions::default()
    };
    plan(&spec, &graph, &detected, &options, lookup)
}

fn summary(p: &Plan) -> Vec<(String, String)> {
    p.builds
        .iter()
        .map(|b| (b.image.clone(), b.reason.to_string()))
        .collect()
}

#[test]
fn a_changed_middle_image_rebuilds_with_its_descendants_on_the_published_root() {
    let mut lookup = Map(
        BTreeMap::from([(
            "root".into(),
            Published::At("ghcr.io/o/root:2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000".into()),
        )]),
        vec![],
    );
    let p = make(STACK, &["images/mid/Dockerfile"], &mut lookup);
    assert_eq!(
        summary(&p),
        [
            ("root".into(), "unchanged".into()),
            ("mid".into(), "images/mid/Dockerfile".into()),
            ("leaf".into(), "parent rebuilt (mid)".into()),
            ("side".into(), "unchanged".into()),
        ]
    );
    let mid = p.build("mid", "default").unwrap();
    assert_eq!(
        mid.base_ref.as_deref(),
        Some(
            "ghcr.io/o/root:2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        )
    );
    assert_eq!(
        mid.build_args["BASE_TAG"],
        "2024.1-abcdef0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
    );
    let leaf = p.build("leaf", "default").unwrap();
    assert_eq!(
        leaf.base_ref.as_deref(),
        Some("ghcr.io/o/mid:2024.1-1234567")
    );
    assert_eq!(leaf.build_args["BASE_TAG"], "2024.1-1234567");
    assert_eq!(lookup.1, ["root"]);
}

/// Reuses the images named in `.0`, recording each key asked for;
/// those whose run reference is in `.2` already carry it (resumed).
struct Reuse(BTreeSet<&'static str>, Vec<(String, String)>, Vec<String>);
impl PublishedLookup for Reuse {
    fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec, _: Option<&str>) -> Published {
        match image.name() {
            "root" => Published::At("ghcr.io/o/root:2024.1-aaaaaaa@sha256:r00t".into()),
            _ => Published::Missing,
        }
    }
    fn reusable(&mut self, image: &ImageSpec, key: &str, run_reference: &str) -> Option<Reusable> {
        self.1.push((image.name().to_string(), key.to_string()));
        self.0.contains(image.name()).then(|| Reusable {
            reference: reused_at(image.name()),
            image_id: format!("sha256:{}", image.name()),
            resumed: self.2.iter().any(|r| r == run_reference),
        })
    }
    /// The published root is an index of two platforms.
    fn image_ids(&mut self, reference: &str) -> Option<ImageIds> {
        (reference == "ghcr.io/o/root:2024.1-aaaaaaa@sha256:r00t").then(|| {
            ImageIds::from([
                ("linux/amd64".to_string(), "sha256:root-amd64".to_string()),
                ("linux/arm64".to_string(), "sha256:root-arm64".to_string()),
            ])
        })
    }
}

/// Where the fake registry has `image` built from the same inputs.
fn reused_at(image: &str) -> inputs::ReuseFrom {
    let hex: String = image.bytes().map(|b| format!("{b:02x}")).collect();
    format!("ghcr.io/o/{image}:inputs-x@sha256:{hex:0<64}")
        .parse()
        .ok()
        .and_then(inputs::ReuseFrom::pinned)
        .unwrap_or_else(|| panic!("the fake's reference of {image} parses"))
}

fn reuse_plan(
    message: &str,
    head: &str,
    reusable: &[&'static str],
) -> (Plan, Vec<(String, String)>) {
    reuse_plan_tagged(message, head, reusable, &[])
}

/// [`reuse_plan`] where the references in `tagged` are in the registry
/// at the reusable image already.
fn reuse_plan_tagged(
    message: &str,
    head: &str,
    reusable: &[&'static str],
    tagged: &[&str],
) -> (Plan, Vec<(String, String)>) {
    let paths = vec!["images/mid/Dockerfile".to_string()];
    let (spec, graph, detected) = detected(STACK, &paths, head, message);
    let options = PlanOptions {
        head: head.into(),
        suffix: head[..7].into(),
        changed_files: paths.clone(),
        contexts: spec
            .image_keys()
            .map(|k| (k.to_string(), format!("git-tree:{k}")))
            .collect(),
        platform: "linux/amd64".into(),
        builder: "buildkit".into(),
        reuse: true,
        ..PlanOptions::default()
    };
    let mut lookup = Reuse(
        reusable.iter().copied().collect(),
        Vec::new(),
        tagged.iter().map(|r| r.to_string()).collect(),
    );
    let p = plan(&spec, &graph, &detected, &options, &mut lookup);
    (p, lookup.1)
}

#[test]
fn a_reused_parent_lets_its_child_be_reused_on_its_image_id() {
    let (p, asked) = reuse_plan("m", "1234567abc", &["mid", "leaf"]);
    let mid = p.build("mid", "default").unwrap();
    assert_eq!(mid.reuse, Some(reused_at("mid")));
    assert_eq!(
        mid.reason.to_string(),
        format!(
            "same inputs as {} (images/mid/Dockerfile)",
            reused_at("mid")
        )
    );
    assert!(mid.rebuild);
    let leaf = p.build("leaf", "default").unwrap();
    assert!(leaf.reuse.is_some());
    // The child's key is made on the reused parent's image ID.
    let expected = inputs::key(&leaf.input_parts, Some("sha256:mid"));
    assert_eq!(leaf.inputs.as_deref(), Some(expected.as_str()));
    assert_eq!(
        asked.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>(),
        ["mid", "leaf"]
    );
    // The base arg (the parent's tag) is not an input; the image ID of the
    // base for the platform built is.
    assert!(!mid.input_parts.build_args.contains_key(DEFAULT_BASE_ARG));
    assert_eq!(
        mid.inputs.as_deref(),
        Some(inputs::key(&mid.input_parts, Some("sha256:root-amd64")).as_str())
    );
    // Unchanged images are never looked up.
    assert!(p.build("root", "default").unwrap().reuse.is_none());
}

#[test]
fn an_image_already_carrying_the_runs_tag_is_resumed() {
    let (p, _) = reuse_plan_tagged(
        "m",
        "1234567abc",
        &["mid", "leaf"],
        &["ghcr.io/o/mid:2024.1-1234567"],
    );
    let mid = p.build("mid", "default").unwrap();
    assert!(mid.resumed);
    assert_eq!(
        mid.reason.to_string(),
        format!(
            "already built and tested under this run's tag: {} (images/mid/Dockerfile)",
            reused_at("mid")
        )
    );
    // Reused, but not tagged by this run yet: not resumed.
    let leaf = p.build("leaf", "default").unwrap();
    assert!(leaf.reuse.is_some() && !leaf.resumed);
}

#[test]
fn a_parent_built_for_real_leaves_its_child_without_a_key() {
    let (p, asked) = reuse_plan("m", "1234567abc", &["leaf"]);
    assert!(p.build("mid", "default").unwrap().reuse.is_none());
    let leaf = p.build("leaf", "default").unwrap();
    assert_eq!((leaf.inputs.as_ref(), leaf.reuse.as_ref()), (None, None));
    assert_eq!(asked.len(), 1, "{asked:?}");
}

#[test]
fn the_key_ignores_the_commit_its_message_and_the_tag() {
    let (a, _) = reuse_plan("one", "1234567abc", &[]);
    let (b, _) = reuse_plan("another", "89abcdef01", &[]);
    let key = |p: &Plan| p.build("mid", "default").unwrap().inputs.clone();
    assert!(key(&a).is_some());
    assert_eq!(key(&a), key(&b));
    assert_ne!(
        a.build("mid", "default").unwrap().tag,
        b.build("mid", "default").unwrap().tag
    );
}

#[test]
fn a_full_rebuild_message_builds_for_real() {
    let (p, asked) = reuse_plan(
        "full rebuild please",
        "1234567abc",
        &["root", "mid", "leaf"],
    );
    assert!(asked.is_empty(), "{asked:?}");
    assert!(p.builds.iter().all(|b| b.reuse.is_none()));
    assert_eq!(p.rebuilds().count(), 4);
    assert!(p.build("root", "default").unwrap().inputs.is_some());
}

#[test]
fn an_unpublished_parent_is_built_too() {
    let p = make(STACK, &["images/leaf/x"], &mut Map(BTreeMap::new(), vec![]));
    assert_eq!(
        summary(&p),
        [
            ("root".into(), "parent not published (needed by mid)".into()),
            ("mid".into(), "parent not published (needed by leaf)".into()),
            ("leaf".into(), "images/leaf/x".into()),
            // Its parent is built only for mid: side stays as it is.
            ("side".into(), "unchanged".into()),
        ]
    );
}

#[test]
fn a_local_image_of_the_parent_pins_the_child_by_image_id() {
    let mut lookup = Map(
        BTreeMap::from([(
            "root".into(),
            Published::Local {
                reference: "ghcr.io/o/root:2024.1-abcdef0".into(),
                id: "sha256:1111".into(),
            },
        )]),
        vec![],
    );
    let p = make(STACK, &["images/side/x"], &mut lookup);
    let side = p.build("side", "default").unwrap();
    assert!(side.rebuild);
    assert!(!p.build("root", "default").unwrap().rebuild);
    assert_eq!(
        side.base_ref.as_deref(),
        Some("ghcr.io/o/root:2024.1-abcdef0")
    );
    assert_eq!(side.base_source, Some(BaseSource::Local));
    assert_eq!(side.base_image_id.as_deref(), Some("sha256:1111"));
    assert_eq!(side.build_args["BASE_TAG"], "2024.1-abcdef0");
    assert!(
        !side.build_args.contains_key("PY"),
        "a parent's args are not inherited: {:?}",
        side.build_args
    );
}

#[test]
fn with_no_image_of_the_parent_anywhere_the_parent_is_built_in_the_same_run() {
    let p = make(STACK, &["images/side/x"], &mut Map(BTreeMap::new(), vec![]));
    let root = p.build("root", "default").unwrap();
    assert_eq!(
        root.reason.to_string(),
        "parent not published (needed by side)"
    );
    let side = p.build("side", "default").unwrap();
    assert_eq!(side.base_source, Some(BaseSource::ThisRun));
    assert_eq!(side.base_ref.as_deref(), Some(root.reference.as_str()));
    assert_eq!(side.build_args["BASE_TAG"], root.tag);
    assert_eq!(root.base_source, None);
}

#[test]
fn tags_refs_and_args_follow_plans() {
    let text = include_str!("../../../../fixtures/specs/v1-two-plans.spec.yml");
    let p = make(
        text,
        &["images/datahub-base-notebook/Dockerfile"],
        &mut Map(BTreeMap::new(), vec![]),
    );
    let got: Vec<_> = p
        .builds
        .iter()
        .map(|b| (b.plan.as_str(), b.image.as_str(), b.reference.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "PYTHON39",
                "datahub-base-notebook",
                "davidzz/datahub-base-notebook:2021.3-1234567"
            ),
            (
                "PYTHON39",
                "datascience-notebook",
                "davidzz/datascience-notebook:2021.3-1234567"
            ),
            (
                "PYTHON38",
                "datahub-base-notebook",
                "davidzz/datahub-base-notebook:2021.2-1234567"
            ),
            (
                "PYTHON38",
                "datascience-notebook",
                "davidzz/datascience-notebook:2021.2-1234567"
            ),
            (
                "PYTHON38",
                "scipy-ml-notebook",
                "davidzz/scipy-ml-notebook:2021.2-1234567"
            ),
        ]
    );
    let base38 = p.build("datahub-base-notebook", "PYTHON38").unwrap();
    assert_eq!(base38.build_args["PY_VER_SHORT"], "3.8");
    assert_eq!(base38.build_args["placeholder"], "test_XXX");
    let ds = p.build("datascience-notebook", "PYTHON38").unwrap();
    assert_eq!(ds.build_args["BASE_TAG"], "2021.2-1234567");
}

#[test]
fn cli_args_win_and_dockerfile_base_args_are_used() {
    let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
    let graph = Graph::new(&spec).unwrap();
    let detected = Detected {
        full: Some(Reason::All),
        ..Detected::default()
    };
    let mut options = PlanOptions {
        suffix: "main".into(),
        ..PlanOptions::default()
    };
    options.cli_args.insert("PY".into(), "3.12".into());
    options.dockerfiles.insert(
        "mid".into(),
        crate::dockerfile::base_of("ARG PARENT\nFROM ${PARENT}\n").unwrap(),
    );
    options.dockerfiles.insert(
        "side".into(),
        crate::dockerfile::base_of("FROM ghcr.io/o/root:fixed\n").unwrap(),
    );
    let p = plan(
        &spec,
        &graph,
        &detected,
        &options,
        &mut Map(BTreeMap::new(), vec![]),
    );
    assert!(p.full_rebuild);
    assert_eq!(p.build("root", "default").unwrap().build_args["PY"], "3.12");
    assert_eq!(
        p.build("mid", "default").unwrap().build_args["PARENT"],
        "ghcr.io/o/root:2024.1-main"
    );
    let side = p.build("side", "default").unwrap();
    assert_eq!(side.build_args.keys().collect::<Vec<_>>(), ["PY"]);
    assert_eq!(side.reason.to_string(), "--all");
}

#[test]
fn suffixes_never_make_promotion_tags() {
    let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
    assert_eq!(
        tag_suffix(&spec, &SuffixSource::Hash("ABCDEF0123".into()), false).unwrap(),
        "abcdef0"
    );
    assert_eq!(
        tag_suffix(
            &spec,
            &SuffixSource::Branch("feature/New thing".into()),
            false
        )
        .unwrap(),
        "feature-New-thing"
    );
    assert!(matches!(
        tag_suffix(&spec, &SuffixSource::Branch("stable".into()), false),
        Err(SuffixError::PromotionTag { .. })
    ));
    assert!(matches!(
        tag_suffix(&spec, &SuffixSource::Branch("///".into()), false),
        Err(SuffixError::Unusable(_)) | Err(SuffixError::PromotionTag { .. })
    ));
    assert!(tag_suffix(&spec, &SuffixSource::Hash("zz".into()), false).is_err());
}

#[test]
fn long_branch_names_still_make_valid_tags() {
    let spec = spec::parse(STACK, "spec.yml").spec.unwrap();
    let suffix = tag_suffix(&spec, &SuffixSource::Branch("b".repeat(200)), false).unwrap();
    let tag = format!("2024.1-{suffix}");
    assert_eq!(tag.len(), MAX_TAG_LEN);
    assert!(tag.parse::<Tag>().is_ok(), "{tag}");
    assert_eq!(
        tag_suffix(&spec, &SuffixSource::Branch("main".into()), false).unwrap(),
        "main"
    );
}

#[test]
fn tag_part_keeps_digests_and_ports() {
    assert_eq!(tag_part("127.0.0.1:5000/o/p:2024.1-abc"), "2024.1-abc");
    assert_eq!(
        tag_part("o/p:t@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
        "t@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    );
    assert_eq!(
        tag_part(
            "127.0.0.1:5000/o/p@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        ),
        "@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
    );
    assert_eq!(tag_part("o/p"), "latest");
}

/// A lookup where the roots' base stands at `now` and each published image
/// recorded `recorded`, noting the tags of the refresh marker it was asked
/// with.
struct Bases {
    now: Option<ExternalBase>,
    recorded: RecordedBase,
    refresh_asked: Vec<Option<String>>,
}
impl PublishedLookup for Bases {
    fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec, refresh: Option<&str>) -> Published {
        self.refresh_asked.push(refresh.map(str::to_string));
        Published::At(format!(
            "ghcr.io/o/{}:2024.1-1234567@sha256:{}",
            image.name(),
            "0".repeat(64)
        ))
    }
    fn external_base(&mut self, _: &str, _: &[String]) -> Option<ExternalBase> {
        self.now.clone()
    }
    fn recorded_base(&mut self, _: &Published, _: &str) -> Option<RecordedBase> {
        Some(self.recorded.clone())
    }
}

fn plan_bases(lookup: &mut Bases, bases: bool, paths: &[&str]) -> Plan {
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let (spec, graph, detected) = detected(STACK, &paths, "1234567abc", "m");
    let options = PlanOptions {
        head: "1234567abc".into(),
        suffix: "1234567".into(),
        changed_files: paths,
        platform: "linux/amd64".into(),
        bases,
        dockerfiles: BTreeMap::from([(
            "root".to_string(),
            crate::dockerfile::base_of("ARG V=24.04\nFROM ubuntu:$V\n").unwrap(),
        )]),
        ..PlanOptions::default()
    };
    plan(&spec, &graph, &detected, &options, lookup)
}

fn ubuntu(digest: &str, id: &str) -> ExternalBase {
    ExternalBase {
        reference: "ubuntu:24.04".into(),
        digest: Some(digest.into()),
        ids: ImageIds::from([(String::new(), id.into())]),
        layers: Default::default(),
    }
}

#[test]
fn under_bases_a_moved_base_rebuilds_its_root_and_descendants_under_new_tags() {
    let mut lookup = Bases {
        now: Some(ubuntu("sha256:new", "sha256:idnew")),
        recorded: RecordedBase {
            digest: Some("sha256:old".into()),
            id: Some("sha256:idold".into()),
        },
        refresh_asked: vec![],
    };
    let p = plan_bases(&mut lookup, true, &[]);
    assert_eq!(
        summary(&p),
        [
            (
                "root".into(),
                "base ubuntu:24.04 moved sha256:old → sha256:new".into()
            ),
            ("mid".into(), "parent rebuilt (root)".into()),
            ("leaf".into(), "parent rebuilt (mid)".into()),
            ("side".into(), "parent rebuilt (root)".into()),
        ]
    );
    let marker = refresh_marker([&ubuntu("sha256:new", "sha256:idnew")], "linux/amd64").unwrap();
    for b in &p.builds {
        assert_eq!(
            b.tag,
            format!("2024.1-1234567-base-{marker}"),
            "{}",
            b.image
        );
        assert_eq!(b.refresh.as_deref(), Some(marker.as_str()));
    }
    // The published root was looked for first under the refreshed tag.
    assert_eq!(lookup.refresh_asked, [Some(marker.clone())]);
    let root = p.build("root", "default").unwrap();
    assert_eq!(
        root.external_base,
        Some(ubuntu("sha256:new", "sha256:idnew"))
    );

    // The root's key is made on its base: another base, another key.
    let key = root.inputs.clone();
    assert!(key.is_some());
    lookup.now = Some(ubuntu("sha256:other", "sha256:idother"));
    let other = plan_bases(&mut lookup, true, &[]);
    assert_ne!(other.build("root", "default").unwrap().inputs, key);
}

#[test]
fn a_base_where_it_was_recorded_or_a_plan_without_bases_rebuilds_nothing() {
    let mut lookup = Bases {
        now: Some(ubuntu("sha256:same", "sha256:id")),
        recorded: RecordedBase {
            digest: Some("sha256:same".into()),
            id: Some("sha256:id".into()),
        },
        refresh_asked: vec![],
    };
    let p = plan_bases(&mut lookup, true, &[]);
    assert!(p.builds.iter().all(|b| !b.rebuild), "{:?}", summary(&p));
    assert!(p.builds.iter().all(|b| b.tag == "2024.1-1234567"));
    lookup.recorded.digest = Some("sha256:old".into());
    let p = plan_bases(&mut lookup, false, &[]);
    assert!(p.builds.iter().all(|b| !b.rebuild), "{:?}", summary(&p));
    // A change rebuilds as ever, on the base as it stands now; the
    // commit's own tag holds a build on the old base, so the new one is
    // tagged for its bases.
    let p = plan_bases(&mut lookup, false, &["images/root/Dockerfile"]);
    let root = p.build("root", "default").unwrap();
    assert_eq!(root.reason.to_string(), "images/root/Dockerfile");
    let marker = refresh_marker([&ubuntu("sha256:same", "sha256:id")], "linux/amd64").unwrap();
    assert_eq!(root.tag, format!("2024.1-1234567-base-{marker}"));
    assert_eq!(
        root.inputs,
        Some(inputs::key(&root.input_parts, Some("sha256:id")))
    );
    // Where it stands on the bases its build recorded, the commit's tag.
    lookup.recorded.digest = Some("sha256:same".into());
    let p = plan_bases(&mut lookup, false, &["images/root/Dockerfile"]);
    assert_eq!(p.build("root", "default").unwrap().tag, "2024.1-1234567");
}

#[test]
fn a_base_that_cannot_be_found_leaves_the_root_keyed_without_it() {
    let mut lookup = Bases {
        now: None,
        recorded: RecordedBase::default(),
        refresh_asked: vec![],
    };
    let p = plan_bases(&mut lookup, true, &["images/root/Dockerfile"]);
    let root = p.build("root", "default").unwrap();
    assert_eq!(root.external_base, None);
    assert_eq!(root.inputs, Some(inputs::key(&root.input_parts, None)));
    assert_eq!(root.tag, "2024.1-1234567");
    assert_eq!(root.reason.to_string(), "images/root/Dockerfile");
}

#[test]
fn a_commit_already_refreshed_keeps_its_refreshed_tag() {
    let now = ubuntu("sha256:new", "sha256:idnew");
    let marker = refresh_marker([&now], "linux/amd64").unwrap();
    /// The root refreshed under `<tag>-base-<marker>` on the new base; the
    /// commit's own tag built on the old one.
    struct Refreshed(String);
    impl PublishedLookup for Refreshed {
        fn lookup(&mut self, image: &ImageSpec, _: &PlanSpec, refresh: Option<&str>) -> Published {
            let tag = match refresh {
                Some(r) => format!("2024.1-1234567-base-{r}"),
                None => "2024.1-1234567".to_string(),
            };
            Published::At(format!(
                "ghcr.io/o/{}:{tag}@sha256:{}",
                image.name(),
                "1".repeat(64)
            ))
        }
        fn external_base(&mut self, _: &str, _: &[String]) -> Option<ExternalBase> {
            Some(ubuntu("sha256:new", "sha256:idnew"))
        }
        fn recorded_base(&mut self, at: &Published, _: &str) -> Option<RecordedBase> {
            let refreshed = matches!(at, Published::At(r) if r.contains(&self.0));
            Some(RecordedBase {
                digest: Some(
                    if refreshed {
                        "sha256:new"
                    } else {
                        "sha256:old"
                    }
                    .into(),
                ),
                id: None,
            })
        }
    }
    for (bases, paths) in [(true, &[][..]), (false, &["images/root/Dockerfile"][..])] {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        let (spec, graph, detected) = detected(STACK, &paths, "1234567abc", "m");
        let options = PlanOptions {
            head: "1234567abc".into(),
            suffix: "1234567".into(),
            platform: "linux/amd64".into(),
            bases,
            dockerfiles: BTreeMap::from([(
                "root".to_string(),
                crate::dockerfile::base_of("FROM ubuntu:24.04\n").unwrap(),
            )]),
            ..PlanOptions::default()
        };
        let p = plan(
            &spec,
            &graph,
            &detected,
            &options,
            &mut Refreshed(marker.clone()),
        );
        for b in &p.builds {
            // Tagging the commit's own tag would give it other content.
            assert_eq!(b.tag, format!("2024.1-1234567-base-{marker}"));
            assert!(b.rebuild, "{bases}: {:?}", summary(&p));
        }
        // Under --bases, what a job of the run (or a rerun) finds built
        // is still what the run is for, saying why: its children too.
        let root = p.build("root", "default").unwrap().reason.to_string();
        let expected = if bases {
            "base ubuntu:24.04 moved sha256:old → sha256:new"
        } else {
            "images/root/Dockerfile"
        };
        assert_eq!(root, expected);
    }
}
