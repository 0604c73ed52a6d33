//! Manifests and tags: read, written and copied by digest, each checked
//! against its digest.

use super::*;

/// The most pages of a tag list [`Registry::list_tags`] follows: a million
/// tags at registries' usual 1000 a page, and a bound on a registry whose
/// `Link`s never end.
pub const MAX_TAG_PAGES: usize = 1000;

impl Registry {
    pub(super) fn content_digest(
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

    pub(super) fn manifest_call<'a>(
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

    /// [`Registry::get_manifest`] of a manifest that must exist.
    ///
    /// # Errors
    /// The registry's; [`RegistryError::NotFound`] when it lacks `image`.
    pub async fn existing_manifest(&self, image: &ImageRef) -> Result<Manifest, RegistryError> {
        self.get_manifest(image)
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(image.clone()),
            })
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

    /// The referrers API's index of what refers to `digest` in repository
    /// `name` (`GET /v2/<name>/referrers/<digest>`, OCI distribution 1.1),
    /// or `None` where the registry does not offer the API (it answers 404,
    /// as registries older than OCI 1.1 do for a path they do not know).
    pub async fn referrers_api(
        &self,
        name: &ImageName,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let call = Call {
            method: Method::GET,
            name,
            url: self.url(name, &format!("referrers/{digest}"))?,
            accept: Some(crate::manifest::OCI_INDEX),
            content_type: None,
            body: None,
            push: false,
            also_pull: None,
            what: format!("GET referrers of {}@{digest}", name),
        };
        let Some(resp) = self.send_lookup(&call).await? else {
            return Ok(None);
        };
        // A registry that answers anything but an OCI index here does not
        // offer the API.
        if header_str(resp.headers(), "content-type")
            .is_none_or(|t| !t.starts_with(crate::manifest::OCI_INDEX))
        {
            return Ok(None);
        }
        match read_limited(resp, MAX_MANIFEST_BYTES).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => Err(RegistryError::BadResponse {
                host: name.api_host().to_string(),
                what: call.what,
                problem: "the referrers index was cut off or too large".into(),
            }),
        }
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

    /// Every tag of a repository, following `Link` pagination (at most
    /// [`MAX_TAG_PAGES`] pages: a registry that links on past that is an
    /// error, not an endless loop). A repository the registry does not
    /// know has no tags.
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
            if seen.len() >= MAX_TAG_PAGES {
                return Err(RegistryError::BadResponse {
                    host: name.api_host().to_string(),
                    what: format!("list tags of {name}"),
                    problem: format!(
                        "its tag list goes on past {MAX_TAG_PAGES} pages ({} tags so far); \
                         ask for larger pages or check the registry",
                        tags.len()
                    ),
                });
            }
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
        let m = self.existing_manifest(from).await?;
        self.ensure_contents(from.name(), to.name(), &m).await?;
        let digest = self.put_manifest(to, &m).await?;
        Ok(Copied {
            digest,
            media_type: m.media_type().to_string(),
        })
    }
}
