//! BuildKit's progress messages rendered as `docker build --progress=plain`
//! renders them: a vertex is numbered on first sight and printed as
//! `#5 [2/3] RUN make`, its output as `#5 0.412 line`, and its end as
//! `#5 DONE 0.4s`, `#5 CACHED` or `#5 ERROR: …`.
//!
//! The renderer is pure: it turns [`Update`]s (taken from BuildKit's
//! `StatusResponse` by the engine adapter) into lines, and remembers what a
//! failure message needs, the failing step and its last lines of output.

use std::collections::{HashMap, VecDeque};

/// Lines of a step's output kept for the failure message.
const TAIL_LINES: usize = 5;

/// One vertex (a build step) as a status message reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VertexUpdate {
    /// Its digest, which names it across messages.
    pub(crate) digest: String,
    /// `[2/3] RUN make`, `[internal] load build context`, ….
    pub(crate) name: String,
    /// Whether the result came from the cache.
    pub(crate) cached: bool,
    /// When it started, in seconds since the epoch.
    pub(crate) started: Option<f64>,
    /// When it ended, in seconds since the epoch.
    pub(crate) completed: Option<f64>,
    /// Why it failed (empty when it did not).
    pub(crate) error: String,
}

/// A chunk of a vertex's output.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LogChunk {
    /// The vertex's digest.
    pub(crate) vertex: String,
    /// When it was written, in seconds since the epoch.
    pub(crate) timestamp: Option<f64>,
    /// The bytes written (lines may be split across chunks).
    pub(crate) data: Vec<u8>,
}

/// A status message's parts, in the order BuildKit means them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Update {
    pub(crate) vertexes: Vec<VertexUpdate>,
    pub(crate) logs: Vec<LogChunk>,
    /// Warnings: `(vertex digest, short message)`.
    pub(crate) warnings: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct VertexState {
    number: usize,
    name: String,
    announced: bool,
    started: Option<f64>,
    done: bool,
    partial: Vec<u8>,
    tail: VecDeque<String>,
}

/// The failing step of a build, for its error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailedStep {
    /// `#5 [2/3] RUN make`.
    pub(crate) step: String,
    /// BuildKit's error for it.
    pub(crate) error: String,
    /// Its last lines of output, oldest first.
    pub(crate) tail: Vec<String>,
}

/// Renders updates as plain progress lines.
#[derive(Debug, Default)]
pub(crate) struct PlainProgress {
    vertexes: HashMap<String, VertexState>,
    next: usize,
    /// The first step that failed: its vertex, name and error. Its output
    /// is read when asked for, since BuildKit sends a step's last output
    /// with or after its end (in the same update, after it).
    failed: Option<(String, String, String)>,
}

impl PlainProgress {
    /// Renders one update, passing each line to `out`.
    pub(crate) fn update(&mut self, update: &Update, out: &mut dyn FnMut(&str)) {
        for v in &update.vertexes {
            self.vertex(v, out);
        }
        for chunk in &update.logs {
            self.log(chunk, out);
        }
        for (vertex, message) in &update.warnings {
            let number = self.number(vertex);
            out(&format!("#{number} WARNING: {message}"));
        }
    }

