//! The `rollguard` command: parse the CLI, load the configuration, start
//! telemetry and hand over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollguard::config::{self, Config};
use rollguard::{EXIT_BAD_CONFIG, client, daemon, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

/// rollguard watches every release of a service and rolls it back when the
/// release breaks it, or, in shadow mode, says exactly when and why it would
/// have.
#[derive(Debug, Parser)]
#[command(name = "rollguard", version)]
#[command(after_help = "Exit codes: 0 success, 78 bad configuration, 1 any other failure.")]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "ROLLGUARD_CONFIG",
        default_value = "/etc/rollguard/rollguard.toml",
        value_name = "FILE"
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: watch every target's releases and act on them.
    Run,
    /// Validate the configuration: print a summary of the targets, or every
    /// error with its key path and line (exit code 78).
    Check {
        /// File to check instead of --config.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Show what the running daemon knows: targets, versions, last assessment.
    Status {
        /// Base URL of the daemon's API; by default http://<daemon.listen>
        /// from the configuration file.
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print rollguard's version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("rollguard {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check { file } => check(file.as_deref().unwrap_or(&cli.config)),
        Command::Run => run(cli.config),
        Command::Status { api, json } => match status(&cli.config, api, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("rollguard status: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Loads the configuration or prints every error and gives the exit code.
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_BAD_CONFIG as u8)
    })
}

fn check(path: &std::path::Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("{}: OK", path.display());
    println!(
        "daemon: listen {}, state in {}, default mode {}",
        config.daemon.listen,
        config.daemon.state_dir.display(),
        config.daemon.mode
    );
    for target in &config.targets {
        println!(
            "target {:?}: mode {}, release from {}, {} probe(s), {} metric(s), {} step(s), interval {}, bake window {}, notify [{}]",
            target.name,
            config.mode_of(target),
            target.release.kind.as_str(),
            target.probe.len(),
            target.metric.len(),
            target.step.len(),
            humantime::format_duration(target.interval),
            humantime::format_duration(target.bake_window),
            target.notify.join(", ")
        );
    }
    if config.targets.is_empty() {
        println!("no targets: the daemon would watch nothing");
    }
    ExitCode::SUCCESS
}

fn run(path: PathBuf) -> ExitCode {
    let config = match load(&path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let rust_log = std::env::var("RUST_LOG").ok();
    telemetry::init(
        config.daemon.log_format,
        &config.daemon.log_level,
        rust_log.as_deref(),
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(path, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, kind = error.metric_label(), "rollguard failed");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}

fn status(path: &std::path::Path, api: Option<String>, json: bool) -> anyhow::Result<()> {
    let base = match api {
        Some(url) => url,
        None => {
            let config = config::load(path).map_err(|e| {
                anyhow::anyhow!("{e}\n(pass --api URL to reach a daemon without this file)")
            })?;
            format!("http://{}", config.daemon.listen)
        }
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let client = client::ApiClient::new(&base, None)?;
    let status = runtime.block_on(client.status())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", client::render_status(&status));
    }
    Ok(())
}
