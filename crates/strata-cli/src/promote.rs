//! `strata promote` and `strata wiki`: move a tested set to a stable tag
//! inside the registry, and keep the wiki pages that record builds and
//! promotions.

use crate::failure::Failure;
use crate::output::{Format, Reporter, print_json, print_out};
use crate::stack::{self, Source};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use strata_core::reference::ImageRef;
use strata_core::text::count;
use strata_registry::Move;
use strata_report::{HomeImage, HomeRow, ManifestData, Promotion, ref_file_stem};

/// The options of `strata promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    /// The tag to promote, e.g. 2023.2-a1b2c3d.
    #[arg(long, value_name = "TAG")]
    pub from: String,
    /// The promotion tag: the plan's stable tag (e.g. 2023.2-stable) or `stable`.
    #[arg(long, value_name = "TAG")]
    pub to: String,
    /// Only this plan.
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// Print the moves and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Verify every image of the set (each platform's image of an index,
    /// and the index) against this public key first; one that is not
    /// signed by it moves nothing.
    #[arg(long, value_name = "PUB.pem")]
    pub verify_key: Option<PathBuf>,
    /// Where the promotion record (artifacts/promotion.json) is written.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The global promotion tag.
const GLOBAL_STABLE: &str = "stable";

/// Runs `strata promote`.
pub fn promote(
    cwd: &Path,
    images_flag: Option<&Path>,
    format: Format,
    args: &PromoteArgs,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let repo = strata_git::Repo::discover(cwd).ok();
    let dir = stack::images_dir(cwd, images_flag, repo.as_ref());
    let stack = stack::load_or_fail(&Source::WorkTree, &dir, reporter)?;
    let spec = &stack.spec;
    let plans: Vec<_> = spec
        .plans
        .iter()
        .filter(|p| args.plan.as_ref().is_none_or(|n| *n == p.name.value))
        .filter(|p| args.from.starts_with(&format!("{}-", p.tag_prefix.value)))
        .collect();
    if plans.is_empty() {
        let prefixes: Vec<String> = spec
            .plans
            .iter()
            .map(|p| format!("{}-…", p.tag_prefix.value))
            .collect();
        return Err(Failure::input(format!(
            "--from {}: no plan{} has that tag prefix (tags look like {})",
            args.from,
            args.plan
                .as_ref()
                .map(|p| format!(" named {p}"))
                .unwrap_or_default(),
            prefixes.join(", ")
        )));
    }
    let mut moves = Vec::new();
    for plan in &plans {
        if args.from == plan.stable_tag() || args.from == GLOBAL_STABLE {
            return Err(Failure::input(format!(
                "--from {} is a promotion tag; promote a build's tag (<prefix>-<hash>)",
                args.from
            )));
        }
        if args.to != plan.stable_tag() && args.to != GLOBAL_STABLE {
            return Err(Failure::input(format!(
                "--to {}: promotion goes to {} or {GLOBAL_STABLE}",
                args.to,
                plan.stable_tag()
            )));
        }
        for image in spec.images.iter().filter(|i| i.in_plan(&plan.name.value)) {
            let name = image
                .image_name
                .as_ref()
                .map_or(image.name(), |n| n.value.as_str());
            let parse = |tag: &str| {
                format!("{name}:{tag}")
                    .parse::<ImageRef>()
                    .map_err(|e| Failure::input(e.to_string()))
            };
            moves.push(Move {
                from: parse(&args.from)?,
                to: parse(&args.to)?,
            });
        }
    }
    if let Some(key) = &args.verify_key {
        moves = crate::sign::verified(key, moves, reporter)?;
    }
    let runtime = crate::runtime()?;
    let registry = crate::registry::client()?;
    let report = runtime
        .block_on(registry.promote(&moves, args.dry_run))
        .map_err(|e| {
            if e.is_environment() {
                Failure::env(format!("promotion failed: {e}"))
            } else {
                Failure::work(format!("promotion failed: {e}"))
            }
        })?;
    if format == Format::Json {
        let moved: Vec<_> = report
            .moves
            .iter()
            .map(|m| serde_json::json!({"from": m.from.to_string(), "to": m.to.to_string(), "old_digest": m.old_digest.as_ref().map(ToString::to_string), "new_digest": m.new_digest.to_string()}))
            .collect();
        print_json(&serde_json::json!({"dry_run": report.dry_run, "moves": moved}))?;
    } else {
        for m in &report.moves {
            print_out(&format!(
                "{}{m}\n",
                if report.dry_run { "would move " } else { "" }
            ))?;
        }
    }
    if !args.dry_run {
        let record = Promotion {
            date: strata_exec::now_rfc3339(),
            from_tag: args.from.clone(),
            to_tag: args.to.clone(),
            moves: report
                .moves
                .iter()
                .map(|m| strata_report::Move {
                    reference_from: m.from.to_string(),
                    reference_to: m.to.to_string(),
                    digest: m.new_digest.to_string(),
                })
                .collect(),
        };
        let artifacts = args
            .out
            .clone()
            .unwrap_or_else(|| cwd.to_path_buf())
            .join("artifacts");
        let written = std::fs::create_dir_all(&artifacts)
            .and_then(|()| strata_exec::write_json(&artifacts.join("promotion.json"), &record));
        if let Err(e) = written {
            reporter.note(&format!(
                "warning: cannot write {}: {e}",
                artifacts.join("promotion.json").display()
            ));
        }
        reporter.note(&format!(
            "promoted {} from {} to {}",
            count(report.moves.len(), "image"),
            args.from,
            args.to
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The options of `strata wiki`.
#[derive(Debug, Clone, clap::Args)]
pub struct WikiArgs {
    /// The run's output folder (holding artifacts/ and manifests/).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// The wiki checkout to write to.
    #[arg(long, value_name = "DIR", default_value = "wiki")]
    pub out: PathBuf,
}

/// A JSON file of a run, read as `T`; `None` when it is not there.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::env(format!("cannot read {}: {e}", path.display()))),
    }
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    strata_exec::write_atomic(path, text.as_bytes())
        .map_err(|e| Failure::env(format!("cannot write {}: {e}", path.display())))
}

/// Runs `strata wiki`: manifest pages and the Home.md build table from the
/// last run, and Stable_Tag.md from the last global promotion.
pub fn wiki(
    cwd: &Path,
    args: &WikiArgs,
    format: Format,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    let from = args.from.clone().unwrap_or_else(|| cwd.to_path_buf());
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        cwd.join(&args.out)
    };
    std::fs::create_dir_all(&out)
        .map_err(|e| Failure::env(format!("cannot create {}: {e}", out.display())))?;
    let mut wrote: Vec<PathBuf> = Vec::new();
    if let Some(run) = read_json::<strata_exec::RunRecord>(&from.join("artifacts/run.json"))? {
        let mut images = Vec::new();
        for b in &run.plan.builds {
            let stem = ref_file_stem(&b.reference);
            if let Some(m) =
                read_json::<ManifestData>(&from.join("manifests").join(format!("{stem}.json")))?
            {
                let page = out.join(strata_report::wiki_page_name(&b.reference));
                write(&page, &strata_report::wiki_manifest_page(&m))?;
                wrote.push(page);
            }
            images.push(HomeImage {
                image: b.image.clone(),
                reference: b.reference.clone(),
            });
        }
        if run.success {
            let row = HomeRow {
                date: run.finished.clone(),
                commit: run.plan.head.clone(),
                tag: run
                    .plan
                    .builds
                    .first()
                    .map(|b| b.tag.clone())
                    .unwrap_or_default(),
                images,
            };
            let home = out.join("Home.md");
            let existing = std::fs::read_to_string(&home).ok();
            write(&home, &strata_report::home_page(existing.as_deref(), &row))?;
            wrote.push(home);
        } else {
            reporter.note("the last run did not succeed: Home.md gets no row for it");
        }
    }
    if let Some(promotion) = read_json::<Promotion>(&from.join("artifacts/promotion.json"))? {
        if promotion.to_tag == GLOBAL_STABLE {
            let page = out.join("Stable_Tag.md");
            let existing = std::fs::read_to_string(&page).ok();
            write(
                &page,
                &strata_report::stable_tag_page(existing.as_deref(), &promotion),
            )?;
            wrote.push(page);
        }
    }
    if wrote.is_empty() {
        return Err(Failure::input(format!(
            "nothing to write: no artifacts/run.json or artifacts/promotion.json under {}",
            from.display()
        )));
    }
    if format == Format::Json {
        let pages: Vec<String> = wrote.iter().map(|p| p.display().to_string()).collect();
        let doc = serde_json::json!({"out": out.display().to_string(), "pages": pages});
        print_json(&doc)?;
    }
    reporter.note(&format!(
        "wrote {} to {}",
        count(wrote.len(), "page"),
        out.display()
    ));
    Ok(ExitCode::SUCCESS)
}
