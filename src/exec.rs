//! Child processes: how every program rollguard runs (command steps, data
//! checks, `systemctl`) is started, fed, drained, timed out and killed.
//!
//! Never through a shell: `argv[0]` is the program and every other element
//! is one argument, whatever characters it holds. Each child gets its own
//! process group, so that a timeout stops the whole tree it started (a
//! script's `sleep` as well as the script), first with SIGTERM and, after
//! [`KILL_GRACE`], with SIGKILL. A program that exits by itself may leave
//! background processes behind on purpose (a daemon it started); those are
//! left alone. Children never inherit the variables that
//! would let them talk to systemd in rollguard's name, nor those that the
//! configuration reads secrets from ([`withhold_variables`]).
//!
//! A step's child outlives a `kill -9` of the daemon (nothing unsafe may
//! ask the kernel to kill it then): [`run_reporting`] hands its
//! [`ProcessGroup`] to the journal, and the next start stops what is left
//! of it (`group.rs`).

mod group;

pub use group::{Leftover, ProcessGroup};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// Most bytes of stdout and of stderr that are kept (the last ones: the
/// end of a failing program's output says why it failed).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long a timed-out process group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long the output pipes may stay open after the program exited (a
/// background process it started may hold them); what was read is kept.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Variables a child must not inherit: with them it could send sd_notify
/// messages (READY, WATCHDOG) as if it were the daemon.
const SYSTEMD_VARIABLES: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// The daemon's variables that hold secrets (a Slack URL, a webhook's
/// token), set from the configuration at start-up and at each reload: a
/// program run by a step or a notifier has no need for them, and a
/// script that logs its environment must not leak them.
static WITHHELD: RwLock<BTreeSet<String>> = RwLock::new(BTreeSet::new());

/// From now on, children do not inherit `names` from the daemon's
/// environment (a spec's own `env` still sets what it sets). Replaces
/// the previous set: call it with the whole configuration's names.
pub fn withhold_variables(names: BTreeSet<String>) {
    match WITHHELD.write() {
        Ok(mut withheld) => *withheld = names,
        Err(poisoned) => *poisoned.into_inner() = names,
    }
}

/// The names [`withhold_variables`] set last.
fn withheld_variables() -> BTreeSet<String> {
    match WITHHELD.read() {
        Ok(withheld) => withheld.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// One program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program and its arguments; each element reaches the program
    /// verbatim, as one argument.
    pub argv: Vec<String>,
    /// Variables added to (or replacing) the daemon's environment.
    pub env: Vec<(String, String)>,
    /// Working directory; the daemon's when absent.
    pub cwd: Option<PathBuf>,
    /// Bytes written to the program's stdin, which is then closed; stdin is
    /// `/dev/null` when absent, so a program that reads it never waits.
    pub stdin: Option<Vec<u8>>,
    /// Time limit, after which the whole process group is stopped.
    pub timeout: Duration,
}

impl CommandSpec {
    /// A spec with no extra environment, no working directory and no stdin.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Self {
        CommandSpec {
            argv,
            env: Vec::new(),
            cwd: None,
            stdin: None,
            timeout,
        }
    }
}

/// What a program did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// Exit code, when it exited by itself.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// The last [`OUTPUT_LIMIT`] bytes of stdout, as lossy UTF-8.
    pub stdout: String,
    /// The last [`OUTPUT_LIMIT`] bytes of stderr, as lossy UTF-8.
    pub stderr: String,
    /// From spawn to exit.
    pub duration: Duration,
}

impl CommandOutput {
    /// Whether the program exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit code 3", "killed by signal 9": how the program ended.
    pub fn status_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "no exit status".to_owned(),
        }
    }

    /// The last `max_chars` characters of stderr, trimmed; what a failure
    /// message quotes.
    pub fn stderr_tail(&self, max_chars: usize) -> String {
        tail(self.stderr.trim(), max_chars)
    }
}

/// Why a program could not be run to its end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program could not be started (not found, not executable, bad
    /// working directory, empty argv).
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// `argv[0]`.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The time limit passed; the process group was stopped.
    #[error("timed out after {}", humantime::format_duration(*after))]
    TimedOut {
        /// The time limit.
        after: Duration,
        /// What the program had printed, and how it ended once stopped.
        output: Box<CommandOutput>,
    },
    /// Waiting for the program failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// Runs `spec` to its end or its time limit; see the module docs.
///
/// A non-zero exit is not an error here: it is in the returned output, for
/// the caller to judge.
pub async fn run(spec: CommandSpec) -> Result<CommandOutput, ExecError> {
    run_reporting(spec, None).await
}

/// As [`run`], and sends the child's [`ProcessGroup`] on `spawned` as soon
/// as it runs, so that a rollback step's journal can record it.
pub async fn run_reporting(
    spec: CommandSpec,
    spawned: Option<tokio::sync::oneshot::Sender<ProcessGroup>>,
) -> Result<CommandOutput, ExecError> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(ExecError::Spawn {
            program: String::new(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "argv is empty"),
        });
    };
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    for name in SYSTEMD_VARIABLES {
        command.env_remove(name);
    }
    for name in withheld_variables() {
        command.env_remove(name);
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);

    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| ExecError::Spawn {
        program: program.clone(),
        source,
    })?;
    // The child leads its own group: its pid is the group id.
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    if let (Some(spawned), Some(group)) = (spawned, group) {
        let _ = spawned.send(ProcessGroup::of(group.as_raw()));
    }

    if let (Some(bytes), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        // A program that does not read its stdin must not block us: the
        // write runs on its own and its failure (EPIPE) is ignored.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());

    match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(status) => {
            let status = status.map_err(|source| ExecError::Io {
                context: format!("waiting for `{program}`"),
                source,
            })?;
            let duration = started.elapsed();
            Ok(CommandOutput {
                code: status.code(),
                signal: status.signal(),
                stdout: stdout.finish().await,
                stderr: stderr.finish().await,
                duration,
            })
        }
        Err(_) => {
            let status = stop_group(group, &mut child).await;
            let output = CommandOutput {
                code: status.and_then(|s| s.code()),
                signal: status.and_then(|s| s.signal()),
                stdout: stdout.finish().await,
                stderr: stderr.finish().await,
                duration: started.elapsed(),
            };
            Err(ExecError::TimedOut {
                after: spec.timeout,
                output: Box::new(output),
            })
        }
    }
}

