//! What a step would do, in one line: what shadow mode reports instead of
//! running it, and what the incident timeline shows.

use super::{
    RollbackContext, bluegreen, command, config_restore, http, kubernetes, precheck, swarm, symlink,
};
use crate::config::{StepAction, StepConfig};

/// Exactly what `step` would do for `ctx`, rendered: "command:
/// /srv/app/bin/deploy-version v1.3.2 --rolling", "symlink_switch:
/// /srv/app/current → /srv/app/releases/v1.3.2", "systemd_restart:
/// app.service", "http: POST https://lb/drain (status 200 expected)",
/// "wait: 30s", "verify: until probes and metrics are back to baseline, at
/// most 5m". Secrets (`url_env`, `headers_env` values) are named, never
/// shown. Reads the link of a `symlink_switch` without changing anything.
pub fn describe(step: &StepConfig, ctx: &RollbackContext) -> String {
    let kind = step.kind().as_str();
    let what = match &step.action {
        StepAction::Command(c) | StepAction::Backup(c) => match command::argv(c, ctx) {
            Ok(argv) => argv
                .iter()
                .map(|arg| shown_arg(arg))
                .collect::<Vec<_>>()
                .join(" "),
            Err(error) => format!("cannot be rendered: {}", error.message),
        },
        StepAction::Http(h) => {
            let url = match (&h.url, &h.url_env) {
                (Some(url), _) => crate::template::render_url(url, &ctx.vars())
                    .unwrap_or_else(|error| format!("<cannot render: {error}>")),
                (None, Some(var)) => format!("${var}"),
                (None, None) => "<no url>".to_owned(),
            };
            format!(
                "{} {url} ({} expected)",
                http::method(h),
                http::expected_text(h)
            )
        }
        StepAction::SymlinkSwitch(s) => match symlink::plan(s, ctx) {
            Ok(plan) => format!("{} → {}", plan.link.display(), plan.directory.display()),
            Err(error) => {
                let link = symlink::link_of(s, ctx)
                    .map(|link| link.display().to_string())
                    .unwrap_or_else(|| "<no link>".to_owned());
                format!("{link} → {} ({})", ctx.restore_version, error.message)
            }
        },
        StepAction::SystemdRestart(s) => s.unit.clone(),
        StepAction::Wait(w) => humantime::format_duration(w.duration).to_string(),
        StepAction::Verify(_) => format!(
            "until probes and metrics are back to baseline, at most {}",
            humantime::format_duration(step.common.timeout)
        ),
        StepAction::KubernetesUndo(_)
        | StepAction::KubernetesSetImage(_)
        | StepAction::KubernetesScale(_)
        | StepAction::KubernetesRolloutStatus(_) => {
            kubernetes::describe(step, ctx).unwrap_or_default()
        }
        StepAction::Precheck(p) => precheck::describe(p, ctx),
        StepAction::SwarmPrecheck(_)
        | StepAction::SwarmRollback(_)
        | StepAction::SwarmSetImage(_) => swarm::describe(step, ctx).unwrap_or_default(),
        StepAction::BluegreenSwitch(s) => bluegreen::describe(s, ctx),
        StepAction::ConfigRestore(s) => config_restore::describe(s, ctx),
    };
    format!("{kind}: {what}")
}

