//! Property tests of `strata_core::reference` (strata-core itself carries the
//! example-based tests).

use proptest::prelude::*;
use strata_core::reference::{ImageRef, Tag};

fn valid_tag(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphanumeric() || f == '_')
        && s.len() <= 128
        && c.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

proptest! {
    #[test]
    fn sanitize_yields_a_valid_tag_or_none(s in any::<String>()) {
        if let Some(t) = Tag::sanitize(&s) {
            prop_assert!(valid_tag(t.as_str()), "{:?} -> {:?}", s, t);
            prop_assert_eq!(t.as_str().parse::<Tag>().ok(), Some(t.clone()));
        } else {
            // None only when nothing usable is in the input.
            prop_assert!(!s.chars().any(|c| c.is_ascii_alphanumeric() || c == '_'), "{:?}", s);
        }
    }

    #[test]
    fn sanitize_keeps_valid_tags(s in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}") {
        prop_assert_eq!(Tag::sanitize(&s).map(|t| t.to_string()), Some(s));
    }

    #[test]
    fn refs_round_trip(
        host in prop::option::of("(localhost|[a-z]{1,8}\\.[a-z]{2,3})(:[0-9]{1,5})?"),
        path in "[a-z0-9]{1,6}((\\.|_|__|-+)[a-z0-9]{1,6}){0,2}(/[a-z0-9]{1,6}){0,2}",
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
    ) {
        let s = match &host { Some(h) => format!("{h}/{path}:{tag}"), None => format!("org/{path}:{tag}") };
        let r: ImageRef = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        prop_assert_eq!(r.tag().map(|t| t.as_str()), Some(tag.as_str()));
        let again: ImageRef = r.to_string().parse().map_err(|e| TestCaseError::fail(format!("{r}: {e}")))?;
        prop_assert_eq!(again, r);
    }
}
