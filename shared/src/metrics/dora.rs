//! The four DORA figures of one service, computed from its history (pure; the CLI reads
//! the history and renders). Definitions, over a window `[since, until]`, in the
//! service's production environment (the last of its pipeline's environments):
//!
//! - **Deployment**: a release's deployment in production *completed* — a transition from
//!   `deploying` or `validating` to `baking` or `succeeded` — counted once per release, at
//!   its first such transition inside the window. A restore of the last known good (a
//!   deployment started with cause `rollback`) is not a deployment of a change.
//! - **Deployment frequency**: deployments ÷ days in the window.
//! - **Lead time for changes**: for each deployment, push (the image's push time) → that
//!   completion; the median (and the slowest) is reported.
//! - **Change-failure rate**: deployments whose release later *failed or was rolled back in
//!   production* (a transition to `failed` or `rolled_back` after it completed) ÷
//!   deployments.
//! - **Time to restore**: for each such failure inside the window, the failure → the next
//!   deployment (a restore included) that completed in production; the median. A failure
//!   with none yet is counted as unrestored.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::release::{Cause, ReleaseId, StageState, Timestamp, Transition};

/// A day, in milliseconds.
const DAY_MS: f64 = 86_400_000.0;

/// The four figures of one service over one window, with what they were computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub service: String,
    /// The environment counted as production.
    pub environment: String,
    pub since: Timestamp,
    pub until: Timestamp,
    /// Deployments of changes completed in production in the window.
    pub deployments: usize,
    /// Deployments per day.
    pub deployments_per_day: f64,
    /// Median push → production, in seconds; None without deployments.
    pub lead_time_median_s: Option<f64>,
    /// The slowest push → production, in seconds.
    pub lead_time_max_s: Option<f64>,
    /// Deployments whose release later failed or was rolled back in production.
    pub failed_deployments: usize,
    /// `failed_deployments ÷ deployments`; None without deployments.
    pub change_failure_rate: Option<f64>,
    /// Median failure → next completed production deployment, in seconds.
    pub time_to_restore_median_s: Option<f64>,
    /// Failures in the window not followed by a completed deployment yet.
    pub unrestored: usize,
}

/// The median of some values; None when there are none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.0.saturating_sub(from.0) as f64 / 1000.0
}

/// Computes the figures of `service` in `production` from its transitions (any order; other
/// services and environments are ignored) and each release's push time.
pub fn figures(
    service: &str,
    production: &str,
    history: &[Transition],
    pushed_at: &HashMap<ReleaseId, Timestamp>,
    since: Timestamp,
    until: Timestamp,
) -> Figures {
    let mut prod: Vec<&Transition> = history
        .iter()
        .filter(|t| t.service == service && t.environment == production && t.release.is_some())
        .collect();
    prod.sort_by_key(|t| t.at);

    let Scan {
        completions,
        deployed,
        failures,
    } = scan(&prod, since, until);
    let lead_times: Vec<f64> = deployed
        .iter()
        .filter_map(|(id, at)| pushed_at.get(*id).map(|p| seconds(*p, *at)))
        .collect();
    let failed_deployments = deployed
        .iter()
        .filter(|(id, at)| failures.iter().any(|(f, when)| f == *id && when >= *at))
        .count();
    let (restores, unrestored) = restores(&failures, &completions, since, until);
    let days = (until.0.saturating_sub(since.0) as f64 / DAY_MS).max(1.0 / 24.0);
    let deployments = deployed.len();
    Figures {
        service: service.to_string(),
        environment: production.to_string(),
        since,
        until,
        deployments,
        deployments_per_day: deployments as f64 / days,
        lead_time_median_s: median(lead_times.clone()),
        lead_time_max_s: lead_times.into_iter().reduce(f64::max),
        failed_deployments,
        change_failure_rate: (deployments > 0)
            .then(|| failed_deployments as f64 / deployments as f64),
        time_to_restore_median_s: median(restores),
        unrestored,
    }
}

/// What production's transitions say, in time order.
struct Scan<'a> {
    /// Every completed production deployment (restores included), in time order.
    completions: Vec<Timestamp>,
    /// Counted deployments: release → when it completed.
    deployed: BTreeMap<&'a ReleaseId, Timestamp>,
    /// Failures after completion: (release, when).
    failures: Vec<(&'a ReleaseId, Timestamp)>,
}

