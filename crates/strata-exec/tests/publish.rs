//! The run's end over an in-memory registry: which runs may tag what, and
//! at which digest. (The real registry is tested end to end in strata-cli's
//! tests, and `tag_pinned`'s check in strata-registry's.)

use std::collections::BTreeMap;
use std::sync::Mutex;
use strata_core::plan::Plan;
use strata_core::reference::{Digest, ImageRef};
use strata_exec::publish::{Coverage, Published, Publisher, RunEnd, publish};
use strata_exec::sign::{Signer, Signing};
use strata_exec::{
    EarlierBuild, ImageResult, Outcome, PlanRecord, RunRecord, Stage, StageResult, Status,
};
use strata_registry::{PlatformImage, RegistryError, TagError};
use support::{STACK, plan_of};

mod support;

/// A registry of tags, each naming a digest, that records every write.
#[derive(Default)]
struct Memory {
    tags: Mutex<BTreeMap<String, Digest>>,
    writes: Mutex<Vec<String>>,
}

impl Memory {
    fn tag(&self, reference: &str) -> Option<Digest> {
        self.tags.lock().ok()?.get(reference).cloned()
    }

    fn put(&self, what: &str, target: &ImageRef, digest: Digest) {
        if let Ok(mut w) = self.writes.lock() {
            w.push(format!("{what} {target}"));
        }
        if let (Ok(mut t), Some(tag)) = (self.tags.lock(), target.tag()) {
            t.insert(format!("{}:{tag}", target.name()), digest);
        }
    }

    fn writes(&self) -> Vec<String> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

fn digest(seed: &str) -> Digest {
    let hex: String = seed.bytes().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex:0<64.64}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"))
}

impl Publisher for Memory {
    async fn put_record(&self, target: &ImageRef, _: &EarlierBuild) -> Result<(), RegistryError> {
        self.put("record", target, digest("record"));
        Ok(())
    }

