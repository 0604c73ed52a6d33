//! TestContainer and image_config against the real Docker engine.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use strata_engine::{BuildRequest, Builder, Engine, EngineError, FileStat, TestContainer};

const DOCKERFILE: &str = r#"FROM strata-test/busybox
RUN mkdir -p /data/dir /work /scratch \
 && printf 'hello\nworld\n' > /data/file.txt \
 && chown 1000:1000 /data/file.txt && chmod 4755 /data/file.txt \
 && chmod 1777 /data/dir && chown 1000:1000 /scratch \
 && ln -s file.txt /data/link \
 && ln -s ../link /data/dir/chain \
 && ln -s /data/nowhere /data/dangling \
 && mkfifo -m 0620 /data/fifo
ENV GREETING=hi STRATA_TEST=1
LABEL org.example.name=container-test org.example.version=1
EXPOSE 8888 53/udp
VOLUME ["/vol", "/cache"]
WORKDIR /work
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo default"]
"#;

/// Force-removes a run's containers and their volumes when dropped, so
/// that a failing test leaves nothing behind (declare it after the
/// [`Images`]: it must go first).
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let filter = format!("label=io.strata.run={}", self.0);
        let Ok(out) = Command::new("docker")
            .args(["ps", "-a", "-q", "--filter", &filter])
            .output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
        }
    }
}

/// An engine with a run id of its own, so its containers can be listed.
async fn engine(name: &str) -> (Engine, Leftovers) {
    ensure_base_image();
    let engine = Engine::connect()
        .await
        .expect("connect to the engine")
        .with_run_id(unique(name));
    let leftovers = Leftovers(engine.run_id().to_string());
    (engine, leftovers)
}

/// Builds `dockerfile` under a unique tag that `images` removes. A unique
/// label after its `FROM` keeps the tests, run in parallel, from building
/// the same image, which another test's clean-up would delete under them.
async fn build(engine: &Engine, dockerfile: &str, images: &mut Images) -> String {
    let tag = unique_ref("container");
    images.add(&tag);
    let (from, rest) = dockerfile.split_once('\n').expect("a FROM line");
    let dockerfile = format!("{from}\nLABEL io.strata.test.build={}\n{rest}", unique("b"));
    let dir = context(&[("Dockerfile", &dockerfile)]);
    let mut req = BuildRequest::new(dir.path());
    req.tags = vec![tag.clone()];
    req.builder = Builder::BuildKit;
    let mut log = Vec::new();
    if let Err(e) = engine.build(&req, |l| log.push(l.to_string())).await {
        panic!("build failed: {e}\n{}", log.join("\n"));
    }
    tag
}

