//! What each command does; output goes through `render`.

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;
use shiplane::aws::{
    AwsDeployer, CloudWatchAlarms, Notification, Notifier, NotifyError, SchedulerTimer, SnsNotifier,
};
use shiplane::engine::{Deps, EngineError, PushOutcome, Report};
use shiplane::pipeline::Pipeline;
use shiplane::release::{Digest, Event, LaneEvent, Release, ReleaseId, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore, StoredPipeline};

use crate::render::{self, LaneStatus};
use crate::{Cli, Command, ConfigCommand, Failure, Operator, Reach, TableCommand, config_file};

pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Config(ConfigCommand::Validate { ref file }) => {
            config_file::validate(file, cli.json)
        }
        Command::Config(ConfigCommand::Diff { ref file }) => {
            config_file::diff(&store(&cli.table).await, file, cli.json).await
        }
        Command::Config(ConfigCommand::Apply {
            ref file,
            ref actor,
            force,
        }) => {
            let store = store(&cli.table).await;
            config_file::apply(&store, file, force, actor.clone(), cli.json).await
        }
        Command::Config(ConfigCommand::Show) => {
            let store = store(&cli.table).await;
            let current = current_pipeline(&store).await?;
            render::pipeline_source(&current, cli.json);
            Ok(())
        }
        Command::Status { ref service } => {
            let store = store(&cli.table).await;
            status(&store, service.as_deref(), cli.json).await
        }
        Command::History { ref target, limit } => {
            let store = store(&cli.table).await;
            history(&store, target, limit, cli.json).await
        }
        Command::Approve {
            ref release,
            ref environment,
            ref who,
        } => {
            let event = Event::Approved {
                actor: actor_name(who.actor.clone()).await?,
            };
            release_event(&cli, release, environment, event, who).await
        }
        Command::Reject {
            ref release,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = Event::Rejected {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(&cli, release, environment, event, who).await
        }
        Command::Pause {
            ref service,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = LaneEvent::Pause {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
            };
            lane_event(&cli, service, environment, event, who).await
        }
        Command::Resume {
            ref service,
            ref environment,
            ref who,
        } => {
            let event = LaneEvent::Resume {
                actor: actor_name(who.actor.clone()).await?,
            };
            lane_event(&cli, service, environment, event, who).await
        }
        Command::Deploy {
            ref service,
            ref digest,
            ref tag,
            ref registry,
            ref reason,
            ref who,
        } => {
            let deps = deps(&cli.table, &who.aws).await;
            let (digest, found_in) = match (digest, tag) {
                (Some(d), _) => (
                    Digest::parse(d).map_err(|e| Failure::BadInput(e.to_string()))?,
                    None,
                ),
                (None, Some(t)) => {
                    let pipeline = deps.engine().pipeline().await.map_err(engine_failure)?;
                    let Some(svc) = pipeline.services.get(service.as_str()) else {
                        return Err(unknown_service(&pipeline, service));
                    };
                    let (d, registry) = digest_of_tag(&svc.repository, t).await?;
                    (d, Some(registry))
                }
                (None, None) => {
                    return Err(Failure::BadInput("give --digest or --tag".into()));
                }
            };
            let registry = registry.clone().or(found_in);
            let outcome = deps
                .engine()
                .on_operator_deploy(
                    service,
                    digest,
                    tag.clone(),
                    registry,
                    &actor_name(who.actor.clone()).await?,
                    reason,
                    Timestamp::now(),
                )
                .await
                .map_err(engine_failure)?;
            match outcome {
                PushOutcome::Created {
                    release,
                    environment,
                    state,
                } => {
                    let state = state.map_or_else(|| "-".to_string(), |s| s.to_string());
                    if cli.json {
                        println!(
                            "{}",
                            serde_json::json!({"release": release, "environment": environment, "state": state})
                        );
                    } else {
                        println!("release {release}: {state} in {environment}");
                    }
                    Ok(())
                }
                PushOutcome::Replayed { release, .. } => Err(Failure::BadInput(format!(
                    "that digest is already release {release}; use `shiplane retry` or `shiplane rollback --to {release}`"
                ))),
                PushOutcome::Ignored(why) => Err(Failure::BadInput(why)),
            }
        }
        Command::Retry {
            ref release,
            ref environment,
            ref who,
        } => {
            let event = Event::Retry {
                actor: actor_name(who.actor.clone()).await?,
            };
            release_event(&cli, release, environment, event, who).await
        }
        Command::Promote {
            ref release,
            ref environment,
            skip_bake: _,
            ref reason,
            ref who,
        } => {
            let event = Event::PromotedEarly {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(&cli, release, environment, event, who).await
        }
        Command::Rollback {
            ref service,
            ref environment,
            ref to,
            ref reason,
            ref who,
        } => {
            let to = to
                .as_deref()
                .map(ReleaseId::parse)
                .transpose()
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let event = LaneEvent::Rollback {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
                to,
            };
            lane_event(&cli, service, environment, event, who).await
        }
        Command::Cancel {
            ref release,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = Event::Cancelled {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(&cli, release, environment, event, who).await
        }
        Command::Unblock {
            ref service,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = LaneEvent::Unblock {
                actor: actor_name(who.actor.clone()).await?,
                reason: reason.clone(),
            };
            lane_event(&cli, service, environment, event, who).await
        }
        Command::Reconcile {
            ref service,
            ref aws,
        } => {
            let deps = deps(&cli.table, aws).await;
            let engine = deps.engine();
            let pipeline = engine.pipeline().await.map_err(engine_failure)?;
            if let Some(s) = service
                && !pipeline.services.contains_key(s)
            {
                return Err(unknown_service(&pipeline, s));
            }
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let cloudwatch = CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(&config));
            let pass = engine
                .reconcile_with_alarms(&cloudwatch, &pipeline, service.as_deref(), Timestamp::now())
                .await
                .map_err(engine_failure)?;
            render::transitions(&pass.report.transitions, cli.json);
            if let Some(why) = &pass.alarms_unread {
                eprintln!(
                    "CloudWatch could not be read ({why}); {} bake(s) that are over stay owed until a pass reads the alarms",
                    pass.bakes_left_owed.len()
                );
            }
            for f in &pass.failed {
                eprintln!(
                    "not reconciled: {}/{}: {}",
                    f.service,
                    f.environment
                        .as_deref()
                        .unwrap_or("(its lanes could not be listed)"),
                    f.error
                );
            }
            if pass.failed.is_empty() {
                Ok(())
            } else {
                Err(Failure::Failed(format!(
                    "{} lane(s) not reconciled (listed above); the others were",
                    pass.failed.len()
                )))
            }
        }
        Command::Metrics(ref args) => {
            let store = store(&cli.table).await;
            let stored = current_pipeline(&store).await?;
            let pipeline = Pipeline::from_toml(&stored.source).map_err(|e| {
                Failure::Failed(format!(
                    "the stored pipeline (version {}) no longer validates: {e}",
                    stored.version
                ))
            })?;
            crate::metrics::run(&store, &pipeline, args, cli.json).await
        }
        Command::Table(TableCommand::Create) => {
            let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
            let client = aws_sdk_dynamodb::Client::new(&config);
            DynamoStore::create_table(&client, &cli.table)
                .await
                .map_err(|e| Failure::Failed(format!("cannot create table {}: {e}", cli.table)))?;
            println!("created table {}", cli.table);
            Ok(())
        }
    }
}

