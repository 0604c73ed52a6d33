//! Authentication against real registries: htpasswd (basic) on Debian's
//! `docker-registry`, credential helpers, and the bearer-token flow (a token
//! server and token-checking front written here, over real HTTP, in front of
//! the real registry: Debian ships no token server).

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use strata_core::reference::ImageName;
use strata_registry::testing::{Family, TestRegistry, push_tagged_image, tagged};
use strata_registry::{CredentialSource, Credentials, DockerConfig, RegistryError};
use support::{Action, Proxy, Resp, client, client_with};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pa55word";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn config_dir(json: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.json"), json).unwrap();
    d
}

fn with_config(dir: &tempfile::TempDir) -> CredentialSource {
    CredentialSource::Config(DockerConfig::load_dir(dir.path()).unwrap())
}

#[tokio::test]
async fn basic_auth_from_the_docker_config() {
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD).expect("start registry");
    let host = reg.host();
    let name = reg.name("org/img");
    let r = tagged(&name, "v1");

    let good = config_dir(&format!(
        r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    let c = client_with(with_config(&good));
    let m = push_tagged_image(&c, &r, Family::Oci, "auth")
        .await
        .unwrap();
    let got = c.get_manifest(&r).await.unwrap().unwrap();
    assert_eq!(got.digest(), m.digest());
    assert_eq!(c.list_tags(&name).await.unwrap(), vec!["v1".to_string()]);

    // username/password form, keyed with a scheme.
    let good2 = config_dir(&format!(
        r#"{{"auths": {{"http://{host}/v2/": {{"username": "{USER}", "password": "{PASSWORD}"}}}}}}"#
    ));
    let c2 = client_with(with_config(&good2));
    assert!(c2.head_manifest(&r).await.unwrap().is_some());

    // Anonymous: 401 that says how to log in.
    let e = client().get_manifest(&r).await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("401 from {host} for org/img: log in with `docker login {host}`")
    );

    // Wrong password: rejected, and the password is nowhere in the error.
    let bad = config_dir(&format!(
        r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
        b64(&format!("{USER}:wrong-{PASSWORD}"))
    ));
    let e = client_with(with_config(&bad))
        .get_manifest(&r)
        .await
        .unwrap_err();
    let (msg, dbg) = (e.to_string(), format!("{e:?}"));
    assert!(
        msg.contains("rejected") && msg.contains(&format!("docker login {host}")),
        "{msg}"
    );
    assert!(
        !msg.contains(PASSWORD) && !dbg.contains(PASSWORD),
        "{msg} / {dbg}"
    );
}

#[tokio::test]
async fn credential_helper_gets_the_server_on_stdin() {
    let reg = TestRegistry::start_with_htpasswd(USER, PASSWORD).expect("start registry");
    let host = reg.host();
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("docker-credential-test");
    let record = bin.path().join("calls.txt");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
server=$(cat)
echo "args=$* stdin=$server" >> '{record}'
if [ "$1" != get ]; then exit 2; fi
if [ "$server" != '{host}' ]; then echo "credentials not found in native keychain"; exit 1; fi
printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}' "$server"
"#,
            record = record.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let dir = config_dir(&format!(
        r#"{{"credHelpers": {{"{host}": "test"}}, "auths": {{"{host}": {{}}}}}}"#
    ));
    let config = DockerConfig::load_dir(dir.path())
        .unwrap()
        .with_helper_path(bin.path());
    let creds = config
        .credentials_for(&host)
        .unwrap()
        .expect("helper answered");
    assert_eq!(creds.username(), Some(USER));
    assert_eq!(creds.password().map(|p| p.expose()), Some(PASSWORD));
    assert!(!format!("{creds:?}").contains(PASSWORD));
    let calls = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        calls.trim(),
        format!("args=get stdin={host}"),
        "server on stdin, not in args"
    );

    // The client uses it.
    let c = client_with(CredentialSource::Config(config));
    let r = tagged(&reg.name("org/img"), "v1");
    push_tagged_image(&c, &r, Family::Docker, "helper")
        .await
        .unwrap();
    assert!(c.head_manifest(&r).await.unwrap().is_some());

    // credsStore for every registry; a host it does not know has no credentials.
    let dir = config_dir(r#"{"credsStore": "test"}"#);
    let store = DockerConfig::load_dir(dir.path())
        .unwrap()
        .with_helper_path(bin.path());
    assert_eq!(store.credentials_for("other.example:5000").unwrap(), None);
    assert!(matches!(
        store.credentials_for(&host).unwrap(),
        Some(Credentials::Basic { .. })
    ));

    // A failing helper is an error naming it, without its output.
    std::fs::write(
        &script,
        "#!/bin/sh\ncat >/dev/null\necho 'token=abc123' ; echo 'boom' >&2; exit 3\n",
    )
    .unwrap();
    let e = store.credentials_for(&host).unwrap_err().to_string();
    assert!(
        e.contains("docker-credential-test") && e.contains("boom"),
        "{e}"
    );
    assert!(!e.contains("abc123"), "{e}");

    // A helper that never answers is stopped, and says so.
    std::fs::write(&script, "#!/bin/sh\nexec sleep 60\n").unwrap();
    let slow = DockerConfig::load_dir(dir.path())
        .unwrap()
        .with_helper_path(bin.path())
        .with_helper_timeout(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let e = slow.credentials_for(&host).unwrap_err().to_string();
    assert!(e.contains("did not answer within"), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "it waited for the helper"
    );
}

/// A bearer-token front for a registry: `/token` issues tokens to basic
/// credentials; `/v2/...` needs a token whose scope covers the request.
struct TokenFront {
    proxy: Proxy,
    /// Scopes requested per token request.
    requests: Arc<Mutex<Vec<Vec<String>>>>,
}

fn repo_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .find_map(|k| rest.find(k).map(|i| rest[..i].to_string()))
}

