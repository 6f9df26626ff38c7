//! `config_restore` steps: bring back the configuration directory of the
//! version rolled back to.
//!
//! - `from = "git_tag"`: the tag (`{{previous_version}}` unless `tag` says)
//!   is refused when it starts with `-`, then resolved with `git -C REPO
//!   rev-parse --verify --quiet --end-of-options refs/tags/TAG^{commit}`;
//!   only the commit it names reaches `git -C REPO checkout --no-overlay
//!   COMMIT -- PATH` (argv, never a shell), which also removes the files
//!   the bad release added under PATH.
//! - `from = "release_dir"`: `<releases_dir>/<tag>/<path>` is copied into
//!   `<dir>.rollguard-new` beside the live directory, then the two are
//!   exchanged in one `renameat2(RENAME_EXCHANGE)` and the old copy
//!   removed: a crash leaves the old or the new directory whole, never
//!   half of one, and a leftover copy is replaced on the next attempt.
//!
//! Restarting what reads the configuration is a `systemd_restart` step
//! after this one. Shadow mode runs [`dry_run`]: the tag is resolved, or
//! the previous release's directory looked at; nothing changes.

use super::{RollbackContext, StepError, StepResult, render};
use crate::config::{ConfigRestoreStep, ConfigSource, GIT, StepAction, StepConfig};
use crate::exec::{self, CommandSpec};
use crate::release::symlink::names_a_directory;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Most characters of git's stderr quoted in a message.
const QUOTE_LIMIT: usize = 300;

/// Restores the configuration within `timeout`.
pub(super) async fn execute(
    step: &ConfigRestoreStep,
    timeout: Duration,
    ctx: &RollbackContext,
) -> StepResult {
    let tag = tag(step, ctx).map_err(|error| StepError {
        message: format!("{}; nothing was changed", error.message),
        ..error
    })?;
    match step.from {
        ConfigSource::GitTag => from_git(step, &tag, timeout).await,
        ConfigSource::ReleaseDir => {
            let plan = plan(step, &tag)?;
            tokio::task::spawn_blocking(move || replace(&plan))
                .await
                .map_err(|error| StepError::failed(format!("the copy task failed: {error}")))?
        }
    }
}

/// The rendered tag, refused when it could be read as an option.
pub fn tag(step: &ConfigRestoreStep, ctx: &RollbackContext) -> Result<String, StepError> {
    let tag = render(step.tag_template(), &ctx.vars())?;
    if tag.is_empty() || tag.starts_with('-') || tag.chars().any(char::is_control) {
        return Err(StepError::permanent(format!(
            "tag {tag:?} is refused: it is empty, starts with `-` or holds control characters"
        )));
    }
    Ok(tag)
}

/// One line of what the step would do.
pub fn describe(step: &ConfigRestoreStep, ctx: &RollbackContext) -> String {
    let tag = match tag(step, ctx) {
        Ok(tag) => tag,
        Err(error) => return format!("refused before anything changes: {}", error.message),
    };
    let path = step.path.display();
    match step.from {
        ConfigSource::GitTag => format!(
            "{path} in {} as tag {tag} has it (git checkout)",
            shown(step.repo.as_deref())
        ),
        ConfigSource::ReleaseDir => format!(
            "{} ← {}/{tag}/{path} (copied beside it, then swapped)",
            shown(step.dir.as_deref()),
            shown(step.releases_dir.as_deref())
        ),
    }
}

/// A configured path, or `<none>`.
fn shown(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string())
        .unwrap_or_else(|| "<none>".to_owned())
}

