//! The run as a timeline: one row per image, its stages as bars on the
//! run's time axis (an image of several platforms with each platform's
//! part of a stage as a band of its bar, one band per platform), the
//! waits between them visible as the bare line of the row, and the
//! critical path marked.
//!
//! The critical path is the chain of images, parent to child, that ends
//! with the image that ended last: that image could start only once its
//! parent had passed its tests, and so on up to the root, so these are
//! the images whose stages set the run's length.

use super::html::{escape, number};
use super::{Image, Run};
use crate::text::human_duration;

/// The drawing's parts: label column, plot width, row height, axis room.
const LABEL_W: f64 = 210.0;
const PLOT_W: f64 = 760.0;
const ROW_H: f64 = 22.0;
const AXIS_H: f64 = 24.0;

/// When an image ran: its first stage's start and last stage's end, in
/// seconds from the run's start; `None` when no stage of it has a start.
pub(crate) fn span(image: &Image) -> Option<(f64, f64)> {
    image
        .stages
        .iter()
        .filter_map(super::Stage::span)
        .fold(None, |acc, (s, e)| match acc {
            None => Some((s, e)),
            Some((a, b)) => Some((f64::min(a, s), f64::max(b, e))),
        })
}

/// How long image `i` waited between being ready and its first stage;
/// `None` when no stage of it has a start.
pub(crate) fn waited(run: &Run, i: usize) -> Option<f64> {
    span(&run.images[i]).map(|(start, _)| (start - ready(run, i)).max(0.0))
}

/// When an image could start: once its parent (in the run) passed its
/// basic tests, or, without them, built; at the run's start for a root.
pub(crate) fn ready(run: &Run, i: usize) -> f64 {
    let Some(p) = run.parent_of(i) else {
        return 0.0;
    };
    let stages = &run.images[p].stages;
    ["basic-tests", "build"]
        .iter()
        .find_map(|name| {
            stages
                .iter()
                .find(|s| s.name == *name)
                .and_then(super::Stage::span)
        })
        .map_or(0.0, |(_, end)| end)
}

/// The critical path: the image that ended last and its ancestors, root
/// first, as indexes into the run's images. Empty when no image has
/// stage start times.
pub(crate) fn critical_path(run: &Run) -> Vec<usize> {
    let last = run
        .images
        .iter()
        .enumerate()
        .filter_map(|(i, image)| span(image).map(|(_, end)| (i, end)))
        .fold(None, |best: Option<(usize, f64)>, (i, end)| match best {
            Some((_, e)) if e >= end => best,
            _ => Some((i, end)),
        });
    let mut path = Vec::new();
    let mut at = last.map(|(i, _)| i);
    while let Some(i) = at {
        if path.contains(&i) {
            break; // a malformed record's cycle
        }
        path.push(i);
        at = run.parent_of(i);
    }
    path.reverse();
    path
}

/// The run's length: the latest end of any stage.
fn run_length(run: &Run) -> f64 {
    run.images
        .iter()
        .filter_map(span)
        .map(|(_, end)| end)
        .fold(0.0, f64::max)
}

/// A tick spacing that gives about eight ticks over `length` seconds.
fn tick_step(length: f64) -> f64 {
    const STEPS: [f64; 12] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| length / s <= 8.0)
        .unwrap_or_else(|| (length / 8.0 / 3600.0).ceil() * 3600.0)
}

