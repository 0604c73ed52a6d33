//! DOCKER_HOST pointing nowhere: a typed, one-line error. Its own test
//! binary, because it changes the process environment.

use strata_engine::Engine;

#[tokio::test]
async fn docker_host_nowhere_gives_a_one_line_unreachable_error() {
    // SAFETY: the only test in this binary; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("DOCKER_HOST", "unix:///nonexistent") };
    let err = Engine::connect()
        .await
        .expect_err("no engine at /nonexistent");
    assert!(err.is_unreachable(), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        msg.starts_with("cannot reach the Docker engine at unix:///nonexistent: "),
        "{msg}"
    );
    assert!(msg.ends_with("is it running? (docker info)"), "{msg}");
    eprintln!("{msg}");
}
