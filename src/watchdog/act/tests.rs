//! The actor carrying out the gate's answers, with tokio's clock paused:
//! the cooldown and approval deadlines move with `tokio::time::advance`,
//! never with a real sleep. Targets have no probes, metrics or steps, so a
//! rollback's verification passes at once and nothing leaves the process.

use super::*;
use crate::config::{MapEnvironment, parse};
use crate::journal::Journal;
use crate::model::{DataImpact, Mode};
use crate::notify::{DeliveryOptions, Notifiers};
use crate::watchdog::bake::BakeKind;
use crate::watchdog::{Clock, Services};
use std::time::Duration;

/// A target in `mode`, its journal, and the parts of a loop an actor
/// borrows.
struct World {
    _dir: tempfile::TempDir,
    state: State,
    setup: Arc<Setup>,
    tracker: ReleaseTracker,
    last_automatic_rollback: Option<SystemTime>,
    stop: watch::Receiver<bool>,
    _stopper: watch::Sender<bool>,
}

impl World {
    fn new(mode: Mode) -> World {
        let text = format!(
            "[[target]]\nname = \"api\"\nmode = \"{mode}\"\ncooldown = \"10m\"\nbake_window = \"1h\"\n[target.release]\nkind = \"announce\"\n"
        );
        let config = parse(&text, std::path::Path::new("t.toml")).expect("config");
        let dir = tempfile::tempdir().expect("tempdir");
        let (journal, _) = Journal::open(dir.path()).expect("journal");
        let (control, _) = tokio::sync::mpsc::channel(1);
        let state = State::new(Arc::new(config.clone()), None, journal.clone(), control);
        let http = reqwest::Client::new();
        let env = Arc::new(MapEnvironment::default());
        let notifiers = Notifiers::new(
            &[],
            env.as_ref(),
            http.clone(),
            journal,
            state.metrics().notifications.clone(),
            DeliveryOptions::default(),
        );
        let services = Services {
            http,
            env,
            systemctl: "/bin/false".into(),
            delivery: DeliveryOptions::default(),
            kube: Err("no cluster in unit tests".to_owned()),
            kube_steps: crate::kubernetes::KubeClient::from_defaults(),
            clock: Clock::following_tokio(),
        };
        let target = config.targets[0].clone();
        let setup = Arc::new(Setup {
            mode: config.mode_of(&target),
            target,
            rules: crate::judge::effective_rules(&config.policy),
            querier: None,
            querier_error: None,
            notifiers: Arc::new(notifiers),
            probe_permits: Arc::new(tokio::sync::Semaphore::new(4)),
            monitoring_notice_after: config.daemon.monitoring_notice_after,
            services,
        });
        let (stopper, stop) = watch::channel(false);
        World {
            _dir: dir,
            state,
            setup,
            tracker: ReleaseTracker::new("api").with_current("v1"),
            last_automatic_rollback: None,
            stop,
            _stopper: stopper,
        }
    }

    /// A release of `version` over `previous`, announced to the tracker
    /// as the loop would.
    fn bake(&mut self, id: &str, version: &str, previous: &str) -> Bake {
        let now = self.setup.services.clock.now();
        self.tracker = ReleaseTracker::new("api").with_current(previous);
        let change = self
            .tracker
            .announce(version, Some(previous.to_owned()), now);
        assert!(matches!(change, Some(ReleaseChange::Release { .. })));
        Bake::new(
            id.to_owned(),
            version.to_owned(),
            Some(previous.to_owned()),
            now,
            BakeKind::Release,
            crate::judge::Judge::new(&self.setup.target),
            self.setup.target.bake_window,
        )
    }

    fn actor<'a>(&'a mut self, bake: &'a mut Bake) -> Actor<'a> {
        Actor {
            state: &self.state,
            setup: &self.setup,
            bake,
            last_automatic_rollback: &mut self.last_automatic_rollback,
            tracker: &mut self.tracker,
            source: None,
            stop: &self.stop,
        }
    }

    /// A tick that decides to roll back, as the loop records and acts on it.
    async fn decide_rollback(&mut self, bake: &mut Bake) -> Option<ReleaseChange> {
        bake.last = Some(rollback());
        self.actor(bake).act(&assessment(), &rollback()).await
    }

    /// The journal's events about `release_id`.
    fn events(&self, release_id: &str) -> Vec<Event> {
        self.state
            .journal()
            .records()
            .into_iter()
            .map(|r| r.event)
            .filter(|e| serde_json::to_value(e).is_ok_and(|v| v["release_id"] == release_id))
            .collect()
    }

    fn rollbacks_started(&self, release_id: &str) -> Vec<String> {
        self.events(release_id)
            .into_iter()
            .filter_map(|e| match e {
                Event::RollbackStarted { trigger, .. } => Some(trigger),
                _ => None,
            })
            .collect()
    }
}

fn rollback() -> DecisionRecord {
    DecisionRecord {
        decision: Decision::Rollback,
        severity: Severity::Critical,
        data_impact: DataImpact::None,
        time_to_fix: crate::model::TimeToFix::Known(Duration::from_secs(3600)),
        rule: None,
        reasons: vec!["error rate 5x baseline".to_owned()],
    }
}

fn assessment() -> Assessment {
    Assessment {
        severity: Severity::Critical,
        data_impact: DataImpact::None,
        time_to_fix: crate::model::TimeToFix::Known(Duration::from_secs(3600)),
        inconclusive: false,
        evidence: Vec::new(),
    }
}

