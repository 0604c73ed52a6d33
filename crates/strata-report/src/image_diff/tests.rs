use super::*;

fn layer(created_by: &str, size: u64) -> Layer {
    Layer {
        created: 1_700_000_000,
        created_by: created_by.into(),
        size,
    }
}

fn info(key: &str, description: &str, exit_code: i64, output: &str) -> InfoOutput {
    InfoOutput {
        key: key.into(),
        description: description.into(),
        command: format!("show {key}"),
        exit_code,
        output: output.into(),
    }
}

fn side(reference: &str) -> ImageSide {
    ImageSide {
        packages: None,
        reference: reference.into(),
        size: 1_200_000_000,
        layers: vec![
            layer("/bin/sh -c #(nop) ADD file:abc in / ", 700_000_000),
            layer(
                "/bin/sh -c apt-get update && apt-get install -y git",
                300_000_000,
            ),
            layer("/bin/sh -c pip install numpy", 200_000_000),
            layer("/bin/sh -c #(nop)  CMD [\"start-notebook.sh\"]", 0),
        ],
        info: vec![
            info("PY_VER", "Python version", 0, "Python 3.11.8\n"),
            info(
                "PIP_LIST",
                "Packages",
                0,
                "numpy 1.26.4\npandas 2.2.1\nscipy 1.12.0\n",
            ),
        ],
    }
}

fn old_and_new() -> (ImageSide, ImageSide) {
    (
        side("ghcr.io/org/img:2024.1-aaaaaaa"),
        side("ghcr.io/org/img:2024.1-bbbbbbb"),
    )
}

#[test]
fn identical_images_have_no_changes() {
    let (a, mut b) = old_and_new();
    // Rebuilt: same steps at other times.
    for l in &mut b.layers {
        l.created += 3600;
    }
    let d = compare(&a, &b);
    assert_eq!(d.growth, 0);
    assert_eq!(d.shared_layers, 4);
    assert!(d.added.is_empty() && d.removed.is_empty());
    assert_eq!(d.info.len(), 2);
    for i in &d.info {
        assert_eq!(i.unified, "");
        assert_eq!((i.lines_added, i.lines_removed), (0, 0));
        assert_eq!((i.from_exit_code, i.to_exit_code), (Some(0), Some(0)));
        assert!(!i.changed());
    }
    assert!(d.unchanged());

    let text = diff_text(&d);
    assert!(text.contains("size: 1.2 GB → 1.2 GB (±0 B)\n"), "{text}");
    assert!(text.contains("layers: all 4 shared\n"), "{text}");
    assert!(
        text.ends_with("\nunchanged: Python version (PY_VER), Packages (PIP_LIST)\n"),
        "{text}"
    );
    assert!(!text.contains("@@"));

    let md = diff_markdown(&d);
    assert!(md.starts_with("## Changes since ghcr.io/org/img:2024.1-aaaaaaa\n\n"));
    assert!(md.contains("No changes"), "{md}");
    assert!(!md.contains("```"));
}

#[test]
fn added_output_line_is_a_plus_line_and_counted() {
    let (a, mut b) = old_and_new();
    b.info[1].output = "numpy 1.26.4\npandas 2.2.1\npolars 0.20.0\nscipy 1.12.0\n".into();
    let d = compare(&a, &b);
    let pip = &d.info[1];
    assert_eq!(pip.key, "PIP_LIST");
    assert_eq!((pip.lines_added, pip.lines_removed), (1, 0));
    assert!(pip.changed());
    assert_eq!(
        pip.unified,
        "--- a/ghcr.io/org/img:2024.1-aaaaaaa\n\
         +++ b/ghcr.io/org/img:2024.1-bbbbbbb\n\
         @@ -1,3 +1,4 @@\n \
         numpy 1.26.4\n \
         pandas 2.2.1\n\
         +polars 0.20.0\n \
         scipy 1.12.0\n"
    );
    assert!(!d.info[0].changed());
    assert!(!d.unchanged());

    let text = diff_text(&d);
    assert!(
        text.contains("\nPackages (PIP_LIST): +1 -0 lines\n--- a/"),
        "{text}"
    );
    assert!(text.contains("\n+polars 0.20.0\n"), "{text}");
    assert!(
        text.ends_with("\nunchanged: Python version (PY_VER)\n"),
        "{text}"
    );

    let md = diff_markdown(&d);
    assert!(md.contains("### Packages (PIP\\_LIST)\n\n+1 −0 lines\n\n```diff\n--- a/"));
    assert!(md.contains("+polars 0.20.0\n scipy 1.12.0\n```\n"), "{md}");
    assert!(
        md.contains("Unchanged: Python version (PY\\_VER).\n"),
        "{md}"
    );
}

