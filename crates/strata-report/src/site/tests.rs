use super::*;
use crate::junit::CaseOutcome;

/// A small run: `(image, parent)` pairs, each built with a build and a
/// test stage starting at `at` seconds.
fn run_of(images: &[(&str, Option<&str>, f64)]) -> Run {
    Run {
        started: "2024-01-01T10:00:00Z".into(),
        finished: "2024-01-01T10:05:00Z".into(),
        head: "0123456789".into(),
        success: true,
        interrupted: false,
        images: images
            .iter()
            .map(|(name, parent, at)| Image {
                image: (*name).into(),
                plan: "default".into(),
                reference: format!("org/{name}:1-0123456"),
                parent: parent.map(Into::into),
                outcome: Outcome::Built,
                reason: Some("--all".into()),
                message: format!("built org/{name}"),
                duration_secs: 10.0,
                stages: vec![
                    stage("build", *at, 4.0),
                    stage("basic-tests", at + 4.0, 6.0),
                ],
                growth: None,
                budget_bytes: None,
                made: Vec::new(),
                logs: Vec::new(),
            })
            .collect(),
    }
}

fn stage(name: &str, at: f64, took: f64) -> Stage {
    Stage {
        platforms: Vec::new(),
        name: name.into(),
        status: StageStatus::Ok,
        started_secs: Some(at),
        duration_secs: took,
        message: None,
        tests: Vec::new(),
    }
}

