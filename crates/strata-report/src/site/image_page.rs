//! One image's page: its outcome and reason, its stages, its tests (failed
//! ones open, with their output), its size against its budget and its
//! previous build, its layers, its info commands' outputs, the packages
//! changed since its previous build, links to its logs and manifests, and
//! its history.

use super::html::{self, badge, escape, pre, size};
use super::{Image, Made, Run, StageStatus, history};
use crate::image::{COMMAND_MAX_CHARS, clean_command};
use crate::junit::{CaseOutcome, TestCase};
use crate::text::{human_duration, truncate_chars};

/// The page of image `i` of `run`; `before` is its previous build among
/// the runs given, `runs` all of them.
pub(crate) fn page(
    title: &str,
    run: &Run,
    i: usize,
    before: Option<&Image>,
    runs: &[Run],
) -> String {
    let plans = run.has_plans();
    let image = &run.images[i];
    let mut body = facts(run, i, before);
    body.push_str(&stages(image));
    body.push_str(&tests(image));
    for made in &image.made {
        body.push_str(&contents(made, image.made.len() > 1));
    }
    body.push_str(&logs(image));
    body.push_str(&history::image_section(image, runs));
    html::page(
        &format!("{}: {title}", image.label(plans)),
        &format!("{} {}", escape(&image.label(plans)), badge(image.outcome)),
        "<a href=\"index.html\">← the run</a>",
        &body,
    )
}

/// The facts list: reference, parent, message, reason, duration, size.
fn facts(run: &Run, i: usize, before: Option<&Image>) -> String {
    let image = &run.images[i];
    let parent = match run.parent_of(i) {
        Some(p) => format!(
            "<a href=\"{}\">{}</a>",
            escape(&run.images[p].page()),
            escape(&run.images[p].image)
        ),
        None => escape(image.parent.as_deref().unwrap_or("none (a root)")),
    };
    format!(
        "<dl class=\"facts\"><dt>reference</dt><dd><code>{reference}</code></dd>\
<dt>plan</dt><dd>{plan}</dd><dt>parent</dt><dd>{parent}</dd>\
<dt>outcome</dt><dd class=\"message\">{message}</dd>\
<dt>built because</dt><dd>{reason}</dd><dt>duration</dt><dd>{duration}</dd>\
<dt>size</dt><dd>{size}</dd></dl>\n",
        reference = escape(&image.reference),
        plan = escape(&image.plan),
        message = escape(&image.message),
        reason = escape(image.reason.as_deref().unwrap_or("not rebuilt")),
        duration = human_duration(image.duration_secs),
        size = size_facts(image, before),
    )
}

/// Its size, against its budget and against its previous build (the one
/// its manifest compared with, else the previous run given).
fn size_facts(image: &Image, before: Option<&Image>) -> String {
    let Some(bytes) = image.size() else {
        return "not measured (no manifest)".into();
    };
    let mut out = size(Some(bytes));
    if let Some(budget) = image.budget_bytes.filter(|b| *b > 0) {
        out.push_str(&format!(
            " <meter min=\"0\" max=\"{budget}\" value=\"{bytes}\" high=\"{high}\">{pct:.0}%</meter> \
{pct:.0}% of its budget of {limit}",
            high = budget / 10 * 9,
            pct = bytes as f64 / budget as f64 * 100.0,
            limit = size(Some(budget)),
        ));
    }
    match (&image.growth, before.and_then(Image::size)) {
        (Some(g), _) => out.push_str(&format!(
            "; {} since its previous build <code>{}</code>",
            html::growth(g.bytes),
            escape(&g.since)
        )),
        (None, Some(earlier)) => out.push_str(&format!(
            "; {} since the previous run given",
            html::growth(
                i64::try_from(bytes).unwrap_or(i64::MAX)
                    - i64::try_from(earlier).unwrap_or(i64::MAX)
            )
        )),
        (None, None) => {}
    }
    out
}

