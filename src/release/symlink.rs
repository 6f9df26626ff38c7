//! The `symlink` release source: a deploy unpacks each release into its own
//! directory and atomically repoints a `current` link at it
//! (`/srv/app/current -> releases/v1.3.0`). The version is the last
//! component of the link's target.

use super::{SourceError, validate_version};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The version the link at `path` points to: the last component of its
/// target as written in the link (`releases/v1.3.0` gives `v1.3.0`), once
/// the target is known to exist.
///
/// The link is read once, and the existence check follows that reading, so
/// a deploy that swaps the link in between cannot mix two releases.
pub fn read_version(path: &Path) -> Result<String, SourceError> {
    let target = read_link(path)?;
    let resolved = resolve(path, &target);
    match std::fs::metadata(&resolved) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(SourceError::Dangling {
                path: path.to_owned(),
                target: resolved,
            });
        }
        Err(source) => {
            return Err(SourceError::Io {
                path: resolved,
                source,
            });
        }
    }
    let no_version = || SourceError::NoVersionInTarget {
        path: path.to_owned(),
        target: target.clone(),
    };
    let name = target.file_name().ok_or_else(no_version)?;
    let name = name.to_str().ok_or_else(no_version)?;
    validate_version(name)
}

/// The full path of the release directory the link at `path` points to:
/// a relative target is resolved against the link's own directory, as the
/// kernel does. The result is not canonicalised and may not exist.
pub fn resolve_target(path: &Path) -> Result<PathBuf, SourceError> {
    let target = read_link(path)?;
    Ok(resolve(path, &target))
}

/// Whether `version` can name a release directory: one plain path
/// component (not empty, `.`, `..`, and without `/`), so that joining it to
/// the releases directory can never leave it.
pub fn names_a_directory(version: &str) -> bool {
    let mut parts = Path::new(version).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// Reads the link, telling "not a link" and "not there" apart.
fn read_link(path: &Path) -> Result<PathBuf, SourceError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|source| SourceError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.file_type().is_symlink() {
        return Err(SourceError::NotASymlink {
            path: path.to_owned(),
        });
    }
    std::fs::read_link(path).map_err(|source| match source.kind() {
        // Swapped for something else since the check above.
        ErrorKind::InvalidInput => SourceError::NotASymlink {
            path: path.to_owned(),
        },
        _ => SourceError::Io {
            path: path.to_owned(),
            source,
        },
    })
}

/// `target` as seen from the link at `link`.
fn resolve(link: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        return target.to_owned();
    }
    match link.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(target),
        _ => target.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_resolve_against_the_link_directory() {
        assert_eq!(
            resolve(Path::new("/srv/app/current"), Path::new("releases/v1")),
            PathBuf::from("/srv/app/releases/v1")
        );
        assert_eq!(
            resolve(Path::new("/srv/app/current"), Path::new("/opt/v2")),
            PathBuf::from("/opt/v2")
        );
        assert_eq!(
            resolve(Path::new("current"), Path::new("releases/v1")),
            PathBuf::from("releases/v1")
        );
    }
}
