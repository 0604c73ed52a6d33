//! The local image store: inspect, history, tags, removal.

use super::*;

/// What the engine knows about a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id, `sha256:...`.
    pub id: String,
    /// Its tags, e.g. `org/img:tag`.
    pub repo_tags: Vec<String>,
    /// Its registry digests, e.g. `org/img@sha256:...` (empty until pushed or pulled).
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Labels from the image config.
    pub labels: BTreeMap<String, String>,
    /// Creation time as the engine reports it (RFC 3339).
    pub created: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Its layers (`RootFS.Layers`, diff IDs), bottom first.
    pub layers: Vec<String>,
}

/// A local image found by [`Engine::images_by_label`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledImage {
    /// The label's value.
    pub value: String,
    /// The image ID.
    pub id: String,
    /// Its tags, `name:tag`.
    pub repo_tags: Vec<String>,
}

/// One layer (or metadata step) of an image's history, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The image id of this step, or `<missing>` for steps built elsewhere.
    pub id: String,
    /// When the step was created, in seconds since the Unix epoch.
    pub created: i64,
    /// The instruction that created it.
    pub created_by: String,
    /// Bytes the step added.
    pub size: u64,
    /// Tags pointing at this step.
    pub tags: Vec<String>,
    /// The step's comment.
    pub comment: String,
}

impl Engine {
    /// The local image `reference` (name, name:tag, id or digest reference),
    /// or `None` when the engine has no such image.
    pub async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        let raw = match self.docker.inspect_image(reference).await {
            Ok(raw) => raw,
            Err(err) => {
                return match self.map_err("inspect image", reference, err) {
                    EngineError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        let labels = raw
            .config
            .and_then(|c| c.labels)
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Some(ImageInfo {
            id: raw.id.unwrap_or_default(),
            repo_tags: raw.repo_tags.unwrap_or_default(),
            repo_digests: raw.repo_digests.unwrap_or_default(),
            size: raw.size.map_or(0, |s| u64::try_from(s).unwrap_or(0)),
            labels,
            // RFC 3339, as the engine's own API writes it (the date type's
            // Display is not).
            created: raw
                .created
                .map(|c| {
                    humantime::format_rfc3339_nanos(std::time::SystemTime::from(c)).to_string()
                })
                .unwrap_or_default(),
            architecture: raw.architecture.unwrap_or_default(),
            os: raw.os.unwrap_or_default(),
            layers: raw.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        }))
    }

    /// The history of image `reference`, newest step first (the layer table
    /// of a manifest). [`EngineError::NotFound`] when the image is absent.
    pub async fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>> {
        let items = self
            .docker
            .image_history(reference)
            .await
            .map_err(|e| self.map_err("image history", &format!("image {reference}"), e))?;
        Ok(items
            .into_iter()
            .map(|h| HistoryEntry {
                id: h.id,
                created: h.created,
                created_by: h.created_by,
                size: u64::try_from(h.size).unwrap_or(0),
                tags: h.tags,
                comment: h.comment,
            })
            .collect())
    }

    /// Reads local image `reference` as the engine exports it (`docker
    /// save`'s tar), streamed into `read` on a blocking thread: at most
    /// [`EXPORT_CHUNKS_IN_FLIGHT`] chunks wait for it, so memory does not
    /// grow with the image. `read` may stop early; the export is then
    /// dropped. [`EngineError::NotFound`] when the image is absent.
    pub async fn read_export<T: Send + 'static>(
        &self,
        reference: &str,
        read: impl FnOnce(&mut dyn std::io::Read) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) =
            tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(EXPORT_CHUNKS_IN_FLIGHT);
        let reader = tokio::task::spawn_blocking(move || {
            let mut channel = ChannelReader {
                rx,
                chunk: bytes::Bytes::new(),
            };
            read(&mut channel)
        });
        let mut export = self.docker.export_image(reference);
        let mut failed = None;
        while let Some(chunk) = export.next().await {
            match chunk {
                Ok(chunk) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        // The reader is done with it.
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(std::io::Error::other("the image export broke off")))
                        .await;
                    failed = Some(self.map_err("export image", &format!("image {reference}"), e));
                    break;
                }
            }
        }
        drop(tx);
        let result = reader.await.map_err(|e| EngineError::Api {
            operation: "export image",
            message: format!("the reader of the export stopped: {e}"),
        })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// Tags local image `source` as `repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        self.docker
            .tag_image(
                source,
                Some(TagImageOptions {
                    repo: Some(repo.to_string()),
                    tag: Some(tag.to_string()),
                }),
            )
            .await
            .map_err(|e| self.map_err("tag image", &format!("image {source}"), e))
    }

    /// Removes a tag (or, given an id or its last tag, the image). Not
    /// forced: an image used by a container stays, and the engine's conflict
    /// is returned as an error.
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        self.docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                    platforms: None,
                }),
                None,
            )
            .await
            .map(|_| ())
            .map_err(|e| self.map_err("remove image", &format!("image {reference}"), e))
    }

    /// Every tagged image of the local store: each `name:tag` with the ID
    /// of the image it names (`sha256:...`), in one request however many
    /// there are.
    pub async fn local_tags(&self) -> Result<BTreeMap<String, String>> {
        let images = self
            .docker
            .list_images(None::<ListImagesOptions>)
            .await
            .map_err(|e| self.map_err("list images", "local images", e))?;
        Ok(images
            .into_iter()
            .flat_map(|image| {
                let id = image.id;
                image
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .map(move |t| (t, id.clone()))
            })
            .collect())
    }

    /// The local images carrying label `label`, newest first: each with the
    /// label's value, its ID and its tags, in one request.
    pub async fn images_by_label(&self, label: &str) -> Result<Vec<LabelledImage>> {
        let filters =
            std::collections::HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let mut images = self
            .docker
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.map_err("list images", "local images", e))?;
        images.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(images
            .into_iter()
            .filter_map(|i| {
                Some(LabelledImage {
                    value: i.labels.get(label)?.clone(),
                    id: i.id,
                    repo_tags: i.repo_tags,
                })
            })
            .collect())
    }
}

/// How many chunks of an image export may wait for its reader.
pub const EXPORT_CHUNKS_IN_FLIGHT: usize = 16;

/// A blocking reader of the chunks an async task sends.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
