//! The invariants a quiet world must hold, checked against what the simulated AWS runs,
//! not against Shiplane's own records alone (issue #22's list; DESIGN invariants 1-13).

use std::collections::BTreeMap;

use shiplane::aws::{parse_deployment_description, parse_started_by};
use shiplane::release::{
    Alert, Cause, Lane, Release, ReleaseId, StageState, Timestamp, Transition, pushed_before,
};
use shiplane::store::{LaneKey, ReleaseStore};

use crate::Violation;
use crate::scenario::Rig;
use crate::world::{Bad, CdStatus, Rollout};

fn v(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// Every invariant, once the world has gone quiet.
pub async fn check(rig: &Rig) -> Vec<Violation> {
    let store = &rig.deps.store.inner;
    let mut lanes: BTreeMap<LaneKey, Lane> = BTreeMap::new();
    let mut releases: BTreeMap<ReleaseId, Release> = BTreeMap::new();
    let mut history: BTreeMap<ReleaseId, Vec<Transition>> = BTreeMap::new();
    for service in rig.pipeline.services.keys() {
        for l in store.lanes(service).await.unwrap_or_default() {
            lanes.insert(LaneKey::of(&l.item), l.item);
        }
        for r in store
            .releases_of_service(service, usize::MAX)
            .await
            .unwrap_or_default()
        {
            let h = store.history_of_release(&r.id).await.unwrap_or_default();
            history.insert(r.id.clone(), h);
            releases.insert(r.id.clone(), r);
        }
    }
    let w = rig.sim.world();
    let label = |id: &Option<ReleaseId>| match id {
        Some(id) => releases
            .get(id)
            .map_or_else(|| id.to_string(), |r| format!("{} ({})", r.label(), id)),
        None => "the revision it started with".into(),
    };
    let bad_of = |r: &Release| w.image(&r.digest).map_or(Bad::No, |i| i.bad);
    let mut out = Vec::new();

    // 1. truth: what Shiplane records as current is what each service serves, and nothing
    //    runs or exists that no release accounts for.
    for spec in &w.lanes {
        let key = LaneKey::new(&spec.service, &spec.environment);
        let current = lanes.get(&key).and_then(|l| l.current.clone());
        let Some(svc) = w.services.get(&spec.ecs) else {
            continue;
        };
        let serving = w
            .revision(&svc.serving)
            .and_then(|r| r.release.as_deref())
            .and_then(|id| ReleaseId::parse(id).ok());
        if serving != current {
            out.push(v(
                "truth",
                format!(
                    "{}/{}: Shiplane records {} as current; {} serves {}",
                    spec.service,
                    spec.environment,
                    label(&current),
                    spec.ecs,
                    label(&serving)
                ),
            ));
        }
        if let Some(p) = &svc.partial {
            out.push(v(
                "truth",
                format!("{}: {p} still takes part of the traffic", spec.ecs),
            ));
        }
        for d in svc
            .deployments
            .iter()
            .filter(|d| d.rollout == Rollout::InProgress)
        {
            out.push(v(
                "truth",
                format!("{}: ECS deployment {} still in progress", spec.ecs, d.id),
            ));
        }
    }
    for d in &w.codedeploy {
        if d.status.is_active() {
            out.push(v(
                "truth",
                format!("CodeDeploy deployment {} is still {:?}", d.id, d.status),
            ));
        }
        // CodeDeploy's own rollback deployment belongs to the stage of the one it rolls back.
        let described = d
            .rollback_of
            .as_ref()
            .and_then(|original| w.codedeploy.iter().find(|o| &o.id == original))
            .map_or(&d.description, |o| &o.description);
        let known = parse_deployment_description(described).is_some_and(|(id, env, _)| {
            releases
                .get(&id)
                .is_some_and(|r| r.stages.contains_key(&env))
        });
        if !known {
            out.push(v(
                "truth",
                format!(
                    "CodeDeploy deployment {} ({}) belongs to no release stage",
                    d.id, d.description
                ),
            ));
        }
    }
    for t in &w.tasks {
        if t.running {
            out.push(v("truth", format!("migration task {} still runs", t.arn)));
        }
        let known = parse_started_by(&t.started_by).is_some_and(|(id, env, _)| {
            releases
                .get(&id)
                .is_some_and(|r| r.stages.contains_key(&env))
        });
        if !known {
            out.push(v(
                "truth",
                format!(
                    "task {} ({}) belongs to no release stage",
                    t.arn, t.started_by
                ),
            ));
        }
    }

    // 2. no bad release is kept: never last known good, never current, never succeeded.
    //    An image whose alarm fires only after its bake (LateAlarm) succeeds, by design: its
    //    watch must roll it back, or, with no release before it to restore (or none that
    //    runs on the schema its stop-first migration left), alert a person.
    let alerted_keeps_running = |r: &Release, env: &str| {
        history.get(&r.id).is_some_and(|h| {
            h.iter().any(|t| {
                t.environment == env
                    && matches!(t.alert, Some(Alert::NothingToRestore | Alert::SchemaMoved))
            })
        })
    };
    // A bad migration is bad only where it runs: tiles migrates in prod alone.
    let bad_in = |r: &Release, env: &str| match bad_of(r) {
        Bad::Migration
            if w.lane(&r.service, env)
                .is_none_or(|l| l.migration_family.is_none()) =>
        {
            Bad::No
        }
        bad => bad,
    };
    for r in releases.values() {
        if bad_of(r) == Bad::No {
            continue;
        }
        for (env, stage) in &r.stages {
            let bad = bad_in(r, env);
            if bad == Bad::No {
                continue;
            }
            // A late alarm's image passes its bake by design (and may be replaced before
            // its alarm ever fires): only what runs at the end counts for it, below.
            let succeeded = stage.state() == StageState::Succeeded || stage.succeeded_at.is_some();
            if bad != Bad::LateAlarm && succeeded {
                out.push(v(
                    "no bad release kept",
                    format!("{} {} ({bad:?}) succeeded in {env}", r.service, r.label()),
                ));
            }
        }
        for (key, l) in &lanes {
            let bad = bad_in(r, &key.environment);
            let kept =
                l.last_known_good.as_ref() == Some(&r.id) || l.current.as_ref() == Some(&r.id);
            // Last known good behind a release that keeps running for a person (its
            // stop-first migration moved the schema past it): never put back, its late
            // alarm never fires.
            let behind_alerted = l
                .current
                .as_ref()
                .filter(|c| **c != r.id)
                .and_then(|c| releases.get(c))
                .is_some_and(|c| alerted_keeps_running(c, &key.environment));
            let late_excused = alerted_keeps_running(r, &key.environment) || behind_alerted;
            if bad != Bad::No && kept && !(bad == Bad::LateAlarm && late_excused) {
                out.push(v(
                    "no bad release kept",
                    format!(
                        "{key}: {} ({bad:?}) is current or last known good",
                        r.label()
                    ),
                ));
            }
        }
    }

    // 3. once: no more deployments than times the stage entered deploying; one migration
    //    task and one revision per release, environment and attempt.
    let entered_deploying = |id: &ReleaseId, env: &str| {
        history.get(id).map_or(0, |h| {
            h.iter()
                .filter(|t| {
                    // Each entry into deploying licenses one deployment; so does each
                    // failure a restore records and tries again after (a deployment that failed, an
                    // action that failed, a deadline passed), and so does each redeploy after a
                    // late deployment replaced it.
                    let retried = matches!(
                        t.cause,
                        Cause::DeploymentFailed
                            | Cause::ActionFailed
                            | Cause::TimedOut
                            | Cause::Redeployed
                    );
                    t.environment == env
                        && t.to == Some(StageState::Deploying)
                        && (t.from != Some(StageState::Deploying) || retried)
                })
                .count()
        })
    };
    // A deployment an action made after its stage ended (an alarm, an operator or a
    // deadline ended it while CreateDeployment or UpdateService was in flight) is not a
    // second try: it is once only if the stage recorded it as late (and so undid it;
    // truth checks what runs), and it was made after the stage ended.
    let late = |id: &ReleaseId, env: &str, deployment: &str, created: Timestamp| {
        use StageState as S;
        history.get(id).is_some_and(|h| {
            let Some(recorded) = h.iter().position(|t| {
                t.environment == env
                    && t.cause == Cause::DeploymentCreated
                    && matches!(t.from, Some(S::Cancelled | S::Failed | S::RolledBack))
                    && t.detail
                        .as_deref()
                        .is_some_and(|d| d.starts_with(deployment))
            }) else {
                return false;
            };
            h[..recorded]
                .iter()
                .rev()
                .find(|t| {
                    t.environment == env
                        && matches!(t.from, Some(S::Deploying | S::Validating | S::Migrating))
                        && matches!(t.to, Some(S::Cancelled | S::Failed | S::RolledBack))
                })
                .is_some_and(|ended| created >= ended.at)
        })
    };
    let mut deployments: BTreeMap<(ReleaseId, String), usize> = BTreeMap::new();
    for d in &w.codedeploy {
        if let Some((id, env, _)) = parse_deployment_description(&d.description)
            && !late(&id, &env, &d.id, d.created)
        {
            *deployments.entry((id, env)).or_default() += 1;
        }
    }
    for svc_key in w.services.keys() {
        let Some(spec) = w.lane_of_ecs(svc_key) else {
            continue;
        };
        // A restart (another service's `restarts`) deploys no release: checked below.
        for d in w.services[svc_key]
            .deployments
            .iter()
            .filter(|d| !d.restart)
        {
            if let Some(id) = w
                .revision(&d.task_definition)
                .and_then(|r| r.release.as_deref())
                .and_then(|id| ReleaseId::parse(id).ok())
                && !late(&id, &spec.environment, &d.id, d.created)
            {
                *deployments
                    .entry((id, spec.environment.clone()))
                    .or_default() += 1;
            }
        }
    }
    for ((id, env), n) in &deployments {
        let allowed = entered_deploying(id, env);
        if *n > allowed {
            out.push(v(
                "once",
                format!(
                    "release {id} in {env}: {n} deployments, for {allowed} entries into deploying"
                ),
            ));
        }
    }
    let mut tasks: BTreeMap<String, usize> = BTreeMap::new();
    for t in &w.tasks {
        *tasks.entry(t.started_by.clone()).or_default() += 1;
    }
    for (by, n) in tasks.iter().filter(|(_, n)| **n > 1) {
        out.push(v("once", format!("{n} migration tasks started by {by}")));
    }
    let mut revisions: BTreeMap<(String, String, String, u32), usize> = BTreeMap::new();
    // A data-job stage that failed deregistered what it registered: undone, not a second.
    for r in w.revisions.iter().filter(|r| !w.withdrawn.contains(&r.arn)) {
        if let (Some(id), Some(env)) = (&r.release, &r.environment) {
            *revisions
                .entry((r.family.clone(), id.clone(), env.clone(), r.attempt))
                .or_default() += 1;
        }
    }
    for ((family, id, env, attempt), n) in revisions.iter().filter(|(_, n)| **n > 1) {
        out.push(v(
            "once",
            format!("{n} revisions of {family} for release {id} in {env}, attempt {attempt}"),
        ));
    }

    // 4. nothing stuck: quiet means every lane idle and every stage ended. A lane whose
    //    release still runs with nothing to restore, its alarm firing, waits for the
    //    person it alerted (and so do the lanes its alarm holds); so does one whose service
    //    a completed stop-first migration left stopped (`app_down`: its alarm holds it).
    let alerted: Vec<LaneKey> = lanes
        .iter()
        .filter(|(key, l)| {
            l.current
                .as_ref()
                .and_then(|id| releases.get(id))
                .is_some_and(|r| alerted_keeps_running(r, &key.environment))
                || left_down(&history, &key.service, &key.environment)
        })
        .map(|(key, _)| key.clone())
        .collect();
    let waits_for_a_person = |service: &str, env: &str| {
        let holds = rig
            .pipeline
            .services
            .get(service)
            .and_then(|s| s.stage(env))
            .map(|s| s.hold_while_alarms_in.clone())
            .unwrap_or_default();
        alerted.iter().any(|k| {
            k.service == service && (k.environment == env || holds.contains(&k.environment))
        })
    };
    for (key, l) in &lanes {
        if waits_for_a_person(&key.service, &key.environment) {
            continue;
        }
        if let Some(id) = &l.in_flight {
            out.push(v(
                "nothing stuck",
                format!("{key}: {} still in flight", label(&Some(id.clone()))),
            ));
        }
        if let Some(id) = &l.queued {
            out.push(v(
                "nothing stuck",
                format!("{key}: {} still waits", label(&Some(id.clone()))),
            ));
        }
    }
    for r in releases.values() {
        for (env, stage) in &r.stages {
            if !stage.state().is_terminal() && !waits_for_a_person(&r.service, env) {
                out.push(v(
                    "nothing stuck",
                    format!(
                        "{} {} is still {} in {env}",
                        r.service,
                        r.label(),
                        stage.state()
                    ),
                ));
            }
        }
    }

    // 5. order: each service's newest push is what its first environment runs, unless it
    //    is bad, an operator stepped in, the push was lost, or AWS failed it for good.
    for service in rig.pipeline.services.values() {
        let Some(first) = service.stages.first().map(|s| s.environment.clone()) else {
            continue;
        };
        let Some(newest) = w
            .images
            .iter()
            .filter(|i| i.service == service.name)
            .max_by_key(|i| i.seq)
        else {
            continue;
        };
        if newest.bad != Bad::No {
            continue;
        }
        let Some(release) = releases.values().find(|r| r.digest == newest.digest) else {
            continue; // its push event was lost: nothing told Shiplane
        };
        let touched = w
            .touched
            .get(&(service.name.clone(), first.clone()))
            .is_some_and(|at| *at >= release.created);
        let failed_by_aws = history.get(&release.id).is_some_and(|h| {
            h.iter().any(|t| {
                t.environment == first
                    && matches!(
                        t.cause,
                        Cause::ActionFailed | Cause::TimedOut | Cause::StopFailed
                    )
            })
        });
        // A good image's hook can only answer Failed by failing closed (an AWS fault past
        // retries or a dead invocation inside it: DESIGN invariant 3), or go unanswered
        // when every invocation Lambda made of it died (the dead-letter queue's alarm
        // tells a person).
        let failed_closed = w.codedeploy.iter().any(|d| {
            parse_deployment_description(&d.description)
                .is_some_and(|(id, env, _)| id == release.id && env == first)
                && d.executions
                    .iter()
                    .any(|e| e.answer == Some(shiplane::aws::HookStatus::Failed) || e.dead_lettered)
        });
        let failed_by_aws = failed_by_aws || failed_closed;
        // An alarm of a late-alarming release before it, which fired while this one was
        // in flight, rolled this one back: an alarm cannot say whose it is, and the newer
        // release goes first. It is for a person to retry.
        let late_before = w
            .images
            .iter()
            .any(|i| i.service == service.name && i.bad == Bad::LateAlarm && i.seq < newest.seq);
        let rolled_by_alarm = history.get(&release.id).is_some_and(|h| {
            h.iter()
                .any(|t| t.environment == first && t.cause == Cause::AlarmFired)
        });
        let failed_by_aws = failed_by_aws
            || (late_before && rolled_by_alarm)
            || waits_for_a_person(&service.name, &first);
        let current = lanes
            .get(&LaneKey::new(&service.name, &first))
            .and_then(|l| l.current.clone());
        if !touched && !failed_by_aws && current.as_ref() != Some(&release.id) {
            out.push(v(
                "order",
                format!(
                    "{}/{first}: the newest push {} is {}; {} runs",
                    service.name,
                    release.label(),
                    release
                        .state_in(&first)
                        .map_or("nowhere".into(), |s| s.to_string()),
                    label(&current)
                ),
            ));
        }
    }

    // 6. hooks: every hook execution an invocation finished was answered in time.
    for d in &w.codedeploy {
        for e in &d.executions {
            if e.answer.is_none() && e.completed > 0 {
                out.push(v(
                    "hooks",
                    format!(
                        "{} {} ran to its end {} time(s) and was never answered",
                        d.id, e.id, e.completed
                    ),
                ));
            }
        }
        if d.status == CdStatus::Failed && d.reason.contains("not answered") {
            let ran = d.executions.iter().any(|e| e.completed > 0);
            if ran {
                out.push(v("hooks", format!("{}: {}", d.id, d.reason)));
            }
        }
    }

    // 8. restarted: every success the lanes keep (current, last known good) restarted
    //    each service its stage `restarts`: that service's ECS service made a deployment
    //    at or after the success (a restart, or a release of its own), and the release's
    //    history records it (the dependent's too); none is owed once the world is quiet.
    for (key, l) in &lanes {
        let Some(stage_config) = rig
            .pipeline
            .services
            .get(&key.service)
            .and_then(|s| s.stage(&key.environment))
        else {
            continue;
        };
        let kept = [&l.current, &l.last_known_good];
        for r in kept.into_iter().flatten().filter_map(|id| releases.get(id)) {
            let Some(stage) = r.stages.get(&key.environment) else {
                continue;
            };
            let Some(succeeded) = stage
                .succeeded_at
                .filter(|_| stage.state() == StageState::Succeeded)
            else {
                continue;
            };
            if !stage.restarts().is_empty() {
                out.push(v(
                    "restarted",
                    format!(
                        "{key}: {} still owes restarts of {:?}",
                        r.label(),
                        stage.restarts()
                    ),
                ));
            }
            for dependent in &stage_config.restarts {
                let ecs = w.lane(dependent, &key.environment).map(|s| s.ecs.clone());
                let restarted = ecs
                    .and_then(|ecs| w.services.get(&ecs))
                    .is_some_and(|s| s.deployments.iter().any(|d| d.created >= succeeded));
                let recorded = history.get(&r.id).is_some_and(|h| {
                    h.iter().any(|t| {
                        t.environment == key.environment
                            && t.cause == Cause::Restarted
                            && t.detail
                                .as_deref()
                                .is_some_and(|d| d.starts_with(dependent.as_str()))
                    })
                });
                let in_its_history = lanes
                    .get(&LaneKey::new(dependent, &key.environment))
                    .and_then(|d| d.restarted.as_ref())
                    .is_some_and(|x| x.by == key.service);
                if !restarted || !recorded || !in_its_history {
                    out.push(v(
                        "restarted",
                        format!(
                            "{key}: {} succeeded at {}, and {dependent} was restarted: {restarted}, recorded on the release: {recorded}, in {dependent}'s lane: {in_its_history}",
                            r.label(),
                            succeeded.0 - crate::EPOCH_MS
                        ),
                    ));
                }
            }
        }
    }

    // 9. kept: a clean-up (`keep`) never deregistered a revision of the attempt of a
    //    release its lane runs, last knew good, may roll back to, is deploying or holds
    //    queued.
    for (key, l) in &lanes {
        let kept = [
            &l.current,
            &l.last_known_good,
            &l.previous_good,
            &l.in_flight,
            &l.queued,
        ];
        for id in kept.into_iter().flatten() {
            // Its current attempt's revisions (an earlier attempt's are no one's to keep).
            let Some(attempt) = releases
                .get(id)
                .and_then(|r| r.stages.get(&key.environment))
                .map(|s| s.attempt)
            else {
                continue;
            };
            // A revision a failed data-job run withdrew is its own undoing, not a clean-up's.
            for r in w.revisions.iter().filter(|r| {
                !r.active
                    && !w.withdrawn.contains(&r.arn)
                    && r.attempt == attempt
                    && r.release.as_deref() == Some(id.as_str())
                    && r.environment.as_deref() == Some(key.environment.as_str())
            }) {
                out.push(v(
                    "kept",
                    format!(
                        "{key}: {} of {} was deregistered",
                        r.arn,
                        label(&Some(id.clone()))
                    ),
                ));
            }
        }
    }

    // 7. history: each release's history ends where the release is.
    for r in releases.values() {
        let h = history.get(&r.id).map(Vec::as_slice).unwrap_or_default();
        for (env, stage) in &r.stages {
            let last = h
                .iter()
                .rfind(|t| &t.environment == env && t.to.is_some())
                .and_then(|t| t.to);
            if last != Some(stage.state()) {
                let steps: Vec<String> = h
                    .iter()
                    .filter(|t| &t.environment == env)
                    .map(|t| {
                        format!(
                            "{} {:?}->{:?} {}",
                            t.at.0 - crate::EPOCH_MS,
                            t.from,
                            t.to,
                            t.cause
                        )
                    })
                    .collect();
                out.push(v(
                    "history",
                    format!(
                        "{} {} in {env} is {} but its history ends at {:?} ({})",
                        r.service,
                        r.label(),
                        stage.state(),
                        last,
                        steps.join("; ")
                    ),
                ));
            }
        }
    }
    which_pushes_go_where(rig, &w, &releases, &history, &mut out);
    data_job_triggers(rig, &w, &lanes, &mut out);
    stopped_first(&w, &lanes, &history, &mut out);
    schema_kept(&w, &releases, &history, &mut out);
    out
}

/// 11. schema kept: once a `stop-first` migration completed (its task exited 0), no
///     release pushed before its own is deployed on the service it migrated until another
///     such migration completes there: such a release was built for the schema before (a
///     restore, a rollback by default, a start again), unless a person asked for it there
///     afterwards (a retry).
fn schema_kept(
    w: &crate::world::World,
    releases: &BTreeMap<ReleaseId, Release>,
    history: &BTreeMap<ReleaseId, Vec<Transition>>,
    out: &mut Vec<Violation>,
) {
    // Pushed before: ids minted in the same millisecond do not order pushes.
    let before = |a: &ReleaseId, b: &ReleaseId| match (releases.get(a), releases.get(b)) {
        (Some(a), Some(b)) => {
            a.id != b.id && pushed_before((a.pushed_at, &a.digest), (b.pushed_at, &b.digest))
        }
        _ => false,
    };
    let migrations: Vec<(&crate::world::Task, ReleaseId, String, Timestamp)> = w
        .tasks
        .iter()
        .filter(|t| t.stop_first && t.exit == Some(0))
        .filter_map(|t| {
            let (migrated, env, _) = parse_started_by(&t.started_by)?;
            Some((t, migrated, env, t.exited?))
        })
        .collect();
    for (ecs, svc) in &w.services {
        // A restart deploys the revision the service already names, which a deployment
        // seen here put there, or which it ran before the stop (the start again after a
        // migration that failed; the world's ECS, as the adapter, refuses it once the
        // migration completed).
        for d in svc.deployments.iter().filter(|d| !d.restart) {
            // The schema then: the last stop-first migration of this service to complete.
            let Some((t, migrated, env, exited)) = migrations
                .iter()
                .filter(|(t, _, _, exited)| t.ecs == *ecs && *exited <= d.created)
                .max_by_key(|(_, _, _, exited)| *exited)
            else {
                continue;
            };
            let Some(older) = w
                .revision(&d.task_definition)
                .and_then(|r| r.release.as_deref())
                .and_then(|id| ReleaseId::parse(id).ok())
                .filter(|id| before(id, migrated))
            else {
                continue;
            };
            // A person's own new attempt at that release there, after the migration.
            let asked = history.get(&older).is_some_and(|h| {
                h.iter()
                    .any(|x| x.environment == *env && x.at >= *exited && x.cause == Cause::Retried)
            });
            if !asked {
                out.push(v(
                    "schema kept",
                    format!(
                        "{ecs}: deployment {} of release {older} ({}), made after release {migrated}'s stop-first migration {} completed",
                        d.id, d.task_definition, t.arn
                    ),
                ));
            }
        }
    }
}

/// Whether the lane's last outage ended with Shiplane saying it could not start the service
/// again (`app_start_failed`, an alert): a person's to act on.
fn left_down(history: &BTreeMap<ReleaseId, Vec<Transition>>, service: &str, env: &str) -> bool {
    history
        .values()
        .flatten()
        .filter(|t| t.service == service && t.environment == env)
        .filter(|t| {
            matches!(
                t.cause,
                Cause::AppStopped | Cause::AppStarted | Cause::AppStartFailed
            )
        })
        .max_by_key(|t| t.at)
        .is_some_and(|t| t.cause == Cause::AppStartFailed)
}

/// 10. stopped first: a `stop-first` migration never ran while a task of the service it
///     migrates still ran, every service stopped for one serves again once the world is
///     quiet, and each outage is in the history at both ends (stopped, started again).
fn stopped_first(
    w: &crate::world::World,
    lanes: &BTreeMap<LaneKey, Lane>,
    history: &BTreeMap<ReleaseId, Vec<Transition>>,
    out: &mut Vec<Violation>,
) {
    // A task whose RunTask was still in flight when the stage ended (an operator's
    // rollback or cancel brought the service back up meanwhile) is never recorded as
    // started: Shiplane does not stop such a late migration (RELIABILITY.md says so).
    let recorded = |arn: &str, started_by: &str| {
        parse_started_by(started_by).is_some_and(|(id, env, _)| {
            history.get(&id).is_some_and(|h| {
                h.iter().any(|t| {
                    t.environment == env
                        && t.cause == Cause::MigrationStarted
                        && t.detail.as_deref() == Some(arn)
                })
            })
        })
    };
    let ran_beside = w
        .tasks
        .iter()
        .filter(|t| t.stop_first && t.beside_running && recorded(&t.arn, &t.started_by));
    let task_of = |arn: &str| w.tasks.iter().find(|t| t.arn == arn);
    let recorded_beside = w
        .started_beside
        .iter()
        .filter(|arn| task_of(arn).is_some_and(|t| recorded(&t.arn, &t.started_by)));
    for arn in recorded_beside {
        out.push(v(
            "stopped first",
            format!("the service was brought back up while migration task {arn} still ran"),
        ));
    }
    for t in ran_beside {
        out.push(v(
            "stopped first",
            format!(
                "migration task {} ({}) ran while the service it migrates still ran tasks",
                t.arn, t.started_by
            ),
        ));
    }
    for spec in w.lanes.iter().filter(|l| l.stop_first) {
        let key = LaneKey::new(&spec.service, &spec.environment);
        if let Some(down) = lanes.get(&key).and_then(|l| l.down.as_ref()) {
            out.push(v(
                "stopped first",
                format!(
                    "{}/{}: the lane still records the service as stopped by {}",
                    spec.service, spec.environment, down.release
                ),
            ));
        }
        // Left at zero is a person's to fix only when Shiplane said so (an alert: the
        // migration completed and nothing brought the service up after it).
        let excused = left_down(history, &spec.service, &spec.environment);
        if !excused
            && w.services
                .get(&spec.ecs)
                .is_some_and(|s| s.at_zero.is_some())
        {
            out.push(v(
                "stopped first",
                format!("{}: left at zero tasks once the world went quiet", spec.ecs),
            ));
        }
        let of_lane = |c: Cause| {
            history
                .values()
                .flatten()
                .filter(|t| {
                    t.cause == c && t.service == spec.service && t.environment == spec.environment
                })
                .count()
        };
        let (stopped, started) = (of_lane(Cause::AppStopped), of_lane(Cause::AppStarted));
        let failed = of_lane(Cause::AppStartFailed);
        if stopped > started + failed {
            out.push(v(
                "stopped first",
                format!(
                    "{}/{}: {stopped} outages began in the history, {} ended",
                    spec.service,
                    spec.environment,
                    started + failed
                ),
            ));
        }
    }
}

/// 9. data jobs: once a data-job stage has settled, every trigger in its cluster pinned to
///    a revision of one of its families names a revision of the release the lane records
///    as current, by the revision's tags in the world (all families and triggers moved
///    together, or all put back).
fn data_job_triggers(
    rig: &Rig,
    w: &crate::world::World,
    lanes: &BTreeMap<LaneKey, Lane>,
    out: &mut Vec<Violation>,
) {
    use shiplane::pipeline::Target;
    for service in rig.pipeline.services.values() {
        for stage in &service.stages {
            let Target::Task { families, cluster } = &stage.target else {
                continue;
            };
            let key = LaneKey::new(&service.name, &stage.environment);
            let current = lanes.get(&key).and_then(|l| l.current.clone());
            for t in &w.triggers {
                let in_cluster = cluster
                    .as_deref()
                    .is_none_or(|c| t.cluster.ends_with(&format!(":cluster/{c}")));
                let pinned = t
                    .task_definition
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.rsplit_once(':'));
                let Some((family, _)) =
                    pinned.filter(|(f, _)| in_cluster && families.iter().any(|x| x == f))
                else {
                    continue;
                };
                let names = w
                    .revision(&t.task_definition)
                    .and_then(|r| r.release.as_deref())
                    .and_then(|id| ReleaseId::parse(id).ok());
                if names != current {
                    out.push(v(
                        "data-job triggers",
                        format!(
                            "{}/{}: {} names {} ({family}, of {}); the lane's current is {}",
                            service.name,
                            stage.environment,
                            t.id,
                            t.task_definition,
                            names.map_or_else(|| "no release".into(), |id| id.to_string()),
                            current
                                .as_ref()
                                .map_or_else(|| "none".into(), ToString::to_string),
                        ),
                    ));
                }
            }
        }
    }
}

