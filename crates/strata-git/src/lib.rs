//! The thin git adapter of strata.
//!
//! This crate answers the questions change detection asks of a git
//! repository — which paths changed between two commits, which commits a range
//! holds and what their messages say, where two branches diverged, what a file
//! looked like at an older commit — and nothing else. It knows nothing about
//! images or specs: every answer is plain data (hex commit hashes, UTF-8
//! paths relative to the repository root, message text).
//!
//! Every method that takes a revision accepts anything `git rev-parse`
//! accepts for a single commit: a branch, a tag, a remote-tracking branch
//! (`origin/main`), a full or abbreviated commit hash, `HEAD~2`, `main^2` and
//! so on. Revisions beginning with `-` are refused, so that a revision can
//! never be mistaken for an option.
//!
//! Paths are returned as UTF-8 strings relative to the repository root,
//! separated by `/`. Git stores paths as bytes; a path that is not valid UTF-8
//! is converted lossily (each invalid sequence becomes U+FFFD), so it still
//! appears in the results but may not name the file exactly.
//!
//! ```no_run
//! use std::path::Path;
//! use strata_git::Repo;
//!
//! # fn main() -> Result<(), strata_git::GitError> {
//! let repo = Repo::discover(Path::new("."))?;
//! let head = repo.head_sha()?;
//! if let Some(parent) = repo.first_parent(&head)? {
//!     for path in repo.changed_paths(&parent, &head)? {
//!         println!("{path}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use git2::{ErrorCode, ObjectType, Oid, Repository, Sort, Tree};

mod status;
pub use status::{Uncommitted, UncommittedPath};

/// File mode git records for a symbolic link.
const MODE_SYMLINK: i32 = 0o120000;
/// File mode git records for an executable file.
const MODE_EXECUTABLE: i32 = 0o100755;

/// Everything that can go wrong while asking git a question.
///
/// Each message says what happened and what the user can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The directory is not inside a git repository.
    #[error(
        "'{}' is not inside a git repository: run strata inside your checkout or pass -C DIR",
        dir.display()
    )]
    NotARepository {
        /// The directory the search started from.
        dir: PathBuf,
    },

    /// The repository found is bare, so it has no working tree to build from.
    #[error(
        "'{}' is a bare git repository with no working tree: run strata inside a checkout of it",
        dir.display()
    )]
    BareRepository {
        /// The directory the search started from.
        dir: PathBuf,
    },

    /// Git refuses to use a repository owned by another user.
    #[error(
        "the git repository at '{}' is owned by another user, so git refuses to use it: \
         if you trust it, run `git config --global --add safe.directory '{}'`",
        dir.display(),
        dir.display()
    )]
    UnsafeRepository {
        /// The directory the search started from.
        dir: PathBuf,
    },

    /// The revision is empty or begins with `-`.
    #[error("'{rev}' is not a revision: a revision may not be empty or begin with '-'")]
    InvalidRevision {
        /// The revision as given.
        rev: String,
    },

    /// No commit of that name exists in this repository.
    #[error(
        "unknown revision '{rev}': no branch, tag or commit of that name in this repository \
         (does it need a `git fetch`? a shallow clone needs the full history, e.g. fetch-depth: 0 \
         in CI)"
    )]
    UnknownRevision {
        /// The revision as given.
        rev: String,
    },

    /// An abbreviated hash matches more than one object.
    #[error(
        "ambiguous revision '{rev}': it matches more than one object; give more characters of \
         the commit hash"
    )]
    AmbiguousRevision {
        /// The revision as given.
        rev: String,
    },

    /// The revision names something other than a commit (a tree or a blob).
    #[error("revision '{rev}' names a {kind}, not a commit: give a branch, tag or commit")]
    NotACommit {
        /// The revision as given.
        rev: String,
        /// The kind of object it names (`tree`, `blob`, ...).
        kind: String,
    },

    /// The path exists at that commit but is not a regular file.
    #[error("'{path}' at {rev} is a {kind}, not a regular file: give the path of a file")]
    NotAFile {
        /// The revision as given.
        rev: String,
        /// The path as given.
        path: String,
        /// What the path is instead (`directory`, `symbolic link`, `submodule`).
        kind: String,
    },

    /// The file's content is not valid UTF-8.
    #[error("'{path}' at {rev} is not UTF-8 text: save the file as UTF-8")]
    NotUtf8 {
        /// The revision as given.
        rev: String,
        /// The path as given.
        path: String,
    },

    /// HEAD points at a branch that has no commits yet.
    #[error("the repository has no commits yet: commit something first")]
    NoCommits,

    /// A tree entry's name could escape the folder it is written into
    /// (`..`, `.git`, a `/`), so the tree is not exported.
    #[error(
        "'{path}' at {rev} is not a safe file name to write (a hostile or corrupt tree): \
         rename it in the repository"
    )]
    UnsafePath {
        /// The revision as given.
        rev: String,
        /// The path as git stores it (lossily converted).
        path: String,
    },

    /// Writing an exported file failed.
    #[error("cannot write '{}': {message}", path.display())]
    Write {
        /// The file or folder being written.
        path: PathBuf,
        /// The cause.
        message: String,
    },

    /// Any other failure reported by git (a corrupt or unreadable repository,
    /// a missing object, an I/O error).
    #[error("git failed while {action}: {message} (check the repository with `git fsck`)")]
    Git {
        /// What strata was doing.
        action: String,
        /// The message from git.
        message: String,
    },
}

