//! Tests of the git adapter against real repositories made with the git CLI.

mod common;

use std::path::Path;

use common::{Fixture, git_in};
use strata_git::{GitError, Repo};

fn open(f: &Fixture) -> Repo {
    Repo::discover(f.path()).expect("fixture is a repository")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A repository with a small image tree committed once.
fn base_fixture() -> (Fixture, String) {
    let f = Fixture::new();
    f.write("images/spec.yml", "images: {}\n");
    f.write("images/base/Dockerfile", "FROM scratch\n");
    f.write("images/base/files/a.txt", "a\n");
    f.write("images/child/Dockerfile", "FROM base\n");
    f.write("images/child/b.txt", "b\n");
    f.write("README.md", "readme\n");
    let c1 = f.commit("initial");
    (f, c1)
}

#[test]
fn modify_add_delete_are_reported() {
    let (f, c1) = base_fixture();
    f.write("images/base/files/a.txt", "changed\n");
    f.write("images/new/Dockerfile", "FROM base\n");
    f.remove("images/child/b.txt");
    let c2 = f.commit("second");

    let repo = open(&f);
    let got = repo.changed_paths(&c1, &c2).unwrap();
    assert_eq!(
        got,
        strings(&[
            "images/base/files/a.txt",
            "images/child/b.txt",
            "images/new/Dockerfile",
        ])
    );
    assert_eq!(got, f.git_changed(&c1, &c2));
    // The diff is symmetric in the paths it names.
    assert_eq!(repo.changed_paths(&c2, &c1).unwrap(), got);
}

#[test]
fn identical_commits_have_no_changed_paths() {
    let (f, c1) = base_fixture();
    let c2 = f.commit("empty commit");
    assert_ne!(c1, c2);
    let repo = open(&f);
    assert!(repo.changed_paths(&c1, &c2).unwrap().is_empty());
    assert!(repo.changed_paths("HEAD", "HEAD").unwrap().is_empty());
}

#[test]
fn a_rename_contributes_both_paths() {
    let (f, c1) = base_fixture();
    // Rename inside an image and a move out of one image into another.
    f.git(&[
        "mv",
        "images/base/files/a.txt",
        "images/base/files/renamed.txt",
    ]);
    f.git(&["mv", "images/child/b.txt", "images/base/b.txt"]);
    let c2 = f.commit("renames");

    let got = open(&f).changed_paths(&c1, &c2).unwrap();
    assert_eq!(
        got,
        strings(&[
            "images/base/b.txt",
            "images/base/files/a.txt",
            "images/base/files/renamed.txt",
            "images/child/b.txt",
        ])
    );
    assert_eq!(got, f.git_changed(&c1, &c2));
}

#[test]
fn a_renamed_directory_contributes_every_file_on_both_sides() {
    let (f, c1) = base_fixture();
    f.git(&["mv", "images/base", "images/root"]);
    let c2 = f.commit("rename image folder");
    let got = open(&f).changed_paths(&c1, &c2).unwrap();
    assert_eq!(
        got,
        strings(&[
            "images/base/Dockerfile",
            "images/base/files/a.txt",
            "images/root/Dockerfile",
            "images/root/files/a.txt",
        ])
    );
    assert_eq!(got, f.git_changed(&c1, &c2));
}

#[test]
fn mode_change_and_file_replaced_by_directory_match_git() {
    let (f, c1) = base_fixture();
    use std::os::unix::fs::PermissionsExt;
    let script = f.path().join("images/child/b.txt");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c2 = f.commit("chmod");
    let repo = open(&f);
    assert_eq!(
        repo.changed_paths(&c1, &c2).unwrap(),
        strings(&["images/child/b.txt"])
    );

    f.remove("README.md");
    f.write("README.md/inner.txt", "now a directory\n");
    f.remove("images/base/files");
    f.write("images/base/files", "now a file\n");
    let c3 = f.commit("swap file and directory");
    let got = repo.changed_paths(&c2, &c3).unwrap();
    assert_eq!(
        got,
        strings(&[
            "README.md",
            "README.md/inner.txt",
            "images/base/files",
            "images/base/files/a.txt",
        ])
    );
    assert_eq!(got, f.git_changed(&c2, &c3));
}

#[test]
fn symlink_changes_are_reported() {
    let (f, c1) = base_fixture();
    std::os::unix::fs::symlink("Dockerfile", f.path().join("images/base/link")).unwrap();
    let c2 = f.commit("add symlink");
    let got = open(&f).changed_paths(&c1, &c2).unwrap();
    assert_eq!(got, strings(&["images/base/link"]));
}

#[test]
fn paths_with_spaces_and_unicode_are_plain_utf8() {
    let (f, c1) = base_fixture();
    f.write("images/my image/Grüße ünd spaß.txt", "x\n");
    f.write("images/日本/ファイル name.txt", "y\n");
    f.write("images/tab\tname.txt", "z\n");
    let c2 = f.commit("unicode");
    let repo = open(&f);
    let got = repo.changed_paths(&c1, &c2).unwrap();
    assert_eq!(
        got,
        strings(&[
            "images/my image/Grüße ünd spaß.txt",
            "images/tab\tname.txt",
            "images/日本/ファイル name.txt",
        ])
    );
    assert_eq!(got, f.git_changed(&c1, &c2));
    assert_eq!(
        repo.file_at(&c2, "images/my image/Grüße ünd spaß.txt")
            .unwrap()
            .as_deref(),
        Some("x\n")
    );
}

#[test]
fn non_utf8_paths_are_converted_lossily() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let (f, c1) = base_fixture();
    let name = OsStr::from_bytes(b"images/base/caf\xe9.txt");
    f.write_bytes(name, b"latin-1 name\n");
    let c2 = f.commit("non-utf8 name");
    let got = open(&f).changed_paths(&c1, &c2).unwrap();
    assert_eq!(got, strings(&["images/base/caf\u{FFFD}.txt"]));
}

