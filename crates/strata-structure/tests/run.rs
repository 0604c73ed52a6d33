//! Running structure tests against an in-memory container: every kind of
//! test passing and failing, field by field, with the reason.

mod common;

use common::{Fake, LNK, REG, block_on, notebook_config, out, strings};
use strata_structure::{CaseResult, ImageConfig, Kind, parse, run};

fn run_text(text: &str, fake: &Fake, config: &ImageConfig) -> Vec<CaseResult> {
    let file = parse(text, "structure.yaml").unwrap_or_else(|d| panic!("{d:#?}"));
    block_on(run(&file, fake, config))
}

/// The only case of a one-test file.
fn one(text: &str, fake: &Fake) -> CaseResult {
    let text = format!("schemaVersion: '2.0.0'\n{text}");
    let mut results = run_text(&text, fake, &notebook_config());
    assert_eq!(results.len(), 1);
    results.remove(0)
}

fn passes(case: &CaseResult) {
    assert!(case.passed, "expected a pass, got {:#?}", case.failures);
    assert!(case.failures.is_empty());
}

fn fails_with(case: &CaseResult, reasons: &[&str]) {
    assert!(!case.passed, "expected a failure");
    assert_eq!(case.failures, reasons, "{case:#?}");
}

/// A container where `python3 --version` prints to stdout and `apt-get`
/// complains on stderr.
fn python() -> Fake {
    Fake::with_handler(|argv, _| {
        Ok(
            match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["python3", "--version"] => out("Python 3.12.7\n", "", 0),
                ["apt-get", "nope"] => out("", "E: Invalid operation nope\n", 100),
                [prog, ..] => out("", &format!("{prog}: not found\n"), 127),
                [] => out("", "", 0),
            },
        )
    })
}

const PYTHON: &str =
    "commandTests:\n  - name: python\n    command: python3\n    args: [--version]\n";

#[test]
fn a_command_test_passes_when_every_check_holds() {
    let case = one(
        &format!(
            "{PYTHON}    expectedOutput: ['Python 3\\.12', '^Python']\n    excludedOutput: ['Python 2']\n    expectedError: ['^$']\n    excludedError: [Traceback]\n"
        ),
        &python(),
    );
    passes(&case);
    assert_eq!(case.name, "python");
    assert_eq!(case.kind, Kind::Command);
    assert_eq!(case.output, "Python 3.12.7\n");
    assert!(case.duration_secs >= 0.0);
}

#[test]
fn each_command_check_fails_with_its_reason() {
    let fake = python();
    let cases: &[(&str, &str)] = &[
        (
            "    expectedOutput: ['Python 2']\n",
            "expected output /Python 2/ not found in stdout",
        ),
        (
            "    excludedOutput: ['3\\.\\d+']\n",
            "excluded output /3\\.\\d+/ found in stdout: \"3.12\"",
        ),
        (
            "    expectedError: [warning]\n",
            "expected error /warning/ not found in stderr",
        ),
        ("    exitCode: 1\n", "exit code 0, expected 1"),
    ];
    for (extra, reason) in cases {
        let case = one(&format!("{PYTHON}{extra}"), &fake);
        fails_with(&case, &[reason]);
    }

    let case = one(
        "commandTests:\n  - name: apt\n    command: apt-get\n    args: [nope]\n    excludedError: ['Invalid \\w+']\n",
        &fake,
    );
    fails_with(
        &case,
        &[
            "excluded error /Invalid \\w+/ found in stderr: \"Invalid operation\"",
            "exit code 100, expected 0",
        ],
    );
    assert_eq!(case.output, "E: Invalid operation nope\n");

    // The expected exit code makes a failing command pass.
    let case = one(
        "commandTests:\n  - name: apt\n    command: apt-get\n    args: [nope]\n    exitCode: 100\n    expectedError: ['Invalid operation nope']\n",
        &fake,
    );
    passes(&case);
}

#[test]
fn all_failed_checks_are_listed_in_cst_order() {
    let case = one(
        &format!(
            "{PYTHON}    expectedOutput: [nothing]\n    excludedOutput: [Python]\n    expectedError: [err]\n    excludedError: ['^$']\n    exitCode: 3\n"
        ),
        &python(),
    );
    fails_with(
        &case,
        &[
            "expected error /err/ not found in stderr",
            "excluded error /^$/ found in stderr: \"\"",
            "expected output /nothing/ not found in stdout",
            "excluded output /Python/ found in stdout: \"Python\"",
            "exit code 0, expected 3",
        ],
    );
}

