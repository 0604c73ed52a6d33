//! `docker build` with BuildKit, for benchmarks' baselines on engines whose
//! CLI has no buildx (the `docker` CLI then refuses `DOCKER_BUILDKIT=1`):
//! one build of one folder's Dockerfile, through the engine's API, nothing
//! else (no plan, labels, cache or tests).
//!
//!     cargo run --release -p strata-engine --example buildkit_build -- DIR TAG [KEY=VALUE…]

use std::collections::BTreeMap;
use std::process::ExitCode;
use strata_engine::{BuildRequest, Builder, Engine};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(tag)) = (args.next(), args.next()) else {
        eprintln!("usage: buildkit_build DIR TAG [KEY=VALUE...]");
        return ExitCode::from(2);
    };
    let mut build_args = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            eprintln!("buildkit_build: '{arg}' is not KEY=VALUE");
            return ExitCode::from(2);
        };
        build_args.insert(key.to_string(), value.to_string());
    }
    let request = BuildRequest {
        context_dir: dir.into(),
        dockerfile: "Dockerfile".into(),
        tags: vec![tag],
        build_args,
        labels: BTreeMap::new(),
        cache_from: Vec::new(),
        builder: Builder::BuildKit,
        pull: false,
        secrets: Vec::new(),
        registry_auth: Vec::new(),
        platform: None,
    };
    let built = match Engine::connect().await {
        Ok(engine) => engine.build(&request, |_| {}).await,
        Err(e) => Err(e),
    };
    match built {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("buildkit_build: {e}");
            ExitCode::FAILURE
        }
    }
}
