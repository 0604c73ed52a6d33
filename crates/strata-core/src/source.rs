//! The repository URL images are labelled with
//! (`org.opencontainers.image.source`): the remote's URL as anyone may read
//! it, never with the credentials a CI checkout often puts in it.

/// `url` (a git remote's URL) without credentials, as a web URL where it
/// names a host (`http://` stays, everything else becomes `https://`): `https://x-access-token:T@github.com/o/r.git` and
/// `git@github.com:o/r.git` both give `https://github.com/o/r`. `None` for a
/// local path or a URL that cannot be read safely (better no label than one
/// that might carry a secret).
pub fn public_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    let mut web = "https";
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git") {
            return None;
        }
        if scheme == "http" {
            web = "http";
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Everything before the last `@` is userinfo: a name, a token, a
        // password. It is dropped whole.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // An ssh port is not the web's.
        let host = match scheme {
            "ssh" | "git" => host.split(':').next().unwrap_or(host),
            _ => host,
        };
        (host.to_string(), path.to_string())
    } else {
        // scp-like `[user@]host:path`; a path with `/` before any `:` is local.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') || path.starts_with("//") {
            return None;
        }
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (host.to_string(), path.to_string())
    };
    if host.is_empty() || host.contains(['/', '@', '\\']) {
        return None;
    }
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    // A query or fragment can carry a token too.
    if path.contains(['?', '#', '@']) {
        return None;
    }
    Some(if path.is_empty() {
        format!("{web}://{host}")
    } else {
        format!("{web}://{host}/{path}")
    })
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn credentials_never_survive() {
        for (url, want) in [
            ("https://github.com/o/r.git", Some("https://github.com/o/r")),
            (
                "https://x-access-token:ghs_SECRET@github.com/o/r.git",
                Some("https://github.com/o/r"),
            ),
            (
                "https://user:p%40ss@w@gitlab.example.com/g/r",
                Some("https://gitlab.example.com/g/r"),
            ),
            ("git@github.com:o/r.git", Some("https://github.com/o/r")),
            (
                "ssh://git@github.com:22/o/r.git",
                Some("https://github.com/o/r"),
            ),
            (
                "http://t:SECRET@127.0.0.1:3000/o/r",
                Some("http://127.0.0.1:3000/o/r"),
            ),
            ("https://github.com/o/r?token=SECRET", None),
            ("/srv/git/r.git", None),
            ("./r", None),
            ("file:///srv/r.git", None),
            ("", None),
            ("https://github.com/o/r withspace", None),
        ] {
            let got = public_url(url);
            assert_eq!(got.as_deref(), want, "{url}");
            if let Some(got) = got {
                assert!(!got.contains("SECRET") && !got.contains("ss@"), "{got}");
            }
        }
    }
}
