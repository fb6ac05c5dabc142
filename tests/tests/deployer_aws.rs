//! The AWS deployer and the engine against ECS, CodeDeploy, DynamoDB and SNS in the local
//! AWS emulator, over real HTTP.

use aws_sdk_ecs::types::{DesiredStatus, TaskDefinitionField};
use serde_json::Value;
use shiplane::aws::{
    AwsDeployer, DeployOutcome, DeployRequest, Deployer, DeploymentStatus, MigrationRun, Origin,
    SchedulerTimer, SnsNotifier, Tagged, started_by,
};
use shiplane::engine::{Engine, PushOutcome};
use shiplane::facts::{ContainerExit, TaskStopped};
use shiplane::inbound::Inbound;
use shiplane::inbound::ecr::{EcrImageAction, ImagePush, parse_push};
use shiplane::lambda::AwsPorts;
use shiplane::pipeline::Pipeline;
use shiplane::release::{Digest, Event, Release, ReleaseId, Stage, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::{
    Account, aws_config, deployed_world, notifications, pipeline_for, push_event,
    set_deployment_status,
};

const HOOK: &str = "shiplane-deploy-hook";

struct World {
    p: String,
    pipeline: Pipeline,
    account: Account,
    ecs: aws_sdk_ecs::Client,
    codedeploy: aws_sdk_codedeploy::Client,
    deployer: AwsDeployer,
    store: DynamoStore,
    notifier: SnsNotifier,
    timer: SchedulerTimer,
}

impl World {
    async fn new() -> World {
        let (p, account, store) = deployed_world().await;
        let config = aws_config().await;
        let ecs = aws_sdk_ecs::Client::new(&config);
        let codedeploy = aws_sdk_codedeploy::Client::new(&config);
        World {
            pipeline: Pipeline::from_toml(&pipeline_for(&p)).unwrap(),
            deployer: AwsDeployer::new(
                ecs.clone(),
                codedeploy.clone(),
                HOOK,
                shiplane::aws::AwsTriggers::from_config(&config),
            ),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&config), &account.topic_arn),
            timer: SchedulerTimer::new(
                aws_sdk_scheduler::Client::new(&config),
                &account.schedule_group,
                &account.promote_function_arn,
                &account.scheduler_role_arn,
            ),
            p,
            account,
            ecs,
            codedeploy,
            store,
        }
    }

    fn engine(&self) -> Engine<'_, AwsPorts> {
        Engine::new(&self.store, &self.deployer, &self.notifier, &self.timer)
    }

    /// Pushes an image to ECR and parses the event ECR would send.
    fn push(&self, service: &str, tag: &str) -> ImagePush {
        let event: aws_lambda_events::eventbridge::EventBridgeEvent<EcrImageAction> =
            serde_json::from_value(push_event(&format!("{}/{service}", self.p), tag)).unwrap();
        match parse_push(&event, shiplane::release::Timestamp::now()).unwrap() {
            Inbound::Accepted(p) => p,
            Inbound::Ignored(why) => panic!("{why}"),
        }
    }

    fn release(&self, service: &str, tag: &str) -> Release {
        let push = self.push(service, tag);
        let mut r = Release::new(
            ReleaseId::new(Timestamp::now()),
            service,
            &push.repository,
            push.digest,
            Some(tag),
            Timestamp::now(),
        );
        r.registry = push.registry;
        r
    }

    fn request<'a>(&'a self, release: &'a Release, env: &str) -> DeployRequest<'a> {
        let service = &self.pipeline.services[&release.service];
        DeployRequest {
            release,
            service,
            stage: service.stage(env).unwrap(),
            fresh: false,
        }
    }

    /// Deployment ids in one of this world's deployment groups, e.g. ("api", "api-dev").
    async fn deployments(&self, application: &str, group: &str) -> Vec<String> {
        self.codedeploy
            .list_deployments()
            .application_name(format!("{}-{application}", self.p))
            .deployment_group_name(format!("{}-{group}", self.p))
            .send()
            .await
            .unwrap()
            .deployments()
            .to_vec()
    }

    async fn family_revisions(&self, family: &str) -> usize {
        self.ecs
            .list_task_definitions()
            .family_prefix(family)
            .send()
            .await
            .unwrap()
            .task_definition_arns()
            .len()
    }

    async fn task_definition(&self, arn: &str) -> (Value, Vec<(String, String)>) {
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .unwrap();
        let tags = out
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect();
        (task_definition_json(out.task_definition().unwrap()), tags)
    }

    async fn appspec(&self, deployment_id: &str) -> (Value, String) {
        let d = self
            .codedeploy
            .get_deployment()
            .deployment_id(deployment_id)
            .send()
            .await
            .unwrap();
        let info = d.deployment_info.unwrap();
        let content = info
            .revision
            .and_then(|r| r.app_spec_content)
            .and_then(|c| c.content)
            .unwrap();
        (
            serde_json::from_str(&content).unwrap(),
            info.description.unwrap_or_default(),
        )
    }
}

