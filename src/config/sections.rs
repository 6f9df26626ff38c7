//! Turning the parsed TOML document into typed sections, one piece at a
//! time, so that a mistake in `target[0]` does not hide another in
//! `target[3]` or in `[daemon]`.
//!
//! Each top-level section and each element of an array of tables goes
//! through serde on its own, wrapped in `serde_path_to_error` so that the key
//! path of a type error or an unknown key is known.

use super::problems::Problems;
use super::sections_tagged::{self, ReadTarget};
use super::tagged::named_in;
use super::{Config, DaemonConfig, NotifierConfig, PolicyConfig, PolicyRule, PrometheusConfig};
use serde::de::{DeserializeOwned, DeserializeSeed};
use std::marker::PhantomData;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The top-level keys a file may hold.
const TOP_LEVEL_KEYS: [&str; 5] = ["daemon", "prometheus", "notifier", "policy", "target"];

/// The typed sections that could be read, each array element with its index
/// in the file so that later errors still name the right element.
#[derive(Debug, Default)]
pub(crate) struct Sections {
    /// `[daemon]`, or its defaults when absent or broken.
    pub(crate) daemon: DaemonConfig,
    /// `[prometheus]`, when present and readable.
    pub(crate) prometheus: Option<PrometheusConfig>,
    /// Whether `[prometheus]` is in the file at all (even if broken).
    pub(crate) prometheus_present: bool,
    /// Readable `[[notifier]]` elements with their indexes.
    pub(crate) notifiers: Vec<(usize, NotifierConfig)>,
    /// Names of every `[[notifier]]`, readable or not, so that a broken
    /// notifier does not also make every reference to it an error.
    pub(crate) notifier_names: Vec<String>,
    /// Readable `[[policy.rule]]` elements with their indexes.
    pub(crate) rules: Vec<(usize, PolicyRule)>,
    /// Readable `[[target]]` elements with their indexes.
    pub(crate) targets: Vec<(usize, ReadTarget)>,
    /// Whether `target` is in the file at all (even if every element is
    /// broken, which is reported on its own).
    pub(crate) targets_present: bool,
}

impl Sections {
    /// The whole configuration, once every section has been read.
    pub(crate) fn into_config(self) -> Config {
        let strip = |v: Vec<(usize, _)>| v.into_iter().map(|(_, t)| t).collect();
        Config {
            daemon: self.daemon,
            prometheus: self.prometheus,
            notifiers: strip(self.notifiers),
            policy: PolicyConfig {
                rule: self.rules.into_iter().map(|(_, r)| r).collect(),
            },
            targets: self.targets.into_iter().map(|(_, t)| t.config).collect(),
        }
    }
}

/// Reads every section of `root`, adding every type error and unknown key
/// to `problems`.
pub(crate) fn read_sections(root: &DeTable<'_>, problems: &mut Problems) -> Sections {
    let mut sections = Sections::default();
    for (key, value) in root.iter() {
        let key = key.get_ref().as_ref();
        match key {
            "daemon" => {
                if let Some(daemon) = one(value, "daemon", problems) {
                    sections.daemon = daemon;
                }
            }
            "prometheus" => {
                sections.prometheus_present = true;
                sections.prometheus = one(value, "prometheus", problems);
            }
            "notifier" => {
                sections.notifier_names = names_in(value);
                sections.notifiers = each(value, "notifier", problems);
            }
            "policy" => sections.rules = policy_rules(value, problems),
            "target" => {
                sections.targets_present = true;
                sections.targets = each_with(value, "target", problems, sections_tagged::target);
            }
            other => problems.push(
                other.to_owned(),
                format!(
                    "unknown key `{other}`, expected one of {}",
                    quoted(&TOP_LEVEL_KEYS)
                ),
            ),
        }
    }
    sections
}

/// `[policy]`: only `rule` is allowed; each rule is read on its own.
fn policy_rules(value: &Spanned<DeValue<'_>>, problems: &mut Problems) -> Vec<(usize, PolicyRule)> {
    let Some(table) = value.get_ref().as_table() else {
        // Let serde say what is wrong with the type.
        let _: Option<PolicyConfig> = one(value, "policy", problems);
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (key, value) in table.iter() {
        match key.get_ref().as_ref() {
            "rule" => rules = each(value, "policy.rule", problems),
            other => problems.push(
                format!("policy.{other}"),
                format!("unknown field `{other}`, expected `rule`"),
            ),
        }
    }
    rules
}

/// Reads every element of an array of tables on its own.
fn each<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
) -> Vec<(usize, T)> {
    each_with(value, prefix, problems, one)
}

