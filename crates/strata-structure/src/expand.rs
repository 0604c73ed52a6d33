//! `$VAR` substitution exactly as Go's `os.Expand` does it, which CST applies
//! to a command test's command and args, a file-existence test's path and
//! environment values.
//!
//! `$NAME` takes the longest run of letters, digits and `_`; `${NAME}` takes
//! everything up to `}`; `$` followed by one of `*#$@!?-` or a digit names
//! that one character. Unknown names become empty text. A `$` that starts
//! no name (`$ `, `$/`, a final `$`) stays; bad braces (`${}`, an unclosed
//! `${`) are dropped.

use std::collections::HashMap;

/// `text` with every variable replaced by its value in `env` (empty when
/// unset).
pub(crate) fn expand(text: &str, env: &HashMap<String, String>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut literal_from = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&text[literal_from..j]);
            let (name, width) = shell_name(&text[j + 1..]);
            if name.is_empty() {
                if width == 0 {
                    // Valid syntax, but no name: keep the dollar.
                    out.push('$');
                }
                // Otherwise bad syntax: the characters are eaten.
            } else {
                out.push_str(env.get(name).map(String::as_str).unwrap_or(""));
            }
            j += width;
            literal_from = j + 1;
        }
        j += 1;
    }
    out.push_str(&text[literal_from.min(text.len())..]);
    out
}

fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// The variable name at the start of `s` (which follows a `$`) and how many
/// bytes it spans; an empty name with a width means bad syntax to drop.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    // `expand` only calls this with at least one byte after the `$`.
    if b.is_empty() {
        return ("", 0);
    }
    if b[0] == b'{' {
        if b.len() > 2 && is_special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match b.iter().skip(1).position(|&c| c == b'}') {
            Some(0) => ("", 2),
            Some(i) => (&s[1..=i], i + 2),
            None => ("", 1),
        };
    }
    if is_special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b.iter().take_while(|&&c| is_name_char(c)).count();
    (&s[..n], n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        [("HOME", "/root"), ("PATH", "/usr/bin:/bin"), ("A_1", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_like_go_os_expand() {
        let cases = [
            ("plain", "plain"),
            ("$HOME", "/root"),
            ("${HOME}/x", "/root/x"),
            ("$HOME/x", "/root/x"),
            ("$HOMEx", ""),
            ("a$A_1-b", "ax-b"),
            ("$UNSET.", "."),
            ("echo $PATH", "echo /usr/bin:/bin"),
            ("cost: 5$", "cost: 5$"),
            ("$ x", "$ x"),
            ("a$/b", "a$/b"),
            ("$$", ""),
            ("$1x", "x"),
            ("${}x", "x"),
            ("${HOME", "HOME"),
            ("${#}", ""),
            ("naïve $HOME é", "naïve /root é"),
            ("${ünï}", ""),
        ];
        for (text, want) in cases {
            assert_eq!(expand(text, &env()), want, "{text:?}");
        }
    }
}
