//! Running structure tests over an in-memory driver: what containers CST's
//! docker driver would make for each test, and each outcome in CST's words.

mod common;

use common::{Call, DIR, Fake, REG, block_on, notebook_config, out, strings};
use strata_structure::{
    CaseResult, ContainerSpec, DriverError, HostEnv, HostOptions, ImageConfig, Kind, Step, parse,
    run,
};

fn run_text(text: &str, fake: &Fake, host: &HostEnv) -> Vec<CaseResult> {
    let file = parse(text, "structure.yaml").unwrap_or_else(|d| panic!("{d:#?}"));
    block_on(run(&file, fake, "img", host))
}

fn v2(text: &str, fake: &Fake) -> Vec<CaseResult> {
    run_text(
        &format!("schemaVersion: '2.0.0'\n{text}"),
        fake,
        &HostEnv::default(),
    )
}

/// (name, passed, failures) of each case.
fn summary(results: &[CaseResult]) -> Vec<(String, bool, Vec<String>)> {
    results
        .iter()
        .map(|r| (r.name.clone(), r.passed, r.failures.clone()))
        .collect()
}

fn python() -> Fake {
    Fake::new(notebook_config()).handler(|spec| {
        Ok(
            match spec.argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["python3", "--version"] => out("Python 3.12.7\n", "", 0),
                ["apt-get", "nope"] => out("", "E: Invalid operation nope\n", 100),
                [prog, ..] => out("", &format!("{prog}: not found\n"), 127),
                [] => out("", "", 0),
            },
        )
    })
}

#[test]
fn command_checks_fail_in_cst_words_and_order() {
    let results = v2(
        "commandTests:\n  - name: py\n    command: python3\n    args: [--version]\n    expectedOutput: ['Python 2']\n    excludedOutput: ['3\\.\\d+']\n    expectedError: [warning]\n    excludedError: ['^$']\n    exitCode: 1\n",
        &python(),
    );
    assert_eq!(
        summary(&results),
        vec![(
            "Command Test: py".to_string(),
            false,
            strings(&[
                "Expected string 'warning' not found in error ''",
                "Excluded string '^$' found in error ''",
                "Expected string 'Python 2' not found in output 'Python 3.12.7\n'",
                "Excluded string '3\\.\\d+' found in output 'Python 3.12.7\n'",
                "Test 'py' exited with incorrect error code. Expected: 1, Actual: 0",
            ])
        )]
    );
    assert_eq!(results[0].output, "Python 3.12.7\n");
    assert_eq!(results[0].kind, Kind::Command);

    let results = v2(
        "commandTests:\n  - name: apt\n    command: apt-get\n    args: [nope]\n    exitCode: 100\n    expectedError: ['Invalid operation']\n",
        &python(),
    );
    assert!(results[0].passed, "{results:#?}");
}

#[test]
fn a_command_runs_as_the_container_command_with_raw_test_variables() {
    let fake = python();
    let text = "globalEnvVars:\n  - {key: VENV, value: $HOME/env}\ncommandTests:\n  - name: t\n    envVars:\n      - {key: PATH, value: /env/bin:$PATH}\n    command: echo\n    args: [$HOME, $VENV, $PATH]\n    teardown: [[rm, -rf, /env]]\n";
    v2(text, &fake);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1, "teardown is not run: {calls:#?}");
    let Call::Run { image, spec } = &calls[0] else {
        panic!("{calls:#?}")
    };
    assert_eq!(image, "img");
    // $VAR in the argv: the image's environment with the global variables.
    assert_eq!(
        spec.argv,
        strings(&[
            "echo",
            "/home/jovyan",
            "/home/jovyan/env",
            "/opt/conda/bin:/usr/local/bin:/usr/bin:/bin"
        ])
    );
    // The test's own variables go to the engine as written.
    assert_eq!(
        spec.env,
        strings(&["VENV=/home/jovyan/env", "PATH=/env/bin:$PATH"])
    );
    assert_eq!(spec.user, None);
}

