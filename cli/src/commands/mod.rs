//! What each command does, one file per group of commands; output goes through `render`.
//! This file holds the dispatch and what every group is given: the AWS configuration,
//! loaded here once a run, and the store and clients made from it.

mod clients;
mod config;
mod deploy;
mod doctor;
mod init;
mod inspect;
mod lookup;
mod operate;
mod table;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use shiplane::store::DynamoStore;

use crate::Why;
use crate::{
    Cli, Command, ConfigCommand, Failure, Operator, Reach, TableCommand, config_file, diagnose,
};

pub(crate) use clients::{CliDeps, actor_name, deps};
pub(crate) use inspect::service_lanes;
pub(crate) use lookup::{known_stage, named, unknown_service, valid_pipeline};
pub(crate) use operate::{APPROVE, CANCEL, Operation, REJECT};

/// Runs the command; an AWS failure comes back explained (`diagnose`), in one line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Config(ConfigCommand::Validate { ref file }) = cli.command {
        return config_file::validate(file, cli.json);
    }
    let config = sdk_config(cli.region.as_deref()).await;
    crate::metrics::start(&config);
    let ran = dispatch(&Context {
        cli: &cli,
        config: &config,
    })
    .await;
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

/// Hands the command to its group.
async fn dispatch(cx: &Context<'_>) -> Result<(), Failure> {
    use Command as C;
    match &cx.cli.command {
        C::Init { stack, user } => init::init(cx, stack, *user).await,
        C::Config(command) => config::run(cx, command).await,
        C::Doctor {
            file,
            hook_function,
            schedule_group,
        } => {
            let reach = crate::account::Reach {
                hook_function,
                schedule_group,
            };
            doctor::doctor(cx, file.as_deref(), reach).await
        }
        C::Status { service } => inspect::status(cx, service.as_deref()).await,
        C::History { target, limit } => inspect::history(cx, target, *limit).await,
        C::Watch(args) => inspect::watch(cx, args).await,
        C::Wait(args) => inspect::wait(cx, args).await,
        C::Metrics(args) => inspect::metrics(cx, args).await,
        C::Deploy {
            service,
            digest,
            tag,
            registry,
            why: Why { reason, who },
        } => {
            let (digest, tag, registry) = (digest.as_deref(), tag.as_deref(), registry.as_deref());
            deploy::deploy(cx, service, digest, tag, registry, reason, who).await
        }
        command @ (C::Approve { .. }
        | C::Reject { .. }
        | C::Retry { .. }
        | C::Promote { .. }
        | C::Cancel { .. }) => operate::on_release(cx, command).await,
        command @ (C::Pause { .. } | C::Resume { .. } | C::Rollback { .. } | C::Unblock { .. }) => {
            operate::on_lane(cx, command).await
        }
        C::Reconcile { service, aws } => operate::reconcile(cx, service.as_deref(), aws).await,
        C::Dashboard { port, who } => {
            crate::dashboard::serve(cx.config, &cx.cli.table, who, *port, cx.cli.json).await
        }
        C::Table(TableCommand::Create) => table::create(cx).await,
    }
}

/// What every command of one run is given: the command line and the AWS configuration,
/// and the store, the clients and the actor made from them.
struct Context<'a> {
    cli: &'a Cli,
    config: &'a SdkConfig,
}

impl Context<'_> {
    fn json(&self) -> bool {
        self.cli.json
    }

    /// The table, as a store.
    fn store(&self) -> DynamoStore {
        clients::store(self.config, &self.cli.table)
    }

    /// The clients a command that may start or stop deployments needs.
    async fn deps(&self, aws: &Reach) -> CliDeps {
        deps(self.config, &self.cli.table, aws).await
    }

    /// Who is acting ([`actor_name`]).
    async fn actor(&self, who: &Operator) -> Result<String, Failure> {
        actor_name(self.config, who.actor.clone()).await
    }
}