/// The parts of a task definition that a new revision must keep, as comparable JSON.
fn task_definition_json(td: &aws_sdk_ecs::types::TaskDefinition) -> Value {
    let containers: Vec<Value> = td
        .container_definitions()
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name(),
                "image": c.image(),
                "memory": c.memory(),
                "essential": c.essential(),
                "environment": c.environment().iter().map(|e| (e.name(), e.value())).collect::<Vec<_>>(),
                "secrets": c.secrets().iter().map(|s| (s.name(), s.value_from())).collect::<Vec<_>>(),
                "ports": c.port_mappings().iter().map(|p| p.container_port()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "family": td.family(),
        "taskRoleArn": td.task_role_arn(),
        "executionRoleArn": td.execution_role_arn(),
        "networkMode": td.network_mode().map(|m| m.as_str()),
        "requiresCompatibilities": td.requires_compatibilities().iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "cpu": td.cpu(),
        "memory": td.memory(),
        "containers": containers,
    })
}

#[tokio::test]
async fn blue_green_registers_a_revision_equal_but_for_the_image_and_deploys_it() {
    let w = World::new().await;
    let r = w.release("api", "v1.0.0");
    let family = format!("{}-api-dev", w.p);
    let (base, _) = w.task_definition(&family).await;

    let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    let DeployOutcome::Started {
        deployment_id,
        task_definition,
    } = out
    else {
        panic!("{out:?}")
    };
    let (new, tags) = w.task_definition(&task_definition).await;

    // Everything but the app container's image is kept; the image is pinned by digest.
    let image = format!(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/{}/api@{}",
        w.p, r.digest
    );
    let mut expected = base.clone();
    expected["containers"][0]["image"] = Value::String(image.clone());
    assert_eq!(new, expected);
    assert_eq!(
        new["containers"][1], base["containers"][1],
        "the sidecar is untouched"
    );
    assert!(tags.contains(&("shiplane:release".into(), r.id.to_string())));
    assert!(tags.contains(&("shiplane:digest".into(), r.digest.to_string())));

    // The AppSpec is ECS AppSpec JSON naming the revision, the container and the hook function.
    let (spec, description) = w.appspec(&deployment_id).await;
    let props = &spec["Resources"][0]["TargetService"]["Properties"];
    assert_eq!(
        spec["Resources"][0]["TargetService"]["Type"],
        "AWS::ECS::Service"
    );
    assert_eq!(props["TaskDefinition"], task_definition.as_str());
    assert_eq!(props["LoadBalancerInfo"]["ContainerName"], "app");
    assert_eq!(props["LoadBalancerInfo"]["ContainerPort"], 8080);
    assert_eq!(
        spec["Hooks"],
        serde_json::json!([{"BeforeAllowTraffic": format!("{HOOK}:BeforeAllowTraffic")}]),
        "only the hooks that have checks, each through the function's alias for it"
    );
    assert!(description.contains(r.id.as_str()) && description.ends_with("to dev"));

    // CodeDeploy is given the environment's deployment config (a canary here), and the
    // deployment rolls itself back on a failure and on a stop, whatever the group says.
    let info = w
        .codedeploy
        .get_deployment()
        .deployment_id(&deployment_id)
        .send()
        .await
        .unwrap()
        .deployment_info
        .unwrap();
    assert_eq!(
        info.deployment_config_name(),
        Some("CodeDeployDefault.ECSCanary10Percent5Minutes")
    );
    let rollback = info.auto_rollback_configuration().unwrap();
    assert!(rollback.enabled());
    let events: Vec<&str> = rollback.events().iter().map(|e| e.as_str()).collect();
    assert_eq!(
        events,
        [
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_ALARM",
            "DEPLOYMENT_STOP_ON_REQUEST"
        ]
    );

    // Delivered again (a replay): the same revision and the same deployment.
    let again = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert_eq!(
        again,
        DeployOutcome::Started {
            deployment_id: deployment_id.clone(),
            task_definition: task_definition.clone()
        }
    );
    assert_eq!(w.family_revisions(&family).await, 2, "base + one revision");
    assert_eq!(w.deployments("api", "api-dev").await.len(), 1);
}

#[tokio::test]
async fn a_failure_after_registering_is_finished_by_the_replay_with_the_same_revision() {
    let w = World::new().await;
    let r = w.release("api", "v1.0.0");
    let family = format!("{}-api-dev", w.p);
    // The first attempt names a deployment group that does not exist: the revision is
    // registered, the deployment is not (the state a crash between the two leaves).
    let service = &w.pipeline.services["api"];
    let mut broken = service.stage("dev").unwrap().clone();
    if let shiplane::pipeline::Target::BlueGreen { codedeploy, .. } = &mut broken.target {
        codedeploy.deployment_group = format!("{}-missing", w.p);
    }
    let err = w
        .deployer
        .deploy(DeployRequest {
            release: &r,
            service,
            stage: &broken,
            fresh: false,
        })
        .await
        .unwrap_err();
    assert!(err.message.contains("CreateDeployment"), "{err}");
    assert_eq!(w.family_revisions(&family).await, 2);

    let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert!(matches!(out, DeployOutcome::Started { .. }), "{out:?}");
    assert_eq!(
        w.family_revisions(&family).await,
        2,
        "the same revision is reused"
    );
}