/// The clients a command that may start or stop deployments needs.
type CliDeps = Deps<DynamoStore, AwsDeployer, CliNotifier, SchedulerTimer>;

async fn deps(table: &str, aws: &Reach) -> CliDeps {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    Deps {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table),
        deployer: AwsDeployer::new(
            aws_sdk_ecs::Client::new(&config),
            aws_sdk_codedeploy::Client::new(&config),
            &aws.hook_function,
        ),
        notifier: match aws.topic.as_deref().filter(|t| !t.is_empty()) {
            Some(topic) => CliNotifier::Topic(
                SnsNotifier::new(aws_sdk_sns::Client::new(&config), topic)
                    .with_chatbot_topic(aws.chatbot_topic.clone()),
            ),
            None => CliNotifier::Off(std::sync::Once::new()),
        },
        timer: SchedulerTimer::new(
            aws_sdk_scheduler::Client::new(&config),
            &aws.schedule_group,
            aws.promote_function_arn.clone().unwrap_or_default(),
            aws.scheduler_role_arn.clone().unwrap_or_default(),
        ),
    }
}

/// Notifications from the CLI go to the topic when it is named, as the functions' do;
/// without one, the command says once that it announced nothing, and how to fix that.
pub enum CliNotifier {
    Topic(SnsNotifier),
    Off(std::sync::Once),
}

/// Printed once by a command whose changes are not announced.
pub const NO_TOPIC: &str = "note: this change was not announced on SNS: no topic is configured; set SHIPLANE_TOPIC_ARN to the stack's TopicArn output (or pass --topic ARN)";

