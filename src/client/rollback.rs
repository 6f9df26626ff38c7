//! `rollguard rollback TARGET [--to VERSION] [--dry-run] [--yes]`: the
//! runbook's emergency rollback, through the daemon. It asks the daemon for
//! the dry run and prints what will happen, asks `Proceed with rollback?
//! (yes/no)` (only an exact `yes` proceeds), starts the rollback, then
//! follows the journal (`GET /api/v1/events`) and prints each step as it
//! starts and ends, until the outcome.
//!
//! The daemon runs the rollback, not this command: once started, Ctrl-C
//! here (or a lost connection) stops the following, never the rollback.
//!
//! Exit codes: 0 the rollback completed and the service is verified back
//! to normal (or, with `--dry-run`, the plan was shown); 1 it was refused,
//! cancelled at the prompt, did not complete, or could not be followed to
//! its end; 2 the command line cannot be carried out (no terminal to ask
//! on and no `--yes`).

use super::{ApiClient, ClientError};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::time::Duration;

/// The exit code of a rollback that completed, or of a dry run shown.
pub const EXIT_OK: u8 = 0;
/// The exit code of a rollback refused, cancelled, or not completed.
pub const EXIT_FAILED: u8 = 1;
/// The exit code when the command cannot ask and was not told `--yes`.
pub const EXIT_USAGE: u8 = 2;

/// How often the journal is read while following.
const POLL: Duration = Duration::from_millis(200);
/// How long the daemon may stay unreachable while following.
const PATIENCE: Duration = Duration::from_secs(30);

/// What the person asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The target.
    pub target: String,
    /// The version to bring back (`--to`).
    pub to: Option<String>,
    /// Only show what would run (`--dry-run`).
    pub dry_run: bool,
    /// Do not ask (`--yes`).
    pub yes: bool,
}

/// Where the person is: the answers to the prompt and whether stdin is a
/// terminal one can ask on.
pub struct Terminal<'a> {
    /// Whether stdin is a terminal.
    pub interactive: bool,
    /// Where answers are read from.
    pub input: &'a mut dyn BufRead,
    /// Where the plan, the prompt and the timeline go.
    pub out: &'a mut dyn Write,
}

/// Runs the command; returns its exit code. Errors from the daemon are
/// printed on stderr here, prefixed with `rollguard rollback:`.
pub async fn run(client: &ApiClient, options: &Options, term: Terminal<'_>) -> u8 {
    match flow(client, options, term).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("rollguard rollback: {error}");
            EXIT_FAILED
        }
    }
}

/// Whether the command may go on without asking, checked before anything
/// is sent: `None` when it may, or the refusal's words.
pub fn refuse_without_terminal(options: &Options, interactive: bool) -> Option<&'static str> {
    (!options.dry_run && !options.yes && !interactive)
        .then_some("stdin is not a terminal; pass --yes to roll back without asking")
}

async fn flow(client: &ApiClient, options: &Options, term: Terminal<'_>) -> Result<u8, Failure> {
    let Terminal {
        interactive,
        input,
        out,
    } = term;
    if let Some(why) = refuse_without_terminal(options, interactive) {
        eprintln!("rollguard rollback: {why}");
        return Ok(EXIT_USAGE);
    }
    let path = format!("/api/v1/targets/{}/rollback", options.target);
    let plan = client
        .post_json(&path, &json!({"to": options.to, "dry_run": true}))
        .await?;
    write!(out, "{}", render_plan(&plan))?;
    let refused = plan.get("refused").and_then(Value::as_str);
    if options.dry_run {
        match refused {
            Some(why) => writeln!(
                out,
                "Dry run: nothing was changed. Rolling back now would be refused: {why}"
            )?,
            None => writeln!(out, "Dry run: nothing was changed.")?,
        }
        return Ok(EXIT_OK);
    }
    if let Some(why) = refused {
        writeln!(out, "rollguard would refuse this rollback: {why}")?;
        return Ok(EXIT_FAILED);
    }
    if !options.yes {
        write!(out, "Proceed with rollback? (yes/no) ")?;
        out.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        match answer.trim() {
            "yes" => {}
            "y" | "Y" | "Yes" | "YES" => {
                writeln!(out, "Rollback cancelled: type `yes` in full to roll back.")?;
                return Ok(EXIT_FAILED);
            }
            _ => {
                writeln!(out, "Rollback cancelled.")?;
                return Ok(EXIT_FAILED);
            }
        }
    }
    let expected = json!({"from": plan["from"], "to": plan["to"]});
    let started = client
        .post_json(
            &path,
            &json!({"to": options.to, "dry_run": false, "expected": expected}),
        )
        .await?;
    let seq = started
        .get("journal_seq")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let release_id = text(&started["release_id"]);
    writeln!(
        out,
        "Rollback of {} started (release {release_id}, journal record {seq}). \
         rollguard runs it in the daemon: Ctrl-C stops following it here, not the rollback. \
         Times are UTC.",
        options.target
    )?;
    if let Some(eta) = started.get("estimated_completion").and_then(Value::as_str) {
        writeln!(out, "Over at the latest by {eta}.")?;
    }
    out.flush()?;
    follow(client, &options.target, &release_id, seq, out).await
}

