//! What actually runs: the simulated AWS's truth, which Shiplane's records are checked
//! against. Plain data; the behaviour (deployments progressing, alarms evaluating, events
//! emitted) is in [`crate::ports`].

use std::collections::BTreeMap;
use std::time::Duration;

use shiplane::aws::HookStatus;
use shiplane::engine::HookInvocation;
use shiplane::facts::AlarmChange;
use shiplane::facts::BakeTimer;
use shiplane::facts::TaskStopped;
use shiplane::inbound::codedeploy::DeploymentStateChange;
use shiplane::inbound::ecs::ServiceDeploymentEnded;
use shiplane::pipeline::LifecycleHook;
use shiplane::release::intake::ImagePush;
use shiplane::release::{AlarmState, Digest, ReleaseId, Timestamp};
use tokio::sync::mpsc::UnboundedSender;

/// How a pushed image misbehaves once it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    No,
    /// Its lane's alarm fires once it has served production traffic for a while.
    Alarm,
    /// Its lane's alarm fires only after its bake ended: it succeeds, and the stage's
    /// `watch` after the bake must roll it back.
    LateAlarm,
    /// Its lifecycle-hook check fails (blue/green); its tasks crash, so ECS's circuit
    /// breaker fails the deployment (rolling).
    Check,
    /// Its migration exits non-zero.
    Migration,
}

/// An image pushed to ECR.
#[derive(Debug, Clone)]
pub struct Image {
    pub service: String,
    pub tag: String,
    pub digest: Digest,
    pub bad: Bad,
    /// How long it serves before its alarm fires (bad ones only).
    pub alarm_delay: Duration,
    /// The push's order among all pushes (ECR's own clock, finer than the event's).
    pub seq: u64,
    /// When ECR took the push, to the millisecond (the event says only the second).
    pub pushed: Timestamp,
}

/// One service in one environment, as the pipeline and the world both name it.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    pub service: String,
    pub environment: String,
    pub blue_green: bool,
    /// `cluster/service`.
    pub ecs: String,
    /// The service's task-definition family.
    pub family: String,
    pub alarm: String,
    /// CodeDeploy application and deployment group (blue/green).
    pub group: Option<(String, String)>,
    pub hooks: Vec<LifecycleHook>,
    pub migration_family: Option<String>,
    /// The migration stops the service first (`mode = "stop-first"`).
    pub stop_first: bool,
}

/// A registered task-definition revision.
#[derive(Debug, Clone)]
pub struct Revision {
    pub arn: String,
    pub family: String,
    /// The tags Shiplane gave it (none for the revision the world started with).
    pub release: Option<String>,
    pub environment: Option<String>,
    /// The stage attempt it was registered for (the world's own bookkeeping; AWS keeps
    /// only Shiplane's tags).
    pub attempt: u32,
    pub digest: Option<Digest>,
    /// False once deregistered (a clean-up, `keep`).
    pub active: bool,
}

/// An ECS service: the revision serving production traffic, and one being brought in.
#[derive(Debug, Clone, Default)]
pub struct EcsService {
    pub serving: String,
    /// A canary's or a rollout's new revision, taking part of the traffic.
    pub partial: Option<String>,
    /// Since when each revision serves (fully or partly), for alarms.
    pub since: BTreeMap<String, Timestamp>,
    /// Rolling deployments, newest last.
    pub deployments: Vec<EcsDeployment>,
    /// Scaled to zero (a `stop-first` migration): when its last task has stopped.
    pub at_zero: Option<Timestamp>,
    /// The desired count its `shiplane:stopped-from` tag remembers.
    pub stopped_from: Option<u32>,
}

/// The desired count every service of the world runs at.
pub const DESIRED: u32 = 2;

