//! docs/pipeline.md's runbooks say what shadow mode says for each step of
//! three complete pipelines in config/example.toml (a symlink host, a
//! Kubernetes Deployment and a Swarm service): this test renders them
//! with the pipeline's own descriptions and fails when the docs differ,
//! printing the block to paste.

use rollguard::config::TargetConfig;
use rollguard::model::Mode;
use rollguard::pipeline::{RollbackContext, describe, ordered, step_name};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The runbooks shown: target name in config/example.toml, and the
/// versions of the rollback described.
const RUNBOOKS: [(&str, &str, &str); 3] = [
    ("api", "v1.4.2", "v1.4.1"),
    ("checkout", "v2.8.0", "v2.7.3"),
    ("web", "v3.1.0", "v3.0.9"),
];

fn targets() -> Vec<TargetConfig> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("config/example.toml")).expect("example.toml");
    let value: toml::Table = toml::from_str(&text).expect("example.toml is TOML");
    value["target"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t.clone().try_into().expect("a target"))
        .collect()
}

/// The block docs/pipeline.md holds for `name`: each step in run order,
/// its phase and what shadow mode says it would do.
fn block(target: &TargetConfig, from: &str, to: &str) -> String {
    let started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_820_800);
    let ctx = RollbackContext::for_target(
        target,
        &format!("{}-1764820800000", target.name),
        (from, to),
        Mode::Shadow,
        "",
        started,
    );
    let mut out = format!("<!-- shadow:{} -->\n```\n", target.name);
    for (i, step) in ordered(&target.step).into_iter().enumerate() {
        out.push_str(&format!(
            "{:>2}. [{}] {}: {}\n",
            i + 1,
            format!("{:?}", step.common.phase).to_lowercase(),
            step_name(step),
            describe(step, &ctx)
        ));
    }
    out.push_str("```\n<!-- /shadow -->\n");
    out
}

#[test]
fn the_runbooks_in_pipeline_md_say_what_shadow_mode_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/pipeline.md")).expect("docs/pipeline.md");
    let targets = targets();
    let mut wrong = Vec::new();
    for (name, from, to) in RUNBOOKS {
        let target = targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("config/example.toml has no target {name}"));
        assert!(
            target.step.len() >= 4,
            "{name}: a runbook-shaped pipeline has steps in several phases"
        );
        let expected = block(target, from, to);
        if !docs.contains(&expected) {
            wrong.push(expected);
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/pipeline.md differs from what shadow mode says; the blocks should read:\n\n{}",
        wrong.join("\n")
    );
}