async fn token_front(reg: &TestRegistry) -> TokenFront {
    let requests: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let issued: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
    let me: Arc<OnceLock<String>> = Arc::default();
    let (rq, is, me2) = (requests.clone(), issued.clone(), me.clone());
    let proxy = Proxy::start(reg.addr(), move |req| {
        if req.path() == "/token" {
            let expected = format!("Basic {}", b64(&format!("{USER}:{PASSWORD}")));
            if req.header("Authorization") != Some(expected.as_str()) {
                return Action::Respond(Resp::new(401, &[], r#"{"details":"bad credentials"}"#));
            }
            let scopes: Vec<String> = req
                .target
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .filter_map(|kv| kv.strip_prefix("scope="))
                .map(|s| {
                    s.replace("%3A", ":")
                        .replace("%2C", ",")
                        .replace("%2F", "/")
                })
                .collect();
            if req.query("service").as_deref() != Some("test-registry") {
                return Action::Respond(Resp::new(400, &[], "no service"));
            }
            let mut rq = rq.lock().unwrap();
            rq.push(scopes.clone());
            let token = format!("tok-{}", rq.len());
            is.lock().unwrap().insert(token.clone(), scopes);
            return Action::Respond(Resp::new(
                200,
                &[("Content-Type", "application/json")],
                format!(r#"{{"token":"{token}","expires_in":300}}"#),
            ));
        }
        let repo = repo_of(req.path());
        let need = match (&repo, req.method.as_str()) {
            (Some(r), "GET" | "HEAD") => Some(format!("repository:{r}:pull")),
            (Some(r), _) => Some(format!("repository:{r}:pull,push")),
            (None, _) => None,
        };
        let granted = req
            .header("Authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| is.lock().unwrap().get(t).cloned())
            .unwrap_or_default();
        let ok = match &need {
            None => !granted.is_empty(),
            Some(n) => granted
                .iter()
                .any(|g| g == n || (n.ends_with(":pull") && g.starts_with(&n[..n.len() - 4]))),
        };
        if ok {
            return Action::Forward;
        }
        let host = me2.get().cloned().unwrap_or_default();
        let challenge = match &need {
            Some(n) => {
                format!(r#"Bearer realm="http://{host}/token",service="test-registry",scope="{n}""#)
            }
            None => format!(r#"Bearer realm="http://{host}/token",service="test-registry""#),
        };
        Action::Respond(Resp::new(
            401,
            &[("WWW-Authenticate", &challenge)],
            r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
        ))
    })
    .await;
    let _ = me.set(proxy.host());
    TokenFront { proxy, requests }
}

#[tokio::test]
async fn bearer_token_flow() {
    let reg = TestRegistry::start().expect("start registry");
    let front = token_front(&reg).await;
    let host = front.proxy.host();
    let name: ImageName = format!("{host}/org/img").parse().unwrap();
    let dir = config_dir(&format!(
        r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
        b64(&format!("{USER}:{PASSWORD}"))
    ));
    let c = client_with(with_config(&dir));

    let r = tagged(&name, "v1");
    let m = push_tagged_image(&c, &r, Family::Oci, "bearer")
        .await
        .unwrap();
    let got = c.get_manifest(&r).await.unwrap().unwrap();
    assert_eq!(got.digest(), m.digest());
    assert_eq!(c.list_tags(&name).await.unwrap(), vec!["v1".to_string()]);

    // One token per scope, then cached.
    let reqs = front.requests.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|s| s.contains(&"repository:org/img:pull,push".to_string())),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|s| s.contains(&"repository:org/img:pull".to_string())),
        "{reqs:?}"
    );
    assert_eq!(reqs.len(), 2, "tokens cached per scope: {reqs:?}");
    // The registry really has it (checked without the front).
    let direct = tagged(&reg.name("org/img"), "v1");
    assert_eq!(
        client()
            .get_manifest(&direct)
            .await
            .unwrap()
            .unwrap()
            .digest(),
        m.digest()
    );

    // Without credentials the token server refuses: a 401 error that says
    // how to log in.
    let e = client().get_manifest(&r).await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("docker login {host}")),
        "{e}"
    );
    // Wrong password: rejected, not leaked.
    let bad = config_dir(&format!(
        r#"{{"auths": {{"{host}": {{"auth": "{}"}}}}}}"#,
        b64(&format!("{USER}:nope-{PASSWORD}"))
    ));
    let e = client_with(with_config(&bad))
        .get_manifest(&r)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("rejected"), "{e}");
    assert!(!format!("{e} {e:?}").contains(PASSWORD));
}
