//! Image reference grammar: names, tags and digests, as Docker reads them.
//!
//! The grammar is Docker's: `[host[:port]/]path[:tag][@digest]`.
//!
//! * The first `/`-separated component is a registry host when it contains a
//!   `.` or a `:`, or is `localhost`; otherwise the registry is
//!   [`DEFAULT_REGISTRY`] (`docker.io`, whose API is served by
//!   [`DOCKER_HUB_API_HOST`]) and a single-component path gets `library/`.
//! * Path components are lowercase: `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`.
//! * A tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
//! * A digest is `algorithm:hex`, e.g. `sha256:` and 64 lowercase hex digits.
//!
//! The types here are pure values (no I/O): [`ImageName`] (registry and
//! repository), [`Tag`], [`Digest`] and [`ImageRef`] (a name with a tag and/or
//! a digest). Each parses with [`FromStr`] and prints with [`Display`] in a form
//! that parses back to an equal value. Errors ([`ReferenceError`]) say what is
//! wrong and how to fix it.

use std::fmt;
use std::str::FromStr;

/// The registry of names written without a host (`ubuntu`, `org/img`).
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// The host that serves the registry API of [`DEFAULT_REGISTRY`].
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Longest tag, in characters.
pub const MAX_TAG_LEN: usize = 128;

/// Longest repository name (`registry/path`), in characters.
pub const MAX_NAME_LEN: usize = 255;

/// A reference that does not follow the grammar: the text that was read and
/// what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference `{input}`: {kind}")]
pub struct ReferenceError {
    input: String,
    kind: ReferenceErrorKind,
}

impl ReferenceError {
    fn new(input: &str, kind: ReferenceErrorKind) -> Self {
        ReferenceError {
            input: input.to_string(),
            kind,
        }
    }

    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn kind(&self) -> &ReferenceErrorKind {
        &self.kind
    }
}

/// The ways a reference can be malformed. Each message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceErrorKind {
    /// Nothing to parse.
    #[error("the reference is empty: write a name such as `org/image:tag`")]
    Empty,
    /// A path component contains uppercase letters.
    #[error(
        "uppercase letters are not allowed in a repository path (`{component}`): use lowercase"
    )]
    Uppercase {
        /// The offending path component.
        component: String,
    },
    /// A path component is empty (`a//b`, a leading or trailing `/`).
    #[error("the repository path has an empty component: remove the extra `/`")]
    EmptyComponent,
    /// A path component does not follow the path grammar.
    #[error(
        "`{component}` is not a valid repository path component: use lowercase letters and digits, separated by `.`, `_`, `__` or dashes, starting and ending with a letter or digit"
    )]
    InvalidComponent {
        /// The offending path component.
        component: String,
    },
    /// The registry host (or its port) is malformed.
    #[error(
        "`{host}` is not a valid registry host: write `host`, `host:port`, or `[ipv6]:port` with letters, digits, `-` and `.`"
    )]
    InvalidHost {
        /// The offending host.
        host: String,
    },
    /// A name is longer than [`MAX_NAME_LEN`].
    #[error("the name is {len} characters long; the limit is {MAX_NAME_LEN}: shorten it")]
    NameTooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The tag does not follow the tag grammar.
    #[error(
        "`{tag}` is not a valid tag: a tag is 1 to 128 of `A-Z a-z 0-9 _ . -`, not starting with `.` or `-` (Tag::sanitize makes a branch name into one)"
    )]
    InvalidTag {
        /// The offending tag.
        tag: String,
    },
    /// The digest does not follow the digest grammar.
    #[error(
        "`{digest}` is not a valid digest: write `sha256:` followed by 64 lowercase hex digits"
    )]
    InvalidDigest {
        /// The offending digest.
        digest: String,
    },
    /// An image reference has neither a tag nor a digest.
    #[error("the reference has no tag or digest: add `:<tag>` or `@sha256:<hex>`")]
    MissingTagOrDigest,
    /// An image name (which names a repository) has a tag or digest.
    #[error("an image name must not carry a tag or digest: remove the `:<tag>` / `@<digest>` part")]
    UnexpectedTagOrDigest,
}

fn err(input: &str, kind: ReferenceErrorKind) -> ReferenceError {
    ReferenceError::new(input, kind)
}