/// The timeline section's SVG, or a sentence when the record has no start
/// times (written by a strata that did not keep them).
pub(crate) fn svg(run: &Run, critical: &[usize]) -> String {
    let rows: Vec<(usize, &Image, (f64, f64))> = run
        .images
        .iter()
        .enumerate()
        .filter_map(|(i, image)| span(image).map(|s| (i, image, s)))
        .collect();
    if rows.is_empty() {
        return "<p>No stage of this run has a start time (its record was written by an \
older strata, or no image ran), so there is no timeline.</p>\n"
            .into();
    }
    let length = run_length(run).max(1.0);
    let scale = PLOT_W / length;
    let x = |secs: f64| LABEL_W + secs * scale;
    let height = AXIS_H + rows.len() as f64 * ROW_H + 4.0;
    let width = LABEL_W + PLOT_W + 12.0;
    let plans = run.has_plans();
    let mut out = format!(
        "<svg class=\"timeline\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
role=\"group\" aria-labelledby=\"timeline-title\" xmlns=\"http://www.w3.org/2000/svg\">\n\
<title id=\"timeline-title\">The run's timeline over {total}: one row per image, its stages as bars</title>\n",
        total = human_duration(length),
    );
    let step = tick_step(length);
    let mut tick = 0.0;
    while tick <= length + 1e-9 {
        out.push_str(&format!(
            "<line class=\"tick\" x1=\"{t:.1}\" y1=\"{top}\" x2=\"{t:.1}\" y2=\"{height:.0}\"/>\
<text class=\"axis\" x=\"{t:.1}\" y=\"14\">{label}</text>\n",
            t = x(tick),
            top = AXIS_H - 6.0,
            label = human_duration(tick),
        ));
        tick += step;
    }
    for (row, (i, image, (start, end))) in rows.iter().enumerate() {
        let y = AXIS_H + row as f64 * ROW_H;
        let on_path = critical.contains(i);
        let label = format!("{}{}", if on_path { "◆ " } else { "" }, image.label(plans));
        let ready_at = ready(run, *i);
        let waited = (start - ready_at).max(0.0);
        let key = escape(&image.label(plans));
        out.push_str(&format!(
            "<g class=\"row{crit}\" data-image=\"{key}\">\
<a href=\"{href}\"><text class=\"label\" x=\"{lx}\" y=\"{ty:.1}\">{text}</text></a>\
<line class=\"lane\" x1=\"{r:.1}\" y1=\"{my:.1}\" x2=\"{e:.1}\" y2=\"{my:.1}\">\
<title>{key}: ready at {ready_at}, waited {wait} before its first stage; {busy} from first stage to last</title></line>\n",
            crit = if on_path { " critical" } else { "" },
            href = escape(&image.page()),
            lx = LABEL_W - 8.0,
            ty = y + ROW_H / 2.0 + 4.0,
            text = escape(&crate::text::truncate_chars(&label, 30)),
            r = x(ready_at),
            e = x(*end),
            my = y + ROW_H / 2.0,
            ready_at = human_duration(ready_at),
            wait = human_duration(waited),
            busy = human_duration(end - start),
        ));
        for stage in &image.stages {
            let Some((s, e)) = stage.span() else { continue };
            out.push_str(&format!(
                "<rect class=\"bar s-{name}{failed}\" x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" data-start=\"{ds}\">\
<title>{key} {stage}: {status}, {took} from {from}{said}</title></rect>\n",
                name = stage_class(&stage.name),
                failed = if stage.status == super::StageStatus::Failed { " failed" } else { "" },
                bx = x(s),
                by = y + 4.0,
                bw = ((e - s) * scale).max(1.5),
                bh = ROW_H - 8.0,
                ds = number(s),
                stage = escape(&stage.name),
                status = stage.status.word(),
                took = human_duration(e - s),
                from = human_duration(s),
                said = stage
                    .message
                    .as_deref()
                    .map(|m| format!(": {}", escape(&crate::text::truncate_chars(m, 200))))
                    .unwrap_or_default(),
            ));
            // Each platform's part, one band of the bar's height each.
            let band = (ROW_H - 8.0) / stage.platforms.len().max(1) as f64;
            for (n, part) in stage.platforms.iter().enumerate() {
                let Some((s, e)) = part.span() else { continue };
                out.push_str(&format!(
                    "<rect class=\"bar platform s-{name}{failed}\" x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\">\
<title>{key} {stage} for {platform}: {status}, {took} from {from}</title></rect>\n",
                    name = stage_class(&stage.name),
                    failed = if part.ok { "" } else { " failed" },
                    bx = x(s),
                    by = y + 4.0 + n as f64 * band,
                    bw = ((e - s) * scale).max(1.5),
                    bh = band,
                    stage = escape(&stage.name),
                    platform = escape(&part.platform),
                    status = if part.ok { "ok" } else { "failed" },
                    took = human_duration(e - s),
                    from = human_duration(s),
                ));
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

/// The class that colours a stage's bars: its name when it is one of
/// strata's stages (a name from the record is never put in a class).
fn stage_class(name: &str) -> &'static str {
    match name {
        "build" => "build",
        "basic-tests" => "tests",
        "push" => "push",
        "gates" => "gates",
        "integration-tests" => "itests",
        "manifest" => "manifest",
        "prune" => "prune",
        _ => "other",
    }
}

/// The legend under the timeline: each stage's colour, named.
pub(crate) fn legend() -> String {
    let items: String = [
        ("build", "build"),
        ("tests", "basic tests"),
        ("push", "push"),
        ("gates", "gates"),
        ("itests", "integration tests"),
        ("manifest", "manifest"),
        ("prune", "prune"),
    ]
    .iter()
    .map(|(class, word)| format!("<li><span class=\"key s-{class}\"></span>{word}</li>"))
    .collect();
    format!(
        "<ul class=\"legend\">{items}<li><span class=\"key lane-key\"></span>waiting</li>\
<li><span class=\"key failed-key\"></span>failed stage</li><li>◆ critical path</li></ul>\n"
    )
}

/// One sentence on where the minutes went: the run's length, the critical
/// path and its waits.
pub(crate) fn summary(run: &Run, critical: &[usize]) -> String {
    if critical.is_empty() {
        return String::new();
    }
    let plans = run.has_plans();
    let chain: Vec<String> = critical
        .iter()
        .map(|&i| escape(&run.images[i].label(plans)))
        .collect();
    let waited: f64 = critical.iter().filter_map(|&i| waited(run, i)).sum();
    format!(
        "<p>The run took {}. Its critical path is {}, which waited {} in all before its images' first stages.</p>\n",
        human_duration(run_length(run)),
        chain.join(" → "),
        human_duration(waited),
    )
}