/// An argument as shown to a person: bare when it is plainly one word,
/// quoted otherwise, so that `v1; touch /tmp/x` reads as the one argument
/// it is.
fn shown_arg(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:=@%+,-".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("{arg:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mode;
    use std::time::Duration;

    fn step(toml_text: &str) -> StepConfig {
        toml::from_str(toml_text).expect("a valid step")
    }

    fn ctx() -> RollbackContext {
        RollbackContext {
            bad_version: "v1.3.3".into(),
            restore_version: "v1.3.2".into(),
            release_id: "r7".into(),
            reason: "error rate 5x baseline".into(),
            namespace_hint: Some("prod".into()),
            deployment_hint: Some("app".into()),
            ..RollbackContext::fixture(Mode::Enforce)
        }
    }

    #[test]
    fn descriptions_are_rendered() {
        let cases = [
            (
                "phase = 'rollback'\nkind = 'command'\nargv = ['/srv/app/bin/deploy-version', '{{previous_version}}', '--rolling']",
                "command: /srv/app/bin/deploy-version v1.3.2 --rolling",
            ),
            (
                "phase = 'rollback'\nkind = 'command'\nargv = ['/bin/echo', 'a b', '{{version}}']",
                "command: /bin/echo \"a b\" v1.3.3",
            ),
            (
                "phase = 'traffic'\nkind = 'http'\nurl = 'https://lb/{{target}}/drain'\nexpect_status = [200]",
                "http: POST https://lb/api/drain (status 200 expected)",
            ),
            (
                "phase = 'notify'\nkind = 'http'\nmethod = 'put'\nurl_env = 'HOOK_URL'",
                "http: PUT $HOOK_URL (any 2xx status expected)",
            ),
            (
                "phase = 'rollback'\nkind = 'systemd_restart'\nunit = 'app.service'",
                "systemd_restart: app.service",
            ),
            (
                "phase = 'verify'\nkind = 'wait'\nduration = '30s'",
                "wait: 30s",
            ),
            (
                "phase = 'verify'\nkind = 'verify'",
                "verify: until probes and metrics are back to baseline, at most 5m",
            ),
            (
                "phase = 'rollback'\nkind = 'kubernetes_undo'",
                "kubernetes_undo: deployment prod/app to the previous revision (v1.3.2)",
            ),
            (
                "phase = 'rollback'\nkind = 'kubernetes_undo'\nnamespace = 'staging'\nto_revision = 3",
                "kubernetes_undo: deployment staging/app to revision 3",
            ),
            (
                "phase = 'rollback'\nkind = 'kubernetes_set_image'\ncontainer = 'web'\nimage = 'registry/app:{{previous_version}}'",
                "kubernetes_set_image: deployment prod/app container web → registry/app:v1.3.2",
            ),
            (
                "phase = 'rollback'\nkind = 'kubernetes_scale'\ndeployment = 'worker'\nreplicas = 5",
                "kubernetes_scale: deployment prod/worker to 5 replicas",
            ),
            (
                "phase = 'verify'\nkind = 'kubernetes_rollout_status'\ntimeout = '2m'",
                "kubernetes_rollout_status: deployment prod/app until rolled out, at most 2m",
            ),
            (
                "phase = 'rollback'\nkind = 'swarm_rollback'\nservice = 'api'",
                "swarm_rollback: service api to its previous spec (v1.3.2), until rolled back, at most 5m",
            ),
            (
                "phase = 'rollback'\nkind = 'swarm_set_image'\nservice = 'api'\nimage = 'reg/app:{{previous_version}}'\ntimeout = '2m'",
                "swarm_set_image: service api → reg/app:v1.3.2, until updated, at most 2m",
            ),
            (
                "phase = 'precheck'\nkind = 'precheck'",
                "precheck: the running version (release source) is still v1.3.3, else stop before anything changes",
            ),
            (
                "phase = 'precheck'\nkind = 'precheck'\nrunning = false\ntarget = 'git_tag'\nrepo = '/srv/app'",
                "precheck: tag v1.3.2 exists in /srv/app, else stop before anything changes",
            ),
            (
                "phase = 'precheck'\nkind = 'precheck'\nrunning = false\ntarget = 'kubernetes_revision'",
                "precheck: deployment prod/app has a previous revision, else stop before anything changes",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(describe(&step(text), &ctx()), expected);
        }
        let mut verify = step("phase = 'verify'\nkind = 'verify'");
        verify.common.timeout = Duration::from_secs(90);
        assert!(describe(&verify, &ctx()).ends_with("at most 1m 30s"));
    }

    #[test]
    fn bluegreen_and_config_restore_descriptions_are_rendered() {
        let cases = [
            (
                "phase = 'rollback'\nkind = 'bluegreen_switch'\nlive_url = 'http://lb/{{target}}/active'\nflip_http = { method = 'put', url = 'http://lb/active' }\ncolors.blue.probe = [{ name = 'h', url = 'http://b/health' }]\ncolors.green.probe = [{ name = 'h', url = 'http://g/health' }]",
                "bluegreen_switch: flip api from the live colour (as GET http://lb/api/active says) to the other of blue (http://b/health) and green (http://g/health) after 3 healthy probes, by PUT http://lb/active",
            ),
            (
                "phase = 'rollback'\nkind = 'bluegreen_switch'\nservice = 'shop'\nhealthy_probes = 1\nlive_argv = ['/usr/bin/lb', 'live']\nflip_argv = ['/usr/bin/lb', 'set', '{{color}}']\ncolors.blue.probe = [{ name = 'h', url = 'http://b/health' }]\ncolors.green.probe = [{ name = 'h', url = 'http://g/health' }]",
                "bluegreen_switch: flip shop from the live colour (as /usr/bin/lb live says) to the other of blue (http://b/health) and green (http://g/health) after 1 healthy probe, by running /usr/bin/lb set {{color}}",
            ),
            (
                "phase = 'config'\nkind = 'config_restore'\nfrom = 'git_tag'\nrepo = '/srv/app'\npath = 'config'",
                "config_restore: config in /srv/app as tag v1.3.2 has it (git checkout)",
            ),
            (
                "phase = 'config'\nkind = 'config_restore'\nfrom = 'release_dir'\nreleases_dir = '/srv/app/releases'\ndir = '/etc/app'\npath = 'etc'",
                "config_restore: /etc/app ← /srv/app/releases/v1.3.2/etc (copied beside it, then swapped)",
            ),
            (
                "phase = 'config'\nkind = 'config_restore'\nfrom = 'git_tag'\nrepo = '/srv/app'\npath = 'config'\ntag = '--upload-pack=x'",
                "config_restore: refused before anything changes: tag \"--upload-pack=x\" is refused: it is empty, starts with `-` or holds control characters",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(describe(&step(text), &ctx()), expected);
        }
    }
}
