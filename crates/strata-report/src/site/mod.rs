//! The report site: a run of the stack (and the runs before it) as static
//! HTML pages that need nothing but a browser, from `file://`, a CI
//! artifact or GitHub Pages: no request to another host, no build step.
//!
//! [`render`] is a pure function from [`Site`] (typed from the run records
//! the caller read) to the files to write: `index.html` (the stack's graph,
//! the run's timeline, every image, the history), one page per image,
//! `report.css` and `report.js` (sorting and filtering; every page reads
//! the same without it). Each job has its file: [`graph`] lays out and
//! draws the stack, [`timeline`] the run, [`image_page`] one image,
//! [`history`] the charts across runs, [`html`] escapes and frames pages.

mod graph;
mod history;
mod html;
mod image_page;
mod index;
mod recorded;
mod timeline;

pub use html::url_path;
pub use recorded::{Recalled, RecordedBuild, with_recorded};

use crate::ManifestData;
use crate::junit::TestCase;

/// How an image of the stack ended in a run, as the report colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Built, and every stage that ran passed.
    Built,
    /// Given the tag of an identical earlier build.
    Reused,
    /// Finished by an earlier attempt of the run.
    Resumed,
    /// A stage failed.
    Failed,
    /// Never started (its parent failed, or the run was interrupted).
    Skipped,
    /// In the stack, but the plan did not rebuild it.
    NotRebuilt,
}

impl Outcome {
    /// The word shown beside colours (colour is never the only sign).
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::Reused => "reused",
            Outcome::Resumed => "resumed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::NotRebuilt => "not rebuilt",
        }
    }

    /// The CSS class that colours it.
    fn class(self) -> &'static str {
        match self {
            Outcome::Built => "o-built",
            Outcome::Reused => "o-reused",
            Outcome::Resumed => "o-resumed",
            Outcome::Failed => "o-failed",
            Outcome::Skipped => "o-skipped",
            Outcome::NotRebuilt => "o-idle",
        }
    }

    /// Whether the image's stages ran in this run (its duration is its own
    /// work, worth charting).
    fn ran(self) -> bool {
        matches!(self, Outcome::Built | Outcome::Failed)
    }
}

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageStatus {
    /// It ran and passed.
    Ok,
    /// It ran and failed.
    Failed,
    /// It did not run.
    Skipped,
}

impl StageStatus {
    fn word(self) -> &'static str {
        match self {
            StageStatus::Ok => "ok",
            StageStatus::Failed => "failed",
            StageStatus::Skipped => "skipped",
        }
    }
}

/// One stage of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its name (`build`, `basic-tests`, `push`…).
    pub name: String,
    /// How it ended.
    pub status: StageStatus,
    /// When it started, in seconds from the run's start (`None`: it did
    /// not run, or the record predates start times).
    pub started_secs: Option<f64>,
    /// How long it took.
    pub duration_secs: f64,
    /// What it said.
    pub message: Option<String>,
    /// The test cases it ran.
    pub tests: Vec<TestCase>,
    /// Each platform's part of it, for an image of several platforms.
    pub platforms: Vec<PlatformSpan>,
}

/// One platform's part of a stage of an image built for several: each
/// platform's image goes through the stage in turn. What the run record
/// keeps and the timeline draws.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlatformSpan {
    /// The platform (`linux/arm64`).
    pub platform: String,
    /// When its part started, in seconds from the run's start.
    pub started_secs: f64,
    /// How long it took.
    pub duration_secs: f64,
    /// Whether it passed.
    pub ok: bool,
}

impl PlatformSpan {
    /// Its start and end, when both are times.
    pub(crate) fn span(&self) -> Option<(f64, f64)> {
        let (start, duration) = (self.started_secs, self.duration_secs.max(0.0));
        let end = start + duration;
        (start.is_finite() && start >= 0.0 && end.is_finite()).then_some((start, end))
    }
}

impl Stage {
    /// Its start and end in the run, when it ran and its start is known,
    /// and both are times (a damaged record's can overflow to infinity,
    /// which no axis can be drawn to).
    fn span(&self) -> Option<(f64, f64)> {
        let start = self.started_secs.filter(|s| s.is_finite() && *s >= 0.0)?;
        let duration = if self.duration_secs.is_finite() {
            self.duration_secs.max(0.0)
        } else {
            0.0
        };
        Some((start, start + duration)).filter(|(_, end)| end.is_finite())
    }
}

/// One image the run made of a spec image: the image itself, or one
/// platform's image of it, with its manifest when one was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Made {
    /// Its platform, for one of several platforms' images.
    pub platform: Option<String>,
    /// Its reference.
    pub reference: String,
    /// Its manifest (`manifests/<ref>.json`), when written.
    pub manifest: Option<ManifestData>,
}

