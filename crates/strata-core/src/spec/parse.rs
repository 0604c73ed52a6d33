//! Reading a spec from text: the keys each entry may have, and a reader
//! that checks each entry's shape as it builds the model.

use super::*;
use crate::diag::unknown_key_help;
use crate::yaml::{self, Node, Value};

const TOP_KEYS: &[&str] = &[
    "root",
    "images",
    "tag",
    "plans",
    "tags",
    "all_info_cmds",
    "manifests",
    "platforms",
    "signing",
    "gates",
];
const IMAGE_KEYS: &[&str] = &[
    "image_name",
    "depend_on",
    "build_args",
    "dbuild_env",
    "skip_plans",
    "info_cmds",
    "manifests",
    "integration_tests",
    "basic_tests",
    "prune",
    "prepull",
    "inherit_tests",
    "timeouts",
    "max_size",
    "platforms",
    "gates",
];
const GATE_KEYS: &[&str] = &["command", "mode", "timeout"];
const TAG_KEYS: &[&str] = &["prefix"];
const SIGNING_KEYS: &[&str] = &["key"];
const PLAN_KEYS: &[&str] = &["tag_prefix", "tag_stable_postfix"];
const INFO_CMD_KEYS: &[&str] = &["description", "command"];

/// Finds git merge-conflict markers; a conflicted file is never parsed, since
/// YAML would read half of each side.
pub fn conflict_markers(text: &str, file: &str) -> Vec<Diagnostic> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let marker = |m: &str| {
                line.strip_prefix(m)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
            };
            marker("<<<<<<<") || marker("=======") || marker(">>>>>>>") || marker("|||||||")
        })
        .map(|(i, line)| {
            Diagnostic::error(
                file,
                Some(Pos {
                    line: i + 1,
                    column: 1,
                }),
                format!(
                    "merge-conflict marker '{}'",
                    line.chars().take(7).collect::<String>()
                ),
            )
            .with_help(
                "resolve the merge conflict (keep one side, delete the markers) and commit again",
            )
        })
        .collect()
}

/// Reads a spec from `text`; `file` names it in diagnostics.
pub fn parse(text: &str, file: &str) -> Parsed {
    let markers = conflict_markers(text, file);
    if !markers.is_empty() {
        return Parsed {
            spec: None,
            diagnostics: markers,
        };
    }
    let root = match yaml::parse(text, file) {
        Ok(root) => root,
        Err(d) => {
            return Parsed {
                spec: None,
                diagnostics: vec![d],
            };
        }
    };
    let mut r = Reader {
        file,
        diags: Vec::new(),
    };
    let spec = r.spec(&root);
    r.diags.sort_by_key(|d| d.pos);
    Parsed {
        spec,
        diagnostics: r.diags,
    }
}

