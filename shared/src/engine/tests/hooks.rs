//! CodeDeploy lifecycle hooks: checks run once and reported once, restores and rollbacks
//! never held back, and retries after an attempt that died.

use super::doubles::{Down, Interleaved};
use super::*;
use crate::aws::HookStatus;
use crate::aws::fake::FakeHooks;
use crate::checks::{CheckResult, ScriptedChecker};
use crate::engine::HookInvocation;
use crate::pipeline::LifecycleHook;
use crate::store::Commit;
use tokio::time::Instant;

/// The base pipeline whose api dev stage has checks: two HTTP ones after test traffic is
/// allowed, and the alarms before traffic is.
fn checked() -> PipelineFile {
    PipelineFile::base().stage("api", "dev", |s| {
        s.http_check(
            "health",
            LifecycleHook::AfterAllowTestTraffic,
            "http://test.internal/health",
        )
        .http_check(
            "orders",
            LifecycleHook::AfterAllowTestTraffic,
            "http://test.internal/orders",
        )
        .alarms_check("no-alarms", LifecycleHook::BeforeAllowTraffic)
    })
}

/// A world whose api dev stage has checks, with one release deploying (`d-1`).
async fn deploying() -> (World, ReleaseId) {
    let w = World::with(checked()).await;
    let id = w.pushed("shiplane/api", 1, "v1.0.0").await;
    (w, id)
}

