//! What the reconciler knows of the alarms: their current states read from CloudWatch in
//! one batch, by lane, and which changes a lane missed (their events lost).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracing::warn;

use crate::aws::{AlarmReader, covering_prefixes};
use crate::facts::AlarmChange;
use crate::pipeline::{Pipeline, Service};
use crate::release::{AlarmState, Lane, Timestamp};
use crate::store::{LaneKey, Versioned};

/// What a pass knows of the alarms.
pub(super) enum Alarms {
    /// Not read: the states the lanes recorded ([`Engine::reconcile`]).
    Recorded,
    /// Read from CloudWatch this pass: by lane, the changes of the alarms it watches (by
    /// name or prefix) or has recorded.
    Read(BTreeMap<LaneKey, Vec<AlarmChange>>),
    /// CloudWatch could not be read.
    Unread,
}

/// Whether `lane` (as listed; None: never written) has not seen `change`: a newer change
/// than the one it recorded, or an ALARM it never saw. An OK it never saw changes no
/// decision, and recording it on every idle lane would fill history.
pub(in crate::engine) fn missed(lane: Option<&Lane>, change: &AlarmChange) -> bool {
    match lane.and_then(|l| l.alarms.get(&change.alarm)) {
        Some(seen) => change.at > seen.at,
        None => change.state == AlarmState::Alarm,
    }
}

/// How long after a release's watch ends the pass still reads its alarms: an ALARM of the
/// watch's last minutes whose event was lost is found by a pass after it, and still rolls
/// the release back (the machine compares CloudWatch's time of it with the watch's end).
const WATCH_GRACE: Duration = Duration::from_secs(3600);

/// The lanes of `service` the pass reads alarms for: those with work, those whose last
/// release is still watched (or was, a moment ago), and those gating them.
fn lanes_to_watch<'a>(
    service: &'a Service,
    listed: &'a [Versioned<Lane>],
    now: Timestamp,
) -> BTreeSet<&'a str> {
    let mut envs = BTreeSet::new();
    for lane in listed {
        let l = &lane.item;
        let watched = l
            .watch
            .as_ref()
            .is_some_and(|w| w.until.after(WATCH_GRACE) > now);
        if l.in_flight.is_none() && l.queued.is_none() && !watched {
            continue;
        }
        envs.insert(l.environment.as_str());
        if let Some(stage) = service.stage(&l.environment) {
            envs.extend(stage.hold_while_alarms_in.iter().map(String::as_str));
        }
    }
    envs
}

/// The current state of every alarm that lanes with work (and the lanes gating them) watch
/// by name or prefix or have recorded, and of every alarm a lane last saw in ALARM, in one
/// batch; by lane. CloudWatch unreachable:
/// logged, [`Alarms::Unread`], and why.
pub(super) async fn read_alarms(
    reader: &impl AlarmReader,
    pipeline: &Pipeline,
    listed: &[(&Service, Vec<Versioned<Lane>>)],
    now: Timestamp,
) -> (Alarms, Option<String>) {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut prefixes: Vec<String> = Vec::new();
    // Which listed lanes recorded each alarm (they may no longer watch it by the pipeline,
    // and a recorded ALARM would hold their bakes until cleared).
    let mut recorded: BTreeMap<&str, Vec<LaneKey>> = BTreeMap::new();
    for (service, lanes) in listed {
        let watched = lanes_to_watch(service, lanes, now);
        for lane in lanes {
            for (alarm, seen) in &lane.item.alarms {
                recorded
                    .entry(alarm)
                    .or_default()
                    .push(LaneKey::new(&service.name, &lane.item.environment));
                // An alarm last seen in ALARM, on any lane: a lost OK would leave it
                // holding its gate and firing in `shiplane status`.
                if watched.contains(lane.item.environment.as_str())
                    || seen.state == AlarmState::Alarm
                {
                    names.insert(alarm.clone());
                }
            }
        }
        for env in watched {
            if let Some(stage) = service.stage(env) {
                names.extend(stage.alarms.iter().cloned());
                prefixes.extend(stage.alarm_prefixes.iter().cloned());
            }
        }
    }
    if names.is_empty() && prefixes.is_empty() {
        return (Alarms::Read(BTreeMap::new()), None);
    }
    let names: Vec<String> = names.into_iter().collect();
    let prefixes = covering_prefixes(&prefixes);
    let changes = match reader.current(&names, &prefixes).await {
        Ok(changes) => changes,
        Err(e) => {
            warn!(alarms = names.len(), prefixes = prefixes.len(), error = ?e.message, "could not read alarm states from CloudWatch; bakes that are over stay owed to the next pass");
            return (Alarms::Unread, Some(e.message));
        }
    };
    let mut by_lane: BTreeMap<LaneKey, Vec<AlarmChange>> = BTreeMap::new();
    for change in changes {
        let mut lanes: Vec<LaneKey> = pipeline
            .lanes_watching(&change.alarm)
            .into_iter()
            .map(|(s, e)| LaneKey::new(s, e))
            .collect();
        lanes.extend(
            recorded
                .get(change.alarm.as_str())
                .into_iter()
                .flatten()
                .cloned(),
        );
        lanes.sort();
        lanes.dedup();
        for lane in lanes {
            by_lane.entry(lane).or_default().push(change.clone());
        }
    }
    (Alarms::Read(by_lane), None)
}
