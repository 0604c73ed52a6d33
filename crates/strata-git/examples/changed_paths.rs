//! Prints the paths changed between two revisions, one per line, as
//! `git diff --name-only --no-renames BASE HEAD` does; for benchmarks.
//!
//! ```text
//! cargo run --release -p strata-git --example changed_paths -- DIR BASE HEAD [--repeat N]
//! ```
//!
//! With `--repeat N` the diff is computed N times in one process (after the
//! repository is opened) and the mean time per diff is printed on stderr.

use std::error::Error;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use strata_git::Repo;

fn main() -> Result<(), Box<dyn Error>> {
    let usage = "usage: changed_paths DIR BASE HEAD [--repeat N]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, base, head, repeat) = match args.as_slice() {
        [dir, base, head] => (dir, base, head, None),
        [dir, base, head, flag, n] if flag == "--repeat" => {
            let n: u32 = n
                .parse()
                .map_err(|_| format!("--repeat takes a whole number, not '{n}'"))?;
            (dir, base, head, Some(n.max(1)))
        }
        _ => return Err(usage.into()),
    };
    let repo = Repo::discover(Path::new(dir))?;
    let mut paths = repo.changed_paths(base, head)?;
    if let Some(n) = repeat {
        let start = Instant::now();
        for _ in 0..n {
            paths = repo.changed_paths(base, head)?;
        }
        let mean = start.elapsed() / n;
        eprintln!("{} paths, {mean:?} per diff (mean of {n})", paths.len());
    }
    let mut out = std::io::stdout().lock();
    for path in &paths {
        writeln!(out, "{path}")?;
    }
    Ok(())
}