#[test]
fn changed_paths_agree_with_git_on_many_random_edits() {
    // A deterministic pseudo-random sequence of edits over a nested tree,
    // each step checked against `git diff --name-only --no-renames`.
    let f = Fixture::new();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let path_of = |i: u64, j: u64, k: u64| format!("d{i}/s{j}/f{k}.txt");
    for i in 0..4 {
        for j in 0..4 {
            for k in 0..4 {
                f.write(&path_of(i, j, k), "0\n");
            }
        }
    }
    let mut prev = f.commit("start");
    let repo = open(&f);
    for step in 0..12 {
        for _ in 0..(1 + next(6)) {
            let rel = path_of(next(5), next(5), next(5));
            let abs = f.path().join(&rel);
            match next(3) {
                0 if abs.is_file() => f.remove(&rel),
                _ => f.write(&rel, &format!("{step} {}\n", next(1000))),
            }
        }
        let head = f.commit(&format!("step {step}"));
        assert_eq!(
            repo.changed_paths(&prev, &head).unwrap(),
            f.git_changed(&prev, &head),
            "step {step}"
        );
        prev = head;
    }
    // And across the whole history at once.
    let first = f.git(&["rev-list", "--max-parents=0", "HEAD"]);
    let first = first.trim();
    assert_eq!(
        repo.changed_paths(first, "HEAD").unwrap(),
        f.git_changed(first, "HEAD")
    );
}

#[test]
fn merge_base_of_diverged_branches() {
    let (f, c1) = base_fixture();
    f.write("images/base/files/a.txt", "main 1\n");
    let fork = f.commit("main 1");
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.write("images/child/b.txt", "feature 1\n");
    let feature = f.commit("feature 1");
    f.git(&["checkout", "-q", "main"]);
    f.write("README.md", "main 2\n");
    let main = f.commit("main 2");

    let repo = open(&f);
    assert_eq!(
        repo.merge_base(&main, &feature).unwrap(),
        Some(fork.clone())
    );
    assert_eq!(
        repo.merge_base("feature", "main").unwrap(),
        Some(fork.clone())
    );
    // An ancestor is its own merge base with a descendant.
    assert_eq!(repo.merge_base(&c1, "main").unwrap(), Some(c1.clone()));
    // The change of the feature branch alone, as a pull request sees it.
    assert_eq!(
        repo.changed_paths(&fork, &feature).unwrap(),
        strings(&["images/child/b.txt"])
    );
}

