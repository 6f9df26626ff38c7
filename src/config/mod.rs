//! Configuration: the TOML file parsed into typed structs (`schema`,
//! `schema_target`, `schema_release`, `schema_step`, `schema_swarm`, `defaults`; the
//! kind-tagged tables through `tagged`), read one section and one array
//! element at a time (`sections`, `sections_tagged`), checked as a whole
//! (`validate`, `validate_target`, `validate_release`, `validate_step`,
//! `validate_metric`, `bounds`, `files`; templates are checked with
//! [`crate::template`]), with every error naming its key path and its line
//! and column in the file (`locate`, `problems`).
//!
//! Loading never stops at the first mistake: an operator fixing a file wants
//! the whole list at once. Programs named in `argv` are looked for through
//! an [`Environment`], so tests never touch the process environment.

pub mod bounds;
pub mod defaults;
mod env;
mod files;
mod locate;
mod problems;
mod schema;
mod schema_precheck;
mod schema_release;
mod schema_step;
mod schema_swarm;
mod schema_switch;
mod schema_target;
mod secrets;
mod sections;
mod sections_tagged;
mod size;
pub(crate) mod tagged;

mod validate;
mod validate_metric;
mod validate_release;
mod validate_step;
mod validate_switch;
mod validate_target;

#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
mod tests_canary;
#[cfg(test)]
mod tests_check;
#[cfg(test)]
mod tests_database;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_kinds;
#[cfg(test)]
mod tests_notifier;
#[cfg(test)]
mod tests_parse;
#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_switch;
#[cfg(test)]
mod tests_validate;

pub use env::{Environment, MapEnvironment, ProcessEnvironment, find_program};
pub use schema::*;
pub use schema_precheck::*;
pub use schema_release::*;
pub use schema_step::*;
pub use schema_swarm::*;
pub use schema_switch::*;
pub use schema_target::*;
pub use size::ByteSize;

use locate::Locator;
use problems::Problems;
use toml::de::DeTable;

use std::fmt;
use std::path::{Path, PathBuf};

/// One mistake in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path in the operator's words, such as `target[1].metric[0].thresholds`.
    /// Empty for errors about the file as a whole (unreadable, bad syntax).
    pub path: String,
    /// 1-based line of the key in the file, when it can be located.
    pub line: Option<usize>,
    /// 1-based column of the key in the file, when it can be located.
    pub column: Option<usize>,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every mistake found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file that was read.
    pub file: PathBuf,
    /// All mistakes, in file order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {}: {e}", self.file.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.to_owned(),
        errors: vec![ConfigError {
            path: String::new(),
            line: None,
            column: None,
            message: format!("cannot read the file: {e}"),
        }],
    })?;
    parse(&text, path)
}

/// Parses and validates configuration text; `origin` names it in errors.
/// Programs named in `argv` are looked for on this process's `PATH`.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, origin, &ProcessEnvironment)
}

/// Parses and validates configuration text against `env` (where programs
/// are looked for), reporting every mistake at once.
pub fn parse_with_env(
    text: &str,
    origin: &Path,
    env: &dyn Environment,
) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        file: origin.to_owned(),
        errors,
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let locator = Locator::new(text, None);
        let mut problems = Problems::default();
        for e in syntax {
            problems.push_at("", e.message().trim(), e.span().map(|s| s.start));
        }
        return Err(fail(problems.into_errors(&locator)));
    }
    let mut problems = Problems::default();
    let sections = sections::read_sections(root.get_ref(), &mut problems);
    validate::validate(&sections, env, &mut problems);
    if problems.is_empty() {
        return Ok(sections.into_config());
    }
    Err(fail(problems.into_errors(&Locator::new(text, Some(root)))))
}

impl Config {
    /// The mode a target runs in: its own, or the daemon's default.
    pub fn mode_of(&self, target: &TargetConfig) -> crate::model::Mode {
        target.mode.unwrap_or(self.daemon.mode)
    }
}
