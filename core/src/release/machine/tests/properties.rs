//! Properties over arbitrary event sequences: the lane's invariants hold, and any order of
//! a release's facts, with duplicates, ends where the in-order sequence ends.

use proptest::prelude::*;

use super::*;

// ---- properties over arbitrary event sequences ----

#[derive(Debug, Clone)]
enum Op {
    Push,
    Event(usize, usize),
    Pause,
    Resume,
    /// The lane's own alarm changes: to ALARM (true) or OK.
    Alarm(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Push),
        8 => (0usize..8, 0usize..15).prop_map(|(r, e)| Op::Event(r, e)),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        1 => any::<bool>().prop_map(Op::Alarm),
    ]
}

fn any_policy() -> impl Strategy<Value = Policy> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(manual, migration, bake, next, picky)| Policy {
            stop_first: false,
            approval: if manual {
                Approval::Manual
            } else {
                Approval::None
            },
            migration,
            bake: if bake {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            },
            frozen: false,
            next_environment: next.then(|| "staging".to_string()),
            // Pushes are tagged v1.0.<n>: staging takes the odd ones.
            next_tags: if picky {
                TagPolicy::Regex(regex::Regex::new(r"[13579]$").unwrap())
            } else {
                TagPolicy::Any
            },
            deadlines: Deadlines::default(),
            held_by: Vec::new(),
            undo_by_redeploy: false,
            data_jobs: false,
            watch: Duration::ZERO,
            restarts: Vec::new(),
            keep: 5,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_any_event_sequence(p in any_policy(), ops in proptest::collection::vec(op(), 1..60)) {
        let mut view = empty_view();
        let mut pushed = 0u64;
        let mut superseded: BTreeSet<ReleaseId> = BTreeSet::new();
        for (k, op) in ops.into_iter().enumerate() {
            let result = match op {
                Op::Push => {
                    pushed += 1;
                    let r = release(pushed);
                    let mut v = view.clone();
                    let rid = r.id.clone();
                    v.releases.insert(rid.clone(), r);
                    apply(&v, &rid, &Event::Arrived, &p, T0)
                }
                Op::Event(r, e) if pushed > 0 => {
                    let n = (r as u64 % pushed) + 1;
                    apply(&view, &id(n), &samples()[e], &p, T0)
                }
                Op::Event(..) => continue,
                Op::Pause => apply_lane(&view, &LaneEvent::Pause { actor: "a".into(), reason: "r".into() }, &p, T0),
                Op::Resume => apply_lane(&view, &LaneEvent::Resume { actor: "a".into() }, &p, T0),
                Op::Alarm(fires) => {
                    let state = if fires { AlarmState::Alarm } else { AlarmState::Ok };
                    apply_lane(&view, &alarm_changed(state, k as u64), &p, T0)
                }
            };
            let Ok(d) = result else { continue };

            // 4. The lane's own firing alarm blocks a start and a success (an operator's
            // unblock or early promotion aside, and the restore of the last known good).
            if !d.view.lane.firing_alarms().is_empty() {
                for t in &d.transitions {
                    let restore = t.release.as_ref().is_some_and(|r| {
                        view.releases.get(r).and_then(|r| r.stages.get(ENV)).is_some_and(|s| s.redeploy)
                    });
                    // A record within deploying (a busy group found again) starts nothing.
                    let started = matches!(t.to, Some(StageState::Migrating | StageState::Deploying))
                        && !matches!(t.from, Some(StageState::Migrating))
                        && t.from != t.to
                        && t.cause != Cause::Rollback;
                    let succeeded = t.to == Some(StageState::Succeeded)
                        && t.cause != Cause::PromotedEarly
                        && !restore;
                    prop_assert!(!started && !succeeded, "{t:?} while {:?} fires", d.view.lane.firing_alarms());
                }
            }

            // 1. At most one release in flight, and it is the lane's in-flight slot.
            let in_flight: Vec<_> = d.view.releases.values()
                .filter(|r| r.state_in(ENV).is_some_and(StageState::is_in_flight))
                .map(|r| r.id.clone())
                .collect();
            prop_assert!(in_flight.len() <= 1, "two in flight: {in_flight:?}");
            prop_assert_eq!(in_flight.first(), d.view.lane.in_flight.as_ref());
            // At most one waiting, and it is the queue slot.
            let waiting: Vec<_> = d.view.releases.values()
                .filter(|r| r.state_in(ENV).is_some_and(StageState::is_waiting))
                .map(|r| r.id.clone())
                .collect();
            prop_assert!(waiting.len() <= 1, "two waiting: {waiting:?}");
            prop_assert_eq!(waiting.first(), d.view.lane.queued.as_ref());
            // 2. The last known good succeeded here.
            if let Some(good) = &d.view.lane.last_known_good {
                prop_assert!(d.view.releases[good].stages[ENV].succeeded_at.is_some());
            }
            // 3. A superseded release never deploys and never leaves that state.
            for a in &d.actions {
                if let Action::Deploy { release, .. } | Action::RunMigration { release, .. } = a {
                    prop_assert!(!superseded.contains(release), "superseded {release} deployed");
                }
            }
            for s in &superseded {
                prop_assert_eq!(d.view.releases[s].state_in(ENV), Some(StageState::Superseded));
            }
            for r in d.view.releases.values() {
                if r.state_in(ENV) == Some(StageState::Superseded) {
                    superseded.insert(r.id.clone());
                }
            }
            // 5. A release goes on only where the next environment accepts its tags, and one
            // that may not is told why, once, as it succeeds.
            for a in &d.actions {
                if let Action::Promote { release, .. } = a {
                    prop_assert!(p.next_tags.accepts_any(&d.view.releases[release].tags), "{release} promoted");
                }
            }
            for t in d.transitions.iter().filter(|t| t.to == Some(StageState::Succeeded) && t.from != t.to) {
                let Some(r) = t.release.as_ref().map(|r| &d.view.releases[r]) else { continue };
                let stage = &r.stages[ENV];
                let refused = p.next_environment.is_some() && !stage.redeploy
                    && !p.next_tags.accepts_any(&r.tags)
                    && !view.releases.get(&r.id).is_some_and(|o| o.stages.get(ENV).is_some_and(|s| s.redeploy));
                prop_assert_eq!(stage.not_promoted().is_some(), refused, "{:?}", stage);
                let told = d.transitions.iter().filter(|n| n.cause == Cause::NotPromoted && n.release == t.release).count();
                prop_assert_eq!(told, usize::from(refused));
            }
            // Every changed release has a transition, and every transition a changed release.
            for t in &d.transitions {
                if let Some(r) = &t.release {
                    prop_assert!(d.changed.contains(r));
                }
            }
            view = d.view;
        }
    }
}