#[test]
fn merge_base_of_unrelated_histories_is_none() {
    let (f, _) = base_fixture();
    f.git(&["checkout", "-q", "--orphan", "other"]);
    f.git(&["rm", "-rfq", "."]);
    f.write("other.txt", "unrelated\n");
    let other = f.commit("unrelated root");
    let repo = open(&f);
    assert_eq!(repo.merge_base("main", &other).unwrap(), None);
    assert_eq!(repo.first_parent(&other).unwrap(), None);
}

#[test]
fn range_commits_exclude_the_base_side_and_are_newest_first() {
    let (f, c1) = base_fixture();
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.write("images/child/b.txt", "f1\n");
    let f1 = f.commit("feature one\n\nwith a body that says Full Rebuild");
    f.write("images/child/b.txt", "f2\n");
    let f2 = f.commit("feature two");
    f.git(&["checkout", "-q", "main"]);
    f.write("README.md", "m1\n");
    let m1 = f.commit("main side: full rebuild");

    let repo = open(&f);
    let commits = repo.commits_in_range(Some("main"), "feature").unwrap();
    let shas: Vec<&str> = commits.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, [f2.as_str(), f1.as_str()]);
    assert_eq!(commits[0].summary(), "feature two");
    assert_eq!(commits[1].summary(), "feature one");
    assert_eq!(
        commits[1].message,
        "feature one\n\nwith a body that says Full Rebuild\n"
    );
    assert!(!commits.iter().any(|c| c.sha == m1 || c.sha == c1));

    // From the other side, only main's own commit.
    let commits = repo.commits_in_range(Some("feature"), "main").unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].sha, m1);

    // No base: every ancestor of head, newest first.
    let all = repo.commits_in_range(None, "feature").unwrap();
    let shas: Vec<&str> = all.iter().map(|c| c.sha.as_str()).collect();
    assert_eq!(shas, [f2.as_str(), f1.as_str(), c1.as_str()]);

    // An empty range.
    assert!(repo.commits_in_range(Some(&f2), &f2).unwrap().is_empty());
}

#[test]
fn range_over_a_merge_lists_both_parents_children_first() {
    let (f, c1) = base_fixture();
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.write("images/child/b.txt", "f1\n");
    let f1 = f.commit("feature");
    f.git(&["checkout", "-q", "main"]);
    f.write("README.md", "m1\n");
    let m1 = f.commit("main");
    f.git(&["merge", "-q", "--no-ff", "-m", "merge feature", "feature"]);
    let merge = f.head();

    let repo = open(&f);
    let commits = repo.commits_in_range(Some(&c1), "HEAD").unwrap();
    assert_eq!(commits.len(), 3);
    assert_eq!(commits[0].sha, merge);
    let mut rest: Vec<&str> = commits[1..].iter().map(|c| c.sha.as_str()).collect();
    rest.sort();
    let mut expected = [f1.as_str(), m1.as_str()];
    expected.sort();
    assert_eq!(rest, expected);
}

#[test]
fn first_parent_of_a_merge_is_the_branch_merged_into() {
    let (f, c1) = base_fixture();
    f.git(&["checkout", "-q", "-b", "feature"]);
    f.write("images/child/b.txt", "f1\n");
    let f1 = f.commit("feature");
    f.git(&["checkout", "-q", "main"]);
    f.write("README.md", "m1\n");
    let m1 = f.commit("main");
    f.git(&["merge", "-q", "--no-ff", "-m", "merge feature", "feature"]);

    let repo = open(&f);
    assert_eq!(repo.first_parent("HEAD").unwrap(), Some(m1.clone()));
    assert_eq!(repo.first_parent("HEAD^2").unwrap(), Some(c1.clone()));
    assert_eq!(repo.resolve("HEAD^2").unwrap(), f1);
    assert_eq!(repo.first_parent(&c1).unwrap(), None);
    // What a merge to main changed, relative to main before it.
    assert_eq!(
        repo.changed_paths(&m1, "HEAD").unwrap(),
        strings(&["images/child/b.txt"])
    );
}