impl EcsService {
    /// Whether any of its tasks runs at `now` (none once scaled to zero and drained).
    pub fn runs_tasks(&self, now: Timestamp) -> bool {
        self.at_zero.is_none_or(|drained| now < drained)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
    /// Replaced by a newer deployment before it finished.
    Inactive,
}

#[derive(Debug, Clone)]
pub struct EcsDeployment {
    pub id: String,
    pub task_definition: String,
    pub rollout: Rollout,
    /// When UpdateService was called (at or before it made the deployment).
    pub created: Timestamp,
    /// A forced new deployment of the revision the service runs (another service's
    /// `restarts`), not a release's deployment.
    pub restart: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdStatus {
    Created,
    InProgress,
    Succeeded,
    Failed,
    Stopped,
}

impl CdStatus {
    pub fn is_active(self) -> bool {
        matches!(self, CdStatus::Created | CdStatus::InProgress)
    }
}

/// One lifecycle-hook execution of a CodeDeploy deployment.
#[derive(Debug, Clone)]
pub struct Execution {
    pub id: String,
    pub hook: LifecycleHook,
    pub answer: Option<HookStatus>,
    /// When CodeDeploy gives up waiting (an hour after it invoked the hook).
    pub deadline: Timestamp,
    /// Invocations of the hook that ran to their end (not killed).
    pub completed: u32,
    /// Every invocation Lambda made of it died: the event went to the dead-letter queue,
    /// whose alarm tells a person.
    pub dead_lettered: bool,
}

#[derive(Debug, Clone)]
pub struct CdDeployment {
    pub id: String,
    pub application: String,
    pub group: String,
    pub description: String,
    /// When CodeDeploy created it (what ListDeployments' `createTimeRange` filters on).
    pub created: Timestamp,
    pub task_definition: String,
    pub ecs: String,
    pub status: CdStatus,
    pub reason: String,
    pub hooks: Vec<LifecycleHook>,
    pub executions: Vec<Execution>,
    /// Production traffic moved (partly or wholly) to the new revision.
    pub shifted: bool,
    /// For CodeDeploy's own rollback deployment (creator `codeDeployRollback`): the
    /// deployment it rolls back.
    pub rollback_of: Option<String>,
}

/// A one-off migration task.
#[derive(Debug, Clone)]
pub struct Task {
    pub arn: String,
    pub token: String,
    pub started_by: String,
    pub cluster: String,
    pub digest: Digest,
    pub running: bool,
    pub exit: Option<i64>,
    /// When it exited: from then on, what it migrated is the schema.
    pub exited: Option<Timestamp>,
    /// Its stage's migration stops the service first (`stop-first`).
    pub stop_first: bool,
    /// The service it migrates still ran tasks when it started.
    pub beside_running: bool,
    /// That service (`cluster/service`).
    pub ecs: String,
}

/// An event AWS emits (or, for a hook, an invocation CodeDeploy makes).
#[derive(Debug, Clone)]
pub enum Emitted {
    Push(ImagePush),
    CodeDeploy(DeploymentStateChange),
    Ecs(ServiceDeploymentEnded),
    TaskStopped(TaskStopped),
    Alarm(AlarmChange),
    Timer(BakeTimer),
    Hook(HookInvocation),
    /// An operator cancels a release while its deployment is being created (second
    /// thoughts): the stage ends while CreateDeployment or UpdateService is in flight.
    SecondThoughts {
        service: String,
        environment: String,
        release: ReleaseId,
    },
}

impl Emitted {
    /// The kind, as the statistics count losses.
    pub fn kind(&self) -> &'static str {
        match self {
            Emitted::Push(_) => "push",
            Emitted::CodeDeploy(_) => "codedeploy",
            Emitted::Ecs(_) => "ecs-deployment",
            Emitted::TaskStopped(_) => "task-stopped",
            Emitted::Alarm(_) => "alarm",
            Emitted::Timer(_) => "timer",
            Emitted::Hook(_) => "hook",
            Emitted::SecondThoughts { .. } => "operator",
        }
    }
}

/// Everything the simulated AWS holds.
#[derive(Default)]
pub struct World {
    pub lanes: Vec<LaneSpec>,
    pub images: Vec<Image>,
    pub revisions: Vec<Revision>,
    pub services: BTreeMap<String, EcsService>,
    pub codedeploy: Vec<CdDeployment>,
    pub tasks: Vec<Task>,
    pub alarms: BTreeMap<String, (AlarmState, Timestamp)>,
    pub schedules: BTreeMap<String, (BakeTimer, Timestamp)>,
    /// Data jobs' triggers (Scheduler schedules, EventBridge rule targets) and the task
    /// definition each names.
    pub triggers: Vec<shiplane::aws::Trigger>,
    /// Revisions a data-job stage that failed deregistered again (undone, so a retry's
    /// registering another is no second effect).
    pub withdrawn: Vec<String>,
    /// Data-job runs in flight, by `release@environment`, and whether two overlapped
    /// since none was.
    pub data_job_runs: BTreeMap<String, (u32, bool)>,
    pub outbox: Option<UnboundedSender<Emitted>>,
    /// When an operator last acted on each lane: the order invariant leaves such lanes
    /// to the operator.
    pub touched: BTreeMap<(String, String), Timestamp>,
    /// Stop-first migration tasks still running when their service was brought back up.
    pub started_beside: Vec<String>,
    next: u64,
}

impl World {
    /// A fresh number for an id.
    pub fn fresh_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    pub fn operator_touched(&mut self, service: &str, environment: &str, at: Timestamp) {
        self.touched
            .insert((service.to_string(), environment.to_string()), at);
    }

