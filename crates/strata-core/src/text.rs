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

#[cfg(test)]
mod tests {
    use super::count;

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
