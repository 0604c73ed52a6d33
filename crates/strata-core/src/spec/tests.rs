//! The spec reader's unit tests, over the real fixtures and hostile text.

use super::*;

const CURRENT: &str = include_str!("../../../../fixtures/specs/v2-2026.spec.yml");
const LEGACY: &str = include_str!("../../../../fixtures/specs/v1-2022.spec.yml");
const TWO_PLANS: &str = include_str!("../../../../fixtures/specs/v1-two-plans.spec.yml");

fn ok(text: &str) -> Spec {
    let p = parse(text, "spec.yml");
    assert!(!p.has_errors(), "{:?}", p.diagnostics);
    p.spec.expect("a spec")
}

#[test]
fn reads_limits_and_test_inheritance() {
    let s = ok("images:
  a:
    image_name: o/a
    inherit_tests: false
    timeouts: {build: 4h, basic-tests: 45m}
    max_size: 12GB
  b: {image_name: o/b}
tag: {prefix: '1'}
");
    let a = s.image("a").unwrap();
    assert!(!a.inherit_tests);
    assert_eq!(a.max_size, Some(12_000_000_000));
    assert_eq!(a.timeouts["build"].as_secs(), 4 * 3600);
    assert_eq!(a.timeouts["basic_tests"].as_secs(), 45 * 60);
    let b = s.image("b").unwrap();
    assert!(b.inherit_tests && b.timeouts.is_empty() && b.max_size.is_none());
}

#[test]
fn bad_limits_name_the_line_and_what_to_write() {
    let p = parse(
        "images:
  a:
    image_name: o/a
    timeouts: {biuld: 4h, push: soon}
    max_size: huge
tag: {prefix: '1'}
",
        "spec.yml",
    );
    let errors: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            format!(
                "{}: {} ({:?})",
                d.pos.map_or(0, |p| p.line),
                d.message,
                d.help
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("4: 'biuld'") && errors[0].contains("did you mean 'build'"));
    assert!(errors[1].starts_with("4: timeouts of image 'a'.push: 'soon' is not a duration"));
    assert!(errors[2].starts_with("5: max_size of image 'a': 'huge' is not a size"));
}

#[test]
fn reads_the_current_schema() {
    let s = ok(CURRENT);
    assert_eq!(s.schema, Schema::Current);
    assert_eq!(s.roots[0].value, "datascience-notebook");
    assert_eq!(
        s.image_keys().collect::<Vec<_>>(),
        [
            "datascience-notebook",
            "rstudio-notebook",
            "scipy-ml-notebook"
        ]
    );
    assert_eq!(s.plans.len(), 1);
    assert_eq!(s.plans[0].name.value, DEFAULT_PLAN);
    assert_eq!(s.plans[0].tag_prefix.value, "2026.3");
    let rstudio = s.image("rstudio-notebook").unwrap();
    assert_eq!(rstudio.parent(), Some("datascience-notebook"));
    // prepull is unset: true, as the older pipeline defaults it.
    assert!(rstudio.integration_tests && rstudio.prune && rstudio.prepull);
    let root = s.image("datascience-notebook").unwrap();
    assert_eq!(root.build_args["PY_VER_SHORT"], "3.11");
    assert_eq!(
        s.info_cmds["CUDA_VERSION"].command,
        r#"bash -c 'conda list | grep "cuda\|cudnn\|nccl"'"#
    );
}

#[test]
fn reads_the_legacy_schema_with_plans() {
    let s = ok(TWO_PLANS);
    assert_eq!(s.schema, Schema::Legacy);
    let plans: Vec<_> = s
        .plans
        .iter()
        .map(|p| (p.name.value.as_str(), p.tag_prefix.value.as_str()))
        .collect();
    assert_eq!(plans, [("PYTHON39", "2021.3"), ("PYTHON38", "2021.2")]);
    let base = s.image("datahub-base-notebook").unwrap();
    assert_eq!(base.build_args["placeholder"], "test_XXX");
    assert_eq!(base.plan_args["PYTHON38"].value["PY_VER_SHORT"], "3.8");
    let scipy = s.image("scipy-ml-notebook").unwrap();
    assert!(!scipy.in_plan("PYTHON39") && scipy.in_plan("PYTHON38"));
    assert_eq!(s.info_cmds.len(), 5);
    let l = ok(LEGACY);
    assert_eq!(l.image("scipy-ml-notebook").unwrap().info_cmds.len(), 5);
    assert_eq!(l.plans[0].stable_tag(), "2023.1-stable");
}

#[test]
fn scalars_are_read_as_written() {
    let s = ok(
        "images:\n  a:\n    image_name: x/a\n    build_args: {V: 3.10, N: 007, B: yes}\ntag:\n  prefix: 2023.10\n",
    );
    assert_eq!(s.plans[0].tag_prefix.value, "2023.10");
    let a = s.image("a").unwrap();
    assert_eq!(a.build_args["V"], "3.10");
    assert_eq!(a.build_args["N"], "007");
    assert_eq!(a.build_args["B"], "yes");
}

#[test]
fn tags_as_a_list_of_plans() {
    let s = ok(
        "images:\n  a: {image_name: x/a}\ntags:\n  - P38:\n      tag_prefix: 2021.2\n  - P39:\n      tag_prefix: 2021.3\n",
    );
    assert_eq!(
        s.plans
            .iter()
            .map(|p| p.name.value.as_str())
            .collect::<Vec<_>>(),
        ["P38", "P39"]
    );
}

#[test]
fn unknown_keys_warn_with_the_closest_known_key() {
    let p = parse(
        "images:\n  a:\n    image_name: x/a\n    depnds_on: b\ntag: {prefix: '1'}\n",
        "spec.yml",
    );
    assert!(!p.has_errors(), "{:?}", p.diagnostics);
    let w = &p.diagnostics[0];
    assert_eq!(w.pos, Some(Pos { line: 4, column: 5 }));
    assert!(w.message.contains("depnds_on"));
    assert_eq!(w.help.as_deref(), Some("did you mean 'depend_on'?"));
}

#[test]
fn shape_errors_are_all_reported_with_positions() {
    let text = "images:\n  a:\n    image_name: [x]\n    build_args: {K: [1, 2]}\n    prune: [maybe]\n  b: {}\ntag: {prefix: '1'}\n";
    let p = parse(text, "spec.yml");
    let lines: Vec<_> = p
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.pos.unwrap().line)
        .collect();
    assert_eq!(lines, [3, 4, 5, 6], "{:#?}", p.diagnostics);
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.message.contains("build arg 'K'"))
    );
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.message.contains("'b' has no image_name"))
    );
}

