//! An in-memory container for the runner's tests, and a tiny executor.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::{Future, ready};
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use strata_structure::{Container, ExecOutput, FileStat, ImageConfig};

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

/// One exec call as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

type Handler =
    Box<dyn Fn(&[String], &[(String, String)]) -> Result<ExecOutput, String> + Send + Sync>;

/// A container whose files are a map and whose commands are a function.
pub struct Fake {
    pub files: BTreeMap<String, (FileStat, Option<Vec<u8>>)>,
    pub handler: Handler,
    pub calls: Mutex<Vec<Call>>,
    /// When set, every call fails with this error.
    pub broken: Option<String>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake {
            files: BTreeMap::new(),
            handler: Box::new(|argv, _| {
                Ok(ExecOutput {
                    stdout: String::new(),
                    stderr: format!("{}: not found\n", argv[0]),
                    exit_code: 127,
                })
            }),
            calls: Mutex::new(Vec::new()),
            broken: None,
        }
    }
}

impl Fake {
    pub fn with_handler(
        handler: impl Fn(&[String], &[(String, String)]) -> Result<ExecOutput, String>
        + Send
        + Sync
        + 'static,
    ) -> Fake {
        Fake {
            handler: Box::new(handler),
            ..Fake::default()
        }
    }

    pub fn broken(error: &str) -> Fake {
        Fake {
            broken: Some(error.to_string()),
            ..Fake::default()
        }
    }

    pub fn file(mut self, path: &str, mode: u32, uid: u64, gid: u64, content: &[u8]) -> Fake {
        self.files.insert(
            path.to_string(),
            (FileStat { mode, uid, gid }, Some(content.to_vec())),
        );
        self
    }

    pub fn dir(mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Fake {
        self.files.insert(
            path.to_string(),
            (
                FileStat {
                    mode: DIR | mode,
                    uid,
                    gid,
                },
                None,
            ),
        );
        self
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

impl Container for Fake {
    type Error = String;

    fn exec(
        &self,
        argv: &[String],
        env: &[(String, String)],
    ) -> impl Future<Output = Result<ExecOutput, String>> + Send {
        self.calls.lock().unwrap().push(Call {
            argv: argv.to_vec(),
            env: env.to_vec(),
        });
        ready(match &self.broken {
            Some(e) => Err(e.clone()),
            None => (self.handler)(argv, env),
        })
    }

    fn stat(&self, path: &str) -> impl Future<Output = Result<Option<FileStat>, String>> + Send {
        ready(match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(self.files.get(path).map(|(stat, _)| *stat)),
        })
    }

    fn read_file(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, String>> + Send {
        ready(match &self.broken {
            Some(e) => Err(e.clone()),
            None => Ok(self
                .files
                .get(path)
                .and_then(|(_, content)| content.clone())),
        })
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
