//! End-to-end tests of the `strata` binary's registry side against a real
//! `docker-registry` on loopback and the real Docker engine: `build --push`,
//! online `plan` (parents resolved in the registry, pinned by digest), the
//! run's tag on unchanged images, `promote` (dry run, all-or-nothing,
//! `stable`), `wiki`, credentials from `DOCKER_CONFIG` (and no secret in any
//! output), and a fault-injecting proxy between the client and the registry.
//!
//! Image names are `127.0.0.1:<port>/e2e-<test>/<image>`: the engine pushes
//! to loopback registries over plain HTTP. Every image a test builds is
//! removed from the engine when the test ends.

mod common;

use assert_cmd::Command;
use common::{BASE_IMAGE, describe, docker_ok, each_image, ensure_base_image, run_json};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_core::reference::{ImageName, ImageRef};
use strata_registry::testing::{Family, TestRegistry, push_tagged_image};
use strata_registry::{CredentialSource, DockerConfig, Registry, RegistryOptions};
use tempfile::TempDir;

// ---------------------------------------------------------------- fixtures

const PREFIX: &str = "v1";

fn start_registry() -> TestRegistry {
    TestRegistry::start().unwrap_or_else(|e| panic!("docker-registry: {e}"))
}

/// A git repository holding a stack, in a temporary directory, with an
/// empty Docker config of its own (`DOCKER_CONFIG`) unless a test writes one.
struct Stack {
    _tmp: TempDir,
    dir: PathBuf,
    docker_config: PathBuf,
    /// `127.0.0.1:<port>/e2e-<test>`.
    namespace: String,
    images: Vec<&'static str>,
}

/// `root` FROM the local busybox, `child` on `root`, `grand` on `child`.
fn parent_of(image: &str) -> Option<&'static str> {
    match image {
        "child" => Some("root"),
        "grand" => Some("child"),
        _ => None,
    }
}

impl Stack {
    /// The first `count` images of root → child → grand, committed once.
    fn new(host: &str, test: &str, count: usize) -> Stack {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let docker_config = tmp.path().join("docker-config");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&docker_config).unwrap();
        std::fs::write(docker_config.join("config.json"), "{}\n").unwrap();
        let images: Vec<&'static str> = ["root", "child", "grand"][..count].to_vec();
        let stack = Stack {
            _tmp: tmp,
            dir,
            docker_config,
            namespace: format!("{host}/e2e-{test}"),
            images,
        };
        stack.git(&["init", "-q", "-b", "main"]);
        let mut spec = String::from("root: root\nimages:\n");
        for image in &stack.images {
            spec.push_str(&format!(
                "  {image}:\n    image_name: {}\n",
                stack.name(image)
            ));
            if let Some(p) = parent_of(image) {
                spec.push_str(&format!("    depend_on: {p}\n"));
            }
        }
        spec.push_str(&format!("tag:\n  prefix: \"{PREFIX}\"\n"));
        stack.write("images/spec.yml", &spec);
        for image in stack.images.clone() {
            stack.set_content(image, "1");
        }
        stack.commit("first");
        stack
    }

    /// `127.0.0.1:<port>/e2e-<test>/<image>`.
    fn name(&self, image: &str) -> String {
        format!("{}/{image}", self.namespace)
    }

    /// `name:tag` of an image.
    fn reference(&self, image: &str, tag: &str) -> String {
        format!("{}:{tag}", self.name(image))
    }

    /// Makes the root `FROM scratch` with the machine's busybox, then
    /// `steps`: an image an engine with no images can build.
    fn busybox_root(&self, steps: &str) {
        self.write(
            "images/root/Dockerfile",
            &format!("FROM scratch\nCOPY busybox /bin/busybox\n{steps}"),
        );
        std::fs::copy("/bin/busybox", self.dir.join("images/root/busybox")).unwrap();
    }

    /// Writes the image's Dockerfile with `content` baked into a file.
    fn set_content(&self, image: &str, content: &str) {
        let from = match parent_of(image) {
            Some(p) => format!("ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\n", self.name(p)),
            None => format!("FROM {BASE_IMAGE}\n"),
        };
        self.write(
            &format!("images/{image}/Dockerfile"),
            &format!("{from}RUN echo '{image} {content}' > /{image}.txt\n"),
        );
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=strata-test",
                "-c",
                "user.email=t@example.invalid",
            ])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Commits everything; returns the new head's 7-character hash.
    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "--short=7", "HEAD"])
    }

    /// `strata` in the repository, isolated from the CI environment of the
    /// test run and from the user's Docker config.
    fn strata(&self) -> Command {
        let mut cmd = Command::from_std(common::strata(&self.dir));
        cmd.env("DOCKER_CONFIG", &self.docker_config)
            .timeout(Duration::from_secs(300));
        cmd
    }

    /// `strata plan --format json` of the head, which must succeed.
    fn plan_json(&self) -> Value {
        self.plan_json_as("json")
    }

    /// `strata plan --format <format>` of the head (a JSON format), which
    /// must succeed.
    fn plan_json_as(&self, format: &str) -> Value {
        let planned = self
            .strata()
            .args(["plan", "--format", format])
            .output()
            .unwrap();
        expect_code(&planned, 0);
        serde_json::from_slice(&planned.stdout).unwrap()
    }

    /// Runs a job graph's command (`["strata", …]`) with `--out <out>`.
    fn run_argv(&self, argv: &Value, out: &Path) -> Output {
        let argv: Vec<&str> = argv
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv[0], "strata", "{argv:?}");
        self.strata()
            .args(&argv[1..])
            .args(["--out".as_ref(), out.as_os_str()])
            .output()
            .unwrap()
    }

    /// `strata build --push --out <out>`.
    fn build_push(&self, out: &Path) -> Output {
        self.build_push_with(out, &["--jobs", "2"])
    }

    /// `strata build --push ARGS --out <out>`.
    fn build_push_with(&self, out: &Path, args: &[&str]) -> Output {
        self.strata()
            .args(["build", "--push"])
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    }

    /// Removes every image of this test's namespace from the engine.
    fn remove_images(&self) {
        let Ok(out) = std::process::Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        else {
            return;
        };
        let prefix = format!("{}/", self.namespace);
        let refs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if !refs.is_empty() {
            let _ = std::process::Command::new("docker")
                .arg("rmi")
                .arg("-f")
                .args(&refs)
                .output();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.remove_images();
    }
}

#[track_caller]
fn expect_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// The `digest:` of each image's YAML artifact under `out`, by image key.
fn artifact_digests(out: &Path) -> BTreeMap<String, String> {
    let mut digests = BTreeMap::new();
    for entry in std::fs::read_dir(out.join("artifacts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let yaml = std::fs::read_to_string(&path).unwrap();
        let field = |key: &str| {
            yaml.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}: ")))
                .map(|v| v.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("{}: no {key}:\n{yaml}", path.display()))
        };
        digests.insert(field("image"), field("digest"));
    }
    digests
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

// ------------------------------------------------------- registry access

struct Client {
    rt: tokio::runtime::Runtime,
    registry: Registry,
}

impl Client {
    fn anonymous() -> Client {
        Client::with(CredentialSource::Anonymous)
    }

    fn with(credentials: CredentialSource) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let registry = Registry::new(RegistryOptions {
            credentials,
            ..RegistryOptions::default()
        })
        .unwrap();
        Client { rt, registry }
    }

    /// The digest `reference` names in the registry, if it exists.
    fn digest(&self, reference: &str) -> Option<String> {
        let r: ImageRef = reference.parse().unwrap();
        self.rt
            .block_on(self.registry.head_manifest(&r))
            .unwrap_or_else(|e| panic!("HEAD {reference}: {e}"))
            .map(|i| i.digest.to_string())
    }

    /// The OCI index at `reference`, which must be one, as JSON.
    #[track_caller]
    fn index(&self, reference: &str) -> Value {
        let r: ImageRef = reference.parse().unwrap();
        let index = self
            .rt
            .block_on(self.registry.get_manifest(&r))
            .unwrap()
            .unwrap_or_else(|| panic!("{reference} is not in the registry"));
        assert!(index.is_index(), "{reference} is {}", index.media_type());
        serde_json::from_slice(index.bytes()).unwrap()
    }

    #[track_caller]
    /// The config digest of the manifest `reference` names.
    fn config_digest(&self, reference: &str) -> String {
        let r: ImageRef = reference.parse().unwrap();
        let manifest = self
            .rt
            .block_on(self.registry.get_manifest(&r))
            .unwrap_or_else(|e| panic!("GET {reference}: {e}"))
            .unwrap_or_else(|| panic!("{reference} is not in the registry"));
        let json: Value = serde_json::from_slice(manifest.bytes()).unwrap();
        json["config"]["digest"].as_str().unwrap().to_string()
    }

    fn expect_digest(&self, reference: &str) -> String {
        self.digest(reference)
            .unwrap_or_else(|| panic!("{reference} is not in the registry"))
    }

    /// Every tag of every repository listed, with its digest.
    fn snapshot(&self, names: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for name in names {
            let n: ImageName = name.parse().unwrap();
            let tags = match self.rt.block_on(self.registry.list_tags(&n)) {
                Ok(tags) => tags,
                Err(e) if e.is_not_found() => Vec::new(),
                Err(e) => panic!("tags of {name}: {e}"),
            };
            for tag in tags {
                let r = format!("{name}:{tag}");
                let d = self.expect_digest(&r);
                out.insert(r, d);
            }
        }
        out
    }

    fn copy(&self, from: &str, to: &str) {
        let (f, t): (ImageRef, ImageRef) = (from.parse().unwrap(), to.parse().unwrap());
        self.rt
            .block_on(self.registry.copy(&f, &t))
            .unwrap_or_else(|e| panic!("copy {from} -> {to}: {e}"));
    }

    /// Uploads a small image (no engine) and tags it.
    fn upload(&self, reference: &str, seed: &str) -> String {
        let r: ImageRef = reference.parse().unwrap();
        self.rt
            .block_on(push_tagged_image(&self.registry, &r, Family::Docker, seed))
            .unwrap_or_else(|e| panic!("upload {reference}: {e}"))
            .digest()
            .to_string()
    }
}

// ------------------------------------------------ fault-injecting proxy

/// A small HTTP proxy in front of a registry that can drop a request's
/// connection or answer it with an error instead of forwarding it. It
/// speaks one request per connection (it asks the registry to close after
/// each answer) and streams bodies through, so it carries the engine's
/// chunked layer uploads as well as the registry client's requests.
struct Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    rt: tokio::runtime::Runtime,
}

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Forward,
    /// Close the connection without answering.
    Drop,
    /// Answer with this status and a registry error body.
    Fail(u16),
}

type Rule = Arc<dyn Fn(&str, &str) -> Action + Send + Sync>;

mod proxy {
    use super::{Action, Rule};
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    pub async fn handle(
        mut client: TcpStream,
        upstream: SocketAddr,
        rule: Rule,
        log: Arc<Mutex<Vec<String>>>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            // The engine tries TLS first (a handshake record starts with
            // 0x16) and falls back to plain HTTP when refused; refuse at
            // once rather than leave it to its 10 s handshake timeout.
            if buf[0] == 0x16 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut first = head.lines().next().unwrap_or("").split_whitespace();
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let path = target.split('?').next().unwrap_or("").to_string();
        let action = rule(&method, &path);
        log.lock()
            .unwrap()
            .push(format!("{method} {path} {action:?}"));
        match action {
            Action::Drop => Ok(()),
            Action::Fail(status) => {
                // Read a small body first, so that closing does not reset
                // the connection before the client reads the answer.
                let len: usize = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len && len < 1 << 20 {
                    let n = client.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let (reason, code) = match status {
                    503 => ("Service Unavailable", "UNAVAILABLE"),
                    _ => ("Internal Server Error", "UNKNOWN"),
                };
                let body = format!(
                    r#"{{"errors":[{{"code":"{code}","message":"injected by the test proxy"}}]}}"#
                );
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(answer.as_bytes()).await?;
                client.shutdown().await
            }
            Action::Forward => {
                let mut rewritten = String::new();
                for line in head[..head_end - 4].split("\r\n") {
                    let name = line.split(':').next().unwrap_or("").trim();
                    if name.eq_ignore_ascii_case("connection")
                        || name.eq_ignore_ascii_case("keep-alive")
                    {
                        continue;
                    }
                    rewritten.push_str(line);
                    rewritten.push_str("\r\n");
                }
                rewritten.push_str("Connection: close\r\n\r\n");
                let mut up = TcpStream::connect(upstream).await?;
                up.write_all(rewritten.as_bytes()).await?;
                up.write_all(&buf[head_end..]).await?;
                let (mut client_read, mut client_write) = client.into_split();
                let (mut up_read, mut up_write) = up.into_split();
                let to_upstream = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
                });
                // The registry closes after its answer (Connection: close),
                // which it also tells the client.
                let copied = tokio::io::copy(&mut up_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
                to_upstream.abort();
                copied.map(|_| ())
            }
        }
    }
}

impl Proxy {
    fn start(
        upstream: SocketAddr,
        rule: impl Fn(&str, &str) -> Action + Send + Sync + 'static,
    ) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Rule = Arc::new(rule);
        let task_log = log.clone();
        rt.spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let (rule, log) = (rule.clone(), task_log.clone());
                tokio::spawn(async move {
                    let _ = proxy::handle(sock, upstream, rule, log).await;
                });
            }
        });
        Proxy { addr, log, rt }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Nothing to join: the runtime's tasks end with it.
        let _ = &self.rt;
    }
}

fn is_manifest_put(method: &str, path: &str) -> bool {
    method == "PUT" && path.contains("/manifests/")
}

// ------------------------------------------------------------------ tests

