//! Push and pull against a real registry (Debian's docker-registry on loopback).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use strata_engine::{Engine, EngineError, RegistryAuth};

/// A docker-registry serving on 127.0.0.1:<port>, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (scripts/setup.sh installs it)");
        let reg = Registry {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while reg.get("/v2/", "").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A raw HTTP/1.0 request; the response head and body.
    fn get(&self, path: &str, method_and_headers: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let method = if method_and_headers.is_empty() {
            "GET"
        } else {
            "HEAD"
        };
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\n{method_and_headers}\r\n",
            self.host()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/").then_some(out)
    }

    /// The Docker-Content-Digest the registry reports for repo:tag.
    fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let head = self.get(
            &format!("/v2/{repo}/manifests/{tag}"),
            "Accept: application/vnd.docker.distribution.manifest.v2+json\r\n",
        )?;
        head.lines().find_map(|l| {
            l.strip_prefix("Docker-Content-Digest: ")
                .map(|d| d.trim().to_string())
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn push_returns_the_registry_digest_and_pull_brings_it_back() {
    ensure_base_image();
    let engine = Engine::connect().await.expect("connect");
    let reg = Registry::start();
    let name = format!("strata-test/push-{}", unique("p"));
    let repo = format!("{}/{name}", reg.host());
    let reference = format!("{repo}:v1");
    let mut images = Images::default();
    images.add(&reference);
    engine.tag(BASE_IMAGE, &repo, "v1").await.expect("tag");

    let mut log = Vec::new();
    // Credentials are sent but this registry does not ask for them.
    let auth = RegistryAuth::basic(reg.host(), "someone", "pw-never-shown");
    let digest = engine
        .push(&reference, Some(&auth), |l| log.push(l.to_string()))
        .await
        .expect("push");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(
        reg.manifest_digest(&name, "v1").as_deref(),
        Some(digest.as_str())
    );
    assert!(log.iter().any(|l| l.contains(&digest)), "{log:?}");
    let info = engine
        .inspect_image(&reference)
        .await
        .expect("inspect")
        .expect("present");
    assert!(
        info.repo_digests.contains(&format!("{repo}@{digest}")),
        "{info:?}"
    );

    // Gone locally, then pulled back by tag and by digest.
    engine.remove_image(&reference).await.expect("untag");
    assert!(
        engine
            .inspect_image(&reference)
            .await
            .expect("inspect")
            .is_none()
    );
    engine.pull(&reference, None).await.expect("pull");
    let pulled = engine
        .inspect_image(&reference)
        .await
        .expect("inspect")
        .expect("pulled");
    assert_eq!(pulled.id, info.id);
    engine
        .pull(&format!("{repo}@{digest}"), None)
        .await
        .expect("pull by digest");

    // A tag the registry does not have.
    let err = engine
        .pull(&format!("{repo}:missing"), None)
        .await
        .expect_err("no such tag");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn push_errors_are_typed_and_keep_secrets_out() {
    ensure_base_image();
    let engine = Engine::connect().await.expect("connect");
    // A local image that does not exist.
    let err = engine
        .push(&unique_ref("nopush"), None, |_| {})
        .await
        .expect_err("absent");
    assert!(err.is_not_found(), "{err:?}");

    // A registry that is not there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let repo = format!("127.0.0.1:{port}/strata-test/{}", unique("down"));
    let _images = Images(vec![format!("{repo}:v1")]);
    engine.tag(BASE_IMAGE, &repo, "v1").await.expect("tag");
    let auth = RegistryAuth::basic(format!("127.0.0.1:{port}"), "bob", "s3cret-password-xyz");
    let err = engine
        .push(&format!("{repo}:v1"), Some(&auth), |l| {
            assert!(!l.contains("s3cret-password-xyz"))
        })
        .await
        .expect_err("registry down");
    assert!(matches!(err, EngineError::PushFailed { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret-password-xyz"), "{shown}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

/// A BuildKit image carries inline cache metadata, so after the local build
/// cache is gone, a build with it as `cache_from` reuses its layers.
#[tokio::test]
async fn a_pushed_buildkit_image_is_a_cache_for_the_next_build() {
    ensure_base_image();
    let engine = Engine::connect().await.expect("connect");
    let reg = Registry::start();
    let name = format!("strata-test/cache-{}", unique("c"));
    let reference = format!("{}/{name}:v1", reg.host());
    let mut images = Images::default();
    images.add(&reference);
    let step = format!("RUN echo {} > /nonce", unique("n"));
    let dir = context(&[("Dockerfile", &format!("FROM strata-test/busybox\n{step}\n"))]);
    let mut req = strata_engine::BuildRequest::new(dir.path());
    req.tags = vec![reference.clone()];
    engine.build(&req, |_| {}).await.expect("first build");
    engine.push(&reference, None, |_| {}).await.expect("push");
    images.add(&reference);
    engine
        .remove_image(&reference)
        .await
        .expect("remove the local image");
    // Only unused cache records go: running builds keep theirs.
    docker(&["builder", "prune", "-af"]);

    req.cache_from = vec![reference.clone()];
    let mut log = Vec::new();
    engine
        .build(&req, |l| log.push(l.to_string()))
        .await
        .expect("build with cache_from");
    let run_step = log
        .iter()
        .find(|l| l.contains("] RUN ") && l.ends_with(&step))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no RUN step in {log:#?}"))
        .to_string();
    assert!(
        log.iter().any(|l| l == &format!("{run_step} CACHED")),
        "the step ran again instead of coming from the pushed image's cache:\n{}",
        log.join("\n")
    );
}
