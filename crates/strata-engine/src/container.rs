//! A long-lived container for declarative image tests, and an image's config.
//!
//! [`Engine::start_test_container`] starts one container of an image that
//! a set of tests then runs commands in ([`TestContainer::exec`]) and reads
//! files of ([`TestContainer::stat`], [`TestContainer::read_file`]) through
//! the engine's archive endpoint, so the image needs nothing but `/bin/sh`
//! and `sleep` for the container to idle in.

use std::pin::pin;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::DownloadFromContainerOptions;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use strata_structure::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG};
use tar::EntryType;

use crate::engine::Engine;
use crate::error::{EngineError, Result, server_error};
use crate::run::ContainerGuard;

/// The largest file [`TestContainer::read_file`] reads: 16 MiB.
pub const MAX_READ_FILE: u64 = 16 * 1024 * 1024;

/// The largest tar extension record (a PAX header, a GNU long name) read
/// ahead of the first entry's own header.
const MAX_EXTENSION: u64 = 1024 * 1024;

/// How many symbolic links [`TestContainer::read_file`] follows, as Linux does.
const MAX_SYMLINKS: usize = 40;

/// A container of an image kept running for a set of tests, force-removed by
/// [`TestContainer::remove`] or, if dropped, on the runtime.
///
/// It idles in `/bin/sh -c` [`crate::IDLE_SCRIPT`] with the image's user,
/// working directory and environment, and carries
/// [`crate::RUN_LABEL`]`=<run id>`. When it is dropped without
/// [`TestContainer::remove`], its removal is spawned on the current tokio
/// runtime; a runtime that shuts down first may not get to it, which
/// [`Engine::remove_containers`] catches.
pub struct TestContainer {
    engine: Engine,
    id: String,
    guard: ContainerGuard,
}

impl std::fmt::Debug for TestContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContainer")
            .field("id", &self.id)
            .field("run_id", &self.engine.run_id())
            .finish()
    }
}

// The test container speaks the structure-test runner's types: it is what
// `strata_structure::run` drives.
pub use strata_structure::{ExecOutput, FileStat, ImageConfig};

impl Engine {
    /// Creates and starts a container of `image` idling in `/bin/sh`
    /// (labelled [`crate::RUN_LABEL`]`=<run id>`), for a set of tests to
    /// use until [`TestContainer::remove`].
    ///
    /// A missing image is [`EngineError::NotFound`] (nothing is pulled); a
    /// container that cannot start (no `/bin/sh`, an unknown `USER`) is
    /// removed again and its error returned.
    pub async fn start_test_container(&self, image: &str) -> Result<TestContainer> {
        let (id, guard) = self.create_idle_container(image).await?;
        if let Err(err) = self.start_container(&id).await {
            let _ = guard.remove().await;
            return Err(err);
        }
        Ok(TestContainer {
            engine: self.clone(),
            id,
            guard,
        })
    }

    /// The image's config: env, labels, entrypoint, cmd, exposed ports,
    /// volumes, workdir, user. An image that is not present locally is
    /// [`EngineError::NotFound`].
    pub async fn image_config(&self, reference: &str) -> Result<ImageConfig> {
        let raw = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(|e| self.map_err("inspect image", &format!("image {reference}"), e))?;
        let config = raw.config.unwrap_or_default();
        let sorted = |list: Option<Vec<String>>| {
            let mut list = list.unwrap_or_default();
            list.sort();
            list.dedup();
            list
        };
        Ok(ImageConfig {
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            entrypoint: config.entrypoint,
            cmd: config.cmd,
            exposed_ports: sorted(config.exposed_ports),
            volumes: sorted(config.volumes),
            workdir: config.working_dir.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
        })
    }
}

/// The first entry of a container archive.
struct FirstEntry {
    stat: FileStat,
    kind: EntryType,
    /// The size of its content.
    size: u64,
    /// Where its content starts in the archive.
    data_offset: usize,
    /// A link's target.
    link_name: Option<String>,
}

