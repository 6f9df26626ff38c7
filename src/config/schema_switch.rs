//! The keys of the `bluegreen_switch` and `config_restore` steps: a
//! blue-green flip that refuses an unhealthy colour, and the configuration
//! that goes with the version rolled back to. Executors in
//! `src/pipeline/bluegreen.rs` and `src/pipeline/config_restore.rs`.

use super::{HttpStep, ProbeConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The template variables a blue-green flip may use besides the step
/// variables: the colour flipped to and the colour live before the flip.
pub const FLIP_VARIABLES: &[&str] = &["color", "live_color"];

/// `kind = "bluegreen_switch"`: find the live colour, probe the other one
/// `healthy_probes` times in a row, refuse to flip when any round fails,
/// flip, and check that the new live colour answers its probes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenSwitchStep {
    /// The service as descriptions name it ("flip shop from blue to
    /// green"); the target's name when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// The two colours, by name (`blue`, `green`): exactly two.
    pub colors: BTreeMap<String, ColorConfig>,
    /// A link that points to the live colour's `path`: it tells which
    /// colour is live, and the flip repoints it atomically (as
    /// `symlink_switch` does). Else `live_url` or `live_argv` tells, and
    /// `flip_http` or `flip_argv` flips.
    #[serde(default)]
    pub link: Option<PathBuf>,
    /// A URL (GET) whose answer is the live colour's name: the whole body,
    /// trimmed, or the string at `live_pointer`.
    #[serde(default)]
    pub live_url: Option<String>,
    /// JSON pointer of the colour's name in `live_url`'s answer.
    #[serde(default)]
    pub live_pointer: Option<String>,
    /// A program that prints the live colour's name (never a shell).
    #[serde(default)]
    pub live_argv: Option<Vec<String>>,
    /// The flip as an HTTP request, with the keys of an `http` step;
    /// `{{color}}` and `{{live_color}}` may be used in its URL and body.
    #[serde(default)]
    pub flip_http: Option<HttpStep>,
    /// The flip as a program (never a shell), `{{color}}` and
    /// `{{live_color}}` allowed; it also gets `ROLLGUARD_COLOR` and
    /// `ROLLGUARD_LIVE_COLOR`.
    #[serde(default)]
    pub flip_argv: Option<Vec<String>>,
    /// Rounds of the other colour's probes that must all pass, one after
    /// the other, before the flip: one failed round refuses it.
    #[serde(default = "healthy_probes")]
    pub healthy_probes: u32,
    /// Wait between two rounds.
    #[serde(default = "probe_interval", with = "humantime_serde")]
    pub probe_interval: Duration,
    /// When the new live colour fails its probes after the flip, flip back
    /// to the colour that was live. Off by default: that colour runs the
    /// release being rolled back.
    #[serde(default)]
    pub flip_back: bool,
}

/// `colors.<name>`: one colour of a blue-green pair.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColorConfig {
    /// With `link`: the directory the link points to when this colour is
    /// live (relative paths are read from the link's directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The colour's own health probes, with the keys of `[[target.probe]]`
    /// (`failures` and `severity` are not used here): every probe must
    /// pass, within its `max_latency` when set, for a round to pass.
    pub probe: Vec<ProbeConfig>,
}

/// `healthy_probes`' default.
pub fn healthy_probes() -> u32 {
    3
}

/// `probe_interval`'s default.
pub fn probe_interval() -> Duration {
    Duration::from_secs(1)
}

/// Where a `config_restore` step takes the configuration from.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// `path` as the git tag has it, checked out into `repo`'s work tree.
    GitTag,
    /// `path` inside the previous release's directory, copied over `dir`.
    ReleaseDir,
}

impl ConfigSource {
    /// The source as the file names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigSource::GitTag => "git_tag",
            ConfigSource::ReleaseDir => "release_dir",
        }
    }
}

/// `kind = "config_restore"` (phase `config`): bring back the
/// configuration directory of the version rolled back to. Restart the
/// services that read it with a `systemd_restart` step after it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigRestoreStep {
    /// `git_tag` or `release_dir`.
    pub from: ConfigSource,
    /// The configuration directory, relative: inside `repo` (`git_tag`),
    /// inside each release directory (`release_dir`).
    pub path: PathBuf,
    /// The tag, or the release directory's name; `{{previous_version}}`
    /// when absent. A value starting with `-` is refused.
    #[serde(default)]
    pub tag: Option<String>,
    /// `git_tag`: the repository whose work tree holds the live
    /// configuration; `git -C <repo> checkout --no-overlay <tag's commit>
    /// -- <path>`.
    #[serde(default)]
    pub repo: Option<PathBuf>,
    /// `release_dir`: the directory holding the release directories.
    #[serde(default)]
    pub releases_dir: Option<PathBuf>,
    /// `release_dir`: the live configuration directory, replaced whole by
    /// a copy made beside it (never half a directory, even after a crash).
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

impl ConfigRestoreStep {
    /// The tag or release name before rendering.
    pub fn tag_template(&self) -> &str {
        self.tag.as_deref().unwrap_or("{{previous_version}}")
    }
}
