//! End-to-end tests of `strata build` against the real Docker engine.
//!
//! Every test makes its own git repository with an `images/` stack whose
//! root is `FROM strata-test/busybox:latest` (made by
//! `scripts/make-base-image.sh`, nothing is pulled), uses image names unique
//! to the test and the process so tests can run in parallel, builds with
//! `--offline --no-push --out <tempdir>`, and removes what it built when it
//! ends (also when it fails).

mod common;

use assert_cmd::Command;
use common::{BASE_IMAGE, describe, docker_ok, run_json};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tempfile::TempDir;

// ---------------------------------------------------------------- fixtures

/// The `container` fixture of the example stack: tests run commands in
/// containers of `TEST_IMAGE`, as the layout's users write them.
const CONFTEST: &str = include_str!("../../../example/images/conftest.py");

fn docker(args: &[&str]) -> Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs")
}

/// The ids of every container (running or not) matching a `docker ps` filter.
fn containers(filter: &str) -> Vec<String> {
    docker_ok(&["ps", "-aq", "--filter", filter])
        .lines()
        .map(str::to_string)
        .collect()
}

fn label(reference: &str, key: &str) -> String {
    docker_ok(&[
        "image",
        "inspect",
        "--format",
        &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
        reference,
    ])
}

fn image_exists(reference: &str) -> bool {
    docker(&["image", "inspect", reference]).status.success()
}

/// `<ref>` with `/` and `:` made `-`, as artifact and log names have it.
fn stem(reference: &str) -> String {
    strata_report::ref_file_stem(reference)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A git repository in a temporary folder holding an `images/` stack, with
/// image names unique to one test of one process.
struct Stack {
    tmp: TempDir,
    repo: PathBuf,
    prefix: String,
    outs: std::cell::RefCell<Vec<PathBuf>>,
}

impl Stack {
    fn new(test: &str) -> Stack {
        common::ensure_base_image();
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        let stack = Stack {
            tmp,
            repo,
            prefix: format!("strata-e2e-{test}-{}", std::process::id()).to_lowercase(),
            outs: Default::default(),
        };
        stack.git(&["init", "-q", "-b", "main"]);
        stack
    }

    /// A stack of `images` (name, parent), each Dockerfile adding one
    /// layer, plus `extra` lines for the named images.
    fn with_images(test: &str, images: &[(&str, Option<&str>)], extra: &[(&str, &str)]) -> Stack {
        let stack = Stack::new(test);
        let mut spec = format!("root: {}\nimages:\n", images[0].0);
        for (name, parent) in images {
            spec.push_str(&format!(
                "  {name}:\n    image_name: {}/{name}\n",
                stack.prefix
            ));
            if let Some(p) = parent {
                spec.push_str(&format!("    depend_on: {p}\n"));
            }
            let from = match parent {
                None => format!("FROM {BASE_IMAGE}\n"),
                Some(p) => format!("ARG BASE_TAG\nFROM {}/{p}:${{BASE_TAG}}\n", stack.prefix),
            };
            let more: String = extra
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, line)| format!("{line}\n"))
                .collect();
            stack.write(
                &format!("images/{name}/Dockerfile"),
                &format!("{from}RUN echo {name} >> /layers.txt\n{more}"),
            );
        }
        spec.push_str("tag:\n  prefix: \"t1\"\n");
        stack.write("images/spec.yml", &spec);
        stack.write("images/conftest.py", CONFTEST);
        stack
    }

    /// Adds `line` (`key: value`) to image `image`'s entry of spec.yml.
    fn set_spec_key(&self, image: &str, line: &str) {
        let spec = read(&self.path("images/spec.yml"));
        let entry = format!("  {image}:\n");
        assert!(spec.contains(&entry), "no {image} in {spec}");
        self.write(
            "images/spec.yml",
            &spec.replacen(&entry, &format!("{entry}    {line}\n"), 1),
        );
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.repo.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&self.repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Commits everything; returns the head sha.
    fn commit(&self) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", "stack"]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// A fresh output folder of this test.
    fn out(&self, name: &str) -> PathBuf {
        let out = self.tmp.path().join(name);
        self.outs.borrow_mut().push(out.clone());
        out
    }

    /// `strata -C <repo>`, isolated from the environment of the test run.
    fn strata(&self) -> Command {
        let mut cmd = Command::from_std(common::strata(&self.repo));
        cmd.timeout(Duration::from_secs(240));
        cmd
    }

    /// `strata build --offline --no-push --out <out>`, for more arguments.
    fn build_command(&self, out: &Path) -> Command {
        let mut cmd = self.strata();
        cmd.args(["build", "--offline", "--no-push", "--out"])
            .arg(out);
        cmd
    }

    /// `strata build --all --offline --no-push --out <out> ARGS`.
    fn build(&self, out: &Path, args: &[&str]) -> Output {
        self.build_range(out, &[&["--all"], args].concat())
    }

    /// `strata build --offline --no-push --out <out> ARGS`: the plan's
    /// range, without `--all`.
    fn build_range(&self, out: &Path, args: &[&str]) -> Output {
        self.build_command(out).args(args).output().unwrap()
    }

    /// The refs the plan gives each image, by image key.
    fn refs(&self) -> std::collections::BTreeMap<String, String> {
        let out = self
            .strata()
            .args(["plan", "--all", "--offline", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "plan: {}", text(&out.stderr));
        let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
        plan["builds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["image"].as_str().unwrap().to_string(),
                    b["ref"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Stack {
    /// Removes every image the test built: the refs of its runs' run.json,
    /// and anything else named with its prefix (a run that never wrote one).
    fn drop(&mut self) {
        let mut refs: Vec<String> = Vec::new();
        for out in self.outs.borrow().iter() {
            if let Some(run) = std::fs::read(out.join("artifacts/run.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                for image in run["images"].as_array().into_iter().flatten() {
                    if let Some(r) = image["ref"].as_str() {
                        refs.push(r.to_string());
                    }
                }
            }
        }
        let listed = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        refs.extend(
            text(&listed.stdout)
                .lines()
                .filter(|r| r.contains(&self.prefix))
                .map(str::to_string),
        );
        refs.sort();
        refs.dedup();
        for r in refs {
            for c in containers(&format!("ancestor={r}")) {
                let _ = docker(&["rm", "-f", &c]);
            }
            let _ = docker(&["rmi", "-f", &r]);
        }
    }
}

/// The result of `image` in a run.json.
fn result<'a>(run: &'a Value, image: &str) -> &'a Value {
    run["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == image)
        .unwrap_or_else(|| panic!("{image} is not in run.json: {run:#}"))
}

fn stage<'a>(image: &'a Value, name: &str) -> &'a Value {
    image["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {image:#}"))
}

/// The run id strata labels its containers with, from `logs/run.log`.
fn run_id(out: &Path) -> String {
    let log = read(&out.join("logs/run.log"));
    let first = log.lines().next().unwrap_or_default();
    let id = first
        .split_once(" run ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no run id in {first:?}"));
    assert!(!id.is_empty());
    id
}

