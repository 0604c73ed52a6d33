//! The gates stage: each of the image's gates (see [`strata_core::gates`])
//! run on what its push put in the registry, pinned by digest; then its
//! signature (when the run signs) and, when its push left it under its
//! inputs tag alone, the run's tag. A gate that
//! refuses it fails the image as a failed test does: no run tag names it,
//! and its children are not pushed.

use super::*;
use strata_core::gates::{Gate, Mode, Subject};

pub(super) async fn gates<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    cases: &Cases,
) -> StageOutcome {
    let reference = &target.build.reference;
    let at = ctx.pushed_at(target).ok_or_else(|| {
        StageError::new(
            FailureKind::Other,
            format!("{reference} has no pushed digest for its gates to check"),
        )
    })?;
    let name = ImageRef::from_str(reference).map_err(|e| e.to_string())?;
    let pinned = name.name().with_digest(at.digest.clone()).to_string();
    let platform = ctx.platform_of(target);
    let sbom = sbom_path(&ctx.dirs.artifacts, reference, ctx.options.sbom_format);
    if target.gates.iter().any(Gate::needs_sbom) {
        sbom_for_gates(ctx, target, &at.digest).await?;
    }
    let sbom = sbom.to_string_lossy();
    let subject = Subject {
        reference: &pinned,
        digest: at.digest.as_str(),
        platform: &platform,
        sbom: &sbom,
    };
    let log_path = ctx.log_path(reference, "gates");
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("cannot write {}: {e}", log_path.display()))?;
    let (mut refused, mut warned) = (Vec::new(), Vec::new());
    for gate in &target.gates {
        let gate_log = ctx.log_path(reference, &format!("gate-{}", gate.name.value));
        let case = run_gate(gate, &gate.command_for(&subject), &gate_log).await;
        let _ = writeln!(
            log,
            "gate {}: {} ({})",
            gate.name.value,
            case_verdict(&case),
            gate_log.display()
        );
        let passed = matches!(case.outcome, CaseOutcome::Passed);
        let case = match (passed, gate.mode) {
            (true, _) | (false, Mode::Fail) => case,
            (false, Mode::Warn) => {
                warned.push(gate.name.value.clone());
                TestCase {
                    outcome: CaseOutcome::Skipped {
                        message: format!("warned (mode: warn): {}", case_verdict(&case)),
                    },
                    ..case
                }
            }
        };
        if !passed && gate.mode == Mode::Fail {
            refused.push(format!("{} ({})", gate.name.value, case_verdict(&case)));
        }
        if let Ok(mut c) = cases.lock() {
            c.push(test::bounded(case));
        }
    }
    if !refused.is_empty() {
        return Err(StageError::new(
            FailureKind::Gate,
            format!(
                "{pinned} refused by {}; no run tag names it (logs: {})",
                refused.join(", "),
                log_path.display()
            ),
        ));
    }
    // What the gates let through is signed, then tagged.
    sign_pushed(ctx, target, &at.digest).await?;
    if !at.tagged {
        // Cheap: the image is in the registry; only the tag is put.
        let digest = push_reference(ctx, target, reference, &mut log, &log_path).await?;
        if let Some(built) = ctx.built_id(reference) {
            still_the_built_image(ctx, target, &built, Some(&digest)).await?;
        }
        if digest != at.digest {
            return Err(StageError::new(
                FailureKind::Provenance,
                format!(
                    "{reference} was pushed as {digest}, not {}, which its gates passed; its tag is not trusted (run again)",
                    at.digest
                ),
            ));
        }
        ctx.record_pushed(target, digest, true);
    }
    let passed = target.gates.len() - warned.len();
    let mut said = format!("{} passed", strata_core::text::count(passed, "gate"));
    if !warned.is_empty() {
        said.push_str(&format!("; warned: {}", warned.join(", ")));
    }
    Ok(Done::Said(said))
}

/// What a gate's case says of it, in a line.
fn case_verdict(case: &TestCase) -> String {
    match &case.outcome {
        CaseOutcome::Passed => "passed".to_string(),
        CaseOutcome::Failed { message, .. }
        | CaseOutcome::Error { message, .. }
        | CaseOutcome::Skipped { message } => message.clone(),
    }
}

/// Runs one gate's `command` with `sh -c` in a process group of its own
/// (killed whole at its time limit), its output in `log_path`: a passed
/// case when it exits 0.
async fn run_gate(gate: &Gate, command: &str, log_path: &Path) -> TestCase {
    let start = Instant::now();
    let case = |outcome: CaseOutcome| TestCase {
        name: gate.name.value.clone(),
        classname: "gates".to_string(),
        time_secs: start.elapsed().as_secs_f64(),
        outcome,
        output: head_of(log_path),
    };
    let error = |message: String| CaseOutcome::Error {
        details: message.clone(),
        message,
    };
    let log = match std::fs::File::create(log_path) {
        Ok(log) => log,
        Err(e) => return case(error(format!("cannot write {}: {e}", log_path.display()))),
    };
    let (Ok(out), Ok(err)) = (log.try_clone(), log.try_clone()) else {
        return case(error(format!("cannot write {}", log_path.display())));
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return case(error(format!("cannot start sh -c for the gate: {e}"))),
    };
    let _group = test::ProcessGroup(child.id());
    let outcome = match tokio::time::timeout(gate.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => CaseOutcome::Passed,
        Ok(Ok(status)) => {
            let message = match status.code() {
                Some(code) => format!("exited with {code}"),
                None => "was killed".to_string(),
            };
            CaseOutcome::Failed {
                details: format!("{command}\n{message}"),
                message,
            }
        }
        Ok(Err(e)) => error(format!("cannot wait for the gate: {e}")),
        Err(_) => {
            let message = format!(
                "ran past its limit of {}",
                strata_core::limits::format_duration(gate.timeout)
            );
            CaseOutcome::Failed {
                details: format!("{command}\n{message}"),
                message,
            }
        }
    };
    case(outcome)
}

/// The start of a gate's log, a little over what a case keeps (a gate may
/// print without end; the whole stays in the log).
fn head_of(log_path: &Path) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    let limit = test::CASE_OUTPUT_MAX as u64 + 1;
    if let Ok(file) = std::fs::File::open(log_path) {
        let _ = file.take(limit).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Writes the image's SBOM before its gates read it (`{sbom}`), from its
/// inventory, which the manifest stage then takes as read.
async fn sbom_for_gates<B: Backend>(
    ctx: &StageCtx<B>,
    target: &Target,
    digest: &strata_core::reference::Digest,
) -> Result<(), StageError> {
    let reference = &target.build.reference;
    let inventory = read_inventory(ctx, target).await?;
    let created = ctx
        .engine_for(target)
        .inspect_image(reference)
        .await
        .ok()
        .flatten()
        .map(|i| i.created)
        .unwrap_or_default();
    write_sbom(
        ctx,
        target,
        reference,
        digest.as_str(),
        &created,
        &inventory.packages,
    )?;
    if let Ok(mut ready) = ctx.inventories_read.lock() {
        ready.insert(reference.clone(), inventory);
    }
    Ok(())
}