#[test]
fn setup_commands_are_committed_and_their_images_removed() {
    let fake = python().handler(|_| Ok(out("", "", 0)));
    let text = "commandTests:\n  - name: t\n    setup: [[touch, /a], [touch, /b]]\n    envVars:\n      - {key: WHERE, value: $HOME/x}\n    command: ls\n    args: [$WHERE]\n";
    let results = v2(text, &fake);
    assert!(results[0].passed);
    let calls = fake.calls();
    let setup_env = strings(&["WHERE=/home/jovyan/x"]);
    let commit = |image: &str, argv: &[&str]| Call::Commit {
        image: image.into(),
        spec: ContainerSpec {
            argv: strings(argv),
            env: setup_env.clone(),
            ..ContainerSpec::default()
        },
    };
    assert_eq!(calls[0], commit("img", &["touch", "/a"]));
    assert_eq!(calls[1], commit("commit-1", &["touch", "/b"]));
    assert_eq!(
        calls[2],
        Call::Run {
            image: "commit-2".into(),
            spec: ContainerSpec {
                // After setup, the committed variables expand the argv.
                argv: strings(&["ls", "/home/jovyan/x"]),
                env: strings(&["WHERE=$HOME/x"]),
                ..ContainerSpec::default()
            }
        }
    );
    assert_eq!(
        calls[3..],
        [
            Call::Remove {
                image: "commit-2".into()
            },
            Call::Remove {
                image: "commit-1".into()
            }
        ]
    );
}

#[test]
fn engine_errors_fail_commands_with_the_engines_reason() {
    let results = v2(
        "commandTests:\n  - {name: gone, command: nothing-here}\n  - {name: s, setup: [[x]], command: y}\n",
        &Fake::new(ImageConfig::default()),
    );
    assert_eq!(
        summary(&results),
        vec![
            (
                "Command Test: gone".to_string(),
                false,
                strings(&[
                    "Error creating container: API error (400): exec: \"nothing-here\": executable file not found in $PATH"
                ])
            ),
            (
                "s".to_string(),
                false,
                strings(&[
                    "error in setup: Error creating container: API error (400): exec: \"x\": executable file not found in $PATH"
                ])
            ),
        ]
    );
}

#[test]
fn run_options_reach_every_container_and_replace_test_variables() {
    let fake = python().handler(|_| Ok(out("ok", "", 0)));
    let text = "schemaVersion: '2.0.0'\ncontainerRunOptions:\n  user: nobody\n  privileged: true\n  allocateTty: true\n  envVars: [FROM_HOST, UNSET_ON_HOST]\n  envFile: test.env\n  capabilities: [NET_ADMIN]\n  bindMounts: ['/tmp:/mnt:ro']\ncommandTests:\n  - name: t\n    setup: [[true]]\n    envVars: [{key: OWN, value: dropped}]\n    command: env\nfileExistenceTests:\n  - {name: f, path: /etc/passwd, shouldExist: false}\n";
    let host = HostEnv {
        vars: [("FROM_HOST".to_string(), "yes".to_string())].into(),
        env_file: Some(Ok(vec![
            ("FILE_VAR".into(), "1".into()),
            ("EMPTY".into(), String::new()),
        ])),
    };
    let results = run_text(text, &fake, &host);
    assert!(results.iter().all(|r| r.passed), "{results:#?}");
    let calls = fake.calls();
    let options = HostOptions {
        privileged: true,
        capabilities: strings(&["NET_ADMIN"]),
        bind_mounts: strings(&["/tmp:/mnt:ro"]),
    };
    let Call::Commit { spec: setup, .. } = &calls[0] else {
        panic!("{calls:#?}")
    };
    assert_eq!(setup.user.as_deref(), Some("nobody"));
    assert_eq!(setup.env, strings(&["OWN=dropped"]));
    assert!(!setup.tty);
    assert_eq!(setup.host, options);
    let Call::Run { spec, .. } = &calls[1] else {
        panic!("{calls:#?}")
    };
    assert_eq!(spec.env, strings(&["FILE_VAR=1", "FROM_HOST=yes"]));
    assert!(spec.tty);
    assert_eq!(spec.user.as_deref(), Some("nobody"));
    assert_eq!(spec.host, options);
}

