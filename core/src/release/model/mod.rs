//! The release data model: what is stored, what is shown, what the machine reasons about.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch; the core never reads the clock itself.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time, for the edges (handlers, CLI) to pass into the core.
    pub fn now() -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// This time plus a duration, saturating.
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(t))
    }
}

/// Input that fails validation; names the field and what a valid value looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

/// A release id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseId(String);

impl ReleaseId {
    /// A fresh id minted at `now`.
    pub fn new(now: Timestamp) -> ReleaseId {
        #[cfg(any(test, feature = "testing"))]
        if let Some(random) = seeded::next() {
            return ReleaseId(ulid::Ulid::from_parts(now.0, random).to_string());
        }
        let t = UNIX_EPOCH + Duration::from_millis(now.0);
        ReleaseId(ulid::Ulid::from_datetime(t).to_string())
    }

    /// Parses an id typed by an operator or read from an event.
    pub fn parse(text: &str) -> Result<ReleaseId, InvalidInput> {
        ulid::Ulid::from_string(text)
            .map(|u| ReleaseId(u.to_string()))
            .map_err(|_| InvalidInput {
                field: "release",
                message: format!(
                    "\"{}\" is not a release id (26 characters, e.g. 01JD2B3C4D5E6F7G8H9J0KMNPQ)",
                    escaped(&text.chars().take(64).collect::<String>())
                ),
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids minted from a seed instead of the system's entropy, on one thread: a simulation
/// that replays a seed must mint the same ids in the same order.
#[cfg(any(test, feature = "testing"))]
pub mod seeded {
    use std::cell::Cell;

    thread_local! {
        static STATE: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Seeds the ids this thread mints from now on; None gives them back their entropy.
    pub fn seed_ids(seed: Option<u64>) {
        STATE.set(seed);
    }

    /// The random part of the next id, when seeded (splitmix64, twice).
    pub(super) fn next() -> Option<u128> {
        let mut state = STATE.get()?;
        let mut draw = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let random = (u128::from(draw()) << 16) ^ u128::from(draw());
        STATE.set(Some(state));
        Some(random & ((1u128 << 80) - 1))
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image digest, always `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, InvalidInput> {
        let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Digest(text.to_string()))
        } else {
            Err(InvalidInput {
                field: "image-digest",
                message: format!(
                    "\"{}\" is not an image digest; expected \"sha256:\" followed by 64 lowercase hex digits",
                    escaped(&text.chars().take(100).collect::<String>())
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as people quote digests.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Untrusted text made safe for one log line or message: control characters (a newline
/// that would forge a log line in text format) are escaped, `\n` instead of a line break.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks a Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), InvalidInput> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(InvalidInput {
            field: "image-tag",
            message: format!(
                "\"{}\"{} is not a valid Docker tag; tags are 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'",
                escaped(&tag.chars().take(64).collect::<String>()),
                if tag.chars().count() > 64 { "…" } else { "" }
            ),
        })
    }
}

/// The closed set of states a release can be in, in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Waiting for the deployment in flight (or a pause, or a freeze) to end.
    Queued,
    /// Waiting for a person to approve entry into the environment.
    AwaitingApproval,
    /// The one-off migration task runs with the new image.
    Migrating,
    /// The deployment (or service update, or revision registration) is under way.
    Deploying,
    /// CodeDeploy lifecycle hooks are checking the new version.
    Validating,
    /// Deployed; watched for alarms until the bake time ends.
    Baking,
    /// Released and baked: this release is the environment's last known good.
    Succeeded,
    /// Migration, deployment or a step failed; nothing of it is live.
    Failed,
    /// Stopped by an alarm and rolled back.
    RolledBack,
    /// A newer release arrived while this one waited; it never deploys.
    Superseded,
    /// A person rejected it at an approval.
    Rejected,
    /// A person cancelled it before it deployed.
    Cancelled,
}

impl StageState {
    /// Every state, for exhaustive tests and documentation.
    pub const ALL: [StageState; 12] = [
        StageState::Queued,
        StageState::AwaitingApproval,
        StageState::Migrating,
        StageState::Deploying,
        StageState::Validating,
        StageState::Baking,
        StageState::Succeeded,
        StageState::Failed,
        StageState::RolledBack,
        StageState::Superseded,
        StageState::Rejected,
        StageState::Cancelled,
    ];

    /// Occupies the environment: the lane's one slot for work in flight.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            StageState::Migrating
                | StageState::Deploying
                | StageState::Validating
                | StageState::Baking
        )
    }

    /// Waits in the lane's queue slot.
    pub fn is_waiting(self) -> bool {
        matches!(self, StageState::Queued | StageState::AwaitingApproval)
    }

    /// No event moves it any more.
    pub fn is_terminal(self) -> bool {
        !self.is_in_flight() && !self.is_waiting()
    }

    /// The spelling shown by the CLI and sent in notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Queued => "queued",
            StageState::AwaitingApproval => "awaiting_approval",
            StageState::Migrating => "migrating",
            StageState::Deploying => "deploying",
            StageState::Validating => "validating",
            StageState::Baking => "baking",
            StageState::Succeeded => "succeeded",
            StageState::Failed => "failed",
            StageState::RolledBack => "rolled_back",
            StageState::Superseded => "superseded",
            StageState::Rejected => "rejected",
            StageState::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for StageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One release in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub state: StageState,
    pub since: Timestamp,
    /// The CodeDeploy deployment id (or ECS deployment id) once one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Who approved entry, when the environment asks for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Why the stage ended the way it did (failure reason, alarm name, rejecting actor's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it last succeeded here; the mark that makes it eligible as last known good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<Timestamp>,
    /// This deployment restores the release after a newer one was rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redeploy: bool,
    /// When this state is overdue: the reconciler asks AWS for the truth then, and ends
    /// the stage if AWS has none (every non-terminal state has one, but `queued`, which
    /// waits for a release that has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// When the bake ends (state `baking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_until: Option<Timestamp>,
    /// A queued release sent back by a busy deployment group is not retried before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
    /// Which attempt at this stage this is: 0, then one more for every `shiplane retry`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
    /// The environment this release is owed a promotion to, recorded with its success so
    /// that a promotion lost to a crash is still owed (and done once) afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_to: Option<String>,
    /// The task-definition revision this attempt deployed here: a restore deploys it again
    /// instead of registering another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// Until when the invocation that moved the stage into deploying or migrating owns the
    /// action it runs ([`crate::release::LEASE`]); none (an item written before leases): expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Timestamp>,
    /// How many deployments of this restore of the last known good failed (each is tried
    /// again, up to [`crate::release::RESTORE_TRIES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restore_failures: u32,
    /// How often this stage's action was taken over after its lease ran out: the
    /// invocation that ran it before may have left its effect (a deployment) unrecorded,
    /// so the next run looks for it first.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumed: u32,
    /// Deployments this stage ran that ended and were replaced by another try (a restore
    /// tried again, a deployment made again after a late one replaced it): a late hook or
    /// answer of one of them is not taken for the try that runs now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended: Vec<String>,
    /// Counts up each time a late deployment of another release may have replaced the
    /// one this stage was still making (a rolling service: the newest UpdateService
    /// wins): the outcome of a deploy action issued before is refused, and the action is
    /// made again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fence: u32,
    /// When this stage's history was last written: a change decided later (by a decision
    /// that lost a race and decided again) is never recorded before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noted: Option<Timestamp>,
}

impl Stage {
    /// A stage entered at `now`, with nothing else known yet.
    pub fn new(state: StageState, now: Timestamp) -> Stage {
        Stage {
            state,
            since: now,
            deployment_id: None,
            approved_by: None,
            reason: None,
            succeeded_at: None,
            redeploy: false,
            deadline: None,
            bake_until: None,
            not_before: None,
            attempt: 0,
            promote_to: None,
            task_definition: None,
            lease: None,
            restore_failures: 0,
            resumed: 0,
            ended: Vec::new(),
            fence: 0,
            noted: None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many tags a release keeps: a digest re-pushed under a new tag on every build must
/// not grow its item towards DynamoDB's 400 KB limit.
pub const MAX_TAGS: usize = 16;

/// One pushed image of one service, and where it has got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    pub service: String,
    /// The ECR registry host, `<account>.dkr.ecr.<region>.amazonaws.com`.
    #[serde(default)]
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    /// Tags it was pushed under, oldest first; at most [`MAX_TAGS`] (the first is kept as
    /// its label, the oldest of the others make room).
    pub tags: Vec<String>,
    pub created: Timestamp,
    /// When the image was pushed, by the event's own clock (EventBridge `time`): what
    /// orders releases of a service, whatever order their events are processed in.
    #[serde(default)]
    pub pushed_at: Timestamp,
    /// Its stage in each environment it has reached.
    #[serde(default)]
    pub stages: BTreeMap<String, Stage>,
}

impl Release {
    /// A release that has reached no environment yet.
    pub fn new(
        id: ReleaseId,
        service: &str,
        repository: &str,
        digest: Digest,
        tag: Option<&str>,
        now: Timestamp,
    ) -> Release {
        Release {
            id,
            service: service.to_string(),
            registry: String::new(),
            repository: repository.to_string(),
            digest,
            tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
            created: now,
            pushed_at: now,
            stages: BTreeMap::new(),
        }
    }

    /// Adds a tag it was pushed under again; false when it already has it. Keeps at most
    /// [`MAX_TAGS`]: the first (its label) and the newest others.
    pub fn add_tag(&mut self, tag: &str) -> bool {
        if self.tags.iter().any(|t| t == tag) {
            return false;
        }
        if self.tags.len() >= MAX_TAGS {
            self.tags.remove(1);
        }
        self.tags.push(tag.to_string());
        true
    }

    /// Its state in an environment, if it reached it.
    pub fn state_in(&self, environment: &str) -> Option<StageState> {
        self.stages.get(environment).map(|s| s.state)
    }

    /// `registry/repository@sha256:…`: the only way Shiplane names an image, never by tag.
    pub fn image_ref(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }

    /// A short label for people: the first tag, or the short digest.
    pub fn label(&self) -> String {
        self.tags
            .first()
            .cloned()
            .unwrap_or_else(|| self.digest.short().to_string())
    }

    pub(super) fn set_stage(
        &mut self,
        environment: &str,
        state: StageState,
        now: Timestamp,
    ) -> &mut Stage {
        let stage = self
            .stages
            .entry(environment.to_string())
            .or_insert_with(|| Stage::new(state, now));
        stage.state = state;
        stage.since = now;
        stage
    }
}

/// Whether push `a` (its time, its digest) came before push `b`: by push time, and at the
/// same instant by digest, the greater taken as the newer. The digest says nothing about
/// which image is newer; it only makes a tie come out the same whichever event is
/// processed first, so that every delivery order ends with the same release deployed.
/// Times are the event's whole second unless ECR was asked for the image's own time,
/// which the image-push function does when two pushes may share a second.
pub fn pushed_before(a: (Timestamp, &Digest), b: (Timestamp, &Digest)) -> bool {
    a < b
}

/// A CloudWatch alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// The last state a lane saw an alarm in, and when the alarm entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSeen {
    pub state: AlarmState,
    pub at: Timestamp,
}

/// Why the lane is held by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub actor: String,
    pub reason: String,
    pub since: Timestamp,
}

/// One service in one environment: what runs there and what is coming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub service: String,
    pub environment: String,
    /// The release serving traffic (deployed, baking or baked).
    #[serde(default)]
    pub current: Option<ReleaseId>,
    /// The newest release that succeeded here; where an alarm rolls back to.
    #[serde(default)]
    pub last_known_good: Option<ReleaseId>,
    /// The last known good release before the current one: where an operator's rollback
    /// goes when what runs is itself the last known good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_good: Option<ReleaseId>,
    /// The one release migrating, deploying, validating or baking here.
    #[serde(default)]
    pub in_flight: Option<ReleaseId>,
    /// The one release waiting (queued or awaiting approval); a newer one supersedes it.
    #[serde(default)]
    pub queued: Option<ReleaseId>,
    /// Set by an operator's pause; queued releases wait until resumed.
    #[serde(default)]
    pub paused: Option<Pause>,
    /// The last state of every alarm this lane watches, with CloudWatch's time of it: an
    /// older change arriving late is ignored, and gates read it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alarms: BTreeMap<String, AlarmSeen>,
    /// A release whose deployment was told to stop, until the stop's outcome is recorded:
    /// a stop whose invocation died after its decision committed is still owed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<ReleaseId>,
    /// The push time of the newest release that arrived here: an older push arriving
    /// later (a retried or delayed event) is superseded on arrival, never deployed over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_pushed_at: Option<Timestamp>,
    /// That release's digest: what orders a push at the same instant ([`pushed_before`]),
    /// and what ECR is asked about when a push may share its second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_digest: Option<Digest>,
}

impl Lane {
    pub fn new(service: &str, environment: &str) -> Lane {
        Lane {
            service: service.to_string(),
            environment: environment.to_string(),
            current: None,
            last_known_good: None,
            previous_good: None,
            in_flight: None,
            queued: None,
            paused: None,
            alarms: BTreeMap::new(),
            newest_pushed_at: None,
            stopping: None,
            newest_digest: None,
        }
    }

    /// Takes ECR's own reading of the newest push's time (DescribeImages `imagePushedAt`,
    /// to the millisecond) in place of the event's whole second; false, and nothing
    /// changes, when `digest` is not the newest push here.
    pub fn refine_newest_push(&mut self, digest: &Digest, at: Timestamp) -> bool {
        if self.newest_digest.as_ref() != Some(digest) || self.newest_pushed_at.is_none() {
            return false;
        }
        self.newest_pushed_at = Some(at);
        true
    }

    /// The lane's own alarms last seen in ALARM, by name.
    pub fn firing_alarms(&self) -> Vec<String> {
        self.alarms
            .iter()
            .filter(|(_, seen)| seen.state == AlarmState::Alarm)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// A lane and every release the machine may touch when an event arrives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneView {
    pub lane: Lane,
    pub releases: BTreeMap<ReleaseId, Release>,
}

impl LaneView {
    /// The ids whose releases must be loaded with the lane: in flight, queued, last known good.
    pub fn referenced(lane: &Lane) -> Vec<ReleaseId> {
        let mut ids: Vec<ReleaseId> = [
            &lane.in_flight,
            &lane.queued,
            &lane.last_known_good,
            &lane.current,
            &lane.previous_good,
            &lane.stopping,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// One recorded change: a history item and a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: Timestamp,
    pub service: String,
    pub environment: String,
    /// None for lane events (pause, resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<StageState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<StageState>,
    /// The event that caused it.
    pub cause: Cause,
    /// The person, for operator actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Free text: a failure reason, an alarm name, the superseding release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why a transition happened: the closed set of causes recorded in history and sent in
/// notifications (spelled in snake_case there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    Arrived,
    /// A queued release started because the lane became free.
    Dequeued,
    Approved,
    Rejected,
    Cancelled,
    TagAdded,
    MigrationStarted,
    MigrationSucceeded,
    MigrationFailed,
    DeploymentCreated,
    ValidationStarted,
    DeploymentBlocked,
    DeploymentSucceeded,
    DeploymentFailed,
    BakeElapsed,
    AlarmFired,
    /// A watched alarm returned to OK.
    AlarmCleared,
    /// A watched alarm has too little data to say.
    AlarmNoData,
    ActionFailed,
    /// The state's deadline passed and AWS had no outcome to report.
    TimedOut,
    /// A deployment was asked to stop (after a cancel, a timeout or an alarm).
    StopRequested,
    /// Stopping a deployment failed; the reason says what to do by hand.
    StopFailed,
    /// One lifecycle-hook check passed or failed (name, latency, excerpt in the detail).
    CheckPassed,
    CheckFailed,
    /// A lifecycle hook reported Succeeded or Failed to CodeDeploy.
    HookSucceeded,
    HookFailed,
    /// The bake timer (an EventBridge Scheduler schedule) was set, or cleared because the
    /// bake ended another way; or setting or clearing it failed (the reconciler ends the
    /// bake all the same).
    TimerSet,
    TimerCleared,
    TimerFailed,
    /// CodeDeploy's automatic rollback deployment of the stage's deployment reported (a
    /// hook answered, or it succeeded), or failed: a person must act.
    CodeDeployRollback,
    RollbackFailed,
    /// A newer release took its place in the queue, or it arrived after a newer one.
    Superseded,
    /// The last known good release is deployed again after a rollback, or an operator
    /// rolled the environment back.
    Rollback,
    /// An operator ended a bake early.
    PromotedEarly,
    /// An operator tried a failed, rolled back or cancelled stage again.
    Retried,
    /// An invocation took over a deployment or migration that another left unfinished
    /// past its lease.
    ActionResumed,
    /// Its deployment was replaced by another release's that landed late (on a rolling
    /// service the newest UpdateService wins), so it is deployed again.
    Redeployed,
    /// An operator deployed an image by digest, without a push.
    Deployed,
    Paused,
    Resumed,
    /// An operator freed the lane of whatever held it.
    Unblocked,
    /// Written by a newer Shiplane; shown as it is.
    #[serde(other)]
    Other,
}

impl Cause {
    /// The spelling in history, logs and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Arrived => "arrived",
            Cause::Dequeued => "dequeued",
            Cause::Approved => "approved",
            Cause::Rejected => "rejected",
            Cause::Cancelled => "cancelled",
            Cause::TagAdded => "tag_added",
            Cause::MigrationStarted => "migration_started",
            Cause::MigrationSucceeded => "migration_succeeded",
            Cause::MigrationFailed => "migration_failed",
            Cause::DeploymentCreated => "deployment_created",
            Cause::ValidationStarted => "validation_started",
            Cause::DeploymentBlocked => "deployment_blocked",
            Cause::DeploymentSucceeded => "deployment_succeeded",
            Cause::DeploymentFailed => "deployment_failed",
            Cause::BakeElapsed => "bake_elapsed",
            Cause::AlarmFired => "alarm_fired",
            Cause::AlarmCleared => "alarm_cleared",
            Cause::AlarmNoData => "alarm_no_data",
            Cause::ActionFailed => "action_failed",
            Cause::TimedOut => "timed_out",
            Cause::StopRequested => "stop_requested",
            Cause::StopFailed => "stop_failed",
            Cause::CheckPassed => "check_passed",
            Cause::CheckFailed => "check_failed",
            Cause::HookSucceeded => "hook_succeeded",
            Cause::HookFailed => "hook_failed",
            Cause::TimerSet => "timer_set",
            Cause::TimerCleared => "timer_cleared",
            Cause::TimerFailed => "timer_failed",
            Cause::CodeDeployRollback => "codedeploy_rollback",
            Cause::RollbackFailed => "rollback_failed",
            Cause::Superseded => "superseded",
            Cause::Rollback => "rollback",
            Cause::PromotedEarly => "promoted_early",
            Cause::Retried => "retried",
            Cause::ActionResumed => "action_resumed",
            Cause::Redeployed => "redeployed",
            Cause::Deployed => "deployed",
            Cause::Paused => "paused",
            Cause::Resumed => "resumed",
            Cause::Unblocked => "unblocked",
            Cause::Other => "other",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
