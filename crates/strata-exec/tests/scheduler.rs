//! The scheduler over an in-memory backend: ordering, the `--jobs` bound,
//! gating of descendants, cancellation and a panicking image, without
//! Docker. (The real engine is tested end to end in strata-cli's tests.)
//!
//! Time is paused (`start_paused`): a fake build "takes" its duration on
//! tokio's virtual clock, so the schedule is deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strata_exec::testing::{Fake, pushed_digest};
use strata_exec::{BuilderChoice, Executor, Outcome, RunOptions, RunRecord, Stage, Target};
use support::{STACK, plan_of};
use tokio::sync::watch;

mod support;

/// root and four children.
const WIDE: &str = "\
images:
  root: {image_name: t/root}
  c1: {image_name: t/c1, depend_on: root}
  c2: {image_name: t/c2, depend_on: root}
  c3: {image_name: t/c3, depend_on: root}
  c4: {image_name: t/c4, depend_on: root}
tag: {prefix: '1'}
";

/// Runs the build stage of every image of `stack` on `fake`.
async fn run(
    fake: &Fake,
    stack: &str,
    jobs: usize,
    cancel: watch::Receiver<bool>,
) -> (RunRecord, tempfile::TempDir) {
    run_with(fake, stack, jobs, cancel, |_, _| {}).await
}

/// A run of the build stage only, writing under `out`.
fn build_options(out: &std::path::Path, jobs: usize) -> RunOptions {
    RunOptions {
        images_dir: out.join("images"),
        out_dir: out.join("out"),
        jobs,
        test_jobs: 1,
        push: false,
        revision: "0123456789abcdef".into(),
        python: "python3".into(),
        auth: Arc::new(|_: &str| None),
        stages: vec![Stage::Build],
        builder: BuilderChoice::Auto,
        source: None,
        secrets: Vec::new(),
        timeouts: BTreeMap::new(),
        retest: false,
        platform: "linux/amd64".into(),
        sbom_format: strata_sbom::Format::Spdx,
        signer: None,
    }
}

/// [`run`], with the options and targets changed by `change` first.
async fn run_with(
    fake: &Fake,
    stack: &str,
    jobs: usize,
    cancel: watch::Receiver<bool>,
    change: impl FnOnce(&mut RunOptions, &mut Vec<Target>),
) -> (RunRecord, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut options = build_options(out.path(), jobs);
    let (plan, mut targets) = plan_of(stack);
    change(&mut options, &mut targets);
    let record = Executor::new(fake.clone(), options, None)
        .run(&plan, targets, cancel)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (record, out)
}

/// Where `event` stands among `events` (it must be there).
fn position(events: &[String], event: &str) -> usize {
    events
        .iter()
        .position(|x| x == event)
        .unwrap_or_else(|| panic!("no {event} in {events:?}"))
}

fn never_cancelled() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    // The sender lives for the test: nobody cancels.
    std::mem::forget(tx);
    rx
}

