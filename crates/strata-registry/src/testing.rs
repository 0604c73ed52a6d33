//! Test support: a real `docker-registry` on loopback, and small images
//! uploaded straight into it (no engine needed).
//!
//! [`TestRegistry::start`] runs Debian's `docker-registry serve <config>` (the
//! binary is `$STRATA_DOCKER_REGISTRY`, else `docker-registry` on PATH, else
//! `/usr/bin/docker-registry`) on `127.0.0.1` with a free port and a
//! temporary filesystem storage, waits until `/v2/` answers, and kills it on
//! drop. [`TestRegistry::start_with_htpasswd`] protects it with basic auth
//! (a bcrypt file made by `htpasswd -Bi`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strata_core::reference::{ImageName, ImageRef, Tag};

use crate::manifest::{self, Manifest};
use crate::{Registry, RegistryError};

/// A running `docker-registry`, killed on drop.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

fn registry_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_DOCKER_REGISTRY") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("docker-registry");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("/usr/bin/docker-registry")
}

/// Whether a `docker-registry` binary is available.
pub fn registry_available() -> bool {
    registry_binary().is_file()
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET /v2/` over a raw socket: the status code, if anything answered.
fn probe(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl TestRegistry {
    /// An open registry.
    pub fn start() -> std::io::Result<Self> {
        Self::start_inner(None)
    }

    /// A registry requiring basic auth as `user` / `password`.
    pub fn start_with_htpasswd(user: &str, password: &str) -> std::io::Result<Self> {
        Self::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> std::io::Result<Self> {
        let mut last_err = None;
        // A port found free may be taken before the registry binds it: retry.
        for _ in 0..5 {
            match Self::try_start(auth) {
                Ok(r) => return Ok(r),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("registry did not start")))
    }

    fn try_start(auth: Option<(&str, &str)>) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: strata-test-{port}\n",
            storage.display()
        );
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            let mut child = Command::new("htpasswd")
                .args(["-Bin", user])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(password.as_bytes())?;
            }
            let out = child.wait_with_output()?;
            if !out.status.success() {
                return Err(std::io::Error::other(format!(
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )));
            }
            std::fs::write(&htpasswd, &out.stdout)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: strata-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let child = serve(dir.path(), addr)?;
        Ok(TestRegistry { child, addr, dir })
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The temporary directory (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The repository `<host>/<repo>` of this registry.
    pub fn name(&self, repository: &str) -> ImageName {
        parse_name(&format!("{}/{repository}", self.host()))
    }
}

impl TestRegistry {
    /// Stops the registry (SIGKILL), as a registry that goes away does;
    /// its storage stays for [`TestRegistry::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the registry again on the same address and storage.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.child = serve(self.dir.path(), self.addr)?;
        Ok(())
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `docker-registry serve` on `dir`'s config, answering on `addr`,
/// and waits until it answers `/v2/`.
fn serve(dir: &Path, addr: SocketAddr) -> std::io::Result<Child> {
    let config_path = dir.join("config.yml");
    let log = std::fs::File::create(dir.join("registry.log"))?;
    let mut child = Command::new(registry_binary())
        .arg("serve")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            return Err(std::io::Error::other(format!(
                "docker-registry exited with {status}: {log}"
            )));
        }
        if matches!(probe(addr), Some(200 | 401)) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(
                "docker-registry did not answer /v2/ within 15 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

fn parse_name(s: &str) -> ImageName {
    match s.parse() {
        Ok(n) => n,
        Err(e) => panic!("test image name {s}: {e}"),
    }
}

/// `name:tag` (panics on an invalid tag: test helper).
pub fn tagged(name: &ImageName, tag: &str) -> ImageRef {
    match tag.parse::<Tag>() {
        Ok(t) => name.with_tag(t),
        Err(e) => panic!("test tag {tag}: {e}"),
    }
}

/// Which media-type family a test image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Docker schema 2 manifest / manifest list.
    Docker,
    /// OCI manifest / index.
    Oci,
}

/// Uploads a small image (a config blob and one layer blob whose content is
/// derived from `seed`) and returns its manifest (not yet tagged, nor put).
/// The seed is in the config and the layer, so different seeds give
/// different digests.
pub async fn push_image(
    registry: &Registry,
    name: &ImageName,
    family: Family,
    seed: &str,
) -> Result<Manifest, RegistryError> {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"strata-seed":"{seed}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    )
    .into_bytes();
    let layer = format!("layer bytes for {seed}").into_bytes();
    let (config_len, layer_len) = (config.len(), layer.len());
    let config_digest = registry.push_blob(name, config).await?;
    let layer_digest = registry.push_blob(name, layer).await?;
    let (mt, config_mt, layer_mt) = match family {
        Family::Docker => (
            manifest::DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        Family::Oci => (
            manifest::OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
    };
    // Pretty-printed on purpose: the registry must keep the exact bytes.
    let body = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{mt}\",\n  \"config\": {{\"mediaType\": \"{config_mt}\", \"digest\": \"{config_digest}\", \"size\": {config_len}}},\n  \"layers\": [{{\"mediaType\": \"{layer_mt}\", \"digest\": \"{layer_digest}\", \"size\": {layer_len}}}]\n}}\n"
    );
    Manifest::from_bytes(body.into_bytes(), Some(mt)).map_err(|problem| {
        RegistryError::BadManifest {
            reference: format!("{name} (test image {seed})"),
            problem,
        }
    })
}

/// Uploads an image with [`push_image`] and tags it.
pub async fn push_tagged_image(
    registry: &Registry,
    image: &ImageRef,
    family: Family,
    seed: &str,
) -> Result<Manifest, RegistryError> {
    let m = push_image(registry, image.name(), family, seed).await?;
    registry.put_manifest(image, &m).await?;
    Ok(m)
}

/// Uploads two single-platform images (amd64, arm64) by digest and puts an
/// index over them under `image`'s tag. Returns the index.
pub async fn push_tagged_index(
    registry: &Registry,
    image: &ImageRef,
    family: Family,
    seed: &str,
) -> Result<Manifest, RegistryError> {
    let name = image.name();
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let m = push_image(registry, name, family, &format!("{seed}-{arch}")).await?;
        registry
            .put_manifest(&name.with_digest(m.digest().clone()), &m)
            .await?;
        entries.push(format!(
            r#"{{"mediaType":"{}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            m.media_type(),
            m.digest(),
            m.size()
        ));
    }
    let mt = match family {
        Family::Docker => manifest::DOCKER_MANIFEST_LIST,
        Family::Oci => manifest::OCI_INDEX,
    };
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{mt}","manifests":[{}],"annotations":{{"org.strata.test":"{seed}"}}}}"#,
        entries.join(",")
    );
    let index = Manifest::from_bytes(body.into_bytes(), Some(mt)).map_err(|problem| {
        RegistryError::BadManifest {
            reference: image.to_string(),
            problem,
        }
    })?;
    registry.put_manifest(image, &index).await?;
    Ok(index)
}
