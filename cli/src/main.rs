//! `shiplane`: the operator CLI. Validate and apply the pipeline file, see what runs where,
//! and read any release's history.
//!
//! Exit codes ([`Failure::exit_code`]): 0 success, 1 failure (AWS, store, nothing applied
//! yet; `doctor`: a problem found), 2 bad input (usage, invalid pipeline file, unknown service or release), 3 refused
//! (the release's state does not allow the request; nothing changed), 4 `config diff`: the
//! file differs from what is stored, 5 `wait`: the release ended another way, 6 `wait`:
//! timed out.

mod account;
mod commands;
mod config_file;
mod dashboard;
mod diagnose;
mod follow;
mod metrics;
mod names;
mod output;
mod render;
mod settings;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::output::{errln, outln};

/// What `--help` ends with: what the exit codes mean and where settings come from.
const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 failure (AWS, the store; `doctor`: a problem that would break a release;
the message says what to fix), 2 usage or bad input, 3 refused (the release's state does not allow it; nothing changed), 4 `config diff`:
the file differs, 5 `wait`: the release ended another way, 6 `wait`: timed out. With --json,
output and errors are JSON on stdout (errors: {\"error\": {\"kind\", \"message\", \"exit_code\"}}),
times RFC 3339.

Settings, highest first: flags, SHIPLANE_* and AWS_REGION environment variables, the
project file .shiplane/config.toml (here or in a parent directory), the user file
~/.config/shiplane/config.toml; `shiplane init --stack NAME` writes them from the stack.";

/// What `wait --help` ends with: its exit codes.
const WAIT_EXIT_CODES: &str = "\
Exit codes: 0 reached; 5 ended another way (failed, rolled back, cancelled, superseded or
rejected there, or before it got there); 6 timed out; 1 failure (AWS, the store); 2 usage
(an unknown release or environment). With --json, the final state as one JSON document.";

/// Release automation for Amazon ECS: operator commands.
#[derive(Debug, Parser)]
#[command(name = "shiplane", version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    /// The Shiplane DynamoDB table (the stack's TableName output).
    #[arg(
        long,
        env = "SHIPLANE_TABLE",
        global = true,
        default_value = "shiplane"
    )]
    table: String,

    /// Print JSON for scripts instead of tables (errors too).
    #[arg(long, global = true)]
    json: bool,

    /// The region from a settings file, used when AWS_REGION is not set.
    #[arg(skip)]
    region: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write this CLI's settings from a deployed stack's outputs (region, table, topic,
    /// schedule group, promote function and scheduler role ARNs, hook function), so no
    /// other command needs them typed. Flags and environment variables still override.
    Init {
        /// The CloudFormation stack `sam deploy` created (samconfig.toml's stack_name).
        #[arg(long)]
        stack: String,
        /// Write the user file (~/.config/shiplane/config.toml) instead of the project
        /// file (.shiplane/config.toml in this directory).
        #[arg(long)]
        user: bool,
    },
    /// Validate, store and show the pipeline file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check the deployed account against a pipeline file (the stored pipeline when FILE
    /// is left out): per environment, what is missing or set wrong, each with its fix.
    /// Only reads. Exit 1 when anything would break a release or keep a rollback from
    /// happening.
    Doctor {
        /// The pipeline file to check the account against; the stored pipeline when left out.
        file: Option<PathBuf>,
        /// The deploy-hook function CodeDeploy invokes (the stack's HookFunctionName output).
        #[arg(
            long,
            env = "SHIPLANE_HOOK_FUNCTION",
            default_value = "CodeDeployHook_shiplane"
        )]
        hook_function: String,
        /// The Scheduler group bake timers live in (the stack's ScheduleGroupName output).
        #[arg(long, env = "SHIPLANE_SCHEDULE_GROUP", default_value = shiplane::aws::DEFAULT_SCHEDULE_GROUP)]
        schedule_group: String,
    },
    /// Per environment: what runs, what is in flight, what waits, the last known good.
    Status {
        /// One service; all services of the pipeline when omitted.
        service: Option<String>,
    },
    /// Transitions of a service (newest last) or of one release, each with the time since
    /// the one before, and the total.
    History {
        /// A service name, or a release: SERVICE@TAG, a release id or its start.
        target: String,
        /// How many of a service's newest transitions to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Follow a service's environments, or one release's way through them, live.
    ///
    /// Each environment: state, since when, deployment, bake countdown, what waits behind
    /// it, holds, and the newest history entry (a check, a hook's answer). Redraws on a
    /// terminal; elsewhere prints each change as a line. Stops when the release has ended
    /// everywhere it is going (a service: when nothing is in flight or waiting there).
    Watch(follow::WatchArgs),
    /// Wait until a release reaches a state in an environment (for scripts and CI jobs).
    ///
    /// Reads the store every --every (default 5s); progress on stderr.
    #[command(after_help = WAIT_EXIT_CODES)]
    Wait(follow::WaitArgs),
    /// Let a release awaiting approval into an environment go on: it deploys, or queues
    /// behind the release in flight there.
    Approve {
        release: String,
        environment: String,
        #[command(flatten)]
        who: Operator,
    },
    /// Refuse a release awaiting approval (or queued) in an environment; it never deploys there.
    Reject {
        release: String,
        environment: String,
        #[command(flatten)]
        why: Why,
    },
    /// Hold an environment of a service: releases queue there and none deploys until resumed.
    Pause {
        service: String,
        environment: String,
        #[command(flatten)]
        why: Why,
    },
    /// Lift a pause; the queued release starts.
    Resume {
        service: String,
        environment: String,
        #[command(flatten)]
        who: Operator,
    },
    /// Make a release of an image by digest, without a push (the push was lost, or the
    /// image came from elsewhere): it enters the service's first environment as a push
    /// would, whatever the tag policy.
    #[command(group(clap::ArgGroup::new("image").required(true).multiple(true).args(["digest", "tag"])))]
    Deploy {
        service: String,
        /// The image digest, sha256:<64 hex>.
        #[arg(long)]
        digest: Option<String>,
        /// The image's tag: without --digest, the digest ECR holds for it in the service's
        /// repository; with it, the label (default deploy-<short digest>).
        #[arg(long)]
        tag: Option<String>,
        /// The ECR registry host; default: the one of the service's newest release.
        #[arg(long)]
        registry: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// Try a stage that failed, was rolled back or cancelled again, with the same digest (a
    /// new attempt: a new migration task and deployment).
    Retry {
        release: String,
        environment: String,
        #[command(flatten)]
        who: Operator,
    },
    /// End a release's bake in an environment now and promote it (an emergency; recorded
    /// with who and why). `--skip-bake` says you mean it.
    Promote {
        release: String,
        environment: String,
        #[arg(long, required = true)]
        skip_bake: bool,
        #[command(flatten)]
        why: Why,
    },
    /// Put an earlier release back in an environment: `--to RELEASE`, or the last known good
    /// one (the one before, when what runs is the last known good). What is in flight there
    /// is stopped and rolled back.
    Rollback {
        service: String,
        environment: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        why: Why,
    },
    /// End a release's stage in an environment, whatever its state: a deployment in flight
    /// is stopped and rolled back, a baking release (it already serves) is replaced by the
    /// last known good, the lane is freed and its queued release starts. A restore of the
    /// last known good is not cancelled (use `rollback --to`).
    Cancel {
        release: String,
        environment: String,
        #[command(flatten)]
        why: Why,
    },
    /// Free a lane of whatever holds it (the in-flight stage is cancelled, its deployment
    /// stopped) and start the queued release.
    Unblock {
        service: String,
        environment: String,
        #[command(flatten)]
        why: Why,
    },
    /// Check every lane (of one service) against AWS now, as the scheduled reconciler
    /// does: lost outcomes and alarm changes applied, overdue stages ended, lost bake
    /// timers set again, owed work finished.
    Reconcile {
        service: Option<String>,
        #[command(flatten)]
        aws: Reach,
    },
    /// Serve a local web page on 127.0.0.1 (prints its URL): every service's lanes, the
    /// release in each with its state, checks, bake countdown, alarms and queue, each
    /// release's timeline, and buttons to approve, reject, cancel and roll back. Buttons
    /// act as you: your AWS credentials, recorded as --actor or your AWS identity.
    Dashboard {
        /// The port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 3100)]
        port: u16,
        #[command(flatten)]
        who: Operator,
    },
    /// The four DORA figures from history: deployment frequency, lead time for changes
    /// (push → production), change-failure rate and time to restore.
    Metrics(metrics::MetricsArgs),
    /// Manage the table itself.
    #[command(subcommand)]
    Table(TableCommand),
}

/// Why an operator acts, and who: both recorded in history and sent in the notification.
#[derive(Debug, clap::Args)]
pub struct Why {
    /// Why, recorded in history and sent in the notification.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    who: Operator,
}

/// Who acts, for commands that change releases.
#[derive(Debug, clap::Args)]
pub struct Operator {
    /// Recorded as who did it; defaults to your AWS identity (STS GetCallerIdentity).
    #[arg(long, env = "SHIPLANE_ACTOR")]
    actor: Option<String>,
    #[command(flatten)]
    aws: Reach,
}

/// What commands that may start or stop deployments need besides the table.
#[derive(Debug, clap::Args)]
pub struct Reach {
    /// The SNS topic to announce on (the stack's TopicArn output); without it nothing is
    /// announced, and the command says so.
    #[arg(long, env = "SHIPLANE_TOPIC_ARN")]
    topic: Option<String>,
    /// The topic AWS Chatbot subscribes to (the stack's ChatbotTopicArn output): gets the
    /// same announcements in Chatbot's custom-notification schema.
    #[arg(long, env = "SHIPLANE_CHATBOT_TOPIC_ARN")]
    chatbot_topic: Option<String>,
    /// The deploy-hook function a started deployment names in its AppSpec.
    #[arg(
        long,
        env = "SHIPLANE_HOOK_FUNCTION",
        default_value = "CodeDeployHook_shiplane"
    )]
    hook_function: String,
    /// The Scheduler group bake timers live in (the stack's ScheduleGroupName output).
    #[arg(long, env = "SHIPLANE_SCHEDULE_GROUP", default_value = shiplane::aws::DEFAULT_SCHEDULE_GROUP)]
    schedule_group: String,
    /// The promote function a bake timer invokes (the stack's PromoteFunctionArn output);
    /// without it a bake this command starts is ended by the reconciler instead.
    #[arg(long, env = "SHIPLANE_PROMOTE_FUNCTION_ARN")]
    promote_function_arn: Option<String>,
    /// The role Scheduler invokes the promote function with (the stack's
    /// SchedulerRoleArn output).
    #[arg(long, env = "SHIPLANE_SCHEDULER_ROLE_ARN")]
    scheduler_role_arn: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a pipeline file: every problem with its FILE:LINE:COLUMN and path, each
    /// service's route, and warnings (a service that skips an environment others stop in).
    Validate { file: PathBuf },
    /// What applying a file would change, per service and environment, against the stored
    /// pipeline. Exit 0 when it changes nothing, 4 when it does (like `git diff --exit-code`).
    Diff { file: PathBuf },
    /// Validate, show the diff, and store a pipeline file as the next version. An invalid
    /// file stores nothing; a file that drops a lane with a live release is refused (exit 3),
    /// and so is one whose blue-green stages' CodeDeploy groups would not roll back or keep
    /// the blue task set forever, unless the file says so (keep_blue, group_rollback).
    Apply {
        file: PathBuf,
        /// Recorded as who applied it; defaults to your AWS identity (STS GetCallerIdentity).
        #[arg(long, env = "SHIPLANE_ACTOR")]
        actor: Option<String>,
        /// Drop services or environments that have live releases anyway: their deployments
        /// are not stopped, and Shiplane no longer acts on them.
        #[arg(long)]
        force: bool,
        /// Store the file without reading the blue-green stages' CodeDeploy groups (offline,
        /// or before the groups exist; `shiplane doctor FILE` checks them later).
        #[arg(long)]
        no_check: bool,
    },
    /// Print the current pipeline file exactly as applied.
    Show,
}

