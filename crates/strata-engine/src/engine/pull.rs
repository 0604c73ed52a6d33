//! Pulls, of a tag or a digest.

use super::*;

impl Engine {
    /// Pulls `reference` (`name:tag`, `name@sha256:...`; `latest` when no
    /// tag), e.g. to use a previous build as cache. An image the registry
    /// does not have is [`EngineError::NotFound`]; other failures are
    /// [`EngineError::PullFailed`].
    pub async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<()> {
        let (from_image, tag) = match reference.split_once('@') {
            Some((name, digest)) => (name.to_string(), digest.to_string()),
            None => split_reference(reference)?,
        };
        let failed = |message: String| {
            let message = scrub(one_line(&message), auth);
            let lower = message.to_ascii_lowercase();
            if lower.contains("not found") || lower.contains("manifest unknown") {
                EngineError::NotFound {
                    what: format!("image {reference}: {message}"),
                }
            } else {
                EngineError::PullFailed {
                    reference: reference.to_string(),
                    message,
                }
            }
        };
        let mut stream = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(from_image),
                tag: Some(tag),
                ..Default::default()
            }),
            None,
            auth.map(RegistryAuth::to_bollard),
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Err(failed(detail));
                    }
                }
                Err(BollardError::DockerStreamError { error }) => return Err(failed(error)),
                Err(err) => {
                    return Err(
                        self.stream_error("pull", reference, err, |_, message| failed(message))
                    );
                }
            }
        }
        Ok(())
    }
}