    /// Prints what is left of every step's output without a final newline
    /// (a failed step's last line): called once the build's stream ended.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(&str)) {
        let mut open: Vec<(usize, String)> = self
            .vertexes
            .iter()
            .filter(|(_, s)| !s.partial.is_empty())
            .map(|(digest, s)| (s.number, digest.clone()))
            .collect();
        open.sort();
        for (number, digest) in open {
            if let Some(state) = self.vertexes.get_mut(&digest) {
                flush_partial(number, state, out);
            }
        }
    }

    /// The first step that failed, if any, with its output so far, whole
    /// lines and the unfinished one.
    pub(crate) fn failed(&self) -> Option<FailedStep> {
        let (vertex, step, error) = self.failed.as_ref()?;
        let mut tail: Vec<String> = Vec::new();
        if let Some(state) = self.vertexes.get(vertex) {
            tail.extend(state.tail.iter().cloned());
            if !state.partial.is_empty() {
                tail.push(
                    String::from_utf8_lossy(&state.partial)
                        .trim_end_matches('\r')
                        .to_string(),
                );
            }
        }
        if tail.len() > TAIL_LINES {
            tail.drain(..tail.len() - TAIL_LINES);
        }
        Some(FailedStep {
            step: step.clone(),
            error: error.clone(),
            tail,
        })
    }

    fn number(&mut self, digest: &str) -> usize {
        if let Some(state) = self.vertexes.get(digest) {
            return state.number;
        }
        self.next += 1;
        self.vertexes.insert(
            digest.to_string(),
            VertexState {
                number: self.next,
                ..VertexState::default()
            },
        );
        self.next
    }

    fn vertex(&mut self, v: &VertexUpdate, out: &mut dyn FnMut(&str)) {
        // Vertexes that have neither started nor been found in the cache
        // are announced later, when they do.
        if v.started.is_none() && !v.cached && v.completed.is_none() {
            return;
        }
        let number = self.number(&v.digest);
        let Some(state) = self.vertexes.get_mut(&v.digest) else {
            return;
        };
        if !v.name.is_empty() {
            state.name = v.name.clone();
        }
        if state.started.is_none() {
            state.started = v.started;
        }
        if !state.announced {
            state.announced = true;
            out(&format!("#{number} {}", state.name));
        }
        if state.done || (v.completed.is_none() && !v.cached) {
            return;
        }
        state.done = true;
        // A failed step's unfinished line may go on in output sent after
        // its end: it is printed whole by `finish`.
        if v.error.is_empty() {
            flush_partial(number, state, out);
        }
        if !v.error.is_empty() {
            out(&format!("#{number} ERROR: {}", v.error));
            if self.failed.is_none() && !v.error.contains("context canceled") {
                self.failed = Some((
                    v.digest.clone(),
                    format!("#{number} {}", state.name),
                    v.error.clone(),
                ));
            }
        } else if v.cached {
            out(&format!("#{number} CACHED"));
        } else {
            let took = match (state.started, v.completed) {
                (Some(s), Some(c)) if c >= s => c - s,
                _ => 0.0,
            };
            out(&format!("#{number} DONE {took:.1}s"));
        }
    }

    fn log(&mut self, chunk: &LogChunk, out: &mut dyn FnMut(&str)) {
        let number = self.number(&chunk.vertex);
        let Some(state) = self.vertexes.get_mut(&chunk.vertex) else {
            return;
        };
        let elapsed = match (state.started, chunk.timestamp) {
            (Some(s), Some(t)) if t >= s => t - s,
            _ => 0.0,
        };
        state.partial.extend_from_slice(&chunk.data);
        while let Some(at) = state.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = state.partial.drain(..=at).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1])
                .trim_end_matches('\r')
                .to_string();
            out(&format!("#{number} {elapsed:.3} {text}"));
            remember(state, text);
        }
    }
}

fn remember(state: &mut VertexState, line: String) {
    if state.tail.len() == TAIL_LINES {
        state.tail.pop_front();
    }
    state.tail.push_back(line);
}

