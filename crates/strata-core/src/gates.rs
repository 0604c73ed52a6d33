//! Gates: commands run on each image (each platform's) once it is pushed
//! and before any run tag names it, such as a scanner failing on a
//! critical vulnerability. `gates:` at the top of the spec applies to every
//! image; under an image, to it alone, a gate of the same name replacing
//! the spec's (to warn only, or to run another command, for one image).
//!
//! ```yaml
//! gates:
//!   trivy:
//!     command: trivy image --exit-code 1 --severity CRITICAL --ignore-unfixed {ref}
//!     timeout: 15m
//!   grype:
//!     command: grype sbom:{sbom} --fail-on critical
//!     mode: warn
//! ```
//!
//! A failing gate fails its image as a failed test does (no run tag, no
//! promotion, its children skipped); `mode: warn` reports it and goes on.

use crate::spec::{ImageSpec, Located, Spec};
use std::time::Duration;

/// How long a gate may run unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// What a gate's command may name, each replaced by its value, quoted for
/// the shell.
pub const PLACEHOLDERS: [&str; 4] = ["{ref}", "{digest}", "{platform}", "{sbom}"];

/// What a failing gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The image fails.
    #[default]
    Fail,
    /// It is reported; the image goes on.
    Warn,
}

/// One gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// Its name (its key in `gates:`).
    pub name: Located<String>,
    /// The shell command, with [`PLACEHOLDERS`].
    pub command: String,
    /// What its failure does.
    pub mode: Mode,
    /// How long it may run; it fails when it runs longer.
    pub timeout: Duration,
}

/// What a gate's placeholders stand for, for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    /// `{ref}`: the image pinned by its digest (`name@sha256:…`).
    pub reference: &'a str,
    /// `{digest}`.
    pub digest: &'a str,
    /// `{platform}` (`linux/amd64`).
    pub platform: &'a str,
    /// `{sbom}`: the path of its SPDX document.
    pub sbom: &'a str,
}

impl Gate {
    /// The command to run for `subject`: each placeholder replaced by its
    /// value as one shell word, so no value (a path, a reference) is read
    /// as shell syntax.
    pub fn command_for(&self, subject: &Subject<'_>) -> String {
        let values = [
            subject.reference,
            subject.digest,
            subject.platform,
            subject.sbom,
        ];
        let mut out = String::with_capacity(self.command.len());
        let mut rest = self.command.as_str();
        'scan: while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            for (placeholder, value) in PLACEHOLDERS.iter().zip(values) {
                if let Some(after) = tail.strip_prefix(placeholder) {
                    out.push_str(&crate::jobs::shell_word(value));
                    rest = after;
                    continue 'scan;
                }
            }
            out.push('{');
            rest = &tail[1..];
        }
        out.push_str(rest);
        out
    }

    /// Whether the command names the SBOM (which is then written first).
    pub fn needs_sbom(&self) -> bool {
        self.command.contains("{sbom}")
    }
}

/// The gates of `image`: the spec's, each replaced by the image's own of
/// the same name, then the image's others, in the order written.
pub fn of_image(spec: &Spec, image: &ImageSpec) -> Vec<Gate> {
    let own = |name: &str| image.gates.iter().find(|g| g.name.value == name);
    let mut out: Vec<Gate> = spec
        .gates
        .iter()
        .map(|g| own(&g.name.value).unwrap_or(g).clone())
        .collect();
    out.extend(
        image
            .gates
            .iter()
            .filter(|g| !spec.gates.iter().any(|s| s.name.value == g.name.value))
            .cloned(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(name: &str, command: &str, mode: Mode) -> Gate {
        Gate {
            name: Located {
                value: name.into(),
                pos: Default::default(),
            },
            command: command.into(),
            mode,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    #[test]
    fn placeholders_become_single_shell_words() {
        let g = gate(
            "scan",
            "trivy image {ref} && grype sbom:{sbom} --platform {platform} # {digest} {other} awk '{print $1}'",
            Mode::Fail,
        );
        let command = g.command_for(&Subject {
            reference: "r.example/o/a@sha256:ab",
            digest: "sha256:ab",
            platform: "linux/arm64",
            sbom: "/out/it's; rm -rf $HOME.spdx.json",
        });
        assert_eq!(
            command,
            "trivy image r.example/o/a@sha256:ab && grype sbom:'/out/it'\\''s; rm -rf $HOME.spdx.json' --platform linux/arm64 # sha256:ab {other} awk '{print $1}'"
        );
        assert!(g.needs_sbom());
        assert!(!gate("a", "x {ref}", Mode::Warn).needs_sbom());
    }

    #[test]
    fn an_images_gate_replaces_the_specs_of_its_name() {
        let text = "images:\n  a: {image_name: o/a, gates: {trivy: {command: t2, mode: warn}, own: {command: o}}}\n  b: {image_name: o/b}\ntag: {prefix: '1'}\ngates:\n  trivy: {command: t1, timeout: 5m}\n  lint: {command: l}\n";
        let spec = crate::spec::parse(text, "spec.yml").spec.unwrap();
        let names = |image: &str| -> Vec<(String, String, Mode)> {
            of_image(&spec, spec.image(image).unwrap())
                .into_iter()
                .map(|g| (g.name.value, g.command, g.mode))
                .collect()
        };
        assert_eq!(
            names("a"),
            [
                ("trivy".into(), "t2".into(), Mode::Warn),
                ("lint".into(), "l".into(), Mode::Fail),
                ("own".into(), "o".into(), Mode::Fail),
            ]
        );
        assert_eq!(
            names("b"),
            [
                ("trivy".into(), "t1".into(), Mode::Fail),
                ("lint".into(), "l".into(), Mode::Fail),
            ]
        );
        assert_eq!(spec.gates[0].timeout, Duration::from_secs(300));
    }
}