#[test]
fn changed_line_counts_both_ways_with_limited_context() {
    let (mut a, mut b) = old_and_new();
    let lines = |changed: &str| {
        (1..=20)
            .map(|i| {
                if i == 10 {
                    format!("{changed}\n")
                } else {
                    format!("pkg{i} 1.0\n")
                }
            })
            .collect::<String>()
    };
    a.info[1].output = lines("pkg10 1.0");
    b.info[1].output = lines("pkg10 2.0");
    let d = compare(&a, &b);
    let pip = &d.info[1];
    assert_eq!((pip.lines_added, pip.lines_removed), (1, 1));
    assert!(pip.unified.contains("@@ -7,7 +7,7 @@\n pkg7 1.0\n"));
    assert!(pip.unified.contains("\n-pkg10 1.0\n+pkg10 2.0\n"));
    assert!(pip.unified.ends_with(" pkg13 1.0\n"), "{}", pip.unified);
    assert!(!pip.unified.contains("pkg6 "));
}

#[test]
fn ansi_and_missing_final_newline_do_not_show() {
    let (mut a, mut b) = old_and_new();
    a.info[0].output = "\u{1b}[32mPython 3.11.8\u{1b}[0m\r\n".into();
    b.info[0].output = "Python 3.11.8".into();
    let d = compare(&a, &b);
    assert!(!d.info[0].changed(), "{:?}", d.info[0]);
    b.info[0].output = "Python 3.12.2".into();
    let d = compare(&a, &b);
    assert!(!d.info[0].unified.contains('\u{1b}'));
    assert!(!d.info[0].unified.contains("No newline"));
    assert!(
        d.info[0]
            .unified
            .ends_with("-Python 3.11.8\n+Python 3.12.2\n")
    );
}

#[test]
fn changed_middle_layer_splits_history() {
    let (a, mut b) = old_and_new();
    b.layers[1] = layer(
        "/bin/sh -c apt-get update && apt-get install -y git curl",
        310_000_000,
    );
    b.size = 1_210_000_000;
    let d = compare(&a, &b);
    assert_eq!(d.shared_layers, 1);
    assert_eq!(d.removed, a.layers[1..].to_vec());
    assert_eq!(d.added, b.layers[1..].to_vec());
    // The metadata step after the change is kept, with size 0.
    assert_eq!(d.added.last().map(|l| l.size), Some(0));
    assert_eq!(d.growth, 10_000_000);

    let text = diff_text(&d);
    assert!(
        text.contains("size: 1.2 GB → 1.2 GB (+10.0 MB)\n"),
        "{text}"
    );
    assert!(
        text.contains("layers: 1 shared, 3 removed, 3 added\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  - 300.0 MB  RUN apt-get update && apt-get install -y git\n\
         \x20 - 200.0 MB  RUN pip install numpy\n\
         \x20 - 0 B       CMD [\"start-notebook.sh\"]\n\
         \x20 + 310.0 MB  RUN apt-get update && apt-get install -y git curl\n"
        ),
        "{text}"
    );

    let md = diff_markdown(&d);
    assert!(md.contains("- **Layers:** 1 shared, 3 removed, 3 added\n"));
    assert!(
        md.contains("| removed | `RUN pip install numpy` | 200.0 MB |\n"),
        "{md}"
    );
    assert!(
        md.contains("| added | `CMD [\"start-notebook.sh\"]` | 0 B |\n"),
        "{md}"
    );
}

#[test]
fn same_command_different_size_is_a_different_layer() {
    let (a, mut b) = old_and_new();
    b.layers[2].size += 1;
    let d = compare(&a, &b);
    assert_eq!(d.shared_layers, 2);
    assert_eq!((d.added.len(), d.removed.len()), (2, 2));
}

#[test]
fn whitespace_and_buildkit_suffix_do_not_split_layers() {
    let (a, mut b) = old_and_new();
    b.layers[2].created_by = "RUN /bin/sh -c pip   install\n numpy # buildkit".into();
    let d = compare(&a, &b);
    assert_eq!(d.shared_layers, 4);
}

