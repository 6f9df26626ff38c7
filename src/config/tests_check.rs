//! What `check` refuses because it cannot work (#14 item 7): URLs that do
//! not parse or are not http(s), templated URLs once their placeholders are
//! filled in, timeouts and intervals below their floors, and a file without
//! targets. Each at its key path and line.

use super::tests_parse::{BASE, errors, expect, line_of};
use super::*;

#[test]
fn every_url_must_parse_as_http_or_https() {
    let text = BASE
        .replace("http://127.0.0.1:9090", "http://[::1")
        .replace("http://127.0.0.1:9999/hook", "unix:///run/hook.sock")
        .replace("http://127.0.0.1:8080/version", "ftp://127.0.0.1/version")
        + "\n[[target.probe]]\nname = \"health\"\nurl = \"http://exa mple/health\"\n\n\
           [[target.step]]\nphase = \"rollback\"\nkind = \"http\"\nurl = \"https://[{{target}}/undo\"\n";
    let errs = errors(&text);
    expect(
        &errs,
        "prometheus.url",
        line_of(&text, "[::1"),
        "not a valid URL (invalid IPv6 address)",
    );
    expect(
        &errs,
        "notifier[0].url",
        line_of(&text, "unix://"),
        "http:// or https://",
    );
    expect(
        &errs,
        "target[0].release.url",
        line_of(&text, "ftp://"),
        "http:// or https://",
    );
    expect(
        &errs,
        "target[0].probe[0].url",
        line_of(&text, "exa mple"),
        "not a valid URL",
    );
    expect(
        &errs,
        "target[0].step[0].url",
        line_of(&text, "https://[{{target}}"),
        "once its placeholders are filled in",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    // The URL itself is never repeated: it may hold a secret.
    assert!(errs.iter().all(|e| !e.message.contains("::1")), "{errs:#?}");
}

#[test]
fn templated_urls_with_placeholders_anywhere_pass() {
    for url in [
        "http://{{target}}.svc:8080/releases/{{version}}?from={{previous_version}}",
        "https://deploy.example.com:{{release_id}}/{{mode}}#{{timestamp}}",
        "http://{{target}}/",
    ] {
        let text = format!(
            "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"http\"\nurl = \"{url}\"\n"
        );
        assert_eq!(errors(&text), Vec::new(), "{url}");
    }
}

#[test]
fn a_url_file_must_hold_an_http_url_which_is_never_shown() {
    let mut env = MapEnvironment::with_path("/usr/bin:/bin");
    let file = PathBuf::from("/etc/rollguard/hook-url");
    let text = format!(
        "{BASE}\n[[notifier]]\nname = \"pager\"\nkind = \"webhook\"\nurl_file = {file:?}\n"
    );
    env.files
        .insert(file.clone(), "hooks.example.com/T0/SECRET\n".to_owned());
    let errs = parse_with_env(&text, Path::new("t.toml"), &env)
        .expect_err("not a URL")
        .errors;
    expect(
        &errs,
        "notifier[1].url_file",
        line_of(&text, "url_file"),
        "not a valid URL",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(!errs[0].message.contains("SECRET"), "{errs:#?}");
    env.files
        .insert(file, "  https://hooks.example.com/T0/SECRET\n".to_owned());
    assert!(parse_with_env(&text, Path::new("t.toml"), &env).is_ok());
}

#[test]
fn timeouts_and_switch_probe_intervals_below_their_floors_are_errors() {
    let text = BASE.replace(
        "url = \"http://127.0.0.1:9090\"\n",
        "url = \"http://127.0.0.1:9090\"\ntimeout = \"1ms\"\n",
    ) + "\n[[target.step]]\nphase = \"rollback\"\nkind = \"bluegreen_switch\"\nservice = \"shop\"\n\
           link = \"/srv/shop/live\"\nprobe_interval = \"1ns\"\ntimeout = \"99ms\"\n\n\
           [target.step.colors.blue]\npath = \"/srv/shop/blue\"\n\
           probe = [{ name = \"health\", url = \"http://127.0.0.1:8081/health\" }]\n\n\
           [target.step.colors.green]\npath = \"/srv/shop/green\"\n\
           probe = [{ name = \"health\", url = \"http://127.0.0.1:8082/health\" }]\n";
    let errs = errors(&text);
    expect(
        &errs,
        "prometheus.timeout",
        line_of(&text, "\"1ms\""),
        "at least 100ms",
    );
    expect(
        &errs,
        "target[0].step[0].probe_interval",
        line_of(&text, "1ns"),
        "at least 10ms",
    );
    expect(
        &errs,
        "target[0].step[0].timeout",
        line_of(&text, "99ms"),
        "at least 100ms",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn a_file_without_targets_is_refused_unless_allowed() {
    let text = "[daemon]\nlisten = \"127.0.0.1:9187\"\n";
    let errs = errors(text);
    // Located where the missing `[[target]]` would go: the end of the file.
    expect(&errs, "target", 3, "daemon.allow_no_targets = true");
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errors("")[0].line, Some(1));
    let allowed = "[daemon]\nallow_no_targets = true\n";
    assert_eq!(errors(allowed), Vec::new());
    // Broken targets are their own errors, not "no target".
    let broken = "[[target]]\nname = 3\n";
    let errs = errors(broken);
    assert!(errs.iter().all(|e| e.path != "target"), "{errs:#?}");
}