/// Reads production's transitions `prod` (in time order): completions, the deployments of
/// changes completed in `[since, until]`, and failures after completion up to `until`.
fn scan<'a>(prod: &[&'a Transition], since: Timestamp, until: Timestamp) -> Scan<'a> {
    use StageState as S;
    // Releases whose current stage in production is a restore of the last known good.
    let mut restoring: BTreeSet<&ReleaseId> = BTreeSet::new();
    let mut completions: Vec<Timestamp> = Vec::new();
    let mut deployed: BTreeMap<&ReleaseId, Timestamp> = BTreeMap::new();
    let mut failures: Vec<(&ReleaseId, Timestamp)> = Vec::new();
    let mut completed_ever: BTreeSet<&ReleaseId> = BTreeSet::new();
    for t in prod {
        let Some(id) = t.release.as_ref() else {
            continue;
        };
        if t.to == Some(S::Deploying) && t.from != t.to {
            if t.cause == Cause::Rollback {
                restoring.insert(id);
            } else {
                restoring.remove(id);
            }
        }
        let completes = matches!(t.from, Some(S::Deploying | S::Validating))
            && matches!(t.to, Some(S::Baking | S::Succeeded));
        if completes {
            completions.push(t.at);
            completed_ever.insert(id);
            if !restoring.contains(id)
                && (since..=until).contains(&t.at)
                && !deployed.contains_key(id)
            {
                deployed.insert(id, t.at);
            }
        }
        let fails = matches!(t.to, Some(S::Failed | S::RolledBack))
            && t.from != t.to
            && matches!(t.from, Some(S::Baking | S::Succeeded))
            && completed_ever.contains(id)
            && !restoring.contains(id);
        if fails && t.at <= until {
            failures.push((id, t.at));
        }
    }
    Scan {
        completions,
        deployed,
        failures,
    }
}

