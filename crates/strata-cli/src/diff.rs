//! `strata diff REF_A REF_B`: what changed inside an image between two
//! builds: size, layers added and removed, and each info command's output.

use crate::failure::Failure;
use crate::output::{Format, Reporter, print_json, print_out};
use crate::stack;
use std::path::Path;
use std::process::ExitCode;
use strata_core::spec::{InfoCmd, Spec};
use strata_engine::Engine;
use strata_report::image_diff;

/// The options of `strata diff`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The earlier image (a reference the engine has, or can pull).
    #[arg(value_name = "REF_A")]
    pub from: String,
    /// The later image.
    #[arg(value_name = "REF_B")]
    pub to: String,
}

/// The label naming the spec image an image was built as.
const IMAGE_LABEL: &str = "io.strata.image";

/// The info commands both images run: those the spec names for the image
/// (by its `io.strata.image` label, the later image's first), else every
/// info command of the spec.
fn info_commands(spec: &Spec, labels: [Option<&String>; 2]) -> Vec<(String, InfoCmd)> {
    let named = labels
        .into_iter()
        .flatten()
        .find_map(|key| spec.image(key))
        .map(|image| {
            image
                .info_cmds
                .iter()
                .map(|k| k.value.clone())
                .collect::<Vec<_>>()
        });
    match named {
        Some(keys) => keys
            .into_iter()
            .filter_map(|k| spec.info_cmds.get(&k).map(|c| (k, c.clone())))
            .collect(),
        None => spec
            .info_cmds
            .iter()
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect(),
    }
}

/// An image's info, pulling it when the engine does not have it.
async fn inspect_or_pull(
    engine: &Engine,
    reference: &str,
    reporter: &Reporter,
) -> Result<strata_engine::ImageInfo, Failure> {
    let engine_failure = |e: strata_engine::EngineError| {
        if e.is_unreachable() {
            Failure::env(e.to_string())
        } else {
            Failure::work(format!("{reference}: {e}"))
        }
    };
    if let Some(info) = engine
        .inspect_image(reference)
        .await
        .map_err(engine_failure)?
    {
        return Ok(info);
    }
    reporter.note(&format!("pulling {reference}"));
    let registry = reference
        .parse::<strata_core::reference::ImageRef>()
        .map_err(|e| Failure::input(format!("{reference}: {e}")))?
        .name()
        .registry()
        .to_string();
    // A credential helper is a process: asked off the runtime.
    let auth_for = crate::registry::auth_for(*reporter);
    let auth = tokio::task::spawn_blocking(move || auth_for(&registry))
        .await
        .unwrap_or(None);
    engine.pull(reference, auth.as_ref()).await.map_err(|e| {
        Failure::work(format!(
            "{reference} is not in the local engine and cannot be pulled: {e}"
        ))
    })?;
    engine
        .inspect_image(reference)
        .await
        .map_err(engine_failure)?
        .ok_or_else(|| Failure::work(format!("{reference} is gone right after its pull")))
}

/// Runs `strata diff`.
pub fn run(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &DiffArgs,
    format: Format,
    reporter: &Reporter,
) -> Result<ExitCode, Failure> {
    // The spec says which info commands to run; without one, only sizes
    // and layers are compared.
    let repo = strata_git::Repo::discover(cwd).ok();
    let dir = stack::images_dir(cwd, images_flag, repo.as_ref());
    let spec = match stack::load(&stack::Source::WorkTree, &dir) {
        Ok((Some(stack), _)) => Some(stack.spec),
        _ => {
            reporter.note(&format!(
                "note: no readable spec at {}, so no info commands are compared",
                dir.display("spec.yml")
            ));
            None
        }
    };
    crate::runtime()?.block_on(async {
        let engine = Engine::connect()
            .await
            .map_err(|e| Failure::env(e.to_string()))?;
        let from_info = inspect_or_pull(&engine, &args.from, reporter).await?;
        let to_info = inspect_or_pull(&engine, &args.to, reporter).await?;
        let commands = spec.as_ref().map_or_else(Vec::new, |s| {
            info_commands(
                s,
                [
                    to_info.labels.get(IMAGE_LABEL),
                    from_info.labels.get(IMAGE_LABEL),
                ],
            )
        });
        let failed = |reference: &str| {
            let reference = reference.to_string();
            move |e: strata_engine::EngineError| Failure::work(format!("{reference}: {e}"))
        };
        let from = strata_exec::image_side(&engine, &args.from, from_info.size, &commands)
            .await
            .map_err(failed(&args.from))?;
        let to = strata_exec::image_side(&engine, &args.to, to_info.size, &commands)
            .await
            .map_err(failed(&args.to))?;
        let diff = image_diff::compare(&from, &to);
        match format {
            Format::Json | Format::Jobs | Format::Bake | Format::GithubActions => {
                print_json(&diff)?
            }
            Format::Markdown => print_out(&image_diff::diff_markdown(&diff))?,
            Format::Table => print_out(&image_diff::diff_text(&diff))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}
