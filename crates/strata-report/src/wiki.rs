//! GitHub wiki pages, in the layout the seed stack's users keep: one manifest
//! page per image reference, a `Home.md` build table and a `Stable_Tag.md`
//! record of promotions.
//!
//! The page functions take the page's current text (if any) and return the new
//! text. They keep every line they do not own, find their own content through
//! HTML comment markers (`<!-- strata:… -->`, invisible on GitHub) and are
//! idempotent: applying the same input twice gives the same page.

use serde::{Deserialize, Serialize};

use crate::manifest::{ManifestData, manifest_markdown};
use crate::stem::ref_file_stem;
use crate::text::{code_span, collapse_whitespace, escape_cell, escape_inline};

/// The file name of the wiki page for an image reference: `<stem>.md`.
/// Links to it drop the `.md` (see [`wiki_link_target`]).
pub fn wiki_page_name(reference: &str) -> String {
    format!("{}.md", ref_file_stem(reference))
}

/// The link target of the wiki page for an image reference (GitHub wiki links
/// name the page without `.md`).
pub fn wiki_link_target(reference: &str) -> String {
    ref_file_stem(reference)
}

/// The wiki page of one image reference: its manifest.
pub fn wiki_manifest_page(m: &ManifestData) -> String {
    manifest_markdown(m)
}

/// One image of a build, as listed in the `Home.md` build table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeImage {
    /// The image's key in `spec.yml`, used as the link text.
    pub image: String,
    /// The full reference built; the link goes to its manifest page.
    pub reference: String,
}

/// One build run, as a row of the `Home.md` build table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeRow {
    /// The date of the run (e.g. `2023-02-03`), shown as given.
    pub date: String,
    /// The commit built; hexadecimal ids are shortened to 7 characters.
    pub commit: String,
    /// The tag the run pushed (e.g. `2023.2-abc1234`); identifies the row.
    pub tag: String,
    /// The images built by the run.
    pub images: Vec<HomeImage>,
}

const HOME_TITLE: &str = "# Image builds";
const HOME_HEADER: &str = "| Date | Commit | Tag | Images |";
const HOME_DELIMITER: &str = "|---|---|---|---|";
const HOME_COLUMNS: [&str; 4] = ["date", "commit", "tag", "images"];
const TAG_MARKER: &str = "strata:tag=";

/// Adds (or updates) the row of one build run in `Home.md`.
///
/// The build table is the first table holding a strata row marker, else the
/// first table whose header is `Date | Commit | Tag | Images`. A row for the
/// same tag (by its `<!-- strata:tag=… -->` marker, or an unmarked row whose
/// tag cell is that tag) is replaced in place; otherwise the row goes at the
/// top of the table (newest first). Without a table one is appended (the page
/// is created when `existing` is `None`). All other text is kept.
pub fn home_page(existing: Option<&str>, row: &HomeRow) -> String {
    let mut lines = page_lines(existing);
    let tag_key = marker_value(&row.tag);
    let new_row = home_row_line(row, &tag_key);
    match find_home_table(&lines) {
        Some((start, end)) => {
            let body = start + 2..end;
            let same = body.clone().find(|&i| match marker(&lines[i], TAG_MARKER) {
                Some(value) => value == tag_key,
                None => split_cells(&lines[i])
                    .get(2)
                    .is_some_and(|cell| cell.trim().trim_matches('`').trim() == row.tag.trim()),
            });
            match same {
                Some(i) => lines[i] = new_row,
                None => lines.insert(body.start, new_row),
            }
        }
        None => {
            if lines.is_empty() {
                lines.push(HOME_TITLE.to_string());
            }
            lines.push(String::new());
            lines.push(HOME_HEADER.to_string());
            lines.push(HOME_DELIMITER.to_string());
            lines.push(new_row);
        }
    }
    join_lines(&lines)
}

