//! ECS "Task State Change" events: how a migration task ended.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::Inbound;
use crate::release::InvalidInput;

/// The parts of an ECS Task State Change `detail` Shiplane reads; the rest is tolerated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsTaskStateChange {
    pub task_arn: Option<String>,
    pub last_status: Option<String>,
    pub stopped_reason: Option<String>,
    pub stop_code: Option<String>,
    #[serde(default)]
    pub containers: Vec<EcsContainer>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsContainer {
    pub name: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
}

/// A stopped task and whether it did its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStopped {
    pub task_arn: String,
    /// None when every container exited 0; otherwise why not, for history and notifications.
    pub failure: Option<String>,
}

/// Parses a task state change; only STOPPED tasks are news.
pub fn parse_task_stopped(
    event: &EventBridgeEvent<EcsTaskStateChange>,
) -> Result<Inbound<TaskStopped>, InvalidInput> {
    if event.source != "aws.ecs" || event.detail_type != "ECS Task State Change" {
        return Ok(Inbound::Ignored(format!(
            "not an ECS task state change (source {}, detail-type {})",
            event.source, event.detail_type
        )));
    }
    let d = &event.detail;
    let task_arn = d
        .task_arn
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or(InvalidInput {
            field: "taskArn",
            message: "missing from the event".into(),
        })?;
    let status = d.last_status.as_deref().unwrap_or_default();
    if status != "STOPPED" {
        return Ok(Inbound::Ignored(format!(
            "task {task_arn} is {status}, not stopped"
        )));
    }
    let stopped = d.stopped_reason.as_deref().unwrap_or("no reason given");
    let failures: Vec<String> = d
        .containers
        .iter()
        .filter_map(|c| {
            let name = c.name.as_deref().unwrap_or("?");
            match c.exit_code {
                Some(0) => None,
                Some(code) => Some(match &c.reason {
                    Some(reason) => format!("container {name} exited with code {code}: {reason}"),
                    None => format!("container {name} exited with code {code}"),
                }),
                None => Some(format!("container {name} did not run: {stopped}")),
            }
        })
        .collect();
    let failure = if d.containers.is_empty() {
        Some(format!("task stopped without containers: {stopped}"))
    } else if failures.is_empty() {
        None
    } else {
        Some(failures.join("; "))
    };
    Ok(Inbound::Accepted(TaskStopped { task_arn, failure }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Result<Inbound<TaskStopped>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/ecs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_task_stopped(&serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    #[test]
    fn exit_zero_succeeds_anything_else_fails_with_the_reason() {
        let Ok(Inbound::Accepted(ok)) = fixture("migration-stopped-ok") else {
            panic!()
        };
        assert!(ok.task_arn.ends_with("/9f3c1a2b4d5e6f708192a3b4c5d6e7f8"));
        assert_eq!(ok.failure, None);
        let Ok(Inbound::Accepted(bad)) = fixture("migration-stopped-exit-1") else {
            panic!()
        };
        assert_eq!(
            bad.failure.as_deref(),
            Some("container app exited with code 1: migration 0042 failed: relation exists")
        );
        let Ok(Inbound::Accepted(never)) = fixture("migration-failed-to-start") else {
            panic!()
        };
        assert!(never.failure.unwrap().contains("CannotPullContainerError"));
        assert!(
            matches!(fixture("task-running"), Ok(Inbound::Ignored(why)) if why.contains("RUNNING"))
        );
    }
}
