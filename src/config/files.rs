//! Files the daemon reads when it starts: `check` reads them too, so that a
//! missing or unreadable token is a configuration error found by `check`,
//! not an exit 78 (or a notifier that never works) at start. Their contents
//! are never shown.

use super::env::Environment;
use super::problems::Problems;
use super::sections::Sections;
use super::validate::url_problem;
use std::path::Path;

/// Every referenced file: tokens, secret URLs and the kubeconfig.
pub(crate) fn check(sections: &Sections, env: &dyn Environment, problems: &mut Problems) {
    let daemon = &sections.daemon;
    if let Some(path) = &daemon.api_token_file {
        secret(path, "daemon.api_token_file", env, problems);
    }
    if let Some(path) = &daemon.kubeconfig {
        readable(path, "daemon.kubeconfig", env, problems);
    }
    if let Some(path) = sections
        .prometheus
        .as_ref()
        .and_then(|p| p.bearer_token_file.as_ref())
    {
        secret(path, "prometheus.bearer_token_file", env, problems);
    }
    for (i, notifier) in &sections.notifiers {
        if let Some(path) = &notifier.url_file {
            let key = format!("notifier[{i}].url_file");
            if let Some(url) = secret(path, &key, env, problems) {
                // As the notifier reads it: trimmed. Never shown.
                if let Err(why) = url_problem(url.trim()) {
                    problems.push(key, format!("the URL in {}: {why}", path.display()));
                }
            }
        }
    }
}

/// A file that must be readable; its text, when it is.
fn readable(
    path: &Path,
    key: &str,
    env: &dyn Environment,
    problems: &mut Problems,
) -> Option<String> {
    match env.read_file(path) {
        Ok(text) => Some(text),
        Err(error) => {
            problems.push(key, format!("cannot read {}: {error}", path.display()));
            None
        }
    }
}

/// A file holding a secret: readable, and not empty once trimmed. Its
/// text, when it is both, for a caller that checks its form.
pub(crate) fn secret(
    path: &Path,
    key: &str,
    env: &dyn Environment,
    problems: &mut Problems,
) -> Option<String> {
    let text = readable(path, key, env, problems)?;
    if text.trim().is_empty() {
        problems.push(key, format!("{} is empty", path.display()));
        return None;
    }
    Some(text)
}
