//! Structure tests on the engine, as CST's docker driver runs them, and an
//! image's config.
//!
//! [`Engine`] implements [`strata_structure::Driver`]: a command runs as the
//! command of a container of its own (the image's entrypoint cleared, so no
//! shell is needed in the image), its output read from the container's
//! logs; files are read from the engine's archive of a container that is
//! created and never started. Every container carries
//! [`crate::RUN_LABEL`]`=<run id>` and is removed once its step is done.

use std::pin::pin;

use std::collections::HashMap;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CommitContainerOptions, DownloadFromContainerOptions,
    RemoveImageOptions,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use strata_structure::{
    ArchiveEntry, ContainerSpec, DriverError, EntryKind, HostOptions, S_IFBLK, S_IFCHR, S_IFDIR,
    S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, Step,
};
use tar::EntryType;

use crate::RUN_LABEL;
use crate::engine::Engine;
use crate::error::{Result, server_error};
use crate::run::ContainerGuard;

/// The largest file a structure test reads: 16 MiB.
pub const MAX_READ_FILE: u64 = 16 * 1024 * 1024;

/// The largest tar extension record (a PAX header, a GNU long name) read
/// ahead of the first entry's own header.
const MAX_EXTENSION: u64 = 1024 * 1024;

/// The command of a container that is created to read its files and never
/// started (the engine wants one when the image has none): CST's.
const NOOP_COMMAND: &str = "NOOP_COMMAND_DO_NOT_RUN";

/// The largest archive of a folder a licence test reads: 256 MiB.
const MAX_FOLDER_ARCHIVE: usize = 256 * 1024 * 1024;

// The engine speaks the structure-test runner's types: it is what
// `strata_structure::run` drives.
pub use strata_structure::{ExecOutput, FileStat, ImageConfig};

impl Engine {
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
    /// Its name in the archive.
    name: String,
}

