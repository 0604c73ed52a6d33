//! An in-memory driver for the runner's tests, and a tiny executor.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::{Future, ready};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use strata_structure::{
    ArchiveEntry, ContainerSpec, Driver, DriverError, EntryKind, ExecOutput, FileStat, HostOptions,
    ImageConfig, Step,
};

pub const REG: u32 = 0o100_000;
pub const DIR: u32 = 0o040_000;
pub const LNK: u32 = 0o120_000;

/// Polls `future` to completion; the fake's futures are always ready.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// What the fake was asked, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Run { image: String, spec: ContainerSpec },
    Commit { image: String, spec: ContainerSpec },
    Archive { image: String, path: String },
    Remove { image: String },
}

type Handler = Box<dyn Fn(&ContainerSpec) -> Result<ExecOutput, DriverError> + Send + Sync>;

/// An engine whose image has a map of files and whose commands are a
/// function; committed images are named `commit-N`.
pub struct Fake {
    pub config: ImageConfig,
    pub files: BTreeMap<String, (EntryKind, FileStat, Vec<u8>, Option<String>)>,
    pub handler: Handler,
    pub calls: Mutex<Vec<Call>>,
}

impl Fake {
    pub fn new(config: ImageConfig) -> Fake {
        Fake {
            config,
            files: BTreeMap::new(),
            handler: Box::new(|spec| {
                Err(DriverError::new(
                    Step::CreateContainer,
                    format!(
                        "API error (400): exec: \"{}\": executable file not found in $PATH",
                        spec.argv[0]
                    ),
                ))
            }),
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn handler(
        mut self,
        handler: impl Fn(&ContainerSpec) -> Result<ExecOutput, DriverError> + Send + Sync + 'static,
    ) -> Fake {
        self.handler = Box::new(handler);
        self
    }

    pub fn file(mut self, path: &str, mode: u32, uid: u64, gid: u64, content: &[u8]) -> Fake {
        let kind = if mode & 0o170_000 == DIR {
            EntryKind::Directory
        } else {
            EntryKind::Regular
        };
        self.files.insert(
            path.to_string(),
            (kind, FileStat { mode, uid, gid }, content.to_vec(), None),
        );
        self
    }

    pub fn link(mut self, path: &str, target: &str) -> Fake {
        self.files.insert(
            path.to_string(),
            (
                EntryKind::Symlink,
                FileStat {
                    mode: LNK | 0o777,
                    uid: 0,
                    gid: 0,
                },
                Vec::new(),
                Some(target.to_string()),
            ),
        );
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Driver for Fake {
    fn config(&self, _: &str) -> impl Future<Output = Result<ImageConfig, DriverError>> + Send {
        ready(Ok(self.config.clone()))
    }

    fn run(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<ExecOutput, DriverError>> + Send {
        self.record(Call::Run {
            image: image.to_string(),
            spec: spec.clone(),
        });
        ready((self.handler)(spec))
    }

    fn run_and_commit(
        &self,
        image: &str,
        spec: &ContainerSpec,
    ) -> impl Future<Output = Result<String, DriverError>> + Send {
        self.record(Call::Commit {
            image: image.to_string(),
            spec: spec.clone(),
        });
        let n = self.calls().len();
        ready((self.handler)(spec).map(|_| format!("commit-{n}")))
    }

    fn archive_entry(
        &self,
        image: &str,
        path: &str,
        _: &HostOptions,
        _: bool,
    ) -> impl Future<Output = Result<ArchiveEntry, DriverError>> + Send {
        self.record(Call::Archive {
            image: image.to_string(),
            path: path.to_string(),
        });
        // The engine reads a path from the root, `..` resolved.
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                part => parts.push(part),
            }
        }
        let rooted = format!("/{}", parts.join("/"));
        ready(match self.files.get(&rooted) {
            Some((kind, stat, content, link)) => Ok(ArchiveEntry {
                name: path.rsplit('/').next().unwrap_or(path).to_string(),
                kind: *kind,
                stat: *stat,
                link_name: link.clone(),
                content: Some(content.clone()),
            }),
            None => Err(DriverError {
                step: Step::Archive,
                reason: format!("API error (404): Could not find the file {path} in container c1"),
                not_found: true,
            }),
        })
    }

    fn archive_dirs(
        &self,
        _: &str,
        path: &str,
        _: &HostOptions,
    ) -> impl Future<Output = Result<Vec<String>, DriverError>> + Send {
        let prefix = format!("{path}/");
        let base = path.rsplit('/').next().unwrap_or(path);
        let mut dirs = vec![format!("{base}/")];
        dirs.extend(self.files.iter().filter_map(|(p, (kind, ..))| {
            let rest = p.strip_prefix(&prefix)?;
            (*kind == EntryKind::Directory).then(|| format!("{base}/{rest}/"))
        }));
        ready(Ok(dirs))
    }

    fn remove_image(&self, image: &str) -> impl Future<Output = Result<(), DriverError>> + Send {
        self.record(Call::Remove {
            image: image.to_string(),
        });
        ready(Ok(()))
    }
}

pub fn out(stdout: &str, stderr: &str, exit_code: i64) -> ExecOutput {
    ExecOutput {
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
        exit_code,
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A config like a Jupyter notebook image's.
pub fn notebook_config() -> ImageConfig {
    ImageConfig {
        env: strings(&[
            "PATH=/opt/conda/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME=/home/jovyan",
            "CONDA_DIR=/opt/conda",
            "NB_USER=jovyan",
            "PYTHON_VERSION=3.12.7",
        ]),
        labels: [
            ("maintainer", "Jupyter Project <jupyter@googlegroups.com>"),
            ("org.opencontainers.image.version", "2024-11-04"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        entrypoint: Some(strings(&["tini", "-g", "--"])),
        cmd: Some(strings(&["start-notebook.py"])),
        exposed_ports: strings(&["8888/tcp"]),
        volumes: Vec::new(),
        workdir: "/home/jovyan".to_string(),
        user: "1000".to_string(),
    }
}
