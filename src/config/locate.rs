//! Finding a key path such as `target[1].metric[0].thresholds` in the source
//! text, so that every error can name its line and column.
//!
//! The file is parsed once more into toml's spanned document tree; a path is
//! walked segment by segment. When the full path is absent from the file (a
//! default value, or a whole missing section) the deepest part that exists is
//! used, so an error still points somewhere useful.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Line and column lookup for one configuration text.
pub(crate) struct Locator<'i> {
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
    /// The text itself, to count characters (not bytes) into a line.
    text: &'i str,
    /// The spanned document; `None` when the text is not valid TOML.
    root: Option<Spanned<DeTable<'i>>>,
}

impl<'i> Locator<'i> {
    /// Indexes `text`; `root` is its parsed document, if it parses.
    pub(crate) fn new(text: &'i str, root: Option<Spanned<DeTable<'i>>>) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Locator {
            line_starts,
            text,
            root,
        }
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, column + 1)
    }

    /// Byte offset of the deepest existing part of `path`: the key itself for
    /// a key, the `[[header]]` (or the value) for an array element.
    pub(crate) fn offset_of(&self, path: &str) -> Option<usize> {
        let root = self.root.as_ref()?;
        let mut table: Option<&DeTable<'i>> = Some(root.get_ref());
        let mut value: Option<&Spanned<DeValue<'i>>> = None;
        let mut best: Option<usize> = None;
        for segment in parse_path(path) {
            match segment {
                Segment::Key(key) => {
                    let Some(t) = table else { break };
                    let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key) else {
                        break;
                    };
                    best = Some(k.span().start);
                    value = Some(v);
                    table = v.get_ref().as_table();
                }
                Segment::Index(index) => {
                    let Some(element) = value
                        .and_then(|v| v.get_ref().as_array())
                        .and_then(|a| a.get(index))
                    else {
                        break;
                    };
                    best = Some(element.span().start);
                    value = Some(element);
                    table = element.get_ref().as_table();
                }
            }
        }
        best
    }

    /// Line and column of `path`, if any part of it is in the file.
    #[cfg(test)]
    pub(crate) fn locate(&self, path: &str) -> (Option<usize>, Option<usize>) {
        match self.offset_of(path) {
            Some(offset) => {
                let (line, column) = self.line_column(offset);
                (Some(line), Some(column))
            }
            None => (None, None),
        }
    }
}

/// One step of a key path.
#[derive(Debug, PartialEq)]
enum Segment<'p> {
    /// A table key.
    Key(&'p str),
    /// An array index.
    Index(usize),
}

/// Splits `a.b[2].c` into keys and indexes. Keys holding dots or brackets
/// cannot be told apart; such keys are not used in rollguard's paths.
fn parse_path(path: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            segments.push(Segment::Key(key));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else { break };
            match inner[..end].parse() {
                Ok(index) => segments.push(Segment::Index(index)),
                Err(_) => return segments,
            }
            rest = &inner[end + 1..];
        }
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(text: &str) -> Locator<'_> {
        Locator::new(text, DeTable::parse(text).ok())
    }

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            parse_path("target[1].metric[0].thresholds"),
            vec![
                Segment::Key("target"),
                Segment::Index(1),
                Segment::Key("metric"),
                Segment::Index(0),
                Segment::Key("thresholds"),
            ]
        );
    }

    #[test]
    fn keys_elements_and_headers_are_found() {
        let text = "[daemon]\nlisten = \"x\"\n\n[[target]]\nname = \"a\"\n\n[[target]]\nname = \"b\"\nnotify = [\"x\", \"y\"]\n[target.release]\nkind = \"announce\"\n";
        let l = locator(text);
        assert_eq!(l.locate("daemon.listen"), (Some(2), Some(1)));
        assert_eq!(l.locate("target[1].name"), (Some(8), Some(1)));
        assert_eq!(l.locate("target[1]").0, Some(7));
        assert_eq!(l.locate("target[1].notify[1]"), (Some(9), Some(16)));
        assert_eq!(l.locate("target[1].release.kind").0, Some(11));
        // Absent keys fall back to the deepest part present.
        assert_eq!(l.locate("target[1].interval").0, Some(7));
        assert_eq!(l.locate("prometheus.url"), (None, None));
    }

    #[test]
    fn columns_count_characters() {
        let l = locator("a = \"é\"\nb = 1\n");
        assert_eq!(l.line_column(0), (1, 1));
        assert_eq!(l.line_column(9), (2, 1));
    }
}
