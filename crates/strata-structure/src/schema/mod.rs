//! Reading a structure-test file from strata's YAML tree, the way CST's
//! strict YAML decoding reads it (unknown keys are errors), with every
//! problem reported at its line and column.

use crate::mode::is_go_mode_string;
use crate::types::{
    CommandTest, EnvVar, ExecutableBy, FileContentTest, FileExistenceTest, KeyValue, LicenseTest,
    MetadataTest, Pattern, RunOptions, SchemaVersion, StructureFile, ValueMatch,
};
use strata_core::diag::{Diagnostic, Pos, closest, unknown_key_help};
use strata_core::yaml::{self, Node, Value};

mod tests_of_kinds;
mod values;

/// CST's current schema version, the one suggested for new files.
pub const SCHEMA_VERSION: &str = "2.0.0";

/// The keys of a schema 1.0.0 file (CST's `pkg/types/v1`).
const TOP_KEYS_V1: &[&str] = &[
    "schemaVersion",
    "globalEnvVars",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "licenseTests",
];
const COMMAND_KEYS_V1: &[&str] = &[
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
];
const EXISTENCE_KEYS_V1: &[&str] = &["name", "path", "shouldExist", "permissions"];
const LICENSE_KEYS: &[&str] = &["debian", "files"];
const RUN_OPTION_KEYS: &[&str] = &[
    "user",
    "privileged",
    "allocateTty",
    "envVars",
    "envFile",
    "capabilities",
    "bindMounts",
];

const TOP_KEYS: &[&str] = &[
    "schemaVersion",
    "globalEnvVars",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "metadataTest",
    "licenseTests",
    "containerRunOptions",
];
const COMMAND_KEYS: &[&str] = &[
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "args",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
];
const EXISTENCE_KEYS: &[&str] = &[
    "name",
    "path",
    "shouldExist",
    "permissions",
    "uid",
    "gid",
    "isExecutableBy",
];
const CONTENT_KEYS: &[&str] = &["name", "path", "expectedContents", "excludedContents"];
const METADATA_KEYS: &[&str] = &[
    "envVars",
    "unboundEnvVars",
    "exposedPorts",
    "unexposedPorts",
    "entrypoint",
    "cmd",
    "workdir",
    "volumes",
    "unmountedVolumes",
    "labels",
    "user",
];
/// CST reads every key/value list into one struct, so all take `isRegex`.
const ENV_KEYS: &[&str] = &["key", "value", "isRegex"];

/// Parses the structure-test file `text`; `file` names it in diagnostics.
/// Every problem is reported, not just the first.
pub fn parse(text: &str, file: &str) -> Result<StructureFile, Vec<Diagnostic>> {
    let root = yaml::parse(text, file).map_err(|d| vec![d])?;
    let mut r = Reader {
        file,
        diags: Vec::new(),
    };
    let parsed = r.file(&root);
    match parsed {
        Some(parsed) if r.diags.is_empty() => Ok(parsed),
        _ => {
            // In file order, whatever order the checks ran in.
            r.diags.sort_by_key(|d| d.pos);
            Err(r.diags)
        }
    }
}

struct Reader<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

/// A mapping's entries after checking its keys.
type Entries<'n> = Vec<(&'n str, &'n Node)>;

