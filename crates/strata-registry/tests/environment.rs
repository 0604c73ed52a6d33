//! The defaults read from the environment: `DOCKER_CONFIG`, `PATH` for
//! credential helpers, `STRATA_INSECURE_REGISTRIES`. One test in its own
//! binary, because it sets process environment variables.

use std::os::unix::fs::PermissionsExt;

use strata_registry::testing::{Family, TestRegistry, push_tagged_image, tagged};
use strata_registry::{
    Registry, RegistryOptions, credentials_for_registry, insecure_registries_from_env,
};

#[tokio::test]
async fn docker_config_and_helpers_from_the_environment() {
    let reg = TestRegistry::start_with_htpasswd("bob", "env-Pa55").expect("start registry");
    let host = reg.host();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"credHelpers": {{"{host}": "envtest"}}}}"#),
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-envtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nserver=$(cat)\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"env-Pa55\"}' \"$server\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: this binary has one test and sets the variables before any
    // other thread reads the environment.
    unsafe {
        std::env::set_var("DOCKER_CONFIG", config.path());
        std::env::set_var("PATH", path);
        std::env::set_var("STRATA_INSECURE_REGISTRIES", " reg.lan:5000, Other.Lan ");
    }

    let creds = credentials_for_registry(&host)
        .unwrap()
        .expect("from the helper");
    assert_eq!(creds.username(), Some("bob"));
    assert_eq!(creds.password().map(|p| p.expose()), Some("env-Pa55"));
    assert_eq!(credentials_for_registry("ghcr.io").unwrap(), None);
    assert_eq!(
        insecure_registries_from_env(),
        vec!["reg.lan:5000".to_string(), "other.lan".to_string()]
    );

    // The default client reads all of it.
    let c = Registry::new(RegistryOptions::default()).unwrap();
    let r = tagged(&reg.name("org/env"), "v1");
    let m = push_tagged_image(&c, &r, Family::Oci, "env").await.unwrap();
    assert_eq!(
        c.head_manifest(&r).await.unwrap().unwrap().digest,
        *m.digest()
    );
}