/// Issue #22 (simulation seed 411): an invocation registered a revision and died before
/// deploying it; another release registered the family's next revision meanwhile. The
/// invocation that takes the stage over finds the first among the family's newest
/// revisions instead of registering a third.
#[tokio::test]
async fn a_taken_over_deploy_finds_its_revision_behind_another_releases() {
    let w = World::new().await;
    let family = format!("{}-api-dev", w.p);
    let service = &w.pipeline.services["api"];
    let mut broken = service.stage("dev").unwrap().clone();
    if let shiplane::pipeline::Target::BlueGreen { codedeploy, .. } = &mut broken.target {
        codedeploy.deployment_group = format!("{}-missing", w.p);
    }
    let mut r = w.release("api", "v1.0.0");
    r.stages.insert(
        "dev".into(),
        Stage::new(StageState::Deploying, Timestamp::now()),
    );
    let dies = |release| DeployRequest {
        release,
        service,
        stage: &broken,
        fresh: false,
    };
    let first = r.clone();
    w.deployer.deploy(dies(&first)).await.unwrap_err();
    let other = w.release("api", "v2.0.0");
    w.deployer.deploy(w.request(&other, "dev")).await.unwrap();
    assert_eq!(
        w.family_revisions(&family).await,
        3,
        "the base, r's, other's"
    );
    r.stages.get_mut("dev").unwrap().resumed = 1;
    w.deployer.deploy(dies(&r)).await.unwrap_err();
    assert_eq!(
        w.family_revisions(&family).await,
        3,
        "the taker reuses r's revision"
    );
}

#[tokio::test]
async fn a_deployment_someone_else_started_blocks_instead_of_failing() {
    let w = World::new().await;
    let manual = w
        .codedeploy
        .create_deployment()
        .application_name(format!("{}-api", w.p))
        .deployment_group_name(format!("{}-api-dev", w.p))
        .description("deployed by hand")
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();
    let r = w.release("api", "v1.0.0");
    let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert_eq!(out, DeployOutcome::Blocked { by: manual });
}

/// Issue #22 (simulation seed 118): an invocation made a deployment and died before
/// recording it; the deployment ended. The invocation that takes the stage over after its
/// lease finds it by its description instead of making a second, and GetDeployment tells
/// whose it is and which revision it deploys.
#[tokio::test]
async fn a_taken_over_deploy_finds_its_dead_owners_deployment_even_after_it_ended() {
    let w = World::new().await;
    let mut r = w.release("api", "v1.0.0");
    r.stages.insert(
        "dev".into(),
        Stage::new(StageState::Deploying, Timestamp::now()),
    );
    let DeployOutcome::Started {
        deployment_id,
        task_definition,
    } = w.deployer.deploy(w.request(&r, "dev")).await.unwrap()
    else {
        panic!("not started")
    };
    set_deployment_status(&deployment_id, "Succeeded");
    r.stages.get_mut("dev").unwrap().resumed = 1;
    let again = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert_eq!(
        again,
        DeployOutcome::Started {
            deployment_id: deployment_id.clone(),
            task_definition: task_definition.clone(),
        }
    );
    assert_eq!(w.deployments("api", "api-dev").await.len(), 1);
    assert_eq!(
        w.deployer.origin(&deployment_id).await.unwrap(),
        Some(Origin::Release {
            release: r.id.clone(),
            environment: "dev".into(),
            attempt: 0,
            task_definition: Some(task_definition),
            restore: false,
        })
    );
    // A restore of the same release is a try of its own: not the deployment above.
    let stage = r.stages.get_mut("dev").unwrap();
    stage.redeploy = true;
    let restore = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert!(
        matches!(&restore, DeployOutcome::Started { deployment_id: d, .. } if *d != deployment_id),
        "{restore:?}"
    );
}

/// A restore of the last known good deploys the very revision it deployed before (recorded
/// on its stage), even after a newer release registered one of its own: it registers none.
#[tokio::test]
async fn a_restore_deploys_the_last_known_goods_own_pinned_revision_again() {
    let w = World::new().await;
    let family = format!("{}-api-dev", w.p);
    let mut good = w.release("api", "v1.0.0");
    good.stages.insert(
        "dev".into(),
        Stage::new(StageState::Deploying, Timestamp::now()),
    );
    let DeployOutcome::Started {
        deployment_id,
        task_definition: pinned,
    } = w.deployer.deploy(w.request(&good, "dev")).await.unwrap()
    else {
        panic!("not started")
    };
    set_deployment_status(&deployment_id, "Succeeded");
    let bad = w.release("api", "v1.0.1");
    let DeployOutcome::Started {
        deployment_id: newer,
        task_definition: newer_revision,
    } = w.deployer.deploy(w.request(&bad, "dev")).await.unwrap()
    else {
        panic!("not started")
    };
    set_deployment_status(&newer, "Stopped");
    assert_ne!(newer_revision, pinned);
    let revisions = w.family_revisions(&family).await;

    let stage = good.stages.get_mut("dev").unwrap();
    stage.task_definition = Some(pinned.clone());
    stage.redeploy = true;
    let restore = w.deployer.deploy(w.request(&good, "dev")).await.unwrap();
    let DeployOutcome::Started {
        deployment_id: restoring,
        task_definition,
    } = restore
    else {
        panic!("{restore:?}")
    };
    assert_eq!(
        task_definition, pinned,
        "the pinned revision, not a new one"
    );
    assert_eq!(
        w.family_revisions(&family).await,
        revisions,
        "none registered"
    );
    let (spec, _) = w.appspec(&restoring).await;
    assert_eq!(
        spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"],
        pinned.as_str()
    );
}

