//! Notifiers against real receivers: HTTP servers on 127.0.0.1 that record
//! what they get, a real program for the command notifier, a real journal.

#[path = "notify/harness.rs"]
mod harness;

use harness::*;
use rollguard::config::MapEnvironment;
use rollguard::model::Mode;
use rollguard::notify::{DeliveryOptions, Notification, NotifyEvent};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[tokio::test]
async fn webhook_gets_every_field_in_order_with_its_header() {
    let receiver = Receiver::start(&[], Duration::ZERO).await;
    let config = notifier(&format!(
        "name = \"ops\"\nkind = \"webhook\"\nurl = \"{}\"\nheaders_env = {{ Authorization = \"HOOK_TOKEN\" }}\n",
        receiver.url("/hook")
    ));
    let mut env = MapEnvironment::default();
    env.vars
        .insert("HOOK_TOKEN".to_owned(), "Bearer tok-123".to_owned());
    let s = setup(&[config], &env, fast());

    s.notifiers.send(&names(&["ops"]), rollback_started());
    for step in ["drain", "deploy", "verify"] {
        let n = Notification::new(
            NotifyEvent::RollbackStep,
            "api",
            Mode::Enforce,
            SystemTime::now(),
        )
        .with_step(step);
        s.notifiers.send(&names(&["ops"]), n);
    }
    let done = wait_sent(&s.journal, 4).await;
    assert_eq!(done.len(), 4, "{done:?}");
    assert!(
        done.iter()
            .all(|(n, _, ok, a)| n == "ops" && *ok && *a == 1)
    );

    let got = receiver.received();
    assert_eq!(got[0].path, "/hook");
    assert_eq!(got[0].headers["authorization"], "Bearer tok-123");
    let body = &got[0].body;
    for key in rollguard::notify::WEBHOOK_FIELDS {
        assert!(body.get(key).is_some(), "{key} missing in {body}");
    }
    assert_eq!(body["event"], "rollback_started");
    assert_eq!(body["from"], "v1.4.0");
    assert_eq!(body["to"], "v1.3.2");
    assert_eq!(body["mode"], "enforce");
    assert_eq!(body["reasons"][0], "error_rate 8.2% > high threshold 2%");
    let at = body["at"].as_str().expect("at is a string");
    assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");
    let headline = body["headline"].as_str().expect("headline");
    assert!(headline.contains("v1.4.0 → v1.3.2"), "{headline}");
    let steps: Vec<&Value> = got[1..].iter().map(|r| &r.body["step"]).collect();
    assert_eq!(steps, ["drain", "deploy", "verify"], "order is kept");
    let metrics = s.metrics.encode();
    assert!(
        metrics.contains("rollguard_notifications_total{notifier=\"ops\",result=\"ok\"} 4"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slack_payload_and_url_env_through_the_environment() {
    let receiver = Receiver::start(&[], Duration::ZERO).await;
    let config = notifier("name = \"chat\"\nkind = \"slack\"\nurl_env = \"SLACK_URL\"\n");
    let mut env = MapEnvironment::default();
    env.vars.insert(
        "SLACK_URL".to_owned(),
        format!("{}\n", receiver.url("/services/T0/B0/SUPERSECRET")),
    );
    let s = setup(&[config], &env, fast());
    let debug = format!("{:?}", s.notifiers);
    assert!(!debug.contains("SUPERSECRET"), "{debug}");
    assert!(
        debug.contains("chat") && debug.contains("redacted"),
        "{debug}"
    );

    let n = Notification::new(
        NotifyEvent::WouldRollback,
        "api",
        Mode::Shadow,
        SystemTime::now(),
    )
    .with_from("v1.4.0")
    .with_to("v1.3.2")
    .with_reasons(["p99 latency 900ms > 500ms"]);
    s.notifiers.send(&names(&["chat"]), n);
    let done = wait_sent(&s.journal, 1).await;
    assert_eq!(done, [("chat".into(), "would_rollback".into(), true, 1)]);

    let got = receiver.received();
    assert_eq!(got[0].path, "/services/T0/B0/SUPERSECRET");
    let body = &got[0].body;
    let text = body["text"].as_str().expect("text");
    assert!(text.contains("WOULD roll back v1.4.0 → v1.3.2"), "{text}");
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    let section = body["blocks"][0]["text"]["text"].as_str().expect("section");
    assert!(section.contains("p99 latency 900ms"), "{section}");
}

#[tokio::test]
async fn command_notifier_gets_json_on_stdin_and_rendered_arguments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("notify.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat > \"$1\"\nprintf '%s\\n' \"$2\" \"$ROLLGUARD_EVENT\" \"${NOTIFY_SOCKET:-unset}\" > \"$1.args\"\n",
    )
    .expect("write script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = dir.path().join("got.json");
    let config = notifier(&format!(
        "name = \"local\"\nkind = \"command\"\nretries = 2\nargv = [\"{}\", \"{}\", \"{{{{version}}}}\"]\n",
        script.display(),
        out.display()
    ));
    let s = setup(&[config], &MapEnvironment::default(), fast());

    let hostile = rollback_started().with_from("v1.4.0; touch /tmp/rollguard-pwned");
    s.notifiers.send(&names(&["local"]), hostile);
    let done = wait_sent(&s.journal, 1).await;
    assert_eq!(done.len(), 1);
    assert!(done[0].2, "{done:?}");

    let json: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("stdin copied")).expect("JSON");
    assert_eq!(json["event"], "rollback_started");
    assert_eq!(json["to"], "v1.3.2");
    assert!(
        json["text"]
            .as_str()
            .is_some_and(|t| t.contains("What happened"))
    );
    let args = std::fs::read_to_string(dir.path().join("got.json.args")).expect("args");
    assert_eq!(
        args, "v1.4.0; touch /tmp/rollguard-pwned\nrollback_started\nunset\n",
        "the version is one argument, never a shell line"
    );
}

#[tokio::test]
async fn retries_until_delivered_and_gives_up_after_the_last_attempt() {
    let flaky = Receiver::start(&[500, 503], Duration::ZERO).await;
    let broken = Receiver::start(&[500; 10], Duration::ZERO).await;
    let configs = [
        notifier(&format!(
            "name = \"flaky\"\nkind = \"webhook\"\nurl = \"{}\"\nretries = 3\n",
            flaky.url("/")
        )),
        notifier(&format!(
            "name = \"broken\"\nkind = \"webhook\"\nurl = \"{}\"\nretries = 2\n",
            broken.url("/")
        )),
    ];
    let s = setup(&configs, &MapEnvironment::default(), fast());
    s.notifiers
        .send(&names(&["flaky", "broken"]), rollback_started());
    let mut done = wait_sent(&s.journal, 2).await;
    done.sort();
    assert_eq!(
        done,
        [
            ("broken".into(), "rollback_started".into(), false, 3),
            ("flaky".into(), "rollback_started".into(), true, 3),
        ]
    );
    assert_eq!(flaky.received().len(), 3);
    assert_eq!(broken.received().len(), 3);
    let metrics = s.metrics.encode();
    assert!(
        metrics.contains("rollguard_notifications_total{notifier=\"broken\",result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_delays_neither_the_caller_nor_other_notifiers() {
    let hanging = Receiver::start(&[], Duration::from_secs(10)).await;
    let healthy = Receiver::start(&[], Duration::ZERO).await;
    let configs = [
        notifier(&format!(
            "name = \"hanging\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"1s\"\nretries = 0\n",
            hanging.url("/")
        )),
        notifier(&format!(
            "name = \"healthy\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            healthy.url("/")
        )),
    ];
    let s = setup(&configs, &MapEnvironment::default(), fast());
    let started = Instant::now();
    s.notifiers
        .send(&names(&["hanging", "healthy"]), rollback_started());
    s.notifiers
        .send(&names(&["hanging", "healthy"]), rollback_started());
    assert!(started.elapsed() < Duration::from_millis(50), "send waited");

    let first = wait_sent(&s.journal, 2).await;
    assert_eq!(first.len(), 2);
    assert!(
        first.iter().all(|(n, _, ok, _)| n == "healthy" && *ok),
        "the healthy notifier finished first: {first:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(900));

    let all = wait_sent(&s.journal, 4).await;
    let hung: Vec<_> = all.iter().filter(|(n, ..)| n == "hanging").collect();
    assert_eq!(hung.len(), 2, "{all:?}");
    assert!(
        hung.iter()
            .all(|(_, _, ok, attempts)| !ok && *attempts == 1)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout cut it"
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_records_new_messages() {
    let hanging = Receiver::start(&[], Duration::from_secs(10)).await;
    let config = notifier(&format!(
        "name = \"slow\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"200ms\"\nretries = 0\n",
        hanging.url("/")
    ));
    let options = DeliveryOptions {
        queue_capacity: 1,
        ..fast()
    };
    let s = setup(&[config], &MapEnvironment::default(), options);
    // A current-thread runtime: the delivery task does not run before the
    // test yields, so the first message fills the queue.
    for _ in 0..3 {
        s.notifiers.send(&names(&["slow"]), rollback_started());
    }
    let done = wait_sent(&s.journal, 3).await;
    assert_eq!(
        done.iter().filter(|d| !d.2 && d.3 == 0).count(),
        2,
        "{done:?}"
    );
    let metrics = s.metrics.encode();
    assert!(
        metrics.contains("rollguard_notifications_total{notifier=\"slow\",result=\"dropped\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unresolvable_url_fails_clearly_without_a_value() {
    let config = notifier("name = \"ops\"\nkind = \"webhook\"\nurl_env = \"MISSING_URL\"\n");
    let s = setup(&[config], &MapEnvironment::default(), fast());
    let debug = format!("{:?}", s.notifiers);
    assert!(
        debug.contains("MISSING_URL") && debug.contains("not set"),
        "{debug}"
    );
    s.notifiers.send(&names(&["ops"]), rollback_started());
    s.notifiers.send(&names(&["nobody"]), rollback_started());
    let done = wait_sent(&s.journal, 1).await;
    assert_eq!(done, [("ops".into(), "rollback_started".into(), false, 0)]);
}

/// Captured log output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("capture lock")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secret_urls_never_reach_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("rollguard=trace")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dead = dead_port().await;
    let failing = Receiver::start(&[500; 10], Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, failing.url("/services/T1/FILESECRET")).expect("write url file");
    let configs = [
        notifier("name = \"dead\"\nkind = \"slack\"\nurl_env = \"DEAD_URL\"\nretries = 1\n"),
        notifier(&format!(
            "name = \"failing\"\nkind = \"webhook\"\nurl_file = \"{}\"\nretries = 1\n",
            url_file.display()
        )),
    ];
    let mut env = MapEnvironment::default();
    env.vars.insert(
        "DEAD_URL".to_owned(),
        format!("http://{dead}/services/T0/ENVSECRET"),
    );
    let s = setup(&configs, &env, fast());
    s.notifiers
        .send(&names(&["dead", "failing"]), rollback_started());
    let done = wait_sent(&s.journal, 2).await;
    assert_eq!(done.len(), 2);
    assert!(
        done.iter()
            .all(|(_, _, ok, attempts)| !ok && *attempts == 2)
    );
    assert_eq!(failing.received().len(), 2, "the URL file was read");

    let logs = String::from_utf8_lossy(&capture.0.lock().expect("capture lock")).into_owned();
    assert!(logs.contains("Notification attempt failed"), "{logs}");
    assert!(logs.contains("connection refused"), "{logs}");
    for secret in ["ENVSECRET", "FILESECRET", "/services/"] {
        assert!(!logs.contains(secret), "{secret} in logs:\n{logs}");
    }
    let debug = format!("{:?}", s.notifiers);
    assert!(!debug.contains("SECRET"), "{debug}");
}

#[tokio::test]
async fn shutdown_flushes_within_the_grace_and_then_gives_up() {
    let healthy = Receiver::start(&[], Duration::from_millis(50)).await;
    let hanging = Receiver::start(&[], Duration::from_secs(10)).await;
    let configs = [
        notifier(&format!(
            "name = \"healthy\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            healthy.url("/")
        )),
        notifier(&format!(
            "name = \"hanging\"\nkind = \"webhook\"\nurl = \"{}\"\ntimeout = \"10s\"\n",
            hanging.url("/")
        )),
    ];
    let s = setup(&configs, &MapEnvironment::default(), fast());
    for _ in 0..3 {
        s.notifiers
            .send(&names(&["healthy", "hanging"]), rollback_started());
    }
    assert_eq!(s.notifiers.pending(), 6);
    let started = Instant::now();
    s.notifiers.shutdown(Duration::from_millis(600)).await;
    assert!(started.elapsed() < Duration::from_secs(2), "grace kept");
    let done = sent(&s.journal);
    assert_eq!(
        done.iter()
            .filter(|(n, _, ok, _)| n == "healthy" && *ok)
            .count(),
        3,
        "{done:?}"
    );
    assert!(done.iter().all(|(n, ..)| n == "healthy"), "{done:?}");
}

#[tokio::test]
async fn a_notifier_receives_only_its_events_and_skipped_ones_are_not_counted() {
    let receiver = Receiver::start(&[], Duration::ZERO).await;
    let only_failed = notifier(&format!(
        "name = \"failures\"\nkind = \"webhook\"\nurl = \"{}\"\nevents = [\"rollback_failed\"]\n",
        receiver.url("/failures")
    ));
    let everything = notifier(&format!(
        "name = \"all\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        receiver.url("/all")
    ));
    let s = setup(
        &[only_failed, everything],
        &MapEnvironment::default(),
        fast(),
    );
    for event in NotifyEvent::ALL {
        let mut n = rollback_started();
        n.event = event;
        s.notifiers.send(&names(&["failures", "all"]), n);
    }
    let total = NotifyEvent::ALL.len() + 1;
    let done = wait_sent(&s.journal, total).await;
    // Nothing more arrives for the filtered events.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let done_later = sent(&s.journal);
    assert_eq!(done_later.len(), total, "{done_later:?}");
    let failures: Vec<&str> = done
        .iter()
        .filter(|d| d.0 == "failures")
        .map(|d| d.1.as_str())
        .collect();
    assert_eq!(failures, ["rollback_failed"]);
    let bodies: Vec<Value> = receiver
        .received()
        .into_iter()
        .filter(|r| r.path == "/failures")
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["event"], "rollback_failed");
    let metrics = s.metrics.encode();
    assert!(
        metrics.contains("rollguard_notifications_total{notifier=\"failures\",result=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("notifier=\"failures\",result=\"dropped\""),
        "{metrics}"
    );
}
