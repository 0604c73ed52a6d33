//! Helpers shared by the strata-cli test binaries.
// Each test binary compiles this module and uses its own subset of it.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The local base image tests build on (FROM scratch plus busybox).
pub const BASE_IMAGE: &str = "strata-test/busybox:latest";

/// Variables of the CI running the tests that would change what strata does.
const CI_ENV: [&str; 11] = [
    "GITHUB_BASE_REF",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "STRATA_FULL_REBUILD_BRANCHES",
    "STRATA_INSECURE_REGISTRIES",
    "STRATA_PYTHON",
    "DOCKER_HOST",
    "GIT_DIR",
    "GIT_WORK_TREE",
];

/// `strata -C dir`, isolated from the environment of the test run (its CI
/// variables and the machine's git configuration).
pub fn strata(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.arg("-C").arg(dir);
    for var in CI_ENV {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    cmd
}

/// Makes [`BASE_IMAGE`] once per test binary (the script is idempotent and
/// serialised with flock across binaries).
pub fn ensure_base_image() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-base-image.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "make-base-image.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// A finished command's exit code and output, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run's `artifacts/run.json` under its output folder.
pub fn run_json(out: &Path) -> Value {
    let path = out.join("artifacts/run.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Field `field` (a string) of each image in a run.json, by image key.
pub fn each_image(out: &Path, field: &str) -> std::collections::BTreeMap<String, String> {
    run_json(out)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["image"].as_str().unwrap().to_string(),
                i[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Gives [`BASE_IMAGE`] each of `references` in the local image store, so an
/// offline plan finds its parents there (as on a machine that built them
/// before) instead of planning to build them.
pub fn tag_locally(references: &[&str]) {
    ensure_base_image();
    for reference in references {
        docker_ok(&["tag", BASE_IMAGE, reference]);
    }
}

/// Runs `program args`, which must succeed; its trimmed stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker args`, which must succeed; its trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    run_ok("docker", args)
}

/// The repository's root folder.
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the example stack (`example/images`) to `images`, with the static
/// busybox of each platform its root needs, and its image names made
/// `prefix` (unique to a test and process) instead of `strata-example`.
pub fn copy_example(images: &Path, prefix: &str) {
    copy_dir(&repo_root().join("example/images"), images);
    std::fs::copy("/bin/busybox", images.join("base-notebook/busybox-amd64"))
        .expect("/bin/busybox (busybox-static) is installed");
    std::fs::copy(
        "/usr/local/share/strata/busybox-arm64",
        images.join("base-notebook/busybox-arm64"),
    )
    .expect("arm64's busybox (scripts/setup.sh installs it)");
    for file in [
        "spec.yml",
        "base-notebook/Dockerfile",
        "datascience-notebook/Dockerfile",
        "rstudio-notebook/Dockerfile",
        "scipy-ml-notebook/Dockerfile",
    ] {
        let path = images.join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(&path, text.replace("strata-example", prefix))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Copies folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        }
    }
}
