//! Domain facts: what happened in the world, as Shiplane's rules need it, whichever
//! parser or adapter learned it. The parsers in `inbound` make them from events; the AWS
//! adapters and the engine act on them; nothing here knows an event's wire shape.

use serde::{Deserialize, Serialize};

use crate::release::{AlarmState, ReleaseId, Timestamp};

/// An alarm changed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    pub alarm: String,
    pub state: AlarmState,
    /// When the alarm entered the state (CloudWatch's own clock): orders changes.
    pub at: Timestamp,
    pub reason: String,
}

/// How one container of a stopped task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerExit {
    pub name: String,
    /// None when it never ran (image pull failed, task stopped before it started).
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

/// A stopped task, every container's exit, and who started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStopped {
    pub task_arn: String,
    /// `startedBy` as given to RunTask; Shiplane's name the release and environment.
    pub started_by: Option<String>,
    pub stopped_reason: String,
    pub containers: Vec<ContainerExit>,
}

impl TaskStopped {
    /// Whether the task did its job, decided by one container's exit code (the migration
    /// container): a sidecar stopped with 137 or 143 when the task ended is no failure.
    /// Without a name, every container must have exited 0. Err says why not.
    pub fn outcome(&self, container: Option<&str>) -> Result<(), String> {
        let describe = |c: &ContainerExit| match (c.exit_code, &c.reason) {
            (Some(0), _) => None,
            (Some(code), Some(reason)) => Some(format!(
                "container {} exited with code {code}: {reason}",
                c.name
            )),
            (Some(code), None) => Some(format!("container {} exited with code {code}", c.name)),
            (None, _) => Some(format!(
                "container {} did not run: {}",
                c.name, self.stopped_reason
            )),
        };
        if self.containers.is_empty() {
            return Err(format!(
                "task stopped without containers: {}",
                self.stopped_reason
            ));
        }
        match container {
            Some(name) => match self.containers.iter().find(|c| c.name == name) {
                Some(c) => describe(c).map_or(Ok(()), Err),
                None => Err(format!(
                    "container {name} is not in the task: {}",
                    self.stopped_reason
                )),
            },
            None => {
                let failures: Vec<String> = self.containers.iter().filter_map(describe).collect();
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures.join("; "))
                }
            }
        }
    }
}

/// What a bake timer fires: the payload the schedule hands the promote function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BakeTimer {
    /// Always [`BakeTimer::SOURCE`], so the promote function can tell its own payloads.
    pub source: String,
    pub service: String,
    pub environment: String,
    pub release: ReleaseId,
    /// The stage's attempt: a retried stage bakes again under another timer.
    pub attempt: u32,
}

impl BakeTimer {
    pub const SOURCE: &'static str = "shiplane.bake-timer";

    pub fn new(service: &str, environment: &str, release: &ReleaseId, attempt: u32) -> BakeTimer {
        BakeTimer {
            source: BakeTimer::SOURCE.to_string(),
            service: service.to_string(),
            environment: environment.to_string(),
            release: release.clone(),
            attempt,
        }
    }

    /// The schedule's name, derived from release, environment and attempt so that a
    /// replay cannot create a second one: `bake-<release>-<attempt>-<environment>`, the
    /// environment replaced by a hash when the name would pass Scheduler's 64 characters.
    pub fn name(&self) -> String {
        let name = format!(
            "bake-{}-{}-{}",
            self.release, self.attempt, self.environment
        );
        if name.len() <= 64 {
            return name;
        }
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let hash = self
            .environment
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("bake-{}-{}-{hash:016x}", self.release, self.attempt)
    }

    /// The schedule expression for a bake ending at `at`: the next whole minute at or
    /// after it (Scheduler's precision), so the timer never fires before the bake ends.
    pub fn expression(at: Timestamp) -> String {
        let minute = at.0.div_ceil(60_000) * 60_000;
        let text = Timestamp(minute).to_string(); // 2026-11-24T11:23:00Z
        format!("at({})", text.trim_end_matches('Z'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> ReleaseId {
        ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap()
    }

    #[test]
    fn a_timer_name_is_derived_from_release_attempt_and_environment_within_64_characters() {
        let t = BakeTimer::new("api", "staging", &release(), 2);
        assert_eq!(t.name(), "bake-01JD2B3C4D5E6F7G8H9J0KMNPQ-2-staging");
        assert_eq!(
            t.name(),
            BakeTimer::new("api", "staging", &release(), 2).name()
        );
        assert_ne!(
            t.name(),
            BakeTimer::new("api", "staging", &release(), 3).name()
        );
        let long = "e".repeat(80);
        let a = BakeTimer::new("api", &long, &release(), 0).name();
        let b = BakeTimer::new("api", &format!("{long}x"), &release(), 0).name();
        assert!(a.len() <= 64 && b.len() <= 64, "{a} {b}");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
    }

    #[test]
    fn the_expression_rounds_up_to_the_minute_so_the_timer_never_fires_early() {
        // 2026-11-24T11:23:00Z
        let minute = Timestamp(1_795_519_380_000);
        assert_eq!(BakeTimer::expression(minute), "at(2026-11-24T11:23:00)");
        assert_eq!(
            BakeTimer::expression(Timestamp(minute.0 + 1)),
            "at(2026-11-24T11:24:00)"
        );
        assert_eq!(
            BakeTimer::expression(Timestamp(minute.0 + 59_999)),
            "at(2026-11-24T11:24:00)"
        );
    }

    #[test]
    fn the_payload_round_trips_and_names_its_source() {
        let t = BakeTimer::new("api", "dev", &release(), 1);
        let text = serde_json::to_string(&t).unwrap();
        assert!(
            text.contains("\"source\":\"shiplane.bake-timer\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<BakeTimer>(&text).unwrap(), t);
    }
}
