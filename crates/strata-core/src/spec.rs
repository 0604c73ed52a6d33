//! The stack's spec (`images/spec.yml`): its model, and reading it from text.
//!
//! Both schemas found in real repositories are read into one model:
//! - current: `tag: {prefix}`, per image `build_args` and `info_cmds`, and
//!   top-level `all_info_cmds`;
//! - older: `plans:` (or `tags:`) of `{tag_prefix, tag_stable_postfix}`, per
//!   image `dbuild_env: {common: {...}, PLAN: {...}}` and `skip_plans`, and
//!   `manifests` where the current schema says `info_cmds`/`all_info_cmds`.
//!
//! Reading checks the shape of each entry; cross-entry rules (parents exist,
//! no cycles, names are valid) live in [`crate::validate`].

use crate::diag::{Diagnostic, Pos, unknown_key_help};
use crate::yaml::{self, Node, Value};
use std::collections::BTreeMap;

/// The plan name of a spec that declares no plans.
pub const DEFAULT_PLAN: &str = "default";
/// The stable postfix used when a plan names none.
pub const DEFAULT_STABLE_POSTFIX: &str = "-stable";

/// A value and where it was written. Equality ignores the position, so two
/// specs compare equal when they say the same thing.
#[derive(Debug, Clone, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub pos: Pos,
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// Which of the two spec schemas a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    /// `tag.prefix`, `build_args`, `info_cmds`.
    Current,
    /// `plans`/`tags`, `dbuild_env`, `skip_plans`, `manifests`.
    Legacy,
}

/// The whole stack as the spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The file the spec was read from, as shown in messages.
    pub file: String,
    /// The schema the file uses.
    pub schema: Schema,
    /// The declared roots (`root:`), if any; roots are otherwise inferred.
    pub roots: Vec<Located<String>>,
    /// The images, in the order the file lists them.
    pub images: Vec<ImageSpec>,
    /// The plans (tracks); a spec without plans has one, [`DEFAULT_PLAN`].
    pub plans: Vec<PlanSpec>,
    /// The info commands images may name, by key.
    pub info_cmds: BTreeMap<String, InfoCmd>,
    /// The platforms every image is built for (`platforms:`); empty: the
    /// engine's own.
    pub platforms: Vec<Located<String>>,
}

/// One image of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The image's key: also the name of its folder under `images/`.
    pub key: Located<String>,
    /// The repository the image is pushed to, without a tag.
    pub image_name: Option<Located<String>>,
    /// The parent image's key.
    pub depend_on: Option<Located<String>>,
    /// Build args for every plan (`build_args`, or `dbuild_env.common`).
    pub build_args: BTreeMap<String, String>,
    /// Build args per plan (`dbuild_env.<PLAN>`).
    pub plan_args: BTreeMap<String, Located<BTreeMap<String, String>>>,
    /// Plans this image is not built in.
    pub skip_plans: Vec<Located<String>>,
    /// Keys of the info commands run for this image's manifest.
    pub info_cmds: Vec<Located<String>>,
    /// Run `integration_tests/` after push.
    pub integration_tests: bool,
    /// Run the basic tests after build (default true).
    pub basic_tests: bool,
    /// Reclaim engine space after this image.
    pub prune: bool,
    /// The build may pull the previous published tag as cache (default
    /// true, as in the pipeline strata replaces).
    pub prepull: bool,
    /// The basic tests include every ancestor's `test/` (default true).
    pub inherit_tests: bool,
    /// Time limits per stage key (`timeouts: {build: 4h}`), over the
    /// defaults of [`crate::limits`].
    pub timeouts: BTreeMap<String, std::time::Duration>,
    /// The largest the image may be, in bytes (`max_size: 12GB`).
    pub max_size: Option<u64>,
    /// The platforms this image is built for, narrowing the spec's.
    pub platforms: Vec<Located<String>>,
}

