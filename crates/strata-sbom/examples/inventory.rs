//! Reads an image export (`docker save IMAGE | inventory`) from standard
//! input and prints how many packages of each kind it holds: the SBOM's
//! reading alone, for measuring its time and memory on large images
//! (`/usr/bin/time -v`).

use std::collections::BTreeMap;

fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    match strata_sbom::inventory(std::io::BufReader::with_capacity(1 << 20, stdin)) {
        Ok(found) => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for p in &found.packages {
                *counts.entry(p.ecosystem.purl_type()).or_default() += 1;
            }
            println!(
                "{} packages in {} layers: {counts:?}",
                found.packages.len(),
                found.layers.len()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("inventory: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