/// Build and push a three-image stack; change only the grandchild; the
/// online plan builds it on the child's pushed digest; the second push
/// rebuilds only it and gives every image the run's tag; then promotion
/// (dry run, for real, `stable`, a missing source, a wrong target) and the
/// wiki pages.
#[test]
fn build_push_then_rebuild_one_then_promote_and_wiki() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "stack", 3);
    let client = Client::anonymous();
    let sha1 = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let tag1 = format!("{PREFIX}-{sha1}");
    let work = tempfile::tempdir().unwrap();

    // 1. First commit: everything is built and pushed.
    let out1 = work.path().join("run1");
    let built = stack.build_push(&out1);
    expect_code(&built, 0);
    let first = artifact_digests(&out1);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["child", "grand", "root"],
        "{}",
        describe(&built)
    );
    for (image, digest) in &first {
        assert!(digest.starts_with("sha256:"), "{image}: {digest}");
        assert_eq!(
            &client.expect_digest(&stack.reference(image, &tag1)),
            digest,
            "{image}: the artifact's digest is not the registry's"
        );
    }
    let run1 = run_json(&out1);
    assert_eq!(run1["success"], true);
    for i in run1["images"].as_array().unwrap() {
        assert_eq!(i["outcome"], "built", "{i}");
        assert_eq!(
            i["digest"].as_str(),
            first.get(i["image"].as_str().unwrap()).map(String::as_str)
        );
    }
    // Each child was built on its parent's local image while the parent
    // pushed: its label names the image ID the parent then pushed, and
    // its own push came after the parent's.
    let run_log = std::fs::read_to_string(out1.join("logs/run.log")).unwrap();
    let line_of = |needle: &str| {
        run_log
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no '{needle}' in\n{run_log}"))
    };
    for (parent, child) in [("root", "child"), ("child", "grand")] {
        let parent_ref = stack.reference(parent, &tag1);
        let child_ref = stack.reference(child, &tag1);
        let parent_id = run1["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == parent)
            .and_then(|i| i["image_id"].as_str())
            .unwrap_or_default()
            .to_string();
        let built_on = docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"io.strata.base.id\"}}",
            &child_ref,
        ]);
        assert_eq!(built_on, parent_id, "{child}");
        assert!(
            line_of(&format!("{parent_ref} push ok"))
                < line_of(&format!("{child_ref} push started")),
            "{run_log}"
        );
    }

    // 2. Change only the grandchild.
    stack.set_content("grand", "2");
    let sha2 = stack.commit("grand: 2");
    let tag2 = format!("{PREFIX}-{sha2}");
    let plan = stack.plan_json();
    let builds = plan["builds"].as_array().unwrap();
    let by_image = |image: &str| {
        builds
            .iter()
            .find(|b| b["image"] == image)
            .unwrap_or_else(|| panic!("no {image} in {plan}"))
            .clone()
    };
    assert_eq!(by_image("root")["rebuild"], false, "{plan}");
    assert_eq!(by_image("child")["rebuild"], false, "{plan}");
    let grand = by_image("grand");
    assert_eq!(grand["rebuild"], true, "{plan}");
    assert_eq!(grand["reason"], "images/grand/Dockerfile");
    assert_eq!(grand["tag"], tag2.as_str());
    let pinned = format!("{}@{}", stack.reference("child", &tag1), first["child"]);
    assert_eq!(grand["base_ref"], pinned.as_str(), "{plan}");
    assert_eq!(
        grand["build_args"]["BASE_TAG"],
        format!("{tag1}@{}", first["child"]).as_str()
    );
    // For bake: FROM names the published parent's tag, which a named
    // context pins by digest.
    let bake = stack.plan_json_as("bake");
    let target = &bake["target"]["default-grand"];
    assert_eq!(target["args"]["BASE_TAG"], tag1.as_str(), "{bake:#}");
    assert_eq!(
        target["contexts"][stack.reference("child", &tag1)],
        format!("docker-image://{pinned}"),
        "{bake:#}"
    );

    let out2 = work.path().join("run2");
    let built = stack.build_push(&out2);
    expect_code(&built, 0);
    let run2 = run_json(&out2);
    let rebuilt: Vec<&str> = run2["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "built")
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(rebuilt, ["grand"], "{}", describe(&built));
    // Its manifest compares it with its previous published build.
    let grand_result = run2["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "grand")
        .unwrap();
    let since = grand_result["growth"]["since"].as_str().unwrap_or_default();
    assert_eq!(
        since,
        format!("{}@{}", stack.reference("grand", &tag1), first["grand"]),
        "{grand_result:#}"
    );
    assert!(grand_result["growth"]["bytes"].is_i64(), "{grand_result:#}");
    let manifest = files_under(&out2.join("manifests"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    assert!(
        manifest.contains("## Changes since") && manifest.contains(&tag1),
        "{manifest}"
    );
    let second = artifact_digests(&out2);
    assert_eq!(second.keys().collect::<Vec<_>>(), ["grand"]);
    assert_ne!(second["grand"], first["grand"]);
    // A tag names a whole stack: the unchanged images carry the run's tag
    // too, at the digests the grandchild was built on.
    for image in ["root", "child"] {
        assert_eq!(
            client.expect_digest(&stack.reference(image, &tag2)),
            first[image],
            "{image} does not carry {tag2} at its published digest\n{}",
            describe(&built)
        );
    }
    assert_eq!(
        client.expect_digest(&stack.reference("grand", &tag2)),
        second["grand"]
    );
    // The earlier run's tags are untouched.
    for (image, digest) in &first {
        assert_eq!(
            &client.expect_digest(&stack.reference(image, &tag1)),
            digest
        );
    }

    // 3. Promotion.
    let names: Vec<String> = stack.images.iter().map(|i| stack.name(i)).collect();
    let stable = format!("{PREFIX}-stable");
    let before = client.snapshot(&names);
    let dry = stack
        .strata()
        .args(["promote", "--from", &tag2, "--to", &stable, "--dry-run"])
        .output()
        .unwrap();
    expect_code(&dry, 0);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("would move"),
        "{}",
        describe(&dry)
    );
    assert_eq!(client.snapshot(&names), before, "a dry run moved tags");

    let promoted = stack
        .strata()
        .args(["promote", "--from", &tag2, "--to", &stable, "--out"])
        .arg(&out2)
        .output()
        .unwrap();
    expect_code(&promoted, 0);
    for image in &stack.images {
        assert_eq!(
            client.expect_digest(&stack.reference(image, &stable)),
            client.expect_digest(&stack.reference(image, &tag2)),
            "{image}:{stable}"
        );
    }
    let global = stack
        .strata()
        .args(["promote", "--from", &tag2, "--to", "stable", "--out"])
        .arg(&out2)
        .output()
        .unwrap();
    expect_code(&global, 0);
    for image in &stack.images {
        assert_eq!(
            client.expect_digest(&stack.reference(image, "stable")),
            client.expect_digest(&stack.reference(image, &tag2)),
            "{image}:stable"
        );
    }

    // 4. Wiki pages, written twice: the same pages, no duplicate rows.
    let wiki = work.path().join("wiki");
    let write_wiki = || {
        let out = stack
            .strata()
            .args(["wiki", "--from"])
            .arg(&out2)
            .arg("--out")
            .arg(&wiki)
            .output()
            .unwrap();
        expect_code(&out, 0);
        (
            std::fs::read_to_string(wiki.join("Home.md")).unwrap(),
            std::fs::read_to_string(wiki.join("Stable_Tag.md")).unwrap(),
        )
    };
    let (home, stable_page) = write_wiki();
    assert_eq!(home.matches(&format!("`{tag2}`")).count(), 1, "{home}");
    for image in &stack.images {
        let line = stable_page
            .lines()
            .find(|l| l.contains(&format!("`{}`", stack.reference(image, "stable"))))
            .unwrap_or_else(|| panic!("no row for {image}:stable in\n{stable_page}"));
        let digest = client.expect_digest(&stack.reference(image, "stable"));
        assert!(line.contains(&digest), "{line} lacks {digest}");
    }
    assert_eq!(
        stable_page.matches("strata:promotion=").count(),
        1,
        "{stable_page}"
    );
    let (home_again, stable_again) = write_wiki();
    assert_eq!(home_again, home, "a second wiki run changed Home.md");
    // In JSON, wiki says which pages it wrote, each of them there.
    let json = stack
        .strata()
        .args(["--format", "json", "wiki", "--from"])
        .arg(&out2)
        .arg("--out")
        .arg(&wiki)
        .output()
        .unwrap();
    expect_code(&json, 0);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("wiki --format json: {e}\n{}", describe(&json)));
    assert_eq!(doc["out"], wiki.display().to_string());
    let pages: Vec<&str> = doc["pages"]
        .as_array()
        .unwrap_or_else(|| panic!("no pages in {doc}"))
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        pages.iter().any(|p| p.ends_with("Home.md"))
            && pages.iter().any(|p| p.ends_with("Stable_Tag.md")),
        "{doc}"
    );
    for page in &pages {
        assert!(Path::new(page).is_file(), "{page} listed but not written");
    }
    assert_eq!(
        stable_again, stable_page,
        "a second wiki run changed Stable_Tag.md"
    );

    // 5. A source missing for one image: exit 1, nothing moves.
    let partial = format!("{PREFIX}-partial");
    for image in ["root", "child"] {
        client.copy(
            &stack.reference(image, &tag1),
            &stack.reference(image, &partial),
        );
    }
    let before = client.snapshot(&names);
    let missing = stack
        .strata()
        .args(["promote", "--from", &partial, "--to", &stable])
        .output()
        .unwrap();
    expect_code(&missing, 1);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(&stack.reference("grand", &partial)) && stderr.contains("does not exist"),
        "{}",
        describe(&missing)
    );
    assert_eq!(
        client.snapshot(&names),
        before,
        "a failed promotion moved tags"
    );

    // 6. Promotion goes to the plan's stable tag or `stable` only.
    for to in ["latest", "v2-stable", &tag1] {
        let wrong = stack
            .strata()
            .args(["promote", "--from", &tag2, "--to", to])
            .output()
            .unwrap();
        expect_code(&wrong, 2);
    }
    assert_eq!(client.snapshot(&names), before);
}

/// A registry nobody answers on: promote says so and exits 3 (the
/// environment), not 1 (a failed promotion), and moves nothing.
#[test]
fn promote_to_an_unreachable_registry_exits_3() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let stack = Stack::new("127.0.0.1:9", "unreachable", 1);
    let out = stack
        .strata()
        .args([
            "promote",
            "--from",
            &format!("{PREFIX}-abc1234"),
            "--to",
            "stable",
        ])
        .output()
        .unwrap();
    expect_code(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:9"), "{}", describe(&out));
}

