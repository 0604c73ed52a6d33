//! End-to-end tests of the `strata` binary (`plan`, `graph`, `validate`) on
//! real git repositories made with the `git` CLI in temporary directories.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

// ---------------------------------------------------------------- fixtures

const SPEC: &str = r#"root: base
images:
  base:
    image_name: ghcr.io/t/base
    build_args:
      PY: "3.11"
  mid:
    image_name: ghcr.io/t/mid
    depend_on: base
    build_args:
      TOOLS: ds
  side:
    image_name: ghcr.io/t/side
    depend_on: base
  leaf:
    image_name: ghcr.io/t/leaf
    depend_on: mid
tag:
  prefix: "2024.1"
"#;

/// ChangeIgnore is applied before BuildAll: `tests_common/README.md` is
/// ignored although `tests_common` is BuildAll.
const CHANGE_IGNORE: &str = r#"{
  "ChangeIgnore": ["conftest.py", "tests_common/README.md", "*/NOTES.md"],
  "BuildAll": ["tests_common", "spec.yml"]
}"#;

const IMAGES: [&str; 4] = ["base", "mid", "side", "leaf"];

fn dockerfile(image: &str) -> String {
    match image {
        "base" => "FROM scratch\nCOPY . /opt/base\n".into(),
        "leaf" => "ARG BASE_TAG\nFROM ghcr.io/t/mid:${BASE_TAG}\nCOPY . /opt/leaf\n".into(),
        other => format!("ARG BASE_TAG\nFROM ghcr.io/t/base:${{BASE_TAG}}\nCOPY . /opt/{other}\n"),
    }
}

/// A git repository in a temporary directory.
struct Repo {
    _tmp: TempDir,
    dir: PathBuf,
}

impl Repo {
    fn empty() -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        std::fs::create_dir(&dir).unwrap();
        let repo = Repo { _tmp: tmp, dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The main fixture, committed once on `main`.
    fn stack() -> Repo {
        let repo = Repo::stack_files(CHANGE_IGNORE);
        repo.commit("first");
        repo
    }

    /// The main fixture's files with the given change_ignore.json, uncommitted.
    fn stack_files(change_ignore: &str) -> Repo {
        let repo = Repo::empty();
        repo.write("images/spec.yml", SPEC);
        repo.write("images/change_ignore.json", change_ignore);
        repo.write("images/conftest.py", "import pytest\n");
        repo.write(
            "images/tests_common/test_common.py",
            "def test_x():\n    pass\n",
        );
        repo.write("images/tests_common/README.md", "shared tests\n");
        repo.write("README.md", "# a stack\n");
        for image in IMAGES {
            repo.write(&format!("images/{image}/Dockerfile"), &dockerfile(image));
            repo.write(
                &format!("images/{image}/test/test_{image}.py"),
                "def test_it():\n    pass\n",
            );
        }
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        git_in(&self.dir, args)
    }

    /// Commits everything; returns the new commit's sha.
    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Puts HEAD on a branch `name` at the current commit by writing the
    /// refs directly, so that names `git branch` refuses can be tried too.
    fn force_branch(&self, name: &str, sha: &str) {
        let git_dir = self.path(".git");
        let reference = git_dir.join("refs/heads").join(name);
        std::fs::create_dir_all(reference.parent().unwrap()).unwrap();
        std::fs::write(reference, format!("{sha}\n")).unwrap();
        std::fs::write(git_dir.join("HEAD"), format!("ref: refs/heads/{name}\n")).unwrap();
    }

    fn strata(&self) -> Command {
        strata_in(&self.dir)
    }

    /// `strata plan --offline --format json ARGS`, which must succeed.
    fn plan(&self, args: &[&str]) -> Value {
        parents_built_before();
        let mut cmd = self.strata();
        cmd.args(["plan", "--offline", "--format", "json"])
            .args(args);
        plan_of(&mut cmd)
    }
}

/// The test stack's images under their stable tags in the local store, once
/// per test binary: offline plans then find every parent there, so the tests
/// below see change detection alone (`an_offline_plan_*` see the rest).
fn parents_built_before() {
    static TAGGED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    TAGGED.get_or_init(|| {
        common::tag_locally(
            &IMAGES
                .map(|i| format!("ghcr.io/t/{i}:2024.1-stable"))
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
    });
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `strata -C dir`, isolated from the CI environment of the test run.
fn strata_in(dir: &Path) -> Command {
    let mut cmd = Command::from_std(common::strata(dir));
    cmd.timeout(Duration::from_secs(30));
    cmd
}

/// Runs a `plan --format json` command, checks exit 0 and the JSON
/// contract, and returns the parsed plan.
fn plan_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    check_contract(&plan);
    plan
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn is_sha(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Every key of the README's JSON contract is there, with its type, and
/// nothing else is.
fn check_contract(plan: &Value) {
    let obj = plan.as_object().expect("the plan is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "base",
            "builds",
            "changed_files",
            "dirty",
            "full_rebuild",
            "head"
        ],
        "{plan:#}"
    );
    assert!(is_sha(&plan["head"]), "head: {}", plan["head"]);
    assert!(
        plan["base"].is_null() || is_sha(&plan["base"]),
        "base: {}",
        plan["base"]
    );
    assert!(plan["full_rebuild"].is_boolean());
    assert!(plan["dirty"].is_boolean());
    let files = plan["changed_files"]
        .as_array()
        .expect("changed_files array");
    assert!(files.iter().all(Value::is_string), "{files:?}");
    for b in plan["builds"].as_array().expect("builds array") {
        let obj = b.as_object().expect("a build is an object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "base_image_id",
                "base_ref",
                "base_source",
                "build_args",
                "external_base",
                "image",
                "inputs",
                "parent",
                "per_platform",
                "plan",
                "platforms",
                "reason",
                "rebuild",
                "ref",
                "resumed",
                "reuse",
                "tag",
                "tests"
            ],
            "{b:#}"
        );
        for k in ["basic", "integration"] {
            let folders = b["tests"][k].as_array().expect("test folder lists");
            assert!(folders.iter().all(Value::is_string), "{b:#}");
        }
        for k in ["image", "plan", "reason", "tag", "ref"] {
            assert!(b[k].is_string(), "{k} in {b:#}");
        }
        assert!(b["rebuild"].is_boolean(), "{b:#}");
        assert!(b["resumed"].is_boolean(), "{b:#}");
        let per_platform = b["per_platform"].as_object().expect("per_platform object");
        let declared: std::collections::BTreeSet<&str> = b["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(
            per_platform
                .keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            declared,
            "{b:#}"
        );
        for p in per_platform.values() {
            assert!(p["inputs"].is_string() || p["inputs"].is_null(), "{b:#}");
            assert!(p["reuse"].is_string() || p["reuse"].is_null(), "{b:#}");
            assert!(p["resumed"].is_boolean(), "{b:#}");
        }
        for k in [
            "parent",
            "base_ref",
            "base_source",
            "base_image_id",
            "inputs",
            "reuse",
        ] {
            assert!(b[k].is_null() || b[k].is_string(), "{k} in {b:#}");
        }
        // A rebuilt child is never built on an unpinned base.
        if b["rebuild"] == true && !b["parent"].is_null() {
            let pinned = match b["base_source"].as_str() {
                Some("this_run") => true,
                Some("registry") => b["base_ref"]
                    .as_str()
                    .is_some_and(|r| r.contains("@sha256:")),
                Some("local") => b["base_image_id"].is_string(),
                _ => false,
            };
            assert!(pinned, "a rebuilt child on an unpinned base: {b:#}");
        }
        let args = b["build_args"].as_object().expect("build_args object");
        assert!(args.values().all(Value::is_string), "{b:#}");
        // ref is <image_name>:<tag>
        assert!(
            b["ref"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":{}", b["tag"].as_str().unwrap())),
            "{b:#}"
        );
        if b["parent"].is_null() {
            assert!(b["base_ref"].is_null(), "a root has no base_ref: {b:#}");
            assert!(b["base_source"].is_null(), "a root has no base: {b:#}");
        }
    }
    // One entry per image per plan; a parent's entry comes before its
    // children's in the same plan.
    let all = plan["builds"].as_array().unwrap();
    for (n, b) in all.iter().enumerate() {
        let twins = all
            .iter()
            .filter(|o| o["image"] == b["image"] && o["plan"] == b["plan"])
            .count();
        assert_eq!(twins, 1, "one entry per image per plan: {b:#}");
        if let Some(parent) = b["parent"].as_str() {
            let at = all
                .iter()
                .position(|o| o["image"] == parent && o["plan"] == b["plan"]);
            assert!(
                at.is_some_and(|at| at < n),
                "parent {parent} before {}: {plan:#}",
                b["image"]
            );
        }
    }
}

fn builds(plan: &Value) -> &Vec<Value> {
    plan["builds"].as_array().unwrap()
}

/// The build of `image` (in the only plan).
fn build<'a>(plan: &'a Value, image: &str) -> &'a Value {
    build_in(plan, image, "default")
}

