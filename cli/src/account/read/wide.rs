//! What every environment shares: the alarms the stages watch (read in one go), the
//! deploy-hook function and its aliases, the bake timers' schedule group.

use std::collections::BTreeSet;

use shiplane::aws::AlarmReader;
use shiplane::pipeline::{LifecycleHook, Pipeline, Service, StageConfig};

use super::{AccountCheck, Lookup, at};
use crate::account::rules::{At, alarm_findings, hook_name_finding};
use crate::account::{Check, Severity};
use crate::diagnose::one_line;

impl AccountCheck {
    /// Every alarm name and prefix the stages watch, read in one go and told per stage.
    pub(super) async fn alarms(&mut self, pipeline: &Pipeline) {
        let stages: Vec<(&Service, &StageConfig)> = pipeline
            .services
            .values()
            .flat_map(|s| s.stages.iter().map(move |st| (s, st)))
            .filter(|(_, st)| !st.alarms.is_empty() || !st.alarm_prefixes.is_empty())
            .collect();
        if stages.is_empty() {
            return;
        }
        let names: BTreeSet<String> = stages
            .iter()
            .flat_map(|(_, st)| st.alarms.clone())
            .collect();
        let prefixes: BTreeSet<String> = stages
            .iter()
            .flat_map(|(_, st)| st.alarm_prefixes.clone())
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        let prefixes: Vec<String> = prefixes.into_iter().collect();
        let existing: BTreeSet<String> = match self.alarms.current(&names, &prefixes).await {
            Ok(found) => found.into_iter().map(|c| c.alarm).collect(),
            Err(e) => {
                let at = At {
                    environment: None,
                    service: None,
                };
                let thing = "CloudWatch alarms the pipeline watches".to_string();
                return self.unreadable(
                    at,
                    thing,
                    "cloudwatch:DescribeAlarms",
                    one_line(&e.message),
                );
            }
        };
        for (service, stage) in stages {
            let at = at(service, stage);
            self.report.looked_at(at.environment);
            for f in alarm_findings(at, &stage.alarms, &stage.alarm_prefixes, &existing) {
                self.report.add(f);
            }
        }
    }

    /// The deploy-hook function, its alias for every hook a check runs in, and that each
    /// group's service role may invoke those aliases, when any blue-green stage has checks
    /// (a stage without checks names no hook).
    pub(super) async fn hook_function(&mut self, pipeline: &Pipeline, function: &str) {
        let mut hooks: BTreeSet<LifecycleHook> = BTreeSet::new();
        for stage in pipeline.services.values().flat_map(|s| &s.stages) {
            hooks.extend(stage.target.checks().iter().map(|c| c.hook));
        }
        if hooks.is_empty() {
            return;
        }
        let at = At {
            environment: None,
            service: None,
        };
        self.report.looked_at(None);
        let read = self
            .lambda
            .get_function()
            .function_name(function)
            .send()
            .await;
        let thing = format!("Lambda function {function}");
        let told = match Lookup::of(
            "Lambda GetFunction",
            read,
            &[("ResourceNotFoundException", "")],
        ) {
            Lookup::Found(out) => {
                for hook in hooks {
                    self.hook_alias(function, hook).await;
                }
                let arn = out.configuration().and_then(|c| c.function_arn());
                match arn.map(str::to_string) {
                    Some(arn) => self.service_roles(&arn).await,
                    None => false,
                }
            }
            Lookup::Missing(_) => {
                self.report.add(at.finding(
                    Severity::Error,
                    Check::HookFunction,
                    thing,
                    "does not exist: CodeDeploy invokes it for every lifecycle hook with checks, and fails the deployment".into(),
                    "deploy the stack (make deploy), or name its HookFunctionName output: shiplane init --stack NAME, --hook-function or SHIPLANE_HOOK_FUNCTION".into(),
                ));
                false
            }
            Lookup::Unreadable(m) => {
                self.unreadable(at, thing, "lambda:GetFunction", m);
                false
            }
        };
        // Once every group's role was read and told, the name no longer matters.
        if !told && let Some(f) = hook_name_finding(function) {
            self.report.add(f);
        }
    }

    async fn hook_alias(&mut self, function: &str, hook: LifecycleHook) {
        let at = At {
            environment: None,
            service: None,
        };
        self.report.looked_at(None);
        let alias = hook.appspec_name();
        let read = self
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await;
        let thing = format!("Lambda alias {function}:{alias}");
        match Lookup::of("Lambda GetAlias", read, &[("ResourceNotFoundException", "")]) {
            Lookup::Found(_) => {}
            Lookup::Missing(_) => self.report.add(at.finding(
                Severity::Error,
                Check::HookFunction,
                thing,
                format!("does not exist: the AppSpec names it for the {} checks, and CodeDeploy fails the deployment at that hook", hook.config_name()),
                format!("deploy the stack again (it makes one alias per hook), or: aws lambda create-alias --function-name {function} --name {alias} --function-version '$LATEST'"),
            )),
            Lookup::Unreadable(m) => self.unreadable(at, thing, "lambda:GetAlias", m),
        }
    }

    /// The Scheduler group bake timers are set in, when any stage bakes.
    pub(super) async fn schedule_group(&mut self, pipeline: &Pipeline, group: &str) {
        let bakes = pipeline
            .services
            .values()
            .flat_map(|s| &s.stages)
            .any(|st| !st.bake.is_zero());
        if !bakes {
            return;
        }
        let at = At {
            environment: None,
            service: None,
        };
        self.report.looked_at(None);
        let read = self.scheduler.get_schedule_group().name(group).send().await;
        let thing = format!("EventBridge Scheduler schedule group {group}");
        match Lookup::of("Scheduler GetScheduleGroup", read, &[("ResourceNotFoundException", "")]) {
            Lookup::Found(_) => {}
            Lookup::Missing(_) => self.report.add(at.finding(
                Severity::Error,
                Check::ScheduleGroup,
                thing,
                "does not exist: a bake's timer cannot be set there, and the bake waits for the reconciler".into(),
                format!("name the stack's ScheduleGroupName output (shiplane init --stack NAME, --schedule-group or SHIPLANE_SCHEDULE_GROUP), or: aws scheduler create-schedule-group --name {group}"),
            )),
            Lookup::Unreadable(m) => self.unreadable(at, thing, "scheduler:GetScheduleGroup", m),
        }
    }
}