/// A parent that was never published is built too, even when unchanged.
#[test]
fn unpublished_parent_is_rebuilt() {
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "unpublished", 3);
    stack.set_content("child", "2");
    stack.commit("child: 2");
    let plan = stack.plan_json();
    let reasons: BTreeMap<&str, (&Value, &str)> = plan["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["image"].as_str().unwrap(),
                (&b["rebuild"], b["reason"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(
        reasons["child"],
        (&Value::Bool(true), "images/child/Dockerfile")
    );
    assert_eq!(
        reasons["grand"],
        (&Value::Bool(true), "parent rebuilt (child)")
    );
    let (rebuild, reason) = reasons["root"];
    assert_eq!(rebuild, &Value::Bool(true), "{plan}");
    assert!(reason.starts_with("parent not published"), "{reason}");
}

/// Credentials come from `DOCKER_CONFIG`; the password appears in no
/// output; without credentials the push fails clearly.
#[test]
fn push_with_docker_config_credentials_and_without() {
    use base64::Engine as _;
    ensure_base_image();
    let user = "strata-e2e";
    let password = format!("pw-{}-{}", std::process::id(), nanos());
    let registry = TestRegistry::start_with_htpasswd(user, &password)
        .unwrap_or_else(|e| panic!("docker-registry with htpasswd: {e}"));
    let stack = Stack::new(&registry.host(), "auth", 2);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let secrets = [
        password.clone(),
        basic.clone(),
        base64::engine::general_purpose::STANDARD.encode(&password),
    ];
    let work = tempfile::tempdir().unwrap();
    let check_no_secret = |out: &Output, dir: &Path| {
        for s in &secrets {
            assert!(
                !String::from_utf8_lossy(&out.stdout).contains(s.as_str())
                    && !String::from_utf8_lossy(&out.stderr).contains(s.as_str()),
                "a secret is in the output"
            );
        }
        let files = files_under(dir);
        assert!(!files.is_empty());
        for f in files {
            let bytes = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
            for s in &secrets {
                assert!(
                    !bytes.contains(s.as_str()),
                    "a secret is in {}",
                    f.display()
                );
            }
        }
    };

    // Without credentials: the push fails (exit 1), saying why.
    let anonymous = work.path().join("anonymous");
    let out = stack.build_push(&anonymous);
    expect_code(&out, 1);
    let run = run_json(&anonymous);
    let root = run["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "root")
        .unwrap()
        .clone();
    let push = root["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "push")
        .unwrap()
        .clone();
    assert_eq!(push["status"], "failed", "{root}");
    let why = push["message"].as_str().unwrap().to_lowercase();
    assert!(
        ["auth", "unauthorized", "denied"]
            .iter()
            .any(|w| why.contains(w)),
        "the push failure does not say it is about credentials: {why}"
    );
    check_no_secret(&out, &anonymous);

    // With the registry in DOCKER_CONFIG's auths: pushed.
    std::fs::write(
        stack.docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let authed = work.path().join("authed");
    let out = stack.build_push(&authed);
    expect_code(&out, 0);
    check_no_secret(&out, &authed);
    let config = DockerConfig::load_dir(&stack.docker_config).unwrap();
    let client = Client::with(CredentialSource::Config(config));
    let sha = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    for (image, digest) in artifact_digests(&authed) {
        assert_eq!(
            client.expect_digest(&stack.reference(&image, &format!("{PREFIX}-{sha}"))),
            digest
        );
    }

    // A child rebuilt on its published parent, which this machine no longer
    // has (a fresh CI runner): the build pulls the parent from the private
    // registry with the same credentials.
    let root_ref = stack.reference("root", &format!("{PREFIX}-{sha}"));
    let removed = std::process::Command::new("docker")
        .args(["rmi", "-f", &root_ref])
        .output()
        .unwrap();
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    stack.set_content("child", "2");
    stack.commit("child 2");
    let child_only = work.path().join("child-only");
    let out = stack.build_push(&child_only);
    expect_code(&out, 0);
    check_no_secret(&out, &child_only);
    let run = run_json(&child_only);
    let built: Vec<&str> = run["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["child"], "{}", describe(&out));

    // A promotion the registry refuses for credentials (a wrong password:
    // 401) is the environment's fault, exit 3, and says which registry.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{user}:not-{password}"));
    std::fs::write(
        stack.docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{wrong}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = stack
        .strata()
        .args([
            "promote",
            "--from",
            &format!("{PREFIX}-{sha}"),
            "--to",
            "stable",
        ])
        .output()
        .unwrap();
    expect_code(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("401") && stderr.contains(&registry.host()),
        "{}",
        describe(&out)
    );
    assert!(!stderr.contains(&password), "the password is in the output");
}

/// A push sends what the run built and tested, provably: run.json's
/// `image_id` is the pushed manifest's config; a test that retags the image
/// under test (as another process on the engine could, between the tests
/// and the push) fails the push naming both image IDs, and nothing is
/// published under the run's tag.
#[test]
fn the_push_sends_the_built_image_or_nothing() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "retagged", 1);
    let work = tempfile::tempdir().unwrap();
    let client = Client::anonymous();
    let tag = format!(
        "{PREFIX}-{}",
        stack.git(&["rev-parse", "--short=7", "HEAD"])
    );
    let root = stack.reference("root", &tag);
    let out_dir = work.path().join("ok");
    expect_code(&stack.build_push(&out_dir), 0);
    let run = run_json(&out_dir);
    let image_id = run["images"][0]["image_id"].as_str().unwrap().to_string();
    assert_eq!(
        docker_ok(&["image", "inspect", "--format", "{{.Id}}", &root]),
        image_id
    );
    assert_eq!(client.config_digest(&root), image_id);

    stack.write(
        "images/root/test/test_retags.py",
        &format!(
            "import os\nimport docker\n\n\ndef test_retags_the_image_under_test():\n    repo, tag = os.environ['TEST_IMAGE'].rsplit(':', 1)\n    docker.from_env().images.get('{BASE_IMAGE}').tag(repo, tag)\n"
        ),
    );
    let tag = format!("{PREFIX}-{}", stack.commit("a test that retags"));
    let root = stack.reference("root", &tag);
    let out_dir = work.path().join("retagged");
    let out = stack.build_push(&out_dir);
    expect_code(&out, 1);
    let run = run_json(&out_dir);
    let built = run["images"][0]["image_id"].as_str().unwrap().to_string();
    let push = run["images"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "push")
        .unwrap()
        .clone();
    let said = push["message"].as_str().unwrap_or_default();
    let base_id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]);
    assert_eq!(push["status"], "failed", "{}", describe(&out));
    assert_eq!(run["images"][0]["failure"], "provenance");
    assert!(said.contains(&built) && said.contains(&base_id), "{said}");
    assert_eq!(
        client.digest(&root),
        None,
        "the retagged image was published"
    );
}

/// An image reused from an identical build skips its tests only when they
/// ran with the same test files: a change to `tests_common/` tests it
/// again (not rebuilt) before any tag names it, and a failing test then
/// keeps the run's tag off it.
#[test]
fn a_reused_image_is_tested_again_when_its_tests_changed() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "testkey", 1);
    let work = tempfile::tempdir().unwrap();
    let client = Client::anonymous();
    expect_code(&stack.build_push(&work.path().join("first")), 0);
    let basic_tests = |out: &Path| {
        run_json(out)["images"][0]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "basic-tests")
            .unwrap()
            .clone()
    };

    // A shared test that fails: the image is reused, tested, and fails.
    stack.write(
        "images/tests_common/test_shared.py",
        "def test_shared():\n    assert False, 'the shared test fails'\n",
    );
    let tag = format!("{PREFIX}-{}", stack.commit("a failing shared test"));
    let failing = work.path().join("failing");
    let out = stack.build_push_with(&failing, &["--all"]);
    expect_code(&out, 1);
    assert_eq!(
        outcomes_of(&failing)["root"],
        "failed",
        "{}",
        describe(&out)
    );
    assert_eq!(basic_tests(&failing)["status"], "failed");
    assert_eq!(run_json(&failing)["images"][0]["failure"], "tests");
    assert_eq!(client.digest(&stack.reference("root", &tag)), None);

    // Fixed: reused (not built), tested, tagged.
    stack.write(
        "images/tests_common/test_shared.py",
        "def test_shared():\n    assert True\n",
    );
    let tag = format!("{PREFIX}-{}", stack.commit("the shared test passes"));
    let fixed = work.path().join("fixed");
    let out = stack.build_push_with(&fixed, &["--all"]);
    expect_code(&out, 0);
    assert_eq!(outcomes_of(&fixed)["root"], "reused", "{}", describe(&out));
    let tests = basic_tests(&fixed);
    assert_eq!(tests["status"], "ok", "{tests:#}");
    assert!(tests.to_string().contains("test_shared"), "{tests:#}");
    assert!(client.digest(&stack.reference("root", &tag)).is_some());

    // The same test files again: what passed is recorded, not run again.
    let again = work.path().join("again");
    let out = stack.build_push_with(&again, &["--all"]);
    expect_code(&out, 0);
    let tests = basic_tests(&again);
    assert_eq!(tests["status"], "skipped", "{}", describe(&out));
    assert!(tests.to_string().contains("test_shared"), "{tests:#}");
}

/// The run's end retries what the registry failed with 503 (a record put
/// beside an image), and the retry shows in the run's log.
#[test]
fn the_registrys_retries_show_in_the_run_log() {
    ensure_base_image();
    let registry = start_registry();
    let failed = Arc::new(AtomicUsize::new(0));
    let once = failed.clone();
    let proxy = Proxy::start(registry.addr(), move |method, path| {
        if is_manifest_put(method, path)
            && path.contains(".record")
            && once.fetch_add(1, Ordering::SeqCst) == 0
        {
            Action::Fail(503)
        } else {
            Action::Forward
        }
    });
    let stack = Stack::new(&proxy.host(), "tracelog", 1);
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = stack.build_push(&out_dir);
    expect_code(&out, 0);
    assert_eq!(failed.load(Ordering::SeqCst), 2, "{}", describe(&out));
    let run_log = std::fs::read_to_string(out_dir.join("logs/run.log")).unwrap();
    assert!(
        run_log
            .lines()
            .any(|l| l.contains("retrying") && l.contains("status=503") && l.contains(".record")),
        "{run_log}"
    );
}

/// The push stage retries a push the registry failed with 503, and says
/// so in the artifacts and logs.
#[test]
fn push_retries_a_transient_registry_failure() {
    ensure_base_image();
    let registry = start_registry();
    let manifest_puts = Arc::new(AtomicUsize::new(0));
    let puts = manifest_puts.clone();
    let proxy = Proxy::start(registry.addr(), move |method, path| {
        if is_manifest_put(method, path) && puts.fetch_add(1, Ordering::SeqCst) == 0 {
            Action::Fail(503)
        } else {
            Action::Forward
        }
    });
    let stack = Stack::new(&proxy.host(), "retry", 1);
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = stack.build_push(&out_dir);
    expect_code(&out, 0);
    let log = proxy.log();
    // The run's tag's PUTs; the inputs tag is put after the push.
    let puts: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("PUT") && l.contains("/manifests/"))
        .filter(|l| !l.contains("/manifests/inputs-"))
        // The SBOM beside it: its artifact and the referrers tag.
        .filter(|l| !l.contains("/manifests/sha256"))
        .collect();
    assert_eq!(
        puts.len(),
        2,
        "expected a failed and a retried manifest PUT: {log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT") && l.contains("/manifests/inputs-")),
        "no inputs tag: {log:#?}"
    );
    assert!(puts[0].ends_with("Fail(503)"), "{puts:?}");
    let run_log = std::fs::read_to_string(out_dir.join("logs/run.log")).unwrap();
    assert!(run_log.contains("push attempt 1 failed"), "{run_log}");
    let push_log = files_under(&out_dir.join("logs"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".push.log"))
        .unwrap();
    let push_log = std::fs::read_to_string(push_log).unwrap();
    assert!(push_log.contains("retrying"), "{push_log}");
    assert_pushed(&registry, "retry", &stack, &out_dir);
}

/// The root's push succeeded in the end: its artifact says so, with the
/// digest the registry (asked directly) has under the run's tag.
#[track_caller]
fn assert_pushed(registry: &TestRegistry, test: &str, stack: &Stack, out_dir: &Path) {
    let run = run_json(out_dir);
    let root = &run["images"][0];
    assert_eq!(root["image"], "root");
    assert_eq!(root["success"], true, "{root}");
    let sha = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let digest = &artifact_digests(out_dir)["root"];
    assert_eq!(
        &Client::anonymous().expect_digest(&format!(
            "{}/e2e-{test}/root:{PREFIX}-{sha}",
            registry.host()
        )),
        digest
    );
}

/// The push stage retries a push whose first connections the registry
/// dropped without answering.
#[test]
fn push_retries_after_dropped_connections() {
    ensure_base_image();
    let registry = start_registry();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    // The run's last look-up before its push is of the stable image (whose
    // packages its manifest compares with); the two connections after it
    // are the push's.
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy = Proxy::start(registry.addr(), move |_, path| {
        if path.ends_with(&format!("/manifests/{PREFIX}-stable")) {
            armed.store(true, Ordering::SeqCst);
            Action::Forward
        } else if armed.load(Ordering::SeqCst) && count.fetch_add(1, Ordering::SeqCst) < 2 {
            Action::Drop
        } else {
            Action::Forward
        }
    });
    let stack = Stack::new(&proxy.host(), "dropped", 1);
    // No look-up of a previous build for cache.
    stack.write(
        "images/spec.yml",
        &std::fs::read_to_string(stack.dir.join("images/spec.yml"))
            .unwrap()
            .replace("    image_name:", "    prepull: false\n    image_name:"),
    );
    stack.commit("no prepull");
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    // Nor of an image with the same inputs.
    let out = stack.build_push_with(&out_dir, &["--no-reuse"]);
    expect_code(&out, 0);
    let log = proxy.log();
    assert_eq!(
        log.iter().filter(|l| l.ends_with("Drop")).count(),
        2,
        "{log:#?}"
    );
    let run_log = std::fs::read_to_string(out_dir.join("logs/run.log")).unwrap();
    for attempt in ["push attempt 1 failed", "push attempt 2 failed"] {
        assert!(run_log.contains(attempt), "no '{attempt}' in\n{run_log}");
    }
    assert_pushed(&registry, "dropped", &stack, &out_dir);
}

