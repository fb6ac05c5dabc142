//! What the environment's configuration allows a release ([`Policy`]), how long each
//! waiting state may last ([`Deadlines`]), and the machine's fixed waits and tries: the
//! inputs the tables read, separate from the tables themselves.

use std::time::Duration;

use crate::pipeline::{Approval, Service, ServiceKind, StageConfig, TagPolicy};

/// How long each waiting state may last before the reconciler asks AWS and, with no
/// answer there, ends it ([`Event::TimedOut`]).
///
/// [`Event::TimedOut`]: super::Event::TimedOut
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// A migration task, from the decision to run it to its exit.
    pub migration: Duration,
    /// From the decision to deploy until a deployment exists.
    pub deployment_start: Duration,
    /// A deployment, from its creation to its success or failure. CodeDeploy waits up to
    /// an hour per lifecycle hook, and canary and linear configurations take their time.
    pub deployment: Duration,
    /// A person's approval.
    pub approval: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            migration: Duration::from_secs(3600),
            deployment_start: Duration::from_secs(15 * 60),
            deployment: Duration::from_secs(6 * 3600),
            approval: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// How long a release sent back to the queue by a busy deployment group waits before it
/// is tried again.
pub const BLOCKED_RETRY: Duration = Duration::from_secs(60);

/// How many times a failed restore of the last known good is tried again before it is
/// failed for a person to act on.
pub const RESTORE_TRIES: u32 = 3;

/// How long the invocation that commits a stage's entry into deploying or migrating owns
/// the action it then runs: longer than any one run of it takes (the SDK's attempts are
/// bounded; an event function ends at 30 s). Until it expires, no replay, duplicate
/// delivery or reconciler pass runs the action again (DESIGN invariant 11); after it, one
/// of them takes it over by a conditional commit ([`Event::ActionResumed`]).
///
/// [`Event::ActionResumed`]: super::Event::ActionResumed
pub const LEASE: Duration = Duration::from_secs(5 * 60);

/// What a release needs to know about the environment's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub approval: Approval,
    pub migration: bool,
    /// The migration stops the service first (`mode = "stop-first"`): the lane counts it
    /// as stopped from the moment the migration is owed, before any AWS call.
    pub stop_first: bool,
    pub bake: Duration,
    /// How long a release that succeeded here stays watched ([`StageConfig::watch`]).
    ///
    /// [`StageConfig::watch`]: crate::pipeline::StageConfig::watch
    pub watch: Duration,
    pub frozen: bool,
    pub next_environment: Option<String>,
    /// Which releases the next environment takes, by their tags: one it does not take
    /// ends its journey here when it succeeds ([`StageConfig::tags`]).
    ///
    /// [`StageConfig::tags`]: crate::pipeline::StageConfig::tags
    pub next_tags: TagPolicy,
    pub deadlines: Deadlines,
    /// Alarms in ALARM in the environments this one's gate watches
    /// (`hold_while_alarms_in`): while any fires, nothing starts here.
    pub held_by: Vec<String>,
    /// A deployment in flight is undone by deploying the last known good again (an ECS
    /// rolling service: ECS has no stop, a newer deployment replaces the one in progress;
    /// data jobs: their triggers are moved back to its revisions, whatever a failed or
    /// interrupted action left), not by stopping it (CodeDeploy, which routes traffic back
    /// itself).
    pub undo_by_redeploy: bool,
    /// Data jobs: what their action moves (triggers) is seen nowhere afterwards, so an
    /// action decided while an ended stage's action may still run waits for it
    /// ([`Lane::unsettled`]).
    ///
    /// [`Lane::unsettled`]: crate::release::Lane::unsettled
    pub data_jobs: bool,
    /// Rolling services restarted each time a release succeeds here
    /// ([`StageConfig::restarts`]).
    ///
    /// [`StageConfig::restarts`]: crate::pipeline::StageConfig::restarts
    pub restarts: Vec<String>,
    /// How many of the revisions Shiplane registered here a clean-up keeps
    /// ([`StageConfig::keep`]).
    ///
    /// [`StageConfig::keep`]: crate::pipeline::StageConfig::keep
    pub keep: u32,
}

impl Policy {
    /// The policy of one service's stage in the pipeline.
    pub fn for_stage(service: &Service, stage: &StageConfig) -> Policy {
        // Data jobs run nothing on release, so there is nothing to bake or watch.
        let serves = service.kind != ServiceKind::Task;
        let serving = |d: Duration| if serves { d } else { Duration::ZERO };
        let next = service.next_environment(&stage.environment);
        Policy {
            approval: stage.approval,
            migration: stage.migration.is_some(),
            stop_first: stage.stops_first(),
            bake: serving(stage.bake),
            watch: serving(stage.watch),
            frozen: stage.freeze,
            next_environment: next.map(str::to_string),
            next_tags: next
                .and_then(|env| service.stage(env))
                .map_or(TagPolicy::Any, |s| s.tags.clone()),
            deadlines: Deadlines::default(),
            held_by: Vec::new(),
            undo_by_redeploy: service.kind != ServiceKind::BlueGreen,
            data_jobs: service.kind == ServiceKind::Task,
            restarts: stage.restarts.clone(),
            keep: stage.keep,
        }
    }
}