#[test]
fn an_unreadable_env_file_is_noted_as_cst_warns() {
    let fake = python().handler(|_| Ok(out("ok\n", "", 0)));
    let host = HostEnv {
        vars: Default::default(),
        env_file: Some(Err("No such file or directory".into())),
    };
    let results = run_text(
        "schemaVersion: '2.0.0'\ncontainerRunOptions: {envFile: missing.env}\ncommandTests:\n  - {name: t, command: env}\n",
        &fake,
        &host,
    );
    assert!(results[0].passed);
    assert_eq!(
        results[0].output,
        "[unable to load envFile missing.env: No such file or directory]\nok\n"
    );
}

fn files() -> Fake {
    Fake::new(notebook_config())
        .file("/tmp", DIR | 0o1777, 0, 0, b"")
        .file("/home/jovyan", DIR | 0o750, 1000, 100, b"")
        .file(
            "/etc/passwd",
            REG | 0o644,
            0,
            0,
            b"root:x:0:0:root:/root:/bin/bash\n",
        )
        .file("/usr/bin/sudo", REG | 0o4755, 0, 0, b"\x7fELF")
        .file("/usr/lib/os-release", REG | 0o644, 0, 0, b"ID=debian\n")
        .link("/etc/os-release", "../usr/lib/os-release")
}

#[test]
fn file_existence_in_cst_words() {
    let text = r#"fileExistenceTests:
  - {name: tmp, path: /tmp, permissions: dtrwxrwxrwx, uid: 0, gid: 0}
  - {name: home, path: $HOME, permissions: drwxr-xr-x, uid: 0, gid: 0, isExecutableBy: other}
  - {name: sudo, path: /usr/bin/sudo, permissions: urwxr-xr-x, isExecutableBy: any}
  - {name: missing, path: /nope}
  - {name: absent, path: /nope, shouldExist: false}
  - {name: present, path: /etc/passwd, shouldExist: false}
"#;
    let results = v2(text, &files());
    assert_eq!(
        summary(&results),
        vec![
            ("File Existence Test: tmp".to_string(), true, vec![]),
            (
                "File Existence Test: home".to_string(),
                false,
                strings(&[
                    "$HOME has incorrect permissions. Expected: drwxr-xr-x, Actual: drwxr-x---",
                    "$HOME has incorrect executable bit. Expected to be executable by other, Actual: drwxr-x---",
                    "$HOME has incorrect user ownership. Expected: 0, Actual: 1000",
                    "$HOME has incorrect group ownership. Expected: 0, Actual: 100",
                ])
            ),
            ("File Existence Test: sudo".to_string(), true, vec![]),
            (
                "File Existence Test: missing".to_string(),
                false,
                strings(&[
                    "Error examining file in container: Error retrieving file from container: API error (404): Could not find the file /nope in container c1"
                ])
            ),
            ("File Existence Test: absent".to_string(), true, vec![]),
            (
                "File Existence Test: present".to_string(),
                false,
                strings(&["File /etc/passwd should not exist but does"])
            ),
        ]
    );
}

#[test]
fn an_engine_refusal_is_never_taken_for_a_missing_file() {
    let fake = Fake::new(ImageConfig::default());
    // The fake's archive of an unknown path says 404: absence, a pass.
    let results = v2(
        "fileExistenceTests:\n  - {name: a, path: /x, shouldExist: false}\n",
        &fake,
    );
    assert!(results[0].passed);
    // Any other engine error fails the test (CST would pass it).
    let refusing = RefusingArchive;
    let file = parse(
        "schemaVersion: '2.0.0'\nfileExistenceTests:\n  - {name: a, path: /x, shouldExist: false}\n",
        "f.yaml",
    )
    .unwrap();
    let results = block_on(run(&file, &refusing, "img", &HostEnv::default()));
    assert_eq!(
        results[0].failures,
        [
            "Error examining file in container: Error creating container: API error (400): invalid CapAdd: unknown capability: \"CAP_BOGUS\""
        ]
    );
}

/// An engine that refuses to create any container.
struct RefusingArchive;

