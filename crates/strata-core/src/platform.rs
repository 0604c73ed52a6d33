//! Target platforms: `os/arch[/variant]` as Docker names them
//! (`linux/amd64`, `linux/arm64`, `linux/arm/v7`), which images a stack
//! is built for, and the per-platform tag suffix.

use crate::spec::{ImageSpec, Spec};
use std::collections::BTreeMap;
use std::fmt;

/// A platform an image is built for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, …
    pub arch: String,
    /// `v7`, `v8`, … when given.
    pub variant: Option<String>,
}

/// Why a platform cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a platform: write os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7"
)]
pub struct PlatformError(pub String);

impl std::str::FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Platform, PlatformError> {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if part(os) && part(arch) => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if part(os) && part(arch) && part(variant) => Ok(Platform {
                os: os.to_string(),
                arch: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(PlatformError(text.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Whether the platforms `a` and `b` name the same image: the same os and
/// architecture, and the same variant where both give one, as registries
/// and engines match them (an arm64 image's config says `linux/arm64/v8`
/// where a build asks for `linux/arm64`). Text that is not a platform
/// matches only itself.
pub fn same(a: &str, b: &str) -> bool {
    match (a.parse::<Platform>(), b.parse::<Platform>()) {
        (Ok(a), Ok(b)) => {
            a.os == b.os
                && a.arch == b.arch
                && (a.variant.is_none() || b.variant.is_none() || a.variant == b.variant)
        }
        _ => a == b,
    }
}

/// The entry of `by_platform` for `platform`: the one under `""` (an image
/// of one platform, whichever is asked), else the platform's own, else one
/// under the [`same`] platform written otherwise.
pub fn entry_for<'m, T>(by_platform: &'m BTreeMap<String, T>, platform: &str) -> Option<&'m T> {
    by_platform
        .get("")
        .or_else(|| by_platform.get(platform))
        .or_else(|| {
            by_platform
                .iter()
                .find(|(key, _)| !key.is_empty() && same(key, platform))
                .map(|(_, value)| value)
        })
}

impl Platform {
    /// What a tag of this platform's image ends in: `-linux-arm64`. Such
    /// tags hold one platform's image; the run's own tags name the index.
    pub fn tag_suffix(&self) -> String {
        format!("-{}", self.to_string().replace('/', "-"))
    }
}

/// The platforms `image` is built for, as written: its own `platforms:`,
/// else the spec's; empty when neither declares any (the engine's own).
pub fn declared<'s>(spec: &'s Spec, image: &'s ImageSpec) -> Vec<&'s str> {
    let own: Vec<&str> = image.platforms.iter().map(|p| p.value.as_str()).collect();
    if own.is_empty() {
        spec.platforms.iter().map(|p| p.value.as_str()).collect()
    } else {
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_and_print_as_docker_writes_them() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(p.arch, "arm64");
        assert_eq!(p.to_string(), "linux/arm64");
        assert_eq!(p.tag_suffix(), "-linux-arm64");
        let v: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(v.tag_suffix(), "-linux-arm-v7");
        for bad in [
            "linux",
            "linux/",
            "Linux/amd64",
            "linux/amd64/v8/x",
            "linux amd64",
            "",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn platforms_match_as_registries_match_them() {
        assert!(same("linux/arm64", "linux/arm64/v8"));
        assert!(same("linux/arm64/v8", "linux/arm64"));
        assert!(!same("linux/arm/v6", "linux/arm/v7"));
        assert!(!same("linux/arm64", "linux/amd64"));
        assert!(!same("linux/amd64", "windows/amd64"));
        let by_platform = BTreeMap::from([
            ("linux/amd64".to_string(), 1),
            ("linux/arm64/v8".to_string(), 2),
        ]);
        assert_eq!(entry_for(&by_platform, "linux/arm64"), Some(&2));
        assert_eq!(entry_for(&by_platform, "linux/amd64"), Some(&1));
        assert_eq!(entry_for(&by_platform, "linux/s390x"), None);
        let any = BTreeMap::from([(String::new(), 3)]);
        assert_eq!(entry_for(&any, "linux/s390x"), Some(&3));
    }

    #[test]
    fn an_image_without_platforms_takes_the_specs() {
        let spec = crate::spec::parse(
            "platforms: [linux/amd64, linux/arm64]\nimages:\n  a: {image_name: o/a}\n  b: {image_name: o/b, depend_on: a, platforms: [linux/arm64]}\ntag: {prefix: '1'}\n",
            "spec.yml",
        )
        .spec
        .unwrap();
        assert_eq!(
            declared(&spec, spec.image("a").unwrap()),
            ["linux/amd64", "linux/arm64"]
        );
        assert_eq!(declared(&spec, spec.image("b").unwrap()), ["linux/arm64"]);
    }
}