#[test]
fn resolve_accepts_branches_tags_prefixes_and_ancestry() {
    let (f, c1) = base_fixture();
    f.write("README.md", "2\n");
    let c2 = f.commit("two");
    f.write("README.md", "3\n");
    let c3 = f.commit("three");
    f.git(&["tag", "light", &c2]);
    f.git(&["tag", "-a", "-m", "annotated", "v1.0", &c1]);
    f.git(&["branch", "feature/x", &c2]);

    let repo = open(&f);
    assert_eq!(repo.resolve("HEAD").unwrap(), c3);
    assert_eq!(repo.resolve("main").unwrap(), c3);
    assert_eq!(repo.resolve("HEAD~2").unwrap(), c1);
    assert_eq!(repo.resolve("HEAD^").unwrap(), c2);
    assert_eq!(repo.resolve("light").unwrap(), c2);
    // Annotated tags are peeled to their commit.
    assert_eq!(repo.resolve("v1.0").unwrap(), c1);
    assert_eq!(repo.resolve("feature/x").unwrap(), c2);
    assert_eq!(repo.resolve(&c2[..8]).unwrap(), c2);
    assert_eq!(repo.resolve(&c2).unwrap(), c2);
    assert_eq!(repo.head_sha().unwrap(), c3);
}

#[test]
fn resolve_accepts_remote_tracking_branches() {
    let (origin, c1) = base_fixture();
    let parent = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    git_in(parent.path(), &["clone", "-q", &url, "clone"]);
    let clone = parent.path().join("clone");
    let repo = Repo::discover(&clone).unwrap();
    assert_eq!(repo.resolve("origin/main").unwrap(), c1);
    assert!(!repo.is_shallow());
}

#[test]
fn unknown_and_invalid_revisions_are_typed_errors() {
    let (f, _) = base_fixture();
    let repo = open(&f);

    let err = repo.resolve("no-such-branch").unwrap_err();
    assert_eq!(
        err,
        GitError::UnknownRevision {
            rev: "no-such-branch".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown revision 'no-such-branch'"),
        "{msg}"
    );
    assert!(msg.contains("git fetch"), "{msg}");
    assert!(msg.contains("fetch-depth: 0"), "{msg}");

    for rev in ["HEAD~5", "deadbeefdeadbeef", "a..b"] {
        assert!(
            matches!(repo.resolve(rev), Err(GitError::UnknownRevision { .. })),
            "{rev}"
        );
    }
    // Every method taking revisions reports them the same way.
    assert!(matches!(
        repo.changed_paths("HEAD", "nope"),
        Err(GitError::UnknownRevision { rev }) if rev == "nope"
    ));
    assert!(matches!(
        repo.commits_in_range(Some("nope"), "HEAD"),
        Err(GitError::UnknownRevision { rev }) if rev == "nope"
    ));

    for rev in ["-x", "--all", ""] {
        let err = repo.resolve(rev).unwrap_err();
        assert_eq!(err, GitError::InvalidRevision { rev: rev.into() });
        assert!(err.to_string().contains("begin with '-'"));
    }

    let err = repo.resolve("HEAD^{tree}").unwrap_err();
    assert!(
        matches!(&err, GitError::NotACommit { kind, .. } if kind == "tree"),
        "{err:?}"
    );
}

#[test]
fn not_a_repository_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    // Guard: the temp dir must not itself sit inside some repository.
    assert!(git2_free_check(dir.path()));
    let err = Repo::discover(dir.path()).unwrap_err();
    assert_eq!(
        err,
        GitError::NotARepository {
            dir: dir.path().to_path_buf()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "'{}' is not inside a git repository: run strata inside your checkout or pass -C DIR",
            dir.path().display()
        )
    );
}

/// Whether `git` too thinks `dir` is outside any repository.
fn git2_free_check(dir: &Path) -> bool {
    !std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn a_bare_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    git_in(dir.path(), &["init", "-q", "--bare"]);
    let err = Repo::discover(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::BareRepository { .. }), "{err:?}");
}

#[test]
fn discover_from_a_subdirectory_finds_the_root() {
    let (f, _) = base_fixture();
    let repo = Repo::discover(&f.path().join("images/base/files")).unwrap();
    assert_eq!(
        repo.workdir().canonicalize().unwrap(),
        f.path().canonicalize().unwrap()
    );
    // No trailing separator.
    assert!(!repo.workdir().to_string_lossy().ends_with('/'));
}

