//! Pure rendering of strata's reports: image manifests (Markdown and JSON),
//! run summaries (Markdown for `$GITHUB_STEP_SUMMARY`, aligned text for
//! terminals, JSON for `artifacts/run.json`), YAML artifacts and GitHub wiki
//! pages (`<stem>.md`, `Home.md`, `Stable_Tag.md`), the stack's graph
//! ([`graph`]) and the report site of runs ([`site`]: HTML and SVG).
//!
//! Nothing here does I/O: every function takes data (and, for wiki pages, the
//! page's current text) and returns text. Callers decide where it goes, using
//! [`ref_file_stem`] for file names.

#![deny(missing_docs)]

mod artifact;
pub mod graph;
mod image;
pub mod image_diff;
pub mod junit;
mod manifest;
pub mod site;
mod stem;
mod summary;
pub mod text;
mod wiki;

pub use artifact::{ReportError, to_json, to_yaml};
pub use image::{COMMAND_MAX_CHARS, FOLD_LINES, InfoOutput, Layer, clean_command};
pub use manifest::{ManifestData, StableChanges, manifest_json, manifest_markdown};
pub use stem::ref_file_stem;
pub use summary::{
    MESSAGE_MAX_CHARS, SummaryRow, failed_tests_markdown, summary_markdown, summary_text,
};
pub use wiki::{
    HomeImage, HomeRow, Move, Promotion, home_page, stable_tag_page, wiki_link_target,
    wiki_manifest_page, wiki_page_name,
};
