//! Data jobs through the built `image-push` binary against the local AWS: a push registers
//! each family's new revision and moves the Scheduler schedules and EventBridge rule
//! targets pinned to an older revision of it, in the stage's cluster, to the new one; an
//! unpinned trigger and another cluster's are left as they are; a trigger AWS refuses
//! puts back every one moved before it and fails the stage; an operator's rollback moves
//! them back to the restored release.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use shiplane::release::{LaneEvent, ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::runtime_api::RuntimeApi;
use shiplane_e2e::{Account, aws_config, deployed_world, push_event};

const BINARY: &str = env!("CARGO_BIN_EXE_image-push");
const WAIT: Duration = Duration::from_secs(60);

struct World {
    p: String,
    account: Account,
    store: DynamoStore,
    api: RuntimeApi,
    ecs: aws_sdk_ecs::Client,
    scheduler: aws_sdk_scheduler::Client,
    events: aws_sdk_eventbridge::Client,
}

impl World {
    async fn new() -> World {
        let (p, account, store) = deployed_world().await;
        let config = aws_config().await;
        World {
            p,
            account,
            store,
            api: RuntimeApi::start().await,
            ecs: aws_sdk_ecs::Client::new(&config),
            scheduler: aws_sdk_scheduler::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
        }
    }

    fn cluster(&self, env: &str) -> String {
        format!(
            "arn:aws:ecs:us-east-1:123456789012:cluster/{}-{env}",
            self.p
        )
    }

    /// The family's ARN without a revision, and its revision `n`.
    async fn family(&self, name: &str) -> (String, String) {
        let family = format!("{}-etl-{name}", self.p);
        let arn = self
            .ecs
            .describe_task_definition()
            .task_definition(&family)
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .task_definition_arn
            .unwrap();
        let (unpinned, _) = arn.rsplit_once(':').unwrap();
        (unpinned.to_string(), arn)
    }

    async fn schedule(&self, name: &str, cluster: &str, task_definition: &str) {
        use aws_sdk_scheduler::types::{
            EcsParameters, FlexibleTimeWindow, FlexibleTimeWindowMode, LaunchType, Target,
        };
        let target = Target::builder()
            .arn(cluster)
            .role_arn("arn:aws:iam::123456789012:role/jobs")
            .input("{\"kept\": true}")
            .ecs_parameters(
                EcsParameters::builder()
                    .task_definition_arn(task_definition)
                    .launch_type(LaunchType::Fargate)
                    .task_count(2)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        self.scheduler
            .create_schedule()
            .name(format!("{}-{name}", self.p))
            .schedule_expression("cron(0 3 * * ? *)")
            .description("the nightly run")
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .unwrap(),
            )
            .target(target)
            .send()
            .await
            .unwrap();
    }