/// Reads the journal after `seq` until the rollback of `release_id` ends;
/// prints each step and the outcome.
async fn follow(
    client: &ApiClient,
    target: &str,
    release_id: &str,
    seq: u64,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let mut timeline = Timeline::new(release_id);
    let mut since = seq;
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let path = format!("/api/v1/events?target={target}&since={since}");
        let page = tokio::select! {
            _ = &mut interrupted => {
                writeln!(
                    out,
                    "\nStopped following. The rollback goes on in the daemon: see `rollguard status` \
                     or GET /api/v1/events?target={target}&since={since}."
                )?;
                return Ok(EXIT_FAILED);
            }
            page = client.get_json(&path) => page,
        };
        match page {
            Ok(page) => {
                unreachable_since = None;
                let events = page["events"].as_array().cloned().unwrap_or_default();
                for record in &events {
                    since = since.max(record["seq"].as_u64().unwrap_or(since));
                    if let Some(line) = timeline.line(record) {
                        writeln!(out, "{line}")?;
                        out.flush()?;
                    }
                    if let Some(outcome) = timeline.outcome.clone() {
                        writeln!(out, "{}", conclusion(target, &outcome))?;
                        let ok = outcome == "completed";
                        return Ok(if ok { EXIT_OK } else { EXIT_FAILED });
                    }
                }
                if !events.is_empty() {
                    continue;
                }
            }
            Err(error) => {
                let first = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if first.elapsed() > PATIENCE {
                    writeln!(
                        out,
                        "Lost contact with rollguard ({error}). The rollback goes on in the daemon: \
                         see `rollguard status` once it answers again."
                    )?;
                    return Ok(EXIT_FAILED);
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The lines of a rollback's timeline, from its journal records.
#[derive(Debug)]
pub struct Timeline {
    release_id: String,
    /// When each step's attempt started, by step name.
    started: Vec<(String, Option<std::time::SystemTime>)>,
    /// The outcome, once `rollback_finished` was read.
    pub outcome: Option<String>,
}

impl Timeline {
    /// The timeline of the rollback of `release_id`.
    pub fn new(release_id: &str) -> Timeline {
        Timeline {
            release_id: release_id.to_owned(),
            started: Vec::new(),
            outcome: None,
        }
    }

    /// The line a journal record adds, if it is about this rollback.
    pub fn line(&mut self, record: &Value) -> Option<String> {
        let event = &record["event"];
        if event["release_id"].as_str() != Some(self.release_id.as_str()) {
            return None;
        }
        let at = record["at"].as_str().unwrap_or_default();
        let clock = at.get(11..19).unwrap_or(at);
        let step = text(&event["step"]);
        match event["kind"].as_str()? {
            "step_started" => {
                let attempt = event["attempt"].as_u64().unwrap_or(1);
                self.started.retain(|(name, _)| *name != step);
                self.started
                    .push((step.clone(), humantime::parse_rfc3339(at).ok()));
                let again = if attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                Some(format!("{clock}  step {step} started{again}"))
            }
            "step_finished" => {
                let began = self
                    .started
                    .iter()
                    .find(|(name, _)| *name == step)
                    .and_then(|(_, at)| *at);
                let took = match (began, humantime::parse_rfc3339(at).ok()) {
                    (Some(began), Some(ended)) => {
                        let ms = ended.duration_since(began).unwrap_or_default().as_millis();
                        format!(
                            " after {}",
                            humantime::format_duration(Duration::from_millis(ms as u64))
                        )
                    }
                    _ => String::new(),
                };
                let message = event["message"]
                    .as_str()
                    .map(|m| format!(": {}", m.lines().next().unwrap_or_default()))
                    .unwrap_or_default();
                Some(format!(
                    "{clock}  step {step} {}{took}{message}",
                    text(&event["outcome"])
                ))
            }
            "rollback_finished" => {
                let outcome = text(&event["outcome"]);
                self.outcome = Some(outcome.clone());
                Some(format!("{clock}  rollback {outcome}"))
            }
            _ => None,
        }
    }
}

/// The last line: what the outcome means.
fn conclusion(target: &str, outcome: &str) -> String {
    match outcome {
        "completed" => format!("Rollback completed: {target} is verified back to normal."),
        "unverified" => format!(
            "Rollback unverified: the pipeline ran but {target} is not verified back to normal; check it by hand (`rollguard status`)."
        ),
        "failed" => format!(
            "Rollback failed: a step failed and the pipeline stopped; check {target} by hand (`rollguard status` and the journal)."
        ),
        "interrupted" => format!(
            "Rollback interrupted: rollguard stopped or lost the leadership before the end; check which version of {target} runs."
        ),
        other => format!("Rollback ended: {other}."),
    }
}

/// What the daemon's plan says, for a person: target, from and to, mode,
/// and the steps in order with their one-line descriptions.
pub fn render_plan(plan: &Value) -> String {
    let target = text(&plan["target"]);
    let mut out = format!(
        "Rollback of {target}: {} -> {} (mode {}",
        text(&plan["from"]),
        text(&plan["to"]),
        text(&plan["mode"])
    );
    match plan["release_id"].as_str() {
        Some(id) => out.push_str(&format!(", release {id})\n")),
        None => out.push_str(", no release seen: a new id is given)\n"),
    }
    let steps = plan["steps"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        out.push_str("No steps are configured: nothing would change.\n");
    } else {
        out.push_str("Steps, in order:\n");
        for (i, step) in steps.iter().enumerate() {
            let (name, description) = (text(&step["name"]), text(&step["description"]));
            // An unnamed step is named for its kind, which its
            // description already starts with.
            let line = if description.starts_with(&format!("{name}:")) {
                description
            } else {
                format!("{name}: {description}")
            };
            out.push_str(&format!("  {}. {line}\n", i + 1));
        }
    }
    let dry_runs = plan["dry_runs"].as_array().cloned().unwrap_or_default();
    if !dry_runs.is_empty() {
        out.push_str("Server-side dry runs:\n");
        for answer in &dry_runs {
            out.push_str(&format!("  - {}\n", text(answer)));
        }
    }
    if plan["paused"].as_bool() == Some(true) {
        out.push_str(&format!(
            "Note: automatic action is paused for {target}; a rollback you ask for runs anyway.\n"
        ));
    }
    out
}

/// A string as it is, other values as JSON, `-` for none.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why the command could not go on.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The daemon refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The terminal could not be written or read.
    #[error("cannot use the terminal: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_in_order() {
        let plan = json!({
            "target": "shop", "release_id": "shop-1", "from": "v2", "to": "v1",
            "mode": "enforce", "paused": true, "dry_run": true,
            "steps": [
                {"name": "record", "description": "command: record v2 v1"},
                {"name": "symlink_switch", "description": "symlink_switch: current -> releases/v1"}
            ],
            "dry_runs": ["the API server accepted it (dry run)"]
        });
        assert_eq!(
            render_plan(&plan),
            "Rollback of shop: v2 -> v1 (mode enforce, release shop-1)\n\
             Steps, in order:\n  \
             1. record: command: record v2 v1\n  \
             2. symlink_switch: current -> releases/v1\n\
             Server-side dry runs:\n  - the API server accepted it (dry run)\n\
             Note: automatic action is paused for shop; a rollback you ask for runs anyway.\n"
        );
    }

    #[test]
    fn the_timeline_has_durations_and_ignores_other_releases() {
        let mut timeline = Timeline::new("shop-1");
        let record = |at: &str, event: Value| json!({"seq": 1, "at": at, "event": event});
        let lines: Vec<Option<String>> = [
            record("2026-12-04T03:50:01.000Z", json!({"kind": "step_started", "release_id": "shop-1", "step": "switch", "attempt": 1})),
            record("2026-12-04T03:50:01.100Z", json!({"kind": "step_started", "release_id": "other", "step": "x", "attempt": 1})),
            record("2026-12-04T03:50:02.500Z", json!({"kind": "step_finished", "release_id": "shop-1", "step": "switch", "outcome": "ok", "message": null})),
            record("2026-12-04T03:50:03.000Z", json!({"kind": "rollback_finished", "release_id": "shop-1", "outcome": "completed"})),
        ]
        .iter()
        .map(|r| timeline.line(r))
        .collect();
        assert_eq!(
            lines,
            [
                Some("03:50:01  step switch started".to_owned()),
                None,
                Some("03:50:02  step switch ok after 1s 500ms".to_owned()),
                Some("03:50:03  rollback completed".to_owned()),
            ]
        );
        assert_eq!(timeline.outcome.as_deref(), Some("completed"));
    }

    #[test]
    fn only_a_terminal_or_yes_may_go_on() {
        let options = |dry_run, yes| Options {
            target: "shop".into(),
            dry_run,
            yes,
            ..Options::default()
        };
        assert!(refuse_without_terminal(&options(false, false), false).is_some());
        assert!(refuse_without_terminal(&options(false, false), true).is_none());
        assert!(refuse_without_terminal(&options(false, true), false).is_none());
        assert!(refuse_without_terminal(&options(true, false), false).is_none());
    }
}