/// The stages table.
fn stages(image: &Image) -> String {
    let rows: String = image
        .stages
        .iter()
        .map(|s| {
            format!(
                "<tr class=\"st-{status}\"><th scope=\"row\">{name}</th><td>{status}</td><td>{start}</td>\
<td>{took}</td><td>{message}</td></tr>\n",
                name = escape(&s.name),
                status = s.status.word(),
                start = s.started_secs.map_or_else(|| "-".into(), human_duration),
                took = if s.status == StageStatus::Skipped { "-".into() } else { human_duration(s.duration_secs) },
                message = escape(s.message.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"stages\"><h2 id=\"stages\">Stages</h2>\n<table>\
<thead><tr><th scope=\"col\">stage</th><th scope=\"col\">status</th><th scope=\"col\">started at</th>\
<th scope=\"col\">took</th><th scope=\"col\">said</th></tr></thead>\n<tbody>\n{rows}</tbody></table></section>\n"
    )
}

/// Each test stage's cases: failed ones open, with their report and
/// output; the others listed, folded.
fn tests(image: &Image) -> String {
    let mut out = String::new();
    for stage in image.stages.iter().filter(|s| !s.tests.is_empty()) {
        let failed: Vec<&TestCase> = stage.tests.iter().filter(|t| t.is_failure()).collect();
        let others: Vec<&TestCase> = stage.tests.iter().filter(|t| !t.is_failure()).collect();
        out.push_str(&format!(
            "<h3>{}: {} failed of {}</h3>\n",
            escape(&stage.name),
            failed.len(),
            stage.tests.len()
        ));
        for case in failed {
            let (message, details) = match &case.outcome {
                CaseOutcome::Failed { message, details }
                | CaseOutcome::Error { message, details } => (message.as_str(), details.as_str()),
                _ => ("", ""),
            };
            out.push_str(&format!(
                "<details class=\"test failed\" open><summary>{name} <span class=\"where\">{class}</span></summary>\n\
<p class=\"failure\">{message}</p>\n{details}{output}</details>\n",
                name = escape(&case.name),
                class = escape(&case.classname),
                message = escape(message),
                details = if details.is_empty() { String::new() } else { pre(details) },
                output = if case.output.is_empty() {
                    String::new()
                } else {
                    format!("<p>Its output:</p>\n{}", pre(&case.output))
                },
            ));
        }
        if !others.is_empty() {
            let items: String = others
                .iter()
                .map(|t| {
                    let note = match &t.outcome {
                        CaseOutcome::Skipped { message } => {
                            format!(" (skipped: {})", escape(message))
                        }
                        _ => String::new(),
                    };
                    format!(
                        "<li>{} <span class=\"where\">{}</span>{note}</li>",
                        escape(&t.name),
                        escape(&t.classname)
                    )
                })
                .collect();
            out.push_str(&format!(
                "<details class=\"test\"><summary>{} passed or skipped</summary><ul>{items}</ul></details>\n",
                others.len()
            ));
        }
    }
    if out.is_empty() {
        return String::new();
    }
    format!("<section aria-labelledby=\"tests\"><h2 id=\"tests\">Tests</h2>\n{out}</section>\n")
}

/// What one made image holds: layers, info commands, package changes.
fn contents(made: &Made, per_platform: bool) -> String {
    let Some(manifest) = &made.manifest else {
        return String::new();
    };
    let heading = if per_platform {
        format!(
            "Inside, {}",
            escape(made.platform.as_deref().unwrap_or(&made.reference))
        )
    } else {
        "Inside".into()
    };
    let id = format!("inside-{}", crate::ref_file_stem(&made.reference));
    let mut out = format!(
        "<section aria-labelledby=\"{id}\"><h2 id=\"{id}\">{heading}</h2>\n<p><code>{}</code>, {}</p>\n",
        escape(&made.reference),
        size(Some(manifest.size)),
        id = escape(&id),
    );
    let layers: String = manifest
        .layers
        .iter()
        .rev()
        .map(|l| {
            format!(
                "<tr><td><code>{}</code></td><td data-value=\"{}\">{}</td></tr>\n",
                escape(&truncate_chars(
                    &clean_command(&l.created_by),
                    COMMAND_MAX_CHARS
                )),
                l.size,
                size(Some(l.size))
            )
        })
        .collect();
    out.push_str(&format!(
        "<details><summary>{} layers, oldest first</summary><table class=\"sortable\"><thead><tr>\
<th scope=\"col\">step</th><th scope=\"col\">size</th></tr></thead><tbody>\n{layers}</tbody></table></details>\n",
        manifest.layers.len()
    ));
    for info in &manifest.info {
        out.push_str(&format!(
            "<details{open}><summary>{description} <code>{command}</code>{exit}</summary>{output}</details>\n",
            open = if info.exit_code != 0 { " open" } else { "" },
            description = escape(&info.description),
            command = escape(&info.command),
            exit = if info.exit_code != 0 { format!(" (exit {})", info.exit_code) } else { String::new() },
            output = pre(&info.output),
        ));
    }
    if let Some(packages) = manifest
        .changes
        .as_ref()
        .and_then(|c| c.packages.as_ref().map(|p| (c.from.as_str(), p)))
    {
        out.push_str(&package_changes(packages.0, packages.1));
    }
    if let Some(stable) = &manifest.since_stable {
        out.push_str(&package_changes(&stable.since, &stable.packages));
    }
    out.push_str("</section>\n");
    out
}

/// The packages added, removed and changed since `since`.
fn package_changes(since: &str, diff: &strata_sbom::diff::PackageDiff) -> String {
    if diff.is_empty() {
        return format!(
            "<p>No package changed since <code>{}</code>.</p>\n",
            escape(since)
        );
    }
    let row = |change: &str, p: &strata_sbom::Package, version: String| {
        format!(
            "<tr><td>{change}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            p.ecosystem.purl_type(),
            escape(&p.name),
            version
        )
    };
    let rows: String = diff
        .added
        .iter()
        .map(|p| row("added", p, escape(&p.version)))
        .chain(
            diff.removed
                .iter()
                .map(|p| row("removed", p, escape(&p.version))),
        )
        .chain(diff.changed.iter().map(|(old, new)| {
            row(
                "changed",
                new,
                format!("{} → {}", escape(&old.version), escape(&new.version)),
            )
        }))
        .collect();
    format!(
        "<h3>Packages since <code>{since}</code></h3>\n<p>{a} added, {r} removed, {c} changed.</p>\n\
<table class=\"sortable filterable\"><thead><tr><th scope=\"col\">change</th><th scope=\"col\">kind</th>\
<th scope=\"col\">package</th><th scope=\"col\">version</th></tr></thead><tbody>\n{rows}</tbody></table>\n",
        since = escape(since),
        a = diff.added.len(),
        r = diff.removed.len(),
        c = diff.changed.len(),
    )
}

/// Links to the image's logs and manifests.
fn logs(image: &Image) -> String {
    if image.logs.is_empty() {
        return String::new();
    }
    let items: String = image
        .logs
        .iter()
        .map(|l| {
            format!(
                "<li><a href=\"{}\">{}</a></li>",
                escape(&l.href),
                escape(&l.name)
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"logs\"><h2 id=\"logs\">Logs and manifests</h2>\n<ul>{items}</ul></section>\n"
    )
}
