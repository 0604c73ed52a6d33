//! Small text helpers shared by the renderers: sizes, dates, durations,
//! Markdown escaping, code spans and fences.

/// A signed size change, `bytes` written by `size`: `+1.2 MB`, `-300 kB`,
/// `±0 B`.
pub fn signed_size(bytes: i64, size: impl Fn(u64) -> String) -> String {
    let sign = match bytes.signum() {
        1 => "+",
        -1 => "-",
        _ => "±",
    };
    format!("{sign}{}", size(bytes.unsigned_abs()))
}

/// Formats a byte count with decimal units, as the Docker CLI does
/// (`0 B`, `999 B`, `1.23 kB`, `45.6 MB`, `789 MB`, `5.12 GB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 999.5 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    // Three significant digits; rounding may carry to 1000 (e.g. 999.96 kB).
    let text = if value >= 99.95 {
        format!("{value:.0}")
    } else if value >= 9.995 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    format!("{text} {unit}")
}

/// Formats unix seconds as a UTC date-time, `YYYY-MM-DD HH:MM:SS`.
///
/// Uses the days-from-civil algorithm (proleptic Gregorian calendar), so any
/// `i64` is accepted, including negative values (before 1970).
pub fn utc_datetime(unix_secs: i64) -> String {
    utc(unix_secs, ' ', "")
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp
/// (`2025-11-25T10:00:00Z`), the form artifacts and labels use.
pub fn rfc3339(unix_secs: i64) -> String {
    utc(unix_secs, 'T', "Z")
}

/// Unix seconds as `YYYY-MM-DD<sep>HH:MM:SS<zone>` in UTC.
fn utc(unix_secs: i64, sep: char, zone: &str) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}{zone}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Converts days since 1970-01-01 to a (year, month, day) civil date.
/// Howard Hinnant's `civil_from_days`, in i128 so no input overflows.
fn civil_from_days(days: i64) -> (i128, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    // d and m are small and positive by construction.
    (y, m as u32, d as u32)
}

/// Formats a duration in seconds: `0.4s`, `12.3s`, `2m 05s`, `1h 02m`.
/// Negative or non-finite values give `-`.
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".to_string();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {s:02}s")
    }
}

pub use strata_core::text::collapse_whitespace;

/// Truncates to at most `max` characters, ending with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes `|` for use inside a GitHub Markdown table cell (also needed inside
/// code spans there). Newlines become spaces.
pub fn escape_cell(text: &str) -> String {
    collapse_whitespace(text).replace('|', "\\|")
}

/// Escapes text for use as Markdown link text or plain inline text: the
/// characters that could start emphasis, links, HTML or table cells.
pub fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in collapse_whitespace(text).chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The longest run of consecutive backticks in `text`.
pub fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Wraps single-line text in a Markdown code span whose delimiter is longer
/// than any backtick run inside it (padded with spaces when the text starts or
/// ends with a backtick). Empty text gives an empty string.
pub fn code_span(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let ticks = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// Appends `body` as a fenced code block of `language`, folded in
/// `<details>` (summary: `<n> <what>`) when longer than `fold_lines`.
pub fn push_code_block(
    out: &mut String,
    body: &str,
    language: &str,
    fold_lines: usize,
    what: &str,
) {
    let fence = fence_for(body);
    let block = format!("{fence}{language}\n{body}\n{fence}\n");
    let lines = body.lines().count();
    if lines > fold_lines {
        out.push_str(&format!(
            "<details><summary>{lines} {what}</summary>\n\n{block}\n</details>\n\n"
        ));
    } else {
        out.push_str(&block);
        out.push('\n');
    }
}

/// A fence for a fenced code block holding `body`: at least three backticks and
/// longer than any backtick run in the body.
pub fn fence_for(body: &str) -> String {
    "`".repeat((longest_backtick_run(body) + 1).max(3))
}

/// Makes command output printable in Markdown: drops ANSI escape sequences,
/// turns `\r\n` and lone `\r` into line breaks and removes other control
/// characters except tab. Trailing newlines are removed.
pub fn clean_output(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte(@..~); other escapes: skip one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('@'..='~').contains(&n) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_064_800), "2025-11-25T10:00:00Z");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1.00 kB");
        assert_eq!(human_size(1234), "1.23 kB");
        assert_eq!(human_size(45_600_000), "45.6 MB");
        assert_eq!(human_size(789_000_000), "789 MB");
        assert_eq!(human_size(5_123_456_789), "5.12 GB");
        assert_eq!(human_size(999_600), "1.00 MB");
        assert_eq!(human_size(u64::MAX), "18.4 EB");
    }

    #[test]
    fn dates() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(utc_datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_datetime(1_675_430_045), "2023-02-03 13:14:05");
        assert_eq!(utc_datetime(-1), "1969-12-31 23:59:59");
        assert_eq!(utc_datetime(253_402_300_799), "9999-12-31 23:59:59");
        // Extremes do not panic.
        let _ = utc_datetime(i64::MIN);
        let _ = utc_datetime(i64::MAX);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(0.44), "0.4s");
        assert_eq!(human_duration(59.94), "59.9s");
        assert_eq!(human_duration(125.0), "2m 05s");
        assert_eq!(human_duration(3725.0), "1h 02m");
        assert_eq!(human_duration(f64::NAN), "-");
        assert_eq!(human_duration(-3.0), "-");
    }

    #[test]
    fn spans_and_fences() {
        assert_eq!(code_span("ls"), "`ls`");
        assert_eq!(code_span("a `b` c"), "``a `b` c``");
        assert_eq!(code_span("`x"), "`` `x ``");
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("```\ncode\n```"), "````");
        assert_eq!(fence_for("a ````` b"), "``````");
    }

    #[test]
    fn output_cleaning() {
        assert_eq!(
            clean_output("\u{1b}[31mred\u{1b}[0m\r\nx\rY\n\n"),
            "red\nx\nY"
        );
        assert_eq!(collapse_whitespace("  a \n\t b  "), "a b");
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
    }
}
