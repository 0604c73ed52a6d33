//! Registry credentials handed to the engine for push and pull.

use std::fmt;

/// Credentials for one registry, sent to the engine in the `X-Registry-Auth`
/// header of a push or pull.
///
/// Its `Debug` output shows the server and the user name but never the
/// password or token, and the adapter scrubs both from any error message.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    server_address: String,
    username: Option<String>,
    password: Option<String>,
    identity_token: Option<String>,
}

impl RegistryAuth {
    /// User name and password (or a personal access token used as password).
    pub fn basic(
        server_address: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> RegistryAuth {
        RegistryAuth {
            server_address: server_address.into(),
            username: Some(username.into()),
            password: Some(password.into()),
            identity_token: None,
        }
    }

    /// An identity (refresh) token, as stored by `docker login` for some
    /// registries (the `identitytoken` of the Docker config).
    pub fn identity_token(
        server_address: impl Into<String>,
        token: impl Into<String>,
    ) -> RegistryAuth {
        RegistryAuth {
            server_address: server_address.into(),
            username: None,
            password: None,
            identity_token: Some(token.into()),
        }
    }

    /// The registry host these credentials are for, e.g. `ghcr.io`.
    pub fn server_address(&self) -> &str {
        &self.server_address
    }

    /// The user name, when these are basic credentials.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The secret strings, for scrubbing messages.
    pub(crate) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.password
            .iter()
            .chain(self.identity_token.iter())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn to_bollard(&self) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: self.username.clone(),
            password: self.password.clone(),
            serveraddress: Some(self.server_address.clone()),
            identitytoken: self.identity_token.clone(),
            ..Default::default()
        }
    }
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("RegistryAuth")
            .field("server_address", &self.server_address)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("identity_token", &redacted(&self.identity_token))
            .finish()
    }
}

/// Replaces every secret of `auth` in `message` with `<redacted>`.
pub(crate) fn scrub(message: String, auth: Option<&RegistryAuth>) -> String {
    let Some(auth) = auth else { return message };
    let mut out = message;
    for secret in auth.secrets() {
        if out.contains(secret) {
            out = out.replace(secret, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let a = RegistryAuth::basic("127.0.0.1:5000", "alice", "hunter2-secret");
        let d = format!("{a:?}");
        assert!(!d.contains("hunter2-secret"), "{d}");
        assert!(d.contains("alice") && d.contains("127.0.0.1:5000"), "{d}");
        let t = RegistryAuth::identity_token("ghcr.io", "tok-very-secret");
        let d = format!("{t:?}");
        assert!(!d.contains("tok-very-secret"), "{d}");
        assert!(d.contains("<redacted>"), "{d}");
        assert_eq!(t.username(), None);
    }

    #[test]
    fn scrub_removes_secrets() {
        let a = RegistryAuth::basic("r", "u", "pw123");
        assert_eq!(
            scrub("bad login u:pw123".to_string(), Some(&a)),
            "bad login u:<redacted>"
        );
        assert_eq!(scrub("x".to_string(), None), "x");
    }
}
