//! Sizes in bytes, written the way durations are: a human string
//! (`"4MiB"`, `"64KiB"`, `"1GB"`) or a plain integer of bytes.
//!
//! Binary units (`KiB`, `MiB`, `GiB`) are powers of 1024, decimal ones
//! (`kB`, `MB`, `GB`) powers of 1000; units are read case-insensitively and
//! may be separated from the number by spaces. A size is shown back in the
//! largest binary unit that divides it, so that a message quotes what the
//! operator most likely wrote.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// A number of bytes from the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// What a size must look like, for error messages.
const EXPECTED: &str = "a size such as \"4MiB\", \"64KiB\" or an integer number of bytes";

impl ByteSize {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> ByteSize {
        ByteSize(n)
    }

    /// `n` KiB (1024 bytes each).
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n * 1024)
    }

    /// `n` MiB (1024 KiB each).
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n * 1024 * 1024)
    }

    /// The size in bytes.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The size in bytes as a length in memory, saturating on a 32-bit
    /// target (where no bound is that large anyway).
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::http::human_size(self.0))
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let invalid = || format!("{text:?} is not {EXPECTED}");
        if digits.is_empty() {
            return Err(invalid());
        }
        let number: u64 = digits.parse().map_err(|_| invalid())?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            _ => return Err(invalid()),
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ByteSize, E> {
                u64::try_from(n)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{n} is not {EXPECTED}")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_written_and_show_in_binary_units() {
        let read = |text: &str| text.parse::<ByteSize>();
        assert_eq!(read("4MiB"), Ok(ByteSize::mib(4)));
        assert_eq!(read("4 mib"), Ok(ByteSize::mib(4)));
        assert_eq!(read("64KiB"), Ok(ByteSize::kib(64)));
        assert_eq!(read("1GiB"), Ok(ByteSize::mib(1024)));
        assert_eq!(read("2MB"), Ok(ByteSize::bytes(2_000_000)));
        assert_eq!(read("512"), Ok(ByteSize::bytes(512)));
        assert_eq!(read("512B"), Ok(ByteSize::bytes(512)));
        for bad in ["", "MiB", "4 lots", "-4MiB", "4.5MiB", "99999999999999GiB"] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        assert_eq!(ByteSize::mib(4).to_string(), "4 MiB");
        assert_eq!(ByteSize::kib(1536).to_string(), "1536 KiB");
        assert_eq!(ByteSize::bytes(2_000_000).to_string(), "2000000 bytes");
    }

    #[test]
    fn sizes_are_strings_or_integers_in_toml() {
        #[derive(Debug, serde::Deserialize)]
        struct Table {
            size: ByteSize,
        }
        let table: Table = toml::from_str("size = \"256MiB\"").expect("a string");
        assert_eq!(table.size, ByteSize::mib(256));
        let table: Table = toml::from_str("size = 65536").expect("an integer");
        assert_eq!(table.size, ByteSize::kib(64));
        let error = toml::from_str::<Table>("size = -1").expect_err("negative");
        assert!(error.to_string().contains("not a size"), "{error}");
        let error = toml::from_str::<Table>("size = \"lots\"").expect_err("no number");
        assert!(error.to_string().contains("4MiB"), "{error}");
    }
}