/// A rebuilt image's manifest is compared with its previous build as that
/// build recorded it in the registry: the previous image is neither pulled
/// nor run (its local copy is gone and stays gone), and BuildKit reads its
/// cache from the registry.
#[test]
fn the_manifest_compares_with_the_recorded_previous_build_without_pulling_it() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "compared", 1);
    let spec = std::fs::read_to_string(stack.dir.join("images/spec.yml")).unwrap();
    stack.write(
        "images/spec.yml",
        &format!(
            "{}all_info_cmds:\n  CONTENT:\n    description: The image's file\n    command: cat /root.txt\n",
            spec.replace("    image_name:", "    info_cmds: [CONTENT]\n    image_name:")
        ),
    );
    stack.commit("an info command");
    let sha1 = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let work = tempfile::tempdir().unwrap();
    let out1 = work.path().join("run1");
    expect_code(&stack.build_push(&out1), 0);
    let first = artifact_digests(&out1)["root"].clone();
    let previous = format!(
        "{}@{first}",
        stack.reference("root", &format!("{PREFIX}-{sha1}"))
    );
    // The engine forgets the first build: a pull would bring it back.
    let pinned = format!("{}@{first}", stack.name("root"));
    let removed = std::process::Command::new("docker")
        .args(["rmi", "-f", &pinned])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removed:?}");

    stack.set_content("root", "2");
    stack.commit("root: 2");
    let out2 = work.path().join("run2");
    let built = stack.build_push(&out2);
    expect_code(&built, 0);
    let run2 = run_json(&out2);
    let root = &run2["images"][0];
    assert_eq!(root["growth"]["since"], previous.as_str(), "{root:#}");
    let manifest = files_under(&out2.join("manifests"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    assert!(manifest.contains("## Changes since"), "{manifest}");
    // The previous side's output is the one its build recorded.
    assert!(
        manifest.contains("-root 1") && manifest.contains("+root 2"),
        "{manifest}"
    );
    let inspected = std::process::Command::new("docker")
        .args(["image", "inspect", &pinned])
        .output()
        .unwrap();
    assert!(
        !inspected.status.success(),
        "the previous build was pulled: {}",
        String::from_utf8_lossy(&inspected.stdout)
    );
    let build_log = files_under(&out2.join("logs"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("build"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<String>();
    assert!(
        build_log.contains(&format!("BuildKit reads build cache from {previous}")),
        "{build_log}"
    );
}

/// A manifest PUT failing part-way through a promotion: every tag is put
/// back where it was, and strata exits 1.
#[test]
fn failed_promotion_leaves_every_tag_as_it_was() {
    let registry = start_registry();
    let failing = Arc::new(AtomicUsize::new(0));
    let fail = failing.clone();
    // Every manifest PUT to the second image's repository fails (the
    // client's own retries fail too), once armed.
    let proxy = Proxy::start(registry.addr(), move |method, path| {
        if fail.load(Ordering::SeqCst) == 1
            && is_manifest_put(method, path)
            && path.contains("/e2e-fault/child/")
        {
            Action::Fail(500)
        } else {
            Action::Forward
        }
    });
    // The spec names images at the proxy; no engine is needed: small images
    // are uploaded straight into the registry.
    let stack = Stack::new(&proxy.host(), "fault", 3);
    let direct = Client::anonymous();
    let stable = format!("{PREFIX}-stable");
    let from = format!("{PREFIX}-1234567");
    for image in &stack.images {
        let name = format!("{}/e2e-fault/{image}", registry.host());
        direct.upload(&format!("{name}:{stable}"), &format!("old-{image}"));
        direct.upload(&format!("{name}:{from}"), &format!("new-{image}"));
    }
    let names: Vec<String> = stack
        .images
        .iter()
        .map(|i| format!("{}/e2e-fault/{i}", registry.host()))
        .collect();
    let before = direct.snapshot(&names);
    assert_eq!(before.len(), 6);

    failing.store(1, Ordering::SeqCst);
    let out = stack
        .strata()
        .args(["promote", "--from", &from, "--to", &stable])
        .output()
        .unwrap();
    expect_code(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every tag is as it was"),
        "{}",
        describe(&out)
    );
    assert_eq!(direct.snapshot(&names), before, "{}", describe(&out));
    let log = proxy.log();
    let root_puts = log
        .iter()
        .filter(|l| l.starts_with("PUT") && l.contains("/e2e-fault/root/manifests/"))
        .count();
    assert_eq!(root_puts, 2, "root is moved, then put back: {log:#?}");
    assert!(log.iter().any(|l| l.ends_with("Fail(500)")), "{log:#?}");

    // The same promotion through a healthy proxy moves every tag.
    failing.store(0, Ordering::SeqCst);
    let out = stack
        .strata()
        .args(["promote", "--from", &from, "--to", &stable])
        .output()
        .unwrap();
    expect_code(&out, 0);
    for name in &names {
        assert_eq!(
            direct.expect_digest(&format!("{name}:{stable}")),
            before[&format!("{name}:{from}")]
        );
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// When the registry fails to give an unchanged image the run's tag, the
/// tag does not name the whole stack: the build fails (exit 1) and says so.
#[test]
fn build_fails_when_an_unchanged_image_cannot_be_tagged() {
    ensure_base_image();
    let registry = start_registry();
    let armed = Arc::new(AtomicUsize::new(0));
    let arm = armed.clone();
    let proxy = Proxy::start(registry.addr(), move |method, path| {
        if arm.load(Ordering::SeqCst) == 1
            && is_manifest_put(method, path)
            && path.contains("/e2e-untagged/root/")
        {
            Action::Fail(500)
        } else {
            Action::Forward
        }
    });
    let stack = Stack::new(&proxy.host(), "untagged", 2);
    let work = tempfile::tempdir().unwrap();
    expect_code(&stack.build_push(&work.path().join("run1")), 0);
    stack.set_content("child", "2");
    let sha2 = stack.commit("child: 2");
    armed.store(1, Ordering::SeqCst);
    let out = stack.build_push(&work.path().join("run2"));
    expect_code(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not name the whole stack")
            && stderr.contains(&stack.reference("root", &format!("{PREFIX}-{sha2}"))),
        "{}",
        describe(&out)
    );
    let direct = |image: &str| format!("{}/e2e-untagged/{image}:{PREFIX}-{sha2}", registry.host());
    assert_eq!(Client::anonymous().digest(&direct("root")), None);
    assert!(Client::anonymous().digest(&direct("child")).is_some());
}

/// An image over its size budget fails before its push: the registry never
/// gets it, and its child is not built.
#[test]
fn an_image_over_its_budget_is_not_pushed() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "budget", 2);
    stack.write(
        "images/spec.yml",
        &std::fs::read_to_string(stack.dir.join("images/spec.yml"))
            .unwrap()
            .replacen("    image_name:", "    max_size: 1kB\n    image_name:", 1),
    );
    // A budget is a check, not an input of the image: --all builds it.
    let sha = stack.commit("a budget the root cannot meet");
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = stack.build_push_with(&out_dir, &["--all"]);
    expect_code(&out, 1);
    let run = run_json(&out_dir);
    let root = &run["images"][0];
    assert_eq!(root["image"], "root", "{run:#}");
    let build = &root["stages"][0];
    assert!(
        build["message"]
            .as_str()
            .unwrap_or_default()
            .contains("over its max_size of 1.0 kB"),
        "{root:#}"
    );
    assert_eq!(root["stages"][2]["stage"], "push");
    assert_eq!(root["stages"][2]["status"], "skipped");
    let client = Client::anonymous();
    let tag = format!("{PREFIX}-{sha}");
    for image in ["root", "child"] {
        assert_eq!(
            client.digest(&stack.reference(image, &tag)),
            None,
            "{image} was pushed"
        );
    }
}

/// The outcome of each image in a run.json, by image key.
fn outcomes_of(out: &Path) -> BTreeMap<String, String> {
    each_image(out, "outcome")
}

/// A branch builds and pushes a changed child; merged into main with a
/// merge commit, the build of main builds nothing: every image carries
/// main's tag at the digest the branch built (the root at main's). Any
/// changed input builds for real, and so does --no-reuse.
#[test]
fn a_merge_builds_nothing_its_branch_built() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "merge", 3);
    let client = Client::anonymous();
    let work = tempfile::tempdir().unwrap();
    let main1 = work.path().join("main1");
    expect_code(&stack.build_push(&main1), 0);
    let root_digest = artifact_digests(&main1)["root"].clone();

    stack.git(&["checkout", "-q", "-b", "feature"]);
    stack.set_content("child", "2");
    stack.commit("child: 2");
    let branch = work.path().join("branch");
    expect_code(&stack.build_push(&branch), 0);
    let built = artifact_digests(&branch);
    assert_eq!(built.keys().collect::<Vec<_>>(), ["child", "grand"]);

    stack.git(&["checkout", "-q", "main"]);
    stack.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'feature'",
        "feature",
    ]);
    let sha = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let tag = format!("{PREFIX}-{sha}");

    // The plan says so.
    let plan = stack.plan_json();
    for b in plan["builds"].as_array().unwrap() {
        let image = b["image"].as_str().unwrap();
        if image == "root" {
            assert!(b["reuse"].is_null(), "{b:#}");
            continue;
        }
        let reuse = b["reuse"]
            .as_str()
            .unwrap_or_else(|| panic!("no reuse: {b:#}"));
        assert_eq!(
            reuse,
            format!(
                "{}:inputs-{}@{}",
                stack.name(image),
                &b["inputs"].as_str().unwrap()[7..],
                built[image]
            ),
            "{b:#}"
        );
        assert!(
            b["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("same inputs as {reuse}")),
            "{b:#}"
        );
    }

    let merged = work.path().join("merged");
    let out = stack.build_push(&merged);
    expect_code(&out, 0);
    assert_eq!(
        outcomes_of(&merged),
        BTreeMap::from([
            ("child".into(), "reused".into()),
            ("grand".into(), "reused".into())
        ]),
        "{}",
        describe(&out)
    );
    for image in ["child", "grand"] {
        assert!(
            !files_under(&merged.join("logs"))
                .iter()
                .any(|p| p.to_string_lossy().contains(image)
                    && p.to_string_lossy().ends_with(".build.log")),
            "{image} was built"
        );
        assert_eq!(
            client.expect_digest(&stack.reference(image, &tag)),
            built[image],
            "{image}"
        );
    }
    assert_eq!(
        client.expect_digest(&stack.reference("root", &tag)),
        root_digest
    );
    // Their tests passed on the branch, before the push: not run again.
    let run = run_json(&merged);
    for image in run["images"].as_array().unwrap() {
        let tests = &image["stages"][1];
        assert_eq!(tests["status"], "skipped", "{image:#}");
        assert!(
            tests["message"]
                .as_str()
                .unwrap()
                .starts_with("same inputs as "),
            "{image:#}"
        );
    }

    // A changed input (a build arg) builds for real.
    let arg = work.path().join("arg");
    let out = stack.build_push_with(&arg, &["--build-arg", "EXTRA=1"]);
    expect_code(&out, 0);
    assert_eq!(
        outcomes_of(&arg),
        BTreeMap::from([
            ("child".into(), "built".into()),
            ("grand".into(), "built".into())
        ])
    );
    // A changed parent: its children are built on it, for real.
    stack.set_content("root", "2");
    stack.commit("root: 2");
    let parent = work.path().join("parent");
    expect_code(&stack.build_push(&parent), 0);
    assert_eq!(
        outcomes_of(&parent),
        BTreeMap::from([
            ("child".into(), "built".into()),
            ("grand".into(), "built".into()),
            ("root".into(), "built".into())
        ])
    );
    // --no-reuse builds for real (the same range again: all three would
    // be reused).
    let fresh = work.path().join("fresh");
    let out = stack.build_push_with(&fresh, &["--no-reuse"]);
    expect_code(&out, 0);
    assert_eq!(
        outcomes_of(&fresh),
        BTreeMap::from([
            ("child".into(), "built".into()),
            ("grand".into(), "built".into()),
            ("root".into(), "built".into())
        ])
    );
}

/// arm64's static busybox, which `scripts/setup.sh` installs.
const ARM64_BUSYBOX: &str = "/usr/local/share/strata/busybox-arm64";

/// root → child built for linux/amd64 and linux/arm64: the root copies
/// its platform's busybox and writes `uname -m` to /arch.txt, which its
/// structure test (inherited by the child) reads. Not committed.
fn two_platform_stack(registry: &TestRegistry, name: &str) -> Stack {
    let stack = Stack::new(&registry.host(), name, 2);
    let spec = format!(
        "root: root\nplatforms: [linux/amd64, linux/arm64]\nimages:\n  root:\n    image_name: {}\n  child:\n    image_name: {}\n    depend_on: root\ntag:\n  prefix: \"{PREFIX}\"\n",
        stack.name("root"),
        stack.name("child")
    );
    stack.write("images/spec.yml", &spec);
    stack.write(
        "images/root/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nRUN uname -m > /arch.txt\n",
    );
    std::fs::copy("/bin/busybox", stack.dir.join("images/root/busybox-amd64")).unwrap();
    std::fs::copy(ARM64_BUSYBOX, stack.dir.join("images/root/busybox-arm64"))
        .expect("arm64's busybox (scripts/setup.sh installs it)");
    stack.write(
        "images/root/test/checks.yaml",
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: the machine is named\n    command: cat\n    args: [/arch.txt]\n    expectedOutput: ['x86_64|aarch64']\n",
    );
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN uname -m > /child-arch.txt\n",
            stack.name("root")
        ),
    );
    stack
}

/// A child that mounts a build secret, built for two platforms on its
/// parent's published index (the commit after the parent's): each
/// platform's image is of its platform, as the index lists it, and the
/// secret reached the build.
#[test]
fn a_build_with_a_secret_is_built_for_its_platform() {
    ensure_base_image();
    let registry = start_registry();
    let stack = two_platform_stack(&registry, "secretplat");
    stack.commit("two platforms");
    let work = tempfile::tempdir().unwrap();
    expect_code(&stack.build_push(&work.path().join("first")), 0);
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN --mount=type=secret,id=token test -s /run/secrets/token && uname -m > /child-arch.txt\n",
            stack.name("root")
        ),
    );
    let tag = format!("{PREFIX}-{}", stack.commit("child: a secret"));
    let out_dir = work.path().join("secret");
    let out = stack
        .strata()
        .args([
            "build",
            "--push",
            "--secret",
            "id=token,env=STRATA_TEST_TOKEN",
            "--out",
        ])
        .arg(&out_dir)
        .env("STRATA_TEST_TOKEN", "not-a-real-token")
        .output()
        .unwrap();
    expect_code(&out, 0);
    let built: Vec<String> = run_json(&out_dir)["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(built, ["child"], "{}", describe(&out));
    let child = stack.reference("child", &tag);
    let index = Client::anonymous().index(&child);
    for (platform, arch, machine) in [
        ("linux/amd64", "amd64", "x86_64"),
        ("linux/arm64", "arm64", "aarch64"),
    ] {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &child])
            .output();
        docker_ok(&["pull", "-q", "--platform", platform, &child]);
        assert_eq!(
            docker_ok(&["image", "inspect", "--format", "{{.Architecture}}", &child]),
            arch,
            "{index}"
        );
        assert_eq!(
            docker_ok(&[
                "run",
                "--rm",
                "--platform",
                platform,
                &child,
                "cat",
                "/child-arch.txt"
            ]),
            machine
        );
    }
}