fn outcomes(record: &RunRecord) -> BTreeMap<String, (Outcome, String)> {
    record
        .images
        .iter()
        .map(|i| (i.image.clone(), (i.outcome, i.message.clone())))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_child_starts_only_after_its_parent_is_built() {
    let fake = Fake::new(Duration::from_secs(1));
    let (record, _out) = run(&fake, STACK, 4, never_cancelled()).await;
    assert!(record.success, "{record:#?}");
    let events = fake.events();
    let at = |e: &str| position(&events, e);
    for (parent, child) in [("root", "a"), ("root", "b"), ("a", "c")] {
        assert!(
            at(&format!("end {parent}")) < at(&format!("start {child}")),
            "{child} started before {parent} ended: {events:?}"
        );
    }
    // Siblings run side by side.
    assert!(at("start b") < at("end a"), "{events:?}");
    // Each stage records when it started in the run (the report's
    // timeline): a child's build after its parent's ended.
    let build = |image: &str| {
        let stage = &record
            .images
            .iter()
            .find(|i| i.image == image)
            .unwrap_or_else(|| panic!("no {image}"))
            .stages[0];
        let started = stage.started_secs.unwrap_or_else(|| panic!("{stage:?}"));
        (started, started + stage.duration_secs)
    };
    // (Times are the wall clock's, rounded to milliseconds: the paused
    // clock does not move them.)
    for (parent, child) in [("root", "a"), ("root", "b"), ("a", "c")] {
        assert!(build(parent).1 <= build(child).0 + 0.002, "{record:#?}");
    }
}

#[tokio::test(start_paused = true)]
async fn no_more_images_run_at_once_than_jobs() {
    for (jobs, most) in [(1, 1), (2, 2), (4, 4)] {
        let fake = Fake::new(Duration::from_secs(1));
        let (record, _out) = run(&fake, WIDE, jobs, never_cancelled()).await;
        assert!(record.success, "{record:#?}");
        assert_eq!(
            fake.most_running(),
            most,
            "--jobs {jobs}: {:?}",
            fake.events()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_image_skips_its_descendants_only() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.failing.insert("a".into());
    let (record, _out) = run(&fake, STACK, 2, never_cancelled()).await;
    assert!(!record.success);
    let got = outcomes(&record);
    assert_eq!(got["root"].0, Outcome::Built);
    assert_eq!(got["b"].0, Outcome::Built);
    assert_eq!(got["a"].0, Outcome::Failed);
    assert!(got["a"].1.contains("a does not build"), "{got:?}");
    assert_eq!(got["c"].0, Outcome::Skipped);
    assert!(got["c"].1.contains("parent failed: t/a:"), "{got:?}");
    assert!(!fake.events().contains(&"start c".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_image_is_that_images_failure() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.panicking.insert("a".into());
    let (record, out) = run(&fake, STACK, 2, never_cancelled()).await;
    assert!(!record.success);
    let got = outcomes(&record);
    assert_eq!(got["a"].0, Outcome::Failed, "{got:?}");
    assert!(
        got["a"].1.contains("strata failed while running it")
            && got["a"].1.contains("the fake engine broke on a"),
        "{got:?}"
    );
    // Its child is skipped for that reason, not left "unfinished".
    assert_eq!(got["c"].0, Outcome::Skipped, "{got:?}");
    assert!(got["c"].1.contains("parent failed: t/a:"), "{got:?}");
    assert_eq!(got["b"].0, Outcome::Built, "{got:?}");
    // run.json says the same.
    let written = std::fs::read_to_string(out.path().join("out/artifacts/run.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(written.contains("the fake engine broke on a"), "{written}");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_stops_and_skips_what_had_not_started() {
    let fake = Fake::new(Duration::from_secs(10));
    let (tx, rx) = watch::channel(false);
    let cancel = tokio::spawn(async move {
        // The root is building (it takes 10 s) when the run is cancelled.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = tx.send(true);
        tx
    });
    let (record, _out) = run(&fake, STACK, 2, rx).await;
    let _sender = cancel.await;
    assert!(record.interrupted && !record.success, "{record:#?}");
    let got = outcomes(&record);
    assert_ne!(got["root"].0, Outcome::Built, "{got:?}");
    for child in ["a", "b", "c"] {
        assert_eq!(got[child].0, Outcome::Skipped, "{got:?}");
    }
    let events = fake.events();
    assert!(
        !events
            .iter()
            .any(|e| e.starts_with("start a") || e.starts_with("start b"))
    );
    assert!(
        !events.contains(&"end root".to_string()),
        "the root's build was not abandoned: {events:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stage_past_its_time_limit_fails_its_image_and_reports_why() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.test_time.insert("a".into(), Duration::from_secs(3600));
    let checks = strata_structure::parse(
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: quick\n    command: 'true'\n",
        "checks.yaml",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let (record, out) = run_with(&fake, STACK, 4, never_cancelled(), |options, targets| {
        options.stages = vec![Stage::Build, Stage::BasicTests];
        options
            .timeouts
            .insert("basic_tests".into(), Duration::from_secs(5));
        for t in targets.iter_mut() {
            t.basic_tests.structure = vec![checks.clone()];
        }
    })
    .await;
    let got = outcomes(&record);
    assert_eq!(got["a"].0, Outcome::Failed, "{got:?}");
    assert_eq!(got["a"].1, "basic-tests failed: timed out after 5s");
    assert_eq!(got["c"].0, Outcome::Skipped, "{got:?}");
    for image in ["root", "b"] {
        assert_eq!(got[image].0, Outcome::Built, "{got:?}");
    }
    let a = record
        .images
        .iter()
        .find(|i| i.image == "a")
        .unwrap_or_else(|| panic!("no a"));
    let tests = a
        .stages
        .iter()
        .find(|s| s.stage == "basic-tests")
        .unwrap_or_else(|| panic!("no basic-tests"));
    // Cut off at the limit, not when the tests would have ended.
    assert!(tests.duration_secs < 6.0, "{tests:?}");
    // The report shows the stage as an error case of its own.
    assert_eq!(tests.tests.len(), 1, "{tests:?}");
    assert!(tests.tests[0].is_failure());
    let junit = std::fs::read_to_string(out.path().join("out/artifacts/junit.xml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(junit.contains("timed out after 5s"), "{junit}");
    // The images that passed report their structure test.
    let root = record
        .images
        .iter()
        .find(|i| i.image == "root")
        .unwrap_or_else(|| panic!("no root"));
    assert_eq!(root.stages[1].message.as_deref(), Some("1 test passed"));
}

#[tokio::test(start_paused = true)]
async fn a_platforms_builds_go_to_its_own_engine() {
    let main = Fake::new(Duration::from_secs(1));
    let arm = Fake::new(Duration::from_secs(1));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (plan, mut targets) = plan_of(STACK);
    for t in &mut targets {
        t.build.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
    }
    let record = Executor::new(main.clone(), build_options(out.path(), 2), None)
        .with_engines(BTreeMap::from([("linux/arm64".to_string(), arm.clone())]))
        .run(&plan, targets, never_cancelled())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.success, "{record:#?}");
    // Every image once on each engine: amd64 here, arm64 there.
    for fake in [&main, &arm] {
        let mut started: Vec<String> = fake
            .events()
            .into_iter()
            .filter(|e| e.starts_with("start "))
            .collect();
        started.sort();
        assert_eq!(started, ["start a", "start b", "start c", "start root"]);
    }
    // Each image's build says each platform's part, one after the other,
    // within the stage (timed by the wall clock, which the paused one does
    // not move: their bounds are checked, not their lengths).
    for image in &record.images {
        let build = &image.stages[0];
        let platforms: Vec<&str> = build
            .platforms
            .iter()
            .map(|p| p.platform.as_str())
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{build:?}");
        // Each figure is rounded to the millisecond on its own.
        let slack = 0.005;
        let start = build.started_secs.unwrap_or(f64::NAN);
        let end = start + build.duration_secs + slack;
        let [amd, arm] = &build.platforms[..] else {
            panic!("{build:?}")
        };
        assert!(
            start <= amd.started_secs + slack
                && amd.started_secs + amd.duration_secs <= arm.started_secs + slack
                && arm.started_secs + arm.duration_secs <= end
                && amd.ok
                && arm.ok,
            "{build:?}"
        );
    }
}

/// Prune removes an image's local copy once it is pushed and its children
/// are built on it, never before; waiting for them gives its `--jobs` slot
/// back, so one slot runs the whole stack.
#[tokio::test(start_paused = true)]
async fn prune_waits_for_the_children_built_on_the_image() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.stores_images = true;
    let run = run_with(&fake, STACK, 1, never_cancelled(), |options, targets| {
        options.push = true;
        options.stages = vec![Stage::Build, Stage::Push, Stage::Prune];
        for t in targets.iter_mut() {
            t.image.prune = true;
        }
    });
    let (record, _out) = tokio::time::timeout(Duration::from_secs(3600), run)
        .await
        .unwrap_or_else(|_| panic!("the run did not end: {:?}", fake.events()));
    assert!(record.success, "{record:#?}");
    let events = fake.events();
    let at = |e: &str| position(&events, e);
    for (parent, child) in [("root", "a"), ("root", "b"), ("a", "c")] {
        assert!(
            at(&format!("end {child}")) < at(&format!("remove {parent}")),
            "{parent} removed before {child} was built: {events:?}"
        );
    }
    for image in ["root", "a", "b", "c"] {
        at(&format!("remove {image}"));
    }
    assert_eq!(fake.most_running(), 1, "{events:?}");
}

/// Without a push, the image's only copy stays.
#[tokio::test(start_paused = true)]
async fn prune_keeps_an_image_that_was_not_pushed() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.stores_images = true;
    let (record, _out) = run_with(&fake, STACK, 2, never_cancelled(), |options, targets| {
        options.stages = vec![Stage::Build, Stage::Push, Stage::Prune];
        for t in targets.iter_mut() {
            t.image.prune = true;
        }
    })
    .await;
    assert!(record.success, "{record:#?}");
    assert!(
        fake.events().iter().all(|e| !e.starts_with("remove")),
        "{:?}",
        fake.events()
    );
    let root = record.images.iter().find(|i| i.image == "root").unwrap();
    let prune = root.stages.iter().find(|s| s.stage == "prune").unwrap();
    assert!(
        prune
            .message
            .as_deref()
            .is_some_and(|m| m.contains("not pushed")),
        "{prune:?}"
    );
}

/// A random stack: image `i{n}` on a random earlier image, or a root.
fn random_stack(parents: &[Option<usize>]) -> String {
    let mut spec = String::from("images:\n");
    for (i, parent) in parents.iter().enumerate() {
        match parent.map(|p| p % i.max(1)).filter(|_| i > 0) {
            Some(p) => spec.push_str(&format!(
                "  i{i}: {{image_name: t/i{i}, depend_on: i{p}}}\n"
            )),
            None => spec.push_str(&format!("  i{i}: {{image_name: t/i{i}}}\n")),
        }
    }
    spec.push_str("tag: {prefix: '1'}\n");
    spec
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Over random stacks and random failures of builds, tests and pushes:
    /// no child starts before its parent is built and tested, nor is pushed
    /// before its parent is; nothing is pushed after its tests failed, nor
    /// after its parent's push failed; an image passes exactly
    /// when it and every ancestor passed every stage; every pushed digest
    /// is that of an image built in the run.
    #[test]
    fn the_schedule_publishes_only_what_passed(
        parents in proptest::collection::vec(proptest::option::weighted(0.8, 0usize..8), 1..8),
        failing in proptest::collection::vec(0u8..4, 8),
        jobs in 1usize..4,
    ) {
        let stack = random_stack(&parents);
        let name = |i: usize| format!("i{i}");
        let mut fake = Fake::new(Duration::from_secs(1));
        fake.stores_images = true;
        for (i, kind) in failing.iter().enumerate().take(parents.len()) {
            match kind {
                1 => fake.failing.insert(name(i)),
                2 => fake.failing_tests.insert(name(i)),
                3 => fake.failing_pushes.insert(name(i)),
                _ => false,
            };
        }
        let checks = strata_structure::parse(
            "schemaVersion: 2.0.0\ncommandTests:\n  - name: check\n    command: 'true'\n",
            "checks.yaml",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let (record, _out) = runtime.block_on(run_with(&fake, &stack, jobs, never_cancelled(), |options, targets| {
            options.push = true;
            options.stages = vec![Stage::Build, Stage::BasicTests, Stage::Push];
            for t in targets.iter_mut() {
                t.basic_tests.structure = vec![checks.clone()];
            }
        }));
        let events = fake.events();
        let at = |e: &str| events.iter().position(|x| x == e);
        let (plan, _) = plan_of(&stack);
        let parent_of: BTreeMap<String, Option<String>> = plan
            .builds
            .iter()
            .map(|b| (b.image.clone(), b.parent.clone()))
            .collect();
        let passes = |image: &str| {
            !fake.failing.contains(image)
                && !fake.failing_tests.contains(image)
                && !fake.failing_pushes.contains(image)
        };
        let mut all_pass = true;
        for result in &record.images {
            let image = result.image.as_str();
            let mut chain = vec![image.to_string()];
            while let Some(Some(p)) = chain.last().and_then(|c| parent_of.get(c)) {
                chain.push(p.clone());
            }
            let expected = chain.iter().all(|i| passes(i));
            all_pass &= expected;
            proptest::prop_assert_eq!(result.success, expected, "{}: {:?}", image, events);
            if let Some(Some(parent)) = parent_of.get(image) {
                if let Some(start) = at(&format!("start {image}")) {
                    let tested = at(&format!("test {parent}"));
                    proptest::prop_assert!(
                        tested.is_some_and(|t| t < start),
                        "{} started before {} was tested: {:?}", image, parent, events
                    );
                }
                if let Some(pushed) = at(&format!("push {image}")) {
                    let parent_pushed = at(&format!("push {parent}"));
                    proptest::prop_assert!(
                        parent_pushed.is_some_and(|p| p < pushed),
                        "{} pushed before {}: {:?}", image, parent, events
                    );
                }
            }
            if let Some(pushed) = at(&format!("push {image}")) {
                proptest::prop_assert!(passes(image) || fake.failing_pushes.contains(image));
                proptest::prop_assert!(!fake.failing.contains(image) && !fake.failing_tests.contains(image));
                let tested = at(&format!("test {image}"));
                proptest::prop_assert!(tested.is_some_and(|t| t < pushed), "{}: {:?}", image, events);
            }
            if let Some(digest) = &result.digest {
                proptest::prop_assert_eq!(digest, &pushed_digest(&result.reference));
                let built = at(&format!("end {image}"));
                proptest::prop_assert!(built.is_some(), "{}: {:?}", image, events);
            }
        }
        proptest::prop_assert_eq!(record.success, all_pass);
    }
}

/// A reference that names other content once built (another process
/// tagged it) is not pushed: the image fails for its provenance, and so
/// does its child, whose build checks its base first (it builds while its
/// parent pushes); unrelated images carry on.
#[tokio::test(start_paused = true)]
async fn a_reference_retagged_after_its_build_is_not_pushed() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.stores_images = true;
    fake.retagged.insert("a".into());
    let (record, _out) = run_with(&fake, STACK, 2, never_cancelled(), |options, _| {
        options.push = true;
        options.stages = vec![Stage::Build, Stage::Push];
    })
    .await;
    let got = outcomes(&record);
    assert_eq!(got["a"].0, Outcome::Failed, "{got:?}");
    assert!(got["a"].1.contains("sha256:other-a"), "{got:?}");
    assert_eq!(got["c"].0, Outcome::Failed, "{got:?}");
    assert!(got["c"].1.contains("re-tagged"), "{got:?}");
    for image in ["root", "b"] {
        assert_eq!(got[image].0, Outcome::Built, "{got:?}");
    }
    let a = record.images.iter().find(|i| i.image == "a");
    assert_eq!(
        a.and_then(|a| a.failure),
        Some(strata_exec::FailureKind::Provenance)
    );
    for image in ["a", "c"] {
        assert!(!fake.events().contains(&format!("push {image}")));
        let result = record.images.iter().find(|i| i.image == image);
        assert_eq!(
            result.and_then(|r| r.failure),
            Some(strata_exec::FailureKind::Provenance)
        );
    }
}

/// The critical path: a child builds and is tested on its parent's local
/// image while the parent pushes, and is pushed only after it. A parent
/// whose push fails leaves its child built and tested but not pushed.
#[tokio::test(start_paused = true)]
async fn a_child_builds_while_its_parent_pushes_and_is_pushed_after_it() {
    let run = |failing_push: Option<&str>, jobs: usize| {
        let mut fake = Fake::new(Duration::from_secs(1));
        fake.push_time = Duration::from_secs(5);
        fake.failing_pushes.extend(failing_push.map(str::to_string));
        async move {
            let (record, _out) = run_with(&fake, STACK, jobs, never_cancelled(), |options, _| {
                options.push = true;
                options.stages = vec![Stage::Build, Stage::Push];
            })
            .await;
            (fake.events(), outcomes(&record), record)
        }
    };
    let (events, got, _) = run(None, 4).await;
    let at = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no {e} in {events:?}"))
    };
    // `c` is built on `a`: it starts once `a` is built and ends while `a`
    // still pushes; its own push comes after `a`'s.
    assert!(at("end a") < at("start c"), "{events:?}");
    assert!(at("end c") < at("push a"), "{events:?}");
    assert!(at("push a") < at("push c"), "{events:?}");
    assert!(got.values().all(|(o, _)| *o == Outcome::Built), "{got:?}");

    // A push holds no `--jobs` slot: with one, `c` still builds while `a`
    // pushes.
    let (events, _, _) = run(None, 1).await;
    let start_c = events.iter().position(|e| e == "start c");
    let push_a = events.iter().position(|e| e == "push a");
    assert!(start_c < push_a && start_c.is_some(), "{events:?}");

    let (events, got, record) = run(Some("a"), 4).await;
    assert!(events.contains(&"end c".to_string()), "{events:?}");
    assert!(!events.contains(&"push c".to_string()), "{events:?}");
    assert_eq!(got["c"].0, Outcome::Failed, "{got:?}");
    assert!(
        got["c"].1.contains("its parent t/a:1-0123456 was not"),
        "{got:?}"
    );
    let c = record.images.iter().find(|i| i.image == "c");
    assert_eq!(
        c.and_then(|c| c.failure),
        Some(strata_exec::FailureKind::Provenance)
    );
    assert_eq!(got["b"].0, Outcome::Built, "{got:?}");
}

/// An engine that goes away mid-run fails what was running with
/// `engine_gone` (which the CLI turns into exit 3); nothing after it is
/// pushed.
#[tokio::test(start_paused = true)]
async fn an_engine_gone_mid_run_fails_its_images_as_engine_gone() {
    let mut fake = Fake::new(Duration::from_secs(1));
    fake.stores_images = true;
    fake.gone_after = Some(1);
    let (record, _out) = run_with(&fake, STACK, 1, never_cancelled(), |options, _| {
        options.push = true;
        options.stages = vec![Stage::Build, Stage::Push];
    })
    .await;
    assert!(!record.success);
    let root = record.images.iter().find(|i| i.image == "root");
    assert_eq!(
        root.and_then(|r| r.failure),
        Some(strata_exec::FailureKind::EngineGone),
        "{record:#?}"
    );
    assert!(
        !fake.events().iter().any(|e| e.starts_with("push ")),
        "{:?}",
        fake.events()
    );
}

/// A root is pushed only when its layers start with those of the base the
/// plan found (its key and labels name it): one built on another is a
/// provenance failure, and its descendants are not built on it.
#[tokio::test(start_paused = true)]
async fn a_root_not_built_on_the_planned_base_is_not_pushed() {
    use strata_core::plan::{ExternalBase, ImageIds};
    use strata_exec::testing::BASE_LAYER;
    let base = |layer: &str| ExternalBase {
        reference: "up/base:1".into(),
        digest: Some("sha256:planned".into()),
        ids: ImageIds::from([(String::new(), "sha256:id".to_string())]),
        layers: BTreeMap::from([(String::new(), vec![layer.to_string()])]),
    };
    for (layer, expected) in [
        (BASE_LAYER, Outcome::Built),
        ("sha256:moved", Outcome::Failed),
    ] {
        let mut fake = Fake::new(Duration::from_secs(1));
        fake.stores_images = true;
        let (record, _out) = run_with(&fake, STACK, 2, never_cancelled(), |options, targets| {
            options.push = true;
            options.stages = vec![Stage::Build, Stage::Push];
            let root = targets.iter_mut().find(|t| t.build.image == "root");
            if let Some(root) = root {
                root.build.external_base = Some(base(layer));
            }
        })
        .await;
        let got = outcomes(&record);
        assert_eq!(got["root"].0, expected, "{layer}: {got:?}");
        if expected == Outcome::Failed {
            assert!(
                got["root"]
                    .1
                    .contains("was not built on up/base:1 at sha256:planned"),
                "{got:?}"
            );
            let root = record.images.iter().find(|i| i.image == "root");
            assert_eq!(
                root.and_then(|r| r.failure),
                Some(strata_exec::FailureKind::Provenance)
            );
            assert!(!fake.events().contains(&"push root".to_string()));
            assert_ne!(got["a"].0, Outcome::Built, "{got:?}");
        }
    }
}

/// An image with gates waits for them in the registry under a tag of its
/// own, never the run's: under its tested inputs tag, or, when it has none
/// (its local tag could not be put), under a `gates-` tag. A gate that
/// refuses it thus leaves the run's tag unpushed either way.
#[tokio::test]
async fn an_image_its_gates_refuse_is_never_pushed_under_the_runs_tag() {
    let stack = "images:\n  root: {image_name: t/root}\ntag: {prefix: '1'}\ngates:\n  refuse: {command: 'false'}\n";
    for untaggable in [false, true] {
        let mut fake = Fake::new(Duration::from_millis(10));
        fake.stores_images = true;
        if untaggable {
            fake.untaggable.insert("root".into());
        }
        let (record, _out) = run_with(&fake, stack, 1, never_cancelled(), |options, _| {
            options.push = true;
            options.stages = vec![Stage::Build, Stage::Push, Stage::Gates];
        })
        .await;
        let got = outcomes(&record);
        assert_eq!(got["root"].0, Outcome::Failed, "{got:?}");
        assert!(got["root"].1.contains("refuse"), "{got:?}");
        let pushed = fake.pushed();
        let staged = if untaggable { ":gates-" } else { ":inputs-" };
        assert!(
            pushed.len() == 1 && pushed[0].contains(staged),
            "untaggable {untaggable}: {pushed:?}"
        );
    }
}

/// A reused image whose gate is given its SBOM is pulled for it, though
/// nothing else of the run needs it here (its manifest recorded, no tests,
/// no child): the gate's SBOM is made from its packages.
#[tokio::test]
async fn a_reused_image_gated_on_its_sbom_is_pulled_for_it() {
    let stack = "images:\n  root: {image_name: t/root}\ntag: {prefix: '1'}\ngates:\n  scan: {command: 'test -s {sbom}'}\n";
    let fake = Fake::new(Duration::from_millis(10));
    let (record, _out) = run_with(&fake, stack, 1, never_cancelled(), |options, targets| {
        options.push = true;
        options.stages = vec![Stage::Build, Stage::Push, Stage::Gates, Stage::Manifest];
        let root = &mut targets[0];
        // Reused by the builder the run uses, as the plan found it.
        root.build.input_parts.builder = "BuildKit".into();
        let pinned = format!("t/root:inputs-0a1b@{}", pushed_digest("t/root:1"));
        root.build.reuse = strata_core::inputs::ReuseFrom::pinned(
            pinned.parse().unwrap_or_else(|e| panic!("{e}")),
        );
        root.earlier = Some(strata_exec::EarlierBuild {
            reference: pinned,
            revision: "fedcba9".into(),
            finished: "2026-12-01T00:00:00Z".into(),
            cases: Vec::new(),
            test_key: None,
            manifests: BTreeMap::from([(
                root.build.reference.clone(),
                strata_exec::RecordedManifest {
                    json: "{}".into(),
                    markdown: "# root\n".into(),
                },
            )]),
            duration_secs: None,
        });
    })
    .await;
    let got = outcomes(&record);
    assert!(record.success, "{got:?}");
    assert!(
        fake.events().contains(&"pull root".to_string()),
        "{:?}",
        fake.events()
    );
}
