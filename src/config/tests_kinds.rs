//! Kind-tagged tables (release sources and steps): every mistake inside
//! one keeps its key path and line, and kinds that are unknown or not built
//! yet say which kinds there are; Swarm kinds; Kubernetes release keys and leader
//! election settings.

use super::tests_parse::{BASE, errors, expect, line_of};

#[test]
fn an_unknown_key_in_a_step_names_its_path_and_line() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"verify\"\nkind = \"verify\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"command\"\nargv = [\"true\"]\ntimout = \"10s\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[1].timout",
        line_of(&text, "timout"),
        "unknown field `timout`: step kind `command` takes `kind`, `phase`, `name`, `timeout`",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn an_unknown_kind_lists_the_valid_kinds() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"comand\"\nargv = [\"true\"]\n\n[[target]]\nname = \"web\"\n[target.release]\nkind = \"git\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].kind",
        line_of(&text, "\"comand\""),
        "unknown step kind `comand`, expected one of `command`, `http`, `symlink_switch`, `systemd_restart`, `wait`, `verify`, `kubernetes_undo`",
    );
    expect(
        &errs,
        "target[1].release.kind",
        line_of(&text, "\"git\""),
        "unknown release kind `git`, expected one of `version_url`, `symlink`, `kubernetes`, `announce`",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn swarm_targets_are_accepted_and_their_keys_checked() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"precheck\"\nkind = \"swarm_precheck\"\nservice = \"api\"\nversion_label = \"v\"\ndocker = \"/bin/sh\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"swarm_rollback\"\nservice = \"api\"\ndocker = \"/bin/sh\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"swarm_set_image\"\nservice = \"api\"\nimage = \"reg/app:{{{{previous_version}}}}\"\ndocker = \"/bin/sh\"\n\n[[target]]\nname = \"worker\"\n[target.release]\nkind = \"swarm\"\nservice = \"worker\"\nversion_label = \"version\"\ndocker = \"/bin/sh\"\npoll_interval = \"30s\"\n"
    );
    assert_eq!(errors(&text), Vec::new());

    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"swarm_set_image\"\nservice = \"--force\"\nimage = \"reg/app:{{{{versoin}}}}\"\ndocker = \"/nonexistent/docker\"\n\n[[target]]\nname = \"worker\"\n[target.release]\nkind = \"swarm\"\nservice = \"\"\ndocker = \"/bin/sh\"\nnamespace = \"prod\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].service",
        line_of(&text, "\"--force\""),
        "must not start with `-`",
    );
    expect(
        &errs,
        "target[0].step[0].image",
        line_of(&text, "versoin"),
        "unknown template variable `{{versoin}}`",
    );
    expect(
        &errs,
        "target[0].step[0].docker",
        line_of(&text, "/nonexistent/docker"),
        "does not exist or is not executable",
    );
    expect(
        &errs,
        "target[1].release.namespace",
        line_of(&text, "namespace = \"prod\""),
        "`namespace` is not used by release kind `swarm`, which takes `kind`, `service`, `version_label`, `docker`, `poll_interval`",
    );
    expect(
        &errs,
        "target[1].release.service",
        line_of(&text, "service = \"\""),
        "must not be empty",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn wrong_types_inside_a_kind_name_their_key() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"kubernetes_scale\"\nreplicas = \"five\"\nnamespace = \"prod\"\ndeployment = \"app\"\n\n[[target.step]]\nphase = \"rollbak\"\nkind = \"wait\"\nduration = 30\n\n[[target]]\nname = \"web\"\n[target.release]\nkind = \"symlink\"\npath = 7\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].replicas",
        line_of(&text, "\"five\""),
        "invalid type",
    );
    expect(
        &errs,
        "target[0].step[1].phase",
        line_of(&text, "rollbak"),
        "unknown variant `rollbak`",
    );
    expect(
        &errs,
        "target[0].step[1].duration",
        line_of(&text, "duration = 30"),
        "invalid type",
    );
    expect(
        &errs,
        "target[1].release.path",
        line_of(&text, "path = 7"),
        "invalid type",
    );
    assert_eq!(errs.len(), 4, "{errs:#?}");
}

#[test]
fn a_step_without_a_kind_points_at_its_header() {
    let text = format!("{BASE}\n[[target.step]]\nphase = \"rollback\"\n");
    expect(
        &errors(&text),
        "target[0].step[0]",
        line_of(&text, "[[target.step]]"),
        "missing field `kind`: a step needs one of `command`",
    );
}

#[test]
fn an_unreadable_step_does_not_hide_the_target_s_other_mistakes() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"verify\"\nkind = \"wait\"   # no duration\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"kubernetes_undo\"   # no deployment\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].kind",
        line_of(&text, "# no duration"),
        "step kind `wait` needs `duration`",
    );
    // The second step keeps its own index.
    expect(
        &errs,
        "target[0].step[1].kind",
        line_of(&text, "# no deployment"),
        "needs `namespace` when the release kind is not `kubernetes`",
    );
}

