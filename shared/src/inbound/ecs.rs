//! ECS events: "Task State Change" (how a migration task ended) and "Deployment State
//! Change" (how a rolling service's deployment ended).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::Inbound;
use crate::facts::{ContainerExit, TaskStopped};
use crate::release::InvalidInput;

/// The parts of an ECS Task State Change `detail` Shiplane reads; the rest is tolerated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsTaskStateChange {
    pub task_arn: Option<String>,
    pub started_by: Option<String>,
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
    Ok(Inbound::Accepted(TaskStopped {
        task_arn,
        started_by: d.started_by.clone().filter(|s| !s.is_empty()),
        stopped_reason: d
            .stopped_reason
            .clone()
            .unwrap_or_else(|| "no reason given".into()),
        containers: d
            .containers
            .iter()
            .map(|c| ContainerExit {
                name: c.name.clone().unwrap_or_else(|| "?".into()),
                exit_code: c.exit_code,
                reason: c.reason.clone(),
            })
            .collect(),
    }))
}

/// The parts of an ECS Deployment State Change `detail` Shiplane reads. Shape from the
/// ECS developer guide ("Amazon ECS service deployment state change events"): `eventType`
/// INFO or ERROR, `eventName` SERVICE_DEPLOYMENT_IN_PROGRESS / _COMPLETED / _FAILED (the
/// last only with the circuit breaker on), `deploymentId` (`ecs-svc/…`), `updatedAt`,
/// `reason`. A circuit breaker's rollback is a new deployment whose IN_PROGRESS reason
/// says "rolling back to deploymentId …"; unknown fields are tolerated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcsDeploymentStateChange {
    pub event_type: Option<String>,
    pub event_name: Option<String>,
    pub deployment_id: Option<String>,
    pub updated_at: Option<String>,
    pub reason: Option<String>,
}

/// How a rolling service's deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDeploymentEnded {
    pub deployment_id: String,
    /// The service it deployed, `(cluster, service)` from the event's `resources` (the
    /// service's ARN): where a deployment Shiplane holds no reference to is looked up.
    pub service: Option<(String, String)>,
    /// Err: failed, with ECS's reason.
    pub outcome: Result<(), String>,
    /// When ECS says it happened (`updatedAt`, else the event's time).
    pub at: crate::release::Timestamp,
}

/// `(cluster, service)` of an ECS service ARN (`arn:…:service/<cluster>/<service>`); None for
/// any other ARN (the old format without the cluster names none).
fn service_of_arn(arn: &str) -> Option<(String, String)> {
    let (_, path) = arn.split_once(":service/")?;
    let (cluster, service) = path.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then(|| (cluster.to_string(), service.to_string()))
}

