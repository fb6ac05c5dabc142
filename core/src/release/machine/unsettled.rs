//! Actions that may run on after their stage ended ([`Lane::unsettled`]): a data-job
//! action's moves of the triggers, seen nowhere afterwards, and a `stop-first` migration's
//! stop of the service, which would leave it at zero if it landed after the start owed in
//! its place. The lane remembers until when one may still run, and what is decided
//! meanwhile waits for it (DESIGN invariant 11).
//!
//! [`Lane::unsettled`]: crate::release::Lane::unsettled

use super::policy::LEASE;
use super::work::Work;
use super::{Action, TransitionError};
use crate::release::model::{Cause, ReleaseId, StageState, Unsettled};

impl Work<'_> {
    /// A data-job stage, or a stage migrating after a stop-first stop, ended while its
    /// action may still run (its lease is live, and the end is not that action's own
    /// outcome): the lane records it as unsettled until the lease ends
    /// ([`Lane::unsettled`]), so that nothing moves the triggers, or starts the service
    /// again, before that action can no longer act itself (simulation seeds 2214, 2231,
    /// 2689: a cancel's restore ran first, and the cancelled release's moves landed after
    /// it; 231 and 15551: the start found the service running, and the stop landed after).
    ///
    /// [`Lane::unsettled`]: crate::release::Lane::unsettled
    pub(super) fn leave_unsettled(
        &mut self,
        id: &ReleaseId,
        state: StageState,
        cause: Cause,
    ) -> Result<(), TransitionError> {
        let stopping = state == StageState::Migrating
            && self
                .view
                .lane
                .down
                .as_ref()
                .is_some_and(|d| &d.release == id);
        let moving = self.policy.data_jobs && state == StageState::Deploying;
        if !(stopping || moving) || cause == Cause::ActionFailed {
            return Ok(());
        }
        let now = self.now;
        let Some(until) = self.stage(id)?.lease().filter(|t| *t > now) else {
            return Ok(());
        };
        let later = self
            .view
            .lane
            .unsettled
            .as_ref()
            .is_none_or(|u| !u.live(now) || u.until < until);
        if later {
            self.lane().unsettled = Some(Unsettled {
                release: id.clone(),
                until,
            });
        }
        Ok(())
    }

    /// An unsettled data-job action ([`Lane::unsettled`]) has ended (its outcome arrived):
    /// the lane is settled, and an action deferred behind it runs now.
    ///
    /// [`Lane::unsettled`]: crate::release::Lane::unsettled
    pub(super) fn settled(&mut self, id: &ReleaseId) -> Result<(), TransitionError> {
        let Some(until) = self
            .view
            .lane
            .unsettled
            .as_ref()
            .filter(|u| &u.release == id)
            .map(|u| u.until)
        else {
            return Ok(());
        };
        self.lane().unsettled = None;
        let (env, now) = (self.env(), self.now);
        let Some(flying) = self.view.lane.in_flight.clone().filter(|_| until > now) else {
            return Ok(());
        };
        // Only an action deferred behind it (its lease set to the same end) is waiting.
        if let Some(action) = super::owed::pending_action(self.release(&flying)?, &env)
            && self.stage(&flying)?.lease() == Some(until)
            && !self.actions.contains(&action)
        {
            // A whole lease from the deferred end: `now` is when this pass began, which
            // may be when the settled action's own lease began too.
            self.stage(&flying)?.set_lease(until.max(now).after(LEASE));
            self.changed.insert(flying);
            self.actions.push(action);
        }
        Ok(())
    }

    /// A data-job action decided while another may still move the triggers
    /// ([`Lane::unsettled`]) is not run now: its stage's lease is set to that one's end,
    /// and the first pass after it takes the action over ([`Event::ActionResumed`]).
    ///
    /// [`Lane::unsettled`]: crate::release::Lane::unsettled
    pub(super) fn defer_while_unsettled(&mut self) -> Result<(), TransitionError> {
        let now = self.now;
        let Some(unsettled) = self.view.lane.unsettled.clone() else {
            return Ok(());
        };
        if !unsettled.live(now) {
            // Settled by time: forgotten with the next change the lane records anyway.
            if self.lane_changed {
                self.view.lane.unsettled = None;
            }
            return Ok(());
        }
        let mut kept = Vec::new();
        for action in std::mem::take(&mut self.actions) {
            match &action {
                Action::Deploy { release, .. }
                    if self.state(release) == Some(StageState::Deploying) =>
                {
                    self.stage(release)?.set_lease(unsettled.until);
                    self.changed.insert(release.clone());
                }
                _ => kept.push(action),
            }
        }
        self.actions = kept;
        Ok(())
    }

    /// Why an action taken over once a data-job action it was deferred behind could no
    /// longer run did not run before (it waited; it was not left unfinished), with the lane
    /// settled; None when it was not deferred.
    pub(super) fn waited(&mut self, action: &str) -> Option<String> {
        let now = self.now;
        let unsettled = self.view.lane.unsettled.clone().filter(|u| !u.live(now))?;
        self.lane().unsettled = None;
        Some(format!(
            "{action} waited until {}'s data-job action, running when its stage ended, could no longer move the triggers",
            unsettled.release
        ))
    }
}