#[test]
fn file_at_reads_older_commits() {
    let (f, c1) = base_fixture();
    f.write("images/spec.yml", "images:\n  base: {}\n");
    let c2 = f.commit("spec v2");
    f.remove("images/spec.yml");
    let c3 = f.commit("spec removed");

    let repo = open(&f);
    assert_eq!(
        repo.file_at(&c1, "images/spec.yml").unwrap().as_deref(),
        Some("images: {}\n")
    );
    assert_eq!(
        repo.file_at(&c2, "images/spec.yml").unwrap().as_deref(),
        Some("images:\n  base: {}\n")
    );
    assert_eq!(
        repo.file_at("HEAD~2", "images/spec.yml")
            .unwrap()
            .as_deref(),
        Some("images: {}\n")
    );
    assert_eq!(repo.file_at(&c3, "images/spec.yml").unwrap(), None);
    assert_eq!(repo.file_at(&c1, "no/such/file").unwrap(), None);
    // Looking below a file is absence too.
    assert_eq!(repo.file_at(&c1, "README.md/x").unwrap(), None);

    let err = repo.file_at(&c1, "images/base").unwrap_err();
    assert!(
        matches!(&err, GitError::NotAFile { kind, .. } if kind == "directory"),
        "{err:?}"
    );
}

#[test]
fn file_at_refuses_non_utf8_content_and_symlinks() {
    let (f, _) = base_fixture();
    f.write_bytes("images/latin1.yml", b"caf\xe9\n");
    std::os::unix::fs::symlink("spec.yml", f.path().join("images/link.yml")).unwrap();
    let c = f.commit("binary");
    let repo = open(&f);
    let err = repo.file_at(&c, "images/latin1.yml").unwrap_err();
    assert_eq!(
        err,
        GitError::NotUtf8 {
            rev: c.clone(),
            path: "images/latin1.yml".into()
        }
    );
    assert!(err.to_string().contains("not UTF-8"));
    let err = repo.file_at(&c, "images/link.yml").unwrap_err();
    assert!(
        matches!(&err, GitError::NotAFile { kind, .. } if kind == "symbolic link"),
        "{err:?}"
    );
}

#[test]
fn current_branch_and_detached_head() {
    let (f, c1) = base_fixture();
    let repo = open(&f);
    assert_eq!(repo.current_branch().unwrap().as_deref(), Some("main"));

    f.git(&["checkout", "-q", "-b", "feature/login"]);
    assert_eq!(
        repo.current_branch().unwrap().as_deref(),
        Some("feature/login")
    );

    f.git(&["checkout", "-q", "--detach", "HEAD"]);
    assert_eq!(repo.current_branch().unwrap(), None);
    assert_eq!(repo.head_sha().unwrap(), c1);
}

#[test]
fn an_empty_repository_has_a_branch_but_no_commits() {
    let f = Fixture::new();
    let repo = open(&f);
    assert_eq!(repo.current_branch().unwrap().as_deref(), Some("main"));
    assert_eq!(repo.head_sha().unwrap_err(), GitError::NoCommits);
    assert!(matches!(
        repo.resolve("HEAD"),
        Err(GitError::UnknownRevision { .. })
    ));
}

#[test]
fn shallow_clones_are_detected_and_cut_history_short() {
    let (origin, _) = base_fixture();
    origin.write("README.md", "2\n");
    origin.commit("two");
    origin.write("README.md", "3\n");
    let c3 = origin.commit("three");

    let parent = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.path().display());
    git_in(
        parent.path(),
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    );
    let repo = Repo::discover(&parent.path().join("shallow")).unwrap();

    assert!(repo.is_shallow());
    assert!(!open(&origin).is_shallow());
    assert_eq!(repo.head_sha().unwrap(), c3);
    assert_eq!(repo.first_parent("HEAD").unwrap(), None);
    let commits = repo.commits_in_range(None, "HEAD").unwrap();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].sha, c3);
    assert!(matches!(
        repo.resolve("HEAD~1"),
        Err(GitError::UnknownRevision { .. })
    ));
}