fn invocation(hook: LifecycleHook, execution: &str) -> HookInvocation {
    HookInvocation {
        deployment_id: "d-1".into(),
        execution_id: execution.into(),
        hook: Some(hook),
    }
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Hooks whose deployment `d-rb` is CodeDeploy's own rollback of `d-1`, as its
/// description tells.
fn rollback_hooks() -> FakeHooks {
    let hooks = FakeHooks::default();
    hooks
        .origins
        .lock()
        .unwrap()
        .insert("d-rb".into(), crate::aws::Origin::RollbackOf("d-1".into()));
    hooks
}

/// A commit of the claim `key` = `value` alone, made at T0 for an hour: how a hook
/// execution's attempt and its answer are recorded.
fn hook_claim(key: String, value: String) -> Commit {
    Commit {
        claim: Some(Claim {
            key,
            value,
            at: T0,
            expires: T0.after(Duration::from_secs(3600)),
        }),
        ..Commit::default()
    }
}

/// What an attempt at `deployment`'s hook execution `execution` leaves before running its
/// checks: "running, answers by `by`".
fn attempt(deployment: &str, execution: &str, by: Timestamp) -> Commit {
    let key = format!("hook#{deployment}#{execution}#attempt");
    hook_claim(key, by.0.to_string())
}

/// [`attempt`] of one that died: it was to answer 15 minutes after T0.
fn died_attempt(deployment: &str, execution: &str) -> Commit {
    attempt(deployment, execution, T0.after(Duration::from_secs(900)))
}

/// With the store unreachable a hook fails closed, unless CodeDeploy's description
/// says its deployment restores the last known good, which is never held back
/// (simulation seed 18424: three restore tries failed closed while the store was
/// throttled, and the bad release went on serving).
#[tokio::test]
async fn a_restores_hook_is_answered_succeeded_when_the_store_is_down() {
    let w = World::new().await;
    let engine = Engine::new(&Down, &w.deployer, &w.notifier, &w.timer);
    let id = ReleaseId::new(T0);
    let hooks = FakeHooks::default();
    for (deployment, restore) in [("d-restore", true), ("d-new", false)] {
        hooks.origins.lock().unwrap().insert(
            deployment.into(),
            crate::aws::Origin::Release {
                release: id.clone(),
                environment: "dev".into(),
                attempt: 0,
                task_definition: None,
                restore,
            },
        );
        let inv = HookInvocation {
            deployment_id: deployment.into(),
            ..invocation(LifecycleHook::AfterAllowTestTraffic, deployment)
        };
        let answer = engine
            .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
            .await;
        let expected = if restore {
            HookStatus::Succeeded
        } else {
            HookStatus::Failed
        };
        assert_eq!(answer.status, expected, "{deployment}");
    }
    // CodeDeploy's own rollback deployment neither (simulation, once the world made
    // them: a rollback failed closed while the store was throttled, and 10 % of
    // production traffic stayed on the bad version).
    hooks.origins.lock().unwrap().insert(
        "d-rollback".into(),
        crate::aws::Origin::RollbackOf("d-new".into()),
    );
    let inv = HookInvocation {
        deployment_id: "d-rollback".into(),
        ..invocation(LifecycleHook::BeforeAllowTraffic, "d-rollback")
    };
    let answer = engine
        .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
        .await;
    assert_eq!(answer.status, HookStatus::Succeeded);
}

/// A restore of the last known good is never held back by its hooks: no checks run,
/// and an earlier attempt that died is not waited for (found by the simulation: a
/// restore failed closed after its first hook invocation died, and the bad release it
/// was to replace kept serving).
#[tokio::test]
async fn a_restore_of_the_last_known_good_is_answered_succeeded_without_checks() {
    let (w, v1) = deploying().await;
    let e = w.engine();
    let pipeline = e.pipeline().await.unwrap();
    w.succeed_in_dev(&v1).await;
    let v2 = w.pushed("shiplane/api", 2, "v1.0.1").await;
    e.on_event(&pipeline, "api", "dev", &v2, Event::DeploymentSucceeded, T0)
        .await
        .unwrap();
    let alarm = Event::AlarmFired {
        alarm: "api-dev-5xx".into(),
    };
    e.on_event(&pipeline, "api", "dev", &v2, alarm, T0)
        .await
        .unwrap();
    let stage = w.store.release(&v1).await.unwrap().unwrap().item.stages["dev"].clone();
    assert!(stage.redeploy && stage.state() == StageState::Deploying);
    let restoring = stage.deployment_id.unwrap();
    assert!(
        w.store
            .deployment(&restoring)
            .await
            .unwrap()
            .unwrap()
            .restore
    );

    let checker = ScriptedChecker::default();
    checker.results.lock().unwrap().insert(
        "health".into(),
        CheckResult::failed(Duration::from_millis(5), "HTTP 500"),
    );
    let hooks = FakeHooks::default();
    // An earlier invocation of the same hook execution claimed it and died.
    w.store
        .commit(died_attempt(&restoring, "e-1"))
        .await
        .unwrap();
    let inv = HookInvocation {
        deployment_id: restoring.clone(),
        ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-1")
    };
    let answer = e.on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(answer.status, HookStatus::Succeeded, "{:?}", answer.reason);
    assert!(
        checker.ran.lock().unwrap().is_empty(),
        "no checks for a restore"
    );
    assert_eq!(w.state(&v1, "dev").await, Some(StageState::Validating));
}

#[tokio::test]
async fn passing_checks_report_succeeded_once_and_are_recorded() {
    let (w, id) = deploying().await;
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
    let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(
        (answer.status, answer.reported.clone()),
        (HookStatus::Succeeded, Ok(()))
    );
    assert_eq!(answer.release, Some(id.clone()));
    assert_eq!(
        hooks.reports(),
        [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
    );
    assert_eq!(
        *checker.ran.lock().unwrap(),
        ["health", "orders"],
        "only this hook's checks"
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Validating));
    let history = w.store.history_of_release(&id).await.unwrap();
    let causes = history_causes(&history);
    assert!(
        causes.ends_with(&[
            "validation_started",
            "check_passed",
            "check_passed",
            "hook_succeeded"
        ]),
        "{causes:?}"
    );
    let health = history
        .iter()
        .find(|t| t.cause == Cause::CheckPassed)
        .unwrap();
    assert!(
        health
            .detail
            .as_deref()
            .unwrap()
            .starts_with("health: passed in 1 ms"),
        "{health:?}"
    );

    // CodeDeploy (or Lambda's retry) invokes the same hook execution again.
    let again = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(again.status, HookStatus::Succeeded);
    assert_eq!(hooks.reports().len(), 1, "one report");
    assert_eq!(checker.ran.lock().unwrap().len(), 2, "no check runs twice");
    let after = w.store.history_of_release(&id).await.unwrap();
    assert_eq!(after.len(), history.len(), "one history entry");
}

#[tokio::test]
async fn a_failing_check_reports_failed_with_the_reason_recorded_and_announced() {
    let (w, id) = deploying().await;
    let checker = ScriptedChecker::default();
    checker.results.lock().unwrap().insert(
        "health".into(),
        CheckResult::failed(
            Duration::from_millis(40),
            "status 503, expected 200: upstream down",
        ),
    );
    let hooks = FakeHooks::default();
    let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
    let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(answer.status, HookStatus::Failed);
    assert!(
        answer
            .reason
            .as_deref()
            .unwrap()
            .contains("health: failed in 40 ms: status 503")
    );
    assert_eq!(hooks.reports()[0].2, HookStatus::Failed);
    assert_eq!(
        *checker.ran.lock().unwrap(),
        ["health"],
        "the first failure decides"
    );
    let history = w.store.history_of_release(&id).await.unwrap();
    let failed = history
        .iter()
        .find(|t| t.cause == Cause::HookFailed)
        .unwrap();
    assert!(failed.detail.as_deref().unwrap().contains("upstream down"));
    let sent = w.notifier.sent.lock().unwrap().clone();
    let note = sent
        .iter()
        .find(|n| n.kind.as_str() == "hook_failed")
        .expect("announced");
    assert!(
        note.body["detail"].as_str().unwrap().contains("health"),
        "{note:?}"
    );
}

#[tokio::test]
async fn a_topic_that_never_answers_delays_no_hook_answer() {
    let (mut w, id) = deploying().await;
    w.notifier = RecordingNotifier {
        hang: true,
        ..RecordingNotifier::default()
    };
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
    // Less time for the checks (deadline less REPORT_RESERVE) than SNS may take: the
    // answer must not wait for the announcement.
    let deadline = Instant::now() + REPORT_RESERVE + NOTIFY_BUDGET - Duration::from_secs(1);
    let answer = w
        .engine()
        .on_hook(&checker, &hooks, &inv, deadline, T0)
        .await;
    assert!(Instant::now() <= deadline, "answered in time");
    assert_eq!(
        (answer.status, answer.reason, answer.reported),
        (HookStatus::Succeeded, None, Ok(()))
    );
    assert_eq!(
        hooks.reports(),
        [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
    );
    let causes = history_causes(&w.store.history_of_release(&id).await.unwrap());
    assert_eq!(causes.last(), Some(&"hook_succeeded"));
}

#[tokio::test]
async fn a_check_that_never_answers_is_failed_and_reported_before_the_deadline() {
    let (w, _) = deploying().await;
    let checker = ScriptedChecker::default();
    checker.hang.lock().unwrap().push("no-alarms".into());
    let hooks = FakeHooks::default();
    let inv = invocation(LifecycleHook::BeforeAllowTraffic, "e-2");
    // A short-lived invocation: 4 s left, 3 of them kept to report.
    let deadline = Instant::now() + Duration::from_secs(4);
    let answer = w
        .engine()
        .on_hook(&checker, &hooks, &inv, deadline, T0)
        .await;
    assert!(Instant::now() < deadline, "answered in time");
    assert_eq!(answer.status, HookStatus::Failed);
    assert!(
        answer
            .reason
            .as_deref()
            .unwrap()
            .contains("no result within"),
        "{answer:?}"
    );
    assert_eq!(hooks.reports().len(), 1);
}

#[tokio::test]
async fn a_hook_for_a_deployment_shiplane_did_not_start_fails_with_an_alert_and_changes_nothing() {
    let (w, id) = deploying().await;
    let before = w.store.history_of_release(&id).await.unwrap().len();
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    let inv = HookInvocation {
        deployment_id: "d-SOMEONE".into(),
        ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-9")
    };
    let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(answer.status, HookStatus::Failed);
    assert_eq!(hooks.reports()[0].2, HookStatus::Failed);
    assert!(checker.ran.lock().unwrap().is_empty());
    assert!(w.notifier.kinds().contains(&"alert".to_string()));
    assert_eq!(w.store.history_of_release(&id).await.unwrap().len(), before);
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Deploying));
}

