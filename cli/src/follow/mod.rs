//! Following a release: `shiplane watch` (a live view of each environment's stage, until
//! the release ends everywhere it is going) and `shiplane wait` (an exit code for a CI job,
//! like `aws deploy wait`). Both poll the store; neither changes anything. This module
//! holds what both share: the polling defaults, the duration flag, how a release ends.

mod wait;
mod watch;

use std::time::Duration;

use shiplane::pipeline::{Pipeline, Service};
use shiplane::release::{Release, StageState};

use crate::Failure;

pub use wait::{WaitArgs, wait};
pub use watch::{WatchArgs, watch};

/// How often `watch` reads the store unless told.
pub const WATCH_EVERY: &str = "2s";
/// How often `wait` reads the store unless told.
pub const WAIT_EVERY: &str = "5s";

/// A duration flag: `90s`, `15m`, `1h30m`, `500ms`; never zero.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("give a duration above zero, e.g. 2s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!(
            "{e}; write a duration such as 500ms, 2s, 15m or 1h30m"
        )),
    }
}

fn service_of<'p>(pipeline: &'p Pipeline, release: &Release) -> Result<&'p Service, Failure> {
    pipeline.services.get(&release.service).ok_or_else(|| {
        Failure::Failed(format!(
            "{} is a release of {}, which the stored pipeline no longer has",
            release.id, release.service
        ))
    })
}

/// How a release ended everywhere it was going, or None while any stage of it can still
/// move (in flight, waiting, or a success owed its promotion to the next environment).
pub fn release_end(release: &Release, service: &Service) -> Option<String> {
    if release.stages.is_empty() || release.stages.values().any(|s| !s.state().is_terminal()) {
        return None;
    }
    let owed = release.stages.values().any(|s| {
        s.state() == StageState::Succeeded
            && s.promote_to()
                .is_some_and(|next| !release.stages.contains_key(next))
    });
    if owed {
        return None;
    }
    let ends: Vec<String> = service
        .stages
        .iter()
        .filter_map(|st| {
            let s = release.stages.get(&st.environment)?;
            let end = format!("{} in {}", words(s.state()), st.environment);
            Some(match s.not_promoted() {
                Some(why) => format!("{end} (goes no further: {why})"),
                None => end,
            })
        })
        .collect();
    Some(ends.join(", "))
}

fn words(state: StageState) -> String {
    state.as_str().replace('_', " ")
}

#[cfg(test)]
mod tests {
    use shiplane::release::{Digest, Phase, ReleaseId, Stage, Timestamp};

    use super::wait::{Until, Verdict, judge};
    use super::*;

    fn service() -> Service {
        Pipeline::from_toml(include_str!("../../../infra/pipeline.example.toml"))
            .unwrap()
            .services
            .remove("api")
            .unwrap()
    }

    fn release(stages: &[(&str, StageState)]) -> Release {
        let mut r = Release::new(
            ReleaseId::new(Timestamp(1)),
            "api",
            "shiplane/api",
            Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            Some("v1"),
            Timestamp(1),
        );
        for (i, (env, state)) in stages.iter().enumerate() {
            let mut stage = Stage::new(*state, Timestamp(10 + i as u64));
            if *state == StageState::Succeeded {
                let next = service().next_environment(env).map(str::to_string);
                stage.phase = Phase::Succeeded {
                    promote_to: next,
                    restarts: Vec::new(),
                    clean_up: false,
                    not_promoted: None,
                };
            }
            r.stages.insert((*env).to_string(), stage);
        }
        r
    }

    #[test]
    fn a_release_ends_when_no_stage_can_move_and_no_promotion_is_owed() {
        use StageState::*;
        let svc = service();
        assert_eq!(release_end(&release(&[]), &svc), None, "not started");
        assert_eq!(release_end(&release(&[("dev", Baking)]), &svc), None);
        assert_eq!(
            release_end(&release(&[("dev", Succeeded)]), &svc),
            None,
            "owed its promotion to staging"
        );
        assert_eq!(
            release_end(&release(&[("dev", Succeeded), ("staging", Failed)]), &svc).as_deref(),
            Some("succeeded in dev, failed in staging")
        );
        let everywhere = release(&[
            ("dev", Succeeded),
            ("staging", Succeeded),
            ("prod", Succeeded),
        ]);
        assert_eq!(
            release_end(&everywhere, &svc).as_deref(),
            Some("succeeded in dev, succeeded in staging, succeeded in prod")
        );
    }

    #[test]
    fn wait_reaches_ends_or_keeps_waiting() {
        use StageState::*;
        let svc = service();
        let judge =
            |stages: &[(&str, StageState)], env, until| judge(&release(stages), &svc, env, until);
        assert_eq!(
            judge(&[("dev", Succeeded)], "dev", Until::Succeeded),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Baking)], "dev", Until::Baking),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Baking)], "dev", Until::Succeeded),
            Verdict::Waiting("api@v1 is baking in dev".into())
        );
        assert_eq!(
            judge(
                &[("dev", Succeeded), ("staging", AwaitingApproval)],
                "staging",
                Until::AwaitingApproval
            ),
            Verdict::Reached
        );
        assert_eq!(
            judge(&[("dev", Deploying)], "prod", Until::Succeeded),
            Verdict::Waiting("api@v1 has not reached prod; it is deploying in dev".into())
        );
        let Verdict::Ended(why) = judge(&[("dev", RolledBack)], "dev", Until::Succeeded) else {
            panic!("a rollback ends the wait");
        };
        assert!(
            why.starts_with("api@v1 rolled back in dev") && why.contains("shiplane history api@v1"),
            "{why}"
        );
        let Verdict::Ended(why) = judge(&[("dev", Failed)], "prod", Until::Succeeded) else {
            panic!("a failure before prod ends a wait for prod");
        };
        assert_eq!(why, "api@v1 will not reach prod: it ended failed in dev");
        for ended in [Failed, RolledBack, Cancelled, Superseded, Rejected] {
            assert!(
                matches!(
                    judge(
                        &[("dev", Succeeded), ("staging", ended)],
                        "staging",
                        Until::Succeeded
                    ),
                    Verdict::Ended(_)
                ),
                "{ended}"
            );
        }
    }
}
