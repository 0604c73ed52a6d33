//! Each kind of test's entry, and the run options, read and checked.

use super::*;

impl Reader<'_> {
    pub(super) fn command_test(
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

    pub(super) fn existence_test(
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

    pub(super) fn content_test(&mut self, node: &Node, index: usize) -> Option<FileContentTest> {
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

    pub(super) fn license_test(&mut self, node: &Node, index: usize) -> Option<LicenseTest> {
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

    pub(super) fn run_options(&mut self, node: &Node) -> RunOptions {
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

    pub(super) fn metadata_test(&mut self, node: &Node) -> Option<MetadataTest> {
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
    pub(super) fn matches(&mut self, node: &Node, what: &str) -> Vec<KeyValue> {
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
    pub(super) fn key_values(
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
}