#[tokio::test]
async fn codedeploys_rollback_deployment_is_told_from_others_by_creator_and_rollback_info() {
    let w = World::new().await;
    let r = w.release("api", "v1.0.0");
    let DeployOutcome::Started { deployment_id, .. } =
        w.deployer.deploy(w.request(&r, "dev")).await.unwrap()
    else {
        panic!("not started")
    };
    w.deployer
        .stop_deployment(w.request(&r, "dev"), &deployment_id, true)
        .await
        .unwrap();
    let stops = shiplane_e2e::codedeploy_reports()["stops"].clone();
    let rollback = stops
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["deploymentId"] == deployment_id.as_str())
        .and_then(|s| s["rollbackDeploymentId"].as_str())
        .unwrap()
        .to_string();
    assert_eq!(
        w.deployer.origin(&rollback).await.unwrap(),
        Some(Origin::RollbackOf(deployment_id.clone()))
    );
    assert!(matches!(
        w.deployer.origin(&deployment_id).await.unwrap(),
        Some(Origin::Release { .. })
    ));
    assert_eq!(
        w.deployer.origin("d-DOESNOTEXIST").await.unwrap(),
        None,
        "a deployment CodeDeploy does not know is no rollback"
    );
}

#[tokio::test]
async fn rolling_updates_the_service_with_the_circuit_breaker_once() {
    let w = World::new().await;
    let r = w.release("tiles", "v1");
    let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    let DeployOutcome::Started {
        task_definition,
        deployment_id,
    } = out
    else {
        panic!("{out:?}")
    };
    // Its deployment names the release by its revision's tags, for an event whose record
    // was lost (issue #22, simulation seed 241).
    let (cluster, service) = (format!("{}-dev", w.p), format!("{}-tiles-dev", w.p));
    let before = Timestamp::now();
    let tagged = w
        .deployer
        .ecs_origin(&cluster, &service, &deployment_id)
        .await
        .unwrap()
        .unwrap();
    let created = tagged
        .created
        .expect("ECS says when it made the deployment");
    assert_eq!(
        tagged,
        Tagged {
            release: r.id.clone(),
            environment: "dev".into(),
            task_definition: task_definition.clone(),
            created: Some(created),
        }
    );
    // Made just now, by ECS's clock (to the second).
    assert!(
        created.0 / 1000 <= before.0 / 1000 && before.0 - created.0 < 60_000,
        "{created:?}"
    );
    assert_eq!(
        w.deployer
            .ecs_origin(&cluster, &service, "ecs-svc/0000")
            .await
            .unwrap(),
        None,
        "a deployment ECS does not list"
    );
    let svc = w
        .ecs
        .describe_services()
        .cluster(format!("{}-dev", w.p))
        .services(format!("{}-tiles-dev", w.p))
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0);
    assert_eq!(svc.task_definition(), Some(task_definition.as_str()));
    let breaker = svc
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker())
        .unwrap();
    assert!(breaker.enable() && breaker.rollback());
    let (td, _) = w.task_definition(&task_definition).await;
    assert!(
        td["containers"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{}", r.digest))
    );
    let again = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    assert_eq!(
        w.family_revisions(&format!("{}-tiles-dev", w.p)).await,
        2,
        "a replay registers nothing new"
    );
    assert!(
        matches!(&again, DeployOutcome::Started { deployment_id: d, .. } if *d == deployment_id),
        "a replay adopts the deployment: {again:?}"
    );
    assert_eq!(
        w.deployer
            .deployment_status(w.request(&r, "dev"), &deployment_id)
            .await
            .unwrap(),
        DeploymentStatus::InProgress
    );
    // The stage gave that deployment up (a late one may have replaced it): deploying
    // again makes a new one of the same revision, and the old one reads as replaced.
    let mut gave_up = r.clone();
    let mut stage = Stage::new(StageState::Deploying, Timestamp::now());
    stage.ended.push(deployment_id.clone());
    stage.task_definition = Some(task_definition.clone());
    gave_up.stages.insert("dev".into(), stage);
    let anew = w.deployer.deploy(w.request(&gave_up, "dev")).await.unwrap();
    let DeployOutcome::Started {
        deployment_id: fresh,
        task_definition: same,
    } = anew
    else {
        panic!("{anew:?}")
    };
    assert_ne!(
        fresh, deployment_id,
        "a new deployment, not the one given up"
    );
    assert_eq!(same, task_definition);
    assert_eq!(
        w.deployer
            .deployment_status(w.request(&gave_up, "dev"), &deployment_id)
            .await
            .unwrap(),
        DeploymentStatus::Replaced
    );
    assert_eq!(
        w.deployer
            .deployment_status(w.request(&gave_up, "dev"), &fresh)
            .await
            .unwrap(),
        DeploymentStatus::InProgress
    );
}