impl Engine {
    /// Reads the first entry of the engine's archive of `path` into `buf`:
    /// its headers and, with `content_limit`, the content of a regular file
    /// (larger than the limit is an error). Drops the rest of the stream.
    async fn first_entry(
        &self,
        container: &str,
        path: &str,
        buf: &mut Vec<u8>,
        content_limit: Option<u64>,
    ) -> std::result::Result<FirstEntry, DriverError> {
        let what = || format!("{path} in container {container}");
        let bad_archive =
            |why: String| DriverError::new(Step::Archive, format!("{}: {why}", what()));
        let stream = self.docker.download_from_container(
            container,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut stream = pin!(stream);
        let fill = async |stream: &mut _, buf: &mut Vec<u8>, len: usize| {
            fill_to(stream, buf, len).await.map_err(|err| {
                let mut e = driver_error(Step::Archive, &err);
                // The path is absent (the container itself missing is an
                // error), or a file stands where it has a folder.
                e.not_found = matches!(server_error(&err),
                    Some((404, message)) if !message.contains("No such container"))
                    || matches!(server_error(&err),
                        Some((_, message)) if message.ends_with(": not a directory"));
                e
            })
        };

        // Skip the extension records (PAX headers, GNU long names) that may
        // stand before the entry's own header; the tar crate applies them.
        let mut header_end = 0usize;
        loop {
            if !fill(&mut stream, buf, header_end + 512).await? {
                return Err(bad_archive("the archive ends early".to_string()));
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
                return Err(bad_archive(format!(
                    "{} bytes, over the limit of {limit} bytes a structure test reads",
                    entry.size
                )));
            }
            let end = entry.data_offset + entry.size as usize;
            if !fill(&mut stream, buf, end).await? {
                return Err(bad_archive("the archive ends early".to_string()));
            }
        }
        Ok(entry)
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
    let name = entry.path()?.to_string_lossy().into_owned();
    Ok(Some(FirstEntry {
        name,
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

/// The engine's reason for a failed step, as CST's Docker client words it:
/// `API error (<status>): <message>` for an answer of the engine, the
/// error itself otherwise.
fn driver_error(step: Step, err: &BollardError) -> DriverError {
    let reason = match server_error(err) {
        Some((status, message)) => format!("API error ({status}): {message}"),
        None => err.to_string(),
    };
    DriverError::new(step, reason)
}

fn kind_of(entry: EntryType) -> EntryKind {
    match entry {
        EntryType::Directory => EntryKind::Directory,
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => EntryKind::Regular,
        EntryType::Link => EntryKind::HardLink,
        EntryType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Other,
    }
}

impl Engine {
    /// Creates a container of `image` labelled with the run, as `spec` (or,
    /// without one, with CST's never-run command) says; returns its id and
    /// the guard that removes it.
    async fn create_structure_container(
        &self,
        image: &str,
        spec: Option<&ContainerSpec>,
        host: &HostOptions,
    ) -> std::result::Result<(String, ContainerGuard), DriverError> {
        let labels = HashMap::from([
            (RUN_LABEL.to_string(), self.run_id.clone()),
            ("io.strata.managed".to_string(), "true".to_string()),
        ]);
        let host_config = HostConfig {
            privileged: Some(host.privileged),
            // Added to the engine's default set: the `Capabilities` field CST
            // sends is one Docker 20.10 and later ignore without a word.
            cap_add: (!host.capabilities.is_empty()).then(|| host.capabilities.clone()),
            binds: (!host.bind_mounts.is_empty()).then(|| host.bind_mounts.clone()),
            ..Default::default()
        };
        let body = match spec {
            Some(spec) => ContainerCreateBody {
                image: Some(image.to_string()),
                // The command is the container's own: no entrypoint, no shell.
                entrypoint: Some(vec![String::new()]),
                cmd: Some(spec.argv.clone()),
                env: (!spec.env.is_empty()).then(|| spec.env.clone()),
                user: spec.user.clone(),
                tty: Some(spec.tty),
                labels: Some(labels),
                host_config: Some(host_config),
                ..Default::default()
            },
            None => ContainerCreateBody {
                image: Some(image.to_string()),
                cmd: Some(vec![NOOP_COMMAND.to_string()]),
                labels: Some(labels),
                host_config: Some(host_config),
                ..Default::default()
            },
        };
        let created = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| driver_error(Step::CreateContainer, &e))?;
        let guard = ContainerGuard {
            engine: self.clone(),
            id: Some(created.id.clone()),
        };
        Ok((created.id, guard))
    }

    /// Starts container `id` and waits for its end: its exit code.
    async fn run_to_end(&self, id: &str) -> std::result::Result<i64, DriverError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| driver_error(Step::CreateContainer, &e))?;
        self.exit_code(id).await
    }

    /// Waits for container `id`'s end: its exit code.
    async fn exit_code(&self, id: &str) -> std::result::Result<i64, DriverError> {
        let mut waits = pin!(self.docker.wait_container(id, None));
        match waits.next().await {
            Some(Ok(answer)) => Ok(answer.status_code),
            // bollard reports a non-zero exit as an error carrying its code.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(driver_error(Step::WaitContainer, &e)),
            None => Err(DriverError::new(
                Step::WaitContainer,
                "the engine's answer ended without an exit code",
            )),
        }
    }

    /// Starts container `id` attached to its output, as CST's driver runs
    /// a command, and waits for its end: its output, stdout and stderr kept
    /// apart, and exit code. The output is read as it streams, not from the
    /// engine's log files, which a full disk leaves empty.
    ///
    /// Only the stream is asked for, not the log history as well: the engine
    /// wires the stream to the container before it answers the attach, so
    /// the stream holds every byte of a container started after it, and a
    /// history read while a fast command has already written would hand the
    /// same bytes over twice.
    async fn run_attached(&self, id: &str) -> std::result::Result<ExecOutput, DriverError> {
        let options = AttachContainerOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .stream(true)
            .logs(false)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|e| driver_error(Step::Logs, &e))?;
        let mut output = attached.output;
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| driver_error(Step::CreateContainer, &e))?;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| driver_error(Step::Logs, &e))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.extend_from_slice(&message)
                }
                LogOutput::StdErr { message } => stderr.extend_from_slice(&message),
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok(ExecOutput {
            exit_code: self.exit_code(id).await?,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Reads the whole archive of `path` in container `id`.
    async fn whole_archive(
        &self,
        id: &str,
        path: &str,
    ) -> std::result::Result<Vec<u8>, DriverError> {
        let mut stream = pin!(self.docker.download_from_container(
            id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        ));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| driver_error(Step::Archive, &e))?);
            if bytes.len() > MAX_FOLDER_ARCHIVE {
                return Err(DriverError::new(
                    Step::Archive,
                    format!("the archive of {path} is over {MAX_FOLDER_ARCHIVE} bytes"),
                ));
            }
        }
        Ok(bytes)
    }
}

