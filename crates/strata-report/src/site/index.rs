//! The index page: the run in one look (what failed and why), the stack's
//! graph, the timeline, every image in a table, and the history.

use super::html::{self, badge, escape, number, size};
use super::{Outcome, Run, graph, history, timeline};
use crate::text::human_duration;

/// `index.html`.
pub(crate) fn page(title: &str, run: &Run, runs: &[Run]) -> String {
    let critical = timeline::critical_path(run);
    let mut body = String::new();
    body.push_str(&overview(run));
    body.push_str(&failures(run));
    body.push_str(&format!(
        "<section aria-labelledby=\"graph\"><h2 id=\"graph\">The stack</h2>\n\
<p>Each box is an image of a plan, coloured by how this run ended it, with its size, \
its duration and why it was built; a box opens the image's page. Parents are left of \
their children; the critical path's links are drawn thicker.</p>\n\
<div class=\"scroll\">{}</div></section>\n",
        graph::svg(run, &critical)
    ));
    body.push_str(&format!(
        "<section aria-labelledby=\"timeline\"><h2 id=\"timeline\">Timeline</h2>\n{}\
<div class=\"scroll\">{}</div>{}</section>\n",
        timeline::summary(run, &critical),
        timeline::svg(run, &critical),
        timeline::legend(),
    ));
    body.push_str(&images_table(run, &critical));
    body.push_str(&format!(
        "<section aria-labelledby=\"history\"><h2 id=\"history\">History</h2>\n{}</section>\n",
        history::section(run, runs)
    ));
    html::page(
        &format!("{title}: strata report"),
        &format!("{}: the run of {}", escape(title), escape(&run.started)),
        "<a href=\"#graph\">stack</a> <a href=\"#timeline\">timeline</a> \
<a href=\"#images\">images</a> <a href=\"#history\">history</a>",
        &body,
    )
}

/// The run's facts and how many images ended each way.
fn overview(run: &Run) -> String {
    let verdict = if run.interrupted {
        "was interrupted"
    } else if run.success {
        "succeeded"
    } else {
        "failed"
    };
    let counts: Vec<String> = [
        Outcome::Built,
        Outcome::Reused,
        Outcome::Resumed,
        Outcome::Failed,
        Outcome::Skipped,
        Outcome::NotRebuilt,
    ]
    .iter()
    .filter_map(|o| {
        let n = run.images.iter().filter(|i| i.outcome == *o).count();
        (n > 0).then(|| format!("{n} {}", badge(*o)))
    })
    .collect();
    format!(
        "<p class=\"verdict {class}\">The run of commit <code>{head}</code> {verdict}: {counts}.</p>\n\
<p>Started {started}, finished {finished}.</p>\n",
        class = if run.success { "ok" } else { "bad" },
        head = escape(&run.head),
        counts = counts.join(", "),
        started = escape(&run.started),
        finished = escape(&run.finished),
    )
}

/// What failed and why: each failed image, its message and failed tests.
fn failures(run: &Run) -> String {
    let plans = run.has_plans();
    let items: String = run
        .images
        .iter()
        .filter(|i| i.outcome == Outcome::Failed)
        .map(|image| {
            let tests: Vec<String> = image
                .stages
                .iter()
                .flat_map(|s| s.tests.iter())
                .filter(|t| t.is_failure())
                .map(|t| format!("<li>{}</li>", escape(&t.name)))
                .collect();
            format!(
                "<li><a href=\"{href}\">{name}</a>: {message}{tests}</li>\n",
                href = escape(&image.page()),
                name = escape(&image.label(plans)),
                message = escape(&image.message),
                tests = if tests.is_empty() {
                    String::new()
                } else {
                    format!("<ul>{}</ul>", tests.concat())
                },
            )
        })
        .collect();
    if items.is_empty() {
        return String::new();
    }
    format!(
        "<section aria-labelledby=\"failures\"><h2 id=\"failures\">What failed</h2>\n<ul>\n{items}</ul></section>\n"
    )
}

/// Every image in a table the script can sort and filter.
fn images_table(run: &Run, critical: &[usize]) -> String {
    let plans = run.has_plans();
    let rows: String = run
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let waited = timeline::waited(run, i);
            let growth = image.growth.as_ref();
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{name}</a>{crit}</th><td>{badge}</td>\
<td data-value=\"{sv}\">{size}</td><td data-value=\"{gv}\">{growth}</td>\
<td data-value=\"{dv}\">{duration}</td><td data-value=\"{wv}\">{waited}</td><td>{reason}</td></tr>\n",
                href = escape(&image.page()),
                name = escape(&image.label(plans)),
                crit = if critical.contains(&i) { " ◆" } else { "" },
                badge = badge(image.outcome),
                sv = image.size().unwrap_or(0),
                size = size(image.size()),
                gv = growth.map_or(0, |g| g.bytes),
                growth = growth.map_or_else(|| "-".into(), |g| html::growth(g.bytes)),
                dv = number(image.duration_secs),
                duration = if image.outcome.ran() { human_duration(image.duration_secs) } else { "-".into() },
                wv = number(waited.unwrap_or(0.0)),
                waited = waited.map_or_else(|| "-".into(), human_duration),
                reason = escape(image.reason.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"images\"><h2 id=\"images\">Images</h2>\n\
<p>◆ marks the critical path; “waited” is the time between an image being ready (its \
parent tested) and its first stage.</p>\n\
<table class=\"sortable filterable\"><thead><tr><th scope=\"col\">image</th><th scope=\"col\">outcome</th>\
<th scope=\"col\">size</th><th scope=\"col\">growth</th><th scope=\"col\">duration</th>\
<th scope=\"col\">waited</th><th scope=\"col\">reason</th></tr></thead>\n<tbody>\n{rows}</tbody></table></section>\n"
    )
}