/// 8. which pushes go where: an image reaches an environment only through environments
///    that all accept its tag, in promotion order, by what AWS holds (revisions registered,
///    CodeDeploy deployments, migration tasks) and by Shiplane's records; one that stopped
///    short says why, in the last environment it reached, and nowhere else.
fn which_pushes_go_where(
    rig: &Rig,
    w: &crate::world::World,
    releases: &BTreeMap<ReleaseId, Release>,
    history: &BTreeMap<ReleaseId, Vec<Transition>>,
    out: &mut Vec<Violation>,
) {
    // The environments an image of `service` tagged `tag` may reach, in order.
    let reach = |service: &str, tag: &str| -> Vec<String> {
        rig.pipeline
            .services
            .get(service)
            .map_or_else(Vec::new, |s| {
                s.stages
                    .iter()
                    .take_while(|st| st.tags.accepts(tag))
                    .map(|st| st.environment.clone())
                    .collect()
            })
    };
    // The world's own tag of a release's image: what was pushed, not what Shiplane recorded.
    let allowed = |id: &ReleaseId, env: &str| {
        let Some(r) = releases.get(id) else {
            return true; // "truth" reports effects no release accounts for
        };
        w.image(&r.digest)
            .is_none_or(|i| reach(&i.service, &i.tag).iter().any(|e| e == env))
    };
    let mut found = Vec::new();
    let mut beyond = |what: String, id: &ReleaseId, env: &str| {
        if !allowed(id, env) {
            let tag = releases.get(id).map(Release::label).unwrap_or_default();
            found.push(v(
                "which pushes go where",
                format!("{what} of {tag} ({id}) in {env}, which does not accept its tag"),
            ));
        }
    };
    for r in &w.revisions {
        if let (Some(id), Some(env)) = (&r.release, &r.environment)
            && let Ok(id) = ReleaseId::parse(id)
        {
            beyond(format!("revision {}", r.arn), &id, env);
        }
    }
    for d in &w.codedeploy {
        if let Some((id, env, _)) = parse_deployment_description(&d.description) {
            beyond(format!("CodeDeploy deployment {}", d.id), &id, &env);
        }
    }
    for t in &w.tasks {
        if let Some((id, env, _)) = parse_started_by(&t.started_by) {
            beyond(format!("migration task {}", t.arn), &id, &env);
        }
    }
    for r in releases.values() {
        for env in r.stages.keys() {
            beyond("a stage".into(), &r.id, env);
        }
    }
    out.append(&mut found);
    for r in releases.values() {
        let Some(image) = w.image(&r.digest) else {
            continue;
        };
        let reach = reach(&r.service, &image.tag);
        let stages = rig
            .pipeline
            .services
            .get(&r.service)
            .map_or(0, |s| s.stages.len());
        let h = history.get(&r.id).map(Vec::as_slice).unwrap_or_default();
        let told: Vec<&str> = h
            .iter()
            .filter(|t| t.cause == Cause::NotPromoted)
            .map(|t| t.environment.as_str())
            .collect();
        let stops_in = reach.last().filter(|_| reach.len() < stages);
        let succeeded_there = stops_in
            .and_then(|env| r.stages.get(env))
            .is_some_and(|s| s.succeeded_at.is_some());
        let wrong = told
            .iter()
            .any(|env| Some(*env) != stops_in.map(String::as_str));
        if wrong || (succeeded_there && told.is_empty()) {
            out.push(v(
                "which pushes go where",
                format!(
                    "{} {}: stops in {stops_in:?}, succeeded there: {succeeded_there}; not_promoted recorded in {told:?}",
                    r.service,
                    r.label()
                ),
            ));
        }
    }
}
