//! The decision being built (`Work`): the view it changes and the transitions and actions
//! it records, with the steps every table shares (move, record, start, finish, succeed,
//! end what is in flight, redeploy). Private to the machine; separate so that the tables
//! read as tables.

use std::collections::BTreeSet;

use super::policy::LEASE;
use super::{Action, Decision, Event, Policy, TransitionError};
use crate::release::model::{
    Alert, Cause, Lane, LaneView, Phase, Release, ReleaseId, Stage, StageState, Timestamp,
    Transition, Watch,
};

pub(super) struct Work<'p> {
    pub(super) view: LaneView,
    pub(super) policy: &'p Policy,
    pub(super) now: Timestamp,
    pub(super) changed: BTreeSet<ReleaseId>,
    pub(super) lane_changed: bool,
    pub(super) transitions: Vec<Transition>,
    pub(super) actions: Vec<Action>,
}

impl<'p> Work<'p> {
    pub(super) fn new(view: &LaneView, policy: &'p Policy, now: Timestamp) -> Work<'p> {
        Work {
            view: view.clone(),
            policy,
            now,
            changed: BTreeSet::new(),
            lane_changed: false,
            transitions: Vec::new(),
            actions: Vec::new(),
        }
    }

    pub(super) fn env(&self) -> String {
        self.view.lane.environment.clone()
    }

    pub(super) fn release(&mut self, id: &ReleaseId) -> Result<&mut Release, TransitionError> {
        let lane = &self.view.lane;
        match self.view.releases.get_mut(id) {
            Some(r) => Ok(r),
            None => Err(TransitionError::UnknownRelease {
                release: id.clone(),
                service: lane.service.clone(),
                environment: lane.environment.clone(),
            }),
        }
    }

    pub(super) fn stage(&mut self, id: &ReleaseId) -> Result<&mut Stage, TransitionError> {
        let env = self.env();
        let release = self.release(id)?;
        let rid = release.id.clone();
        release
            .stages
            .get_mut(&env)
            .ok_or(TransitionError::NotArrived {
                release: rid,
                environment: env,
                event: "change",
            })
    }

    pub(super) fn state(&self, id: &ReleaseId) -> Option<StageState> {
        self.view
            .releases
            .get(id)
            .and_then(|r| r.state_in(&self.view.lane.environment))
    }

    /// The time a change of `id`'s stage here is recorded at: the decision's, but never
    /// before the stage's last change or the last entry of its history. A decision's time
    /// is its invocation's start, and a decision that lost a race decides again after a
    /// later one committed: its history must still read in the order things happened.
    fn stage_time(&self, id: &ReleaseId) -> Timestamp {
        self.view
            .releases
            .get(id)
            .and_then(|r| r.stages.get(&self.view.lane.environment))
            .map_or(self.now, |s| {
                s.since.max(s.noted.unwrap_or_default()).max(self.now)
            })
    }

    /// Marks `id`'s stage here as written at `at` ([`Stage::noted`]).
    fn noted(&mut self, id: &ReleaseId, at: Timestamp) {
        let env = &self.view.lane.environment;
        if let Some(stage) = self
            .view
            .releases
            .get_mut(id)
            .and_then(|r| r.stages.get_mut(env))
        {
            stage.noted = Some(at);
        }
    }

    /// Moves a release to `to`, recording the transition; entering a state sets its deadline.
    pub(super) fn move_to(
        &mut self,
        id: &ReleaseId,
        to: StageState,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let now = self.stage_time(id);
        let from = self.state(id);
        let (deadlines, bake_ends) = (self.policy.deadlines, self.now.after(self.policy.bake));
        let release = self.release(id)?;
        let stage = release.set_stage(&env, to, now);
        if to.is_terminal() && to != StageState::Succeeded {
            stage.reason = detail.clone();
        }
        let attempt = stage.attempt;
        if from != Some(to) {
            // The state's own data: an action's lease, a bake's end.
            stage.set_lease(now.after(LEASE));
            if to == StageState::Baking {
                stage.phase = Phase::Baking { until: bake_ends };
            }
            stage.resumed = 0;
            stage.deadline = match to {
                StageState::Migrating => Some(now.after(deadlines.migration)),
                StageState::Deploying => Some(now.after(deadlines.deployment_start)),
                StageState::AwaitingApproval => Some(now.after(deadlines.approval)),
                StageState::Validating => stage.deadline,
                StageState::Baking => stage.bake_until(),
                _ => None,
            };
        }
        let bake_until = stage.bake_until();
        let service = release.service.clone();
        // The bake timer lives exactly as long as the bake.
        match (from, to) {
            (Some(StageState::Baking), StageState::Baking) => {}
            (_, StageState::Baking) => {
                if let Some(at) = bake_until {
                    self.actions.push(Action::SetTimer {
                        release: id.clone(),
                        environment: env.clone(),
                        attempt,
                        at,
                    });
                }
            }
            (Some(StageState::Baking), _) => self.actions.push(Action::ClearTimer {
                release: id.clone(),
                environment: env.clone(),
                attempt,
            }),
            _ => {}
        }
        self.changed.insert(id.clone());
        self.transitions.push(Transition {
            at: now,
            service,
            environment: env,
            release: Some(id.clone()),
            from,
            to: Some(to),
            cause,
            actor,
            detail,
            alert: Alert::of(cause, Some(to)),
        });
        Ok(())
    }

    /// A transition that records a fact without changing the state (a new tag, a stop).
    pub(super) fn record(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let state = self.state(id);
        let env = self.env();
        let at = self.stage_time(id);
        let service = self.release(id)?.service.clone();
        self.changed.insert(id.clone());
        self.noted(id, at);
        self.transitions.push(Transition {
            at,
            service,
            environment: env,
            release: Some(id.clone()),
            from: state,
            to: state,
            cause,
            actor: None,
            detail,
            alert: Alert::of(cause, state),
        });
        Ok(())
    }

    /// Marks the last change recorded as one a person must act on, for `why`, unless its
    /// cause already raised an alert of its own.
    pub(super) fn alert(&mut self, why: Alert) {
        if let Some(t) = self.transitions.last_mut() {
            t.alert = t.alert.or(Some(why));
        }
    }

    pub(super) fn lane(&mut self) -> &mut Lane {
        self.lane_changed = true;
        &mut self.view.lane
    }

    /// Why the lane cannot start a release now, if it cannot.
    pub(super) fn busy_because(&self) -> Option<String> {
        let lane = &self.view.lane;
        match (&lane.in_flight, &lane.paused, self.policy.frozen) {
            (Some(other), _, _) => Some(format!("waiting for {other}")),
            (None, _, _) if lane.down.is_some() => {
                Some("the service is being started again after a stop-first migration".into())
            }
            (None, Some(p), _) => Some(format!("lane paused by {}", p.actor)),
            (None, None, true) => Some("environment frozen".to_string()),
            (None, None, false) => {
                let holding = self.alarms_holding();
                (!holding.is_empty()).then(|| format!("held: {} in ALARM", holding.join(", ")))
            }
        }
    }

    /// The alarms that keep a stage from starting here: the lane's own firing alarms
    /// (DESIGN invariant 12) and those of the environments its gate watches, each with
    /// its environment.
    pub(super) fn alarms_holding(&self) -> Vec<String> {
        let lane = &self.view.lane;
        lane.firing_alarms()
            .into_iter()
            .map(|name| format!("{name} ({})", lane.environment))
            .chain(self.policy.held_by.iter().cloned())
            .collect()
    }

    fn busy(&self) -> bool {
        self.busy_because().is_some()
    }

    /// Takes the lane's in-flight slot and begins the work: migration first when configured.
    pub(super) fn start(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
    ) -> Result<(), TransitionError> {
        self.start_with(id, cause, actor, None)
    }

    /// [`Work::start`], with the transition's detail.
    pub(super) fn start_with(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        let lane = self.lane();
        lane.in_flight = Some(id.clone());
        if lane.queued.as_ref() == Some(id) {
            lane.queued = None;
        }
        if self.policy.migration {
            if self.policy.stop_first && self.view.lane.down.is_none() {
                // Counted as stopped before the stop is even asked for: a stop that lands
                // with its record lost is started again all the same (nothing recorded
                // until ECS confirms it).
                let since = self.now;
                self.lane().down = Some(crate::release::model::Down {
                    release: id.clone(),
                    since,
                    desired: None,
                });
            }
            self.move_to(id, StageState::Migrating, cause, actor, detail)?;
            self.actions.push(Action::RunMigration {
                release: id.clone(),
                environment: env,
            });
        } else {
            self.move_to(id, StageState::Deploying, cause, actor, detail)?;
            self.actions.push(Action::Deploy {
                release: id.clone(),
                environment: env,
                redeploy: false,
            });
        }
        Ok(())
    }

    /// Frees the in-flight slot and starts the queued release if nothing holds the lane.
    pub(super) fn finish(&mut self) -> Result<(), TransitionError> {
        self.lane().in_flight = None;
        let Some(next) = self.view.lane.queued.clone() else {
            return Ok(());
        };
        if !self.busy()
            && self.state(&next) == Some(StageState::Queued)
            && !self.set_aside_past_schema(&next)?
        {
            self.start(&next, Cause::Dequeued, None)?;
        }
        Ok(())
    }

    pub(super) fn succeed(
        &mut self,
        id: &ReleaseId,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let now = self.now;
        let env = self.env();
        // Since when it ran here before this success: its bake's start, or, deployed again
        // with no bake (a restore), its deployment's (a rolling deployment serves before
        // it completes). An alarm that fired after that may be its own.
        let ran_since = self.stage(id)?.since.min(now);
        self.move_to(id, StageState::Succeeded, cause, actor, detail)?;
        let next = self.policy.next_environment.clone();
        // Every success (a restore too) restarts the dependents: their tasks must start
        // after whatever this release changed, a schema above all.
        let restarts = self.policy.restarts.clone();
        let not_promoted = self.not_accepted_next(id)?;
        let stage = self.stage(id)?;
        let redeploy = stage.redeploy;
        stage.succeeded_at = Some(now);
        stage.redeploy = false;
        // A restored release already went through the later environments.
        let not_promoted = not_promoted.filter(|_| !redeploy);
        let promote = next.filter(|_| !redeploy && not_promoted.is_none());
        stage.phase = Phase::Succeeded {
            promote_to: promote.clone(),
            restarts: restarts.clone(),
            clean_up: true,
            not_promoted: not_promoted.clone(),
        };
        if let Some(why) = not_promoted {
            self.record(id, Cause::NotPromoted, Some(why))?;
        }
        let watch = self.policy.watch;
        let lane = self.lane();
        lane.current = Some(id.clone());
        if lane.last_known_good.as_ref() != Some(id) {
            lane.previous_good = lane.last_known_good.replace(id.clone());
        }
        // What Shiplane just deployed, a new version or one deployed again (a restore, an
        // operator's rollback), stays watched after it succeeds.
        lane.watch = (!watch.is_zero()).then(|| Watch {
            release: id.clone(),
            // Watched again after a restore: its alarms count from when it first ran
            // (simulation seed 25379: an alarm of a release an operator put back fired
            // while its deployment ran, before it succeeded, and held the lane unowned).
            from: lane
                .watch
                .as_ref()
                .filter(|w| &w.release == id)
                .map_or(ran_since, |w| w.from),
            until: now.after(watch),
        });
        for service in restarts {
            self.actions.push(Action::Restart {
                release: id.clone(),
                environment: env.clone(),
                service,
            });
        }
        if let Some(to) = promote {
            self.actions.push(Action::Promote {
                release: id.clone(),
                from: env,
                to,
            });
        }
        self.finish()
    }

    /// Why `id` may not go on to the next environment, when that one does not accept any
    /// of its tags: promotion is in order, so it stops at the first that refuses, whatever
    /// the later ones accept.
    fn not_accepted_next(&mut self, id: &ReleaseId) -> Result<Option<String>, TransitionError> {
        let Some(next) = self.policy.next_environment.clone() else {
            return Ok(None);
        };
        let policy = self.policy;
        let tags = &self.release(id)?.tags;
        if policy.next_tags.accepts_any(tags) {
            return Ok(None);
        }
        let named = match tags.as_slice() {
            [] => "no tag".to_string(),
            [one] => format!("tag {one}"),
            many => format!("tags {}", many.join(", ")),
        };
        // Bounded as any detail: sixteen tags and a long regex would pass what one history
        // item keeps.
        Ok(Some(super::event::bounded(&format!(
            "{named} not accepted by {next} (tags = {})",
            policy.next_tags
        ))))
    }

    /// Ends an in-flight stage as `to` and undoes what it may have started: a CodeDeploy
    /// deployment still running is stopped and rolled back; a rolling service's deployment
    /// (recorded or still being created), or a baking release on either kind, is replaced
    /// by the last known good one, when `restore` (an operator's rollback deploys its own
    /// target instead).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn end_in_flight(
        &mut self,
        id: &ReleaseId,
        state: StageState,
        to: StageState,
        cause: Cause,
        actor: Option<String>,
        detail: Option<String>,
        restore: bool,
    ) -> Result<(), TransitionError> {
        // A baking release already serves: ending it puts the last known good back, on
        // either kind of service (simulation seed 19597), as an alarm during its bake does.
        if state == StageState::Baking && restore {
            return super::undo::replace_shipped(self, id, (to, cause, actor), detail);
        }
        let env = self.env();
        let deployment = self.stage(id)?.deployment_id.clone();
        let good = self.view.lane.last_known_good.clone();
        let holds = self.view.lane.in_flight.as_ref() == Some(id);
        // A service `id` stopped for its migration is not put back on the last known good
        // by a redeploy: the lane owes its start (`StartApp`), which first asks whether
        // the migration changed the schema under that version.
        let stopped_by_it = self
            .view
            .lane
            .down
            .as_ref()
            .is_some_and(|d| &d.release == id);
        let restore = restore && !stopped_by_it;
        let good = good.filter(|g| g != id && holds && restore);
        // The last known good cannot run on the schema this release's stop-first
        // migration left: it keeps running, and a person is told.
        let schema_moved = good.as_ref().is_some_and(|g| self.view.predates_schema(g));
        let good = good.filter(|_| !schema_moved);
        self.leave_unsettled(id, state, cause)?;
        self.move_to(id, to, cause, actor, detail)?;
        let deploying = matches!(state, StageState::Deploying | StageState::Validating);
        if deploying && self.policy.undo_by_redeploy {
            if let Some(good) = good {
                return self.redeploy(&good, None, Some(format!("restoring after {id}")));
            }
            if holds && restore {
                // Its rolling deployment goes on: nothing to put back over it.
                self.alert(if schema_moved {
                    Alert::SchemaMoved
                } else {
                    Alert::NothingToRestore
                });
            }
        } else if let (Some(deployment_id), true) = (deployment, deploying) {
            self.lane().stopping = Some(id.clone());
            self.actions.push(Action::StopDeployment {
                release: id.clone(),
                environment: env,
                deployment_id,
                rollback: true,
            });
        }
        if self.view.lane.in_flight.as_ref() == Some(id) {
            self.finish()?;
        }
        Ok(())
    }

