//! CycloneDX 1.5 JSON: the same inventory, for tools that read CycloneDX.

use crate::spdx::{License, Subject, ecosystem_of, license};
use crate::{Package, SbomError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The media type of the document, as the registry artifact's
/// `artifactType`.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// The CycloneDX 1.5 JSON document of `packages` in the image `subject`.
pub fn document(subject: &Subject<'_>, packages: &[Package]) -> Vec<u8> {
    // The serial number is made from the image and platform, so one image
    // always gives the same document.
    let hash = Sha256::digest(format!("{} {}", subject.digest, subject.platform));
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let serial = format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let components: Vec<_> = packages
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let mut c = json!({
                "type": "library",
                "bom-ref": format!("package-{}", n + 1),
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
            });
            match license(p) {
                License::Expression(e) => c["licenses"] = json!([{ "expression": e }]),
                License::Text(t) => c["licenses"] = json!([{ "license": { "name": t } }]),
                License::None => {}
            }
            if let Some(layer) = &p.layer {
                c["properties"] = json!([{ "name": "strata:layer", "value": layer }]);
            }
            c
        })
        .collect();
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": crate::spdx::spdx_time(subject.created),
            "tools": { "components": [{
                "type": "application",
                "name": "strata",
                "version": subject.tool_version,
            }] },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.reference,
                "version": subject.digest,
                "properties": [{ "name": "strata:platform", "value": subject.platform }],
            },
        },
        "components": components,
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The packages a CycloneDX document lists, as [`document`] writes them:
/// every component with a purl of an ecosystem strata reads, with its
/// license (an expression, or a license's name or id) and layer.
///
/// # Errors
///
/// [`SbomError::Document`] when it is not JSON or has no `components`.
pub fn packages(document: &[u8]) -> Result<Vec<Package>, SbomError> {
    let doc: Value =
        serde_json::from_slice(document).map_err(|e| SbomError::Document(e.to_string()))?;
    let list = doc
        .get("components")
        .and_then(Value::as_array)
        .ok_or_else(|| SbomError::Document("no components".into()))?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<Package> = list
        .iter()
        .filter_map(|c| {
            let purl = text(c, "purl")?;
            let license = c
                .get("licenses")
                .and_then(Value::as_array)
                .and_then(|l| l.first())
                .and_then(|l| {
                    text(l, "expression").or_else(|| {
                        let license = l.get("license")?;
                        text(license, "id").or_else(|| text(license, "name"))
                    })
                });
            let layer = c
                .get("properties")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("name").and_then(Value::as_str) == Some("strata:layer"))
                .and_then(|p| text(p, "value"));
            Some(Package {
                ecosystem: ecosystem_of(&purl)?,
                name: text(c, "name")?,
                version: text(c, "version").unwrap_or_default(),
                purl,
                license,
                layer,
            })
        })
        .collect();
    out.sort();
    Ok(out)
}