/// A stack built for linux/amd64 and linux/arm64: the run's tag of each
/// image is an index of both platforms' images, each really of its
/// platform, the arm64 child built on the arm64 root; promotion moves the
/// index whole. A platform whose build fails leaves no index and skips the
/// image's descendants.
#[test]
fn a_two_platform_stack_is_one_index_per_image() {
    ensure_base_image();
    let registry = start_registry();
    let stack = two_platform_stack(&registry, "multi");
    let sha = stack.commit("two platforms");
    let tag = format!("{PREFIX}-{sha}");
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = stack.build_push(&out_dir);
    expect_code(&out, 0);
    // The same command again finds every platform's image by its inputs,
    // the child's keyed on its platform's root as pushed: nothing is built.
    let again_dir = work.path().join("again");
    let again = stack.build_push(&again_dir);
    expect_code(&again, 0);
    assert_eq!(
        outcomes_of(&again_dir).values().collect::<Vec<_>>(),
        ["resumed", "resumed"],
        "{}",
        describe(&again)
    );
    // Each run's JUnit names every case after its platform: the first ran
    // them, the second read them from the records beside the images.
    for dir in [&out_dir, &again_dir] {
        let junit = std::fs::read_to_string(dir.join("artifacts/junit.xml")).unwrap();
        let doc = roxmltree::Document::parse(&junit).unwrap();
        for platform in ["linux/amd64", "linux/arm64"] {
            let ran = doc
                .descendants()
                .filter(|n| n.attribute("name") == Some("Command Test: the machine is named"))
                .filter(|n| {
                    n.attribute("classname").is_some_and(|c| {
                        c.starts_with(&format!("{platform}: ")) && c.ends_with("checks.yaml")
                    })
                })
                .count();
            assert_eq!(ran, 2, "{junit}");
        }
    }
    let run = run_json(&out_dir);
    for image in run["images"].as_array().unwrap() {
        let platforms: Vec<&str> = image["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["platform"].as_str().unwrap())
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{image:#}");
        // The structure tests ran on each platform.
        let tests = &image["stages"][1];
        assert_eq!(tests["status"], "ok", "{image:#}");
    }

    let client = Client::anonymous();
    let mut layers: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for image in ["root", "child"] {
        let reference = stack.reference(image, &tag);
        let json = client.index(&reference);
        let text = json.to_string();
        let archs: Vec<&str> = json["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"], "{text}");
        // Each platform's image has its SBOM beside it, about its own
        // digest, found from the index's tag.
        for (entry, platform) in json["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .zip(["linux/amd64", "linux/arm64"])
        {
            let printed = stack
                .strata()
                .args(["sbom", &reference, "--platform", platform, "--as", "spdx"])
                .output()
                .unwrap();
            expect_code(&printed, 0);
            let sbom: Value = serde_json::from_slice(&printed.stdout).unwrap();
            let described = &sbom["packages"][0];
            assert_eq!(described["versionInfo"], entry["digest"], "{sbom:#}");
            assert_eq!(
                described["comment"],
                format!("platform {platform}"),
                "{sbom:#}"
            );
        }
        for (platform, arch, machine) in [
            ("linux/amd64", "amd64", "x86_64"),
            ("linux/arm64", "arm64", "aarch64"),
        ] {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", &reference])
                .output();
            docker_ok(&["pull", "-q", "--platform", platform, &reference]);
            assert_eq!(
                docker_ok(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{.Architecture}}",
                    &reference
                ]),
                arch
            );
            let file = if image == "root" {
                "/arch.txt"
            } else {
                "/child-arch.txt"
            };
            assert_eq!(
                docker_ok(&[
                    "run",
                    "--rm",
                    "--platform",
                    platform,
                    &reference,
                    "cat",
                    file
                ]),
                machine,
                "{image} {platform}"
            );
            let rootfs = docker_ok(&[
                "image",
                "inspect",
                "--format",
                "{{json .RootFS.Layers}}",
                &reference,
            ]);
            layers.insert(
                (image.to_string(), arch.to_string()),
                serde_json::from_str(&rootfs).unwrap(),
            );
        }
    }
    // Each child's layers start with its own platform's root's.
    for arch in ["amd64", "arm64"] {
        let root = &layers[&("root".to_string(), arch.to_string())];
        let child = &layers[&("child".to_string(), arch.to_string())];
        assert!(child.starts_with(root), "{arch}: {root:?} / {child:?}");
    }
    assert_ne!(
        layers[&("root".to_string(), "amd64".to_string())],
        layers[&("root".to_string(), "arm64".to_string())]
    );

    // Promotion moves the index, whole.
    let stable = format!("{PREFIX}-stable");
    let promoted = stack
        .strata()
        .args(["promote", "--from", &tag, "--to", &stable])
        .output()
        .unwrap();
    expect_code(&promoted, 0);
    for image in ["root", "child"] {
        assert_eq!(
            client.expect_digest(&stack.reference(image, &stable)),
            client.expect_digest(&stack.reference(image, &tag))
        );
    }

    // A platform whose build fails: no index, descendants skipped.
    let spec = std::fs::read_to_string(stack.dir.join("images/spec.yml")).unwrap();
    let fragile_spec = format!(
        "{spec}  fragile:\n    image_name: {ns}/fragile\n    depend_on: root\n  fragile-kid:\n    image_name: {ns}/fragile-kid\n    depend_on: fragile\ntag:\n  prefix: \"{PREFIX}\"\n",
        spec = spec.replace(&format!("tag:\n  prefix: \"{PREFIX}\"\n"), ""),
        ns = stack.namespace
    );
    stack.write("images/spec.yml", &fragile_spec);
    stack.write(
        "images/fragile/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN [ \"$(uname -m)\" = x86_64 ]\n",
            stack.name("root")
        ),
    );
    stack.write(
        "images/fragile-kid/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}/fragile:${{BASE_TAG}}\n",
            stack.namespace
        ),
    );
    let sha = stack.commit("an image that only builds on amd64");
    let tag = format!("{PREFIX}-{sha}");
    let out_dir = work.path().join("fragile");
    let out = stack.build_push(&out_dir);
    expect_code(&out, 1);
    let run = run_json(&out_dir);
    let outcome = |image: &str| {
        run["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == image)
            .unwrap_or_else(|| panic!("no {image}"))
            .clone()
    };
    let fragile = outcome("fragile");
    assert_eq!(fragile["outcome"], "failed", "{fragile:#}");
    assert!(
        fragile["message"].as_str().unwrap().contains("linux/arm64"),
        "{fragile:#}"
    );
    assert_eq!(outcome("fragile-kid")["outcome"], "skipped");
    assert_eq!(
        client.digest(&format!("{}/fragile:{tag}", stack.namespace)),
        None
    );
    assert_eq!(
        client.digest(&format!("{}/fragile:{tag}-linux-amd64", stack.namespace)),
        None,
        "a platform of a failed image was pushed"
    );
}

/// The plan as a job graph, run job by job as separate runners would (each
/// with its own output, the local images of the others removed): a job
/// whose parent's job has not pushed fails at once naming both; run in
/// order, the jobs produce the stack, each child on its parent's pushed
/// digest; the finish step builds nothing and tags the run.
#[test]
fn the_jobs_of_a_plan_build_the_stack_sharing_only_the_registry() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "jobs", 3);
    // A test of the root that every image inherits: each job runs it.
    stack.write(
        "images/root/test/structure.yaml",
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: the root's file\n    path: /root.txt\n    shouldExist: true\n",
    );
    stack.commit("a structure test");
    let sha = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let tag = format!("{PREFIX}-{sha}");
    let graph = stack.plan_json_as("jobs");
    let jobs = graph["jobs"].as_array().unwrap();
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["default-root", "default-child", "default-grand"],
        "{graph:#}"
    );
    assert_eq!(jobs[1]["needs"], serde_json::json!(["default-root"]));
    assert_eq!(jobs[0]["needs"], serde_json::json!([]));
    let run = |argv: &Value, out: &Path| stack.run_argv(argv, out);
    let work = tempfile::tempdir().unwrap();

    // Too early: its parent's job has not pushed.
    let early = run(&jobs[1]["command"], &work.path().join("early"));
    expect_code(&early, 1);
    let said = String::from_utf8_lossy(&early.stderr).to_string();
    assert!(
        said.contains(&stack.reference("root", &tag)) && said.contains("job default-root"),
        "{said}"
    );

    let mut pushed = BTreeMap::new();
    for job in jobs {
        let image = job["image"].as_str().unwrap();
        // Another runner: nothing of the other jobs in its engine.
        stack.remove_images();
        let out = work.path().join(image);
        let ran = run(&job["command"], &out);
        expect_code(&ran, 0);
        let digests = artifact_digests(&out);
        assert_eq!(
            digests.keys().collect::<Vec<_>>(),
            [image],
            "{}",
            describe(&ran)
        );
        pushed.insert(image.to_string(), digests[image].clone());
        if let Some(parent) = parent_of(image) {
            let run = run_json(&out);
            assert_eq!(run["images"].as_array().unwrap().len(), 1);
            // Built on the parent's pushed digest.
            let base = docker_ok(&[
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"org.opencontainers.image.base.digest\"}}",
                &stack.reference(image, &tag),
            ]);
            assert_eq!(base, pushed[parent], "{image}");
        }
    }
    let client = Client::anonymous();
    for (image, digest) in &pushed {
        assert_eq!(&client.expect_digest(&stack.reference(image, &tag)), digest);
    }

    let finish = work.path().join("finish");
    let done = run(&graph["finish"], &finish);
    expect_code(&done, 0);
    // The jobs pushed the run's tag: the finish picks up after them.
    assert_eq!(
        outcomes_of(&finish).values().collect::<Vec<_>>(),
        ["resumed", "resumed", "resumed"],
        "{}",
        describe(&done)
    );
    // Its JUnit holds the tests each job ran, read from the registry.
    let junit = std::fs::read_to_string(finish.join("artifacts/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let cases: Vec<(String, String)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            let suite = n
                .parent()
                .and_then(|p| p.attribute("name"))
                .unwrap_or_default();
            (
                suite.to_string(),
                n.attribute("name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    for image in ["root", "child", "grand"] {
        let reference = stack.reference(image, &tag);
        assert!(
            cases
                .iter()
                .any(|(suite, case)| suite.starts_with(&reference)
                    && case == "File Existence Test: the root's file"),
            "no test of {image} in {junit}"
        );
    }
    assert!(!junit.contains("<failure"), "{junit}");
    for (image, digest) in &pushed {
        assert_eq!(&client.expect_digest(&stack.reference(image, &tag)), digest);
    }
}

/// A job of the job graph tags its own image only: the unchanged images
/// get the run's tag from the finish, once every job passed, never from a
/// job whose sibling may still fail.
#[test]
fn a_job_tags_its_own_image_and_only_the_finish_tags_the_unchanged() {
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "jobtags", 3);
    let work = tempfile::tempdir().unwrap();
    expect_code(&stack.build_push(&work.path().join("first")), 0);
    let client = Client::anonymous();
    let first = format!(
        "{PREFIX}-{}",
        stack.git(&["rev-parse", "--short=7", "HEAD"])
    );
    let root_digest = client.expect_digest(&stack.reference("root", &first));
    stack.set_content("grand", "2");
    stack.commit("grand: 2");
    let tag = format!(
        "{PREFIX}-{}",
        stack.git(&["rev-parse", "--short=7", "HEAD"])
    );
    let graph = stack.plan_json_as("jobs");
    let jobs = graph["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{graph:#}");
    let ran = stack.run_argv(&jobs[0]["command"], &work.path().join("job"));
    expect_code(&ran, 0);
    assert!(client.digest(&stack.reference("grand", &tag)).is_some());
    for image in ["root", "child"] {
        assert_eq!(
            client.digest(&stack.reference(image, &tag)),
            None,
            "the job of grand tagged {image}: {}",
            describe(&ran)
        );
    }
    let done = stack.run_argv(&graph["finish"], &work.path().join("finish"));
    expect_code(&done, 0);
    assert_eq!(
        client.expect_digest(&stack.reference("root", &tag)),
        root_digest,
        "{}",
        describe(&done)
    );
    assert!(client.digest(&stack.reference("child", &tag)).is_some());
}

/// The value of `key` in a YAML mapping node.
fn yaml_get<'n>(
    node: &'n strata_core::yaml::Node,
    key: &str,
) -> Option<&'n strata_core::yaml::Node> {
    node.as_map()?
        .iter()
        .find(|(k, _)| k.as_scalar() == Some(key))
        .map(|(_, v)| v)
}

