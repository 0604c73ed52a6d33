//! The adapters' diagnostics (`tracing` events: the registry's retries, a
//! promotion's rollback, each manifest put): on stderr with `-v`, and in the
//! run's `logs/run.log` once a run has one, so a CI log shows why a push
//! took a minute without rerunning it verbose.

use std::io::Write;
use std::sync::Mutex;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The crates whose events are strata's own.
const CRATES: [&str; 4] = [
    "strata_registry",
    "strata_engine",
    "strata_exec",
    "strata_git",
];

/// The run log events are appended to, once the run has one.
static RUN_LOG: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// Installs the subscriber: stderr gets strata's events with `verbose`,
/// the run log (see [`log_to`]) always.
pub fn install(verbose: bool) {
    let ours = |level: LevelFilter| {
        CRATES
            .iter()
            .fold(Targets::new(), |t, c| t.with_target(*c, level))
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_filter(ours(if verbose {
            LevelFilter::DEBUG
        } else {
            LevelFilter::OFF
        }));
    let run_log = tracing_subscriber::fmt::layer()
        .with_writer(RunLogWriter)
        .with_ansi(false)
        .with_filter(ours(LevelFilter::DEBUG));
    // A second install (tests of this crate) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(run_log)
        .try_init();
}

/// Sends events to the end of `path` (the run's `logs/run.log`, which the
/// executor has created) from now on. A log that cannot be opened only
/// loses these lines.
pub fn log_to(path: &std::path::Path) {
    // Appending: the executor truncates the log when its run starts, and
    // these lines land after its own.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok();
    if let Ok(mut log) = RUN_LOG.lock() {
        *log = file;
    }
}

/// Writes to the run log, when there is one.
struct RunLogWriter;

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> RunLogWriter {
        RunLogWriter
    }
}

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = RUN_LOG.lock() {
            if let Some(file) = log.as_mut() {
                // One event is one write: whole lines beside the executor's.
                file.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
