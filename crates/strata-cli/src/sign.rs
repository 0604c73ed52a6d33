//! Keys and signatures at the command line: `strata key generate`,
//! `strata verify`, the key a build signs with (`--sign-key`,
//! `STRATA_SIGN_KEY`) and the key a promotion verifies with
//! (`--verify-key`). Key files are read once, here; the password of an
//! encrypted one comes from `COSIGN_PASSWORD`, taken out of the process's
//! environment when strata starts, so that no process strata runs (pytest,
//! credential helpers, the engine's clients) inherits it.

use crate::failure::Failure;
use crate::output::{Format, Reporter, print_json, print_out};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use strata_core::reference::ImageRef;
use strata_core::text::count;
use strata_exec::sign::{Checked, KeySigner, Signer, Verdict, verify};
use strata_sign::{Password, PrivateKey, PublicKey};

/// `COSIGN_PASSWORD`, as strata started with it.
static PASSWORD: OnceLock<Option<Password>> = OnceLock::new();

/// Takes `COSIGN_PASSWORD` out of the environment, keeping it for the
/// key file it opens. Called first thing in `main`, while the process has
/// one thread.
pub fn take_password() {
    let value = std::env::var(strata_sign::PASSWORD_ENV).ok();
    if value.is_some() {
        // SAFETY: `main` calls this before any thread starts, so nothing
        // reads the environment concurrently.
        unsafe { std::env::remove_var(strata_sign::PASSWORD_ENV) };
    }
    let _ = PASSWORD.set(value.map(Password::new));
}

fn password() -> Option<&'static Password> {
    PASSWORD.get().and_then(Option::as_ref)
}

/// The options of `strata key`.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// What `strata key` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeyCommand {
    /// Write a new ECDSA P-256 key pair: PREFIX.key and PREFIX.pub. With
    /// COSIGN_PASSWORD set (empty included), the private key is cosign's
    /// encrypted key file; without it, an unencrypted PKCS#8 PEM file.
    Generate {
        /// Where the pair goes: PREFIX.key and PREFIX.pub.
        #[arg(long, value_name = "PREFIX", default_value = "cosign")]
        out: PathBuf,
        /// Replace files already there.
        #[arg(long)]
        force: bool,
    },
}

/// The options of `strata verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The images: registry/name:tag or registry/name@sha256:….
    #[arg(value_name = "REF", required = true)]
    pub references: Vec<String>,
    /// The public key (PEM, as cosign.pub).
    #[arg(long, value_name = "PUB.pem")]
    pub key: PathBuf,
}

