//! Image manifests: what is inside one image (its layers and the output of its
//! info commands), as Markdown for people and JSON for tools.

use serde::{Deserialize, Serialize};

use crate::image::{COMMAND_MAX_CHARS, FOLD_LINES, InfoOutput, Layer, clean_command};
use crate::image_diff::ImageSide;
use crate::text::{
    clean_output, code_span, collapse_whitespace, escape_cell, escape_inline, human_size,
    push_code_block, truncate_chars, utc_datetime,
};

/// Everything a manifest reports about one built image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestData {
    /// The full image reference, e.g. `ghcr.io/org/image:2023.2-abc1234`.
    pub reference: String,
    /// The image's key in `spec.yml`.
    pub image: String,
    /// The plan it was built for (empty when the spec has no plans).
    pub plan: String,
    /// The engine's image id (`sha256:…` of the config).
    pub image_id: String,
    /// The registry digest, once pushed.
    pub digest: Option<String>,
    /// Total image size in bytes.
    pub size: u64,
    /// Creation time, as the engine reports it (RFC 3339).
    pub created: String,
    /// The source revision (commit) it was built from.
    pub revision: String,
    /// The reference of the parent image, if any.
    pub base_ref: Option<String>,
    /// The history, newest first, as the engine's history returns it.
    pub layers: Vec<Layer>,
    /// The info commands' results, in spec order.
    pub info: Vec<InfoOutput>,
    /// What changed since the image's previous published build, when
    /// there is one to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<crate::image_diff::ImageDiff>,
    /// Its packages, read from its layers (its SBOM's), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<strata_sbom::Package>>,
    /// The packages changed since its plan's stable image, when that image
    /// has an SBOM beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_stable: Option<StableChanges>,
    /// What made the run build it (the plan's reason: a file change,
    /// `--all`, a first build…), so a reader can tell why its tag moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

impl From<&ManifestData> for ImageSide {
    /// The side a manifest describes; its layers (newest first there) are
    /// reversed to oldest first.
    fn from(m: &ManifestData) -> Self {
        ImageSide {
            reference: m.reference.clone(),
            size: m.size,
            layers: m.layers.iter().rev().cloned().collect(),
            info: m.info.clone(),
            packages: m.packages.clone(),
        }
    }
}

/// Renders the manifest of one image as Markdown: a title, a facts list, the
/// layer table (oldest first, with cumulative sizes) and one section per info
/// command. Failing commands are shown with their exit code, never dropped.
pub fn manifest_markdown(m: &ManifestData) -> String {
    let mut out = String::new();
    out.push_str(&format!("# {}\n\n", escape_inline(&m.reference)));
    push_facts(&mut out, m);
    push_layers(&mut out, &m.layers);
    for info in &m.info {
        push_info(&mut out, info);
    }
    if let Some(packages) = &m.packages {
        push_packages(&mut out, packages);
    }
    if let Some(stable) = &m.since_stable {
        out.push_str(&format!(
            "## Packages since {}\n\n{}\n",
            escape_inline(&stable.since),
            strata_sbom::diff::markdown(&stable.packages)
        ));
    }
    if let Some(changes) = &m.changes {
        out.push('\n');
        out.push_str(&crate::image_diff::diff_markdown(changes));
    }
    out
}

/// The same data as [`manifest_markdown`], as pretty-printed JSON
/// (round-trips through `serde_json::from_str::<ManifestData>`).
pub fn manifest_json(m: &ManifestData) -> String {
    crate::artifact::to_json_pretty(m)
}

/// The packages changed since an image's stable build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StableChanges {
    /// The stable image's reference.
    pub since: String,
    /// What changed.
    pub packages: strata_sbom::diff::PackageDiff,
}