#[test]
fn setup_command_and_teardown_run_in_order_with_their_environment() {
    let fake = Fake::with_handler(|argv, _| Ok(out(&format!("ran {}\n", argv[0]), "", 0)));
    let text = r#"schemaVersion: '2.0.0'
globalEnvVars:
  - key: VIRTUAL_ENV
    value: $HOME/env
commandTests:
  - name: venv
    setup: [["virtualenv", "/env"], ["pip", "install", "flask"]]
    teardown: [["rm", "-rf", "/env"]]
    envVars:
      - key: PATH
        value: /env/bin:$PATH
      - key: MODE
        value: test
    command: sh
    args: ["-c", "echo $HOME ${VIRTUAL_ENV} $MODE $1 $$"]
    expectedOutput: ['ran sh']
"#;
    let results = run_text(text, &fake, &notebook_config());
    passes(&results[0]);
    let calls = fake.calls();
    let argvs: Vec<Vec<String>> = calls.iter().map(|c| c.argv.clone()).collect();
    assert_eq!(
        argvs,
        vec![
            strings(&["virtualenv", "/env"]),
            strings(&["pip", "install", "flask"]),
            // As CST does, $VAR in the argv is replaced by the image's
            // environment (with the global variables) before running.
            strings(&["sh", "-c", "echo /home/jovyan /home/jovyan/env   "]),
            strings(&["rm", "-rf", "/env"]),
        ]
    );
    let test_env = vec![
        ("VIRTUAL_ENV".to_string(), "/home/jovyan/env".to_string()),
        (
            "PATH".to_string(),
            "/env/bin:/opt/conda/bin:/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
        ("MODE".to_string(), "test".to_string()),
    ];
    assert_eq!(calls[0].env, test_env);
    assert_eq!(calls[1].env, test_env);
    assert_eq!(calls[2].env, test_env);
    // Teardown sees only the global variables.
    assert_eq!(calls[3].env, test_env[..1]);
    assert_eq!(results[0].output, "ran sh\n");
}

#[test]
fn test_variables_override_global_ones() {
    let fake = Fake::with_handler(|_, _| Ok(out("", "", 0)));
    let text = "schemaVersion: '2.0.0'\nglobalEnvVars:\n  - {key: A, value: global}\n  - {key: B, value: kept}\ncommandTests:\n  - name: t\n    command: env\n    envVars:\n      - {key: A, value: local}\n";
    run_text(text, &fake, &ImageConfig::default());
    assert_eq!(
        fake.calls()[0].env,
        vec![
            ("B".to_string(), "kept".to_string()),
            ("A".to_string(), "local".to_string())
        ]
    );
}

#[test]
fn setup_exit_codes_are_not_checked_but_noted() {
    let fake = Fake::with_handler(|argv, _| {
        Ok(match argv[0].as_str() {
            "false" => out("", "boom\n", 1),
            _ => out("ok\n", "", 0),
        })
    });
    let case = one(
        "commandTests:\n  - name: t\n    setup: [[\"false\"]]\n    teardown: [[\"false\"]]\n    command: echo\n",
        &fake,
    );
    passes(&case);
    assert_eq!(
        case.output,
        "[setup command false exited with code 1]\nboom\nok\n[teardown command false exited with code 1]\nboom\n"
    );
}

#[test]
fn container_errors_fail_the_case_without_panicking() {
    // The command cannot run.
    let case = one(PYTHON, &Fake::broken("the engine went away"));
    fails_with(
        &case,
        &["command python3 --version could not run: the engine went away"],
    );

    // A setup command cannot run: the command is not attempted.
    let fake = Fake::with_handler(|argv, _| match argv[0].as_str() {
        "setup" => Err("container is gone".to_string()),
        _ => Ok(out("", "", 0)),
    });
    let case = one(
        "commandTests:\n  - name: t\n    setup: [[setup, x]]\n    teardown: [[cleanup]]\n    command: echo\n",
        &fake,
    );
    fails_with(
        &case,
        &["setup command setup x could not run: container is gone"],
    );
    assert_eq!(fake.calls().len(), 1);

    // A teardown that cannot run is noted, not a failure (as in CST).
    let fake = Fake::with_handler(|argv, _| match argv[0].as_str() {
        "cleanup" => Err("container is gone".to_string()),
        _ => Ok(out("hi\n", "", 0)),
    });
    let case = one(
        "commandTests:\n  - name: t\n    teardown: [[cleanup]]\n    command: echo\n",
        &fake,
    );
    passes(&case);
    assert_eq!(
        case.output,
        "hi\n[teardown command cleanup could not run: container is gone]\n"
    );

    // Every kind of test, against a broken container.
    let text = r#"schemaVersion: '2.0.0'
commandTests:
  - {name: c, command: ls}
fileExistenceTests:
  - {name: e, path: /etc}
fileContentTests:
  - {name: f, path: /etc/hosts}
metadataTest:
  user: "1000"
"#;
    let results = run_text(text, &Fake::broken("EOF"), &notebook_config());
    let summary: Vec<(&str, bool, &str)> = results
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.passed,
                r.failures.first().map(String::as_str).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("c", false, "command ls could not run: EOF"),
            ("e", false, "could not examine /etc: EOF"),
            ("f", false, "could not read /etc/hosts: EOF"),
            // The metadata test needs no container.
            ("Metadata Test", true, ""),
        ]
    );
}