impl GitError {
    fn git(action: impl Into<String>, err: &git2::Error) -> Self {
        GitError::Git {
            action: action.into(),
            message: err.message().to_owned(),
        }
    }
}

/// One commit of a range, as [`Repo::commits_in_range`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full hexadecimal commit hash.
    pub sha: String,
    /// The full commit message (non-UTF-8 bytes converted lossily).
    pub message: String,
}

impl CommitInfo {
    /// The first line of the message, without its line ending.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }
}

/// An open git repository with a working tree.
///
/// A `Repo` may be sent to another thread but not shared between threads;
/// open one per thread if several need it.
pub struct Repo {
    repo: Repository,
    workdir: PathBuf,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

impl Repo {
    /// Opens the repository containing `dir`, searching `dir` and then its
    /// parents as `git` does.
    ///
    /// # Errors
    ///
    /// [`GitError::NotARepository`] when no repository contains `dir`,
    /// [`GitError::BareRepository`] when the repository has no working tree,
    /// [`GitError::UnsafeRepository`] when git refuses a repository owned by
    /// another user.
    pub fn discover(dir: &Path) -> Result<Repo, GitError> {
        // git itself does not re-hash the objects it reads; libgit2's check
        // is a sixth of the cost of planning a large stack, and strata only
        // reads history, never writes it.
        git2::opts::strict_hash_verification(false);
        let repo = Repository::discover(dir).map_err(|e| match e.code() {
            ErrorCode::NotFound => GitError::NotARepository {
                dir: dir.to_path_buf(),
            },
            ErrorCode::Owner => GitError::UnsafeRepository {
                dir: dir.to_path_buf(),
            },
            _ => GitError::git(format!("opening the repository at '{}'", dir.display()), &e),
        })?;
        let Some(workdir) = repo.workdir() else {
            return Err(GitError::BareRepository {
                dir: dir.to_path_buf(),
            });
        };
        // libgit2 reports the working directory with a trailing slash;
        // collecting the components drops it.
        let workdir = workdir.components().collect();
        Ok(Repo { repo, workdir })
    }

    /// The root of the working tree.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Whether the repository is a shallow clone, whose history is cut off.
    ///
    /// In a shallow clone, merge bases and older commits may be missing, so
    /// change detection can see less than the real range.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// Resolves a revision to the full hexadecimal hash of the commit it
    /// names (tags are peeled to their commit).
    ///
    /// # Errors
    ///
    /// [`GitError::InvalidRevision`], [`GitError::UnknownRevision`],
    /// [`GitError::AmbiguousRevision`] or [`GitError::NotACommit`].
    pub fn resolve(&self, rev: &str) -> Result<String, GitError> {
        Ok(self.commit(rev)?.id().to_string())
    }

