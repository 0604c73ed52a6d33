//! The registry client: HTTP, retries and what requests share; its
//! authentication (`auth.rs`), manifests and tags (`manifests.rs`) and blobs
//! (`blobs.rs`) have modules of their own.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{
    ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LINK, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode, Url};
use strata_core::reference::{Digest, ImageName, ImageRef};

use crate::auth::{Challenge, parse_challenge};
use crate::credentials::{Credentials, DockerConfig};
use crate::error::RegistryError;
use crate::manifest::{
    Contents, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, Manifest, ManifestError, ManifestInfo,
    digest_like, sha256_digest,
};
use crate::secret::Secret;

/// The environment variable listing extra registries spoken to over plain
/// HTTP (comma-separated `host` or `host:port`).
pub const INSECURE_REGISTRIES_ENV: &str = "STRATA_INSECURE_REGISTRIES";

/// How transient failures (connection errors, timeouts, 5xx, 429) are
/// retried: strata's one policy, shared with engine pushes.
pub use strata_core::retry::RetryPolicy;

/// Where credentials come from.
#[derive(Debug, Default)]
pub enum CredentialSource {
    /// The user's Docker config (`$DOCKER_CONFIG` or `~/.docker`), read on
    /// first use.
    #[default]
    Environment,
    /// This Docker config.
    Config(DockerConfig),
    /// No credentials: anonymous access only.
    Anonymous,
}

/// Settings of a [`Registry`] client.
#[derive(Debug)]
pub struct RegistryOptions {
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP request (connect to last byte).
    pub timeout: Duration,
    /// Timeout of establishing a connection.
    pub connect_timeout: Duration,
    /// Registries spoken to over plain HTTP besides loopback ones (default:
    /// from [`INSECURE_REGISTRIES_ENV`]).
    pub insecure_registries: Vec<String>,
    /// Where credentials come from.
    pub credentials: CredentialSource,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            insecure_registries: insecure_registries_from_env(),
            credentials: CredentialSource::Environment,
        }
    }
}

/// The registries listed in [`INSECURE_REGISTRIES_ENV`].
pub fn insecure_registries_from_env() -> Vec<String> {
    std::env::var(INSECURE_REGISTRIES_ENV)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn split_host_port(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether a registry (`host[:port]`) is spoken to over plain HTTP: loopback
/// addresses (127.0.0.0/8, `localhost`, `[::1]`, as Docker's default insecure
/// range) and those listed in `insecure` (matched with or without the port).
/// Everything else uses HTTPS.
pub fn uses_plain_http(registry: &str, insecure: &[String]) -> bool {
    let registry = registry.to_ascii_lowercase();
    let host = split_host_port(&registry);
    let loopback = host == "localhost"
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    loopback
        || insecure
            .iter()
            .any(|i| i.eq_ignore_ascii_case(&registry) || i.eq_ignore_ascii_case(host))
}

#[derive(Clone)]
enum AuthHeader {
    Basic(String, Secret),
    Bearer(Secret),
}

#[derive(Default)]
struct AuthState {
    /// API hosts that asked for basic auth.
    basic_hosts: HashSet<String>,
    /// Bearer tokens per (host, scope) and when they expire.
    tokens: HashMap<(String, String), (Secret, Instant)>,
    /// Credentials per registry, once looked up.
    creds: HashMap<String, Option<Credentials>>,
}

/// An HTTP call to a registry.
struct Call<'a> {
    method: Method,
    name: &'a ImageName,
    url: Url,
    accept: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Option<Vec<u8>>,
    push: bool,
    /// Another repository read by this call (cross-repository mount).
    also_pull: Option<&'a ImageName>,
    what: String,
}

impl Call<'_> {
    fn scopes(&self) -> Vec<String> {
        let actions = if self.push { "pull,push" } else { "pull" };
        let mut s = vec![format!("repository:{}:{actions}", self.name.repository())];
        if let Some(other) = self.also_pull {
            s.push(format!("repository:{}:pull", other.repository()));
        }
        s
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The digest now under the target tag (the source's digest).
    pub digest: Digest,
    /// The media type of the manifest copied.
    pub media_type: String,
}

/// An OCI distribution client for any number of registries.
///
/// Plain HTTP for loopback registries and [`INSECURE_REGISTRIES_ENV`], HTTPS
/// otherwise. Anonymous, basic and bearer-token authentication (tokens cached
/// per repository scope), credentials from the Docker config. Transient
/// failures are retried per [`RetryPolicy`]. Manifests are checked against
/// their digests before anything is done with them.
pub struct Registry {
    http: reqwest::Client,
    retry: RetryPolicy,
    insecure: Vec<String>,
    source: Mutex<CredentialSourceState>,
    state: Mutex<AuthState>,
}

enum CredentialSourceState {
    Unloaded,
    Loaded(Arc<DockerConfig>),
    Anonymous,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("retry", &self.retry)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Whether a request that failed without an answer may succeed if tried
/// again: a dropped connection or a timeout. A host name that does not
/// resolve ([`NameNotResolved`], from [`SystemResolver`]) and a refused
/// connection are final: no registry is there to answer a retry.
fn is_transient(e: &reqwest::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<NameNotResolved>() {
            return false;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return false;
            }
        }
        cause = c.source();
    }
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

/// A registry host name the system's resolver cannot resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {source}")]
struct NameNotResolved {
    host: String,
    source: std::io::Error,
}

/// The system's resolver, as reqwest uses by default, whose failures are a
/// typed [`NameNotResolved`]: reqwest's own resolver reports them as an
/// untyped error, which only its message would tell from a dropped
/// connection.
struct SystemResolver;

impl reqwest::dns::Resolve for SystemResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.clone(), 0))
                .await
                .map(Iterator::collect::<Vec<_>>);
            match found {
                Ok(addrs) => {
                    let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
                    Ok(addrs)
                }
                Err(source) => {
                    let e: Box<dyn std::error::Error + Send + Sync> =
                        Box::new(NameNotResolved { host, source });
                    Err(e)
                }
            }
        })
    }
}

