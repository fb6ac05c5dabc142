//! The bake timer: a one-time EventBridge Scheduler schedule that invokes the promote
//! function when a stage's bake ends.
//!
//! Facts from the Scheduler API reference (CreateSchedule, DeleteSchedule): a one-time
//! schedule is `at(yyyy-mm-ddThh:mm:ss)` with one-minute precision, in
//! `ScheduleExpressionTimezone` (UTC by default); `FlexibleTimeWindow` is required and
//! `OFF` fires at the minute; `ActionAfterCompletion = DELETE` removes the schedule once it
//! has invoked its target; a name already taken in the group answers `ConflictException`;
//! deleting a schedule that is gone answers `ResourceNotFoundException`. Names are 1-64
//! characters of `[0-9a-zA-Z-_.]`.

use std::future::Future;

use super::error::{DeployError, once};
use crate::facts::BakeTimer;
use crate::release::Timestamp;
use crate::sdk::OnFirstUse;
use aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
use aws_sdk_scheduler::operation::delete_schedule::DeleteScheduleError;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target,
};

/// The port bake timers are set and cleared through.
pub trait Timer: Send + Sync {
    /// Sets the timer to fire at `at` (rounded up to the minute): true when this call
    /// created it, false when a timer of that name was already set.
    fn set(
        &self,
        timer: &BakeTimer,
        at: Timestamp,
    ) -> impl Future<Output = Result<bool, DeployError>> + Send;

    /// Deletes the timer: true when this call deleted it, false when it was already gone
    /// (fired and deleted itself, or never set).
    fn clear(&self, timer: &BakeTimer) -> impl Future<Output = Result<bool, DeployError>> + Send;
}

/// The schedule group bake timers live in unless told otherwise: the one template.yaml
/// creates (`BakeTimerGroup`), so the CLI, the stack and the local AWS agree.
pub const DEFAULT_SCHEDULE_GROUP: &str = "shiplane-bake";

/// The production [`Timer`]: EventBridge Scheduler, one schedule per bake, in Shiplane's
/// own schedule group, invoking the promote function with a role the stack grants.
#[derive(Clone, Debug)]
pub struct SchedulerTimer {
    scheduler: OnFirstUse<aws_sdk_scheduler::Client>,
    group: String,
    target_arn: String,
    role_arn: String,
}

impl SchedulerTimer {
    /// `group` holds the schedules; `target_arn` is the promote function, invoked with
    /// `role_arn` (a role Scheduler may assume, allowed lambda:InvokeFunction on it).
    pub fn new(
        scheduler: impl Into<OnFirstUse<aws_sdk_scheduler::Client>>,
        group: impl Into<String>,
        target_arn: impl Into<String>,
        role_arn: impl Into<String>,
    ) -> SchedulerTimer {
        SchedulerTimer {
            scheduler: scheduler.into(),
            group: group.into(),
            target_arn: target_arn.into(),
            role_arn: role_arn.into(),
        }
    }
}

impl Timer for SchedulerTimer {
    async fn set(&self, timer: &BakeTimer, at: Timestamp) -> Result<bool, DeployError> {
        if self.target_arn.is_empty() || self.role_arn.is_empty() {
            // A CLI without the stack's outputs: the stored bake deadline is enough, the
            // scheduled reconciler ends the bake (and sets a lost timer) itself.
            tracing::warn!(schedule = %timer.name(), "bake timer not set: no SHIPLANE_PROMOTE_FUNCTION_ARN / SHIPLANE_SCHEDULER_ROLE_ARN; the reconciler ends the bake");
            return Ok(false);
        }
        let input = serde_json::to_string(timer).map_err(|e| DeployError {
            message: format!("bake timer payload: {e}"),
            retryable: false,
        })?;
        let name = timer.name();
        let target = Target::builder()
            .arn(&self.target_arn)
            .role_arn(&self.role_arn)
            .input(input)
            .build()
            .map_err(|e| DeployError {
                message: format!("bake timer target: {e}"),
                retryable: false,
            })?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| DeployError {
                message: format!("bake timer window: {e}"),
                retryable: false,
            })?;
        let created = self
            .scheduler
            .create_schedule()
            .name(&name)
            .group_name(&self.group)
            .schedule_expression(BakeTimer::expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .description(format!(
                "Shiplane: the bake of release {} in {}/{} ends",
                timer.release, timer.service, timer.environment
            ))
            .client_token(&name)
            .target(target)
            .send()
            .await;
        let taken =
            |e: &CreateScheduleError| matches!(e, CreateScheduleError::ConflictException(_));
        once(created, taken, "Scheduler CreateSchedule")
    }

    async fn clear(&self, timer: &BakeTimer) -> Result<bool, DeployError> {
        let deleted = self
            .scheduler
            .delete_schedule()
            .name(timer.name())
            .group_name(&self.group)
            .send()
            .await;
        let gone = |e: &DeleteScheduleError| {
            matches!(e, DeleteScheduleError::ResourceNotFoundException(_))
        };
        once(deleted, gone, "Scheduler DeleteSchedule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::ReleaseId;

    fn release() -> ReleaseId {
        ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap()
    }

    #[tokio::test]
    async fn without_a_target_nothing_is_set_and_nothing_is_called() {
        let config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let timer = SchedulerTimer::new(aws_sdk_scheduler::Client::new(&config), "g", "", "");
        let t = BakeTimer::new("api", "dev", &release(), 0);
        assert_eq!(timer.set(&t, Timestamp(0)).await, Ok(false));
    }
}
