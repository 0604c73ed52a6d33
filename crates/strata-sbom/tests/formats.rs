//! The documents strata writes, checked by validators someone else wrote:
//! SPDX's own `pyspdxtools` (PyPI's spdx-tools) and CycloneDX's JSON schema
//! (Python's jsonschema over the specification's schema files), both
//! installed by `scripts/setup.sh`. A broken document is refused by each,
//! so the checks can fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use strata_sbom::spdx::Subject;
use strata_sbom::{Ecosystem, Format, Package};

fn package(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    purl: &str,
    license: Option<&str>,
) -> Package {
    Package {
        ecosystem,
        name: name.into(),
        version: version.into(),
        purl: purl.into(),
        license: license.map(str::to_string),
        layer: Some(format!("sha256:{}", "ab".repeat(32))),
    }
}

/// Packages with what real metadata holds: epochs and `+` in versions,
/// SPDX expressions, free-text licenses (twice the same), a package's
/// own license reference, none at all.
fn packages() -> Vec<Package> {
    vec![
        package(
            Ecosystem::Deb,
            "libc6",
            "2.36-9+deb12u4",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
            None,
        ),
        package(
            Ecosystem::Deb,
            "tzdata",
            "1:2024a-0",
            "pkg:deb/debian/tzdata@1:2024a-0?arch=all",
            None,
        ),
        package(
            Ecosystem::Pypi,
            "six",
            "1.16.0",
            "pkg:pypi/six@1.16.0",
            Some("MIT"),
        ),
        package(
            Ecosystem::Pypi,
            "requests",
            "2.31.0",
            "pkg:pypi/requests@2.31.0",
            Some("Apache 2.0"),
        ),
        package(
            Ecosystem::Pypi,
            "urllib3",
            "2.0.7",
            "pkg:pypi/urllib3@2.0.7",
            Some("Apache 2.0"),
        ),
        package(
            Ecosystem::Cran,
            "ggplot2",
            "3.4.4",
            "pkg:cran/ggplot2@3.4.4",
            Some("MIT + file LICENSE"),
        ),
        package(
            Ecosystem::Npm,
            "@angular/cli",
            "17.0.0",
            "pkg:npm/%40angular/cli@17.0.0",
            Some("MIT OR Apache-2.0"),
        ),
        // A package's own `LicenseRef-`, which the document's numbering of
        // free-text licenses (the Apache 2.0 above) must not take for its.
        package(
            Ecosystem::Pypi,
            "inhouse",
            "1.0",
            "pkg:pypi/inhouse@1.0",
            Some("LicenseRef-1"),
        ),
    ]
}

fn subject() -> Subject<'static> {
    Subject {
        reference: "127.0.0.1:5000/stack/base-notebook:2026.12-abc1234",
        digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        platform: "linux/amd64",
        created: "2026-12-05T03:46:12.123456789Z",
        tool_version: "0.1.0",
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh installs it)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_spdx_document_is_valid_for_spdx_tools_and_reads_back_the_same_packages() {
    let dir = tempfile::tempdir().unwrap();
    let document = Format::Spdx.document(&subject(), &packages());
    let path = write(dir.path(), "image.spdx.json", &document);
    let (ok, said) = run("pyspdxtools", &["-i", path.to_str().unwrap()]);
    assert!(ok, "pyspdxtools refused it:\n{said}");

    let mut want = packages();
    want.sort();
    assert_eq!(strata_sbom::spdx::packages(&document).unwrap(), want);

    // The same image gives the same document.
    assert_eq!(Format::Spdx.document(&subject(), &packages()), document);

    // A document without its namespace is refused: the check can fail.
    let mut broken: serde_json::Value = serde_json::from_slice(&document).unwrap();
    broken.as_object_mut().unwrap().remove("documentNamespace");
    let path = write(
        dir.path(),
        "broken.spdx.json",
        &serde_json::to_vec(&broken).unwrap(),
    );
    let (ok, said) = run("pyspdxtools", &["-i", path.to_str().unwrap()]);
    assert!(!ok, "pyspdxtools took a broken document:\n{said}");
}

#[test]
fn the_cyclonedx_document_is_valid_against_the_specifications_schema() {
    let dir = tempfile::tempdir().unwrap();
    let validator = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/cyclonedx/validate.py"
    );
    let document = Format::CycloneDx.document(&subject(), &packages());
    let path = write(dir.path(), "image.cdx.json", &document);
    let (ok, said) = run("python3", &[validator, path.to_str().unwrap()]);
    assert!(ok, "the CycloneDX schema refused it:\n{said}");

    // It reads back as the packages it was made of, as the SPDX one does.
    let mut want = packages();
    want.sort();
    assert_eq!(Format::CycloneDx.packages(&document).unwrap(), want);

    let mut broken: serde_json::Value = serde_json::from_slice(&document).unwrap();
    broken["components"][0]["type"] = serde_json::json!("not-a-type");
    let path = write(
        dir.path(),
        "broken.cdx.json",
        &serde_json::to_vec(&broken).unwrap(),
    );
    let (ok, said) = run("python3", &[validator, path.to_str().unwrap()]);
    assert!(!ok, "the schema took a broken document:\n{said}");
    assert!(said.contains("not-a-type"), "{said}");
}
