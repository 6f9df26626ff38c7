//! The `bluegreen_switch` and `config_restore` step kinds, and an `http`
//! step's `bearer_token_file`: valid steps pass, and each mistake names its
//! key path and line.

use super::tests_parse::{BASE, errors, expect, line_of};

/// A valid blue-green switch by link.
const BY_LINK: &str = r#"
[[target.step]]
phase = "rollback"
kind = "bluegreen_switch"
service = "shop"
link = "/srv/shop/live"
healthy_probes = 2
probe_interval = "500ms"

[target.step.colors.blue]
path = "/srv/shop/blue"
probe = [{ name = "health", url = "http://127.0.0.1:8081/health" }]

[target.step.colors.green]
path = "/srv/shop/green"
probe = [{ name = "health", url = "http://127.0.0.1:8082/health", max_latency = "200ms" }]
"#;

/// A valid blue-green switch told by a URL, flipped by a request.
const BY_HTTP: &str = r#"
[[target.step]]
phase = "rollback"
kind = "bluegreen_switch"
live_url = "http://127.0.0.1:9000/active"
live_pointer = "/color"
flip_http = { method = "PUT", url = "http://127.0.0.1:9000/active", body = '{"color": "{{color}}", "was": "{{live_color}}"}', expect_status = [200] }
colors.blue.probe = [{ name = "health", url = "http://127.0.0.1:8081/health" }]
colors.green.probe = [{ name = "health", url = "http://127.0.0.1:8082/health" }]
"#;

#[test]
fn valid_bluegreen_switches_and_config_restores_pass() {
    let restores = r#"
[[target.step]]
phase = "config"
kind = "config_restore"
from = "git_tag"
repo = "/srv/shop/repo"
path = "config"

[[target.step]]
phase = "config"
kind = "config_restore"
from = "release_dir"
releases_dir = "/srv/shop/releases"
dir = "/etc/shop"
path = "etc"
tag = "{{previous_version}}"
"#;
    for steps in [BY_LINK, BY_HTTP, restores] {
        let text = format!("{BASE}{steps}");
        assert_eq!(errors(&text), Vec::new(), "{steps}");
    }
}

