//! Structure-test files run against real images on the engine, as
//! container-structure-test's docker driver runs them: files from CST's own
//! repository and from public projects that use CST (distroless,
//! rules_docker, docker_examples; crates/strata-structure/tests/data/cst/
//! README.md says where each comes from and the outcome CST gives), and
//! strata's own for an image with no shell at all and for a run option the
//! engine refuses.

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
    build_as(engine, unique_ref("structure"), files, images).await
}

/// Builds an image for a file copied from a public project, under a tag of
/// its own prefix, so the shared engine's images say whose they are.
async fn build_real(engine: &Engine, files: &[(&str, &[u8])], images: &mut Images) -> String {
    build_as(
        engine,
        format!("strata-cst-real/{}:t", unique("image")),
        files,
        images,
    )
    .await
}

async fn build_as(
    engine: &Engine,
    tag: String,
    files: &[(&str, &[u8])],
    images: &mut Images,
) -> String {
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

/// Makes the local Debian 12 image with Python (debootstrap, once per
/// machine: scripts/make-debian-image.sh); its name.
fn debian_image() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/make-debian-image.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "make-debian-image.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The lines of distroless's /etc/passwd and /etc/group (base/testdata/
/// base.yaml expects exactly these).
const DISTROLESS_PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\\n";
const DISTROLESS_GROUP: &str =
    "root:x:0:\\nnobody:x:65534:\\ntty:x:5:\\nstaff:x:50:\\nnonroot:x:65532:\\n";

/// A Dockerfile that lays out distroless's base image FROM scratch: a first
/// stage (the busybox base) writes the tree, the image copies it whole, so
/// the image has no shell. `passwd` is the content of /etc/passwd (printf
/// escapes); without `nonroot_home`, /home/nonroot is missing.
fn distroless_base_dockerfile(passwd: &str, pretty_name: &str, nonroot_home: bool) -> String {
    let home = if nonroot_home {
        " /out/home/nonroot"
    } else {
        ""
    };
    format!(
        "FROM {BASE_IMAGE} AS tree\n\
         RUN mkdir -p /out/tmp /out/etc/ssl/certs /out/usr/share/doc/ca-certificates /out/usr/share/doc/tzdata /out/usr/share/zoneinfo /out/root /out/var/lib/dpkg/status.d /out/usr/lib{home} \\\n\
         && chmod 1777 /out/tmp && chmod 700 /out/root \\\n\
         && printf '{passwd}' > /out/etc/passwd \\\n\
         && printf '{DISTROLESS_GROUP}' > /out/etc/group \\\n\
         && printf 'PRETTY_NAME=\"{pretty_name}\"\\nNAME=\"Debian GNU/Linux\"\\nID=\"debian\"\\nVERSION_ID=\"12\"\\nVERSION=\"Debian GNU/Linux 12 (bookworm)\"\\n' > /out/usr/lib/os-release \\\n\
         && ln -s ../usr/lib/os-release /out/etc/os-release \\\n\
         && echo placeholder > /out/etc/ssl/certs/ca-certificates.crt \\\n\
         && echo placeholder > /out/usr/share/doc/ca-certificates/copyright \\\n\
         && echo placeholder > /out/usr/share/doc/tzdata/copyright \\\n\
         && echo 'tcpmux 1/tcp' > /out/etc/services \\\n\
         && printf 'Package: libc6\\nStatus: install ok installed\\n' > /out/var/lib/dpkg/status.d/libc6\n\
         FROM scratch\n\
         LABEL io.strata.test.build={}\n\
         COPY --from=tree /out/ /\n\
         USER 0\n",
        unique("b")
    )
}

/// distroless's base/testdata/base.yaml (schema 1.0.0) on an image laid out
/// as distroless's base is: every test passes, as in distroless's CI; the
/// relative link /etc/os-release is read through, as CST reads it.
#[tokio::test]
async fn distroless_base_file_passes_on_a_distroless_layout() {
    let engine = engine("cst-distroless-base").await;
    let mut images = Images(Vec::new());
    let dockerfile = distroless_base_dockerfile(DISTROLESS_PASSWD, "Distroless", true);
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(&engine, "distroless_base.yaml", &image, &HostEnv::default()).await;
    let want: Vec<(String, bool)> = [
        "File Content Test: known users",
        "File Content Test: known groups",
        "File Content Test: /usr/lib/os-release pretty name",
        "File Content Test: /etc/os-release pretty name",
        "File Existence Test: root",
        "File Existence Test: tmp",
        "File Existence Test: passwd",
        "File Existence Test: group",
        "File Existence Test: etc-os-release",
        "File Existence Test: certs",
        "File Existence Test: certs_copyright",
        "File Existence Test: services",
        "File Existence Test: tzdata_copyright",
        "File Existence Test: tzdata_zoneinfo",
        "File Existence Test: homedir",
        "File Existence Test: nonroot-homedir",
        "File Existence Test: dpkg-status.d",
    ]
    .iter()
    .map(|n| (n.to_string(), true))
    .collect();
    let got: Vec<(String, bool)> = results.iter().map(|r| (r.name.clone(), r.passed)).collect();
    assert_eq!(got, want, "{results:#?}");
    assert!(containers_of_run(engine.run_id()).is_empty());
}

/// The same file where the image strays from distroless: a missing user, a
/// different name behind the /etc/os-release link, no /home/nonroot. Those
/// tests fail, in CST's schema 1.0.0 words; the rest pass.
#[tokio::test]
async fn distroless_base_file_names_what_a_stray_image_lacks() {
    let engine = engine("cst-distroless-base-fail").await;
    let mut images = Images(Vec::new());
    let passwd = "root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\n";
    let dockerfile = distroless_base_dockerfile(passwd, "Debian", false);
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(&engine, "distroless_base.yaml", &image, &HostEnv::default()).await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "File Content Test: known users",
            "File Content Test: /usr/lib/os-release pretty name",
            "File Content Test: /etc/os-release pretty name",
            "File Existence Test: nonroot-homedir",
        ],
        "{results:#?}"
    );
    assert_eq!(results.len(), 17);
    let by_name = |name: &str| {
        results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        by_name("File Content Test: known users").failures,
        [
            "Expected string '^root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\\n$' not found in file content string 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n'"
        ]
    );
    let os_release = "PRETTY_NAME=\"Debian\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\nVERSION=\"Debian GNU/Linux 12 (bookworm)\"\n";
    for name in [
        "File Content Test: /usr/lib/os-release pretty name",
        "File Content Test: /etc/os-release pretty name",
    ] {
        assert_eq!(
            by_name(name).failures,
            [format!(
                "Expected string 'PRETTY_NAME=\"Distroless\"' not found in file content string '{os_release}'"
            )]
        );
    }
    let home = &by_name("File Existence Test: nonroot-homedir").failures;
    assert_eq!(home.len(), 1, "{home:?}");
    assert!(
        home[0].starts_with(
            "Error examining file in container: Error retrieving file from container: API error (404): "
        ),
        "{home:?}"
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}

