//! Kind-tagged tables: `[target.release]` and `[[target.step]]` name their
//! kind with `kind = "..."`, and each kind is its own struct that takes only
//! its own keys.
//!
//! serde's internally tagged enums buffer the table before they know the
//! kind, which loses the key path and line of every error inside it. So the
//! kind is looked up first (here, by name, with a message that lists the
//! valid kinds), and the kind's struct is then read from the rest of the
//! table: by `sections_tagged.rs` with every error's path and line, and by
//! the plain [`serde::Deserialize`] impls of [`super::StepConfig`] and
//! [`super::ReleaseConfig`] (tests, fixtures) with the same messages.
//!
//! [`tagged_kinds!`] declares such an enum from one line per kind.

use super::sections::quoted;
use serde::de::{self, Deserializer, Visitor};

/// An enum whose variant is chosen by a table's `kind` key.
pub(crate) trait Tagged: Sized {
    /// The kinds alone, without their keys.
    type Kind: Copy + Eq + 'static;
    /// What the table is, for messages: `step`, `release`.
    const WHAT: &'static str;
    /// Kinds that are documented for later but not built yet: refused with
    /// "not supported yet" rather than "unknown".
    const NOT_YET: &'static [&'static str];
    /// Every kind.
    fn kinds() -> &'static [Self::Kind];
    /// A kind's name as written in the file.
    fn kind_name(kind: Self::Kind) -> &'static str;
    /// The keys a kind's own struct takes (besides `kind`).
    fn kind_keys(kind: Self::Kind) -> &'static [&'static str];
    /// Reads the kind's struct from a table without `kind`.
    fn deserialize_kind<'de, D: Deserializer<'de>>(
        kind: Self::Kind,
        deserializer: D,
    ) -> Result<Self, D::Error>;
}

/// The kind named `name`, or why there is none: an unknown kind lists the
/// valid ones, a kind that is not built yet says so.
pub(crate) fn parse_kind<T: Tagged>(name: &str) -> Result<T::Kind, String> {
    if let Some(kind) = T::kinds().iter().find(|k| T::kind_name(**k) == name) {
        return Ok(*kind);
    }
    let known = quoted(
        &T::kinds()
            .iter()
            .map(|k| T::kind_name(*k))
            .collect::<Vec<_>>(),
    );
    let what = T::WHAT;
    if T::NOT_YET.contains(&name) {
        Err(format!(
            "{what} kind `{name}` is not supported yet; the supported kinds are {known}"
        ))
    } else {
        Err(format!(
            "unknown {what} kind `{name}`, expected one of {known}"
        ))
    }
}

/// The message of a table without `kind`.
pub(crate) fn missing_kind<T: Tagged>() -> String {
    let known = quoted(
        &T::kinds()
            .iter()
            .map(|k| T::kind_name(*k))
            .collect::<Vec<_>>(),
    );
    format!("missing field `kind`: a {} needs one of {known}", T::WHAT)
}

/// What serde said about a kind's struct, in the words of the file: which
/// key is wrong (relative to the table; `kind` for a missing key, which
/// the kind is what asks for) and why. `common` are the keys every kind
/// takes, read elsewhere.
pub(crate) fn explain<T: Tagged>(
    kind: T::Kind,
    common: &[&str],
    message: &str,
) -> Option<(String, String)> {
    let name = T::kind_name(kind);
    let what = T::WHAT;
    if let Some(key) = named_in(message, "unknown field `") {
        let elsewhere = T::kinds().iter().any(|k| T::kind_keys(*k).contains(&key));
        let mut keys: Vec<&str> = vec!["kind"];
        keys.extend_from_slice(common);
        keys.extend_from_slice(T::kind_keys(kind));
        let explained = if elsewhere {
            format!(
                "`{key}` is not used by {what} kind `{name}`, which takes {}",
                quoted(&keys)
            )
        } else {
            format!(
                "unknown field `{key}`: {what} kind `{name}` takes {}",
                quoted(&keys)
            )
        };
        return Some((key.to_owned(), explained));
    }
    let key = named_in(message, "missing field `")?;
    Some((
        "kind".to_owned(),
        format!("{what} kind `{name}` needs `{key}`"),
    ))
}

/// The key quoted right after `prefix` in a serde message, such as
/// "unknown field `x`, expected ..." or "missing field `x`".
pub(crate) fn named_in<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// The keys a derived struct takes, as serde names them: the struct is asked
/// to read itself from a deserializer that only records its field list, so
/// the list can never drift from the struct.
pub(crate) fn fields_of<T: de::DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldRecorder(&mut fields));
    fields.unwrap_or(&[])
}