impl ImageSpec {
    /// The image's key.
    pub fn name(&self) -> &str {
        &self.key.value
    }

    /// The parent's key, if any.
    pub fn parent(&self) -> Option<&str> {
        self.depend_on.as_ref().map(|d| d.value.as_str())
    }

    /// Whether the image is built in `plan`.
    pub fn in_plan(&self, plan: &str) -> bool {
        !self.skip_plans.iter().any(|p| p.value == plan)
    }
}

/// A plan: one track of the stack with its own tag prefix and args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSpec {
    /// The plan's name.
    pub name: Located<String>,
    /// Tags of this plan are `<tag_prefix>-<suffix>`.
    pub tag_prefix: Located<String>,
    /// The stable tag is `<tag_prefix><stable_postfix>`.
    pub stable_postfix: String,
}

impl PlanSpec {
    /// The plan's stable tag, e.g. `2023.2-stable`.
    pub fn stable_tag(&self) -> String {
        format!("{}{}", self.tag_prefix.value, self.stable_postfix)
    }
}

/// A command run inside an image to document it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InfoCmd {
    /// The section title in the manifest.
    pub description: String,
    /// The shell command.
    pub command: String,
}

impl Spec {
    /// The image with key `key`.
    pub fn image(&self, key: &str) -> Option<&ImageSpec> {
        self.images.iter().find(|i| i.name() == key)
    }

    /// The plan named `name`.
    pub fn plan(&self, name: &str) -> Option<&PlanSpec> {
        self.plans.iter().find(|p| p.name.value == name)
    }

    /// The keys of every image, in file order.
    pub fn image_keys(&self) -> impl Iterator<Item = &str> {
        self.images.iter().map(ImageSpec::name)
    }
}

/// What reading a spec gave: the spec (unless it could not be read at all)
/// and every problem found on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The spec, or `None` when the file is not a readable spec at all.
    pub spec: Option<Spec>,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

