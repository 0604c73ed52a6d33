//! Registry credentials from the Docker configuration.
//!
//! The file is `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json` when
//! `DOCKER_CONFIG` is not set. For a registry host the lookup order is Docker's:
//! a `credHelpers` entry for the host, else the `credsStore` helper, else the
//! `auths` entry (base64 `auth`, or `username`/`password`, or
//! `identitytoken`). A helper that does not know the host falls back to
//! `auths`.
//!
//! Helpers (`docker-credential-<name>`) are run as `docker-credential-<name>
//! get` with the server address on standard input, never as an argument, and
//! their output is never included in errors.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::secret::Secret;

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or personal access token).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (`identitytoken` in the Docker config), traded
    /// for access tokens at the registry's token server.
    IdentityToken {
        /// The user name, when known (may be `<token>`).
        username: Option<String>,
        /// The refresh token.
        token: Secret,
    },
}

impl Credentials {
    /// The user name, if any.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::IdentityToken { username, .. } => username.as_deref(),
        }
    }

    /// The password of basic credentials.
    pub fn password(&self) -> Option<&Secret> {
        match self {
            Credentials::Basic { password, .. } => Some(password),
            Credentials::IdentityToken { .. } => None,
        }
    }

    /// The identity (refresh) token, if these are token credentials.
    pub fn identity_token(&self) -> Option<&Secret> {
        match self {
            Credentials::IdentityToken { token, .. } => Some(token),
            Credentials::Basic { .. } => None,
        }
    }
}

/// A problem reading credentials. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The config file exists but cannot be read.
    #[error("cannot read the Docker config {path}: {source}: check its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid JSON of the expected shape.
    #[error(
        "the Docker config {path} is not valid ({problem} at line {line}, column {column}): fix the file or run `docker login` again"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The kind of problem (syntax, data, eof); never the offending value.
        problem: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// An `auths` entry whose `auth` field is not base64 of `user:password`.
    #[error(
        "the `auth` entry for {registry} in {path} is not base64 of `user:password`: run `docker login {registry}` again"
    )]
    BadAuthEntry {
        /// The registry key.
        registry: String,
        /// The file.
        path: PathBuf,
    },
    /// A credential helper name that could be a path.
    #[error(
        "credential helper name `{helper}` is not valid: use a plain name such as `pass` or `ecr-login`"
    )]
    BadHelperName {
        /// The helper name from the config.
        helper: String,
    },
    /// The helper program is not on PATH.
    #[error(
        "credential helper `docker-credential-{helper}` (configured for {registry}) is not on PATH: install it or remove it from the Docker config"
    )]
    HelperMissing {
        /// The helper name.
        helper: String,
        /// The registry it was asked about.
        registry: String,
    },
    /// The helper could not be run or failed.
    #[error(
        "credential helper `docker-credential-{helper}` failed for {registry}: {detail}: check it works with `echo {registry} | docker-credential-{helper} get`"
    )]
    HelperFailed {
        /// The helper name.
        helper: String,
        /// The registry it was asked about.
        registry: String,
        /// Exit status and standard error (never standard output).
        detail: String,
    },
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A parsed Docker config: where credentials for each registry come from.
#[derive(Debug)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    file: ConfigFile,
    helper_path: Option<OsString>,
    helper_timeout: std::time::Duration,
}

/// How long a credential helper may take to answer before it is stopped: a
/// helper waiting on a locked keychain must not hang a run.
pub const HELPER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            path: None,
            file: ConfigFile::default(),
            helper_path: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }
}