fn build_in<'a>(plan: &'a Value, image: &str, plan_name: &str) -> &'a Value {
    builds(plan)
        .iter()
        .find(|b| b["image"] == image && b["plan"] == plan_name)
        .unwrap_or_else(|| panic!("no build of {image} in {plan_name}: {plan:#}"))
}

/// Where `image` sorts in test expectations: the fixture's order, then by name.
/// (The plan's own order is only required to put parents first, which
/// `check_contract` checks.)
fn rank(image: &str) -> (usize, String) {
    (
        IMAGES
            .iter()
            .position(|i| *i == image)
            .unwrap_or(usize::MAX),
        image.to_string(),
    )
}

/// `(image, rebuild, reason)` of every build, in the fixture's order.
fn summary(plan: &Value) -> Vec<(String, bool, String)> {
    let mut rows: Vec<(String, bool, String)> = builds(plan)
        .iter()
        .map(|b| {
            (
                b["image"].as_str().unwrap().to_string(),
                b["rebuild"].as_bool().unwrap(),
                b["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort_by_key(|r| rank(&r.0));
    rows
}

fn expect(rows: &[(&str, bool, &str)]) -> Vec<(String, bool, String)> {
    rows.iter()
        .map(|(i, r, s)| (i.to_string(), *r, s.to_string()))
        .collect()
}

/// Image names of the builds that rebuild, in the fixture's order.
fn rebuilt(plan: &Value) -> Vec<&str> {
    let mut images: Vec<&str> = builds(plan)
        .iter()
        .filter(|b| b["rebuild"] == true)
        .map(|b| b["image"].as_str().unwrap())
        .collect();
    images.sort_by_key(|i| rank(i));
    images
}

fn short(sha: &str) -> &str {
    &sha[..7]
}

// ---------------------------------------------------------------- change detection

#[test]
fn first_commit_rebuilds_everything() {
    let repo = Repo::stack();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let plan = repo.plan(&[]);
    assert_eq!(plan["head"], head.as_str());
    assert!(plan["base"].is_null());
    assert_eq!(plan["full_rebuild"], true);
    assert_eq!(
        summary(&plan),
        expect(&[
            ("base", true, "first build (no base)"),
            ("mid", true, "first build (no base)"),
            ("side", true, "first build (no base)"),
            ("leaf", true, "first build (no base)"),
        ])
    );
    // Parents before children, every image once, in the one default plan.
    let order: Vec<&str> = builds(&plan)
        .iter()
        .map(|b| b["image"].as_str().unwrap())
        .collect();
    let pos = |i: &str| order.iter().position(|o| *o == i).unwrap();
    assert_eq!(order.len(), 4, "{order:?}");
    assert!(pos("base") < pos("mid") && pos("base") < pos("side") && pos("mid") < pos("leaf"));
    for b in builds(&plan) {
        assert_eq!(b["plan"], "default");
        assert_eq!(b["rebuild"], true);
        assert_eq!(b["reason"], "first build (no base)");
        assert_eq!(b["tag"], format!("2024.1-{}", short(&head)));
        assert_eq!(
            b["ref"],
            format!(
                "ghcr.io/t/{}:2024.1-{}",
                b["image"].as_str().unwrap(),
                short(&head)
            )
        );
    }
    let base = build(&plan, "base");
    assert!(base["parent"].is_null());
    assert!(base["base_ref"].is_null());
    assert_eq!(base["build_args"], serde_json::json!({"PY": "3.11"}));
    // A child built in this run is built on its parent's ref of this run.
    let leaf = build(&plan, "leaf");
    assert_eq!(leaf["parent"], "mid");
    assert_eq!(
        leaf["base_ref"],
        format!("ghcr.io/t/mid:2024.1-{}", short(&head))
    );
    assert_eq!(
        leaf["build_args"]["BASE_TAG"],
        format!("2024.1-{}", short(&head))
    );
    assert_eq!(
        build(&plan, "mid")["build_args"],
        serde_json::json!({"TOOLS": "ds", "BASE_TAG": format!("2024.1-{}", short(&head))})
    );
}

#[test]
fn a_child_change_rebuilds_it_and_its_descendants_only() {
    let repo = Repo::stack();
    let first = repo.git(&["rev-parse", "HEAD"]);
    repo.write("images/mid/app.py", "print('hi')\n");
    let head = repo.commit("change mid");
    let plan = repo.plan(&[]);
    assert_eq!(plan["base"], first.as_str());
    assert_eq!(plan["head"], head.as_str());
    assert_eq!(plan["full_rebuild"], false);
    assert_eq!(
        plan["changed_files"],
        serde_json::json!(["images/mid/app.py"])
    );
    assert_eq!(
        summary(&plan),
        expect(&[
            ("base", false, "unchanged"),
            ("mid", true, "images/mid/app.py"),
            ("side", false, "unchanged"),
            ("leaf", true, "parent rebuilt (mid)"),
        ])
    );
    // --offline: mid's parent is unchanged and found in the local store
    // (under its stable tag, the last of the lookup order), pinned by ID.
    let mid = build(&plan, "mid");
    assert_eq!(mid["base_ref"], "ghcr.io/t/base:2024.1-stable", "{mid:#}");
    assert_eq!(mid["base_source"], "local", "{mid:#}");
    assert!(
        mid["base_image_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{mid:#}"
    );
    assert_eq!(mid["build_args"]["BASE_TAG"], "2024.1-stable", "{mid:#}");
    assert_eq!(mid["build_args"]["TOOLS"], "ds");
    // leaf is built on mid of this run.
    let leaf = build(&plan, "leaf");
    assert_eq!(
        leaf["base_ref"],
        format!("ghcr.io/t/mid:2024.1-{}", short(&head))
    );
    assert_eq!(
        leaf["build_args"]["BASE_TAG"],
        format!("2024.1-{}", short(&head))
    );

    // A leaf change rebuilds the leaf only.
    repo.write(
        "images/leaf/Dockerfile",
        &(dockerfile("leaf") + "RUN true\n"),
    );
    repo.commit("change leaf");
    let plan = repo.plan(&[]);
    assert_eq!(rebuilt(&plan), ["leaf"]);
    assert_eq!(build(&plan, "leaf")["reason"], "images/leaf/Dockerfile");
    assert_eq!(
        build(&plan, "leaf")["base_ref"],
        "ghcr.io/t/mid:2024.1-stable"
    );
}

#[test]
fn a_root_change_rebuilds_every_descendant() {
    let repo = Repo::stack();
    repo.write("images/base/test/test_more.py", "def test_y():\n    pass\n");
    repo.commit("more base tests");
    let plan = repo.plan(&[]);
    assert_eq!(
        summary(&plan),
        expect(&[
            ("base", true, "images/base/test/test_more.py"),
            ("mid", true, "parent rebuilt (base)"),
            ("side", true, "parent rebuilt (base)"),
            ("leaf", true, "parent rebuilt (mid)"),
        ])
    );
    assert_eq!(plan["full_rebuild"], false);
}

#[test]
fn renaming_a_file_from_one_image_into_another_changes_both() {
    let repo = Repo::stack();
    repo.write("images/side/data.txt", "some data\nthat is moved\n");
    repo.commit("add data");
    repo.git(&["mv", "images/side/data.txt", "images/leaf/data.txt"]);
    repo.commit("move data");
    let plan = repo.plan(&[]);
    let mut files: Vec<&str> = plan["changed_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    files.sort_unstable();
    assert_eq!(files, ["images/leaf/data.txt", "images/side/data.txt"]);
    assert_eq!(
        summary(&plan),
        expect(&[
            ("base", false, "unchanged"),
            ("mid", false, "unchanged"),
            ("side", true, "images/side/data.txt"),
            ("leaf", true, "images/leaf/data.txt"),
        ])
    );
}

#[test]
fn change_ignore_applies_before_build_all() {
    let repo = Repo::stack();
    repo.write("images/conftest.py", "import pytest  # edited\n");
    repo.write("images/tests_common/README.md", "shared tests, edited\n");
    repo.write("images/mid/NOTES.md", "notes\n");
    repo.write("README.md", "# a stack, edited\n");
    repo.commit("docs only");
    let plan = repo.plan(&[]);
    assert_eq!(
        plan["changed_files"].as_array().unwrap().len(),
        4,
        "{plan:#}"
    );
    assert_eq!(plan["full_rebuild"], false);
    assert!(rebuilt(&plan).is_empty(), "{plan:#}");
    assert!(builds(&plan).iter().all(|b| b["reason"] == "unchanged"));
    assert_eq!(builds(&plan).len(), 4);
}

#[test]
fn a_build_all_path_rebuilds_everything() {
    let repo = Repo::stack();
    repo.write(
        "images/tests_common/test_new.py",
        "def test_z():\n    pass\n",
    );
    repo.commit("new common test");
    let plan = repo.plan(&[]);
    assert_eq!(rebuilt(&plan), IMAGES);
    for b in builds(&plan) {
        assert_eq!(
            b["reason"], "build-all: images/tests_common/test_new.py",
            "{b:#}"
        );
    }
}

#[test]
fn full_rebuild_in_a_commit_message_rebuilds_everything() {
    let repo = Repo::stack();
    repo.write("images/side/x.txt", "x\n");
    let sha = repo.commit("Full Rebuild please\n\nthe base image moved");
    let plan = repo.plan(&[]);
    assert_eq!(plan["full_rebuild"], true);
    assert_eq!(rebuilt(&plan), IMAGES);
    for b in builds(&plan) {
        assert_eq!(
            b["reason"],
            format!("full rebuild in {}", short(&sha)),
            "{b:#}"
        );
    }
    // Without the words, only side.
    repo.write("images/side/x.txt", "y\n");
    repo.commit("a partial rebuild");
    let plan = repo.plan(&[]);
    assert_eq!(plan["full_rebuild"], false);
    assert_eq!(rebuilt(&plan), ["side"]);
}

#[test]
fn all_flag_and_full_rebuild_branch() {
    let repo = Repo::stack();
    repo.write("images/side/x.txt", "x\n");
    repo.commit("side");
    let plan = repo.plan(&["--all"]);
    assert_eq!(plan["full_rebuild"], true);
    assert!(
        builds(&plan)
            .iter()
            .all(|b| b["rebuild"] == true && b["reason"] == "--all")
    );
    let plan = repo.plan(&["--full-rebuild-branch", "main"]);
    assert!(
        builds(&plan)
            .iter()
            .all(|b| b["rebuild"] == true && b["reason"] == "full-rebuild branch main"),
        "{plan:#}"
    );
    let plan = plan_of(
        repo.strata()
            .args(["plan", "--offline", "--format", "json"])
            .env("STRATA_FULL_REBUILD_BRANCHES", "dev,main"),
    );
    assert_eq!(rebuilt(&plan), IMAGES);
    let plan = repo.plan(&["--full-rebuild-branch", "dev"]);
    assert_eq!(rebuilt(&plan), ["side"]);
}

#[test]
fn a_spec_entry_change_rebuilds_that_image_and_its_descendants() {
    // spec.yml is not BuildAll here, so the specs are compared.
    let repo =
        Repo::stack_files(r#"{"ChangeIgnore": ["conftest.py"], "BuildAll": ["tests_common"]}"#);
    repo.commit("first");
    repo.write("images/spec.yml", &SPEC.replace("TOOLS: ds", "TOOLS: ml"));
    repo.commit("mid gets ml tools");
    let plan = repo.plan(&[]);
    assert_eq!(
        plan["changed_files"],
        serde_json::json!(["images/spec.yml"])
    );
    let rows = summary(&plan);
    assert_eq!(rows[0], ("base".into(), false, "unchanged".into()));
    assert_eq!(rows[1].0, "mid");
    assert!(rows[1].1);
    assert!(rows[1].2.starts_with("spec.yml:"), "{rows:?}");
    assert_eq!(rows[2], ("side".into(), false, "unchanged".into()));
    assert_eq!(
        rows[3],
        ("leaf".into(), true, "parent rebuilt (mid)".into())
    );
    assert_eq!(build(&plan, "mid")["build_args"]["TOOLS"], "ml");

    // With spec.yml in BuildAll (the main fixture) the same edit rebuilds all.
    let repo = Repo::stack();
    repo.write("images/spec.yml", &SPEC.replace("TOOLS: ds", "TOOLS: ml"));
    repo.commit("mid gets ml tools");
    let plan = repo.plan(&[]);
    assert_eq!(rebuilt(&plan), IMAGES);
    assert_eq!(build(&plan, "side")["reason"], "build-all: images/spec.yml");
}

#[test]
fn base_uses_three_dot_semantics_on_diverged_branches() {
    let repo = Repo::stack();
    let fork = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("images/side/feature.txt", "feature\n");
    let feature_head = repo.commit("feature work");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("images/base/main-only.txt", "main moves on\n");
    repo.commit("main work");
    repo.git(&["checkout", "-q", "feature"]);

    let plan = repo.plan(&["--base", "main"]);
    assert_eq!(plan["base"], fork.as_str(), "base is the merge-base");
    assert_eq!(plan["head"], feature_head.as_str());
    assert_eq!(
        plan["changed_files"],
        serde_json::json!(["images/side/feature.txt"])
    );
    assert_eq!(
        rebuilt(&plan),
        ["side"],
        "main's change to base must not count"
    );

    // --head picks the revision: planning main against feature counts base only.
    let plan = repo.plan(&["--base", "feature", "--head", "main"]);
    assert_eq!(plan["base"], fork.as_str());
    assert_eq!(rebuilt(&plan), IMAGES);
    assert_eq!(build(&plan, "base")["reason"], "images/base/main-only.txt");
}

#[test]
fn github_base_ref_makes_the_base_the_merge_base_with_the_target() {
    let repo = Repo::stack();
    let fork = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("images/side/one.txt", "1\n");
    repo.commit("one");
    repo.write("images/leaf/two.txt", "2\n");
    repo.commit("two");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("images/base/main-only.txt", "x\n");
    repo.commit("main work");
    repo.git(&["checkout", "-q", "feature"]);

    // Without it, the base is head's first parent: only leaf's change.
    let plan = repo.plan(&[]);
    assert_eq!(rebuilt(&plan), ["leaf"]);

    let plan = plan_of(
        repo.strata()
            .args(["plan", "--offline", "--format", "json"])
            .env("GITHUB_BASE_REF", "main"),
    );
    assert_eq!(plan["base"], fork.as_str());
    assert_eq!(rebuilt(&plan), ["side", "leaf"]);
    assert_eq!(build(&plan, "side")["reason"], "images/side/one.txt");
    assert_eq!(build(&plan, "leaf")["reason"], "images/leaf/two.txt");

    // A target that is not in the clone is the environment's fault.
    let out = run(repo
        .strata()
        .args(["plan", "--offline", "--format", "json"])
        .env("GITHUB_BASE_REF", "no-such-branch"));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("no-such-branch"), "{}", out.stderr);
}

// ---------------------------------------------------------------- tags, plans and args

#[test]
fn branch_tag_suffix_is_sanitized() {
    let repo = Repo::stack();
    // GitHub's branch names can hold what git refs cannot (a space).
    let plan = plan_of(
        repo.strata()
            .args([
                "plan",
                "--offline",
                "--format",
                "json",
                "--tag-suffix",
                "branch",
            ])
            .env("GITHUB_HEAD_REF", "feature/New Thing"),
    );
    // A real branch with a character tags do not allow.
    repo.git(&["checkout", "-q", "-b", "feature/New+Thing"]);
    let from_git = repo.plan(&["--tag-suffix", "branch"]);
    assert_eq!(from_git["builds"], plan["builds"]);
    for b in builds(&plan) {
        assert_eq!(b["tag"], "2024.1-feature-New-Thing", "{b:#}");
        assert_eq!(
            b["ref"],
            format!(
                "ghcr.io/t/{}:2024.1-feature-New-Thing",
                b["image"].as_str().unwrap()
            )
        );
    }
    assert_eq!(
        build(&plan, "mid")["build_args"]["BASE_TAG"],
        "2024.1-feature-New-Thing"
    );
}

#[test]
fn a_branch_suffix_never_makes_a_promotion_tag() {
    let repo = Repo::stack();
    repo.git(&["checkout", "-q", "-b", "stable"]);
    let out = run(repo.strata().args([
        "plan",
        "--offline",
        "--format",
        "json",
        "--tag-suffix",
        "branch",
    ]));
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("promotion tag"), "{}", out.stderr);
    // The hash suffix is fine on that branch.
    let plan = repo.plan(&[]);
    assert_eq!(builds(&plan).len(), 4);
}

#[test]
fn hostile_branch_names_never_panic() {
    let repo = Repo::stack();
    let sha = repo.git(&["rev-parse", "HEAD"]);
    for branch in [
        "a..b",
        "Ünïcødé/ブランチ",
        "---",
        "_x",
        "ä",
        "a/..b",
        "x.lock",
        "-",
        "@{u}",
    ] {
        repo.force_branch(branch, &sha);
        let out = run(repo.strata().args([
            "plan",
            "--offline",
            "--format",
            "json",
            "--tag-suffix",
            "branch",
        ]));
        assert!(
            matches!(out.code, Some(0) | Some(2)),
            "{branch}: {:?} {}",
            out.code,
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{branch}: {}", out.stderr);
        if out.code == Some(0) {
            let plan: Value = serde_json::from_str(&out.stdout).unwrap();
            check_contract(&plan);
            for b in builds(&plan) {
                let tag = b["tag"].as_str().unwrap();
                assert!(tag.len() <= 128 && tag.starts_with("2024.1-"), "{tag}");
                assert!(
                    tag.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
                    "{branch}: {tag}"
                );
                assert!(!tag.contains(".."), "{branch}: {tag}");
            }
        } else {
            assert!(out.stderr.contains("--tag-suffix hash"), "{}", out.stderr);
        }
        repo.force_branch("main", &sha);
        // The same name from the CI environment.
        let out = run(repo
            .strata()
            .args([
                "plan",
                "--offline",
                "--format",
                "json",
                "--tag-suffix",
                "branch",
            ])
            .env("GITHUB_HEAD_REF", branch));
        assert!(
            matches!(out.code, Some(0) | Some(2)),
            "{branch}: {:?} {}",
            out.code,
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{branch}: {}", out.stderr);
    }
    // A very long branch name is cut to a valid tag.
    let long = "x".repeat(200);
    repo.git(&["checkout", "-q", "-b", &long]);
    let plan = repo.plan(&["--tag-suffix", "branch"]);
    assert_eq!(build(&plan, "base")["tag"].as_str().unwrap().len(), 128);
}

#[test]
fn bad_flags_are_bad_input() {
    let repo = Repo::stack();
    let out = run(repo.strata().args(["plan", "--offline", "--plan", "NOPE"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("NOPE") && out.stderr.contains("default"),
        "{}",
        out.stderr
    );

    for bad in ["bad", "=1", "A B=1"] {
        let out = run(repo
            .strata()
            .args(["plan", "--offline", "--build-arg", bad]));
        assert_eq!(out.code, Some(2), "--build-arg {bad}: {}", out.stderr);
        assert!(out.stderr.contains("KEY=VALUE"), "{}", out.stderr);
    }

    let out = run(repo.strata().args(["plan", "--tag-suffix", "nope"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = run(repo.strata().args(["plan", "--format", "xml"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn build_args_from_the_command_line_reach_every_build_and_win() {
    let repo = Repo::stack();
    repo.write("images/side/x", "x\n");
    repo.commit("side");
    let plan = repo.plan(&[
        "--all",
        "--build-arg",
        "X=1",
        "--build-arg",
        "PY=3.12",
        "--build-arg",
        "E=",
    ]);
    for b in builds(&plan) {
        assert_eq!(b["build_args"]["X"], "1", "{b:#}");
        assert_eq!(b["build_args"]["PY"], "3.12", "{b:#}");
        assert_eq!(b["build_args"]["E"], "", "{b:#}");
    }
    assert_eq!(build(&plan, "mid")["build_args"]["TOOLS"], "ds");
    // Unchanged images get them too (they are entries of the plan).
    let plan = repo.plan(&["--build-arg", "X=1"]);
    assert_eq!(rebuilt(&plan), ["side"]);
    for b in builds(&plan) {
        assert_eq!(b["build_args"]["X"], "1", "{b:#}");
    }
}

const TWO_PLANS_CHANGE_IGNORE: &str = r#"{"ChangeIgnore": [], "BuildAll": ["tests_common"]}"#;

fn two_plan_repo() -> Repo {
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/specs/v1-two-plans.spec.yml"),
    )
    .expect("the two-plan fixture in fixtures/specs");
    let repo = Repo::empty();
    repo.write("images/spec.yml", &spec);
    repo.write("images/change_ignore.json", TWO_PLANS_CHANGE_IGNORE);
    repo.write(
        "images/datahub-base-notebook/Dockerfile",
        "ARG PYTHON_VERSION=python-3.7\nFROM scratch\n",
    );
    repo.write(
        "images/datascience-notebook/Dockerfile",
        "ARG BASE_TAG=latest\nFROM davidzz/datahub-base-notebook:${BASE_TAG}\n",
    );
    repo.write(
        "images/scipy-ml-notebook/Dockerfile",
        "ARG BASE_TAG=latest\nFROM davidzz/datascience-notebook:${BASE_TAG}\n",
    );
    repo.commit("first");
    repo
}

#[test]
fn legacy_two_plan_spec_has_entries_per_plan() {
    let repo = two_plan_repo();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let h = short(&head);
    let plan = repo.plan(&[]);
    let got: Vec<(&str, &str, &str)> = builds(&plan)
        .iter()
        .map(|b| {
            (
                b["plan"].as_str().unwrap(),
                b["image"].as_str().unwrap(),
                b["tag"].as_str().unwrap(),
            )
        })
        .collect();
    let t39 = format!("2021.3-{h}");
    let t38 = format!("2021.2-{h}");
    assert_eq!(
        got,
        [
            ("PYTHON39", "datahub-base-notebook", t39.as_str()),
            ("PYTHON39", "datascience-notebook", t39.as_str()),
            ("PYTHON38", "datahub-base-notebook", t38.as_str()),
            ("PYTHON38", "datascience-notebook", t38.as_str()),
            ("PYTHON38", "scipy-ml-notebook", t38.as_str()),
        ],
        "plans in spec order, skip_plans respected"
    );
    let base39 = build_in(&plan, "datahub-base-notebook", "PYTHON39");
    assert_eq!(
        base39["build_args"],
        serde_json::json!({"placeholder": "test_XXX", "PYTHON_VERSION": "python-3.9.5", "PY_VER_SHORT": "3.9"})
    );
    assert_eq!(
        base39["ref"],
        format!("davidzz/datahub-base-notebook:2021.3-{h}")
    );
    let base38 = build_in(&plan, "datahub-base-notebook", "PYTHON38");
    assert_eq!(base38["build_args"]["PYTHON_VERSION"], "python-3.8.8");
    assert_eq!(base38["build_args"]["PY_VER_SHORT"], "3.8");
    let ds38 = build_in(&plan, "datascience-notebook", "PYTHON38");
    assert_eq!(
        ds38["base_ref"],
        format!("davidzz/datahub-base-notebook:2021.2-{h}")
    );
    assert_eq!(ds38["build_args"]["BASE_TAG"], format!("2021.2-{h}"));
    let scipy = build_in(&plan, "scipy-ml-notebook", "PYTHON38");
    assert_eq!(
        scipy["base_ref"],
        format!("davidzz/datascience-notebook:2021.2-{h}")
    );

    // --plan picks one.
    let plan = repo.plan(&["--plan", "PYTHON39"]);
    assert_eq!(builds(&plan).len(), 2);
    assert!(builds(&plan).iter().all(|b| b["plan"] == "PYTHON39"));

    // A change to scipy rebuilds only its PYTHON38 entry, and, as no image
    // of its parents is in the local store, them too: never an unpinned base.
    repo.write("images/scipy-ml-notebook/env.yml", "deps: []\n");
    repo.commit("scipy deps");
    let plan = repo.plan(&[]);
    let rebuilt: Vec<(&str, &str, &str)> = builds(&plan)
        .iter()
        .filter(|b| b["rebuild"] == true)
        .map(|b| {
            (
                b["plan"].as_str().unwrap(),
                b["image"].as_str().unwrap(),
                b["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rebuilt,
        [
            (
                "PYTHON38",
                "datahub-base-notebook",
                "parent not published (needed by datascience-notebook)"
            ),
            (
                "PYTHON38",
                "datascience-notebook",
                "parent not published (needed by scipy-ml-notebook)"
            ),
            (
                "PYTHON38",
                "scipy-ml-notebook",
                "images/scipy-ml-notebook/env.yml"
            ),
        ]
    );
    assert_eq!(
        build_in(&plan, "scipy-ml-notebook", "PYTHON38")["base_source"],
        "this_run"
    );
    assert_eq!(builds(&plan).len(), 5);
}

// ---------------------------------------------------------------- formats and graphs

#[test]
fn table_and_markdown_show_images_and_reasons() {
    let repo = Repo::stack();
    repo.write("images/mid/app.py", "x\n");
    let head = repo.commit("mid");
    for format in ["table", "markdown"] {
        let out = run(repo
            .strata()
            .args(["plan", "--offline", "--format", format]));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        for image in IMAGES {
            assert!(
                out.stdout.contains(image),
                "{format}: {image} in {}",
                out.stdout
            );
        }
        for reason in ["images/mid/app.py", "parent rebuilt (mid)", "unchanged"] {
            assert!(
                out.stdout.contains(reason),
                "{format}: {reason} in {}",
                out.stdout
            );
        }
        assert!(
            out.stdout.contains(&format!("2024.1-{}", short(&head))),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("2 of 4 builds rebuild"),
            "{}",
            out.stdout
        );
        let leaf_line = out.stdout.lines().find(|l| l.contains("leaf")).unwrap();
        if format == "markdown" {
            assert!(
                out.stdout
                    .starts_with("| image | plan | rebuild | reason | tag |")
            );
            assert!(
                leaf_line.starts_with("| `leaf` |") && leaf_line.contains("yes"),
                "{leaf_line}"
            );
            let side_line = out.stdout.lines().find(|l| l.contains("`side`")).unwrap();
            assert!(side_line.contains("| no |"), "{side_line}");
        } else {
            assert!(out.stdout.starts_with("IMAGE"), "{}", out.stdout);
            assert!(leaf_line.contains(" yes "), "{leaf_line}");
        }
    }
}

const EDGES: [(&str, &str); 3] = [("base", "mid"), ("base", "side"), ("mid", "leaf")];

#[test]
fn graphs_contain_every_image_and_edge() {
    let repo = Repo::stack();
    repo.write("images/side/x", "x\n");
    repo.commit("side");
    for extra in [
        &[][..],
        &["--all", "--offline"][..],
        &["--base", "HEAD~1", "--offline"][..],
    ] {
        // mermaid
        let mut cmd = repo.strata();
        cmd.args(["graph", "--as", "mermaid"]).args(extra);
        let out = run(&mut cmd);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.stdout.contains("flowchart TD"), "{}", out.stdout);
        for image in IMAGES {
            assert!(
                out.stdout.contains(&format!("n_{image}[\"{image}")),
                "{}",
                out.stdout
            );
        }
        for (p, c) in EDGES {
            assert!(
                out.stdout.contains(&format!("n_{p} --> n_{c}")),
                "{}",
                out.stdout
            );
        }
        assert_eq!(out.stdout.matches("-->").count(), 3, "{}", out.stdout);
        // dot
        let mut cmd = repo.strata();
        cmd.args(["graph", "--as", "dot"]).args(extra);
        let out = run(&mut cmd);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert!(out.stdout.starts_with("digraph"), "{}", out.stdout);
        for image in IMAGES {
            assert!(
                out.stdout.contains(&format!("\"{image}\" [label=")),
                "{}",
                out.stdout
            );
        }
        for (p, c) in EDGES {
            assert!(
                out.stdout.contains(&format!("\"{p}\" -> \"{c}\"")),
                "{}",
                out.stdout
            );
        }
        assert_eq!(out.stdout.matches("->").count(), 3, "{}", out.stdout);
        // text: an indented tree
        let mut cmd = repo.strata();
        cmd.args(["graph", "--as", "text"]).args(extra);
        let out = run(&mut cmd);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{}", out.stdout);
        assert!(lines[0].starts_with("base"), "{}", out.stdout);
        let depth = |image: &str| {
            let l = lines.iter().find(|l| l.contains(image)).unwrap();
            l.find(image).unwrap()
        };
        assert!(depth("mid") > depth("base") && depth("side") > depth("base"));
        assert!(depth("leaf") > depth("mid"), "{}", out.stdout);

        // Rebuild marks follow the range.
        let marked: Vec<&str> = IMAGES
            .into_iter()
            .filter(|i| lines.iter().any(|l| l.contains(i) && l.contains("rebuild")))
            .collect();
        match extra.first() {
            None => assert!(marked.is_empty(), "{}", out.stdout),
            Some(&"--all") => assert_eq!(marked, IMAGES, "{}", out.stdout),
            _ => assert_eq!(marked, ["side"], "{}", out.stdout),
        }
    }
}

// ---------------------------------------------------------------- exit codes and validation

#[test]
fn not_a_git_repository_is_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("images")).unwrap();
    std::fs::write(tmp.path().join("images/spec.yml"), SPEC).unwrap();
    let out = run(strata_in(tmp.path()).args(["plan", "--offline"]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("-C"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn an_unknown_base_is_the_environment() {
    let repo = Repo::stack();
    let out = run(repo.strata().args(["plan", "--offline", "--base", "nope"]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    let out = run(repo.strata().args(["plan", "--offline", "--head", "nope"]));
    assert_eq!(out.code, Some(3), "{}", out.stderr);
}

#[test]
fn validate_accepts_a_good_stack() {
    let repo = Repo::stack();
    let out = run(repo.strata().arg("validate"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("4 images"), "{}", out.stderr);
    assert!(out.stderr.contains("no errors"), "{}", out.stderr);
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
}

/// Writes `spec` into a fresh stack and expects `strata validate` (and
/// `strata plan`) to exit 2 with every `needles` in stderr.
fn expect_invalid(spec: &str, needles: &[&str]) {
    let repo = Repo::stack();
    repo.write("images/spec.yml", spec);
    let started = Instant::now();
    let out = run(repo.strata().arg("validate"));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    for n in needles {
        assert!(out.stderr.contains(n), "{n:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let out = run(repo.strata().args(["plan", "--offline"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The `file:line:col: error` prefix of a diagnostic of images/spec.yml.
fn at(line: usize) -> String {
    format!("spec.yml:{line}:")
}

#[test]
fn validate_reports_an_unknown_parent_with_place_and_fix() {
    let spec = SPEC.replace("depend_on: mid", "depend_on: mdi");
    let line = spec.lines().position(|l| l.contains("mdi")).unwrap() + 1;
    expect_invalid(&spec, &[&at(line), "error", "mdi", "help: ", "depend_on"]);
}

#[test]
fn validate_reports_a_cycle() {
    let spec = SPEC.replace("root: base\n", "").replace(
        "  base:\n    image_name: ghcr.io/t/base\n",
        "  base:\n    image_name: ghcr.io/t/base\n    depend_on: leaf\n",
    );
    expect_invalid(
        &spec,
        &[
            "error: images depend on each other in a cycle",
            "help: each image is built FROM its parent",
        ],
    );
    let repo = Repo::stack();
    repo.write("images/spec.yml", &spec);
    let out = run(repo.strata().arg("validate"));
    // Positioned at an image of the cycle: spec.yml:<line>:<col>: error: …
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("in a cycle"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    let place: Vec<&str> = line
        .split_once("spec.yml:")
        .unwrap()
        .1
        .splitn(3, ':')
        .collect();
    assert!(
        place[0].parse::<u32>().is_ok() && place[1].parse::<u32>().is_ok(),
        "{line}"
    );
    for image in ["base", "mid", "leaf"] {
        assert!(line.contains(image), "{line}");
    }
}

#[test]
fn validate_reports_a_duplicate_key() {
    let spec = SPEC.replace(
        "  side:\n    image_name: ghcr.io/t/side\n",
        "  side:\n    image_name: ghcr.io/t/side\n    image_name: ghcr.io/t/side2\n",
    );
    let line = spec.lines().position(|l| l.contains("side2")).unwrap() + 1;
    expect_invalid(
        &spec,
        &[
            &format!("{}5", at(line)),
            "image_name",
            "help: remove one of them",
        ],
    );
}

#[test]
fn validate_reports_merge_conflict_markers() {
    let spec = SPEC.replace(
        "    build_args:\n      TOOLS: ds\n",
        "<<<<<<< HEAD\n    build_args:\n      TOOLS: ds\n=======\n    build_args:\n      TOOLS: ml\n>>>>>>> feature\n",
    );
    let line = spec.lines().position(|l| l.starts_with("<<<<<<<")).unwrap() + 1;
    expect_invalid(
        &spec,
        &[
            &format!("{}1", at(line)),
            "merge-conflict marker",
            "help: resolve the merge conflict",
        ],
    );
}

#[test]
fn a_missing_dockerfile_is_bad_input() {
    let repo = Repo::stack();
    std::fs::remove_file(repo.path("images/side/Dockerfile")).unwrap();
    let out = run(repo.strata().arg("validate"));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("side/Dockerfile"), "{}", out.stderr);
    assert!(out.stderr.contains("help: "), "{}", out.stderr);
    let out = run(repo.strata().args(["plan", "--offline"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn hostile_spec_files_fail_fast() {
    let repo = Repo::stack();
    // Not UTF-8.
    repo.write_bytes(
        "images/spec.yml",
        b"images:\n  base:\n    image_name: \xff\xfe\n",
    );
    for args in [&["validate"][..], &["plan", "--offline"][..]] {
        let started = Instant::now();
        let out = run(repo.strata().args(args));
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("UTF-8"), "{}", out.stderr);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    // 10 MB.
    let mut big = String::from(SPEC);
    big.push_str("# padding\n");
    while big.len() < 10 * 1024 * 1024 {
        big.push_str("# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    }
    repo.write("images/spec.yml", &big);
    for args in [&["validate"][..], &["plan", "--offline"][..]] {
        let started = Instant::now();
        let out = run(repo.strata().args(args));
        assert_eq!(
            out.code,
            Some(2),
            "{args:?}: {}",
            &out.stderr[..out.stderr.len().min(2000)]
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert!(out.stderr.len() < 100_000, "the error is short");
    }
}

/// `strata plan --all --offline --no-reuse --format FORMAT` of the example
/// stack: `--no-reuse`, so that what `scripts/example.sh` left in the local
/// store (its images, tested under their inputs tags) does not change it.
fn example_plan_command(example: &Path, format: &str) -> Command {
    let mut cmd = strata_in(example);
    cmd.args([
        "plan",
        "--all",
        "--offline",
        "--no-reuse",
        "--format",
        format,
    ]);
    cmd
}

/// [`example_plan_command`], its JSON read.
fn example_plan(example: &Path, format: &str) -> Value {
    plan_of(&mut example_plan_command(example, format))
}

#[test]
fn the_example_stack_validates_and_plans() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../example");
    let out = run(strata_in(&example).arg("validate"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let plan = example_plan(&example, "json");
    let mut images: Vec<&str> = builds(&plan)
        .iter()
        .map(|b| b["image"].as_str().unwrap())
        .collect();
    images.sort_unstable();
    assert_eq!(
        images,
        [
            "base-notebook",
            "datascience-notebook",
            "rstudio-notebook",
            "scipy-ml-notebook"
        ]
    );
    assert!(
        builds(&plan)
            .iter()
            .all(|b| b["rebuild"] == true && b["reason"] == "--all")
    );
}

#[test]
fn diagnostics_about_a_commit_name_the_file_as_rev_colon_path() {
    let repo = Repo::stack();
    let good = repo.git(&["rev-parse", "HEAD"]);
    repo.write(
        "images/spec.yml",
        &SPEC.replace("images:\n", "images:\n  broken: [\n"),
    );
    repo.commit("break the spec");
    // The working tree is fixed again: the error is in the commit only.
    repo.write("images/spec.yml", SPEC);
    let out = run(repo.strata().args(["plan", "--offline", "--head", "HEAD"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("HEAD:images/spec.yml:"),
        "the diagnostic names the commit's file: {}",
        out.stderr
    );
    assert!(
        !out.stderr
            .contains(&repo.path("images/spec.yml").display().to_string()),
        "not the file on disk: {}",
        out.stderr
    );
    let out = run(repo.strata().args(["plan", "--offline", "--head", &good]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_non_boolean_flag_is_a_warning_and_the_commit_plans() {
    let repo = Repo::stack();
    let spec = SPEC.replace(
        "    depend_on: base\n",
        "    depend_on: base\n    integration_tests: TORCH_AUD_VER\n",
    );
    assert_ne!(spec, SPEC, "the fixture has a depend_on line");
    repo.write("images/spec.yml", &spec);
    repo.commit("a flag written as text");
    let out = run(repo
        .strata()
        .args(["plan", "--offline", "--format", "json"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.stderr.contains("'TORCH_AUD_VER'"), "{}", out.stderr);
    assert!(out.stderr.contains("read as true"), "{}", out.stderr);
    assert!(out.stderr.contains("write true or false"), "{}", out.stderr);
}

#[test]
fn counts_read_right_in_the_singular() {
    let repo = Repo::stack();
    repo.write("images/side/x", "x\n");
    repo.commit("one file");
    let out = run(repo
        .strata()
        .args(["plan", "--offline", "--base", "HEAD~1"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("1 of 4 builds rebuilds; 1 changed file in "),
        "{}",
        out.stdout
    );
    repo.write("images/side/y", "y\n");
    repo.write("images/leaf/y", "y\n");
    repo.commit("two files");
    let out = run(repo
        .strata()
        .args(["plan", "--offline", "--base", "HEAD~1"]));
    assert!(
        out.stdout
            .contains("2 of 4 builds rebuild; 2 changed files in "),
        "{}",
        out.stdout
    );
}

#[test]
fn graph_and_dry_run_speak_json() {
    let repo = Repo::stack();
    repo.write("images/mid/x", "x\n");
    repo.commit("mid");
    let out =
        run(repo
            .strata()
            .args(["graph", "--format", "json", "--base", "HEAD~1", "--offline"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let graph: Value = serde_json::from_str(&out.stdout).expect("graph JSON");
    let images = graph["images"].as_array().expect("images");
    assert_eq!(images.len(), IMAGES.len());
    for (parent, child) in EDGES {
        let entry = images.iter().find(|i| i["image"] == child).unwrap();
        assert_eq!(entry["parent"], parent, "{graph}");
    }
    let rebuilt: Vec<&str> = images
        .iter()
        .filter(|i| !i["rebuild"].as_array().unwrap().is_empty())
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(rebuilt, ["mid", "leaf"], "{graph}");

    let out = run(repo.strata().args([
        "build",
        "--dry-run",
        "--offline",
        "--format",
        "json",
        "--base",
        "HEAD~1",
    ]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let dry: Value = serde_json::from_str(&out.stdout).expect("dry-run JSON");
    assert_eq!(dry["dry_run"], true);
    let schedule = dry["schedule"].as_array().expect("schedule");
    let order: Vec<&str> = schedule
        .iter()
        .map(|s| s["image"].as_str().unwrap())
        .collect();
    assert!(order.contains(&"mid") && order.contains(&"leaf"), "{dry}");
    let leaf = schedule.iter().find(|s| s["image"] == "leaf").unwrap();
    assert_eq!(leaf["after"], "mid", "{dry}");
    assert_eq!(leaf["level"], 1, "{dry}");
    assert!(leaf["ref"].as_str().unwrap().starts_with("ghcr.io/t/leaf:"));
}

// ---------------------------------------------------------------- the working tree

#[test]
fn uncommitted_edits_are_changes_with_their_own_reasons_and_dirty_tags() {
    let repo = Repo::stack_files(r#"{"ChangeIgnore": [], "BuildAll": []}"#);
    repo.commit("first");
    repo.write("images/side/more.txt", "committed\n");
    let head = repo.commit("side");
    // Reproduction: an edited Dockerfile was not rebuilt, an edited build
    // arg showed in build_args while the image stayed unchanged.
    repo.write(
        "images/leaf/Dockerfile",
        &(dockerfile("leaf") + "RUN echo edited\n"),
    );
    repo.write("images/spec.yml", &SPEC.replace("TOOLS: ds", "TOOLS: ml"));
    std::fs::remove_file(repo.path("images/base/test/test_base.py")).unwrap();
    repo.write("images/side/new.txt", "untracked\n");
    repo.write(".gitignore", "*.log\n");
    repo.write("images/side/build.log", "ignored\n");
    repo.write("README.md", "outside the images folder\n");
    let plan = repo.plan(&[]);
    assert_eq!(plan["dirty"], true);
    assert_eq!(plan["head"], head.as_str());
    assert_eq!(
        plan["changed_files"],
        serde_json::json!([
            "images/base/test/test_base.py",
            "images/leaf/Dockerfile",
            "images/side/more.txt",
            "images/side/new.txt",
            "images/spec.yml"
        ])
    );
    assert_eq!(
        summary(&plan),
        expect(&[
            (
                "base",
                true,
                "images/base/test/test_base.py (deleted, uncommitted)"
            ),
            ("mid", true, "spec.yml: build_args of mid changed"),
            ("side", true, "images/side/more.txt"),
            (
                "leaf",
                true,
                "images/leaf/Dockerfile (modified, uncommitted)"
            ),
        ])
    );
    for b in builds(&plan) {
        let tag = format!("2024.1-{}-dirty", short(&head));
        assert_eq!(b["tag"], tag.as_str(), "{b:#}");
    }
    assert_eq!(build(&plan, "mid")["build_args"]["TOOLS"], "ml");

    // An untracked file alone makes its image (and the tags) dirty.
    repo.git(&["checkout", "--", "."]);
    std::fs::remove_file(repo.path("images/side/build.log")).unwrap();
    let plan = repo.plan(&["--tag-suffix", "branch"]);
    assert_eq!(
        summary(&plan)
            .into_iter()
            .filter(|(_, rebuilt, _)| *rebuilt)
            .collect::<Vec<_>>(),
        expect(&[("side", true, "images/side/more.txt"),]),
        "the untracked new.txt comes after the committed more.txt"
    );
    assert_eq!(build(&plan, "side")["tag"], "2024.1-main-dirty");

    // A commit's plan (--head) never reads the working tree.
    let plan = repo.plan(&["--head", "HEAD"]);
    assert_eq!(plan["dirty"], false);
    assert_eq!(
        build(&plan, "side")["tag"],
        format!("2024.1-{}", short(&head))
    );

    // Clean again: no -dirty.
    std::fs::remove_file(repo.path("images/side/new.txt")).unwrap();
    let plan = repo.plan(&[]);
    assert_eq!(plan["dirty"], false);
    assert_eq!(
        build(&plan, "side")["tag"],
        format!("2024.1-{}", short(&head))
    );
}

#[test]
fn push_refuses_a_dirty_tree_naming_the_files_unless_allowed() {
    let repo = Repo::stack();
    repo.write("images/mid/Dockerfile", &(dockerfile("mid") + "RUN true\n"));
    repo.write("images/side/new.txt", "untracked\n");
    parents_built_before();
    let out = run(repo
        .strata()
        .args(["build", "--offline", "--push", "--dry-run"]));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("images/mid/Dockerfile (modified)")
            && out.stderr.contains("images/side/new.txt (untracked)")
            && out.stderr.contains("--allow-dirty"),
        "{}",
        out.stderr
    );
    let out =
        run(repo
            .strata()
            .args(["build", "--offline", "--push", "--allow-dirty", "--dry-run"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("-dirty"), "{}", out.stdout);
    // Without --push, a dirty tree builds (locally, tagged -dirty).
    let out = run(repo.strata().args(["build", "--offline", "--dry-run"]));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn an_offline_plan_builds_a_parent_found_nowhere_and_says_where_each_base_is() {
    let repo = Repo::stack();
    // Image names no other test tags locally.
    repo.write(
        "images/spec.yml",
        &SPEC.replace("ghcr.io/t/", "ghcr.io/offline-nowhere/"),
    );
    for image in IMAGES {
        repo.write(
            &format!("images/{image}/Dockerfile"),
            &dockerfile(image).replace("ghcr.io/t/", "ghcr.io/offline-nowhere/"),
        );
    }
    repo.commit("own names");
    repo.write("images/leaf/app.py", "print('hi')\n");
    repo.commit("change leaf");
    let plan = repo.plan(&[]);
    assert_eq!(
        summary(&plan),
        expect(&[
            ("base", true, "parent not published (needed by mid)"),
            ("mid", true, "parent not published (needed by leaf)"),
            // base is built only because mid needs it: side is unchanged.
            ("side", false, "unchanged"),
            ("leaf", true, "images/leaf/app.py"),
        ])
    );
    let leaf = build(&plan, "leaf");
    assert_eq!(leaf["base_source"], "this_run");
    assert_eq!(leaf["base_ref"], build(&plan, "mid")["ref"]);
    let out = run(repo.strata().args(["plan", "--offline"]));
    assert!(out.stdout.contains("BASE"), "{}", out.stdout);
    assert!(out.stdout.contains("built in this run"), "{}", out.stdout);
    let out = run(repo.strata().args(["build", "--offline", "--dry-run"]));
    assert!(
        out.stdout.contains("leaf [default]") && out.stdout.contains("after mid"),
        "{}",
        out.stdout
    );
}

#[test]
fn wiki_refuses_a_run_json_it_cannot_read_instead_of_writing_empty_rows() {
    let repo = Repo::stack();
    let from = repo.path("out");
    std::fs::create_dir_all(from.join("artifacts")).unwrap();
    // `head` renamed: an untyped read once turned this into an empty row.
    std::fs::write(
        from.join("artifacts/run.json"),
        r#"{"plan": {"hed": "abc", "base": null, "builds": []}, "started": "s", "finished": "f", "success": true, "interrupted": false, "images": []}"#,
    )
    .unwrap();
    let out = run(repo
        .strata()
        .args(["wiki", "--from"])
        .arg(&from)
        .arg("--out")
        .arg(repo.path("wiki")));
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("run.json") && out.stderr.contains("head"),
        "{}",
        out.stderr
    );
    assert!(!repo.path("wiki/Home.md").exists());
}

#[test]
fn the_bake_file_of_the_example_stack_points_children_at_their_parents() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../example");
    let plan = example_plan(&example, "json");
    let out = run(&mut example_plan_command(&example, "bake"));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let bake: Value = serde_json::from_str(&out.stdout).unwrap();
    let targets = bake["target"].as_object().unwrap();
    assert_eq!(targets.len(), 4, "{bake:#}");
    assert_eq!(
        bake["group"]["default"]["targets"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    for b in builds(&plan) {
        let image = b["image"].as_str().unwrap();
        let t = &targets[&format!("default-{image}")];
        // Relative to the repository root, where bake runs.
        assert_eq!(t["context"], format!("example/images/{image}"), "{t:#}");
        assert_eq!(t["dockerfile"], "Dockerfile");
        assert_eq!(t["tags"], serde_json::json!([b["ref"]]));
        assert_eq!(t["args"], b["build_args"]);
        assert_eq!(
            t["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        assert_eq!(t["labels"]["io.strata.image"], image);
        match b["parent"].as_str() {
            None => assert!(t.get("contexts").is_none(), "{t:#}"),
            Some(parent) => assert_eq!(
                t["contexts"][b["base_ref"].as_str().unwrap()],
                format!("target:default-{parent}"),
                "{t:#}"
            ),
        }
    }
}

/// A reader that goes away (`strata man | head`) ends the output quietly,
/// as ripgrep and git do: exit 0, no panic, for every command that prints.
#[test]
fn a_closed_pipe_on_standard_output_is_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["man"][..], &["completions", "bash"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        // Closed before strata writes: its first write meets EPIPE.
        drop(reader);
        let out = common::strata(dir.path())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// The completion scripts and the man page come from the same clap
/// definitions as the parser; bash completes a subcommand with the script,
/// and man renders the page.
#[test]
fn completions_and_the_man_page_are_read_by_bash_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let script = run(strata_in(dir.path()).args(["completions", "bash"]));
    assert_eq!(script.code, Some(0), "{}", script.stderr);
    let path = dir.path().join("strata.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    let completed = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(strata pro); COMP_CWORD=1; _strata strata pro strata; echo \"${{COMPREPLY[*]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&completed.stdout).trim(),
        "promote",
        "{}",
        String::from_utf8_lossy(&completed.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = run(strata_in(dir.path()).args(["completions", shell]));
        assert!(
            out.code == Some(0) && out.stdout.contains("promote"),
            "{shell}"
        );
    }

    let page = run(strata_in(dir.path()).arg("man"));
    assert_eq!(page.code, Some(0), "{}", page.stderr);
    let roff = dir.path().join("strata.1");
    std::fs::write(&roff, &page.stdout).unwrap();
    let shown = std::process::Command::new("man")
        .arg("-l")
        .arg(&roff)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    assert!(text.contains("NAME") && text.contains("promote"), "{text}");
}