/// A deserializer that records the field list of the struct asking it.
struct FieldRecorder<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only a struct's field list is read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("only a struct's field list is read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Reads a kind-tagged `table` outside the configuration loader (tests,
/// fixtures, `toml::from_str`): takes `kind`, reads the `common` keys with
/// `read_common` and the rest as the kind's struct, with the loader's
/// messages (without their lines, which only the loader knows).
pub(crate) fn from_table<T: Tagged, C>(
    mut table: toml::Table,
    common: &[&str],
    read_common: impl FnOnce(toml::Table) -> Result<C, toml::de::Error>,
) -> Result<(C, T), String> {
    let kind = match table.remove("kind") {
        None => return Err(missing_kind::<T>()),
        Some(toml::Value::String(name)) => parse_kind::<T>(&name)?,
        Some(_) => return Err(format!("`kind` must be a string; {}", missing_kind::<T>())),
    };
    let (shared, own): (toml::Table, toml::Table) = table
        .into_iter()
        .partition(|(key, _)| common.contains(&key.as_str()));
    let common_part = read_common(shared).map_err(|e| e.message().to_owned())?;
    let own = T::deserialize_kind(kind, toml::Value::Table(own)).map_err(|e| {
        let message = e.message().to_owned();
        match explain::<T>(kind, common, &message) {
            Some((key, why)) => format!("{key}: {why}"),
            None => message,
        }
    })?;
    Ok((common_part, own))
}

/// Declares a kind-tagged enum `$Enum` (one variant per kind, holding the
/// kind's own struct), its key-less twin `$Kind`, and their [`Tagged`]
/// impl, from one line per kind: `Variant(Struct) = "name",`.
macro_rules! tagged_kinds {
    (
        $(#[$enum_meta:meta])*
        pub enum $Enum:ident;
        $(#[$kind_meta:meta])*
        pub enum $Kind:ident;
        what = $what:literal;
        not_yet = [$($not_yet:literal),*];
        $( $(#[$meta:meta])* $Variant:ident($Struct:ty) = $name:literal, )+
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $Enum {
            $( $(#[$meta])* $Variant($Struct), )+
        }

        $(#[$kind_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $Kind {
            $( $(#[$meta])* $Variant, )+
        }

        impl $Kind {
            /// The kind's name as written in the file.
            pub fn as_str(self) -> &'static str {
                match self { $( $Kind::$Variant => $name, )+ }
            }
        }

        impl $Enum {
            /// Which kind this is.
            pub fn kind(&self) -> $Kind {
                match self { $( $Enum::$Variant(_) => $Kind::$Variant, )+ }
            }
        }

        impl $crate::config::tagged::Tagged for $Enum {
            type Kind = $Kind;
            const WHAT: &'static str = $what;
            const NOT_YET: &'static [&'static str] = &[$($not_yet),*];

            fn kinds() -> &'static [$Kind] {
                &[$( $Kind::$Variant, )+]
            }

            fn kind_name(kind: $Kind) -> &'static str {
                kind.as_str()
            }

            fn kind_keys(kind: $Kind) -> &'static [&'static str] {
                match kind {
                    $( $Kind::$Variant => $crate::config::tagged::fields_of::<$Struct>(), )+
                }
            }

            fn deserialize_kind<'de, D: serde::Deserializer<'de>>(
                kind: $Kind,
                deserializer: D,
            ) -> Result<Self, D::Error> {
                Ok(match kind {
                    $( $Kind::$Variant => $Enum::$Variant(
                        <$Struct as serde::Deserialize>::deserialize(deserializer)?,
                    ), )+
                })
            }
        }
    };
}

pub(crate) use tagged_kinds;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        a: u32,
        #[serde(rename = "bee")]
        b: Option<String>,
    }

    #[test]
    fn field_lists_come_from_the_struct() {
        assert_eq!(fields_of::<Two>(), &["a", "bee"]);
    }

    #[test]
    fn serde_messages_are_explained_in_the_file_s_words() {
        use crate::config::StepAction;
        let kind = parse_kind::<StepAction>("wait").expect("a kind");
        let (key, why) =
            explain::<StepAction>(kind, &["phase"], "missing field `duration`").expect("explained");
        assert_eq!(
            (key.as_str(), why.as_str()),
            ("kind", "step kind `wait` needs `duration`")
        );
        let (key, why) = explain::<StepAction>(
            kind,
            &["phase"],
            "unknown field `unit`, expected `duration`",
        )
        .expect("explained");
        assert_eq!(key, "unit");
        assert!(
            why.starts_with("`unit` is not used by step kind `wait`"),
            "{why}"
        );
        assert!(why.contains("`phase`, `duration`"), "{why}");
        let (_, why) =
            explain::<StepAction>(kind, &[], "unknown field `duratoin`, expected `duration`")
                .expect("explained");
        assert!(why.starts_with("unknown field `duratoin`"), "{why}");
        assert!(explain::<StepAction>(kind, &[], "invalid type: integer").is_none());
    }
}