// ---------------------------------------------------------------------------
// Tag

/// A valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

fn is_tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'
}

fn is_tag_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn tag_is_valid(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_tag_start(c) => {}
        _ => return false,
    }
    s.len() <= MAX_TAG_LEN && chars.all(is_tag_char)
}

impl Tag {
    /// Turns arbitrary text (typically a branch name such as `feature/Login`)
    /// into a valid tag: every character outside `[A-Za-z0-9_.-]` becomes `-`,
    /// leading `.` and `-` are dropped, and the result is cut to 128
    /// characters. Returns `None` when nothing valid is left (e.g. `""`,
    /// `"---"`).
    pub fn sanitize(s: &str) -> Option<Tag> {
        let replaced: String = s
            .chars()
            .map(|c| if is_tag_char(c) { c } else { '-' })
            .collect();
        let trimmed = replaced.trim_start_matches(['.', '-']);
        // All characters are ASCII now, so byte slicing is safe.
        let cut = &trimmed[..trimmed.len().min(MAX_TAG_LEN)];
        if tag_is_valid(cut) {
            Some(Tag(cut.to_string()))
        } else {
            None
        }
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if tag_is_valid(s) {
            Ok(Tag(s.to_string()))
        } else {
            Err(err(
                s,
                ReferenceErrorKind::InvalidTag { tag: s.to_string() },
            ))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------
// Digest

/// A content digest `algorithm:encoded`, e.g. `sha256:` + 64 lowercase hex
/// digits. `sha256` and `sha512` digests must have exactly 64 / 128 lowercase
/// hex digits; other algorithms need at least 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

fn digest_is_valid(s: &str) -> bool {
    let Some((algo, hex)) = s.split_once(':') else {
        return false;
    };
    // algorithm: [a-z0-9]+(?:[.+_-][a-z0-9]+)*
    let algo_ok = !algo.is_empty()
        && algo.split(['.', '+', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !algo_ok {
        return false;
    }
    let lower_hex = |h: &str| h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'));
    match algo {
        "sha256" => hex.len() == 64 && lower_hex(hex),
        "sha512" => hex.len() == 128 && lower_hex(hex),
        _ => hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
    }
}

impl Digest {
    /// Makes a `sha256:` digest from 64 lowercase hex digits (as computed by
    /// a hasher); `None` if `hex` is not that.
    pub fn from_sha256_hex(hex: &str) -> Option<Digest> {
        let s = format!("sha256:{hex}");
        digest_is_valid(&s).then_some(Digest(s))
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The encoded part (hex digits) after the `:`.
    pub fn hex(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, h)| h)
    }

    /// The digest as text, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if digest_is_valid(s) {
            Ok(Digest(s.to_string()))
        } else {
            Err(err(
                s,
                ReferenceErrorKind::InvalidDigest {
                    digest: s.to_string(),
                },
            ))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------
// ImageName

/// A repository in a registry, without tag or digest: `ghcr.io/org/image`,
/// `docker.io/library/ubuntu`, `127.0.0.1:5000/org/image`.
///
/// Parsing applies Docker's defaults (`ubuntu` is
/// `docker.io/library/ubuntu`; `index.docker.io` is `docker.io`); `Display`
/// always prints the registry, so the printed form parses back to the same
/// value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageName {
    registry: String,
    repository: String,
}

impl ImageName {
    /// The registry as written (after normalising Docker Hub's aliases to
    /// `docker.io`), with its port if any: `ghcr.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `org/image`,
    /// `library/ubuntu`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The host (with port) that serves this registry's API:
    /// [`DOCKER_HUB_API_HOST`] for `docker.io`, else [`Self::registry`].
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// This repository with a tag.
    pub fn with_tag(&self, tag: Tag) -> ImageRef {
        ImageRef {
            name: self.clone(),
            tag: Some(tag),
            digest: None,
        }
    }

    /// This repository with a digest.
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            name: self.clone(),
            tag: None,
            digest: Some(digest),
        }
    }
}

impl FromStr for ImageName {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = parse(s)?;
        if parsed.tag.is_some() || parsed.digest.is_some() {
            return Err(err(s, ReferenceErrorKind::UnexpectedTagOrDigest));
        }
        Ok(parsed.name)
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

// ---------------------------------------------------------------------------
// ImageRef

/// An image: a repository plus a tag, a digest, or both
/// (`org/img:1.0`, `org/img@sha256:…`, `org/img:1.0@sha256:…`). When both are
/// present the digest is what identifies the content.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    name: ImageName,
    tag: Option<Tag>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The repository.
    pub fn name(&self) -> &ImageName {
        &self.name
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What the registry API calls the "reference" of this image: the digest
    /// when there is one, else the tag.
    pub fn reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t.as_str(),
            // Unreachable by construction: every ImageRef has one of them.
            (None, None) => "latest",
        }
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parsed = parse(s)?;
        if parsed.tag.is_none() && parsed.digest.is_none() {
            return Err(err(s, ReferenceErrorKind::MissingTagOrDigest));
        }
        Ok(parsed)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Parsing

fn component_is_valid(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        // a separator
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

fn host_is_valid(host: &str) -> bool {
    let (h, port) = if let Some(rest) = host.strip_prefix('[') {
        // [ipv6]:port
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (None, port)
    } else {
        match host.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match h {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
    }
}

fn parse(input: &str) -> Result<ImageRef, ReferenceError> {
    use ReferenceErrorKind as K;
    if input.is_empty() {
        return Err(err(input, K::Empty));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, d)) => (
            rest,
            Some(d.parse::<Digest>().map_err(|e| err(input, e.kind))?),
        ),
        None => (input, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|sl| colon > sl) => {
            let t = &rest[colon + 1..];
            (
                &rest[..colon],
                Some(t.parse::<Tag>().map_err(|e| err(input, e.kind))?),
            )
        }
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err(err(input, K::Empty));
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            if !host_is_valid(first) {
                return Err(err(
                    input,
                    K::InvalidHost {
                        host: first.to_string(),
                    },
                ));
            }
            (first, path)
        }
        _ => (DEFAULT_REGISTRY, name),
    };
    let registry = if registry == "index.docker.io" {
        DEFAULT_REGISTRY
    } else {
        registry
    };
    for component in path.split('/') {
        if component.is_empty() {
            return Err(err(input, K::EmptyComponent));
        }
        if !component_is_valid(component) {
            let kind = if component.chars().any(|c| c.is_ascii_uppercase())
                && component_is_valid(&component.to_ascii_lowercase())
            {
                K::Uppercase {
                    component: component.to_string(),
                }
            } else {
                K::InvalidComponent {
                    component: component.to_string(),
                }
            };
            return Err(err(input, kind));
        }
    }
    let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    let len = registry.len() + 1 + repository.len();
    if len > MAX_NAME_LEN {
        return Err(err(input, K::NameTooLong { len }));
    }
    Ok(ImageRef {
        name: ImageName {
            registry: registry.to_string(),
            repository,
        },
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn name(s: &str) -> ImageName {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn iref(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn kind_of<T: FromStr<Err = ReferenceError> + fmt::Debug>(s: &str) -> ReferenceErrorKind {
        match s.parse::<T>() {
            Ok(v) => panic!("{s} parsed as {v:?}"),
            Err(e) => e.kind().clone(),
        }
    }

    #[test]
    fn docker_hub_defaults() {
        let n = name("ubuntu");
        assert_eq!(n.registry(), "docker.io");
        assert_eq!(n.repository(), "library/ubuntu");
        assert_eq!(n.api_host(), "registry-1.docker.io");
        assert_eq!(n.to_string(), "docker.io/library/ubuntu");
        let n = name("jupyter/datascience-notebook");
        assert_eq!(n.registry(), "docker.io");
        assert_eq!(n.repository(), "jupyter/datascience-notebook");
        assert_eq!(name("docker.io/ubuntu"), name("ubuntu"));
        assert_eq!(name("index.docker.io/library/ubuntu"), name("ubuntu"));
    }

    #[test]
    fn hosts() {
        let n = name("ghcr.io/ucsd-ets/datascience-notebook");
        assert_eq!(n.registry(), "ghcr.io");
        assert_eq!(n.repository(), "ucsd-ets/datascience-notebook");
        assert_eq!(n.api_host(), "ghcr.io");
        let n = name("127.0.0.1:5000/org/img");
        assert_eq!(n.registry(), "127.0.0.1:5000");
        assert_eq!(n.repository(), "org/img");
        let n = name("localhost/img");
        assert_eq!(n.registry(), "localhost");
        assert_eq!(n.repository(), "img");
        let n = name("localhost:5000/a/b/c");
        assert_eq!(n.registry(), "localhost:5000");
        assert_eq!(n.repository(), "a/b/c");
        let n = name("[::1]:5000/img");
        assert_eq!(n.registry(), "[::1]:5000");
        // A first component without `.`/`:` that is not localhost is a path.
        let n = name("myhost/img");
        assert_eq!(n.registry(), "docker.io");
        assert_eq!(n.repository(), "myhost/img");
    }

    #[test]
    fn refs_with_tag_and_digest() {
        let r = iref("ghcr.io/org/img:2023.2-main");
        assert_eq!(r.tag().map(Tag::as_str), Some("2023.2-main"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.reference(), "2023.2-main");
        assert_eq!(r.to_string(), "ghcr.io/org/img:2023.2-main");

        let r = iref(&format!("127.0.0.1:5000/org/img@sha256:{HEX}"));
        assert_eq!(r.name().registry(), "127.0.0.1:5000");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().map(Digest::hex), Some(HEX));
        assert_eq!(r.reference(), format!("sha256:{HEX}"));

        let r = iref(&format!("localhost:5000/img:v1@sha256:{HEX}"));
        assert_eq!(r.tag().map(Tag::as_str), Some("v1"));
        assert_eq!(r.reference(), format!("sha256:{HEX}"));
        assert_eq!(r.to_string(), format!("localhost:5000/img:v1@sha256:{HEX}"));

        // `localhost:5000` alone is the name `localhost` with tag `5000`, as in Docker.
        let r = iref("localhost:5000");
        assert_eq!(r.name().repository(), "library/localhost");
        assert_eq!(r.tag().map(Tag::as_str), Some("5000"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "ubuntu:22.04",
            "ghcr.io/a/b/c:x",
            "127.0.0.1:5001/org/img:t",
            &format!("a.b/c@sha256:{HEX}"),
            "[::1]:5000/x__y.z---w:_t",
        ] {
            let r = iref(s);
            assert_eq!(iref(&r.to_string()), r, "{s}");
            let n = r.name().clone();
            assert_eq!(name(&n.to_string()), n, "{s}");
        }
    }

    #[test]
    fn name_and_ref_require_the_right_parts() {
        assert_eq!(
            kind_of::<ImageName>("org/img:tag"),
            ReferenceErrorKind::UnexpectedTagOrDigest
        );
        assert_eq!(
            kind_of::<ImageRef>("org/img"),
            ReferenceErrorKind::MissingTagOrDigest
        );
        assert_eq!(kind_of::<ImageRef>(""), ReferenceErrorKind::Empty);
        assert_eq!(kind_of::<ImageRef>(":tag"), ReferenceErrorKind::Empty);
    }

    #[test]
    fn path_components() {
        for ok in [
            "a",
            "a0",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b_c__d-e",
        ] {
            assert!(component_is_valid(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", ".a", "a.", "a..b", "a___b", "a_.b", "A", "a b", "é",
        ] {
            assert!(!component_is_valid(bad), "{bad}");
        }
        assert_eq!(
            kind_of::<ImageName>("Org/img"),
            ReferenceErrorKind::Uppercase {
                component: "Org".into()
            }
        );
        assert_eq!(
            kind_of::<ImageName>("org//img"),
            ReferenceErrorKind::EmptyComponent
        );
        assert_eq!(
            kind_of::<ImageName>("ghcr.io/"),
            ReferenceErrorKind::EmptyComponent
        );
        assert_eq!(
            kind_of::<ImageName>("org/-img"),
            ReferenceErrorKind::InvalidComponent {
                component: "-img".into()
            }
        );
        assert_eq!(
            kind_of::<ImageName>("org/IMG_"),
            ReferenceErrorKind::InvalidComponent {
                component: "IMG_".into()
            }
        );
    }

    #[test]
    fn error_messages_say_how_to_fix() {
        let e = "ghcr.io/Org/img".parse::<ImageName>().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ghcr.io/Org/img"), "{msg}");
        assert!(
            msg.contains("uppercase letters are not allowed in a repository path"),
            "{msg}"
        );
        assert!(msg.contains("use lowercase"), "{msg}");
        let msg = "org/img:bad/tag"
            .parse::<ImageRef>()
            .unwrap_err()
            .to_string();
        // The colon comes before the last `/`, so `img:bad` is a path component.
        assert!(msg.contains("img:bad"), "{msg}");
        let msg = "org/img:-x".parse::<ImageRef>().unwrap_err().to_string();
        assert!(
            msg.contains("not a valid tag") && msg.contains("sanitize"),
            "{msg}"
        );
        let msg = "org/img@sha256:abc"
            .parse::<ImageRef>()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("64 lowercase hex"), "{msg}");
    }

    #[test]
    fn hosts_are_validated() {
        for bad in [
            "a..b/x",
            "-a.b/x",
            "a.b:/x",
            "a.b:12x/x",
            "a.b:123456/x",
            "[zz]:5/x",
            "[::1/x",
        ] {
            assert!(
                matches!(
                    kind_of::<ImageName>(bad),
                    ReferenceErrorKind::InvalidHost { .. }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn name_length_limit() {
        let long = format!("ghcr.io/{}", "a".repeat(250));
        assert!(matches!(
            kind_of::<ImageName>(&long),
            ReferenceErrorKind::NameTooLong { len: 258 }
        ));
        let ok = format!("ghcr.io/{}", "a".repeat(247));
        assert_eq!(name(&ok).to_string().len(), 255);
    }

    #[test]
    fn tags() {
        for ok in ["a", "_", "0", "2023.2-main", "A_b.C-d", &"x".repeat(128)] {
            assert_eq!(ok.parse::<Tag>().map(|t| t.to_string()), Ok(ok.to_string()));
        }
        for bad in ["", ".a", "-a", "a/b", "a:b", "a b", "é", &"x".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sanitize_branch_names() {
        let s = |x: &str| Tag::sanitize(x).map(|t| t.to_string());
        assert_eq!(s("main").as_deref(), Some("main"));
        assert_eq!(s("feature/Login").as_deref(), Some("feature-Login"));
        assert_eq!(
            s("dependabot/pip/numpy-1.26").as_deref(),
            Some("dependabot-pip-numpy-1.26")
        );
        assert_eq!(s("-x").as_deref(), Some("x"));
        assert_eq!(s("./..a").as_deref(), Some("a"));
        assert_eq!(s("héllo wörld").as_deref(), Some("h-llo-w-rld"));
        assert_eq!(s(""), None);
        assert_eq!(s("---"), None);
        assert_eq!(s("///"), None);
        assert_eq!(s(&"b".repeat(300)).map(|t| t.len()), Some(128));
    }

    #[test]
    fn sanitize_always_valid_pseudo_random() {
        // A dependency-free fuzz loop (strata-registry also runs a proptest).
        let alphabet: Vec<char> = "aZ09_.-/: @é\u{1F600}\t".chars().collect();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let len = (next() % 200) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if let Some(t) = Tag::sanitize(&s) {
                assert!(tag_is_valid(t.as_str()), "{s:?} -> {t:?}");
                assert_eq!(t.as_str().parse::<Tag>().as_ref(), Ok(&t));
            }
        }
    }

    #[test]
    fn digests() {
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.hex(), HEX);
        assert_eq!(Digest::from_sha256_hex(HEX), Some(d));
        assert_eq!(Digest::from_sha256_hex("abc"), None);
        assert!(
            format!("sha256:{}", HEX.to_uppercase())
                .parse::<Digest>()
                .is_err()
        );
        assert!(format!("sha512:{HEX}{HEX}").parse::<Digest>().is_ok());
        assert!(format!("sha512:{HEX}").parse::<Digest>().is_err());
        assert!(format!("blake3:{}", &HEX[..32]).parse::<Digest>().is_ok());
        assert!(format!("Sha256:{HEX}").parse::<Digest>().is_err());
        assert!(HEX.parse::<Digest>().is_err());
        assert!(format!(":{HEX}").parse::<Digest>().is_err());
    }
}
