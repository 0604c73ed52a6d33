//! Signing end to end, against a real `docker-registry` on loopback, the
//! real engine and a verifier no one here wrote: skopeo 1.18 from Debian 13
//! (`scripts/skopeo-trixie.sh`), whose containers/image reads cosign's
//! signatures (`use-sigstore-attachments`) under a `sigstoreSigned` policy.
//! One signed run of a two-platform stack: every image copies; an unsigned
//! image, one signed by another key and one whose signature names another
//! digest are refused; the index's own signature checks with the public
//! key (strata's verify, and OpenSSL); a promotion of a set holding an
//! unsigned image moves nothing; the key and its password are nowhere in
//! the run's output, files or process arguments.

mod common;

use common::{describe, docker_ok, ensure_base_image};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use strata_core::reference::ImageRef;
use strata_registry::testing::{Family, TestRegistry, push_tagged_image};
use strata_registry::{Registry, RegistryOptions};

/// skopeo from Debian 13, run by its own loader.
const SKOPEO: &str = "/opt/strata-test/bin/skopeo";
const ARM64_BUSYBOX: &str = "/usr/local/share/strata/busybox-arm64";
const PASSWORD: &str = "correct-horse-strata-7f3a";

/// A registry client on its own runtime, for the test's own reads and
/// writes (a signer needs it for the whole process).
struct Client {
    rt: tokio::runtime::Runtime,
    registry: &'static Registry,
}

impl Client {
    fn new() -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let registry = Registry::new(RegistryOptions::default()).unwrap();
        Client {
            rt,
            registry: Box::leak(Box::new(registry)),
        }
    }

    /// Pushes a small image no one signed; its digest.
    fn push_unsigned(&self, reference: &str) -> String {
        let r: ImageRef = reference.parse().unwrap();
        let manifest = self
            .rt
            .block_on(push_tagged_image(self.registry, &r, Family::Oci, reference))
            .unwrap();
        manifest.digest().to_string()
    }

    /// The digest `reference` names, if the registry has it.
    fn digest(&self, reference: &str) -> Option<String> {
        let r: ImageRef = reference.parse().unwrap();
        self.rt
            .block_on(self.registry.head_manifest(&r))
            .unwrap()
            .map(|i| i.digest.to_string())
    }

    fn manifest(&self, reference: &str) -> Value {
        let r: ImageRef = reference.parse().unwrap();
        let m = self
            .rt
            .block_on(self.registry.get_manifest(&r))
            .unwrap()
            .unwrap_or_else(|| panic!("{reference} is not in the registry"));
        serde_json::from_slice(m.bytes()).unwrap()
    }
}

/// `name@sha256:<hex>` → `name:sha256-<hex>.sig`, cosign's signature tag.
fn signature_tag(name: &str, digest: &str) -> String {
    format!("{name}:{}.sig", digest.replace(':', "-"))
}

/// root → child for linux/amd64 and linux/arm64, committed; its folder.
fn two_platform_stack(dir: &Path, namespace: &str) {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "images/spec.yml",
        &format!(
            "root: root\nplatforms: [linux/amd64, linux/arm64]\nimages:\n  root:\n    image_name: {namespace}/root\n  child:\n    image_name: {namespace}/child\n    depend_on: root\ntag:\n  prefix: \"v1\"\n"
        ),
    );
    write(
        "images/root/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    );
    std::fs::copy("/bin/busybox", dir.join("images/root/busybox-amd64")).unwrap();
    std::fs::copy(ARM64_BUSYBOX, dir.join("images/root/busybox-arm64"))
        .expect("arm64's busybox (scripts/setup.sh installs it)");
    write(
        "images/child/Dockerfile",
        &format!("ARG BASE_TAG\nFROM {namespace}/root:${{BASE_TAG}}\nRUN uname -m > /arch.txt\n"),
    );
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "two platforms"],
    ] {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap();
        assert!(ok.success(), "git {args:?}");
    }
}

/// The test's folder: the repository, the keys, skopeo's configuration.
struct Bench {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    repo: PathBuf,
}

impl Bench {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `strata` in the repository with an empty Docker config.
    fn strata(&self) -> Command {
        let mut cmd = common::strata(&self.repo);
        cmd.env("DOCKER_CONFIG", self.path("docker-config"))
            .env_remove("COSIGN_PASSWORD")
            .env_remove("STRATA_SIGN_KEY");
        cmd
    }

    /// `strata verify REF --key <key>.pub --format json`.
    fn verify(&self, reference: &str, key: &str) -> Output {
        self.strata()
            .args(["verify", reference, "--format", "json", "--key"])
            .arg(self.path(&format!("{key}.pub")))
            .output()
            .unwrap()
    }