/// distroless's python3/testdata/python3.yaml (schema 1.0.0, commands only)
/// on Debian 12's Python with every shell removed, as in distroless's
/// python3 image: the commands run with no shell and `no_shell` exits 1
/// because Python finds no /bin/sh. On the same Python with its shell,
/// `no_shell` fails with CST's words and the rest still pass.
#[tokio::test]
async fn distroless_python3_file_passes_only_without_a_shell() {
    let engine = engine("cst-distroless-python").await;
    let mut images = Images(Vec::new());
    let debian = debian_image();
    let dockerfile = format!(
        "FROM {debian}\n\
         LABEL io.strata.test.build={}\n\
         RUN [\"/usr/bin/rm\", \"-f\", \"/usr/bin/sh\", \"/usr/bin/dash\", \"/usr/bin/bash\", \"/usr/bin/rbash\"]\n\
         ENTRYPOINT [\"/usr/bin/python3.11\"]\n\
         CMD []\n",
        unique("b")
    );
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "distroless_python3.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            ("Command Test: hello", true),
            ("Command Test: no_shell", true),
            ("Command Test: filesystem_utf8", true),
            ("Command Test: print_utf8", true),
        ],
        "{results:#?}"
    );
    assert!(results[3].output.contains("h\u{e9}llo.txt"), "{results:#?}");

    let results = run_file(
        &engine,
        "distroless_python3.yaml",
        &debian,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            ("Command Test: hello", true),
            ("Command Test: no_shell", false),
            ("Command Test: filesystem_utf8", true),
            ("Command Test: print_utf8", true),
        ],
        "{results:#?}"
    );
    assert_eq!(
        results[1].failures,
        ["Test 'no_shell' exited with incorrect error code. Expected: 1, Actual: 0"]
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}