/// For each failure in `[since, until]`, failure → the next completed deployment by
/// `until`; and how many had none.
fn restores(
    failures: &[(&ReleaseId, Timestamp)],
    completions: &[Timestamp],
    since: Timestamp,
    until: Timestamp,
) -> (Vec<f64>, usize) {
    let mut restores = Vec::new();
    let mut unrestored = 0;
    for (_, at) in failures
        .iter()
        .filter(|(_, at)| (since..=until).contains(at))
    {
        match completions.iter().find(|c| *c > at && **c <= until) {
            Some(done) => restores.push(seconds(*at, *done)),
            None => unrestored += 1,
        }
    }
    (restores, unrestored)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;

    struct Story {
        history: Vec<Transition>,
        pushed: HashMap<ReleaseId, Timestamp>,
    }

    impl Story {
        fn new() -> Story {
            Story {
                history: Vec::new(),
                pushed: HashMap::new(),
            }
        }

        fn release(&mut self, pushed_h: u64) -> ReleaseId {
            let id = ReleaseId::new(Timestamp(pushed_h * H + self.pushed.len() as u64));
            self.pushed.insert(id.clone(), Timestamp(pushed_h * H));
            id
        }

        fn t(
            &mut self,
            id: &ReleaseId,
            env: &str,
            h: u64,
            from: StageState,
            to: StageState,
            cause: Cause,
        ) {
            self.history.push(Transition {
                at: Timestamp(h * H),
                service: "api".into(),
                environment: env.into(),
                release: Some(id.clone()),
                from: Some(from),
                to: Some(to),
                cause,
                actor: None,
                detail: None,
                alert: None,
            });
        }

        /// Deploys `id` in `env` from `h`: started, completed an hour later, baked an hour.
        fn ship(&mut self, id: &ReleaseId, env: &str, h: u64) {
            use StageState as S;
            self.t(
                id,
                env,
                h,
                S::AwaitingApproval,
                S::Deploying,
                Cause::Approved,
            );
            self.t(
                id,
                env,
                h + 1,
                S::Deploying,
                S::Baking,
                Cause::DeploymentSucceeded,
            );
        }
    }

    #[test]
    fn the_four_figures_of_a_constructed_history() {
        use StageState as S;
        let mut s = Story::new();
        // r1: pushed at 0 h, in prod at 10 h (lead 10 h), baked, fine.
        let r1 = s.release(0);
        s.ship(&r1, "dev", 1);
        s.ship(&r1, "prod", 9);
        s.t(&r1, "prod", 11, S::Baking, S::Succeeded, Cause::BakeElapsed);
        // r2: pushed at 20 h, in prod at 24 h (lead 4 h), rolled back at 25 h by an alarm;
        // r1 restored (not a deployment of a change), done at 27 h: restore 2 h.
        let r2 = s.release(20);
        s.ship(&r2, "prod", 23);
        s.t(&r2, "prod", 25, S::Baking, S::RolledBack, Cause::AlarmFired);
        s.t(&r1, "prod", 25, S::Succeeded, S::Deploying, Cause::Rollback);
        s.t(
            &r1,
            "prod",
            27,
            S::Deploying,
            S::Succeeded,
            Cause::DeploymentSucceeded,
        );
        // r3: pushed at 30 h, fails in CodeDeploy before it completes: not a deployment.
        let r3 = s.release(30);
        s.t(
            &r3,
            "prod",
            31,
            S::AwaitingApproval,
            S::Deploying,
            Cause::Approved,
        );
        s.t(
            &r3,
            "prod",
            32,
            S::Deploying,
            S::Failed,
            Cause::DeploymentFailed,
        );
        // r4: pushed at 40 h, in prod at 46 h (lead 6 h), fails after completion at 47 h,
        // nothing completed since: unrestored.
        let r4 = s.release(40);
        s.ship(&r4, "prod", 45);
        s.t(&r4, "prod", 47, S::Baking, S::Failed, Cause::TimedOut);
        // Another service and dev are ignored.
        let mut other = s.history[0].clone();
        other.service = "web".into();
        other.environment = "prod".into();
        s.history.push(other);

        let f = figures(
            "api",
            "prod",
            &s.history,
            &s.pushed,
            Timestamp(0),
            Timestamp(48 * H),
        );
        assert_eq!(f.deployments, 3, "r1, r2, r4; not r3, not r1's restore");
        assert!((f.deployments_per_day - 1.5).abs() < 1e-9, "3 in 2 days");
        assert_eq!(
            f.lead_time_median_s,
            Some(6.0 * 3600.0),
            "median of 10 h, 4 h, 6 h"
        );
        assert_eq!(f.lead_time_max_s, Some(10.0 * 3600.0));
        assert_eq!(f.failed_deployments, 2, "r2 rolled back, r4 failed");
        assert_eq!(f.change_failure_rate, Some(2.0 / 3.0));
        assert_eq!(f.time_to_restore_median_s, Some(2.0 * 3600.0));
        assert_eq!(f.unrestored, 1, "r4");

        // A window that starts after r1 and r2 completed: r4 only.
        let late = figures(
            "api",
            "prod",
            &s.history,
            &s.pushed,
            Timestamp(30 * H),
            Timestamp(54 * H),
        );
        assert_eq!(late.deployments, 1);
        assert_eq!(late.change_failure_rate, Some(1.0));
        assert_eq!(late.time_to_restore_median_s, None);
        assert_eq!(late.unrestored, 1);

        // No deployments at all: no rates, no lead time.
        let none = figures(
            "api",
            "prod",
            &[],
            &s.pushed,
            Timestamp(0),
            Timestamp(48 * H),
        );
        assert_eq!(
            (
                none.deployments,
                none.change_failure_rate,
                none.lead_time_median_s
            ),
            (0, None, None)
        );
    }

    #[test]
    fn a_release_deployed_twice_counts_once_and_retries_count_from_the_first() {
        use StageState as S;
        let mut s = Story::new();
        let r = s.release(0);
        s.ship(&r, "prod", 1);
        s.t(&r, "prod", 3, S::Baking, S::RolledBack, Cause::AlarmFired);
        s.t(&r, "prod", 4, S::RolledBack, S::Deploying, Cause::Retried);
        s.t(
            &r,
            "prod",
            5,
            S::Deploying,
            S::Baking,
            Cause::DeploymentSucceeded,
        );
        let f = figures(
            "api",
            "prod",
            &s.history,
            &s.pushed,
            Timestamp(0),
            Timestamp(24 * H),
        );
        assert_eq!(f.deployments, 1);
        assert_eq!(f.lead_time_median_s, Some(2.0 * 3600.0));
        assert_eq!(f.failed_deployments, 1);
        assert_eq!(
            f.time_to_restore_median_s,
            Some(2.0 * 3600.0),
            "the retry restored it"
        );
    }
}