impl Reader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::error(self.file, Some(pos), message);
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.diags.push(d);
    }

    fn file(&mut self, root: &Node) -> Option<StructureFile> {
        let Some(map) = root.as_map() else {
            self.error(
                root.pos,
                format!(
                    "a structure-test file must be a mapping with 'schemaVersion' and test lists, found {}",
                    root.kind()
                ),
                Some(format!("start the file with: schemaVersion: '{SCHEMA_VERSION}'")),
            );
            return None;
        };
        let version = match map
            .iter()
            .find(|(k, _)| k.as_scalar() == Some("schemaVersion"))
        {
            None => {
                self.error(
                    root.pos,
                    "the file has no 'schemaVersion'",
                    Some(format!(
                        "add schemaVersion: '{SCHEMA_VERSION}' (container-structure-test's current schema)"
                    )),
                );
                SchemaVersion::V2
            }
            Some((_, v)) => match v.as_scalar().filter(|_| !v.is_null()) {
                Some("2.0.0") => SchemaVersion::V2,
                Some("1.0.0") => SchemaVersion::V1,
                Some(other) => {
                    // Another schema means other keys: checking them would
                    // only add noise.
                    self.error(
                        v.pos,
                        format!("schemaVersion '{other}' is not one container-structure-test reads"),
                        Some(format!(
                            "write schemaVersion: '{SCHEMA_VERSION}' (or '1.0.0' for an older file, whose command tests give the whole argv in `command`)"
                        )),
                    );
                    return None;
                }
                None => {
                    self.error(
                        v.pos,
                        format!("'schemaVersion' must be a version, found {}", v.kind()),
                        Some(format!("write schemaVersion: '{SCHEMA_VERSION}'")),
                    );
                    SchemaVersion::V2
                }
            },
        };

        let mut out = StructureFile {
            file: self.file.to_string(),
            schema_version: version,
            global_env_vars: Vec::new(),
            command_tests: Vec::new(),
            file_existence_tests: Vec::new(),
            file_content_tests: Vec::new(),
            metadata_test: None,
            license_tests: Vec::new(),
            run_options: RunOptions::default(),
        };
        let top_keys = match version {
            SchemaVersion::V1 => TOP_KEYS_V1,
            SchemaVersion::V2 => TOP_KEYS,
        };
        let entries = self.entries(root, "the file", top_keys)?;
        for (key, value) in entries {
            match key {
                "globalEnvVars" => {
                    out.global_env_vars = self
                        .key_values(value, "globalEnvVars", false)
                        .into_iter()
                        .map(|(key, value, _)| EnvVar { key, value })
                        .collect();
                }
                "commandTests" => {
                    for (i, item) in self.items(value, "commandTests") {
                        if let Some(t) = self.command_test(item, i, version) {
                            out.command_tests.push(t);
                        }
                    }
                }
                "fileExistenceTests" => {
                    for (i, item) in self.items(value, "fileExistenceTests") {
                        if let Some(t) = self.existence_test(item, i, version) {
                            out.file_existence_tests.push(t);
                        }
                    }
                }
                "fileContentTests" => {
                    for (i, item) in self.items(value, "fileContentTests") {
                        if let Some(t) = self.content_test(item, i) {
                            out.file_content_tests.push(t);
                        }
                    }
                }
                "metadataTest" => {
                    out.metadata_test = self.metadata_test(value).filter(|m| !m.is_empty());
                }
                "licenseTests" => {
                    for (i, item) in self.items(value, "licenseTests") {
                        if let Some(t) = self.license_test(item, i) {
                            out.license_tests.push(t);
                        }
                    }
                }
                "containerRunOptions" => out.run_options = self.run_options(value),
                _ => {}
            }
        }
        Some(out)
    }

    /// The entries of the mapping `node`, reporting non-mappings, non-scalar
    /// keys and keys not in `known` (with the closest known one).
    fn entries<'n>(&mut self, node: &'n Node, what: &str, known: &[&str]) -> Option<Entries<'n>> {
        let Some(map) = node.as_map() else {
            self.error(
                node.pos,
                format!(
                    "{what} must be a mapping (key: value), found {}",
                    node.kind()
                ),
                None,
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_scalar() else {
                self.error(
                    k.pos,
                    format!("keys in {what} must be names, found {}", k.kind()),
                    None,
                );
                continue;
            };
            if !known.contains(&key) {
                self.error(
                    k.pos,
                    format!("unknown key '{key}' in {what}"),
                    Some(unknown_key_help(key, known)),
                );
                continue;
            }
            out.push((key, v));
        }
        Some(out)
    }

    /// The items of a test list; nothing (null) is an empty list.
    fn items<'n>(&mut self, node: &'n Node, key: &str) -> Vec<(usize, &'n Node)> {
        match &node.value {
            Value::Seq(items) => items.iter().enumerate().map(|(i, n)| (i + 1, n)).collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.error(
                    node.pos,
                    format!("'{key}' must be a list of tests, found {}", node.kind()),
                    Some(format!(
                        "write {key}: then one list item per test, each starting with '- name: ...'"
                    )),
                );
                Vec::new()
            }
        }
    }

    /// A test's entries and the words naming it in messages: "command test
    /// 'apt'" or, before its name is known, "command test #2".
    fn test_entries<'n>(
        &mut self,
        node: &'n Node,
        kind: &str,
        index: usize,
        known: &[&str],
    ) -> Option<(String, Entries<'n>)> {
        let name = node.as_map().and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_scalar() == Some("name"))
                .and_then(|(_, v)| v.as_scalar().filter(|s| !s.is_empty() && !v.is_null()))
        });
        let what = match name {
            Some(name) => format!("{kind} '{name}'"),
            None => format!("{kind} #{index}"),
        };
        let entries = self.entries(node, &what, known)?;
        Some((what, entries))
    }

    /// A required, non-empty string; reports its absence at the test (but
    /// not when it is there with a wrong type, already reported).
    /// `value`, or an error (with `help`) when the test lacks it, and then
    /// nothing: the test is reported already.
    fn required(
        &mut self,
        node: &Node,
        value: Option<String>,
        key: &str,
        what: &str,
        help: &str,
    ) -> String {
        let wrong_type = node.as_map().is_some_and(|m| {
            m.iter()
                .any(|(k, v)| k.as_scalar() == Some(key) && !v.is_null() && v.as_scalar().is_none())
        });
        if !wrong_type && value.as_deref().is_none_or(str::is_empty) {
            self.error(
                node.pos,
                format!("{what} has no '{key}'"),
                Some(help.to_string()),
            );
        }
        value.unwrap_or_default()
    }
}

/// A node for a type-mismatch message: a scalar's text, or its kind.
fn describe(node: &Node) -> String {
    match node.as_scalar() {
        Some(text) if !node.is_null() => format!("'{text}'"),
        _ => node.kind().to_string(),
    }
}
