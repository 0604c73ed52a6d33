//! File names derived from image references.

/// Longest stem produced, in bytes; leaves room for suffixes such as
/// `.basic-tests.log` under the usual 255-byte file-name limit.
const MAX_STEM: usize = 200;

/// Turns an image reference into a safe file-name stem, one stem per
/// reference: two references never share a log, artifact or wiki page.
///
/// The separators of a reference become characters no reference holds
/// elsewhere: `/` becomes `+` and `:` becomes `=` (`@` stays), so the stem
/// reads like the reference (the layout of `logs/<stem>.build.log`,
/// `manifests/<stem>.md`, `artifacts/<stem>.yaml` and the wiki pages), e.g.
/// `ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234` →
/// `ghcr.io+ucsd-ets+scipy-ml-notebook=2023.2-abc1234`, and `a/b-c:1` and
/// `a/b:c-1` keep apart (`a+b-c=1`, `a+b=c-1`).
///
/// Every other character outside `[A-Za-z0-9._-]`, and any character that
/// would make the name unsafe (a dot after a dot, so never `..`; a leading
/// dot or dash, so no hidden file and nothing that looks like an option; a
/// trailing dot), is written `~` and its UTF-8 bytes in hex (`~2E`), which
/// keeps the mapping one-to-one; the empty reference is `~`. Stems longer
/// than 200 bytes are cut and end with a 64-bit hash of the whole reference,
/// so distinct long references keep distinct stems.
pub fn ref_file_stem(reference: &str) -> String {
    let mut stem = String::with_capacity(reference.len());
    let mut chars = reference.chars().peekable();
    while let Some(c) = chars.next() {
        let first = stem.is_empty();
        let last = chars.peek().is_none();
        match c {
            '/' => stem.push('+'),
            ':' => stem.push('='),
            '@' if !first => stem.push('@'),
            '-' if !first => stem.push('-'),
            '.' if !first && !last && !stem.ends_with('.') => stem.push('.'),
            c if c.is_ascii_alphanumeric() || c == '_' => stem.push(c),
            c => {
                let mut bytes = [0; 4];
                for b in c.encode_utf8(&mut bytes).bytes() {
                    stem.push_str(&format!("~{b:02X}"));
                }
            }
        }
    }
    if stem.len() > MAX_STEM {
        let hash = format!("{:016x}", fnv1a(reference.as_bytes()));
        // Cut at a char boundary (all characters are ASCII here) that does
        // not split an escape or end in a dot.
        stem.truncate(MAX_STEM - hash.len() - 1);
        while stem.ends_with('.') || stem[stem.len().saturating_sub(2)..].contains('~') {
            stem.pop();
        }
        stem.push('-');
        stem.push_str(&hash);
    }
    if stem.is_empty() {
        stem.push('~');
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
            stem.chars().all(|c| c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '-' | '+' | '=' | '@' | '~')),
            "{stem}"
        );
    }

    #[test]
    fn design_example() {
        assert_eq!(
            ref_file_stem("ghcr.io/ucsd-ets/scipy-ml-notebook:2023.2-abc1234"),
            "ghcr.io+ucsd-ets+scipy-ml-notebook=2023.2-abc1234"
        );
        assert_eq!(
            ref_file_stem("localhost:5000/a/b:1.0"),
            "localhost=5000+a+b=1.0"
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
        assert_eq!(ref_file_stem("../../x"), "~2E.+.~2E+x");
        assert_eq!(ref_file_stem("a/b:c@sha256:.."), "a+b=c@sha256=.~2E");
        assert_eq!(ref_file_stem(".."), "~2E~2E");
        assert_eq!(ref_file_stem(""), "~");
        assert_eq!(ref_file_stem("-rf"), "~2Drf");
        assert_eq!(ref_file_stem("a\0b\nc d\\e"), "a~00b~0Ac~20d~5Ce");
        assert_eq!(ref_file_stem("a/b@sha256:0123abcd"), "a+b@sha256=0123abcd");
    }

    /// The defect this mapping fixes: references that differ only in where
    /// their separators are wrote one file.
    #[test]
    fn distinct_references_get_distinct_stems() {
        assert_ne!(ref_file_stem("a/b-c:1"), ref_file_stem("a/b:c-1"));
        let alphabet = ['a', '-', '.', '_', '/', ':', '@', '+', '=', '~', '2', 'E'];
        let mut seen = std::collections::HashMap::new();
        // Every string of up to four characters over an alphabet holding
        // every separator, escape and the characters of an escape.
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for w in &words {
            let stem = ref_file_stem(w);
            assert_safe(&stem);
            if let Some(other) = seen.insert(stem.clone(), w.clone()) {
                panic!("{other:?} and {w:?} both map to {stem:?}");
            }
        }
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
