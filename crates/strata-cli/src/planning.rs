//! `strata plan`'s inputs: the range, the change set, the spec versions and
//! the published parents, gathered from git (and the registry) and handed
//! to the core.

use crate::failure::Failure;
use crate::output::Reporter;
use crate::stack::{self, ImagesDir, Source, Stack};
use std::collections::BTreeMap;
use std::path::Path;
use strata_core::changes::{self, ChangeSet, Commit, Reason};
use strata_core::plan::{self, Plan, PlanOptions, PublishedLookup, SuffixSource};
use strata_git::{Repo, UncommittedPath};

/// Commits of the base's history searched for a parent's image.
const ANCESTORS_SEARCHED: usize = 200;

/// How the tag suffix is chosen (`--tag-suffix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SuffixMode {
    /// The head commit's 7-character hash.
    Hash,
    /// The branch name, made into a valid tag.
    Branch,
}

/// The options that choose what to plan; shared by `plan`, `graph` and `build`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Compare with this revision (default: head's first parent; in a GitHub
    /// Actions pull request, the target branch from GITHUB_BASE_REF).
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The revision to plan (default: HEAD, with the working tree's files).
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Rebuild every image.
    #[arg(long)]
    pub all: bool,
    /// Only this plan.
    #[arg(long, value_name = "NAME")]
    pub plan: Option<String>,
    /// Tag suffix: the head commit's hash, or the branch name.
    #[arg(long, value_enum, default_value_t = SuffixMode::Hash)]
    pub tag_suffix: SuffixMode,
    /// A build arg that wins over the spec's (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<crate::flags::BuildArg>,
    /// A branch whose builds always rebuild everything (repeatable).
    #[arg(
        long = "full-rebuild-branch",
        value_name = "BRANCH",
        env = "STRATA_FULL_REBUILD_BRANCHES",
        value_delimiter = ','
    )]
    pub full_rebuild_branches: Vec<String>,
    /// Do not ask the registry where unchanged parents are published: look
    /// for them in the local image store instead.
    #[arg(long)]
    pub offline: bool,
    /// Only this of the spec's platforms (repeatable), e.g. linux/arm64.
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,
    /// Build for real even where an image was already built from the same
    /// inputs (it is otherwise tagged, not built).
    #[arg(long)]
    pub no_reuse: bool,
    /// Ask each root's base registry where its base stands now, and rebuild
    /// the roots whose base moved since their last published build (and
    /// what is built on them), with or without a change; their tags end in
    /// `-base-<hash of the bases>`, so a published tag is never overwritten.
    #[arg(long)]
    pub bases: bool,
    /// The builder: BuildKit where the engine offers it (auto), BuildKit, or
    /// the classic builder.
    #[arg(long, value_enum, value_name = "BUILDER", default_value_t = BuilderArg::Auto, env = "STRATA_BUILDER")]
    pub builder: BuilderArg,
}

/// `--builder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuilderArg {
    /// BuildKit where the engine offers it, else the classic builder.
    Auto,
    /// BuildKit.
    Buildkit,
    /// The classic builder.
    Classic,
}

impl From<BuilderArg> for strata_exec::BuilderChoice {
    fn from(arg: BuilderArg) -> Self {
        match arg {
            BuilderArg::Auto => strata_exec::BuilderChoice::Auto,
            BuilderArg::Buildkit => strata_exec::BuilderChoice::BuildKit,
            BuilderArg::Classic => strata_exec::BuilderChoice::Classic,
        }
    }
}

impl BuilderArg {
    /// The builder an input key names: `auto` is BuildKit, which every
    /// engine of the last years offers (a run on an engine without it
    /// computes its keys again).
    fn key_name(self) -> &'static str {
        match self {
            BuilderArg::Auto | BuilderArg::Buildkit => strata_engine::Builder::BuildKit.name(),
            BuilderArg::Classic => strata_engine::Builder::Classic.name(),
        }
    }
}

/// Whether the user asked for a range (so graphs mark rebuilds).
impl PlanArgs {
    /// Whether any option chooses a range.
    pub fn chooses_range(&self) -> bool {
        self.base.is_some() || self.head.is_some() || self.all
    }
}