/// The workflow a team copies: its plan step, run as GitHub Actions runs it
/// (bash, with GITHUB_OUTPUT), gives the job graph's levels, and its level
/// and finish jobs run them in that order.
#[test]
fn the_github_actions_workflow_runs_the_plans_levels() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/github-actions.yml"),
    )
    .unwrap();
    let workflow = strata_core::yaml::parse(&text, "github-actions.yml").unwrap();
    let jobs = yaml_get(&workflow, "jobs").expect("jobs");
    let levels = |n: usize| yaml_get(jobs, &format!("level-{n}"));
    let level_jobs = (0..).take_while(|n| levels(*n).is_some()).count();
    let declared: usize = yaml_get(yaml_get(&workflow, "env").unwrap(), "STRATA_LEVEL_JOBS")
        .and_then(|n| n.as_scalar())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(level_jobs, declared);
    for n in 0..level_jobs {
        let job = levels(n).unwrap();
        let matrix = yaml_get(yaml_get(job, "strategy").unwrap(), "matrix")
            .and_then(|m| m.as_scalar())
            .unwrap();
        assert!(matrix.contains(&format!(".levels[{n}]")), "{matrix}");
        let needs = yaml_get(job, "needs").unwrap();
        if n > 0 {
            let list: Vec<&str> = match &needs.value {
                strata_core::yaml::Value::Seq(items) => {
                    items.iter().filter_map(|i| i.as_scalar()).collect()
                }
                _ => Vec::new(),
            };
            assert!(
                list.contains(&format!("level-{}", n - 1).as_str()),
                "{list:?}"
            );
        }
    }
    // strata is compiled once, by the strata job; every other job takes
    // its binary from the artifact and compiles nothing.
    for (name, job) in jobs.as_map().unwrap() {
        let name = name.as_scalar().unwrap();
        let steps = match &yaml_get(job, "steps").unwrap().value {
            strata_core::yaml::Value::Seq(steps) => steps,
            _ => panic!("{name}: no steps"),
        };
        let runs: Vec<&str> = steps
            .iter()
            .filter_map(|st| yaml_get(st, "run").and_then(|r| r.as_scalar()))
            .collect();
        let compiles = runs.iter().any(|r| r.contains("cargo"));
        assert_eq!(compiles, name == "strata", "{name}: {runs:?}");
        if name != "strata" {
            let fetches = steps.iter().any(|st| {
                yaml_get(st, "with")
                    .and_then(|w| yaml_get(w, "name"))
                    .and_then(|n| n.as_scalar())
                    == Some("strata-bin")
            });
            assert!(fetches, "{name} does not fetch the strata binary");
        }
    }
    let plan_step = yaml_get(yaml_get(jobs, "plan").unwrap(), "steps")
        .and_then(|s| match &s.value {
            strata_core::yaml::Value::Seq(steps) => steps
                .iter()
                .find(|st| yaml_get(st, "id").and_then(|i| i.as_scalar()) == Some("plan")),
            _ => None,
        })
        .expect("a step with id: plan");
    let script = yaml_get(plan_step, "run")
        .and_then(|r| r.as_scalar())
        .unwrap();
    assert!(script.contains("strata plan"), "{script}");

    // Its strata plan step on a real stack: the first build of root →
    // child → grand, three levels.
    ensure_base_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "gha", 3);
    let work = tempfile::tempdir().unwrap();
    let output = work.path().join("github-output");
    let bin = Path::new(env!("CARGO_BIN_EXE_strata")).parent().unwrap();
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-e", "-c", script])
        .current_dir(&stack.dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("GITHUB_OUTPUT", &output)
        .env("STRATA_LEVEL_JOBS", declared.to_string())
        .env("DOCKER_CONFIG", &stack.docker_config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    for var in [
        "GITHUB_BASE_REF",
        "GITHUB_HEAD_REF",
        "GITHUB_REF_NAME",
        "GITHUB_STEP_SUMMARY",
    ] {
        cmd.env_remove(var);
    }
    let ran = cmd.output().unwrap();
    assert!(ran.status.success(), "{}", describe(&ran));
    let written = std::fs::read_to_string(&output).unwrap();
    let line = written
        .lines()
        .find_map(|l| l.strip_prefix("plan="))
        .unwrap_or_else(|| panic!("no plan= in {written}"));
    let plan: Value = serde_json::from_str(line).unwrap();
    assert_eq!(plan["depth"], 3, "{plan:#}");
    let ids: Vec<Vec<&str>> = plan["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["include"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        ids,
        [["default-root"], ["default-child"], ["default-grand"]]
    );
    let graph = stack.plan_json_as("jobs");
    assert_eq!(
        plan["levels"][1]["include"][0]["command"],
        graph["jobs"][1]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert_eq!(
        plan["finish"],
        graph["finish"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    );
    // A stack deeper than the workflow's level jobs fails the plan step.
    let mut shallow = cmd;
    shallow.env("STRATA_LEVEL_JOBS", "2");
    let refused = shallow.output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("3 levels deep"),
        "{}",
        describe(&refused)
    );
}

/// A second Docker engine beside the machine's, as a second CI runner: its
/// own data root, exec root, pid file, socket and bridge (never
/// `--bridge=none`, which deletes the shared `docker0`), the main engine's
/// storage driver. Stopped, its bridge and folders removed, when dropped.
struct SecondEngine {
    dir: TempDir,
    daemon: std::process::Child,
    bridge: String,
    host: String,
}

impl SecondEngine {
    fn start() -> SecondEngine {
        SecondEngine::start_with("{}\n", None)
    }

    /// An engine configured by `daemon_json` whose data root, given
    /// `disk_size` (`96m`), is a filesystem of that size made for it.
    fn start_with(daemon_json: &str, disk_size: Option<&str>) -> SecondEngine {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id() % 1000;
        // Unique among the engines of this process (tests run side by side).
        let bridge = format!("strata-br{pid}-{}", n % 10);
        let ip = |args: &[&str]| {
            common::run_ok("ip", args);
        };
        ip(&["link", "add", &bridge, "type", "bridge"]);
        ip(&[
            "addr",
            "add",
            &format!("10.{}.{}.1/24", 213 + n % 10, pid % 250),
            "dev",
            &bridge,
        ]);
        ip(&["link", "set", &bridge, "up"]);
        std::fs::write(dir.path().join("daemon.json"), daemon_json).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        if let Some(size) = disk_size {
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path().join("data"))
                .status()
                .unwrap();
            assert!(mounted.success(), "mount a {size} tmpfs");
        }
        let socket = dir.path().join("docker.sock");
        let mut engine = SecondEngine {
            host: format!("unix://{}", socket.display()),
            daemon: SecondEngine::spawn(dir.path(), &bridge),
            dir,
            bridge,
        };
        engine.wait_up();
        engine
    }

    fn spawn(dir: &std::path::Path, bridge: &str) -> std::process::Child {
        let driver = docker_ok(&["info", "--format", "{{.Driver}}"]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .unwrap();
        std::process::Command::new("dockerd")
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args([
                "--iptables=false",
                "--storage-driver",
                &driver,
                "--bridge",
                bridge,
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts")
    }

    fn wait_up(&mut self) {
        for _ in 0..60 {
            let up = std::process::Command::new("docker")
                .args(["-H", &self.host, "info"])
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "the second engine did not start:\n{}",
            std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    /// Starts the engine again on the same data root, as a runner's
    /// restarted daemon does.
    fn restart(&mut self) {
        self.kill();
        self.daemon = SecondEngine::spawn(self.dir.path(), &self.bridge);
        self.wait_up();
    }
}

impl SecondEngine {
    /// Kills the engine at once (SIGKILL), and the containerd it started,
    /// as a runner that dies does.
    fn kill(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        self.kill_containerd();
    }

    fn kill_containerd(&self) {
        let pid_file = self.dir.path().join("exec/containerd/containerd.pid");
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status();
        }
        // Killed, it may linger as a zombie nobody reaps, which a restarted
        // dockerd would take for a running containerd and wait for.
        let _ = std::fs::remove_file(pid_file);
    }
}

impl Drop for SecondEngine {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containers and its containerd.
        let _ = std::process::Command::new("kill")
            .arg(self.daemon.id().to_string())
            .status();
        let _ = self.daemon.wait();
        self.kill_containerd();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        // What a killed engine left mounted (a build step's rootfs), then
        // its own disk: deepest first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let root = self.dir.path().to_string_lossy().to_string();
        let mut inside: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&root))
            .collect();
        inside.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in inside {
            let _ = std::process::Command::new("umount")
                .args(["-l", mount])
                .status();
        }
        // Its data root may hold read-only files of images: removed as root.
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(self.dir.path())
            .status();
    }
}

/// The machine's engine, where strata reaches it in these tests (their
/// DOCKER_HOST is cleared).
const MAIN_ENGINE: &str = "unix:///var/run/docker.sock";

/// The jobs of a plan split between two engines (two runners) that share
/// only a registry produce the stack one machine does: every tag, each
/// child on its parent's pushed digest.
#[test]
fn jobs_split_between_two_engines_build_the_same_stack() {
    ensure_base_image();
    let registry = start_registry();
    let second = SecondEngine::start();
    let stack = Stack::new(&registry.host(), "runners", 3);
    let sha = stack.git(&["rev-parse", "--short=7", "HEAD"]);
    let tag = format!("{PREFIX}-{sha}");
    let graph = stack.plan_json_as("jobs");
    let work = tempfile::tempdir().unwrap();
    let mut pushed = BTreeMap::new();
    for job in graph["jobs"].as_array().unwrap() {
        let image = job["image"].as_str().unwrap();
        // The root needs the local base image: the main engine. The child
        // runs on the second engine, which has nothing but the registry.
        let host = (image == "child").then_some(second.host.as_str());
        let argv: Vec<&str> = job["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let out = work.path().join(image);
        let mut cmd = stack.strata();
        cmd.args(&argv[1..]).arg("--out").arg(&out);
        if let Some(host) = host {
            cmd.env("DOCKER_HOST", host);
        }
        let ran = cmd.output().unwrap();
        expect_code(&ran, 0);
        pushed.insert(image.to_string(), artifact_digests(&out)[image].clone());
        if let Some(parent) = parent_of(image) {
            let reference = stack.reference(image, &tag);
            let label = "{{index .Config.Labels \"org.opencontainers.image.base.digest\"}}";
            let mut args = vec!["-H", host.unwrap_or(MAIN_ENGINE)];
            args.extend(["image", "inspect", "--format", label, reference.as_str()]);
            assert_eq!(docker_ok(&args), pushed[parent], "{image} on {host:?}");
        }
    }
    // The second engine built the child: it is there, not on the main one.
    let child = stack.reference("child", &tag);
    assert!(!docker_ok(&["-H", &second.host, "images", "-q", &child]).is_empty());
    assert!(docker_ok(&["-H", MAIN_ENGINE, "images", "-q", &child]).is_empty());

    let finish = work.path().join("finish");
    let done = stack.run_argv(&graph["finish"], &finish);
    expect_code(&done, 0);
    // The finish writes the child's manifest from the job's record, and
    // pulls nothing: the child is still only on the second engine.
    assert!(docker_ok(&["-H", MAIN_ENGINE, "images", "-q", &child]).is_empty());
    let stem = strata_report::ref_file_stem(&child);
    for ext in ["json", "md"] {
        let name = format!("manifests/{stem}.{ext}");
        assert_eq!(
            std::fs::read_to_string(finish.join(&name)).unwrap(),
            std::fs::read_to_string(work.path().join("child").join(&name)).unwrap(),
            "{name}"
        );
    }
    let client = Client::anonymous();
    for (image, digest) in &pushed {
        assert_eq!(
            &client.expect_digest(&stack.reference(image, &tag)),
            digest,
            "{image}"
        );
    }
}

/// The engine killed in the middle of a build: strata ends promptly with
/// an environment error naming the engine (exit 3), and its results say
/// what finished, which image was cut off and which never started. The
/// engine restarted, the same command picks up where it stopped: what
/// finished is resumed, not built again.
#[test]
fn an_engine_killed_mid_build_exits_3_naming_it_and_a_rerun_resumes() {
    let registry = start_registry();
    let mut second = SecondEngine::start();
    let stack = Stack::new(&registry.host(), "enginekill", 3);
    // Nothing to pull: the second engine has no images.
    stack.busybox_root("RUN [\"/bin/busybox\", \"true\"]\n");
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN [\"/bin/busybox\", \"sleep\", \"8\"]\n",
            stack.name("root")
        ),
    );
    stack.write(
        "images/grand/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN [\"/bin/busybox\", \"true\"]\n",
            stack.name("child")
        ),
    );
    stack.commit("a long build");
    let work = tempfile::tempdir().unwrap();
    let host = second.host.clone();
    let run = |out: &std::path::Path, stderr: &str| {
        let mut run = strata_on(&stack, &host, &work.path().join(stderr));
        run.args(["build", "--all", "--offline", "--no-push", "--out"])
            .arg(out);
        run
    };
    let out = work.path().join("out");
    let mut child = run(&out, "stderr").spawn().unwrap();
    wait_for_stage(&out, &mut child, &stack.name("child"), "build started");
    // Into the RUN step.
    std::thread::sleep(Duration::from_secs(2));
    second.kill();
    let killed = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("strata did not end after its engine died");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(work.path().join("stderr")).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&second.host.replace("unix://", "")),
        "{stderr}"
    );
    assert!(stderr.contains("went away during the run"), "{stderr}");
    let record = run_json(&out);
    assert_eq!(
        outcomes_of(&out),
        BTreeMap::from([
            ("root".into(), "built".into()),
            ("child".into(), "failed".into()),
            ("grand".into(), "skipped".into()),
        ]),
        "{record:#}"
    );

    // The engine back, the same command: the root is resumed, the rest built.
    second.restart();
    let again = work.path().join("again");
    let rerun = run(&again, "stderr-again").status().unwrap();
    let stderr = std::fs::read_to_string(work.path().join("stderr-again")).unwrap();
    assert_eq!(rerun.code(), Some(0), "{stderr}");
    assert_eq!(
        outcomes_of(&again),
        BTreeMap::from([
            ("root".into(), "resumed".into()),
            ("child".into(), "built".into()),
            ("grand".into(), "built".into()),
        ]),
        "{stderr}"
    );
    assert!(stderr.contains("1 resumed"), "{stderr}");
    let record = run_json(&again);
    let root = record["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "root")
        .unwrap();
    assert!(
        root["stages"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not built")),
        "the resumed root was built again: {root:#}"
    );
}

/// Waits until the run writing `out` logs `what` (`build started`) for
/// an image of repository `name`; fails if the run ends first or it takes
/// more than three minutes.
fn wait_for_stage(out: &Path, run: &mut std::process::Child, name: &str, what: &str) {
    let started = std::time::Instant::now();
    let image = format!("{name}:");
    loop {
        let log = std::fs::read_to_string(out.join("logs/run.log")).unwrap_or_default();
        if log.lines().any(|l| l.contains(&image) && l.ends_with(what)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180) && run.try_wait().unwrap().is_none(),
            "no '{what}' for {name}: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A stack run by `strata` on `host` (another engine), with the Docker
/// config of the stack, its stderr written to `stderr`.
fn strata_on(stack: &Stack, host: &str, stderr: &Path) -> std::process::Command {
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    run.arg("-C")
        .arg(&stack.dir)
        .env("DOCKER_HOST", host)
        .env("DOCKER_CONFIG", &stack.docker_config)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    run
}

/// The registry stopped in the middle of a large push: the image fails
/// after its retries, naming the registry and its reference; no tag of the
/// run names it; a second run once the registry is back resumes what was
/// pushed and completes the rest.
#[test]
fn a_registry_gone_mid_push_fails_that_image_and_a_rerun_completes_it() {
    let mut registry = start_registry();
    let second = SecondEngine::start();
    let stack = Stack::new(&registry.host(), "registrygone", 2);
    stack.busybox_root("RUN [\"/bin/busybox\", \"true\"]\n");
    // 192 MB that do not compress: a push that takes a while.
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN [\"/bin/busybox\", \"dd\", \"if=/dev/urandom\", \"of=/big\", \"bs=1M\", \"count=192\"]\n",
            stack.name("root")
        ),
    );
    stack.commit("a large image");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mut run = strata_on(&stack, &second.host, &work.path().join("stderr"))
        .args(["build", "--push", "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    wait_for_stage(&out, &mut run, &stack.name("child"), "push started");
    std::thread::sleep(Duration::from_millis(500));
    registry.stop();
    let status = run.wait().unwrap();
    let stderr = std::fs::read_to_string(work.path().join("stderr")).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let record = run_json(&out);
    assert_eq!(
        outcomes_of(&out),
        BTreeMap::from([
            ("root".into(), "built".into()),
            ("child".into(), "failed".into()),
        ]),
        "{record:#}"
    );
    let refs = each_image(&out, "ref");
    let child = record["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "child")
        .unwrap();
    let message = child["message"].as_str().unwrap();
    assert!(message.starts_with("push failed"), "{child:#}");
    assert!(message.contains(&refs["child"]), "{message}");
    assert!(
        message.contains(&format!("registry {}", registry.host())),
        "{message}"
    );
    // Nothing listens any more: a refused connection is final, so no
    // retry waits for a registry that is not there.
    assert!(
        message.contains("connection refused") && message.contains("after 1 attempt"),
        "{message}"
    );
    let run_log = std::fs::read_to_string(out.join("logs/run.log")).unwrap();
    assert!(!run_log.contains("push attempt 1 failed"), "{run_log}");

    // Back: the run's tag names the root it pushed, never the child.
    registry.restart().unwrap();
    let client = Client::anonymous();
    assert!(client.digest(&refs["root"]).is_some());
    assert_eq!(client.digest(&refs["child"]), None);

    let again = work.path().join("again");
    let rerun = strata_on(&stack, &second.host, &work.path().join("stderr-again"))
        .args(["build", "--push", "--out"])
        .arg(&again)
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(work.path().join("stderr-again")).unwrap();
    assert_eq!(rerun.code(), Some(0), "{stderr}");
    assert_eq!(
        outcomes_of(&again),
        BTreeMap::from([
            ("root".into(), "resumed".into()),
            ("child".into(), "built".into()),
        ]),
        "{stderr}"
    );
    assert!(stderr.contains("1 resumed"), "{stderr}");
    assert!(client.digest(&refs["child"]).is_some());
}

/// A build that fills the engine's disk fails saying so: the engine's data
/// root and the space left on it, not only the engine's message.
#[test]
fn a_build_that_fills_the_disk_names_the_data_root_and_its_free_space() {
    let registry = start_registry();
    let second = SecondEngine::start_with("{}\n", Some("96m"));
    let stack = Stack::new(&registry.host(), "diskfull", 1);
    stack.busybox_root(
        "RUN [\"/bin/busybox\", \"dd\", \"if=/dev/zero\", \"of=/big\", \"bs=1M\", \"count=256\"]\n",
    );
    stack.commit("too large for its disk");
    let work = tempfile::tempdir().unwrap();
    // The message of the stack's one image, which fails.
    let failure = |stack: &Stack, name: &str| {
        let out = work.path().join(name);
        let stderr = work.path().join(format!("{name}.stderr"));
        let status = strata_on(stack, &second.host, &stderr)
            .args(["build", "--offline", "--no-push", "--out"])
            .arg(&out)
            .status()
            .unwrap();
        let said = std::fs::read_to_string(&stderr).unwrap();
        assert_eq!(status.code(), Some(1), "{said}");
        let record = run_json(&out);
        assert_eq!(record["images"][0]["failure"], "out_of_space", "{record:#}");
        record["images"][0]["message"].as_str().unwrap().to_string()
    };
    let message = failure(&stack, "build");
    assert!(message.contains("ran out of disk space"), "{message}");
    let data_root = second.dir.path().join("data");
    assert!(
        message.contains(&format!(
            "the engine's data root {} has",
            data_root.display()
        )),
        "{message}"
    );
    assert!(message.contains(" free of "), "{message}");
    assert!(message.contains("prune: true"), "{message}");

    // A step that fills it and says nothing of it (its output silenced, its
    // own exit code): the failure still says the disk filled, and where.
    let silent = Stack::new(&registry.host(), "diskfullsilent", 1);
    silent.busybox_root(
        "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox dd if=/dev/zero of=/big bs=1M count=256 2>/dev/null || exit 7\"]\n",
    );
    silent.commit("too large, silently");
    let message = failure(&silent, "silent");
    assert!(message.contains("exit code: 7"), "{message}");
    assert!(message.contains("ran out of disk space"), "{message}");
    assert!(
        message.contains(&format!(
            "the engine's data root {} has",
            data_root.display()
        )),
        "{message}"
    );

    // A test that fills it: its image fails saying so too.
    let tested = Stack::new(&registry.host(), "diskfulltest", 1);
    tested.busybox_root("RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n");
    tested.write(
        "images/root/test/structure.yaml",
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: fills the disk\n    command: /bin/busybox\n    args: [dd, if=/dev/zero, of=/big, bs=1M, count=256]\n    exitCode: 0\n",
    );
    tested.commit("a test too large for its disk");
    let message = failure(&tested, "test");
    assert!(message.contains("basic-tests failed"), "{message}");
    assert!(
        message.contains(&format!(
            "a failing test ran out of disk space: the engine's data root {} has",
            data_root.display()
        )),
        "{message}"
    );
}

/// Two stacks built at once on one engine, both pruning: both succeed,
/// neither touches the other's images, and each gives back the space of
/// its own images once pushed, which its summary shows.
#[test]
fn two_pruning_runs_on_one_engine_both_succeed() {
    ensure_base_image();
    let registry = start_registry();
    let stacks: Vec<Stack> = ["prunea", "pruneb"]
        .iter()
        .map(|name| {
            let stack = Stack::new(&registry.host(), name, 3);
            let spec = std::fs::read_to_string(stack.dir.join("images/spec.yml")).unwrap();
            stack.write(
                "images/spec.yml",
                &spec.replace("    image_name:", "    prune: true\n    image_name:"),
            );
            // A layer of its own worth reclaiming.
            stack.write(
                "images/grand/Dockerfile",
                &format!(
                    "ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\nRUN head -c 16000000 /dev/urandom > /{name}.bin\n",
                    stack.name("child")
                ),
            );
            stack.commit("prune");
            stack
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let runs: Vec<_> = stacks
        .iter()
        .enumerate()
        .map(|(i, stack)| {
            let out = work.path().join(format!("out-{i}"));
            let child = strata_on(stack, MAIN_ENGINE, &work.path().join(format!("stderr-{i}")))
                .args(["build", "--push", "--jobs", "2", "--out"])
                .arg(&out)
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let client = Client::anonymous();
    for (i, (mut child, out)) in runs.into_iter().enumerate() {
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(work.path().join(format!("stderr-{i}"))).unwrap();
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("prune reclaimed"), "{stderr}");
        let record = run_json(&out);
        for image in record["images"].as_array().unwrap() {
            let reference = image["ref"].as_str().unwrap();
            let prune = image["stages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stage"] == "prune")
                .unwrap();
            assert_eq!(prune["status"], "ok", "{image:#}");
            assert!(
                prune["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("removed {reference}"))),
                "{image:#}"
            );
            // Gone from the engine, kept in the registry.
            let local = std::process::Command::new("docker")
                .args(["image", "inspect", reference])
                .output()
                .unwrap();
            assert!(!local.status.success(), "{reference} is still here");
            assert!(client.digest(reference).is_some(), "{reference} not pushed");
        }
        // Measured as what the data root's filesystem gained, which the
        // other run's writes blur: present, not compared.
        assert!(
            record["images"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| i["reclaimed_bytes"].is_u64()),
            "{record:#}"
        );
    }
}

/// A two-platform stack as jobs: one job per image and platform, each
/// child's job on its parent's image of the same platform, found in the
/// registry; the finish reuses every platform's image and puts each
/// image's index under the run's tag.
#[test]
fn multi_platform_jobs_build_one_platform_each_and_the_finish_puts_the_index() {
    ensure_base_image();
    let registry = start_registry();
    let stack = two_platform_stack(&registry, "multijobs");
    let sha = stack.commit("two platforms");
    let tag = format!("{PREFIX}-{sha}");
    let graph = stack.plan_json_as("jobs");
    let jobs = graph["jobs"].as_array().unwrap();
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "default-root-linux-amd64",
            "default-root-linux-arm64",
            "default-child-linux-amd64",
            "default-child-linux-arm64"
        ],
        "{graph:#}"
    );
    assert_eq!(
        jobs[3]["needs"],
        serde_json::json!(["default-root-linux-arm64"])
    );
    assert_eq!(jobs[3]["platform"], "linux/arm64");
    let run = |argv: &Value, out: &Path| stack.run_argv(argv, out);
    let work = tempfile::tempdir().unwrap();
    let early = run(&jobs[3]["command"], &work.path().join("early"));
    expect_code(&early, 1);
    let said = String::from_utf8_lossy(&early.stderr).to_string();
    assert!(
        said.contains(&format!("{}-linux-arm64", stack.reference("root", &tag)))
            && said.contains("job default-root-linux-arm64"),
        "{said}"
    );
    for job in jobs {
        let out = work.path().join(job["id"].as_str().unwrap());
        let ran = run(&job["command"], &out);
        expect_code(&ran, 0);
    }
    let client = Client::anonymous();
    // The jobs push each platform's image; the index is the finish's.
    assert_eq!(client.digest(&stack.reference("root", &tag)), None);
    let per_platform = |image: &str, platform: &str| {
        client.expect_digest(&format!("{}-{platform}", stack.reference(image, &tag)))
    };
    let child_arm = format!("{}-linux-arm64", stack.reference("child", &tag));
    let base = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"org.opencontainers.image.base.digest\"}}",
        &child_arm,
    ]);
    assert_eq!(base, per_platform("root", "linux-arm64"));

    let finish = work.path().join("finish");
    let done = run(&graph["finish"], &finish);
    expect_code(&done, 0);
    assert_eq!(
        outcomes_of(&finish).values().collect::<Vec<_>>(),
        ["resumed", "resumed"],
        "{}",
        describe(&done)
    );
    // The tests each platform's job ran, in the finish's JUnit.
    let junit = std::fs::read_to_string(finish.join("artifacts/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let ran: Vec<&str> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("testcase")
                && n.attribute("name") == Some("Command Test: the machine is named")
        })
        .filter_map(|n| n.attribute("classname"))
        .collect();
    assert_eq!(ran.len(), 4, "{junit}");
    for platform in ["linux/amd64", "linux/arm64"] {
        assert_eq!(
            ran.iter()
                .filter(|c| c.starts_with(&format!("{platform}: ")))
                .count(),
            2,
            "{junit}"
        );
    }
    for image in ["root", "child"] {
        let json = client.index(&stack.reference(image, &tag));
        let digests: Vec<&str> = json["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        assert_eq!(
            digests,
            [
                per_platform(image, "linux-amd64"),
                per_platform(image, "linux-arm64")
            ],
            "{image}"
        );
    }
}

// ---------------------------------------------------------------- SBOMs

/// Makes the local Debian image with Python and pip (debootstrap, once per
/// machine: `scripts/make-debian-image.sh`); its name.
fn debian_image() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-debian-image.sh");
    common::run_ok("bash", &[script.to_str().unwrap()])
}

/// The one SBOM of `image` in a run's `artifacts/sbom/`.
fn sbom_file(out: &Path, image: &str) -> PathBuf {
    let dir = out.join("artifacts/sbom");
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains(&format!("+{image}=")) && name.ends_with(".spdx.json")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// `(name, version)` of every package of `ecosystem` in an SPDX document.
fn listed(document: &[u8], ecosystem: strata_sbom::Ecosystem) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = strata_sbom::spdx::packages(document)
        .unwrap()
        .into_iter()
        .filter(|p| p.ecosystem == ecosystem)
        .map(|p| (p.name, p.version))
        .collect();
    out.sort();
    out
}

/// A Debian image's SBOM, end to end against the real engine and registry:
/// it lists exactly what `dpkg-query -W` and `pip list` report inside the
/// image, at the same versions; SPDX's own validator takes it; the registry
/// holds it beside the image, found from the image's digest alone; and a
/// child rebuilt with one more pip package shows exactly that package as
/// added since its previous build.
#[test]
fn sboms_list_what_dpkg_and_pip_report_and_stand_beside_each_image() {
    let debian = debian_image();
    let registry = start_registry();
    let stack = Stack::new(&registry.host(), "sbom", 2);
    stack.write(
        "images/root/Dockerfile",
        &format!("FROM {debian}\nRUN echo root > /root.txt\n"),
    );
    let child_from = format!("ARG BASE_TAG\nFROM {}:${{BASE_TAG}}\n", stack.name("root"));
    stack.write(
        "images/child/Dockerfile",
        &format!("{child_from}RUN echo child > /child.txt\n"),
    );
    let first = stack.commit("a Debian root");
    let out = tempfile::tempdir().unwrap();
    let built = stack.build_push(out.path());
    expect_code(&built, 0);

    let root = stack.reference("root", &format!("{PREFIX}-{first}"));
    let sbom = std::fs::read(sbom_file(out.path(), "root")).unwrap();
    let checked = std::process::Command::new("pyspdxtools")
        .arg("-i")
        .arg(sbom_file(out.path(), "root"))
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "pyspdxtools: {}",
        describe(&checked)
    );

    let mut dpkg: Vec<(String, String)> = docker_ok(&[
        "run",
        "--rm",
        &root,
        "dpkg-query",
        "-W",
        "-f",
        "${Package} ${Version}\\n",
    ])
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    dpkg.sort();
    assert!(dpkg.len() > 50, "{dpkg:?}");
    assert_eq!(listed(&sbom, strata_sbom::Ecosystem::Deb), dpkg);

    let pip: Value = serde_json::from_str(&docker_ok(&[
        "run",
        "--rm",
        &root,
        "python3",
        "-m",
        "pip",
        "list",
        "--format=json",
    ]))
    .unwrap();
    let mut pip: Vec<(String, String)> = pip
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .replace(['_', '.'], "-");
            (name, p["version"].as_str().unwrap().to_string())
        })
        .collect();
    pip.sort();
    assert!(pip.iter().any(|(n, _)| n == "pip"), "{pip:?}");
    assert_eq!(listed(&sbom, strata_sbom::Ecosystem::Pypi), pip);

    // From the registry, by digest alone.
    let digest = run_json(out.path())["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "root")
        .and_then(|i| i["digest"].as_str())
        .unwrap()
        .to_string();
    let by_digest = format!("{}@{digest}", stack.name("root"));
    let printed = stack
        .strata()
        .args(["sbom", &by_digest, "--as", "spdx"])
        .output()
        .unwrap();
    expect_code(&printed, 0);
    assert_eq!(printed.stdout, sbom);
    let table = stack.strata().args(["sbom", &root]).output().unwrap();
    expect_code(&table, 0);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("deb ") && l.contains(" dpkg ")),
        "{table}"
    );

    // The child gains one pip package, installed from its own folder.
    stack.write(
        "images/child/probe/setup.py",
        "from setuptools import setup\nsetup(name='strata-probe', version='1.0', py_modules=['strata_probe'])\n",
    );
    stack.write("images/child/probe/strata_probe.py", "VALUE = 1\n");
    stack.write(
        "images/child/Dockerfile",
        &format!(
            "{child_from}RUN echo child > /child.txt\nCOPY probe /src/probe\nRUN python3 -m pip install --quiet --no-index --no-build-isolation --break-system-packages /src/probe\n"
        ),
    );
    // The first build becomes stable: the second's manifests list what
    // changed since it too.
    let stable = format!("{PREFIX}-stable");
    let promoted = stack
        .strata()
        .args([
            "promote",
            "--from",
            &format!("{PREFIX}-{first}"),
            "--to",
            &stable,
        ])
        .output()
        .unwrap();
    expect_code(&promoted, 0);
    let second = stack.commit("the child installs strata-probe");
    let out2 = tempfile::tempdir().unwrap();
    // This build's SBOMs are CycloneDX: strata sbom reads them as a table.
    let rebuilt = stack.build_push_with(out2.path(), &["--sbom-format", "cyclonedx"]);
    expect_code(&rebuilt, 0);
    let child = stack.reference("child", &format!("{PREFIX}-{second}"));
    let table = stack.strata().args(["sbom", &child]).output().unwrap();
    expect_code(&table, 0);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("pypi ") && l.contains(" strata-probe ")),
        "{table}"
    );
    let manifest_path = out2.path().join(format!(
        "manifests/{}.json",
        child.replace('/', "+").replace(':', "=")
    ));
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest_path)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display())),
    )
    .unwrap();
    let changes = &manifest["changes"]["packages"];
    let names = |key: &str| -> Vec<String> {
        changes[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: {changes}"))
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["name"].as_str().unwrap(),
                    p["version"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(names("added"), ["strata-probe 1.0"], "{changes}");
    assert!(names("removed").is_empty(), "{changes}");
    assert!(
        changes["changed"].as_array().unwrap().is_empty(),
        "{changes}"
    );
    let markdown = std::fs::read_to_string(manifest_path.with_extension("md")).unwrap();
    assert!(
        markdown.contains("| added | pypi | strata-probe | | 1.0 |"),
        "{markdown}"
    );
    let since_stable = &manifest["since_stable"];
    assert_eq!(
        since_stable["since"],
        stack.reference("child", &stable),
        "{since_stable}"
    );
    let added: Vec<&str> = since_stable["packages"]["added"]
        .as_array()
        .unwrap_or_else(|| panic!("{since_stable}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["strata-probe"], "{since_stable}");
    assert!(markdown.contains("## Packages since "), "{markdown}");
}

// ------------------------------------------------------- upstream bases

/// Builds `reference` from the local busybox with `content` baked in,
/// pushes it, and removes it from the engine (a runner starts without it):
/// the digest it was pushed at.
fn push_upstream_base(client: &Client, reference: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {BASE_IMAGE}\nRUN echo '{content}' > /upstream.txt\n"),
    )
    .unwrap();
    docker_ok(&[
        "build",
        "-q",
        "-t",
        reference,
        &dir.path().to_string_lossy(),
    ]);
    docker_ok(&["push", reference]);
    docker_ok(&["rmi", reference]);
    client.expect_digest(reference)
}

/// `(builds, reason, tag)` of each image of a plan: `builds` is whether
/// the run would build it (rebuilt, and not already built and tested
/// under the run's tag).
fn plan_rows(plan: &Value) -> BTreeMap<String, (bool, String, String)> {
    plan["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["image"].as_str().unwrap().to_string(),
                (
                    b["rebuild"].as_bool().unwrap() && !b["resumed"].as_bool().unwrap(),
                    b["reason"].as_str().unwrap().to_string(),
                    b["tag"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// [`plan_rows`] of `strata ARGS --format json`, which must succeed.
fn planned_rows(stack: &Stack, args: &[&str]) -> BTreeMap<String, (bool, String, String)> {
    let planned = stack
        .strata()
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    expect_code(&planned, 0);
    plan_rows(&serde_json::from_slice(&planned.stdout).unwrap())
}

/// The labels of the (single-platform) image at `reference`.
fn config_labels(client: &Client, reference: &str) -> BTreeMap<String, String> {
    let r: ImageRef = reference.parse().unwrap();
    let configs = client
        .rt
        .block_on(strata_registry::image_configs(&client.registry, &r))
        .unwrap_or_else(|e| panic!("configs of {reference}: {e}"));
    configs[0].labels.clone()
}

/// A root built for two platforms on an upstream base of two platforms,
/// whose amd64 image the runner also holds under its name: each
/// platform's build is checked against, and records, the base's image of
/// its own platform (the local amd64 image stood for every platform, so
/// the arm64 build failed as built on another base).
#[test]
fn a_two_platform_root_on_a_base_held_locally_for_one_platform_records_each_platforms_base() {
    let registry = start_registry();
    ensure_base_image();
    let client = Client::anonymous();
    let platforms = "platforms: [linux/amd64, linux/arm64]\n";
    let upstream_stack = Stack::new(&registry.host(), "platbase-upstream", 1);
    upstream_stack.write(
        "images/spec.yml",
        &format!(
            "root: root\n{platforms}images:\n  root:\n    image_name: {}\ntag:\n  prefix: \"{PREFIX}\"\n",
            upstream_stack.name("root")
        ),
    );
    upstream_stack.write(
        "images/root/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\n",
    );
    std::fs::copy(
        "/bin/busybox",
        upstream_stack.dir.join("images/root/busybox-amd64"),
    )
    .unwrap();
    std::fs::copy(
        ARM64_BUSYBOX,
        upstream_stack.dir.join("images/root/busybox-arm64"),
    )
    .expect("arm64's busybox (scripts/setup.sh installs it)");
    let head = upstream_stack.commit("a base of two platforms");
    let work = tempfile::tempdir().unwrap();
    expect_code(&upstream_stack.build_push(&work.path().join("upstream")), 0);
    let upstream = upstream_stack.reference("root", &format!("{PREFIX}-{head}"));
    // The runner holds the base's amd64 image under the base's name.
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &upstream]);

    let stack = Stack::new(&registry.host(), "platbase", 1);
    stack.write(
        "images/spec.yml",
        &format!(
            "root: root\n{platforms}images:\n  root:\n    image_name: {}\ntag:\n  prefix: \"{PREFIX}\"\n",
            stack.name("root")
        ),
    );
    stack.write(
        "images/root/Dockerfile",
        &format!(
            "FROM {upstream}\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox uname -m > /arch.txt\"]\n"
        ),
    );
    let head = stack.commit("a root of two platforms on it");
    let built = stack.build_push(&work.path().join("root"));
    expect_code(&built, 0);
    let base_ids: BTreeMap<String, String> = client
        .rt
        .block_on(strata_registry::image_configs(
            &client.registry,
            &upstream.parse().unwrap(),
        ))
        .unwrap()
        .into_iter()
        .map(|c| (c.platform.to_string(), c.id.to_string()))
        .collect();
    let root: ImageRef = stack
        .reference("root", &format!("{PREFIX}-{head}"))
        .parse()
        .unwrap();
    let configs = client
        .rt
        .block_on(strata_registry::image_configs(&client.registry, &root))
        .unwrap();
    assert_eq!(configs.len(), 2, "{}", describe(&built));
    for config in configs {
        let platform = config.platform.to_string();
        assert_eq!(
            config.labels.get(strata_core::plan::BASE_ID_LABEL),
            base_ids.get(&platform),
            "{platform}: {base_ids:?}"
        );
        assert_eq!(
            config.labels.get(strata_core::plan::BASE_DIGEST_LABEL),
            client.digest(&upstream).as_ref(),
            "{platform}"
        );
    }
}

/// A root `FROM` an image of another repository, published; then that
/// base pushed again under the same tag (a security rebuild upstream):
/// `plan --bases` rebuilds the root and its child saying which digests,
/// under tags that differ from the published ones, `build --bases`
/// publishes them without touching the published tags, and the next
/// `plan --bases` has nothing to do.
#[test]
fn a_base_pushed_again_under_its_tag_rebuilds_the_root_and_its_child_under_new_tags() {
    let registry = start_registry();
    ensure_base_image();
    let client = Client::anonymous();
    let stack = Stack::new(&registry.host(), "bases", 2);
    let upstream = format!("{}/e2e-bases-upstream/base:1", registry.host());
    let first = push_upstream_base(&client, &upstream, "v1");
    // A builder stage comes first: the root's base is the image its final
    // stage starts from.
    stack.write("images/root/note.txt", "made in a builder stage\n");
    stack.write(
        "images/root/Dockerfile",
        &format!(
            "FROM scratch AS notes\nCOPY note.txt /note.txt\n\
             FROM {upstream}\nCOPY --from=notes /note.txt /note.txt\nRUN echo 'root 1' > /root.txt\n"
        ),
    );
    let head = stack.commit("root on the upstream base");
    let out = tempfile::tempdir().unwrap();
    let built = stack.build_push(out.path());
    expect_code(&built, 0);
    let published_tag = format!("{PREFIX}-{head}");
    let root_ref = stack.reference("root", &published_tag);
    let labels = config_labels(&client, &root_ref);
    assert_eq!(
        labels.get(strata_core::plan::BASE_NAME_LABEL),
        Some(&upstream)
    );
    assert_eq!(
        labels.get(strata_core::plan::BASE_DIGEST_LABEL),
        Some(&first)
    );
    let published = client.snapshot(&[stack.name("root"), stack.name("child")]);

    // Nothing moved: nothing to do, with or without --bases.
    for args in [&["plan"][..], &["plan", "--bases"]] {
        let rows = planned_rows(&stack, args);
        assert!(
            rows.values().all(|(rebuild, ..)| !rebuild),
            "{args:?}: {rows:?}"
        );
    }

    let second = push_upstream_base(&client, &upstream, "v2 with a security fix");
    assert_ne!(first, second);
    // The runner still has the old base under its name: the engine would
    // prefer it, so the refresh must build on what the registry holds.
    let old = format!("{}@{first}", upstream.trim_end_matches(":1"));
    docker_ok(&["pull", "-q", &old]);
    docker_ok(&["tag", &old, &upstream]);
    let rows = planned_rows(&stack, &["plan", "--bases"]);
    assert_eq!(
        rows["root"].1,
        format!("base {upstream} moved {first} → {second}"),
        "{rows:?}"
    );
    assert_eq!(rows["child"].1, "parent rebuilt (root)", "{rows:?}");
    let new_tag = rows["root"].2.clone();
    assert!(
        new_tag.starts_with(&format!("{published_tag}-base-")) && rows["child"].2 == new_tag,
        "{rows:?}"
    );

    let out = tempfile::tempdir().unwrap();
    let rebuilt = stack.build_push_with(out.path(), &["--bases"]);
    expect_code(&rebuilt, 0);
    let outcomes = outcomes_of(out.path());
    assert!(
        outcomes.values().all(|o| o == "built"),
        "{outcomes:?}\n{}",
        describe(&rebuilt)
    );
    let labels = config_labels(&client, &stack.reference("root", &new_tag));
    assert_eq!(
        labels.get(strata_core::plan::BASE_DIGEST_LABEL),
        Some(&second)
    );
    let inside = docker_ok(&[
        "run",
        "--rm",
        &stack.reference("child", &new_tag),
        "cat",
        "/upstream.txt",
    ]);
    assert_eq!(inside.trim(), "v2 with a security fix");
    assert!(client.digest(&stack.reference("child", &new_tag)).is_some());
    // The tags published before name what they named.
    let now = client.snapshot(&[stack.name("root"), stack.name("child")]);
    for (reference, digest) in &published {
        assert_eq!(now.get(reference), Some(digest), "{reference} moved");
    }

    // Fresh now: the next plan finds the rebuilt images and does nothing.
    let rows = planned_rows(&stack, &["plan", "--bases"]);
    assert!(rows.values().all(|(rebuild, ..)| !rebuild), "{rows:?}");
    let _ = std::process::Command::new("docker")
        .args(["rmi", &upstream, &old])
        .output();
}

// ------------------------------------------------------------------ gates

/// Gates run on each pushed image, pinned by digest, before a run tag
/// names it: `child`'s refuses it, so it has no run tag and `grand`, on
/// it, is not pushed; `root`'s warning gate reports and publishes it. The
/// gates' output is in their logs and the JUnit report.
#[test]
fn a_refusing_gate_keeps_the_run_tag_off_its_image_and_a_warning_gate_publishes() {
    let registry = start_registry();
    ensure_base_image();
    let client = Client::anonymous();
    let stack = Stack::new(&registry.host(), "gates", 3);
    let spec = std::fs::read_to_string(stack.dir.join("images/spec.yml")).unwrap();
    let spec = spec
        .replace(
            "    image_name: ",
            "    gates:\n      placeholder: {command: \"true\"}\n    image_name: ",
        )
        .replacen(
            "    gates:\n      placeholder: {command: \"true\"}\n",
            "    gates:\n      advisory:\n        command: echo advisory for {ref}; exit 1\n        mode: warn\n      slow:\n        command: sleep 60\n        timeout: 1s\n        mode: warn\n",
            1,
        )
        .replacen(
            "    gates:\n      placeholder: {command: \"true\"}\n",
            "    gates:\n      scan:\n        command: echo CRITICAL CVE-2099-0001 in {ref}; exit 3\n",
            1,
        )
        .replace("    gates:\n      placeholder: {command: \"true\"}\n", "")
        + "gates:\n  sbom:\n    command: test -s {sbom} && echo checked {ref} {digest} {platform}\n    timeout: 2m\n";
    stack.write("images/spec.yml", &spec);
    let head = stack.commit("gates");
    let tag = format!("{PREFIX}-{head}");
    let out = tempfile::tempdir().unwrap();
    // Signed: what a gate refuses carries no signature either.
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("gates");
    let generated = stack
        .strata()
        .env_remove("COSIGN_PASSWORD")
        .args(["key", "generate", "--out"])
        .arg(&prefix)
        .output()
        .unwrap();
    expect_code(&generated, 0);
    let key = keys.path().join("gates.key");
    // Gates decide what is published, not what is built: a first build.
    let built = stack.build_push_with(out.path(), &["--all", "--sign-key", key.to_str().unwrap()]);
    expect_code(&built, 1);
    let outcomes = outcomes_of(out.path());
    assert_eq!(
        outcomes["root"],
        "built",
        "{outcomes:?}\n{}",
        describe(&built)
    );
    assert_eq!(outcomes["child"], "failed", "{outcomes:?}");
    assert_ne!(outcomes["grand"], "built", "{outcomes:?}");

    // Only what its gates let through carries the run's tag.
    assert!(client.digest(&stack.reference("root", &tag)).is_some());
    assert_eq!(client.digest(&stack.reference("child", &tag)), None);
    assert_eq!(client.digest(&stack.reference("grand", &tag)), None);

    let run = run_json(out.path());
    let image = |key: &str| {
        run["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == key)
            .unwrap()
            .clone()
    };
    let gates_stage = |key: &str| {
        image(key)["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "gates")
            .unwrap()
            .clone()
    };
    assert_eq!(image("child")["failure"], "gate");
    let root = gates_stage("root");
    assert_eq!(root["status"], "ok", "{root:#}");
    assert!(
        root["message"]
            .as_str()
            .unwrap()
            .contains("warned: advisory, slow"),
        "{root:#}"
    );
    let slow = root["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "slow")
        .unwrap()
        .clone();
    assert!(
        slow["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("ran past its limit of 1s"),
        "{slow:#}"
    );
    let child = gates_stage("child");
    assert_eq!(child["status"], "failed", "{child:#}");
    let message = image("child")["message"].as_str().unwrap().to_string();
    assert!(message.contains("scan (exited with 3)"), "{message}");

    // The placeholders named the pushed image, pinned.
    let root_digest = image("root")["digest"].as_str().unwrap().to_string();
    let sbom_log = std::fs::read_dir(out.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.contains("root") && n.ends_with(".gate-sbom.log")
        })
        .expect("root's sbom gate log");
    let said = std::fs::read_to_string(sbom_log).unwrap();
    assert_eq!(
        said.trim(),
        format!(
            "checked {}@{root_digest} {root_digest} linux/amd64",
            stack.name("root")
        )
    );
    let signature = |image: &str, digest: &str| {
        client.digest(&format!(
            "{}:{}.sig",
            stack.name(image),
            digest.replace(':', "-")
        ))
    };
    assert!(
        signature("root", &root_digest).is_some(),
        "root is not signed"
    );
    let refused = image("child")["digest"].as_str().unwrap().to_string();
    assert_eq!(
        signature("child", &refused),
        None,
        "a refused image is signed"
    );
    let junit = std::fs::read_to_string(out.path().join("artifacts/junit.xml")).unwrap();
    assert!(junit.contains("CRITICAL CVE-2099-0001"), "{junit}");
    assert!(junit.contains("name=\"scan\""), "{junit}");
}