fn home_row_line(row: &HomeRow, tag_key: &str) -> String {
    let commit = collapse_whitespace(&row.commit);
    let commit = if commit.len() > 7 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        commit[..7].to_string()
    } else {
        commit
    };
    let images = if row.images.is_empty() {
        "-".to_string()
    } else {
        row.images
            .iter()
            .map(|i| {
                format!(
                    "[{}]({})",
                    escape_inline(&i.image),
                    wiki_link_target(&i.reference)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "| {} | {} | {} | {images} <!-- {TAG_MARKER}{tag_key} --> |",
        or_dash(escape_inline(&row.date)),
        or_dash(code_span(&escape_cell(&commit))),
        or_dash(code_span(&escape_cell(&row.tag))),
    )
}

/// Finds the build table: `(header line, end)` where `end` is one past its
/// last row.
fn find_home_table(lines: &[String]) -> Option<(usize, usize)> {
    let tables = tables(lines);
    tables
        .iter()
        .find(|&&(start, end)| (start + 2..end).any(|i| marker(&lines[i], TAG_MARKER).is_some()))
        .or_else(|| {
            tables.iter().find(|&&(start, _)| {
                let cells: Vec<String> = split_cells(&lines[start])
                    .iter()
                    .map(|c| c.trim().to_ascii_lowercase())
                    .collect();
                cells == HOME_COLUMNS
            })
        })
        .copied()
}

/// One retag of a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The source reference, e.g. `ghcr.io/org/image:2023.2-abc1234`.
    pub reference_from: String,
    /// The new reference, e.g. `ghcr.io/org/image:stable`.
    pub reference_to: String,
    /// The digest both now point to.
    pub digest: String,
}

/// A completed promotion (`strata promote --from … --to …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// When it happened (e.g. `2023-03-01`), shown as given.
    pub date: String,
    /// The source tag.
    pub from_tag: String,
    /// The destination tag (`stable` for the global stable).
    pub to_tag: String,
    /// The tags moved.
    pub moves: Vec<Move>,
}

const STABLE_TITLE: &str = "# Stable tag";
const CURRENT_BEGIN: &str = "<!-- strata:stable:begin -->";
const CURRENT_END: &str = "<!-- strata:stable:end -->";
const HISTORY_BEGIN: &str = "<!-- strata:history:begin -->";
const HISTORY_END: &str = "<!-- strata:history:end -->";
const STABLE_MARKER: &str = "strata:stable=";
const PROMOTION_MARKER: &str = "strata:promotion=";