/// A link to one of an image's logs or manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLink {
    /// What the link says (the file's name).
    pub name: String,
    /// Where it points, relative to the report's folder.
    pub href: String,
}

/// How much an image grew since its previous published build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// The previous build's reference.
    pub since: String,
    /// Bytes gained (negative when it shrank).
    pub bytes: i64,
}

/// One image of one plan in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Its key in the spec.
    pub image: String,
    /// Its plan.
    pub plan: String,
    /// The reference the run gave it.
    pub reference: String,
    /// Its parent's key, when it has one.
    pub parent: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why the plan rebuilt it (a changed file, `--all`…).
    pub reason: Option<String>,
    /// What its run said (why it failed, what it built).
    pub message: String,
    /// Seconds from its first stage's start to its last stage's end.
    pub duration_secs: f64,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
    /// Its growth since its previous published build.
    pub growth: Option<Growth>,
    /// Its size budget (`max_size`), when the spec sets one.
    pub budget_bytes: Option<u64>,
    /// The images it is made of.
    pub made: Vec<Made>,
    /// Its logs and its manifests (Markdown).
    pub logs: Vec<LogLink>,
}

impl Image {
    /// Its size: its largest platform's, from its manifests.
    pub fn size(&self) -> Option<u64> {
        self.made
            .iter()
            .filter_map(|m| m.manifest.as_ref().map(|m| m.size))
            .max()
    }

    /// Its page's file name, one per reference (so per image and plan).
    pub fn page(&self) -> String {
        format!(
            "{IMAGE_PAGE_PREFIX}{}.html",
            crate::ref_file_stem(&self.reference)
        )
    }

    /// Its label where plans matter: `name` or `name (plan)`.
    fn label(&self, plans: bool) -> String {
        if plans {
            format!("{} ({})", self.image, self.plan)
        } else {
            self.image.clone()
        }
    }

    /// Whether `other` is the same image of the same plan.
    fn same(&self, other: &Image) -> bool {
        self.image == other.image && self.plan == other.plan
    }
}

/// One run of the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ended.
    pub finished: String,
    /// The commit it built.
    pub head: String,
    /// Whether every image built.
    pub success: bool,
    /// Whether it was interrupted.
    pub interrupted: bool,
    /// Every image of the stack and plan, rebuilt or not, parents first.
    pub images: Vec<Image>,
}

impl Run {
    /// Whether the stack has more than one plan (labels then name it).
    fn has_plans(&self) -> bool {
        self.images.iter().any(|i| i.plan != self.images[0].plan)
    }

    /// The index of the parent of image `i` in this run, if there.
    fn parent_of(&self, i: usize) -> Option<usize> {
        let child = &self.images[i];
        let parent = child.parent.as_deref()?;
        self.images
            .iter()
            .position(|p| p.image == parent && p.plan == child.plan)
            .filter(|&p| p != i)
    }

    /// Its short name in charts and tables: the start's date and time and
    /// the commit's first 7 characters.
    fn label(&self) -> String {
        let when = self.started.replace('T', " ").replace('Z', "");
        let head: String = self.head.chars().take(7).collect();
        format!("{when} {head}")
    }
}

/// What the report is made of: the run it reports, and the runs before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// The report's title (the stack's folder or name).
    pub title: String,
    /// The runs, oldest first; the last is the run reported, the others
    /// are its history.
    pub runs: Vec<Run>,
}

/// How every image page's file name starts (`image-<ref stem>.html`).
pub const IMAGE_PAGE_PREFIX: &str = "image-";

/// One file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFile {
    /// Its name in the report's folder (no subfolders: every request a
    /// page makes stays in that folder).
    pub name: String,
    /// Its content.
    pub contents: String,
}

/// Why a site cannot be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiteError {
    /// No run was given.
    #[error("no run to report")]
    NoRun,
}

/// The site's files: `index.html`, one page per image, the style sheet and
/// the script.
pub fn render(site: &Site) -> Result<Vec<SiteFile>, SiteError> {
    let (run, earlier) = site.runs.split_last().ok_or(SiteError::NoRun)?;
    let mut files = vec![
        SiteFile {
            name: "index.html".into(),
            contents: index::page(&site.title, run, &site.runs),
        },
        SiteFile {
            name: html::STYLE_FILE.into(),
            contents: include_str!("report.css").into(),
        },
        SiteFile {
            name: html::SCRIPT_FILE.into(),
            contents: include_str!("report.js").into(),
        },
    ];
    for (i, image) in run.images.iter().enumerate() {
        let before = history::previous(earlier, image);
        files.push(SiteFile {
            name: image.page(),
            contents: image_page::page(&site.title, run, i, before, &site.runs),
        });
    }
    Ok(files)
}

#[cfg(any(test, feature = "synthetic"))]
mod synthetic;
#[cfg(any(test, feature = "synthetic"))]
pub use synthetic::synthetic_site;
#[cfg(test)]
mod tests;
