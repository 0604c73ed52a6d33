//! `strata sbom REF`: an image's SBOM, read from the registry beside the
//! image, found from the image's digest alone (OCI 1.1 referrers, or their
//! tag schema where the registry has no referrers API).

use crate::failure::Failure;
use crate::output::print_out;
use std::process::ExitCode;
use strata_core::reference::ImageRef;
use strata_registry::RegistryError;
use strata_registry::manifest::Contents;
use strata_registry::referrers::{artifact_content, referrers};
use strata_sbom::Format;

/// An SBOM is read up to this size.
const MAX_SBOM_BYTES: usize = 256 << 20;

/// How `strata sbom` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomOutput {
    /// One line per package: type, name, version, license, layer.
    Table,
    /// The SPDX 2.3 JSON document.
    Spdx,
    /// The CycloneDX 1.5 JSON document.
    Cyclonedx,
}

/// The options of `strata sbom`.
#[derive(Debug, Clone, clap::Args)]
pub struct SbomArgs {
    /// The image: registry/name:tag or registry/name@sha256:….
    #[arg(value_name = "REF")]
    pub reference: String,
    /// table, spdx or cyclonedx (named --as, as `strata graph`'s: --format
    /// is the global text or json).
    #[arg(long = "as", value_enum, default_value_t = SbomOutput::Table)]
    pub output: SbomOutput,
    /// The platform whose image to read, when REF names several (default:
    /// this machine's), e.g. linux/arm64.
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
}

pub(crate) fn registry_failure(reference: &str) -> impl Fn(RegistryError) -> Failure + '_ {
    move |e| {
        if e.is_environment() {
            Failure::env(e.to_string())
        } else {
            Failure::work(format!("{reference}: {e}"))
        }
    }
}

/// Runs `strata sbom`.
pub fn run(args: &SbomArgs) -> Result<ExitCode, Failure> {
    let reference: ImageRef = args
        .reference
        .parse()
        .map_err(|e| Failure::input(format!("{}: {e}", args.reference)))?;
    let shown = args.reference.as_str();
    let (format, document, digest) = crate::runtime()?.block_on(async {
        let registry = crate::registry::client()?;
        let fail = registry_failure(shown);
        let manifest = registry
            .get_manifest(&reference)
            .await
            .map_err(&fail)?
            .ok_or_else(|| Failure::work(format!("{shown} is not in the registry")))?;
        let digest = match manifest.contents() {
            Contents::Image { .. } => manifest.digest().clone(),
            Contents::Index { manifests } => {
                let want = args
                    .platform
                    .clone()
                    .unwrap_or_else(strata_core::inputs::host_platform);
                // `linux/arm64` asks for the index's `linux/arm64/v8`.
                let found = manifests.iter().find(|m| {
                    m.platform
                        .as_deref()
                        .is_some_and(|p| strata_core::platform::same(p, &want))
                });
                match found {
                    Some(m) => m.digest.clone(),
                    None => {
                        let have: Vec<&str> =
                            manifests.iter().filter_map(|m| m.platform.as_deref()).collect();
                        return Err(Failure::work(format!(
                            "{shown} has no image for {want} (it has {}): pass --platform",
                            have.join(", ")
                        )));
                    }
                }
            }
        };
        let name = reference.name();
        let found = referrers(registry, name, &digest, None)
            .await
            .map_err(&fail)?;
        let mut sboms: Vec<(Format, _)> = found
            .iter()
            .filter_map(|r| Format::of_media_type(&r.artifact_type).map(|f| (f, r)))
            .collect();
        // The one asked for first, then SPDX (a table reads it).
        let wanted = match args.output {
            SbomOutput::Cyclonedx => Format::CycloneDx,
            SbomOutput::Spdx | SbomOutput::Table => Format::Spdx,
        };
        sboms.sort_by_key(|(f, _)| (*f != wanted, *f != Format::Spdx));
        let Some((format, referrer)) = sboms.first() else {
            return Err(Failure::work(format!(
                "no SBOM refers to {name}@{digest}: strata puts one beside every image a `build --push` builds; build it again to make one"
            )));
        };
        let document = artifact_content(registry, name, &referrer.digest, MAX_SBOM_BYTES)
            .await
            .map_err(&fail)?
            .ok_or_else(|| {
                Failure::work(format!(
                    "the SBOM {} of {name}@{digest} lists a blob the registry no longer has",
                    referrer.digest
                ))
            })?;
        Ok((*format, document, digest))
    })?;
    let out = match (args.output, format) {
        (SbomOutput::Spdx, Format::Spdx) | (SbomOutput::Cyclonedx, Format::CycloneDx) => document,
        (SbomOutput::Spdx, Format::CycloneDx) => {
            return Err(Failure::work(format!(
                "the SBOM of {shown} is in CycloneDX only: print it with --as cyclonedx or --as table"
            )));
        }
        // A table of either; CycloneDX made of the SPDX one.
        (output, format) => {
            let packages = format
                .packages(&document)
                .map_err(|e| Failure::work(format!("the SBOM of {shown}: {e}")))?;
            match output {
                SbomOutput::Cyclonedx => {
                    let doc: serde_json::Value =
                        serde_json::from_slice(&document).unwrap_or_default();
                    let created = doc
                        .pointer("/creationInfo/created")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string();
                    let platform = args
                        .platform
                        .clone()
                        .unwrap_or_else(strata_core::inputs::host_platform);
                    let subject = strata_sbom::spdx::Subject {
                        reference: shown,
                        digest: digest.as_ref(),
                        platform: &platform,
                        created: &created,
                        tool_version: env!("CARGO_PKG_VERSION"),
                    };
                    Format::CycloneDx.document(&subject, &packages)
                }
                _ => strata_sbom::diff::table(&packages).into_bytes(),
            }
        }
    };
    print_out(&String::from_utf8_lossy(&out))?;
    Ok(ExitCode::SUCCESS)
}
