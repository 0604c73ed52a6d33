//! File modes as Go renders them (`os.FileMode.String()`), which is what a
//! structure test's `permissions` is compared with.
//!
//! Go writes one letter per set type or special bit, in the order
//! `dalTLDpSugct?` (or `-` when none is set), then the nine `rwx` bits. So a
//! setuid program is `urwxr-xr-x` and `/tmp` is `dtrwxrwxrwx`, not `ls`'s
//! `-rwsr-xr-x` and `drwxrwxrwt`.

/// The file-type bits of a unix `st_mode`.
pub const S_IFMT: u32 = 0o170_000;
/// A socket.
pub const S_IFSOCK: u32 = 0o140_000;
/// A symbolic link.
pub const S_IFLNK: u32 = 0o120_000;
/// A regular file.
pub const S_IFREG: u32 = 0o100_000;
/// A block device.
pub const S_IFBLK: u32 = 0o060_000;
/// A directory.
pub const S_IFDIR: u32 = 0o040_000;
/// A character device.
pub const S_IFCHR: u32 = 0o020_000;
/// A FIFO.
pub const S_IFIFO: u32 = 0o010_000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Go's type and special-bit letters, in the order Go writes them.
const GO_LETTERS: &str = "dalTLDpSugct?";

// Go's os.FileMode bits, for converting from the Docker API's path stat.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_NAMED_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR_DEVICE: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;
const GO_IRREGULAR: u32 = 1 << 19;

/// Renders a unix `st_mode` (type bits and permission bits) the way Go's
/// `os.FileMode.String()` renders the mode `os.Lstat` or a tar header gives
/// for it: `-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`, `urwxr-xr-x` (setuid),
/// `dgrwxr-xr-x` (setgid), `dtrwxrwxrwx` (sticky), `Dcrw-rw-rw-` (character
/// device), `Drw-rw----` (block device), `prw-r--r--` (FIFO), `Srwxr-xr-x`
/// (socket).
pub fn go_file_mode(st_mode: u32) -> String {
    let kind = st_mode & S_IFMT;
    let mut out = String::with_capacity(12);
    // Go's order: d a l T L D p S u g c t ?; a, l, T and ? never come from
    // a unix mode.
    if kind == S_IFDIR {
        out.push('d');
    }
    if kind == S_IFLNK {
        out.push('L');
    }
    if kind == S_IFBLK || kind == S_IFCHR {
        out.push('D');
    }
    if kind == S_IFIFO {
        out.push('p');
    }
    if kind == S_IFSOCK {
        out.push('S');
    }
    if st_mode & S_ISUID != 0 {
        out.push('u');
    }
    if st_mode & S_ISGID != 0 {
        out.push('g');
    }
    if kind == S_IFCHR {
        out.push('c');
    }
    if st_mode & S_ISVTX != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        out.push(if st_mode & (1 << (8 - i)) != 0 {
            c
        } else {
            '-'
        });
    }
    out
}

/// Converts a Go `os.FileMode` (as the Docker API's container path stat
/// reports it) to a unix `st_mode`, for [`crate::FileStat::mode`].
pub fn st_mode_from_go(go_mode: u32) -> u32 {
    let kind = if go_mode & GO_DIR != 0 {
        S_IFDIR
    } else if go_mode & GO_SYMLINK != 0 {
        S_IFLNK
    } else if go_mode & GO_DEVICE != 0 {
        if go_mode & GO_CHAR_DEVICE != 0 {
            S_IFCHR
        } else {
            S_IFBLK
        }
    } else if go_mode & GO_NAMED_PIPE != 0 {
        S_IFIFO
    } else if go_mode & GO_SOCKET != 0 {
        S_IFSOCK
    } else if go_mode & GO_IRREGULAR != 0 {
        0
    } else {
        S_IFREG
    };
    let mut mode = kind | (go_mode & 0o777);
    if go_mode & GO_SETUID != 0 {
        mode |= S_ISUID;
    }
    if go_mode & GO_SETGID != 0 {
        mode |= S_ISGID;
    }
    if go_mode & GO_STICKY != 0 {
        mode |= S_ISVTX;
    }
    mode
}

