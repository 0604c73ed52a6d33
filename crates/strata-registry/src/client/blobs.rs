//! Blobs: read, checked, mounted across repositories and uploaded.

use super::*;

impl Registry {
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
    pub(super) fn blob_call<'c>(
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
}
