//! An image as manifests and comparisons describe it: its layers and its
//! info commands' output, read from an engine. The manifest stage and
//! `strata diff` read it here (a build's comparison with its previous build
//! reads the previous side from the registry, as that build recorded it).

use crate::backend::Backend;
use strata_core::spec::InfoCmd;
use strata_engine::{CommandOutput, EngineError, HistoryEntry};
use strata_report::image_diff::ImageSide;
use strata_report::{InfoOutput, Layer};

/// The local image `reference` (of `size` bytes) as one side of a
/// comparison: its layers, oldest first, and the output of `info_cmds` run
/// in one container of it.
pub async fn image_side<B: Backend>(
    engine: &B,
    reference: &str,
    size: u64,
    info_cmds: &[(String, InfoCmd)],
) -> Result<ImageSide, EngineError> {
    let history = engine.history(reference).await?;
    let commands: Vec<String> = info_cmds.iter().map(|(_, c)| c.command.clone()).collect();
    let outputs = if commands.is_empty() {
        Vec::new()
    } else {
        engine.run_commands(reference, &commands).await?
    };
    // An export that cannot be read leaves the packages out of the
    // comparison rather than failing it.
    let packages = engine.inventory(reference).await?.ok().map(|i| i.packages);
    Ok(ImageSide {
        reference: reference.to_string(),
        size,
        // The engine gives the history newest first.
        layers: history.into_iter().rev().map(layer_of).collect(),
        info: info_outputs(info_cmds, outputs),
        packages,
    })
}

/// A history entry as a manifest's layer.
pub(crate) fn layer_of(h: HistoryEntry) -> Layer {
    Layer {
        created: h.created,
        created_by: h.created_by,
        size: h.size,
    }
}

/// Each info command with its output, in order.
pub(crate) fn info_outputs(
    info_cmds: &[(String, InfoCmd)],
    outputs: Vec<CommandOutput>,
) -> Vec<InfoOutput> {
    info_cmds
        .iter()
        .zip(outputs)
        .map(|((key, cmd), out)| InfoOutput {
            key: key.clone(),
            description: cmd.description.clone(),
            command: cmd.command.clone(),
            exit_code: out.exit_code,
            output: out.output,
        })
        .collect()
}
