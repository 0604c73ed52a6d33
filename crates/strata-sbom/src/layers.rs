//! An image's packages, from the engine's export of it (`docker save`).
//!
//! The export is read as it streams: each layer's tar is walked once, and
//! only the package databases it holds (a few megabytes at most, each read
//! as it passes) and its whiteouts are kept, so memory does not grow with
//! the image. The layers are then stacked in the image's order, as the
//! engine stacks them: a whiteout in a layer removes what lower layers
//! wrote, and a file written again replaces the lower one.
//!
//! A layer is a plain tar in the classic image store's export and may be
//! gzipped in the containerd store's (an OCI layout); either is read. A
//! layer the image lists that cannot be read as either fails the whole
//! inventory: an SBOM missing a layer's packages would say the image holds
//! less than it does.

use crate::metadata::{self, Database};
use crate::{Ecosystem, Package, SbomError};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// A package database larger than this is not read (no real one is).
const MAX_DATABASE_BYTES: u64 = 64 << 20;
/// A top-level JSON file of the export larger than this is not read: the
/// config and manifest.json are a few kilobytes.
const MAX_JSON_BYTES: u64 = 16 << 20;

/// What an image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInventory {
    /// Every package, sorted by ecosystem, name and version.
    pub packages: Vec<Package>,
    /// The image's layers, bottom first, by diff ID.
    pub layers: Vec<String>,
    /// The distribution its os-release names (`debian`, `ubuntu`, …).
    pub distribution: Option<String>,
}

/// One layer as read: its databases (parsed) and whiteouts.
#[derive(Default, Clone)]
struct LayerFiles {
    /// Path → the packages of the database there (`None`: os-release,
    /// kept as the distribution it names).
    databases: BTreeMap<String, Found>,
    /// Paths this layer removes from the layers below.
    whiteouts: Vec<String>,
    /// Folders whose lower contents this layer hides (opaque).
    opaque: Vec<String>,
}

