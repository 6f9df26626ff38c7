//! `kind = "migrations"` data checks: the schema migrations the new release
//! has and the previous one lacks. A rollback would run the previous code
//! on a schema those migrations changed, which is what a forward fix
//! avoids, so any such migration makes the impact `major` and is named in
//! the reason; none makes it `none`.
//!
//! The ids come from either
//!
//! - `migrations_dir`, inside each release directory of a symlink source
//!   (`<releases>/<version>/<migrations_dir>`, where `<releases>` holds the
//!   directory `current` points at): every entry whose name does not start
//!   with `.`, a file without its extension (`20240115120000_add_index.sql`
//!   is `20240115120000_add_index`), a directory by its name (tools that
//!   keep `up.sql` and `down.sql` in one directory per migration); or
//! - `list_argv`, run once for each version with `{{version}}` set to it,
//!   each non-blank line of its output one id.

use super::{DataCheckContext, stdout_of};
use crate::config::DataCheckConfig;
use crate::model::DataImpact;
use crate::release::symlink::{names_a_directory, resolve_target};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Most migration ids named in one evidence line; the rest are counted.
const NAMED_LIMIT: usize = 5;

/// The impact and what it rests on, or why the migrations cannot be
/// compared.
pub(super) async fn answer(
    check: &DataCheckConfig,
    cx: &DataCheckContext,
) -> Result<(DataImpact, String), String> {
    let (version, previous) = (cx.var("version"), cx.var("previous_version"));
    if previous.is_empty() {
        return Err("the version before this release is unknown, so there is nothing to compare its migrations with".to_owned());
    }
    let (new, old) = match (&check.migrations_dir, &check.list_argv) {
        (Some(dir), _) => {
            let releases = releases_dir(cx.link.as_deref())?;
            let (new, old) = (
                release_dir(&releases, version)?,
                release_dir(&releases, previous)?,
            );
            let (new, old) = (new.join(dir), old.join(dir));
            let read = move || -> Result<_, String> { Ok((ids_in(&new)?, ids_in(&old)?)) };
            tokio::task::spawn_blocking(read)
                .await
                .map_err(|error| format!("reading the migrations failed: {error}"))??
        }
        (None, Some(argv)) => {
            let (new, old) = futures_util::future::join(
                listed(argv, cx, version, check.timeout),
                listed(argv, cx, previous, check.timeout),
            )
            .await;
            (new?, old?)
        }
        (None, None) => return Err("it needs `migrations_dir` or `list_argv`".to_owned()),
    };
    let added: Vec<&String> = new.difference(&old).collect();
    if added.is_empty() {
        return Ok((
            DataImpact::None,
            format!("no schema migrations since {previous}"),
        ));
    }
    Ok((
        DataImpact::Major,
        format!(
            "schema migrations since {previous}: {}; prefer a forward fix",
            named(&added)
        ),
    ))
}

/// The directory holding the release directories: the parent of the one
/// the link points at.
fn releases_dir(link: Option<&Path>) -> Result<PathBuf, String> {
    let link = link.ok_or("`migrations_dir` needs a symlink release source")?;
    let current = resolve_target(link).map_err(|error| error.to_string())?;
    current.parent().map(Path::to_owned).ok_or_else(|| {
        format!(
            "link {} points to {}, which has no parent directory",
            link.display(),
            current.display()
        )
    })
}

/// The directory of release `version`.
fn release_dir(releases: &Path, version: &str) -> Result<PathBuf, String> {
    if names_a_directory(version) {
        Ok(releases.join(version))
    } else {
        Err(format!(
            "version {version:?} cannot name a release directory"
        ))
    }
}

/// The migration ids in `dir`.
fn ids_in(dir: &Path) -> Result<BTreeSet<String>, String> {
    let cannot = |error: std::io::Error| format!("cannot read {}: {error}", dir.display());
    let mut ids = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let name = entry.file_name();
        let name = name
            .to_str()
            .ok_or_else(|| format!("{} holds a name that is not UTF-8: {name:?}", dir.display()))?;
        if name.starts_with('.') {
            continue;
        }
        // Followed through symlinks: a linked migration directory is one.
        let is_dir = std::fs::metadata(entry.path()).map_err(cannot)?.is_dir();
        let id = match Path::new(name).file_stem().and_then(|s| s.to_str()) {
            Some(stem) if !is_dir => stem,
            _ => name,
        };
        ids.insert(id.to_owned());
    }
    Ok(ids)
}

/// The ids `argv` lists for `version` (its `{{version}}`).
async fn listed(
    argv: &[String],
    cx: &DataCheckContext,
    version: &str,
    timeout: std::time::Duration,
) -> Result<BTreeSet<String>, String> {
    let mut vars = cx.vars.clone();
    vars.insert("version", version.to_owned());
    let stdout = stdout_of(argv, &vars, timeout)
        .await
        .map_err(|why| format!("listing the migrations of {version}: {why}"))?;
    Ok(stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The first ids, then how many more.
fn named(ids: &[&String]) -> String {
    let shown: Vec<&str> = ids.iter().take(NAMED_LIMIT).map(|s| s.as_str()).collect();
    let mut text = shown.join(", ");
    if ids.len() > NAMED_LIMIT {
        text.push_str(&format!(" and {} more", ids.len() - NAMED_LIMIT));
    }
    text
}
