//! The digest of a folder's files as they are on disk: the context part of
//! an input key when the folder has uncommitted changes (a committed folder
//! is named by its git tree instead).
//!
//! Every file below the folder counts, `.dockerignore`d or not: a key that
//! changes for an ignored file only costs a build, one that missed a file
//! would reuse a wrong image.

use crate::failure::Failure;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `files:sha256:<hex>` over each file's path, kind, executable bit and
/// content (a link's target), in path order.
pub fn of_folder(dir: &Path) -> Result<String, Failure> {
    let cannot = |path: &Path, e: std::io::Error| {
        Failure::env(format!("cannot read {}: {e}", path.display()))
    };
    let mut entries = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| cannot(&folder, e))? {
            let entry = entry.map_err(|e| cannot(&folder, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| cannot(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else {
                entries.push((path, kind));
            }
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (path, kind) in entries {
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update([0]);
        let content = if kind.is_symlink() {
            hasher.update(b"link\0");
            std::fs::read_link(&path)
                .map_err(|e| cannot(&path, e))?
                .into_os_string()
                .into_encoded_bytes()
        } else {
            let mode = std::fs::metadata(&path)
                .map_err(|e| cannot(&path, e))?
                .permissions()
                .mode();
            hasher.update(if mode & 0o111 != 0 {
                b"exec\0"
            } else {
                b"file\0"
            });
            std::fs::read(&path).map_err(|e| cannot(&path, e))?
        };
        hasher.update(Sha256::digest(&content));
    }
    Ok(format!(
        "files:sha256:{}",
        strata_core::inputs::hex(&hasher.finalize())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_mode_and_names_change_the_digest_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        let first = of_folder(dir.path()).unwrap();
        assert!(first.starts_with("files:sha256:"), "{first}");
        assert_eq!(of_folder(dir.path()).unwrap(), first);

        std::fs::write(dir.path().join("sub/a.txt"), "b").unwrap();
        let content = of_folder(dir.path()).unwrap();
        assert_ne!(content, first);

        let path = dir.path().join("sub/a.txt");
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        perms.set_mode(0o755);
        std::fs::set_permissions(&path, perms).unwrap();
        assert_ne!(of_folder(dir.path()).unwrap(), content);

        std::fs::rename(&path, dir.path().join("sub/b.txt")).unwrap();
        let renamed = of_folder(dir.path()).unwrap();
        std::os::unix::fs::symlink("b.txt", dir.path().join("sub/link")).unwrap();
        assert_ne!(of_folder(dir.path()).unwrap(), renamed);
    }
}