/// `git rev-parse` the tag, then check its commit's `path` out.
async fn from_git(step: &ConfigRestoreStep, tag: &str, timeout: Duration) -> StepResult {
    let repo = repo_of(step)?;
    let deadline = crate::time::deadline(Instant::now(), timeout);
    let commit = resolve(repo, tag, deadline).await?;
    let path = step.path.display().to_string();
    let checkout = ["checkout", "--no-overlay", &commit, "--", &path];
    let output = git(repo, &checkout, deadline)
        .await
        .map_err(|error| StepError::failed(format!("git checkout: {error}")))?;
    let repo = repo.display();
    if !output.success() {
        return Err(StepError::failed(format!(
            "git checkout {commit} -- {path} in {repo}: {}{}",
            output.status_text(),
            quoted(&output.stderr_tail(QUOTE_LIMIT))
        )));
    }
    Ok(Some(format!(
        "{path} in {repo} is now as tag {tag} (commit {commit}) has it"
    )))
}

/// Shadow mode's dry run: the tag resolves to a commit, or the previous
/// release's configuration directory exists; nothing is changed. `limit`
/// bounds it.
pub(super) async fn dry_run(
    step: &StepConfig,
    ctx: &RollbackContext,
    limit: Duration,
) -> Result<String, String> {
    let StepAction::ConfigRestore(s) = &step.action else {
        return Err("not a config_restore step".to_owned());
    };
    let said = |text: String| format!("config_restore: {text} (dry run)");
    let tag = tag(s, ctx).map_err(|error| said(error.message))?;
    let path = s.path.display();
    match s.from {
        ConfigSource::GitTag => {
            let repo = repo_of(s).map_err(|error| said(error.message))?;
            let deadline = crate::time::deadline(Instant::now(), limit);
            let commit = resolve(repo, &tag, deadline)
                .await
                .map_err(|error| said(error.message))?;
            Ok(said(format!(
                "tag {tag} is commit {commit} in {}: would check {path} out",
                repo.display()
            )))
        }
        ConfigSource::ReleaseDir => {
            let plan = plan(s, &tag).map_err(|error| said(error.message))?;
            match std::fs::metadata(&plan.source) {
                Ok(meta) if meta.is_dir() => Ok(said(format!(
                    "{} exists: would replace {} with a copy of it",
                    plan.source.display(),
                    plan.live.display()
                ))),
                Ok(_) => Err(said(format!(
                    "{} is not a directory",
                    plan.source.display()
                ))),
                Err(error) => Err(said(format!(
                    "previous configuration {}: {error}",
                    plan.source.display()
                ))),
            }
        }
    }
}

/// The `repo` of a `git_tag` restore.
fn repo_of(step: &ConfigRestoreStep) -> Result<&Path, StepError> {
    step.repo
        .as_deref()
        .ok_or_else(|| StepError::permanent("`from = \"git_tag\"` needs `repo`"))
}

/// `git -C REPO ARGS`, within what is left until `deadline`.
async fn git(
    repo: &Path,
    args: &[&str],
    deadline: Instant,
) -> Result<exec::CommandOutput, exec::ExecError> {
    let mut argv = vec![GIT.to_owned(), "-C".to_owned(), repo.display().to_string()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let left = deadline.saturating_duration_since(Instant::now());
    exec::run(CommandSpec::new(argv, left)).await
}

/// The commit `tag` names in `repo`, through `git rev-parse --verify
/// --end-of-options`, so that the tag can never be read as an option.
async fn resolve(repo: &Path, tag: &str, deadline: Instant) -> Result<String, StepError> {
    let spec = format!("refs/tags/{tag}^{{commit}}");
    let verify = [
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        &spec,
    ];
    let output = git(repo, &verify, deadline)
        .await
        .map_err(|error| StepError::failed(format!("git rev-parse: {error}")))?;
    let repo = repo.display();
    if !output.success() {
        return Err(StepError::permanent(format!(
            "tag {tag} does not name a commit in {repo}; nothing was changed{}",
            quoted(&output.stderr_tail(QUOTE_LIMIT))
        )));
    }
    let commit = output.stdout.trim().to_owned();
    if commit.is_empty() || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StepError::failed(format!(
            "git rev-parse answered {commit:?} for tag {tag}, not a commit id; nothing was changed"
        )));
    }
    Ok(commit)
}

