//! The operator commands (approve, reject, retry, promote, cancel on a release; pause,
//! resume, rollback, unblock on a lane) and reconcile. An operator command only builds its
//! event and says what it asked; one path takes every such event through the engine and
//! prints what changed ([`Operation`]), and the dashboard's buttons take it too.

use shiplane::aws::CloudWatchAlarms;
use shiplane::release::{Event, LaneEvent, Release, ReleaseId, StageState, Timestamp, Transition};
use shiplane::store::ReleaseStore;

use super::Context;
use super::clients::{CliDeps, engine_failure};
use super::lookup::{known_stage, named, unknown_service};
use crate::Why;
use crate::output::errln;
use crate::render;
use crate::{Command, Failure, Operator, Reach};

/// An operator's event, and what it is for.
pub(crate) enum Operation<'a> {
    /// For one release (as an operator names it: `SERVICE@TAG`, an id or its start) in one
    /// environment; a refusal says in plain words why, from what was `asked`.
    Release {
        release: &'a str,
        environment: &'a str,
        asked: &'static Asked,
        event: Event,
    },
    /// For a service's environment; a refusal says why (the machine's sentences for lanes
    /// are already plain: "api/prod is not paused").
    Lane {
        service: &'a str,
        environment: &'a str,
        event: LaneEvent,
    },
}

impl<'a> Operation<'a> {
    pub(crate) fn release(
        release: &'a str,
        environment: &'a str,
        asked: &'static Asked,
        event: Event,
    ) -> Self {
        Operation::Release {
            release,
            environment,
            asked,
            event,
        }
    }

    pub(crate) fn lane(service: &'a str, environment: &'a str, event: LaneEvent) -> Self {
        Operation::Lane {
            service,
            environment,
            event,
        }
    }

    /// Applies it through the engine: the one path the CLI's operator commands and the
    /// dashboard's buttons share.
    pub(crate) async fn apply(self, deps: &CliDeps) -> Result<Vec<Transition>, Failure> {
        match self {
            Operation::Release {
                release,
                environment,
                asked,
                event,
            } => act_on_release(deps, release, environment, event, asked).await,
            Operation::Lane {
                service,
                environment,
                event,
            } => act_on_lane(deps, service, environment, event).await,
        }
    }
}

/// Applies an operator's event and shows what changed: where every operator command ends.
async fn operate(
    cx: &Context<'_>,
    who: &Operator,
    operation: Operation<'_>,
) -> Result<(), Failure> {
    let deps = cx.deps(&who.aws).await;
    let transitions = operation.apply(&deps).await?;
    render::transitions(&transitions, cx.json());
    Ok(())
}

/// A command on one release in one environment: approve, reject, retry, promote, cancel.
pub(super) async fn on_release(cx: &Context<'_>, command: &Command) -> Result<(), Failure> {
    let (release, environment, who, asked, event) = match command {
        Command::Approve {
            release,
            environment,
            who,
        } => {
            let event = Event::Approved {
                actor: cx.actor(who).await?,
            };
            (release, environment, who, &APPROVE, event)
        }
        Command::Reject {
            release,
            environment,
            why: Why { reason, who },
        } => {
            let event = Event::Rejected {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
            };
            (release, environment, who, &REJECT, event)
        }
        Command::Retry {
            release,
            environment,
            who,
        } => {
            let event = Event::Retry {
                actor: cx.actor(who).await?,
            };
            (release, environment, who, &RETRY, event)
        }
        Command::Promote {
            release,
            environment,
            skip_bake: _,
            why: Why { reason, who },
        } => {
            let event = Event::PromotedEarly {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
            };
            (release, environment, who, &PROMOTE, event)
        }
        Command::Cancel {
            release,
            environment,
            why: Why { reason, who },
        } => {
            let event = Event::Cancelled {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
            };
            (release, environment, who, &CANCEL, event)
        }
        _ => unreachable!("commands::dispatch hands only release commands to on_release"),
    };
    let operation = Operation::release(release, environment, asked, event);
    operate(cx, who, operation).await
}

/// A command on a service's environment: pause, resume, rollback, unblock.
pub(super) async fn on_lane(cx: &Context<'_>, command: &Command) -> Result<(), Failure> {
    let (service, environment, who, event) = match command {
        Command::Pause {
            service,
            environment,
            why: Why { reason, who },
        } => {
            let event = LaneEvent::Pause {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
            };
            (service, environment, who, event)
        }
        Command::Resume {
            service,
            environment,
            who,
        } => {
            let event = LaneEvent::Resume {
                actor: cx.actor(who).await?,
            };
            (service, environment, who, event)
        }
        Command::Rollback {
            service,
            environment,
            to,
            why: Why { reason, who },
        } => {
            let to = rollback_to(cx, service, to.as_deref()).await?;
            let event = LaneEvent::Rollback {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
                to,
            };
            (service, environment, who, event)
        }
        Command::Unblock {
            service,
            environment,
            why: Why { reason, who },
        } => {
            let event = LaneEvent::Unblock {
                actor: cx.actor(who).await?,
                reason: reason.clone(),
            };
            (service, environment, who, event)
        }
        _ => unreachable!("commands::dispatch hands only lane commands to on_lane"),
    };
    operate(cx, who, Operation::lane(service, environment, event)).await
}