/// Prints what is left of a vertex's output without a final newline.
fn flush_partial(number: usize, state: &mut VertexState, out: &mut dyn FnMut(&str)) {
    if state.partial.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(&std::mem::take(&mut state.partial))
        .trim_end_matches('\r')
        .to_string();
    out(&format!("#{number} {text}"));
    remember(state, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(digest: &str, name: &str) -> VertexUpdate {
        VertexUpdate {
            digest: digest.into(),
            name: name.into(),
            ..VertexUpdate::default()
        }
    }

    fn render(updates: &[Update]) -> (Vec<String>, PlainProgress) {
        let mut progress = PlainProgress::default();
        let mut lines = Vec::new();
        for u in updates {
            progress.update(u, &mut |l| lines.push(l.to_string()));
        }
        progress.finish(&mut |l| lines.push(l.to_string()));
        (lines, progress)
    }

    #[test]
    fn steps_are_numbered_in_order_with_output_and_their_end() {
        let started = |mut v: VertexUpdate, at: f64| {
            v.started = Some(at);
            v
        };
        let run = vertex("sha256:b", "[2/2] RUN echo hi");
        let (lines, progress) = render(&[
            Update {
                vertexes: vec![
                    vertex("sha256:a", "[1/2] FROM base"),
                    vertex("sha256:b", "[2/2] RUN echo hi"),
                ],
                ..Update::default()
            },
            Update {
                vertexes: vec![VertexUpdate {
                    cached: true,
                    ..vertex("sha256:a", "[1/2] FROM base")
                }],
                ..Update::default()
            },
            Update {
                vertexes: vec![started(run.clone(), 100.0)],
                logs: vec![
                    LogChunk {
                        vertex: "sha256:b".into(),
                        timestamp: Some(100.25),
                        data: b"hel".to_vec(),
                    },
                    LogChunk {
                        vertex: "sha256:b".into(),
                        timestamp: Some(100.5),
                        data: b"lo\nworld\n".to_vec(),
                    },
                ],
                ..Update::default()
            },
            Update {
                vertexes: vec![VertexUpdate {
                    completed: Some(100.75),
                    ..started(run, 100.0)
                }],
                ..Update::default()
            },
        ]);
        assert_eq!(
            lines,
            [
                "#1 [1/2] FROM base",
                "#1 CACHED",
                "#2 [2/2] RUN echo hi",
                "#2 0.500 hello",
                "#2 0.500 world",
                "#2 DONE 0.8s",
            ]
        );
        assert!(progress.failed().is_none());
    }

    /// BuildKit may send a step's end before (in the same update as) its
    /// last output: the failure still quotes that output whole, not the
    /// part that came before the end (`head:` of `head: write error: No
    /// space left on device`).
    #[test]
    fn a_failed_step_keeps_the_output_sent_with_its_end() {
        let mut run = vertex("d", "[2/2] RUN head -c 400m /dev/zero > /big");
        run.started = Some(1.0);
        let chunk = |data: &str| LogChunk {
            vertex: "d".into(),
            timestamp: Some(1.5),
            data: data.as_bytes().to_vec(),
        };
        let mut failed = run.clone();
        failed.completed = Some(2.0);
        failed.error = "process did not complete successfully: exit code: 1".into();
        let (lines, progress) = render(&[
            Update {
                vertexes: vec![run],
                logs: vec![chunk("head:")],
                ..Update::default()
            },
            Update {
                vertexes: vec![failed],
                logs: vec![chunk(" write error: No space left on device\n")],
                ..Update::default()
            },
        ]);
        let step = progress
            .failed()
            .unwrap_or_else(|| panic!("no failed step"));
        assert_eq!(
            step.tail.last().map(String::as_str),
            Some("head: write error: No space left on device"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_failed_step_is_named_with_its_last_lines() {
        let mut run = vertex("d", "[2/2] RUN make");
        run.started = Some(1.0);
        let logs: Vec<LogChunk> = (1..=7)
            .map(|i| LogChunk {
                vertex: "d".into(),
                timestamp: Some(1.0),
                data: format!("line {i}\n").into_bytes(),
            })
            .chain([LogChunk {
                vertex: "d".into(),
                timestamp: Some(1.0),
                data: b"no newline".to_vec(),
            }])
            .collect();
        let mut failed = run.clone();
        failed.completed = Some(2.0);
        failed.error =
            "process \"/bin/sh -c make\" did not complete successfully: exit code: 2".into();
        let (lines, progress) = render(&[
            Update {
                vertexes: vec![run],
                logs,
                ..Update::default()
            },
            Update {
                vertexes: vec![failed.clone(), failed],
                ..Update::default()
            },
        ]);
        // The unfinished last line is printed once the stream ends.
        assert_eq!(
            lines[lines.len() - 2..],
            [
                "#1 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
                "#1 no newline"
            ]
        );
        assert!(lines.contains(&"#1 no newline".to_string()), "{lines:#?}");
        assert_eq!(lines.iter().filter(|l| l.contains("ERROR")).count(), 1);
        let step = progress
            .failed()
            .unwrap_or_else(|| panic!("no failed step"));
        assert_eq!(step.step, "#1 [2/2] RUN make");
        assert_eq!(
            step.tail,
            ["line 4", "line 5", "line 6", "line 7", "no newline"]
        );
    }
}