#[derive(Clone)]
enum Found {
    Packages(Database, Vec<Package>),
    Distribution(Option<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifest {
    config: String,
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// Reads the packages of the one image in `export`, the tar stream the
/// engine's image export (`GET /images/{name}/get`) sends.
///
/// # Errors
///
/// [`SbomError::Read`] when the stream or a tar in it is broken;
/// [`SbomError::Manifest`] when it does not describe exactly one image.
pub fn inventory(export: impl Read) -> Result<ImageInventory, SbomError> {
    let mut outer = tar::Archive::new(export);
    let mut layers: HashMap<String, LayerFiles> = HashMap::new();
    let mut small_files: HashMap<String, Vec<u8>> = HashMap::new();
    // A legacy export writes a layer the image holds twice once, and a
    // symbolic link to it in the second layer's folder.
    let mut links: HashMap<String, String> = HashMap::new();
    for entry in outer.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if entry.header().entry_type().is_symlink() {
            if let Some(target) = entry.link_name()? {
                links.insert(name.clone(), resolve_link(&name, &target.to_string_lossy()));
            }
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry.header().size()?;
        if name.ends_with(".json") || name == "manifest.json" {
            if size <= MAX_JSON_BYTES {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                small_files.insert(name, bytes);
            }
        } else if name.ends_with("/layer.tar") || name.starts_with("blobs/") {
            // Legacy exports name layers `<id>/layer.tar`; OCI layouts
            // keep every blob under `blobs/`, configs too, which small
            // blobs that are not tars are kept for.
            let mut head = [0u8; 512];
            let read = read_up_to(&mut entry, &mut head)?;
            let whole = std::io::Cursor::new(head[..read].to_vec()).chain(&mut entry);
            if is_tar(&head[..read]) {
                layers.insert(name, read_layer(whole)?);
            } else if head[..read].starts_with(&GZIP_MAGIC) {
                let mut plain = flate2::read::GzDecoder::new(whole);
                let mut plain_head = [0u8; 512];
                let plain_read = read_up_to(&mut plain, &mut plain_head)?;
                if is_tar(&plain_head[..plain_read]) {
                    let layer = read_layer(
                        std::io::Cursor::new(plain_head[..plain_read].to_vec()).chain(plain),
                    )?;
                    layers.insert(name, layer);
                }
            } else if size <= MAX_JSON_BYTES {
                let mut bytes = head[..read].to_vec();
                entry.read_to_end(&mut bytes)?;
                small_files.insert(name, bytes);
            }
        }
    }
    let manifests: Vec<SaveManifest> = small_files
        .get("manifest.json")
        .ok_or_else(|| SbomError::Manifest("no manifest.json".into()))
        .and_then(|b| serde_json::from_slice(b).map_err(|e| SbomError::Manifest(e.to_string())))?;
    let [manifest] = manifests.as_slice() else {
        return Err(SbomError::Manifest(format!(
            "it describes {} images, not one",
            manifests.len()
        )));
    };
    let config: Config = small_files
        .get(&manifest.config)
        .ok_or_else(|| SbomError::Manifest(format!("no config {}", manifest.config)))
        .and_then(|b| serde_json::from_slice(b).map_err(|e| SbomError::Manifest(e.to_string())))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(SbomError::Manifest(format!(
            "{} layers against {} diff IDs in the config",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let stacked: Vec<(String, LayerFiles)> = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(name, diff_id)| {
            // A layer the image holds twice is read once, and stacked at
            // each place it holds it.
            let read = links.get(name).unwrap_or(name);
            let files = layers.get(read).cloned().ok_or_else(|| {
                SbomError::Manifest(format!(
                    "layer {name} ({diff_id}) is neither a tar nor a gzipped tar; its packages cannot be read (is it compressed another way, such as zstd?)"
                ))
            })?;
            Ok((diff_id.clone(), files))
        })
        .collect::<Result<_, SbomError>>()?;
    Ok(stack(stacked))
}

/// How a gzip stream starts.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `head`, a stream's first block (or all of a shorter one), is a
/// tar's: a header (`ustar` at its magic's place), or the zero block that
/// ends a tar, as a layer with no files is.
fn is_tar(head: &[u8]) -> bool {
    (head.len() == 512 && &head[257..262] == b"ustar")
        || (!head.is_empty() && head.iter().all(|&b| b == 0))
}

/// Where a symbolic link at `name` (`<id>/layer.tar`) to `target` points,
/// as a path of the export (`../<other>/layer.tar` → `<other>/layer.tar`).
fn resolve_link(name: &str, target: &str) -> String {
    let mut parts: Vec<&str> = match target.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => name.split('/').collect(),
    };
    // The link's own file name is not a folder of its target.
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The databases and whiteouts of one layer's tar.
fn read_layer(tar_stream: impl Read) -> Result<LayerFiles, SbomError> {
    let mut files = LayerFiles::default();
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let path = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path.as_str()),
        };
        if name == ".wh..wh..opq" {
            files.opaque.push(dir.to_string());
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            files.whiteouts.push(join(dir, hidden));
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Some(db) = Database::of(&path) else {
            continue;
        };
        if entry.header().size()? > MAX_DATABASE_BYTES {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let found = match db {
            Database::OsRelease => Found::Distribution(metadata::distribution(&bytes)),
            _ => Found::Packages(db, metadata::read(db, &bytes, None)),
        };
        files.databases.insert(path, found);
    }
    Ok(files)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `root` or under it.
fn within(path: &str, root: &str) -> bool {
    root.is_empty()
        || path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// One database path's versions, bottom layer first: the layer that wrote
/// it and what it listed, or `None` where a layer removed it.
type History = Vec<(usize, Option<(Database, Vec<Package>)>)>;

/// Stacks the layers, bottom first, into the image's packages.
fn stack(layers: Vec<(String, LayerFiles)>) -> ImageInventory {
    let mut histories: BTreeMap<String, History> = BTreeMap::new();
    let mut distributions: BTreeMap<String, (usize, Option<String>)> = BTreeMap::new();
    let diff_ids: Vec<String> = layers.iter().map(|(id, _)| id.clone()).collect();
    for (index, (_, files)) in layers.into_iter().enumerate() {
        let removed = |path: &str| {
            files.whiteouts.iter().any(|w| within(path, w))
                || files.opaque.iter().any(|o| path != o && within(path, o))
        };
        for (path, history) in histories.iter_mut() {
            if history.last().is_some_and(|(_, v)| v.is_some()) && removed(path) {
                history.push((index, None));
            }
        }
        distributions.retain(|path, _| !removed(path));
        for (path, found) in files.databases {
            match found {
                Found::Packages(db, packages) => histories
                    .entry(path)
                    .or_default()
                    .push((index, Some((db, packages)))),
                Found::Distribution(d) => {
                    distributions.insert(path, (index, d));
                }
            }
        }
    }
    // /etc/os-release is the one distributions read first.
    let distribution = distributions
        .get("etc/os-release")
        .or_else(|| distributions.get("usr/lib/os-release"))
        .and_then(|(_, d)| d.clone());
    let mut packages = Vec::new();
    for history in histories.values() {
        let Some((top_layer, Some((db, listed)))) = history.last() else {
            continue;
        };
        for package in listed {
            let layer = if matches!(db, Database::Dpkg | Database::Apk) {
                // A database of many packages is written again by every
                // layer that installs one: a package came from the lowest
                // layer from which on every version of the file lists it
                // at this version.
                added_by(history, package).unwrap_or(*top_layer)
            } else {
                *top_layer
            };
            let mut package = package.clone();
            package.layer = diff_ids.get(layer).cloned();
            if let Some(d) = &distribution {
                package.purl = with_distribution(&package, d);
            }
            packages.push(package);
        }
    }
    packages.sort();
    packages.dedup();
    ImageInventory {
        packages,
        layers: diff_ids,
        distribution,
    }
}

fn added_by(history: &History, package: &Package) -> Option<usize> {
    let mut earliest = None;
    for (layer, version) in history.iter().rev() {
        let listed = version.as_ref().is_some_and(|(_, packages)| {
            packages
                .iter()
                .any(|p| p.name == package.name && p.version == package.version)
        });
        if !listed {
            break;
        }
        earliest = Some(*layer);
    }
    earliest
}

/// The purl of a deb or apk package under distribution `d` (read as they
/// were with the package managers' defaults, `debian` and `alpine`).
fn with_distribution(package: &Package, d: &str) -> String {
    let default = match package.ecosystem {
        Ecosystem::Deb => "pkg:deb/debian/",
        Ecosystem::Apk => "pkg:apk/alpine/",
        _ => return package.purl.clone(),
    };
    match package.purl.strip_prefix(default) {
        Some(rest) => format!("pkg:{}/{d}/{rest}", package.ecosystem.purl_type()),
        None => package.purl.clone(),
    }
}