impl TestContainer {
    /// The container's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs `argv` without a shell (`argv[0]` looked up in the container's
    /// `PATH`), as the image's user in its working directory, with the extra
    /// environment variables `env` (`("K", "V")`, set on top of the image's).
    ///
    /// Standard output and standard error are kept apart. A failing command
    /// is an [`ExecOutput`] with its exit code, not an error; an empty
    /// `argv` or a variable name that is empty or holds `=` is
    /// [`EngineError::InvalidRequest`].
    pub async fn exec(&self, argv: &[String], env: &[(String, String)]) -> Result<ExecOutput> {
        if argv.is_empty() {
            return Err(EngineError::InvalidRequest {
                message: "exec: no command given".to_string(),
            });
        }
        let mut vars = Vec::with_capacity(env.len());
        for (name, value) in env {
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                return Err(EngineError::InvalidRequest {
                    message: format!("exec: invalid environment variable name {name:?}"),
                });
            }
            vars.push(format!("{name}={value}"));
        }
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let exit_code = self
            .engine
            .exec_argv(&self.id, argv, vars, |chunk| match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.extend_from_slice(&message);
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            })
            .await?;
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            exit_code,
        })
    }

    /// The mode (Unix `st_mode`, file-type bits included), uid and gid of
    /// `path`, not following a final symbolic link; `None` when it does not
    /// exist, or when a part of it that should be a folder is a file.
    ///
    /// Read from the first tar header of the engine's archive of `path`
    /// (`GET /containers/{id}/archive`); the rest of the archive is not
    /// transferred, so a stat of a large directory costs no more than one of
    /// a file.
    pub async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        let mut buf = Vec::new();
        Ok(self
            .first_entry(path, &mut buf, None)
            .await?
            .map(|entry| entry.stat))
    }

    /// The content of the regular file at `path`, following symbolic links
    /// (at most 40); `None` when it (or a link's target) does not exist.
    /// A loop of links is an error (the engine's own, as a rule: it resolves
    /// a link's target to describe the link).
    ///
    /// A directory or any other kind of file is
    /// [`EngineError::InvalidRequest`], and so is a file larger than
    /// [`MAX_READ_FILE`] (the message names the path and its size); neither
    /// transfers more than the archive's first header.
    pub async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let mut current = path.to_string();
        for _ in 0..=MAX_SYMLINKS {
            let mut buf = Vec::new();
            let Some(entry) = self
                .first_entry(&current, &mut buf, Some(MAX_READ_FILE))
                .await?
            else {
                return Ok(None);
            };
            let not_a_file = |what: &str| EngineError::InvalidRequest {
                message: format!("read_file {path}: {current} is {what}, not a regular file"),
            };
            match entry.kind {
                EntryType::Symlink => {
                    let target = entry.link_name.unwrap_or_default();
                    current = resolve_link(&current, &target);
                }
                EntryType::Directory => return Err(not_a_file("a directory")),
                EntryType::Char | EntryType::Block => return Err(not_a_file("a device")),
                EntryType::Fifo => return Err(not_a_file("a FIFO")),
                _ if !entry.stat.is_file() => return Err(not_a_file("a special file")),
                _ => {
                    let end = entry.data_offset + entry.size as usize;
                    return Ok(Some(buf[entry.data_offset..end].to_vec()));
                }
            }
        }
        Err(EngineError::InvalidRequest {
            message: format!("read_file {path}: more than {MAX_SYMLINKS} symbolic links"),
        })
    }

    /// Force-removes the container (and its anonymous volumes).
    pub async fn remove(self) -> Result<()> {
        self.guard.remove().await
    }

    /// Reads the first entry of the engine's archive of `path` into `buf`:
    /// its headers and, with `content_limit`, the content of a regular file
    /// (larger than the limit is an error). Drops the rest of the stream.
    async fn first_entry(
        &self,
        path: &str,
        buf: &mut Vec<u8>,
        content_limit: Option<u64>,
    ) -> Result<Option<FirstEntry>> {
        let what = || format!("{path} in container {}", self.id);
        let bad_archive = |why: String| EngineError::Api {
            operation: "container archive",
            message: format!("{}: {why}", what()),
        };
        let stream = self.engine.docker.download_from_container(
            &self.id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut stream = pin!(stream);
        let mut fill = async |buf: &mut Vec<u8>, len: usize| -> Result<Option<bool>> {
            match fill_to(&mut stream, buf, len).await {
                Ok(full) => Ok(Some(full)),
                Err(err) => match server_error(&err) {
                    // The path is absent (the container itself missing is an
                    // error), or a file stands where it has a folder.
                    Some((404, message)) if !message.contains("No such container") => Ok(None),
                    Some((_, message)) if message.ends_with(": not a directory") => Ok(None),
                    _ => Err(self.engine.map_err("container archive", &what(), err)),
                },
            }
        };

        // Skip the extension records (PAX headers, GNU long names) that may
        // stand before the entry's own header; the tar crate applies them.
        let mut header_end = 0usize;
        loop {
            match fill(buf, header_end + 512).await? {
                None => return Ok(None),
                Some(false) => return Err(bad_archive("the archive ends early".to_string())),
                Some(true) => {}
            }
            let header = tar::Header::from_byte_slice(&buf[header_end..header_end + 512]);
            header_end += 512;
            match header.entry_type() {
                EntryType::XHeader
                | EntryType::XGlobalHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink => {
                    let size = header
                        .entry_size()
                        .map_err(|e| bad_archive(e.to_string()))?;
                    if size > MAX_EXTENSION {
                        return Err(bad_archive(format!("a {size}-byte tar extension record")));
                    }
                    header_end += size.div_ceil(512) as usize * 512;
                }
                _ => break,
            }
        }

        let entry = parse_first_entry(&buf[..header_end])
            .map_err(|e| bad_archive(format!("invalid tar header: {e}")))?
            .ok_or_else(|| bad_archive("the archive is empty".to_string()))?;
        if let Some(limit) = content_limit
            && entry.stat.is_file()
        {
            if entry.size > limit {
                return Err(EngineError::InvalidRequest {
                    message: format!(
                        "read_file {path}: {} bytes, over its limit of {limit} bytes",
                        entry.size
                    ),
                });
            }
            let end = entry.data_offset + entry.size as usize;
            match fill(buf, end).await? {
                Some(true) => {}
                // Gone between the header and its content: not an absent path.
                _ => return Err(bad_archive("the archive ends early".to_string())),
            }
        }
        Ok(Some(entry))
    }
}

