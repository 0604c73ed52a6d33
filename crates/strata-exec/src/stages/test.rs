//! The test stages: pytest folders and structure-test files against an
//! image, their cases, and the verdict that gates its push.

use super::*;

/// pytest's exit code when it collected no tests: a pass for strata.
pub(super) const PYTEST_NO_TESTS: i32 = 5;

/// Most bytes of a test case's output kept in the run's records and
/// junit.xml; the whole output is in the stage's log.
pub(super) const CASE_OUTPUT_MAX: usize = 64 * 1024;

/// Runs a test stage: the structure tests of its folders (containers of
/// their own per test, as container-structure-test makes them), then pytest on the folders that hold Python tests, the
/// way the seed layout's users run it (`python3 -m pytest -x <dirs>` in the
/// images folder, `TEST_IMAGE=<ref>`). Every case lands in `cases`.
pub(super) async fn tests<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    s: Stage,
    cases: &Cases,
) -> StageOutcome {
    let tests = target.tests(s);
    if tests.is_empty() {
        return Ok(Done::Said("no tests".into()));
    }
    let reference = &target.build.reference;
    let from = cases.lock().map_or(0, |c| c.len());
    let log_path = ctx.log_path(reference, s.name());
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let record = |new: Vec<TestCase>| {
        if let Ok(mut c) = cases.lock() {
            c.extend(new);
        }
    };
    if !tests.structure.is_empty() {
        let results = ctx
            .engine_for(target)
            .run_structure_tests(reference, &tests.structure)
            .await;
        let results = match results {
            Ok(results) => results,
            Err(e) => {
                let kind = StageError::kind_of(&e);
                let e = engine_error(ctx.engine_for(target), &e, None).await;
                let _ = writeln!(log, "ERROR: {e}");
                return Err(StageError::new(
                    kind,
                    format!("structure tests: {e} (log: {})", log_path.display()),
                ));
            }
        };
        let mut new = Vec::new();
        for (file, file_cases) in tests.structure.iter().zip(results) {
            // Named by its path in the images folder: the same on every
            // runner, so CI reports group a test's runs together.
            let shown = Path::new(&file.file)
                .strip_prefix(&ctx.options.images_dir)
                .map_or_else(|_| file.file.clone(), |p| p.display().to_string());
            for case in file_cases {
                let _ = writeln!(
                    log,
                    "{} {}: {}{}",
                    if case.passed { "PASS" } else { "FAIL" },
                    shown,
                    case.name,
                    case.failures
                        .iter()
                        .map(|f| format!("\n    {f}"))
                        .collect::<String>()
                );
                new.push(structure_case(&shown, case));
            }
        }
        record(new);
    }
    if !tests.pytest.is_empty() {
        let report = ctx.dirs.logs.join(format!(
            "{}.{}.junit.xml",
            ref_file_stem(reference),
            s.name()
        ));
        // A slot among the pytest runs of the run: teams' tests may publish
        // fixed host ports, which two at once would both bind.
        let slot = ctx.pytest_slots.clone().acquire_owned().await;
        let ran = pytest(ctx, target, &tests.pytest, &report, &log_path, &mut log).await;
        drop(slot);
        // pytest writes its report even when tests fail.
        let found = std::fs::read_to_string(&report)
            .map_err(|e| e.to_string())
            .and_then(|xml| junit::parse(&xml).map_err(|e| e.to_string()));
        let failing = match found {
            Ok(found) => {
                let failing = found.iter().any(TestCase::is_failure);
                record(found.into_iter().map(bounded).collect());
                failing
            }
            Err(e) => {
                let _ = writeln!(log, "strata: cannot read {}: {e}", report.display());
                false
            }
        };
        if ran? == PytestEnd::TestsFailed && !failing {
            return Err(StageError::new(
                FailureKind::Tests,
                format!(
                    "pytest reported failed tests, but its report names none; see {}",
                    log_path.display()
                ),
            ));
        }
    }
    let (failure, out_of_space) = match verdict(cases, from, &log_path) {
        Verdict::Passed(message) => return Ok(Done::Said(message)),
        Verdict::Failed {
            message,
            out_of_space,
        } => (message, out_of_space),
    };
    if !out_of_space {
        return Err(StageError::new(FailureKind::Tests, failure));
    }
    let space = match ctx.engine_for(target).disk_space().await {
        Ok(space) => space.to_string(),
        Err(e) => format!("the engine's data root could not be asked for ({e})"),
    };
    Err(StageError::new(
        FailureKind::OutOfSpace,
        format!("{failure}; a failing test ran out of disk space: {space}"),
    ))
}