/// A shell-less image laid out as distroless's java17 (debian13) image is,
/// for distroless's java/testdata/java17_debian13.yaml (schema 2.0.0):
/// links with `Lrwxrwxrwx`, helpers executable by any, no shell, no javac.
/// It has no JVM (none can be made here): at the java paths is Debian's
/// static busybox, which knows no `java` applet, so the two command tests
/// fail in CST's words and every file and metadata test passes. With
/// copies in place of the links and helpers not executable, those tests
/// fail too.
#[tokio::test]
async fn distroless_java17_file_checks_links_and_executable_bits() {
    let engine = engine("cst-distroless-java").await;
    let mut images = Images(Vec::new());
    let busybox = std::fs::read("/bin/busybox").expect("Debian's static busybox");
    let jre = "/usr/lib/jvm/temurin-17-jre-amd64";
    let java17 = |links: bool, helper_mode: &str| {
        let certs = if links {
            format!(
                "ln -s /etc/ssl/certs/java/cacerts /out/etc/ssl/certs/adoptium/cacerts && ln -s /etc/ssl/certs/java/cacerts /out{jre}/lib/security/cacerts"
            )
        } else {
            format!(
                "cp /out/etc/ssl/certs/java/cacerts /out/etc/ssl/certs/adoptium/cacerts && cp /out/etc/ssl/certs/java/cacerts /out{jre}/lib/security/cacerts"
            )
        };
        format!(
            "FROM {BASE_IMAGE} AS tree\n\
             COPY busybox /tree-busybox\n\
             RUN mkdir -p /out/etc/ssl/certs/java /out/etc/ssl/certs/adoptium /out{jre}/lib/security /out{jre}/bin /out/usr/bin \\\n\
             && echo placeholder > /out/etc/ssl/certs/java/cacerts \\\n\
             && {certs} \\\n\
             && cp /tree-busybox /out{jre}/bin/java && chmod 755 /out{jre}/bin/java \\\n\
             && ln -s {jre}/bin/java /out/usr/bin/java \\\n\
             && echo helper > /out{jre}/lib/jexec && echo helper > /out{jre}/lib/jspawnhelper \\\n\
             && chmod {helper_mode} /out{jre}/lib/jexec /out{jre}/lib/jspawnhelper\n\
             FROM scratch\n\
             LABEL io.strata.test.build={}\n\
             COPY --from=tree /out/ /\n\
             ENV JAVA_VERSION=17.0.20.1\n\
             ENTRYPOINT [\"{jre}/bin/java\", \"-jar\"]\n",
            unique("b")
        )
    };
    let dockerfile = java17(true, "755");
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes()), ("busybox", &busybox)],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "distroless_java17_debian13.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(
        outcomes(&results),
        [
            ("Command Test: java", false),
            ("Command Test: java-symlink", false),
            ("File Existence Test: certs", true),
            ("File Existence Test: certs", true),
            ("File Existence Test: certs", true),
            ("File Existence Test: no-busybox", true),
            ("File Existence Test: no-shell", true),
            ("File Existence Test: no-javac", true),
            ("File Existence Test: jexec-executable", true),
            ("File Existence Test: jspawnhelper-executable", true),
            ("Metadata Test", true),
        ],
        "{results:#?}"
    );
    for (r, name) in results[..2].iter().zip(["java", "java-symlink"]) {
        assert_eq!(
            r.failures,
            [
                "Expected string 'openjdk version \"17.0.20.1' not found in error 'java: applet not found\n'"
                    .to_string(),
                format!("Test '{name}' exited with incorrect error code. Expected: 0, Actual: 127"),
            ],
            "{r:#?}"
        );
    }

    let dockerfile = java17(false, "644");
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes()), ("busybox", &busybox)],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "distroless_java17_debian13.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    let files: Vec<(&str, bool)> = outcomes(&results)[2..10].to_vec();
    assert_eq!(
        files,
        [
            ("File Existence Test: certs", true),
            ("File Existence Test: certs", false),
            ("File Existence Test: certs", false),
            ("File Existence Test: no-busybox", true),
            ("File Existence Test: no-shell", true),
            ("File Existence Test: no-javac", true),
            ("File Existence Test: jexec-executable", false),
            ("File Existence Test: jspawnhelper-executable", false),
        ],
        "{results:#?}"
    );
    assert_eq!(
        results[3].failures,
        [
            "/etc/ssl/certs/adoptium/cacerts has incorrect permissions. Expected: Lrwxrwxrwx, Actual: -rw-r--r--"
        ]
    );
    assert_eq!(
        results[4].failures,
        [format!(
            "{jre}/lib/security/cacerts has incorrect permissions. Expected: Lrwxrwxrwx, Actual: -rw-r--r--"
        )]
    );
    assert_eq!(
        results[8].failures,
        [format!(
            "{jre}/lib/jexec has incorrect executable bit. Expected to be executable by any, Actual: -rw-r--r--"
        )]
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}

