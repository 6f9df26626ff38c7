//! `symlink_switch` steps: atomically repoint the `current` link at the
//! previous release directory, the way deploy tools switch releases: a new
//! link `<link>.rollguard-tmp` is created, then renamed over the old one, so
//! that every reader sees either the old or the new release, never none.

use super::{RollbackContext, StepError, StepResult};
use crate::config::SymlinkSwitchStep;
use crate::release::symlink::{names_a_directory, resolve_target};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// What a switch does: which link, and what its content will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchPlan {
    /// The link that is replaced.
    pub link: PathBuf,
    /// The release directory it will point to, as a full path.
    pub directory: PathBuf,
    /// The new link's content: relative when the old link's was.
    pub content: PathBuf,
}

/// The link a step repoints: its `link`, else the release source's.
pub fn link_of<'a>(step: &'a SymlinkSwitchStep, ctx: &'a RollbackContext) -> Option<&'a Path> {
    step.link.as_deref().or(ctx.link_hint.as_deref())
}

/// Works out the switch without changing anything: the directory is
/// `releases_dir` (or, when absent, the directory holding the link's
/// current target) joined with the version rolled back to.
pub fn plan(step: &SymlinkSwitchStep, ctx: &RollbackContext) -> Result<SwitchPlan, StepError> {
    let link = link_of(step, ctx)
        .ok_or_else(|| StepError::permanent("a symlink_switch step needs `link`"))?
        .to_owned();
    let version = &ctx.restore_version;
    if !names_a_directory(version) {
        return Err(StepError::permanent(format!(
            "version {version:?} cannot name a release directory (it must be one plain path component)"
        )));
    }
    let old_content = std::fs::read_link(&link).map_err(|error| {
        StepError::failed(format!("cannot read link {}: {error}", link.display()))
    })?;
    let (directory, content) = match &step.releases_dir {
        Some(releases_dir) => {
            let directory = releases_dir.join(version);
            let content = if old_content.is_absolute() {
                directory.clone()
            } else {
                relative_to_link(&link, &directory)
            };
            (directory, content)
        }
        None => {
            let current =
                resolve_target(&link).map_err(|error| StepError::failed(error.to_string()))?;
            let releases_dir = current.parent().ok_or_else(|| {
                StepError::permanent(format!(
                    "link {} points to {}, which has no parent directory",
                    link.display(),
                    current.display()
                ))
            })?;
            let content = match old_content.parent() {
                Some(parent) => parent.join(version),
                None => PathBuf::from(version),
            };
            (releases_dir.join(version), content)
        }
    };
    Ok(SwitchPlan {
        link,
        directory,
        content,
    })
}

/// `directory` as seen from the link's own directory when it lies below it
/// (`/srv/app/releases/v1` from `/srv/app/current` is `releases/v1`), else
/// the full path.
fn relative_to_link(link: &Path, directory: &Path) -> PathBuf {
    match link.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => directory
            .strip_prefix(parent)
            .map(Path::to_owned)
            .unwrap_or_else(|_| directory.to_owned()),
        _ => directory.to_owned(),
    }
}

/// Switches the link (blocking file system work, off the runtime).
pub(super) async fn execute(step: &SymlinkSwitchStep, ctx: &RollbackContext) -> StepResult {
    let (step, ctx) = (step.clone(), ctx.clone());
    tokio::task::spawn_blocking(move || switch(&plan(&step, &ctx)?))
        .await
        .map_err(|error| StepError::failed(format!("the switch task failed: {error}")))?
}

/// Checks the directory, creates the temporary link, renames it over the
/// link, and syncs the directory so the switch survives a power cut.
pub fn switch(plan: &SwitchPlan) -> StepResult {
    let directory = &plan.directory;
    match std::fs::metadata(directory) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StepError::failed(format!(
                "{} is not a directory",
                directory.display()
            )));
        }
        Err(error) => {
            return Err(StepError::failed(format!(
                "release directory {}: {error}",
                directory.display()
            )));
        }
    }
    let mut tmp = plan.link.clone().into_os_string();
    tmp.push(".rollguard-tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover of an interrupted switch is ours to replace.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => {
            return Err(StepError::failed(format!(
                "cannot remove {}: {error}",
                tmp.display()
            )));
        }
    }
    std::os::unix::fs::symlink(&plan.content, &tmp).map_err(|error| {
        StepError::failed(format!("cannot create link {}: {error}", tmp.display()))
    })?;
    if let Err(error) = std::fs::rename(&tmp, &plan.link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StepError::failed(format!(
            "cannot rename {} over {}: {error}",
            tmp.display(),
            plan.link.display()
        )));
    }
    if let Some(parent) = plan.link.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Durability only: the switch itself is already visible.
        if let Err(error) = std::fs::File::open(parent).and_then(|dir| dir.sync_all()) {
            tracing::warn!(dir = %parent.display(), %error, "Cannot sync the link's directory");
        }
    }
    Ok(Some(format!(
        "{} now points to {}",
        plan.link.display(),
        plan.content.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_below_the_link_are_relative() {
        assert_eq!(
            relative_to_link(
                Path::new("/srv/app/current"),
                Path::new("/srv/app/releases/v1")
            ),
            PathBuf::from("releases/v1")
        );
        assert_eq!(
            relative_to_link(Path::new("/srv/app/current"), Path::new("/opt/releases/v1")),
            PathBuf::from("/opt/releases/v1")
        );
    }
}
