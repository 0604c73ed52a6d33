//! Machine-readable artifacts: YAML and JSON serialization of results.

use serde::Serialize;

/// Errors from rendering machine-readable artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The value could not be written as YAML.
    #[error("cannot write YAML: {0}")]
    Yaml(String),
    /// The value could not be written as JSON.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Serializes any value as a YAML document (e.g. one image's result for
/// `artifacts/<stem>.yaml`). Ends with a newline.
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, ReportError> {
    let mut text = serde_saphyr::to_string(&value).map_err(|e| ReportError::Yaml(e.to_string()))?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// Serializes any value as pretty JSON (e.g. `artifacts/run.json`).
/// Ends with a newline.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, ReportError> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// Pretty JSON for this crate's own types, whose serialization cannot fail:
/// they hold only strings, integers, floats, options and vectors (serde_json
/// fails only on non-string map keys or on custom `Serialize` errors).
pub(crate) fn to_json_pretty<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(text) => text,
        // Unreachable for the types above; keep the output valid JSON anyway.
        Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InfoOutput, Layer, ManifestData, SummaryRow};

    #[test]
    fn yaml_of_a_result() {
        let row = SummaryRow {
            image: "scipy-ml-notebook".into(),
            plan: "".into(),
            reference: "ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234".into(),
            outcome: "failed".into(),
            failed_stage: Some("basic-tests".into()),
            message: Some("2 tests failed:\n  test_a\n  test_b: 'quoted' #x".into()),
            duration_secs: 12.5,
            digest: None,
        };
        let yaml = to_yaml(&row).expect("serializable");
        assert!(yaml.contains("image: scipy-ml-notebook\n"), "{yaml}");
        assert!(yaml.contains("outcome: failed\n"), "{yaml}");
        assert!(yaml.contains("duration_secs: 12.5\n"), "{yaml}");
        assert!(yaml.ends_with('\n'));
    }

    #[test]
    fn yaml_of_a_manifest_with_awkward_strings() {
        let m = ManifestData {
            reference: "r:1".into(),
            image: "yes".into(),
            plan: "null".into(),
            image_id: "sha256:1".into(),
            digest: None,
            size: 1,
            created: "2023-01-01T00:00:00Z".into(),
            revision: "0123".into(),
            base_ref: None,
            layers: vec![Layer {
                created: 0,
                created_by: "- a: b\n# c".into(),
                size: 0,
            }],
            info: vec![InfoOutput {
                key: "k".into(),
                description: "d".into(),
                command: "c".into(),
                exit_code: -1,
                output: "multi\nline: text\n\n".into(),
            }],
            changes: None,
            packages: None,
            trigger: None,
            since_stable: None,
        };
        let yaml = to_yaml(&m).expect("serializable");
        // Strings that would read back as other YAML types are quoted.
        for bare in ["image: yes\n", "plan: null\n", "revision: 0123\n"] {
            assert!(!yaml.contains(bare), "{bare} in {yaml}");
        }
    }

    #[test]
    fn json_ends_with_newline() {
        let json = to_json(&vec![1, 2]).expect("serializable");
        assert_eq!(json, "[\n  1,\n  2\n]\n");
    }
}
