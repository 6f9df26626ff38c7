//! The bench's command line (`cargo bench` adds `--bench`, which is
//! ignored); `judge.rs` documents the options.

use crate::generate::{BASELINE_TICKS, TICK_SECONDS};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned tables for people.
    Table,
    /// One JSON document.
    Json,
}

/// Command-line options (`cargo bench` adds `--bench`, which is ignored).
#[derive(Debug)]
pub struct Options {
    /// Seed of every release.
    pub seed: u64,
    /// Releases per scenario class.
    pub releases: usize,
    /// Output format.
    pub format: Format,
    /// Targets in the throughput section; 0 skips it.
    pub targets: usize,
    /// Print rollguard's misses and false alarms, release by release.
    pub explain: bool,
    /// Where `--explain` writes those releases as replay files.
    pub dump: Option<std::path::PathBuf>,
    /// Standard deviation of the slow drift of error rate and latency.
    pub drift: f64,
    /// Baseline lengths, in ticks.
    pub baselines: Vec<usize>,
}

/// Parses the command line; `Err` is the message to print.
pub fn options() -> Result<Options, String> {
    let mut options = Options {
        seed: 1,
        releases: 500,
        format: Format::Table,
        targets: 1000,
        drift: 0.1,
        explain: false,
        dump: None,
        baselines: vec![BASELINE_TICKS, BASELINE_TICKS / 2],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, text: String| {
            text.parse::<u64>()
                .map_err(|_| format!("{name} wants a whole number, not {text:?}"))
        };
        match arg.as_str() {
            "--seed" => options.seed = number("--seed", value("--seed")?)?,
            "--releases" => {
                options.releases = number("--releases", value("--releases")?)? as usize;
            }
            "--targets" => options.targets = number("--targets", value("--targets")?)? as usize,
            "--no-throughput" => options.targets = 0,
            "--explain" => options.explain = true,
            "--dump" => {
                options.explain = true;
                options.dump = Some(value("--dump")?.into());
            }
            "--drift" => {
                let text = value("--drift")?;
                options.drift = text
                    .parse::<f64>()
                    .ok()
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| format!("--drift wants a number >= 0, not {text:?}"))?;
            }
            "--baselines" => {
                let text = value("--baselines")?;
                options.baselines = text
                    .split(',')
                    .map(|m| {
                        m.trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|&m| m >= 5)
                            .map(|m| m * 60 / TICK_SECONDS as usize)
                            .ok_or_else(|| format!("--baselines wants minutes >= 5, not {m:?}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--format" => {
                options.format = match value("--format")?.as_str() {
                    "table" => Format::Table,
                    "json" => Format::Json,
                    other => return Err(format!("--format table|json, not {other:?}")),
                }
            }
            "--bench" => {}
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            _ => {} // cargo's name filters
        }
    }
    if options.releases == 0 {
        return Err("--releases must be at least 1".to_owned());
    }
    Ok(options)
}
