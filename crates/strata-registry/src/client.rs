//! The registry client: HTTP, retries, authentication, manifests, tags, blobs.

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

    async fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = lock(&self.state).creds.get(registry) {
            return Ok(c.clone());
        }
        let config = {
            let mut src = lock(&self.source);
            match &*src {
                CredentialSourceState::Anonymous => None,
                CredentialSourceState::Loaded(c) => Some(c.clone()),
                CredentialSourceState::Unloaded => {
                    let c = Arc::new(DockerConfig::load()?);
                    *src = CredentialSourceState::Loaded(c.clone());
                    Some(c)
                }
            }
        };
        let creds = match config {
            None => None,
            Some(config) => {
                let reg = registry.to_string();
                // A credential helper is a process: keep it off the runtime.
                tokio::task::spawn_blocking(move || config.credentials_for(&reg))
                    .await
                    .map_err(|e| {
                        RegistryError::Client(format!("credential lookup panicked: {e}"))
                    })??
            }
        };
        lock(&self.state)
            .creds
            .insert(registry.to_string(), creds.clone());
        Ok(creds)
    }

    fn cached_auth(
        &self,
        host: &str,
        scope: &str,
        creds: Option<&Credentials>,
    ) -> Option<AuthHeader> {
        let state = lock(&self.state);
        if let Some((token, expires)) = state.tokens.get(&(host.to_string(), scope.to_string())) {
            if *expires > Instant::now() {
                return Some(AuthHeader::Bearer(token.clone()));
            }
        }
        if state.basic_hosts.contains(host) {
            if let Some(Credentials::Basic { username, password }) = creds {
                return Some(AuthHeader::Basic(username.clone(), password.clone()));
            }
        }
        None
    }

    fn unauthorized(&self, call: &Call<'_>, had_creds: bool) -> RegistryError {
        let reg = call.name.registry();
        RegistryError::Unauthorized {
            host: call.name.api_host().to_string(),
            repository: call.name.repository().to_string(),
            hint: if had_creds {
                format!(
                    "the credentials for {reg} in the Docker config were rejected: log in again with `docker login {reg}`"
                )
            } else {
                format!("log in with `docker login {reg}`")
            },
        }
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

    async fn fetch_token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<(Secret, Duration), RegistryError> {
        let host = call.name.api_host().to_string();
        let token_err = |problem: String| RegistryError::Token {
            realm: realm.to_string(),
            host: host.clone(),
            problem,
        };
        let mut url =
            Url::parse(realm).map_err(|e| token_err(format!("the realm is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(token_err("the realm is not an http(s) URL".into()));
        }
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let rb = match creds {
                Some(Credentials::IdentityToken { token, .. }) => {
                    let mut form: Vec<(&str, &str)> = vec![
                        ("grant_type", "refresh_token"),
                        ("client_id", "strata"),
                        ("refresh_token", token.expose()),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s));
                    }
                    let scope = scopes.join(" ");
                    form.push(("scope", &scope));
                    let body: String = url::form_urlencoded_pairs(&form);
                    self.http
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body)
                }
                other => {
                    {
                        let mut q = url.query_pairs_mut();
                        q.clear();
                        if let Some(s) = service {
                            q.append_pair("service", s);
                        }
                        for s in scopes {
                            q.append_pair("scope", s);
                        }
                    }
                    let mut rb = self.http.get(url.clone());
                    if let Some(Credentials::Basic { username, password }) = other {
                        rb = rb.basic_auth(username, Some(password.expose()));
                    }
                    rb
                }
            };
            match rb.send().await {
                Ok(r)
                    if (r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS)
                        && attempt < self.retry.max_attempts =>
                {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Ok(r) => break r,
                Err(e) if is_transient(&e) && attempt < self.retry.max_attempts => {
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
                Err(e) => return Err(token_err(error_chain(&e))),
            }
        };
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(call, creds.is_some()));
        }
        if !status.is_success() {
            return Err(token_err(format!("it answered {status}")));
        }
        let body = read_limited(resp, 1024 * 1024)
            .await
            .map_err(|_| token_err("the answer could not be read or is too large".into()))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| token_err("the answer is not the expected JSON".into()))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("the answer has no token".into()))?;
        // Renew a little early; Docker's default lifetime is 60 s.
        let ttl = Duration::from_secs(answer.expires_in.unwrap_or(60).max(10) - 5);
        Ok((Secret::new(token), ttl))
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

    fn content_digest(
        call: &Call<'_>,
        headers: &HeaderMap,
    ) -> Result<Option<Digest>, RegistryError> {
        match headers.get("docker-content-digest") {
            None => Ok(None),
            Some(v) => {
                let s = v
                    .to_str()
                    .map_err(|_| Self::bad_header(call, "Docker-Content-Digest", "not text"))?;
                s.trim().parse::<Digest>().map(Some).map_err(|_| {
                    Self::bad_header(
                        call,
                        "Docker-Content-Digest",
                        format!("`{s}` is not a digest"),
                    )
                })
            }
        }
    }

    fn manifest_call<'a>(
        &self,
        method: Method,
        name: &'a ImageName,
        reference: &str,
        what: String,
    ) -> Result<Call<'a>, RegistryError> {
        Ok(Call {
            url: self.url(name, &format!("manifests/{reference}"))?,
            method,
            name,
            accept: Some(MANIFEST_ACCEPT),
            content_type: None,
            body: None,
            push: false,
            also_pull: None,
            what,
        })
    }

    /// `HEAD` a manifest by tag or digest: its digest, media type and size, or
    /// `None` if the registry does not have it. Falls back to a `GET` when the
    /// registry omits the digest or type headers.
    pub async fn head_manifest(
        &self,
        image: &ImageRef,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        let call = self.manifest_call(
            Method::HEAD,
            image.name(),
            image.reference(),
            format!("HEAD manifest {image}"),
        )?;
        let Some(resp) = self.send_lookup(&call).await? else {
            return Ok(None);
        };
        let headers = resp.headers();
        let digest = Self::content_digest(&call, headers)?;
        let media_type = header_str(headers, "content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
            .filter(|t| !t.is_empty() && t != "application/json" && t != "text/plain");
        let size = match headers.get(CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| Self::bad_header(&call, "Content-Length", "not a number"))?,
            ),
        };
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size)) => {
                if let Some(wanted) = image.digest() {
                    if &digest != wanted {
                        return Err(RegistryError::DigestMismatch {
                            reference: image.to_string(),
                            expected_from: "the requested digest".into(),
                            expected: wanted.to_string(),
                            actual: digest,
                        });
                    }
                }
                Ok(Some(ManifestInfo {
                    digest,
                    media_type,
                    size,
                }))
            }
            _ => Ok(self.get_manifest(image).await?.map(|m| ManifestInfo {
                digest: m.digest().clone(),
                media_type: m.media_type().to_string(),
                size: m.size(),
            })),
        }
    }

    /// `GET` a manifest (image manifest or index, Docker or OCI) by tag or
    /// digest, or `None` if the registry does not have it. The bytes are
    /// checked against `Docker-Content-Digest` and, when fetching by digest,
    /// against the requested digest; then validated as a manifest.
    pub async fn get_manifest(&self, image: &ImageRef) -> Result<Option<Manifest>, RegistryError> {
        let call = self.manifest_call(
            Method::GET,
            image.name(),
            image.reference(),
            format!("GET manifest {image}"),
        )?;
        let Some(resp) = self.send_lookup(&call).await? else {
            return Ok(None);
        };
        let header_digest = Self::content_digest(&call, resp.headers())?;
        let content_type = header_str(resp.headers(), "content-type").map(str::to_string);
        let bytes = match read_limited(resp, MAX_MANIFEST_BYTES).await {
            Ok(b) => b,
            Err(None) => {
                return Err(RegistryError::BadManifest {
                    reference: image.to_string(),
                    problem: ManifestError::TooLarge(MAX_MANIFEST_BYTES + 1),
                });
            }
            Err(Some(e)) => {
                return Err(RegistryError::Unreachable {
                    host: image.name().api_host().to_string(),
                    attempts: 1,
                    detail: format!("the answer was cut off: {}", error_chain(&e)),
                });
            }
        };
        let mut expectations = Vec::new();
        if let Some(d) = image.digest() {
            expectations.push((d.clone(), "the requested digest"));
        }
        if let Some(d) = header_digest {
            expectations.push((d, "the Docker-Content-Digest header"));
        }
        for (expected, from) in expectations {
            let actual =
                digest_like(&expected, &bytes).ok_or_else(|| RegistryError::BadResponse {
                    host: image.name().api_host().to_string(),
                    what: call.what.clone(),
                    problem: format!("cannot verify a {} digest", expected.algorithm()),
                })?;
            if actual != expected {
                return Err(RegistryError::DigestMismatch {
                    reference: image.to_string(),
                    expected_from: from.to_string(),
                    expected: expected.to_string(),
                    actual: sha256_digest(&bytes),
                });
            }
        }
        Manifest::from_bytes(bytes, content_type.as_deref())
            .map(Some)
            .map_err(|problem| RegistryError::BadManifest {
                reference: image.to_string(),
                problem,
            })
    }

    /// `PUT` a manifest's exact bytes, with its media type, under the target's
    /// tag (or, for a digest-only target, under its digest, which must be the
    /// manifest's). Returns the manifest's digest, checked against the
    /// registry's `Docker-Content-Digest`.
    pub async fn put_manifest(
        &self,
        target: &ImageRef,
        manifest: &Manifest,
    ) -> Result<Digest, RegistryError> {
        let reference = match (target.tag(), target.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => {
                if d != manifest.digest() {
                    return Err(RegistryError::DigestMismatch {
                        reference: target.to_string(),
                        expected_from: "the target reference".into(),
                        expected: d.to_string(),
                        actual: manifest.digest().clone(),
                    });
                }
                d.to_string()
            }
            (None, None) => return Err(RegistryError::TargetWithoutTag(Box::new(target.clone()))),
        };
        let mut call = self.manifest_call(
            Method::PUT,
            target.name(),
            &reference,
            format!("PUT manifest {target}"),
        )?;
        call.accept = None;
        call.content_type = Some(manifest.media_type());
        call.body = Some(manifest.bytes().to_vec());
        call.push = true;
        let resp = self.send(&call).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(&call, resp).await);
        }
        if let Some(d) = Self::content_digest(&call, resp.headers())? {
            if &d != manifest.digest() {
                return Err(RegistryError::DigestMismatch {
                    reference: target.to_string(),
                    expected_from: "the bytes sent".into(),
                    expected: manifest.digest().to_string(),
                    actual: d,
                });
            }
        }
        tracing::info!(target = %target, digest = %manifest.digest(), "manifest put");
        Ok(manifest.digest().clone())
    }

    /// Every tag of a repository, following `Link` pagination. A repository
    /// the registry does not know has no tags.
    pub async fn list_tags(&self, name: &ImageName) -> Result<Vec<String>, RegistryError> {
        self.list_tags_paged(name, None).await
    }

    /// [`Registry::list_tags`] asking for pages of `page_size` tags (`n=`).
    pub async fn list_tags_paged(
        &self,
        name: &ImageName,
        page_size: Option<usize>,
    ) -> Result<Vec<String>, RegistryError> {
        let mut url = self.url(name, "tags/list")?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        let mut seen = HashSet::new();
        loop {
            if !seen.insert(url.to_string()) {
                return Err(RegistryError::BadResponse {
                    host: name.api_host().to_string(),
                    what: format!("list tags of {name}"),
                    problem: "its pagination links loop".into(),
                });
            }
            let call = Call {
                method: Method::GET,
                name,
                url: url.clone(),
                accept: Some("application/json"),
                content_type: None,
                body: None,
                push: false,
                also_pull: None,
                what: format!("list tags of {name}"),
            };
            let resp = self.send(&call).await?;
            if resp.status() == StatusCode::NOT_FOUND && tags.is_empty() {
                return Ok(tags);
            }
            if !resp.status().is_success() {
                return Err(self.status_error(&call, resp).await);
            }
            let next = header_str(resp.headers(), LINK.as_str())
                .and_then(next_link)
                .map(str::to_string);
            let bad = |problem: String| RegistryError::BadResponse {
                host: name.api_host().to_string(),
                what: format!("list tags of {name}"),
                problem,
            };
            let body = read_limited(resp, 16 * 1024 * 1024)
                .await
                .map_err(|_| bad("the answer could not be read or is over 16 MiB".into()))?;
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| bad(format!("not a tag list ({e})")))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                None => return Ok(tags),
                Some(link) => {
                    url = url
                        .join(&link)
                        .map_err(|e| bad(format!("bad Link target `{link}` ({e})")))?;
                }
            }
        }
    }

    /// `GET` a small blob (an image config) of at most `limit` bytes, its
    /// bytes checked against `digest`; `None` if the repository lacks it.
    pub async fn get_blob(
        &self,
        name: &ImageName,
        digest: &Digest,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let call = self.blob_call(Method::GET, name, digest)?;
        let resp = self.send(&call).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.status_error(&call, resp).await),
        }
        let bad = |problem: String| RegistryError::BadResponse {
            host: name.api_host().to_string(),
            what: call.what.clone(),
            problem,
        };
        let bytes = read_limited(resp, limit).await.map_err(|_| {
            bad(format!(
                "the blob could not be read or is over {limit} bytes"
            ))
        })?;
        match digest_like(digest, &bytes) {
            Some(actual) if actual == *digest => Ok(Some(bytes)),
            Some(actual) => Err(bad(format!("its bytes hash to {actual}"))),
            None => Err(bad(format!(
                "cannot verify a {} digest",
                digest.algorithm()
            ))),
        }
    }

    /// A pull-side request for a blob of `name`.
    fn blob_call<'c>(
        &self,
        method: Method,
        name: &'c ImageName,
        digest: &Digest,
    ) -> Result<Call<'c>, RegistryError> {
        Ok(Call {
            what: format!("{method} blob {name}@{digest}"),
            method,
            name,
            url: self.url(name, &format!("blobs/{digest}"))?,
            accept: None,
            content_type: None,
            body: None,
            push: false,
            also_pull: None,
        })
    }

    /// Whether a repository has a blob.
    pub async fn blob_exists(
        &self,
        name: &ImageName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let call = self.blob_call(Method::HEAD, name, digest)?;
        let resp = self.send(&call).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&call, resp).await),
        }
    }

    /// Mounts a blob of `from` into `to` (same registry) without transferring
    /// it. `false` when the registry did not mount it (e.g. it does not have
    /// the blob in `from`).
    pub async fn mount_blob(
        &self,
        from: &ImageName,
        to: &ImageName,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        let mut url = self.url(to, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from.repository());
        let call = Call {
            method: Method::POST,
            name: to,
            url,
            accept: None,
            content_type: None,
            body: None,
            push: true,
            also_pull: Some(from),
            what: format!("mount blob {digest} from {from} into {to}"),
        };
        let resp = self.send(&call).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an upload instead: cancel it.
                if let Some(loc) = header_str(resp.headers(), LOCATION.as_str()) {
                    if let Ok(u) = call.url.join(loc) {
                        let cancel = Call {
                            method: Method::DELETE,
                            url: u,
                            also_pull: None,
                            what: format!("cancel upload into {to}"),
                            ..call
                        };
                        let _ = self.send(&cancel).await;
                    }
                }
                Ok(false)
            }
            _ => Err(self.status_error(&call, resp).await),
        }
    }

    /// Uploads a blob in one request (monolithic upload: `POST` then `PUT`),
    /// unless the repository has it already. Returns its sha256 digest. Meant
    /// for small blobs (tests, configs); image layers are pushed by the engine.
    pub async fn push_blob(
        &self,
        name: &ImageName,
        bytes: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let digest = sha256_digest(&bytes);
        if self.blob_exists(name, &digest).await? {
            return Ok(digest);
        }
        let start = Call {
            method: Method::POST,
            name,
            url: self.url(name, "blobs/uploads/")?,
            accept: None,
            content_type: None,
            body: None,
            push: true,
            also_pull: None,
            what: format!("start blob upload to {name}"),
        };
        let resp = self.send(&start).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(&start, resp).await);
        }
        let location = header_str(resp.headers(), LOCATION.as_str())
            .ok_or_else(|| Self::bad_header(&start, "Location", "missing"))?;
        let mut url = start
            .url
            .join(location)
            .map_err(|e| Self::bad_header(&start, "Location", format!("not a URL ({e})")))?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let put = Call {
            method: Method::PUT,
            name,
            url,
            accept: None,
            content_type: Some("application/octet-stream"),
            body: Some(bytes),
            push: true,
            also_pull: None,
            what: format!("upload blob {digest} to {name}"),
        };
        let resp = self.send(&put).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.status_error(&put, resp).await);
        }
        Ok(digest)
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
                    let m = self
                        .get_manifest(&source)
                        .await?
                        .ok_or(RegistryError::NotFound {
                            reference: Box::new(source),
                        })?;
                    Box::pin(self.ensure_contents(from, to, &m)).await?;
                    self.put_manifest(&target, &m).await?;
                }
            }
        }
        Ok(())
    }

    /// Puts the exact bytes of `from`'s manifest under `to`'s tag (a retag:
    /// no layer is pulled or pushed; the digest is unchanged, an index is
    /// copied whole). Across repositories of one registry, blobs are mounted
    /// and child manifests copied by digest; across registries it fails with
    /// [`RegistryError::CrossRegistry`].
    pub async fn copy(&self, from: &ImageRef, to: &ImageRef) -> Result<Copied, RegistryError> {
        if to.tag().is_none() {
            return Err(RegistryError::TargetWithoutTag(Box::new(to.clone())));
        }
        if from.name().registry() != to.name().registry() {
            return Err(RegistryError::CrossRegistry {
                from: Box::new(from.clone()),
                to: Box::new(to.clone()),
                to_registry: to.name().registry().to_string(),
            });
        }
        let m = self
            .get_manifest(from)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(from.clone()),
            })?;
        self.ensure_contents(from.name(), to.name(), &m).await?;
        let digest = self.put_manifest(to, &m).await?;
        Ok(Copied {
            digest,
            media_type: m.media_type().to_string(),
        })
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
