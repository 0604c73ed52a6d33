//! Writes the report of a synthetic stack to a folder, for
//! `scripts/bench-report.sh`: `synthetic_report OUT [IMAGES [RUNS]]`
//! (default 60 images, 5 runs). Prints the files' total size in bytes.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().map(std::path::PathBuf::from) else {
        eprintln!("usage: synthetic_report OUT [IMAGES [RUNS]]");
        return ExitCode::from(2);
    };
    let number = |i: usize, default: usize| {
        args.get(i).map_or(Ok(default), |a| {
            a.parse::<usize>().map_err(|e| format!("{a}: {e}"))
        })
    };
    let (images, runs) = match (number(1, 60), number(2, 5)) {
        (Ok(images), Ok(runs)) => (images, runs),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let site = strata_report::site::synthetic_site(images, runs);
    let files = match strata_report::site::render(&site) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let written = std::fs::create_dir_all(&out).and_then(|()| {
        files
            .iter()
            .try_for_each(|f| std::fs::write(out.join(&f.name), &f.contents))
    });
    if let Err(e) = written {
        eprintln!("cannot write {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("{}", files.iter().map(|f| f.contents.len()).sum::<usize>());
    ExitCode::SUCCESS
}