#[test]
fn appended_layers_only_added() {
    let (a, mut b) = old_and_new();
    b.layers.push(layer("/bin/sh -c #(nop)  USER jovyan", 0));
    let d = compare(&a, &b);
    assert_eq!(d.shared_layers, 4);
    assert!(d.removed.is_empty());
    assert_eq!(d.added.len(), 1);
    assert!(!d.unchanged());
    assert!(diff_text(&d).contains("layers: 4 shared, 0 removed, 1 added\n  + 0 B  USER jovyan\n"));
}

#[test]
fn shrinking_gives_negative_growth() {
    let (a, mut b) = old_and_new();
    b.size = a.size - 3_200;
    let d = compare(&a, &b);
    assert_eq!(d.growth, -3_200);
    assert!(diff_text(&d).contains("(-3.2 kB)"));
    assert!(diff_markdown(&d).contains("- **Size:** 1.2 GB → 1.2 GB (-3.2 kB)\n"));
}

#[test]
fn growth_saturates() {
    let mut a = side("a");
    let mut b = side("b");
    a.size = 0;
    b.size = u64::MAX;
    assert_eq!(compare(&a, &b).growth, i64::MAX);
    assert_eq!(compare(&b, &a).growth, i64::MIN);
}

#[test]
fn growth_formats() {
    assert_eq!(format_growth(100_000_000), "+100.0 MB");
    assert_eq!(format_growth(-3_200), "-3.2 kB");
    assert_eq!(format_growth(0), "±0 B");
    assert_eq!(format_growth(999), "+999 B");
    assert_eq!(format_growth(i64::MIN), "-9.2 EB");
}

#[test]
fn info_command_on_one_side_only() {
    let (mut a, mut b) = old_and_new();
    a.info.push(info("R_VER", "R version", 0, "R 4.3.2\n"));
    b.info.insert(
        0,
        info("CUDA", "CUDA version", 127, "sh: nvcc: not found\n"),
    );
    let d = compare(&a, &b);
    let keys: Vec<&str> = d.info.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["CUDA", "PY_VER", "PIP_LIST", "R_VER"]);

    let cuda = &d.info[0];
    assert_eq!((cuda.from_exit_code, cuda.to_exit_code), (None, Some(127)));
    assert_eq!((cuda.lines_added, cuda.lines_removed), (1, 0));
    assert!(
        cuda.unified
            .ends_with("@@ -0,0 +1 @@\n+sh: nvcc: not found\n"),
        "{}",
        cuda.unified
    );

    let r = &d.info[3];
    assert_eq!(r.description, "R version");
    assert_eq!((r.from_exit_code, r.to_exit_code), (Some(0), None));
    assert_eq!((r.lines_added, r.lines_removed), (0, 1));
    assert!(
        r.unified.ends_with("@@ -1 +0,0 @@\n-R 4.3.2\n"),
        "{}",
        r.unified
    );

    let text = diff_text(&d);
    assert!(text.contains(
        "\nCUDA version (CUDA): +1 -0 lines, only in ghcr.io/org/img:2024.1-bbbbbbb, exit code 127\n"
    ), "{text}");
    assert!(
        text.contains("\nR version (R_VER): +0 -1 lines, only in ghcr.io/org/img:2024.1-aaaaaaa\n"),
        "{text}"
    );
    let md = diff_markdown(&d);
    assert!(md.contains("### R version (R\\_VER)\n\n+0 −1 lines · only in ghcr.io/org/img:2024.1-aaaaaaa\n\n```diff\n"), "{md}");
}

#[test]
fn one_sided_command_without_output_is_still_a_change() {
    let (a, mut b) = old_and_new();
    b.info.push(info("EMPTY", "", 0, "\n"));
    let d = compare(&a, &b);
    let empty = &d.info[2];
    assert_eq!(empty.unified, "");
    assert!(empty.changed());
    assert!(!d.unchanged());
    assert!(
        diff_text(&d).contains("\nEMPTY: +0 -0 lines, only in ghcr.io/org/img:2024.1-bbbbbbb\n")
    );
    let md = diff_markdown(&d);
    assert!(md.contains("### EMPTY\n\n+0 −0 lines · only in"), "{md}");
}