    /// `strata promote --from FROM --to TO --verify-key key.pub`.
    fn promote(&self, from: &str, to: &str) -> Output {
        self.strata()
            .args(["promote", "--from", from, "--to", to, "--verify-key"])
            .arg(self.path("key.pub"))
            .output()
            .unwrap()
    }

    /// skopeo copying every platform of `reference` under the policy that
    /// accepts only images signed by `key.pub`.
    fn skopeo_copy(&self, reference: &str) -> Output {
        let dest = tempfile::tempdir().unwrap();
        Command::new(SKOPEO)
            .arg("--policy")
            .arg(self.path("policy.json"))
            .arg("--registries.d")
            .arg(self.path("registries.d"))
            .args(["copy", "--all", "--src-tls-verify=false"])
            .arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", dest.path().join("image").display()))
            .output()
            .unwrap_or_else(|e| panic!("{SKOPEO} (scripts/setup.sh installs it): {e}"))
    }
}

fn bench(registry: &TestRegistry) -> Bench {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let repo = root.join("repo");
    std::fs::create_dir_all(root.join("docker-config")).unwrap();
    std::fs::write(root.join("docker-config/config.json"), "{}\n").unwrap();
    std::fs::create_dir_all(root.join("registries.d")).unwrap();
    std::fs::write(
        root.join("registries.d/strata.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n",
            registry.host()
        ),
    )
    .unwrap();
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {registry.host(): [{
            "type": "sigstoreSigned",
            "keyPath": root.join("key.pub"),
            "signedIdentity": {"type": "matchRepository"},
        }]}},
    });
    std::fs::write(root.join("policy.json"), policy.to_string()).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    Bench {
        _tmp: tmp,
        root,
        repo,
    }
}

#[track_caller]
fn expect_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", describe(out));
}

/// Runs `cmd` to its end, reading every process's arguments (`ps`) while
/// it runs; its output and what `ps` showed.
fn run_watching_ps(mut cmd: Command) -> (Output, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run took over 15 minutes"
        );
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        seen.push_str(&String::from_utf8_lossy(&ps.stdout));
        std::thread::sleep(Duration::from_millis(250));
    }
    (child.wait_with_output().unwrap(), seen)
}

/// Every file's text under `dir`.
fn texts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                found.push((path, text));
            }
        }
    }
    found
}

