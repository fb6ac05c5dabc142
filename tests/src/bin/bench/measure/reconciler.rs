//! A reconciler pass over a large pipeline: the lanes it reads, the calls it makes and how
//! long it takes against the emulator.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use shiplane::release::{Digest, Lane, Phase, Release, ReleaseId, Stage, StageState, Timestamp};
use shiplane::store::{Commit, DynamoStore, ReleaseStore, Versioned};
use shiplane_e2e::round_trips::counted;

use crate::figures::{Calls, ENVIRONMENTS, ReconcilerPass};

/// `services` rolling services through dev (a 10-minute bake), staging and prod (approved
/// by a person, held while dev's or staging's alarms fire), each stage watching its alarm.
fn many_services(p: &str, services: usize) -> String {
    let mut toml = String::from("[pipeline]\nenvironments = [\"dev\", \"staging\", \"prod\"]\n");
    for i in 0..services {
        let s = format!("s{i:04}");
        let _ = write!(
            toml,
            "[services.{s}]\nrepository = \"{p}/{s}\"\nkind = \"rolling\"\ncontainer = \"app\"\n"
        );
        for env in ENVIRONMENTS {
            let extra = match env {
                "dev" => "bake = \"10m\"\n",
                "staging" => "approval = \"manual\"\n",
                _ => "approval = \"manual\"\nhold_while_alarms_in = [\"dev\", \"staging\"]\n",
            };
            let _ = write!(
                toml,
                "[services.{s}.environments.{env}]\ncluster = \"{p}-{env}\"\nservice = \"{p}-{s}-{env}\"\nalarms = [\"{p}-{s}-{env}-5xx\"]\n{extra}"
            );
        }
    }
    toml
}

/// A reconciler pass over `lanes` lanes (a third of as many services, three environments
/// each), against the emulator with every AWS answer delayed as a network's would be. Every
/// lane ran a release to success; in one service in ten a newer release bakes in dev (its
/// timer set again by the pass), in another one in ten one awaits approval for prod (its
/// gate's alarms read). The pass is run once unmeasured (it sets the bake timers the
/// populated lanes never had), then measured: a steady pass, as the scheduled reconciler
/// runs every few minutes.
pub async fn reconciler_pass(lanes: usize) -> ReconcilerPass {
    let p = shiplane_e2e::unique_prefix();
    let services = lanes.div_ceil(ENVIRONMENTS.len());
    // The account's topic and bake-timer schedule group; the services need no resources of
    // their own (no lane has a deployment or migration in flight).
    let acct = shiplane_e2e::account(
        &shiplane_e2e::three_environments(&p),
        &format!("{p}-releases"),
    );
    let store = shiplane_e2e::fresh_store().await;
    shiplane_e2e::apply_pipeline(&store, many_services(&p, services)).await;
    let now = Timestamp::now();
    let mut with_work = 0;
    for i in 0..services {
        if populate(&store, &p, i, now).await {
            with_work += 1;
        }
    }
    let aws = shiplane_e2e::aws_adapters(&acct).await;
    let engine = aws.engine(&store);
    let cloudwatch =
        shiplane::aws::CloudWatchAlarms::from_config(&shiplane_e2e::aws_config().await);
    let pipeline = engine.pipeline().await.expect("the pipeline");
    let pass = || engine.reconcile_with_alarms(&cloudwatch, &pipeline, None, now);
    pass().await.expect("the first pass");
    let ((out, took), cost) = counted(async {
        let t = Instant::now();
        let out = pass().await;
        (out, t.elapsed())
    })
    .await;
    let ms = took.as_secs_f64() * 1000.0;
    let out = out.expect("the measured pass");
    // The same pass with no delay: the emulator's own time, one call at a time.
    let t = Instant::now();
    pass().await.expect("the pass without delay");
    let ms_alone = t.elapsed().as_secs_f64() * 1000.0;
    ReconcilerPass {
        lanes: services * ENVIRONMENTS.len(),
        with_work,
        ms,
        ms_alone,
        calls: Calls::from(cost),
        lanes_failed: out.failed.len(),
    }
}

/// Stores service `i` of [`many_services`] with a release that succeeded everywhere an
/// hour before `now`, its lanes pointing at it; in service 0 of every ten a newer release
/// bakes in dev, in service 5 one awaits approval for prod. Whether it has such work.
async fn populate(store: &DynamoStore, p: &str, i: usize, now: Timestamp) -> bool {
    let earlier = Timestamp(now.0 - 3_600_000);
    let digest = |n: usize| {
        Digest::parse(&format!("sha256:{n:064x}")).unwrap_or_else(|e| panic!("digest: {e}"))
    };
    let s = format!("s{i:04}");
    let repository = format!("{p}/{s}");
    let mut good = Release::new(
        ReleaseId::new(earlier),
        &s,
        &repository,
        digest(2 * i),
        Some("v1"),
        earlier,
    );
    for env in ENVIRONMENTS {
        let mut stage = Stage::new(StageState::Succeeded, earlier);
        stage.succeeded_at = Some(earlier);
        good.stages.insert(env.to_string(), stage);
    }
    let mut lanes: Vec<Lane> = ENVIRONMENTS
        .iter()
        .map(|env| {
            let mut lane = Lane::new(&s, env);
            lane.current = Some(good.id.clone());
            lane.last_known_good = Some(good.id.clone());
            lane
        })
        .collect();
    let mut releases = vec![good];
    let newer = || {
        Release::new(
            ReleaseId::new(now),
            &s,
            &repository,
            digest(2 * i + 1),
            Some("v2"),
            now,
        )
    };
    let with_work = with_newer(i, newer, now, &mut lanes, &mut releases);
    store
        .commit(Commit {
            releases: releases
                .into_iter()
                .map(|item| Versioned { item, version: 0 })
                .collect(),
            lanes: lanes
                .into_iter()
                .map(|item| Versioned { item, version: 0 })
                .collect(),
            ..Commit::default()
        })
        .await
        .unwrap_or_else(|e| panic!("populate {s}: {e}"));
    with_work
}

/// Service `i`'s newer release, in one service in ten baking in dev, in another one in ten
/// awaiting approval for prod, added to `releases` and its lane; whether it was.
fn with_newer(
    i: usize,
    newer: impl FnOnce() -> Release,
    now: Timestamp,
    lanes: &mut [Lane],
    releases: &mut Vec<Release>,
) -> bool {
    match i % 10 {
        // A newer release bakes in dev.
        0 => {
            let mut r = newer();
            let until = now.after(Duration::from_secs(600));
            let stage = Stage::in_phase(Phase::Baking { until }, now);
            r.stages.insert("dev".into(), stage);
            lanes[0].in_flight = Some(r.id.clone());
            releases.push(r);
        }
        // One awaits approval for prod.
        5 => {
            let mut r = newer();
            let mut stage = Stage::new(StageState::AwaitingApproval, now);
            stage.deadline = Some(now.after(Duration::from_secs(14 * 24 * 3600)));
            r.stages.insert("prod".into(), stage);
            lanes[2].queued = Some(r.id.clone());
            releases.push(r);
        }
        _ => return false,
    }
    true
}
