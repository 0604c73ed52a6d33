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

    fn command_test(
        &mut self,
        node: &Node,
        index: usize,
        version: SchemaVersion,
    ) -> Option<CommandTest> {
        let keys = match version {
            SchemaVersion::V1 => COMMAND_KEYS_V1,
            SchemaVersion::V2 => COMMAND_KEYS,
        };
        let (what, entries) = self.test_entries(node, "command test", index, keys)?;
        let mut name = None;
        let mut command = None;
        let mut t = CommandTest {
            name: String::new(),
            setup: Vec::new(),
            teardown: Vec::new(),
            env_vars: Vec::new(),
            command: String::new(),
            args: Vec::new(),
            exit_code: 0,
            expected_output: Vec::new(),
            excluded_output: Vec::new(),
            expected_error: Vec::new(),
            excluded_error: Vec::new(),
        };
        for (key, v) in entries {
            match key {
                "name" => name = self.string(v, key, &what),
                // Schema 1.0.0's `command` is the whole argv.
                "command" if version == SchemaVersion::V1 => {
                    let mut argv = self.strings(v, key, &what).into_iter();
                    command = argv.next();
                    t.args = argv.collect();
                }
                "command" => {
                    if matches!(v.value, Value::Seq(_)) {
                        self.error(
                            v.pos,
                            format!("'command' in {what} must be a string, found a list"),
                            Some("in schema 2.0.0 `command` is the program and `args` its arguments: command: apt-get, args: [help]".into()),
                        );
                    } else {
                        command = self.string(v, key, &what);
                    }
                }
                "args" => t.args = self.strings(v, key, &what),
                "setup" => t.setup = self.commands(v, key, &what),
                "teardown" => t.teardown = self.commands(v, key, &what),
                "envVars" => {
                    t.env_vars = self
                        .key_values(v, &format!("'envVars' of {what}"), true)
                        .into_iter()
                        .map(|(key, value, _)| EnvVar { key, value })
                        .collect();
                }
                "exitCode" => t.exit_code = self.integer(v, key, &what).unwrap_or(0),
                "expectedOutput" => t.expected_output = self.patterns(v, key, &what),
                "excludedOutput" => t.excluded_output = self.patterns(v, key, &what),
                "expectedError" => t.expected_error = self.patterns(v, key, &what),
                "excludedError" => t.excluded_error = self.patterns(v, key, &what),
                _ => {}
            }
        }
        t.name = self.required(
            node,
            name,
            "name",
            &what,
            "every test needs a name: name: 'python is installed'",
        );
        t.command = self.required(
            node,
            command,
            "command",
            &what,
            match version {
                SchemaVersion::V1 => {
                    "give the program and its arguments: command: [python3, --version]"
                }
                SchemaVersion::V2 => "name the program to run: command: python3, args: [--version]",
            },
        );
        Some(t)
    }

    fn existence_test(
        &mut self,
        node: &Node,
        index: usize,
        version: SchemaVersion,
    ) -> Option<FileExistenceTest> {
        let keys = match version {
            SchemaVersion::V1 => EXISTENCE_KEYS_V1,
            SchemaVersion::V2 => EXISTENCE_KEYS,
        };
        let (what, entries) = self.test_entries(node, "file existence test", index, keys)?;
        let mut name = None;
        let mut path = None;
        let mut t = FileExistenceTest {
            name: String::new(),
            path: String::new(),
            should_exist: true,
            permissions: None,
            uid: None,
            gid: None,
            is_executable_by: None,
        };
        for (key, v) in entries {
            match key {
                "name" => name = self.string(v, key, &what),
                "path" => path = self.string(v, key, &what),
                "shouldExist" => {
                    if let Some(b) = self.boolean(v, key, &what) {
                        t.should_exist = b;
                    }
                }
                "permissions" => {
                    let text = self.string(v, key, &what).filter(|s| !s.is_empty());
                    if let Some(text) = &text {
                        if !is_go_mode_string(text) {
                            self.error(
                                v.pos,
                                format!("'permissions' in {what} is '{text}', which is not a mode as Go writes it"),
                                Some("write the type letter ('-' for a file, 'd' directory, 'L' symlink) and nine rwx bits, e.g. -rw-r--r-- or drwxr-xr-x; setuid, setgid and sticky are leading letters (urwxr-xr-x, dtrwxrwxrwx), not ls's s and t".into()),
                            );
                        }
                    }
                    t.permissions = text;
                }
                "uid" => t.uid = self.owner_id(v, key, &what),
                "gid" => t.gid = self.owner_id(v, key, &what),
                "isExecutableBy" => {
                    let text = self.string(v, key, &what).filter(|s| !s.is_empty());
                    if let Some(text) = text {
                        t.is_executable_by = ExecutableBy::from_name(&text);
                        if t.is_executable_by.is_none() {
                            let help = match closest(&text, ExecutableBy::NAMES) {
                                Some(near) => format!("did you mean '{near}'?"),
                                None => format!("use one of: {}", ExecutableBy::NAMES.join(", ")),
                            };
                            self.error(
                                v.pos,
                                format!("'isExecutableBy' in {what} is '{text}', which is not any, owner, group or other"),
                                Some(help),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        t.name = self.required(
            node,
            name,
            "name",
            &what,
            "every test needs a name: name: 'conda is installed'",
        );
        t.path = self.required(
            node,
            path,
            "path",
            &what,
            "name the file or directory: path: /opt/conda/bin/python",
        );
        Some(t)
    }

    fn content_test(&mut self, node: &Node, index: usize) -> Option<FileContentTest> {
        let (what, entries) = self.test_entries(node, "file content test", index, CONTENT_KEYS)?;
        let mut name = None;
        let mut path = None;
        let mut t = FileContentTest {
            name: String::new(),
            path: String::new(),
            expected_contents: Vec::new(),
            excluded_contents: Vec::new(),
        };
        for (key, v) in entries {
            match key {
                "name" => name = self.string(v, key, &what),
                "path" => path = self.string(v, key, &what),
                "expectedContents" => t.expected_contents = self.patterns(v, key, &what),
                "excludedContents" => t.excluded_contents = self.patterns(v, key, &what),
                _ => {}
            }
        }
        t.name = self.required(
            node,
            name,
            "name",
            &what,
            "every test needs a name: name: 'os release'",
        );
        t.path = self.required(
            node,
            path,
            "path",
            &what,
            "name the file: path: /etc/os-release",
        );
        Some(t)
    }

    fn license_test(&mut self, node: &Node, index: usize) -> Option<LicenseTest> {
        let what = format!("license test #{index}");
        let entries = self.entries(node, &what, LICENSE_KEYS)?;
        let mut t = LicenseTest::default();
        for (key, v) in entries {
            match key {
                "debian" => t.debian = self.boolean(v, key, &what).unwrap_or(false),
                "files" => t.files = self.non_empty_strings(v, key, &what),
                _ => {}
            }
        }
        Some(t)
    }

    fn run_options(&mut self, node: &Node) -> RunOptions {
        let what = "containerRunOptions";
        let mut o = RunOptions::default();
        if node.is_null() {
            return o;
        }
        let Some(entries) = self.entries(node, what, RUN_OPTION_KEYS) else {
            return o;
        };
        for (key, v) in entries {
            match key {
                "user" => o.user = self.string(v, key, what).filter(|s| !s.is_empty()),
                "privileged" => o.privileged = self.boolean(v, key, what).unwrap_or(false),
                "allocateTty" => o.allocate_tty = self.boolean(v, key, what).unwrap_or(false),
                "envVars" => o.env_vars = self.non_empty_strings(v, key, what),
                "envFile" => o.env_file = self.string(v, key, what).filter(|s| !s.is_empty()),
                "capabilities" => o.capabilities = self.non_empty_strings(v, key, what),
                "bindMounts" => o.bind_mounts = self.non_empty_strings(v, key, what),
                _ => {}
            }
        }
        o
    }

    fn metadata_test(&mut self, node: &Node) -> Option<MetadataTest> {
        if node.is_null() {
            return None;
        }
        let what = "metadataTest";
        let entries = self.entries(node, what, METADATA_KEYS)?;
        let mut m = MetadataTest::default();
        for (key, v) in entries {
            match key {
                "envVars" => m.env_vars = self.matches(v, "'envVars' of metadataTest"),
                "labels" => m.labels = self.matches(v, "'labels' of metadataTest"),
                "unboundEnvVars" => {
                    m.unbound_env_vars = self
                        .key_values(v, "'unboundEnvVars' of metadataTest", false)
                        .into_iter()
                        .map(|(key, _, _)| key)
                        .collect();
                }
                "exposedPorts" => m.exposed_ports = self.non_empty_strings(v, key, what),
                "unexposedPorts" => m.unexposed_ports = self.strings(v, key, what),
                "volumes" => m.volumes = self.non_empty_strings(v, key, what),
                "unmountedVolumes" => m.unmounted_volumes = self.strings(v, key, what),
                "entrypoint" => m.entrypoint = self.optional_strings(v, key, what),
                "cmd" => m.cmd = self.optional_strings(v, key, what),
                "workdir" => m.workdir = self.string(v, key, what).filter(|s| !s.is_empty()),
                "user" => m.user = self.string(v, key, what).filter(|s| !s.is_empty()),
                _ => {}
            }
        }
        Some(m)
    }

    /// `envVars`/`labels` of a metadata test: values compared exactly, or
    /// as expressions with `isRegex: true`.
    fn matches(&mut self, node: &Node, what: &str) -> Vec<KeyValue> {
        let mut out = Vec::new();
        for (key, value, regex) in self.key_values(node, what, false) {
            let value = match regex {
                None => ValueMatch::Exact(value),
                Some(pos) => match Pattern::new(&value) {
                    Ok(p) => ValueMatch::Regex(p),
                    Err(e) => {
                        self.error(
                            pos,
                            format!("the value of '{key}' in {what} is not a valid regular expression: {e}"),
                            Some("the syntax is Go's (RE2); escape . * + ? ( ) [ ] { } | \\ with a backslash to match them literally".into()),
                        );
                        continue;
                    }
                },
            };
            out.push(KeyValue { key, value });
        }
        out
    }

    /// A list of `{key, value, isRegex}` mappings; keys must be non-empty
    /// and, with `value_required` (a command test's `envVars`, as CST
    /// checks), values too. Gives each key, value and, when `isRegex` is
    /// true, the value's position.
    fn key_values(
        &mut self,
        node: &Node,
        what: &str,
        value_required: bool,
    ) -> Vec<(String, String, Option<Pos>)> {
        let Some(items) = self.list(node, what, "a list of {key, value} mappings") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(entries) = self.entries(item, &format!("an entry of {what}"), ENV_KEYS) else {
                continue;
            };
            let mut key = None;
            let mut value = None;
            let mut value_pos = item.pos;
            let mut regex = false;
            for (k, v) in entries {
                match k {
                    "key" => key = self.string(v, k, what),
                    "value" => {
                        value = self.string(v, k, what);
                        value_pos = v.pos;
                    }
                    "isRegex" => regex = self.boolean(v, k, what).unwrap_or(false),
                    _ => {}
                }
            }
            let key = key.unwrap_or_default();
            let value = value.unwrap_or_default();
            if key.is_empty() {
                self.error(
                    item.pos,
                    format!("an entry of {what} has no 'key'"),
                    Some("write each entry as {key: NAME, value: VALUE}".into()),
                );
                continue;
            }
            if value_required && value.is_empty() {
                self.error(
                    item.pos,
                    format!("'{key}' in {what} has no 'value'"),
                    Some("container-structure-test refuses empty values here; give the variable a value".into()),
                );
                continue;
            }
            out.push((key, value, regex.then_some(value_pos)));
        }
        out
    }

    /// The items of a list; nothing (null) is no items.
    fn list<'n>(&mut self, node: &'n Node, what: &str, expected: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => None,
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be {expected}, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A scalar as text; nothing (null) is `None`.
    fn string(&mut self, node: &Node, key: &str, what: &str) -> Option<String> {
        match &node.value {
            _ if node.is_null() => None,
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!("'{key}' in {what} must be a string, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A list of strings with their positions; nothing (null) is `None`.
    fn located_strings(
        &mut self,
        node: &Node,
        key: &str,
        what: &str,
    ) -> Option<Vec<(String, Pos)>> {
        let items = self.list(node, &format!("'{key}' in {what}"), "a list of strings")?;
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                _ if item.is_null() => out.push((String::new(), item.pos)),
                Value::Scalar { text, .. } => out.push((text.clone(), item.pos)),
                _ => self.error(
                    item.pos,
                    format!(
                        "items of '{key}' in {what} must be strings, found {}",
                        item.kind()
                    ),
                    None,
                ),
            }
        }
        Some(out)
    }

    fn strings(&mut self, node: &Node, key: &str, what: &str) -> Vec<String> {
        self.optional_strings(node, key, what).unwrap_or_default()
    }

    /// A list that, when present, is compared whole (`entrypoint`, `cmd`):
    /// absent or null is `None`, `[]` is an empty list.
    fn optional_strings(&mut self, node: &Node, key: &str, what: &str) -> Option<Vec<String>> {
        self.located_strings(node, key, what)
            .map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    /// Strings that CST refuses when empty (ports and volumes).
    fn non_empty_strings(&mut self, node: &Node, key: &str, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (text, pos) in self.located_strings(node, key, what).unwrap_or_default() {
            if text.is_empty() {
                self.error(pos, format!("an item of '{key}' in {what} is empty"), None);
            } else {
                out.push(text);
            }
        }
        out
    }

    /// A list of regular expressions, each compiled.
    fn patterns(&mut self, node: &Node, key: &str, what: &str) -> Vec<Pattern> {
        let mut out = Vec::new();
        for (text, pos) in self.located_strings(node, key, what).unwrap_or_default() {
            match Pattern::new(&text) {
                Ok(p) => out.push(p),
                Err(e) => self.error(
                    pos,
                    format!("'{text}' in '{key}' of {what} is not a valid regular expression: {e}"),
                    Some("the syntax is Go's (RE2); escape . * + ? ( ) [ ] { } | \\ with a backslash to match them literally".into()),
                ),
            }
        }
        out
    }

    /// `setup`/`teardown`: a list of commands, each a non-empty argv list.
    fn commands(&mut self, node: &Node, key: &str, what: &str) -> Vec<Vec<String>> {
        let Some(items) = self.list(node, &format!("'{key}' in {what}"), "a list of commands")
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            if !matches!(item.value, Value::Seq(_)) {
                self.error(
                    item.pos,
                    format!(
                        "each command of '{key}' in {what} must be a list (program and arguments), found {}",
                        item.kind()
                    ),
                    Some(format!("write {key}: [[\"sh\", \"-c\", \"...\"]]")),
                );
                continue;
            }
            let argv = self.strings(item, key, what);
            if argv.is_empty() {
                self.error(
                    item.pos,
                    format!("a command of '{key}' in {what} is empty"),
                    Some("remove the empty command, or name the program to run".into()),
                );
                continue;
            }
            out.push(argv);
        }
        out
    }

    /// A YAML 1.1 boolean (what CST's YAML library reads): true/false,
    /// yes/no, on/off, y/n, in the usual capitalisations, unquoted.
    fn boolean(&mut self, node: &Node, key: &str, what: &str) -> Option<bool> {
        let value = match &node.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y"
                | "Y" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
                | "N" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            self.error(
                node.pos,
                format!(
                    "'{key}' in {what} must be true or false, found {}",
                    describe(node)
                ),
                None,
            );
        }
        value
    }

    /// An unquoted integer.
    fn integer(&mut self, node: &Node, key: &str, what: &str) -> Option<i64> {
        let value = match &node.value {
            Value::Scalar { text, plain: true } => text.parse::<i64>().ok(),
            _ => None,
        };
        if value.is_none() {
            self.error(
                node.pos,
                format!(
                    "'{key}' in {what} must be an integer, found {}",
                    describe(node)
                ),
                None,
            );
        }
        value
    }

    /// `uid`/`gid`: a non-negative id, or -1 (CST's "not checked").
    fn owner_id(&mut self, node: &Node, key: &str, what: &str) -> Option<u64> {
        let n = self.integer(node, key, what)?;
        if n == -1 {
            return None;
        }
        match u64::try_from(n) {
            Ok(id) => Some(id),
            Err(_) => {
                self.error(
                    node.pos,
                    format!("'{key}' in {what} is {n}; ids are 0 or more"),
                    Some(format!("leave '{key}' out to not check it")),
                );
                None
            }
        }
    }
}

/// A node for a type-mismatch message: a scalar's text, or its kind.
fn describe(node: &Node) -> String {
    match node.as_scalar() {
        Some(text) if !node.is_null() => format!("'{text}'"),
        _ => node.kind().to_string(),
    }
}