fn read_key_file(flag: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .map_err(|e| Failure::input(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// The public key at `path` (`flag` names where it came from).
pub fn public_key(flag: &str, path: &Path) -> Result<PublicKey, Failure> {
    PublicKey::from_pem(&read_key_file(flag, path)?)
        .map_err(|e| Failure::input(format!("{flag} {}: {e}", path.display())))
}

/// The signer of a build given `--sign-key FILE` (or `STRATA_SIGN_KEY`):
/// the key read and opened now, before any work, so that a wrong file or
/// password fails at once (exit 2).
pub fn signer(path: Option<&Path>) -> Result<Option<Arc<dyn Signer>>, Failure> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = zeroize::Zeroizing::new(read_key_file("--sign-key", path)?);
    let key = PrivateKey::from_pem(&text, password())
        .map_err(|e| Failure::input(format!("--sign-key {}: {e}", path.display())))?;
    let registry = crate::registry::client()?;
    Ok(Some(Arc::new(KeySigner::new(registry, key))))
}

/// Writes a file of `mode`, refusing to replace one unless `force`.
fn write_new(path: &Path, text: &[u8], mode: u32, force: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path)?.write_all(text)
}

/// Runs `strata key`.
pub fn key(args: &KeyArgs, format: Format, reporter: &Reporter) -> Result<ExitCode, Failure> {
    let KeyCommand::Generate { out, force } = &args.command;
    let with = |ext: &str| {
        let mut path = out.clone().into_os_string();
        path.push(ext);
        PathBuf::from(path)
    };
    let (private_path, public_path) = (with(".key"), with(".pub"));
    let key = strata_sign::generate();
    let encrypted = password().is_some();
    let text = match password() {
        Some(password) => key.to_encrypted_pem(password).map(zeroize::Zeroizing::new),
        None => key.to_pem(),
    }
    .map_err(|e| Failure::env(format!("cannot make the key: {e}")))?;
    fn written(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
        move |e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Failure::input(format!(
                    "{} exists: pass --force to replace it, or choose another --out",
                    path.display()
                ))
            } else {
                Failure::env(format!("cannot write {}: {e}", path.display()))
            }
        }
    }
    // Only its owner reads the private key; anyone may read the public one.
    write_new(&private_path, text.as_bytes(), 0o600, *force).map_err(written(&private_path))?;
    write_new(
        &public_path,
        key.public_key().to_pem().as_bytes(),
        0o644,
        *force,
    )
    .map_err(written(&public_path))?;
    if format == Format::Json {
        print_json(&serde_json::json!({
            "private": private_path,
            "public": public_path,
            "encrypted": encrypted,
        }))?;
    } else {
        print_out(&format!(
            "{}\n{}\n",
            private_path.display(),
            public_path.display()
        ))?;
        if !encrypted {
            reporter.note(&format!(
                "{} is not encrypted: keep it secret (set COSIGN_PASSWORD to write cosign's encrypted key file instead)",
                private_path.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of `strata verify`'s table.
fn line(c: &Checked) -> String {
    let what = match &c.platform {
        Some(p) => format!("{} {p}", c.kind),
        None => c.kind.clone(),
    };
    match &c.verdict {
        Verdict::Signed { .. } => format!("signed    {} ({what})", c.image),
        Verdict::Unsigned => format!("UNSIGNED  {} ({what})", c.image),
        Verdict::WronglySigned { problems } => {
            format!("BAD       {} ({what}): {}", c.image, problems.join("; "))
        }
    }
}

/// What failed among `checked`, named.
fn failures(checked: &[Checked]) -> Vec<String> {
    checked
        .iter()
        .filter(|c| !c.verdict.is_signed())
        .map(|c| match c.verdict {
            Verdict::Unsigned => format!("{} is unsigned", c.image),
            _ => format!("{} is not signed by the key", c.image),
        })
        .collect()
}

/// Runs `strata verify`.
pub fn verify_command(args: &VerifyArgs, format: Format) -> Result<ExitCode, Failure> {
    let references = args
        .references
        .iter()
        .map(|r| {
            r.parse::<ImageRef>()
                .map_err(|e| Failure::input(format!("{r}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let public = public_key("--key", &args.key)?;
    let runtime = crate::runtime()?;
    let registry = crate::registry::client()?;
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for (shown, reference) in args.references.iter().zip(&references) {
        let checked = runtime
            .block_on(verify(registry, &public, reference, true))
            .map_err(crate::sbom::registry_failure(shown))?;
        failed.extend(failures(&checked));
        report.push((shown, checked));
    }
    if format == Format::Json {
        let json: Vec<_> = report
            .iter()
            .map(|(r, checked)| serde_json::json!({"ref": r, "manifests": checked}))
            .collect();
        print_json(&json)?;
    } else {
        let lines: Vec<String> = report
            .iter()
            .flat_map(|(_, c)| c.iter().map(line))
            .collect();
        print_out(&format!("{}\n", lines.join("\n")))?;
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::work(format!(
            "{} not signed by {}: {}",
            count(failed.len(), "manifest"),
            args.key.display(),
            failed.join(", ")
        )))
    }
}

/// Checks every source of a promotion against the key at `path` before
/// anything moves, and pins each to the digest checked (`name:tag@…`), so
/// that what moves is what was verified even if a tag moves meanwhile.
pub fn verified(
    path: &Path,
    moves: Vec<strata_registry::Move>,
    reporter: &Reporter,
) -> Result<Vec<strata_registry::Move>, Failure> {
    let public = public_key("--verify-key", path)?;
    let runtime = crate::runtime()?;
    let registry = crate::registry::client()?;
    let mut pinned = Vec::with_capacity(moves.len());
    let mut failed = Vec::new();
    for m in moves {
        let shown = m.from.to_string();
        let checked = runtime
            .block_on(verify(registry, &public, &m.from, false))
            .map_err(crate::sbom::registry_failure(&shown))?;
        failed.extend(failures(&checked));
        // The first manifest checked is the one `from` names (see `verify`).
        let from = match checked.first().and_then(|top| {
            reporter.detail(&format!("{shown}: {}", line(top)));
            top.image.digest()
        }) {
            Some(digest) => format!("{shown}@{digest}")
                .parse()
                .map_err(|e| Failure::work(format!("{shown}: {e}")))?,
            None => m.from,
        };
        pinned.push(strata_registry::Move { from, to: m.to });
    }
    if !failed.is_empty() {
        return Err(Failure::work(format!(
            "nothing was promoted: {} not signed by {}: {}",
            count(failed.len(), "manifest"),
            path.display(),
            failed.join(", ")
        )));
    }
    Ok(pinned)
}
