//! History: each image's size and duration over the runs given, as small
//! charts (inline SVG, a point per run, each with its figure as a title).

use super::html::{escape, size};
use super::{Image, Run};
use crate::text::human_duration;

/// A small chart's size.
const CHART_W: f64 = 160.0;
const CHART_H: f64 = 36.0;
const PAD: f64 = 4.0;

/// The same image of the same plan in the latest of `earlier` runs that
/// built it (or has its manifest): what this build compares with.
pub(crate) fn previous<'r>(earlier: &'r [Run], image: &Image) -> Option<&'r Image> {
    earlier
        .iter()
        .rev()
        .filter_map(|run| run.images.iter().find(|i| i.same(image)))
        .find(|i| i.size().is_some() || i.outcome.ran())
}

/// One point of a series: the run's label and the figure, when known.
struct Point {
    run: String,
    value: Option<f64>,
    shown: String,
}

/// `image`'s sizes over `runs`.
fn sizes(runs: &[Run], image: &Image) -> Vec<Point> {
    series(runs, image, |i| {
        i.size().map(|bytes| (bytes as f64, size(Some(bytes))))
    })
}

/// `image`'s durations over `runs`, where it ran.
fn durations(runs: &[Run], image: &Image) -> Vec<Point> {
    series(runs, image, |i| {
        i.outcome
            .ran()
            .then(|| (i.duration_secs, human_duration(i.duration_secs)))
    })
}

fn series(
    runs: &[Run],
    image: &Image,
    figure: impl Fn(&Image) -> Option<(f64, String)>,
) -> Vec<Point> {
    runs.iter()
        .map(|run| {
            let found = run.images.iter().find(|i| i.same(image)).and_then(&figure);
            Point {
                run: run.label(),
                value: found.as_ref().map(|(v, _)| *v).filter(|v| v.is_finite()),
                shown: found.map_or_else(|| "-".into(), |(_, s)| s),
            }
        })
        .collect()
}

/// A small line chart of `points` (runs without a figure leave a gap in
/// the x axis), labelled `what` for screen readers.
fn chart(points: &[Point], what: &str) -> String {
    let known: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    if known.is_empty() {
        return "<span class=\"none\">-</span>".into();
    }
    let (low, high) = known
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
    let span = (high - low).max(f64::EPSILON);
    let step = if points.len() > 1 {
        (CHART_W - 2.0 * PAD) / (points.len() - 1) as f64
    } else {
        0.0
    };
    let at = |i: usize, v: f64| {
        let x = PAD
            + i as f64 * step
            + if points.len() == 1 {
                CHART_W / 2.0
            } else {
                0.0
            };
        let y = if high > low {
            CHART_H - PAD - (v - low) / span * (CHART_H - 2.0 * PAD)
        } else {
            CHART_H / 2.0
        };
        (x, y)
    };
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.map(|v| at(i, v)))
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dots: String = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.map(|v| (at(i, v), p)))
        .map(|((x, y), p)| {
            format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\"><title>{}: {}</title></circle>",
                escape(&p.run),
                escape(&p.shown)
            )
        })
        .collect();
    let last = points.iter().rev().find(|p| p.value.is_some());
    format!(
        "<svg class=\"spark\" width=\"{CHART_W}\" height=\"{CHART_H}\" viewBox=\"0 0 {CHART_W} {CHART_H}\" \
role=\"img\" aria-label=\"{label}\" xmlns=\"http://www.w3.org/2000/svg\">\
<polyline points=\"{line}\"/>{dots}</svg> <span class=\"figure\">{shown}</span>",
        label = escape(&format!(
            "{what} over {} runs: {}",
            points.len(),
            points
                .iter()
                .map(|p| p.shown.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        line = line.join(" "),
        shown = escape(last.map_or("-", |p| p.shown.as_str())),
    )
}

/// The history section of the index: a row per image with its size and
/// duration charts; a sentence when only one run was given.
pub(crate) fn section(run: &Run, runs: &[Run]) -> String {
    if runs.len() < 2 {
        return "<p>One run was given. Give <code>strata report</code> several \
<code>--from</code> folders (earlier runs' output), or <code>--registry-history</code> \
(the build records in the registry), to chart each image's size and duration across \
them.</p>\n"
            .into();
    }
    let plans = run.has_plans();
    let rows: String = run
        .images
        .iter()
        .map(|image| {
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{name}</a></th><td>{sizes}</td><td>{times}</td></tr>\n",
                href = escape(&image.page()),
                name = escape(&image.label(plans)),
                sizes = chart(&sizes(runs, image), "size"),
                times = chart(&durations(runs, image), "duration"),
            )
        })
        .collect();
    format!(
        "<p>{count} runs, from {first} to {last}.</p>\n<table class=\"history\">\
<thead><tr><th scope=\"col\">image</th><th scope=\"col\">size</th><th scope=\"col\">duration</th></tr></thead>\n\
<tbody>\n{rows}</tbody></table>\n",
        count = runs.len(),
        first = escape(&runs[0].label()),
        last = escape(&runs[runs.len() - 1].label()),
    )
}

/// The history of one image, for its page: the same two charts, bigger
/// context (which runs).
pub(crate) fn image_section(image: &Image, runs: &[Run]) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    format!(
        "<section aria-labelledby=\"history\"><h2 id=\"history\">History</h2>\n\
<p>Over {count} runs, from {first} to {last}.</p>\n<dl class=\"facts\">\
<dt>size</dt><dd>{sizes}</dd><dt>duration</dt><dd>{times}</dd></dl></section>\n",
        count = runs.len(),
        first = escape(&runs[0].label()),
        last = escape(&runs[runs.len() - 1].label()),
        sizes = chart(&sizes(runs, image), "size"),
        times = chart(&durations(runs, image), "duration"),
    )
}