#[tokio::test]
async fn a_hook_of_codedeploys_rollback_of_a_shiplane_deployment_succeeds_without_checks() {
    let (w, id) = deploying().await;
    w.deployer
        .rollbacks
        .lock()
        .unwrap()
        .insert("d-rb".into(), "d-1".into());
    let (checker, hooks) = (ScriptedChecker::default(), rollback_hooks());
    // GetDeployment throttled twice: asked again, not failed closed (simulation: a
    // rollback failed that way, and 10 % of production traffic stayed on the bad
    // version).
    *hooks.origin_failures.lock().unwrap() = 2;
    *checker.hang.lock().unwrap() = vec!["health".into()];
    let inv = HookInvocation {
        deployment_id: "d-rb".into(),
        ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-rb")
    };
    let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(answer.status, HookStatus::Succeeded);
    assert_eq!(answer.release, Some(id.clone()));
    let again = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(again.status, HookStatus::Succeeded);
    assert_eq!(
        hooks.reports(),
        [("d-rb".into(), "e-rb".into(), HookStatus::Succeeded)]
    );
    assert!(
        checker.ran.lock().unwrap().is_empty(),
        "a rollback runs no checks"
    );
    let history = w.store.history_of_release(&id).await.unwrap();
    let recorded: Vec<_> = history
        .iter()
        .filter(|t| t.cause == Cause::CodeDeployRollback)
        .collect();
    assert_eq!(recorded.len(), 1, "once, however often CodeDeploy invokes");
    assert!(
        recorded[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("never held back")
    );
    assert!(!w.notifier.kinds().contains(&"alert".to_string()));
}

/// An attempt at a hook of CodeDeploy's rollback that died is not waited for, and the
/// rollback not failed closed after it (simulation: 10 % of production traffic stayed
/// on the bad version when a rollback's first hook invocation died).
#[tokio::test]
async fn a_rollbacks_hook_is_answered_succeeded_after_an_earlier_attempt_died() {
    let (w, _) = deploying().await;
    w.deployer
        .rollbacks
        .lock()
        .unwrap()
        .insert("d-rb".into(), "d-1".into());
    let hooks = rollback_hooks();
    w.store.commit(died_attempt("d-rb", "e-rb")).await.unwrap();
    let inv = HookInvocation {
        deployment_id: "d-rb".into(),
        ..invocation(LifecycleHook::BeforeAllowTraffic, "e-rb")
    };
    let answer = w
        .engine()
        .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
        .await;
    assert_eq!(answer.status, HookStatus::Succeeded, "{:?}", answer.reason);
}

/// Neither is a rollback's hook failed closed when the store cannot read a deployment's
/// reference: the rolled-back deployment's (simulation seed 778), or, on a retry after
/// an attempt that died, the rollback's own (seeds 25568, 43744, 70860).
#[tokio::test]
async fn a_rollbacks_hook_is_answered_succeeded_when_a_reference_cannot_be_read() {
    for (unreadable, died) in [("d-1", false), ("d-rb", true)] {
        let (w, _) = deploying().await;
        let hooks = rollback_hooks();
        let store = Interleaved {
            inner: w.store,
            first: std::sync::Mutex::new(None),
            unreadable: Some(unreadable.into()),
        };
        if died {
            store.commit(died_attempt("d-rb", "e-rb")).await.unwrap();
        }
        let e = Engine::new(&store, &w.deployer, &w.notifier, &w.timer);
        let inv = HookInvocation {
            deployment_id: "d-rb".into(),
            ..invocation(LifecycleHook::BeforeAllowTraffic, "e-rb")
        };
        let answer = e
            .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
            .await;
        assert_eq!(
            answer.status,
            HookStatus::Succeeded,
            "{unreadable}: {:?}",
            answer.reason
        );
    }
}

#[tokio::test]
async fn a_throttled_report_is_retried_and_counts_once() {
    let (w, _) = deploying().await;
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    *hooks.throttle_next.lock().unwrap() = 2;
    let inv = invocation(LifecycleHook::AfterAllowTestTraffic, "e-1");
    let answer = w.engine().on_hook(&checker, &hooks, &inv, soon(), T0).await;
    assert_eq!(answer.reported, Ok(()));
    assert_eq!(*hooks.attempts.lock().unwrap(), 3);
    assert_eq!(
        hooks.reports(),
        [("d-1".into(), "e-1".into(), HookStatus::Succeeded)]
    );
}

#[tokio::test]
async fn a_hook_whose_deployment_reference_was_never_written_finds_its_release_by_description() {
    let w = World::with(checked()).await;
    // The arrival committed; CreateDeployment ran; the function died before recording it.
    let p = push("shiplane/api", 1, "v1.0.0");
    commit_arrival(&w, &p).await;
    let id = release_of(&w, &p).await;
    let hooks = FakeHooks::default();
    hooks.origins.lock().unwrap().insert(
        "d-LOST".into(),
        crate::aws::Origin::Release {
            release: id.clone(),
            environment: "dev".into(),
            attempt: 0,
            task_definition: Some("td:LOST".into()),
            restore: false,
        },
    );
    let inv = HookInvocation {
        deployment_id: "d-LOST".into(),
        ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-1")
    };
    let answer = w
        .engine()
        .on_hook(&ScriptedChecker::default(), &hooks, &inv, soon(), T0)
        .await;
    assert_eq!(
        (answer.status, answer.release),
        (HookStatus::Succeeded, Some(id.clone()))
    );
    assert_eq!(w.state(&id, "dev").await, Some(StageState::Validating));
    // The deployment is the stage's from now on (issue #22, simulation seed 5: a stage
    // validating with no deployment recorded waited for ever, and the deployment's
    // SUCCESS was taken for someone else's).
    let stage = w.store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone();
    assert_eq!(stage.deployment_id.as_deref(), Some("d-LOST"));
    assert_eq!(
        stage.task_definition.as_deref(),
        Some("td:LOST"),
        "the revision it deploys is recorded too, so a restore deploys it again (seed 61)"
    );
    let reference = w.store.deployment("d-LOST").await.unwrap().unwrap();
    assert_eq!(
        (reference.release, reference.environment.as_str()),
        (id.clone(), "dev")
    );
    // Without a hook alias there is no way to know which checks to run: Failed, alert.
    let unnamed = HookInvocation {
        hook: None,
        deployment_id: "d-LOST".into(),
        ..invocation(LifecycleHook::AfterAllowTestTraffic, "e-2")
    };
    let answer = w
        .engine()
        .on_hook(&ScriptedChecker::default(), &hooks, &unnamed, soon(), T0)
        .await;
    assert_eq!(answer.status, HookStatus::Failed);
    let why = answer.reason.unwrap();
    assert!(why.contains("without a hook alias"), "{why}");
}

/// What an attempt at `d-1`'s hook execution `e-1` leaves before running its checks.
async fn earlier_attempt(w: &World, by: Timestamp) {
    w.store.commit(attempt("d-1", "e-1", by)).await.unwrap();
}

#[tokio::test]
async fn a_retry_after_an_attempt_that_died_mid_check_fails_closed_without_running_the_checks() {
    let w = World::new().await;
    w.pushed("shiplane/api", 1, "v1.0.0").await;
    // The earlier attempt should have answered a minute ago; it never did (a panic
    // aborted it, or Lambda's timeout killed it).
    earlier_attempt(&w, Timestamp(T0.0 - 60_000)).await;
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = w
        .engine()
        .on_hook(
            &checker,
            &hooks,
            &invocation(LifecycleHook::AfterAllowTestTraffic, "e-1"),
            deadline,
            T0,
        )
        .await;
    assert_eq!(answer.status, HookStatus::Failed);
    assert!(answer.reason.unwrap().contains("earlier attempt"));
    assert!(
        checker.ran.lock().unwrap().is_empty(),
        "the checks are not run again"
    );
    assert_eq!(hooks.reports().len(), 1, "and CodeDeploy has its answer");
}

#[tokio::test]
async fn a_duplicate_while_the_first_attempt_runs_answers_what_the_first_records() {
    let w = World::new().await;
    w.pushed("shiplane/api", 1, "v1.0.0").await;
    earlier_attempt(&w, T0.after(Duration::from_secs(30))).await;
    let (checker, hooks) = (ScriptedChecker::default(), FakeHooks::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let first_records = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let answered = hook_claim("hook#d-1#e-1".into(), "Succeeded".into());
        w.store.commit(answered).await.unwrap();
    };
    let (engine, inv) = (
        w.engine(),
        invocation(LifecycleHook::AfterAllowTestTraffic, "e-1"),
    );
    let (answer, ()) = tokio::join!(
        engine.on_hook(&checker, &hooks, &inv, deadline, T0),
        first_records
    );
    assert_eq!(answer.status, HookStatus::Succeeded);
    assert!(
        checker.ran.lock().unwrap().is_empty(),
        "the duplicate ran nothing"
    );
}