async fn start(name: &str, images: &mut Images) -> (Engine, Leftovers, TestContainer) {
    let (engine, leftovers) = engine(name).await;
    let image = build(&engine, DOCKERFILE, images).await;
    let container = engine
        .start_test_container(&image)
        .await
        .expect("start the test container");
    (engine, leftovers, container)
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[tokio::test]
async fn exec_keeps_stdout_and_stderr_apart_and_reports_exit_codes() {
    let mut images = Images::default();
    let (_engine, _leftovers, c) = start("exec", &mut images).await;

    let out = c
        .exec(&argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]), &[])
        .await
        .expect("exec");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str(), out.exit_code),
        ("out\n", "err\n", 3)
    );
    assert!(!out.success());

    // No shell: the arguments arrive as given.
    let out = c
        .exec(&argv(&["echo", "$GREETING", "a  b"]), &[])
        .await
        .expect("exec");
    assert_eq!(
        (out.stdout.as_str(), out.exit_code),
        ("$GREETING a  b\n", 0)
    );
    assert!(out.success() && out.stderr.is_empty());

    // Extra variables on top of the image's.
    let env = [
        ("FOO".to_string(), "bar baz".to_string()),
        ("GREETING".to_string(), "overridden".to_string()),
    ];
    let out = c
        .exec(
            &argv(&["sh", "-c", "echo \"$FOO|$GREETING|$STRATA_TEST\""]),
            &env,
        )
        .await
        .expect("exec");
    assert_eq!(out.stdout, "bar baz|overridden|1\n", "{out:?}");

    // The image's user and working directory.
    let out = c
        .exec(&argv(&["sh", "-c", "id -u; id -g; pwd"]), &[])
        .await
        .expect("exec");
    assert_eq!(out.stdout, "1000\n1000\n/work\n", "{out:?}");

    // The container keeps its state between commands.
    let out = c
        .exec(&argv(&["sh", "-c", "echo kept > /scratch/state"]), &[])
        .await
        .expect("exec");
    assert!(out.success(), "{out:?}");
    let out = c
        .exec(&argv(&["cat", "/scratch/state"]), &[])
        .await
        .expect("exec");
    assert_eq!(out.stdout, "kept\n");

    let out = c
        .exec(&argv(&["/no/such/program"]), &[])
        .await
        .expect("exec");
    assert!(
        out.exit_code == 126 || out.exit_code == 127,
        "a program that cannot start: {out:?}"
    );

    assert!(matches!(
        c.exec(&[], &[]).await,
        Err(EngineError::InvalidRequest { .. })
    ));
    let bad = [("A=B".to_string(), "c".to_string())];
    assert!(matches!(
        c.exec(&argv(&["true"]), &bad).await,
        Err(EngineError::InvalidRequest { .. })
    ));
    c.remove().await.expect("remove");
}

#[tokio::test]
async fn stat_reports_type_mode_and_owner_without_following_links() {
    let mut images = Images::default();
    let (_engine, _leftovers, c) = start("stat", &mut images).await;
    let stat = |path: &'static str| {
        let c = &c;
        async move {
            c.stat(path)
                .await
                .unwrap_or_else(|e| panic!("stat {path}: {e}"))
        }
    };

    let file = stat("/data/file.txt").await.expect("the file exists");
    assert_eq!(
        file,
        FileStat {
            mode: 0o104755,
            uid: 1000,
            gid: 1000
        },
        "{:o}",
        file.mode
    );
    assert!(file.is_file() && !file.is_dir() && !file.is_symlink());
    assert_eq!(file.permissions(), 0o4755);

    let dir = stat("/data/dir").await.expect("the folder exists");
    assert_eq!(
        dir,
        FileStat {
            mode: 0o041777,
            uid: 0,
            gid: 0
        },
        "{:o}",
        dir.mode
    );
    assert!(dir.is_dir());

    let scratch = stat("/scratch").await.expect("exists");
    assert_eq!(
        (scratch.mode, scratch.uid, scratch.gid),
        (0o040755, 1000, 1000)
    );

    let link = stat("/data/link").await.expect("the link exists");
    assert_eq!(
        link.mode & strata_structure::S_IFMT,
        0o120000,
        "{:o}",
        link.mode
    );
    assert!(link.is_symlink());
    // A dangling link exists all the same.
    assert!(stat("/data/dangling").await.expect("exists").is_symlink());

    let fifo = stat("/data/fifo").await.expect("the fifo exists");
    assert_eq!(fifo.mode, 0o010620, "{:o}", fifo.mode);

    let root = stat("/").await.expect("the root exists");
    assert!(root.is_dir(), "{:o}", root.mode);

    assert_eq!(stat("/no/such/path").await, None);
    assert_eq!(stat("/data/missing").await, None);
    assert_eq!(stat("/data/file.txt/below").await, None);
    c.remove().await.expect("remove");
}

