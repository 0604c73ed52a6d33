//! A synthetic stack's runs, for the layout's tests and the report's
//! benchmark (`scripts/bench-report.sh`): `images` images in a tree three
//! children wide, each with six stages, ten tests, a manifest of twelve
//! layers, three info commands and a package change; one image fails a
//! test and its descendants are skipped. Figures vary from run to run by a
//! fixed pseudo-random sequence, so the same call gives the same site.

use super::{Growth, Image, LogLink, Made, Outcome, Run, Site, Stage, StageStatus};
use crate::image::{InfoOutput, Layer};
use crate::image_diff::ImageDiff;
use crate::junit::{CaseOutcome, TestCase};
use crate::manifest::ManifestData;

/// The site of `runs` runs of an `images`-image stack, the last failing
/// one image's tests.
pub fn synthetic_site(images: usize, runs: usize) -> Site {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64: deterministic, no dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 1000) as f64 / 1000.0
    };
    let runs = (0..runs.max(1))
        .map(|r| synthetic_run(images, r, runs.max(1) - 1 == r, &mut next))
        .collect();
    Site {
        title: "synthetic".into(),
        runs,
    }
}

fn synthetic_run(images: usize, r: usize, last: bool, next: &mut impl FnMut() -> f64) -> Run {
    let failing = (last && images > 4).then_some(4);
    let mut ends: Vec<f64> = Vec::with_capacity(images);
    let mut list = Vec::with_capacity(images);
    for i in 0..images {
        let parent = (i > 0).then(|| (i - 1) / 3);
        let skipped = failing.is_some_and(|f| is_descendant(i, f));
        let ready = parent.map_or(0.0, |p| ends[p]);
        let start = ready + next() * 5.0;
        let outcome = if Some(i) == failing {
            Outcome::Failed
        } else if skipped {
            Outcome::Skipped
        } else {
            Outcome::Built
        };
        let (stages, tested) = synthetic_stages(start, outcome, next);
        ends.push(tested);
        let size =
            200_000_000 + (i as u64) * 10_000_000 + (next() * 5e7) as u64 + r as u64 * 3_000_000;
        list.push(Image {
            image: format!("image-{i:02}"),
            plan: "default".into(),
            reference: format!("registry.example/stack/image-{i:02}:2024.1-{r:07}"),
            parent: parent.map(|p| format!("image-{p:02}")),
            outcome,
            reason: Some(format!("images/image-{i:02}/Dockerfile")),
            message: match outcome {
                Outcome::Failed => "basic-tests failed: 1 of 10 tests failed".into(),
                Outcome::Skipped => "parent failed".into(),
                _ => format!("built registry.example/stack/image-{i:02}"),
            },
            duration_secs: stages
                .iter()
                .filter_map(Stage::span)
                .map(|(_, e)| e - start)
                .fold(0.0, f64::max),
            stages,
            growth: (r > 0).then(|| Growth {
                since: format!("registry.example/stack/image-{i:02}:2024.1-{:07}", r - 1),
                bytes: 3_000_000,
            }),
            budget_bytes: Some(1_000_000_000),
            made: if outcome == Outcome::Skipped {
                Vec::new()
            } else {
                vec![synthetic_made(i, r, size)]
            },
            logs: vec![LogLink {
                name: format!("image-{i:02}.build.log"),
                href: format!("../logs/image-{i:02}.build.log"),
            }],
        });
    }
    Run {
        started: format!("2024-01-{:02}T10:00:00Z", r + 1),
        finished: format!("2024-01-{:02}T10:30:00Z", r + 1),
        head: format!("{r:07}abcdef"),
        success: failing.is_none(),
        interrupted: false,
        images: list,
    }
}

/// Whether image `i` descends from image `of` in the synthetic tree.
fn is_descendant(mut i: usize, of: usize) -> bool {
    while i > of {
        i = (i - 1) / 3;
        if i == of {
            return true;
        }
    }
    false
}

