//! What each command does; output goes through `render`.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use shiplane::aws::{
    AwsDeployer, CloudWatchAlarms, Notification, Notifier, NotifyError, SchedulerTimer, SnsNotifier,
};
use shiplane::engine::{Deps, EngineError, PushOutcome};
use shiplane::pipeline::Pipeline;
use shiplane::release::{
    Digest, Event, Lane, LaneEvent, Release, ReleaseId, StageState, Timestamp, Transition,
};
use shiplane::store::{DynamoStore, ReleaseStore, StoredPipeline};

use crate::output::{errln, out, outln};
use crate::render::{self, LaneStatus};
use crate::{
    Cli, Command, ConfigCommand, Failure, Operator, Reach, TableCommand, config_file, diagnose,
};

/// Runs the command; an AWS failure comes back explained (`diagnose`), in one line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Config(ConfigCommand::Validate { ref file }) = cli.command {
        return config_file::validate(file, cli.json);
    }
    let config = sdk_config(cli.region.as_deref()).await;
    crate::metrics::start(&config);
    let ran = run_with_aws(&cli, &config).await;
    crate::metrics::publish().await;
    match ran {
        Err(Failure::Aws(raw)) => Err(Failure::Failed(
            diagnose::explain(&config, &cli.table, &raw).await,
        )),
        Err(Failure::Failed(message)) => Err(Failure::Failed(
            diagnose::explain_setup(&config).await.unwrap_or(message),
        )),
        other => other,
    }
}

/// The AWS configuration every client of one run shares: the standard chain, with the
/// settings file's region when AWS_REGION is not set.
async fn sdk_config(file_region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none()
        && let Some(region) = file_region
    {
        loader = loader.region(Region::new(region.to_string()));
    }
    loader.load().await
}

