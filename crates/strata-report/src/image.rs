//! What an image is made of, as its manifest and its comparison with an
//! earlier build both read it: its layers, its info commands' outputs, and
//! how a layer's command is shown.

use serde::{Deserialize, Serialize};

use crate::text::collapse_whitespace;

/// Commands longer than this (in characters, after cleaning) are cut with `…`.
pub const COMMAND_MAX_CHARS: usize = 120;

/// Outputs with more lines than this are folded in `<details>`.
pub const FOLD_LINES: usize = 30;

/// One entry of an image's history (a layer or an empty metadata step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// When the step ran, in unix seconds.
    pub created: i64,
    /// The instruction that made it, as the engine records it.
    pub created_by: String,
    /// Bytes the step added (0 for metadata-only steps).
    pub size: u64,
}

/// The result of running one info command (`info_cmds` of the spec) in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoOutput {
    /// The key of the command in `all_info_cmds`.
    pub key: String,
    /// Its human description, used as the section title.
    pub description: String,
    /// The command line run in the container.
    pub command: String,
    /// Its exit code; anything but 0 is flagged in the report.
    pub exit_code: i64,
    /// Its combined output.
    pub output: String,
}

/// Cleans an engine history command for display: drops the
/// `/bin/sh -c #(nop) ` prefix of metadata steps, shows shell steps as
/// `RUN …`, drops BuildKit's ` # buildkit` suffix and collapses whitespace.
/// No truncation or escaping is done here.
pub fn clean_command(created_by: &str) -> String {
    let mut s = collapse_whitespace(created_by);
    if let Some(rest) = s.strip_suffix("# buildkit") {
        s = rest.trim_end().to_string();
    }
    if let Some(rest) = s.strip_prefix("/bin/sh -c #(nop)") {
        return rest.trim_start().to_string();
    }
    if let Some(rest) = s.strip_prefix("/bin/sh -c ") {
        return format!("RUN {rest}");
    }
    if let Some(rest) = s.strip_prefix("RUN /bin/sh -c ") {
        return format!("RUN {rest}");
    }
    s
}