#[tokio::test]
async fn read_file_reads_regular_files_through_links() {
    let mut images = Images::default();
    let (_engine, _leftovers, c) = start("read", &mut images).await;
    let content = b"hello\nworld\n".to_vec();
    for path in ["/data/file.txt", "/data/link", "/data/dir/chain"] {
        assert_eq!(
            c.read_file(path).await.expect("read"),
            Some(content.clone()),
            "{path}"
        );
    }
    // An empty file, and a binary one.
    let out = c
        .exec(
            &argv(&[
                "sh",
                "-c",
                ": > /scratch/empty && printf '\\000\\377\\001' > /scratch/bin",
            ]),
            &[],
        )
        .await
        .expect("exec");
    assert!(out.success(), "{out:?}");
    assert_eq!(
        c.read_file("/scratch/empty").await.expect("read"),
        Some(Vec::new())
    );
    assert_eq!(
        c.read_file("/scratch/bin").await.expect("read"),
        Some(vec![0, 255, 1])
    );

    assert_eq!(c.read_file("/no/such/file").await.expect("read"), None);
    assert_eq!(c.read_file("/data/dangling").await.expect("read"), None);

    let err = c.read_file("/data/dir").await.expect_err("a folder");
    assert!(
        matches!(err, EngineError::InvalidRequest { .. }) && err.to_string().contains("directory"),
        "{err}"
    );
    let err = c.read_file("/data/fifo").await.expect_err("a fifo");
    assert!(err.to_string().contains("/data/fifo"), "{err}");

    // A loop of links is an error, not a hang.
    let out = c
        .exec(
            &argv(&[
                "sh",
                "-c",
                "ln -s loop2 /scratch/loop1 && ln -s loop1 /scratch/loop2",
            ]),
            &[],
        )
        .await
        .expect("exec");
    assert!(out.success(), "{out:?}");
    // (The engine itself refuses to describe a link in a loop.)
    let err = c.read_file("/scratch/loop1").await.expect_err("a loop");
    let msg = err.to_string();
    assert!(
        msg.contains("symbolic links") || msg.contains("too many links"),
        "{msg}"
    );
    // A long chain that ends is followed.
    let out = c
        .exec(
            &argv(&[
                "sh",
                "-c",
                "cd /scratch && ln -s /data/link c0 && for i in $(seq 1 10); do ln -s c$((i-1)) c$i; done",
            ]),
            &[],
        )
        .await
        .expect("exec");
    assert!(out.success(), "{out:?}");
    assert_eq!(
        c.read_file("/scratch/c10").await.expect("read"),
        Some(content.clone())
    );
    c.remove().await.expect("remove");
}