/// Parses a service deployment state change; only an ended deployment is news. Its time
/// (`updatedAt`, else the event's) more than [`super::MAX_CLOCK_SKEW`] ahead of `now` (the
/// function's clock) is rejected.
pub fn parse_service_deployment(
    event: &EventBridgeEvent<EcsDeploymentStateChange>,
    now: crate::release::Timestamp,
) -> Result<Inbound<ServiceDeploymentEnded>, InvalidInput> {
    if event.source != "aws.ecs" || event.detail_type != "ECS Deployment State Change" {
        return Ok(Inbound::Ignored(format!(
            "not an ECS deployment state change (source {}, detail-type {})",
            event.source, event.detail_type
        )));
    }
    let d = &event.detail;
    let deployment_id = d
        .deployment_id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or(InvalidInput {
            field: "detail.deploymentId",
            message: "missing; an ECS deployment state change names its deployment".into(),
        })?;
    let reason = d.reason.clone().unwrap_or_default();
    let outcome = match d.event_name.as_deref() {
        Some("SERVICE_DEPLOYMENT_COMPLETED") => Ok(()),
        Some("SERVICE_DEPLOYMENT_FAILED") => Err(format!(
            "ECS deployment {deployment_id} failed: {}",
            if reason.is_empty() {
                "no reason given"
            } else {
                reason.as_str()
            }
        )),
        other => {
            return Ok(Inbound::Ignored(format!(
                "ECS deployment {deployment_id} is {}; Shiplane acts when it ends",
                other.unwrap_or("in an unnamed state")
            )));
        }
    };
    let (field, at) = d
        .updated_at
        .as_deref()
        .and_then(|t| super::alarm::parse_cloudwatch_time(t).ok())
        .map(|at| ("detail.updatedAt", at))
        .or_else(|| {
            event
                .time
                .and_then(|t| u64::try_from(t.timestamp_millis()).ok())
                .map(|at| ("time", crate::release::Timestamp(at)))
        })
        .unwrap_or_default();
    let at = super::not_ahead(field, at, now)?;
    let service = event
        .resources
        .iter()
        .flatten()
        .find_map(|arn| service_of_arn(arn));
    Ok(Inbound::Accepted(ServiceDeploymentEnded {
        deployment_id,
        service,
        outcome,
        at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_arn_names_its_cluster_and_service() {
        assert_eq!(
            service_of_arn("arn:aws:ecs:us-east-1:1:service/c/s"),
            Some(("c".into(), "s".into()))
        );
        for other in [
            "arn:aws:ecs:us-east-1:1:service/s",
            "arn:aws:ecs:us-east-1:1:task/c/t",
            "arn:aws:ecs:us-east-1:1:service/c/",
        ] {
            assert_eq!(service_of_arn(other), None, "{other}");
        }
    }

    fn deployment_fixture(name: &str) -> Result<Inbound<ServiceDeploymentEnded>, InvalidInput> {
        let path = format!(
            "{}/../tests/fixtures/events/ecs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_service_deployment(
            &serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}")),
            crate::release::Timestamp::now(),
        )
    }

    #[test]
    fn a_rolling_deployment_that_completed_or_failed_is_news_and_one_in_progress_is_not() {
        let Ok(Inbound::Accepted(done)) = deployment_fixture("service-deployment-completed") else {
            panic!()
        };
        assert_eq!(done.deployment_id, "ecs-svc/1234567890123456789");
        assert_eq!(
            done.service,
            Some(("shiplane-dev".to_string(), "tiles-dev".to_string())),
            "the service, from the event's resources"
        );
        assert_eq!(done.outcome, Ok(()));
        assert_eq!(done.at.to_string(), "2026-11-24T12:31:10Z");
        let Ok(Inbound::Accepted(failed)) = deployment_fixture("service-deployment-failed") else {
            panic!()
        };
        assert_eq!(
            failed.outcome,
            Err("ECS deployment ecs-svc/1234567890123456789 failed: ECS deployment circuit breaker: task failed to start.".into())
        );
        // Stamped more than the skew ahead of the function's clock: refused, naming the
        // time it read.
        let path = format!(
            "{}/../tests/fixtures/events/ecs/service-deployment-failed.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let far = |event: &serde_json::Value| {
            let event = serde_json::from_value(event.clone()).unwrap();
            parse_service_deployment(&event, crate::release::Timestamp::now()).unwrap_err()
        };
        event["detail"]["updatedAt"] = "9999-12-31T23:59:59Z".into();
        assert_eq!(far(&event).field, "detail.updatedAt");
        event["detail"].as_object_mut().unwrap().remove("updatedAt");
        event["time"] = "9999-12-31T23:59:59Z".into();
        assert_eq!(far(&event).field, "time");
        assert!(matches!(
            deployment_fixture("service-deployment-rollback-in-progress"),
            Ok(Inbound::Ignored(why)) if why.contains("SERVICE_DEPLOYMENT_IN_PROGRESS")
        ));
    }

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
        assert_eq!(
            ok.started_by.as_deref(),
            Some("01JD2B3C4D5E6F7G8H9J0KMNPQ-dev")
        );
        assert_eq!(ok.outcome(Some("app")), Ok(()));
        assert_eq!(ok.outcome(None), Ok(()));
        let Ok(Inbound::Accepted(bad)) = fixture("migration-stopped-exit-1") else {
            panic!()
        };
        assert_eq!(
            bad.outcome(Some("app")),
            Err("container app exited with code 1: migration 0042 failed: relation exists".into())
        );
        let Ok(Inbound::Accepted(never)) = fixture("migration-failed-to-start") else {
            panic!()
        };
        assert!(
            never
                .outcome(Some("app"))
                .unwrap_err()
                .contains("CannotPullContainerError")
        );
        assert!(
            matches!(fixture("task-running"), Ok(Inbound::Ignored(why)) if why.contains("RUNNING"))
        );
    }

    #[test]
    fn only_the_migration_containers_exit_decides() {
        // The migration exits 0; the log router sidecar is killed (137) as the task stops.
        let Ok(Inbound::Accepted(t)) = fixture("migration-sidecar-killed") else {
            panic!()
        };
        assert_eq!(t.outcome(Some("app")), Ok(()));
        assert!(
            t.outcome(None)
                .unwrap_err()
                .contains("log-router exited with code 137")
        );
        assert!(
            t.outcome(Some("migrate"))
                .unwrap_err()
                .contains("not in the task")
        );
    }
}