/// Pulls chunks of `stream` into `buf` until it holds at least `len` bytes;
/// false when the stream ends first.
async fn fill_to<S>(stream: &mut S, buf: &mut Vec<u8>, len: usize) -> Result<bool, BollardError>
where
    S: Stream<Item = Result<Bytes, BollardError>> + Unpin,
{
    while buf.len() < len {
        match stream.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The first entry of a tar archive whose headers `bytes` hold (its
/// content need not be there).
fn parse_first_entry(bytes: &[u8]) -> std::io::Result<Option<FirstEntry>> {
    let mut archive = tar::Archive::new(bytes);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(None);
    };
    let mut entry = entry?;
    let header = entry.header();
    let kind = header.entry_type();
    let raw_mode = header.mode()?;
    let (mut uid, mut gid) = (header.uid()?, header.gid()?);
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions.flatten() {
            let value = || extension.value().ok().and_then(|v| v.parse::<u64>().ok());
            match extension.key() {
                Ok("uid") => uid = value().unwrap_or(uid),
                Ok("gid") => gid = value().unwrap_or(gid),
                _ => {}
            }
        }
    }
    let link_name = entry.link_name()?.map(|p| p.to_string_lossy().into_owned());
    Ok(Some(FirstEntry {
        stat: FileStat {
            mode: st_mode(kind, raw_mode),
            uid,
            gid,
        },
        kind,
        size: entry.size(),
        data_offset: usize::try_from(entry.raw_file_position()).unwrap_or(usize::MAX),
        link_name,
    }))
}

/// The Unix `st_mode` of a tar entry: its type (from the entry type; the
/// mode field of some writers also carries it, of others not) and the
/// permission, setuid, setgid and sticky bits of its mode field.
fn st_mode(kind: EntryType, raw_mode: u32) -> u32 {
    let file_type = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse | EntryType::Link => {
            S_IFREG
        }
        EntryType::Directory => S_IFDIR,
        EntryType::Symlink => S_IFLNK,
        EntryType::Char => S_IFCHR,
        EntryType::Block => S_IFBLK,
        EntryType::Fifo => S_IFIFO,
        _ => raw_mode & S_IFMT,
    };
    file_type | (raw_mode & 0o7777)
}

