//! What the working tree changed since a commit: `git status` of one folder.
//!
//! The scan stats every file of the folder and reads every directory, as
//! git's does. git spreads its stat calls over threads; libgit2's diff does
//! not, so the folder's top-level entries are split into one share per
//! core, each diffed on its own handle of the repository.

use crate::{GitError, Repo};
use git2::Repository;
use std::collections::BTreeSet;

/// How a file of the working tree differs from the HEAD commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Uncommitted {
    /// Changed in content, mode or type (staged or not).
    Modified,
    /// Deleted (staged or not).
    Deleted,
    /// New: untracked and not ignored, or staged but not committed.
    Added,
}

impl Uncommitted {
    /// How `git status --short` would say it, in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Uncommitted::Modified => "modified",
            Uncommitted::Deleted => "deleted",
            Uncommitted::Added => "untracked",
        }
    }
}

/// One uncommitted file (see [`Repo::uncommitted_paths`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UncommittedPath {
    /// The path relative to the repository root, `/`-separated.
    pub path: String,
    /// How it differs from HEAD.
    pub change: Uncommitted,
}

/// Below this many top-level entries a second thread costs more than it
/// saves.
const ENTRIES_PER_THREAD: usize = 16;

impl Repo {
    /// The files under `dir` (relative to the repository root, `""` for the
    /// whole tree) that differ between commit `head` (normally HEAD's) and
    /// the working tree, staged or not: modified, deleted, and untracked
    /// files that git does not ignore, as `git status
    /// --untracked-files=all -- <dir>` lists them. Renames are not detected
    /// (a moved file is its old path deleted and its new one added). Sorted
    /// by path.
    ///
    /// The commit is given rather than read from HEAD, so a HEAD that names
    /// a ref git cannot read does not stop it.
    ///
    /// # Errors
    ///
    /// The errors of [`Repo::resolve`]; [`GitError::Git`] when the index or
    /// working tree cannot be read.
    pub fn uncommitted_paths(
        &self,
        head: &str,
        dir: &str,
    ) -> Result<Vec<UncommittedPath>, GitError> {
        let tree_id = self.commit(head)?.tree_id();
        let dir = dir.trim_matches('/');
        let entries = self.top_level_entries(tree_id, dir)?.unwrap_or_default();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(entries.len() / ENTRIES_PER_THREAD)
            .max(1);
        let mut out = if threads == 1 {
            let whole = if dir.is_empty() {
                Vec::new()
            } else {
                vec![dir.to_string()]
            };
            diff_workdir(&self.repo, tree_id, &whole)?
        } else {
            let shares: Vec<Vec<String>> = (0..threads)
                .map(|t| entries.iter().skip(t).step_by(threads).cloned().collect())
                .collect();
            let workdir = self.workdir.as_path();
            std::thread::scope(|scope| {
                let handles: Vec<_> = shares
                    .iter()
                    .map(|share| {
                        scope.spawn(move || {
                            let repo = Repository::open(workdir).map_err(|e| {
                                GitError::git("opening the repository again to scan it", &e)
                            })?;
                            diff_workdir(&repo, tree_id, share)
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for handle in handles {
                    match handle.join() {
                        Ok(found) => all.extend(found?),
                        Err(panic) => std::panic::resume_unwind(panic),
                    }
                }
                Ok::<_, GitError>(all)
            })?
        };
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        Ok(out)
    }

    /// The paths of every entry directly under `dir`, in the commit's tree
    /// or the working tree (so a folder deleted from the working tree, or
    /// added to it, is scanned too). One only in the index (staged, then
    /// removed from the disk) differs from neither the tree nor the disk.
    /// `None` when a name is not UTF-8, which a pathspec cannot name
    /// exactly: the folder is then scanned whole.
    fn top_level_entries(
        &self,
        tree_id: git2::Oid,
        dir: &str,
    ) -> Result<Option<Vec<String>>, GitError> {
        let join = |name: &str| {
            if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            }
        };
        let mut names = BTreeSet::new();
        let tree = self
            .repo
            .find_tree(tree_id)
            .map_err(|e| GitError::git("reading the head commit's tree", &e))?;
        let folder = if dir.is_empty() {
            Some(tree)
        } else {
            match tree.get_path(std::path::Path::new(dir)) {
                Ok(entry) => entry
                    .to_object(&self.repo)
                    .ok()
                    .and_then(|o| o.into_tree().ok()),
                Err(_) => None,
            }
        };
        if let Some(folder) = folder {
            for entry in folder.iter() {
                let Ok(name) = std::str::from_utf8(entry.name_bytes()) else {
                    return Ok(None);
                };
                names.insert(join(name));
            }
        }
        if let Ok(listing) = std::fs::read_dir(self.workdir.join(dir)) {
            for entry in listing.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    return Ok(None);
                };
                if !(dir.is_empty() && name == ".git") {
                    names.insert(join(name));
                }
            }
        }
        Ok(Some(names.into_iter().collect()))
    }
}

/// The uncommitted files under `paths` (literal prefixes; none: the whole
/// tree) in `repo`'s working tree and index against tree `tree_id`.
fn diff_workdir(
    repo: &Repository,
    tree_id: git2::Oid,
    paths: &[String],
) -> Result<Vec<UncommittedPath>, GitError> {
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| GitError::git("reading the head commit's tree", &e))?;
    let mut options = git2::DiffOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .include_typechange(true);
    if !paths.is_empty() {
        // Literal prefixes: a folder named `images[1]` is not a pattern.
        for path in paths {
            options.pathspec(path);
        }
        options.disable_pathspec_match(true);
    }
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&tree), Some(&mut options))
        .map_err(|e| GitError::git("comparing the working tree with the head commit", &e))?;
    Ok(diff
        .deltas()
        .filter_map(|delta| {
            let change = match delta.status() {
                git2::Delta::Deleted => Uncommitted::Deleted,
                git2::Delta::Added | git2::Delta::Untracked => Uncommitted::Added,
                git2::Delta::Unmodified | git2::Delta::Ignored => return None,
                _ => Uncommitted::Modified,
            };
            let file = match change {
                Uncommitted::Deleted => delta.old_file(),
                _ => delta.new_file(),
            };
            let path = String::from_utf8_lossy(file.path_bytes()?).into_owned();
            Some(UncommittedPath { path, change })
        })
        .collect())
}