    async fn put_index(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> Result<Digest, RegistryError> {
        let d = digest(&format!("index of {}", images.len()));
        self.put("index", target, d.clone());
        Ok(d)
    }

    async fn put_index_untagged(
        &self,
        target: &ImageRef,
        images: &[PlatformImage],
    ) -> Result<ImageRef, RegistryError> {
        let pinned = target
            .name()
            .with_digest(digest(&format!("index of {}", images.len())));
        self.put("index", &pinned, digest("unused"));
        Ok(pinned)
    }

    async fn copy(&self, from: &ImageRef, to: &ImageRef) -> Result<Digest, RegistryError> {
        let d = from
            .digest()
            .cloned()
            .ok_or_else(|| RegistryError::NotFound {
                reference: Box::new(from.clone()),
            })?;
        self.put("copy", to, d.clone());
        Ok(d)
    }

    async fn put_sbom(
        &self,
        subject: &ImageRef,
        _: strata_sbom::Format,
        _: &str,
        content: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let d = digest(&format!("sbom of {} bytes", content.len()));
        self.put("sbom", subject, d.clone());
        Ok(d)
    }

    async fn tag_pinned(&self, from: &ImageRef, to: &ImageRef) -> Result<Digest, TagError> {
        let planned = from.digest().cloned().ok_or(TagError::NotPublished)?;
        let tag = from
            .name()
            .with_tag(from.tag().cloned().ok_or(TagError::NotPublished)?);
        match self.tag(&tag.to_string()) {
            Some(now) if now == planned => {
                self.put("tag", to, planned.clone());
                Ok(planned)
            }
            now => Err(TagError::Moved {
                tag,
                planned,
                now: now.map_or(
                    strata_registry::MovedTo::Removed,
                    strata_registry::MovedTo::Digest,
                ),
            }),
        }
    }
}

/// The plan of STACK (root → a → c, root → b) where only `rebuilt` are
/// rebuilt, the others published at `t/<image>:1-old`, and the run's
/// record with each rebuilt image ending as `outcomes` says.
struct Run {
    plan: Plan,
    record: RunRecord,
    published: BTreeMap<(String, String), String>,
}

fn run(outcomes: &[(&str, Outcome)], registry: &Memory) -> Run {
    let (mut plan, _) = plan_of(STACK);
    let mut published = BTreeMap::new();
    for b in &mut plan.builds {
        b.rebuild = outcomes.iter().any(|(i, _)| *i == b.image);
        if !b.rebuild {
            let d = digest(&b.image);
            let at = format!("t/{}:1-old", b.image);
            if let (Ok(mut tags), Ok(r)) = (registry.tags.lock(), at.parse::<ImageRef>()) {
                tags.insert(r.to_string(), d.clone());
            }
            published.insert((b.image.clone(), b.plan.clone()), format!("{at}@{d}"));
        }
    }
    let images: Vec<ImageResult> = outcomes
        .iter()
        .filter_map(|(image, outcome)| {
            let b = plan.builds.iter().find(|b| b.image == *image)?;
            Some(result(&b.reference, image, *outcome))
        })
        .collect();
    let record = RunRecord {
        plan: PlanRecord::of(&plan),
        started: "2026-12-04T00:00:00Z".into(),
        finished: "2026-12-04T00:01:00Z".into(),
        success: images.iter().all(|i| i.success),
        interrupted: false,
        images,
    };
    Run {
        plan,
        record,
        published,
    }
}

fn result(reference: &str, image: &str, outcome: Outcome) -> ImageResult {
    let success = matches!(outcome, Outcome::Built | Outcome::Reused | Outcome::Resumed);
    let status = if success { Status::Ok } else { Status::Failed };
    ImageResult {
        image: image.into(),
        plan: "default".into(),
        reference: reference.into(),
        success,
        failure: (!success).then_some(strata_exec::FailureKind::Tests),
        outcome,
        message: String::new(),
        image_id: None,
        test_key: Some(digest("tests").to_string()),
        digest: success.then(|| digest(reference).to_string()),
        duration_secs: 1.0,
        stages: vec![StageResult {
            stage: Stage::BasicTests.name().into(),
            status,
            duration_secs: 1.0,
            started_secs: None,
            message: None,
            tests: Vec::new(),
            platforms: Vec::new(),
        }],
        platforms: Vec::new(),
        inputs: Some(digest(&format!("inputs of {image}")).to_string()),
        reused: (outcome == Outcome::Reused)
            .then(|| format!("t/{image}:inputs-x@{}", digest(image))),
        growth: None,
        reclaimed_bytes: None,
    }
}

const WHOLE: Coverage = Coverage {
    one_image: false,
    some_platforms: false,
};

async fn end(registry: &Memory, run: &Run, coverage: Coverage) -> Vec<Published> {
    signed_end(registry, run, coverage, None).await
}

async fn signed_end(
    registry: &Memory,
    run: &Run,
    coverage: Coverage,
    signer: Option<&dyn Signer>,
) -> Vec<Published> {
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    publish(
        registry,
        &RunEnd {
            plan: &run.plan,
            record: &run.record,
            published: &run.published,
            coverage,
            revision: "0123456789abcdef",
            out_dir: out.path(),
            signer,
        },
    )
    .await
}

fn unchanged(done: &[Published]) -> Vec<(&str, Option<&Digest>)> {
    done.iter()
        .filter_map(|p| match p {
            Published::Unchanged { reference, result } => {
                Some((reference.as_str(), result.as_ref().ok()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_whole_run_that_passed_tags_the_unchanged_at_their_planned_digests() {
    let registry = Memory::default();
    let run = run(&[("a", Outcome::Built), ("c", Outcome::Built)], &registry);
    let done = end(&registry, &run, WHOLE).await;
    assert_eq!(
        unchanged(&done),
        [
            ("t/root:1-0123456", Some(&digest("root"))),
            ("t/b:1-0123456", Some(&digest("b")))
        ]
    );
    assert!(done.iter().all(|p| p.untagged().is_none()), "{done:?}");
    // One record per image built, beside its inputs tag.
    let records: Vec<String> = registry
        .writes()
        .into_iter()
        .filter(|w| w.starts_with("record "))
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|r| r.contains(":inputs-")),
        "{records:?}"
    );
}

#[tokio::test]
async fn a_job_of_one_image_or_of_some_platforms_tags_nothing_it_did_not_build() {
    for coverage in [
        Coverage {
            one_image: true,
            some_platforms: false,
        },
        Coverage {
            one_image: false,
            some_platforms: true,
        },
    ] {
        let registry = Memory::default();
        let run = run(&[("c", Outcome::Built)], &registry);
        let done = end(&registry, &run, coverage).await;
        assert_eq!(unchanged(&done), [], "{coverage:?}");
        assert!(
            registry.writes().iter().all(|w| w.starts_with("record ")),
            "{coverage:?}: {:?}",
            registry.writes()
        );
    }
}

#[tokio::test]
async fn a_run_with_a_failed_image_tags_nothing_it_did_not_build() {
    let registry = Memory::default();
    let run = run(&[("a", Outcome::Reused), ("c", Outcome::Failed)], &registry);
    let done = end(&registry, &run, WHOLE).await;
    assert_eq!(unchanged(&done), []);
    assert!(
        !done.iter().any(|p| matches!(p, Published::Reused { .. })),
        "{done:?}"
    );
    // The failed image has no record; the reused one, tested here, has.
    assert_eq!(
        registry.writes(),
        ["record docker.io/t/a:inputs-".to_string() + digest("inputs of a").hex() + ".record"]
    );
}

#[tokio::test]
async fn a_tag_that_moved_since_the_plan_leaves_its_image_untagged() {
    let registry = Memory::default();
    let run = run(&[("a", Outcome::Built), ("c", Outcome::Built)], &registry);
    if let Ok(mut tags) = registry.tags.lock() {
        tags.insert("docker.io/t/b:1-old".into(), digest("moved"));
    }
    let done = end(&registry, &run, WHOLE).await;
    let untagged: Vec<&str> = done.iter().filter_map(Published::untagged).collect();
    assert_eq!(untagged, ["t/b:1-0123456"]);
    assert_eq!(registry.tag("docker.io/t/b:1-0123456"), None);
    assert_eq!(
        registry.tag("docker.io/t/root:1-0123456"),
        Some(digest("root"))
    );
}

/// Signs into a [`Memory`]'s log of writes, or fails every signature.
struct LogSigner<'m> {
    log: &'m Memory,
    fails: bool,
}

impl Signer for LogSigner<'_> {
    fn sign<'a>(&'a self, image: &'a ImageRef) -> Signing<'a> {
        Box::pin(async move {
            if self.fails {
                return Err(RegistryError::Client("signature refused".into()));
            }
            if let Ok(mut w) = self.log.writes.lock() {
                w.push(format!("sign {image}"));
            }
            Ok(())
        })
    }

    fn sign_published<'a>(&'a self, image: &'a ImageRef) -> Signing<'a> {
        Box::pin(async move {
            if self.fails {
                return Err(RegistryError::Client("signature refused".into()));
            }
            if let Ok(mut w) = self.log.writes.lock() {
                w.push(format!("sign published {image}"));
            }
            Ok(())
        })
    }
}

/// The run of `a` built for two platforms, pushed.
fn two_platform_run(registry: &Memory) -> Run {
    let mut run = run(&[("a", Outcome::Built)], registry);
    let image = &mut run.record.images[0];
    image.platforms = ["linux/amd64", "linux/arm64"]
        .iter()
        .map(|p| strata_exec::PlatformImage {
            platform: p.to_string(),
            reference: format!("{}-{}", image.reference, p.replace('/', "-")),
            image_id: None,
            digest: Some(digest(p).to_string()),
            inputs: None,
        })
        .collect();
    run
}

/// The end of [`two_platform_run`] with a signer that fails or not.
async fn signed_two_platform_end(fails: bool) -> (Memory, Vec<Published>) {
    let registry = Memory::default();
    let run = two_platform_run(&registry);
    let signer = LogSigner {
        log: &registry,
        fails,
    };
    let done = signed_end(&registry, &run, WHOLE, Some(&signer)).await;
    (registry, done)
}

#[tokio::test]
async fn a_signing_run_signs_each_index_before_its_tag_names_it() {
    let (registry, done) = signed_two_platform_end(false).await;
    assert!(done.iter().all(|p| p.untagged().is_none()), "{done:?}");
    let index = format!("docker.io/t/a@{}", digest("index of 2"));
    let writes: Vec<String> = registry
        .writes()
        .into_iter()
        .filter(|w| {
            !w.starts_with("record ") && !w.starts_with("tag ") && !w.starts_with("sign published")
        })
        .collect();
    assert_eq!(
        writes,
        [
            format!("index {index}"),
            format!("sign {index}"),
            "copy docker.io/t/a:1-0123456".to_string(),
        ]
    );
}

#[tokio::test]
async fn an_index_that_cannot_be_signed_is_not_tagged() {
    let (registry, done) = signed_two_platform_end(true).await;
    let untagged: Vec<&str> = done.iter().filter_map(Published::untagged).collect();
    assert!(untagged.contains(&"t/a:1-0123456"), "{untagged:?}");
    assert_eq!(registry.tag("docker.io/t/a:1-0123456"), None);
}

/// A run that signs signs each image it did not rebuild as it was
/// published before the run's tag names it; one that cannot be signed is
/// left untagged and said so.
#[tokio::test]
async fn a_signing_run_signs_each_unchanged_image_before_its_tag_names_it() {
    let (registry, done) = signed_two_platform_end(false).await;
    let writes = registry.writes();
    for image in ["root", "b", "c"] {
        let at = |write: String| writes.iter().position(|w| *w == write);
        let signed = at(format!(
            "sign published docker.io/t/{image}@{}",
            digest(image)
        ));
        let tagged = at(format!("tag docker.io/t/{image}:1-0123456"));
        assert!(
            signed.is_some() && tagged.is_some() && signed < tagged,
            "{image}: {writes:?}"
        );
    }
    let (registry, done_unsigned) = signed_two_platform_end(true).await;
    let mut untagged: Vec<&str> = done_unsigned
        .iter()
        .filter_map(Published::untagged)
        .collect();
    untagged.sort_unstable();
    assert_eq!(
        untagged,
        [
            "t/a:1-0123456",
            "t/b:1-0123456",
            "t/c:1-0123456",
            "t/root:1-0123456"
        ]
    );
    assert_eq!(registry.tag("docker.io/t/root:1-0123456"), None);
    assert!(done.iter().all(|p| p.untagged().is_none()), "{done:?}");
}

/// A record says how long its image took (what the report's registry
/// history charts); a record written before it did still reads, and an
/// unknown duration is left out of the JSON.
#[test]
fn a_record_holds_its_images_duration_and_older_records_still_read() {
    let registry = Memory::default();
    let mut run = run(&[("a", Outcome::Built)], &registry);
    run.record.images[0].duration_secs = 12.5;
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let records = strata_exec::publish::records(&RunEnd {
        plan: &run.plan,
        record: &run.record,
        published: &run.published,
        coverage: WHOLE,
        revision: "0123456789abcdef",
        out_dir: out.path(),
        signer: None,
    });
    let durations: Vec<Option<f64>> = records.iter().map(|(_, r)| r.duration_secs).collect();
    assert_eq!(durations, [Some(12.5)]);

    let older = r#"{"reference":"t/a:1-0123456","revision":"0123456789abcdef","finished":"2026-12-04T00:01:00Z","cases":[]}"#;
    let read: EarlierBuild = serde_json::from_str(older).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.duration_secs, None);
    let written = serde_json::to_string(&read).unwrap_or_else(|e| panic!("{e}"));
    assert!(!written.contains("duration_secs"), "{written}");
}