#[test]
fn release_kinds_need_their_keys_and_no_others() {
    let text = format!(
        "{BASE}\n[[target]]\nname = \"web\"\n[target.release]\nkind = \"symlink\"\nurl = \"http://127.0.0.1/v\"\n\n[[target]]\nname = \"k8s\"\n[target.release]\nkind = \"kubernetes\"   # k8s\nnamespace = \"prod\"\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[1].release.url",
        line_of(&text, "http://127.0.0.1/v"),
        "`url` is not used by release kind `symlink`",
    );
    expect(
        &errs,
        "target[1].release.kind",
        line_of(&text, "\"symlink\""),
        "needs `path`",
    );
    expect(
        &errs,
        "target[2].release.kind",
        line_of(&text, "# k8s"),
        "needs `deployment`",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn step_kinds_need_their_keys_and_no_others() {
    let text = format!(
        "{BASE}\n[[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\nunit = \"app.service\"\n\n[[target.step]]\nphase = \"traffic\"\nkind = \"wait\"  # no duration\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"kubernetes_scale\"  # no replicas\nreplicas = 0\nnamespace = \"prod\"\n\n[[target.step]]\nphase = \"notify\"\nkind = \"http\"  # no url\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[0].step[0].unit",
        line_of(&text, "app.service"),
        "`unit` is not used by step kind `symlink_switch`",
    );
    expect(
        &errs,
        "target[0].step[0].kind",
        line_of(&text, "symlink_switch"),
        "needs `link`",
    );
    expect(
        &errs,
        "target[0].step[1].kind",
        line_of(&text, "no duration"),
        "needs `duration`",
    );
    expect(
        &errs,
        "target[0].step[2].kind",
        line_of(&text, "kubernetes_scale"),
        "needs `deployment` when the release kind is not `kubernetes`",
    );
    expect(
        &errs,
        "target[0].step[3].kind",
        line_of(&text, "no url"),
        "needs `url` or `url_env`",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
}

#[test]
fn kubernetes_version_keys_and_leader_election_are_checked() {
    let text = format!(
        "[daemon]\nleader_election = {{ lease = \"\", duration = \"1500ms\" }}\n\n{BASE}\n[[target]]\nname = \"k8s\"\n[target.release]\nkind = \"kubernetes\"\nnamespace = \"prod\"\ndeployment = \"app\"\nversion_label = \"app.kubernetes.io/version\"\nversion_annotation = \"v\"   # both\n\n[[target]]\nname = \"url\"\n[target.release]\nkind = \"version_url\"\nurl = \"http://127.0.0.1/v\"\nversion_label = \"x\"   # not here\n"
    );
    let errs = errors(&text);
    expect(
        &errs,
        "target[1].release.version_annotation",
        line_of(&text, "# both"),
        "not both",
    );
    expect(
        &errs,
        "target[2].release.version_label",
        line_of(&text, "# not here"),
        "not used by release kind `version_url`",
    );
    let election = line_of(&text, "leader_election");
    expect(
        &errs,
        "daemon.leader_election.lease",
        election,
        "must not be empty",
    );
    expect(
        &errs,
        "daemon.leader_election.duration",
        election,
        "whole seconds",
    );
}

#[test]
fn a_symlink_switch_takes_its_link_from_a_symlink_source() {
    let text = "[[target]]\nname = \"web\"\n[target.release]\nkind = \"symlink\"\npath = \"/srv/web/current\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\n";
    assert_eq!(errors(text), Vec::new());
}

#[test]
fn a_precheck_reads_only_what_can_be_read_and_names_what_it_checks() {
    let text = "[[target]]\nname = \"web\"\n[target.release]\nkind = \"symlink\"\npath = \"/srv/web/current\"\n\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\ntarget = \"symlink_dir\"\n\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\nrunning = false\ntarget = \"git_tag\"\nrepo = \"/srv/web/repo\"\n";
    assert_eq!(errors(text), Vec::new());

    let text = "[[target]]\nname = \"ci\"\n[target.release]\nkind = \"announce\"\n\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\nrunning = true\non_failure = \"continue\"\n\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\nrunning = false\ntarget = \"git_tag\"\nlink = \"/srv/current\"\n\n[[target.step]]\nphase = \"precheck\"\nkind = \"precheck\"\nrunning = false\ntarget = \"kubernetes_revision\"\n";
    let errs = errors(text);
    expect(
        &errs,
        "target[0].step[0].running",
        line_of(text, "running = true"),
        "an `announce` release source cannot be read",
    );
    expect(
        &errs,
        "target[0].step[0].on_failure",
        line_of(text, "on_failure"),
        "a failed precheck always aborts the pipeline",
    );
    expect(
        &errs,
        "target[0].step[1].link",
        line_of(text, "link ="),
        "`link` is only for `target = \"symlink_dir\"`",
    );
    expect(
        &errs,
        "target[0].step[1].target",
        line_of(text, "\"git_tag\""),
        "`target = \"git_tag\"` needs `repo`",
    );
    expect(
        &errs,
        "target[0].step[2].target",
        line_of(text, "\"kubernetes_revision\""),
        "needs `namespace` when the release kind is not `kubernetes`",
    );
    assert_eq!(errs.len(), 6, "{errs:#?}");
}

#[test]
fn a_precheck_must_run_before_anything_changes() {
    let text = "[[target]]\nname = \"web\"\n[target.release]\nkind = \"symlink\"\npath = \"/srv/web/current\"\n\n[[target.step]]\nphase = \"rollback\"\nkind = \"symlink_switch\"\n\n[[target.step]]\nphase = \"verify\"\nkind = \"precheck\"\n";
    let errs = errors(text);
    expect(
        &errs,
        "target[0].step[1].phase",
        line_of(text, "\"verify\""),
        "a precheck must run before anything changes, but step kind `symlink_switch` (target[0].step[0]) runs first",
    );
    assert_eq!(errs.len(), 1, "{errs:#?}");
}