/// A plan and the stack it was made from.
pub struct Planned {
    /// The stack at head.
    pub stack: Stack,
    /// The plan.
    pub plan: Plan,
    /// The images folder.
    pub dir: ImagesDir,
    /// The registry lookup the plan used (`None` offline), for later
    /// look-ups of the same run.
    pub lookup: Option<crate::registry::RegistryLookup>,
    /// The head commit when the plan is of a commit (`--head REV`), whose
    /// files are then built and tested; `None` for the working tree.
    pub head_commit: Option<String>,
    /// The uncommitted changes under the images folder, when the plan is of
    /// the working tree.
    pub uncommitted: Vec<UncommittedPath>,
    /// The repository the plan was made in, for what a run reads of it
    /// later (a commit's files, the remote).
    pub repo: Repo,
}

/// The tag suffixes searched, in order, for a parent's most recent image
/// (see [`plan::tag_candidates`]): the short hash of the head and of each
/// commit of the base's history, newest first (the tags strata builds
/// give), then the current branch, `main` and `master` (the tags of
/// `--tag-suffix branch` builds).
pub fn lookup_suffixes(
    repo: &Repo,
    head: &str,
    base: Option<&str>,
    branch: Option<&str>,
) -> Result<Vec<String>, Failure> {
    let mut out = vec![head.chars().take(7).collect::<String>()];
    if let Some(base) = base {
        for sha in repo.ancestors(base, ANCESTORS_SEARCHED)? {
            out.push(sha.chars().take(7).collect());
        }
    }
    for b in branch.into_iter().chain(["main", "master"]) {
        if let Some(tag) = strata_core::reference::Tag::sanitize(b) {
            out.push(tag.as_str().to_string());
        }
    }
    out.dedup();
    Ok(out)
}

impl Planned {
    /// Where each build's own image is published, by `(image, plan)`, for
    /// the builds `wanted` selects; empty offline.
    pub fn published(
        &mut self,
        wanted: impl Fn(&strata_core::plan::Build) -> bool,
    ) -> Result<BTreeMap<(String, String), String>, Failure> {
        let mut out = BTreeMap::new();
        let Some(lookup) = self.lookup.as_mut() else {
            return Ok(out);
        };
        for b in self.plan.builds.iter().filter(|b| wanted(b)) {
            let (Some(image), Some(plan)) = (
                self.stack.spec.image(&b.image),
                self.stack.spec.plan(&b.plan),
            ) else {
                continue;
            };
            if let plan::Published::At(r) = lookup.lookup(image, plan, b.refresh.as_deref()) {
                out.insert((b.image.clone(), b.plan.clone()), r);
            }
        }
        match lookup.error.take() {
            Some(e) => Err(Failure::env(format!(
                "{e}; pass --offline to work without the registry"
            ))),
            None => Ok(out),
        }
    }
}

/// The plan as a job graph for CI runners (`strata plan --format jobs`):
/// every job and the finish step repeat the planning flags, so each runner
/// plans the same range the same way.
pub fn job_graph(
    planned: &Planned,
    args: &PlanArgs,
) -> Result<strata_core::jobs::JobGraph, Failure> {
    if args.offline {
        return Err(Failure::input(
            "--format jobs: jobs on other runners share only the registry; plan without --offline",
        ));
    }
    // A job builds one platform's image on that platform's image of its
    // parent; an image of the engine's platform alone has none to build on.
    for b in planned.plan.rebuilds().filter(|b| b.platforms.is_empty()) {
        let parent = b
            .parent
            .as_ref()
            .and_then(|p| planned.plan.build(p, &b.plan));
        if let Some(parent) = parent.filter(|p| p.rebuild && !p.platforms.is_empty()) {
            return Err(Failure::input(format!(
                "--format jobs: '{}' is built for the engine's platform only, on '{}', which is built for {}: its job would need the index the finish puts; give '{}' `platforms:` too",
                b.image,
                parent.image,
                parent.platforms.join(", "),
                b.image
            )));
        }
    }
    let mut pinned = Vec::new();
    if args.all && planned.plan.base.is_some() {
        pinned.push("--all".to_string());
    }
    if args.tag_suffix == SuffixMode::Branch {
        pinned.extend(["--tag-suffix".to_string(), "branch".to_string()]);
    }
    for kv in &args.build_args {
        pinned.extend(["--build-arg".to_string(), kv.to_string()]);
    }
    for b in &args.full_rebuild_branches {
        pinned.extend(["--full-rebuild-branch".to_string(), b.clone()]);
    }
    // Each job finds its roots refreshed by their jobs, under the tag
    // for the bases of now, and builds on them.
    if args.bases {
        pinned.push("--bases".to_string());
    }
    match args.builder {
        BuilderArg::Auto => {}
        BuilderArg::Buildkit => pinned.extend(["--builder".to_string(), "buildkit".to_string()]),
        BuilderArg::Classic => pinned.extend(["--builder".to_string(), "classic".to_string()]),
    }
    let mut finish_only = Vec::new();
    if let Some(p) = &args.plan {
        finish_only.extend(["--plan".to_string(), p.clone()]);
    }
    for p in &args.platforms {
        finish_only.extend(["--platform".to_string(), p.clone()]);
    }

    Ok(strata_core::jobs::jobs(
        &planned.plan,
        &pinned,
        !args.no_reuse,
        &finish_only,
    ))
}