struct Reader<'a> {
    file: &'a str,
    diags: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>, help: Option<String>) {
        let mut d = Diagnostic::error(self.file, Some(pos), message);
        d.help = help;
        self.diags.push(d);
    }

    /// The entries of a mapping node, reporting unknown keys (with the
    /// closest known one) and non-scalar keys.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: Option<&[&str]>,
    ) -> Vec<(Located<String>, &'n Node)> {
        let Some(map) = node.as_map() else {
            if !node.is_null() {
                self.error(
                    node.pos,
                    format!(
                        "{what} must be a mapping (key: value), found {}",
                        node.kind()
                    ),
                    None,
                );
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let Some(key) = k.as_scalar() else {
                self.error(
                    k.pos,
                    format!("keys in {what} must be plain names, found {}", k.kind()),
                    None,
                );
                continue;
            };
            if let Some(known) = known {
                if !known.contains(&key) {
                    let mut d = Diagnostic::warning(
                        self.file,
                        Some(k.pos),
                        format!("unknown key '{key}' in {what}; it is ignored"),
                    );
                    d = d.with_help(unknown_key_help(key, known));
                    self.diags.push(d);
                    continue;
                }
            }
            out.push((
                Located {
                    value: key.to_string(),
                    pos: k.pos,
                },
                v,
            ));
        }
        out
    }

    fn text(&mut self, node: &Node, what: &str) -> Option<Located<String>> {
        match &node.value {
            Value::Scalar { text, .. } if !node.is_null() => Some(Located {
                value: text.clone(),
                pos: node.pos,
            }),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a single value, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A true/false flag. The pipeline strata replaces read a flag with
    /// Python's truthiness, and real specs hold values like
    /// `integration_tests: TORCH_AUD_VER` and `prepull: false -- uncomment
    /// to disable`: refusing them would leave whole commits unplannable, so
    /// they are read as that pipeline read them (any non-empty text is true;
    /// empty, `0` and `0.0` are false), with a warning quoting the value.
    fn flag(&mut self, node: &Node, what: &str) -> bool {
        let text = match &node.value {
            _ if node.is_null() => None,
            Value::Scalar { text, .. } => Some(text.as_str()),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be true or false, found {}", node.kind()),
                    Some("write true or false".into()),
                );
                return false;
            }
        };
        match text {
            Some("true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => true,
            Some("false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => false,
            other => {
                let read = other.is_some_and(|t| !t.is_empty() && t != "0" && t != "0.0");
                let shown = other.map_or_else(|| "empty".to_string(), |t| format!("'{t}'"));
                self.diags.push(
                    Diagnostic::warning(
                        self.file,
                        Some(node.pos),
                        format!(
                            "{what} is {shown}, not true or false: read as {read}, as the older pipeline read it ({})",
                            if read {
                                "any non-empty text is true"
                            } else {
                                "empty, 0 and 0.0 are false"
                            }
                        ),
                    )
                    .with_help("write true or false"),
                );
                read
            }
        }
    }

    /// A list of names; a single name is accepted as a one-item list.
    fn names(&mut self, node: &Node, what: &str) -> Vec<Located<String>> {
        match &node.value {
            _ if node.is_null() => Vec::new(),
            Value::Scalar { text, .. } => vec![Located {
                value: text.clone(),
                pos: node.pos,
            }],
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| self.text(i, &format!("each item of {what}")))
                .collect(),
            Value::Map(_) => {
                self.error(
                    node.pos,
                    format!("{what} must be a list of names, found a mapping"),
                    None,
                );
                Vec::new()
            }
        }
    }

    fn args(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in self.entries(node, what, None) {
            match &v.value {
                Value::Scalar { text, .. } if !v.is_null() => {
                    out.insert(k.value, text.clone());
                }
                _ => self.error(
                    v.pos,
                    format!(
                        "build arg '{}' in {what} must be a single value, found {}",
                        k.value,
                        v.kind()
                    ),
                    Some(format!("write it as text, e.g. {}: \"value\"", k.value)),
                ),
            }
        }
        out
    }

    fn spec(&mut self, root: &Node) -> Option<Spec> {
        if root.as_map().is_none() {
            self.error(
                root.pos,
                format!(
                    "a spec must be a mapping with an 'images' key, found {}",
                    root.kind()
                ),
                Some("see the spec.yml layout in strata's README".into()),
            );
            return None;
        }
        let mut roots = Vec::new();
        let mut platforms = Vec::new();
        let mut sign_key = None;
        let mut gates = Vec::new();
        let mut images = Vec::new();
        let mut tag_prefix: Option<Located<String>> = None;
        let mut plans: Option<Vec<PlanSpec>> = None;
        let mut info_cmds: Option<(Pos, BTreeMap<String, InfoCmd>)> = None;
        let mut legacy = false;
        let mut saw_images = false;
        for (key, value) in self.entries(root, "the spec", Some(TOP_KEYS)) {
            match key.value.as_str() {
                "root" => roots = self.names(value, "root"),
                "platforms" => platforms = self.names(value, "platforms"),
                "signing" => {
                    for (k, v) in self.entries(value, "signing", Some(SIGNING_KEYS)) {
                        if k.value == "key" {
                            sign_key = self.text(v, "signing.key");
                        }
                    }
                }
                "gates" => gates = self.gates(value, "gates"),
                "images" => {
                    saw_images = true;
                    for (k, v) in self.entries(value, "images", None) {
                        let image = self.image(k, v, &mut legacy);
                        images.push(image);
                    }
                }
                "tag" => {
                    for (k, v) in self.entries(value, "tag", Some(TAG_KEYS)) {
                        if k.value == "prefix" {
                            tag_prefix = self.text(v, "tag.prefix");
                        }
                    }
                    if tag_prefix.is_none() && value.as_map().is_some() {
                        self.error(
                            value.pos,
                            "tag has no prefix",
                            Some("add `prefix: \"2024.1\"` under tag".into()),
                        );
                    }
                }
                "plans" | "tags" => {
                    legacy = true;
                    if plans.is_some() {
                        self.error(
                            key.pos,
                            "both 'plans' and 'tags' declare plans",
                            Some("keep one of them".into()),
                        );
                    }
                    plans = Some(self.plans(value, &key.value));
                }
                "all_info_cmds" | "manifests" => {
                    legacy |= key.value == "manifests";
                    if info_cmds.is_some() {
                        self.error(
                            key.pos,
                            "both 'all_info_cmds' and 'manifests' define info commands",
                            Some("keep one of them".into()),
                        );
                    }
                    info_cmds = Some((key.pos, self.info_cmds(value, &key.value)));
                }
                _ => {}
            }
        }
        if !saw_images {
            self.error(
                root.pos,
                "the spec has no 'images' key",
                Some("list the stack's images under `images:`".into()),
            );
        }
        let plans = match (plans, tag_prefix) {
            (Some(plans), Some(prefix)) => {
                self.error(
                    prefix.pos,
                    "tag.prefix cannot be combined with plans",
                    Some("give each plan its tag_prefix, or remove the plans".into()),
                );
                plans
            }
            (Some(plans), None) => plans,
            (None, Some(prefix)) => vec![PlanSpec {
                name: Located {
                    value: DEFAULT_PLAN.to_string(),
                    pos: prefix.pos,
                },
                tag_prefix: prefix,
                stable_postfix: DEFAULT_STABLE_POSTFIX.to_string(),
            }],
            (None, None) => {
                self.error(
                    root.pos,
                    "the spec sets no tag prefix",
                    Some(
                        "add `tag: {prefix: \"2024.1\"}` (or `plans:` with a tag_prefix each)"
                            .into(),
                    ),
                );
                Vec::new()
            }
        };
        Some(Spec {
            file: self.file.to_string(),
            schema: if legacy {
                Schema::Legacy
            } else {
                Schema::Current
            },
            roots,
            images,
            plans,
            info_cmds: info_cmds.map(|(_, c)| c).unwrap_or_default(),
            platforms,
            sign_key,
            gates,
        })
    }

    fn image(&mut self, key: Located<String>, node: &Node, legacy: &mut bool) -> ImageSpec {
        let mut image = ImageSpec {
            key,
            image_name: None,
            depend_on: None,
            build_args: BTreeMap::new(),
            plan_args: BTreeMap::new(),
            skip_plans: Vec::new(),
            info_cmds: Vec::new(),
            integration_tests: false,
            basic_tests: true,
            prune: false,
            // The older pipeline pulls previous tags unless told not to.
            prepull: true,
            inherit_tests: true,
            timeouts: BTreeMap::new(),
            max_size: None,
            platforms: Vec::new(),
            gates: Vec::new(),
        };
        let name = image.key.value.clone();
        let what = |field: &str| format!("{field} of image '{name}'");
        let mut saw_info = false;
        let mut saw_name = false;
        for (k, v) in self.entries(node, &format!("image '{name}'"), Some(IMAGE_KEYS)) {
            match k.value.as_str() {
                "image_name" => {
                    saw_name = true;
                    image.image_name = self.text(v, &what("image_name"));
                }
                "depend_on" => {
                    // `depend_on: [parent]` occurs in the wild; one parent only.
                    let mut parents = self.names(v, &what("depend_on"));
                    if parents.len() > 1 {
                        self.error(v.pos, format!("image '{name}' names {} parents; an image is built FROM one parent", parents.len()), None);
                    }
                    image.depend_on = if parents.is_empty() {
                        None
                    } else {
                        Some(parents.swap_remove(0))
                    };
                }
                "build_args" => {
                    let args = self.args(v, &what("build_args"));
                    image.build_args.extend(args);
                }
                "dbuild_env" => {
                    *legacy = true;
                    for (plan, args) in self.entries(v, &what("dbuild_env"), None) {
                        let parsed = self.args(
                            args,
                            &format!("dbuild_env.{} of image '{name}'", plan.value),
                        );
                        if plan.value == "common" {
                            image.build_args.extend(parsed);
                        } else {
                            image.plan_args.insert(
                                plan.value,
                                Located {
                                    value: parsed,
                                    pos: plan.pos,
                                },
                            );
                        }
                    }
                }
                "skip_plans" => {
                    *legacy = true;
                    image.skip_plans = self.names(v, &what("skip_plans"));
                }
                "info_cmds" | "manifests" => {
                    if saw_info {
                        self.error(
                            k.pos,
                            format!("image '{name}' has both info_cmds and manifests"),
                            Some("keep one of them".into()),
                        );
                    }
                    saw_info = true;
                    image.info_cmds = self.names(v, &what(&k.value));
                }
                "integration_tests" => {
                    image.integration_tests = self.flag(v, &what("integration_tests"))
                }
                "basic_tests" => image.basic_tests = self.flag(v, &what("basic_tests")),
                "prune" => image.prune = self.flag(v, &what("prune")),
                "prepull" => image.prepull = self.flag(v, &what("prepull")),
                "inherit_tests" => image.inherit_tests = self.flag(v, &what("inherit_tests")),
                "platforms" => image.platforms = self.names(v, &what("platforms")),
                "gates" => image.gates = self.gates(v, &what("gates")),
                "timeouts" => image.timeouts = self.timeouts(v, &what("timeouts")),
                "max_size" => {
                    if let Some(text) = self.text(v, &what("max_size")) {
                        match crate::limits::parse_size(&text.value) {
                            Ok(bytes) => image.max_size = Some(bytes),
                            Err(e) => self.error(
                                text.pos,
                                format!("max_size of image '{name}': {e}"),
                                None,
                            ),
                        }
                    }
                }
                _ => {}
            }
        }
        if !saw_name && node.as_map().is_some() {
            self.error(
                image.key.pos,
                format!("image '{name}' has no image_name"),
                Some("add `image_name: registry.example.org/org/name` to it".into()),
            );
        }
        if node.is_null() {
            self.error(
                image.key.pos,
                format!("image '{name}' has no entries"),
                Some("give it at least an image_name".into()),
            );
        }
        image
    }

    /// `timeouts: {build: 4h, basic_tests: 45m}`: a limit per stage key.
    fn timeouts(&mut self, node: &Node, what: &str) -> BTreeMap<String, std::time::Duration> {
        let keys: Vec<&str> = crate::limits::stage_keys().collect();
        let mut out = BTreeMap::new();
        for (k, v) in self.entries(node, what, None) {
            let Some(stage) = crate::limits::stage_key(&k.value) else {
                self.error(
                    k.pos,
                    format!("'{}' in {what} is not a stage", k.value),
                    Some(unknown_key_help(&k.value, &keys)),
                );
                continue;
            };
            let Some(text) = self.text(v, &format!("{what}.{stage}")) else {
                continue;
            };
            match crate::limits::parse_duration(&text.value) {
                Ok(d) => {
                    out.insert(stage.to_string(), d);
                }
                Err(e) => self.error(text.pos, format!("{what}.{stage}: {e}"), None),
            }
        }
        out
    }

    fn plans(&mut self, node: &Node, what: &str) -> Vec<PlanSpec> {
        // `tags:` was written as a list of one-key mappings in early specs.
        let entries: Vec<(Located<String>, &Node)> = match &node.value {
            Value::Seq(items) => items
                .iter()
                .flat_map(|item| self.entries(item, what, None))
                .collect(),
            _ => self.entries(node, what, None),
        };
        let mut plans: Vec<PlanSpec> = Vec::new();
        for (name, body) in entries {
            if let Some(first) = plans.iter().find(|p| p.name.value == name.value) {
                let line = first.name.pos.line;
                self.error(
                    name.pos,
                    format!(
                        "plan '{}' is declared twice (first at line {line})",
                        name.value
                    ),
                    None,
                );
                continue;
            }
            let mut prefix = None;
            let mut postfix = DEFAULT_STABLE_POSTFIX.to_string();
            for (k, v) in self.entries(body, &format!("plan '{}'", name.value), Some(PLAN_KEYS)) {
                match k.value.as_str() {
                    "tag_prefix" => prefix = self.text(v, "tag_prefix"),
                    "tag_stable_postfix" => {
                        if let Some(p) = self.text(v, "tag_stable_postfix") {
                            postfix = p.value;
                        }
                    }
                    _ => {}
                }
            }
            match prefix {
                Some(tag_prefix) => plans.push(PlanSpec {
                    name,
                    tag_prefix,
                    stable_postfix: postfix,
                }),
                None => self.error(
                    name.pos,
                    format!("plan '{}' has no tag_prefix", name.value),
                    Some("add `tag_prefix: \"2024.1\"` to it".into()),
                ),
            }
        }
        if plans.is_empty() && !node.is_null() {
            self.error(node.pos, format!("'{what}' declares no usable plan"), None);
        }
        plans
    }

    /// `gates: {NAME: {command: CMD, mode: fail|warn, timeout: 10m}}`.
    fn gates(&mut self, node: &Node, what: &str) -> Vec<crate::gates::Gate> {
        use crate::gates::{DEFAULT_TIMEOUT, Gate, Mode};
        let mut out = Vec::new();
        for (name, body) in self.entries(node, what, None) {
            let at = format!("{what}.{}", name.value);
            // The name is part of its log's file name.
            let plain = name
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !plain || name.value.starts_with('.') {
                self.error(
                    name.pos,
                    format!("gate name '{}' in {what} is not a plain name", name.value),
                    Some("use letters, digits, '-', '_' and '.', e.g. `trivy-critical`".into()),
                );
                continue;
            }
            let mut command = None;
            let mut mode = Mode::Fail;
            let mut timeout = DEFAULT_TIMEOUT;
            for (k, v) in self.entries(body, &at, Some(GATE_KEYS)) {
                let Some(t) = self.text(v, &format!("{at}.{}", k.value)) else {
                    continue;
                };
                match k.value.as_str() {
                    "command" => command = Some(t.value),
                    "mode" => match t.value.as_str() {
                        "fail" => mode = Mode::Fail,
                        "warn" => mode = Mode::Warn,
                        other => self.error(
                            t.pos,
                            format!("{at}.mode is '{other}'"),
                            Some("write `mode: fail` (the default) or `mode: warn`".into()),
                        ),
                    },
                    _ => match crate::limits::parse_duration(&t.value) {
                        Ok(d) => timeout = d,
                        Err(e) => self.error(t.pos, format!("{at}.timeout: {e}"), None),
                    },
                }
            }
            match command {
                Some(command) => out.push(Gate {
                    name,
                    command,
                    mode,
                    timeout,
                }),
                None => self.error(
                    name.pos,
                    format!("gate '{}' has no command", name.value),
                    Some("add `command: <shell command>` to it, e.g. `trivy image --exit-code 1 {ref}`".into()),
                ),
            }
        }
        out
    }

    fn info_cmds(&mut self, node: &Node, what: &str) -> BTreeMap<String, InfoCmd> {
        let mut out = BTreeMap::new();
        for (key, body) in self.entries(node, what, None) {
            let mut description = None;
            let mut command = None;
            for (k, v) in self.entries(body, &format!("{what}.{}", key.value), Some(INFO_CMD_KEYS))
            {
                let t = self.text(v, &format!("{what}.{}.{}", key.value, k.value));
                match k.value.as_str() {
                    "description" => description = t,
                    _ => command = t,
                }
            }
            match command {
                Some(command) => {
                    out.insert(
                        key.value.clone(),
                        InfoCmd {
                            description: description
                                .map(|d| d.value)
                                .unwrap_or_else(|| key.value.clone()),
                            command: command.value,
                        },
                    );
                }
                None => self.error(
                    key.pos,
                    format!("info command '{}' has no command", key.value),
                    Some("add `command: <shell command>` to it".into()),
                ),
            }
        }
        out
    }
}
