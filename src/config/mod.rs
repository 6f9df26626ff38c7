//! Configuration: the TOML file parsed into typed structs (`schema`), checked
//! as a whole (`validate`), with every error naming its key path and its line
//! and column in the file (`locate`).
//!
//! Loading never stops at the first mistake: an operator fixing a file wants
//! the whole list at once.

mod schema;

pub use schema::*;

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
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    toml::from_str(text).map_err(|e: toml::de::Error| ConfigErrors {
        file: origin.to_owned(),
        errors: vec![ConfigError {
            path: String::new(),
            line: None,
            column: None,
            message: e.message().to_owned(),
        }],
    })
}

impl Config {
    /// The mode a target runs in: its own, or the daemon's default.
    pub fn mode_of(&self, target: &TargetConfig) -> crate::model::Mode {
        target.mode.unwrap_or(self.daemon.mode)
    }
}
