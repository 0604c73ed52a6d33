//! Pushes, with the digest the engine reports and typed failures.

use super::*;

/// `<tag>: digest: sha256:<hex> size: <n>` → `sha256:<hex>`.
pub(super) fn parse_digest_line(status: &str) -> Option<String> {
    let rest = &status[status.find("digest: ")? + "digest: ".len()..];
    let digest = rest.split_whitespace().next()?;
    (digest.starts_with("sha256:") && digest.len() == "sha256:".len() + 64)
        .then(|| digest.to_string())
}

impl Engine {
    /// Pushes `reference` (`name:tag`; `latest` when no tag) and returns the
    /// pushed manifest digest (`sha256:...`).
    ///
    /// Progress lines go to `log` (per-layer byte counts are left out).
    /// Errors in the engine's stream are [`EngineError::PushFailed`]; a
    /// missing local image is [`EngineError::NotFound`].
    ///
    /// The digest is the engine's `<tag>: digest: sha256:... size: N` line
    /// (the same value as the stream's `aux.Digest`, which bollard's model
    /// does not expose), falling back to the image's `RepoDigests`.
    pub async fn push<F>(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
        mut log: F,
    ) -> Result<String>
    where
        F: FnMut(&str) + Send,
    {
        let (repo, tag) = split_reference(reference)?;
        let failed_with = |status: Option<u16>, message: String| {
            let message = scrub(one_line(&message), auth);
            // API 1.41 engines report a missing local image inside the
            // stream (HTTP 200), newer ones as a 404.
            if message.contains("does not exist locally") {
                EngineError::NotFound {
                    what: format!("image {reference}: {message}"),
                }
            } else {
                EngineError::PushFailed {
                    reference: reference.to_string(),
                    cause: crate::error::PushCause::classify(status, &message),
                    message,
                }
            }
        };
        let failed = |message: String| failed_with(None, message);
        let mut digest: Option<String> = None;
        {
            let mut stream = self.docker.push_image(
                &repo,
                Some(PushImageOptions {
                    tag: Some(tag.clone()),
                    platform: None,
                }),
                auth.map(RegistryAuth::to_bollard),
            );
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                            return Err(failed(detail));
                        }
                        let Some(status) = info.status else { continue };
                        if let Some(d) = parse_digest_line(&status) {
                            digest = Some(d);
                        }
                        let is_progress = info
                            .progress_detail
                            .is_some_and(|p| p.current.is_some() || p.total.is_some());
                        if !is_progress {
                            log(&scrub(status, auth));
                        }
                    }
                    Err(BollardError::DockerStreamError { error }) => return Err(failed(error)),
                    Err(err) => {
                        return Err(self.stream_error(
                            "push",
                            reference,
                            err,
                            |status, message| match status {
                                Some(404) => EngineError::NotFound {
                                    what: format!("image {reference}: {}", scrub(message, auth)),
                                },
                                _ => failed_with(status, message),
                            },
                        ));
                    }
                }
            }
        }
        if let Some(d) = digest {
            return Ok(d);
        }
        let info = self.inspect_image(reference).await?;
        let prefix = format!("{repo}@");
        info.and_then(|i| {
            i.repo_digests
                .iter()
                .find_map(|d| d.strip_prefix(&prefix).map(str::to_string))
        })
        .ok_or_else(|| failed("the engine reported no digest".to_string()))
    }
}