/// `## Packages`: how many of each package manager, and the full list
/// folded (the SBOM beside the manifest holds the rest: licenses, purls).
fn push_packages(out: &mut String, packages: &[strata_sbom::Package]) {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for p in packages {
        *counts.entry(p.ecosystem.purl_type()).or_default() += 1;
    }
    out.push_str("## Packages\n\n");
    if packages.is_empty() {
        out.push_str("No package manager recorded a package in this image.\n\n");
        return;
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    out.push_str(&format!(
        "{} packages: {}.\n\n",
        packages.len(),
        summary.join(", ")
    ));
    out.push_str("<details><summary>Every package</summary>\n\n| type | package | version |\n|---|---|---|\n");
    for p in packages {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            p.ecosystem.purl_type(),
            escape_cell(&collapse_whitespace(&p.name)),
            escape_cell(&collapse_whitespace(&p.version))
        ));
    }
    out.push_str("\n</details>\n\n");
}

fn push_facts(out: &mut String, m: &ManifestData) {
    let image = if m.plan.is_empty() {
        escape_inline(&m.image)
    } else {
        format!(
            "{} (plan {})",
            escape_inline(&m.image),
            escape_inline(&m.plan)
        )
    };
    let or_dash = |s: &str| {
        if s.trim().is_empty() {
            "-".to_string()
        } else {
            code_span(&collapse_whitespace(s))
        }
    };
    out.push_str(&format!("- **Image:** {image}\n"));
    out.push_str(&format!("- **Image ID:** {}\n", or_dash(&m.image_id)));
    let digest = match &m.digest {
        Some(d) if !d.trim().is_empty() => code_span(&collapse_whitespace(d)),
        _ => "not pushed".to_string(),
    };
    out.push_str(&format!("- **Digest:** {digest}\n"));
    out.push_str(&format!(
        "- **Size:** {} ({} bytes)\n",
        human_size(m.size),
        m.size
    ));
    out.push_str(&format!("- **Created:** {}\n", or_dash(&m.created)));
    out.push_str(&format!("- **Revision:** {}\n", or_dash(&m.revision)));
    if let Some(trigger) = &m.trigger {
        out.push_str(&format!(
            "- **Built because:** {}\n",
            escape_inline(trigger)
        ));
    }
    let base = match &m.base_ref {
        Some(b) if !b.trim().is_empty() => code_span(&collapse_whitespace(b)),
        _ => "none (root image)".to_string(),
    };
    out.push_str(&format!("- **Base:** {base}\n\n"));
}

fn push_layers(out: &mut String, layers: &[Layer]) {
    out.push_str("## Layers\n\n");
    if layers.is_empty() {
        out.push_str("No history recorded.\n\n");
        return;
    }
    out.push_str(&format!(
        "{} history entries, oldest first.\n\n",
        layers.len()
    ));
    out.push_str("| # | Created (UTC) | Command | Size | Cumulative |\n");
    out.push_str("|--:|---|---|--:|--:|\n");
    let mut cumulative: u64 = 0;
    for (i, layer) in layers.iter().rev().enumerate() {
        cumulative = cumulative.saturating_add(layer.size);
        let command = truncate_chars(&clean_command(&layer.created_by), COMMAND_MAX_CHARS);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            i + 1,
            utc_datetime(layer.created),
            code_span(&escape_cell(&command)),
            human_size(layer.size),
            human_size(cumulative),
        ));
    }
    out.push('\n');
}

