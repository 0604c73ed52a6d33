//! The files an image's basic tests run, read for their key
//! ([`strata_core::inputs::test_key`]).

use std::collections::BTreeMap;
use std::path::Path;

/// The pytest configuration beside the test folders, which every test run
/// reads.
const CONFIGURATION: [&str; 2] = ["conftest.py", "pytest.ini"];

/// Folders pytest writes into while it runs: not inputs.
const CACHES: [&str; 2] = ["__pycache__", ".pytest_cache"];

/// The key of the basic tests' inputs of an image whose basic test folders
/// are `folders` (relative to `images_dir`): `None` when a file cannot be
/// read, which makes a reused image test again.
pub(crate) fn basic_test_key(images_dir: &Path, folders: &[String]) -> Option<String> {
    let mut files = BTreeMap::new();
    for name in CONFIGURATION {
        let path = images_dir.join(name);
        if path.is_file() {
            files.insert(name.to_string(), std::fs::read(&path).ok()?);
        }
    }
    for folder in folders {
        read_folder(images_dir, folder, &mut files)?;
    }
    Some(strata_core::inputs::test_key(&files))
}

/// Reads every file under `images_dir/rel` into `files`, by relative path;
/// symbolic links are read as their target's path, as git stores them.
fn read_folder(images_dir: &Path, rel: &str, files: &mut BTreeMap<String, Vec<u8>>) -> Option<()> {
    let dir = images_dir.join(rel);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        // A folder that is not there has nothing to run.
        return Some(());
    };
    for entry in entries {
        let entry = entry.ok()?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if CACHES.contains(&name.as_str()) {
            continue;
        }
        let path = format!("{rel}/{name}");
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            read_folder(images_dir, &path, files)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).ok()?;
            files.insert(path, target.to_string_lossy().into_owned().into_bytes());
        } else {
            files.insert(path, std::fs::read(entry.path()).ok()?);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_follows_the_configuration_and_every_folder() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("conftest.py", "fixtures");
        write("tests_common/test_a.py", "a");
        write("root/test/checks.yaml", "b");
        let folders = ["tests_common".to_string(), "root/test".to_string()];
        let key = || basic_test_key(dir.path(), &folders).unwrap();
        let first = key();
        // pytest's caches are not inputs.
        write("tests_common/__pycache__/test_a.pyc", "cache");
        assert_eq!(key(), first);
        for (rel, text) in [
            ("conftest.py", "other fixtures"),
            ("tests_common/test_a.py", "a2"),
            ("root/test/checks.yaml", "b2"),
            ("root/test/deeper/data.txt", "new"),
        ] {
            let before = key();
            write(rel, text);
            assert_ne!(key(), before, "{rel}");
        }
        // A folder the image does not run is not its input.
        let before = key();
        write("other/test/test_x.py", "x");
        assert_eq!(key(), before);
    }
}
