//! The argv rollguard sends, against the real `docker` client where one is
//! on PATH (no engine is needed): each update command must get as far as
//! connecting to the engine (here a socket that does not exist), never stop
//! at an unknown flag or a missing argument, which the fake could not tell;
//! so must the release source's inspect.
//!
//! The test is in `needs_docker_cli::`: without a docker client it fails,
//! saying why, and `scripts/test` leaves it out and says so.

use super::{ctx, deps, run, step};
use crate::fake_docker::{FakeDocker, service};
use rollguard::config::{ProcessEnvironment, find_program};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What the real client says when its argv parsed and only the engine is
/// missing.
const NO_ENGINE: &str = "Cannot connect to the Docker daemon at unix:///nonexistent/rollguard.sock";

/// A `docker` that answers inspects with the fake (the steps need a service
/// to act on) and hands every other call to the real client, pointed at a
/// socket that does not exist. Panics when no docker is on PATH.
fn half_real(fake: &FakeDocker, dir: &Path) -> String {
    let real = find_program(&ProcessEnvironment, "docker").unwrap_or_else(|error| {
        panic!(
            "this test needs the docker client on PATH ({error}); scripts/test skips it without one"
        )
    });
    let wrapper = dir.join("docker");
    let body = format!(
        "#!/bin/sh\ncase \"$2\" in inspect) exec {:?} \"$@\";; esac\nunset DOCKER_CONTEXT\n\
         DOCKER_HOST=unix:///nonexistent/rollguard.sock exec {:?} \"$@\"\n",
        fake.path(),
        real
    );
    std::fs::write(&wrapper, body).expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    format!("{:?}", wrapper.to_str().expect("utf-8 temp path"))
}

mod needs_docker_cli {
    use super::*;

    #[tokio::test]
    async fn the_real_docker_client_accepts_every_argv() {
        let fake = FakeDocker::new(&[service(
            "reg/app:v2",
            Some("reg/app:v1"),
            "completed",
            "t1",
            "",
        )]);
        let dir = tempfile::tempdir().expect("tempdir");
        let docker = half_real(&fake, dir.path());
        for kind in [
            "kind = 'swarm_rollback'",
            "kind = 'swarm_set_image'\nimage = 'reg/app:{{previous_version}}'",
        ] {
            let steps = [step(&format!(
                "phase = 'rollback'\n{kind}\nservice = 'api'\ndocker = {docker}"
            ))];
            let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
            let message = outcome.steps()[0].message.clone().unwrap_or_default();
            assert!(message.contains(NO_ENGINE), "{kind}: {message}");
            assert!(message.contains("exit code 1"), "{kind}: {message}");
        }

        // The release source's inspect, all of it through the real client.
        let all_real = dir.path().join("docker");
        let text = std::fs::read_to_string(&all_real).expect("read wrapper");
        let text = text.replace("inspect) exec", "never) exec");
        std::fs::write(&all_real, text).expect("write wrapper");
        let config: rollguard::config::ReleaseConfig = toml::from_str(&format!(
            "kind = 'swarm'\nservice = 'api'\ndocker = {docker}"
        ))
        .expect("release config");
        let http = rollguard::http::http_client().expect("client");
        let source = rollguard::release::ReleaseSource::from_config(&config, http).expect("source");
        let error = source.current_version().await.expect_err("no engine");
        assert!(error.to_string().contains(NO_ENGINE), "{error}");
        assert!(error.to_string().contains("exit code 1"), "{error}");
    }
}