    async fn rule_target(&self, rule: &str, cluster: &str, task_definition: &str) {
        use aws_sdk_eventbridge::types::{EcsParameters, LaunchType, Target};
        let rule = format!("{}-{rule}", self.p);
        self.events
            .put_rule()
            .name(&rule)
            .schedule_expression("rate(1 hour)")
            .send()
            .await
            .unwrap();
        let target = Target::builder()
            .id("etl")
            .arn(cluster)
            .role_arn("arn:aws:iam::123456789012:role/jobs")
            .ecs_parameters(
                EcsParameters::builder()
                    .task_definition_arn(task_definition)
                    .launch_type(LaunchType::Fargate)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        self.events
            .put_targets()
            .rule(&rule)
            .targets(target)
            .send()
            .await
            .unwrap();
    }

    /// The task definition a schedule names, with its description and input (kept).
    async fn scheduled(&self, name: &str) -> (String, Option<String>, Option<String>) {
        let s = self
            .scheduler
            .get_schedule()
            .name(format!("{}-{name}", self.p))
            .send()
            .await
            .unwrap();
        let target = s.target.unwrap();
        (
            target.ecs_parameters.unwrap().task_definition_arn,
            s.description,
            target.input,
        )
    }

    async fn targeted(&self, rule: &str) -> String {
        self.events
            .list_targets_by_rule()
            .rule(format!("{}-{rule}", self.p))
            .send()
            .await
            .unwrap()
            .targets
            .unwrap()
            .remove(0)
            .ecs_parameters
            .unwrap()
            .task_definition_arn
    }

    /// Pushes an etl image through the built function: the release it made.
    async fn push(&self, tag: &str, n: usize) -> ReleaseId {
        let _f = self.api.spawn(
            Path::new(BINARY),
            "shiplane-image-push",
            &self.account.function_env(&self.store),
        );
        self.api.invoke(push_event(&format!("{}/etl", self.p), tag));
        let out = self.api.wait_for(n, WAIT).await;
        let answer = out[n - 1]
            .result
            .clone()
            .unwrap_or_else(|e| panic!("function failed: {e}"));
        ReleaseId::parse(answer["release"].as_str().unwrap()).unwrap()
    }

    async fn stage(&self, id: &ReleaseId) -> (StageState, Option<String>) {
        let release = self.store.release(id).await.unwrap().unwrap().item;
        let stage = &release.stages["dev"];
        (stage.state(), stage.reason.clone())
    }

    async fn succeeded_detail(&self, id: &ReleaseId) -> String {
        self.store
            .history_of_release(id)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .find(|t| t.to == Some(StageState::Succeeded))
            .and_then(|t| t.detail)
            .unwrap_or_default()
    }

    async fn revision_status(&self, arn: &str) -> String {
        self.ecs
            .describe_task_definition()
            .task_definition(arn)
            .send()
            .await
            .unwrap()
            .task_definition
            .unwrap()
            .status
            .unwrap()
            .as_str()
            .to_string()
    }
}

fn revision(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn a_push_moves_the_triggers_pinned_to_its_families_and_a_rollback_moves_them_back() {
    let w = World::new().await;
    let (dev, prod) = (w.cluster("dev"), w.cluster("prod"));
    let (nightly, nightly_1) = w.family("nightly").await;
    let (_, backfill_1) = w.family("backfill").await;
    w.schedule("nightly", &dev, &nightly_1).await;
    w.schedule("follows", &dev, &nightly).await;
    w.schedule("elsewhere", &prod, &nightly_1).await;
    w.rule_target("hourly", &dev, &backfill_1).await;

    let v1 = w.push("20261116-abc1234", 1).await;
    assert_eq!(w.stage(&v1).await.0, StageState::Succeeded);
    let (_, nightly_v1) = w.family("nightly").await;
    let (_, backfill_v1) = w.family("backfill").await;
    assert_ne!(nightly_v1, nightly_1, "a new revision");
    let (moved, description, input) = w.scheduled("nightly").await;
    assert_eq!(moved, nightly_v1, "the pinned schedule moved");
    assert_eq!(description.as_deref(), Some("the nightly run"), "kept");
    assert_eq!(input.as_deref(), Some("{\"kept\": true}"), "kept");
    assert_eq!(
        w.targeted("hourly").await,
        backfill_v1,
        "the rule target moved"
    );
    assert_eq!(w.scheduled("follows").await.0, nightly, "unpinned: left");
    assert_eq!(
        w.scheduled("elsewhere").await.0,
        nightly_1,
        "another cluster: left"
    );
    let detail = w.succeeded_detail(&v1).await;
    let p = &w.p;
    for line in [
        format!(
            "schedule default/{p}-nightly moved from {} to {}",
            revision(&nightly_1),
            revision(&nightly_v1)
        ),
        format!(
            "rule default/{p}-hourly target etl moved from {} to {}",
            revision(&backfill_1),
            revision(&backfill_v1)
        ),
        format!(
            "schedule default/{p}-follows left as it is: it names {p}-etl-nightly without a revision"
        ),
    ] {
        assert!(detail.contains(&line), "{line:?} in {detail}");
    }

    let v2 = w.push("20261117-abc1234", 2).await;
    assert_eq!(w.stage(&v2).await.0, StageState::Succeeded);
    let (_, nightly_v2) = w.family("nightly").await;
    assert_eq!(w.scheduled("nightly").await.0, nightly_v2);

    // The operator puts v1 back: the same deploy path, its triggers moved back to v1's own
    // revisions, found by their tags (none registered again; the unpinned trigger goes on
    // naming the family, whose newest revision is still v2's).
    let aws = shiplane_e2e::aws_adapters(&w.account).await;
    let engine = aws.engine(&w.store);
    let pipeline = engine.pipeline().await.unwrap();
    let rollback = LaneEvent::Rollback {
        actor: "ana".into(),
        reason: "v2 breaks the nightly export".into(),
        to: Some(v1.clone()),
    };
    engine
        .on_lane(&pipeline, "etl", "dev", rollback, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(w.stage(&v1).await.0, StageState::Succeeded);
    assert_eq!(w.stage(&v2).await.0, StageState::RolledBack);
    let (back, _, _) = w.scheduled("nightly").await;
    let tags = w
        .ecs
        .describe_task_definition()
        .task_definition(&back)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let image = tags.task_definition.unwrap().container_definitions.unwrap()[0]
        .image
        .clone()
        .unwrap();
    let v1_digest = w.store.release(&v1).await.unwrap().unwrap().item.digest;
    assert!(image.ends_with(v1_digest.as_str()), "{image}");
    assert!(
        tags.tags
            .unwrap()
            .iter()
            .any(|t| t.value() == Some(v1.as_str())),
        "the restored release's revision"
    );
    assert_eq!(back, nightly_v1, "v1's own revision, reused");
    assert_eq!(w.scheduled("follows").await.0, nightly, "still unpinned");
}

#[tokio::test]
async fn a_trigger_aws_refuses_puts_back_the_moved_ones_and_fails_the_stage() {
    let w = World::new().await;
    let dev = w.cluster("dev");
    let (nightly, nightly_1) = w.family("nightly").await;
    let (_, backfill_1) = w.family("backfill").await;
    // Schedules move before rule targets: both schedules move, then the rule is refused.
    w.schedule("a-nightly", &dev, &nightly_1).await;
    w.schedule("b-nightly", &dev, &nightly_1).await;
    w.rule_target("hourly", &dev, &backfill_1).await;
    shiplane_e2e::refuse("PutTargets", &format!("{}-hourly", w.p));

    let id = w.push("20261116-abc1234", 1).await;
    let (state, reason) = w.stage(&id).await;
    assert_eq!(state, StageState::Failed, "{reason:?}");
    let reason = reason.unwrap_or_default();
    let p = &w.p;
    for part in [
        format!("rule default/{p}-hourly target etl was not moved"),
        "AccessDeniedException".to_string(),
        format!(
            "put back: schedule default/{p}-b-nightly (to {}), schedule default/{p}-a-nightly",
            revision(&nightly_1)
        ),
        "iam:PassRole".to_string(),
        "deregistered the new revisions".to_string(),
    ] {
        assert!(reason.contains(&part), "{part:?} in {reason}");
    }
    assert_eq!(w.scheduled("a-nightly").await.0, nightly_1, "put back");
    assert_eq!(w.scheduled("b-nightly").await.0, nightly_1, "put back");
    assert_eq!(w.targeted("hourly").await, backfill_1, "never moved");
    // The new revisions are withdrawn: the family's newest ACTIVE one is what it was, so
    // a trigger naming the family unpinned runs the old image too.
    let (_, newest) = w.family("nightly").await;
    assert_eq!(newest, nightly_1, "{nightly}");
    let registered = format!(
        "{}:{}",
        nightly,
        revision(&nightly_1)
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
            + 1
    );
    assert_eq!(w.revision_status(&registered).await, "INACTIVE");
}