/// SIGTERM to the whole group, up to [`KILL_GRACE`] for the child to go,
/// then SIGKILL to whatever is left of the group (grandchildren that ignore
/// SIGTERM included). Returns the child's exit status if it was reaped.
async fn stop_group(
    group: Option<Pid>,
    child: &mut tokio::process::Child,
) -> Option<std::process::ExitStatus> {
    let Some(group) = group else {
        // Already reaped: nothing of ours to signal by pid.
        return child.wait().await.ok();
    };
    // ESRCH (the group is already gone) is the only expected error.
    let _ = killpg(group, Signal::SIGTERM);
    let status = match tokio::time::timeout(KILL_GRACE, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => None,
    };
    let _ = killpg(group, Signal::SIGKILL);
    match status {
        Some(status) => Some(status),
        None => tokio::time::timeout(KILL_GRACE, child.wait())
            .await
            .ok()
            .and_then(Result::ok),
    }
}

/// One output pipe, drained by its own task into a bounded buffer so that
/// a chatty program never blocks on a full pipe.
struct Capture {
    buffer: Arc<Mutex<Tail>>,
    task: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts draining `pipe` (nothing to drain when `None`).
    fn start<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Capture {
        let buffer = Arc::new(Mutex::new(Tail::default()));
        let task = pipe.map(|mut pipe| {
            let buffer = buffer.clone();
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    lock(&buffer).push(&chunk[..n]);
                }
            })
        });
        Capture { buffer, task }
    }

    /// Waits (at most [`DRAIN_GRACE`]) for the pipe to close and returns
    /// what was read.
    async fn finish(mut self) -> String {
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(DRAIN_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        let tail = lock(&self.buffer);
        String::from_utf8_lossy(&tail.bytes).into_owned()
    }
}

/// Locks a buffer; a panicked drain task leaves bytes that are still fine.
fn lock(buffer: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    buffer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last [`OUTPUT_LIMIT`] bytes of a stream.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > OUTPUT_LIMIT {
            let cut = self.bytes.len() - OUTPUT_LIMIT;
            self.bytes.drain(..cut);
        }
    }
}

/// The last `max_chars` characters of `text`, with "…" in front when cut.
pub(crate) fn tail(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_owned();
    }
    let skip = count - max_chars;
    let rest: String = text.chars().skip(skip).collect();
    format!("…{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn exit_code_and_output_are_captured() {
        let mut spec = CommandSpec::new(
            argv(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        );
        spec.env.push(("X".into(), "1".into()));
        let out = run(spec).await.expect("runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr_tail(100), "err");
        assert!(!out.success());
        assert_eq!(out.status_text(), "exit code 3");
    }

    #[tokio::test]
    async fn stdin_is_fed_and_huge_output_is_cut() {
        let mut spec = CommandSpec::new(argv(&["/bin/cat"]), Duration::from_secs(10));
        spec.stdin = Some(vec![b'x'; 3 * OUTPUT_LIMIT]);
        let out = run(spec).await.expect("runs");
        assert!(out.success());
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
    }

    #[tokio::test]
    async fn missing_program_and_empty_argv_are_spawn_errors() {
        let spec = CommandSpec::new(argv(&["/nonexistent/prog"]), Duration::from_secs(1));
        assert!(matches!(run(spec).await, Err(ExecError::Spawn { .. })));
        let spec = CommandSpec::new(Vec::new(), Duration::from_secs(1));
        assert!(matches!(run(spec).await, Err(ExecError::Spawn { .. })));
    }

    #[tokio::test]
    async fn withheld_variables_do_not_reach_children() {
        // cargo and nextest set it for every test process; nothing else
        // this crate runs reads it.
        const NAME: &str = "CARGO_PKG_NAME";
        assert!(std::env::var(NAME).is_ok(), "the test runner sets {NAME}");
        let echo = || {
            let script = format!("echo ${{{NAME}-withheld}}");
            CommandSpec::new(argv(&["/bin/sh", "-c", &script]), Duration::from_secs(10))
        };
        let inherited = run(echo()).await.expect("runs");
        assert_eq!(inherited.stdout, "rollguard\n");

        withhold_variables([NAME.to_owned()].into());
        let withheld = run(echo()).await;
        let mut set_by_spec = echo();
        set_by_spec.env.push((NAME.into(), "given".into()));
        let given = run(set_by_spec).await;
        withhold_variables(BTreeSet::new());

        assert_eq!(withheld.expect("runs").stdout, "withheld\n");
        assert_eq!(given.expect("runs").stdout, "given\n");
    }

    #[test]
    fn tails_count_characters() {
        assert_eq!(tail("abcdé", 2), "…dé");
        assert_eq!(tail("ab", 2), "ab");
    }
}