fn files() -> Fake {
    Fake::default()
        .dir("/", 0o755, 0, 0)
        .dir("/tmp", 0o1777, 0, 0)
        .dir("/home/jovyan", 0o750, 1000, 100)
        .file(
            "/etc/passwd",
            REG | 0o644,
            0,
            0,
            b"root:x:0:0:root:/root:/bin/bash\n",
        )
        .file("/usr/bin/sudo", REG | 0o4755, 0, 0, b"\x7fELF")
        .file("/opt/conda/bin/python", LNK | 0o777, 1000, 100, b"")
        .file(
            "/usr/local/bin/start.sh",
            REG | 0o750,
            0,
            100,
            b"#!/bin/sh\n",
        )
        .file(
            "/usr/local/bin/other.sh",
            REG | 0o741,
            0,
            100,
            b"#!/bin/sh\n",
        )
}

fn existence(fields: &str) -> String {
    format!("fileExistenceTests:\n  - name: e\n{fields}")
}

#[test]
fn file_existence_checks_pass_when_they_hold() {
    let fake = files();
    for fields in [
        "    path: /\n    shouldExist: true\n    permissions: drwxr-xr-x\n    uid: 0\n    gid: 0\n",
        "    path: /tmp\n    permissions: dtrwxrwxrwx\n",
        "    path: /usr/bin/sudo\n    permissions: urwxr-xr-x\n    isExecutableBy: other\n",
        "    path: /opt/conda/bin/python\n    permissions: Lrwxrwxrwx\n    uid: 1000\n",
        "    path: /etc/passwd\n    permissions: -rw-r--r--\n",
        "    path: /usr/local/bin/start.sh\n    isExecutableBy: group\n",
        "    path: /usr/local/bin/start.sh\n    isExecutableBy: owner\n",
        "    path: /usr/local/bin/other.sh\n    isExecutableBy: any\n",
        "    path: /etc/shadow-backup\n    shouldExist: false\n",
        // $VAR in the path comes from the image's environment.
        "    path: $HOME\n    uid: 1000\n    gid: 100\n",
        "    path: ${CONDA_DIR}/bin/python\n",
    ] {
        let case = one(&existence(fields), &fake);
        passes(&case);
        assert_eq!(case.kind, Kind::FileExistence);
        assert_eq!(case.output, "");
    }
}

