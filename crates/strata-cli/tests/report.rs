//! End-to-end test of the report: a real run of the example stack, one of
//! its images failing a test, whose report a real browser opens (Debian's
//! headless `chromium`, driven by `scripts/browse-report.py` over the
//! DevTools protocol).

mod common;

use common::describe;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn run(program: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// Removes every image named with the test's prefix when the test ends,
/// passed or not.
struct Images(String);

impl Drop for Images {
    fn drop(&mut self) {
        let listed = run(
            "docker",
            &["images", "--format", "{{.Repository}}:{{.Tag}}"],
            Path::new("/"),
        );
        for reference in String::from_utf8_lossy(&listed.stdout)
            .lines()
            .filter(|r| r.contains(&self.0))
        {
            let _ = run("docker", &["rmi", "-f", reference], Path::new("/"));
        }
    }
}

/// The pages a browser saw in `report`: `scripts/browse-report.py`'s JSON.
fn browse(report: &Path) -> Vec<Value> {
    let script = common::repo_root().join("scripts/browse-report.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(report)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(out.status.success(), "{}", describe(&out));
    let seen: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    seen["pages"].as_array().cloned().unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_real_runs_report_shows_every_image_and_the_failed_test_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = tmp.path().join("repo");
    let prefix = format!("strata-e2e-report-{}", std::process::id());
    let _cleanup = Images(prefix.clone());
    let images = repo.join("images");
    common::copy_example(&images, &prefix);
    // rstudio-notebook fails a test whose message holds markup and quotes:
    // the page must show it as text.
    let failing = "rstudio's tools list lacks <b>R</b> & \"quotes\"";
    let test_file = images.join("rstudio-notebook/test/test_rstudio.py");
    let mut tests = std::fs::read_to_string(&test_file).unwrap_or_else(|e| panic!("{e}"));
    tests.push_str(&format!(
        "\n\ndef test_the_report_shows_this(container):\n    assert \"<b>R</b>\" in container.run_and_check(\"cat /opt/stack/tools.txt\"), {failing:?}\n"
    ));
    std::fs::write(&test_file, tests).unwrap_or_else(|e| panic!("{e}"));
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "stack",
        ],
    ] {
        let out = run("git", args, &repo);
        assert!(out.status.success(), "git {args:?}: {}", describe(&out));
    }

    // One platform keeps the run short; it is the example's own spec.
    let out = tmp.path().join("out");
    let built = common::strata(&repo)
        .args([
            "build",
            "--all",
            "--offline",
            "--no-push",
            "--platform",
            "linux/amd64",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.status.code(), Some(1), "{}", describe(&built));
    let report = out.join("report");
    assert!(report.join("index.html").is_file(), "{}", describe(&built));

    let run_record = common::run_json(&out);
    let names: Vec<String> = run_record["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["image"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 4, "{run_record:#}");
    let pages = browse(&report);
    assert_eq!(pages.len(), 1 + 4, "{pages:#?}");
    let folder = format!(
        "file://{}/",
        std::fs::canonicalize(&report)
            .unwrap_or(report.clone())
            .display()
    );
    for page in &pages {
        assert_eq!(
            strings(&page["errors"]),
            Vec::<String>::new(),
            "{}",
            page["page"]
        );
        for request in strings(&page["requests"]) {
            assert!(request.starts_with(&folder), "{request} leaves {folder}");
        }
    }
    let index = &pages[0];
    // The index loads its style sheet: the browser reports requests (the
    // check above is not vacuous).
    assert!(
        strings(&index["requests"])
            .iter()
            .any(|r| r.ends_with("/report.css")),
        "{index:#}"
    );
    assert!(
        index["page"]
            .as_str()
            .is_some_and(|p| p.ends_with("/index.html"))
    );
    let (graph, timeline) = (strings(&index["graph"]), strings(&index["timeline"]));
    for name in &names {
        assert!(graph.contains(name), "{name} not in the graph: {graph:?}");
        assert!(
            timeline.contains(name),
            "{name} not in the timeline: {timeline:?}"
        );
    }
    // The text of the browser's page of `image`, which must be there.
    let page_text = |image: &str| {
        pages
            .iter()
            .find(|p| p["page"].as_str().is_some_and(|u| u.contains(image)))
            .unwrap_or_else(|| panic!("no page of {image}: {pages:#?}"))["text"]
            .as_str()
            .unwrap_or("")
    };
    let text = page_text("rstudio-notebook");
    assert!(text.contains(failing), "{text}");
    assert!(text.contains("test_the_report_shows_this"), "{text}");
    assert!(!page_text("base-notebook").contains(failing));

    // `strata report` elsewhere: the same run, and a second copy of it as
    // history; its log links reach the run's logs.
    let site = tmp.path().join("site");
    let reported = common::strata(tmp.path())
        .args(["report", "--from", "out", "--from", "out", "--out"])
        .arg(&site)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reported.status.code(), Some(0), "{}", describe(&reported));
    let index = std::fs::read_to_string(site.join("index.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(index.contains("2 runs, from"), "{index}");
    let page_name = std::fs::read_dir(&site)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.contains("rstudio-notebook"))
        .unwrap_or_else(|| panic!("no rstudio page in {}", site.display()));
    let page = std::fs::read_to_string(site.join(page_name)).unwrap_or_else(|e| panic!("{e}"));
    let logs: Vec<&str> = page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|href| href.ends_with(".log"))
        .collect();
    assert!(logs.len() >= 2, "{page}");
    for href in logs {
        assert!(site.join(href).is_file(), "{href} from {}", site.display());
    }
}

/// `--from` a folder that holds no run: exit 2, saying what `--from` names.
#[test]
fn a_report_from_a_folder_without_a_run_says_what_from_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["report", "--from", "no-run-here"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no-run-here/artifacts/run.json is not there"),
        "{said}"
    );
    assert!(
        said.contains("--from names a run's output folder"),
        "{said}"
    );
}

/// `git -C repo ARGS` (as the test's user), which must succeed; its output.
fn git(repo: &Path, args: &[&str]) -> String {
    let mut all = vec!["-c", "user.name=t", "-c", "user.email=t@e"];
    all.extend_from_slice(args);
    let out = run("git", &all, repo);
    assert!(out.status.success(), "git {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `strata` in `repo` with an empty Docker config of its own.
fn strata_in(repo: &Path, docker_config: &Path, args: &[&str]) -> Output {
    common::strata(repo)
        .env("DOCKER_CONFIG", docker_config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("strata {args:?}: {e}"))
}

/// The `size` of the first manifest JSON a run wrote.
fn manifest_size(out: &Path) -> u64 {
    let dir = out.join("manifests");
    let json = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()));
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("{e}"));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    value["size"]
        .as_u64()
        .unwrap_or_else(|| panic!("no size in {}", json.display()))
}