#[test]
fn a_signed_two_platform_run_is_what_skopeo_accepts_and_nothing_else() {
    ensure_base_image();
    let registry = TestRegistry::start().unwrap_or_else(|e| panic!("docker-registry: {e}"));
    let bench = bench(&registry);
    let namespace = format!("{}/e2e-signing", registry.host());
    two_platform_stack(&bench.repo, &namespace);
    let sha = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(&bench.repo)
        .output()
        .unwrap();
    let tag = format!("v1-{}", String::from_utf8_lossy(&sha.stdout).trim());

    // The key pair, cosign's encrypted format; another key beside it.
    let key = bench.path("key");
    let generated = bench
        .strata()
        .args(["key", "generate", "--out"])
        .arg(&key)
        .env("COSIGN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    expect_code(&generated, 0);
    let other = bench.path("other");
    expect_code(
        &bench
            .strata()
            .args(["key", "generate", "--out"])
            .arg(&other)
            .output()
            .unwrap(),
        0,
    );
    let key_file = std::fs::read_to_string(bench.path("key.key")).unwrap();
    assert!(key_file.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    // The key as the run holds it, opened: what a leak would show.
    let opened = strata_sign::PrivateKey::from_pem(
        key_file.as_bytes(),
        Some(&strata_sign::Password::new(PASSWORD.into())),
    )
    .unwrap()
    .to_pem()
    .unwrap()
    .to_string();
    let secrets: Vec<&str> = std::iter::once(PASSWORD)
        .chain(key_file.lines().filter(|l| !l.starts_with("-----")))
        .chain(opened.lines().filter(|l| !l.starts_with("-----")))
        .collect();

    // A wrong password fails at once, saying so, and repeats neither.
    let mut wrong = bench.strata();
    wrong
        .args(["build", "--push", "--sign-key"])
        .arg(bench.path("key.key"))
        .env("COSIGN_PASSWORD", "not-the-password-9c1e");
    let wrong = wrong.output().unwrap();
    expect_code(&wrong, 2);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&wrong.stdout),
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert!(said.contains("COSIGN_PASSWORD"), "{said}");
    assert!(!said.contains("not-the-password-9c1e"), "{said}");

    // The signed run, its key named by STRATA_SIGN_KEY.
    let out_dir = bench.path("out");
    let mut run = bench.strata();
    run.args(["build", "--push", "--jobs", "2", "--out"])
        .arg(&out_dir)
        .env("STRATA_SIGN_KEY", bench.path("key.key"))
        .env("COSIGN_PASSWORD", PASSWORD);
    let (out, ps) = run_watching_ps(run);
    expect_code(&out, 0);
    assert!(ps.contains("strata"), "ps saw the run");
    let mut places = vec![
        ("ps output".to_string(), ps),
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ];
    places.extend(
        texts_under(&out_dir)
            .into_iter()
            .map(|(p, t)| (p.display().to_string(), t)),
    );
    for (place, text) in &places {
        for secret in &secrets {
            assert!(!text.contains(secret), "{place} holds a secret");
        }
    }

    // Every image copies under the policy: each index whole (--all), and
    // each platform's image by its own tag.
    let client = Client::new();
    for image in ["root", "child"] {
        let reference = format!("{namespace}/{image}:{tag}");
        for copied in [
            reference.clone(),
            format!("{reference}-linux-amd64"),
            format!("{reference}-linux-arm64"),
        ] {
            let copy = bench.skopeo_copy(&copied);
            assert!(copy.status.success(), "{copied}: {}", describe(&copy));
        }
        // strata verify: the index, each platform's image and its SBOM.
        let verified = bench.verify(&reference, "key");
        expect_code(&verified, 0);
        let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
        let kinds: Vec<(&str, &str)> = report[0]["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["kind"].as_str().unwrap(), m["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("index", "signed"),
                ("image", "signed"),
                ("image", "signed"),
                ("application/spdx+json", "signed"),
                ("application/spdx+json", "signed"),
            ],
            "{report:#}"
        );
        // Another key does not verify it.
        expect_code(&bench.verify(&reference, "other"), 1);
        // The index's own signature, checked with the public key by
        // OpenSSL: cosign's payload naming the index's digest.
        let index_digest = client.digest(&reference).unwrap();
        let name = format!("{namespace}/{image}");
        let sig = client.manifest(&signature_tag(&name, &index_digest));
        let layer = &sig["layers"][0];
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let payload = client
            .rt
            .block_on(client.registry.get_blob(
                &name.parse().unwrap(),
                &layer["digest"].as_str().unwrap().parse().unwrap(),
                65536,
            ))
            .unwrap()
            .unwrap();
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            claims["critical"]["image"]["docker-manifest-digest"],
            index_digest
        );
        assert_eq!(claims["critical"]["identity"]["docker-reference"], name);
        assert_eq!(
            claims["critical"]["type"],
            "cosign container image signature"
        );
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                layer["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        std::fs::write(bench.path("payload"), &payload).unwrap();
        std::fs::write(bench.path("signature.der"), der).unwrap();
        let openssl = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(bench.path("key.pub"))
            .arg("-signature")
            .arg(bench.path("signature.der"))
            .arg(bench.path("payload"))
            .output()
            .unwrap();
        assert!(openssl.status.success(), "{}", describe(&openssl));
    }

    // Provenance: each platform's image says how it was made.
    let arm = format!("{namespace}/child:{tag}-linux-arm64");
    let labels: Value = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &arm,
    ]))
    .unwrap();
    assert_eq!(labels["io.strata.platform"], "linux/arm64", "{labels:#}");
    assert_eq!(labels["io.strata.version"], env!("CARGO_PKG_VERSION"));
    assert!(
        labels["io.strata.reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{labels:#}"
    );

    // Refused: an unsigned image, one signed by another key, and one whose
    // signature is another digest's (a signed image's `.sig` copied to it).
    let root = format!("{namespace}/root");
    client.push_unsigned(&format!("{root}:unsigned"));
    let theirs = client.push_unsigned(&format!("{root}:other-key"));
    let other_key =
        strata_sign::PrivateKey::from_pem(&std::fs::read(bench.path("other.key")).unwrap(), None)
            .unwrap();
    let signer = strata_exec::sign::KeySigner::new(client.registry, other_key);
    use strata_exec::sign::Signer as _;
    client
        .rt
        .block_on(signer.sign(&format!("{root}@{theirs}").parse().unwrap()))
        .unwrap();
    let forged = client.push_unsigned(&format!("{root}:forged"));
    let amd64 = client.digest(&format!("{root}:{tag}-linux-amd64")).unwrap();
    client
        .rt
        .block_on(client.registry.copy(
            &signature_tag(&root, &amd64).parse().unwrap(),
            &signature_tag(&root, &forged).parse().unwrap(),
        ))
        .unwrap();
    for (refused, skopeo_says, strata_says) in [
        ("unsigned", "no signature exists", "\"unsigned\""),
        (
            "other-key",
            "signature verification failed",
            "not made by this key",
        ),
        ("forged", "does not match", "the signature is of sha256:"),
    ] {
        let reference = format!("{root}:{refused}");
        let copy = bench.skopeo_copy(&reference);
        assert!(!copy.status.success(), "{reference}: {}", describe(&copy));
        let why = String::from_utf8_lossy(&copy.stderr);
        assert!(
            why.contains("Source image rejected") && why.contains(skopeo_says),
            "{reference}: {why}"
        );
        let verified = bench.verify(&reference, "key");
        expect_code(&verified, 1);
        assert!(
            String::from_utf8_lossy(&verified.stdout).contains(strata_says),
            "{}",
            describe(&verified)
        );
    }

    // A second signature of a digest, by another key, is added beside the
    // first, which still verifies.
    let pinned: ImageRef = format!("{root}@{amd64}").parse().unwrap();
    client.rt.block_on(signer.sign(&pinned)).unwrap();
    let layers = client.manifest(&signature_tag(&root, &amd64))["layers"].clone();
    assert_eq!(layers.as_array().map(Vec::len), Some(2), "{layers:#}");
    let copy = bench.skopeo_copy(&pinned.to_string());
    assert!(copy.status.success(), "{}", describe(&copy));
    expect_code(&bench.verify(&pinned.to_string(), "key"), 0);
    // The other key vouches for the image now (not for its SBOM).
    let theirs = bench.verify(&pinned.to_string(), "other");
    let report: Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(report[0]["manifests"][0]["status"], "signed", "{report:#}");

    // A key put in use later (rotated): the images a run does not rebuild
    // (root, when only the child changed) and those it reuses (every image
    // of a run of all at a new commit) are signed with it before its tag
    // names them, with the SBOMs their builds put beside them.
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&bench.repo)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let third = bench.path("third");
    expect_code(
        &bench
            .strata()
            .args(["key", "generate", "--out"])
            .arg(&third)
            .output()
            .unwrap(),
        0,
    );
    let rotated_run = |key: &str, all: bool| {
        let tag = format!("v1-{}", git(&["rev-parse", "--short=7", "HEAD"]));
        let out_dir = bench.path(&format!("out-{key}"));
        let mut cmd = bench.strata();
        cmd.args(["build", "--push", "--out"])
            .arg(&out_dir)
            .arg("--sign-key")
            .arg(bench.path(&format!("{key}.key")));
        if all {
            cmd.arg("--all");
        }
        expect_code(&cmd.output().unwrap(), 0);
        (tag, common::each_image(&out_dir, "outcome"))
    };
    let expect_signed = |reference: &str, key: &str| {
        let verified = bench.verify(reference, key);
        expect_code(&verified, 0);
        let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
        let manifests = report[0]["manifests"].as_array().unwrap();
        let sboms = manifests
            .iter()
            .filter(|m| m["kind"] == "application/spdx+json")
            .count();
        assert_eq!(sboms, 2, "{reference}: {report:#}");
        assert!(
            manifests.iter().all(|m| m["status"] == "signed"),
            "{reference}: {report:#}"
        );
    };
    std::fs::write(
        bench.repo.join("images/child/Dockerfile"),
        format!("ARG BASE_TAG\nFROM {namespace}/root:${{BASE_TAG}}\nRUN uname -m > /arch.txt && echo 2 > /version\n"),
    )
    .unwrap();
    git(&["commit", "-q", "-am", "child: a second version"]);
    let (changed, outcomes) = rotated_run("other", false);
    assert_eq!(
        outcomes,
        BTreeMap::from([("child".to_string(), "built".to_string())])
    );
    expect_signed(&format!("{namespace}/root:{changed}"), "other");
    expect_signed(&format!("{namespace}/child:{changed}"), "other");
    git(&["commit", "-q", "--allow-empty", "-m", "a third key"]);
    let (all, outcomes) = rotated_run("third", true);
    assert!(
        outcomes.values().all(|o| o == "reused"),
        "every image is reused: {outcomes:?}"
    );
    for image in ["root", "child"] {
        expect_signed(&format!("{namespace}/{image}:{all}"), "third");
    }

    // Promotion: the signed set moves; with one image unsigned, nothing.
    expect_code(&bench.promote(&tag, "v1-stable"), 0);
    client.push_unsigned(&format!("{namespace}/child:{tag}"));
    let refused = bench.promote(&tag, "stable");
    expect_code(&refused, 1);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("nothing was promoted"),
        "{}",
        describe(&refused)
    );
    for image in ["root", "child"] {
        assert_eq!(
            client.digest(&format!("{namespace}/{image}:stable")),
            None,
            "{image}:stable was put"
        );
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' | grep '^{namespace}/' | xargs -r docker rmi -f"))
        .output();
}
