//! The `rollguard` command: parse the CLI, load the configuration, start
//! telemetry and hand over to the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollguard::config::{self, Config};
use rollguard::{EXIT_BAD_CONFIG, EXIT_USAGE, client, daemon, telemetry};
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
        #[command(flatten)]
        api: ApiArgs,
        /// Print the raw JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Announce a release to the running daemon (for CI pipelines), for a
    /// target whose release kind is "announce".
    Announce {
        /// The target's name.
        target: String,
        /// The version now deployed.
        version: String,
        /// The version it replaced (the one a rollback brings back); the
        /// daemon's current version when absent.
        #[arg(long, value_name = "VERSION")]
        previous: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Approve the rollback waiting for a human's approval.
    Approve {
        /// The target's name.
        target: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Roll back the running release by hand, after showing the plan and
    /// asking.
    ///
    /// The runbook's emergency rollback, through the daemon and its
    /// pipeline. Shows what will happen (from -> to, mode, every step in
    /// order, from the daemon's dry run), asks "Proceed with rollback?
    /// (yes/no)" (only `yes` in full proceeds), then follows the rollback
    /// step by step until it ends. The daemon runs it: Ctrl-C stops the
    /// following, not the rollback. The pause (kill switch) does not stop a
    /// rollback you ask for, and it does not count for the cooldown; in
    /// shadow mode nothing is ever changed (--dry-run shows what would run).
    #[command(after_help = "Examples:\n  \
        rollguard rollback shop --dry-run        show what would run, change nothing\n  \
        rollguard rollback shop                  show it, ask, roll back to the previous version\n  \
        rollguard rollback shop --to v1.4.2 -y   roll back to v1.4.2 without asking\n\n\
        Exit codes: 0 the rollback completed and the service is verified back to normal \
        (or --dry-run showed the plan); 1 refused, cancelled at the prompt, not completed, \
        or not followed to its end; 2 stdin is not a terminal and --yes was not given \
        (nothing is sent).")]
    Rollback {
        /// The target's name.
        target: String,
        /// The version to bring back; by default the one that ran before
        /// the running release.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Only show what would run; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask; roll back at once (for scripts, and when stdin is not
        /// a terminal).
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set a target's estimated time to fix forward (like 20m or 2h), which
    /// the decision matrix weighs from the next tick; "default" returns to
    /// the configured estimate.
    Eta {
        /// The target's name.
        target: String,
        /// The estimate, or "default".
        time_to_fix: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Pause automatic action (the kill switch) for one target or, without
    /// TARGET, for all: rollbacks then wait for approval. Survives restarts.
    Pause {
        /// The target's name; every target when absent.
        target: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Resume automatic action paused with `rollguard pause`.
    Resume {
        /// The target's name; every target when absent.
        target: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show the whole loop on this machine with nothing else installed: a
    /// demo service, a broken release, and rollguard rolling it back (or, in
    /// shadow mode, saying it would have), with a timeline. Under a minute.
    Demo {
        /// enforce: roll back; shadow: only say what would have been done.
        #[arg(long, value_enum, default_value = "enforce")]
        mode: DemoMode,
        /// Keep the demo's directory (releases, journal) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Run the judge and the decision matrix over recorded releases, tick
    /// by tick as the daemon would, and print one verdict per release (one
    /// JSON object per line, or a table).
    Backtest {
        /// Replay files (JSON: name, interval_seconds, release_index,
        /// samples), judged with the default checks.
        #[arg(long, num_args = 1.., value_name = "FILE", required_unless_present = "release_at")]
        replay: Vec<PathBuf>,
        /// json: one object per release per line; table: for people.
        #[arg(long, value_enum, default_value = "json")]
        format: BacktestFormat,
        /// Judge with this target's policy rules, time to fix and bake window
        /// from --config; with --release-at, with its own metrics too.
        #[arg(long, value_name = "NAME", required_unless_present = "replay")]
        target: Option<String>,
        /// Fetch the bake window after this past release of --target from
        /// the configuration's Prometheus and judge it tick by tick, as the
        /// daemon would have (RFC 3339 like 2026-11-24T14:05:00Z, or Unix
        /// seconds).
        #[arg(
            long,
            value_name = "TIME",
            conflicts_with = "replay",
            requires = "target"
        )]
        release_at: Option<String>,
        /// With --release-at: the release's version, for {{version}}.
        #[arg(long, value_name = "VERSION", requires = "release_at")]
        version: Option<String>,
        /// With --release-at: the version before it, for {{previous_version}}.
        #[arg(long, value_name = "VERSION", requires = "release_at")]
        previous: Option<String>,
    },
    /// Print the incident report (Markdown) of TARGET's latest incident (a
    /// rollback, or a release a decision said to roll back), or of one
    /// release, or list the incidents. Reads the journal in daemon.state_dir
    /// only: no daemon needed, nothing changed, safe beside a running one.
    Report {
        /// The target's name; any target when absent.
        target: Option<String>,
        /// The incident of this release id (as in the journal and the
        /// notifications).
        #[arg(long, value_name = "ID")]
        release: Option<String>,
        /// List the incidents, one line each, instead of a report.
        #[arg(long)]
        list: bool,
        /// Read the journal in this directory instead of daemon.state_dir
        /// (a copy, on another machine); --config is then optional.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print rollguard's version.
    Version,
}

/// Output formats of `rollguard backtest`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BacktestFormat {
    /// One JSON object per release, one per line.
    Json,
    /// A table for people.
    Table,
}

/// Modes the demo can show.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DemoMode {
    /// Roll back by itself.
    Enforce,
    /// Change nothing; say what would have been done.
    Shadow,
}

/// How the CLI reaches the running daemon.
#[derive(Debug, clap::Args)]
struct ApiArgs {
    /// Base URL of the daemon's API; by default http://<daemon.listen> from
    /// the configuration file.
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// File holding the API token for mutating calls; by default
    /// daemon.api_token_file from the configuration file.
    #[arg(long, value_name = "FILE", env = "ROLLGUARD_API_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("rollguard {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Demo { mode, keep } => demo(mode, keep),
        Command::Backtest {
            replay,
            format,
            target,
            release_at,
            version,
            previous,
        } => match (release_at, target) {
            (Some(at), Some(target)) => {
                backtest_past(&cli.config, &target, &at, version, previous, format)
            }
            (_, target) => backtest(&cli.config, &replay, format, target.as_deref()),
        },
        Command::Check { file } => check(file.as_deref().unwrap_or(&cli.config)),
        Command::Run => run(cli.config),
        Command::Status { api, json } => {
            remote("status", &cli.config, &api, false, |client| async move {
                let status = client.status().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", client::render_status(&status));
                }
                Ok(())
            })
        }
        Command::Announce {
            target,
            version,
            previous,
            api,
        } => remote("announce", &cli.config, &api, true, |client| async move {
            let body = serde_json::json!({
                "target": target,
                "version": version,
                "previous_version": previous,
            });
            let answer = client.post_json("/api/v1/releases", &body).await?;
            println!(
                "announced {target} {version} (release {})",
                answer["release_id"].as_str().unwrap_or("?")
            );
            Ok(())
        }),
        Command::Approve { target, api } => {
            remote("approve", &cli.config, &api, true, |client| async move {
                let answer = client
                    .post_json(
                        &format!("/api/v1/targets/{target}/approve"),
                        &serde_json::json!({}),
                    )
                    .await?;
                println!("{}", answer["status"].as_str().unwrap_or("approved"));
                Ok(())
            })
        }
        Command::Eta {
            target,
            time_to_fix,
            api,
        } => {
            let value = if time_to_fix == "default" {
                None
            } else if let Err(error) = humantime::parse_duration(&time_to_fix) {
                eprintln!(
                    "rollguard eta: {time_to_fix:?} is not a duration ({error}); use 20m, 2h or default"
                );
                return ExitCode::from(EXIT_USAGE);
            } else {
                Some(time_to_fix)
            };
            remote("eta", &cli.config, &api, true, |client| async move {
                let answer = client
                    .post_json(
                        &format!("/api/v1/targets/{target}/time-to-fix"),
                        &serde_json::json!({ "time_to_fix": value }),
                    )
                    .await?;
                println!("{}", answer["status"].as_str().unwrap_or("set"));
                Ok(())
            })
        }
        Command::Rollback {
            target,
            to,
            dry_run,
            yes,
            api,
        } => {
            let options = client::rollback::Options {
                target,
                to,
                dry_run,
                yes,
            };
            rollback(&cli.config, &api, &options)
        }
        Command::Report {
            target,
            release,
            list,
            state_dir,
        } => incident_report(&cli.config, state_dir, target, release, list),
        Command::Pause { target, api } => pause(&cli.config, &api, target, true),
        Command::Resume { target, api } => pause(&cli.config, &api, target, false),
    }
}

fn backtest(
    config_path: &std::path::Path,
    files: &[PathBuf],
    format: BacktestFormat,
    target: Option<&str>,
) -> ExitCode {
    let mut settings = rollguard::backtest::Settings::default();
    if let Some(name) = target {
        let (config, index) = match load_target(config_path, name) {
            Ok(found) => found,
            Err(code) => return code,
        };
        settings = target_settings(&config, index);
    }
    let results = files
        .iter()
        .map(|file| {
            rollguard::backtest::Replay::load(file)
                .map_err(|e| e.to_string())
                .and_then(|replay| rollguard::backtest::run(&replay, &settings))
        })
        .collect();
    report(results, format)
}

/// Prints what a backtest judged (a JSON line per release, or one table)
/// and every error on stderr; fails when any release could not be judged.
fn report(
    results: Vec<Result<rollguard::backtest::Outcome, String>>,
    format: BacktestFormat,
) -> ExitCode {
    let mut failed = false;
    let mut outcomes = Vec::new();
    for result in results {
        match result {
            Ok(outcome) => {
                if let BacktestFormat::Json = format {
                    match serde_json::to_string(&outcome) {
                        Ok(line) => println!("{line}"),
                        Err(error) => {
                            eprintln!("rollguard backtest: {}: {error}", outcome.name);
                            failed = true;
                        }
                    }
                }
                outcomes.push(outcome);
            }
            Err(error) => {
                eprintln!("rollguard backtest: {error}");
                failed = true;
            }
        }
    }
    if let BacktestFormat::Table = format {
        print!("{}", rollguard::backtest::render_table(&outcomes));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The configuration at `config_path` and the index of its target `name`;
/// the exit code to return when either is missing.
fn load_target(config_path: &std::path::Path, name: &str) -> Result<(Config, usize), ExitCode> {
    let config = load(config_path)?;
    match config.targets.iter().position(|t| t.name == name) {
        Some(index) => Ok((config, index)),
        None => {
            eprintln!(
                "rollguard backtest: no target {name:?} in {}",
                config_path.display()
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// What a backtest judges with besides the checks: the file's decision
/// matrix, the target's time to fix and bake window.
fn target_settings(config: &Config, index: usize) -> rollguard::backtest::Settings {
    let target = &config.targets[index];
    rollguard::backtest::Settings {
        rules: rollguard::judge::effective_rules(&config.policy),
        time_to_fix: target.time_to_fix,
        bake_window: target.bake_window,
    }
}

/// `backtest --target NAME --release-at TIME`: a past release, from
/// Prometheus.
fn backtest_past(
    config_path: &std::path::Path,
    name: &str,
    release_at: &str,
    version: Option<String>,
    previous: Option<String>,
    format: BacktestFormat,
) -> ExitCode {
    let (config, index) = match load_target(config_path, name) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let target = &config.targets[index];
    let release = match rollguard::backtest::prometheus::parse_time(release_at) {
        Ok(at) => rollguard::backtest::prometheus::PastRelease {
            release_at: at,
            version: version.unwrap_or_default(),
            previous_version: previous,
        },
        Err(error) => {
            eprintln!("rollguard backtest: --release-at {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let settings = target_settings(&config, index);
    if !target.probe.is_empty() {
        eprintln!(
            "rollguard backtest: {name}'s probes are left out: nothing recorded what they answered"
        );
    }
    let judged = tokio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|runtime| {
            let http = rollguard::http::http_client().map_err(|e| e.to_string())?;
            runtime.block_on(rollguard::backtest::prometheus::run(
                &config, target, &release, &settings, http,
            ))
        });
    report(vec![judged], format)
}

/// `rollguard report`: reads the journal (never opens it for writing) and
/// prints a report or the list.
fn incident_report(
    config_path: &std::path::Path,
    state_dir: Option<PathBuf>,
    target: Option<String>,
    release: Option<String>,
    list: bool,
) -> ExitCode {
    let (state_dir, targets) = match state_dir {
        // A copied journal needs no configuration; with one, its targets'
        // status messages and restore steps are used.
        Some(dir) => (
            dir,
            config::load(config_path)
                .map(|c| c.targets)
                .unwrap_or_default(),
        ),
        None => match load(config_path) {
            Ok(config) => (config.daemon.state_dir, config.targets),
            Err(code) => return code,
        },
    };
    let records = match rollguard::journal::read_only(&state_dir) {
        Ok(records) => records,
        Err(error) => {
            eprintln!("rollguard report: cannot read the journal: {error}");
            return ExitCode::FAILURE;
        }
    };
    let query = rollguard::report::Query {
        target: target.as_deref(),
        release: release.as_deref(),
        list,
    };
    match rollguard::report::select(&records, &targets, &query, std::time::SystemTime::now()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rollguard report: {error}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn demo(mode: DemoMode, keep: bool) -> ExitCode {
    let mode = match mode {
        DemoMode::Enforce => rollguard::model::Mode::Enforce,
        DemoMode::Shadow => rollguard::model::Mode::Shadow,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rollguard demo: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rollguard::demo::run::run(mode, keep)) {
        Ok(outcome) if outcome.ok => ExitCode::SUCCESS,
        Ok(outcome) => {
            eprintln!("rollguard demo: {}", outcome.summary);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("rollguard demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn pause(
    config: &std::path::Path,
    api: &ApiArgs,
    target: Option<String>,
    paused: bool,
) -> ExitCode {
    let verb = if paused { "pause" } else { "resume" };
    remote(verb, config, api, true, |client| async move {
        let answer = client
            .post_json(
                &format!("/api/v1/{verb}"),
                &serde_json::json!({ "target": target }),
            )
            .await?;
        println!("{}", answer["status"].as_str().unwrap_or(verb));
        Ok(())
    })
}

/// `rollguard rollback`: refused at once without a terminal or `--yes`,
/// else the dry run, the prompt and the rollback (`client::rollback`).
fn rollback(
    config: &std::path::Path,
    api: &ApiArgs,
    options: &client::rollback::Options,
) -> ExitCode {
    use std::io::IsTerminal;
    let interactive = std::io::stdin().is_terminal();
    if let Some(why) = client::rollback::refuse_without_terminal(options, interactive) {
        eprintln!("rollguard rollback: {why}");
        return ExitCode::from(client::rollback::EXIT_USAGE);
    }
    let outcome = (|| {
        let client = api_client(config, api, true)?;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut out = std::io::stdout();
        let term = client::rollback::Terminal {
            interactive,
            input: &mut input,
            out: &mut out,
        };
        anyhow::Ok(runtime.block_on(client::rollback::run(&client, options, term)))
    })();
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("rollguard rollback: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `call` against the daemon's API and turns its outcome into an exit
/// code. `needs_token`: read the token for a mutating call.
fn remote<F, Fut>(
    verb: &str,
    config_path: &std::path::Path,
    args: &ApiArgs,
    needs_token: bool,
    call: F,
) -> ExitCode
where
    F: FnOnce(client::ApiClient) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let outcome = (|| {
        let client = api_client(config_path, args, needs_token)?;
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(call(client))
    })();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rollguard {verb}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The client for the daemon at `--api` or `daemon.listen`, with the token
/// from `--token-file` or `daemon.api_token_file` when `needs_token`.
fn api_client(
    config_path: &std::path::Path,
    args: &ApiArgs,
    needs_token: bool,
) -> anyhow::Result<client::ApiClient> {
    let config = if args.api.is_none() || (needs_token && args.token_file.is_none()) {
        Some(config::load(config_path).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n(pass --api URL and --token-file FILE to reach a daemon without this file)"
            )
        })?)
    } else {
        None
    };
    let token = if needs_token {
        let file = args
            .token_file
            .clone()
            .or_else(|| {
                config
                    .as_ref()
                    .and_then(|c| c.daemon.api_token_file.clone())
            })
            .context("no API token: pass --token-file or set daemon.api_token_file")?;
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read the API token from {}", file.display()))?;
        Some(text.trim().to_owned())
    } else {
        None
    };
    Ok(match (&args.api, &config) {
        (Some(url), _) => client::ApiClient::new(url, token)?,
        (None, Some(config)) => client::ApiClient::for_listen(config.daemon.listen, token)?,
        (None, None) => anyhow::bail!("no daemon address: pass --api URL"),
    })
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
            target.release.kind().as_str(),
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
    let colour = telemetry::colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    telemetry::init(
        config.daemon.log_format,
        &config.daemon.log_level,
        rust_log.as_deref(),
        colour,
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "Cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(daemon::run(path, config));
    // A stop during start-up may leave the journal's reading running on the
    // blocking pool; it acts on nothing and is safe to cut off.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, kind = error.metric_label(), "rollguard failed");
            ExitCode::from(error.exit_code() as u8)
        }
    }
}
