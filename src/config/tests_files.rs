//! The files shipped in `config/` must be valid on a plain Debian machine.

use super::*;

#[test]
fn every_shipped_config_file_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let env = MapEnvironment::with_path("/usr/local/bin:/usr/bin:/bin");
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
fn the_example_shows_the_runbook_matrix_and_the_unknown_time_to_fix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let config = load(&path).expect("example.toml is valid");
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