const TOP_KEYS: &[&str] = &[
    "root",
    "images",
    "tag",
    "plans",
    "tags",
    "all_info_cmds",
    "manifests",
    "platforms",
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
];
const TAG_KEYS: &[&str] = &["prefix"];
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

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = include_str!("../../../fixtures/specs/v2-2026.spec.yml");
    const LEGACY: &str = include_str!("../../../fixtures/specs/v1-2022.spec.yml");
    const TWO_PLANS: &str = include_str!("../../../fixtures/specs/v1-two-plans.spec.yml");

    fn ok(text: &str) -> Spec {
        let p = parse(text, "spec.yml");
        assert!(!p.has_errors(), "{:?}", p.diagnostics);
        p.spec.expect("a spec")
    }

    #[test]
    fn reads_limits_and_test_inheritance() {
        let s = ok("images:
  a:
    image_name: o/a
    inherit_tests: false
    timeouts: {build: 4h, basic-tests: 45m}
    max_size: 12GB
  b: {image_name: o/b}
tag: {prefix: '1'}
");
        let a = s.image("a").unwrap();
        assert!(!a.inherit_tests);
        assert_eq!(a.max_size, Some(12_000_000_000));
        assert_eq!(a.timeouts["build"].as_secs(), 4 * 3600);
        assert_eq!(a.timeouts["basic_tests"].as_secs(), 45 * 60);
        let b = s.image("b").unwrap();
        assert!(b.inherit_tests && b.timeouts.is_empty() && b.max_size.is_none());
    }

    #[test]
    fn bad_limits_name_the_line_and_what_to_write() {
        let p = parse(
            "images:
  a:
    image_name: o/a
    timeouts: {biuld: 4h, push: soon}
    max_size: huge
tag: {prefix: '1'}
",
            "spec.yml",
        );
        let errors: Vec<String> = p
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| {
                format!(
                    "{}: {} ({:?})",
                    d.pos.map_or(0, |p| p.line),
                    d.message,
                    d.help
                )
            })
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("4: 'biuld'") && errors[0].contains("did you mean 'build'"));
        assert!(errors[1].starts_with("4: timeouts of image 'a'.push: 'soon' is not a duration"));
        assert!(errors[2].starts_with("5: max_size of image 'a': 'huge' is not a size"));
    }

    #[test]
    fn reads_the_current_schema() {
        let s = ok(CURRENT);
        assert_eq!(s.schema, Schema::Current);
        assert_eq!(s.roots[0].value, "datascience-notebook");
        assert_eq!(
            s.image_keys().collect::<Vec<_>>(),
            [
                "datascience-notebook",
                "rstudio-notebook",
                "scipy-ml-notebook"
            ]
        );
        assert_eq!(s.plans.len(), 1);
        assert_eq!(s.plans[0].name.value, DEFAULT_PLAN);
        assert_eq!(s.plans[0].tag_prefix.value, "2026.3");
        let rstudio = s.image("rstudio-notebook").unwrap();
        assert_eq!(rstudio.parent(), Some("datascience-notebook"));
        // prepull is unset: true, as the older pipeline defaults it.
        assert!(rstudio.integration_tests && rstudio.prune && rstudio.prepull);
        let root = s.image("datascience-notebook").unwrap();
        assert_eq!(root.build_args["PY_VER_SHORT"], "3.11");
        assert_eq!(
            s.info_cmds["CUDA_VERSION"].command,
            r#"bash -c 'conda list | grep "cuda\|cudnn\|nccl"'"#
        );
    }

    #[test]
    fn reads_the_legacy_schema_with_plans() {
        let s = ok(TWO_PLANS);
        assert_eq!(s.schema, Schema::Legacy);
        let plans: Vec<_> = s
            .plans
            .iter()
            .map(|p| (p.name.value.as_str(), p.tag_prefix.value.as_str()))
            .collect();
        assert_eq!(plans, [("PYTHON39", "2021.3"), ("PYTHON38", "2021.2")]);
        let base = s.image("datahub-base-notebook").unwrap();
        assert_eq!(base.build_args["placeholder"], "test_XXX");
        assert_eq!(base.plan_args["PYTHON38"].value["PY_VER_SHORT"], "3.8");
        let scipy = s.image("scipy-ml-notebook").unwrap();
        assert!(!scipy.in_plan("PYTHON39") && scipy.in_plan("PYTHON38"));
        assert_eq!(s.info_cmds.len(), 5);
        let l = ok(LEGACY);
        assert_eq!(l.image("scipy-ml-notebook").unwrap().info_cmds.len(), 5);
        assert_eq!(l.plans[0].stable_tag(), "2023.1-stable");
    }

    #[test]
    fn scalars_are_read_as_written() {
        let s = ok(
            "images:\n  a:\n    image_name: x/a\n    build_args: {V: 3.10, N: 007, B: yes}\ntag:\n  prefix: 2023.10\n",
        );
        assert_eq!(s.plans[0].tag_prefix.value, "2023.10");
        let a = s.image("a").unwrap();
        assert_eq!(a.build_args["V"], "3.10");
        assert_eq!(a.build_args["N"], "007");
        assert_eq!(a.build_args["B"], "yes");
    }

    #[test]
    fn tags_as_a_list_of_plans() {
        let s = ok(
            "images:\n  a: {image_name: x/a}\ntags:\n  - P38:\n      tag_prefix: 2021.2\n  - P39:\n      tag_prefix: 2021.3\n",
        );
        assert_eq!(
            s.plans
                .iter()
                .map(|p| p.name.value.as_str())
                .collect::<Vec<_>>(),
            ["P38", "P39"]
        );
    }

    #[test]
    fn unknown_keys_warn_with_the_closest_known_key() {
        let p = parse(
            "images:\n  a:\n    image_name: x/a\n    depnds_on: b\ntag: {prefix: '1'}\n",
            "spec.yml",
        );
        assert!(!p.has_errors(), "{:?}", p.diagnostics);
        let w = &p.diagnostics[0];
        assert_eq!(w.pos, Some(Pos { line: 4, column: 5 }));
        assert!(w.message.contains("depnds_on"));
        assert_eq!(w.help.as_deref(), Some("did you mean 'depend_on'?"));
    }

    #[test]
    fn shape_errors_are_all_reported_with_positions() {
        let text = "images:\n  a:\n    image_name: [x]\n    build_args: {K: [1, 2]}\n    prune: [maybe]\n  b: {}\ntag: {prefix: '1'}\n";
        let p = parse(text, "spec.yml");
        let lines: Vec<_> = p
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.pos.unwrap().line)
            .collect();
        assert_eq!(lines, [3, 4, 5, 6], "{:#?}", p.diagnostics);
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.message.contains("build arg 'K'"))
        );
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.message.contains("'b' has no image_name"))
        );
    }

    #[test]
    fn non_boolean_flags_are_read_as_the_older_pipeline_read_them_with_a_warning() {
        let text = "images:\n  a:\n    image_name: x/a\n    integration_tests: TORCH_AUD_VER\n    prepull: false -- uncomment to disable\n    prune: 0\n    basic_tests:\ntag: {prefix: '1'}\n";
        let p = parse(text, "spec.yml");
        assert!(!p.has_errors(), "{:#?}", p.diagnostics);
        let a = p.spec.as_ref().unwrap().image("a").unwrap();
        assert!(a.integration_tests, "non-empty text reads true");
        assert!(a.prepull, "'false -- ...' is non-empty text: true");
        assert!(!a.prune, "0 reads false");
        assert!(!a.basic_tests, "an empty value reads false");
        let lines: Vec<_> = p.diagnostics.iter().map(|d| d.pos.unwrap().line).collect();
        assert_eq!(lines, [4, 5, 6, 7], "{:#?}", p.diagnostics);
        let first = &p.diagnostics[0];
        assert!(!first.is_error());
        assert!(
            first.message.contains("'TORCH_AUD_VER'") && first.message.contains("read as true"),
            "{first}"
        );
        assert_eq!(first.help.as_deref(), Some("write true or false"));
        assert!(
            p.diagnostics[3].message.contains("is empty"),
            "{:#?}",
            p.diagnostics
        );
        let unset = parse("images:\n  a: {image_name: x/a}\ntag: {prefix: '1'}\n", "f");
        assert!(
            unset.spec.unwrap().images[0].prepull,
            "prepull defaults to true"
        );
    }

    #[test]
    fn conflict_markers_are_reported_not_parsed() {
        let text = "images:\n<<<<<<< HEAD\n  a: {image_name: x/a}\n=======\n  a: {image_name: y/a}\n>>>>>>> 42158c8\n";
        let p = parse(text, "spec.yml");
        assert!(p.spec.is_none());
        assert_eq!(
            p.diagnostics
                .iter()
                .map(|d| d.pos.unwrap().line)
                .collect::<Vec<_>>(),
            [2, 4, 6]
        );
    }

    #[test]
    fn missing_prefix_and_mixed_schemas_are_errors() {
        assert!(parse("images:\n  a: {image_name: x/a}\n", "f").has_errors());
        let p = parse(
            "images:\n  a: {image_name: x/a}\ntag: {prefix: '1'}\nplans: {P: {tag_prefix: '2'}}\n",
            "f",
        );
        assert!(
            p.diagnostics
                .iter()
                .any(|d| d.message.contains("cannot be combined"))
        );
    }

    #[test]
    fn non_mapping_documents_are_refused() {
        for text in ["- a\n- b\n", "just text\n", ""] {
            let p = parse(text, "f");
            assert!(p.has_errors(), "{text:?}");
        }
    }
}