/// The facts one release's deployment produces, in the order AWS produces them.
fn facts() -> Vec<Event> {
    vec![
        Event::Arrived,
        Event::DeploymentCreated {
            deployment_id: "d-1".into(),
            task_definition: None,
            fence: 0,
        },
        Event::ValidationStarted,
        Event::HookCompleted {
            deployment_id: "d-1".into(),
            task_definition: None,
            hook: "AfterAllowTestTraffic".into(),
            checks: vec![(true, "health: passed in 3 ms: ok".into())],
            failure: None,
        },
        Event::DeploymentSucceeded,
        Event::BakeElapsed,
    ]
}

/// Applies each event as the engine does: a refused event leaves the view as it was (the
/// engine commits nothing for it), and a deployment's outcome reaches only the stage that
/// records that deployment (`Engine::on_deployment_state` matches by deployment id).
fn deliver_onto(mut view: LaneView, events: &[Event]) -> LaneView {
    for event in events {
        let recorded = view.releases[&id(1)]
            .stages
            .get(ENV)
            .and_then(|s| s.deployment_id.as_deref())
            == Some("d-1");
        if matches!(event, Event::DeploymentSucceeded) && !recorded {
            continue;
        }
        if let Ok(d) = apply(&view, &id(1), event, &policy(), T0) {
            view = d.view;
        }
    }
    view
}

fn deliver(events: &[Event]) -> LaneView {
    let mut view = empty_view();
    view.releases.insert(id(1), release(1));
    deliver_onto(view, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Deliveries out of order and twice never take a wrong turn: whatever was applied
    /// early is a state the in-order sequence passes through or a refusal, and once the
    /// reconciler has re-delivered AWS's facts in order, the release ends exactly where the
    /// in-order sequence ends it.
    #[test]
    fn out_of_order_and_duplicate_deliveries_end_where_the_in_order_sequence_ends(
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        twice in proptest::collection::vec(0..6usize, 0..4),
    ) {
        let facts = facts();
        let in_order = deliver(&facts);
        let mut messy: Vec<Event> = order.iter().map(|i| facts[*i].clone()).collect();
        for (k, i) in twice.iter().enumerate() {
            messy.insert((k * 2).min(messy.len()), facts[*i].clone());
        }
        let early = deliver(&messy);
        let reached = early.releases[&id(1)].state_in(ENV);
        prop_assert!(
            reached.is_none_or(|s| matches!(
                s,
                StageState::Deploying | StageState::Validating | StageState::Baking | StageState::Succeeded
            )),
            "an out-of-order delivery reached {reached:?}"
        );
        // The reconciler: AWS's facts again, in order, on top of whatever happened.
        let view = deliver_onto(early, &facts);
        let (got, want) = (&view.releases[&id(1)], &in_order.releases[&id(1)]);
        prop_assert_eq!(got.state_in(ENV), want.state_in(ENV));
        prop_assert_eq!(&got.stages[ENV].deployment_id, &want.stages[ENV].deployment_id);
        prop_assert_eq!(&view.lane, &in_order.lane);
    }
}
