//! The values a file holds (lists, strings, patterns, commands, booleans,
//! numbers), each read with its type checked at its position.

use super::*;

impl Reader<'_> {
    /// The items of a list; nothing (null) is no items.
    pub(super) fn list<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        expected: &str,
    ) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ if node.is_null() => None,
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be {expected}, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A scalar as text; nothing (null) is `None`.
    pub(super) fn string(&mut self, node: &Node, key: &str, what: &str) -> Option<String> {
        match &node.value {
            _ if node.is_null() => None,
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!("'{key}' in {what} must be a string, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A list of strings with their positions; nothing (null) is `None`.
    pub(super) fn located_strings(
        &mut self,
        node: &Node,
        key: &str,
        what: &str,
    ) -> Option<Vec<(String, Pos)>> {
        let items = self.list(node, &format!("'{key}' in {what}"), "a list of strings")?;
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                _ if item.is_null() => out.push((String::new(), item.pos)),
                Value::Scalar { text, .. } => out.push((text.clone(), item.pos)),
                _ => self.error(
                    item.pos,
                    format!(
                        "items of '{key}' in {what} must be strings, found {}",
                        item.kind()
                    ),
                    None,
                ),
            }
        }
        Some(out)
    }

    pub(super) fn strings(&mut self, node: &Node, key: &str, what: &str) -> Vec<String> {
        self.optional_strings(node, key, what).unwrap_or_default()
    }

    /// A list that, when present, is compared whole (`entrypoint`, `cmd`):
    /// absent or null is `None`, `[]` is an empty list.
    pub(super) fn optional_strings(
        &mut self,
        node: &Node,
        key: &str,
        what: &str,
    ) -> Option<Vec<String>> {
        self.located_strings(node, key, what)
            .map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    /// Strings that CST refuses when empty (ports and volumes).
    pub(super) fn non_empty_strings(&mut self, node: &Node, key: &str, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (text, pos) in self.located_strings(node, key, what).unwrap_or_default() {
            if text.is_empty() {
                self.error(pos, format!("an item of '{key}' in {what} is empty"), None);
            } else {
                out.push(text);
            }
        }
        out
    }

    /// A list of regular expressions, each compiled.
    pub(super) fn patterns(&mut self, node: &Node, key: &str, what: &str) -> Vec<Pattern> {
        let mut out = Vec::new();
        for (text, pos) in self.located_strings(node, key, what).unwrap_or_default() {
            match Pattern::new(&text) {
                Ok(p) => out.push(p),
                Err(e) => self.error(
                    pos,
                    format!("'{text}' in '{key}' of {what} is not a valid regular expression: {e}"),
                    Some("the syntax is Go's (RE2); escape . * + ? ( ) [ ] { } | \\ with a backslash to match them literally".into()),
                ),
            }
        }
        out
    }

    /// `setup`/`teardown`: a list of commands, each a non-empty argv list.
    pub(super) fn commands(&mut self, node: &Node, key: &str, what: &str) -> Vec<Vec<String>> {
        let Some(items) = self.list(node, &format!("'{key}' in {what}"), "a list of commands")
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            if !matches!(item.value, Value::Seq(_)) {
                self.error(
                    item.pos,
                    format!(
                        "each command of '{key}' in {what} must be a list (program and arguments), found {}",
                        item.kind()
                    ),
                    Some(format!("write {key}: [[\"sh\", \"-c\", \"...\"]]")),
                );
                continue;
            }
            let argv = self.strings(item, key, what);
            if argv.is_empty() {
                self.error(
                    item.pos,
                    format!("a command of '{key}' in {what} is empty"),
                    Some("remove the empty command, or name the program to run".into()),
                );
                continue;
            }
            out.push(argv);
        }
        out
    }

    /// A YAML 1.1 boolean (what CST's YAML library reads): true/false,
    /// yes/no, on/off, y/n, in the usual capitalisations, unquoted.
    pub(super) fn boolean(&mut self, node: &Node, key: &str, what: &str) -> Option<bool> {
        let value = match &node.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y"
                | "Y" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
                | "N" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if value.is_none() {
            self.error(
                node.pos,
                format!(
                    "'{key}' in {what} must be true or false, found {}",
                    describe(node)
                ),
                None,
            );
        }
        value
    }

    /// An unquoted integer.
    pub(super) fn integer(&mut self, node: &Node, key: &str, what: &str) -> Option<i64> {
        let value = match &node.value {
            Value::Scalar { text, plain: true } => text.parse::<i64>().ok(),
            _ => None,
        };
        if value.is_none() {
            self.error(
                node.pos,
                format!(
                    "'{key}' in {what} must be an integer, found {}",
                    describe(node)
                ),
                None,
            );
        }
        value
    }

    /// `uid`/`gid`: a non-negative id, or -1 (CST's "not checked").
    pub(super) fn owner_id(&mut self, node: &Node, key: &str, what: &str) -> Option<u64> {
        let n = self.integer(node, key, what)?;
        if n == -1 {
            return None;
        }
        match u64::try_from(n) {
            Ok(id) => Some(id),
            Err(_) => {
                self.error(
                    node.pos,
                    format!("'{key}' in {what} is {n}; ids are 0 or more"),
                    Some(format!("leave '{key}' out to not check it")),
                );
                None
            }
        }
    }
}
