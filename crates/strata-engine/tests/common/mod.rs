//! Helpers shared by the integration tests (real engine, no mocks).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BASE_IMAGE: &str = "strata-test/busybox:latest";

/// Runs scripts/make-base-image.sh once per test binary (it is idempotent
/// and serialised with flock across binaries).
pub fn ensure_base_image() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-base-image.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "make-base-image.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// A name unique to this test process and call.
pub fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A unique image reference `strata-test/engine-<name>-...:t`.
pub fn unique_ref(name: &str) -> String {
    format!("strata-test/engine-{}:t", unique(name))
}

/// Removes the listed images (and their tags) when dropped, even on panic.
#[derive(Default)]
pub struct Images(pub Vec<String>);

impl Images {
    pub fn add(&mut self, r: impl Into<String>) {
        self.0.push(r.into());
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", r]).output();
        }
    }
}

/// Writes `files` (path, content) under a new temp folder.
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, content) in files {
        write(dir.path(), rel, content);
    }
    dir
}

pub fn write(root: &Path, rel: &str, content: &str) {
    let p: PathBuf = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, content).expect("write");
}

/// `docker <args>` stdout, panicking on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Containers (any state) labelled io.strata.run=<run_id>.
/// Asserts that the containers of run `run_id` are gone within 10 s: a
/// container dropped by its guard is removed on the runtime, a moment later.
pub async fn assert_run_containers_go(run_id: &str) {
    let mut left = containers_of_run(run_id);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        left = containers_of_run(run_id);
    }
    assert!(left.is_empty(), "containers left: {left:?}");
}

pub fn containers_of_run(run_id: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=io.strata.run={run_id}"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}