impl strata_structure::Driver for Engine {
    async fn config(&self, image: &str) -> std::result::Result<ImageConfig, DriverError> {
        self.image_config(image)
            .await
            .map_err(|e| DriverError::new(Step::InspectImage, e.to_string()))
    }

    async fn run(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> std::result::Result<ExecOutput, DriverError> {
        let (id, guard) = self
            .create_structure_container(image, Some(spec), &spec.host)
            .await?;
        let ran = self.run_attached(&id).await;
        let _ = guard.remove().await;
        ran
    }

    async fn run_and_commit(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> std::result::Result<String, DriverError> {
        let (id, guard) = self
            .create_structure_container(image, Some(spec), &spec.host)
            .await?;
        let committed = async {
            self.run_to_end(&id).await?;
            self.docker
                .commit_container(
                    CommitContainerOptions {
                        container: Some(id.clone()),
                        ..Default::default()
                    },
                    ContainerConfig::default(),
                )
                .await
                .map(|answer| answer.id)
                .map_err(|e| driver_error(Step::Commit, &e))
        }
        .await;
        let _ = guard.remove().await;
        committed
    }

    async fn archive_entry(
        &self,
        image: &str,
        path: &str,
        host: &HostOptions,
        content: bool,
    ) -> std::result::Result<ArchiveEntry, DriverError> {
        let (id, guard) = self.create_structure_container(image, None, host).await?;
        let mut buf = Vec::new();
        let found = self
            .first_entry(&id, path, &mut buf, content.then_some(MAX_READ_FILE))
            .await;
        let _ = guard.remove().await;
        let entry = found?;
        let content = (content && entry.stat.is_file()).then(|| {
            let end = entry.data_offset + entry.size as usize;
            buf[entry.data_offset..end].to_vec()
        });
        Ok(ArchiveEntry {
            name: entry.name,
            kind: kind_of(entry.kind),
            stat: entry.stat,
            link_name: entry.link_name,
            content,
        })
    }

    async fn archive_dirs(
        &self,
        image: &str,
        path: &str,
        host: &HostOptions,
    ) -> std::result::Result<Vec<String>, DriverError> {
        let (id, guard) = self.create_structure_container(image, None, host).await?;
        let bytes = self.whole_archive(&id, path).await;
        let _ = guard.remove().await;
        let bytes = bytes?;
        let bad = |e: std::io::Error| DriverError::new(Step::Archive, format!("{path}: {e}"));
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut dirs = Vec::new();
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            if entry.header().entry_type() == EntryType::Directory {
                dirs.push(entry.path().map_err(bad)?.to_string_lossy().into_owned());
            }
        }
        Ok(dirs)
    }

    async fn remove_image(&self, image: &str) -> std::result::Result<(), DriverError> {
        self.docker
            .remove_image(image, None::<RemoveImageOptions>, None)
            .await
            .map(|_| ())
            .map_err(|e| driver_error(Step::InspectImage, &e))
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
}
