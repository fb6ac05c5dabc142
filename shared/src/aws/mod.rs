//! Ports to the AWS services Shiplane drives, their SDK adapters, and in-memory fakes.
//!
//! Handlers and the engine are generic over [`Deployer`], [`Notifier`] and [`Timer`];
//! production wires [`AwsDeployer`], [`SnsNotifier`] and [`SchedulerTimer`], unit tests the
//! fakes in [`fake`].

mod alarms;
mod appspec;
mod deployer;
mod error;
mod hooks;
mod notifier;
mod push_clock;
mod timer;

#[cfg(any(test, feature = "testing"))]
pub mod fake;

pub use alarms::AlarmReader;
#[cfg(feature = "alarms")]
pub use alarms::CloudWatchAlarms;
pub(crate) use alarms::covering_prefixes;
pub use appspec::appspec;
#[cfg(feature = "hooks")]
pub(crate) use deployer::ecs_service;
pub use deployer::{
    AppStop, AwsDeployer, AwsTriggers, CleanUp, DeployOutcome, DeployRequest, Deployer,
    DeploymentStatus, MigrationRun, Origin, Tagged, client_token, deployment_description,
    is_restore_description, parse_deployment_description, parse_started_by, pinned_revision,
    started_by,
};
pub use deployer::{
    Move, Plan, Trigger, TriggerId, TriggerMoves, TriggerPort, move_triggers, plan, settle,
};
pub use error::DeployError;
pub use hooks::{CodeDeployHooks, HookReporter, HookStatus};
pub use notifier::{Notification, NotificationKind, Notifier, NotifyError, SnsNotifier};
#[cfg(feature = "ecr")]
pub use push_clock::EcrPushClock;
#[cfg(any(test, feature = "testing"))]
pub use push_clock::fake::FakePushClock;
pub use push_clock::{NoPushClock, PushClock};
pub use timer::{DEFAULT_SCHEDULE_GROUP, SchedulerTimer, Timer};
