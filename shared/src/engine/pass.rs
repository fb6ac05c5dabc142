//! What one pass of the engine's loop carries from job to job, and what one decision in it
//! produced.

use std::collections::HashSet;

use tracing::error;

use super::work::{Job, Work};
use super::{EngineError, Report};
use crate::aws::Notification;
use crate::release::{Action, Release, ReleaseId, Transition};

/// More jobs than any one event can cause: past it the loop stops, loudly, rather than spin.
pub(super) const MAX_JOBS: usize = 500;

/// Who sends a pass's notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Announce {
    /// The pass, when it ends.
    AtEnd,
    /// Its caller, who has something more urgent to do first; a pass that fails still
    /// sends its own.
    ByCaller,
}

/// What one decision produced.
pub(super) struct Decided {
    pub(super) jobs: Vec<Job>,
    pub(super) transitions: Vec<Transition>,
    pub(super) refused: Option<String>,
    /// The notifications of what it committed, sent when the pass ends.
    pub(super) notes: Vec<Notification>,
    /// Whether its commit also settled the pass's delivery.
    pub(super) settled: bool,
    /// Whether it rests on items this pass knew from before (read or written earlier)
    /// and committed nothing: no commit condition then catches a stale item, so work it
    /// owes is decided again from fresh reads.
    pub(super) unchecked: bool,
}

impl Decided {
    pub(super) fn nothing(jobs: Vec<Job>, refused: Option<String>, cached: bool) -> Decided {
        Decided {
            unchecked: cached && !jobs.is_empty(),
            jobs,
            transitions: Vec::new(),
            refused,
            notes: Vec::new(),
            settled: false,
        }
    }
}

/// What a pass has done so far, carried from job to job.
pub(super) struct Pass {
    pub(super) report: Report,
    /// Actions already run: each runs at most once per pass.
    pub(super) executed: HashSet<Action>,
    /// The notifications of every decision, sent when the pass ends.
    pub(super) pending: Vec<Notification>,
    /// Jobs taken so far, against [`MAX_JOBS`].
    pub(super) done: usize,
    /// Whether the pass ran out of jobs rather than stopping at [`MAX_JOBS`].
    pub(super) complete: bool,
    /// Whether a commit already settled the pass's delivery.
    pub(super) settled: bool,
    pub(super) failed: Option<EngineError>,
    /// The release the latest decision minted, until its first deploy or migration runs.
    pub(super) minted: Option<ReleaseId>,
}

impl Pass {
    pub(super) fn new() -> Pass {
        Pass {
            report: Report::default(),
            executed: HashSet::new(),
            pending: Vec::new(),
            done: 0,
            complete: true,
            settled: false,
            failed: None,
            minted: None,
        }
    }

    /// Counts one more job; false, loudly, past [`MAX_JOBS`] (`left` still queued).
    pub(super) fn count(&mut self, left: usize) -> bool {
        self.done += 1;
        if self.done > MAX_JOBS {
            error!(
                left,
                "too many follow-up jobs for one event; stopping (a bug: please report it)"
            );
            self.complete = false;
        }
        self.complete
    }

    /// Takes in what deciding `work` produced; returns the jobs it causes.
    pub(super) fn absorb(&mut self, work: &Work, decided: Decided) -> Vec<Job> {
        // Only the jobs of the decision that minted a release may treat it as fresh: by
        // any later decision (its dequeue, a restore of it) another invocation may have
        // acted on it (simulation seed 2440: a second revision registered for it).
        self.minted = work
            .new_release
            .as_ref()
            .filter(|_| !decided.transitions.is_empty())
            .map(|r| r.id.clone());
        self.settled |= decided.settled;
        self.report.transitions.extend(decided.transitions);
        self.report.refused.extend(decided.refused);
        self.pending.extend(decided.notes);
        decided.jobs
    }

    /// Whether `action` runs now (None when this pass already ran it), and if so whether
    /// it is the first effect of a release this pass minted ([`DeployRequest::fresh`]).
    pub(super) fn first_run(&mut self, action: &Action, release: &Release) -> Option<bool> {
        if !self.executed.insert(action.clone()) {
            return None;
        }
        let first_effect = matches!(action, Action::Deploy { .. } | Action::RunMigration { .. });
        let fresh = first_effect && self.minted.as_ref() == Some(&release.id);
        if fresh {
            self.minted = None;
        }
        Some(fresh)
    }
}