/// Records a promotion in `Stable_Tag.md`.
///
/// At the top, the current stable set: one row per stable reference (image,
/// stable ref, digest, source tag). Rows of this promotion replace the rows of
/// the same stable reference; rows of images it did not move are kept, so a
/// promotion of one plan leaves the others listed. Below, a history list,
/// newest first, with one entry per promotion (the same promotion recorded
/// again replaces its entry in place). Text outside strata's marked blocks is
/// kept; a page without them (or no page) gets them under its title.
pub fn stable_tag_page(existing: Option<&str>, promotion: &Promotion) -> String {
    let mut lines = page_lines(existing);

    // The current stable set.
    let mut rows: Vec<(String, String)> = promotion
        .moves
        .iter()
        .map(|m| {
            let key = marker_value(&m.reference_to);
            let line = stable_row_line(m, &promotion.from_tag, &key);
            (key, line)
        })
        .collect();
    let current = find_block(&lines, CURRENT_BEGIN, CURRENT_END);
    if let Some((begin, end)) = current {
        for line in &lines[begin + 1..end] {
            if let Some(key) = marker(line, STABLE_MARKER)
                && !rows.iter().any(|(k, _)| k == key)
            {
                rows.push((key.to_string(), line.clone()));
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|a, b| a.0 == b.0);
    let block = current_block(promotion, &rows);
    let current_end = match current {
        Some((begin, end)) => {
            let len = block.len();
            lines.splice(begin..=end, block);
            begin + len
        }
        None => {
            let at = title_end(&mut lines);
            let len = block.len();
            if lines.get(at).is_some_and(|l| !l.trim().is_empty()) {
                lines.insert(at, String::new());
            }
            lines.splice(at..at, block);
            at + len
        }
    };

    // The history.
    let key = marker_value(&format!(
        "{}/{}/{}",
        promotion.date.trim(),
        promotion.from_tag.trim(),
        promotion.to_tag.trim()
    ));
    let entry = history_line(promotion, &key);
    match find_block(&lines, HISTORY_BEGIN, HISTORY_END) {
        Some((begin, end)) => {
            match (begin + 1..end).find(|&i| marker(&lines[i], PROMOTION_MARKER) == Some(&key)) {
                Some(i) => lines[i] = entry,
                None => lines.insert(begin + 1, entry),
            }
        }
        None => {
            let section = [
                String::new(),
                "## History".to_string(),
                String::new(),
                HISTORY_BEGIN.to_string(),
                entry,
                HISTORY_END.to_string(),
            ];
            lines.splice(current_end..current_end, section);
        }
    }
    join_lines(&lines)
}

fn stable_row_line(m: &Move, from_tag: &str, key: &str) -> String {
    format!(
        "| [{}]({}) | {} | {} | {} <!-- {STABLE_MARKER}{key} --> |",
        escape_inline(&image_name(&m.reference_to)),
        wiki_link_target(&m.reference_from),
        or_dash(code_span(&escape_cell(&m.reference_to))),
        or_dash(code_span(&escape_cell(&m.digest))),
        or_dash(code_span(&escape_cell(from_tag))),
    )
}

fn current_block(promotion: &Promotion, rows: &[(String, String)]) -> Vec<String> {
    let mut block = vec![
        CURRENT_BEGIN.to_string(),
        format!(
            "Last promotion: {}, {} → {} ({} image{}).",
            or_dash(escape_inline(&promotion.date)),
            or_dash(code_span(&escape_cell(&promotion.from_tag))),
            or_dash(code_span(&escape_cell(&promotion.to_tag))),
            promotion.moves.len(),
            if promotion.moves.len() == 1 { "" } else { "s" },
        ),
        String::new(),
    ];
    if rows.is_empty() {
        block.push("No stable images yet.".to_string());
    } else {
        block.push("| Image | Stable reference | Digest | Source tag |".to_string());
        block.push("|---|---|---|---|".to_string());
        block.extend(rows.iter().map(|(_, line)| line.clone()));
    }
    block.push(String::new());
    block.push(CURRENT_END.to_string());
    block
}

fn history_line(promotion: &Promotion, key: &str) -> String {
    let images = if promotion.moves.is_empty() {
        "no images".to_string()
    } else {
        promotion
            .moves
            .iter()
            .map(|m| {
                format!(
                    "[{}]({}) {}",
                    escape_inline(&image_name(&m.reference_to)),
                    wiki_link_target(&m.reference_from),
                    code_span(&collapse_whitespace(&m.digest)),
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "- {}: {} → {}: {images} <!-- {PROMOTION_MARKER}{key} -->",
        or_dash(escape_inline(&promotion.date)),
        or_dash(code_span(&collapse_whitespace(&promotion.from_tag))),
        or_dash(code_span(&collapse_whitespace(&promotion.to_tag))),
    )
}

/// Where strata's blocks go on a page without them: after the page's leading
/// `# ` title (adding one to an empty page), followed by a blank line.
/// Returns the insertion index.
fn title_end(lines: &mut Vec<String>) -> usize {
    let first = lines.iter().position(|l| !l.trim().is_empty());
    match first {
        Some(i) if lines[i].starts_with("# ") => {
            if lines.get(i + 1).is_none_or(|l| !l.trim().is_empty()) {
                lines.insert(i + 1, String::new());
            }
            i + 2
        }
        Some(i) => {
            // No title: put ours on top of the existing text.
            lines.splice(
                i..i,
                [STABLE_TITLE.to_string(), String::new(), String::new()],
            );
            i + 2
        }
        None => {
            lines.clear();
            lines.push(STABLE_TITLE.to_string());
            lines.push(String::new());
            2
        }
    }
}

/// The short name of an image reference: its last path component without tag
/// or digest (`ghcr.io/org/scipy-ml-notebook:stable` → `scipy-ml-notebook`).
fn image_name(reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let name = last.split(':').next().unwrap_or(last);
    if name.trim().is_empty() {
        reference.to_string()
    } else {
        name.to_string()
    }
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

/// A value safe inside an HTML comment marker: anything outside
/// `[A-Za-z0-9._:/@+-]` becomes `_` (so no `>` can end the comment early).
fn marker_value(text: &str) -> String {
    text.trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The value of a `<!-- {prefix}VALUE -->` marker in `line`.
fn marker<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let open = format!("<!-- {prefix}");
    // The last one: strata puts its marker after all user-supplied text.
    let start = line.rfind(&open)? + open.len();
    let rest = &line[start..];
    let end = rest.find(" -->")?;
    Some(&rest[..end])
}

/// The page split into lines (`\r\n` or `\n`), without trailing blank lines.
fn page_lines(existing: Option<&str>) -> Vec<String> {
    let mut lines: Vec<String> = existing
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    lines
}

fn join_lines(lines: &[String]) -> String {
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Cells of a table row (outer pipes removed; `\|` does not split).
fn split_cells(line: &str) -> Vec<String> {
    let trimmed = line.trim();
    let inner = trimmed.strip_prefix('|').unwrap_or(trimmed);
    let inner = match inner.strip_suffix('|') {
        Some(s) if !s.ends_with('\\') => s,
        _ => inner,
    };
    let mut cells = vec![String::new()];
    let mut escaped = false;
    for c in inner.chars() {
        if c == '|' && !escaped {
            cells.push(String::new());
        } else if let Some(cell) = cells.last_mut() {
            cell.push(c);
        }
        escaped = c == '\\' && !escaped;
    }
    cells
}

fn is_table_line(line: &str) -> bool {
    line.trim_start().starts_with('|')
}

fn is_delimiter_row(line: &str) -> bool {
    is_table_line(line)
        && split_cells(line).iter().all(|c| {
            let c = c.trim();
            let c = c.strip_prefix(':').unwrap_or(c);
            let c = c.strip_suffix(':').unwrap_or(c);
            !c.is_empty() && c.chars().all(|ch| ch == '-')
        })
}

/// Tables outside fenced code blocks, as `(header line, one past last row)`.
fn tables(lines: &[String]) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        let run = |ch: char| line.chars().take_while(|&c| c == ch).count();
        if let Some((ch, len)) = fence {
            if run(ch) >= len && line.trim_start_matches(ch).trim().is_empty() {
                fence = None;
            }
            i += 1;
            continue;
        }
        if let Some(ch) = ['`', '~'].into_iter().find(|&ch| run(ch) >= 3) {
            fence = Some((ch, run(ch)));
            i += 1;
            continue;
        }
        if is_table_line(line) && lines.get(i + 1).is_some_and(|l| is_delimiter_row(l)) {
            let mut end = i + 2;
            while end < lines.len() && is_table_line(&lines[end]) {
                end += 1;
            }
            found.push((i, end));
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

/// The `(begin, end)` line indexes of a marked block (both marker lines).
fn find_block(lines: &[String], begin: &str, end: &str) -> Option<(usize, usize)> {
    let b = lines.iter().position(|l| l.trim() == begin)?;
    let e = lines[b + 1..].iter().position(|l| l.trim() == end)?;
    Some((b, b + 1 + e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(tag: &str, date: &str) -> HomeRow {
        HomeRow {
            date: date.into(),
            commit: format!("{}0000000000000000000000000000000000", &tag[7..]),
            tag: tag.into(),
            images: vec![
                HomeImage {
                    image: "datascience-notebook".into(),
                    reference: format!("ghcr.io/ucsd-ets/datascience-notebook:{tag}"),
                },
                HomeImage {
                    image: "scipy-ml-notebook".into(),
                    reference: format!("ghcr.io/ucsd-ets/scipy-ml-notebook:{tag}"),
                },
            ],
        }
    }

    #[test]
    fn page_names() {
        let r = "ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234";
        assert_eq!(
            wiki_page_name(r),
            "ghcr.io+ucsd-ets+scipy-ml-notebook=2023.2-abc1234.md"
        );
        assert_eq!(
            wiki_link_target(r),
            "ghcr.io+ucsd-ets+scipy-ml-notebook=2023.2-abc1234"
        );
    }

    #[test]
    fn home_created_then_idempotent() {
        let row = build("2023.2-abc1234", "2023-02-03");
        let first = home_page(None, &row);
        assert_eq!(
            first,
            "# Image builds\n\
             \n\
             | Date | Commit | Tag | Images |\n\
             |---|---|---|---|\n\
             | 2023-02-03 | `abc1234` | `2023.2-abc1234` | \
             [datascience-notebook](ghcr.io+ucsd-ets+datascience-notebook=2023.2-abc1234), \
             [scipy-ml-notebook](ghcr.io+ucsd-ets+scipy-ml-notebook=2023.2-abc1234) \
             <!-- strata:tag=2023.2-abc1234 --> |\n"
        );
        assert_eq!(home_page(Some(&first), &row), first);
    }

    #[test]
    fn home_new_tag_on_top_and_foreign_text_kept() {
        let existing = "Welcome to the **wiki**.\n\
                        \n\
                        | Name | Value |\n\
                        |---|---|\n\
                        | unrelated | table |\n\
                        \n\
                        ```\n\
                        | Date | Commit | Tag | Images |\n\
                        |---|---|---|---|\n\
                        ```\n";
        let one = home_page(Some(existing), &build("2023.2-abc1234", "2023-02-03"));
        assert!(one.starts_with(existing), "{one}");
        let two = home_page(Some(&one), &build("2023.2-def5678", "2023-02-10"));
        assert!(two.starts_with(existing));
        let rows: Vec<&str> = two
            .lines()
            .filter(|l| l.contains("<!-- strata:tag="))
            .collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].contains("`2023.2-def5678`"), "newest first: {two}");
        assert!(rows[1].contains("`2023.2-abc1234`"));
        // Repeating either build changes nothing.
        assert_eq!(
            home_page(Some(&two), &build("2023.2-abc1234", "2023-02-03")),
            two
        );
        assert_eq!(
            home_page(Some(&two), &build("2023.2-def5678", "2023-02-10")),
            two
        );
        // A rerun of an older tag with new data replaces its row in place.
        let mut rerun = build("2023.2-abc1234", "2023-02-04");
        rerun.images.truncate(1);
        let three = home_page(Some(&two), &rerun);
        let rows: Vec<&str> = three
            .lines()
            .filter(|l| l.contains("<!-- strata:tag="))
            .collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[1].starts_with("| 2023-02-04 |") && !rows[1].contains("scipy"));
    }

    #[test]
    fn home_existing_table_with_text_around() {
        let existing = "# Home\n\
                        \n\
                        Intro.\n\
                        \n\
                        | Date | Commit | Tag | Images |\n\
                        |---|---|---|---|\n\
                        | 2022-12-01 | `1111111` | `2022.4-1111111` | [a](a) |\n\
                        \n\
                        Footer text.\r\n";
        let page = home_page(Some(existing), &build("2023.2-abc1234", "2023-02-03"));
        let lines: Vec<&str> = page.lines().collect();
        assert_eq!(
            lines[0..6],
            [
                "# Home",
                "",
                "Intro.",
                "",
                "| Date | Commit | Tag | Images |",
                "|---|---|---|---|"
            ]
        );
        assert!(lines[6].contains("strata:tag=2023.2-abc1234"));
        assert_eq!(
            lines[7],
            "| 2022-12-01 | `1111111` | `2022.4-1111111` | [a](a) |"
        );
        assert_eq!(lines[8..], ["", "Footer text."]);
        // An unmarked row of the same tag is replaced, not duplicated.
        let again = home_page(Some(&page), &build("2022.4-1111111", "2022-12-01"));
        assert_eq!(again.matches("2022.4-1111111`").count(), 1);
        assert!(again.contains("<!-- strata:tag=2022.4-1111111 -->"));
        assert_eq!(again.lines().count(), page.lines().count());
    }

    #[test]
    fn home_hostile_input_stays_one_row() {
        let row = HomeRow {
            date: "2023|02".into(),
            commit: "not a sha | x".into(),
            tag: "t --> <b>".into(),
            images: vec![HomeImage {
                image: "a]|(b".into(),
                reference: "../../x".into(),
            }],
        };
        let page = home_page(None, &row);
        assert_eq!(home_page(Some(&page), &row), page);
        let line = page.lines().last().unwrap_or_default();
        assert_eq!(split_cells(line).len(), 4, "{line}");
        assert!(line.contains("<!-- strata:tag=t_--___b_ -->"), "{line}");
        assert!(line.contains("[a\\]\\|(b](~2E.+.~2E+x)"), "{line}");
    }

    fn promotion(from: &str, date: &str, images: &[&str]) -> Promotion {
        Promotion {
            date: date.into(),
            from_tag: from.into(),
            to_tag: "stable".into(),
            moves: images
                .iter()
                .map(|i| Move {
                    reference_from: format!("ghcr.io/ucsd-ets/{i}:{from}"),
                    reference_to: format!("ghcr.io/ucsd-ets/{i}:stable"),
                    digest: format!("sha256:{i}-{from}"),
                })
                .collect(),
        }
    }

    #[test]
    fn stable_page_created_and_idempotent() {
        let p = promotion(
            "2023.2-abc1234",
            "2023-03-01",
            &["scipy-ml-notebook", "datascience-notebook"],
        );
        let page = stable_tag_page(None, &p);
        assert_eq!(stable_tag_page(Some(&page), &p), page);
        assert!(page.starts_with("# Stable tag\n\n<!-- strata:stable:begin -->\nLast promotion: 2023-03-01, `2023.2-abc1234` → `stable` (2 images).\n"), "{page}");
        let rows: Vec<&str> = page
            .lines()
            .filter(|l| l.contains("strata:stable="))
            .collect();
        assert_eq!(rows.len(), 2);
        // Sorted by stable reference.
        assert_eq!(
            rows[0],
            "| [datascience-notebook](ghcr.io+ucsd-ets+datascience-notebook=2023.2-abc1234) \
             | `ghcr.io/ucsd-ets/datascience-notebook:stable` \
             | `sha256:datascience-notebook-2023.2-abc1234` | `2023.2-abc1234` \
             <!-- strata:stable=ghcr.io/ucsd-ets/datascience-notebook:stable --> |"
        );
        let history = page.split("## History\n").nth(1).unwrap_or_default();
        assert_eq!(history.lines().filter(|l| l.starts_with("- ")).count(), 1);
        // The current set comes before the history.
        assert!(
            page.find("strata:stable=").unwrap_or(usize::MAX)
                < page.find("## History").unwrap_or(0)
        );
    }

    #[test]
    fn stable_page_next_promotion() {
        let first = promotion(
            "2023.2-abc1234",
            "2023-03-01",
            &["datascience-notebook", "scipy-ml-notebook"],
        );
        let second = promotion("2023.2-def5678", "2023-04-01", &["scipy-ml-notebook"]);
        let page = stable_tag_page(None, &first);
        let page = format!("{page}\nNotes kept by hand.\n");
        let next = stable_tag_page(Some(&page), &second);
        assert_eq!(stable_tag_page(Some(&next), &second), next);
        assert!(next.ends_with("\nNotes kept by hand.\n"));
        let rows: Vec<&str> = next
            .lines()
            .filter(|l| l.contains("strata:stable="))
            .collect();
        assert_eq!(rows.len(), 2);
        // Untouched image keeps its old source; the moved one is updated.
        assert!(rows[0].contains("`2023.2-abc1234`") && rows[0].contains("datascience-notebook"));
        assert!(rows[1].contains("`sha256:scipy-ml-notebook-2023.2-def5678`"));
        assert!(rows[1].contains("`2023.2-def5678`"));
        let history: Vec<&str> = next
            .lines()
            .filter(|l| l.contains("strata:promotion="))
            .collect();
        assert_eq!(history.len(), 2);
        assert!(
            history[0].starts_with("- 2023-04-01: `2023.2-def5678` → `stable`"),
            "{next}"
        );
        assert!(history[1].starts_with("- 2023-03-01: `2023.2-abc1234` → `stable`"));
        // Re-recording the older promotion does not add a history entry.
        let again = stable_tag_page(Some(&next), &first);
        assert_eq!(again.matches("strata:promotion=").count(), 2);
    }

    #[test]
    fn stable_page_on_legacy_page() {
        let legacy = "# Stable Tag\n\nOld stable images listed by the Python scripts.\n";
        let p = promotion("2023.2-abc1234", "2023-03-01", &["rstudio-notebook"]);
        let page = stable_tag_page(Some(legacy), &p);
        assert!(
            page.starts_with("# Stable Tag\n\n<!-- strata:stable:begin -->"),
            "{page}"
        );
        assert!(
            page.ends_with(
                "<!-- strata:history:end -->\n\nOld stable images listed by the Python scripts.\n"
            ),
            "{page}"
        );
        assert_eq!(stable_tag_page(Some(&page), &p), page);
        let untitled = stable_tag_page(Some("just text\n"), &p);
        assert!(untitled.starts_with("# Stable tag\n\n<!-- strata:stable:begin -->"));
        assert!(untitled.ends_with("\n\njust text\n"), "{untitled}");
        assert_eq!(stable_tag_page(Some(&untitled), &p), untitled);
    }

    #[test]
    fn image_names() {
        assert_eq!(image_name("ghcr.io/org/scipy:stable"), "scipy");
        assert_eq!(image_name("localhost:5000/a/b@sha256:00"), "b");
        assert_eq!(image_name("plain"), "plain");
    }
}
