use super::*;
use std::path::Path;
use std::time::Duration;

fn check(name: &str, script: &str) -> DataCheckConfig {
    DataCheckConfig {
        name: name.to_owned(),
        kind: DataCheckKind::Command,
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            "{{version}}".into(),
        ],
        migrations_dir: None,
        list_argv: None,
        timeout: Duration::from_secs(10),
    }
}

fn cx(version: &str, previous: &str, link: Option<&Path>) -> DataCheckContext {
    DataCheckContext {
        vars: BTreeMap::from([
            ("version", version.to_owned()),
            ("previous_version", previous.to_owned()),
        ]),
        link: link.map(Path::to_owned),
    }
}

fn migrations(dir: Option<&str>, list_argv: Option<Vec<String>>) -> DataCheckConfig {
    DataCheckConfig {
        kind: DataCheckKind::Migrations,
        argv: Vec::new(),
        migrations_dir: dir.map(PathBuf::from),
        list_argv,
        ..check("db", "")
    }
}

/// `releases/<version>/db/migrations/<file>` for each pair, and `current`
/// pointing at `releases/<current>`.
fn releases(files: &[(&str, &str)], current: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (version, file) in files {
        let migrations = dir
            .path()
            .join("releases")
            .join(version)
            .join("db/migrations");
        std::fs::create_dir_all(&migrations).expect("mkdir");
        if !file.is_empty() {
            std::fs::write(migrations.join(file), "-- sql").expect("write");
        }
    }
    let target = Path::new("releases").join(current);
    std::os::unix::fs::symlink(target, dir.path().join("current")).expect("link");
    dir
}

#[tokio::test]
async fn no_checks_mean_no_impact() {
    let cx = cx("v2", "v1", None);
    assert_eq!(data_impact(&[], &cx).await, (DataImpact::None, vec![]));
}

#[tokio::test]
async fn the_worst_answer_wins() {
    let checks = [check("a", "echo none"), check("b", "echo '  minor  '")];
    let (impact, evidence) = data_impact(&checks, &cx("v2", "v1", None)).await;
    assert_eq!(impact, DataImpact::Minor);
    assert_eq!(
        evidence,
        vec!["data check `a`: none", "data check `b`: minor"]
    );
}

#[tokio::test]
async fn arguments_arrive_verbatim() {
    let checks = [check("v", r#"[ "$1" = 'v2; touch /tmp/x' ] && echo none"#)];
    let cx = cx("v2; touch /tmp/x", "v1", None);
    assert_eq!(data_impact(&checks, &cx).await.0, DataImpact::None);
}

#[tokio::test]
async fn a_migration_file_the_previous_release_lacks_is_major_and_named() {
    let dir = releases(
        &[
            ("v1", "20240101000000_init.sql"),
            ("v2", "20240101000000_init.sql"),
            ("v2", "20240115120000_add_index.sql"),
            ("v2", ".keep"),
        ],
        "v2",
    );
    let link = dir.path().join("current");
    let checks = [migrations(Some("db/migrations"), None)];
    let (impact, evidence) = data_impact(&checks, &cx("v2", "v1", Some(&link))).await;
    assert_eq!(impact, DataImpact::Major);
    assert_eq!(
        evidence,
        [
            "data check `db`: schema migrations since v1: 20240115120000_add_index; prefer a forward fix"
        ]
    );
    // The same migrations on both sides: nothing stands in the way.
    let same = releases(&[("v1", "001_init.sql"), ("v2", "001_init.sql")], "v2");
    let link = same.path().join("current");
    let (impact, evidence) = data_impact(&checks, &cx("v2", "v1", Some(&link))).await;
    assert_eq!(impact, DataImpact::None);
    assert_eq!(evidence, ["data check `db`: no schema migrations since v1"]);
}

#[tokio::test]
async fn directories_are_migrations_too_and_long_lists_are_cut() {
    let files: Vec<(&str, String)> = (1..=7).map(|n| ("v2", format!("00{n}.sql"))).collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(v, f)| (*v, f.as_str())).collect();
    let dir = releases(&[&[("v1", "")], &files[..]].concat(), "v2");
    let diesel = dir
        .path()
        .join("releases/v2/db/migrations/2024-01-15-120000_add.index");
    std::fs::create_dir(&diesel).expect("mkdir");
    let link = dir.path().join("current");
    let checks = [migrations(Some("db/migrations"), None)];
    let (impact, evidence) = data_impact(&checks, &cx("v2", "v1", Some(&link))).await;
    assert_eq!(impact, DataImpact::Major);
    assert!(
        evidence[0].ends_with("since v1: 001, 002, 003, 004, 005 and 3 more; prefer a forward fix"),
        "{evidence:?}"
    );
}

#[tokio::test]
async fn migrations_that_cannot_be_compared_count_as_major() {
    let dir = releases(&[("v2", "001.sql")], "v2");
    let link = dir.path().join("current");
    let checks = [migrations(Some("db/migrations"), None)];
    for (cx, why) in [
        (cx("v2", "v1", Some(&link)), "cannot read"),
        (
            cx("v2", "", Some(&link)),
            "version before this release is unknown",
        ),
        (cx("v2", "v1", None), "needs a symlink release source"),
        (
            cx("v2", "..", Some(&link)),
            "cannot name a release directory",
        ),
    ] {
        let (impact, evidence) = data_impact(&checks, &cx).await;
        assert_eq!(impact, DataImpact::Major, "{evidence:?}");
        assert!(evidence[0].contains(why), "{why}: {evidence:?}");
        assert!(
            evidence[0]
                .ends_with("counted as major, since the effect of a rollback on data is unknown")
        );
    }
}

#[tokio::test]
async fn a_listing_program_runs_once_per_version() {
    let list = |script: &str| {
        let argv = ["/bin/sh", "-c", script, "sh", "{{version}}"];
        migrations(None, Some(argv.map(str::to_owned).to_vec()))
    };
    let script = r#"case "$1" in v1) echo 001_init ;; v2) printf '001_init\n\n  002_add_orders  \n' ;; *) exit 3 ;; esac"#;
    let (impact, evidence) = data_impact(&[list(script)], &cx("v2", "v1", None)).await;
    assert_eq!(impact, DataImpact::Major);
    assert_eq!(
        evidence,
        ["data check `db`: schema migrations since v1: 002_add_orders; prefer a forward fix"]
    );
    let (impact, evidence) = data_impact(&[list(script)], &cx("v1", "v1", None)).await;
    assert_eq!(
        (impact, evidence[0].as_str()),
        (
            DataImpact::None,
            "data check `db`: no schema migrations since v1"
        )
    );
    let (impact, evidence) = data_impact(&[list(script)], &cx("v9", "v1", None)).await;
    assert_eq!(impact, DataImpact::Major);
    assert!(
        evidence[0].contains("listing the migrations of v9: failed (exit code 3)"),
        "{evidence:?}"
    );
}
