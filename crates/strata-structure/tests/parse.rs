//! Reading structure-test files: what is accepted, and how problems are
//! reported (file, line, key, a fix).

use strata_core::diag::{Diagnostic, Pos};
use strata_structure::{
    CommandTest, EnvVar, ExecutableBy, KeyValue, LicenseTest, RunOptions, SchemaVersion,
    StructureFile, ValueMatch, parse,
};

const FILE: &str = "images/base/structure.yaml";

fn ok(text: &str) -> StructureFile {
    match parse(text, FILE) {
        Ok(file) => file,
        Err(diags) => panic!(
            "expected a valid file, got:\n{}",
            diags
                .iter()
                .map(|d| d.render(Some(text)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn errors(text: &str) -> Vec<Diagnostic> {
    let diags = parse(text, FILE).expect_err("expected errors");
    assert!(!diags.is_empty());
    for d in &diags {
        assert!(d.is_error());
        assert_eq!(d.file, FILE);
    }
    diags
}

/// The one error of `text`.
fn error(text: &str) -> Diagnostic {
    let diags = errors(text);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    diags.into_iter().next().unwrap()
}

fn at(line: usize, column: usize) -> Option<Pos> {
    Some(Pos { line, column })
}

#[test]
fn a_file_with_only_a_schema_version_has_no_tests() {
    let file = ok("schemaVersion: '2.0.0'\n");
    assert_eq!(file.file, FILE);
    assert!(file.is_empty());
    assert_eq!(file.len(), 0);
    assert_eq!(file.metadata_test, None);
    // Unquoted, and with empty lists and an empty metadata test.
    let file = ok(
        "schemaVersion: 2.0.0\ncommandTests: []\nfileExistenceTests:\nmetadataTest: {}\nlicenseTests: []\n",
    );
    assert!(file.is_empty());
}

#[test]
fn command_tests_read_every_field_with_cst_defaults() {
    let file = ok(r#"schemaVersion: '2.0.0'
globalEnvVars:
  - key: VIRTUAL_ENV
    value: /env
commandTests:
  - name: python
    command: python3
    args: ["--version"]
    expectedOutput: ['Python 3\.12']
  - name: "gunicorn flask"
    setup: [["virtualenv", "/env"], ["pip", "install", "gunicorn"]]
    teardown: [["rm", "-rf", "/env"]]
    envVars:
      - key: PATH
        value: /env/bin:$PATH
    command: which
    args: [gunicorn]
    expectedOutput: [/env/bin/gunicorn]
    excludedOutput: [not found]
    expectedError: ['^$']
    excludedError: ['.*FAIL.*']
    exitCode: 1
"#);
    assert_eq!(file.len(), 2);
    assert_eq!(
        file.global_env_vars,
        vec![EnvVar {
            key: "VIRTUAL_ENV".into(),
            value: "/env".into()
        }]
    );
    let first = &file.command_tests[0];
    assert_eq!(first.name, "python");
    assert_eq!(first.command, "python3");
    assert_eq!(first.args, vec!["--version"]);
    assert_eq!(first.exit_code, 0, "exitCode defaults to 0");
    assert!(first.setup.is_empty() && first.teardown.is_empty() && first.env_vars.is_empty());
    assert_eq!(first.expected_output[0].as_str(), r"Python 3\.12");

    let second: &CommandTest = &file.command_tests[1];
    assert_eq!(
        second.setup,
        vec![
            vec!["virtualenv".to_string(), "/env".into()],
            vec!["pip".into(), "install".into(), "gunicorn".into()]
        ]
    );
    assert_eq!(
        second.teardown,
        vec![vec!["rm".to_string(), "-rf".into(), "/env".into()]]
    );
    assert_eq!(second.env_vars[0].value, "/env/bin:$PATH");
    assert_eq!(second.exit_code, 1);
    assert_eq!(second.excluded_output[0].as_str(), "not found");
    assert_eq!(second.expected_error[0].as_str(), "^$");
    assert_eq!(second.excluded_error[0].as_str(), ".*FAIL.*");
}

#[test]
fn file_tests_read_every_field_with_cst_defaults() {
    let file = ok(r#"schemaVersion: "2.0.0"
fileExistenceTests:
  - name: Root
    path: /
    shouldExist: true
    permissions: drwxr-xr-x
    uid: 0
    gid: 0
  - name: conda
    path: $CONDA_DIR/bin/python
    isExecutableBy: any
  - name: no secrets
    path: /root/.ssh/id_rsa
    shouldExist: no
  - name: unchecked owner
    path: /x
    uid: -1
fileContentTests:
  - name: os
    path: /etc/os-release
    expectedContents: ['ID=ubuntu']
    excludedContents: ['ID=debian']
"#);
    assert_eq!(file.len(), 5);
    let t = &file.file_existence_tests;
    assert_eq!(t[0].permissions.as_deref(), Some("drwxr-xr-x"));
    assert_eq!((t[0].uid, t[0].gid), (Some(0), Some(0)));
    assert!(t[1].should_exist, "shouldExist defaults to true");
    assert_eq!(t[1].path, "$CONDA_DIR/bin/python");
    assert_eq!(t[1].is_executable_by, Some(ExecutableBy::Any));
    assert_eq!(
        (t[1].uid, t[1].gid, t[1].permissions.as_deref()),
        (None, None, None)
    );
    assert!(!t[2].should_exist);
    assert_eq!(t[3].uid, None, "-1 means not checked, as in CST");
    let c = &file.file_content_tests[0];
    assert_eq!(c.path, "/etc/os-release");
    assert_eq!(c.expected_contents[0].as_str(), "ID=ubuntu");
    assert_eq!(c.excluded_contents[0].as_str(), "ID=debian");
}

#[test]
fn metadata_tests_distinguish_empty_from_absent_lists() {
    let file = ok(r#"schemaVersion: '2.0.0'
metadataTest:
  envVars:
    - key: SOME_KEY
      value: SOME_VAL
    - key: EMPTY_VAR
      value: ''
    - key: REGEX_VAR
      value: '[a-z]+-2\.1\.*'
      isRegex: true
  unboundEnvVars:
    - key: BAR_FOO
  labels:
    - key: org.opencontainers.image.version
      value: '^\d{4}-\d{2}-\d{2}$'
      isRegex: true
  exposedPorts: ["8888"]
  unexposedPorts: ['80']
  volumes: [/data]
  unmountedVolumes: [/root]
  entrypoint: []
  workdir: /home/jovyan
  user: "1000"
"#);
    assert_eq!(file.len(), 1);
    let m = file.metadata_test.expect("a metadata test");
    assert_eq!(
        m.env_vars[0],
        KeyValue {
            key: "SOME_KEY".into(),
            value: ValueMatch::Exact("SOME_VAL".into())
        }
    );
    assert_eq!(m.env_vars[1].value, ValueMatch::Exact(String::new()));
    assert!(
        matches!(&m.env_vars[2].value, ValueMatch::Regex(p) if p.as_str() == r"[a-z]+-2\.1\.*")
    );
    assert_eq!(m.unbound_env_vars, vec!["BAR_FOO"]);
    assert!(matches!(&m.labels[0].value, ValueMatch::Regex(_)));
    assert_eq!(m.exposed_ports, vec!["8888"]);
    assert_eq!(m.unexposed_ports, vec!["80"]);
    assert_eq!(m.volumes, vec!["/data"]);
    assert_eq!(m.unmounted_volumes, vec!["/root"]);
    assert_eq!(m.entrypoint, Some(vec![]), "[] means must be empty");
    assert_eq!(m.cmd, None, "absent means not checked");
    assert_eq!(m.workdir.as_deref(), Some("/home/jovyan"));
    assert_eq!(m.user.as_deref(), Some("1000"));

    let file = ok("schemaVersion: '2.0.0'\nmetadataTest:\n  cmd:\n  workdir: ''\n");
    assert_eq!(
        file.metadata_test, None,
        "null cmd and empty workdir check nothing"
    );
}

#[test]
fn json_files_are_read_too() {
    let file = ok(
        r#"{"schemaVersion": "2.0.0", "commandTests": [{"name": "ls", "command": "ls", "args": ["/"]}]}"#,
    );
    assert_eq!(file.command_tests[0].args, vec!["/"]);
}

#[test]
fn unknown_keys_name_the_test_and_suggest_the_key() {
    let text = "schemaVersion: '2.0.0'\ncommandTests:\n  - name: apt\n    comand: apt-get\n";
    let diags = errors(text);
    assert_eq!(diags.len(), 2);
    // In file order: the then-missing command is reported at the test.
    assert_eq!(diags[0].message, "command test 'apt' has no 'command'");
    assert_eq!(diags[0].pos, at(3, 5));
    let d = &diags[1];
    assert_eq!(d.pos, at(4, 5));
    assert_eq!(d.message, "unknown key 'comand' in command test 'apt'");
    assert_eq!(d.help.as_deref(), Some("did you mean 'command'?"));
    let rendered = d.render(Some(text));
    assert!(
        rendered.starts_with(
            "images/base/structure.yaml:4:5: error: unknown key 'comand' in command test 'apt'"
        ),
        "{rendered}"
    );
    assert!(rendered.contains(" 4 |     comand: apt-get"), "{rendered}");
    assert!(
        rendered.ends_with("help: did you mean 'command'?"),
        "{rendered}"
    );

    let d = error("schemaVersion: '2.0.0'\ncommandTest: []\n");
    assert_eq!(d.pos, at(2, 1));
    assert_eq!(d.message, "unknown key 'commandTest' in the file");
    assert_eq!(d.help.as_deref(), Some("did you mean 'commandTests'?"));

    let d = error("schemaVersion: '2.0.0'\nmetadataTest:\n  env:\n    - {key: A, value: b}\n");
    assert_eq!(d.pos, at(3, 3));
    assert_eq!(d.message, "unknown key 'env' in metadataTest");
    assert_eq!(d.help.as_deref(), Some("did you mean 'envVars'?"));

    let d = error(
        "schemaVersion: '2.0.0'\nmetadataTest:\n  labels:\n    - {key: a, value: b, isregex: true}\n",
    );
    assert_eq!(d.pos, at(4, 26));
    assert_eq!(d.help.as_deref(), Some("did you mean 'isRegex'?"));

    let d = error(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: x\n    path: /x\n    zzz: 1\n",
    );
    assert!(
        d.help
            .unwrap()
            .starts_with("known keys: name, path, shouldExist")
    );
}

#[test]
fn wrong_types_name_the_key_and_what_was_found() {
    let cases: &[(&str, Option<Pos>, &str)] = &[
        (
            "commandTests:\n  - name: t\n    command: ls\n    exitCode: zero\n",
            at(5, 15),
            "'exitCode' in command test 't' must be an integer, found 'zero'",
        ),
        (
            "commandTests:\n  - name: t\n    command: ls\n    args: -l\n",
            at(5, 11),
            "'args' in command test 't' must be a list of strings, found a scalar",
        ),
        (
            "commandTests:\n  - name: t\n    command: ls\n    expectedOutput: [[a]]\n",
            at(5, 22),
            "items of 'expectedOutput' in command test 't' must be strings, found a list",
        ),
        (
            "fileExistenceTests:\n  - name: f\n    path: /x\n    shouldExist: maybe\n",
            at(5, 18),
            "'shouldExist' in file existence test 'f' must be true or false, found 'maybe'",
        ),
        (
            "fileExistenceTests:\n  - name: f\n    path: /x\n    uid: '0'\n",
            at(5, 10),
            "'uid' in file existence test 'f' must be an integer, found '0'",
        ),
        (
            "fileExistenceTests:\n  - name: f\n    path: /x\n    gid: -2\n",
            at(5, 10),
            "'gid' in file existence test 'f' is -2; ids are 0 or more",
        ),
        (
            "fileContentTests:\n  - name: c\n    path: {a: b}\n",
            at(4, 11),
            "'path' in file content test 'c' must be a string, found a mapping",
        ),
        (
            "commandTests: {name: x}\n",
            at(2, 15),
            "'commandTests' must be a list of tests, found a mapping",
        ),
        (
            "commandTests:\n  - just a string\n",
            at(3, 5),
            "command test #1 must be a mapping (key: value), found a scalar",
        ),
        (
            "metadataTest: [a]\n",
            at(2, 15),
            "metadataTest must be a mapping (key: value), found a list",
        ),
        (
            "metadataTest:\n  cmd: /bin/bash\n",
            at(3, 8),
            "'cmd' in metadataTest must be a list of strings, found a scalar",
        ),
    ];
    for (body, pos, message) in cases {
        let text = format!("schemaVersion: '2.0.0'\n{body}");
        let d = error(&text);
        assert_eq!(&d.message, message, "{text}");
        assert_eq!(d.pos, *pos, "{text}");
    }
}

#[test]
fn missing_required_keys_are_reported_at_the_test() {
    let text = r#"schemaVersion: '2.0.0'
commandTests:
  - name: fine
    command: ls
  - command: ls
  - name: no command
    args: [x]
fileExistenceTests:
  - name: no path
fileContentTests:
  - path: /etc/os-release
  - name: ''
    path: /x
"#;
    let diags = errors(text);
    let got: Vec<(String, Option<Pos>)> =
        diags.iter().map(|d| (d.message.clone(), d.pos)).collect();
    assert_eq!(
        got,
        vec![
            ("command test #2 has no 'name'".to_string(), at(5, 5)),
            (
                "command test 'no command' has no 'command'".to_string(),
                at(6, 5)
            ),
            (
                "file existence test 'no path' has no 'path'".to_string(),
                at(9, 5)
            ),
            ("file content test #1 has no 'name'".to_string(), at(11, 5)),
            ("file content test #2 has no 'name'".to_string(), at(12, 5)),
        ]
    );
}

#[test]
fn bad_regexes_are_parse_errors_at_the_expression() {
    let text = "schemaVersion: '2.0.0'\ncommandTests:\n  - name: t\n    command: ls\n    expectedOutput: ['ok', '(unclosed']\n";
    let d = error(text);
    assert_eq!(d.pos, at(5, 28));
    assert_eq!(
        d.message,
        "'(unclosed' in 'expectedOutput' of command test 't' is not a valid regular expression: unclosed group"
    );
    assert!(d.help.unwrap().contains("RE2"));

    let d = error(
        "schemaVersion: '2.0.0'\nfileContentTests:\n  - name: c\n    path: /x\n    excludedContents:\n      - 'a{2,1}'\n",
    );
    assert_eq!(d.pos, at(6, 9));
    assert!(
        d.message
            .contains("'excludedContents' of file content test 'c'"),
        "{}",
        d.message
    );

    let d = error(
        "schemaVersion: '2.0.0'\nmetadataTest:\n  envVars:\n    - key: V\n      value: '[a-'\n      isRegex: true\n",
    );
    assert_eq!(d.pos, at(5, 14));
    assert!(
        d.message.starts_with(
            "the value of 'V' in 'envVars' of metadataTest is not a valid regular expression"
        ),
        "{}",
        d.message
    );

    // Without isRegex, the same value is plain text.
    let file =
        ok("schemaVersion: '2.0.0'\nmetadataTest:\n  envVars:\n    - key: V\n      value: '[a-'\n");
    assert_eq!(
        file.metadata_test.unwrap().env_vars[0].value,
        ValueMatch::Exact("[a-".into())
    );
}

#[test]
fn is_executable_by_takes_four_values() {
    let d = error(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: f\n    path: /x\n    isExecutableBy: ownr\n",
    );
    assert_eq!(d.pos, at(5, 21));
    assert_eq!(
        d.message,
        "'isExecutableBy' in file existence test 'f' is 'ownr', which is not any, owner, group or other"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean 'owner'?"));
    let d = error(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: f\n    path: /x\n    isExecutableBy: root\n",
    );
    assert_eq!(
        d.help.as_deref(),
        Some("use one of: any, owner, group, other")
    );
}

#[test]
fn permissions_must_be_written_as_go_writes_them() {
    let d = error(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: sudo\n    path: /usr/bin/sudo\n    permissions: -rwsr-xr-x\n",
    );
    assert_eq!(d.pos, at(5, 18));
    assert!(
        d.message
            .contains("'-rwsr-xr-x', which is not a mode as Go writes it"),
        "{}",
        d.message
    );
    assert!(d.help.unwrap().contains("urwxr-xr-x"));
    let file = ok(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - name: sudo\n    path: /usr/bin/sudo\n    permissions: urwxr-xr-x\n",
    );
    assert_eq!(
        file.file_existence_tests[0].permissions.as_deref(),
        Some("urwxr-xr-x")
    );
}

#[test]
fn schema_versions_other_than_1_0_0_and_2_0_0_are_refused() {
    let text = "schemaVersion: '3.0.0'\ncommandTests:\n  - name: t\n    command: [apt-get, help]\n";
    let d = error(text);
    assert_eq!(d.pos, at(1, 16));
    assert_eq!(
        d.message,
        "schemaVersion '3.0.0' is not one container-structure-test reads"
    );
    assert!(d.help.unwrap().contains("2.0.0"));

    let diags = errors("commandTests:\n  - name: t\n    command: ls\n    bogus: 1\n");
    assert_eq!(diags[0].message, "the file has no 'schemaVersion'");
    assert_eq!(diags[0].pos, at(1, 1));
    assert_eq!(diags.len(), 2, "the rest is still checked: {diags:#?}");

    let d = error("schemaVersion:\n");
    assert_eq!(
        d.message,
        "'schemaVersion' must be a version, found nothing (null)"
    );

    let d = error("- a\n- b\n");
    assert!(
        d.message
            .starts_with("a structure-test file must be a mapping"),
        "{}",
        d.message
    );
}

#[test]
fn v1_style_commands_get_a_hint() {
    let d =
        error("schemaVersion: '2.0.0'\ncommandTests:\n  - name: t\n    command: [apt-get, help]\n");
    assert_eq!(
        d.message,
        "'command' in command test 't' must be a string, found a list"
    );
    assert!(d.help.unwrap().contains("args"));
    assert_eq!(d.pos, at(4, 14));
}

#[test]
fn setup_and_env_vars_are_checked_as_cst_checks_them() {
    let cases: &[(&str, Option<Pos>, &str)] = &[
        (
            "    setup: [[]]\n",
            at(5, 13),
            "a command of 'setup' in command test 't' is empty",
        ),
        (
            "    teardown: [rm -rf /x]\n",
            at(5, 16),
            "each command of 'teardown' in command test 't' must be a list (program and arguments), found a scalar",
        ),
        (
            "    envVars:\n      - key: A\n",
            at(6, 9),
            "'A' in 'envVars' of command test 't' has no 'value'",
        ),
        (
            "    envVars:\n      - value: x\n",
            at(6, 9),
            "an entry of 'envVars' of command test 't' has no 'key'",
        ),
        (
            "    envVars: {A: b}\n",
            at(5, 14),
            "'envVars' of command test 't' must be a list of {key, value} mappings, found a mapping",
        ),
    ];
    for (extra, pos, message) in cases {
        let text =
            format!("schemaVersion: '2.0.0'\ncommandTests:\n  - name: t\n    command: ls\n{extra}");
        let d = error(&text);
        assert_eq!(&d.message, message, "{text}");
        assert_eq!(d.pos, *pos, "{text}");
    }
    // Metadata variables may be empty, and ports and volumes may not.
    ok("schemaVersion: '2.0.0'\nmetadataTest:\n  envVars:\n    - key: EMPTY\n      value: ''\n");
    let d = error("schemaVersion: '2.0.0'\nmetadataTest:\n  exposedPorts: ['']\n");
    assert_eq!(
        d.message,
        "an item of 'exposedPorts' in metadataTest is empty"
    );
    assert_eq!(d.pos, at(3, 18));
    let d = error("schemaVersion: '2.0.0'\nmetadataTest:\n  labels:\n    - value: x\n");
    assert_eq!(
        d.message,
        "an entry of 'labels' of metadataTest has no 'key'"
    );
}

#[test]
fn schema_1_files_read_the_argv_from_command_and_refuse_2_0_0_keys() {
    let file =
        ok("schemaVersion: '1.0.0'\ncommandTests:\n  - name: t\n    command: [apt-get, help]\n");
    assert_eq!(file.schema_version, SchemaVersion::V1);
    assert_eq!(file.command_tests[0].command, "apt-get");
    assert_eq!(file.command_tests[0].args, ["help"]);
    let diags = errors(
        "schemaVersion: '1.0.0'\nmetadataTest: {}\nfileExistenceTests:\n  - {name: e, path: /, uid: 0}\ncommandTests:\n  - {name: c, command: [ls], args: [x]}\n",
    );
    let found: Vec<(Option<Pos>, &str)> =
        diags.iter().map(|d| (d.pos, d.message.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (at(2, 1), "unknown key 'metadataTest' in the file"),
            (at(4, 24), "unknown key 'uid' in file existence test 'e'"),
            (at(6, 30), "unknown key 'args' in command test 'c'"),
        ]
    );
}

#[test]
fn license_tests_and_run_options_are_read() {
    let file = ok(r#"schemaVersion: '2.0.0'
licenseTests:
  - debian: true
    files: [/LICENSE]
containerRunOptions:
  user: "1000"
  privileged: true
  allocateTty: true
  envVars: [TOKEN]
  envFile: test.env
  capabilities: [NET_ADMIN]
  bindMounts: ["/tmp:/mnt"]
"#);
    assert_eq!(
        file.license_tests,
        [LicenseTest {
            debian: true,
            files: vec!["/LICENSE".into()]
        }]
    );
    assert_eq!(
        file.run_options,
        RunOptions {
            user: Some("1000".into()),
            privileged: true,
            allocate_tty: true,
            env_vars: vec!["TOKEN".into()],
            env_file: Some("test.env".into()),
            capabilities: vec!["NET_ADMIN".into()],
            bind_mounts: vec!["/tmp:/mnt".into()],
        }
    );
    assert!(file.run_options.is_set());
    assert_eq!(file.len(), 1);

    let d = error("schemaVersion: '2.0.0'\ncontainerRunOptions:\n  priviledged: true\n");
    assert_eq!(d.pos, at(3, 3));
    assert_eq!(d.help.as_deref(), Some("did you mean 'privileged'?"));
    let d = error("schemaVersion: '2.0.0'\nlicenseTests:\n  - debian: maybe\n");
    assert_eq!(d.pos, at(3, 13));
    assert_eq!(
        d.message,
        "'debian' in license test #1 must be true or false, found 'maybe'"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"schemaVersion: '2.0.0'
commandTests:
  - name: a
    command: ls
    exitcode: 1
  - name: b
    command: ls
    expectedOutput: ['[']
fileExistenceTests:
  - name: c
    isExecutableBy: everyone
metadataTest:
  user: [root]
"#;
    let diags = errors(text);
    let lines: Vec<usize> = diags.iter().map(|d| d.pos.unwrap().line).collect();
    assert_eq!(lines, vec![5, 8, 10, 11, 13], "{diags:#?}");
    assert_eq!(diags[0].help.as_deref(), Some("did you mean 'exitCode'?"));
}

#[test]
fn yaml_syntax_errors_carry_a_position() {
    let d = error("schemaVersion: '2.0.0'\ncommandTests:\n  - name: 'x's\n");
    assert!(d.pos.is_some());
    assert!(d.message.contains("not valid YAML"));
    let d = error("schemaVersion: '2.0.0'\nschemaVersion: '2.0.0'\n");
    assert!(d.message.contains("appears twice"));
}
