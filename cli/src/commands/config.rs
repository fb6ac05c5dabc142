//! `shiplane config validate | diff | apply | show`: the pipeline file (the work is in
//! `config_file`), against what the table stores.

use super::Context;
use super::lookup::current_pipeline;
use crate::{ConfigCommand, Failure, config_file, render};

/// A `config` subcommand.
pub(super) async fn run(cx: &Context<'_>, command: &ConfigCommand) -> Result<(), Failure> {
    match command {
        ConfigCommand::Validate { file } => config_file::validate(file, cx.json()),
        ConfigCommand::Diff { file } => config_file::diff(&cx.store(), file, cx.json()).await,
        ConfigCommand::Apply {
            file,
            actor,
            force,
            no_check,
        } => {
            let store = cx.store();
            let how = config_file::Apply {
                force: *force,
                check_account: !*no_check,
                actor: actor.clone(),
                json: cx.json(),
            };
            config_file::apply(cx.config, &store, file, how).await
        }
        ConfigCommand::Show => {
            let current = current_pipeline(&cx.store()).await?;
            render::pipeline_source(&current, cx.json());
            Ok(())
        }
    }
}
