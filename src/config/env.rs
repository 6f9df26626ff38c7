//! What validation needs to know about the machine: environment variables
//! (PATH), whether a program file exists and what a secret file holds. A
//! trait, so that tests never touch the process environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The machine a configuration is checked against.
pub trait Environment {
    /// The value of an environment variable, if set.
    fn var(&self, name: &str) -> Option<String>;

    /// Whether `path` is an executable regular file.
    fn is_executable(&self, path: &Path) -> bool {
        is_executable_file(path)
    }

    /// The text of a file the daemon reads at start (tokens, secret URLs,
    /// a kubeconfig), so that `check` finds one it cannot read.
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// The real process environment and filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Environment variables from a map, with the real filesystem; for tests.
#[derive(Debug, Clone, Default)]
pub struct MapEnvironment {
    /// The variables.
    pub vars: BTreeMap<String, String>,
    /// Files read from here instead of the filesystem (the shipped example
    /// names secret files under /etc that a test machine does not have).
    pub files: BTreeMap<PathBuf, String>,
}

impl MapEnvironment {
    /// An environment whose only variable is `PATH`.
    pub fn with_path(path: &str) -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("PATH".to_owned(), path.to_owned());
        MapEnvironment {
            vars,
            files: BTreeMap::new(),
        }
    }
}

impl Environment for MapEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        match self.files.get(path) {
            Some(text) => Ok(text.clone()),
            None => std::fs::read_to_string(path),
        }
    }
}

/// Whether `path` is a regular file with an execute bit.
fn is_executable_file(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// Finds the program of an argv the way `execvp` would: an absolute path
/// must be an executable file; a bare name is looked up on `PATH`.
/// Relative paths with a slash are refused: they would depend on the
/// daemon's working directory.
pub fn find_program(env: &dyn Environment, program: &str) -> Result<PathBuf, String> {
    if program.is_empty() {
        return Err("the program (first element) is empty".to_owned());
    }
    if program.contains("{{") {
        return Err("the program (first element) cannot be a template".to_owned());
    }
    let path = Path::new(program);
    if path.is_absolute() {
        return if env.is_executable(path) {
            Ok(path.to_owned())
        } else {
            Err(format!(
                "program `{program}` does not exist or is not executable"
            ))
        };
    }
    if program.contains('/') {
        return Err(format!(
            "program `{program}` must be an absolute path or a bare name found on PATH"
        ));
    }
    let search = env.var("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| env.is_executable(candidate))
        .ok_or_else(|| format!("program `{program}` is not found on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_by_path_or_on_path() {
        let env = MapEnvironment::with_path("/nonexistent:/bin:/usr/bin");
        assert!(find_program(&env, "/bin/true").is_ok());
        assert!(find_program(&env, "true").is_ok());
        assert!(find_program(&env, "/bin/no-such-program").is_err());
        assert!(find_program(&env, "no-such-program").is_err());
        assert!(find_program(&env, "bin/true").is_err());
        assert!(find_program(&env, "").is_err());
        assert!(find_program(&MapEnvironment::default(), "true").is_err());
    }
}