#[test]
fn export_writes_the_commits_files_modes_and_links_not_the_working_trees() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.write("images/a/Dockerfile", "FROM scratch\nCOPY . /\n");
    f.write("images/a/run.sh", "#!/bin/sh\necho old\n");
    f.write("images/a/.dockerignore", "secret.txt\n");
    f.write("images/b/Dockerfile", "FROM scratch\n");
    f.write("README.md", "outside\n");
    std::os::unix::fs::symlink("run.sh", f.path().join("images/a/link")).unwrap();
    let mut perms = std::fs::metadata(f.path().join("images/a/run.sh"))
        .unwrap()
        .permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(f.path().join("images/a/run.sh"), perms).unwrap();
    let old = f.commit("old");
    f.write("images/a/run.sh", "#!/bin/sh\necho new\n");
    f.write("images/a/added.txt", "new\n");
    f.commit("new");
    f.write("images/a/run.sh", "#!/bin/sh\necho uncommitted\n");

    let repo = open(&f);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("images");
    let written = repo
        .snapshot(&old)
        .unwrap()
        .export("images", &dest)
        .unwrap();
    assert_eq!(written, 5);
    assert_eq!(
        std::fs::read_to_string(dest.join("a/run.sh")).unwrap(),
        "#!/bin/sh\necho old\n"
    );
    assert!(!dest.join("a/added.txt").exists());
    assert!(!dest.join("README.md").exists());
    assert_eq!(
        std::fs::metadata(dest.join("a/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(dest.join("b/Dockerfile"))
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0
    );
    assert_eq!(
        std::fs::read_link(dest.join("a/link")).unwrap(),
        Path::new("run.sh")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("a/.dockerignore")).unwrap(),
        "secret.txt\n"
    );
    // Packed objects (read whole, not streamed) export the same.
    f.git(&["gc", "-q"]);
    let packed = out.path().join("packed");
    let repo = open(&f);
    repo.snapshot(&old)
        .unwrap()
        .export("images", &packed)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(packed.join("a/run.sh")).unwrap(),
        "#!/bin/sh\necho old\n"
    );
}

#[test]
fn files_in_lists_a_folder_of_a_commit() {
    let f = Fixture::new();
    f.write("images/a/test/test_a.py", "def test(): pass\n");
    f.write("images/a/test/checks.yaml", "schemaVersion: 2.0.0\n");
    f.write("images/a/test/data/x.txt", "x\n");
    std::os::unix::fs::symlink("checks.yaml", f.path().join("images/a/test/link.yaml")).unwrap();
    let c = f.commit("c");
    f.write("images/a/test/later.yaml", "later\n");
    let repo = open(&f);
    let snap = repo.snapshot(&c).unwrap();
    assert_eq!(
        snap.files_in("images/a/test").unwrap(),
        Some(vec!["checks.yaml".to_string(), "test_a.py".to_string()])
    );
    assert_eq!(snap.files_in("images/b/test").unwrap(), None);
    assert_eq!(snap.files_in("images/a/test/test_a.py").unwrap(), None);
    assert_eq!(
        snap.tree_id("images/a").unwrap(),
        Some(
            f.git(&["rev-parse", &format!("{c}:images/a")])
                .trim()
                .to_string()
        )
    );
    assert_eq!(snap.tree_id("images/none").unwrap(), None);
}

#[test]
fn export_refuses_a_tree_entry_that_would_escape() {
    let f = Fixture::new();
    f.write("images/a/Dockerfile", "FROM scratch\n");
    f.commit("c");
    // A tree holding `..`, as a hostile repository can (git itself refuses
    // to check it out).
    let blob = f.git(&["hash-object", "-w", "images/a/Dockerfile"]);
    let bad_tree = f.git_stdin(
        &["mktree", "--missing"],
        &format!("100644 blob {}\t..\n", blob.trim()),
    );
    let images = f.git_stdin(
        &["mktree", "--missing"],
        &format!("040000 tree {}\ta\n", bad_tree.trim()),
    );
    let root = f.git_stdin(
        &["mktree", "--missing"],
        &format!("040000 tree {}\timages\n", images.trim()),
    );
    let commit = f.git(&["commit-tree", root.trim(), "-m", "hostile"]);
    let repo = open(&f);
    let out = tempfile::tempdir().unwrap();
    let err = repo
        .snapshot(commit.trim())
        .unwrap()
        .export("images", &out.path().join("x"))
        .unwrap_err();
    assert!(
        matches!(err, GitError::UnsafePath { ref path, .. } if path == "images/a/.."),
        "{err}"
    );
    // Nothing was written for the entry: `x` holds only the folder `a`,
    // and `a` is empty.
    let listed = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(listed(&out.path().join("x")), ["a"]);
    assert!(listed(&out.path().join("x/a")).is_empty());
    assert_eq!(listed(out.path()), ["x"]);
}

