//! Answering CodeDeploy's lifecycle hooks.

use std::future::Future;

use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusError;
use aws_sdk_codedeploy::types::LifecycleEventStatus;

use super::deployer::{deployment_info, origin_of};
use super::error::once;
use super::{DeployError, Origin};
use crate::sdk::OnFirstUse;

/// What a hook answers: the deployment goes on, or CodeDeploy rolls it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

impl HookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Succeeded => "Succeeded",
            HookStatus::Failed => "Failed",
        }
    }

    pub fn parse(text: &str) -> Option<HookStatus> {
        match text {
            "Succeeded" => Some(HookStatus::Succeeded),
            "Failed" => Some(HookStatus::Failed),
            _ => None,
        }
    }
}

/// The port a hook answers CodeDeploy through.
pub trait HookReporter: Send + Sync {
    /// Reports the hook's status; a hook execution already completed counts as reported.
    fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> impl Future<Output = Result<(), DeployError>> + Send;

    /// Where a deployment came from (GetDeployment: its creator, description and AppSpec),
    /// None when CodeDeploy does not know it or someone else made it: how a hook finds its
    /// release when the deployment's reference was never recorded.
    fn origin(
        &self,
        deployment_id: &str,
    ) -> impl Future<Output = Result<Option<Origin>, DeployError>> + Send;
}

/// The production [`HookReporter`]: CodeDeploy.
#[derive(Clone, Debug)]
pub struct CodeDeployHooks {
    codedeploy: OnFirstUse<aws_sdk_codedeploy::Client>,
}

impl CodeDeployHooks {
    /// The CodeDeploy client built on first use from `config`.
    pub fn from_config(config: &aws_config::SdkConfig) -> CodeDeployHooks {
        CodeDeployHooks::new(OnFirstUse::new(config, aws_sdk_codedeploy::Client::new))
    }

    pub fn new(codedeploy: impl Into<OnFirstUse<aws_sdk_codedeploy::Client>>) -> CodeDeployHooks {
        CodeDeployHooks {
            codedeploy: codedeploy.into(),
        }
    }
}

impl HookReporter for CodeDeployHooks {
    async fn report(
        &self,
        deployment_id: &str,
        execution_id: &str,
        status: HookStatus,
    ) -> Result<(), DeployError> {
        let status = match status {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed => LifecycleEventStatus::Failed,
        };
        let put = self
            .codedeploy
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(deployment_id)
            .lifecycle_event_hook_execution_id(execution_id)
            .status(status)
            .send()
            .await;
        // An answer CodeDeploy already has (an earlier attempt's) counts as given.
        let answered = |e: &PutLifecycleEventHookExecutionStatusError| {
            matches!(
                e,
                PutLifecycleEventHookExecutionStatusError::LifecycleEventAlreadyCompletedException(
                    _
                )
            )
        };
        once(
            put,
            answered,
            "CodeDeploy PutLifecycleEventHookExecutionStatus",
        )
        .map(|_| ())
    }

    async fn origin(&self, deployment_id: &str) -> Result<Option<Origin>, DeployError> {
        Ok(deployment_info(&self.codedeploy, deployment_id)
            .await?
            .and_then(origin_of))
    }
}