#[derive(Debug, Subcommand)]
enum TableCommand {
    /// Create the table with its keys, index and TTL (local emulator, or accounts not using template.yaml).
    Create,
}

/// How a command failed, and so which exit code it returns.
#[derive(Debug)]
pub enum Failure {
    /// The operator's input is wrong (exit 2).
    BadInput(String),
    /// Something outside failed, said in words a person can act on (exit 1).
    Failed(String),
    /// AWS or the store failed with this raw message: explained by `diagnose` before it is
    /// shown (exit 1).
    Aws(String),
    /// The state does not allow the request; nothing changed (exit 3).
    Refused(String),
    /// `config diff`: the file differs from what is stored; the diff is printed (exit 4).
    Differs,
    /// `wait`: the release ended another way than the state waited for (failed, rolled
    /// back, cancelled, superseded, rejected) (exit 5).
    Ended(String),
    /// `wait`: the timeout passed first (exit 6).
    TimedOut(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Failed(_) | Failure::Aws(_) => 1,
            Failure::BadInput(_) => 2,
            Failure::Refused(_) => 3,
            Failure::Differs => 4,
            Failure::Ended(_) => 5,
            Failure::TimedOut(_) => 6,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Failure::Failed(_) | Failure::Aws(_) => "failure",
            Failure::BadInput(_) => "usage",
            Failure::Refused(_) => "refused",
            Failure::Differs => "differs",
            Failure::Ended(_) => "ended",
            Failure::TimedOut(_) => "timed_out",
        }
    }

    fn message(&self) -> &str {
        match self {
            Failure::Failed(m)
            | Failure::Aws(m)
            | Failure::BadInput(m)
            | Failure::Refused(m)
            | Failure::Ended(m)
            | Failure::TimedOut(m) => m,
            // The diff is the message, already printed.
            Failure::Differs => "",
        }
    }

    /// The same failure, its message already printed by the command (as part of its own
    /// `--json` document): only its exit code is left to give.
    fn said(self) -> Failure {
        match self {
            Failure::Ended(_) => Failure::Ended(String::new()),
            Failure::TimedOut(_) => Failure::TimedOut(String::new()),
            Failure::BadInput(_) => Failure::BadInput(String::new()),
            Failure::Refused(_) => Failure::Refused(String::new()),
            Failure::Failed(_) | Failure::Aws(_) => Failure::Failed(String::new()),
            Failure::Differs => Failure::Differs,
        }
    }

    /// Prints it (JSON on stdout with `--json`, else a line on stderr) and returns its code.
    fn report(&self, json: bool) -> ExitCode {
        let message = self.message();
        if message.is_empty() {
            // Already said (a pipeline file's problems, listed with their paths; a diff).
        } else if json {
            outln!(
                "{}",
                serde_json::json!({"error": {"kind": self.kind(), "message": message, "exit_code": self.exit_code()}})
            );
        } else {
            match self {
                Failure::Failed(_) | Failure::Aws(_) => errln!("error: {message}"),
                Failure::Refused(_) => errln!("refused: {message}"),
                Failure::Ended(_) => errln!("ended: {message}"),
                Failure::TimedOut(_) => errln!("timed out: {message}"),
                Failure::BadInput(_) | Failure::Differs => errln!("{message}"),
            }
        }
        ExitCode::from(self.exit_code())
    }
}

impl From<shiplane::store::StoreError> for Failure {
    fn from(e: shiplane::store::StoreError) -> Self {
        Failure::Aws(e.to_string())
    }
}

/// The command line, with the settings files' values as defaults; with `--json`, a usage
/// error comes back to be printed as JSON.
fn parse(wants_json: bool) -> Result<Cli, Failure> {
    let file = settings::load().map_err(Failure::BadInput)?;
    let command = settings::with_defaults(Cli::command(), &file.arg_defaults());
    let parsed = command
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(mut cli) => {
            cli.region = file.region;
            Ok(cli)
        }
        Err(e) if wants_json && e.use_stderr() => Err(Failure::BadInput(
            e.render()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        )),
        Err(e) => e.exit(),
    }
}

fn main() -> ExitCode {
    let json = std::env::args_os().any(|a| a == "--json");
    let cli = match parse(json) {
        Ok(cli) => cli,
        Err(f) => return f.report(json),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Failure::Failed(format!("cannot start the async runtime: {e}")).report(json);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(json),
    }
}
