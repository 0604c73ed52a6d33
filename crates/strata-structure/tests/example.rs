//! A realistic structure-test file, read and run against an in-memory
//! notebook image: everything passes, then a broken image fails where
//! expected.

mod common;

use common::{Fake, REG, block_on, out, strings};
use strata_structure::{ImageConfig, Kind, is_structure_file, parse, run};

const TEXT: &str = include_str!("fixtures/notebook.yaml");
const FILE: &str = "images/base-notebook/test/structure.yaml";

const PASSWD: &[u8] =
    b"root:x:0:0:root:/root:/bin/bash\njovyan:x:1000:100::/home/jovyan:/bin/bash\n";
const OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";

fn config() -> ImageConfig {
    ImageConfig {
        env: strings(&[
            "PATH=/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "CONDA_DIR=/opt/conda",
            "HOME=/home/jovyan",
            "NB_UID=1000",
        ]),
        labels: [(
            "org.opencontainers.image.source".to_string(),
            "https://github.com/example/stack".to_string(),
        )]
        .into_iter()
        .collect(),
        entrypoint: Some(strings(&["tini", "-g", "--"])),
        cmd: Some(strings(&["start-notebook.py"])),
        exposed_ports: strings(&["8888/tcp"]),
        volumes: Vec::new(),
        workdir: "/home/jovyan".into(),
        user: "1000".into(),
    }
}

/// A notebook image: `broken` swaps in an older python and a root home.
fn image(broken: bool) -> Fake {
    let fake = Fake::with_handler(move |argv, env| {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let has = |k: &str| env.iter().any(|(key, _)| key == k);
        Ok(match args[..] {
            ["which", "python"] => out("/opt/conda/bin/python\n", "", 0),
            ["python", "--version"] if broken => out("Python 3.11.9\n", "", 0),
            ["python", "--version"] => out("Python 3.12.7\n", "", 0),
            ["python", "-c", _] => out("4.2.5\n", "", 0),
            ["pip", "check"] if has("PIP_NO_COLOR") && has("PIP_DISABLE_PIP_VERSION_CHECK") => {
                out("No broken requirements found.\n", "", 0)
            }
            ["id", "-u"] => out("1000\n", "", 0),
            ["touch", _] | ["rm", "-f", _] => out("", "", 0),
            ["ls", "/home/jovyan/.structure-probe"] => {
                out("/home/jovyan/.structure-probe\n", "", 0)
            }
            [prog, ..] => out("", &format!("{prog}: not found\n"), 127),
            [] => out("", "", 0),
        })
    });
    fake.dir("/tmp", 0o1777, 0, 0)
        .dir(
            "/home/jovyan",
            if broken { 0o755 } else { 0o750 },
            if broken { 0 } else { 1000 },
            100,
        )
        .file(
            "/opt/conda/bin/conda",
            REG | 0o755,
            1000,
            100,
            b"#!/opt/conda/bin/python\n",
        )
        .file("/etc/os-release", REG | 0o644, 0, 0, OS_RELEASE)
        .file("/etc/passwd", REG | 0o644, 0, 0, PASSWD)
}

#[test]
fn the_example_is_a_structure_file_and_parses() {
    assert!(is_structure_file(TEXT));
    let file = parse(TEXT, FILE).unwrap_or_else(|d| panic!("{d:#?}"));
    assert_eq!(file.command_tests.len(), 6);
    assert_eq!(file.file_existence_tests.len(), 4);
    assert_eq!(file.file_content_tests.len(), 2);
    assert!(file.metadata_test.is_some());
    assert_eq!(file.len(), 13);
    assert_eq!(
        file.command_tests[2].args[1],
        "import jupyterlab\nprint(jupyterlab.__version__)\n"
    );
}

#[test]
fn the_example_passes_on_a_good_image() {
    let file = parse(TEXT, FILE).unwrap();
    let fake = image(false);
    let results = block_on(run(&file, &fake, &config()));
    assert_eq!(results.len(), file.len());
    for r in &results {
        assert!(
            r.passed,
            "{} failed: {:?}\n{}",
            r.name, r.failures, r.output
        );
    }
    assert_eq!(results.last().map(|r| r.kind), Some(Kind::Metadata));
}

#[test]
fn the_example_fails_on_a_broken_image_saying_why() {
    let file = parse(TEXT, FILE).unwrap();
    let mut config = config();
    config.user = "root".into();
    config.exposed_ports.clear();
    let fake = image(true);
    let results = block_on(run(&file, &fake, &config));
    let failed: Vec<(&str, Vec<String>)> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| (r.name.as_str(), r.failures.clone()))
        .collect();
    assert_eq!(
        failed,
        vec![
            (
                "python version",
                vec![r"expected output /Python 3\.12\.\d+/ not found in stdout".to_string()]
            ),
            (
                "home belongs to the notebook user",
                vec![
                    "/home/jovyan has permissions drwxr-xr-x, expected drwxr-x---".to_string(),
                    "/home/jovyan has uid 0, expected 1000".to_string(),
                ]
            ),
            (
                "Metadata Test",
                vec![
                    "user is \"root\", expected \"1000\"".to_string(),
                    "port 8888 is not exposed".to_string(),
                ]
            ),
        ]
    );
}