#[tokio::test(start_paused = true)]
async fn enforce_rolls_back_then_asks_within_the_cooldown_then_rolls_back_again() {
    let mut world = World::new(Mode::Enforce);
    let mut first = world.bake("r1", "v2", "v1");
    let restored = world.decide_rollback(&mut first).await;
    assert_eq!(world.rollbacks_started("r1"), ["automatic"]);
    assert!(matches!(
        world.events("r1").last(),
        Some(Event::RollbackFinished { outcome, .. }) if outcome == "completed"
    ));
    assert!(first.acted && world.last_automatic_rollback.is_some());
    // An announce target: no source reports v1 coming back, the actor does.
    assert!(matches!(restored, Some(ReleaseChange::Rollback { ref to, .. }) if to == "v1"));

    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    let mut second = world.bake("r2", "v3", "v1");
    world.decide_rollback(&mut second).await;
    assert!(world.rollbacks_started("r2").is_empty());
    let approval = second.approval.as_ref().expect("asks for approval");
    assert!(
        approval
            .reason
            .starts_with("cooldown: the last automatic rollback of api started 9m"),
        "{}",
        approval.reason
    );
    assert!(matches!(
        world.events("r2")[..],
        [Event::ApprovalRequested { .. }]
    ));

    tokio::time::advance(Duration::from_secs(60)).await;
    let mut third = world.bake("r3", "v4", "v1");
    world.decide_rollback(&mut third).await;
    assert_eq!(world.rollbacks_started("r3"), ["automatic"]);
}

#[tokio::test(start_paused = true)]
async fn approve_mode_runs_the_rollback_a_human_approved_in_time() {
    let mut world = World::new(Mode::Approve);
    let mut bake = world.bake("r1", "v2", "v1");
    world.decide_rollback(&mut bake).await;
    assert!(world.rollbacks_started("r1").is_empty());
    assert!(bake.approval.is_some());
    // The gate asks once per release.
    world.decide_rollback(&mut bake).await;
    let asked = world.events("r1");
    assert_eq!(asked.len(), 1, "{asked:?}");

    tokio::time::advance(Duration::from_secs(59 * 60)).await;
    let record = world.actor(&mut bake).approve().await.expect("approved");
    assert_eq!(record.decision, Decision::Rollback);
    world.actor(&mut bake).rollback_approved(record).await;
    assert_eq!(world.rollbacks_started("r1"), ["approved"]);
    assert!(
        world.last_automatic_rollback.is_none(),
        "an approved rollback starts no cooldown"
    );
    let again = world.actor(&mut bake).approve().await;
    assert!(matches!(
        again,
        Err(ApproveError::Refused(Refusal::AlreadyActed))
    ));
}

#[tokio::test(start_paused = true)]
async fn an_approval_lapses_with_its_bake_window() {
    let mut world = World::new(Mode::Approve);
    let mut bake = world.bake("r1", "v2", "v1");
    world.decide_rollback(&mut bake).await;
    tokio::time::advance(Duration::from_secs(3600)).await;
    let late = world.actor(&mut bake).approve().await;
    assert!(matches!(late, Err(ApproveError::Refused(Refusal::Expired))));
    assert!(bake.approval.is_none(), "the lapsed request is dropped");
    assert!(world.rollbacks_started("r1").is_empty());
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_changes_nothing_and_says_so_once() {
    let mut world = World::new(Mode::Shadow);
    let mut bake = world.bake("r1", "v2", "v1");
    for _ in 0..2 {
        let restored = world.decide_rollback(&mut bake).await;
        assert!(restored.is_none());
    }
    assert!(bake.acted && bake.approval.is_none());
    assert!(world.events("r1").is_empty(), "{:?}", world.events("r1"));
    let shadowed = world
        .state
        .metrics()
        .rollbacks
        .get_or_create(&RollbackLabels {
            target: "api".into(),
            outcome: "shadowed".into(),
        })
        .get();
    assert_eq!(shadowed, 1);
}

/// An inconclusive tick: the metric's query failed (`failed`) or passed.
fn monitoring_tick(failed: bool) -> (Assessment, DecisionRecord) {
    let mut evidence =
        crate::model::CheckEvidence::unknown("error_rate", crate::model::CheckKind::Metric, 2);
    if failed {
        evidence.reason = "error_rate: query failed (connection refused)".to_owned();
    } else {
        evidence.verdict = crate::model::Verdict::Pass;
    }
    let assessment = Assessment {
        severity: Severity::None,
        inconclusive: failed,
        evidence: vec![evidence],
        ..assessment()
    };
    let record = DecisionRecord {
        decision: if failed {
            Decision::Inconclusive
        } else {
            Decision::Healthy
        },
        severity: Severity::None,
        reasons: Vec::new(),
        ..rollback()
    };
    (assessment, record)
}

#[tokio::test(start_paused = true)]
async fn a_flapping_outage_is_told_after_the_delay_and_back_after_as_long() {
    let mut world = World::new(Mode::Shadow);
    assert_eq!(world.setup.monitoring_notice_after, Duration::from_secs(30));
    let mut bake = world.bake("r1", "v2", "v1");
    let mut told = Vec::new();
    // Failing every other 5 s tick for 50 s, then answering.
    for i in 0..20 {
        let (assessment, record) = monitoring_tick(i < 10 && i % 2 == 0);
        world.actor(&mut bake).act(&assessment, &record).await;
        told.push(bake.monitoring.told_down());
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    let first_down = told.iter().position(|t| *t);
    assert_eq!(
        first_down,
        Some(6),
        "30 s after the first failure: {told:?}"
    );
    // The last failure is tick 8; answering from tick 9, 30 s later is
    // tick 15.
    let back = told.iter().rposition(|t| *t).map(|i| i + 1);
    assert_eq!(back, Some(15), "{told:?}");
    assert!(!bake.monitoring.told_down());
}
