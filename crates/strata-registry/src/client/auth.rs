//! Credentials and tokens: what a request to a registry is authorised
//! with, asked once per registry and cached per repository scope.

use super::*;

impl Registry {
    pub(super) async fn credentials(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
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

    pub(super) fn cached_auth(
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

    pub(super) fn unauthorized(&self, call: &Call<'_>, had_creds: bool) -> RegistryError {
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

    pub(super) async fn fetch_token(
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
}
