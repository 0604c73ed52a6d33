//! Wording shared by every message strata writes.

/// `n` and the noun, singular or plural as `n` needs: `1 image`,
/// `2 images`, `0 images`. Nouns ending in a consonant and `y` take
/// `ies` (`1 entry`, `2 entries`); every other noun takes `s`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.strip_suffix('y').filter(|stem| {
        stem.chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphabetic() && !"aeiou".contains(c))
    });
    match consonant_y {
        Some(stem) => format!("{n} {stem}ies"),
        None => format!("{n} {noun}s"),
    }
}

/// The first `max` items joined by commas, then how many more there are:
/// `a, b, c and 2 more`.
pub fn list_some(items: &[&str], max: usize) -> String {
    let shown = items[..items.len().min(max)].join(", ");
    match items.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Collapses every run of whitespace (including newlines) to one space and
/// trims both ends; control characters are dropped.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_control() {
            continue;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{count, list_some};

    #[test]
    fn long_lists_are_cut_with_a_count() {
        assert_eq!(list_some(&["a", "b"], 5), "a, b");
        assert_eq!(list_some(&["a", "b", "c"], 2), "a, b and 1 more");
        assert_eq!(list_some(&[], 2), "");
    }

    #[test]
    fn one_is_singular_every_other_count_is_plural() {
        assert_eq!(count(1, "changed file"), "1 changed file");
        assert_eq!(count(0, "changed file"), "0 changed files");
        assert_eq!(count(2, "image"), "2 images");
        assert_eq!(count(3, "entry"), "3 entries");
        assert_eq!(count(3, "day"), "3 days");
        assert_eq!(count(1, "entry"), "1 entry");
    }
}