/// The one image page of a report folder.
fn image_page(site: &Path) -> String {
    let name = std::fs::read_dir(site)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("image-") && n.ends_with(".html"))
        .unwrap_or_else(|| panic!("no image page in {}", site.display()));
    std::fs::read_to_string(site.join(name)).unwrap_or_else(|e| panic!("{e}"))
}

/// Two builds pushed at two commits, the second image larger: the report
/// of the second run alone, with `--registry-history`, charts both from
/// the build records in the registry (the second run's own record not
/// twice), the earlier size among its figures. Without the flag, one run.
#[test]
fn registry_history_charts_the_earlier_build_recorded_in_the_registry() {
    common::ensure_base_image();
    let mut registry = strata_registry::testing::TestRegistry::start()
        .unwrap_or_else(|e| panic!("docker-registry: {e}"));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = tmp.path().join("repo");
    let docker_config = tmp.path().join("docker-config");
    std::fs::create_dir_all(repo.join("images/root")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&docker_config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(docker_config.join("config.json"), "{}\n").unwrap_or_else(|e| panic!("{e}"));
    let namespace = format!("{}/e2e-history-{}", registry.host(), std::process::id());
    let _cleanup = Images(namespace.clone());
    std::fs::write(
        repo.join("images/spec.yml"),
        format!(
            "root: root\nimages:\n  root:\n    image_name: {namespace}/root\ntag:\n  prefix: \"v1\"\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dockerfile = repo.join("images/root/Dockerfile");
    let base = common::BASE_IMAGE;
    std::fs::write(
        &dockerfile,
        format!("FROM {base}\nRUN echo 'root 1' > /root.txt\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let first = git(&repo, &["rev-parse", "--short=7", "HEAD"]);
    let out1 = tmp.path().join("run1");
    let built = strata_in(
        &repo,
        &docker_config,
        &["build", "--push", "--out", &out1.to_string_lossy()],
    );
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));

    // 300 kB more: a size figure of its own.
    std::fs::write(
        &dockerfile,
        format!(
            "FROM {base}\nRUN echo 'root 2' > /root.txt && head -c 300000 /dev/zero > /padding\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "second"]);
    let out2 = tmp.path().join("run2");
    let built = strata_in(
        &repo,
        &docker_config,
        &["build", "--push", "--out", &out2.to_string_lossy()],
    );
    assert_eq!(built.status.code(), Some(0), "{}", describe(&built));
    let (size1, size2) = (manifest_size(&out1), manifest_size(&out2));
    assert!(size2 > size1 + 250_000, "{size1} then {size2}");
    let (shown1, shown2) = (
        strata_report::text::human_size(size1),
        strata_report::text::human_size(size2),
    );
    assert_ne!(shown1, shown2);

    // `strata report` of the second run into `site`, with or without the
    // registry's history: it exits 0 either way; its index and stderr.
    let report = |site: &Path, registry_history: bool| {
        let from = out2.to_string_lossy();
        let into = site.to_string_lossy();
        let mut args = vec!["report", "--from", &from, "--out", &into];
        if registry_history {
            args.push("--registry-history");
        }
        let reported = strata_in(&repo, &docker_config, &args);
        assert_eq!(reported.status.code(), Some(0), "{}", describe(&reported));
        let index =
            std::fs::read_to_string(site.join("index.html")).unwrap_or_else(|e| panic!("{e}"));
        (
            index,
            String::from_utf8_lossy(&reported.stderr).into_owned(),
        )
    };

    // Without the flag: the one run given.
    let alone = tmp.path().join("alone");
    let (index, _) = report(&alone, false);
    assert!(index.contains("One run was given"), "{index}");
    assert!(!image_page(&alone).contains("size over 2 runs"));

    let site = tmp.path().join("site");
    let (index, said) = report(&site, true);
    assert!(
        said.contains("1 earlier run recalled from the registry's build records"),
        "{said}"
    );
    // Both builds left a record; the second is the run reported.
    assert!(said.contains("1 record of runs given left out"), "{said}");
    assert!(index.contains("2 runs, from"), "{index}");
    let page = image_page(&site);
    // The size chart: a point per run, the earlier one the first build's,
    // labelled with its commit.
    let chart = format!("size over 2 runs: {shown1}, {shown2}");
    assert!(page.contains(&chart), "no `{chart}` in {page}");
    assert!(page.contains("duration over 2 runs"), "{page}");
    let point = format!(" {first}: {shown1}</title></circle>");
    assert!(page.contains(&point), "no `{point}` in {page}");

    // The registry gone: a warning naming it and what to do, and the
    // report of the run without its registry history.
    registry.stop();
    let gone = tmp.path().join("gone");
    let (index, said) = report(&gone, true);
    assert!(
        said.contains(&format!(
            "warning: cannot list the build records of {namespace}/root in {}",
            registry.host()
        )),
        "{said}"
    );
    assert!(said.contains("or leave out --registry-history"), "{said}");
    assert!(index.contains("One run was given"), "{index}");
}