#[test]
fn exit_code_change_alone_is_reported() {
    let (a, mut b) = old_and_new();
    b.info[0].exit_code = 1;
    let d = compare(&a, &b);
    assert!(d.info[0].changed());
    assert_eq!(d.info[0].unified, "");
    assert!(diff_text(&d).contains("\nPython version (PY_VER): +0 -0 lines, exit code 0 → 1\n"));
}

#[test]
fn duplicate_keys_pair_in_order() {
    let (mut a, mut b) = old_and_new();
    a.info = vec![info("K", "", 0, "one\n"), info("K", "", 0, "two\n")];
    b.info = vec![info("K", "", 0, "one\n"), info("K", "", 0, "three\n")];
    let d = compare(&a, &b);
    assert_eq!(d.info.len(), 2);
    assert!(!d.info[0].changed());
    assert_eq!((d.info[1].lines_added, d.info[1].lines_removed), (1, 1));
}

#[test]
fn markdown_fence_survives_backticks() {
    let (mut a, mut b) = old_and_new();
    a.info[0] = info("README", "Readme", 0, "text\n```python\nx = 1\n```\n");
    b.info[0] = info(
        "README",
        "Readme",
        0,
        "text\n```python\nx = 2\n```\n`````\n",
    );
    let d = compare(&a, &b);
    let md = diff_markdown(&d);
    let section = md.split("### Readme (README)\n").nth(1).unwrap_or_default();
    assert!(section.contains("\n``````diff\n--- a/"), "{md}");
    assert!(section.contains("\n ```\n+`````\n``````\n"), "{md}");
    // The body is between the only two lines made of six backticks.
    let fences = md.lines().filter(|l| l.starts_with("``````")).count();
    assert_eq!(fences, 2, "{md}");
}

#[test]
fn long_diffs_fold_in_details() {
    let (mut a, mut b) = old_and_new();
    a.info[1].output = String::new();
    b.info[1].output = (1..=FOLD_LINES).map(|i| format!("pkg{i}\n")).collect();
    let md = diff_markdown(&compare(&a, &b));
    let lines = FOLD_LINES + 3; // two headers and one hunk header
    assert!(
        md.contains(&format!(
            "<details><summary>{lines} lines of diff</summary>\n\n```diff\n--- a/"
        )),
        "{md}"
    );
    assert!(
        md.contains(&format!("+pkg{FOLD_LINES}\n```\n\n</details>\n")),
        "{md}"
    );

    b.info[1].output = "pkg1\n".into();
    let md = diff_markdown(&compare(&a, &b));
    assert!(!md.contains("<details>"));
}

#[test]
fn markdown_escapes_commands_and_references() {
    let (a, mut b) = old_and_new();
    b.layers.push(layer("/bin/sh -c echo `date` | tee /log", 5));
    let md = diff_markdown(&compare(&a, &b));
    assert!(
        md.contains("| added | ``RUN echo `date` \\| tee /log`` | 5 B |\n"),
        "{md}"
    );
    assert!(md.contains("- **From:** `ghcr.io/org/img:2024.1-aaaaaaa`\n"));
    assert!(md.contains("- **To:** `ghcr.io/org/img:2024.1-bbbbbbb`\n"));
}

#[test]
fn side_from_manifest_is_oldest_first() {
    let m = crate::manifest::ManifestData {
        reference: "r".into(),
        image: "img".into(),
        plan: String::new(),
        image_id: "sha256:1".into(),
        digest: None,
        size: 10,
        created: String::new(),
        revision: String::new(),
        base_ref: None,
        layers: vec![layer("newest", 1), layer("oldest", 9)],
        info: vec![info("K", "", 0, "x")],
        changes: None,
        packages: None,
        trigger: None,
        since_stable: None,
    };
    let s = ImageSide::from(&m);
    assert_eq!(s.reference, "r");
    assert_eq!(s.size, 10);
    assert_eq!(s.layers, vec![layer("oldest", 9), layer("newest", 1)]);
    assert_eq!(s.info, m.info);
}

#[test]
fn json_round_trip() {
    let (a, mut b) = old_and_new();
    b.info[0].output = "Python 3.12.2\n".into();
    let d = compare(&a, &b);
    let json = serde_json::to_string(&d).expect("serializes");
    let back: ImageDiff = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(back, d);
    let side_json = serde_json::to_string(&a).expect("serializes");
    assert_eq!(serde_json::from_str::<ImageSide>(&side_json).ok(), Some(a));
}
