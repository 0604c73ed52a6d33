//! SPDX 2.3 JSON: the document strata writes for an image, and the
//! packages read back from one.

use crate::{Ecosystem, Package, SbomError};
use serde_json::{Value, json};

/// The image an SBOM describes.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// Its reference (`registry/name:tag`).
    pub reference: &'a str,
    /// Its manifest digest when pushed, else its image ID (`sha256:…`).
    pub digest: &'a str,
    /// Its platform (`linux/amd64`).
    pub platform: &'a str,
    /// When it was made (the image config's `created`, RFC 3339): the
    /// document's own time, so one image always gives the same document.
    pub created: &'a str,
    /// strata's version.
    pub tool_version: &'a str,
}

/// The media type of the document, as the registry artifact's
/// `artifactType`.
pub const MEDIA_TYPE: &str = "application/spdx+json";

/// `created` as SPDX wants it: `YYYY-MM-DDThh:mm:ssZ` (no fraction).
/// A time that is not RFC 3339 (UTC) becomes the epoch: the documents stay
/// valid, and the time is plainly unknown.
pub(crate) fn spdx_time(created: &str) -> String {
    let rfc3339 = |s: &str| {
        s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
    };
    match created.get(..19) {
        Some(seconds) if created.ends_with('Z') && rfc3339(seconds) => format!("{seconds}Z"),
        _ => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// A license for SPDX: the expression itself when it is a valid SPDX
/// license expression, else a `LicenseRef-` whose text is given. An
/// expression naming a `LicenseRef-` of its own is text too: the document
/// declares no such reference (a validator refuses it), and the numbers
/// are the document's own (read back, it would name another's text).
pub(crate) enum License<'a> {
    Expression(&'a str),
    Text(&'a str),
    None,
}

pub(crate) fn license(package: &Package) -> License<'_> {
    match package.license.as_deref() {
        Some(l) if !l.contains("LicenseRef-") && spdx::Expression::parse(l).is_ok() => {
            License::Expression(l)
        }
        Some(l) => License::Text(l),
        None => License::None,
    }
}

/// The SPDX 2.3 JSON document of `packages` in the image `subject`.
pub fn document(subject: &Subject<'_>, packages: &[Package]) -> Vec<u8> {
    let digest_hex = subject.digest.rsplit(':').next().unwrap_or(subject.digest);
    let image_id = "SPDXRef-Image";
    let mut spdx_packages = vec![json!({
        "SPDXID": image_id,
        "name": subject.reference,
        "versionInfo": subject.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "comment": format!("platform {}", subject.platform),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut extracted: Vec<Value> = Vec::new();
    let mut refs: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::new();
    for (n, package) in packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}", n + 1);
        let declared = match license(package) {
            License::Expression(e) => e.to_string(),
            License::Text(text) => {
                let next = refs.len() + 1;
                refs.entry(text)
                    .or_insert_with(|| {
                        let id = format!("LicenseRef-{next}");
                        extracted.push(json!({
                            "licenseId": id,
                            "extractedText": text,
                            "name": text,
                        }));
                        id
                    })
                    .clone()
            }
            License::None => "NOASSERTION".to_string(),
        };
        let mut entry = json!({
            "SPDXID": id,
            "name": package.name,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": declared,
            "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }],
        });
        if let Some(layer) = &package.layer {
            entry["sourceInfo"] = json!(format!("added by layer {layer}"));
        }
        spdx_packages.push(entry);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", subject.reference, subject.platform),
        "documentNamespace": format!(
            "https://strata.invalid/spdx/{}/{}/{digest_hex}",
            subject.reference.replace([':', '@'], "/"),
            subject.platform
        ),
        "creationInfo": {
            "created": spdx_time(subject.created),
            "creators": [format!("Tool: strata-{}", subject.tool_version)],
        },
        "packages": spdx_packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The packages of an SPDX document strata wrote ([`document`]): every
/// package but the image, with its purl, license and layer.
///
/// # Errors
///
/// [`SbomError::Document`] when it is not JSON or has no `packages`.
pub fn packages(document: &[u8]) -> Result<Vec<Package>, SbomError> {
    let doc: Value =
        serde_json::from_slice(document).map_err(|e| SbomError::Document(e.to_string()))?;
    let list = doc
        .get("packages")
        .and_then(Value::as_array)
        .ok_or_else(|| SbomError::Document("no packages".into()))?;
    let extracted: std::collections::HashMap<&str, &str> = doc
        .get("hasExtractedLicensingInfos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e.get("licenseId")?.as_str()?,
                e.get("extractedText")?.as_str()?,
            ))
        })
        .collect();
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let mut out: Vec<Package> = list
        .iter()
        .filter_map(|p| {
            let purl = p
                .get("externalRefs")
                .and_then(Value::as_array)?
                .iter()
                .find(|r| r.get("referenceType").and_then(Value::as_str) == Some("purl"))
                .and_then(|r| text(r, "referenceLocator"))?;
            let ecosystem = ecosystem_of(&purl)?;
            let license = text(p, "licenseDeclared")
                .filter(|l| l != "NOASSERTION" && l != "NONE")
                .map(|l| {
                    extracted
                        .get(l.as_str())
                        .map_or(l.clone(), |t| t.to_string())
                });
            Some(Package {
                ecosystem,
                name: text(p, "name")?,
                version: text(p, "versionInfo").unwrap_or_default(),
                purl,
                license,
                layer: text(p, "sourceInfo")
                    .and_then(|s| s.strip_prefix("added by layer ").map(str::to_string)),
            })
        })
        .collect();
    out.sort();
    Ok(out)
}

pub(crate) fn ecosystem_of(purl: &str) -> Option<Ecosystem> {
    let kind = purl.strip_prefix("pkg:")?.split('/').next()?;
    [
        Ecosystem::Deb,
        Ecosystem::Apk,
        Ecosystem::Pypi,
        Ecosystem::Conda,
        Ecosystem::Cran,
        Ecosystem::Npm,
    ]
    .into_iter()
    .find(|e| e.purl_type() == kind)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_written_to_the_second_in_utc() {
        assert_eq!(
            super::spdx_time("2026-12-05T04:28:46.123456789Z"),
            "2026-12-05T04:28:46Z"
        );
        assert_eq!(
            super::spdx_time("2026-12-05T04:28:46Z"),
            "2026-12-05T04:28:46Z"
        );
        assert_eq!(
            super::spdx_time("2026-12-05 4:28:46.0 +00:00:00"),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(super::spdx_time(""), "1970-01-01T00:00:00Z");
    }
}
