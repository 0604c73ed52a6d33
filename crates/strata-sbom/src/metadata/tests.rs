use super::*;

#[test]
fn databases_are_found_where_each_package_manager_writes_them() {
    let cases = [
        ("var/lib/dpkg/status", Some(Database::Dpkg)),
        ("var/lib/dpkg/status.d/base-files", Some(Database::Dpkg)),
        ("var/lib/dpkg/status.d/base-files.md5sums", None),
        ("var/lib/dpkg/status-old", None),
        ("lib/apk/db/installed", Some(Database::Apk)),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            Some(Database::Python),
        ),
        (
            "opt/conda/lib/python3.11/site-packages/numpy-1.26.4.dist-info/METADATA",
            Some(Database::Python),
        ),
        (
            "usr/lib/python3.11/site-packages/foo-1.0.egg-info/PKG-INFO",
            Some(Database::Python),
        ),
        (
            "usr/lib/python3/dist-packages/bar-2.0.egg-info",
            Some(Database::Python),
        ),
        ("usr/lib/python3/dist-packages/six.py", None),
        (
            "opt/conda/conda-meta/numpy-1.26.4-py311.json",
            Some(Database::Conda),
        ),
        (
            "opt/conda/envs/r/conda-meta/r-base-4.3.json",
            Some(Database::Conda),
        ),
        ("usr/lib/R/library/stats/DESCRIPTION", Some(Database::R)),
        (
            "usr/local/lib/R/site-library/ggplot2/DESCRIPTION",
            Some(Database::R),
        ),
        ("usr/local/lib/R/site-library/ggplot2/doc/DESCRIPTION", None),
        (
            "usr/local/lib/node_modules/npm/package.json",
            Some(Database::Npm),
        ),
        (
            "usr/local/lib/node_modules/@angular/cli/package.json",
            Some(Database::Npm),
        ),
        (
            "usr/local/lib/node_modules/npm/node_modules/abbrev/package.json",
            None,
        ),
        ("etc/os-release", Some(Database::OsRelease)),
    ];
    for (path, want) in cases {
        assert_eq!(Database::of(path), want, "{path}");
    }
}

#[test]
fn dpkg_lists_installed_packages_with_their_architecture() {
    let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n continued line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 1:2024a-0\n";
    let got = read(Database::Dpkg, status.as_bytes(), Some("debian"));
    let names: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str(), p.purl.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (
                "libc6",
                "2.36-9+deb12u4",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
            ),
            (
                "tzdata",
                "1:2024a-0",
                "pkg:deb/debian/tzdata@1:2024a-0?arch=all"
            ),
        ]
    );
}

#[test]
fn python_metadata_names_are_normalised_and_licenses_kept_when_short() {
    let meta = "Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.9.0\nLicense: PSF-2.0\n\nlong description\nLicense: not a header\n";
    let got = read(Database::Python, meta.as_bytes(), None);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].name, "typing-extensions");
    assert_eq!(got[0].purl, "pkg:pypi/typing-extensions@4.9.0");
    assert_eq!(got[0].license.as_deref(), Some("PSF-2.0"));
    let expression = "Name: a\nVersion: 1\nLicense-Expression: MIT OR Apache-2.0\nLicense: long\n";
    assert_eq!(
        read(Database::Python, expression.as_bytes(), None)[0]
            .license
            .as_deref(),
        Some("MIT OR Apache-2.0")
    );
}

#[test]
fn apk_conda_r_and_npm_records_are_read() {
    let apk = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n";
    let got = read(Database::Apk, apk.as_bytes(), None);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].purl, "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64");
    assert_eq!(got[1].license.as_deref(), Some("GPL-2.0-only"));

    let conda = br#"{"name": "numpy", "version": "1.26.4", "build": "py311h64a7726_0", "license": "BSD-3-Clause"}"#;
    let got = read(Database::Conda, conda, None);
    assert_eq!(got[0].purl, "pkg:conda/numpy@1.26.4?build=py311h64a7726_0");

    let r = "Package: ggplot2\nVersion: 3.4.4\nLicense: MIT + file LICENSE\nBuilt: R 4.3.2; ; 2024-01-01; unix\n";
    let got = read(Database::R, r.as_bytes(), None);
    assert_eq!(
        (got[0].name.as_str(), got[0].purl.as_str()),
        ("ggplot2", "pkg:cran/ggplot2@3.4.4")
    );

    let npm = br#"{"name": "@angular/cli", "version": "17.0.0", "license": "MIT"}"#;
    let got = read(Database::Npm, npm, None);
    assert_eq!(got[0].name, "@angular/cli");
    assert_eq!(got[0].purl, "pkg:npm/%40angular/cli@17.0.0");
}

#[test]
fn unreadable_files_list_nothing() {
    for db in [
        Database::Dpkg,
        Database::Apk,
        Database::Python,
        Database::Conda,
        Database::R,
        Database::Npm,
    ] {
        assert!(read(db, b"\xff\xfe garbage {", None).is_empty(), "{db:?}");
    }
    assert_eq!(
        distribution(b"NAME=\"Debian GNU/Linux\"\nID=debian\n").as_deref(),
        Some("debian")
    );
    assert_eq!(distribution(b"ID=\"ubuntu\"\n").as_deref(), Some("ubuntu"));
}