    /// Deploys a release that already succeeded here again, from its pinned revision,
    /// taking the lane's in-flight slot: a rollback's restore.
    pub(super) fn redeploy(
        &mut self,
        id: &ReleaseId,
        actor: Option<String>,
        detail: Option<String>,
    ) -> Result<(), TransitionError> {
        let env = self.env();
        self.move_to(id, StageState::Deploying, Cause::Rollback, actor, detail)?;
        let stage = self.stage(id)?;
        stage.redeploy = true;
        stage.deployment_id = None;
        stage.restore_failures = 0;
        self.lane().in_flight = Some(id.clone());
        self.actions.push(Action::Deploy {
            release: id.clone(),
            environment: env,
            redeploy: true,
        });
        Ok(())
    }

    /// Deploys in-flight `id` again on a rolling service, whose deployment `replaced` no
    /// longer runs: that one is ended (its late news is refused) and a new one is made.
    pub(super) fn deploy_again(
        &mut self,
        id: &ReleaseId,
        replaced: String,
        why: String,
    ) -> Result<(), TransitionError> {
        let (now, env) = (self.now, self.env());
        let stage = self.stage(id)?;
        stage.deployment_id = None;
        stage.ended.push(replaced);
        // Validating has no lease: moving to deploying below gives it one.
        stage.set_lease(now.after(LEASE));
        let redeploy = stage.redeploy;
        if self.state(id) == Some(StageState::Validating) {
            // Deploying again: a taker finds the action owed if this invocation dies.
            self.move_to(
                id,
                StageState::Deploying,
                Cause::Redeployed,
                None,
                Some(why),
            )?;
        } else {
            self.record(id, Cause::Redeployed, Some(why))?;
        }
        self.actions.push(Action::Deploy {
            release: id.clone(),
            environment: env,
            redeploy,
        });
        Ok(())
    }

    /// The refusal of a late hook or answer of a deployment this stage already replaced.
    pub(super) fn ended_deployment(&self, id: &ReleaseId, deployment: &str) -> TransitionError {
        TransitionError::EndedDeployment {
            release: id.clone(),
            environment: self.env(),
            deployment: deployment.to_string(),
        }
    }

    pub(super) fn not_allowed(
        &self,
        id: &ReleaseId,
        state: StageState,
        event: &Event,
    ) -> TransitionError {
        TransitionError::NotAllowed {
            release: id.clone(),
            environment: self.view.lane.environment.clone(),
            state,
            event: event.name(),
        }
    }

    pub(super) fn done(mut self) -> Result<Decision, TransitionError> {
        self.defer_while_unsettled()?;
        Ok(Decision {
            view: self.view,
            changed: self.changed,
            lane_changed: self.lane_changed,
            transitions: self.transitions,
            actions: self.actions,
        })
    }
}
