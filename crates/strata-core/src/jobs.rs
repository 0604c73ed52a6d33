//! The plan as a job graph for CI runners (`strata plan --format jobs`):
//! one job per image and plan the run builds, each a `strata build` of
//! that image alone with the range pinned, needing the jobs of its
//! parents; then a finish step. Runners share nothing but the registry: a
//! job finds the images it needs there, by the run's tag, pinned by digest.

use crate::plan::Plan;

/// One job: build, test and push one image of one plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Job {
    /// Unique among the jobs, usable as a CI job id: `[a-z0-9_-]`.
    pub id: String,
    /// The image's key.
    pub image: String,
    /// The plan's name.
    pub plan: String,
    /// The platform, when the job builds one platform of a multi-platform
    /// image; `null`: the image's platforms.
    pub platform: Option<String>,
    /// The ids of the jobs that must have pushed before it starts.
    pub needs: Vec<String>,
    /// The command that runs it, from the repository's root.
    pub command: Vec<String>,
}

/// The job graph: the contract of `strata plan --format jobs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobGraph {
    /// The head commit.
    pub head: String,
    /// The base commit, `null` for a first build.
    pub base: Option<String>,
    /// The jobs, parents before children.
    pub jobs: Vec<Job>,
    /// What runs after every job: the same build of the whole range, which
    /// reuses every image the jobs pushed (same inputs), gives unchanged
    /// images the run's tag and writes the run's summary, JUnit and wiki
    /// data.
    pub finish: Vec<String>,
}

/// A job id from an image, plan and platform: lower-case, `[a-z0-9_-]`.
pub fn job_id(image: &str, plan: &str, platform: Option<&str>) -> String {
    let mut id = format!("{plan}-{image}");
    if let Some(p) = platform {
        id.push('-');
        id.push_str(p);
    }
    id.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect()
}

/// The job graph of `plan`. `pinned` are the planning flags every command
/// repeats (tag suffix, build args, builder…); `reuse` is false when the
/// plan was asked with `--no-reuse`, which the jobs repeat (the finish
/// step never does: it must find what the jobs pushed); `finish_only` are
/// the plan's narrowing flags (`--plan`, `--platform`), which each job
/// names for itself and the finish repeats.
pub fn jobs(plan: &Plan, pinned: &[String], reuse: bool, finish_only: &[String]) -> JobGraph {
    let range: Vec<String> = match &plan.base {
        Some(base) => vec!["--base".into(), base.clone()],
        // A first build: every image, whatever HEAD's parents are.
        None => vec!["--all".into()],
    };
    let head = vec!["--head".to_string(), plan.head.clone()];
    let mut jobs = Vec::new();
    for b in plan.rebuilds() {
        // A build of several platforms is a job per platform, each needing
        // its parent's job of the same platform.
        let platforms: Vec<Option<&str>> = match b.platforms.is_empty() {
            true => vec![None],
            false => b.platforms.iter().map(|p| Some(p.as_str())).collect(),
        };
        for platform in platforms {
            let needs = b
                .parent
                .iter()
                .filter(|p| plan.build(p, &b.plan).is_some_and(|pb| pb.rebuild))
                .map(|p| job_id(p, &b.plan, platform))
                .collect();
            let mut command: Vec<String> =
                ["strata", "build", "--only", &b.image, "--plan", &b.plan]
                    .map(String::from)
                    .to_vec();
            if let Some(p) = platform {
                command.extend(["--platform".to_string(), p.to_string()]);
            }
            command.extend(head.iter().cloned());
            command.extend(range.iter().cloned());
            command.extend(pinned.iter().cloned());
            if !reuse {
                command.push("--no-reuse".into());
            }
            command.push("--push".into());
            jobs.push(Job {
                id: job_id(&b.image, &b.plan, platform),
                image: b.image.clone(),
                plan: b.plan.clone(),
                platform: platform.map(str::to_string),
                needs,
                command,
            });
        }
    }
    let mut finish: Vec<String> = ["strata", "build"].map(String::from).to_vec();
    finish.extend(head);
    finish.extend(range);
    finish.extend(pinned.iter().cloned());
    finish.extend(finish_only.iter().cloned());
    finish.push("--push".into());
    JobGraph {
        head: plan.head.clone(),
        base: plan.base.clone(),
        jobs,
        finish,
    }
}

/// The jobs by dependency level: level 0 needs nothing, level `n` needs
/// jobs of levels below `n` only (its parents' are at `n - 1`).
pub fn levels(graph: &JobGraph) -> Vec<Vec<&Job>> {
    let mut level_of: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut levels: Vec<Vec<&Job>> = Vec::new();
    // Jobs come parents first, so every job a job needs has its level.
    for job in &graph.jobs {
        let level = job
            .needs
            .iter()
            .filter_map(|n| level_of.get(n.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level_of.insert(&job.id, level);
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(job);
    }
    levels
}

/// `argv` as one line for a POSIX shell: each word single-quoted unless
/// it is plainly safe.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one word for a POSIX shell: single-quoted unless it is
/// plainly safe.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The job graph for GitHub Actions (`strata plan --format
/// github-actions`): `{"depth", "levels": [{"include": [job…]}…],
/// "finish"}`, one matrix per dependency level (each job with `id`,
/// `image`, `plan` and `command` as a shell line), which the workflow in
/// `docs/github-actions.yml` runs level by level.
pub fn github_actions(graph: &JobGraph) -> serde_json::Value {
    let levels: Vec<serde_json::Value> = levels(graph)
        .into_iter()
        .map(|jobs| {
            let include: Vec<serde_json::Value> = jobs
                .into_iter()
                .map(|j| {
                    serde_json::json!({
                        "id": j.id,
                        "image": j.image,
                        "plan": j.plan,
                        "platform": j.platform,
                        "command": shell_line(&j.command),
                    })
                })
                .collect();
            serde_json::json!({ "include": include })
        })
        .collect();
    serde_json::json!({
        "depth": levels.len(),
        "levels": levels,
        "finish": shell_line(&graph.finish),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_quote_what_a_shell_would_read() {
        let argv: Vec<String> = ["strata", "build", "--build-arg", "A=b c", "it's", "x@y:1"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            shell_line(&argv),
            "strata build --build-arg 'A=b c' 'it'\\''s' x@y:1"
        );
    }

    #[test]
    fn levels_follow_needs() {
        let job = |id: &str, needs: &[&str]| Job {
            id: id.into(),
            image: id.into(),
            plan: "default".into(),
            platform: None,
            needs: needs.iter().map(|n| n.to_string()).collect(),
            command: vec!["strata".into()],
        };
        let graph = JobGraph {
            head: "h".into(),
            base: None,
            jobs: vec![
                job("root", &[]),
                job("a", &["root"]),
                job("other", &[]),
                job("c", &["a"]),
                job("b", &["root"]),
            ],
            finish: vec!["strata".into(), "build".into()],
        };
        let ids: Vec<Vec<&str>> = levels(&graph)
            .into_iter()
            .map(|l| l.into_iter().map(|j| j.id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["root", "other"], vec!["a", "b"], vec!["c"]]);
        let gha = github_actions(&graph);
        assert_eq!(gha["depth"], 3);
        assert_eq!(gha["levels"][1]["include"][1]["id"], "b");
        assert_eq!(gha["finish"], "strata build");
    }

    #[test]
    fn ids_are_ci_job_ids() {
        assert_eq!(job_id("scipy-ml", "default", None), "default-scipy-ml");
        assert_eq!(
            job_id("Base.Notebook", "2023.2", Some("linux/arm64")),
            "2023-2-base-notebook-linux-arm64"
        );
    }
}
