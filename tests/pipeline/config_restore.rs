//! `config_restore` against real parts: a git repository made here with
//! two tags, and real release directories. The configuration comes back
//! whole (files the bad release added are gone), hostile tags are refused
//! before git sees them as options, and a copy from the previous release
//! never leaves half a directory behind.

use super::{ctx, deps, run, step};
use rollguard::model::StepOutcome;
use rollguard::pipeline::PipelineOutcome;
use std::collections::BTreeMap;
use std::path::Path;

/// Runs `git` with `args` in `repo`, which must succeed.
fn git(repo: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=rollguard",
            "-c",
            "user.email=dev@rollguard.invalid",
        ])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// Every file under `dir` (relative path → content; links as `-> target`).
fn tree(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).expect("read dir") {
            let path = entry.expect("entry").path();
            let name = path
                .strip_prefix(dir)
                .expect("below dir")
                .display()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("read link");
                files.insert(name, format!("-> {}", target.display()));
            } else if meta.is_dir() {
                pending.push(path);
            } else {
                files.insert(name, std::fs::read_to_string(&path).expect("read"));
            }
        }
    }
    files
}

/// A repository whose `config/` differs between tags v1 and v2 (v2 adds
/// `config/new.conf`); its work tree is at v2.
fn repo(dir: &Path) -> std::path::PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("config")).expect("mkdir");
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("config/app.conf"), "workers = 4\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("config/app.conf"), "workers = 64\n").expect("write");
    std::fs::write(repo.join("config/new.conf"), "cache = huge\n").expect("write");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "v2"]);
    git(&repo, &["tag", "v2"]);
    repo
}

fn failure(outcome: &PipelineOutcome) -> &str {
    match outcome {
        PipelineOutcome::Failed { message, .. } => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_git_tag_restore_brings_the_tag_s_config_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo(dir.path());
    let steps = [step(&format!(
        "phase = 'config'\nkind = 'config_restore'\nfrom = 'git_tag'\nrepo = '{}'\npath = 'config'",
        repo.display()
    ))];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;

    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        tree(&repo.join("config")),
        BTreeMap::from([("app.conf".to_owned(), "workers = 4\n".to_owned())])
    );
    let message = outcome.steps()[0].message.clone().unwrap_or_default();
    assert!(message.contains("is now as tag v1 (commit "), "{message}");
}

#[tokio::test]
async fn hostile_tags_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo(dir.path());
    let marker = dir.path().join("pwned");
    let steps = [step(&format!(
        "phase = 'config'\nkind = 'config_restore'\nfrom = 'git_tag'\nrepo = '{}'\npath = 'config'\nretries = 2\nbackoff = '10ms'",
        repo.display()
    ))];
    let before = tree(&repo.join("config"));
    let hostile = [
        (
            format!("--upload-pack=touch {}", marker.display()),
            "starts with `-`",
        ),
        (
            format!("v1;touch {}", marker.display()),
            "does not name a commit",
        ),
        ("v1;rm -rf /".to_owned(), "does not name a commit"),
        ("v1 -- .".to_owned(), "does not name a commit"),
        ("v0".to_owned(), "does not name a commit"),
    ];
    for (tag, why) in hostile {
        let outcome = run(&steps, &ctx("v2", &tag), &deps(&[])).await;
        let message = failure(&outcome);
        assert!(message.contains(why), "{tag}: {message}");
        assert!(message.contains("nothing was changed"), "{tag}: {message}");
        // Refused for good: retrying cannot make the tag better.
        assert_eq!(outcome.steps()[0].attempts, 1, "{tag}");
        assert_eq!(outcome.steps()[0].outcome, StepOutcome::Failed);
        assert_eq!(tree(&repo.join("config")), before, "{tag}");
        assert!(!marker.exists(), "{tag} ran something");
    }
}

