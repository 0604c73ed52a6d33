//! What the working tree changed since a commit: `git status` of one folder.
//!
//! The scan does what git's does, in the same two steps. First a quick
//! check trusts the index's stat data where git would: every directory of
//! the folder is read and every tracked file stat'ed (relative to its
//! directory's handle, so the kernel walks no full paths), spread over one
//! thread per core, and the index's cached tree of the folder (the `TREE`
//! extension git keeps) is compared with the commit's. What the quick check
//! cannot clear (stat data that differs, entries racily clean, untracked or
//! deleted files, staged changes, anything unusual) is then given to
//! libgit2's own tree-to-working-tree diff, path by path, so every answer is
//! libgit2's. libgit2's diff alone over a 40,000-file folder walks it on one
//! thread, stats every file by its full path and first verifies the index's
//! SHA-1: half again git's time. The index is read with gix-index, which
//! skips that check as git does.

use crate::{GitError, MODE_EXECUTABLE, MODE_SYMLINK, Repo};
use git2::Repository;
use gix_index::entry::{Flags, Mode};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

/// Past this many paths to check exactly, one diff of the whole folder
/// costs less than a path list libgit2 matches entry by entry.
const MAX_LISTED_SUSPECTS: usize = 2_000;

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
        let whole = || {
            if dir.is_empty() {
                Vec::new()
            } else {
                vec![dir.as_bytes().to_vec()]
            }
        };
        let (suspects, stat_cache) = match self.quick_check(tree_id, dir) {
            QuickCheck::Suspects(suspects) if suspects.is_empty() => return Ok(Vec::new()),
            QuickCheck::Suspects(suspects) if suspects.len() <= MAX_LISTED_SUSPECTS => {
                (suspects, StatCache::Index)
            }
            QuickCheck::Suspects(_) | QuickCheck::Unreadable => (whole(), StatCache::Index),
            // libgit2 reads only the split part of a split index and would
            // take the shared part's files for untracked: every file's
            // content is compared with the commit's instead.
            QuickCheck::SplitIndex => (whole(), StatCache::None),
        };
        let mut out = diff_workdir(&self.repo, tree_id, &suspects, stat_cache)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|a, b| a.path == b.path);
        Ok(out)
    }

    /// The paths under `dir` the quick check cannot clear.
    fn quick_check(&self, tree_id: git2::Oid, dir: &str) -> QuickCheck {
        let index_path = self.repo.path().join("index");
        let (Ok(meta), Ok(bytes)) = (std::fs::metadata(&index_path), std::fs::read(&index_path))
        else {
            return QuickCheck::Unreadable;
        };
        // The bytes are decoded by hand rather than through
        // `gix_index::File::at` so that a split index is seen before it
        // would be joined with its shared part.
        let index = gix_index::State::from_bytes(
            &bytes,
            filetime::FileTime::from_last_modification_time(&meta),
            gix_index::hash::Kind::Sha1,
            gix_index::decode::Options::default(),
        );
        let index = match index {
            Ok((index, _)) if index.link().is_some() => return QuickCheck::SplitIndex,
            Ok((index, _)) if !index.is_sparse() => index,
            _ => return QuickCheck::Unreadable,
        };
        let index_mtime = Some((meta.mtime(), meta.mtime_nsec()));
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let range = index
            .prefixed_entries_range(prefix.as_bytes().into())
            .unwrap_or(0..0);
        let scan = QuickScan {
            root: &self.workdir,
            dir,
            index: &index,
            entries: &index.entries()[range],
            index_mtime,
        };
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let mut suspects = scan.run(threads);
        if !self.index_tree_is(&index, dir, tree_id) {
            match staged_paths(&self.repo, tree_id, dir) {
                Some(staged) => suspects.extend(staged),
                None => return QuickCheck::Unreadable,
            }
        }
        suspects.sort_unstable();
        suspects.dedup();
        QuickCheck::Suspects(suspects)
    }

    /// Whether the index's cached tree of `dir` is valid and is the
    /// commit's (tree `tree_id`): then nothing under `dir` is staged, as
    /// git's own status concludes from it.
    fn index_tree_is(&self, index: &gix_index::State, dir: &str, tree_id: git2::Oid) -> bool {
        let Some(mut node) = index.tree() else {
            return false;
        };
        for name in dir.split('/').filter(|n| !n.is_empty()) {
            match node
                .children
                .iter()
                .find(|c| c.name.as_slice() == name.as_bytes())
            {
                Some(child) => node = child,
                None => return false,
            }
        }
        let committed = if dir.is_empty() {
            Some(tree_id)
        } else {
            self.repo
                .find_tree(tree_id)
                .and_then(|tree| tree.get_path(Path::new(dir)))
                .ok()
                .map(|entry| entry.id())
        };
        node.num_entries.is_some()
            && committed.is_some_and(|id| id.as_bytes() == node.id.as_bytes())
    }
}