/// How one element is read: the element, its key path, where mistakes go.
pub(crate) type ReadElement<T> = fn(&Spanned<DeValue<'_>>, &str, &mut Problems) -> Option<T>;

/// Reads every element of an array of tables on its own with `read`.
pub(crate) fn each_with<T>(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
    read: ReadElement<T>,
) -> Vec<(usize, T)> {
    let Some(array) = value.get_ref().as_array() else {
        // Not an array: let serde say what is wrong with the type.
        let _: Option<Vec<toml::Table>> = one(value, prefix, problems);
        return Vec::new();
    };
    array
        .iter()
        .enumerate()
        .filter_map(|(i, element)| {
            read(element, &format!("{prefix}[{i}]"), problems).map(|t| (i, t))
        })
        .collect()
}

/// The `name` of every element of an array of tables that has a string one.
fn names_in(value: &Spanned<DeValue<'_>>) -> Vec<String> {
    let Some(array) = value.get_ref().as_array() else {
        return Vec::new();
    };
    array
        .iter()
        .filter_map(|element| {
            element
                .get_ref()
                .as_table()?
                .get("name")?
                .get_ref()
                .as_str()
        })
        .map(str::to_owned)
        .collect()
}

/// How many mistakes are looked for in one section or element.
const MAX_ERRORS_PER_ELEMENT: usize = 32;

/// One step of a key path inside a value.
enum Step {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Reads one value as `T`, recording every error under `prefix` plus the
/// path inside the value (an unknown key is named itself).
pub(crate) fn one<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<T> {
    one_seed(value, prefix, problems, PhantomData::<T>, &|_| None)
}

/// Rewords a serde message about the value itself: the key it is about
/// (relative to the value) and the message to show instead.
pub(crate) type Explain<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

/// Reads one value with `seed`, recording every error under `prefix` plus
/// the path inside the value; `explain` may reword errors about the value's
/// own keys (unknown or missing ones).
///
/// After each error the offending key is removed and the value read again,
/// so that all of its mistakes are reported at once. The value is returned
/// only when every mistake was an unknown key: a key replaced by its default
/// would make later cross-field errors misleading.
pub(crate) fn one_seed<S, T>(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
    seed: S,
    explain: Explain<'_>,
) -> Option<T>
where
    S: for<'de> DeserializeSeed<'de, Value = T> + Copy,
{
    let mut value = value.clone();
    let mut trusted = true;
    // Keys taken out for a wrong value: their "missing field" is no news.
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MAX_ERRORS_PER_ELEMENT {
        let deserializer = ValueDeserializer::from(value.clone());
        let mut track = serde_path_to_error::Track::new();
        let result = seed.deserialize(serde_path_to_error::Deserializer::new(
            deserializer,
            &mut track,
        ));
        let e = match result {
            Ok(t) => return trusted.then_some(t),
            Err(e) => serde_path_to_error::Error::new(track.path(), e),
        };
        let mut steps: Vec<Step> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let error = e.into_inner();
        let message = error.message().trim().to_owned();
        let unknown = named_in(&message, "unknown field `").map(str::to_owned);
        // serde_path_to_error usually names the unknown key already.
        if let Some(field) = &unknown
            && !matches!(steps.last(), Some(Step::Key(k)) if k == field)
        {
            steps.push(Step::Key(field.clone()));
        }
        let path = joined(prefix, &steps);
        let missing = named_in(&message, "missing field `");
        if missing.is_some_and(|key| removed.contains(&format!("{path}.{key}"))) {
            return None;
        }
        let (path, shown) = match explain(&message) {
            Some((key, why)) if steps.len() <= 1 => (format!("{prefix}.{key}"), why),
            _ => (path, message),
        };
        problems.push_at(path, shown, error.span().map(|s| s.start));
        trusted &= unknown.is_some();
        // Drop the whole key even when one element of its array is wrong.
        while matches!(steps.last(), Some(Step::Index(_))) {
            steps.pop();
        }
        if steps.is_empty() || !remove(value.get_mut(), &steps) {
            return None;
        }
        removed.push(joined(prefix, &steps));
    }
    None
}

/// `prefix` followed by `steps`, as a key path.
fn joined(prefix: &str, steps: &[Step]) -> String {
    let mut path = prefix.to_owned();
    for step in steps {
        match step {
            Step::Key(key) => {
                path.push('.');
                path.push_str(key);
            }
            Step::Index(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Removes the key at `steps` (which ends with a key) from `value`.
fn remove(value: &mut DeValue<'_>, steps: &[Step]) -> bool {
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut current = value;
    for step in parents {
        let next = match (step, current) {
            (Step::Key(key), DeValue::Table(table)) => table.get_mut(key.as_str()),
            (Step::Index(index), DeValue::Array(array)) => array.get_mut(*index),
            _ => None,
        };
        match next {
            Some(next) => current = next.get_mut(),
            None => return false,
        }
    }
    match (last, current) {
        (Step::Key(key), DeValue::Table(table)) => table.remove(key.as_str()).is_some(),
        _ => false,
    }
}

/// `a`, `b`, `c` for messages.
pub(crate) fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