#[test]
fn uncommitted_paths_are_modified_deleted_and_untracked_unignored_files_under_the_folder() {
    let (f, _) = base_fixture();
    f.write(".gitignore", "*.log\n");
    f.commit("ignore logs");
    f.write("images/base/files/a.txt", "edited\n");
    f.remove("images/child/b.txt");
    f.write("images/child/new/deep.txt", "untracked\n");
    f.write("images/child/build.log", "ignored\n");
    f.write("images/staged.txt", "staged\n");
    f.git(&["add", "images/staged.txt"]);
    f.write("README.md", "outside the folder\n");
    f.write("images-other/x", "a sibling folder with the same prefix\n");

    let repo = open(&f);
    let head = repo.head_sha().unwrap();
    let got: Vec<(String, &str)> = repo
        .uncommitted_paths(&head, "images")
        .unwrap()
        .into_iter()
        .map(|u| (u.path, u.change.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("images/base/files/a.txt".to_string(), "modified"),
            ("images/child/b.txt".to_string(), "deleted"),
            ("images/child/new/deep.txt".to_string(), "untracked"),
            ("images/staged.txt".to_string(), "untracked"),
        ]
    );
    let everything = repo.uncommitted_paths(&head, "").unwrap();
    assert!(everything.iter().any(|u| u.path == "README.md"));
    f.git(&["checkout", "--", "."]);
    f.remove("images/child/new");
    f.git(&["rm", "-q", "--cached", "images/staged.txt"]);
    f.remove("images/staged.txt");
    assert!(repo.uncommitted_paths(&head, "images").unwrap().is_empty());
}

/// A folder of many image folders is scanned in shares, in parallel: what
/// it finds is exactly what `git status` finds, folders deleted whole or
/// new, and names that are prefixes of others, included.
#[test]
fn uncommitted_paths_of_many_folders_are_what_git_status_lists() {
    let f = Fixture::new();
    f.write(".gitignore", "*.log\n");
    for i in 0..60 {
        f.write(&format!("images/img-{i}/Dockerfile"), "FROM scratch\n");
        f.write(&format!("images/img-{i}/files/a.txt"), "a\n");
    }
    f.write("images/spec.yml", "root: img-0\n");
    f.commit("sixty images");
    f.write("images/img-1/files/a.txt", "edited\n");
    f.remove("images/img-10");
    f.write("images/img-100/Dockerfile", "FROM scratch\n");
    f.write("images/img-25/new/deep.txt", "untracked\n");
    f.write("images/img-33/build.log", "ignored\n");
    f.remove("images/img-47/files/a.txt");
    f.write("images/spec.yml", "root: img-1\n");
    f.write("images/staged.txt", "staged\n");
    f.git(&["add", "images/staged.txt"]);

    let repo = open(&f);
    let head = repo.head_sha().unwrap();
    let got: Vec<String> = repo
        .uncommitted_paths(&head, "images")
        .unwrap()
        .into_iter()
        .map(|u| u.path)
        .collect();
    assert_eq!(got, git_status_of_images(&f));
    assert_eq!(got.len(), 8, "{got:?}");
}

