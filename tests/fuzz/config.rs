//! The configuration parser and validator (`rollguard check`, start-up and
//! reload): any text is either a `Config` or a list of errors, each on a
//! line of the file.

use super::mutate::{apply, edits};
use proptest::prelude::*;
use rollguard::config::{MapEnvironment, parse_with_env};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// config/example.toml, every key the daemon knows.
fn example() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        std::fs::read_to_string(path).expect("config/example.toml is readable")
    })
}

/// A machine on which the example is valid: its secret files, and a
/// `docker` on the `PATH` (the example's Swarm target needs one).
fn machine() -> &'static (tempfile::TempDir, MapEnvironment) {
    static MACHINE: OnceLock<(tempfile::TempDir, MapEnvironment)> = OnceLock::new();
    MACHINE.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let bin = tempfile::tempdir().expect("tempdir");
        let docker = bin.path().join("docker");
        std::fs::write(&docker, "#!/bin/sh\n").expect("write docker");
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
        let mut env = MapEnvironment::with_path(&path);
        for (file, text) in [
            ("/etc/rollguard/api-token", "t0k3n\n"),
            ("/etc/rollguard/prometheus-token", "t0k3n\n"),
            ("/etc/rollguard/flags-token", "t0k3n\n"),
            (
                "/etc/rollguard/incident-hook-url",
                "https://hooks.example.com/T0/SECRET\n",
            ),
        ] {
            env.files.insert(PathBuf::from(file), text.to_owned());
        }
        (bin, env)
    })
}

/// Parses `text`; every error it reports must be on a line of the text.
fn check(text: &str) -> Result<(), TestCaseError> {
    let (_bin, env) = machine();
    if let Err(errors) = parse_with_env(text, Path::new("fuzz.toml"), env) {
        let lines = text.lines().count() + 1;
        prop_assert!(!errors.errors.is_empty());
        for e in &errors.errors {
            prop_assert!(!e.message.is_empty(), "{e:?}");
            prop_assert!(e.line.is_none_or(|l| (1..=lines).contains(&l)), "{e:?}");
        }
    }
    Ok(())
}

#[test]
fn the_example_is_valid_on_the_fuzzing_machine() {
    let (_bin, env) = machine();
    if let Err(e) = parse_with_env(example(), Path::new("example.toml"), env) {
        panic!("{e}");
    }
}

proptest! {
    #[test]
    fn any_text_is_a_config_or_errors(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn toml_shaped_noise_is_a_config_or_errors(
        text in "(\\[{1,2}[a-z.]{0,12}\\]{1,2}\n|[a-z_]{1,12} = (\"[^\"\n]{0,12}\"|[0-9.e+-]{1,8}|\\[\\]|\\{\\})\n){0,12}",
    ) {
        check(&text)?;
    }

    #[test]
    fn an_edited_example_is_a_config_or_errors(edits in edits(6)) {
        check(&apply(example(), &edits))?;
    }
}
