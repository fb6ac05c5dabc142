//! A blue-green stage's CodeDeploy application and deployment group, read and judged.

use shiplane::pipeline::CodeDeployTarget;

use super::{AccountCheck, Lookup};
use crate::account::rules::{At, GroupSettings, GroupStage, group_findings};
use crate::account::{Check, Finding, Severity};

impl AccountCheck {
    /// A blue-green stage's CodeDeploy application and group, and the group's settings;
    /// the group's service role, when it was read.
    pub(super) async fn group(
        &mut self,
        at: At<'_>,
        target: &CodeDeployTarget,
        cluster: &str,
        service: &str,
    ) -> Option<String> {
        let stage = GroupStage {
            at,
            application: &target.application,
            group: &target.deployment_group,
            cluster,
            service,
            expect: target.group,
        };
        self.report.looked_at(at.environment);
        let read = self
            .codedeploy
            .get_deployment_group()
            .application_name(&target.application)
            .deployment_group_name(&target.deployment_group)
            .send()
            .await;
        let missing = [
            ("ApplicationDoesNotExistException", "application"),
            ("DeploymentGroupDoesNotExistException", "group"),
        ];
        match Lookup::of("CodeDeploy GetDeploymentGroup", read, &missing) {
            Lookup::Found(out) => {
                let info = out.deployment_group_info();
                let settings = info.map(group_settings).unwrap_or_default();
                for f in group_findings(&stage, &settings) {
                    self.report.add(f);
                }
                info.and_then(|i| i.service_role_arn()).map(str::to_string)
            }
            Lookup::Missing(what) => {
                self.report.add(missing_group(&stage, what));
                None
            }
            Lookup::Unreadable(m) => {
                self.unreadable(at, stage.thing(), "codedeploy:GetDeploymentGroup", m);
                None
            }
        }
    }
}

fn missing_group(stage: &GroupStage<'_>, what: &str) -> Finding {
    let (check, thing, fix) = if what == "application" {
        (
            Check::Application,
            format!("CodeDeploy application {}", stage.application),
            format!(
                "aws deploy create-application --application-name {} --compute-platform ECS, then its group; or fix {}.codedeploy.application",
                stage.application,
                stage.at.stage_path()
            ),
        )
    } else {
        (
            Check::DeploymentGroup,
            stage.thing(),
            format!(
                "create it for ECS blue/green of {}/{} (aws deploy create-deployment-group ... with auto-rollback on and the blue task set terminated), or fix {}.codedeploy.deployment_group",
                stage.cluster,
                stage.service,
                stage.at.stage_path()
            ),
        )
    };
    stage.at.finding(
        Severity::Error,
        check,
        thing,
        "does not exist: the release's CodeDeploy deployment is refused".into(),
        fix,
    )
}

/// The settings the rules look at, from CodeDeploy's answer.
fn group_settings(info: &aws_sdk_codedeploy::types::DeploymentGroupInfo) -> GroupSettings {
    let rollback = info.auto_rollback_configuration();
    let blue_green = info.blue_green_deployment_configuration();
    let terminate = blue_green.and_then(|b| b.terminate_blue_instances_on_deployment_success());
    GroupSettings {
        rollback_enabled: rollback.is_some_and(aws_sdk_codedeploy::types::AutoRollbackConfiguration::enabled),
        rollback_events: rollback
            .map(|r| r.events().iter().map(|e| e.as_str().to_string()).collect())
            .unwrap_or_default(),
        blue_action: terminate
            .and_then(|t| t.action())
            .map(|a| a.as_str().to_string()),
        termination_wait_minutes: terminate.map_or(
            0,
            aws_sdk_codedeploy::types::BlueInstanceTerminationOption::termination_wait_time_in_minutes,
        ),
        ready_option: blue_green
            .and_then(|b| b.deployment_ready_option())
            .and_then(|r| {
                r.action_on_timeout()
                    .map(|a| (a.as_str().to_string(), r.wait_time_in_minutes()))
            }),
        style: info.deployment_style().and_then(|s| {
            Some((
                s.deployment_type()?.as_str().to_string(),
                s.deployment_option()?.as_str().to_string(),
            ))
        }),
        ecs_services: info
            .ecs_services()
            .iter()
            .map(|s| {
                (
                    s.cluster_name().unwrap_or_default().to_string(),
                    s.service_name().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        stops_on_alarms: info
            .alarm_configuration()
            .is_some_and(|a| a.enabled() && !a.alarms().is_empty()),
    }
}