/// `--platform` flags, each one the spec declares.
fn only_platforms(stack: &Stack, flags: &[String]) -> Result<Vec<String>, Failure> {
    let declared: std::collections::BTreeSet<&str> = stack
        .spec
        .images
        .iter()
        .flat_map(|i| strata_core::platform::declared(&stack.spec, i))
        .collect();
    for flag in flags {
        if !declared.contains(flag.as_str()) {
            let known: Vec<&str> = declared.iter().copied().collect();
            return Err(Failure::input(if known.is_empty() {
                format!(
                    "--platform {flag}: the spec declares no platforms; add `platforms: [{flag}]` to spec.yml"
                )
            } else {
                format!(
                    "--platform {flag}: the spec builds for {} only",
                    known.join(", ")
                )
            }));
        }
    }
    Ok(flags.to_vec())
}

/// Each image's folder content for its input key: the git tree of its
/// folder at head when the folder is as committed, else a digest of its
/// files on disk (see `strata_core::inputs`).
fn contexts(
    repo: &Repo,
    head: &str,
    head_is_commit: bool,
    dir: &ImagesDir,
    stack: &Stack,
    uncommitted: &[UncommittedPath],
) -> Result<BTreeMap<String, String>, Failure> {
    let snapshot = repo.snapshot(head)?;
    let mut out = BTreeMap::new();
    for image in stack.spec.image_keys() {
        let folder = dir.repo_path(image);
        let prefix = format!("{folder}/");
        let dirty = !head_is_commit && uncommitted.iter().any(|u| u.path.starts_with(&prefix));
        let context = if dirty {
            crate::files_digest::of_folder(&dir.path.join(image))?
        } else {
            match snapshot.tree_id(&folder)? {
                Some(oid) => format!("git-tree:{oid}"),
                None => continue,
            }
        };
        out.insert(image.to_string(), context);
    }
    Ok(out)
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The base of the range when none is given: in a GitHub Actions pull
/// request, the target branch; otherwise head's first parent.
fn default_base(repo: &Repo, head: &str, reporter: &Reporter) -> Result<Option<String>, Failure> {
    if let Some(target) = env_nonempty("GITHUB_BASE_REF") {
        for candidate in [format!("origin/{target}"), target.clone()] {
            if let Ok(sha) = repo.resolve(&candidate) {
                reporter.detail(&format!("base: pull-request target {candidate}"));
                return Ok(Some(sha));
            }
        }
        return Err(Failure::env(format!(
            "GITHUB_BASE_REF is '{target}', but neither origin/{target} nor {target} is in this clone: fetch it (actions/checkout with fetch-depth: 0)"
        )));
    }
    Ok(repo.first_parent(head)?)
}

/// Makes the plan for `args` in the repository at `cwd`.
pub fn make(
    cwd: &Path,
    images_flag: Option<&Path>,
    args: &PlanArgs,
    reporter: &Reporter,
) -> Result<Planned, Failure> {
    let repo = Repo::discover(cwd)?;
    let dir = stack::images_dir(cwd, images_flag, Some(&repo));
    let Some(images_in_repo) = dir.in_repo.clone() else {
        return Err(Failure::input(format!(
            "the images folder {} is not inside the repository at {}",
            dir.path.display(),
            repo.workdir().display()
        )));
    };
    let head = repo.resolve(args.head.as_deref().unwrap_or("HEAD"))?;
    let source = match &args.head {
        Some(rev) => Source::Commit(repo.snapshot(&head)?, rev.clone()),
        None => Source::WorkTree,
    };
    let stack = stack::load_or_fail(&source, &dir, reporter)?;
    // The snapshot borrows the repository, which the plan keeps.
    drop(source);

    let base_rev = match &args.base {
        Some(b) => Some(repo.resolve(b)?),
        None => default_base(&repo, &head, reporter)?,
    };
    let Range {
        base,
        mut paths,
        commits,
    } = range(&repo, base_rev.as_deref(), &head)?;
    // The working tree's own edits are changes of the plan too.
    let uncommitted = match &args.head {
        Some(_) => Vec::new(),
        None => repo.uncommitted_paths(&head, &images_in_repo)?,
    };
    let uncommitted_changes: BTreeMap<String, String> = uncommitted
        .iter()
        .map(|u| (u.path.clone(), u.change.as_str().to_string()))
        .collect();
    if !uncommitted.is_empty() {
        paths.extend(uncommitted.iter().map(|u| u.path.clone()));
        paths.sort_unstable();
        paths.dedup();
    }
    let commits: Vec<Commit> = commits
        .into_iter()
        .map(|c| Commit {
            sha: c.sha,
            message: c.message,
        })
        .collect();

    let branch = branch_of(&repo, args.tag_suffix, reporter)?;
    let forced = if args.all {
        Some(Reason::All)
    } else if base.is_none() {
        Some(Reason::FirstBuild)
    } else {
        branch
            .as_ref()
            .filter(|b| args.full_rebuild_branches.iter().any(|f| f == *b))
            .map(|b| Reason::FullRebuildBranch { branch: b.clone() })
    };

    let old_spec = old_spec(
        &repo,
        base.as_deref(),
        &dir.repo_path("spec.yml"),
        &paths,
        reporter,
    )?;
    let set = ChangeSet {
        images_dir: &images_in_repo,
        paths: &paths,
        uncommitted: &uncommitted_changes,
        commits: &commits,
        rules: &stack.rules,
        old_spec: old_spec.as_ref(),
        forced,
    };
    let detected = changes::detect(&stack.spec, &set);

    if let Some(p) = &args.plan {
        check_plan_name(&stack.spec, p)?;
    }
    let suffix_source = match args.tag_suffix {
        SuffixMode::Hash => SuffixSource::Hash(head.clone()),
        SuffixMode::Branch => SuffixSource::Branch(branch.clone().ok_or_else(|| {
            Failure::input("--tag-suffix branch: HEAD is detached and GITHUB_HEAD_REF/GITHUB_REF_NAME are not set; use --tag-suffix hash")
        })?),
    };
    let suffix = plan::tag_suffix(&stack.spec, &suffix_source, !uncommitted.is_empty())
        .map_err(|e| Failure::input(e.to_string()))?;
    let options = PlanOptions {
        head: head.clone(),
        base: base.clone(),
        changed_files: paths,
        dirty: !uncommitted.is_empty(),
        suffix,
        only_plan: args.plan.clone(),
        cli_args: args
            .build_args
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect(),
        dockerfiles: stack.dockerfiles.clone(),
        test_folders: stack.tests.keys().cloned().collect(),
        contexts: contexts(
            &repo,
            &head,
            args.head.is_some(),
            &dir,
            &stack,
            &uncommitted,
        )?,
        platform: strata_core::inputs::host_platform(),
        builder: args.builder.key_name().to_string(),
        reuse: !args.no_reuse,
        bases: args.bases,
        only_platforms: only_platforms(&stack, &args.platforms)?,
    };
    let suffixes = lookup_suffixes(&repo, &head, base.as_deref(), branch.as_deref())?;
    let (plan, lookup) = plan_with_lookup(
        &stack,
        &detected,
        &options,
        suffixes,
        args.offline,
        reporter,
    )?;
    Ok(Planned {
        stack,
        plan,
        dir,
        lookup,
        head_commit: args.head.as_ref().map(|_| head.clone()),
        uncommitted,
        repo,
    })
}

/// The range `merge-base(base, head)..head`.
struct Range {
    /// The merge base; `None` for a first build.
    base: Option<String>,
    /// The paths changed in it.
    paths: Vec<String>,
    /// Its commits.
    commits: Vec<Commit>,
}

/// The range of `base_rev` and `head`.
fn range(repo: &Repo, base_rev: Option<&str>, head: &str) -> Result<Range, Failure> {
    let base = match base_rev {
        Some(b) => match repo.merge_base(b, head)? {
            Some(mb) => Some(mb),
            None => {
                let hint = if repo.is_shallow() {
                    ": this is a shallow clone; fetch the full history (fetch-depth: 0)"
                } else {
                    ""
                };
                return Err(Failure::env(format!(
                    "{} and {} share no history{hint}",
                    &b[..7.min(b.len())],
                    &head[..7.min(head.len())]
                )));
            }
        },
        None => None,
    };
    let (paths, commits) = match &base {
        Some(b) => (
            repo.changed_paths(b, head)?,
            repo.commits_in_range(Some(b), head)?,
        ),
        None => (Vec::new(), repo.commits_in_range(None, head)?),
    };
    let commits = commits
        .into_iter()
        .map(|c| Commit {
            sha: c.sha,
            message: c.message,
        })
        .collect();
    Ok(Range {
        base,
        paths,
        commits,
    })
}

/// The branch built: the CI's wins; HEAD is read only without it. A HEAD
/// that names a ref git cannot read (e.g. `a..b`, written by another tool)
/// is a problem only when the branch name is needed for the tag.
fn branch_of(
    repo: &Repo,
    suffix: SuffixMode,
    reporter: &Reporter,
) -> Result<Option<String>, Failure> {
    if let Some(b) = env_nonempty("GITHUB_HEAD_REF").or_else(|| env_nonempty("GITHUB_REF_NAME")) {
        return Ok(Some(b));
    }
    match repo.current_branch() {
        Ok(b) => Ok(b),
        Err(e) if suffix == SuffixMode::Branch => Err(Failure::input(format!(
            "--tag-suffix branch: the branch name cannot be read ({e}); use --tag-suffix hash"
        ))),
        Err(e) => {
            reporter.note(&format!(
                "note: the branch name cannot be read ({e}), so no full-rebuild branch applies"
            ));
            Ok(None)
        }
    }
}

/// The base's spec, when the range changed it: what the entries are
/// compared with. One that cannot be read makes every image changed.
fn old_spec(
    repo: &Repo,
    base: Option<&str>,
    spec_path: &str,
    paths: &[String],
    reporter: &Reporter,
) -> Result<Option<strata_core::spec::Spec>, Failure> {
    let Some(b) = base.filter(|_| paths.iter().any(|p| p == spec_path)) else {
        return Ok(None);
    };
    Ok(repo.file_at(b, spec_path)?.and_then(|text| {
        let parsed =
            strata_core::spec::parse(&text, &format!("{}:{spec_path}", &b[..7.min(b.len())]));
        if parsed.has_errors() {
            reporter.note(&format!(
                "note: {spec_path} at {} could not be read, so every image counts as changed",
                &b[..7.min(b.len())]
            ));
            None
        } else {
            parsed.spec
        }
    }))
}

/// `--plan NAME` must name a plan of the spec.
fn check_plan_name(spec: &strata_core::spec::Spec, name: &str) -> Result<(), Failure> {
    if spec.plan(name).is_some() {
        return Ok(());
    }
    let names: Vec<&str> = spec.plans.iter().map(|p| p.name.value.as_str()).collect();
    Err(Failure::input(format!(
        "--plan {name}: the spec has no such plan (plans: {})",
        names.join(", ")
    )))
}

/// The plan, its parents looked up in the local store (`offline`) or the
/// registry, whose lookup the run keeps for later look-ups.
fn plan_with_lookup(
    stack: &Stack,
    detected: &changes::Detected,
    options: &PlanOptions,
    suffixes: Vec<String>,
    offline: bool,
    reporter: &Reporter,
) -> Result<(Plan, Option<crate::registry::RegistryLookup>), Failure> {
    if offline {
        let mut local = crate::local::LocalLookup::new(suffixes);
        let plan = plan::plan(&stack.spec, &stack.graph, detected, options, &mut local);
        if let Some(e) = &local.unreachable {
            reporter.note(&format!(
                "note: the local image store cannot be searched ({e}), so parents a rebuilt child needs are built in this run"
            ));
        }
        return Ok((plan, None));
    }
    let mut lookup = crate::registry::RegistryLookup::new(suffixes, options.bases)?;
    let plan = plan::plan(
        &stack.spec,
        &stack.graph,
        detected,
        options,
        &mut lookup as &mut dyn PublishedLookup,
    );
    if let Some(e) = lookup.error.take() {
        return Err(Failure::env(format!(
            "{e}; pass --offline to plan without the registry"
        )));
    }
    if let Some(e) = lookup.reuse_error.take() {
        reporter.note(&format!(
            "warning: images already built from the same inputs cannot be looked up ({e}), so they are built again"
        ));
    }
    if options.bases {
        for (base, why) in &lookup.unresolved_bases {
            reporter.note(&format!(
                "warning: --bases: cannot tell where the base {base} stands ({why}), so the roots built on it are not refreshed"
            ));
        }
    }
    Ok((plan, Some(lookup)))
}
