//! Running commands in a throw-away container, and cleaning containers up.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{ListContainersOptions, RemoveContainerOptions};
use futures_util::StreamExt;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// The label every container strata creates carries, with the run id as value.
pub const RUN_LABEL: &str = "io.strata.run";

/// The shell loop a [`Engine::run_commands`] container idles in: it exits
/// at once on `SIGTERM` and needs nothing but `/bin/sh` and `sleep`.
pub const IDLE_SCRIPT: &str = "trap 'exit 0' TERM; while :; do sleep 1; done";

/// The result of one command run by [`Engine::run_commands`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// The command, as given.
    pub command: String,
    /// Its exit code (non-zero for a failing command; -1 if the engine did
    /// not report one).
    pub exit_code: i64,
    /// Its standard output and standard error, interleaved as produced
    /// (invalid UTF-8 replaced).
    pub output: String,
}

impl CommandOutput {
    /// True when the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Force-removes a container when dropped without [`ContainerGuard::remove`]
/// (e.g. when the future running the commands is cancelled), on the current
/// tokio runtime if there still is one.
pub(crate) struct ContainerGuard {
    pub(crate) engine: Engine,
    pub(crate) id: Option<String>,
}

impl ContainerGuard {
    /// Force-removes the container now.
    pub(crate) async fn remove(mut self) -> Result<()> {
        match self.id.take() {
            Some(id) => remove_container(&self.engine, &id).await,
            None => Ok(()),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let engine = self.engine.clone();
            handle.spawn(async move {
                let _ = remove_container(&engine, &id).await;
            });
        }
    }
}

async fn remove_container(engine: &Engine, id: &str) -> Result<()> {
    match engine
        .docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                link: false,
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(err) => match engine.map_err("remove container", id, err) {
            // Already gone (or being removed): nothing left to do.
            EngineError::NotFound { .. } => Ok(()),
            EngineError::Api { message, .. } if message.contains("already in progress") => Ok(()),
            other => Err(other),
        },
    }
}

impl Engine {
    /// Runs `commands` one after another in ONE container of `image` and
    /// returns each one's exit code and output.
    ///
    /// The container idles in `/bin/sh -c` [`IDLE_SCRIPT`] (so the image
    /// needs `/bin/sh`), each command is run with `docker exec` as
    /// `/bin/sh -c <command>`. A failing command is recorded, not an error,
    /// and the next one still runs. The container carries
    /// [`RUN_LABEL`]`=<run id>` and is force-removed afterwards, also on error;
    /// if the future is dropped, removal is started on the tokio runtime
    /// (and [`Engine::remove_containers`] catches anything left).
    pub async fn run_commands(
        &self,
        image: &str,
        commands: &[String],
    ) -> Result<Vec<CommandOutput>> {
        let (id, guard) = self.create_idle_container(image).await?;
        let result = self.exec_all(&id, commands).await;
        let removed = guard.remove().await;
        let outputs = result?;
        removed?;
        Ok(outputs)
    }

    /// Creates (without starting) a container of `image` idling in
    /// `/bin/sh -c` [`IDLE_SCRIPT`], labelled [`RUN_LABEL`]`=<run id>`, and
    /// returns its id with the guard that removes it.
    pub(crate) async fn create_idle_container(
        &self,
        image: &str,
    ) -> Result<(String, ContainerGuard)> {
        let labels = HashMap::from([
            (RUN_LABEL.to_string(), self.run_id.clone()),
            ("io.strata.managed".to_string(), "true".to_string()),
        ]);
        let created = self
            .docker
            .create_container(
                None,
                ContainerCreateBody {
                    image: Some(image.to_string()),
                    entrypoint: Some(vec![
                        "/bin/sh".to_string(),
                        "-c".to_string(),
                        IDLE_SCRIPT.to_string(),
                    ]),
                    cmd: Some(Vec::new()),
                    labels: Some(labels),
                    tty: Some(false),
                    attach_stdin: Some(false),
                    attach_stdout: Some(false),
                    attach_stderr: Some(false),
                    open_stdin: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.map_err("create container", &format!("image {image}"), e))?;
        let guard = ContainerGuard {
            engine: self.clone(),
            id: Some(created.id.clone()),
        };
        Ok((created.id, guard))
    }

    /// Starts container `id`.
    pub(crate) async fn start_container(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| self.map_err("start container", id, e))
    }

    async fn exec_all(&self, id: &str, commands: &[String]) -> Result<Vec<CommandOutput>> {
        self.start_container(id).await?;
        let mut outputs = Vec::with_capacity(commands.len());
        for command in commands {
            outputs.push(self.exec_one(id, command).await?);
        }
        Ok(outputs)
    }

    async fn exec_one(&self, id: &str, command: &str) -> Result<CommandOutput> {
        let mut bytes = Vec::new();
        let argv = ["/bin/sh", "-c", command].map(str::to_string);
        let exit_code = self
            .exec_argv(id, &argv, Vec::new(), |chunk| {
                bytes.extend_from_slice(&chunk.into_bytes());
            })
            .await?;
        Ok(CommandOutput {
            command: command.to_string(),
            exit_code,
            output: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// Runs `argv` (no shell) in running container `id` with the extra
    /// environment `env` (`K=V`), passing each chunk of its output to
    /// `output_chunk` as it arrives, and returns its exit code (-1 if the engine
    /// did not report one).
    pub(crate) async fn exec_argv(
        &self,
        id: &str,
        argv: &[String],
        env: Vec<String>,
        mut output_chunk: impl FnMut(LogOutput),
    ) -> Result<i64> {
        let exec = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(false),
                    tty: Some(false),
                    cmd: Some(argv.to_vec()),
                    env: (!env.is_empty()).then_some(env),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.map_err("create exec", id, e))?;
        match self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| self.map_err("start exec", id, e))?
        {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    output_chunk(chunk.map_err(|e| self.map_err("exec output", id, e))?);
                }
            }
            StartExecResults::Detached => {}
        }
        // The exit code can lag the end of the output stream by a moment.
        let mut exit_code = -1;
        for attempt in 0..100 {
            let info = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| self.map_err("inspect exec", id, e))?;
            if info.running != Some(true) {
                exit_code = info.exit_code.unwrap_or(-1);
                break;
            }
            tokio::time::sleep(Duration::from_millis(if attempt < 10 { 10 } else { 100 })).await;
        }
        Ok(exit_code)
    }

    /// Force-removes every container labelled [`RUN_LABEL`]`=<run_id>`
    /// (running or not), e.g. after Ctrl-C. Returns how many were removed.
    pub async fn remove_containers(&self, run_id: &str) -> Result<usize> {
        self.remove_matching("label", format!("{RUN_LABEL}={run_id}"))
            .await
    }

    /// Force-removes every container made from `image` (running or not):
    /// those that image tests start through the docker Python package carry
    /// no strata label, so after an interrupt they are found by ancestry.
    pub async fn remove_containers_of_image(&self, image: &str) -> Result<usize> {
        self.remove_matching("ancestor", image.to_string()).await
    }

    async fn remove_matching(&self, filter: &str, value: String) -> Result<usize> {
        let filters = HashMap::from([(filter.to_string(), vec![value])]);
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.map_err("list containers", "containers", e))?;
        let mut removed = 0;
        for c in list {
            if let Some(id) = c.id {
                remove_container(self, &id).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
