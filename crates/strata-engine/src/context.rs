//! The build context: a tar of a folder, produced on a blocking thread and
//! streamed through a bounded channel, so that it is never held whole in
//! memory (at most [`CHANNEL_CHUNKS`] × [`CHUNK_SIZE`] bytes are buffered).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::dockerignore::{MatchInfo, PatternMatcher, cli_matches, parse_dockerignore};

/// Size of one chunk of the tar stream.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;
/// Chunks buffered between the tar thread and the HTTP request.
pub(crate) const CHANNEL_CHUNKS: usize = 8;

/// A context problem found while preparing or producing the tar.
#[derive(Debug)]
pub(crate) struct ContextError {
    pub(crate) path: PathBuf,
    pub(crate) message: String,
}

impl ContextError {
    fn io(path: &Path, err: &io::Error) -> ContextError {
        ContextError {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}

/// What to send: the folder and the patterns deciding what is left out.
#[derive(Debug)]
pub(crate) struct ContextPlan {
    root: PathBuf,
    matcher: PatternMatcher,
}

/// Reads `.dockerignore` and checks the Dockerfile, like the Docker CLI does
/// before it sends a context: the Dockerfile and `.dockerignore` get `!`
/// exceptions so they are always sent (the engine then drops them itself
/// where `.dockerignore` lists them).
pub(crate) fn plan(root: &Path, dockerfile: &str) -> Result<ContextPlan, ContextError> {
    let meta = fs::metadata(root).map_err(|e| ContextError::io(root, &e))?;
    if !meta.is_dir() {
        return Err(ContextError {
            path: root.to_path_buf(),
            message: "is not a folder".to_string(),
        });
    }
    let dockerfile_rel = dockerfile_in_context(dockerfile).ok_or_else(|| ContextError {
        path: PathBuf::from(dockerfile),
        message: "the Dockerfile must be a relative path inside the context folder".to_string(),
    })?;
    let dockerfile_path = root.join(&dockerfile_rel);
    match fs::metadata(&dockerfile_path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(ContextError {
                path: dockerfile_path,
                message: "the Dockerfile is not a regular file".to_string(),
            });
        }
        Err(e) => return Err(ContextError::io(&dockerfile_path, &e)),
    }

    let ignore_path = root.join(".dockerignore");
    let mut patterns = match fs::read(&ignore_path) {
        Ok(bytes) => parse_dockerignore(&String::from_utf8_lossy(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ContextError::io(&ignore_path, &e)),
    };
    let matcher = PatternMatcher::new(&patterns).map_err(|e| ContextError {
        path: ignore_path.clone(),
        message: e.to_string(),
    })?;
    // docker/cli TrimBuildFilesFromExcludes.
    if cli_matches(".dockerignore", &matcher) {
        patterns.push("!.dockerignore".to_string());
    }
    if cli_matches(&dockerfile_rel, &matcher) {
        patterns.push(format!("!{dockerfile_rel}"));
    }
    let matcher = PatternMatcher::new(&patterns).map_err(|e| ContextError {
        path: ignore_path,
        message: e.to_string(),
    })?;
    Ok(ContextPlan {
        root: root.to_path_buf(),
        matcher,
    })
}

/// The Dockerfile path as the engine expects it: relative, slash-separated,
/// cleaned; `None` when it is absolute or leaves the context.
pub(crate) fn dockerfile_in_context(dockerfile: &str) -> Option<String> {
    let p = dockerfile.replace('\\', "/");
    if p.starts_with('/') {
        return None;
    }
    let cleaned = crate::dockerignore::go_clean(&p);
    if cleaned == "." || cleaned == ".." || cleaned.starts_with("../") {
        return None;
    }
    Some(cleaned)
}

/// A `Write` that cuts the tar into chunks and sends them down the channel,
/// blocking while the channel is full. Fails with `BrokenPipe` once the
/// receiving side (the HTTP request) is gone.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the build request was dropped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK_SIZE {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

/// Starts producing the tar of `plan` on a blocking thread. Returns the byte
/// stream to use as the request body and a handle that yields the first
/// context error, if any. Dropping the stream stops the producer.
pub(crate) fn stream(
    plan: ContextPlan,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    tokio::task::JoinHandle<Result<(), ContextError>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_CHUNKS);
    let err_tx = tx.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_SIZE),
        };
        let result = write_tar(&plan, writer);
        if let Err(e) = &result {
            // Abort the request body so the engine does not build a partial context.
            let _ = err_tx.blocking_send(Err(io::Error::other(format!(
                "{}: {}",
                e.path.display(),
                e.message
            ))));
        }
        result
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (body, handle)
}

