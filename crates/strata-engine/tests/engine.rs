//! Integration tests against the real Docker engine.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use strata_engine::{BuildRequest, Builder, Engine, EngineError};

async fn engine() -> Engine {
    ensure_base_image();
    Engine::connect().await.expect("connect to the engine")
}

/// Builds `dir`, collecting the log; panics on failure.
async fn build_ok(engine: &Engine, req: &BuildRequest) -> (strata_engine::BuiltImage, Vec<String>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let built = engine
        .build(req, move |l| sink.lock().expect("lock").push(l.to_string()))
        .await;
    let lines = log.lock().expect("lock").clone();
    match built {
        Ok(b) => (b, lines),
        Err(e) => panic!("build failed: {e}\n{}", lines.join("\n")),
    }
}

/// Builds `FROM base; COPY . /ctx` from `dir` and returns `find /ctx` sorted.
async fn listing_sent(engine: &Engine, dir: &std::path::Path, images: &mut Images) -> Vec<String> {
    let tag = unique_ref("ctx");
    images.add(&tag);
    let mut req = BuildRequest::new(dir);
    req.tags = vec![tag.clone()];
    // The classic builder receives exactly the tar sent, as the Docker CLI
    // sends it; BuildKit's remote context keeps a Dockerfile and
    // .dockerignore that .dockerignore lists (see the README).
    req.builder = Builder::Classic;
    build_ok(engine, &req).await;
    let out = engine
        .run_commands(&tag, &["cd /ctx && find . | sort".to_string()])
        .await
        .expect("run");
    assert_eq!(out[0].exit_code, 0, "{}", out[0].output);
    out[0].output.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn connect_negotiates_the_api_version() {
    let engine = engine().await;
    let server = docker(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(engine.api_version(), server.trim());
    assert!(engine.host().starts_with("unix://") || engine.host().starts_with("tcp://"));
    assert!(!engine.run_id().is_empty());
}

#[tokio::test]
async fn unreachable_tcp_engine_is_typed_and_one_line() {
    let err = Engine::connect_to("tcp://127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_unreachable(), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.contains("tcp://127.0.0.1:1") && msg.contains("docker info"),
        "{msg}"
    );
}

#[tokio::test]
async fn build_with_args_labels_and_tags() {
    build_with_args_labels_and_tags_on(Builder::BuildKit).await;
}

#[tokio::test]
async fn the_classic_builder_builds_with_args_labels_and_tags() {
    build_with_args_labels_and_tags_on(Builder::Classic).await;
}

async fn build_with_args_labels_and_tags_on(builder: Builder) {
    let engine = engine().await;
    let mut images = Images::default();
    let (t1, t2) = (unique_ref("args1"), unique_ref("args2"));
    images.add(&t1);
    images.add(&t2);
    let dir = context(&[(
        "Dockerfile",
        "FROM strata-test/busybox\nARG GREETING=default\nRUN echo \"$GREETING\" > /greeting\nLABEL from.dockerfile=yes\n",
    )]);
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![t1.clone(), t2.clone()];
    req.build_args = BTreeMap::from([("GREETING".to_string(), "hello-args".to_string())]);
    req.labels = BTreeMap::from([("io.strata.test".to_string(), "labels".to_string())]);
    req.builder = builder;
    let (built, log) = build_ok(&engine, &req).await;
    assert!(built.id.starts_with("sha256:"), "{built:?}");
    match builder {
        Builder::Classic => assert!(log.iter().any(|l| l.starts_with("Step 1/")), "{log:?}"),
        // --progress=plain: numbered steps, each with its end.
        Builder::BuildKit => {
            assert!(
                log.iter()
                    .any(|l| l.starts_with("#") && l.contains("[2/2] RUN echo")),
                "{log:?}"
            );
            assert!(
                log.iter().any(|l| l.starts_with("#") && (l.contains(" DONE ") || l.ends_with(" CACHED"))),
                "{log:?}"
            );
        }
    }

    for tag in [&t1, &t2] {
        let info = engine
            .inspect_image(tag)
            .await
            .expect("inspect")
            .expect("image exists");
        assert_eq!(info.id, built.id);
        assert_eq!(
            info.labels.get("io.strata.test").map(String::as_str),
            Some("labels")
        );
        assert_eq!(
            info.labels.get("from.dockerfile").map(String::as_str),
            Some("yes")
        );
        assert!(info.repo_tags.contains(tag), "{info:?}");
        assert!(info.size > 0);
        assert!(!info.created.is_empty());
    }
    let out = engine
        .run_commands(&t1, &["cat /greeting".to_string()])
        .await
        .expect("run");
    assert_eq!(out[0].output, "hello-args\n");

    // History: newest first, with the RUN step and real times.
    let history = engine.history(&t1).await.expect("history");
    assert!(history.len() >= 3, "{history:?}");
    assert!(
        history
            .iter()
            .any(|h| h.created_by.contains("echo \"$GREETING\"")),
        "{history:?}"
    );
    assert!(
        history.iter().all(|h| h.created > 1_600_000_000),
        "{history:?}"
    );
    assert!(history.iter().any(|h| h.size > 0), "{history:?}");
    // BuildKit puts the request's labels in the image config only: no
    // history step of their own (the classic builder adds one).
    if builder == Builder::BuildKit {
        assert!(
            !history
                .iter()
                .any(|h| h.created_by.contains("io.strata.test")),
            "{history:?}"
        );
    }
}

#[tokio::test]
async fn failing_run_is_build_failed_with_the_engine_message() {
    let engine = engine().await;
    let tag = unique_ref("fail");
    let _images = Images(vec![tag.clone()]);
    let dir = context(&[(
        "Dockerfile",
        "FROM strata-test/busybox\nRUN echo boom-output && exit 3\n",
    )]);
    for builder in [Builder::BuildKit, Builder::Classic] {
        let mut req = BuildRequest::new(dir.path());
        req.tags = vec![tag.clone()];
        req.builder = builder;
        let mut log = Vec::new();
        let err = engine
            .build(&req, |l| log.push(l.to_string()))
            .await
            .expect_err("RUN exits 3");
        match (&err, builder) {
            (EngineError::BuildFailed { message }, Builder::Classic) => {
                assert!(message.contains("returned a non-zero code: 3"), "{message}")
            }
            // The failing step by name, its error and its last output.
            (EngineError::BuildFailed { message }, Builder::BuildKit) => assert!(
                message.contains("[2/2] RUN echo boom-output && exit 3")
                    && message.contains("exit code: 3")
                    && message.contains("last output: boom-output"),
                "{message}"
            ),
            (other, _) => panic!("expected BuildFailed, got {other:?}"),
        }
        assert!(log.iter().any(|l| l.contains("boom-output")), "{log:?}");
        assert!(engine.inspect_image(&tag).await.expect("inspect").is_none());
    }
}

#[tokio::test]
async fn buildkit_cache_and_bind_mounts_build() {
    let engine = engine().await;
    let tag = unique_ref("mounts");
    let _images = Images(vec![tag.clone()]);
    let dir = context(&[
        (
            "Dockerfile",
            "FROM strata-test/busybox\n\
             RUN --mount=type=cache,target=/cache echo cached >> /cache/runs && cp /cache/runs /runs\n\
             RUN --mount=type=bind,source=input.txt,target=/in.txt cat /in.txt > /copied\n",
        ),
        ("input.txt", "bound\n"),
    ]);
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![tag.clone()];
    build_ok(&engine, &req).await;
    let out = engine
        .run_commands(
            &tag,
            &["cat /copied; test -e /in.txt || echo unmounted".to_string()],
        )
        .await
        .expect("run");
    assert_eq!(out[0].output, "bound\nunmounted\n");
}

#[tokio::test]
async fn missing_base_image_is_build_failed() {
    let engine = engine().await;
    let dir = context(&[("Dockerfile", "FROM strata-test/does-not-exist:nope\n")]);
    let err = engine
        .build(&BuildRequest::new(dir.path()), |_| {})
        .await
        .expect_err("no such base image");
    assert!(matches!(err, EngineError::BuildFailed { .. }), "{err:?}");
}

#[tokio::test]
async fn dockerignore_matches_what_the_docker_cli_sends() {
    let engine = engine().await;
    let mut images = Images::default();
    let dir = context(&[
        ("Dockerfile", "FROM strata-test/busybox\nCOPY . /ctx\n"),
        (
            ".dockerignore",
            "# a comment\n*.log\n**/*.tmp\n/secret\nbuild\n!build/keep.txt\ndocs/**\n!docs/important.md\nDockerfile\n.dockerignore\n",
        ),
        ("a.txt", "a"),
        ("b.log", "b"),
        ("sub/c.log", "c"),
        ("sub/d.tmp", "d"),
        ("sub/deep/e.tmp", "e"),
        ("sub/deep/f.txt", "f"),
        ("g.tmp", "g"),
        ("secret/x", "x"),
        ("build/drop.txt", "d"),
        ("build/keep.txt", "k"),
        ("docs/a.md", "a"),
        ("docs/important.md", "i"),
    ]);
    let got = listing_sent(&engine, dir.path(), &mut images).await;
    let want = [
        ".",
        "./a.txt",
        "./build",
        "./build/keep.txt",
        "./docs",
        "./docs/important.md",
        "./sub",
        "./sub/c.log",
        "./sub/deep",
        "./sub/deep/f.txt",
    ];
    assert_eq!(got, want);

    // The same context through the docker CLI (classic builder) gives the same files.
    let cli_tag = unique_ref("cli");
    images.add(&cli_tag);
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &cli_tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = docker(&[
        "run",
        "--rm",
        &cli_tag,
        "sh",
        "-c",
        "cd /ctx && find . | sort",
    ]);
    assert_eq!(got, cli.lines().collect::<Vec<_>>());
}

#[tokio::test]
async fn dockerfile_in_an_excluded_folder_is_still_sent() {
    let engine = engine().await;
    let mut images = Images::default();
    let dir = context(&[
        (
            "docker/Dockerfile",
            "FROM strata-test/busybox\nCOPY . /ctx\n",
        ),
        (".dockerignore", "*\n"),
        ("other.txt", "x"),
    ]);
    let tag = unique_ref("dfsent");
    images.add(&tag);
    let mut req = BuildRequest::new(dir.path());
    req.dockerfile = "docker/Dockerfile".to_string();
    req.tags = vec![tag.clone()];
    req.builder = Builder::Classic;
    build_ok(&engine, &req).await;
    // Everything is ignored; the engine drops the build files it was sent,
    // leaving the Dockerfile's folder (exactly what the docker CLI gives).
    let out = engine
        .run_commands(&tag, &["cd /ctx && find . | sort".to_string()])
        .await
        .expect("run");
    assert_eq!(out[0].output, ".\n./docker\n");
}

#[tokio::test]
async fn exceptions_reinclude_only_what_they_name() {
    let engine = engine().await;
    let mut images = Images::default();
    let dir = context(&[
        ("Dockerfile", "FROM strata-test/busybox\nCOPY . /ctx\n"),
        (".dockerignore", "*\n!keep*\n!Dockerfile\n"),
        ("keep1", "1"),
        ("keep2/x", "2"),
        ("drop", "3"),
    ]);
    let got = listing_sent(&engine, dir.path(), &mut images).await;
    assert_eq!(
        got,
        [".", "./Dockerfile", "./keep1", "./keep2", "./keep2/x"]
    );
}

#[tokio::test]
async fn symlinks_are_sent_as_links_not_followed() {
    let engine = engine().await;
    let mut images = Images::default();
    let outer = tempfile::tempdir().expect("tempdir");
    write(outer.path(), "outside-secret.txt", "TOP-SECRET-OUTSIDE");
    let ctx = outer.path().join("ctx");
    write(
        &ctx,
        "Dockerfile",
        "FROM strata-test/busybox\nCOPY . /ctx\n",
    );
    write(&ctx, "real.txt", "real");
    std::os::unix::fs::symlink("../outside-secret.txt", ctx.join("out-link")).expect("symlink");
    std::os::unix::fs::symlink(
        outer.path().join("outside-secret.txt"),
        ctx.join("abs-link"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink("real.txt", ctx.join("in-link")).expect("symlink");

    let tag = unique_ref("links");
    images.add(&tag);
    let mut req = BuildRequest::new(&ctx);
    req.tags = vec![tag.clone()];
    build_ok(&engine, &req).await;
    let cmds = [
        "readlink /ctx/out-link",
        "readlink /ctx/abs-link",
        "cat /ctx/in-link",
        "cat /ctx/out-link",
        "grep -r TOP-SECRET-OUTSIDE /ctx",
    ]
    .map(String::from);
    let out = engine.run_commands(&tag, &cmds).await.expect("run");
    assert_eq!(out[0].output, "../outside-secret.txt\n");
    assert_eq!(
        out[1].output.trim(),
        outer
            .path()
            .join("outside-secret.txt")
            .display()
            .to_string()
    );
    assert_eq!(out[2].output, "real");
    assert_ne!(
        out[3].exit_code, 0,
        "the link dangles inside the image: {:?}",
        out[3]
    );
    assert_ne!(
        out[4].exit_code, 0,
        "outside content was sent: {:?}",
        out[4]
    );
}

#[tokio::test]
async fn run_commands_records_outputs_and_exit_codes_and_cleans_up() {
    let engine = engine().await.with_run_id(unique("run"));
    let cmds = [
        "echo hello; echo to-stderr >&2",
        "exit 7",
        "printf 'a\\nb'",
        "echo $0",
    ]
    .map(String::from);
    let out = engine.run_commands(BASE_IMAGE, &cmds).await.expect("run");
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].command, cmds[0]);
    assert_eq!(out[0].exit_code, 0);
    assert!(
        out[0].output.contains("hello\n") && out[0].output.contains("to-stderr\n"),
        "{:?}",
        out[0]
    );
    assert_eq!(out[1].exit_code, 7);
    assert!(!out[1].success());
    assert_eq!(out[2].output, "a\nb");
    assert_eq!(out[3].output, "/bin/sh\n");
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn run_commands_share_one_container() {
    let engine = engine().await.with_run_id(unique("share"));
    let cmds = ["echo state > /state", "cat /state"].map(String::from);
    let out = engine.run_commands(BASE_IMAGE, &cmds).await.expect("run");
    assert_eq!(out[1].output, "state\n");
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn run_commands_on_a_missing_image_is_not_found() {
    let engine = engine().await.with_run_id(unique("missing"));
    let err = engine
        .run_commands("strata-test/no-such-image:nope", &["true".to_string()])
        .await
        .expect_err("no image");
    assert!(err.is_not_found(), "{err:?}");
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn cancelled_run_commands_removes_its_container() {
    let engine = engine().await.with_run_id(unique("cancel"));
    let cmds = ["sleep 60".to_string()];
    let run = engine.run_commands(BASE_IMAGE, &cmds);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), run)
            .await
            .is_err()
    );
    assert_run_containers_go(engine.run_id()).await;
}

#[tokio::test]
async fn remove_containers_removes_every_container_of_a_run() {
    let engine = engine().await;
    let run_id = unique("cleanup");
    for _ in 0..2 {
        docker(&[
            "create",
            "--label",
            &format!("io.strata.run={run_id}"),
            BASE_IMAGE,
            "sleep",
            "60",
        ]);
    }
    assert_eq!(containers_of_run(&run_id).len(), 2);
    assert_eq!(engine.remove_containers(&run_id).await.expect("remove"), 2);
    assert!(containers_of_run(&run_id).is_empty());
    assert_eq!(engine.remove_containers(&run_id).await.expect("remove"), 0);
}

#[tokio::test]
async fn inspect_tag_and_remove_images() {
    let engine = engine().await;
    let mut images = Images::default();
    let missing = unique_ref("absent");
    assert!(
        engine
            .inspect_image(&missing)
            .await
            .expect("inspect")
            .is_none()
    );
    assert!(
        engine
            .history(&missing)
            .await
            .expect_err("absent")
            .is_not_found()
    );

    let repo = format!("strata-test/engine-{}", unique("tag"));
    images.add(format!("{repo}:one"));
    engine.tag(BASE_IMAGE, &repo, "one").await.expect("tag");
    let base = engine
        .inspect_image(BASE_IMAGE)
        .await
        .expect("inspect")
        .expect("base");
    let tagged = engine
        .inspect_image(&format!("{repo}:one"))
        .await
        .expect("inspect")
        .expect("tagged");
    assert_eq!(tagged.id, base.id);
    engine
        .remove_image(&format!("{repo}:one"))
        .await
        .expect("untag");
    assert!(
        engine
            .inspect_image(&format!("{repo}:one"))
            .await
            .expect("inspect")
            .is_none()
    );
    assert!(
        engine
            .inspect_image(BASE_IMAGE)
            .await
            .expect("inspect")
            .is_some()
    );
    let err = engine
        .remove_image(&format!("{repo}:one"))
        .await
        .expect_err("gone");
    assert!(err.is_not_found(), "{err:?}");
    let err = engine
        .tag(&missing, &repo, "x")
        .await
        .expect_err("absent source");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn dropping_a_build_aborts_it() {
    let engine = engine().await;
    let marker = unique("abort-marker");
    let tag = unique_ref("abort");
    let _images = Images(vec![tag.clone()]);
    let dir = context(&[(
        "Dockerfile",
        &format!("FROM strata-test/busybox\nRUN echo {marker} && sleep 60\n"),
    )]);
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![tag.clone()];
    let saw = Arc::new(Mutex::new(false));
    let s = saw.clone();
    let m = marker.clone();
    let build = engine.build(&req, move |l| {
        if l.contains(&m) && !l.contains("RUN") {
            *s.lock().expect("lock") = true;
        }
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(6), build)
            .await
            .is_err()
    );
    assert!(*saw.lock().expect("lock"), "the RUN step had started");
    // The engine stops the step's container and removes it.
    let running = || {
        docker(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"])
            .lines()
            .filter(|c| c.contains(&marker))
            .count()
    };
    let mut left = running();
    for _ in 0..60 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = running();
    }
    assert_eq!(left, 0, "the build container is still there");
    assert!(engine.inspect_image(&tag).await.expect("inspect").is_none());
}

#[tokio::test]
async fn bad_dockerignore_and_missing_dockerfile_are_context_errors() {
    let engine = engine().await;
    let dir = context(&[
        ("Dockerfile", "FROM strata-test/busybox\n"),
        (".dockerignore", "[\n"),
    ]);
    let err = engine
        .build(&BuildRequest::new(dir.path()), |_| {})
        .await
        .expect_err("bad pattern");
    assert!(matches!(err, EngineError::Context { .. }), "{err:?}");
    let dir = context(&[("x", "")]);
    let err = engine
        .build(&BuildRequest::new(dir.path()), |_| {})
        .await
        .expect_err("no Dockerfile");
    assert!(matches!(err, EngineError::Context { .. }), "{err:?}");
    let mut req = BuildRequest::new(dir.path());
    req.dockerfile = "../Dockerfile".to_string();
    let err = engine.build(&req, |_| {}).await.expect_err("outside");
    assert!(matches!(err, EngineError::Context { .. }), "{err:?}");
}

#[tokio::test]
async fn secret_mounts_read_the_secret_and_leave_no_trace() {
    let engine = engine().await;
    let tag = unique_ref("secret");
    let _images = Images(vec![tag.clone()]);
    let value = format!("s3cr3t-{}", unique("v"));
    let secret_dir = tempfile::tempdir().expect("tempdir");
    let secret_file = secret_dir.path().join("token");
    std::fs::write(&secret_file, &value).expect("write secret");
    let dir = context(&[(
        "Dockerfile",
        // A per-run arg: BuildKit's cache key does not cover a secret's value.
        "FROM strata-test/busybox\nARG NONCE\nRUN --mount=type=secret,id=token echo $NONCE >/dev/null && wc -c < /run/secrets/token > /size\nLABEL built.with=secret\n",
    )]);
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![tag.clone()];
    req.labels = BTreeMap::from([("io.strata.test".to_string(), "secret".to_string())]);
    req.build_args = BTreeMap::from([("NONCE".to_string(), unique("nonce"))]);
    req.secrets = vec![strata_engine::BuildSecret {
        id: "token".to_string(),
        source: strata_engine::SecretSource::File(secret_file.clone()),
    }];
    let (built, log) = build_ok(&engine, &req).await;
    let out = engine
        .run_commands(
            &tag,
            &["cat /size; test -e /run/secrets/token || echo gone".to_string()],
        )
        .await
        .expect("run");
    assert_eq!(
        out[0].output.split_whitespace().collect::<Vec<_>>(),
        [value.len().to_string().as_str(), "gone"]
    );
    let info = engine
        .inspect_image(&tag)
        .await
        .expect("inspect")
        .expect("image");
    assert_eq!(info.id, built.id);
    assert_eq!(
        info.labels.get("io.strata.test").map(String::as_str),
        Some("secret")
    );
    let history = engine.history(&tag).await.expect("history");
    let inspected = docker(&["image", "inspect", &tag]);
    for text in [log.join("\n"), format!("{history:?}"), inspected] {
        assert!(!text.contains(&value), "the secret leaked: {text}");
    }

    // Without BuildKit, a secret is refused, not ignored.
    req.builder = Builder::Classic;
    let err = engine
        .build(&req, |_| {})
        .await
        .expect_err("classic refuses secrets");
    assert!(err.to_string().contains("BuildKit"), "{err}");
    assert!(!err.to_string().contains(&value));
}
