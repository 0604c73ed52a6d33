//! File names derived from image references.

/// Longest stem produced, in bytes; leaves room for suffixes such as
/// `.basic-tests.log` under the usual 255-byte file-name limit.
const MAX_STEM: usize = 200;

/// Turns an image reference into a safe file-name stem.
///
/// `/`, `:` and `@` become `-` (the layout of `logs/<stem>.build.log`,
/// `manifests/<stem>.md`, `artifacts/<stem>.yaml` and the wiki pages), e.g.
/// `ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234` →
/// `ghcr.io-ucsd-ets-scipy-ml-notebook-2023.2-abc1234`.
///
/// Any other character outside `[A-Za-z0-9._-]` becomes `_`. Runs of dots are
/// reduced to one (never `..`), leading dots and dashes and trailing dots are
/// removed (no hidden files, nothing that looks like an option, no `..` once a
/// suffix is added), and the result is never empty (`_`). Stems longer than 200
/// bytes are cut and end with a hash of the whole reference, so distinct long
/// references keep distinct stems.
pub fn ref_file_stem(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for c in reference.chars() {
        let mapped = match c {
            '/' | ':' | '@' => '-',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            '.' => {
                if out.ends_with('.') {
                    continue;
                }
                '.'
            }
            _ => '_',
        };
        out.push(mapped);
    }
    let trimmed = out.trim_start_matches(['.', '-']).trim_end_matches('.');
    let mut stem = trimmed.to_string();
    if stem.len() > MAX_STEM {
        let hash = format!("{:016x}", fnv1a(reference.as_bytes()));
        // All characters are ASCII here, so any byte index is a char boundary.
        stem.truncate(MAX_STEM - hash.len() - 1);
        let keep = stem.trim_end_matches('.').len();
        stem.truncate(keep);
        stem.push('-');
        stem.push_str(&hash);
    }
    if stem.is_empty() {
        stem.push('_');
    }
    stem
}

/// 64-bit FNV-1a: a stable, dependency-free hash for long-stem suffixes.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_safe(stem: &str) {
        assert!(!stem.is_empty());
        assert!(!stem.contains(".."), "{stem}");
        assert!(!stem.starts_with('.') && !stem.starts_with('-'), "{stem}");
        assert!(!stem.ends_with('.'), "{stem}");
        assert!(stem.len() <= MAX_STEM, "{stem}");
        assert!(
            stem.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "{stem}"
        );
    }

    #[test]
    fn design_example() {
        assert_eq!(
            ref_file_stem("ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234"),
            "ghcr.io-ucsd-ets-scipy-ml-notebook-2023.2-abc1234"
        );
        assert_eq!(
            ref_file_stem("localhost:5000/a/b:1.0"),
            "localhost-5000-a-b-1.0"
        );
    }

    #[test]
    fn hostile_refs() {
        for r in [
            "../../x",
            "a/b:c@sha256:..",
            "..",
            ".",
            "",
            "/",
            "-rf",
            "x/../../../etc/passwd",
            "a\0b\nc d\\e",
            "ünïcødé/ímage:tag",
            "x.",
            "....",
        ] {
            assert_safe(&ref_file_stem(r));
        }
        assert_eq!(ref_file_stem("../../x"), "x");
        assert_eq!(ref_file_stem("a/b:c@sha256:.."), "a-b-c-sha256-");
        assert_eq!(ref_file_stem(".."), "_");
        assert_eq!(ref_file_stem(""), "_");
        assert_eq!(ref_file_stem("-rf"), "rf");
        assert_eq!(ref_file_stem("a\0b\nc d\\e"), "a_b_c_d_e");
        assert_eq!(ref_file_stem("a/b@sha256:0123abcd"), "a-b-sha256-0123abcd");
    }

    #[test]
    fn long_refs_stay_distinct() {
        let a = format!("registry.example/{}:a", "n".repeat(400));
        let b = format!("registry.example/{}:b", "n".repeat(400));
        let (sa, sb) = (ref_file_stem(&a), ref_file_stem(&b));
        assert_safe(&sa);
        assert_safe(&sb);
        assert_ne!(sa, sb);
        assert_eq!(sa, ref_file_stem(&a));
    }
}