impl strata_structure::Driver for RefusingArchive {
    async fn config(&self, _: &str) -> Result<ImageConfig, DriverError> {
        Ok(ImageConfig::default())
    }
    async fn run(
        &self,
        _: &str,
        _: &ContainerSpec,
    ) -> Result<strata_structure::ExecOutput, DriverError> {
        Err(refused())
    }
    async fn run_and_commit(&self, _: &str, _: &ContainerSpec) -> Result<String, DriverError> {
        Err(refused())
    }
    async fn archive_entry(
        &self,
        _: &str,
        _: &str,
        _: &HostOptions,
        _: bool,
    ) -> Result<strata_structure::ArchiveEntry, DriverError> {
        Err(refused())
    }
    async fn archive_dirs(
        &self,
        _: &str,
        _: &str,
        _: &HostOptions,
    ) -> Result<Vec<String>, DriverError> {
        Err(refused())
    }
    async fn remove_image(&self, _: &str) -> Result<(), DriverError> {
        Ok(())
    }
}

fn refused() -> DriverError {
    DriverError::new(
        Step::CreateContainer,
        "API error (400): invalid CapAdd: unknown capability: \"CAP_BOGUS\"",
    )
}

#[test]
fn file_contents_in_cst_words() {
    let text = r#"fileContentTests:
  - {name: os, path: /etc/os-release, expectedContents: ['ID=debian'], excludedContents: ['ubuntu']}
  - {name: bad, path: /etc/passwd, expectedContents: [nobody], excludedContents: [root]}
  - {name: dir, path: /tmp}
  - {name: gone, path: /nope}
"#;
    let results = v2(text, &files());
    let passwd = "root:x:0:0:root:/root:/bin/bash\n";
    assert_eq!(
        summary(&results),
        vec![
            ("File Content Test: os".to_string(), true, vec![]),
            (
                "File Content Test: bad".to_string(),
                false,
                vec![
                    format!("Expected string 'nobody' not found in file content string '{passwd}'"),
                    format!("Excluded string 'root' found in file content string '{passwd}'"),
                ]
            ),
            (
                "File Content Test: dir".to_string(),
                false,
                strings(&[
                    "Failed to open /tmp. Error: Cannot read specified path: /tmp is a directory, not a file"
                ])
            ),
            (
                "File Content Test: gone".to_string(),
                false,
                strings(&[
                    "Failed to open /nope. Error: Error retrieving file from container: API error (404): Could not find the file /nope in container c1"
                ])
            ),
        ]
    );
}

#[test]
fn schema_1_keeps_its_own_words_and_rules() {
    let fake = python();
    let text = "schemaVersion: '1.0.0'\nglobalEnvVars:\n  - {key: G, value: $HOME}\ncommandTests:\n  - name: py\n    command: [python3, --version]\n    expectedOutput: ['Python 2']\nfileContentTests:\n  - {name: c, path: /etc/passwd, excludedContents: [root]}\nfileExistenceTests:\n  - {name: e, path: $HOME}\n";
    let fake = Fake {
        files: files().files,
        ..fake
    };
    let results = run_text(text, &fake, &HostEnv::default());
    assert_eq!(
        summary(&results),
        vec![
            (
                "Command Test: py".to_string(),
                false,
                strings(&["Expected string 'Python 2' not found in output"])
            ),
            (
                "File Content Test: c".to_string(),
                false,
                strings(&[
                    "Expected string 'root' not found in file content string 'root:x:0:0:root:/root:/bin/bash\n'"
                ])
            ),
            (
                // No $VAR substitution in a 1.0.0 path.
                "File Existence Test: e".to_string(),
                false,
                strings(&[
                    "Error examining file in container: Error retrieving file from container: API error (404): Could not find the file $HOME in container c1"
                ])
            ),
        ]
    );
    // Global variables reach a 1.0.0 command only through setup.
    let Call::Run { spec, .. } = &fake.calls()[0] else {
        panic!()
    };
    assert!(spec.env.is_empty(), "{spec:?}");
}

