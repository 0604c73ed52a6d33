//! Reading and running container-structure-test (CST) files, natively.
//!
//! A structure-test file (`schemaVersion: '2.0.0'` or `'1.0.0'`) lists
//! command tests, file-existence tests, file-content tests, licence tests
//! and a metadata test for an image, with `containerRunOptions` for every
//! container it needs. [`parse`] reads one into a [`StructureFile`],
//! reporting every problem with its file, line and key; [`run`] runs it as
//! CST's docker driver does, over the [`Driver`] trait (a container per
//! command, created with the command as its own and the image's entrypoint
//! cleared; files read from the engine's archive of a container never
//! started, so images without a shell work), giving one [`CaseResult`] per
//! test, named and worded as CST reports it, in CST's order.
//!
//! Nothing here does I/O: the caller implements [`Driver`] on its engine,
//! so every rule can be tested with an in-memory driver.
//!
//! Why by hand: no crate implements CST in Rust, and running CST itself
//! would mean another binary. The file is read over strata's own YAML tree
//! ([`strata_core::yaml`]) rather than deserialised into structs so that
//! errors carry line numbers, unknown keys get a "did you mean", and all
//! problems are reported at once. The semantics follow CST's Go sources
//! (`pkg/types/v1`, `pkg/types/v2`, `pkg/drivers/docker_driver.go`,
//! `pkg/utils`): regular expressions match anywhere; `exitCode` defaults to
//! 0 and `shouldExist` to true; `permissions` is compared with Go's
//! `os.FileMode.String()` ([`go_file_mode`]); `$VAR` in a command's argv
//! and (2.0.0) a file-existence path is replaced by the image's environment
//! as Go's `os.Expand` does.
//!
//! ```
//! let text = "schemaVersion: '2.0.0'\n\
//!             commandTests:\n  - name: python\n    command: python3\n    args: [--version]\n";
//! assert!(strata_structure::is_structure_file(text));
//! let file = strata_structure::parse(text, "structure.yaml").expect("a valid file");
//! assert_eq!(file.len(), 1);
//! assert_eq!(file.command_tests[0].exit_code, 0);
//!
//! let typo = "schemaVersion: '2.0.0'\ncomandTests: []\n";
//! let errors = strata_structure::parse(typo, "structure.yaml").unwrap_err();
//! assert_eq!(errors[0].to_string(), "structure.yaml:2:1: error: unknown key 'comandTests' in the file");
//! assert_eq!(errors[0].help.as_deref(), Some("did you mean 'commandTests'?"));
//! ```
//!
//! Where strata differs from CST: `capabilities` are added to the engine's
//! default set (`CapAdd`), since the `Capabilities` field CST sends is one
//! Docker 20.10 and later ignore; an engine error is never taken for a
//! missing file or a passing test; invalid files are refused before any
//! test runs.

#![deny(missing_docs)]

mod expand;
mod mode;
mod run;
mod schema;
mod types;

pub use mode::{
    S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, go_file_mode,
    st_mode_from_go,
};
pub use run::{
    ArchiveEntry, CaseResult, ContainerSpec, Driver, DriverError, EntryKind, ExecOutput, FileStat,
    HostEnv, HostOptions, ImageConfig, Kind, Step, run,
};
pub use schema::{SCHEMA_VERSION, parse};
pub use types::{
    CommandTest, EnvVar, ExecutableBy, FileContentTest, FileExistenceTest, KeyValue, LicenseTest,
    MetadataTest, Pattern, PatternError, RunOptions, SchemaVersion, StructureFile, ValueMatch,
};

/// Whether a YAML text is a structure-test file: its top-level mapping has
/// `schemaVersion`. Cheap, never fails (false on unparsable text).
pub fn is_structure_file(text: &str) -> bool {
    if !text.contains("schemaVersion") {
        return false;
    }
    strata_core::yaml::parse(text, "").is_ok_and(|root| {
        root.as_map().is_some_and(|entries| {
            entries
                .iter()
                .any(|(k, _)| k.as_scalar() == Some("schemaVersion"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_files_are_recognised_by_schema_version() {
        assert!(is_structure_file("schemaVersion: '2.0.0'\n"));
        assert!(is_structure_file(
            "commandTests: []\nschemaVersion: 1.0.0\n"
        ));
        assert!(is_structure_file(r#"{"schemaVersion": "2.0.0"}"#));
        assert!(!is_structure_file("images:\n  base: {}\n"));
        assert!(!is_structure_file("nested:\n  schemaVersion: '2.0.0'\n"));
        assert!(!is_structure_file("- schemaVersion: '2.0.0'\n"));
        assert!(!is_structure_file("# schemaVersion: 2.0.0\nfoo: bar\n"));
        assert!(!is_structure_file("schemaVersion: [\n"));
        assert!(!is_structure_file(
            "FROM ubuntu:24.04\nRUN echo schemaVersion\n"
        ));
        assert!(!is_structure_file("\u{0}\u{1} not yaml schemaVersion: {{{"));
        assert!(!is_structure_file(""));
    }
}
