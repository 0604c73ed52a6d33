//! `strata`: plan, build, test, push and promote a stack of Docker images.

mod build;
mod build_records;
mod diff;
mod failure;
mod files_digest;
mod flags;
mod local;
mod output;
mod planning;
mod progress;
mod promote;
mod registry;
mod report;
mod report_history;
mod sbom;
mod schedule;
mod sign;
mod stack;
mod trace;

use clap::{Parser, Subcommand};
use failure::Failure;
use output::{Format, GraphFormat, Reporter};
use std::path::PathBuf;
use std::process::ExitCode;
use strata_core::text::count;

/// strata maintains a stack of Docker images built FROM one another,
/// described by images/spec.yml.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about = None)]
struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The images folder (default: images/ at the repository root).
    #[arg(long, global = true, value_name = "DIR")]
    images_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// More detail.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check spec.yml, change_ignore.json and the image folders; report every problem.
    Validate,
    /// Say which images of which plans rebuild, with which tags, and why.
    Plan(planning::PlanArgs),
    /// Build, test, push and document the images the plan rebuilds.
    Build(build::BuildArgs),
    /// Run the basic tests (and integration tests) of images already built.
    Test(build::RunArgs),
    /// Write the manifests of images already built.
    Manifest(build::RunArgs),
    /// Retag a tested set to a stable tag inside the registry, without pulling.
    Promote(promote::PromoteArgs),
    /// Write wiki pages: manifests, the Home.md build table, Stable_Tag.md.
    Wiki(promote::WikiArgs),
    /// Compare two built images: size, layers, each info command's output
    /// and their packages.
    Diff(diff::DiffArgs),
    /// Write the report of runs as a static site: the stack's graph, the
    /// run's timeline, each image's page, and history across runs.
    Report(report::ReportArgs),
    /// Print an image's SBOM, read from the registry beside it.
    Sbom(sbom::SbomArgs),
    /// Check images' signatures against a public key: each platform's
    /// image of an index, the index, and their SBOMs.
    Verify(sign::VerifyArgs),
    /// Make signing keys.
    Key(sign::KeyArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// powershell (e.g. `strata completions bash > /etc/bash_completion.d/strata`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print strata's man page (roff: `strata man > strata.1; man -l strata.1`).
    Man,
    /// Draw the stack (with rebuild marks when a range is given).
    Graph {
        /// mermaid, dot or text.
        #[arg(long = "as", value_enum, default_value_t = GraphFormat::Text)]
        graph_format: GraphFormat,
        #[command(flatten)]
        plan: planning::PlanArgs,
    },
}

