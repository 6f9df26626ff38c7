//! The words a rollback leaves in the journal and the metrics: who started
//! it and how it ended. Each is written once, read back after a restart
//! (recovery), and must keep its spelling so that old journals still load.

/// Who started a rollback (`rollback_started.trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The gate, by itself: counts for the cooldown.
    Automatic,
    /// A human's approval: does not.
    Approved,
    /// A human asked for it (`rollguard rollback`): does not count for
    /// the cooldown either.
    Manual,
}

impl Trigger {
    /// The journal's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Automatic => "automatic",
            Trigger::Approved => "approved",
            Trigger::Manual => "manual",
        }
    }

    /// Reads the journal's word back; `None` for a word this build does
    /// not know.
    pub fn parse(word: &str) -> Option<Trigger> {
        [Trigger::Automatic, Trigger::Approved, Trigger::Manual]
            .into_iter()
            .find(|t| t.as_str() == word)
    }
}

/// How a rollback ended (`rollback_finished.outcome`, and the `outcome`
/// label of `rollguard_rollbacks_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackOutcome {
    /// The pipeline ran and the target is verified back to normal.
    Completed,
    /// The pipeline ran but the target is not back to normal.
    Unverified,
    /// A step failed and the pipeline stopped.
    Failed,
    /// rollguard stopped, or lost the leadership, before the end.
    Interrupted,
}

impl RollbackOutcome {
    const ALL: [RollbackOutcome; 4] = [
        RollbackOutcome::Completed,
        RollbackOutcome::Unverified,
        RollbackOutcome::Failed,
        RollbackOutcome::Interrupted,
    ];

    /// The journal's and the metric's word.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackOutcome::Completed => "completed",
            RollbackOutcome::Unverified => "unverified",
            RollbackOutcome::Failed => "failed",
            RollbackOutcome::Interrupted => "interrupted",
        }
    }

    /// Reads the journal's word back; `None` for a word this build does
    /// not know.
    pub fn parse(word: &str) -> Option<RollbackOutcome> {
        RollbackOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == word)
    }

    /// Whether the whole pipeline ran, so that the version rolled back to
    /// runs again (its arrival is rollguard's own, not a release).
    pub fn restored(self) -> bool {
        matches!(
            self,
            RollbackOutcome::Completed | RollbackOutcome::Unverified
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_words_read_back_as_written() {
        for outcome in RollbackOutcome::ALL {
            assert_eq!(RollbackOutcome::parse(outcome.as_str()), Some(outcome));
        }
        for trigger in [Trigger::Automatic, Trigger::Approved, Trigger::Manual] {
            assert_eq!(Trigger::parse(trigger.as_str()), Some(trigger));
        }
        // The words old journals hold.
        assert_eq!(
            ["completed", "unverified", "failed", "interrupted"].map(RollbackOutcome::parse),
            RollbackOutcome::ALL.map(Some)
        );
        assert_eq!(RollbackOutcome::parse("ok"), None);
        assert_eq!(Trigger::parse("automatic"), Some(Trigger::Automatic));
        assert_eq!(Trigger::parse("approved"), Some(Trigger::Approved));
        assert_eq!(Trigger::parse("manual"), Some(Trigger::Manual));
    }

    #[test]
    fn only_a_pipeline_that_ran_to_its_end_restores_the_version() {
        let restored: Vec<_> = RollbackOutcome::ALL
            .into_iter()
            .filter(|o| o.restored())
            .collect();
        assert_eq!(
            restored,
            [RollbackOutcome::Completed, RollbackOutcome::Unverified]
        );
    }
}