fn header_str<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Parses the `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then_some(target)
    })
}

/// Reads a body, failing once it exceeds `limit` bytes.
async fn read_limited(mut resp: Response, limit: usize) -> Result<Vec<u8>, Option<reqwest::Error>> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(None);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Some)? {
        if out.len() + chunk.len() > limit {
            return Err(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

mod auth;
mod blobs;
mod manifests;

pub use manifests::MAX_TAG_PAGES;

impl Registry {
    /// A client with these options.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        // reqwest is built with rustls and no bundled crypto provider: use
        // ring, unless the process already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            .dns_resolver(Arc::new(SystemResolver))
            .build()
            .map_err(|e| RegistryError::Client(error_chain(&e)))?;
        let source = match options.credentials {
            CredentialSource::Environment => CredentialSourceState::Unloaded,
            CredentialSource::Config(c) => CredentialSourceState::Loaded(Arc::new(c)),
            CredentialSource::Anonymous => CredentialSourceState::Anonymous,
        };
        Ok(Registry {
            http,
            retry: RetryPolicy {
                max_attempts: options.retry.max_attempts.max(1),
                ..options.retry
            },
            insecure: options.insecure_registries,
            source: Mutex::new(source),
            state: Mutex::new(AuthState::default()),
        })
    }
    /// The base URL of a registry's API, `http(s)://host/v2/`.
    pub fn base_url(&self, name: &ImageName) -> Result<Url, RegistryError> {
        let scheme = if uses_plain_http(name.registry(), &self.insecure) {
            "http"
        } else {
            "https"
        };
        let s = format!("{scheme}://{}/v2/", name.api_host());
        Url::parse(&s).map_err(|e| RegistryError::Client(format!("bad registry URL {s}: {e}")))
    }
    fn url(&self, name: &ImageName, rest: &str) -> Result<Url, RegistryError> {
        let base = self.base_url(name)?;
        base.join(&format!("{}/{rest}", name.repository()))
            .map_err(|e| RegistryError::Client(format!("bad registry URL: {e}")))
    }
    /// Sends a call, retrying transient failures and answering one
    /// authentication challenge.
    async fn send(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let host = call.name.api_host().to_string();
        let scopes = call.scopes();
        let scope_key = scopes.join(" ");
        let creds = self.credentials(call.name.registry()).await?;
        let mut auth = self.cached_auth(&host, &scope_key, creds.as_ref());
        let mut challenged = false;
        loop {
            let resp = self.send_retrying(call, auth.as_ref()).await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if challenged {
                return Err(self.unauthorized(call, creds.is_some()));
            }
            challenged = true;
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(parse_challenge)
                .collect();
            let bearer = challenges
                .iter()
                .find(|c| matches!(c, Challenge::Bearer { .. }));
            match (bearer, challenges.first(), &creds) {
                (
                    Some(Challenge::Bearer {
                        realm,
                        service,
                        scope,
                    }),
                    _,
                    _,
                ) => {
                    let mut wanted = scopes.clone();
                    if let Some(s) = scope {
                        if !wanted.contains(s) {
                            wanted.push(s.clone());
                        }
                    }
                    let (token, ttl) = self
                        .fetch_token(call, realm, service.as_deref(), &wanted, creds.as_ref())
                        .await?;
                    lock(&self.state).tokens.insert(
                        (host.clone(), scope_key.clone()),
                        (token.clone(), Instant::now() + ttl),
                    );
                    auth = Some(AuthHeader::Bearer(token));
                }
                (None, Some(Challenge::Basic), Some(Credentials::Basic { username, password })) => {
                    lock(&self.state).basic_hosts.insert(host.clone());
                    auth = Some(AuthHeader::Basic(username.clone(), password.clone()));
                }
                _ => return Err(self.unauthorized(call, creds.is_some())),
            }
        }
    }
    async fn send_retrying(
        &self,
        call: &Call<'_>,
        auth: Option<&AuthHeader>,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = self.http.request(call.method.clone(), call.url.clone());
            if let Some(a) = call.accept {
                rb = rb.header(ACCEPT, a);
            }
            if let Some(ct) = call.content_type {
                rb = rb.header(CONTENT_TYPE, ct);
            }
            match auth {
                Some(AuthHeader::Basic(u, p)) => rb = rb.basic_auth(u, Some(p.expose())),
                Some(AuthHeader::Bearer(t)) => rb = rb.bearer_auth(t.expose()),
                None => {}
            }
            if let Some(body) = &call.body {
                rb = rb.body(body.clone());
            } else if call.method == Method::PUT || call.method == Method::POST {
                rb = rb.header(CONTENT_LENGTH, "0");
            }
            match rb.send().await {
                Ok(resp) => {
                    let s = resp.status();
                    if (s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < self.retry.max_attempts
                    {
                        let retry_after = header_str(resp.headers(), "retry-after")
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map(Duration::from_secs);
                        let d = self.retry.delay(attempt, retry_after);
                        tracing::debug!(status = s.as_u16(), what = %call.what, attempt, delay_ms = d.as_millis() as u64, "retrying");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) if is_transient(&e) && attempt < self.retry.max_attempts => {
                    let d = self.retry.delay(attempt, None);
                    tracing::debug!(error = %error_chain(&e), what = %call.what, attempt, delay_ms = d.as_millis() as u64, "retrying");
                    tokio::time::sleep(d).await;
                }
                Err(e) => {
                    return Err(RegistryError::Unreachable {
                        host: call.url.host_str().unwrap_or("?").to_string()
                            + &call.url.port().map(|p| format!(":{p}")).unwrap_or_default(),
                        attempts: attempt,
                        detail: error_chain(&e),
                    });
                }
            }
        }
    }
    /// Turns a non-success answer into an error, with the registry's own
    /// error codes when it sent some.
    /// Sends a look-up: the answer, or `None` when the registry does not
    /// have what was asked for; any other unsuccessful status is an error.
    async fn send_lookup(&self, call: &Call<'_>) -> Result<Option<Response>, RegistryError> {
        let resp = self.send(call).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(call, resp).await);
        }
        Ok(Some(resp))
    }
    async fn status_error(&self, call: &Call<'_>, resp: Response) -> RegistryError {
        let status = resp.status();
        let host = call.name.api_host().to_string();
        if status == StatusCode::FORBIDDEN {
            return RegistryError::Denied {
                host,
                repository: call.name.repository().to_string(),
                action: if call.push { "push to" } else { "pull from" }.to_string(),
            };
        }
        let body = read_limited(resp, 64 * 1024).await.unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorItem>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorItem {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let mut message = match serde_json::from_slice::<Errors>(&body) {
            Ok(e) if !e.errors.is_empty() => e
                .errors
                .iter()
                .map(|i| format!("{} ({})", i.code, i.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => {
                let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                if text.trim().is_empty() {
                    status.canonical_reason().unwrap_or("error").to_string()
                } else {
                    text.trim().to_string()
                }
            }
        };
        if status.is_server_error() {
            message.push_str(": the registry failed; retry later or check its logs");
        }
        RegistryError::Status {
            host,
            what: call.what.clone(),
            status: status.as_u16(),
            message,
        }
    }
    fn bad_header(call: &Call<'_>, header: &str, problem: impl Into<String>) -> RegistryError {
        RegistryError::BadHeader {
            host: call.name.api_host().to_string(),
            header: header.to_string(),
            what: call.what.clone(),
            problem: problem.into(),
        }
    }
    /// Makes sure `to` (same registry as `from`) has everything `manifest`
    /// refers to: blobs are mounted from `from`, child manifests of an index
    /// are copied by digest. Nothing to do when `from == to`.
    pub(crate) async fn ensure_contents(
        &self,
        from: &ImageName,
        to: &ImageName,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        if from == to {
            return Ok(());
        }
        match manifest.contents() {
            Contents::Image { config, layers } => {
                for d in std::iter::once(config).chain(layers) {
                    if self.blob_exists(to, &d.digest).await? {
                        continue;
                    }
                    if !self.mount_blob(from, to, &d.digest).await? {
                        return Err(RegistryError::BadResponse {
                            host: to.api_host().to_string(),
                            what: format!("mount blob {} from {from} into {to}", d.digest),
                            problem: "the registry did not mount it (does the source have it?)"
                                .into(),
                        });
                    }
                }
            }
            Contents::Index { manifests } => {
                for child in manifests {
                    let target = to.with_digest(child.digest.clone());
                    if self.head_manifest(&target).await?.is_some() {
                        continue;
                    }
                    let source = from.with_digest(child.digest.clone());
                    let m = self.existing_manifest(&source).await?;
                    Box::pin(self.ensure_contents(from, to, &m)).await?;
                    self.put_manifest(&target, &m).await?;
                }
            }
        }
        Ok(())
    }
}

mod url {
    /// `application/x-www-form-urlencoded` body from pairs.
    pub(super) fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
        let mut u = reqwest::Url::parse("http://x/").unwrap_or_else(|_| unreachable!());
        u.query_pairs_mut().extend_pairs(pairs);
        u.query().unwrap_or("").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_for_loopback_and_listed() {
        let none: Vec<String> = vec![];
        assert!(uses_plain_http("127.0.0.1:5000", &none));
        assert!(uses_plain_http("127.1.2.3", &none));
        assert!(uses_plain_http("localhost:5000", &none));
        assert!(uses_plain_http("[::1]:5000", &none));
        assert!(!uses_plain_http("ghcr.io", &none));
        assert!(!uses_plain_http("10.0.0.1:5000", &none));
        assert!(!uses_plain_http("128.0.0.1", &none));
        let list = vec!["reg.lan:5000".to_string(), "10.0.0.1".to_string()];
        assert!(uses_plain_http("reg.lan:5000", &list));
        assert!(!uses_plain_http("reg.lan:6000", &list));
        assert!(uses_plain_http("10.0.0.1:5000", &list));
    }

    #[test]
    fn link_header() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<http://x/p>; rel="prev", <http://x/n>; rel=next"#),
            Some("http://x/n")
        );
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            url::form_urlencoded_pairs(&[("a", "b c"), ("s", "repository:x:pull,push")]),
            "a=b+c&s=repository%3Ax%3Apull%2Cpush"
        );
    }
}