#[test]
fn bluegreen_mistakes_name_their_key_and_line() {
    let text = format!(
        "{BASE}{}",
        BY_LINK
            .replace(
                "healthy_probes = 2",
                "healthy_probes = 0\nflip_argv = [\"/bin/true\"]"
            )
            .replace("path = \"/srv/shop/green\"\n", "")
            .replace(
                "http://127.0.0.1:8081/health\" }",
                "ftp://nowhere\", methd = \"GET\" }"
            )
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].healthy_probes",
        line_of(&text, "healthy_probes"),
        "must be between 1 and 100",
    );
    expect(
        &errs,
        "target[0].step[0].flip_argv",
        line_of(&text, "flip_argv"),
        "`link` flips by repointing the link",
    );
    // Unknown keys inside a colour's probe are serde's: the step is not
    // read, so its other rules wait for the next check.
    let errs_unknown = errors(&format!(
        "{BASE}{}",
        BY_LINK.replace("8081/health\" }", "8081/health\", methd = \"GET\" }")
    ));
    assert!(
        errs_unknown
            .iter()
            .any(|e| e.path == "target[0].step[0].colors.blue.probe[0].methd"
                && e.message.contains("unknown field `methd`")),
        "{errs_unknown:#?}"
    );
    let text = format!(
        "{BASE}{}",
        BY_LINK
            .replace("healthy_probes = 2", "healthy_probes = 0")
            .replace("path = \"/srv/shop/green\"\n", "")
            .replace("http://127.0.0.1:8081/health", "ftp://nowhere")
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].colors.green.path",
        line_of(&text, "[target.step.colors.green]"),
        "with `link`, each colour needs `path`",
    );
    expect(
        &errs,
        "target[0].step[0].colors.blue.probe[0].url",
        line_of(&text, "ftp://nowhere"),
        "http://",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn a_bluegreen_switch_needs_two_colours_one_source_and_one_flip() {
    let text = format!(
        "{BASE}{}",
        BY_HTTP
            .replace("live_pointer = \"/color\"\n", "live_argv = [\"/bin/echo\", \"blue\"]\n")
            .replace("{{live_color}}", "{{colour}}")
            .replace("colors.green.probe", "colors.green.path = \"/x\"\ncolors.green.probe")
            .replace(
                "colors.blue.probe = [{ name = \"health\", url = \"http://127.0.0.1:8081/health\" }]",
                "colors.blue.probe = []\ncolors.red.probe = []"
            )
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].colors",
        line_of(&text, "colors.blue.probe"),
        "needs exactly two colours",
    );
    expect(
        &errs,
        "target[0].step[0].colors.blue.probe",
        line_of(&text, "colors.blue.probe"),
        "needs at least one probe",
    );
    expect(
        &errs,
        "target[0].step[0].colors.green.path",
        line_of(&text, "colors.green.path"),
        "`path` is only for a switch by `link`",
    );
    expect(
        &errs,
        "target[0].step[0].kind",
        line_of(&text, "\"bluegreen_switch\""),
        "needs exactly one of `link`, `live_url` and `live_argv`",
    );
    expect(
        &errs,
        "target[0].step[0].flip_http.body",
        line_of(&text, "flip_http"),
        "unknown template variable `{{colour}}`",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
}

#[test]
fn config_restore_mistakes_name_their_key_and_line() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"config\"\nkind = \"config_restore\"\nfrom = \"git_tag\"\npath = \"../etc\"\ntag = \"--upload-pack=x\"\ndir = \"/etc/shop-a\"\n\n[[target.step]]\nphase = \"config\"\nkind = \"config_restore\"\nfrom = \"release_dir\"\npath = \"/etc\"\ntag = \"{{{{versoin}}}}\"\ndir = \"/etc/shop\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].tag",
        line_of(&text, "--upload-pack"),
        "must not start with `-`",
    );
    expect(
        &errs,
        "target[0].step[0].path",
        line_of(&text, "../etc"),
        "must be a relative path",
    );
    expect(
        &errs,
        "target[0].step[0].from",
        line_of(&text, "\"git_tag\""),
        "`from = \"git_tag\"` needs `repo`",
    );
    expect(
        &errs,
        "target[0].step[0].dir",
        line_of(&text, "/etc/shop-a"),
        "`dir` is only for `from = \"release_dir\"`",
    );
    expect(
        &errs,
        "target[0].step[1].tag",
        line_of(&text, "versoin"),
        "unknown template variable `{{versoin}}`",
    );
    expect(
        &errs,
        "target[0].step[1].path",
        line_of(&text, "path = \"/etc\""),
        "must be a relative path",
    );
    expect(
        &errs,
        "target[0].step[1].from",
        line_of(&text, "\"release_dir\""),
        "`from = \"release_dir\"` needs `releases_dir`",
    );
    let unknown = format!(
        "{BASE}\n[[target.step]]\nphase = \"config\"\nkind = \"config_restore\"\nfrom = \"tarball\"\npath = \"etc\"\n"
    );
    let errs_unknown = errors(&unknown);
    expect(
        &errs_unknown,
        "target[0].step[0].from",
        line_of(&unknown, "tarball"),
        "unknown variant `tarball`",
    );
}

#[test]
fn an_http_bearer_token_file_is_read_by_check_and_excludes_an_authorization_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "  \n").expect("write");
    let missing = dir.path().join("missing-token");
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"traffic\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/flag\"\nbearer_token_file = {empty:?}\nheaders_env = {{ authorization = \"AUTH\" }}\n\n[[target.step]]\nphase = \"traffic\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/flag\"\nbearer_token_file = {missing:?}\n"
    );
    let errs = errors(&text);
    let empty_line = line_of(&text, "empty-token");
    expect(
        &errs,
        "target[0].step[0].bearer_token_file",
        empty_line,
        "is empty",
    );
    expect(
        &errs,
        "target[0].step[0].bearer_token_file",
        empty_line,
        "which `headers_env` sets too",
    );
    expect(
        &errs,
        "target[0].step[1].bearer_token_file",
        line_of(&text, "missing-token"),
        "cannot read",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}
