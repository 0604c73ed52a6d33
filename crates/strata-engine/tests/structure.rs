//! Structure-test files run against real images on the engine, as
//! container-structure-test's docker driver runs them: files from CST's own
//! repository (crates/strata-structure/tests/data/cst/README.md says where
//! each comes from and the outcome CST gives), and strata's own for an image
//! with no shell at all and for a run option the engine refuses.

mod common;

use std::path::Path;

use common::*;
use strata_engine::{BuildRequest, Builder, Engine};
use strata_structure::{CaseResult, HostEnv, parse, run};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../strata-structure/tests/data/cst")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn engine(name: &str) -> Engine {
    ensure_base_image();
    Engine::connect()
        .await
        .expect("connect to the engine")
        .with_run_id(unique(name))
}

/// Builds `files` (a Dockerfile and what it copies) under a unique tag that
/// `images` removes.
async fn build(engine: &Engine, files: &[(&str, &[u8])], images: &mut Images) -> String {
    let tag = unique_ref("structure");
    images.add(&tag);
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write the context");
        // Programs among them keep their execute bits in the image.
        let mode = if content.starts_with(b"\x7fELF") {
            0o755
        } else {
            0o644
        };
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("set the mode");
    }
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![tag.clone()];
    req.builder = Builder::BuildKit;
    let mut log = Vec::new();
    if let Err(e) = engine.build(&req, |l| log.push(l.to_string())).await {
        panic!("build failed: {e}\n{}", log.join("\n"));
    }
    tag
}

/// Runs the file `name` of the test data against `image`.
async fn run_file(engine: &Engine, name: &str, image: &str, host: &HostEnv) -> Vec<CaseResult> {
    let file = parse(&data(name), name).unwrap_or_else(|d| panic!("{d:#?}"));
    run(&file, engine, image, host).await
}

fn outcomes(results: &[CaseResult]) -> Vec<(&str, bool)> {
    results
        .iter()
        .map(|r| (r.name.as_str(), r.passed))
        .collect()
}

#[tokio::test]
async fn cst_metadata_file_passes_on_its_image() {
    let engine = engine("cst-metadata").await;
    let mut images = Images(Vec::new());
    // tests/Dockerfile.metadata of CST, on the local base.
    let dockerfile = format!(
        "FROM {BASE_IMAGE}\n\
         LABEL io.strata.test.build={}\n\
         ENV SOME_KEY=\"SOME_VAL\" \\\n    EMPTY_VAR=\"\" \\\n    FOO_BAR=\"FOO\\:BAR=BAZ\" \\\n    REGEX_VAR=\"test-2.1.8\"\n\
         LABEL localnet.localdomain.commit_hash=\"0123456789abcdef0123456789abcdef01234567\" \\\n      localnet.my-domain.my-label=\"my test label\" \\\n      label-with-empty-val=\"\"\n",
        unique("b")
    );
    let image = build(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "cst_metadata_test.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [("Metadata Test", true)],
        "{results:#?}"
    );

    // The same file fails on an image without that metadata, in CST's words.
    let results = run_file(
        &engine,
        "cst_metadata_test.yaml",
        BASE_IMAGE,
        &HostEnv::default(),
    )
    .await;
    assert!(!results[0].passed);
    assert_eq!(
        results[0].failures[0],
        "variable SOME_KEY not found in image env"
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn cst_run_option_env_vars_come_from_the_runner() {
    let engine = engine("cst-env").await;
    let mut images = Images(Vec::new());
    // The file runs `printenv`, which Debian's busybox lacks: `env` prints
    // the same.
    let dockerfile = format!(
        "FROM {BASE_IMAGE}\nLABEL io.strata.test.build={}\nRUN printf '#!/bin/sh\\nexec env\\n' > /bin/printenv && chmod 755 /bin/printenv\n",
        unique("b")
    );
    let image = build(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let host = |foo: &str| HostEnv {
        vars: [("FOO", foo), ("BAR", "keepitsafe!")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env_file: None,
    };
    let results = run_file(
        &engine,
        "cst_containeropts_env_test.yaml",
        &image,
        &host("keepitsecret!"),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [("Command Test: Test envVars containerRunOptions", true)],
        "{results:#?}"
    );
    assert!(results[0].output.contains("FOO=keepitsecret!"));

    let results = run_file(
        &engine,
        "cst_containeropts_env_test.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    assert!(!results[0].passed, "{results:#?}");
    assert!(
        results[0].failures[0].starts_with(
            "Expected string '.*(FOO|BAR)=keepit(secret|safe)!.*' not found in output '"
        ),
        "{results:#?}"
    );
}

#[tokio::test]
async fn an_image_without_a_shell_is_tested_like_any_other() {
    let engine = engine("cst-shellless").await;
    let mut images = Images(Vec::new());
    let busybox = std::fs::read("/bin/busybox").expect("Debian's static busybox");
    let dockerfile = format!(
        "FROM scratch\nLABEL io.strata.test.build={}\nCOPY busybox /busybox\nCOPY motd /etc/motd\nENV NAME=strata\nCMD [\"/busybox\", \"sh\"]\n",
        unique("b")
    );
    let image = build(
        &engine,
        &[
            ("Dockerfile", dockerfile.as_bytes()),
            ("busybox", &busybox),
            ("motd", b"no shell here\n"),
        ],
        &mut images,
    )
    .await;
    let results = run_file(&engine, "shellless.yaml", &image, &HostEnv::default()).await;
    assert_eq!(
        outcomes(&results),
        [
            ("Command Test: runs without a shell", true),
            ("Command Test: setup is committed", true),
            ("Command Test: each test has its own containers", true),
            ("Command Test: fails: stderr", false),
            ("File Content Test: content", true),
            ("File Existence Test: program", true),
            ("File Existence Test: fails: no shell", false),
            ("File Existence Test: no shell indeed", true),
            ("Metadata Test", true),
        ],
        "{results:#?}"
    );
    assert_eq!(
        results[3].failures[0],
        "Expected string 'nothing-like-this' not found in error 'ls: /nothing: No such file or directory\n'"
    );
    assert!(
        results[6].failures[0].starts_with(
            "Error examining file in container: Error retrieving file from container: API error (404): "
        ),
        "{results:#?}"
    );
    // Every container went, and so did the image setup committed.
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn a_capability_the_engine_refuses_fails_every_test_with_its_reason() {
    let engine = engine("cst-capability").await;
    let results = run_file(
        &engine,
        "refused_capability.yaml",
        BASE_IMAGE,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            ("Command Test: command", false),
            ("File Existence Test: absent file", false)
        ],
        "{results:#?}"
    );
    for r in &results {
        assert!(
            r.failures[0].contains("Error creating container: API error (")
                && r.failures[0].contains("CAP_NOT_A_CAPABILITY"),
            "{r:#?}"
        );
    }
}