    /// The full hash of the commit HEAD points at.
    ///
    /// # Errors
    ///
    /// [`GitError::NoCommits`] in a repository with no commits yet.
    pub fn head_sha(&self) -> Result<String, GitError> {
        match self.repo.head() {
            Ok(head) => head
                .peel_to_commit()
                .map(|c| c.id().to_string())
                .map_err(|e| GitError::git("reading the commit HEAD points at", &e)),
            Err(e) if is_unborn(&e) => Err(GitError::NoCommits),
            Err(e) => Err(GitError::git("reading HEAD", &e)),
        }
    }

    /// The name of the branch checked out (`main`, `feature/x`), or `None`
    /// when HEAD is detached (as in most CI checkouts).
    ///
    /// A branch with no commits yet still has its name returned. Names that
    /// are not UTF-8 are converted lossily.
    ///
    /// # Errors
    ///
    /// [`GitError::Git`] when HEAD cannot be read.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        match self.repo.head() {
            Ok(head) if head.is_branch() => Ok(Some(
                String::from_utf8_lossy(head.shorthand_bytes()).into_owned(),
            )),
            Ok(_) => Ok(None),
            Err(e) if is_unborn(&e) => {
                let head = self
                    .repo
                    .find_reference("HEAD")
                    .map_err(|e| GitError::git("reading HEAD", &e))?;
                Ok(head
                    .symbolic_target_bytes()
                    .and_then(|t| t.strip_prefix(b"refs/heads/"))
                    .map(|b| String::from_utf8_lossy(b).into_owned()))
            }
            Err(e) => Err(GitError::git("reading HEAD", &e)),
        }
    }

    /// The first parent of a commit, or `None` for a root commit (or the
    /// oldest commit of a shallow clone).
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`].
    pub fn first_parent(&self, rev: &str) -> Result<Option<String>, GitError> {
        let commit = self.commit(rev)?;
        Ok(commit.parent_id(0).ok().map(|id| id.to_string()))
    }

    /// The best common ancestor of two commits, or `None` when their
    /// histories are unrelated (or, in a shallow clone, cut off before they
    /// meet).
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`].
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>, GitError> {
        let a_id = self.commit(a)?.id();
        let b_id = self.commit(b)?.id();
        match self.repo.merge_base(a_id, b_id) {
            Ok(id) => Ok(Some(id.to_string())),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(GitError::git(
                format!("finding the merge base of '{a}' and '{b}'"),
                &e,
            )),
        }
    }

    /// The paths that differ between the trees of two commits: what
    /// `git diff --name-only --no-renames <base> <head>` prints.
    ///
    /// Renames are not detected, so a moved file contributes both its old
    /// and its new path. A path replaced by a directory (or the reverse)
    /// contributes the old file and every file of the new directory. A mode
    /// change (such as `chmod +x`) counts as a change; so does a submodule
    /// moving to another commit (its path is reported, not its contents).
    /// The result is sorted bytewise and has no duplicates.
    ///
    /// Subtrees with the same hash on both sides are skipped without being
    /// read, and no file content is read, so the cost grows with the size of
    /// the change rather than the size of the repository. Non-UTF-8 paths
    /// are converted lossily.
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`], or [`GitError::Git`] when a tree
    /// cannot be read.
    pub fn changed_paths(&self, base: &str, head: &str) -> Result<Vec<String>, GitError> {
        let old = self.commit(base)?.tree_id();
        let new = self.commit(head)?.tree_id();
        let mut changed: Vec<Vec<u8>> = Vec::new();
        // (directory prefix ending in '/' or empty, old tree, new tree)
        let mut pending: Vec<(Vec<u8>, Option<Oid>, Option<Oid>)> = Vec::new();
        if old != new {
            pending.push((Vec::new(), Some(old), Some(new)));
        }
        while let Some((prefix, old, new)) = pending.pop() {
            let old_entries = self.tree_entries(old)?;
            let new_entries = self.tree_entries(new)?;
            let join = |name: &[u8]| [prefix.as_slice(), name].concat();
            for (name, o) in &old_entries {
                let n = new_entries.get(name);
                match (o.is_tree(), n) {
                    // Same object, same mode: identical (a subtree is skipped).
                    (_, Some(n)) if n == o => {}
                    (true, Some(n)) if n.is_tree() => {
                        pending.push((dir_prefix(join(name)), Some(o.id), Some(n.id)));
                    }
                    (true, _) => {
                        // A directory removed (or replaced by a file, which
                        // the loop over the new side reports).
                        pending.push((dir_prefix(join(name)), Some(o.id), None));
                    }
                    // A file changed, removed, or replaced by a directory
                    // (whose files the loop over the new side reports).
                    (false, _) => changed.push(join(name)),
                }
            }
            for (name, n) in &new_entries {
                let o = old_entries.get(name);
                match (n.is_tree(), o) {
                    (_, Some(o)) if o == n => {}
                    // Both trees: already queued above.
                    (true, Some(o)) if o.is_tree() => {}
                    (true, _) => pending.push((dir_prefix(join(name)), None, Some(n.id))),
                    (false, _) => changed.push(join(name)),
                }
            }
        }
        Ok(into_sorted_strings(changed))
    }

    /// The commits reachable from `head` but not from `base` (git's
    /// `base..head`), newest first, with their full messages. With no
    /// `base`, every ancestor of `head` (including `head`).
    ///
    /// Commits are listed children before parents, and otherwise by commit
    /// time. When `base` is an ancestor of `head` these are exactly the
    /// commits between them; when the two have diverged, the commits on
    /// `base`'s side are not included. In a shallow clone the walk stops
    /// where the history is cut off.
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`], or [`GitError::Git`] when a commit
    /// cannot be read.
    pub fn commits_in_range(
        &self,
        base: Option<&str>,
        head: &str,
    ) -> Result<Vec<CommitInfo>, GitError> {
        let head_id = self.commit(head)?.id();
        let base_id = base.map(|b| self.commit(b).map(|c| c.id())).transpose()?;
        let walk_err = |e: git2::Error| GitError::git("listing the commits of the range", &e);
        let mut walk = self.repo.revwalk().map_err(walk_err)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
            .map_err(walk_err)?;
        walk.push(head_id).map_err(walk_err)?;
        if let Some(base_id) = base_id {
            walk.hide(base_id).map_err(walk_err)?;
        }
        let mut commits = Vec::new();
        for id in walk {
            let id = id.map_err(walk_err)?;
            let commit = self
                .repo
                .find_commit(id)
                .map_err(|e| GitError::git(format!("reading commit {id}"), &e))?;
            commits.push(CommitInfo {
                sha: id.to_string(),
                message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
            });
        }
        Ok(commits)
    }

    /// The full hashes of `rev` and its ancestors, newest first as `git log`
    /// lists them (by commit time as the walk goes), at most `limit` of
    /// them. The walk is incremental: it reads `limit` commits, not the
    /// whole history (a topological order would read every commit first),
    /// and no commit message.
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`], or [`GitError::Git`] when the
    /// history cannot be walked.
    pub fn ancestors(&self, rev: &str, limit: usize) -> Result<Vec<String>, GitError> {
        let id = self.commit(rev)?.id();
        let walk_err = |e: git2::Error| GitError::git("listing the history", &e);
        let mut walk = self.repo.revwalk().map_err(walk_err)?;
        walk.set_sorting(Sort::NONE).map_err(walk_err)?;
        walk.push(id).map_err(walk_err)?;
        walk.take(limit)
            .map(|id| id.map(|id| id.to_string()).map_err(walk_err))
            .collect()
    }

    /// The text of the file at `path` (relative to the repository root,
    /// `/`-separated) in the tree of commit `rev`, or `None` when no such
    /// path exists there.
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`]; [`GitError::NotAFile`] when the path
    /// is a directory, symbolic link or submodule; [`GitError::NotUtf8`] when
    /// the content is not UTF-8.
    pub fn file_at(&self, rev: &str, path: &str) -> Result<Option<String>, GitError> {
        self.snapshot(rev)?.file(path)
    }

    /// The files of a commit, for reading many of them: each folder's tree
    /// is read once, not once per file (a stack's spec and its hundreds of
    /// Dockerfiles share the `images/` tree).
    ///
    /// # Errors
    /// The errors of [`Repo::resolve`].
    pub fn snapshot(&self, rev: &str) -> Result<Snapshot<'_>, GitError> {
        let tree = self
            .commit(rev)?
            .tree()
            .map_err(|e| GitError::git(format!("reading the tree of '{rev}'"), &e))?;
        Ok(Snapshot {
            repo: self,
            rev: rev.to_owned(),
            trees: std::cell::RefCell::new(std::collections::HashMap::from([(
                String::new(),
                tree,
            )])),
        })
    }

    /// The URL of the `origin` remote, or of the only remote, as configured
    /// (it may hold credentials: see `strata_core::source::public_url`);
    /// `None` when there is no such remote.
    pub fn remote_url(&self) -> Option<String> {
        let remote = match self.repo.find_remote("origin") {
            Ok(remote) => remote,
            Err(_) => {
                let names = self.repo.remotes().ok()?;
                if names.len() != 1 {
                    return None;
                }
                let name = names.get(0).ok().flatten()?;
                self.repo.find_remote(name).ok()?
            }
        };
        remote.url().ok().map(str::to_owned)
    }

    /// Resolves a revision to a commit, mapping failures to typed errors.
    fn commit(&self, rev: &str) -> Result<git2::Commit<'_>, GitError> {
        if rev.is_empty() || rev.starts_with('-') {
            return Err(GitError::InvalidRevision {
                rev: rev.to_owned(),
            });
        }
        let object = self.repo.revparse_single(rev).map_err(|e| match e.code() {
            ErrorCode::NotFound | ErrorCode::InvalidSpec | ErrorCode::UnbornBranch => {
                GitError::UnknownRevision {
                    rev: rev.to_owned(),
                }
            }
            ErrorCode::Ambiguous => GitError::AmbiguousRevision {
                rev: rev.to_owned(),
            },
            _ => GitError::git(format!("resolving revision '{rev}'"), &e),
        })?;
        let kind = object.kind();
        object.peel_to_commit().map_err(|_| GitError::NotACommit {
            rev: rev.to_owned(),
            kind: kind
                .map_or("object of unknown kind", |k| k.str())
                .to_owned(),
        })
    }

    /// The entries of a tree by name; an absent tree has none.
    fn tree_entries(&self, id: Option<Oid>) -> Result<HashMap<Vec<u8>, Entry>, GitError> {
        let Some(id) = id else {
            return Ok(HashMap::new());
        };
        let tree: Tree<'_> = self
            .repo
            .find_tree(id)
            .map_err(|e| GitError::git(format!("reading tree {id}"), &e))?;
        Ok(tree
            .iter()
            .map(|e| {
                (
                    e.name_bytes().to_vec(),
                    Entry {
                        id: e.id(),
                        mode: e.filemode(),
                        kind: e.kind(),
                    },
                )
            })
            .collect())
    }
}