#[test]
fn each_file_existence_check_fails_with_its_reason() {
    let fake = files();
    let cases: &[(&str, &[&str])] = &[
        (
            "    path: /etc/machine-id\n",
            &["/etc/machine-id does not exist"],
        ),
        (
            "    path: /etc/passwd\n    shouldExist: false\n    permissions: -rwxrwxrwx\n",
            &["/etc/passwd exists but should not"],
        ),
        (
            "    path: /etc/passwd\n    permissions: -rwxrwxrwx\n",
            &["/etc/passwd has permissions -rw-r--r--, expected -rwxrwxrwx"],
        ),
        (
            "    path: /tmp\n    permissions: drwxrwxrwx\n",
            &["/tmp has permissions dtrwxrwxrwx, expected drwxrwxrwx"],
        ),
        (
            "    path: /etc/passwd\n    isExecutableBy: any\n",
            &["/etc/passwd is not executable by anyone (permissions -rw-r--r--)"],
        ),
        (
            "    path: /usr/local/bin/start.sh\n    isExecutableBy: other\n",
            &["/usr/local/bin/start.sh is not executable by others (permissions -rwxr-x---)"],
        ),
        (
            "    path: /usr/local/bin/other.sh\n    isExecutableBy: group\n",
            &["/usr/local/bin/other.sh is not executable by its group (permissions -rwxr----x)"],
        ),
        (
            "    path: /etc/passwd\n    isExecutableBy: owner\n",
            &["/etc/passwd is not executable by its owner (permissions -rw-r--r--)"],
        ),
        (
            "    path: $HOME\n    uid: 0\n    gid: 0\n",
            &[
                "/home/jovyan has uid 1000, expected 0",
                "/home/jovyan has gid 100, expected 0",
            ],
        ),
        (
            "    path: $NOPE/etc/passwd\n    shouldExist: false\n",
            &["/etc/passwd exists but should not"],
        ),
    ];
    for (fields, reasons) in cases {
        let case = one(&existence(fields), &fake);
        fails_with(&case, reasons);
    }
}

fn content(fields: &str) -> String {
    format!("fileContentTests:\n  - name: c\n{fields}")
}

#[test]
fn file_content_checks() {
    let fake = files().file(
        "/etc/os-release",
        REG | 0o644,
        0,
        0,
        b"PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nID=ubuntu\nVERSION_ID=\"24.04\"\n",
    );
    let case = one(
        &content(
            "    path: /etc/os-release\n    expectedContents: ['ID=ubuntu', 'VERSION_ID=\"24\\.04\"']\n    excludedContents: ['ID=debian']\n",
        ),
        &fake,
    );
    passes(&case);
    assert_eq!(case.kind, Kind::FileContent);

    let case = one(
        &content(
            "    path: /etc/os-release\n    expectedContents: ['ID=debian']\n    excludedContents: ['Ubuntu \\d+', 'nothing']\n",
        ),
        &fake,
    );
    fails_with(
        &case,
        &[
            "expected content /ID=debian/ not found in /etc/os-release",
            "excluded content /Ubuntu \\d+/ found in /etc/os-release: \"Ubuntu 24\"",
        ],
    );

    let case = one(&content("    path: /etc/missing\n"), &fake);
    fails_with(&case, &["/etc/missing does not exist"]);

    // Non-UTF-8 bytes do not stop the text around them from matching.
    let fake = Fake::default().file(
        "/bin/tool",
        REG | 0o755,
        0,
        0,
        b"\x7fELF\xff\xfe version 1.2\n",
    );
    let case = one(
        &content("    path: /bin/tool\n    expectedContents: ['version 1\\.2']\n"),
        &fake,
    );
    passes(&case);

    // As in CST, no $VAR substitution in a content test's path.
    let case = one(&content("    path: $HOME/.bashrc\n"), &files());
    fails_with(&case, &["$HOME/.bashrc does not exist"]);
}

#[test]
fn a_metadata_test_passes_when_every_field_holds() {
    let case = one(
        r#"metadataTest:
  envVars:
    - key: NB_USER
      value: jovyan
    - key: PYTHON_VERSION
      value: '^3\.12\.\d+$'
      isRegex: true
  unboundEnvVars:
    - key: SECRET
  labels:
    - key: maintainer
      value: Jupyter Project <jupyter@googlegroups.com>
    - key: org.opencontainers.image.version
      value: '\d{4}-\d{2}-\d{2}'
      isRegex: true
  exposedPorts: ["8888", "8888/tcp"]
  unexposedPorts: ["80", "8888/udp"]
  unmountedVolumes: [/data]
  entrypoint: [tini, -g, --]
  cmd: [start-notebook.py]
  workdir: /home/jovyan
  user: "1000"
"#,
        &Fake::broken("metadata needs no container"),
    );
    passes(&case);
    assert_eq!(case.kind, Kind::Metadata);
    assert_eq!(case.name, "Metadata Test");
}