/// Six stages from `start`; and when the image's children may start.
fn synthetic_stages(
    start: f64,
    outcome: Outcome,
    next: &mut impl FnMut() -> f64,
) -> (Vec<Stage>, f64) {
    let mut at = start;
    let mut ready = start;
    let mut stages = Vec::new();
    for (k, name) in [
        "build",
        "basic-tests",
        "push",
        "gates",
        "integration-tests",
        "manifest",
        "prune",
    ]
    .iter()
    .enumerate()
    {
        let ran = outcome == Outcome::Built || (outcome == Outcome::Failed && k < 2);
        let took = 2.0 + next() * 30.0;
        let failed = outcome == Outcome::Failed && k == 1;
        stages.push(Stage {
            platforms: Vec::new(),
            name: (*name).into(),
            status: match (ran, failed) {
                (false, _) => StageStatus::Skipped,
                (true, true) => StageStatus::Failed,
                (true, false) => StageStatus::Ok,
            },
            started_secs: ran.then_some(at),
            duration_secs: if ran { took } else { 0.0 },
            message: failed.then(|| "1 of 10 tests failed".into()),
            tests: if ran && k == 1 {
                synthetic_tests(failed)
            } else {
                Vec::new()
            },
        });
        if ran {
            at += took + next();
            if k == 1 {
                ready = at;
            }
        }
    }
    (stages, ready)
}

fn synthetic_tests(one_fails: bool) -> Vec<TestCase> {
    (0..10)
        .map(|t| TestCase {
            name: format!("test_case_{t}"),
            classname: "tests_common.test_common".into(),
            time_secs: 0.5,
            outcome: if one_fails && t == 3 {
                CaseOutcome::Failed {
                    message: "AssertionError: expected 3.11, got 3.10".into(),
                    details: "def test_case_3(container):\n>       assert version == '3.11'\nE       AssertionError".into(),
                }
            } else {
                CaseOutcome::Passed
            },
            output: String::new(),
        })
        .collect()
}

fn synthetic_made(i: usize, r: usize, size: u64) -> Made {
    let reference = format!("registry.example/stack/image-{i:02}:2024.1-{r:07}");
    let layers = (0..12)
        .map(|l| Layer {
            created: 1_700_000_000 + l,
            created_by: format!(
                "/bin/sh -c apt-get install -y package-{l} && rm -rf /var/lib/apt/lists/*"
            ),
            size: size / 12,
        })
        .collect();
    let info = ["PY_VER", "PIP_LIST", "CONDA_LIST"]
        .iter()
        .map(|key| InfoOutput {
            key: (*key).into(),
            description: format!("{key} of the image"),
            command: format!("{} --version", key.to_lowercase()),
            exit_code: 0,
            output: (0..15)
                .map(|n| format!("package-{n} 1.{n}.{r}\n"))
                .collect(),
        })
        .collect();
    let package = |name: &str, version: &str| strata_sbom::Package {
        ecosystem: strata_sbom::Ecosystem::Pypi,
        name: name.into(),
        version: version.into(),
        purl: format!("pkg:pypi/{name}@{version}"),
        license: None,
        layer: None,
    };
    Made {
        platform: None,
        reference: reference.clone(),
        manifest: Some(ManifestData {
            reference: reference.clone(),
            image: format!("image-{i:02}"),
            plan: "default".into(),
            image_id: format!("sha256:{i:064}"),
            digest: None,
            size,
            created: "2024-01-01T10:00:00Z".into(),
            revision: format!("{r:07}"),
            base_ref: None,
            layers,
            info,
            changes: Some(ImageDiff {
                from: format!("registry.example/stack/image-{i:02}:previous"),
                to: reference,
                from_size: size - 3_000_000,
                to_size: size,
                growth: 3_000_000,
                added: Vec::new(),
                removed: Vec::new(),
                shared_layers: 12,
                info: Vec::new(),
                packages: Some(strata_sbom::diff::PackageDiff {
                    added: vec![package("numpy", "2.0.0")],
                    removed: vec![package("six", "1.16.0")],
                    changed: vec![(package("pandas", "2.1.0"), package("pandas", "2.2.0"))],
                }),
            }),
            packages: None,
            since_stable: None,
            trigger: None,
        }),
    }
}
