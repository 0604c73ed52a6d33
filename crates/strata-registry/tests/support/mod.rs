//! A small fault-injecting HTTP/1.1 proxy in front of a real registry.
//!
//! Each request is read whole, handed to a rule that decides what to do
//! (forward it, drop the connection, answer itself, or forward and rewrite
//! the answer), and the connection is closed after the answer. Every request
//! is logged so tests can count attempts.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_registry::{CredentialSource, Registry, RegistryOptions, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| {
                v.replace("%3A", ":")
                    .replace("%2C", ",")
                    .replace("%2F", "/")
            })
        })
    }
    pub fn is_manifest(&self) -> bool {
        self.path().contains("/manifests/")
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Resp {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }
}

/// What to do with a request.
pub enum Action {
    Forward,
    /// Close the connection without answering.
    Drop,
    Respond(Resp),
    /// Forward, then rewrite the upstream answer.
    Transform(Box<dyn FnOnce(Resp) -> Resp + Send>),
}

pub type Rule = Arc<dyn Fn(&Req) -> Action + Send + Sync>;

/// A running proxy; stopped on drop.
pub struct Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<(String, String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(
        upstream: SocketAddr,
        rule: impl Fn(&Req) -> Action + Send + Sync + 'static,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let rule: Rule = Arc::new(rule);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let rule = rule.clone();
                let log = task_log.clone();
                tokio::spawn(async move {
                    let _ = handle(sock, upstream, rule, log).await;
                });
            }
        });
        Proxy { addr, log, task }
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// (method, target, outcome) of every request so far.
    pub fn log(&self) -> Vec<(String, String, String)> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests matched `method` and had `needle` in their target.
    pub fn count(&self, method: &str, needle: &str) -> usize {
        self.log()
            .iter()
            .filter(|(m, t, _)| m == method && t.contains(needle))
            .count()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Req>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(Req {
        method,
        target,
        headers,
        body,
    }))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = find(data, b"\r\n") {
        let size_line = String::from_utf8_lossy(&data[..p]).to_string();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[p + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

async fn forward(req: &Req, upstream: SocketAddr) -> std::io::Result<Resp> {
    let mut up = TcpStream::connect(upstream).await?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).await?;
    up.write_all(&req.body).await?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw).await?;
    let head_end =
        find(&raw, b"\r\n\r\n").ok_or_else(|| std::io::Error::other("bad upstream answer"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    let headers = headers
        .into_iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("transfer-encoding") && !k.eq_ignore_ascii_case("connection")
        })
        .collect();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

async fn handle(
    mut sock: TcpStream,
    upstream: SocketAddr,
    rule: Rule,
    log: Arc<Mutex<Vec<(String, String, String)>>>,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut sock).await? else {
        return Ok(());
    };
    let action = rule(&req);
    let (resp, outcome) = match action {
        Action::Drop => {
            log.lock()
                .unwrap()
                .push((req.method.clone(), req.target.clone(), "dropped".into()));
            // Close without a byte: the client sees the connection closed.
            drop(sock);
            return Ok(());
        }
        Action::Respond(r) => (r, "answered by proxy"),
        Action::Forward => (forward(&req, upstream).await?, "forwarded"),
        Action::Transform(f) => (f(forward(&req, upstream).await?), "rewritten"),
    };
    log.lock().unwrap().push((
        req.method.clone(),
        req.target.clone(),
        format!("{outcome} {}", resp.status),
    ));
    let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
    let is_head = req.method == "HEAD";
    for (k, v) in &resp.headers {
        if k.eq_ignore_ascii_case("content-length") && !is_head {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !is_head {
        out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    sock.write_all(out.as_bytes()).await?;
    if !is_head {
        sock.write_all(&resp.body).await?;
    }
    sock.shutdown().await?;
    Ok(())
}

/// Fast retries so fault tests run quickly.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

/// An anonymous client with fast retries.
pub fn client() -> Registry {
    client_with(CredentialSource::Anonymous)
}

/// A client with these credentials and fast retries.
pub fn client_with(credentials: CredentialSource) -> Registry {
    Registry::new(RegistryOptions {
        retry: fast_retry(),
        timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(5),
        insecure_registries: vec![],
        credentials,
    })
    .expect("client")
}
