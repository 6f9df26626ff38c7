//! Reading a `[[target]]` whose release source and steps are kind-tagged
//! tables (`tagged.rs`): `kind` is looked up first, then the kind's own
//! struct is read from the rest of the table through `one_seed`, so that
//! every error inside it keeps its key path and line.

use super::problems::Problems;
use super::sections::{each_with, one, one_seed};
use super::tagged::{self, Tagged};
use super::{ReleaseConfig, StepAction, StepCommon, StepConfig, TargetConfig};
use serde::de::{DeserializeSeed, Deserializer};
use std::borrow::Cow;
use std::marker::PhantomData;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A `[[target]]` as read, for validation.
#[derive(Debug)]
pub(crate) struct ReadTarget {
    /// The target, without the steps that could not be read.
    pub(crate) config: TargetConfig,
    /// The index in the file of each of its steps: a step that could not
    /// be read is left out of the cross-field rules, not the whole target.
    pub(crate) step_at: Vec<usize>,
}

/// Reads `target[i]`: its release source and steps kind by kind, the rest
/// as a [`TargetConfig`]. Returned only when all but its steps could be
/// trusted.
pub(crate) fn target(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<ReadTarget> {
    let Some(table) = value.get_ref().as_table() else {
        let _: Option<TargetConfig> = one(value, prefix, problems);
        return None;
    };
    let release = table
        .get("release")
        .map(|r| release(r, &format!("{prefix}.release"), problems));
    let steps = table
        .get("step")
        .map(|s| each_with(s, &format!("{prefix}.step"), problems, step));
    // The rest of the target, with the parts read above taken out: the
    // steps removed (they default to none) and the release replaced by one
    // that needs no keys, so that their mistakes are not reported twice.
    let mut rest = value.clone();
    if let DeValue::Table(t) = rest.get_mut() {
        t.remove("step");
        if let Some(r) = t.get_mut("release") {
            *r = announce_placeholder(r.span());
        }
    }
    let mut config: TargetConfig = one(&rest, prefix, problems)?;
    if let Some(release) = release {
        config.release = release?;
    }
    let (step_at, steps) = steps.unwrap_or_default().into_iter().unzip();
    config.step = steps;
    Some(ReadTarget { config, step_at })
}

/// `release = { kind = "announce" }`, spanning `span`.
fn announce_placeholder(span: std::ops::Range<usize>) -> Spanned<DeValue<'static>> {
    let mut table = DeTable::new();
    table.insert(
        Spanned::new(span.clone(), Cow::Borrowed("kind")),
        Spanned::new(span.clone(), DeValue::String(Cow::Borrowed("announce"))),
    );
    Spanned::new(span, DeValue::Table(table))
}

/// Reads `[target.release]` at `prefix`.
fn release(
    value: &Spanned<DeValue<'_>>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<ReleaseConfig> {
    let (kind, _, own) = split::<ReleaseConfig>(value, prefix, &[], problems)?;
    own_keys::<ReleaseConfig>(&own, prefix, kind, &[], problems)
}

/// Reads one `[[target.step]]` at `prefix`.
fn step(value: &Spanned<DeValue<'_>>, prefix: &str, problems: &mut Problems) -> Option<StepConfig> {
    let keys = StepCommon::keys();
    let (kind, common, own) = split::<StepAction>(value, prefix, keys, problems)?;
    let common: Option<StepCommon> = one(&common, prefix, problems);
    let action = own_keys::<StepAction>(&own, prefix, kind, keys, problems);
    Some(StepConfig {
        common: common?,
        action: action?,
    })
}

/// Reads the kind's struct from `own`, its serde messages explained.
fn own_keys<T: Tagged>(
    own: &Spanned<DeValue<'_>>,
    prefix: &str,
    kind: T::Kind,
    common: &[&str],
    problems: &mut Problems,
) -> Option<T> {
    let explain = |message: &str| tagged::explain::<T>(kind, common, message);
    one_seed(
        own,
        prefix,
        problems,
        KindSeed::<T>(kind, PhantomData),
        &explain,
    )
}

/// A table's kind, its `common` keys and the kind's own keys, as two
/// tables (both spanning the original, so that an error about either
/// points at it). `None`, with the mistake recorded, when the value is not
/// a table or its `kind` is missing or unknown.
fn split<'i, T: Tagged>(
    value: &Spanned<DeValue<'i>>,
    prefix: &str,
    common: &[&str],
    problems: &mut Problems,
) -> Option<(T::Kind, Spanned<DeValue<'i>>, Spanned<DeValue<'i>>)> {
    let Some(table) = value.get_ref().as_table() else {
        let _: Option<toml::Table> = one(value, prefix, problems);
        return None;
    };
    let kind = match table.get("kind").map(|k| k.get_ref().as_str()) {
        None => {
            problems.push(prefix, tagged::missing_kind::<T>());
            return None;
        }
        Some(None) => {
            let message = format!("must be a string; {}", tagged::missing_kind::<T>());
            problems.push(format!("{prefix}.kind"), message);
            return None;
        }
        Some(Some(name)) => match tagged::parse_kind::<T>(name) {
            Ok(kind) => kind,
            Err(message) => {
                problems.push(format!("{prefix}.kind"), message);
                return None;
            }
        },
    };
    let (mut shared, mut own) = (DeTable::new(), DeTable::new());
    for (key, entry) in table.iter() {
        let name = key.get_ref().as_ref();
        if name == "kind" {
            continue;
        }
        let part = if common.contains(&name) {
            &mut shared
        } else {
            &mut own
        };
        part.insert(key.clone(), entry.clone());
    }
    let span = value.span();
    Some((
        kind,
        Spanned::new(span.clone(), DeValue::Table(shared)),
        Spanned::new(span, DeValue::Table(own)),
    ))
}

/// Reads the struct of one kind of `T`.
struct KindSeed<T: Tagged>(T::Kind, PhantomData<T>);

impl<T: Tagged> Clone for KindSeed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Tagged> Copy for KindSeed<T> {}

impl<'de, T: Tagged> DeserializeSeed<'de> for KindSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize_kind(self.0, deserializer)
    }
}