/// A tree entry without its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    id: Oid,
    mode: i32,
    kind: Option<ObjectType>,
}

impl Entry {
    fn is_tree(&self) -> bool {
        self.kind == Some(ObjectType::Tree)
    }
}

/// Whether a tree entry's name can be written inside a folder without
/// escaping it or writing into a repository's own `.git`.
fn is_safe_name(name: &[u8]) -> bool {
    !(name.is_empty()
        || name == b"."
        || name == b".."
        || name.eq_ignore_ascii_case(b".git")
        || name.contains(&b'/')
        || name.contains(&0))
}

fn is_unborn(e: &git2::Error) -> bool {
    matches!(e.code(), ErrorCode::UnbornBranch | ErrorCode::NotFound)
}

fn dir_prefix(mut path: Vec<u8>) -> Vec<u8> {
    path.push(b'/');
    path
}

fn into_sorted_strings(paths: Vec<Vec<u8>>) -> Vec<String> {
    let mut strings: Vec<String> = paths
        .into_iter()
        .map(|p| match String::from_utf8(p) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
        .collect();
    strings.sort_unstable();
    // Lossy conversion can make distinct byte paths equal.
    strings.dedup();
    strings
}

/// The files of one commit (see [`Repo::snapshot`]).
pub struct Snapshot<'r> {
    repo: &'r Repo,
    rev: String,
    trees: std::cell::RefCell<std::collections::HashMap<String, git2::Tree<'r>>>,
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("rev", &self.rev)
            .finish_non_exhaustive()
    }
}

