//! The structure-test files copied from public projects
//! (tests/data/cst/README.md says where each comes from): strata reads
//! each one CST reads, and refuses the one CST refuses, where CST does.

use strata_core::diag::Pos;
use strata_structure::{ExecutableBy, SchemaVersion, parse};

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cst")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn distroless_base_is_read_as_schema_1() {
    let file = parse(&data("distroless_base.yaml"), "base.yaml").expect("CST reads it");
    assert_eq!(file.schema_version, SchemaVersion::V1);
    assert_eq!(file.file_existence_tests.len(), 13);
    assert_eq!(file.file_content_tests.len(), 4);
    // The YAML escapes in the single-quoted pattern stay for the regex.
    assert_eq!(
        file.file_content_tests[0].expected_contents[0].as_str(),
        r"^root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n$"
    );
}

#[test]
fn distroless_python3_keeps_each_argv_as_written() {
    let file = parse(&data("distroless_python3.yaml"), "python3.yaml").expect("CST reads it");
    assert_eq!(file.schema_version, SchemaVersion::V1);
    assert_eq!(file.command_tests.len(), 4);
    let no_shell = &file.command_tests[1];
    assert_eq!(no_shell.name, "no_shell");
    assert_eq!(no_shell.command, "/usr/bin/python3");
    assert_eq!(
        no_shell.args,
        [
            "-c",
            "import subprocess, sys; subprocess.check_call(sys.executable + ' -h', shell=True)"
        ]
    );
    assert_eq!(no_shell.exit_code, 1);
    // A double-quoted `\\xe9` is the two characters `\xe9` for Python.
    assert_eq!(
        file.command_tests[2].args[1],
        r"open(u'h\xe9llo', 'w'); import sys; print(sys.getfilesystemencoding())"
    );
}

#[test]
fn distroless_java17_reads_link_permissions_and_executable_bits() {
    let file =
        parse(&data("distroless_java17_debian13.yaml"), "java17.yaml").expect("CST reads it");
    assert_eq!(file.schema_version, SchemaVersion::V2);
    let perms: Vec<Option<&str>> = file
        .file_existence_tests
        .iter()
        .map(|t| t.permissions.as_deref())
        .collect();
    assert_eq!(
        perms,
        [
            None,
            Some("Lrwxrwxrwx"),
            Some("Lrwxrwxrwx"),
            None,
            None,
            None,
            None,
            None
        ]
    );
    assert_eq!(
        file.file_existence_tests[6].is_executable_by,
        Some(ExecutableBy::Any)
    );
}

#[test]
fn rules_docker_and_docker_examples_files_are_read() {
    let file =
        parse(&data("rules_docker_deb_image_with_dpkgs.yaml"), "deb.yaml").expect("CST reads it");
    assert_eq!(file.file_existence_tests.len(), 8);
    assert_eq!(file.file_content_tests.len(), 6);
    let workdir = file
        .metadata_test
        .as_ref()
        .and_then(|m| m.workdir.as_deref());
    assert_eq!(workdir, Some("/test"));

    let file =
        parse(&data("docker_examples_test_turn.yaml"), "test_turn.yaml").expect("CST reads it");
    assert_eq!(file.file_existence_tests.len(), 7);
    assert_eq!(
        file.file_existence_tests[2].is_executable_by,
        Some(ExecutableBy::Owner)
    );
}

/// base-images-docker's file writes `env:` under `metadataTest`, a key CST's
/// strict decoding does not know (`field env not found in type
/// v2.MetadataTest`): CST refuses the whole file, and so does strata, at
/// that key.
#[test]
fn base_images_docker_debian_test_is_refused_at_its_env_key() {
    let text = data("base_images_docker_debian_test.yaml");
    let diags = parse(&text, "debian_test.yaml").expect_err("CST refuses it");
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert!(d.is_error());
    assert_eq!(
        d.pos,
        Some(Pos {
            line: 13,
            column: 3
        }),
        "{d:#?}"
    );
    assert!(d.message.contains("'env'"), "{d:#?}");
    assert!(
        d.help.as_deref().unwrap_or_default().contains("envVars"),
        "{d:#?}"
    );
}