/// The path a symbolic link at `link` pointing to `target` leads to.
fn resolve_link(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_string();
    }
    let link = link.trim_end_matches('/');
    match link.rfind('/') {
        Some(slash) => format!("{}/{target}", &link[..slash]),
        None => target.to_string(),
    }
}

impl strata_structure::Container for TestContainer {
    type Error = EngineError;

    fn exec(
        &self,
        argv: &[String],
        env: &[(String, String)],
    ) -> impl std::future::Future<Output = Result<ExecOutput>> + Send {
        TestContainer::exec(self, argv, env)
    }

    fn stat(
        &self,
        path: &str,
    ) -> impl std::future::Future<Output = Result<Option<FileStat>>> + Send {
        TestContainer::stat(self, path)
    }

    fn read_file(
        &self,
        path: &str,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>>> + Send {
        TestContainer::read_file(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_entry_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> FirstEntry {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        let bytes = builder.into_inner().expect("tar");
        parse_first_entry(&bytes).expect("parse").expect("an entry")
    }

    fn header(kind: EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_size(size);
        h
    }

    #[test]
    fn file_types_and_special_bits_make_the_st_mode() {
        let cases = [
            (EntryType::Regular, 0o4755, 0o104755),
            (EntryType::Directory, 0o1777, 0o041777),
            (EntryType::Symlink, 0o777, 0o120777),
            (EntryType::Char, 0o666, 0o020666),
            (EntryType::Block, 0o660, 0o060660),
            (EntryType::Fifo, 0o2644, 0o012644),
        ];
        for (kind, mode, expected) in cases {
            assert_eq!(st_mode(kind, mode), expected, "{kind:?}");
            // Writers that put the type bits in the mode field too agree.
            assert_eq!(st_mode(kind, mode | (expected & S_IFMT)), expected);
        }
    }

    #[test]
    fn the_first_entry_is_read_from_its_header_alone() {
        let entry = first_entry_of(|b| {
            let mut h = header(EntryType::Regular, 0o2750, 5);
            b.append_data(&mut h, "f", &b"hello"[..]).expect("append");
        });
        assert_eq!(
            entry.stat,
            FileStat {
                mode: 0o102750,
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!((entry.size, entry.data_offset), (5, 512));
        // Only the header is needed.
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = header(EntryType::Regular, 0o644, 4096);
        builder
            .append_data(&mut h, "big", &[0u8; 4096][..])
            .expect("append");
        let bytes = builder.into_inner().expect("tar");
        let entry = parse_first_entry(&bytes[..512])
            .expect("parse")
            .expect("entry");
        assert_eq!(entry.size, 4096);
    }

    #[test]
    fn long_names_and_link_targets_come_through_extension_records() {
        let long = "d/".repeat(80) + "link";
        let target = "t/".repeat(80) + "target";
        let entry = first_entry_of(|b| {
            let mut h = header(EntryType::Symlink, 0o777, 0);
            b.append_link(&mut h, &long, &target).expect("append");
        });
        assert!(entry.stat.is_symlink(), "{:o}", entry.stat.mode);
        assert_eq!(entry.link_name.as_deref(), Some(target.as_str()));
        assert!(entry.data_offset > 512);
    }

    #[test]
    fn pax_uid_and_gid_win() {
        let entry = first_entry_of(|b| {
            // Records are "<length> <key>=<value>\n", the length counting itself.
            let records = "15 uid=4000000\n15 gid=4000001\n";
            let mut pax = header(EntryType::XHeader, 0o644, records.len() as u64);
            b.append_data(&mut pax, "PaxHeader/f", records.as_bytes())
                .expect("pax");
            let mut h = header(EntryType::Regular, 0o644, 0);
            b.append_data(&mut h, "f", &b""[..]).expect("append");
        });
        assert_eq!((entry.stat.uid, entry.stat.gid), (4_000_000, 4_000_001));
    }

    #[test]
    fn links_resolve_against_their_folder() {
        assert_eq!(resolve_link("/a/b/link", "target"), "/a/b/target");
        assert_eq!(resolve_link("/a/link", "../c"), "/a/../c");
        assert_eq!(resolve_link("/link", "/abs/x"), "/abs/x");
        assert_eq!(resolve_link("/link", "rel"), "/rel");
    }
}