/// The key Docker uses for Docker Hub in `auths` and with credential helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Reduces a registry key (`https://host/v1/`, `host:5000`, `docker.io`) to a
/// lowercase host[:port], mapping Docker Hub's aliases to `docker.io`.
fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl DockerConfig {
    /// An empty config: no credentials for any registry.
    pub fn empty() -> Self {
        DockerConfig::default()
    }

    /// Reads `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`. A
    /// missing file is an empty config.
    pub fn load() -> Result<Self, CredentialError> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => match std::env::var_os("HOME") {
                Some(h) => PathBuf::from(h).join(".docker"),
                None => return Ok(DockerConfig::empty()),
            },
        };
        Self::load_dir(&dir)
    }

    /// Reads `<dir>/config.json` (as if `DOCKER_CONFIG=<dir>`). A missing
    /// file is an empty config.
    pub fn load_dir(dir: &Path) -> Result<Self, CredentialError> {
        Self::load_file(&dir.join("config.json"))
    }

    /// Reads a config file. A missing file is an empty config.
    pub fn load_file(path: &Path) -> Result<Self, CredentialError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig {
                    path: Some(path.to_path_buf()),
                    ..DockerConfig::default()
                });
            }
            Err(source) => {
                return Err(CredentialError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: ConfigFile =
            serde_json::from_slice(&text).map_err(|e| CredentialError::Parse {
                path: path.to_path_buf(),
                // serde_json's message can quote the offending value (a secret):
                // report only its category and position.
                problem: match e.classify() {
                    serde_json::error::Category::Io => "read error",
                    serde_json::error::Category::Syntax => "JSON syntax error",
                    serde_json::error::Category::Data => "unexpected value",
                    serde_json::error::Category::Eof => "unexpected end of file",
                }
                .to_string(),
                line: e.line(),
                column: e.column(),
            })?;
        Ok(DockerConfig {
            path: Some(path.to_path_buf()),
            file,
            helper_path: None,
            helper_timeout: HELPER_TIMEOUT,
        })
    }

    /// Looks credential helpers up in these directories (PATH syntax) instead
    /// of `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    /// Stops a credential helper that has not answered within `timeout`
    /// (default [`HELPER_TIMEOUT`]).
    pub fn with_helper_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    /// The file this config was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The credentials for a registry host (`ghcr.io`, `127.0.0.1:5000`,
    /// `docker.io`), or `None` when the config has none (anonymous access).
    pub fn credentials_for(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        let wanted = normalize_key(registry);
        let server = if wanted == "docker.io" {
            DOCKER_HUB_KEY.to_string()
        } else {
            wanted.clone()
        };
        let helper = self
            .file
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == wanted)
            .map(|(_, h)| h.clone())
            .or_else(|| self.file.creds_store.clone().filter(|s| !s.is_empty()));
        if let Some(helper) = helper {
            if let Some(c) = self.run_helper(&helper, &server, registry)? {
                return Ok(Some(c));
            }
        }
        let Some((key, entry)) = self
            .file
            .auths
            .iter()
            .find(|(k, _)| normalize_key(k) == wanted)
        else {
            return Ok(None);
        };
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken {
                username: entry.username.clone().filter(|u| !u.is_empty()),
                token: Secret::new(token.clone()),
            }));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let bad = || CredentialError::BadAuthEntry {
                registry: key.clone(),
                path: self.path.clone().unwrap_or_default(),
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials::Basic {
                username: user.to_string(),
                password: Secret::new(pass),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: Secret::new(p.clone()),
            })),
            _ => Ok(None),
        }
    }

    fn find_helper(&self, program: &str) -> Option<PathBuf> {
        let path = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    }

    fn run_helper(
        &self,
        helper: &str,
        server: &str,
        registry: &str,
    ) -> Result<Option<Credentials>, CredentialError> {
        if helper.is_empty()
            || !helper
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(CredentialError::BadHelperName {
                helper: helper.to_string(),
            });
        }
        let program = format!("docker-credential-{helper}");
        let Some(exe) = self.find_helper(&program) else {
            return Err(CredentialError::HelperMissing {
                helper: helper.to_string(),
                registry: registry.to_string(),
            });
        };
        let failed = |detail: String| CredentialError::HelperFailed {
            helper: helper.to_string(),
            registry: registry.to_string(),
            detail,
        };
        let mut child = Command::new(&exe)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(format!("cannot start it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin gives EPIPE: ignore it,
            // its exit status tells the story.
            let _ = stdin.write_all(server.as_bytes());
        }
        let out =
            wait_with_timeout(child, self.helper_timeout).map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            let stdout = String::from_utf8_lossy(&out.stdout);
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().next().unwrap_or("").trim();
            let first: String = first.chars().take(200).collect();
            return Err(failed(if first.is_empty() {
                format!("exited with {}", out.status)
            } else {
                format!("exited with {}: {first}", out.status)
            }));
        }
        let parsed: HelperOutput = serde_json::from_slice(&out.stdout)
            .map_err(|_| failed("its output is not the expected JSON".to_string()))?;
        if parsed.secret.is_empty() {
            return Ok(None);
        }
        if parsed.username == "<token>" || parsed.username.is_empty() {
            return Ok(Some(Credentials::IdentityToken {
                username: None,
                token: Secret::new(parsed.secret),
            }));
        }
        Ok(Some(Credentials::Basic {
            username: parsed.username,
            password: Secret::new(parsed.secret),
        }))
    }
}