/// The release `rollback --to NAME` names; it must be one of `service`'s.
async fn rollback_to(
    cx: &Context<'_>,
    service: &str,
    to: Option<&str>,
) -> Result<Option<ReleaseId>, Failure> {
    let Some(name) = to else {
        return Ok(None);
    };
    let release = named(&cx.store(), name).await?;
    if release.service != service {
        return Err(Failure::BadInput(format!(
            "{name} is a release of {}, not of {service}; give one of {service}'s releases to --to",
            release.service
        )));
    }
    Ok(Some(release.id))
}

/// What an operator asked of a release, to say in plain words why the state refused it.
pub(crate) struct Asked {
    /// The command's verb: "approve".
    verb: &'static str,
    /// The states it applies to, as a clause: "only a release awaiting approval there can be approved".
    needs: &'static str,
}

pub(crate) const APPROVE: Asked = Asked {
    verb: "approve",
    needs: "only a release awaiting approval there can be approved",
};
pub(crate) const REJECT: Asked = Asked {
    verb: "reject",
    needs: "only a release awaiting approval or queued there can be rejected",
};
pub(crate) const RETRY: Asked = Asked {
    verb: "retry",
    needs: "only a stage that failed, was rolled back or cancelled can be retried",
};
pub(crate) const PROMOTE: Asked = Asked {
    verb: "promote",
    needs: "only a release baking there can be promoted early",
};
pub(crate) const CANCEL: Asked = Asked {
    verb: "cancel",
    needs: "only a stage that has not ended can be cancelled",
};

/// Applies an operator's event to one release (as an operator names it: `SERVICE@TAG`, an
/// id or its start) in one environment through the engine: the one path the CLI's release
/// commands and the dashboard's buttons share. A refusal says why in plain words.
async fn act_on_release(
    deps: &CliDeps,
    release: &str,
    environment: &str,
    event: Event,
    asked: &Asked,
) -> Result<Vec<Transition>, Failure> {
    let found = named(&deps.store, release).await?;
    let id = found.id.clone();
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    known_stage(&pipeline, &found.service, environment)?;
    let report = engine
        .on_event(
            &pipeline,
            &found.service,
            environment,
            &id,
            event,
            Timestamp::now(),
        )
        .await
        .map_err(engine_failure)?;
    if report.transitions.is_empty() {
        let now = deps.store.release(&id).await?.map_or(found, |r| r.item);
        return Err(Failure::Refused(refusal(
            asked,
            &now,
            environment,
            &report.refused.join("; "),
        )));
    }
    Ok(report.transitions)
}

/// Why a release command changed nothing, in plain words: where the release is and what
/// the command needs. The engine's own sentence when it says more than "does not apply"
/// (an alarm holding a bake, a restore that cannot be cancelled).
fn refusal(asked: &Asked, release: &Release, environment: &str, why: &str) -> String {
    let name = format!("{} ({})", release.label(), release.id);
    let words = |s: StageState| s.as_str().replace('_', " ");
    match release.state_in(environment) {
        None => {
            let latest = release
                .stages
                .iter()
                .max_by_key(|(_, stage)| stage.since)
                .map(|(env, stage)| format!(" (it is {} in {env})", words(stage.state())))
                .unwrap_or_default();
            format!(
                "cannot {} {name} in {environment}: it has not reached {environment}{latest}",
                asked.verb
            )
        }
        Some(state) if why.is_empty() || why.contains("does not apply") => format!(
            "cannot {} {name} in {environment}: its stage there is {}; {}",
            asked.verb,
            words(state),
            asked.needs
        ),
        Some(_) => why.to_string(),
    }
}

/// Applies an operator's event to a service's environment through the engine: the one
/// path the CLI's lane commands and the dashboard's buttons share.
async fn act_on_lane(
    deps: &CliDeps,
    service: &str,
    environment: &str,
    event: LaneEvent,
) -> Result<Vec<Transition>, Failure> {
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    known_stage(&pipeline, service, environment)?;
    let report = engine
        .on_lane(&pipeline, service, environment, event, Timestamp::now())
        .await
        .map_err(engine_failure)?;
    if report.transitions.is_empty() {
        let why = report.refused.join("; ");
        return Err(Failure::Refused(if why.is_empty() {
            format!("nothing to do in {service}/{environment}")
        } else {
            why
        }));
    }
    Ok(report.transitions)
}

/// `shiplane reconcile [SERVICE]`: every lane (of one service) checked against AWS now, as
/// the scheduled reconciler does; a lane that could not be reconciled is named, and fails
/// the command.
pub(super) async fn reconcile(
    cx: &Context<'_>,
    service: Option<&str>,
    aws: &Reach,
) -> Result<(), Failure> {
    let deps = cx.deps(aws).await;
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    if let Some(s) = service
        && !pipeline.services.contains_key(s)
    {
        return Err(unknown_service(&pipeline, s));
    }
    let cloudwatch = CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(cx.config));
    let pass = engine
        .reconcile_with_alarms(&cloudwatch, &pipeline, service, Timestamp::now())
        .await
        .map_err(engine_failure)?;
    render::transitions(&pass.report.transitions, cx.json());
    if let Some(why) = &pass.alarms_unread {
        errln!(
            "CloudWatch could not be read ({why}); {} bake(s) that are over stay owed until a pass reads the alarms",
            pass.bakes_left_owed.len()
        );
    }
    for f in &pass.failed {
        errln!(
            "not reconciled: {}/{}: {}",
            f.service,
            f.environment
                .as_deref()
                .unwrap_or("(its lanes could not be listed)"),
            f.error
        );
    }
    if pass.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "{} lane(s) not reconciled (listed above); the others were",
            pass.failed.len()
        )))
    }
}