/// The whole tar in memory, failing once it would exceed `limit` bytes.
pub(crate) fn tar_in_memory(plan: &ContextPlan, limit: u64) -> Result<Vec<u8>, ContextError> {
    struct Capped {
        buf: Vec<u8>,
        limit: u64,
    }
    impl Write for Capped {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if (self.buf.len() + data.len()) as u64 > self.limit {
                return Err(io::Error::other(format!(
                    "the build context is larger than {} MiB, the most a build with secrets sends; .dockerignore what the build does not need",
                    self.limit / (1024 * 1024)
                )));
            }
            self.buf.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped {
        buf: Vec::new(),
        limit,
    };
    write_tar(plan, &mut out)?;
    Ok(out.buf)
}

/// Writes the whole tar; synchronous, for the blocking thread (and tests).
pub(crate) fn write_tar<W: Write>(plan: &ContextPlan, out: W) -> Result<(), ContextError> {
    let mut builder = tar::Builder::new(out);
    walk(&mut builder, plan, "", &MatchInfo::default())?;
    let mut out = builder
        .into_inner()
        .map_err(|e| ContextError::io(&plan.root, &e))?;
    out.flush().map_err(|e| ContextError::io(&plan.root, &e))
}

fn walk<W: Write>(
    builder: &mut tar::Builder<W>,
    plan: &ContextPlan,
    rel_dir: &str,
    parent_info: &MatchInfo,
) -> Result<(), ContextError> {
    let dir = if rel_dir.is_empty() {
        plan.root.clone()
    } else {
        plan.root.join(rel_dir)
    };
    let mut entries = fs::read_dir(&dir)
        .map_err(|e| ContextError::io(&dir, &e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ContextError::io(&dir, &e))?;
    // filepath.WalkDir order: lexical by name.
    entries.sort();
    for name in entries {
        let name_str = name.to_string_lossy();
        let rel = if rel_dir.is_empty() {
            name_str.to_string()
        } else {
            format!("{rel_dir}/{name_str}")
        };
        let path = dir.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(|e| ContextError::io(&path, &e))?;
        let (skip, info) = if plan.matcher.is_empty() {
            (false, MatchInfo::default())
        } else {
            plan.matcher.matches_using_parent_results(&rel, parent_info)
        };
        if skip {
            if meta.is_dir() && plan.matcher.must_walk_excluded_dir(&rel) {
                walk(builder, plan, &rel, &info)?;
            }
            continue;
        }
        let tar_path: PathBuf = if rel_dir.is_empty() {
            PathBuf::from(&name)
        } else {
            Path::new(rel_dir).join(&name)
        };
        append_entry(builder, &path, &tar_path, &meta)?;
        if meta.is_dir() {
            walk(builder, plan, &rel, &info)?;
        }
    }
    Ok(())
}

fn append_entry<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    tar_path: &Path,
    meta: &fs::Metadata,
) -> Result<(), ContextError> {
    let io_err = |e: io::Error| ContextError::io(path, &e);
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    // Like the Docker CLI: files belong to root in the context.
    header.set_uid(0);
    header.set_gid(0);
    let ft = meta.file_type();
    if ft.is_symlink() {
        // Sent as a link, never followed: a link out of the folder is just a link.
        let target = fs::read_link(path).map_err(io_err)?;
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, tar_path, &target)
            .map_err(io_err)?;
    } else if ft.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        builder
            .append_data(&mut header, tar_path, io::empty())
            .map_err(io_err)?;
    } else if ft.is_file() {
        let size = meta.len();
        let file = fs::File::open(path).map_err(io_err)?;
        // Exactly `size` bytes even if the file changes while it is read.
        let data = file.take(size).chain(io::repeat(0)).take(size);
        header.set_size(size);
        builder
            .append_data(&mut header, tar_path, data)
            .map_err(io_err)?;
    }
    // Sockets, FIFOs and devices are not sent.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(root: &Path, dockerfile: &str) -> Vec<String> {
        let plan = plan(root, dockerfile)
            .unwrap_or_else(|e| panic!("{}: {}", e.path.display(), e.message));
        let mut buf = Vec::new();
        write_tar(&plan, &mut buf).unwrap_or_else(|e| panic!("{}", e.message));
        let mut ar = tar::Archive::new(&buf[..]);
        let mut out = Vec::new();
        for e in ar.entries().unwrap_or_else(|e| panic!("{e}")) {
            let e = e.unwrap_or_else(|e| panic!("{e}"));
            let p = e
                .path()
                .unwrap_or_else(|e| panic!("{e}"))
                .to_string_lossy()
                .to_string();
            out.push(p.trim_end_matches('/').to_string());
        }
        out
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        fs::write(p, content).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn excluded_dir_with_exception_and_build_files() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = tmp.path();
        write(r, "Dockerfile", "FROM scratch\n");
        write(
            r,
            ".dockerignore",
            "*\n!src\nsrc/*.tmp\ndocs\n!docs/keep.md\n",
        );
        write(r, "src/a.rs", "");
        write(r, "src/b.tmp", "");
        write(r, "docs/keep.md", "");
        write(r, "docs/drop.md", "");
        write(r, "top.txt", "");
        let got = names(r, "Dockerfile");
        assert_eq!(
            got,
            vec![
                ".dockerignore",
                "Dockerfile",
                "docs/keep.md",
                "src",
                "src/a.rs"
            ]
        );
    }

    #[test]
    fn long_names_and_symlinks() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = tmp.path();
        write(r, "Dockerfile", "FROM scratch\n");
        let long = format!("{}/{}.txt", "d".repeat(120), "f".repeat(120));
        write(r, &long, "x");
        std::os::unix::fs::symlink("/etc/passwd", r.join("link")).unwrap_or_else(|e| panic!("{e}"));
        let got = names(r, "Dockerfile");
        assert!(got.contains(&long), "{got:?}");
        assert!(got.contains(&"link".to_string()), "{got:?}");
    }

    /// Peak resident memory of this process, in KiB (Linux).
    fn vm_hwm_kib() -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// A 1 GiB (sparse) context streams through with a small, bounded peak
    /// memory: the tar is never held whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_context_streams_in_bounded_memory() {
        use futures_util::StreamExt;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = tmp.path();
        write(r, "Dockerfile", "FROM scratch\n");
        let size: u64 = 1 << 30;
        fs::File::create(r.join("big.bin"))
            .and_then(|f| f.set_len(size))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = plan(r, "Dockerfile").unwrap_or_else(|e| panic!("{}", e.message));
        let before = vm_hwm_kib();
        let (body, producer) = stream(plan);
        let mut body = Box::pin(body);
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.unwrap_or_else(|e| panic!("{e}"));
            assert!(chunk.len() <= CHUNK_SIZE);
            total += chunk.len() as u64;
        }
        producer
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert!(total > size, "{total}");
        let grown_kib = vm_hwm_kib().saturating_sub(before);
        assert!(grown_kib < 32 * 1024, "peak memory grew by {grown_kib} KiB");
    }

    /// Dropping the body (a cancelled build) stops the producer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_body_stops_the_producer() {
        use futures_util::StreamExt;
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = tmp.path();
        write(r, "Dockerfile", "FROM scratch\n");
        fs::File::create(r.join("big.bin"))
            .and_then(|f| f.set_len(1 << 30))
            .unwrap_or_else(|e| panic!("{e}"));
        let plan = plan(r, "Dockerfile").unwrap_or_else(|e| panic!("{}", e.message));
        let (body, producer) = stream(plan);
        let mut body = Box::pin(body);
        assert!(body.next().await.is_some());
        drop(body);
        let result = tokio::time::timeout(std::time::Duration::from_secs(10), producer)
            .await
            .unwrap_or_else(|_| panic!("producer kept running"))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = result
            .err()
            .unwrap_or_else(|| panic!("producer finished a 1 GiB tar"));
        assert!(err.message.contains("dropped"), "{}", err.message);
    }

    #[test]
    fn dockerfile_must_stay_inside() {
        assert_eq!(
            dockerfile_in_context("Dockerfile").as_deref(),
            Some("Dockerfile")
        );
        assert_eq!(
            dockerfile_in_context("./a/../b/Df").as_deref(),
            Some("b/Df")
        );
        assert_eq!(dockerfile_in_context("../Dockerfile"), None);
        assert_eq!(dockerfile_in_context("/abs/Dockerfile"), None);
    }
}