/// The walk trusts the index's stat data only where git would: a file
/// changed in place with its size and mtime put back is found by its ctime;
/// an untracked folder git ignores is not listed; a name that is not UTF-8
/// is still found (the folder is then diffed whole).
#[test]
fn uncommitted_paths_trust_stat_data_as_git_does() {
    let f = Fixture::new();
    f.write(".gitignore", "cache/\n");
    for i in 0..40 {
        f.write(&format!("images/img-{i}/Dockerfile"), "FROM scratch\n");
    }
    f.commit("forty images");
    // Old mtimes, recorded by a refreshed index written after them: no
    // entry is racily clean.
    let touch_old = |rel: &str| {
        let out = std::process::Command::new("touch")
            .args(["-d", "2001-01-01 00:00:00"])
            .arg(f.path().join(rel))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    for i in 0..40 {
        touch_old(&format!("images/img-{i}/Dockerfile"));
    }
    f.git(&["update-index", "--refresh"]);
    let repo = open(&f);
    let head = repo.head_sha().unwrap();
    assert!(repo.uncommitted_paths(&head, "images").unwrap().is_empty());

    // Same size, same mtime, other content: only its ctime tells.
    f.write("images/img-3/Dockerfile", "FROM scratcX\n");
    touch_old("images/img-3/Dockerfile");
    f.write("images/img-9/cache/big/blob", "ignored\n");
    let listed = |repo: &strata_git::Repo| -> Vec<String> {
        repo.uncommitted_paths(&head, "images")
            .unwrap()
            .into_iter()
            .map(|u| format!("{} {}", u.change.as_str(), u.path))
            .collect()
    };
    assert_eq!(listed(&repo), ["modified images/img-3/Dockerfile"]);

    use std::os::unix::ffi::OsStrExt as _;
    let odd = std::path::Path::new("images/img-5").join(std::ffi::OsStr::from_bytes(b"n\xffme"));
    f.write_bytes(&odd, b"x\n");
    let found = listed(&repo);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], "modified images/img-3/Dockerfile");
    assert!(
        found[1].starts_with("untracked images/img-5/n"),
        "{found:?}"
    );
}

/// What `git status --porcelain --untracked-files=all -- images` lists.
fn git_status_of_images(f: &Fixture) -> Vec<String> {
    let mut want: Vec<String> = f
        .git(&[
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            "images",
        ])
        .lines()
        .map(|l| l[3..].to_string())
        .collect();
    want.sort();
    want
}

/// The quick check's edges, each against git's own status: names that
/// sort around a folder's (`a-b` and `a.b` before `a/`), a file become a
/// folder and a folder become a link, a staged edit whose file now matches
/// the index (only the index's tree tells), an edit within the index's
/// own second (racily clean), and a split index, which the quick check
/// does not read (the whole folder is then diffed).
#[test]
fn uncommitted_paths_match_git_status_at_the_quick_checks_edges() {
    let f = Fixture::new();
    for rel in [
        "images/a-b/x",
        "images/a.b/y",
        "images/a/z",
        "images/a/sub/w",
        "images/b/kept",
        "images/c/f",
        "images/d/f",
    ] {
        f.write(rel, "one\n");
    }
    f.commit("edges");
    let repo = open(&f);
    let head = repo.head_sha().unwrap();
    let listed = |repo: &Repo| -> Vec<String> {
        repo.uncommitted_paths(&head, "images")
            .unwrap()
            .into_iter()
            .map(|u| u.path)
            .collect()
    };
    assert!(listed(&repo).is_empty());
    assert!(git_status_of_images(&f).is_empty());

    f.write("images/b/kept", "two\n");
    f.git(&["add", "images/b/kept"]);
    assert_eq!(listed(&repo), ["images/b/kept"], "a staged edit");

    f.remove("images/a/z");
    f.write("images/a/z/inner", "now a folder\n");
    f.remove("images/c");
    std::os::unix::fs::symlink("a", f.path().join("images/c")).unwrap();
    // Same size, written now: the index's stat data cannot tell.
    f.write("images/a.b/y", "two\n");
    f.write("images/a-b/new", "untracked\n");
    let want = git_status_of_images(&f);
    assert_eq!(listed(&repo), want);
    assert!(want.len() >= 6, "{want:?}");

    f.git(&["update-index", "--split-index"]);
    f.write("images/d/f", "three\n");
    let want = git_status_of_images(&f);
    assert!(want.contains(&"images/d/f".to_string()), "{want:?}");
    assert_eq!(listed(&repo), want);
}

#[test]
fn ancestors_are_git_logs_first_commits() {
    let f = Fixture::new();
    for i in 0..12 {
        f.write("images/a/n", &format!("{i}\n"));
        f.commit(&format!("c{i}"));
    }
    f.git(&["checkout", "-q", "-b", "side", "HEAD~3"]);
    f.write("images/b/n", "side\n");
    f.commit("side");
    f.git(&["checkout", "-q", "main"]);
    f.git(&["merge", "-q", "--no-edit", "side"]);
    let repo = open(&f);
    let want: Vec<String> = f
        .git(&["log", "--format=%H", "-n", "7"])
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(repo.ancestors("HEAD", 7).unwrap(), want);
    assert_eq!(repo.ancestors("HEAD", 500).unwrap().len(), 14);
}