/// What a test stage's cases add up to.
pub(super) enum Verdict {
    Passed(String),
    Failed {
        message: String,
        /// A failing case's text says the disk was full.
        out_of_space: bool,
    },
}

/// The verdict over every case, read under the lock (outputs can be large:
/// no copy).
pub(super) fn verdict(cases: &Cases, from: usize, log_path: &Path) -> Verdict {
    let Ok(all) = cases.lock() else {
        return Verdict::Failed {
            message: "the test results could not be read".into(),
            out_of_space: false,
        };
    };
    // This run's own cases: another platform's of the same stage come first.
    let all = all.get(from..).unwrap_or_default();
    let failed: Vec<&TestCase> = all.iter().filter(|c| c.is_failure()).collect();
    if all.is_empty() {
        return Verdict::Passed("no tests collected".into());
    }
    if failed.is_empty() {
        let passed = all
            .iter()
            .filter(|c| c.outcome == CaseOutcome::Passed)
            .count();
        return Verdict::Passed(strata_core::text::count(passed, "test") + " passed");
    }
    let names: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
    Verdict::Failed {
        message: format!(
            "{} of {} failed: {}; see {}",
            failed.len(),
            strata_core::text::count(all.len(), "test"),
            strata_core::text::list_some(&names, 5),
            log_path.display()
        ),
        out_of_space: failed.iter().any(|c| {
            strata_engine::says_out_of_space(&c.output)
                || matches!(&c.outcome, CaseOutcome::Failed { details, .. } | CaseOutcome::Error { details, .. }
                    if strata_engine::says_out_of_space(details))
        }),
    }
}

/// A structure test's result as a test case.
pub(super) fn structure_case(file: &str, case: strata_structure::CaseResult) -> TestCase {
    let outcome = if case.passed {
        CaseOutcome::Passed
    } else {
        CaseOutcome::Failed {
            message: case.failures.first().cloned().unwrap_or_default(),
            details: case.failures.join("\n"),
        }
    };
    bounded(TestCase {
        name: case.name,
        classname: file.to_string(),
        time_secs: case.duration_secs,
        outcome,
        output: case.output,
    })
}

/// A case with its output cut to [`CASE_OUTPUT_MAX`] bytes.
pub(super) fn bounded(mut case: TestCase) -> TestCase {
    if case.output.len() > CASE_OUTPUT_MAX {
        let mut end = CASE_OUTPUT_MAX;
        while !case.output.is_char_boundary(end) {
            end -= 1;
        }
        case.output.truncate(end);
        case.output
            .push_str("\n[cut: the whole output is in the stage's log]");
    }
    case
}

/// Kills a process group when dropped: pytest runs in its own group, so a
/// stage past its time limit (or interrupted) stops everything pytest
/// started, not only pytest.
pub(super) struct ProcessGroup(pub(super) Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process
            // group; it touches no memory. A group already gone is ESRCH,
            // which is what we want.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// How a pytest run that is not an error ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PytestEnd {
    /// Every test passed, or there were none.
    Passed,
    /// Some tests failed (exit code 1): its report says which.
    TestsFailed,
}

/// Runs pytest on `dirs`, writing JUnit XML to `report`.
pub(super) async fn pytest<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    dirs: &[String],
    report: &Path,
    log_path: &Path,
    log: &mut std::fs::File,
) -> Result<PytestEnd, String> {
    let cannot_write = |e: std::io::Error| format!("cannot write {}: {e}", log_path.display());
    let _ = std::fs::remove_file(report);
    let out = log.try_clone().map_err(cannot_write)?;
    let err = log.try_clone().map_err(cannot_write)?;
    let mut child = tokio::process::Command::new(&ctx.options.python)
        .args(["-m", "pytest", "-x", "-p", "no:cacheprovider"])
        .arg(format!("--junitxml={}", report.display()))
        .args(dirs)
        .current_dir(&ctx.options.images_dir)
        .env("TEST_IMAGE", &target.build.reference)
        .env("TEST_PLATFORM", ctx.platform_of(target))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {} -m pytest: {e}", ctx.options.python))?;
    let _group = ProcessGroup(child.id());
    let status = child.wait().await.map_err(|e| format!("pytest: {e}"))?;
    match status.code() {
        Some(0 | PYTEST_NO_TESTS) => Ok(PytestEnd::Passed),
        Some(1) => Ok(PytestEnd::TestsFailed),
        Some(code) => Err(format!(
            "pytest exited with {code} (an error outside the tests); see {}",
            log_path.display()
        )),
        None => Err(format!("pytest was killed; see {}", log_path.display())),
    }
}