impl<'r> Snapshot<'r> {
    /// The tree of folder `dir` (`""` for the root), `None` when absent.
    fn tree(&self, dir: &str) -> Result<Option<git2::Tree<'r>>, GitError> {
        if let Some(tree) = self.trees.borrow().get(dir) {
            return Ok(Some(tree.clone()));
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let Some(parent_tree) = self.tree(parent)? else {
            return Ok(None);
        };
        let Some(entry) = parent_tree.get_name(name) else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Tree) {
            return Ok(None);
        }
        let tree = self
            .repo
            .repo
            .find_tree(entry.id())
            .map_err(|e| GitError::git(format!("reading '{dir}' at '{}'", self.rev), &e))?;
        self.trees.borrow_mut().insert(dir.to_owned(), tree.clone());
        Ok(Some(tree))
    }

    /// Writes the folder `dir` of the commit (`""` for the whole tree) into
    /// `dest`, as `git archive` would unpack it: files with git's modes
    /// (executable or not), symbolic links as links (never followed), and a
    /// submodule as an empty folder. Blobs are streamed where git's object
    /// database allows (loose objects) and otherwise read one at a time, so
    /// memory holds at most one file. `dest` is created; it should be
    /// empty. Returns the number of files and links written.
    ///
    /// # Errors
    ///
    /// [`GitError::UnsafePath`] for an entry named `.`, `..`, `.git` or
    /// containing `/` (which a hostile tree can hold); [`GitError::Write`]
    /// when `dest` cannot be written; [`GitError::Git`] when an object
    /// cannot be read. A missing `dir` exports nothing.
    pub fn export(&self, dir: &str, dest: &Path) -> Result<usize, GitError> {
        let dir = dir.trim_matches('/');
        let Some(tree) = self.tree(dir)? else {
            return Ok(0);
        };
        let write_err = |path: &Path, e: std::io::Error| GitError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dest).map_err(|e| write_err(dest, e))?;
        let odb = self
            .repo
            .repo
            .odb()
            .map_err(|e| GitError::git("opening the object database", &e))?;
        let mut written = 0;
        // (tree, its path in the repository, the folder it is written to)
        let mut pending = vec![(tree, dir.to_owned(), dest.to_path_buf())];
        while let Some((tree, repo_dir, out_dir)) = pending.pop() {
            for entry in tree.iter() {
                let name = entry.name_bytes();
                let repo_path = if repo_dir.is_empty() {
                    String::from_utf8_lossy(name).into_owned()
                } else {
                    format!("{repo_dir}/{}", String::from_utf8_lossy(name))
                };
                if !is_safe_name(name) {
                    return Err(GitError::UnsafePath {
                        rev: self.rev.clone(),
                        path: repo_path,
                    });
                }
                let out = out_dir.join(std::ffi::OsStr::from_bytes(name));
                match entry.kind() {
                    Some(ObjectType::Tree) => {
                        std::fs::create_dir(&out).map_err(|e| write_err(&out, e))?;
                        let sub = self.repo.repo.find_tree(entry.id()).map_err(|e| {
                            GitError::git(format!("reading '{repo_path}' at '{}'", self.rev), &e)
                        })?;
                        pending.push((sub, repo_path, out));
                    }
                    Some(ObjectType::Commit) => {
                        std::fs::create_dir(&out).map_err(|e| write_err(&out, e))?;
                    }
                    Some(ObjectType::Blob) if entry.filemode() == MODE_SYMLINK => {
                        let blob = self.repo.repo.find_blob(entry.id()).map_err(|e| {
                            GitError::git(format!("reading '{repo_path}' at '{}'", self.rev), &e)
                        })?;
                        std::os::unix::fs::symlink(
                            std::ffi::OsStr::from_bytes(blob.content()),
                            &out,
                        )
                        .map_err(|e| write_err(&out, e))?;
                        written += 1;
                    }
                    Some(ObjectType::Blob) => {
                        let mode = if entry.filemode() == MODE_EXECUTABLE {
                            0o755
                        } else {
                            0o644
                        };
                        let mut file = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(mode)
                            .open(&out)
                            .map_err(|e| write_err(&out, e))?;
                        let read_err = |e: git2::Error| {
                            GitError::git(format!("reading '{repo_path}' at '{}'", self.rev), &e)
                        };
                        match odb.reader(entry.id()) {
                            Ok((mut reader, _, _)) => {
                                std::io::copy(&mut reader, &mut file)
                                    .map_err(|e| write_err(&out, e))?;
                            }
                            // Packed objects cannot be streamed by libgit2.
                            Err(_) => {
                                let blob =
                                    self.repo.repo.find_blob(entry.id()).map_err(read_err)?;
                                file.write_all(blob.content())
                                    .map_err(|e| write_err(&out, e))?;
                            }
                        }
                        written += 1;
                    }
                    _ => {}
                }
            }
        }
        Ok(written)
    }

    /// The object id of folder `dir`'s tree at this commit (what `git
    /// rev-parse REV:dir` prints), or `None` when there is no such folder.
    ///
    /// # Errors
    /// [`GitError::Git`] when a tree cannot be read.
    pub fn tree_id(&self, dir: &str) -> Result<Option<String>, GitError> {
        Ok(self
            .tree(dir.trim_matches('/'))?
            .map(|tree| tree.id().to_string()))
    }

    /// The names of the regular files directly in folder `dir` (not in its
    /// subfolders; no links), sorted, or `None` when there is no such
    /// folder at this commit.
    ///
    /// # Errors
    /// [`GitError::Git`] when a tree cannot be read.
    pub fn files_in(&self, dir: &str) -> Result<Option<Vec<String>>, GitError> {
        let Some(tree) = self.tree(dir.trim_matches('/'))? else {
            return Ok(None);
        };
        let names = tree
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Blob) && e.filemode() != MODE_SYMLINK)
            .map(|e| e.name_bytes().to_vec())
            .collect();
        Ok(Some(into_sorted_strings(names)))
    }

    /// A file's text (`None` if absent).
    ///
    /// # Errors
    /// [`GitError::NotAFile`] when the path is a directory, symbolic link or
    /// submodule; [`GitError::NotUtf8`] when the content is not UTF-8.
    pub fn file(&self, path: &str) -> Result<Option<String>, GitError> {
        let path = path.trim_matches('/');
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some(tree) = self.tree(dir)? else {
            return Ok(None);
        };
        let Some(entry) = tree.get_name(name) else {
            return Ok(None);
        };
        let rev = &self.rev;
        let not_a_file = |kind: &str| GitError::NotAFile {
            rev: rev.clone(),
            path: path.to_owned(),
            kind: kind.to_owned(),
        };
        match entry.kind() {
            Some(ObjectType::Blob) if entry.filemode() == MODE_SYMLINK => {
                return Err(not_a_file("symbolic link"));
            }
            Some(ObjectType::Blob) => {}
            Some(ObjectType::Tree) => return Err(not_a_file("directory")),
            Some(ObjectType::Commit) => return Err(not_a_file("submodule")),
            _ => return Err(not_a_file("object of unknown kind")),
        }
        let blob = self
            .repo
            .repo
            .find_blob(entry.id())
            .map_err(|e| GitError::git(format!("reading '{path}' at '{rev}'"), &e))?;
        match std::str::from_utf8(blob.content()) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => Err(GitError::NotUtf8 {
                rev: rev.clone(),
                path: path.to_owned(),
            }),
        }
    }
}