#[tokio::test]
async fn data_jobs_get_new_revisions_of_every_family_and_nothing_runs() {
    let w = World::new().await;
    let r = w.release("etl", "20261116-abc1234");
    let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
    let DeployOutcome::Registered {
        task_definitions, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(task_definitions.len(), 2);
    for arn in &task_definitions {
        let (td, _) = w.task_definition(arn).await;
        assert!(
            td["containers"][0]["image"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{}/etl@{}", w.p, r.digest))
        );
        assert!(
            td["containers"][1]["image"]
                .as_str()
                .unwrap()
                .contains("fluent-bit"),
            "other images kept"
        );
    }
    let tasks = w
        .ecs
        .list_tasks()
        .cluster(format!("{}-dev", w.p))
        .send()
        .await
        .unwrap();
    assert!(tasks.task_arns().is_empty(), "nothing runs");
}

#[tokio::test]
async fn the_migration_task_runs_the_command_with_the_new_image_once() {
    let w = World::new().await;
    let r = w.release("db", "v7");
    let MigrationRun::Running { task_arn: arn } = w
        .deployer
        .run_migration(w.request(&r, "dev"))
        .await
        .unwrap()
    else {
        panic!("the task runs")
    };
    let again = w
        .deployer
        .run_migration(w.request(&r, "dev"))
        .await
        .unwrap();
    assert_eq!(
        again,
        MigrationRun::Running {
            task_arn: arn.clone()
        },
        "a replay finds the task it started"
    );
    let cluster = format!("{}-dev", w.p);
    let task = w
        .ecs
        .describe_tasks()
        .cluster(&cluster)
        .tasks(&arn)
        .send()
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    assert_eq!(task.started_by(), Some(started_by(&r, "dev").as_str()));
    let overrides = task.overrides().unwrap().container_overrides();
    assert_eq!(overrides[0].name(), Some("app"));
    assert_eq!(overrides[0].command(), ["./migrate", "up"]);
    let (td, _) = w.task_definition(task.task_definition_arn().unwrap()).await;
    assert!(
        td["containers"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("@{}", r.digest))
    );
    let listed = w
        .ecs
        .list_tasks()
        .cluster(&cluster)
        .desired_status(DesiredStatus::Running)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.task_arns().len(), 1);
}

fn kinds(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| {
            m["MessageAttributes"]["kind"]["Value"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn engine_queues_supersedes_and_deploys_only_the_newest_when_the_lane_frees() {
    let w = World::new().await;
    let e = w.engine();
    let created = |o: PushOutcome| match o {
        PushOutcome::Created { release, .. } => release,
        other => panic!("{other:?}"),
    };
    // As image-push runs it: pushes made in one second are ordered by ECR's push times.
    let ecr = shiplane::aws::EcrPushClock::from_config(&aws_config().await);
    let mut pushed = Vec::new();
    for tag in ["v1.0.1", "v1.0.2", "v1.0.3"] {
        let push = w.push("api", tag);
        let out = e.on_push_with(&push, &ecr, Timestamp::now()).await;
        pushed.push(created(out.unwrap()));
    }
    let [r1, r2, r3] = <[ReleaseId; 3]>::try_from(pushed).unwrap();
    let state = |id: ReleaseId| {
        let store = &w.store;
        async move { store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone() }
    };
    let s1 = state(r1.clone()).await;
    assert_eq!(s1.state(), StageState::Deploying);
    assert_eq!(state(r2.clone()).await.state(), StageState::Superseded);
    assert_eq!(state(r3.clone()).await.state(), StageState::Queued);

    // The first deployment ends (failed); CodeDeploy shows it, and the engine hears of it.
    let d1 = s1.deployment_id.unwrap();
    set_deployment_status(&d1, "Failed");
    let pipeline = e.pipeline().await.unwrap();
    e.on_event(
        &pipeline,
        "api",
        "dev",
        &r1,
        Event::DeploymentFailed {
            reason: "health checks".into(),
        },
        Timestamp::now(),
    )
    .await
    .unwrap();
    let s3 = state(r3.clone()).await;
    assert_eq!(s3.state(), StageState::Deploying);
    let d3 = s3.deployment_id.unwrap();
    let (spec, _) = w.appspec(&d3).await;
    let (td, _) = w
        .task_definition(
            spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
                .as_str()
                .unwrap(),
        )
        .await;
    let r3_digest: Digest = w.store.release(&r3).await.unwrap().unwrap().item.digest;
    assert!(
        td["containers"][0]["image"]
            .as_str()
            .unwrap()
            .ends_with(r3_digest.as_str())
    );
    assert_eq!(
        w.deployments("api", "api-dev").await.len(),
        2,
        "r1 and r3; the superseded r2 never deployed"
    );

    let sent = notifications(&w.account.queue_url);
    let k = kinds(&sent);
    for kind in [
        "release_created",
        "stage_started",
        "deployment_created",
        "queued",
        "superseded",
        "failed",
    ] {
        assert!(k.contains(&kind.to_string()), "{kind} not in {k:?}");
    }
    let superseded = sent
        .iter()
        .find(|m| m["MessageAttributes"]["kind"]["Value"] == "superseded")
        .unwrap();
    assert_eq!(superseded["MessageAttributes"]["service"]["Value"], "api");
    assert_eq!(
        superseded["MessageAttributes"]["environment"]["Value"],
        "dev"
    );
    assert_eq!(
        superseded["MessageAttributes"]["state"]["Value"],
        "superseded"
    );
    let body: Value = serde_json::from_str(superseded["Message"].as_str().unwrap()).unwrap();
    assert_eq!(body["release"], r2.as_str());
    assert!(
        superseded["Subject"]
            .as_str()
            .unwrap()
            .contains("superseded")
    );
}

#[tokio::test]
async fn migration_exit_zero_deploys_and_exit_one_fails_before_anything_is_deployed() {
    let w = World::new().await;
    let e = w.engine();
    // As image-push runs it: the two pushes may share a second, and ECR's push times order
    // them (without, v2 could be placed before v1 by its digest, and superseded).
    let ecr = shiplane::aws::EcrPushClock::from_config(&aws_config().await);
    for (tag, failure) in [("v1", None), ("v2", Some(1))] {
        let out = e
            .on_push_with(&w.push("db", tag), &ecr, Timestamp::now())
            .await
            .unwrap();
        let PushOutcome::Created { release, state, .. } = out else {
            panic!("{out:?}")
        };
        assert_eq!(state, Some(StageState::Migrating));
        let task_arn = w
            .store
            .release(&release)
            .await
            .unwrap()
            .unwrap()
            .item
            .stages["dev"]
            .started()
            .unwrap()
            .to_string();
        let before = w.deployments("db", "db-dev").await.len();
        let stopped = TaskStopped {
            task_arn,
            started_by: None,
            stopped_reason: "Essential container in task exited".into(),
            containers: vec![ContainerExit {
                name: "app".into(),
                exit_code: Some(failure.unwrap_or(0)),
                reason: None,
            }],
        };
        e.on_task_stopped(&stopped, Timestamp::now()).await.unwrap();
        let stage = w
            .store
            .release(&release)
            .await
            .unwrap()
            .unwrap()
            .item
            .stages["dev"]
            .clone();
        let after = w.deployments("db", "db-dev").await.len();
        match failure {
            None => {
                assert_eq!(stage.state(), StageState::Deploying);
                assert_eq!(after, before + 1, "exit 0 starts the deployment");
                set_deployment_status(stage.deployment_id.as_deref().unwrap(), "Succeeded");
                let pipeline = e.pipeline().await.unwrap();
                e.on_event(
                    &pipeline,
                    "db",
                    "dev",
                    &release,
                    Event::DeploymentSucceeded,
                    Timestamp::now(),
                )
                .await
                .unwrap();
            }
            Some(_) => {
                assert_eq!(stage.state(), StageState::Failed);
                assert!(stage.reason.unwrap().contains("exited with code 1"));
                assert_eq!(after, before, "nothing deployed after a failed migration");
                let history = w.store.history_of_release(&release).await.unwrap();
                assert!(
                    history
                        .last()
                        .unwrap()
                        .detail
                        .as_deref()
                        .unwrap()
                        .contains("exited with code 1")
                );
            }
        }
    }
    let sent = notifications(&w.account.queue_url);
    let failed = sent
        .iter()
        .find(|m| m["MessageAttributes"]["kind"]["Value"] == "failed")
        .unwrap();
    assert!(
        failed["Message"]
            .as_str()
            .unwrap()
            .contains("exited with code 1"),
        "the reason is in the notification"
    );
}

#[tokio::test]
async fn a_success_restarts_the_services_it_names_once_and_both_histories_say_so() {
    let w = World::new().await;
    let e = w.engine();
    let (cluster, tiles) = (format!("{}-dev", w.p), format!("{}-tiles-dev", w.p));
    let primary = |svc: &aws_sdk_ecs::types::Service| {
        let d = svc
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .unwrap();
        (
            d.id().unwrap().to_string(),
            d.task_definition().unwrap().to_string(),
        )
    };
    let service = || async {
        w.ecs
            .describe_services()
            .cluster(&cluster)
            .services(&tiles)
            .send()
            .await
            .unwrap()
            .services
            .unwrap()
            .remove(0)
    };
    let (before, runs) = primary(&service().await);
    // A restart counts a deployment made in its success's second as its own (to the
    // second, as ECS's clock and ours may differ): the world's was made just now.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // db v1 migrates, deploys and bakes in dev; an operator ends the bake: it succeeds.
    let out = e
        .on_push(&w.push("db", "v1"), Timestamp::now())
        .await
        .unwrap();
    let PushOutcome::Created { release, .. } = out else {
        panic!("{out:?}")
    };
    let stage = |id: &ReleaseId| {
        let store = &w.store;
        let id = id.clone();
        async move { store.release(&id).await.unwrap().unwrap().item.stages["dev"].clone() }
    };
    let stopped = TaskStopped {
        task_arn: stage(&release).await.started().unwrap().to_string(),
        started_by: None,
        stopped_reason: "Essential container in task exited".into(),
        containers: vec![ContainerExit {
            name: "app".into(),
            exit_code: Some(0),
            reason: None,
        }],
    };
    e.on_task_stopped(&stopped, Timestamp::now()).await.unwrap();
    let deployment = stage(&release).await.deployment_id.unwrap();
    set_deployment_status(&deployment, "Succeeded");
    let pipeline = e.pipeline().await.unwrap();
    for event in [
        Event::DeploymentSucceeded,
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "schema change verified".into(),
        },
    ] {
        e.on_event(&pipeline, "db", "dev", &release, event, Timestamp::now())
            .await
            .unwrap();
    }
    let done = stage(&release).await;
    assert_eq!(done.state(), StageState::Succeeded);
    assert!(done.restarts().is_empty(), "owed no more: {done:?}");

    // tiles runs new tasks of the same revision: one new ECS deployment.
    let (restart, still) = primary(&service().await);
    assert_ne!(restart, before, "a new deployment");
    assert_eq!(still, runs, "of the revision it ran");
    let history = w.store.history_of_release(&release).await.unwrap();
    let recorded = history
        .iter()
        .find(|t| t.cause == shiplane::release::Cause::Restarted)
        .expect("the restart in db's history");
    assert!(
        recorded.detail.as_deref().unwrap().contains(&restart),
        "{recorded:?}"
    );
    let theirs = w.store.history_of_service("tiles", 50).await.unwrap();
    assert!(
        theirs
            .iter()
            .any(|t| t.cause == shiplane::release::Cause::Restarted
                && t.detail
                    .as_deref()
                    .is_some_and(|d| d.contains(&release.to_string()) && d.contains(&restart))),
        "the restart in tiles' history: {theirs:?}"
    );

    // Asked again for the same success (a replay): the restart is found, none is made.
    let again = w
        .deployer
        .restart(&cluster, &tiles, done.succeeded_at.unwrap())
        .await
        .unwrap();
    assert_eq!(again, restart);
    assert_eq!(primary(&service().await).0, restart);
}

#[tokio::test]
async fn a_clean_up_deregisters_the_environments_revisions_beyond_keep_never_a_kept_releases() {
    let w = World::new().await;
    let family = format!("{}-tiles-dev", w.p);
    let first = w.family_revisions(&family).await;
    // Six tiles releases deploy in dev, one after the other: a revision each.
    let mut deployed = Vec::new();
    for n in 1..=6 {
        let r = w.release("tiles", &format!("v{n}"));
        let out = w.deployer.deploy(w.request(&r, "dev")).await.unwrap();
        let DeployOutcome::Started {
            task_definition, ..
        } = out
        else {
            panic!("{out:?}")
        };
        deployed.push((r, task_definition));
    }
    assert_eq!(w.family_revisions(&family).await, first + 6);
    // v6 succeeded; the lane keeps v1 too (say, the one a rollback goes to). Keep 2.
    let (v6, td6) = deployed[5].clone();
    let mut succeeded = v6.clone();
    let mut stage = Stage::new(StageState::Succeeded, Timestamp::now());
    stage.task_definition = Some(td6);
    succeeded.stages.insert("dev".into(), stage);
    let protect = [deployed[0].0.id.clone(), v6.id.clone()];
    let done = w
        .deployer
        .clean_up(w.request(&succeeded, "dev"), 2, &protect)
        .await;
    assert!(done.error.is_none(), "{done:?}");
    let gone = done.deregistered;
    let name = |td: &str| td.rsplit('/').next().unwrap().to_string();
    // The newest two (v6, v5) kept, v1 protected, the service's own first revision (not
    // Shiplane's) untouched: v4, v3 and v2 deregistered, newest first.
    assert_eq!(
        gone,
        [&deployed[3].1, &deployed[2].1, &deployed[1].1].map(|td| name(td))
    );
    assert_eq!(w.family_revisions(&family).await, first + 3);
    // Done again: nothing more to deregister.
    let again = w
        .deployer
        .clean_up(w.request(&succeeded, "dev"), 2, &protect)
        .await;
    assert!(
        again.error.is_none() && again.deregistered.is_empty(),
        "{again:?}"
    );
}

/// tiles in dev, its migration stop-first: the service as ECS describes it (desired
/// count, revision, the stop's tag).
async fn tiles_dev(w: &World) -> (i32, String, Option<String>) {
    let svc = w
        .ecs
        .describe_services()
        .cluster(format!("{}-dev", w.p))
        .services(format!("{}-tiles-dev", w.p))
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0);
    let tag = svc
        .tags()
        .iter()
        .find(|t| t.key() == Some("shiplane:stopped-from"))
        .and_then(|t| t.value().map(str::to_string));
    (
        svc.desired_count,
        svc.task_definition().unwrap().to_string(),
        tag,
    )
}

/// Whether ECS's circuit breaker rolls tiles-dev back when a deployment fails.
async fn tiles_dev_breaker_rolls_back(w: &World) -> Option<bool> {
    w.ecs
        .describe_services()
        .cluster(format!("{}-dev", w.p))
        .services(format!("{}-tiles-dev", w.p))
        .send()
        .await
        .unwrap()
        .services
        .unwrap()
        .remove(0)
        .deployment_configuration
        .and_then(|c| c.deployment_circuit_breaker)
        .map(|b| b.rollback)
}

#[tokio::test]
async fn a_stop_first_migration_runs_with_the_service_stopped_and_brings_it_back_up() {
    use shiplane::release::Cause;
    let w = World::new().await;
    let e = w.engine();
    shiplane_e2e::edit_pipeline(&w.store, |s| {
        s.replace(
            &format!("service = \"{}-tiles-dev\"\n", w.p),
            &format!(
                "service = \"{p}-tiles-dev\"\nmigration = {{ family = \"{p}-db-migrate\", command = [\"./migrate\"], container = \"app\", mode = \"stop-first\" }}\n",
                p = w.p
            ),
        )
    })
    .await;
    let (desired, ran, _) = tiles_dev(&w).await;
    assert!(desired > 0, "provisioned running");
    let ecr = shiplane::aws::EcrPushClock::from_config(&aws_config().await);
    let migrate = |release: ReleaseId, exit: i64| {
        let (e, w) = (&e, &w);
        async move {
            let stage = w
                .store
                .release(&release)
                .await
                .unwrap()
                .unwrap()
                .item
                .stages["dev"]
                .clone();
            let task_arn = stage.started().expect("the migration started").to_string();
            // ECS stops the task (its exit code as given), then says so.
            let cluster = format!("{}-dev", w.p);
            shiplane_e2e::provision(&[
                "task-stopped",
                "--cluster",
                &cluster,
                "--task-arn",
                &task_arn,
                "--exit-code",
                &exit.to_string(),
            ]);
            let stopped = TaskStopped {
                task_arn,
                started_by: None,
                stopped_reason: "Essential container in task exited".into(),
                containers: vec![ContainerExit {
                    name: "app".into(),
                    exit_code: Some(exit),
                    reason: None,
                }],
            };
            e.on_task_stopped(&stopped, Timestamp::now()).await.unwrap();
            w.store
                .release(&release)
                .await
                .unwrap()
                .unwrap()
                .item
                .stages["dev"]
                .clone()
        }
    };
    let causes = |release: ReleaseId| {
        let w = &w;
        async move {
            w.store
                .history_of_release(&release)
                .await
                .unwrap()
                .into_iter()
                .filter(|t| matches!(t.cause, Cause::AppStopped | Cause::AppStarted))
                .map(|t| (t.cause, t.detail.unwrap_or_default()))
                .collect::<Vec<_>>()
        }
    };

    // v1: the service is stopped (its count kept in a tag) before the migration runs.
    let out = e
        .on_push_with(&w.push("tiles", "v1"), &ecr, Timestamp::now())
        .await
        .unwrap();
    let PushOutcome::Created {
        release: v1, state, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(state, Some(StageState::Migrating));
    assert_eq!(
        tiles_dev(&w).await,
        (0, ran.clone(), Some(desired.to_string()))
    );
    let stopped = causes(v1.clone()).await;
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(
        stopped[0].1.contains(&format!("from {desired} task")) && stopped[0].1.contains("to 0"),
        "{stopped:?}"
    );

    // It migrates: one UpdateService brings the service back on v1's revision alone.
    let stage = migrate(v1.clone(), 0).await;
    assert_eq!(stage.state(), StageState::Deploying);
    let (count, revision, tag) = tiles_dev(&w).await;
    assert_eq!((count, tag), (desired, None));
    assert_eq!(Some(revision.clone()), stage.task_definition);
    assert_eq!(
        tiles_dev_breaker_rolls_back(&w).await,
        Some(false),
        "a failed bring-up is not rolled back to the old version, on the new schema"
    );
    let pipeline = e.pipeline().await.unwrap();
    // Once its migration completed, the version the service ran is never started again
    // on what it changed: asked to, the adapter refuses for good, naming the way out.
    let migrated = w.store.release(&v1).await.unwrap().unwrap().item;
    let tiles = &pipeline.services["tiles"];
    let req = DeployRequest {
        release: &migrated,
        service: tiles,
        stage: tiles.stage("dev").unwrap(),
        fresh: false,
    };
    let refused = w.deployer.start_app(req, Some(1)).await.unwrap_err();
    assert!(!refused.retryable, "{refused:?}");
    assert!(
        refused.message.contains("the migration completed")
            && refused.message.contains("shiplane retry"),
        "{}",
        refused.message
    );
    assert_eq!(tiles_dev(&w).await.0, desired, "nothing changed");
    e.on_event(
        &pipeline,
        "tiles",
        "dev",
        &v1,
        Event::DeploymentSucceeded,
        Timestamp::now(),
    )
    .await
    .unwrap();
    let both = causes(v1.clone()).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[1].0, Cause::AppStarted);
    assert!(both[1].1.contains("stopped for its migration"), "{both:?}");
    let lane = w.store.lane("tiles", "dev").await.unwrap().item;
    assert_eq!(lane.down, None);
    assert_eq!(
        lane.schema.map(|s| s.release),
        Some(v1.clone()),
        "nothing pushed before v1 is put back here by itself"
    );
    e.on_event(
        &pipeline,
        "tiles",
        "dev",
        &v1,
        Event::PromotedEarly {
            actor: "ana".into(),
            reason: "checked".into(),
        },
        Timestamp::now(),
    )
    .await
    .unwrap();

    // v2's migration fails: the service is started again on v1's revision, which it ran.
    let out = e
        .on_push_with(&w.push("tiles", "v2"), &ecr, Timestamp::now())
        .await
        .unwrap();
    let PushOutcome::Created { release: v2, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(tiles_dev(&w).await.0, 0);
    assert_eq!(migrate(v2.clone(), 1).await.state(), StageState::Failed);
    assert_eq!(tiles_dev(&w).await, (desired, revision, None));
    let ended = causes(v2.clone()).await;
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(
        ended[1].1.contains("started again on the revision it ran"),
        "{ended:?}"
    );
    assert_eq!(w.store.lane("tiles", "dev").await.unwrap().item.down, None);
    let kinds: Vec<String> = notifications(&w.account.queue_url)
        .iter()
        .map(|m| {
            m["MessageAttributes"]["kind"]["Value"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for kind in ["app_stopped", "app_started"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} announced: {kinds:?}"
        );
    }
}