fn site(runs: Vec<Run>) -> Vec<SiteFile> {
    render(&Site {
        title: "stack".into(),
        runs,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn file<'f>(files: &'f [SiteFile], name: &str) -> &'f str {
    &files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .contents
}

fn assert_no_overlap(layout: &graph::Layout) {
    for (a, first) in layout.boxes.iter().enumerate() {
        for second in &layout.boxes[a + 1..] {
            assert!(!first.overlaps(second), "{first:?} overlaps {second:?}");
        }
        assert!(first.x >= 0.0 && first.y >= 0.0);
        assert!(
            first.x < layout.width && first.y < layout.height,
            "{first:?} {layout:?}"
        );
    }
}

#[test]
fn every_image_has_a_box_of_its_own_parents_left_of_their_children() {
    let run = run_of(&[
        ("root", None, 0.0),
        ("a", Some("root"), 10.0),
        ("b", Some("root"), 10.0),
        ("c", Some("a"), 20.0),
        ("d", Some("a"), 20.0),
        ("e", Some("b"), 20.0),
        // Built on a published parent: a tree of its own.
        ("lone", Some("elsewhere"), 0.0),
    ]);
    let layout = graph::layout(&run);
    assert_eq!(layout.boxes.len(), run.images.len());
    assert_no_overlap(&layout);
    for i in 0..run.images.len() {
        if let Some(p) = run.parent_of(i) {
            assert_eq!(layout.boxes[p].column + 1, layout.boxes[i].column);
        }
    }
    // A parent stands level with the middle of its children.
    let (a, c, d) = (layout.boxes[1], layout.boxes[3], layout.boxes[4]);
    assert!((a.y - (c.y + d.y) / 2.0).abs() < 1e-9, "{layout:?}");
}

#[test]
fn sixty_images_and_a_cycle_lay_out_without_overlaps() {
    let big = synthetic_site(60, 1);
    let layout = graph::layout(&big.runs[0]);
    assert_eq!(layout.boxes.len(), 60);
    assert_no_overlap(&layout);
    // A malformed record (a parent loop) still places every image once.
    let looped = run_of(&[
        ("x", Some("y"), 0.0),
        ("y", Some("x"), 0.0),
        ("z", None, 0.0),
    ]);
    let layout = graph::layout(&looped);
    assert_eq!(layout.boxes.len(), 3);
    assert_no_overlap(&layout);
}

#[test]
fn the_graph_and_the_timeline_show_every_image_linked_to_its_page() {
    let run = run_of(&[
        ("root", None, 0.0),
        ("a", Some("root"), 10.0),
        ("b", Some("root"), 10.0),
    ]);
    let files = site(vec![run.clone()]);
    let index = file(&files, "index.html");
    for image in &run.images {
        let href = format!("href=\"{}\"", image.page());
        // Graph box, timeline label and table row each link to the page.
        assert!(index.matches(&href).count() >= 3, "{href}\n{index}");
        assert!(files.iter().any(|f| f.name == image.page()));
    }
    assert_eq!(index.matches("<g class=\"row").count(), 3);
    assert_eq!(index.matches("<g class=\"node").count(), 3);
}

#[test]
fn the_critical_path_is_the_chain_that_ended_last() {
    // root 0-10; a 10-20; b 10-35 (longer tests); c (a's child) 20-30.
    let mut run = run_of(&[
        ("root", None, 0.0),
        ("a", Some("root"), 10.0),
        ("b", Some("root"), 10.0),
        ("c", Some("a"), 20.0),
    ]);
    run.images[2].stages[1].duration_secs = 21.0;
    assert_eq!(timeline::critical_path(&run), vec![0, 2]);
    // c waited: ready at 20 (a's tests ended), started at 20.
    assert_eq!(timeline::ready(&run, 3), 20.0);
    run.images[3].stages[0].started_secs = Some(50.0);
    run.images[3].stages[1].started_secs = Some(54.0);
    assert_eq!(timeline::critical_path(&run), vec![0, 1, 3]);
    let files = site(vec![run]);
    let index = file(&files, "index.html");
    assert!(index.contains("root → a → c"), "{index}");
    assert!(index.contains("waited 30.0s in all"), "{index}");
}

#[test]
fn a_record_without_start_times_has_no_timeline_but_every_page() {
    let mut run = run_of(&[("root", None, 0.0), ("a", Some("root"), 0.0)]);
    for image in &mut run.images {
        for stage in &mut image.stages {
            stage.started_secs = None;
        }
    }
    let files = site(vec![run]);
    assert!(file(&files, "index.html").contains("there is no timeline"));
    assert_eq!(files.len(), 5);
    assert_eq!(
        render(&Site {
            title: "x".into(),
            runs: Vec::new()
        }),
        Err(SiteError::NoRun)
    );
}

#[test]
fn a_failed_tests_message_and_output_are_on_its_images_page_open() {
    let mut run = run_of(&[("root", None, 0.0)]);
    run.images[0].outcome = Outcome::Failed;
    run.images[0].stages[1].status = StageStatus::Failed;
    run.images[0].stages[1].tests = vec![
        crate::junit::TestCase {
            name: "test_python_version".into(),
            classname: "test.test_python".into(),
            time_secs: 0.1,
            outcome: CaseOutcome::Failed {
                message: "AssertionError: 3.10 != 3.11".into(),
                details: "Traceback…".into(),
            },
            output: "\u{1b}[31mred\u{1b}[0m\r\n".into(),
        },
        crate::junit::TestCase {
            name: "test_ok".into(),
            classname: "test.test_python".into(),
            time_secs: 0.1,
            outcome: CaseOutcome::Passed,
            output: String::new(),
        },
    ];
    let files = site(vec![run.clone()]);
    let page = file(&files, &run.images[0].page());
    assert!(page.contains("<details class=\"test failed\" open><summary>test_python_version"));
    assert!(page.contains("AssertionError: 3.10 != 3.11"));
    assert!(page.contains("<pre>red</pre>"), "{page}");
    assert!(page.contains("1 passed or skipped"));
    let index = file(&files, "index.html");
    assert!(index.contains("What failed") && index.contains("<li>test_python_version</li>"));
}

#[test]
fn every_string_from_the_records_is_escaped() {
    let hostile = "<script>alert(\"x\")</script>'&";
    let mut run = run_of(&[("root", None, 0.0), ("child", Some("root"), 10.0)]);
    let image = &mut run.images[1];
    image.image = hostile.into();
    image.plan = hostile.into();
    image.reason = Some(hostile.into());
    image.message = hostile.into();
    image.stages[0].name = hostile.into();
    image.stages[0].message = Some(hostile.into());
    image.logs = vec![LogLink {
        name: hostile.into(),
        href: format!("../logs/{hostile}"),
    }];
    image.stages[1].tests = vec![crate::junit::TestCase {
        name: hostile.into(),
        classname: hostile.into(),
        time_secs: 0.0,
        outcome: CaseOutcome::Failed {
            message: hostile.into(),
            details: format!("</pre>{hostile}"),
        },
        output: hostile.into(),
    }];
    run.head = hostile.into();
    let files = site(vec![run.clone(), run]);
    for f in files.iter().filter(|f| f.name.ends_with(".html")) {
        // The only script is the site's own.
        assert_eq!(f.contents.matches("<script").count(), 1, "{}", f.name);
        assert!(!f.contents.contains("</script>'"), "{}", f.name);
        assert!(!f.contents.contains("alert(\""), "{}", f.name);
        assert!(!f.contents.contains("</pre><script"), "{}", f.name);
    }
    assert!(
        files
            .iter()
            .any(|f| f.contents.contains("&lt;script&gt;alert(&quot;x&quot;)"))
    );
    assert!(
        files
            .iter()
            .any(|f| f.contents.contains("&lt;/pre&gt;&lt;script"))
    );
    assert_eq!(
        html::escape("a&b<c>\"d'\u{7}\n"),
        "a&amp;b&lt;c&gt;&quot;d&apos;&#10;"
    );
    assert_eq!(
        url_path("../run #2/logs/a+b=1.log"),
        "../run%20%232/logs/a+b=1.log"
    );
    assert_eq!(url_path("é\"<"), "%C3%A9%22%3C");
}

#[test]
fn sixty_images_over_five_runs_weigh_under_a_megabyte() {
    let site = synthetic_site(60, 5);
    let files = render(&site).unwrap_or_else(|e| panic!("{e}"));
    let total: usize = files.iter().map(|f| f.contents.len()).sum();
    let index = file(&files, "index.html");
    assert!(total < 1_000_000, "{total} bytes");
    assert_eq!(files.len(), 60 + 3);
    assert_eq!(index.matches("<g class=\"node").count(), 60);
    assert_eq!(
        index.matches("<g class=\"row").count(),
        60 - site.runs[4]
            .images
            .iter()
            .filter(|i| i.outcome == Outcome::Skipped)
            .count()
    );
    // History charts: one size and one duration chart per image.
    assert_eq!(index.matches("<svg class=\"spark\"").count(), 120);
}

#[test]
fn size_is_shown_against_budget_and_previous_build() {
    let site = synthetic_site(3, 2);
    let files = render(&site).unwrap_or_else(|e| panic!("{e}"));
    let page = file(&files, &site.runs[1].images[0].page());
    assert!(page.contains("<meter"), "{page}");
    assert!(page.contains("of its budget of 1.00 GB"), "{page}");
    assert!(page.contains("+3.00 MB since its previous build"), "{page}");
    assert!(page.contains("Packages since"), "{page}");
    assert!(page.contains("2.1.0 → 2.2.0"), "{page}");
    assert!(
        page.contains("href=\"../logs/image-00.build.log\""),
        "{page}"
    );
}

/// A damaged record whose stage ends past any time (start and duration
/// each finite, their sum not) renders: that stage is left off the axis,
/// which the image's other stage draws.
#[test]
fn a_stage_whose_end_overflows_is_left_off_the_timeline() {
    let mut run = run_of(&[("a", None, 0.0)]);
    run.images[0].stages[0].started_secs = Some(1e308);
    run.images[0].stages[0].duration_secs = 1e308;
    let (sent, rendered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(site(vec![run]));
    });
    let files = rendered
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the report did not render"));
    let index = file(&files, "index.html");
    let timeline = index
        .split_once("<svg class=\"timeline\"")
        .and_then(|(_, rest)| rest.split_once("</svg>"))
        .map(|(svg, _)| svg)
        .unwrap_or_else(|| panic!("no timeline: {index}"));
    assert!(
        !timeline.contains("inf") && !timeline.contains("NaN"),
        "{timeline}"
    );
}