#[test]
fn non_boolean_flags_are_read_as_the_older_pipeline_read_them_with_a_warning() {
    let text = "images:\n  a:\n    image_name: x/a\n    integration_tests: TORCH_AUD_VER\n    prepull: false -- uncomment to disable\n    prune: 0\n    basic_tests:\ntag: {prefix: '1'}\n";
    let p = parse(text, "spec.yml");
    assert!(!p.has_errors(), "{:#?}", p.diagnostics);
    let a = p.spec.as_ref().unwrap().image("a").unwrap();
    assert!(a.integration_tests, "non-empty text reads true");
    assert!(a.prepull, "'false -- ...' is non-empty text: true");
    assert!(!a.prune, "0 reads false");
    assert!(!a.basic_tests, "an empty value reads false");
    let lines: Vec<_> = p.diagnostics.iter().map(|d| d.pos.unwrap().line).collect();
    assert_eq!(lines, [4, 5, 6, 7], "{:#?}", p.diagnostics);
    let first = &p.diagnostics[0];
    assert!(!first.is_error());
    assert!(
        first.message.contains("'TORCH_AUD_VER'") && first.message.contains("read as true"),
        "{first}"
    );
    assert_eq!(first.help.as_deref(), Some("write true or false"));
    assert!(
        p.diagnostics[3].message.contains("is empty"),
        "{:#?}",
        p.diagnostics
    );
    let unset = parse("images:\n  a: {image_name: x/a}\ntag: {prefix: '1'}\n", "f");
    assert!(
        unset.spec.unwrap().images[0].prepull,
        "prepull defaults to true"
    );
}

#[test]
fn conflict_markers_are_reported_not_parsed() {
    let text = "images:\n<<<<<<< HEAD\n  a: {image_name: x/a}\n=======\n  a: {image_name: y/a}\n>>>>>>> 42158c8\n";
    let p = parse(text, "spec.yml");
    assert!(p.spec.is_none());
    assert_eq!(
        p.diagnostics
            .iter()
            .map(|d| d.pos.unwrap().line)
            .collect::<Vec<_>>(),
        [2, 4, 6]
    );
}

#[test]
fn missing_prefix_and_mixed_schemas_are_errors() {
    assert!(parse("images:\n  a: {image_name: x/a}\n", "f").has_errors());
    let p = parse(
        "images:\n  a: {image_name: x/a}\ntag: {prefix: '1'}\nplans: {P: {tag_prefix: '2'}}\n",
        "f",
    );
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.message.contains("cannot be combined"))
    );
}

#[test]
fn non_mapping_documents_are_refused() {
    for text in ["- a\n- b\n", "just text\n", ""] {
        let p = parse(text, "f");
        assert!(p.has_errors(), "{text:?}");
    }
}

#[test]
fn reads_the_signing_key_path_and_warns_of_other_signing_keys() {
    let s = ok(
        "images:\n  a: {image_name: o/a}\ntag: {prefix: '1'}\nsigning: {key: /run/secrets/cosign.key}\n",
    );
    assert_eq!(
        s.sign_key.map(|k| k.value).as_deref(),
        Some("/run/secrets/cosign.key")
    );
    assert_eq!(
        ok("images:\n  a: {image_name: o/a}\ntag: {prefix: '1'}\n").sign_key,
        None
    );
    let p = parse(
        "images:\n  a: {image_name: o/a}\ntag: {prefix: '1'}\nsigning: {keys: a.pem}\n",
        "spec.yml",
    );
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.help.as_deref() == Some("did you mean 'key'?")),
        "{:?}",
        p.diagnostics
    );
    assert_eq!(p.spec.and_then(|s| s.sign_key), None);
}

#[test]
fn bad_gates_name_the_line_and_what_to_write() {
    let p = parse(
        "images:
  a:
    image_name: o/a
    gates:
      scan: {mode: block}
      ../../escape: {command: x}
      quick: {command: x, timeout: 0s}
tag: {prefix: '1'}
gates:
  trivy:
    command: trivy image {ref}
    timeout: later
    retries: 2
",
        "spec.yml",
    );
    let lines: Vec<String> = p
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}: {} ({:?})",
                d.pos.map_or(0, |p| p.line),
                d.message,
                d.help
            )
        })
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for (said, and_also) in [
        ("6: gate name '../../escape'", ""),
        (
            "7: gates of image 'a'.quick.timeout: '0s' is no time at all",
            "",
        ),
        ("5: gates of image 'a'.scan.mode is 'block'", "mode: warn"),
        ("5: gate 'scan' has no command", ""),
        ("12: gates.trivy.timeout: 'later' is not a duration", ""),
        ("13: unknown key 'retries'", ""),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(said) && l.contains(and_also)),
            "no `{said}` in {lines:?}"
        );
    }
}
