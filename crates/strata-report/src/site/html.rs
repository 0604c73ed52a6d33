//! HTML escaping and the frame every page shares.

/// The style sheet's file name, beside the pages.
pub(crate) const STYLE_FILE: &str = "report.css";
/// The script's file name, beside the pages.
pub(crate) const SCRIPT_FILE: &str = "report.js";

/// Escapes text for HTML and inline SVG, in element content and quoted
/// attribute values alike: JUnit's XML escaper serves both (the five markup
/// characters as references HTML5 also knows, line breaks and tabs as
/// character references, and what XML cannot hold dropped), so every
/// string from the run's records passes through one escaper.
pub(crate) use crate::junit::xml_text as escape;

/// A relative path (`/`-separated) as a URL path: every byte but ASCII
/// letters, digits and `/-._~+=@` percent-encoded, so a folder named
/// `run #2` or `50%` still links (then escape it for the attribute).
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~+=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text shown in a `<pre>`: terminal colours and carriage returns cleaned
/// (as manifests clean them), then escaped.
pub(crate) fn pre(text: &str) -> String {
    format!("<pre>{}</pre>", escape(&crate::text::clean_output(text)))
}

/// A whole page: `title` in the tab and the heading, `body` below the
/// navigation. `nav` links back to the index from an image's page. Its
/// icon is an empty `data:` one, so no browser asks a server for
/// `/favicon.ico`, outside the report's folder.
pub(crate) fn page(title: &str, heading: &str, nav: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
<link rel=\"stylesheet\" href=\"{STYLE_FILE}\">\n\
<script src=\"{SCRIPT_FILE}\" defer></script>\n</head>\n<body>\n\
<header><nav aria-label=\"report\">{nav}</nav>\n<h1>{heading}</h1></header>\n\
<main>\n{body}</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// An outcome as a coloured word.
pub(crate) fn badge(outcome: super::Outcome) -> String {
    format!(
        "<span class=\"badge {}\">{}</span>",
        outcome.class(),
        outcome.word()
    )
}

/// A size, or `-`.
pub(crate) fn size(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".to_string(), crate::text::human_size)
}

/// A signed size change: `+1.20 MB`, `-300 kB`, `±0 B`.
pub(crate) fn growth(bytes: i64) -> String {
    crate::text::signed_size(bytes, crate::text::human_size)
}

/// A number for `data-value` (what the script sorts by), finite or 0.
pub(crate) fn number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "0".into()
    }
}
