//! Which of the daemon's environment variables hold secrets: those that
//! the configuration names as the source of a secret URL or header
//! (`url_env`, `headers_env` of notifiers and `http` steps). The daemon
//! reads them itself; the programs it runs never inherit them
//! ([`crate::exec::withhold_variables`]).

use super::{Config, StepAction};
use std::collections::BTreeSet;

impl Config {
    /// The names of the environment variables this configuration reads
    /// secrets from, for the daemon to withhold from its children.
    pub fn secret_variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for notifier in &self.notifiers {
            names.extend(notifier.url_env.iter().cloned());
            names.extend(notifier.headers_env.values().cloned());
        }
        for target in &self.targets {
            for step in &target.step {
                if let StepAction::Http(http) = &step.action {
                    names.extend(http.url_env.iter().cloned());
                    names.extend(http.headers_env.values().cloned());
                }
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn names_the_variables_of_notifiers_and_http_steps() {
        let config: Config = toml::from_str(
            r#"
            [[notifier]]
            name = "chat"
            kind = "slack"
            url_env = "SLACK_URL"

            [[notifier]]
            name = "hook"
            kind = "webhook"
            url = "http://127.0.0.1:9/hook"
            headers_env = { "X-Token" = "HOOK_TOKEN" }

            [[target]]
            name = "api"

            [target.release]
            kind = "symlink"
            path = "/srv/api/current"

            [[target.step]]
            kind = "http"
            phase = "traffic"
            url_env = "FLAG_URL"
            headers_env = { Authorization = "FLAG_AUTH" }

            [[target.step]]
            kind = "command"
            phase = "notify"
            argv = ["true"]
            "#,
        )
        .expect("parses");
        let names: Vec<String> = config.secret_variables().into_iter().collect();
        assert_eq!(names, ["FLAG_AUTH", "FLAG_URL", "HOOK_TOKEN", "SLACK_URL"]);
    }
}
