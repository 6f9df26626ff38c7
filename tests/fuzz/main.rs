//! Fuzzing with proptest (#14 item 10): every reader of outside input
//! answers an error, never a panic, whatever it is given. Random text and
//! bytes, and structure-aware mutations of real inputs (config/example.toml
//! with lines deleted, duplicated or given odd values; a real journal cut,
//! flipped and salted with garbage; replay files; API requests).
//!
//! Each property runs 256 cases by default (a few seconds in all, in a
//! debug build); `PROPTEST_CASES=20000 cargo test --test fuzz` is the
//! longer run docs/testing.md describes. An input that once failed stays
//! as a plain regression test beside the code it exercises (docs/testing.md
//! lists them).

mod api;
mod config;
mod journal;
mod mutate;
mod replay;