/// Whether `text` is something Go's `FileMode.String()` can produce: `-` or
/// some of the letters `dalTLDpSugct?` in that order, then `rwx` bits.
pub(crate) fn is_go_mode_string(text: &str) -> bool {
    if !text.is_ascii() || text.len() < 10 {
        return false;
    }
    let (letters, bits) = text.split_at(text.len() - 9);
    let bits_ok = bits
        .bytes()
        .zip("rwxrwxrwx".bytes())
        .all(|(b, want)| b == b'-' || b == want);
    let letters_ok = letters == "-" || {
        let mut rest = GO_LETTERS;
        letters.chars().all(|c| match rest.find(c) {
            Some(i) => {
                rest = &rest[i + 1..];
                true
            }
            None => false,
        })
    };
    bits_ok && letters_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_go() {
        let cases = [
            (S_IFREG | 0o644, "-rw-r--r--"),
            (S_IFREG | 0o755, "-rwxr-xr-x"),
            (S_IFREG, "----------"),
            (S_IFREG | 0o777, "-rwxrwxrwx"),
            (S_IFDIR | 0o755, "drwxr-xr-x"),
            (S_IFLNK | 0o777, "Lrwxrwxrwx"),
            (S_IFREG | S_ISUID | 0o755, "urwxr-xr-x"),
            (S_IFREG | S_ISGID | 0o755, "grwxr-xr-x"),
            (S_IFREG | S_ISUID | S_ISGID | 0o4755, "ugrwxr-xr-x"),
            (S_IFDIR | S_ISVTX | 0o777, "dtrwxrwxrwx"),
            (S_IFDIR | S_ISGID | 0o2775, "dgrwxrwxr-x"),
            (S_IFCHR | 0o666, "Dcrw-rw-rw-"),
            (S_IFBLK | 0o660, "Drw-rw----"),
            (S_IFIFO | 0o644, "prw-r--r--"),
            (S_IFSOCK | 0o755, "Srwxr-xr-x"),
            // Permission bits alone (a tar header without type bits).
            (0o640, "-rw-r-----"),
        ];
        for (mode, want) in cases {
            assert_eq!(go_file_mode(mode), want, "mode {mode:o}");
        }
    }

    #[test]
    fn converts_go_modes_to_st_mode() {
        assert_eq!(st_mode_from_go(0o644), S_IFREG | 0o644);
        assert_eq!(st_mode_from_go(GO_DIR | 0o755), S_IFDIR | 0o755);
        assert_eq!(st_mode_from_go(GO_SYMLINK | 0o777), S_IFLNK | 0o777);
        assert_eq!(
            st_mode_from_go(GO_DEVICE | GO_CHAR_DEVICE | 0o666),
            S_IFCHR | 0o666
        );
        assert_eq!(st_mode_from_go(GO_DEVICE | 0o660), S_IFBLK | 0o660);
        assert_eq!(
            go_file_mode(st_mode_from_go(GO_DIR | GO_STICKY | 0o777)),
            "dtrwxrwxrwx"
        );
        assert_eq!(
            go_file_mode(st_mode_from_go(GO_SETUID | GO_SETGID | 0o755)),
            "ugrwxr-xr-x"
        );
        assert_eq!(
            go_file_mode(st_mode_from_go(GO_NAMED_PIPE | 0o600)),
            "prw-------"
        );
        assert_eq!(
            go_file_mode(st_mode_from_go(GO_SOCKET | 0o755)),
            "Srwxr-xr-x"
        );
    }

    #[test]
    fn recognises_go_mode_strings() {
        for good in [
            "-rw-r--r--",
            "drwxr-xr-x",
            "Lrwxrwxrwx",
            "urwxr-xr-x",
            "dtrwxrwxrwx",
            "Dcrw-rw-rw-",
            "----------",
        ] {
            assert!(is_go_mode_string(good), "{good}");
        }
        for bad in [
            "-rwsr-xr-x",
            "drwxrwxrwt",
            "rw-r--r--",
            "0644",
            "tdrwxrwxrwx",
            "ddrwxrwxrwx",
            "-rw-r--r--x",
            "é-rw-r--r-",
            "",
        ] {
            assert!(!is_go_mode_string(bad), "{bad}");
        }
    }
}
