//! One CodeDeploy lifecycle hook invocation: `{DeploymentId, LifecycleEventHookExecutionId}`
//! (aws_lambda_events `CodeDeployLifecycleEvent`). The payload does not say which hook it
//! is; the AppSpec names this function through an alias per hook
//! (`shiplane-deploy-hook:AfterAllowTestTraffic`), so the invoked function ARN's qualifier
//! does. The answer always goes to CodeDeploy before the invocation's deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use shiplane::aws::HookReporter;
use shiplane::checks::Checker;
use shiplane::engine::{Deps, HookInvocation, Ports};
use shiplane::lambda::HandlerError;
use shiplane::pipeline::LifecycleHook;
use shiplane::release::Timestamp;
use tracing::error;

/// The clients only this function needs.
pub struct Hooks<C, R> {
    pub checker: C,
    pub reporter: R,
}

/// The hook named by the qualifier of the invoked function ARN
/// (`arn:aws:lambda:<region>:<account>:function:<name>:<qualifier>`).
pub fn hook_of(invoked_function_arn: &str) -> Option<LifecycleHook> {
    let parts: Vec<&str> = invoked_function_arn.split(':').collect();
    match parts.as_slice() {
        [_, _, "lambda", _, _, "function", _, qualifier] => {
            LifecycleHook::from_appspec_name(qualifier)
        }
        _ => None,
    }
}

/// The invocation's deadline as a point on the monotonic clock.
fn deadline(deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    tokio::time::Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Answers one hook. Only a payload without the ids to answer is an error (CodeDeploy
/// never sends one); everything else is answered, Succeeded or Failed.
pub async fn handle<P: Ports, C: Checker, R: HookReporter>(
    deps: &Deps<P>,
    hooks: &Hooks<C, R>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError> {
    let payload: CodeDeployLifecycleEvent = serde_json::from_value(event.payload).map_err(|e| {
        error!(error = %e, "rejected: not a lifecycle hook invocation");
        HandlerError::InvalidEvent(format!("malformed CodeDeploy lifecycle hook event: {e}"))
    })?;
    let invocation = HookInvocation {
        deployment_id: payload.deployment_id,
        execution_id: payload.lifecycle_event_hook_execution_id,
        hook: hook_of(&event.context.invoked_function_arn),
    };
    let answer = deps
        .engine()
        .on_hook(
            &hooks.checker,
            &hooks.reporter,
            &invocation,
            deadline(event.context.deadline),
            Timestamp::now(),
        )
        .await;
    Ok(json!({
        "deploymentId": invocation.deployment_id,
        "hook": invocation.hook.map(LifecycleHook::appspec_name),
        "status": answer.status.as_str(),
        "reason": answer.reason,
        "release": answer.release,
        "reported": answer.reported.is_ok(),
        "reportError": answer.reported.err(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiplane::aws::fake::FakeHooks;
    use shiplane::checks::ScriptedChecker;
    use shiplane::engine::testing::{ONE_SERVICE_PIPELINE, deps_with_pipeline};

    /// The hook's ids come from the payload: a line break in them is logged escaped, in
    /// every record that names them, so it cannot forge a log line.
    #[test]
    fn ids_with_a_line_break_cannot_forge_a_log_line() {
        let forged = "\n2026-11-24T00:00:00Z  INFO shiplane: release approved by admin";
        let (reports, logs) = shiplane_e2e::logs::captured_async(async {
            let deps = deps_with_pipeline(ONE_SERVICE_PIPELINE).await;
            let hooks = Hooks {
                checker: ScriptedChecker::default(),
                reporter: FakeHooks::default(),
            };
            let payload = json!({"DeploymentId": format!("d-X{forged}"),
                "LifecycleEventHookExecutionId": format!("e-X{forged}")});
            let mut context = lambda_runtime::Context::default();
            context.invoked_function_arn =
                "arn:aws:lambda:us-east-1:1:function:shiplane-deploy-hook:AfterInstall".into();
            let out = handle(&deps, &hooks, LambdaEvent::new(payload, context))
                .await
                .unwrap();
            assert_eq!(out["status"], "Failed", "{out}");
            hooks.reporter.reports()
        });
        assert_eq!(reports.len(), 1, "answered once");
        assert!(logs.text.contains("hook failed"), "{}", logs.text);
        logs.assert_one_line_per_record("the deploy-hook");
    }

    #[test]
    fn the_hook_comes_from_the_alias_in_the_invoked_arn_and_nowhere_else() {
        let arn = |q: &str| {
            format!("arn:aws:lambda:eu-west-1:123456789012:function:shiplane-deploy-hook{q}")
        };
        assert_eq!(
            hook_of(&arn(":AfterAllowTestTraffic")),
            Some(LifecycleHook::AfterAllowTestTraffic)
        );
        assert_eq!(
            hook_of(&arn(":BeforeInstall")),
            Some(LifecycleHook::BeforeInstall)
        );
        assert_eq!(hook_of(&arn("")), None, "unqualified: no guess");
        assert_eq!(hook_of(&arn(":$LATEST")), None);
        assert_eq!(hook_of(&arn(":7")), None, "a version number names no hook");
        assert_eq!(hook_of(""), None);
    }

    shiplane_e2e::fuzz_campaign!(Fuzzed);

    struct Fuzzed;

    impl shiplane_e2e::fuzz::Target for Fuzzed {
        type Deps = (
            shiplane::engine::testing::FakeDeps,
            Hooks<ScriptedChecker, FakeHooks>,
        );
        const NAME: &'static str = "deploy-hook";
        const FAMILY: &'static [&'static str] = &["hook", "lifecycle"];
        async fn deps(&self) -> Self::Deps {
            let deps = deps_with_pipeline(&shiplane_e2e::fuzz::pipeline()).await;
            let hooks = Hooks {
                checker: ScriptedChecker::default(),
                reporter: FakeHooks::default(),
            };
            (deps, hooks)
        }
        async fn invoke(&self, deps: &Self::Deps, payload: Value) -> Result<Value, HandlerError> {
            let mut context = lambda_runtime::Context::default();
            context.invoked_function_arn =
                "arn:aws:lambda:us-east-1:1:function:shiplane-deploy-hook:AfterInstall".into();
            // The checks end 200 ms from now, less than the poll of a hook that waits for
            // an earlier attempt's verdict: a repeated execution id (the corpus repeats
            // them) fails closed at once instead of waiting out the grace.
            context.deadline = Timestamp::now().0
                + u64::try_from(shiplane::engine::REPORT_RESERVE.as_millis()).unwrap_or(0)
                + 200;
            handle(&deps.0, &deps.1, LambdaEvent::new(payload, context)).await
        }
        fn effects(&self, deps: &Self::Deps) -> shiplane_e2e::fuzz::Effects {
            let common = shiplane_e2e::fuzz::effects_of(&deps.0);
            shiplane_e2e::fuzz::Effects {
                aws_calls: common.aws_calls + deps.1.reporter.reports().len(),
                ..common
            }
        }
    }
}
