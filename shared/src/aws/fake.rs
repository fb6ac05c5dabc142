//! In-memory fakes of the AWS ports, for tests of the engine and handlers.

use std::sync::Mutex;

use super::{DeployError, DeployOutcome, DeployRequest, Deployer, Notification, Notifier};

/// What a [`FakeDeployer`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Deploy {
        release: String,
        environment: String,
    },
    RunMigration {
        release: String,
        environment: String,
    },
    Stop {
        deployment_id: String,
        rollback: bool,
    },
}

/// Records calls and answers from a script; deploys start `d-<n>` by default.
#[derive(Default)]
pub struct FakeDeployer {
    pub calls: Mutex<Vec<Call>>,
    /// Answers for the next `deploy` calls, in order; empty means "started".
    pub deploy_answers: Mutex<Vec<Result<DeployOutcome, DeployError>>>,
    pub migration_answers: Mutex<Vec<Result<String, DeployError>>>,
}

impl FakeDeployer {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: Call) -> usize {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.push(call);
        calls.len()
    }
}

impl Deployer for FakeDeployer {
    async fn deploy(&self, req: DeployRequest<'_>) -> Result<DeployOutcome, DeployError> {
        let n = self.record(Call::Deploy {
            release: req.release.id.to_string(),
            environment: req.stage.environment.clone(),
        });
        let scripted = {
            let mut answers = self
                .deploy_answers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            (!answers.is_empty()).then(|| answers.remove(0))
        };
        scripted.unwrap_or_else(|| {
            Ok(DeployOutcome::Started {
                deployment_id: format!("d-{n}"),
                task_definition: format!("td:{n}"),
            })
        })
    }

    async fn run_migration(&self, req: DeployRequest<'_>) -> Result<String, DeployError> {
        let n = self.record(Call::RunMigration {
            release: req.release.id.to_string(),
            environment: req.stage.environment.clone(),
        });
        let scripted = {
            let mut answers = self
                .migration_answers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            (!answers.is_empty()).then(|| answers.remove(0))
        };
        scripted.unwrap_or_else(|| Ok(format!("arn:aws:ecs:task/{n}")))
    }

    async fn stop_deployment(
        &self,
        deployment_id: &str,
        rollback: bool,
    ) -> Result<(), DeployError> {
        self.record(Call::Stop {
            deployment_id: deployment_id.to_string(),
            rollback,
        });
        Ok(())
    }
}

/// Keeps every notification; can be told to fail every publish.
#[derive(Default)]
pub struct RecordingNotifier {
    pub sent: Mutex<Vec<Notification>>,
    pub fail: bool,
}

impl RecordingNotifier {
    pub fn kinds(&self) -> Vec<String> {
        self.sent
            .lock()
            .map(|s| s.iter().map(|n| n.kind.clone()).collect())
            .unwrap_or_default()
    }
}

impl Notifier for RecordingNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), String> {
        if self.fail {
            return Err("SNS Publish: InternalError: the topic is down".into());
        }
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.clone());
        Ok(())
    }
}