/// What the quick check found.
enum QuickCheck {
    /// The paths it could not clear, sorted.
    Suspects(Vec<Vec<u8>>),
    /// An index it does not read (missing, sparse, or of a hash it does
    /// not know): the whole folder is left to libgit2.
    Unreadable,
    /// A split index (`core.splitIndex`), which libgit2 cannot read.
    SplitIndex,
}

/// Whether the exact diff may trust the index's stat data.
enum StatCache {
    Index,
    None,
}

/// An index entry git's quick check leaves to a full comparison:
/// conflicted, intent-to-add, skip-worktree, assume-valid, or a submodule.
fn unusual(entry: &gix_index::Entry) -> bool {
    entry.flags.intersects(
        Flags::STAGE_MASK | Flags::ASSUME_VALID | Flags::INTENT_TO_ADD | Flags::SKIP_WORKTREE,
    ) || entry.mode == Mode::COMMIT
}

/// Whether the file's stat data is what the index recorded for it, and the
/// index was written after the file last changed (else the entry is racily
/// clean: the file may have changed within the same tick).
fn stat_matches(
    entry: &gix_index::Entry,
    meta: &std::fs::Metadata,
    index_mtime: Option<(i64, i64)>,
) -> bool {
    let mode = entry.mode.bits();
    let kind_matches = if meta.file_type().is_symlink() {
        mode == MODE_SYMLINK as u32
    } else if meta.file_type().is_file() {
        let executable = meta.mode() & 0o111 != 0;
        mode == if executable {
            MODE_EXECUTABLE as u32
        } else {
            0o100644
        }
    } else {
        false
    };
    let stat = &entry.stat;
    let mtime = (meta.mtime(), meta.mtime_nsec());
    kind_matches
        && !unusual(entry)
        // git keeps the low 32 bits of sizes, inode numbers and times.
        && stat.size == meta.size() as u32
        && stat.ino == meta.ino() as u32
        && stat.uid == meta.uid()
        && stat.gid == meta.gid()
        && (stat.mtime.secs, stat.mtime.nsecs) == (mtime.0 as u32, mtime.1 as u32)
        && (stat.ctime.secs, stat.ctime.nsecs) == (meta.ctime() as u32, meta.ctime_nsec() as u32)
        && index_mtime.is_some_and(|index| mtime < index)
}

/// The quick check of the working tree against the index.
struct QuickScan<'a> {
    root: &'a Path,
    /// The folder, relative to the root (`""`: the whole tree).
    dir: &'a str,
    /// The index, which holds its entries' paths.
    index: &'a gix_index::State,
    /// The index's entries under the folder, in the index's (byte) order.
    entries: &'a [gix_index::Entry],
    index_mtime: Option<(i64, i64)>,
}

