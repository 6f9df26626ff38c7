//! The files shipped in `config/` must be valid on a plain Debian machine
//! (given the secret files they name), and the files a configuration
//! names are read by `check` (`files.rs`).

use super::tests_parse::{BASE, errors, expect, line_of};
use super::*;

/// The secret files config/example.toml names, as an install would have them.
const EXAMPLE_FILES: [&str; 4] = [
    "/etc/rollguard/api-token",
    "/etc/rollguard/prometheus-token",
    "/etc/rollguard/incident-hook-url",
    "/etc/rollguard/flags-token",
];

/// What an install keeps in one of [`EXAMPLE_FILES`]: a token, or for the
/// incident hook a URL (`check` reads its form).
fn example_secret(file: &str) -> String {
    if file.ends_with("-url") {
        "https://hooks.example.com/incident/T0K3N\n".to_owned()
    } else {
        "not empty\n".to_owned()
    }
}

/// A plain Debian machine's `PATH`, with a `docker` in front of it (the
/// example's Swarm target needs one; Debian ships none): the directory
/// holding it, and the environment.
fn debian_with_docker() -> (tempfile::TempDir, MapEnvironment) {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().expect("tempdir");
    let docker = bin.path().join("docker");
    std::fs::write(&docker, "#!/bin/sh\n").expect("write docker");
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
    (bin, MapEnvironment::with_path(&path))
}

#[test]
fn every_shipped_config_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let (_bin, mut env) = debian_with_docker();
    for file in EXAMPLE_FILES {
        env.files.insert(PathBuf::from(file), example_secret(file));
    }
    let mut seen = 0;
    for name in ["example.toml", "minimal.toml"] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).expect("shipped config file is readable");
        if let Err(e) = parse_with_env(&text, &path, &env) {
            panic!("{e}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[test]
fn the_example_s_secret_files_are_read_by_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let text = std::fs::read_to_string(&path).expect("shipped config file is readable");
    // The same file, its secrets looked for in an empty directory.
    let empty = tempfile::tempdir().expect("tempdir");
    let text = text.replace("/etc/rollguard/", &format!("{}/", empty.path().display()));
    let (_bin, env) = debian_with_docker();
    let errors = parse_with_env(&text, &path, &env)
        .expect_err("the secret files are missing")
        .errors;
    let keys: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        keys,
        [
            "daemon.api_token_file",
            "prometheus.bearer_token_file",
            "notifier[1].url_file",
            "target[3].step[0].bearer_token_file"
        ],
        "{errors:#?}"
    );
}

#[test]
fn the_example_shows_the_runbook_matrix_and_the_unknown_time_to_fix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let text = std::fs::read_to_string(&path).expect("shipped config file is readable");
    let (_bin, mut env) = debian_with_docker();
    for file in EXAMPLE_FILES {
        env.files.insert(PathBuf::from(file), example_secret(file));
    }
    let config = parse_with_env(&text, &path, &env).expect("example.toml is valid");
    assert_eq!(config.policy.rule, crate::judge::default_rules());
    assert_eq!(
        config.targets[0].time_to_fix,
        crate::model::TimeToFix::Unknown
    );
}

#[test]
fn minimal_file_is_small_and_in_shadow_mode() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/minimal.toml");
    let config = load(&path).expect("minimal.toml is valid");
    assert_eq!(config.targets.len(), 1);
    assert_eq!(
        config.mode_of(&config.targets[0]),
        crate::model::Mode::Shadow
    );
}

#[test]
fn token_and_secret_files_must_be_readable_and_not_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, " \n").expect("write");
    let good = dir.path().join("url");
    std::fs::write(&good, "http://127.0.0.1:9/hook\n").expect("write");
    let missing = dir.path().join("missing");
    let text = format!(
        "[daemon]\napi_token_file = {empty:?}\nkubeconfig = {missing:?}\n\n{BASE}\n[[notifier]]\nname = \"hidden\"\nkind = \"webhook\"\nurl_file = {good:?}\n\n[[notifier]]\nname = \"gone\"\nkind = \"webhook\"\nurl_file = {:?}\n",
        dir.path().join("gone")
    )
    .replace(
        "url = \"http://127.0.0.1:9090\"\n",
        &format!(
            "url = \"http://127.0.0.1:9090\"\nbearer_token_file = {:?}\n",
            dir.path()
        ),
    );
    let errs = errors(&text);
    expect(
        &errs,
        "daemon.api_token_file",
        line_of(&text, "api_token_file"),
        "is empty",
    );
    expect(
        &errs,
        "daemon.kubeconfig",
        line_of(&text, "kubeconfig"),
        "cannot read",
    );
    expect(
        &errs,
        "prometheus.bearer_token_file",
        line_of(&text, "bearer_token_file"),
        "cannot read",
    );
    expect(
        &errs,
        "notifier[2].url_file",
        line_of(&text, "\"gone\"") + 2,
        "cannot read",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn files_are_read_through_the_environment() {
    let mut env = MapEnvironment::with_path("/usr/bin:/bin");
    let token = PathBuf::from("/nonexistent/rollguard/token");
    let text = format!("[daemon]\napi_token_file = {token:?}\nallow_no_targets = true\n");
    assert!(parse_with_env(&text, Path::new("t.toml"), &env).is_err());
    env.files.insert(token, "t0k3n\n".to_owned());
    assert!(parse_with_env(&text, Path::new("t.toml"), &env).is_ok());
}
