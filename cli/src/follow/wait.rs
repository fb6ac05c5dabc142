//! `shiplane wait`: an exit code for a CI job, once a release reaches a state in an
//! environment, ends another way, or the timeout passes (like `aws deploy wait`).

use std::time::{Duration, Instant};

use serde::Serialize;
use shiplane::pipeline::{Pipeline, Service};
use shiplane::release::{Release, StageState};
use shiplane::store::ReleaseStore;

use super::{WAIT_EVERY, positive_duration, release_end, service_of, words};
use crate::output::{errln, outln};
use crate::render;
use crate::{Failure, names};

/// What `wait --until` waits for, in the release's stage in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// Succeeded there: deployed and baked.
    Succeeded,
    /// Deployed there (baking, or already succeeded).
    Baking,
    /// Waiting for a person's approval there (or already past it).
    AwaitingApproval,
}

/// `shiplane wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The release: SERVICE@TAG, a release id or its start.
    release: String,
    /// The environment; default: the last of the service's route (production).
    #[arg(long)]
    env: Option<String>,
    #[arg(long, value_enum, default_value_t = Until::Succeeded)]
    until: Until,
    /// How long to wait before giving up (exit 6), e.g. 30m, 1h30m.
    #[arg(long, default_value = "30m", value_parser = positive_duration)]
    timeout: Duration,
    /// How often to read the store.
    #[arg(long, default_value = WAIT_EVERY, value_parser = positive_duration)]
    every: Duration,
}

/// How a wait stands after one read of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Reached,
    /// It ended without reaching the state: why, in words.
    Ended(String),
    /// Not yet: where it is now, in words.
    Waiting(String),
}

/// Whether `release` has reached `until` in `env`, ended another way, or may still.
pub fn judge(release: &Release, service: &Service, env: &str, until: Until) -> Verdict {
    let name = names::display(release);
    let Some(stage) = release.stages.get(env) else {
        return match release_end(release, service) {
            Some(how) => Verdict::Ended(format!("{name} will not reach {env}: it ended {how}")),
            None => Verdict::Waiting(match release.stages.iter().max_by_key(|(_, s)| s.since) {
                Some((at, s)) => format!(
                    "{name} has not reached {env}; it is {} in {at}",
                    words(s.state())
                ),
                None => format!("{name} has not reached {env}"),
            }),
        };
    };
    let reached = match until {
        Until::Succeeded => stage.state() == StageState::Succeeded,
        Until::Baking => matches!(stage.state(), StageState::Baking | StageState::Succeeded),
        Until::AwaitingApproval => {
            stage.state() == StageState::AwaitingApproval
                || stage.state() == StageState::Succeeded
                || stage.state().is_in_flight()
                || (stage.state() == StageState::Queued && stage.approved_by.is_some())
        }
    };
    if reached {
        return Verdict::Reached;
    }
    if stage.state().is_terminal() {
        let why = stage
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Verdict::Ended(format!(
            "{name} {} in {env}{why}; see `shiplane history {name}`",
            words(stage.state())
        ));
    }
    Verdict::Waiting(format!("{name} is {} in {env}", words(stage.state())))
}

pub async fn wait<S: ReleaseStore>(
    store: &S,
    pipeline: &Pipeline,
    args: &WaitArgs,
    json: bool,
) -> Result<(), Failure> {
    let release = crate::commands::named(store, &args.release).await?;
    let service = service_of(pipeline, &release)?;
    let env = match &args.env {
        Some(env) => {
            crate::commands::known_stage(pipeline, &service.name, env)?;
            env.clone()
        }
        None => service
            .stages
            .last()
            .map(|s| s.environment.clone())
            .ok_or_else(|| Failure::Failed(format!("{} has no environments", service.name)))?,
    };
    let started = Instant::now();
    let mut said = String::new();
    let mut current = release;
    loop {
        let verdict = judge(&current, service, &env, args.until);
        if let Verdict::Waiting(now) = &verdict
            && *now != said
            && !json
        {
            errln!("waiting: {now}");
            said.clone_from(now);
        }
        let waited = started.elapsed();
        let outcome = match verdict {
            Verdict::Reached => Ok(()),
            Verdict::Ended(why) => Err(Failure::Ended(why)),
            Verdict::Waiting(now) if waited >= args.timeout => Err(Failure::TimedOut(format!(
                "{now} after {}; it has not reached {} there",
                humantime::format_duration(Duration::from_secs(waited.as_secs())),
                until_words(args.until)
            ))),
            Verdict::Waiting(_) => {
                tokio::time::sleep(args.every.min(args.timeout - waited)).await;
                current = store
                    .release(&current.id)
                    .await?
                    .map(|r| r.item)
                    .ok_or_else(|| {
                        Failure::Failed(format!("release {} is gone from the table", current.id))
                    })?;
                continue;
            }
        };
        return finish(&current, &env, args.until, waited, outcome, json);
    }
}

fn until_words(until: Until) -> &'static str {
    match until {
        Until::Succeeded => "succeeded",
        Until::Baking => "baking",
        Until::AwaitingApproval => "awaiting approval",
    }
}

/// Says how the wait ended: with `--json` the final state as one document (the failure's
/// message in it, not printed again), else a line for success (the failure's message is
/// printed by its report).
fn finish(
    release: &Release,
    env: &str,
    until: Until,
    waited: Duration,
    outcome: Result<(), Failure>,
    json: bool,
) -> Result<(), Failure> {
    let name = names::display(release);
    let stage = release.stages.get(env);
    if json {
        let (result, message, code) = match &outcome {
            Ok(()) => ("reached", String::new(), 0),
            Err(f) => (f.kind(), f.message().to_string(), f.exit_code()),
        };
        render::json_line(&serde_json::json!({
            "release": release.id,
            "name": name,
            "environment": env,
            "until": until,
            "outcome": result,
            "message": message,
            "exit_code": code,
            "waited_ms": u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            "stage": stage,
        }));
        return outcome.map_err(super::super::Failure::said);
    }
    if outcome.is_ok() {
        let now = stage.map(|s| words(s.state())).unwrap_or_default();
        let until = until_words(until);
        outln!(
            "{name} reached {until} in {env}{} (waited {})",
            if now == until {
                String::new()
            } else {
                format!(": it is {now} there")
            },
            humantime::format_duration(Duration::from_secs(waited.as_secs()))
        );
    }
    outcome
}