async fn run_with_aws(cli: &Cli, config: &SdkConfig) -> Result<(), Failure> {
    match cli.command {
        Command::Config(ConfigCommand::Validate { ref file }) => {
            config_file::validate(file, cli.json)
        }
        Command::Config(ConfigCommand::Diff { ref file }) => {
            config_file::diff(&store(config, &cli.table).await, file, cli.json).await
        }
        Command::Init { ref stack, user } => init(config, stack, user, cli.json).await,
        Command::Config(ConfigCommand::Apply {
            ref file,
            ref actor,
            force,
        }) => {
            let store = store(config, &cli.table).await;
            config_file::apply(config, &store, file, force, actor.clone(), cli.json).await
        }
        Command::Config(ConfigCommand::Show) => {
            let store = store(config, &cli.table).await;
            let current = current_pipeline(&store).await?;
            render::pipeline_source(&current, cli.json);
            Ok(())
        }
        Command::Status { ref service } => {
            let store = store(config, &cli.table).await;
            status(&store, service.as_deref(), cli.json).await
        }
        Command::Watch(ref args) => {
            let store = store(config, &cli.table).await;
            let pipeline = stored_pipeline(&store).await?;
            crate::follow::watch(&store, &pipeline, args, cli.json).await
        }
        Command::Wait(ref args) => {
            let store = store(config, &cli.table).await;
            let pipeline = stored_pipeline(&store).await?;
            crate::follow::wait(&store, &pipeline, args, cli.json).await
        }
        Command::History { ref target, limit } => {
            let store = store(config, &cli.table).await;
            history(&store, target, limit, cli.json).await
        }
        Command::Approve {
            ref release,
            ref environment,
            ref who,
        } => {
            let event = Event::Approved {
                actor: actor_name(config, who.actor.clone()).await?,
            };
            release_event(cli, config, release, environment, event, who, APPROVE).await
        }
        Command::Reject {
            ref release,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = Event::Rejected {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(cli, config, release, environment, event, who, REJECT).await
        }
        Command::Pause {
            ref service,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = LaneEvent::Pause {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
            };
            lane_event(cli, config, service, environment, event, who).await
        }
        Command::Resume {
            ref service,
            ref environment,
            ref who,
        } => {
            let event = LaneEvent::Resume {
                actor: actor_name(config, who.actor.clone()).await?,
            };
            lane_event(cli, config, service, environment, event, who).await
        }
        Command::Deploy {
            ref service,
            ref digest,
            ref tag,
            ref registry,
            ref reason,
            ref who,
        } => {
            let deps = deps(config, &cli.table, &who.aws).await;
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
                    let (d, registry) = digest_of_tag(config, &svc.repository, t).await?;
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
                    &actor_name(config, who.actor.clone()).await?,
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
                    // The name to type next: the tag it got (given, or made from the digest).
                    let name = match deps.store.release(&release).await? {
                        Some(r) => crate::names::display(&r.item),
                        None => release.to_string(),
                    };
                    if cli.json {
                        outln!(
                            "{}",
                            serde_json::json!({"release": release, "name": name, "environment": environment, "state": state})
                        );
                    } else {
                        outln!("release {name} ({release}): {state} in {environment}");
                    }
                    Ok(())
                }
                PushOutcome::Replayed { release, .. } => Err(Failure::Refused(format!(
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
                actor: actor_name(config, who.actor.clone()).await?,
            };
            release_event(cli, config, release, environment, event, who, RETRY).await
        }
        Command::Promote {
            ref release,
            ref environment,
            skip_bake: _,
            ref reason,
            ref who,
        } => {
            let event = Event::PromotedEarly {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(cli, config, release, environment, event, who, PROMOTE).await
        }
        Command::Rollback {
            ref service,
            ref environment,
            ref to,
            ref reason,
            ref who,
        } => {
            let to = match to.as_deref() {
                Some(name) => {
                    let store = store(config, &cli.table).await;
                    let release = named(&store, name).await?;
                    if release.service != *service {
                        return Err(Failure::BadInput(format!(
                            "{name} is a release of {}, not of {service}; give one of {service}'s releases to --to",
                            release.service
                        )));
                    }
                    Some(release.id)
                }
                None => None,
            };
            let event = LaneEvent::Rollback {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
                to,
            };
            lane_event(cli, config, service, environment, event, who).await
        }
        Command::Cancel {
            ref release,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = Event::Cancelled {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
            };
            release_event(cli, config, release, environment, event, who, CANCEL).await
        }
        Command::Unblock {
            ref service,
            ref environment,
            ref reason,
            ref who,
        } => {
            let event = LaneEvent::Unblock {
                actor: actor_name(config, who.actor.clone()).await?,
                reason: reason.clone(),
            };
            lane_event(cli, config, service, environment, event, who).await
        }
        Command::Reconcile {
            ref service,
            ref aws,
        } => {
            let deps = deps(config, &cli.table, aws).await;
            let engine = deps.engine();
            let pipeline = engine.pipeline().await.map_err(engine_failure)?;
            if let Some(s) = service
                && !pipeline.services.contains_key(s)
            {
                return Err(unknown_service(&pipeline, s));
            }
            let cloudwatch = CloudWatchAlarms::new(aws_sdk_cloudwatch::Client::new(config));
            let pass = engine
                .reconcile_with_alarms(&cloudwatch, &pipeline, service.as_deref(), Timestamp::now())
                .await
                .map_err(engine_failure)?;
            render::transitions(&pass.report.transitions, cli.json);
            if let Some(why) = &pass.alarms_unread {
                errln!(
                    "CloudWatch could not be read ({why}); {} bake(s) that are over stay owed until a pass reads the alarms",
                    pass.bakes_left_owed.len()
                );
            }
            for f in &pass.failed {
                errln!(
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
        Command::Dashboard { port, ref who } => {
            crate::dashboard::serve(config, &cli.table, who, port, cli.json).await
        }
        Command::Metrics(ref args) => {
            let store = store(config, &cli.table).await;
            let pipeline = stored_pipeline(&store).await?;
            crate::metrics::run(&store, &pipeline, args, cli.json).await
        }
        Command::Table(TableCommand::Create) => {
            let client = aws_sdk_dynamodb::Client::new(config);
            DynamoStore::create_table(&client, &cli.table)
                .await
                .map_err(|e| Failure::Aws(format!("cannot create table {}: {e}", cli.table)))?;
            outln!("created table {}", cli.table);
            Ok(())
        }
    }
}

/// The clients a command that may start or stop deployments needs.
pub(crate) type CliDeps = Deps<DynamoStore, AwsDeployer, CliNotifier, SchedulerTimer>;

pub(crate) async fn deps(config: &SdkConfig, table: &str, aws: &Reach) -> CliDeps {
    let config = config.clone();
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
                    errln!("warning: notification not sent ({e}); the change is recorded");
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
                    errln!("warning: notification not sent ({e}); the change is recorded");
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
    Failure::Aws(e.to_string())
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

pub(crate) fn known_stage(
    pipeline: &Pipeline,
    service: &str,
    environment: &str,
) -> Result<(), Failure> {
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

/// What an operator asked of a release, to say in plain words why the state refused it.
pub(crate) struct Asked {
    /// The command's verb: "approve".
    verb: &'static str,
    /// The states it applies to, as a clause: "only a release awaiting approval there can be approved".
    needs: &'static str,
}

pub(crate) const APPROVE: Asked = Asked {
    verb: "approve",
    needs: "only a release awaiting approval there can be approved",
};
pub(crate) const REJECT: Asked = Asked {
    verb: "reject",
    needs: "only a release awaiting approval or queued there can be rejected",
};
pub(crate) const RETRY: Asked = Asked {
    verb: "retry",
    needs: "only a stage that failed, was rolled back or cancelled can be retried",
};
pub(crate) const PROMOTE: Asked = Asked {
    verb: "promote",
    needs: "only a release baking there can be promoted early",
};
pub(crate) const CANCEL: Asked = Asked {
    verb: "cancel",
    needs: "only a stage that has not ended can be cancelled",
};

/// Applies an operator's event to one release in one environment and shows what changed.
async fn release_event(
    cli: &Cli,
    config: &SdkConfig,
    release: &str,
    environment: &str,
    event: Event,
    who: &Operator,
    asked: Asked,
) -> Result<(), Failure> {
    let deps = deps(config, &cli.table, &who.aws).await;
    let transitions = act_on_release(&deps, release, environment, event, &asked).await?;
    render::transitions(&transitions, cli.json);
    Ok(())
}

/// Applies an operator's event to one release (as an operator names it: `SERVICE@TAG`, an
/// id or its start) in one environment through the engine: the one path the CLI's release
/// commands and the dashboard's buttons share. A refusal says why in plain words.
pub(crate) async fn act_on_release(
    deps: &CliDeps,
    release: &str,
    environment: &str,
    event: Event,
    asked: &Asked,
) -> Result<Vec<Transition>, Failure> {
    let found = named(&deps.store, release).await?;
    let id = found.id.clone();
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    known_stage(&pipeline, &found.service, environment)?;
    let report = engine
        .on_event(
            &pipeline,
            &found.service,
            environment,
            &id,
            event,
            Timestamp::now(),
        )
        .await
        .map_err(engine_failure)?;
    if report.transitions.is_empty() {
        let now = deps.store.release(&id).await?.map_or(found, |r| r.item);
        return Err(Failure::Refused(refusal(
            asked,
            &now,
            environment,
            &report.refused.join("; "),
        )));
    }
    Ok(report.transitions)
}

/// Why a release command changed nothing, in plain words: where the release is and what
/// the command needs. The engine's own sentence when it says more than "does not apply"
/// (an alarm holding a bake, a restore that cannot be cancelled).
fn refusal(asked: &Asked, release: &Release, environment: &str, why: &str) -> String {
    let name = format!("{} ({})", release.label(), release.id);
    let words = |s: StageState| s.as_str().replace('_', " ");
    match release.state_in(environment) {
        None => {
            let latest = release
                .stages
                .iter()
                .max_by_key(|(_, stage)| stage.since)
                .map(|(env, stage)| format!(" (it is {} in {env})", words(stage.state)))
                .unwrap_or_default();
            format!(
                "cannot {} {name} in {environment}: it has not reached {environment}{latest}",
                asked.verb
            )
        }
        Some(state) if why.is_empty() || why.contains("does not apply") => format!(
            "cannot {} {name} in {environment}: its stage there is {}; {}",
            asked.verb,
            words(state),
            asked.needs
        ),
        Some(_) => why.to_string(),
    }
}

/// Applies an operator's event to a service's environment and shows what changed; a
/// refusal says why (the machine's sentences for lanes are already plain: "api/prod is not
/// paused").
async fn lane_event(
    cli: &Cli,
    config: &SdkConfig,
    service: &str,
    environment: &str,
    event: LaneEvent,
    who: &Operator,
) -> Result<(), Failure> {
    let deps = deps(config, &cli.table, &who.aws).await;
    let transitions = act_on_lane(&deps, service, environment, event).await?;
    render::transitions(&transitions, cli.json);
    Ok(())
}

/// Applies an operator's event to a service's environment through the engine: the one
/// path the CLI's lane commands and the dashboard's buttons share.
pub(crate) async fn act_on_lane(
    deps: &CliDeps,
    service: &str,
    environment: &str,
    event: LaneEvent,
) -> Result<Vec<Transition>, Failure> {
    let engine = deps.engine();
    let pipeline = engine.pipeline().await.map_err(engine_failure)?;
    known_stage(&pipeline, service, environment)?;
    let report = engine
        .on_lane(&pipeline, service, environment, event, Timestamp::now())
        .await
        .map_err(engine_failure)?;
    if report.transitions.is_empty() {
        let why = report.refused.join("; ");
        return Err(Failure::Refused(if why.is_empty() {
            format!("nothing to do in {service}/{environment}")
        } else {
            why
        }));
    }
    Ok(report.transitions)
}

async fn store(config: &SdkConfig, table: &str) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(config), table)
}

pub(crate) fn read_file(file: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(file)
        .map_err(|e| Failure::BadInput(format!("{}: cannot read: {e}", file.display())))
}

/// The stored pipeline, validated.
async fn stored_pipeline(store: &DynamoStore) -> Result<Pipeline, Failure> {
    let stored = current_pipeline(store).await?;
    Pipeline::from_toml(&stored.source).map_err(|e| {
        Failure::Failed(format!(
            "the stored pipeline (version {}) no longer validates: {e}",
            stored.version
        ))
    })
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
async fn digest_of_tag(
    config: &SdkConfig,
    repository: &str,
    tag: &str,
) -> Result<(Digest, String), Failure> {
    use aws_sdk_ecr::error::ProvideErrorMetadata;
    let out = aws_sdk_ecr::Client::new(config)
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
            _ => Failure::Aws(shiplane::sdk::classify("ECR DescribeImages", &e).message),
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
pub(crate) async fn actor_name(
    config: &SdkConfig,
    explicit: Option<String>,
) -> Result<String, Failure> {
    if let Some(actor) = explicit.filter(|a| !a.trim().is_empty()) {
        return Ok(actor);
    }
    match aws_sdk_sts::Client::new(config)
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
            diagnose::one_line(&shiplane::sdk::classify("STS GetCallerIdentity", &e).message)
        ))),
    }
}

async fn status(store: &DynamoStore, only: Option<&str>, json: bool) -> Result<(), Failure> {
    let (stored, pipeline) = valid_pipeline(store).await?;
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
        rows.extend(
            service_lanes(store, service, &mut cache)
                .await?
                .into_iter()
                .map(|(_, row)| row),
        );
    }
    render::status(&rows, json);
    Ok(())
}

/// The release an operator named (`SERVICE@TAG`, an id or its start), with a note on
/// stderr when the name was not exact (a re-pushed tag: the newest is taken).
pub(crate) async fn named<S: ReleaseStore>(store: &S, name: &str) -> Result<Release, Failure> {
    let found = crate::names::resolve(store, name).await?;
    if let Some(note) = &found.note {
        errln!("{note}");
    }
    Ok(found.release)
}

/// The stored pipeline and what it parses to; a stored file that no longer validates is a
/// failure naming its version (what `status`, `metrics` and the dashboard read).
pub(crate) async fn valid_pipeline(
    store: &DynamoStore,
) -> Result<(StoredPipeline, Pipeline), Failure> {
    let stored = current_pipeline(store).await?;
    let pipeline = Pipeline::from_toml(&stored.source).map_err(|e| {
        Failure::Failed(format!(
            "the stored pipeline (version {}) no longer validates: {e}",
            stored.version
        ))
    })?;
    Ok((stored, pipeline))
}

/// A service's lanes in promotion order, each as stored (an empty one where nothing has
/// arrived yet) with its status row; the releases they name are read once into `cache`.
/// What `shiplane status` prints and the dashboard draws.
pub(crate) async fn service_lanes(
    store: &DynamoStore,
    service: &shiplane::pipeline::Service,
    cache: &mut BTreeMap<ReleaseId, Release>,
) -> Result<Vec<(Lane, LaneStatus)>, Failure> {
    let lanes = store.lanes(&service.name).await?;
    let mut rows = Vec::new();
    for stage in &service.stages {
        let lane = lanes
            .iter()
            .find(|l| l.item.environment == stage.environment)
            .map(|l| l.item.clone())
            .unwrap_or_else(|| Lane::new(&service.name, &stage.environment));
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
        let row = LaneStatus::new(lane.clone(), stage.freeze, held_by, cache);
        rows.push((lane, row));
    }
    Ok(rows)
}

async fn history(
    store: &DynamoStore,
    target: &str,
    limit: usize,
    json: bool,
) -> Result<(), Failure> {
    let width = render::table_width();
    if crate::names::is_release_name(target) {
        let release = named(store, target).await?;
        let transitions = store.history_of_release(&release.id).await?;
        render::release_history(&release, &transitions, json, width);
        return Ok(());
    }
    let transitions = store.history_of_service(target, limit).await?;
    if transitions.is_empty() {
        let pipeline = store.pipeline().await?;
        let services: Vec<String> = pipeline
            .and_then(|p| Pipeline::from_toml(&p.source).ok())
            .map(|p| p.services.keys().cloned().collect())
            .unwrap_or_default();
        if !services.iter().any(|s| s == target) {
            if crate::names::may_be_id_prefix(target) {
                let release = named(store, target).await?;
                let transitions = store.history_of_release(&release.id).await?;
                render::release_history(&release, &transitions, json, width);
                return Ok(());
            }
            return Err(Failure::BadInput(format!(
                "no service or release \"{}\"; give a service ({}), SERVICE@TAG, or a release id (or its start) from `shiplane status`",
                shiplane::release::escaped(target),
                if services.is_empty() {
                    "none in the pipeline yet".to_string()
                } else {
                    services.join(", ")
                }
            )));
        }
    }
    let mut labels = render::Labels::new();
    for r in store.releases_of_service(target, limit.max(100)).await? {
        labels.insert(r.id.clone(), render::label_cell(&r));
    }
    for id in transitions.iter().filter_map(|t| t.release.as_ref()) {
        if !labels.contains_key(id)
            && let Some(r) = store.release(id).await?
        {
            labels.insert(id.clone(), render::label_cell(&r.item));
        }
    }
    render::service_history(target, &transitions, &labels, json, width);
    Ok(())
}

/// Which stack output sets which setting (template.yaml's Outputs).
const STACK_OUTPUTS: [&str; 7] = [
    "TableName",
    "TopicArn",
    "ChatbotTopicArn",
    "ScheduleGroupName",
    "PromoteFunctionArn",
    "SchedulerRoleArn",
    "HookFunctionName",
];

/// `shiplane init --stack NAME`: the stack's outputs, and the region it was read in,
/// written to the project (or user) settings file.
async fn init(config: &SdkConfig, stack: &str, user: bool, json: bool) -> Result<(), Failure> {
    use aws_sdk_cloudformation::error::ProvideErrorMetadata;
    let region = config.region().map(|r| r.to_string());
    let described = aws_sdk_cloudformation::Client::new(config)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("ValidationError") => Failure::BadInput(format!(
                "no stack \"{stack}\" in {}: give the name `sam deploy` used (samconfig.toml's stack_name), or set AWS_REGION to the region it is in",
                region.as_deref().unwrap_or("your region")
            )),
            _ => Failure::Aws(shiplane::sdk::classify("CloudFormation DescribeStacks", &e).message),
        })?;
    let outputs: BTreeMap<String, String> = described
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|s| s.outputs)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| Some((o.output_key?, o.output_value?)))
        .collect();
    let get = |key: &str| outputs.get(key).cloned();
    let found = crate::settings::Settings {
        stack: Some(stack.to_string()),
        region,
        table: get("TableName"),
        topic_arn: get("TopicArn"),
        chatbot_topic_arn: get("ChatbotTopicArn"),
        schedule_group: get("ScheduleGroupName"),
        promote_function_arn: get("PromoteFunctionArn"),
        scheduler_role_arn: get("SchedulerRoleArn"),
        hook_function: get("HookFunctionName"),
    };
    let missing: Vec<&str> = STACK_OUTPUTS
        .into_iter()
        .filter(|k| !outputs.contains_key(*k))
        .collect();
    if found.table.is_none() {
        return Err(Failure::BadInput(format!(
            "stack \"{stack}\" has no TableName output: is it the stack template.yaml deployed? (outputs it has: {})",
            if outputs.is_empty() {
                "none".to_string()
            } else {
                outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    let path = if user {
        crate::settings::user_file().ok_or_else(|| {
            Failure::BadInput("no home directory to write the user file in: set XDG_CONFIG_HOME or HOME, or leave out --user".into())
        })?
    } else {
        std::path::PathBuf::from(crate::settings::PROJECT_FILE)
    };
    crate::settings::write(&path, &found).map_err(Failure::Failed)?;
    if json {
        outln!(
            "{}",
            serde_json::json!({"file": path.display().to_string(), "settings": found, "missing_outputs": missing})
        );
    } else {
        outln!("wrote {} from stack {stack}:", path.display());
        out!(
            "{}",
            found
                .to_file()
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        );
        if !missing.is_empty() {
            errln!(
                "warning: the stack has no {} output; those settings keep their defaults",
                missing.join(", ")
            );
        }
    }
    Ok(())
}