/// `dir/releases/v1/etc` and `.../v2/etc` (v2 adds `extra.conf`), and the
/// live `dir/live-etc`, a copy of v2's.
fn releases(dir: &Path) -> std::path::PathBuf {
    for (version, workers) in [("v1", "4"), ("v2", "64")] {
        let etc = dir.join("releases").join(version).join("etc");
        std::fs::create_dir_all(etc.join("conf.d")).expect("mkdir");
        std::fs::write(etc.join("app.conf"), format!("workers = {workers}\n")).expect("write");
        std::fs::write(etc.join("conf.d/log.conf"), format!("level = {version}\n")).expect("write");
        std::os::unix::fs::symlink("app.conf", etc.join("current.conf")).expect("link");
    }
    let v2 = dir.join("releases/v2/etc");
    std::fs::write(v2.join("extra.conf"), "cache = huge\n").expect("write");
    let live = dir.join("live-etc");
    std::fs::create_dir(&live).expect("mkdir");
    for (name, content) in tree(&v2) {
        if let Some(target) = content.strip_prefix("-> ") {
            std::os::unix::fs::symlink(target, live.join(&name)).expect("link");
        } else {
            let path = live.join(&name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
    }
    live
}

#[tokio::test]
async fn a_release_dir_restore_swaps_in_a_whole_copy_of_the_previous_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = releases(dir.path());
    let v1 = tree(&dir.path().join("releases/v1/etc"));
    assert_ne!(tree(&live), v1);
    // A half copy left by a crash is replaced, not merged.
    let staging = dir.path().join("live-etc.rollguard-new");
    std::fs::create_dir(&staging).expect("mkdir");
    std::fs::write(staging.join("half.conf"), "x").expect("write");
    let steps = [step(&format!(
        "phase = 'config'\nkind = 'config_restore'\nfrom = 'release_dir'\nreleases_dir = '{}'\ndir = '{}'\npath = 'etc'",
        dir.path().join("releases").display(),
        live.display()
    ))];

    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;

    assert!(
        matches!(outcome, PipelineOutcome::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(tree(&live), v1);
    assert!(!staging.exists(), "the old copy is removed");
    // Again: the same result, nothing left beside it.
    let outcome = run(&steps, &ctx("v2", "v1"), &deps(&[])).await;
    assert!(matches!(outcome, PipelineOutcome::Completed { .. }));
    assert_eq!(tree(&live), v1);
    assert!(!staging.exists());

    // A release that is not there, or a version that leaves the releases
    // directory: the live configuration stays as it is.
    for missing in ["v0", "../releases/v2"] {
        let outcome = run(&steps, &ctx("v1", missing), &deps(&[])).await;
        let message = failure(&outcome);
        assert!(
            message.contains("nothing was changed"),
            "{missing}: {message}"
        );
        assert_eq!(tree(&live), v1, "{missing}");
    }
}

#[tokio::test]
async fn shadow_mode_resolves_the_tag_and_looks_at_the_release_without_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = repo(dir.path());
    let live = releases(dir.path());
    let steps = [
        step(&format!(
            "phase = 'config'\nkind = 'config_restore'\nname = 'git'\nfrom = 'git_tag'\nrepo = '{}'\npath = 'config'",
            repo.display()
        )),
        step(&format!(
            "phase = 'config'\nkind = 'config_restore'\nname = 'copy'\nfrom = 'release_dir'\nreleases_dir = '{}'\ndir = '{}'\npath = 'etc'",
            dir.path().join("releases").display(),
            live.display()
        )),
    ];
    let (config_before, live_before) = (tree(&repo.join("config")), tree(&live));
    let shadow = rollguard::pipeline::RollbackContext {
        mode: rollguard::model::Mode::Shadow,
        ..ctx("v2", "v1")
    };

    let preview = rollguard::pipeline::preview(&steps, &shadow, &deps(&[])).await;

    assert_eq!(preview.dry_runs.len(), 2, "{:?}", preview.dry_runs);
    assert!(
        preview.dry_runs[0].starts_with("config_restore: tag v1 is commit "),
        "{:?}",
        preview.dry_runs
    );
    assert!(preview.dry_runs[0].ends_with(": would check config out (dry run)"));
    assert_eq!(
        preview.dry_runs[1],
        format!(
            "config_restore: {} exists: would replace {} with a copy of it (dry run)",
            dir.path().join("releases/v1/etc").display(),
            live.display()
        )
    );
    assert_eq!(tree(&repo.join("config")), config_before);
    assert_eq!(tree(&live), live_before);

    let missing = rollguard::pipeline::RollbackContext {
        restore_version: "v0".into(),
        ..shadow
    };
    let preview = rollguard::pipeline::preview(&steps, &missing, &deps(&[])).await;
    assert!(
        preview.dry_runs[0].contains("tag v0 does not name a commit"),
        "{:?}",
        preview.dry_runs
    );
    assert!(
        preview.dry_runs[1].contains("previous configuration"),
        "{:?}",
        preview.dry_runs
    );
}