#[test]
fn license_tests_check_debian_copyright_files() {
    let fake = Fake::new(ImageConfig::default())
        .file("/usr/share/doc/bash", DIR | 0o755, 0, 0, b"")
        .file(
            "/usr/share/doc/bash/copyright",
            REG | 0o644,
            0,
            0,
            b"GPL-3+\n",
        )
        .file("/usr/share/doc/evil", DIR | 0o755, 0, 0, b"")
        .file(
            "/usr/share/doc/evil/copyright",
            REG | 0o644,
            0,
            0,
            b"License: agpl-3\n",
        )
        .file("/usr/share/doc/libgnutls30", DIR | 0o755, 0, 0, b"")
        .file("/usr/share/doc/nocopy", DIR | 0o755, 0, 0, b"")
        .file("/LICENSE", REG | 0o644, 0, 0, b"WTFPL\n");
    let results = v2(
        "licenseTests:\n  - debian: true\n    files: [/LICENSE]\n  - {debian: false}\n",
        &fake,
    );
    let missing =
        "API error (404): Could not find the file /usr/share/doc/nocopy/copyright in container c1";
    assert_eq!(
        summary(&results),
        vec![
            (
                "License Test".to_string(),
                false,
                vec![
                    "Invalid license for /usr/share/doc/evil/copyright, license contains AGPL"
                        .to_string(),
                    format!(
                        "Error reading license file for nocopy: Error retrieving file from container: {missing}"
                    ),
                    format!(
                        "Error reading license file for /usr/share/doc/nocopy/copyright: Error retrieving file from container: {missing}"
                    ),
                    "Invalid license for /LICENSE, license contains WTFPL".to_string(),
                ]
            ),
            ("License Test".to_string(), true, vec![]),
        ]
    );
    assert_eq!(results[0].kind, Kind::License);
}

#[test]
fn metadata_in_cst_words() {
    let fake = Fake::new(notebook_config());
    let text = r#"metadataTest:
  envVars:
    - {key: NB_USER, value: root}
    - {key: PYTHON_VERSION, value: '^3\.12', isRegex: true}
    - {key: MISSING, value: x}
  unboundEnvVars: [{key: HOME}]
  labels:
    - {key: maintainer, value: me}
    - {key: absent, value: x}
  cmd: [start-lab.py]
  entrypoint: [tini, --]
  workdir: /root
  user: root
  exposedPorts: ['8888', '8888/tcp']
  unexposedPorts: ['8888']
  volumes: [/data]
"#;
    let results = v2(text, &fake);
    assert_eq!(
        summary(&results),
        vec![(
            "Metadata Test".to_string(),
            false,
            strings(&[
                "env var NB_USER value jovyan does not match expected value: root",
                "variable MISSING not found in image env",
                "env variable HOME should not be present in image metadata",
                "label maintainer value Jupyter Project <jupyter@googlegroups.com> does not match expected value: me",
                "label absent not found in image metadata",
                "Image config Cmd [start-notebook.py] does not match expected value: [start-lab.py]",
                "Image entrypoint [tini -g --] does not match expected entrypoint: [tini --]",
                "Image workdir /home/jovyan does not match config workdir: /root",
                "Image user 1000 does not match config user: root",
                // CST knows ports by number: '8888/tcp' is never found.
                "Port 8888/tcp not found in config",
                "Port 8888 should not be exposed",
                "Volume /data not found in config",
            ])
        )]
    );
}

#[test]
fn results_come_in_cst_order() {
    let fake = Fake {
        files: files().files,
        ..python()
    };
    let text = r#"schemaVersion: '2.0.0'
metadataTest:
  user: "1000"
licenseTests:
  - files: [/etc/passwd]
fileExistenceTests:
  - {name: tmp, path: /tmp}
fileContentTests:
  - {name: passwd, path: /etc/passwd, expectedContents: [root]}
commandTests:
  - {name: py, command: python3, args: [--version]}
"#;
    let results = run_text(text, &fake, &HostEnv::default());
    let order: Vec<(Kind, &str, bool)> = results
        .iter()
        .map(|r| (r.kind, r.name.as_str(), r.passed))
        .collect();
    assert_eq!(
        order,
        vec![
            (Kind::Command, "Command Test: py", true),
            (Kind::FileContent, "File Content Test: passwd", true),
            (Kind::FileExistence, "File Existence Test: tmp", true),
            (Kind::License, "License Test", true),
            (Kind::Metadata, "Metadata Test", true),
        ]
    );
}

#[test]
fn the_run_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let file = parse("schemaVersion: '2.0.0'\n", "f").unwrap();
    let fake = Fake::new(ImageConfig::default());
    let host = HostEnv::default();
    let future = run(&file, &fake, "img", &host);
    assert_send(&future);
    assert!(block_on(future).is_empty());
}