/// Asserts that nothing of the run is left in the engine: no container
/// labelled with its run id, none started from one of its images.
fn assert_no_containers(out: &Path, refs: &[&str]) {
    let id = run_id(out);
    let labelled = containers(&format!("label=io.strata.run={id}"));
    assert!(labelled.is_empty(), "containers of run {id}: {labelled:?}");
    for r in refs {
        let left = containers(&format!("ancestor={r}"));
        assert!(left.is_empty(), "containers of {r}: {left:?}");
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn the_example_stack_builds_tests_and_documents_every_image() {
    let stack = Stack::new("example");
    common::copy_example(&stack.path("images"), &stack.prefix);
    let head = stack.commit();
    let refs = stack.refs();
    assert_eq!(refs.len(), 4, "{refs:?}");
    let out = stack.out("out");

    // arm64's builds and tests go to "another" engine: this one, at its
    // address.
    let engine = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    let built = stack.build(&out, &["--engine", &format!("linux/arm64={engine}")]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    assert!(
        text(&built.stderr).contains("4 built"),
        "{}",
        describe(&built)
    );

    let run = run_json(&out);
    assert_eq!(run["success"], true);
    assert_eq!(run["interrupted"], false);
    assert_eq!(run["plan"]["head"], head.as_str());
    assert_eq!(run["images"].as_array().unwrap().len(), 4);
    for (image, reference) in &refs {
        let r = result(&run, image);
        assert_eq!(r["ref"], reference.as_str());
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["outcome"], "built", "{r:#}");
        assert_eq!(stage(r, "build")["status"], "ok");
        assert_eq!(stage(r, "basic-tests")["status"], "ok");
        assert_eq!(stage(r, "push")["status"], "skipped");
        assert_eq!(stage(r, "gates")["status"], "skipped");
        assert_eq!(stage(r, "manifest")["status"], "ok");
        let yaml = read(&out.join(format!("artifacts/{}.yaml", stem(reference))));
        assert!(yaml.contains("success: true"), "{yaml}");
        assert!(yaml.contains(&format!("ref: {reference}")), "{yaml}");
        assert_eq!(yaml.matches("- stage: ").count(), 7, "{yaml}");
        let parent = match image.as_str() {
            "base-notebook" => None,
            "scipy-ml-notebook" => Some("datascience-notebook"),
            _ => Some("base-notebook"),
        };
        // Each platform's image, under its own tag, built on its parent's
        // image of the same platform, and really of that platform.
        for (suffix, machine) in [("-linux-amd64", "x86_64"), ("-linux-arm64", "aarch64")] {
            let variant = format!("{reference}{suffix}");
            assert!(image_exists(&variant), "{variant} is not in the engine");
            assert_eq!(run_in(&variant, "uname -m"), machine, "{variant}");
            let s = stem(&variant);
            let build_log = read(&out.join(format!("logs/{s}.build.log")));
            assert!(build_log.contains("RUN"), "{build_log}");
            let tests_log = read(&out.join(format!("logs/{s}.basic-tests.log")));
            assert!(tests_log.contains("passed"), "{tests_log}");
            let md = read(&out.join(format!("manifests/{s}.md")));
            assert!(md.contains(&format!("# {variant}")), "{md}");
            assert!(md.contains("## Layers"), "{md}");
            assert!(md.contains("| # |"), "{md}");
            assert!(md.contains(&format!("`{head}`")), "{md}");
            assert!(out.join(format!("manifests/{s}.json")).is_file());
            // The OCI labels tie the image to its commit and its parent.
            assert_eq!(label(&variant, "org.opencontainers.image.revision"), head);
            assert_eq!(
                label(&variant, "org.opencontainers.image.base.name"),
                parent.map_or(String::new(), |p| format!("{}{suffix}", refs[p])),
                "{variant}"
            );
        }
    }

    // The manifests hold what the info commands really printed.
    let md = |image: &str| {
        read(&out.join(format!(
            "manifests/{}.md",
            stem(&format!("{}-linux-arm64", refs[image]))
        )))
    };
    for image in ["base-notebook", "datascience-notebook"] {
        assert!(md(image).contains("BusyBox v1."), "{}", md(image));
    }
    assert!(md("base-notebook").contains("VERSION"));
    assert!(md("datascience-notebook").contains("base: busybox\ndatascience: datascience\n"));
    assert!(md("rstudio-notebook").contains("base: busybox\nrstudio: r\n"));
    assert!(
        md("scipy-ml-notebook")
            .contains("base: busybox\ndatascience: datascience\nscipy-ml: models\n"),
        "{}",
        md("scipy-ml-notebook")
    );
    let scipy = result(&run, "scipy-ml-notebook");
    // The grandchild runs its ancestors' tests, parents first: the root's
    // structure tests and pytest tests, its parent's, then its own.
    let names: Vec<String> = stage_tests(scipy, "basic-tests")
        .into_iter()
        .map(|(name, status)| {
            assert_eq!(status, "passed", "{name}");
            name
        })
        .collect();
    for name in [
        "Command Test: the stack version is recorded",
        "File Content Test: the root's tools come first",
        "test_busybox_applets_are_installed",
        "test_shell_works",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    let junit = read(&out.join("artifacts/junit.xml"));
    assert_eq!(junit.matches("<testsuite ").count(), 5, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    assert_eq!(stage(scipy, "integration-tests")["status"], "ok");
    assert!(
        read(&out.join(format!(
            "logs/{}.integration-tests.log",
            stem(&format!("{}-linux-arm64", refs["scipy-ml-notebook"]))
        )))
        .contains("1 passed")
    );
    assert_eq!(
        stage(result(&run, "rstudio-notebook"), "prune")["status"],
        "ok"
    );

    let log = read(&out.join("logs/run.log"));
    assert!(log.contains("run finished: success"), "{log}");
    for r in refs.values() {
        assert!(log.contains(&format!("{r} build started")), "{log}");
    }
    let variants: Vec<String> = refs
        .values()
        .flat_map(|r| [format!("{r}-linux-amd64"), format!("{r}-linux-arm64")])
        .collect();
    let variants: Vec<&str> = variants.iter().map(String::as_str).collect();
    assert_no_containers(&out, &variants);
}

/// The outcome of each image and the status of each of its stages.
fn outcomes(run: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut list: Vec<_> = run["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i["outcome"].as_str().unwrap().to_string(),
                i["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| format!("{}={}", s["stage"], s["status"]))
                    .collect(),
            )
        })
        .collect();
    list.sort();
    list
}

#[test]
fn a_failed_build_skips_its_descendants_only_with_any_jobs() {
    let stack = Stack::with_images(
        "failbuild",
        &[
            ("base", None),
            ("bad", Some("base")),
            ("bad-child", Some("bad")),
            ("good", Some("base")),
            ("good-child", Some("good")),
        ],
        &[("bad", "RUN echo about to fail && exit 1")],
    );
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("out");

    let built = stack.build(&out, &[]);
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    assert!(
        text(&built.stderr).contains(&refs["bad"]),
        "{}",
        describe(&built)
    );
    let run = run_json(&out);
    assert_eq!(run["success"], false);
    assert_eq!(run["interrupted"], false);
    for image in ["base", "good", "good-child"] {
        let r = result(&run, image);
        assert_eq!(r["outcome"], "built", "{r:#}");
        assert!(image_exists(&refs[image]));
    }
    let bad = result(&run, "bad");
    assert_eq!(bad["outcome"], "failed");
    assert_eq!(bad["success"], false);
    assert_eq!(stage(bad, "build")["status"], "failed");
    assert!(
        bad["message"].as_str().unwrap().starts_with("build failed"),
        "{bad:#}"
    );
    for later in ["basic-tests", "push", "manifest"] {
        assert_eq!(stage(bad, later)["status"], "skipped");
    }
    let bad_yaml = read(&out.join(format!("artifacts/{}.yaml", stem(&refs["bad"]))));
    assert!(bad_yaml.contains("success: false"), "{bad_yaml}");
    assert!(bad_yaml.contains("status: failed"), "{bad_yaml}");
    let bad_log = read(&out.join(format!("logs/{}.build.log", stem(&refs["bad"]))));
    assert!(bad_log.contains("about to fail"), "{bad_log}");
    assert!(!image_exists(&refs["bad"]));

    let child = result(&run, "bad-child");
    assert_eq!(child["outcome"], "skipped", "{child:#}");
    let why = child["message"].as_str().unwrap();
    assert!(
        why.contains("parent failed") && why.contains(&refs["bad"]),
        "{why}"
    );
    assert!(!image_exists(&refs["bad-child"]));
    let child_yaml = read(&out.join(format!("artifacts/{}.yaml", stem(&refs["bad-child"]))));
    assert!(child_yaml.contains("parent failed"), "{child_yaml}");
    let log = read(&out.join("logs/run.log"));
    assert!(log.contains("run finished: failed"), "{log}");
    assert!(
        !log.contains(&format!("{} build started", refs["bad-child"])),
        "{log}"
    );
    assert_no_containers(&out, &[&refs["base"], &refs["good"], &refs["good-child"]]);

    // One image at a time gives the same results.
    let out1 = stack.out("out-jobs-1");
    // (Without reuse: the first run's images would be reused, not built.)
    let one = stack.build(&out1, &["--jobs", "1", "--format", "json", "--no-reuse"]);
    assert_eq!(one.status.code(), Some(1), "{}", describe(&one));
    let run1 = run_json(&out1);
    assert_eq!(outcomes(&run1), outcomes(&run));
    // --format json prints the run summary, run.json's document, also when
    // the run fails.
    let printed: Value = serde_json::from_slice(&one.stdout)
        .unwrap_or_else(|e| panic!("stdout is the run summary ({e}): {}", describe(&one)));
    assert_eq!(printed, run1);
    assert!(read(&out1.join("logs/run.log")).contains("jobs=1"));
}

#[test]
fn a_failed_basic_test_gates_its_image_and_no_tests_passes() {
    let stack = Stack::with_images(
        "failtest",
        &[
            ("base", None),
            ("flunks", Some("base")),
            ("flunks-child", Some("flunks")),
            ("empty", Some("base")),
            ("notests", Some("base")),
        ],
        &[],
    );
    stack.set_spec_key("notests", "inherit_tests: false");
    stack.write(
        "images/base/test/test_base.py",
        "def test_layers(container):\n    assert container.run_and_check('head -n 1 /layers.txt').strip() == 'base'\n",
    );
    stack.write(
        "images/flunks/test/test_flunks.py",
        "def test_flunks(container):\n    container.run_and_check('true')\n    assert False, 'this image is broken'\n",
    );
    stack.write(
        "images/notests/test/test_nothing.py",
        "# no tests here\nHELPER = 1\n",
    );
    stack.commit();
    // An empty test folder (git does not keep it; the working tree has it).
    std::fs::create_dir_all(stack.path("images/empty/test")).unwrap();
    let refs = stack.refs();
    let out = stack.out("out");

    let built = stack.build(&out, &[]);
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let run = run_json(&out);
    let flunks = result(&run, "flunks");
    assert_eq!(flunks["outcome"], "failed", "{flunks:#}");
    assert_eq!(stage(flunks, "build")["status"], "ok");
    let tests = stage(flunks, "basic-tests");
    assert_eq!(tests["status"], "failed");
    assert!(
        tests["message"]
            .as_str()
            .unwrap()
            .starts_with("1 of 2 tests failed: test_flunks;"),
        "{tests:#}"
    );
    // The push stage is skipped because of the tests, not of --no-push.
    let push = stage(flunks, "push");
    assert_eq!(push["status"], "skipped");
    assert_eq!(push["message"], "basic-tests failed", "{push:#}");
    assert_eq!(stage(flunks, "manifest")["status"], "skipped");
    let tests_log = read(&out.join(format!("logs/{}.basic-tests.log", stem(&refs["flunks"]))));
    assert!(tests_log.contains("this image is broken"), "{tests_log}");
    let yaml = read(&out.join(format!("artifacts/{}.yaml", stem(&refs["flunks"]))));
    assert!(yaml.contains("success: false"), "{yaml}");

    let child = result(&run, "flunks-child");
    assert_eq!(child["outcome"], "skipped");
    assert!(
        child["message"].as_str().unwrap().contains("parent failed"),
        "{child:#}"
    );
    assert!(!image_exists(&refs["flunks-child"]));

    assert_eq!(result(&run, "base")["outcome"], "built");
    assert_eq!(stage(result(&run, "base"), "basic-tests")["status"], "ok");
    assert!(
        read(&out.join(format!("logs/{}.basic-tests.log", stem(&refs["base"]))))
            .contains("1 passed")
    );
    // An empty folder of its own: the inherited test is what runs.
    let empty = stage(result(&run, "empty"), "basic-tests");
    assert_eq!(empty["message"], "1 test passed", "{empty:#}");
    // Without inheritance, a folder with no tests collects none.
    let notests = result(&run, "notests");
    assert_eq!(notests["outcome"], "built", "{notests:#}");
    let tests = stage(notests, "basic-tests");
    assert_eq!(tests["status"], "ok", "{notests:#}");
    assert_eq!(tests["message"], "no tests collected", "{notests:#}");
    assert_no_containers(
        &out,
        &[
            &refs["base"],
            &refs["flunks"],
            &refs["empty"],
            &refs["notests"],
        ],
    );

    // Run again: what passed is resumed, the image whose tests failed is
    // never taken as tested: it is built and tested again (and fails again).
    let again = stack.out("again");
    let built = stack.build(&again, &[]);
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let run = run_json(&again);
    for passed in ["base", "empty", "notests"] {
        assert_eq!(result(&run, passed)["outcome"], "resumed", "{run:#}");
    }
    let flunks = result(&run, "flunks");
    assert_eq!(flunks["outcome"], "failed", "{flunks:#}");
    assert_eq!(
        stage(flunks, "basic-tests")["status"],
        "failed",
        "{flunks:#}"
    );
}

#[test]
fn an_interrupt_stops_the_run_and_leaves_no_container() {
    interrupt_during_the_tests("interrupt", 1);
}

/// A second Ctrl-C abandons the orderly stop, yet still removes the run's
/// containers and the temporary folder of REV's files.
#[test]
fn a_second_interrupt_still_removes_containers_and_temporary_folders() {
    interrupt_during_the_tests("interrupt2", 2);
}

/// Runs `strata build` until its first image's tests run, then sends it
/// `signals` SIGINTs, a moment apart, and checks what it left.
fn interrupt_during_the_tests(prefix: &str, signals: usize) {
    let stack = Stack::with_images(prefix, &[("base", None), ("after", Some("base"))], &[]);
    stack.write(
        "images/base/test/test_sleeps.py",
        "def test_sleeps(container):\n    container.run_and_check('sleep 30')\n",
    );
    stack.commit();
    let refs = stack.refs();
    let base = refs["base"].as_str();
    let out = stack.out("out");
    std::fs::create_dir_all(&out).unwrap();
    // `--head` builds from a temporary folder of the commit's files.
    let temp = stack.tmp.path().join("temp");
    std::fs::create_dir_all(&temp).unwrap();
    let mut child = common::strata(&stack.repo)
        .args([
            "build",
            "--all",
            "--offline",
            "--no-push",
            "--head",
            "HEAD",
            "--out",
        ])
        .arg(&out)
        .env("TMPDIR", &temp)
        .stdout(std::fs::File::create(stack.tmp.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(stack.tmp.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let stderr = || read(&stack.tmp.path().join("stderr"));

    // Wait for the test's container to be running.
    let wait_for = |what: &str, limit: u64, ready: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !ready() {
            if start.elapsed() > Duration::from_secs(limit) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &child.id().to_string()])
                    .status();
                panic!("no {what} after {limit}s; stderr:\n{}", stderr());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let started = format!("{base} basic-tests started");
    wait_for("basic-tests start", 180, &|| {
        std::fs::read_to_string(out.join("logs/run.log")).is_ok_and(|l| l.contains(&started))
    });
    wait_for("test container", 60, &|| {
        !containers(&format!("ancestor={base}")).is_empty()
    });

    let exported = || {
        std::fs::read_dir(&temp)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("strata-"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        exported().len(),
        1,
        "no folder of REV's files in {}",
        temp.display()
    );
    for _ in 0..signals {
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        std::thread::sleep(Duration::from_millis(300));
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("strata did not stop after SIGINT; stderr:\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "stderr:\n{}", stderr());
    assert!(stderr().contains("interrupted"), "{}", stderr());
    assert_eq!(
        exported(),
        Vec::<String>::new(),
        "the folder of REV's files is left"
    );
    if signals > 1 {
        assert!(stderr().contains("abandoning the run"), "{}", stderr());
        assert!(
            containers(&format!("ancestor={base}")).is_empty(),
            "a test container is left"
        );
        return;
    }

    let run = run_json(&out);
    assert_eq!(run["interrupted"], true);
    assert_eq!(run["success"], false);
    let b = result(&run, "base");
    assert_eq!(stage(b, "build")["status"], "ok");
    assert_eq!(stage(b, "basic-tests")["status"], "failed");
    assert_eq!(stage(b, "basic-tests")["message"], "interrupted");
    let after = result(&run, "after");
    assert_eq!(after["outcome"], "skipped", "{after:#}");
    assert!(!image_exists(&refs["after"]));
    assert!(out.join(format!("artifacts/{}.yaml", stem(base))).is_file());
    assert_no_containers(&out, &[base]);
}

/// The tests teams already have publish fixed host ports (their conftest
/// runs every test container with `ports={"8888/tcp": 8888}`): with the
/// default flags, a root and four children whose inherited test publishes
/// 8888 (and holds it for two seconds) all pass: their pytest runs take
/// turns, where four at once would clash on the port.
#[test]
fn tests_that_publish_a_host_port_pass_with_the_default_flags() {
    let images = [
        ("portroot", None),
        ("c1", Some("portroot")),
        ("c2", Some("portroot")),
        ("c3", Some("portroot")),
        ("c4", Some("portroot")),
    ];
    let stack = Stack::with_images("ports", &images, &[]);
    stack.write(
        "images/portroot/test/test_port.py",
        "import os\n\nimport docker\n\n\ndef test_publishes_8888():\n    client = docker.from_env()\n    c = client.containers.run(\n        os.environ['TEST_IMAGE'], ['sh', '-c', 'sleep 2'], detach=True,\n        ports={'8888/tcp': 8888}, labels={'io.strata.test': '1'},\n    )\n    try:\n        assert c.wait(timeout=60)['StatusCode'] == 0\n    finally:\n        c.remove(force=True)\n",
    );
    stack.commit();
    let out = stack.out("out");
    let built = stack.build(&out, &["--jobs", "4"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    for (image, _) in images {
        let tests = stage(result(&run, image), "basic-tests");
        assert_eq!(tests["status"], "ok", "{image}: {tests:#}");
    }
}

#[test]
fn dry_run_prints_the_schedule_and_builds_nothing() {
    let stack = Stack::with_images(
        "dryrun",
        &[("base", None), ("mid", Some("base")), ("leaf", Some("mid"))],
        &[],
    );
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("out");
    let dry = stack.build(&out, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", describe(&dry));
    let schedule = text(&dry.stdout);
    let lines: Vec<&str> = schedule.lines().collect();
    assert_eq!(lines.len(), 3, "{schedule}");
    assert!(lines[0].starts_with("base [default] ") && lines[0].contains(&refs["base"]));
    assert!(lines[0].ends_with("root"), "{schedule}");
    assert!(lines[1].starts_with("  mid ") && lines[1].ends_with("after base"));
    assert!(lines[2].starts_with("    leaf ") && lines[2].ends_with("after mid"));
    assert!(!out.exists(), "a dry run wrote {}", out.display());
    for r in refs.values() {
        assert!(!image_exists(r), "{r} was built");
    }
}

#[test]
fn only_builds_the_one_image_on_its_parent() {
    let stack = Stack::with_images(
        "only",
        &[("base", None), ("one", Some("base")), ("two", Some("base"))],
        &[],
    );
    let head = stack.commit();
    let refs = stack.refs();

    let out = stack.out("out-base");
    let built = stack.build(&out, &["--only", "base"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    assert_eq!(run["images"].as_array().unwrap().len(), 1, "{run:#}");
    assert_eq!(result(&run, "base")["outcome"], "built");
    assert!(image_exists(&refs["base"]));
    assert!(!image_exists(&refs["one"]) && !image_exists(&refs["two"]));

    let out = stack.out("out-one");
    let built = stack.build(&out, &["--only", "one"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    assert_eq!(run["images"].as_array().unwrap().len(), 1, "{run:#}");
    assert_eq!(result(&run, "one")["outcome"], "built");
    assert!(image_exists(&refs["one"]) && !image_exists(&refs["two"]));
    assert_eq!(
        label(&refs["one"], "org.opencontainers.image.revision"),
        head
    );
    assert_eq!(
        docker_ok(&["run", "--rm", &refs["one"], "cat", "/layers.txt"]),
        "base\none"
    );

    let out = stack.out("out-nosuch");
    let bad = stack.build(&out, &["--only", "nosuch"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        text(&bad.stderr).contains("--only nosuch"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn an_unreachable_engine_exits_3_with_one_line() {
    let stack = Stack::with_images("noengine", &[("base", None)], &[]);
    stack.commit();
    let out = stack.out("out");
    let failed = stack
        .build_command(&out)
        .env("DOCKER_HOST", "unix:///nonexistent")
        .arg("--all")
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(3), "{}", describe(&failed));
    let stderr = text(&failed.stderr);
    // Notes aside (the local store could not be searched for images to
    // reuse), one error line.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("note: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains("/nonexistent"), "{stderr}");
}

#[test]
fn missing_pytest_exits_3_with_the_install_hint() {
    let stack = Stack::with_images("nopytest", &[("base", None)], &[]);
    stack.write(
        "images/base/test/test_base.py",
        "def test_it():\n    pass\n",
    );
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("out");
    let failed = stack.build(&out, &["--python", "/nonexistent/python3"]);
    assert_eq!(failed.status.code(), Some(3), "{}", describe(&failed));
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains("/nonexistent/python3 -m pip install pytest docker"),
        "{stderr}"
    );
    assert!(
        !image_exists(&refs["base"]),
        "built although tests cannot run"
    );
}

#[test]
fn a_from_without_base_tag_gets_a_validate_warning() {
    let stack = Stack::with_images("fixedfrom", &[("base", None), ("kid", Some("base"))], &[]);
    let fixed = format!("FROM {}/base:latest\nRUN true\n", stack.prefix);
    stack.write("images/kid/Dockerfile", &fixed);
    stack.commit();
    let out = stack.strata().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("kid/Dockerfile:1:1: warning"), "{stderr}");
    assert!(stderr.contains("BASE_TAG"), "{stderr}");
    assert!(stderr.contains("1 warning,"), "{stderr}");

    // With the base arg, no warning.
    let stack = Stack::with_images("basetag", &[("base", None), ("kid", Some("base"))], &[]);
    stack.commit();
    let out = stack.strata().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("0 warnings,"),
        "{}",
        describe(&out)
    );
}

#[test]
fn building_a_revision_again_is_all_cache_hits() {
    let stack = Stack::with_images("rebuild", &[("base", None), ("kid", Some("base"))], &[]);
    let head = stack.commit();
    let refs = stack.refs();
    let id = |r: &str| docker_ok(&["image", "inspect", "--format", "{{.Id}}", r]);

    let first = stack.out("out-1");
    let built = stack.build(&first, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let ids: Vec<String> = refs.values().map(|r| id(r)).collect();
    let created = label(&refs["kid"], "org.opencontainers.image.created");
    assert!(created.ends_with('Z'), "{created:?}");

    // The same inputs again: every image is reused (tagged, not built),
    // and, as it already carries this run's tag, said to be resumed.
    let reused = stack.out("out-reused");
    let built = stack.build(&reused, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    assert!(
        text(&built.stderr).contains("resumed"),
        "{}",
        describe(&built)
    );
    let run = run_json(&reused);
    for (image, r) in &refs {
        let result = result(&run, image);
        assert_eq!(result["outcome"], "resumed", "{result:#}");
        assert_eq!(
            stage(result, "build")["message"]
                .as_str()
                .map(|m| m.contains("same inputs as sha256:")),
            Some(true),
            "{result:#}"
        );
        assert!(!reused.join(format!("logs/{}.build.log", stem(r))).exists());
        assert_eq!(
            result["inputs"].as_str(),
            Some(label(r, "io.strata.inputs").as_str())
        );
    }
    assert_eq!(refs.values().map(|r| id(r)).collect::<Vec<_>>(), ids);

    let again = stack.out("out-2");
    let built = stack.build(&again, &["--no-reuse"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    // Same labels, so every step is a cache hit and the images are the same.
    for r in refs.values() {
        let log = read(&again.join(format!("logs/{}.build.log", stem(r))));
        // BuildKit's plain progress: each RUN step's number ends CACHED.
        let runs: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("] RUN "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(!runs.is_empty(), "no RUN step in\n{log}");
        for step in runs {
            assert!(
                log.lines().any(|l| l == format!("{step} CACHED")),
                "{r} ran step {step} again:\n{log}"
            );
        }
    }
    assert_eq!(refs.values().map(|r| id(r)).collect::<Vec<_>>(), ids);
    assert_eq!(
        label(&refs["kid"], "org.opencontainers.image.created"),
        created
    );
    assert_eq!(
        label(&refs["kid"], "org.opencontainers.image.revision"),
        head
    );
}

// ---------------------------------------------------------------- every tag is its commit

fn run_in(reference: &str, script: &str) -> String {
    docker_ok(&["run", "--rm", reference, "sh", "-c", script])
}

#[test]
fn head_builds_and_tests_that_commits_files_never_the_working_trees() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::with_images("head", &[("app", None)], &[("app", "COPY . /src")]);
    stack.write("images/app/data.txt", "old\n");
    stack.write("images/app/.dockerignore", "secret.txt\n");
    stack.write("images/app/secret.txt", "not for the image\n");
    stack.write("images/app/run.sh", "#!/bin/sh\necho run\n");
    let script = stack.path("images/app/run.sh");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("data.txt", stack.path("images/app/link")).unwrap();
    stack.write(
        "images/app/test/test_app.py",
        "def test_old_data(container):\n    assert container.run_and_check('cat /src/data.txt').strip() == 'old'\n",
    );
    let old = stack.commit();
    stack.write("images/app/data.txt", "new\n");
    stack.write("images/app/.dockerignore", "\n");
    stack.commit();
    // Uncommitted edits too: none of them may reach the old commit's image.
    stack.write("images/app/data.txt", "uncommitted\n");
    stack.write(
        "images/app/test/test_app.py",
        "def test_fails():\n    assert False, 'the working tree test ran'\n",
    );

    // A CI checkout's remote carries a token: the source label must not.
    stack.git(&[
        "remote",
        "add",
        "origin",
        "https://x-access-token:SECRET-TOKEN-123@github.com/o/stack.git",
    ]);
    let out = stack.out("out");
    let built = stack.build_range(&out, &["--head", &old, "--all"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    let app = result(&run, "app");
    let reference = app["ref"].as_str().unwrap();
    assert!(
        reference.ends_with(&format!(":t1-{}", &old[..7])),
        "{reference}"
    );
    assert_eq!(stage(app, "basic-tests")["status"], "ok", "{app:#}");
    assert_eq!(run_in(reference, "cat /src/data.txt"), "old");
    assert_eq!(run_in(reference, "readlink /src/link"), "data.txt");
    assert_eq!(
        run_in(reference, "test -x /src/run.sh && /src/run.sh"),
        "run"
    );
    assert_eq!(
        run_in(
            reference,
            "test -e /src/secret.txt && echo sent || echo ignored"
        ),
        "ignored",
        "the old commit's .dockerignore applies"
    );
    assert_eq!(
        label(reference, "org.opencontainers.image.revision"),
        old,
        "a commit's build is labelled with the commit, never -dirty"
    );
    assert_eq!(
        label(reference, "org.opencontainers.image.source"),
        "https://github.com/o/stack"
    );
    let inspected = docker_ok(&["image", "inspect", reference]);
    assert!(!inspected.contains("SECRET-TOKEN-123"), "{inspected}");
    for file in walk(&out) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET-TOKEN-123"),
            "the token is in {}",
            file.display()
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn buildkit_by_default_labels_without_history_steps_and_classic_on_request() {
    let stack = Stack::with_images(
        "builders",
        &[("base", None)],
        &[(
            "base",
            "RUN --mount=type=cache,target=/cache echo cached > /cache/x && cp /cache/x /x",
        )],
    );
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("buildkit");
    let built = stack.build(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    assert!(read(&out.join("logs/run.log")).contains("builder: BuildKit"));
    assert_eq!(run_in(&refs["base"], "cat /x"), "cached");
    assert!(!label(&refs["base"], "org.opencontainers.image.revision").is_empty());
    let history = docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &refs["base"],
    ]);
    assert!(
        !history.contains("org.opencontainers") && !history.contains("io.strata"),
        "strata's labels became history steps:\n{history}"
    );
    let log = read(&out.join(format!("logs/{}.build.log", stem(&refs["base"]))));
    assert!(
        log.lines()
            .any(|l| l.starts_with('#') && l.contains("] RUN ")),
        "{log}"
    );

    // The classic builder on request: a plain Dockerfile still builds
    // (one without RUN --mount, which it cannot read).
    stack.write(
        "images/base/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo classic > /x\n"),
    );
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("classic");
    let built = stack.build(&out, &["--builder", "classic"]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    assert!(read(&out.join("logs/run.log")).contains("builder: the classic builder"));
    assert_eq!(run_in(&refs["base"], "cat /x"), "classic");
}

/// An offline run that does not push asks no registry anything, though
/// its images are named on one: a listener at that host sees no
/// connection, through a first build and a build of one changed child on
/// its parent's local image (no cache lookup, no previous build).
#[test]
fn an_offline_run_without_push_asks_no_registry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let stack = Stack::new("noregistry");
    let name = |image: &str| format!("{host}/{}/{image}", stack.prefix);
    stack.write(
        "images/spec.yml",
        &format!(
            "root: base\nimages:\n  base:\n    image_name: {}\n  child:\n    image_name: {}\n    depend_on: base\ntag:\n  prefix: \"t1\"\n",
            name("base"),
            name("child")
        ),
    );
    stack.write(
        "images/base/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo base > /base.txt\n"),
    );
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nCOPY app.txt /app.txt\n",
            name("base")
        ),
    );
    stack.write("images/child/app.txt", "1\n");
    stack.commit();
    let out = stack.out("first");
    let built = stack.build(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    stack.write("images/child/app.txt", "2\n");
    stack.commit();
    let out = stack.out("second");
    let built = stack.build_range(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    assert_eq!(run["images"].as_array().unwrap().len(), 1, "{run:#}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the registry was asked: {other:?}"),
    }
}

#[test]
fn an_offline_build_builds_a_never_built_parent_then_pins_its_local_image() {
    let stack = Stack::with_images("pin", &[("base", None), ("child", Some("base"))], &[]);
    stack.commit();
    stack.write("images/child/app.txt", "1\n");
    stack.commit();

    // Reproduction: the child was built on the Dockerfile's default base
    // (`latest`, never published by strata), not on a pinned parent.
    let out = stack.out("first");
    let built = stack.build_range(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    let base_ref = result(&run, "base")["ref"].as_str().unwrap().to_string();
    let child_ref = result(&run, "child")["ref"].as_str().unwrap().to_string();
    let base = run["plan"]["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["image"] == "base")
        .unwrap()
        .clone();
    assert_eq!(base["reason"], "parent not published (needed by child)");
    assert_eq!(
        label(&child_ref, "org.opencontainers.image.base.name"),
        base_ref,
        "the child names the parent image of this run"
    );

    // The next change finds that parent in the local store and pins it.
    stack.write("images/child/app.txt", "2\n");
    stack.commit();
    let plan = stack
        .strata()
        .args(["build", "--offline", "--dry-run", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    let dry: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let scheduled = dry["schedule"].as_array().unwrap();
    assert_eq!(scheduled.len(), 1, "{dry:#}");
    assert_eq!(scheduled[0]["base_source"], "local", "{dry:#}");
    let base_id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &base_ref]);
    assert_eq!(scheduled[0]["base_image_id"], base_id.as_str());
    let out = stack.out("second");
    let built = stack.build_range(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    assert_eq!(run["images"].as_array().unwrap().len(), 1, "{run:#}");
    let child_ref = result(&run, "child")["ref"].as_str().unwrap().to_string();
    assert_eq!(
        label(&child_ref, "org.opencontainers.image.base.name"),
        base_ref
    );
    assert_eq!(label(&child_ref, "io.strata.base.id"), base_id);

    // The pin follows the image, not the tag: re-tag the parent and the
    // next plan pins the new image's ID.
    docker_ok(&["tag", BASE_IMAGE, &base_ref]);
    stack.write("images/child/app.txt", "3\n");
    stack.commit();
    let plan = stack
        .strata()
        .args(["plan", "--offline", "--format", "json"])
        .output()
        .unwrap();
    let planned: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let moved_id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]);
    let child = planned["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["image"] == "child")
        .unwrap();
    assert_eq!(child["base_image_id"], moved_id.as_str(), "{child:#}");
}

#[test]
fn a_dirty_tree_builds_under_dirty_tags_and_says_so_in_the_revision() {
    let stack = Stack::with_images("dirty", &[("base", None), ("child", Some("base"))], &[]);
    let head = stack.commit();
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}/base:${{BASE_TAG}}\nRUN echo edited >> /layers.txt\n",
            stack.prefix
        ),
    );
    let out = stack.out("out");
    let built = stack.build_range(&out, &[]);
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let run = run_json(&out);
    let child = result(&run, "child")["ref"].as_str().unwrap().to_string();
    assert!(
        child.ends_with(&format!(":t1-{}-dirty", &head[..7])),
        "{child}"
    );
    assert_eq!(
        label(&child, "org.opencontainers.image.revision"),
        format!("{head}-dirty")
    );
    assert_eq!(run_in(&child, "tail -n1 /layers.txt"), "edited");
}

#[test]
fn a_secret_reaches_its_run_step_and_nothing_else() {
    let value = format!("index-token-{}", std::process::id());
    // The step names this process: BuildKit's cache key does not cover a
    // secret's value, so an earlier run's layer must not match.
    let step = format!(
        "RUN --mount=type=secret,id=pip echo {} >/dev/null && wc -c < /run/secrets/pip > /secret-size",
        std::process::id()
    );
    let stack = Stack::with_images("secret", &[("base", None)], &[("base", step.as_str())]);
    stack.commit();
    let refs = stack.refs();
    let out = stack.out("out");
    let built = stack
        .build_command(&out)
        .env("STRATA_TEST_INDEX_TOKEN", &value)
        .args(["--all", "--secret", "id=pip,env=STRATA_TEST_INDEX_TOKEN"])
        .output()
        .unwrap();
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    assert_eq!(
        run_in(&refs["base"], "cat /secret-size"),
        value.len().to_string()
    );
    assert!(!text(&built.stdout).contains(&value) && !text(&built.stderr).contains(&value));
    for file in walk(&out) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&value),
            "the secret is in {}",
            file.display()
        );
    }
    let history = docker_ok(&["history", "--no-trunc", &refs["base"]]);
    let inspected = docker_ok(&["image", "inspect", &refs["base"]]);
    assert!(!history.contains(&value) && !inspected.contains(&value));

    // A secret that cannot be read stops the run before anything is built,
    // naming the flag, never a value.
    let out = stack.out("bad");
    let bad = stack.build(&out, &["--secret", "id=pip,env=STRATA_TEST_UNSET_VARIABLE"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        text(&bad.stderr).contains("STRATA_TEST_UNSET_VARIABLE is not set"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn prune_removes_only_the_image_the_run_replaced() {
    let stack = Stack::with_images("prune", &[("base", None)], &[]);
    let spec = read(&stack.path("images/spec.yml"));
    stack.write(
        "images/spec.yml",
        &spec.replace("    image_name:", "    prune: true\n    image_name:"),
    );
    stack.commit();
    let id = |r: &str| docker_ok(&["image", "inspect", "--format", "{{.Id}}", r]);
    // Branch tags are reused from commit to commit: a build replaces the
    // image the tag named before.
    let build = |name: &str| {
        let out = stack.out(name);
        let built = stack.build(&out, &["--tag-suffix", "branch"]);
        assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
        let run = run_json(&out);
        let base = result(&run, "base").clone();
        (base["ref"].as_str().unwrap().to_string(), base)
    };
    let (reference, _) = build("first");
    let first = id(&reference);

    stack.write("images/base/new.txt", "2\n");
    stack.write(
        "images/base/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo second > /layers.txt\n"),
    );
    stack.commit();
    let (_, base) = build("second");
    let second = id(&reference);
    assert_ne!(first, second);
    let prune = stage(&base, "prune");
    assert_eq!(prune["status"], "ok", "{base:#}");
    assert!(
        prune["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("removed sha256:")),
        "{base:#}"
    );
    assert!(!image_exists(&first), "the replaced image is still there");

    // An image that is still tagged elsewhere is kept.
    let keep = format!("{}/kept:still-used", stack.prefix);
    docker_ok(&["tag", &second, &keep]);
    stack.write(
        "images/base/Dockerfile",
        &format!("FROM {BASE_IMAGE}\nRUN echo third > /layers.txt\n"),
    );
    stack.commit();
    let (_, base) = build("third");
    let prune = stage(&base, "prune");
    assert_eq!(prune["status"], "ok", "{base:#}");
    assert!(
        prune["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("kept sha256:")),
        "{base:#}"
    );
    assert_eq!(id(&keep), second);
}

// ------------------------------------------------- tests as teams write them

/// Structure tests of each kind, passing and failing, for an image built
/// from `base` plus a marker file, a user and a label.
const KINDS: &str = r#"schemaVersion: 2.0.0
commandTests:
  - name: echo says hello
    command: sh
    args: ["-c", "echo hello; echo warn >&2"]
    expectedOutput: ["hel+o"]
    expectedError: ["warn"]
  - name: wrong exit code
    command: sh
    args: ["-c", "exit 3"]
    exitCode: 0
  - name: excluded output found
    command: cat
    args: [/etc/checked-marker]
    excludedOutput: ["marked"]
fileExistenceTests:
  - name: marker exists
    path: /etc/checked-marker
    shouldExist: true
    permissions: "-rw-r--r--"
  - name: ghost exists
    path: /etc/ghost
    shouldExist: true
fileContentTests:
  - name: marker content
    path: /etc/checked-marker
    expectedContents: ["^marked"]
  - name: marker content wrong
    path: /etc/checked-marker
    expectedContents: ["unmarked-text"]
metadataTest:
  labels:
    - key: team
      value: data
  workdir: /nowhere
"#;

/// A structure test every descendant of `base` inherits.
const BASE_CHECKS: &str = r#"schemaVersion: 2.0.0
fileExistenceTests:
  - name: base marker survives
    path: /etc/base-marker
    shouldExist: true
commandTests:
  - name: layers start with base
    command: head
    args: ["-n", "1", "/layers.txt"]
    expectedOutput: ["^base"]
"#;

fn stage_tests(image: &Value, name: &str) -> Vec<(String, String)> {
    stage(image, name)["tests"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["outcome"]["status"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn inherited_and_structure_tests_gate_reported_in_junit_and_the_summary() {
    let stack = Stack::with_images(
        "inherit",
        &[
            ("base", None),
            ("mid", Some("base")),
            ("leaf", Some("mid")),
            ("sib", Some("base")),
            ("alone", Some("base")),
            ("checked", Some("base")),
        ],
        &[
            ("base", "RUN touch /etc/base-marker"),
            // Breaks what held for its parent.
            ("mid", "RUN rm /etc/base-marker"),
            ("alone", "RUN rm /etc/base-marker"),
            (
                "checked",
                "RUN echo marked > /etc/checked-marker && chmod 644 /etc/checked-marker",
            ),
            ("checked", "LABEL team=data"),
        ],
    );
    stack.set_spec_key("alone", "inherit_tests: false");
    stack.set_spec_key("checked", "inherit_tests: false");
    stack.write("images/base/test/checks.yaml", BASE_CHECKS);
    stack.write("images/checked/test/kinds.yml", KINDS);
    // A YAML file that is not a structure test is left alone.
    stack.write("images/sib/test/data.yaml", "just: data\n");
    stack.commit();
    let refs = stack.refs();

    // The plan and the dry run list each image's test folders.
    let plan = stack
        .strata()
        .args(["plan", "--all", "--offline", "--format", "json"])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let tests_of = |image: &str| {
        plan["builds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["image"] == image)
            .unwrap()["tests"]["basic"]
            .clone()
    };
    assert_eq!(tests_of("leaf"), serde_json::json!(["base/test"]));
    assert_eq!(
        tests_of("sib"),
        serde_json::json!(["base/test", "sib/test"])
    );
    assert_eq!(tests_of("alone"), serde_json::json!([]));
    let dry = stack
        .build_command(&stack.out("dry"))
        .args(["--all", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        text(&dry.stdout).contains("tests: base/test, sib/test"),
        "{}",
        describe(&dry)
    );

    // No folder holds Python tests, so no pytest is needed at all.
    let out = stack.out("out");
    let summary = stack.tmp.path().join("summary.md");
    let built = stack
        .build_command(&out)
        .args(["--all", "--python", "/nonexistent/python3"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let run = run_json(&out);

    // The ancestor's test fails the descendant that broke it...
    let mid = result(&run, "mid");
    assert_eq!(mid["outcome"], "failed", "{mid:#}");
    assert_eq!(
        stage_tests(mid, "basic-tests"),
        [
            (
                "Command Test: layers start with base".to_string(),
                "passed".to_string()
            ),
            (
                "File Existence Test: base marker survives".to_string(),
                "failed".to_string()
            ),
        ]
    );
    let message = stage(mid, "basic-tests")["message"].as_str().unwrap();
    assert!(
        message.starts_with("1 of 2 tests failed: File Existence Test: base marker survives"),
        "{message}"
    );
    assert_eq!(result(&run, "leaf")["outcome"], "skipped");
    // ...not an unrelated image, nor one that does not inherit.
    for image in ["base", "sib", "alone"] {
        assert_eq!(result(&run, image)["outcome"], "built", "{image}: {run:#}");
    }
    assert_eq!(stage_tests(result(&run, "sib"), "basic-tests").len(), 2);
    assert_eq!(
        stage(result(&run, "alone"), "basic-tests")["message"],
        "no tests"
    );

    // Each kind of structure test passes and fails where it should, and
    // says why.
    let checked = result(&run, "checked");
    let cases = stage_tests(checked, "basic-tests");
    let status: BTreeMap<&str, &str> = cases
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        status,
        BTreeMap::from([
            ("Command Test: echo says hello", "passed"),
            ("Command Test: wrong exit code", "failed"),
            ("Command Test: excluded output found", "failed"),
            ("File Existence Test: marker exists", "passed"),
            ("File Existence Test: ghost exists", "failed"),
            ("File Content Test: marker content", "passed"),
            ("File Content Test: marker content wrong", "failed"),
            ("Metadata Test", "failed"),
        ]),
        "{checked:#}"
    );
    let log = read(&out.join(format!("logs/{}.basic-tests.log", stem(&refs["checked"]))));
    for why in ["exit code", "3", "/etc/ghost", "unmarked-text", "/nowhere"] {
        assert!(log.contains(why), "the log does not say {why:?}:\n{log}");
    }

    // junit.xml is well-formed and counts every test of the run.
    let junit = read(&out.join("artifacts/junit.xml"));
    let doc = roxmltree::Document::parse(&junit).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let in_run: usize = run["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["stages"].as_array().unwrap())
        .map(|s| s["tests"].as_array().map_or(0, Vec::len))
        .sum();
    let cases_in_xml = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases_in_xml, in_run);
    assert_eq!(root.attribute("tests"), Some(in_run.to_string().as_str()));
    let failed_in_xml = root
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(
        root.attribute("failures"),
        Some(failed_in_xml.to_string().as_str())
    );
    assert_eq!(failed_in_xml, 6, "{junit}");
    let suites: Vec<&str> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert!(
        suites.contains(&format!("{} basic-tests", refs["mid"]).as_str()),
        "{suites:?}"
    );

    // The step summary names the failed tests.
    let summary = read(&summary);
    for name in ["base marker survives", "ghost exists", "Metadata Test"] {
        assert!(summary.contains(name), "{summary}");
    }
    assert_no_containers(&out, &[&refs["base"], &refs["mid"], &refs["checked"]]);
}

#[test]
fn a_malformed_structure_file_is_an_error_naming_file_line_and_key() {
    let stack = Stack::with_images("badcst", &[("base", None)], &[]);
    stack.write(
        "images/base/test/checks.yaml",
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: x\n    command: sh\n    expectedOutptu: [a]\n",
    );
    stack.commit();
    let out = stack.strata().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("base/test/checks.yaml:5") && err.contains("expectedOutptu"),
        "{err}"
    );
    assert!(err.contains("expectedOutput"), "no did-you-mean: {err}");
}

#[test]
fn a_test_past_its_time_limit_fails_its_image_and_leaves_no_container() {
    let stack = Stack::with_images("timeout", &[("base", None), ("child", Some("base"))], &[]);
    stack.set_spec_key("base", "timeouts: {basic_tests: 1h}");
    stack.write(
        "images/base/test/test_slow.py",
        "def test_sleeps(container):\n    container.run('sleep 120')\n",
    );
    stack.commit();
    let refs = stack.refs();
    let bad = stack.build(&stack.out("bad"), &["--timeout", "tests=5s"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        text(&bad.stderr).contains("'tests' is not a stage"),
        "{}",
        describe(&bad)
    );

    let out = stack.out("out");
    // The run's limit wins over the spec's hour.
    let built = stack.build(&out, &["--timeout", "basic-tests=5s"]);
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let run = run_json(&out);
    let base = result(&run, "base");
    let tests = stage(base, "basic-tests");
    assert_eq!(tests["message"], "timed out after 5s", "{base:#}");
    let took = tests["duration_secs"].as_f64().unwrap();
    assert!((5.0..30.0).contains(&took), "the stage ran {took}s");
    assert_eq!(result(&run, "child")["outcome"], "skipped");
    assert_no_containers(&out, &[&refs["base"]]);
    let junit = read(&out.join("artifacts/junit.xml"));
    assert!(junit.contains("timed out after 5s"), "{junit}");
}

#[test]
fn an_image_over_its_size_budget_fails_with_its_largest_layers() {
    let stack = Stack::with_images(
        "budget",
        &[("base", None), ("child", Some("base"))],
        &[("base", "RUN head -c 300000 /dev/zero > /big.bin")],
    );
    stack.set_spec_key("base", "max_size: 100kB");
    stack.commit();
    let out = stack.out("out");
    let built = stack.build(&out, &[]);
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let run = run_json(&out);
    let base = result(&run, "base");
    let message = stage(base, "build")["message"].as_str().unwrap();
    assert!(
        message.contains("over its max_size of 100.0 kB")
            && message.contains("largest layers")
            && message.contains("/big.bin"),
        "{message}"
    );
    assert_eq!(stage(base, "push")["message"], "build failed", "{base:#}");
    assert_eq!(result(&run, "child")["outcome"], "skipped");
}

#[test]
fn diff_shows_what_changed_inside_an_image() {
    let stack = Stack::with_images("diff", &[("base", None)], &[]);
    let spec = read(&stack.path("images/spec.yml"));
    stack.write(
        "images/spec.yml",
        &format!(
            "{}all_info_cmds:\n  LAYERS:\n    description: Layers\n    command: cat /layers.txt\n",
            spec.replacen(
                "    image_name:",
                "    info_cmds: [LAYERS]\n    image_name:",
                1
            )
        ),
    );
    stack.commit();
    let out1 = stack.out("one");
    let first = stack.build(&out1, &[]);
    assert!(first.status.success(), "{}", describe(&first));
    let ref1 = result(&run_json(&out1), "base")["ref"]
        .as_str()
        .unwrap()
        .to_string();
    stack.write(
        "images/base/Dockerfile",
        &format!(
            "{}RUN echo added-tool >> /layers.txt\nRUN mkdir -p /usr/local/lib/node_modules/left-pad && echo '{{\"name\": \"left-pad\", \"version\": \"1.3.0\"}}' > /usr/local/lib/node_modules/left-pad/package.json\n",
            read(&stack.path("images/base/Dockerfile"))
        ),
    );
    stack.commit();
    let out2 = stack.out("two");
    let second = stack.build(&out2, &[]);
    assert!(second.status.success(), "{}", describe(&second));
    let ref2 = result(&run_json(&out2), "base")["ref"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(ref1, ref2);

    let diff = stack
        .strata()
        .args(["diff", &ref1, &ref2])
        .output()
        .unwrap();
    assert!(diff.status.success(), "{}", describe(&diff));
    let shown = text(&diff.stdout);
    assert!(shown.contains("+added-tool"), "{shown}");
    assert!(
        shown.contains("echo added-tool"),
        "the added layer: {shown}"
    );
    // The packages, read from both images: the one npm package added.
    assert!(
        shown.contains("packages: 1 added, 0 removed, 0 changed\n  + npm left-pad 1.3.0"),
        "{shown}"
    );
    let json = stack
        .strata()
        .args(["diff", &ref1, &ref2, "--format", "json"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["info"][0]["lines_added"], 1, "{json:#}");
    assert_eq!(json["added"].as_array().map(Vec::len), Some(2), "{json:#}");
    assert_eq!(
        json["packages"]["added"][0]["purl"], "pkg:npm/left-pad@1.3.0",
        "{json:#}"
    );
}

#[test]
fn an_engine_flag_is_checked_before_anything_runs() {
    let stack = Stack::with_images("engineflag", &[("base", None)], &[]);
    stack.commit();
    for (flag, says) in [
        ("linux/arm64", "write PLATFORM=ADDRESS"),
        ("arm64=unix:///x", "is not a platform"),
        ("linux/arm64=ssh://builder", "forward the engine's socket"),
        (
            "linux/arm64=builder:2375",
            "must start with unix:// or tcp://",
        ),
    ] {
        let out = stack.build(&stack.out("out"), &["--engine", flag]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", describe(&out));
        assert!(
            text(&out.stderr).contains(says),
            "{flag}: {}",
            describe(&out)
        );
    }
    let out = stack.build(
        &stack.out("out"),
        &["--engine", "linux/amd64=unix:///nonexistent.sock"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("--engine linux/amd64=unix:///nonexistent.sock"),
        "{}",
        describe(&out)
    );
}

/// A run killed with SIGKILL at any moment leaves every record it had
/// written whole: run.json, junit.xml and each artifact parse (each is
/// either the earlier run's or this one's, never half-written).
#[test]
fn a_run_killed_at_any_moment_leaves_every_record_whole() {
    let stack = Stack::with_images(
        "sigkill",
        &[("base", None), ("kid", Some("base"))],
        &[("kid", "RUN sleep 1")],
    );
    stack.commit();
    let out = stack.out("out");
    let built = stack.build(&out, &["--no-reuse"]);
    assert!(built.status.success(), "{}", describe(&built));
    // Moments across the run: planning, the root's build, the child's.
    for delay_ms in [30, 150, 400, 800, 1300, 2000, 2800] {
        let mut child = common::strata(&stack.repo)
            .args([
                "build",
                "--all",
                "--offline",
                "--no-push",
                "--no-reuse",
                "--out",
            ])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let run: Value = serde_json::from_str(&read(&out.join("artifacts/run.json")))
            .unwrap_or_else(|e| panic!("run.json after a kill at {delay_ms} ms: {e}"));
        assert!(run["images"].is_array());
        let junit = read(&out.join("artifacts/junit.xml"));
        roxmltree::Document::parse(&junit)
            .unwrap_or_else(|e| panic!("junit.xml after a kill at {delay_ms} ms: {e}"));
        for entry in std::fs::read_dir(out.join("artifacts")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = read(&path);
                strata_core::yaml::parse(&text, &path.display().to_string()).unwrap_or_else(|e| {
                    panic!("{} after a kill at {delay_ms} ms: {e:?}", path.display())
                });
                assert!(text.contains("stages:"), "{text}");
            }
        }
    }
}