/// rules_docker's tests/container/configs/deb_image_with_dpkgs.yaml (schema
/// 2.0.0: permissions, content patterns, workdir) on an image laid out as
/// its test image is (dpkg status files under /var/lib/dpkg/status.d, each
/// package's file under /usr, WORKDIR /test): every test passes. Where a
/// file is executable, a package is missing and no workdir is set, those
/// tests fail in CST's words.
#[tokio::test]
async fn rules_docker_deb_file_checks_permissions_contents_and_workdir() {
    let engine = engine("cst-rules-docker").await;
    let mut images = Images(Vec::new());
    let deb_image = |packages: &[&str], exec: &str, workdir: bool| {
        let mut run = String::from("mkdir -p /out/var/lib/dpkg/status.d /out/usr");
        for p in packages {
            run.push_str(&format!(
                " && printf 'Package: {p}\\nVersion: 1.0\\nArchitecture: all\\nDescription: the {p} test package\\n' > /out/var/lib/dpkg/status.d/{p} && echo toto > /out/usr/{p} && chmod 644 /out/var/lib/dpkg/status.d/{p} /out/usr/{p}"
            ));
        }
        if !exec.is_empty() {
            run.push_str(&format!(" && chmod 755 /out/usr/{exec}"));
        }
        format!(
            "FROM {BASE_IMAGE} AS tree\nRUN {run}\nFROM scratch\nLABEL io.strata.test.build={}\nCOPY --from=tree /out/ /\n{}",
            unique("b"),
            if workdir { "WORKDIR /test\n" } else { "" }
        )
    };
    let all = ["pkg1", "pkg2", "pkg_control_gz", "pkg_control_xz"];
    let dockerfile = deb_image(&all, "", true);
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "rules_docker_deb_image_with_dpkgs.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    assert_eq!(results.len(), 15, "{results:#?}");
    assert!(results.iter().all(|r| r.passed), "{results:#?}");
    assert_eq!(
        results[0].name,
        "File Content Test: Dpkg status file for Pkg1 contents"
    );
    assert_eq!(results[14].name, "Metadata Test");

    let dockerfile = deb_image(&all[..3], "pkg2", false);
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "rules_docker_deb_image_with_dpkgs.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "File Content Test: Dpkg status file for pkg_control_xz contents",
            "File Existence Test: pkg2 package files",
            "File Existence Test: dpkg status file for pkg_control_xz",
            "File Existence Test: pkg_control_xz package files",
            "Metadata Test",
        ],
        "{results:#?}"
    );
    let by_name = |name: &str| {
        &results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .failures
    };
    assert_eq!(
        by_name("File Existence Test: pkg2 package files"),
        &["/usr/pkg2 has incorrect permissions. Expected: -rw-r--r--, Actual: -rwxr-xr-x"]
    );
    let content = by_name("File Content Test: Dpkg status file for pkg_control_xz contents");
    assert!(
        content.len() == 1
            && content[0].starts_with(
                "Failed to open /var/lib/dpkg/status.d/pkg_control_xz. Error: Error retrieving file from container: API error (404): "
            ),
        "{content:?}"
    );
    // CST names the image's workdir as the engine reports it (BuildKit
    // writes `/` for a stage that sets none).
    let workdir = docker(&["image", "inspect", "-f", "{{.Config.WorkingDir}}", &image]);
    let workdir = workdir.trim_end_matches('\n');
    assert_ne!(workdir, "/test");
    assert_eq!(
        by_name("Metadata Test"),
        &[format!(
            "Image workdir {workdir} does not match config workdir: /test"
        )]
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}

