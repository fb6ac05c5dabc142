//! One service in one environment (Lane): what runs, what is in flight and queued, its
//! pause and the alarms it watches; and the LaneView the machine decides on. Apart from
//! the releases, which a lane only names by id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Digest, Release, ReleaseId, Timestamp};

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
    ///
    /// [`pushed_before`]: super::pushed_before
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_digest: Option<Digest>,
    /// The release that last succeeded here while it is still watched after its bake (the
    /// stage's `watch`): an ALARM of this lane in that window rolls it back. Ended by the
    /// watch's rollback or an operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<Watch>,
    /// The last restart of this (rolling) service another service's release asked for
    /// (its `restarts`): shown by `status`, and what makes a replayed record of it a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted: Option<Restart>,
    /// The service is stopped (scaled to zero) for a release's `stop-first` migration,
    /// until a deployment brings it back up or, when the release goes no further, it is
    /// started again on the revision it ran: the outage, recorded from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<Down>,
    /// An action that may still run though its stage ended (a cancel, a rollback or an
    /// alarm while it ran): a data-job action moving triggers, whose moves are seen
    /// nowhere afterwards, or a `stop-first` migration's stop of the service. Until its
    /// lease ends no other action moves the triggers or starts the service here, and the
    /// one decided meanwhile waits for it: the last word is then always the lane's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled: Option<Unsettled>,
    /// The release whose `stop-first` migration last completed here. The releases before
    /// it were built for the schema it replaced, which they cannot run on (that is why the
    /// service was stopped): Shiplane puts none of them back on its own (a restore, a
    /// rollback's default target); a person who restored the database names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
}

/// The release whose `stop-first` migration last completed in a lane, with what orders
/// pushes ([`pushed_before`]): release ids minted in the same millisecond do not.
///
/// [`pushed_before`]: super::pushed_before
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub release: ReleaseId,
    pub pushed_at: Timestamp,
    pub digest: Digest,
}

impl Schema {
    /// The schema `release`'s migration left.
    pub fn of(release: &Release) -> Schema {
        Schema {
            release: release.id.clone(),
            pushed_at: release.pushed_at,
            digest: release.digest.clone(),
        }
    }

    /// Whether `release` was pushed before the one whose migration left this schema: it
    /// was built for the schema that migration replaced.
    pub fn predates(&self, release: &Release) -> bool {
        release.id != self.release
            && super::pushed_before(
                (release.pushed_at, &release.digest),
                (self.pushed_at, &self.digest),
            )
    }
}

/// An action of a release whose stage ended while it may still run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsettled {
    pub release: ReleaseId,
    /// Its lease's end: past it, no run of that action is still going.
    pub until: Timestamp,
}

impl Unsettled {
    /// Whether the action may still run at `now`.
    pub fn live(&self, now: Timestamp) -> bool {
        self.until > now
    }
}

/// A service stopped for a migration the version it ran cannot run beside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    /// The release whose migration stopped it.
    pub release: ReleaseId,
    /// When Shiplane stopped it: the outage's start.
    pub since: Timestamp,
    /// The desired count it had, which bringing it back up restores; None until ECS
    /// confirmed the stop (the lane counts the service as stopped from the moment the
    /// migration is owed, so that a stop whose record was lost is still undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
}

/// A restart of a lane's service asked for by another service's release here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// The service whose release succeeded.
    pub by: String,
    pub release: ReleaseId,
    /// The ECS deployment that started the new tasks.
    pub deployment_id: String,
    pub at: Timestamp,
}

/// A release watched after its bake: an alarm that fired (CloudWatch's time) from when it
/// first succeeded here until the watch ends is its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub release: ReleaseId,
    /// When it first succeeded here: an alarm that fired before is another release's.
    pub from: Timestamp,
    /// When the watch ends; deployed again (restored), it is watched again from then.
    pub until: Timestamp,
}

impl Watch {
    /// Whether an alarm that fired at `at` is the watched release's.
    pub fn covers(&self, at: Timestamp) -> bool {
        self.from <= at && at <= self.until
    }
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
            down: None,
            unsettled: None,
            schema: None,
            newest_digest: None,
            watch: None,
            restarted: None,
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
    /// Whether release `id` (loaded here) was pushed before the one whose `stop-first`
    /// migration last completed here ([`Lane::schema`]): it was built for the schema that
    /// migration replaced, and is not put back automatically.
    pub fn predates_schema(&self, id: &ReleaseId) -> bool {
        let (Some(s), Some(r)) = (&self.lane.schema, self.releases.get(id)) else {
            return false;
        };
        s.predates(r)
    }

    /// The ids whose releases must be loaded with the lane: in flight, queued, last known
    /// good, and the one whose migration stopped the service (owed its start).
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
        .chain(lane.down.as_ref().map(|d| &d.release))
        .cloned()
        .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
