//! The list of mistakes found while reading and validating a file, before
//! they are given lines and columns.

use super::ConfigError;
use super::locate::Locator;

/// One mistake, named by key path.
#[derive(Debug)]
struct Problem {
    /// Key path in TOML names, such as `target[0].probe[1].timeout`.
    path: String,
    /// What is wrong; never a secret value.
    message: String,
    /// Where toml itself saw the problem, used when the path cannot be found.
    offset: Option<usize>,
}

/// Mistakes collected so far, in the order they were found.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    /// The mistakes.
    list: Vec<Problem>,
}

impl Problems {
    /// Records a mistake at `path`.
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push_at(path, message, None);
    }

    /// Records a mistake at `path`, with toml's own byte offset as a fallback.
    pub(crate) fn push_at(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        offset: Option<usize>,
    ) {
        self.list.push(Problem {
            path: path.into(),
            message: message.into(),
            offset,
        });
    }

    /// Records a missing section at `path`, located at the end of the file:
    /// where it would be added. (The locator clamps offsets to the text.)
    pub(crate) fn push_at_end(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push_at(path, message, Some(usize::MAX));
    }

    /// How many mistakes were found.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nothing is wrong.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Located errors, sorted by line and column (file-wide ones first).
    pub(crate) fn into_errors(self, locator: &Locator<'_>) -> Vec<ConfigError> {
        let mut errors: Vec<ConfigError> = self
            .list
            .into_iter()
            .map(|p| {
                let offset = locator.offset_of(&p.path).or(p.offset);
                let (line, column) = match offset {
                    Some(offset) => {
                        let (line, column) = locator.line_column(offset);
                        (Some(line), Some(column))
                    }
                    None => (None, None),
                };
                ConfigError {
                    path: p.path,
                    line,
                    column,
                    message: p.message,
                }
            })
            .collect();
        errors.sort_by_key(|e| (e.line, e.column));
        errors
    }
}