#[tokio::test]
async fn a_big_folder_or_file_is_not_transferred() {
    let mut images = Images::default();
    let (_engine, _leftovers, c) = start("big", &mut images).await;
    // Sparse: they take no space, but an archive of them would carry 16 GiB.
    let out = c
        .exec(
            &argv(&[
                "sh",
                "-c",
                "truncate -s 16G /scratch/huge && truncate -s 17M /scratch/over",
            ]),
            &[],
        )
        .await
        .expect("exec");
    assert!(out.success(), "{out:?}");

    let started = Instant::now();
    let dir = c.stat("/scratch").await.expect("stat").expect("exists");
    let file = c
        .stat("/scratch/huge")
        .await
        .expect("stat")
        .expect("exists");
    let elapsed = started.elapsed();
    assert!(dir.is_dir() && file.is_file());
    assert_eq!((file.mode, file.uid), (0o100644, 1000), "{:o}", file.mode);
    assert!(elapsed < Duration::from_secs(3), "stat took {elapsed:?}");

    // Over the limit: an error naming the path and the size (16 GiB needs a
    // PAX size record), read from the header alone.
    let started = Instant::now();
    let err = c.read_file("/scratch/huge").await.expect_err("too big");
    assert!(
        err.to_string().contains("/scratch/huge") && err.to_string().contains("17179869184"),
        "{err}"
    );
    let err = c.read_file("/scratch/over").await.expect_err("too big");
    assert!(
        err.to_string().contains("/scratch/over") && err.to_string().contains("17825792"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // The engine is still fine with the container afterwards.
    let out = c.exec(&argv(&["true"]), &[]).await.expect("exec");
    assert!(out.success(), "{out:?}");
    c.remove().await.expect("remove");
}

#[tokio::test]
async fn image_config_reads_the_config() {
    let mut images = Images::default();
    let (engine, _leftovers) = engine("config").await;
    let image = build(&engine, DOCKERFILE, &mut images).await;
    let config = engine.image_config(&image).await.expect("config");
    assert!(
        config.env.contains(&"GREETING=hi".to_string()),
        "{config:?}"
    );
    assert!(
        config.env.contains(&"STRATA_TEST=1".to_string()),
        "{config:?}"
    );
    assert!(
        config.env.iter().any(|e| e.starts_with("PATH=")),
        "{config:?}"
    );
    let mut labels = config.labels.clone();
    assert!(
        labels.remove("io.strata.test.build").is_some(),
        "{labels:?}"
    );
    assert_eq!(
        labels,
        BTreeMap::from([
            ("org.example.name".to_string(), "container-test".to_string()),
            ("org.example.version".to_string(), "1".to_string()),
        ])
    );
    assert_eq!(config.entrypoint, Some(argv(&["/bin/sh", "-c"])));
    assert_eq!(config.cmd, Some(argv(&["echo default"])));
    assert_eq!(config.exposed_ports, argv(&["53/udp", "8888/tcp"]));
    assert_eq!(config.volumes, argv(&["/cache", "/vol"]));
    assert_eq!(config.workdir, "/work");
    assert_eq!(config.user, "1000:1000");

    let base = engine.image_config(BASE_IMAGE).await.expect("config");
    assert_eq!(base.entrypoint, None);
    assert_eq!(base.cmd, Some(argv(&["/bin/sh"])));
    assert!(base.exposed_ports.is_empty() && base.volumes.is_empty() && base.labels.is_empty());
    assert_eq!((base.workdir.as_str(), base.user.as_str()), ("", ""));

    let err = engine
        .image_config("strata-test/no-such-image:nope")
        .await
        .expect_err("absent");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn remove_removes_the_container_and_so_does_dropping_it() {
    let mut images = Images::default();
    let (engine, _leftovers, c) = start("remove", &mut images).await;
    let listed = containers_of_run(engine.run_id());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(c.id().starts_with(&listed[0]), "{c:?} {listed:?}");
    c.remove().await.expect("remove");
    assert!(containers_of_run(engine.run_id()).is_empty());

    let c = engine
        .start_test_container(BASE_IMAGE)
        .await
        .expect("start");
    assert_eq!(containers_of_run(engine.run_id()).len(), 1);
    drop(c);
    assert_run_containers_go(engine.run_id()).await;
}

#[tokio::test]
async fn a_container_that_cannot_start_leaves_nothing() {
    let mut images = Images::default();
    let (engine, _leftovers) = engine("nostart").await;
    let err = engine
        .start_test_container("strata-test/no-such-image:nope")
        .await
        .expect_err("no image");
    assert!(err.is_not_found(), "{err:?}");

    let image = build(
        &engine,
        "FROM strata-test/busybox\nUSER no-such-user\n",
        &mut images,
    )
    .await;
    let err = engine
        .start_test_container(&image)
        .await
        .expect_err("an unknown user");
    assert!(err.to_string().contains("no-such-user"), "{err}");
    assert!(containers_of_run(engine.run_id()).is_empty());
}

#[tokio::test]
async fn a_removed_container_is_an_error_not_an_absent_path() {
    let mut images = Images::default();
    let (engine, _leftovers, c) = start("gone", &mut images).await;
    docker(&["rm", "-f", "-v", c.id()]);
    let err = c.stat("/data/file.txt").await.expect_err("gone");
    assert!(err.is_not_found(), "{err:?}");
    assert!(c.exec(&argv(&["true"]), &[]).await.is_err());
    c.remove().await.expect("removing it again is fine");
    assert!(containers_of_run(engine.run_id()).is_empty());
}