impl QuickScan<'_> {
    fn path(&self, entry: &gix_index::Entry) -> &[u8] {
        entry.path(self.index)
    }

    /// The paths it cannot clear: untracked files and folders, deleted
    /// files, and tracked ones whose stat data differs. The folder's
    /// entries are shared out to `threads` threads as each asks for more.
    fn run(&self, threads: usize) -> Vec<Vec<u8>> {
        let top = self.dir.as_bytes();
        let Ok(listing) = std::fs::read_dir(self.root.join(self.dir)) else {
            // No folder: everything tracked under it is deleted.
            return self.entries.iter().map(|e| self.path(e).to_vec()).collect();
        };
        let entries: Vec<std::fs::DirEntry> = listing.flatten().collect();
        let next = AtomicUsize::new(0);
        let seen: Vec<AtomicBool> = self
            .entries
            .iter()
            .map(|_| AtomicBool::new(false))
            .collect();
        let work = || {
            let mut suspects = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = entries.get(i) else {
                    break;
                };
                self.visit(top, entry, 0..self.entries.len(), &seen, &mut suspects);
            }
            suspects
        };
        let mut suspects = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads.min(entries.len()).max(1))
                .map(|_| scope.spawn(work))
                .collect();
            let mut all = work();
            for helper in helpers {
                match helper.join() {
                    Ok(found) => all.extend(found),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        });
        suspects.extend(
            self.entries
                .iter()
                .zip(&seen)
                .filter(|(_, seen)| !seen.load(Ordering::Relaxed))
                .map(|(e, _)| self.path(e).to_vec()),
        );
        suspects
    }

    /// Checks one entry of folder `parent` (relative to the root), and
    /// everything under it. `within` is the range of the index's entries
    /// under `parent` (a folder's entries are contiguous in the index's
    /// order), where its own are searched.
    fn visit(
        &self,
        parent: &[u8],
        entry: &std::fs::DirEntry,
        within: Range<usize>,
        seen: &[AtomicBool],
        suspects: &mut Vec<Vec<u8>>,
    ) {
        let name = entry.file_name();
        let name = name.as_bytes();
        if parent.is_empty() && name == b".git" {
            return;
        }
        let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
        if !parent.is_empty() {
            path.extend_from_slice(parent);
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let Ok(kind) = entry.file_type() else {
            suspects.push(path);
            return;
        };
        let siblings = &self.entries[within.clone()];
        let at = within.start + siblings.partition_point(|e| self.path(e) < path.as_slice());
        let own = self
            .entries
            .get(at)
            .filter(|e| self.path(e) == path.as_slice());
        if kind.is_dir() {
            let mut below = path.clone();
            below.push(b'/');
            // `x/` sorts after `x-y` and `x.y`: its range is searched for.
            let start =
                within.start + siblings.partition_point(|e| self.path(e) < below.as_slice());
            let end = within.start
                + siblings.partition_point(|e| {
                    let p = self.path(e);
                    p < below.as_slice() || p.starts_with(&below)
                });
            let listing = match std::fs::read_dir(entry.path()) {
                Ok(listing) if start < end => listing,
                // Untracked (or unreadable): libgit2 lists what in it git
                // does not ignore.
                _ => {
                    suspects.push(path);
                    return;
                }
            };
            if own.is_some() {
                // A tracked file (or submodule) is now a folder.
                suspects.push(path.clone());
            }
            for child in listing {
                match child {
                    Ok(child) => self.visit(&path, &child, start..end, seen, suspects),
                    Err(_) => suspects.push(path.clone()),
                }
            }
            return;
        }
        match own {
            Some(tracked) => {
                if let Some(flag) = seen.get(at) {
                    flag.store(true, Ordering::Relaxed);
                }
                let clean = entry
                    .metadata()
                    .is_ok_and(|meta| stat_matches(tracked, &meta, self.index_mtime));
                if !clean {
                    suspects.push(path);
                }
            }
            None => suspects.push(path),
        }
    }
}

/// The paths under `dir` whose index entry differs from commit tree
/// `tree_id` (staged changes); `None` when libgit2 cannot tell.
fn staged_paths(repo: &Repository, tree_id: git2::Oid, dir: &str) -> Option<Vec<Vec<u8>>> {
    let tree = repo.find_tree(tree_id).ok()?;
    let mut options = git2::DiffOptions::new();
    if !dir.is_empty() {
        options.pathspec(dir).disable_pathspec_match(true);
    }
    let diff = repo
        .diff_tree_to_index(Some(&tree), None, Some(&mut options))
        .ok()?;
    Some(
        diff.deltas()
            .flat_map(|d| [d.old_file().path_bytes(), d.new_file().path_bytes()])
            .flatten()
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// The uncommitted files under `paths` (literal prefixes; none: the whole
/// tree) in `repo`'s working tree and index against tree `tree_id`.
fn diff_workdir(
    repo: &Repository,
    tree_id: git2::Oid,
    paths: &[Vec<u8>],
    stat_cache: StatCache,
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
            options.pathspec(path.as_slice());
        }
        options.disable_pathspec_match(true);
    }
    let diff = match stat_cache {
        StatCache::Index => repo.diff_tree_to_workdir_with_index(Some(&tree), Some(&mut options)),
        StatCache::None => repo.diff_tree_to_workdir(Some(&tree), Some(&mut options)),
    }
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