/// ": text", or nothing for no text.
fn quoted(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// What a copy from the previous release directory does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    /// The previous release's configuration directory.
    pub source: PathBuf,
    /// The live configuration directory.
    pub live: PathBuf,
    /// The copy beside it, exchanged with it once complete.
    pub staging: PathBuf,
}

/// Works the copy out without changing anything.
pub fn plan(step: &ConfigRestoreStep, tag: &str) -> Result<CopyPlan, StepError> {
    let (Some(releases_dir), Some(live)) = (&step.releases_dir, &step.dir) else {
        return Err(StepError::permanent(
            "`from = \"release_dir\"` needs `releases_dir` and `dir`",
        ));
    };
    if !names_a_directory(tag) {
        return Err(StepError::permanent(format!(
            "tag {tag:?} cannot name a release directory (it must be one plain path component); nothing was changed"
        )));
    }
    let mut staging = live.clone().into_os_string();
    staging.push(".rollguard-new");
    Ok(CopyPlan {
        source: releases_dir.join(tag).join(&step.path),
        live: live.clone(),
        staging: PathBuf::from(staging),
    })
}

/// Copies `source` into `staging`, exchanges it with `live`, removes the
/// old copy and syncs the parent directory.
pub fn replace(plan: &CopyPlan) -> StepResult {
    let failed = |what: &str, path: &Path, error: std::io::Error| {
        StepError::failed(format!("{what} {}: {error}", path.display()))
    };
    match std::fs::metadata(&plan.source) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StepError::permanent(format!(
                "{} is not a directory; nothing was changed",
                plan.source.display()
            )));
        }
        Err(error) => {
            return Err(StepError::failed(format!(
                "previous configuration {}: {error}; nothing was changed",
                plan.source.display()
            )));
        }
    }
    remove_leftover(&plan.staging).map_err(|e| failed("cannot remove", &plan.staging, e))?;
    copy_tree(&plan.source, &plan.staging)
        .map_err(|e| failed("cannot copy into", &plan.staging, e))?;
    match std::fs::symlink_metadata(&plan.live) {
        Ok(_) => {
            exchange(&plan.staging, &plan.live)
                .map_err(|e| failed("cannot swap in", &plan.live, e))?;
            // The staging path now holds the bad release's configuration.
            remove_leftover(&plan.staging)
                .map_err(|e| failed("cannot remove the old copy", &plan.staging, e))?;
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            std::fs::rename(&plan.staging, &plan.live)
                .map_err(|e| failed("cannot rename into", &plan.live, e))?;
        }
        Err(error) => return Err(failed("cannot read", &plan.live, error)),
    }
    if let Some(parent) = plan.live.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Durability only: the swap itself is already visible.
        if let Err(error) = std::fs::File::open(parent).and_then(|dir| dir.sync_all()) {
            tracing::warn!(dir = %parent.display(), %error, "Cannot sync the configuration's directory");
        }
    }
    Ok(Some(format!(
        "{} now holds a copy of {}",
        plan.live.display(),
        plan.source.display()
    )))
}

/// Swaps two paths in one step.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE).map_err(std::io::Error::from)
}

/// Swaps two paths by two renames where `renameat2` is missing: a crash
/// between them leaves the live path missing, both copies whole.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let mut aside = b.as_os_str().to_owned();
    aside.push(".rollguard-old");
    let aside = PathBuf::from(aside);
    remove_leftover(&aside)?;
    std::fs::rename(b, &aside)?;
    std::fs::rename(a, b)?;
    std::fs::rename(&aside, a)
}

/// Removes a directory, file or link at `path`, if there is one.
fn remove_leftover(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Copies a directory tree: files with their permissions, links as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else {
            std::fs::copy(&source, &target)?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    Ok(())
}