/// docker_examples' 31_structure_tests/test_turn.yaml (schema 2.0.0: files
/// that must not be shipped, a script executable by its owner) on an image
/// that ships /turn/generate.sh (mode 744) and /repo only: every test
/// passes. Shipping /turn/.env and a generate.sh without its execute bit
/// fails those two, in CST's words.
#[tokio::test]
async fn docker_examples_turn_file_checks_absence_and_owner_execution() {
    let engine = engine("cst-docker-examples").await;
    let mut images = Images(Vec::new());
    let turn = |extra: &str, mode: &str| {
        format!(
            "FROM {BASE_IMAGE}\nLABEL io.strata.test.build={}\nRUN mkdir -p /turn /repo && echo 'echo generate' > /turn/generate.sh && chmod {mode} /turn/generate.sh{extra}\n",
            unique("b")
        )
    };
    let dockerfile = turn("", "744");
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "docker_examples_test_turn.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    let names = [
        "File Existence Test: .env",
        "File Existence Test: ranges.csv",
        "File Existence Test: generate.sh",
        "File Existence Test: test folder",
        "File Existence Test: user mapping",
        "File Existence Test: Dockerfile",
        "File Existence Test: repo folder",
    ];
    let want: Vec<(&str, bool)> = names.iter().map(|n| (*n, true)).collect();
    assert_eq!(outcomes(&results), want, "{results:#?}");

    let dockerfile = turn(" && echo SECRET=1 > /turn/.env", "644");
    let image = build_real(
        &engine,
        &[("Dockerfile", dockerfile.as_bytes())],
        &mut images,
    )
    .await;
    let results = run_file(
        &engine,
        "docker_examples_test_turn.yaml",
        &image,
        &HostEnv::default(),
    )
    .await;
    let want: Vec<(&str, bool)> = names
        .iter()
        .map(|n| (*n, !n.ends_with(".env") && !n.ends_with("generate.sh")))
        .collect();
    assert_eq!(outcomes(&results), want, "{results:#?}");
    assert_eq!(
        results[0].failures,
        ["File /turn/.env should not exist but does"]
    );
    assert_eq!(
        results[2].failures,
        [
            "/turn/generate.sh has incorrect executable bit. Expected to be executable by owner, Actual: -rw-r--r--"
        ]
    );
    assert!(containers_of_run(engine.run_id()).is_empty());
}
