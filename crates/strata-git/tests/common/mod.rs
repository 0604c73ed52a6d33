//! Real git repositories in temporary directories, made with the `git` CLI.

#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A scratch repository on branch `main`.
pub struct Fixture {
    pub dir: TempDir,
    clock: Cell<u64>,
}

/// Runs git in `dir` isolated from the user's and the system's configuration,
/// panicking with its output if it fails.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args, 1_700_000_000);
    String::from_utf8(out).expect("git output is UTF-8")
}

fn git_output(dir: &Path, args: &[&str], time: u64) -> Vec<u8> {
    let date = format!("{time} +0000");
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.quotepath=false",
        ])
        .args(["-c", "protocol.file.allow=always"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .expect("git can be run");
    assert!(
        out.status.success(),
        "git {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Fixture {
    /// A new empty repository on branch `main`.
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        git_in(dir.path(), &["init", "-q", "-b", "main"]);
        Fixture {
            dir,
            clock: Cell::new(1_700_000_000),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git here; every call advances the commit clock by a minute so
    /// commit times are distinct and increasing.
    pub fn git(&self, args: &[&str]) -> String {
        self.clock.set(self.clock.get() + 60);
        let out = git_output(self.path(), args, self.clock.get());
        String::from_utf8(out).expect("git output is UTF-8")
    }

    /// Runs git here with `input` on its standard input.
    pub fn git_stdin(&self, args: &[&str], input: &str) -> String {
        use std::io::Write;
        let mut child = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("git can be run");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input.as_bytes())
            .expect("write to git");
        let out = child.wait_with_output().expect("git runs");
        assert!(out.status.success(), "git {args:?} failed");
        String::from_utf8(out.stdout).expect("git output is UTF-8")
    }

    /// Runs git here and returns its raw output.
    pub fn git_bytes(&self, args: &[&str]) -> Vec<u8> {
        git_output(self.path(), args, self.clock.get())
    }

    pub fn write(&self, rel: &str, content: &str) {
        self.write_bytes(rel, content.as_bytes());
    }

    pub fn write_bytes(&self, rel: impl AsRef<Path>, content: &[u8]) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
        std::fs::write(path, content).expect("write file");
    }

    pub fn remove(&self, rel: &str) {
        let path: PathBuf = self.path().join(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(path).expect("remove dir");
        } else {
            std::fs::remove_file(path).expect("remove file");
        }
    }

    /// Stages everything and commits; returns the new commit's full hash.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `git diff --name-only --no-renames base head`, as UTF-8 strings.
    pub fn git_changed(&self, base: &str, head: &str) -> Vec<String> {
        let out = self.git_bytes(&["diff", "-z", "--name-only", "--no-renames", base, head]);
        let mut paths: Vec<String> = out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        paths.sort();
        paths
    }
}
