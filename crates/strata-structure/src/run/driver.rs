//! The interface a structure-test run drives (CST's docker driver's
//! steps), and what its steps answer: the engine implements it, the tests
//! use an in-memory one.

use crate::types::RunOptions;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;

/// The step of the engine's work that failed, which CST's messages name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating or starting a container.
    CreateContainer,
    /// Waiting for a container to end.
    WaitContainer,
    /// Reading a container's output.
    Logs,
    /// Committing a container to an image.
    Commit,
    /// Reading a path from a container's archive.
    Archive,
    /// Inspecting an image.
    InspectImage,
}

/// Why the engine could not do a step. Displayed as CST's docker driver
/// words it (`Error creating container: <reason>`), `reason` being the
/// engine's own (`API error (400): ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverError {
    /// What was being done.
    pub step: Step,
    /// The engine's reason.
    pub reason: String,
    /// The engine said the path (of an archive) does not exist.
    pub not_found: bool,
}

impl DriverError {
    /// An error of `step` for `reason`.
    pub fn new(step: Step, reason: impl Into<String>) -> DriverError {
        DriverError {
            step,
            reason: reason.into(),
            not_found: false,
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wrapper = match self.step {
            Step::CreateContainer => "Error creating container",
            Step::WaitContainer => "Error when waiting for container",
            Step::Logs => "Error retrieving container logs",
            Step::Commit => "Error committing container",
            Step::Archive => "Error retrieving file from container",
            Step::InspectImage => "Error when inspecting image",
        };
        write!(f, "{wrapper}: {}", self.reason)
    }
}

impl std::error::Error for DriverError {}

/// How the containers of a file are created: `containerRunOptions` that
/// CST passes in the engine's host config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOptions {
    /// Privileged containers.
    pub privileged: bool,
    /// Capabilities added.
    pub capabilities: Vec<String>,
    /// Bind mounts, `host:container[:options]`.
    pub bind_mounts: Vec<String>,
}

impl From<&RunOptions> for HostOptions {
    fn from(o: &RunOptions) -> HostOptions {
        HostOptions {
            privileged: o.privileged,
            capabilities: o.capabilities.clone(),
            bind_mounts: o.bind_mounts.clone(),
        }
    }
}

/// A container to run to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Its command; the image's entrypoint is cleared, so `argv[0]` is the
    /// program, found in the image's `PATH` by the engine.
    pub argv: Vec<String>,
    /// Variables set on top of the image's, `KEY=VALUE`.
    pub env: Vec<String>,
    /// The user to run as, when not the image's.
    pub user: Option<String>,
    /// Whether it gets a terminal (its stderr then comes through stdout).
    pub tty: bool,
    /// The host options.
    pub host: HostOptions,
}

/// The kind of an archive entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Directory,
    /// A regular file.
    Regular,
    /// A hard link.
    HardLink,
    /// A symbolic link.
    Symlink,
    /// A device, FIFO or anything else.
    Other,
}

/// The first entry of the engine's archive of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// Its name in the archive (the path's last element).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its mode and owner.
    pub stat: FileStat,
    /// A link's target, as stored.
    pub link_name: Option<String>,
    /// A regular file's content, when asked for.
    pub content: Option<Vec<u8>>,
}

/// What the runner asks of the engine: the steps CST's docker driver takes.
/// Images are named by reference or id; every container is removed once
/// its step is done.
pub trait Driver {
    /// The image's config.
    fn config(&self, image: &str) -> impl Future<Output = Result<ImageConfig, DriverError>> + Send;

    /// Creates a container of `image` as `spec` says, runs it to its end and
    /// gives what it printed and its exit code.
    fn run(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<ExecOutput, DriverError>> + Send;

    /// Like [`Driver::run`], then commits the container: the new image's id.
    fn run_and_commit(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, DriverError>> + Send;

    /// The first entry of the archive of `path` in a container of `image`
    /// that is created (with `host`) and never started; with `content`, a
    /// regular file's bytes too.
    fn archive_entry(
        &self,
        image: &str,
        path: &str,
        host: &HostOptions,
        content: bool,
    ) -> impl Future<Output = Result<ArchiveEntry, DriverError>> + Send;

    /// The names of the directory entries of the archive of `path` (`doc/`,
    /// `doc/bash/`, ...), as for [`Driver::archive_entry`].
    fn archive_dirs(
        &self,
        image: &str,
        path: &str,
        host: &HostOptions,
    ) -> impl Future<Output = Result<Vec<String>, DriverError>> + Send;

    /// Removes an image [`Driver::run_and_commit`] made.
    fn remove_image(&self, image: &str) -> impl Future<Output = Result<(), DriverError>> + Send;
}

/// What a file's run options take from strata's own environment, read by
/// the caller: CST reads `envVars` from its process environment and
/// `envFile` from the file system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostEnv {
    /// The process environment.
    pub vars: HashMap<String, String>,
    /// The variables of the file's `envFile`, in file order, or why it
    /// could not be read (CST then warns and goes on without them).
    pub env_file: Option<Result<Vec<(String, String)>, String>>,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its exit code.
    pub exit_code: i64,
}

impl ExecOutput {
    /// True when the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// What a file test looks at: the mode and owner of an archive entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStat {
    /// The unix `st_mode`: type bits (`S_IFDIR`, `S_IFLNK`, ...) and
    /// permission bits (with setuid, setgid, sticky). For a mode in Go's
    /// encoding (Docker's container path stat), see
    /// [`crate::st_mode_from_go`].
    pub mode: u32,
    /// The owner's numeric id.
    pub uid: u64,
    /// The group's numeric id.
    pub gid: u64,
}

impl FileStat {
    /// The permission bits, setuid, setgid and sticky included.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFREG
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFDIR
    }

    /// True for a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & crate::S_IFMT == crate::S_IFLNK
    }
}

/// The image's config as the engine reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// Environment variables, each `KEY=VALUE`.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The entrypoint, if any.
    pub entrypoint: Option<Vec<String>>,
    /// The cmd, if any.
    pub cmd: Option<Vec<String>>,
    /// Exposed ports, each `PORT/PROTOCOL` (`8888/tcp`).
    pub exposed_ports: Vec<String>,
    /// Declared volumes.
    pub volumes: Vec<String>,
    /// The working directory (empty when unset).
    pub workdir: String,
    /// The user (empty when unset).
    pub user: String,
}
