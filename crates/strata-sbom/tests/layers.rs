//! The inventory of exports made here as the engine makes them: a legacy
//! `docker save` tar holding one `layer.tar` per layer, `manifest.json`
//! and the config naming the layers' diff IDs.

use sha2::{Digest, Sha256};
use strata_sbom::{Ecosystem, inventory};

/// One layer's files: (path, contents); a path ending in `/` is a folder.
type Layer<'a> = &'a [(&'a str, &'a str)];

fn tar_of(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    tar_with_links(files, &[])
}

/// A tar of `files`, then of `links`: (path, target) symbolic links.
fn tar_with_links(files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        if path.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
        } else {
            header.set_size(bytes.len() as u64);
        }
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, bytes.as_slice())
            .unwrap();
    }
    for (path, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, path, target).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A legacy export of an image of `layers`, bottom first, whose layer
/// folders are written in the reverse order (the order of an export is not
/// the image's).
fn export(layers: &[Layer<'_>]) -> (Vec<u8>, Vec<String>) {
    let tars: Vec<Vec<u8>> = layers
        .iter()
        .map(|files| {
            tar_of(
                &files
                    .iter()
                    .map(|(p, c)| (*p, c.as_bytes().to_vec()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let diff_ids: Vec<String> = tars
        .iter()
        .map(|t| {
            let hex: String = Sha256::digest(t)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("sha256:{hex}")
        })
        .collect();
    let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let names: Vec<String> = (0..tars.len())
        .map(|i| format!("layer{i}/layer.tar"))
        .collect();
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": [], "Layers": names}]);
    let mut files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .zip(&tars)
        .rev()
        .map(|(n, t)| (n.as_str(), t.clone()))
        .collect();
    files.push(("cfg.json", serde_json::to_vec(&config).unwrap()));
    files.push(("manifest.json", serde_json::to_vec(&manifest).unwrap()));
    (tar_of(&files), diff_ids)
}

const STATUS_1: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2\n";
const STATUS_2: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-3\n\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10\n";

#[test]
fn packages_come_from_the_stacked_layers_each_with_the_layer_that_added_it() {
    let six = "Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n";
    let gone = "Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n";
    let xpkg = "Metadata-Version: 2.1\nName: x\nVersion: 1\n";
    let npm = r#"{"name": "npm", "version": "10.2.0", "license": "Artistic-2.0"}"#;
    let layers: [Layer<'_>; 3] = [
        &[
            ("etc/", ""),
            ("etc/os-release", "ID=ubuntu\n"),
            ("var/lib/dpkg/status", STATUS_1),
            (
                "usr/lib/python3/dist-packages/gone-1.0.dist-info/METADATA",
                gone,
            ),
            (
                "opt/env/lib/python3.11/site-packages/x-1.dist-info/METADATA",
                xpkg,
            ),
        ],
        &[
            ("var/lib/dpkg/status", STATUS_2),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                six,
            ),
            ("usr/lib/python3/dist-packages/.wh.gone-1.0.dist-info", ""),
            ("opt/env/lib/python3.11/site-packages/.wh..wh..opq", ""),
        ],
        &[("usr/local/lib/node_modules/npm/package.json", npm)],
    ];
    let (tar, diff_ids) = export(&layers);
    let got = inventory(tar.as_slice()).unwrap();
    assert_eq!(got.layers, diff_ids);
    assert_eq!(got.distribution.as_deref(), Some("ubuntu"));
    let listed: Vec<(Ecosystem, &str, &str, &str, usize)> = got
        .packages
        .iter()
        .map(|p| {
            let layer = diff_ids
                .iter()
                .position(|d| Some(d) == p.layer.as_ref())
                .unwrap();
            (
                p.ecosystem,
                p.name.as_str(),
                p.version.as_str(),
                p.purl.as_str(),
                layer,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                Ecosystem::Deb,
                "bash",
                "5.2.15-3",
                "pkg:deb/ubuntu/bash@5.2.15-3?arch=amd64",
                1
            ),
            (
                Ecosystem::Deb,
                "curl",
                "7.88.1-10",
                "pkg:deb/ubuntu/curl@7.88.1-10?arch=amd64",
                1
            ),
            // Listed at the same version since the first layer.
            (
                Ecosystem::Deb,
                "libc6",
                "2.36-9",
                "pkg:deb/ubuntu/libc6@2.36-9?arch=amd64",
                0
            ),
            (Ecosystem::Pypi, "six", "1.16.0", "pkg:pypi/six@1.16.0", 1),
            (Ecosystem::Npm, "npm", "10.2.0", "pkg:npm/npm@10.2.0", 2),
        ]
    );
}

#[test]
fn an_export_that_is_not_one_image_is_refused_with_the_reason() {
    let no_manifest = tar_of(&[("cfg.json", b"{}".to_vec())]);
    let e = inventory(no_manifest.as_slice()).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");

    let manifest = serde_json::json!([
        {"Config": "a.json", "Layers": []},
        {"Config": "b.json", "Layers": []}
    ]);
    let two = tar_of(&[("manifest.json", serde_json::to_vec(&manifest).unwrap())]);
    let e = inventory(two.as_slice()).unwrap_err();
    assert!(e.to_string().contains("2 images"), "{e}");

    let truncated = &export(&[&[("var/lib/dpkg/status", STATUS_1)]]).0[..700];
    assert!(inventory(truncated).is_err());
}

/// `sha256:<hex>` of `bytes`.
fn sha(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An OCI-layout export as the containerd image store writes it: each
/// blob under `blobs/sha256/`, `layers` as given (gzipped or not), named
/// by their diff IDs `diff_ids`.
fn oci_export(layers: &[Vec<u8>], diff_ids: &[String]) -> Vec<u8> {
    let blob = |bytes: &[u8]| format!("blobs/{}", sha(bytes).replace(':', "/"));
    let config = serde_json::to_vec(
        &serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}}),
    )
    .unwrap();
    let names: Vec<String> = layers.iter().map(|l| blob(l)).collect();
    let manifest =
        serde_json::to_vec(&serde_json::json!([{"Config": blob(&config), "Layers": names}]))
            .unwrap();
    let mut files: Vec<(&str, Vec<u8>)> = names
        .iter()
        .zip(layers)
        .map(|(n, l)| (n.as_str(), l.clone()))
        .collect();
    let config_name = blob(&config);
    files.push((&config_name, config));
    files.push(("manifest.json", manifest));
    tar_of(&files)
}

/// The containerd store's export gzips its layers: their packages are read
/// all the same, an empty layer (a tar of zero blocks) is a layer of
/// nothing, and a layer compressed otherwise (zstd) fails the inventory
/// rather than leaving its packages out.
#[test]
fn gzipped_and_empty_layers_are_read_and_another_compression_is_refused() {
    let status = tar_of(&[("var/lib/dpkg/status", STATUS_1.as_bytes().to_vec())]);
    let empty = vec![0u8; 1024];
    let diff_ids = [sha(&status), sha(&empty)];
    let export = oci_export(&[gzipped(&status), empty.clone()], &diff_ids);
    let found = inventory(export.as_slice()).unwrap();
    let names: Vec<&str> = found.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bash", "libc6"]);
    assert_eq!(found.layers, diff_ids);

    let zstd = [&[0x28, 0xb5, 0x2f, 0xfd][..], &[7u8; 600][..]].concat();
    let export = oci_export(&[gzipped(&status), zstd], &diff_ids);
    let refused = inventory(export.as_slice()).unwrap_err().to_string();
    assert!(
        refused.contains(&diff_ids[1]) && refused.contains("neither a tar nor a gzipped tar"),
        "{refused}"
    );
}

/// A layer the image holds twice is exported once, the second place a
/// symbolic link to the first; it is stacked at both: what a layer between
/// them removed, the second puts back.
#[test]
fn a_layer_held_twice_is_stacked_at_each_place() {
    let status = tar_of(&[("var/lib/dpkg/status", STATUS_1.as_bytes().to_vec())]);
    let removed = tar_of(&[("var/lib/dpkg/.wh.status", Vec::new())]);
    let config = serde_json::json!({"rootfs": {"type": "layers",
        "diff_ids": [sha(&status), sha(&removed), sha(&status)]}});
    let manifest = serde_json::json!([{"Config": "cfg.json",
        "Layers": ["a/layer.tar", "b/layer.tar", "c/layer.tar"]}]);
    let export = tar_with_links(
        &[
            ("a/layer.tar", status),
            ("b/layer.tar", removed),
            ("cfg.json", serde_json::to_vec(&config).unwrap()),
            ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        ],
        &[("c/layer.tar", "../a/layer.tar")],
    );
    let found = inventory(export.as_slice()).unwrap();
    let names: Vec<&str> = found.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["bash", "libc6"]);
}