/// A stage of an image of two platforms shows each platform's part as a
/// band of its bar, named in its title; a platform's failed part is marked.
#[test]
fn each_platforms_part_of_a_stage_is_a_band_of_its_bar() {
    let mut run = run_of(&[("a", None, 0.0)]);
    run.images[0].stages[0].platforms = vec![
        super::PlatformSpan {
            platform: "linux/amd64".into(),
            started_secs: 0.0,
            duration_secs: 1.5,
            ok: true,
        },
        super::PlatformSpan {
            platform: "linux/arm64".into(),
            started_secs: 1.5,
            duration_secs: 2.5,
            ok: false,
        },
    ];
    let files = site(vec![run]);
    let index = file(&files, "index.html");
    let bands: Vec<&str> = index.split("<rect class=\"bar platform ").skip(1).collect();
    assert_eq!(bands.len(), 2, "{index}");
    assert!(bands[0].starts_with("s-build\""), "{}", bands[0]);
    assert!(
        bands[0].contains("<title>a build for linux/amd64: ok, 1.5s from 0.0s</title>"),
        "{}",
        bands[0]
    );
    assert!(bands[1].starts_with("s-build failed\""), "{}", bands[1]);
    assert!(bands[1].contains("for linux/arm64: failed"), "{}", bands[1]);
}