#[test]
fn each_metadata_check_fails_with_its_reason() {
    let fake = Fake::default();
    let cases: &[(&str, &str)] = &[
        (
            "  envVars:\n    - {key: NB_USER, value: root}\n",
            "env var NB_USER is \"jovyan\", expected \"root\"",
        ),
        (
            "  envVars:\n    - {key: PYTHON_VERSION, value: '^3\\.11', isRegex: true}\n",
            "env var PYTHON_VERSION is \"3.12.7\", expected /^3\\.11/",
        ),
        (
            "  envVars:\n    - {key: MISSING, value: x}\n",
            "env var MISSING is not set in the image",
        ),
        (
            "  unboundEnvVars:\n    - key: HOME\n",
            "env var HOME is set (to \"/home/jovyan\") but should not be",
        ),
        (
            "  labels:\n    - {key: maintainer, value: me}\n",
            "label maintainer is \"Jupyter Project <jupyter@googlegroups.com>\", expected \"me\"",
        ),
        (
            "  labels:\n    - {key: org.opencontainers.image.version, value: '^v', isRegex: true}\n",
            "label org.opencontainers.image.version is \"2024-11-04\", expected /^v/",
        ),
        (
            "  labels:\n    - {key: absent, value: ''}\n",
            "label absent is not set on the image",
        ),
        ("  exposedPorts: ['8080']\n", "port 8080 is not exposed"),
        (
            "  exposedPorts: ['8888/udp']\n",
            "port 8888/udp is not exposed",
        ),
        (
            "  unexposedPorts: ['8888']\n",
            "port 8888 is exposed but should not be",
        ),
        ("  volumes: [/data]\n", "volume /data is not declared"),
        (
            "  entrypoint: []\n",
            "entrypoint is [\"tini\", \"-g\", \"--\"], expected []",
        ),
        (
            "  entrypoint: [tini, --]\n",
            "entrypoint is [\"tini\", \"-g\", \"--\"], expected [\"tini\", \"--\"]",
        ),
        (
            "  cmd: [start-lab.py]\n",
            "cmd is [\"start-notebook.py\"], expected [\"start-lab.py\"]",
        ),
        (
            "  workdir: /root\n",
            "workdir is \"/home/jovyan\", expected \"/root\"",
        ),
        ("  user: root\n", "user is \"1000\", expected \"root\""),
    ];
    for (fields, reason) in cases {
        let case = one(&format!("metadataTest:\n{fields}"), &fake);
        fails_with(&case, &[reason]);
    }

    // Volumes, and lists the image does not have at all.
    let config = ImageConfig {
        volumes: strings(&["/data"]),
        ..ImageConfig::default()
    };
    let text = "schemaVersion: '2.0.0'\nmetadataTest:\n  unmountedVolumes: [/data]\n  volumes: [/data]\n  cmd: []\n  entrypoint: [sh]\n";
    let results = run_text(text, &fake, &config);
    fails_with(
        &results[0],
        &[
            "entrypoint is [], expected [\"sh\"]",
            "volume /data is declared but should not be",
        ],
    );
}

#[test]
fn results_come_in_kind_then_file_order() {
    let fake = files();
    let text = r#"schemaVersion: '2.0.0'
metadataTest:
  user: "1000"
fileContentTests:
  - {name: passwd, path: /etc/passwd, expectedContents: [root]}
fileExistenceTests:
  - {name: root, path: /}
  - {name: tmp, path: /tmp}
commandTests:
  - {name: first, command: "true"}
  - {name: second, command: "false", exitCode: 127}
"#;
    let results = run_text(text, &fake, &notebook_config());
    let order: Vec<(Kind, &str)> = results.iter().map(|r| (r.kind, r.name.as_str())).collect();
    assert_eq!(
        order,
        vec![
            (Kind::Command, "first"),
            (Kind::Command, "second"),
            (Kind::FileExistence, "root"),
            (Kind::FileExistence, "tmp"),
            (Kind::FileContent, "passwd"),
            (Kind::Metadata, "Metadata Test"),
        ]
    );
    assert_eq!(results.iter().filter(|r| r.passed).count(), 5);
    assert_eq!(results[0].failures, ["exit code 127, expected 0"]);
    assert_eq!(results[0].output, "true: not found\n");
}

#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let file = parse("schemaVersion: '2.0.0'\n", "f").unwrap();
    let fake = Fake::default();
    let config = ImageConfig::default();
    let future = run(&file, &fake, &config);
    assert_send(&future);
    assert!(block_on(future).is_empty());
}

#[test]
fn directories_report_their_mode() {
    let fake = Fake::default().dir("/srv", 0o2775, 0, 50);
    let case = one(
        &existence("    path: /srv\n    permissions: drwxrwxr-x\n"),
        &fake,
    );
    fails_with(
        &case,
        &["/srv has permissions dgrwxrwxr-x, expected drwxrwxr-x"],
    );
}