impl CliNotifier {
    fn say_off(once: &std::sync::Once) {
        once.call_once(|| eprintln!("{NO_TOPIC}"));
    }
}

impl Notifier for CliNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        match self {
            CliNotifier::Topic(sns) => {
                let sent = sns.publish(n).await;
                if let Err(e) = &sent {
                    eprintln!("warning: notification not sent ({e}); the change is recorded");
                }
                sent
            }
            CliNotifier::Off(once) => {
                Self::say_off(once);
                Ok(())
            }
        }
    }

    async fn publish_all(&self, notifications: &[Notification]) -> Vec<(usize, NotifyError)> {
        match self {
            CliNotifier::Topic(sns) => {
                let failed = sns.publish_all(notifications).await;
                for (_, e) in &failed {
                    eprintln!("warning: notification not sent ({e}); the change is recorded");
                }
                failed
            }
            CliNotifier::Off(once) => {
                if !notifications.is_empty() {
                    Self::say_off(once);
                }
                Vec::new()
            }
        }
    }
}

fn engine_failure(e: EngineError) -> Failure {
    Failure::Failed(e.to_string())
}

pub(crate) fn unknown_service(pipeline: &Pipeline, name: &str) -> Failure {
    Failure::BadInput(format!(
        "no service \"{name}\" in the pipeline; services: {}",
        pipeline
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn known_stage(pipeline: &Pipeline, service: &str, environment: &str) -> Result<(), Failure> {
    let s = pipeline
        .services
        .get(service)
        .ok_or_else(|| unknown_service(pipeline, service))?;
    if s.stage(environment).is_none() {
        return Err(Failure::BadInput(format!(
            "{service} is not released to \"{environment}\"; its environments: {}",
            s.stages
                .iter()
                .map(|st| st.environment.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// Applies an operator's event to one release in one environment and shows what changed.
async fn release_event(
    cli: &Cli,
    release: &str,
    environment: &str,
    event: Event,
    who: &Operator,
) -> Result<(), Failure> {
    let id = ReleaseId::parse(release).map_err(|e| Failure::BadInput(e.to_string()))?;
    let deps = deps(&cli.table, &who.aws).await;
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    let found = deps.store.release(&id).await?.ok_or_else(|| {
        Failure::BadInput(format!(
            "no release {id}; find it with `shiplane status` or `shiplane history SERVICE`"
        ))
    })?;
    known_stage(&pipeline, &found.item.service, environment)?;
    let report = engine
        .on_event(
            &pipeline,
            &found.item.service,
            environment,
            &id,
            event,
            Timestamp::now(),
        )
        .await
        .map_err(engine_failure)?;
    changed(report, cli.json)
}

/// Applies an operator's event to a service's environment and shows what changed.
async fn lane_event(
    cli: &Cli,
    service: &str,
    environment: &str,
    event: LaneEvent,
    who: &Operator,
) -> Result<(), Failure> {
    let deps = deps(&cli.table, &who.aws).await;
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    known_stage(&pipeline, service, environment)?;
    let report = engine
        .on_lane(&pipeline, service, environment, event, Timestamp::now())
        .await
        .map_err(engine_failure)?;
    changed(report, cli.json)
}

/// Shows what an operator's command changed; a refusal is bad input (exit 2) with why.
fn changed(report: Report, json: bool) -> Result<(), Failure> {
    if report.transitions.is_empty() {
        return Err(Failure::BadInput(format!(
            "nothing changed: {}",
            report.refused.join("; ")
        )));
    }
    render::transitions(&report.transitions, json);
    Ok(())
}

async fn store(table: &str) -> DynamoStore {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), table)
}

pub(crate) fn read_file(file: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", file.display())))
}

async fn current_pipeline(store: &DynamoStore) -> Result<StoredPipeline, Failure> {
    store.pipeline().await?.ok_or_else(|| {
        Failure::Failed(format!(
            "no pipeline in table {}; store one with `shiplane config apply FILE`",
            store.table()
        ))
    })
}

/// The digest ECR holds for `tag` in `repository`, and the registry host it lives in.
async fn digest_of_tag(repository: &str, tag: &str) -> Result<(Digest, String), Failure> {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let out = aws_sdk_ecr::Client::new(&config)
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("ImageNotFoundException") => Failure::BadInput(format!(
                "no image tagged {tag} in ECR repository {repository}; push it, or give --digest"
            )),
            Some("RepositoryNotFoundException") => Failure::BadInput(format!(
                "no ECR repository {repository} (the service's repository in the pipeline)"
            )),
            _ => Failure::Failed(shiplane::aws::classify("ECR DescribeImages", &e).message),
        })?;
    let image = out
        .image_details
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| {
            Failure::BadInput(format!(
                "no image tagged {tag} in ECR repository {repository}"
            ))
        })?;
    let digest = Digest::parse(image.image_digest.as_deref().unwrap_or_default())
        .map_err(|e| Failure::Failed(format!("ECR answered an unusable digest for {tag}: {e}")))?;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| Failure::BadInput("no AWS region; set AWS_REGION".into()))?;
    let registry = format!(
        "{}.dkr.ecr.{region}.amazonaws.com",
        image.registry_id.unwrap_or_default()
    );
    Ok((digest, registry))
}

/// Who is acting: `--actor` (or $SHIPLANE_ACTOR) when given, else the caller's AWS
/// identity (STS GetCallerIdentity: the user or assumed-role ARN), which is what an audit
/// of the account would show too.
pub(crate) async fn actor_name(explicit: Option<String>) -> Result<String, Failure> {
    if let Some(actor) = explicit.filter(|a| !a.trim().is_empty()) {
        return Ok(actor);
    }
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    match aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
    {
        Ok(identity) => identity.arn.ok_or_else(|| {
            Failure::Failed(
                "STS GetCallerIdentity answered without an ARN; pass --actor NAME".into(),
            )
        }),
        Err(e) => Err(Failure::Failed(format!(
            "cannot tell who you are from your AWS credentials ({}); pass --actor NAME or set SHIPLANE_ACTOR",
            shiplane::aws::classify("STS GetCallerIdentity", &e).message
        ))),
    }
}

async fn status(store: &DynamoStore, only: Option<&str>, json: bool) -> Result<(), Failure> {
    let stored = current_pipeline(store).await?;
    let pipeline = Pipeline::from_toml(&stored.source).map_err(|e| {
        Failure::Failed(format!(
            "the stored pipeline (version {}) no longer validates: {e}",
            stored.version
        ))
    })?;
    let services: Vec<&shiplane::pipeline::Service> = match only {
        Some(name) => vec![pipeline.services.get(name).ok_or_else(|| {
            Failure::BadInput(format!(
                "no service \"{name}\" in pipeline version {}; services: {}",
                stored.version,
                pipeline
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?],
        None => pipeline.services.values().collect(),
    };
    let mut rows = Vec::new();
    let mut cache: BTreeMap<ReleaseId, Release> = BTreeMap::new();
    for service in services {
        let lanes = store.lanes(&service.name).await?;
        for stage in &service.stages {
            let lane = lanes
                .iter()
                .find(|l| l.item.environment == stage.environment)
                .map(|l| l.item.clone())
                .unwrap_or_else(|| shiplane::release::Lane::new(&service.name, &stage.environment));
            for id in shiplane::release::LaneView::referenced(&lane) {
                if !cache.contains_key(&id)
                    && let Some(r) = store.release(&id).await?
                {
                    cache.insert(id, r.item);
                }
            }
            let mut held_by = Vec::new();
            for watched in &stage.hold_while_alarms_in {
                for l in lanes.iter().filter(|l| &l.item.environment == watched) {
                    held_by.extend(
                        l.item
                            .firing_alarms()
                            .into_iter()
                            .map(|name| format!("{name} ({watched})")),
                    );
                }
            }
            rows.push(LaneStatus::new(lane, stage.freeze, held_by, &cache));
        }
    }
    render::status(&rows, json);
    Ok(())
}

async fn history(
    store: &DynamoStore,
    target: &str,
    limit: usize,
    json: bool,
) -> Result<(), Failure> {
    if let Ok(id) = ReleaseId::parse(target)
        && let Some(release) = store.release(&id).await?
    {
        let transitions = store.history_of_release(&id).await?;
        render::release_history(&release.item, &transitions, json);
        return Ok(());
    }
    let transitions = store.history_of_service(target, limit).await?;
    if transitions.is_empty() {
        let known = match store.pipeline().await? {
            Some(p) => Pipeline::from_toml(&p.source)
                .map(|p| p.services.contains_key(target))
                .unwrap_or(false),
            None => false,
        };
        if !known {
            return Err(Failure::BadInput(format!(
                "no service or release \"{target}\"; give a service name from the pipeline or a release id from `shiplane status`"
            )));
        }
    }
    render::service_history(target, &transitions, json);
    Ok(())
}