/// The async runtime the engine and registry clients run on.
fn runtime() -> Result<&'static tokio::runtime::Runtime, Failure> {
    // One runtime for the whole process: the registry lookups of planning,
    // the local-store lookup and the run share it.
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::env(format!("cannot start the async runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The machine's engine (`DOCKER_HOST`), connected once for the whole
/// command: planning's local lookups, the run and its probes share it.
async fn engine() -> Result<strata_engine::Engine, strata_engine::EngineError> {
    static ENGINE: tokio::sync::OnceCell<strata_engine::Engine> =
        tokio::sync::OnceCell::const_new();
    ENGINE
        .get_or_try_init(strata_engine::Engine::connect)
        .await
        .cloned()
}

fn main() -> ExitCode {
    // Before any thread starts: see `sign::take_password`.
    sign::take_password();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    trace::install(cli.verbose);
    let reporter = Reporter {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    match run(&cli, &reporter) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}

fn run(cli: &Cli, reporter: &Reporter) -> Result<ExitCode, Failure> {
    let cwd = match &cli.dir {
        Some(d) if !d.is_dir() => {
            return Err(Failure::input(format!(
                "-C {}: no such directory",
                d.display()
            )));
        }
        Some(d) => d.clone(),
        None => std::env::current_dir()
            .map_err(|e| Failure::env(format!("cannot read the current directory: {e}")))?,
    };
    if matches!(
        cli.format,
        Format::Jobs | Format::Bake | Format::GithubActions
    ) && !matches!(cli.command, Command::Plan(_))
    {
        return Err(Failure::input(
            "--format jobs, bake and github-actions are formats of `strata plan` only; use --format json",
        ));
    }
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "strata", &mut script);
            output::print_out(&String::from_utf8_lossy(&script))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Failure::env(format!("cannot write the man page: {e}")))?;
            output::print_out(&String::from_utf8_lossy(&page))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate => validate(&cwd, cli, reporter),
        Command::Plan(args) if cli.format == Format::Jobs => {
            let planned = planning::make(&cwd, cli.images_dir.as_deref(), args, reporter)?;
            output::print_json(&planning::job_graph(&planned, args)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) if cli.format == Format::GithubActions => {
            let planned = planning::make(&cwd, cli.images_dir.as_deref(), args, reporter)?;
            let graph = planning::job_graph(&planned, args)?;
            // One line: a GitHub Actions output.
            output::print_out(&format!("{}\n", strata_core::jobs::github_actions(&graph)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) if cli.format == Format::Bake => {
            let planned = planning::make(&cwd, cli.images_dir.as_deref(), args, reporter)?;
            let images = planned.dir.in_repo.clone().unwrap_or_default();
            output::print_json(&strata_core::bake::bake_file(&planned.plan, &images))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let planned = planning::make(&cwd, cli.images_dir.as_deref(), args, reporter)?;
            output::print_out(&output::render_plan(&planned.plan, cli.format))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(args) => build::run(
            &cwd,
            cli.images_dir.as_deref(),
            args,
            &strata_exec::Stage::ALL,
            cli.format,
            reporter,
        ),
        Command::Test(args) => {
            let stages = [
                strata_exec::Stage::BasicTests,
                strata_exec::Stage::IntegrationTests,
            ];
            build::run(
                &cwd,
                cli.images_dir.as_deref(),
                &build::BuildArgs::of_run(args),
                &stages,
                cli.format,
                reporter,
            )
        }
        Command::Manifest(args) => build::run(
            &cwd,
            cli.images_dir.as_deref(),
            &build::BuildArgs::of_run(args),
            &[strata_exec::Stage::Manifest],
            cli.format,
            reporter,
        ),
        Command::Promote(args) => {
            promote::promote(&cwd, cli.images_dir.as_deref(), cli.format, args, reporter)
        }
        Command::Wiki(args) => promote::wiki(&cwd, args, cli.format, reporter),
        Command::Sbom(args) => sbom::run(args),
        Command::Verify(args) => sign::verify_command(args, cli.format),
        Command::Key(args) => sign::key(args, cli.format, reporter),
        Command::Report(args) => {
            report::run(&cwd, cli.images_dir.as_deref(), args, cli.format, reporter)
        }
        Command::Diff(args) => {
            diff::run(&cwd, cli.images_dir.as_deref(), args, cli.format, reporter)
        }
        Command::Graph { graph_format, plan } => {
            let render = |stack: &stack::Stack, plan: Option<&strata_core::plan::Plan>| {
                if cli.format == Format::Json {
                    strata_report::graph::graph_json(&stack.spec, &stack.graph, plan)
                } else {
                    strata_report::graph::render_graph(
                        &stack.spec,
                        &stack.graph,
                        plan,
                        (*graph_format).into(),
                    )
                }
            };
            if plan.chooses_range() {
                let planned = planning::make(&cwd, cli.images_dir.as_deref(), plan, reporter)?;
                output::print_out(&render(&planned.stack, Some(&planned.plan)))?;
            } else {
                let repo = strata_git::Repo::discover(&cwd).ok();
                let dir = stack::images_dir(&cwd, cli.images_dir.as_deref(), repo.as_ref());
                let stack = stack::load_or_fail(&stack::Source::WorkTree, &dir, reporter)?;
                output::print_out(&render(&stack, None))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn validate(cwd: &std::path::Path, cli: &Cli, reporter: &Reporter) -> Result<ExitCode, Failure> {
    let repo = strata_git::Repo::discover(cwd).ok();
    let dir = stack::images_dir(cwd, cli.images_dir.as_deref(), repo.as_ref());
    let (stack, diags) = stack::load(&stack::Source::WorkTree, &dir)?;
    let errors = diags.iter().filter(|(d, _)| d.is_error()).count();
    let warnings = diags.len() - errors;
    if cli.format == Format::Json {
        let list: Vec<_> = diags.iter().map(|(d, _)| d).collect();
        output::print_json(&list)?;
    } else {
        for (d, text) in &diags {
            if d.is_error() || !reporter.quiet {
                reporter.diagnostic(d, text.as_deref());
            }
        }
    }
    match stack {
        Some(stack) if errors == 0 => {
            let plans = stack.spec.plans.len();
            reporter.note(&format!(
                "{}: {}, {}, {}, no errors",
                dir.display("spec.yml"),
                count(stack.spec.images.len(), "image"),
                count(plans, "plan"),
                count(warnings, "warning")
            ));
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(Failure::input(format!(
            "{}, {} in {}",
            count(errors, "error"),
            count(warnings, "warning"),
            dir.path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own check of the command tree: no clashing names or shorts,
    /// every `overrides_with`/`conflicts_with` naming a real flag.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Each subcommand takes its own flags: `test` and `manifest` push
    /// nothing, so they take no `--push`; bad values exit 2 at parse time.
    #[test]
    fn flags_belong_to_their_commands_and_are_typed_when_parsed() {
        for (argv, accepted) in [
            (
                &["strata", "build", "--push", "--secret", "id=a,env=B"][..],
                true,
            ),
            (&["strata", "test", "--push"][..], false),
            (&["strata", "manifest", "--secret", "id=a,env=B"][..], false),
            (&["strata", "test", "--retest", "--jobs", "2"][..], true),
            (&["strata", "build", "--jobs", "0"][..], false),
            (&["strata", "build", "--build-arg", "NOVALUE"][..], false),
            (&["strata", "plan", "--build-arg", "K=V"][..], true),
            (
                &["strata", "build", "--engine", "linux/arm64=ssh://host"][..],
                false,
            ),
            (&["strata", "build", "--timeout", "tests=1h"][..], false),
            (
                &[
                    "strata", "report", "--from", "a", "--from", "b", "--out", "r",
                ][..],
                true,
            ),
            (&["strata", "report", "--push"][..], false),
            (
                &["strata", "build", "--timeout", "basic_tests=1h"][..],
                true,
            ),
            (
                &["strata", "build", "--push", "--sign-key", "k.pem"][..],
                true,
            ),
            (&["strata", "test", "--sign-key", "k.pem"][..], false),
            (&["strata", "verify", "--key", "k.pub"][..], false),
            (&["strata", "verify", "r/i:t", "--key", "k.pub"][..], true),
            (
                &[
                    "strata",
                    "promote",
                    "--from",
                    "a-1",
                    "--to",
                    "a-stable",
                    "--verify-key",
                    "k.pub",
                ][..],
                true,
            ),
            (&["strata", "key", "generate", "--out", "ci"][..], true),
        ] {
            let parsed = Cli::try_parse_from(argv);
            assert_eq!(parsed.is_ok(), accepted, "{argv:?}: {parsed:?}");
            if let Err(e) = parsed {
                assert!(e.use_stderr(), "{argv:?}");
            }
        }
    }
}