fn push_info(out: &mut String, info: &InfoOutput) {
    let title = [info.description.as_str(), info.key.as_str()]
        .into_iter()
        .map(collapse_whitespace)
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| "Info command".to_string());
    out.push_str(&format!("## {}\n\n", escape_inline(&title)));
    let command = collapse_whitespace(&info.command);
    if !command.is_empty() {
        out.push_str(&format!("Command: {}\n\n", code_span(&command)));
    }
    if info.exit_code != 0 {
        out.push_str(&format!("> **⚠ exited with code {}**\n\n", info.exit_code));
    }
    let body = clean_output(&info.output);
    if body.trim().is_empty() {
        out.push_str("*(no output)*\n\n");
        return;
    }
    push_code_block(out, &body, "text", FOLD_LINES, "lines");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ManifestData {
        ManifestData {
            reference: "ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234".into(),
            image: "scipy-ml-notebook".into(),
            plan: "".into(),
            image_id: "sha256:1111".into(),
            digest: Some("sha256:2222".into()),
            size: 5_123_456_789,
            created: "2023-02-03T13:14:05Z".into(),
            revision: "abc1234".into(),
            base_ref: Some("ghcr.io/ucsd-ets/datascience-notebook:2023.2-0000000".into()),
            // Newest first, as the engine returns them.
            layers: vec![
                Layer {
                    created: 1_675_430_045,
                    created_by: "/bin/sh -c #(nop)  CMD [\"start-notebook.sh\"]".into(),
                    size: 0,
                },
                Layer {
                    created: 1_675_430_000,
                    created_by: "/bin/sh -c pip install a  |  tee   /tmp/log\n\t&& echo done"
                        .into(),
                    size: 2_000_000_000,
                },
                Layer {
                    created: 1_675_000_000,
                    created_by: "/bin/sh -c #(nop) ADD file:abc in / ".into(),
                    size: 3_000_000_000,
                },
            ],
            info: vec![
                InfoOutput {
                    key: "PY_VER".into(),
                    description: "Python version".into(),
                    command: "python --version".into(),
                    exit_code: 0,
                    output: "Python 3.11.8\n".into(),
                },
                InfoOutput {
                    key: "CUDA_VERSION".into(),
                    description: "CUDA version".into(),
                    command: "nvcc --version".into(),
                    exit_code: 127,
                    output: "sh: nvcc: not found\n".into(),
                },
            ],
            changes: None,
            packages: None,
            trigger: None,
            since_stable: None,
        }
    }

    fn table_rows(md: &str) -> Vec<&str> {
        md.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| #"))
            .collect()
    }

    #[test]
    fn layers_oldest_first_with_cumulative_sizes() {
        let md = manifest_markdown(&sample());
        let rows = table_rows(&md);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            "| 1 | 2023-01-29 13:46:40 | `ADD file:abc in /` | 3.00 GB | 3.00 GB |"
        );
        assert!(rows[1].starts_with("| 2 | 2023-02-03 13:13:20 | `RUN pip install a \\| tee /tmp/log && echo done` | 2.00 GB | 5.00 GB |"), "{}", rows[1]);
        assert_eq!(
            rows[2],
            "| 3 | 2023-02-03 13:14:05 | `CMD [\"start-notebook.sh\"]` | 0 B | 5.00 GB |"
        );
    }

    #[test]
    fn facts_list() {
        let md = manifest_markdown(&sample());
        assert!(md.starts_with("# ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234\n\n"));
        assert!(md.contains("- **Image ID:** `sha256:1111`\n"));
        assert!(md.contains("- **Digest:** `sha256:2222`\n"));
        assert!(md.contains("- **Size:** 5.12 GB (5123456789 bytes)\n"));
        assert!(md.contains("- **Revision:** `abc1234`\n"));
        assert!(
            md.contains("- **Base:** `ghcr.io/ucsd-ets/datascience-notebook:2023.2-0000000`\n")
        );
        let mut root = sample();
        root.base_ref = None;
        root.digest = None;
        let md = manifest_markdown(&root);
        assert!(md.contains("- **Base:** none (root image)\n"));
        assert!(md.contains("- **Digest:** not pushed\n"));
    }

    #[test]
    fn command_cleaning() {
        assert_eq!(clean_command("/bin/sh -c #(nop)  ENV A=b"), "ENV A=b");
        assert_eq!(
            clean_command("/bin/sh -c   apt-get\n  update"),
            "RUN apt-get update"
        );
        assert_eq!(
            clean_command("RUN /bin/sh -c make install # buildkit"),
            "RUN make install"
        );
        assert_eq!(clean_command("COPY . /app # buildkit"), "COPY . /app");
        assert_eq!(clean_command(""), "");
    }

    #[test]
    fn long_commands_truncated_and_pipes_escaped() {
        let mut m = sample();
        m.layers = vec![Layer {
            created: 0,
            created_by: format!("/bin/sh -c {}", "a | b ".repeat(60)),
            size: 1,
        }];
        let md = manifest_markdown(&m);
        let row = table_rows(&md)[0];
        assert!(row.contains("…`"), "{row}");
        // Every pipe of the command is escaped; the only bare pipes are the cell borders.
        let bare = row
            .match_indices('|')
            .filter(|(i, _)| *i == 0 || row.as_bytes()[i - 1] != b'\\')
            .count();
        assert_eq!(bare, 6, "{row}");
        let command_cell = row.split(" | ").nth(2).unwrap_or_default();
        let visible = command_cell.trim_matches('`').replace("\\|", "|");
        assert_eq!(visible.chars().count(), COMMAND_MAX_CHARS);
    }

    #[test]
    fn backticks_in_commands_use_longer_spans() {
        let mut m = sample();
        m.layers = vec![Layer {
            created: 0,
            created_by: "/bin/sh -c echo `date`".into(),
            size: 0,
        }];
        assert!(manifest_markdown(&m).contains("| `` RUN echo `date` `` |"));
    }

    #[test]
    fn failing_info_command_is_shown() {
        let md = manifest_markdown(&sample());
        let section = md.split("## CUDA version\n").nth(1).unwrap_or_default();
        assert!(section.contains("Command: `nvcc --version`"));
        assert!(section.contains("⚠ exited with code 127"));
        assert!(section.contains("```text\nsh: nvcc: not found\n```"));
        let ok = md.split("## Python version\n").nth(1).unwrap_or_default();
        let ok = ok.split("## ").next().unwrap_or_default();
        assert!(!ok.contains("exited with code"));
        assert!(ok.contains("```text\nPython 3.11.8\n```"));
    }

    #[test]
    fn fence_longer_than_backticks_in_output() {
        let mut m = sample();
        m.info = vec![InfoOutput {
            key: "README".into(),
            description: "".into(),
            command: "cat README.md".into(),
            exit_code: 0,
            output: "text\n```python\nx = 1\n```\n`````\n".into(),
        }];
        let md = manifest_markdown(&m);
        assert!(md.contains("## README\n"));
        assert!(
            md.contains("``````text\ntext\n```python\nx = 1\n```\n`````\n``````\n"),
            "{md}"
        );
    }

    #[test]
    fn details_folding_at_threshold() {
        let output = |n: usize| (1..=n).map(|i| format!("line {i}\n")).collect::<String>();
        let mut m = sample();
        m.info = vec![InfoOutput {
            key: "PIP_LIST".into(),
            description: "Packages".into(),
            command: "pip list".into(),
            exit_code: 0,
            output: output(FOLD_LINES),
        }];
        let md = manifest_markdown(&m);
        assert!(!md.contains("<details>"));
        assert!(md.contains(&format!("line {FOLD_LINES}\n```")));

        m.info[0].output = output(FOLD_LINES + 1);
        let md = manifest_markdown(&m);
        let n = FOLD_LINES + 1;
        assert!(md.contains(&format!(
            "<details><summary>{n} lines</summary>\n\n```text\nline 1\n"
        )));
        assert!(md.contains(&format!("line {n}\n```\n\n</details>\n")));
    }

    #[test]
    fn empty_output_and_no_history() {
        let mut m = sample();
        m.layers.clear();
        m.info = vec![InfoOutput {
            key: "K".into(),
            description: "Nothing".into(),
            command: "true".into(),
            exit_code: 0,
            output: "\n".into(),
        }];
        let md = manifest_markdown(&m);
        assert!(md.contains("No history recorded."));
        assert!(md.contains("## Nothing\n\nCommand: `true`\n\n*(no output)*\n"));
    }

    #[test]
    fn json_round_trip() {
        let m = sample();
        let json = manifest_json(&m);
        assert!(
            json.contains(
                "\n  \"reference\": \"ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234\""
            )
        );
        let back: ManifestData = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(back, m);
    }
}