    pub fn emit(&self, event: Emitted) {
        if let Some(out) = &self.outbox {
            let _ = out.send(event);
        }
    }

    pub fn lane_of_ecs(&self, ecs: &str) -> Option<&LaneSpec> {
        self.lanes.iter().find(|l| l.ecs == ecs)
    }

    pub fn lane(&self, service: &str, environment: &str) -> Option<&LaneSpec> {
        self.lanes
            .iter()
            .find(|l| l.service == service && l.environment == environment)
    }

    pub fn revision(&self, arn: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.arn == arn)
    }

    pub fn image(&self, digest: &Digest) -> Option<&Image> {
        self.images.iter().find(|i| &i.digest == digest)
    }

    /// The image a revision runs, if Shiplane registered it.
    pub fn image_of(&self, arn: &str) -> Option<&Image> {
        self.revision(arn)
            .and_then(|r| r.digest.as_ref())
            .and_then(|d| self.image(d))
    }

    /// The family's newest active revision (as DescribeTaskDefinition of a family).
    pub fn latest(&self, family: &str) -> Option<&Revision> {
        self.revisions
            .iter()
            .rev()
            .find(|r| r.family == family && r.active)
    }

    pub fn register(
        &mut self,
        family: &str,
        release: &str,
        environment: &str,
        attempt: u32,
        digest: &Digest,
    ) -> String {
        let n = self.revisions.iter().filter(|r| r.family == family).count() + 1;
        let arn = format!("arn:aws:ecs:eu-west-1:111122223333:task-definition/{family}:{n}");
        self.revisions.push(Revision {
            arn: arn.clone(),
            family: family.to_string(),
            release: Some(release.to_string()),
            environment: Some(environment.to_string()),
            attempt,
            digest: Some(digest.clone()),
            active: true,
        });
        arn
    }

    /// The active CodeDeploy deployment of a group.
    pub fn active_in(&self, application: &str, group: &str) -> Option<&CdDeployment> {
        self.codedeploy
            .iter()
            .find(|d| d.application == application && d.group == group && d.status.is_active())
    }

    pub fn deployment_mut(&mut self, id: &str) -> Option<&mut CdDeployment> {
        self.codedeploy.iter_mut().find(|d| d.id == id)
    }

    /// A deployment still created or in progress; None once it ended.
    pub fn active_mut(&mut self, id: &str) -> Option<&mut CdDeployment> {
        self.deployment_mut(id).filter(|d| d.status.is_active())
    }
}