/// Waits for a helper's output, stopping it after `timeout`. Its output is
/// read on threads meanwhile, so a chatty helper cannot fill a pipe and
/// hang.
fn wait_with_timeout(
    mut child: std::process::Child,
    timeout: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    use std::io::Read;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("it did not answer within {} s", timeout.as_secs_f64()),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// The credentials for a registry host from the user's Docker config
/// (`$DOCKER_CONFIG` or `~/.docker`), for handing to the Docker engine (e.g.
/// for `docker push`). `None` means anonymous.
pub fn credentials_for_registry(registry: &str) -> Result<Option<Credentials>, CredentialError> {
    DockerConfig::load()?.credentials_for(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, DockerConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let c = DockerConfig::load_dir(dir.path()).unwrap();
        (dir, c)
    }

    #[test]
    fn keys_normalize() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("docker.io"), "docker.io");
        assert_eq!(normalize_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(normalize_key("GHCR.io"), "ghcr.io");
    }

    #[test]
    fn auths_entries() {
        let (_d, c) = config(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "ghcr.io": {"username": "u2", "password": "p2"},
                "quay.io": {"identitytoken": "tok"},
                "empty.io": {}
            }}"#,
        );
        assert_eq!(
            c.credentials_for("docker.io").unwrap(),
            Some(Credentials::Basic {
                username: "user".into(),
                password: Secret::new("pa:ss")
            })
        );
        let g = c.credentials_for("ghcr.io").unwrap().unwrap();
        assert_eq!(g.username(), Some("u2"));
        assert_eq!(g.password().map(Secret::expose), Some("p2"));
        let q = c.credentials_for("quay.io").unwrap().unwrap();
        assert_eq!(q.identity_token().map(Secret::expose), Some("tok"));
        assert_eq!(c.credentials_for("empty.io").unwrap(), None);
        assert_eq!(c.credentials_for("other.io").unwrap(), None);
    }

    #[test]
    fn bad_auth_entry_and_bad_json_do_not_leak() {
        let (_d, c) = config(r#"{"auths": {"x.io": {"auth": "not base64 secretvalue!"}}}"#);
        let e = c.credentials_for("x.io").unwrap_err().to_string();
        assert!(e.contains("docker login x.io"), "{e}");
        assert!(!e.contains("secretvalue"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"x.io": {"auth": ["secretvalue"]}}}"#,
        )
        .unwrap();
        let e = DockerConfig::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains("secretvalue"), "{e}");
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load_dir(dir.path()).unwrap();
        assert_eq!(c.credentials_for("ghcr.io").unwrap(), None);
    }

    #[test]
    fn helper_names_are_checked_and_missing_helpers_reported() {
        let (_d, c) = config(r#"{"credHelpers": {"a.io": "../evil", "b.io": "nosuchhelper"}}"#);
        assert!(matches!(
            c.credentials_for("a.io"),
            Err(CredentialError::BadHelperName { .. })
        ));
        let c = c.with_helper_path("/nonexistent-dir");
        let e = c.credentials_for("b.io").unwrap_err();
        assert!(matches!(e, CredentialError::HelperMissing { .. }), "{e}");
        assert!(e.to_string().contains("docker-credential-nosuchhelper"));
    }
}
