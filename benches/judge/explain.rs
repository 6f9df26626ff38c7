//! `--explain` and `--dump`: rollguard's misses and false alarms, release by
//! release, with its reasons, and optionally as replay files.

use crate::generate::Label;
use crate::report::{Action, Scored};

/// Every detectable regression rollguard missed and every good release it
/// alarmed on, with the profile and rollguard's reasons (stderr).
pub fn explain(scored: &[Scored<'_>], dump: Option<&std::path::Path>) -> Result<(), String> {
    if let Some(dir) = dump {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    for s in scored {
        let r = s.release;
        let alarmed = !matches!(s.verdicts[0].action, Action::Pass);
        let missed = r.detectable && !alarmed;
        let false_alarm = r.scenario.label() == Label::Good && alarmed;
        if !(missed || false_alarm) {
            continue;
        }
        let (n, k) = r
            .replay
            .baseline()
            .iter()
            .filter_map(|x| x.counts())
            .fold((0.0, 0.0), |(n, k), (dn, dk)| (n + dn, k + dk));
        let outcome = &s.outcome;
        eprintln!(
            "{} {}: {:.3} rps, baseline error rate {:.4}, expected {}: {} {} at {:?}",
            if missed { "MISSED" } else { "FALSE ALARM" },
            r.replay.name,
            r.rps,
            if n > 0.0 { k / n } else { f64::NAN },
            r.expected.as_str(),
            outcome.decision.as_str(),
            outcome.severity.as_str(),
            outcome.decided_at_index,
        );
        for reason in &outcome.reasons {
            eprintln!("    {reason}");
        }
        if let Some(dir) = dump {
            let file = dir.join(format!("{}.json", r.replay.name.replace(['/', '#'], "_")));
            let text = serde_json::to_string(&r.replay).map_err(|e| e.to_string())?;
            std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
            eprintln!("    replay: {}", file.display());
        }
    }
    Ok(())
}
