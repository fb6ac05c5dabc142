//! [`TriggerPort`] on AWS: Scheduler schedules (ListSchedules, GetSchedule, UpdateSchedule
//! with the whole schedule sent back) and EventBridge rule targets on every event bus
//! (ListEventBuses, ListRules, ListTargetsByRule, PutTargets with the target otherwise
//! unchanged).

use super::{Trigger, TriggerId, TriggerPort};
use crate::aws::DeployError;
use crate::aws::error::sdk;
use crate::sdk::OnFirstUse;

/// The production [`TriggerPort`].
#[derive(Clone, Debug)]
pub struct AwsTriggers {
    scheduler: OnFirstUse<aws_sdk_scheduler::Client>,
    events: OnFirstUse<aws_sdk_eventbridge::Client>,
}

impl AwsTriggers {
    pub fn new(
        scheduler: impl Into<OnFirstUse<aws_sdk_scheduler::Client>>,
        events: impl Into<OnFirstUse<aws_sdk_eventbridge::Client>>,
    ) -> AwsTriggers {
        AwsTriggers {
            scheduler: scheduler.into(),
            events: events.into(),
        }
    }

    /// Both clients from one SDK configuration, each built when first used.
    pub fn from_config(config: &aws_config::SdkConfig) -> AwsTriggers {
        AwsTriggers::new(
            OnFirstUse::new(config, aws_sdk_scheduler::Client::new),
            OnFirstUse::new(config, aws_sdk_eventbridge::Client::new),
        )
    }

    async fn schedules(&self) -> Result<Vec<Trigger>, DeployError> {
        let summaries = all_pages(|next| async move {
            let page = self
                .scheduler
                .list_schedules()
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| sdk("Scheduler ListSchedules", &e))?;
            Ok((page.schedules, page.next_token))
        })
        .await?;
        let mut out = Vec::new();
        for s in summaries {
            // A summary names the target's ARN only: an ECS target's is its cluster's.
            let ecs = s.target.as_ref().is_some_and(|t| is_cluster(&t.arn));
            let Some(name) = s.name.filter(|_| ecs) else {
                continue;
            };
            let group = s.group_name.unwrap_or_else(|| "default".into());
            let schedule = self.schedule(&group, &name).await?;
            let target = schedule.target.filter(|t| is_cluster(&t.arn));
            if let Some((cluster, Some(ecs))) = target.map(|t| (t.arn, t.ecs_parameters)) {
                out.push(Trigger {
                    id: TriggerId::Schedule { group, name },
                    cluster,
                    task_definition: ecs.task_definition_arn,
                });
            }
        }
        Ok(out)
    }

    async fn schedule(
        &self,
        group: &str,
        name: &str,
    ) -> Result<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput, DeployError> {
        self.scheduler
            .get_schedule()
            .group_name(group)
            .name(name)
            .send()
            .await
            .map_err(|e| sdk("Scheduler GetSchedule", &e))
    }

    async fn buses(&self) -> Result<Vec<String>, DeployError> {
        all_pages(|next| async move {
            let page = self
                .events
                .list_event_buses()
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| sdk("EventBridge ListEventBuses", &e))?;
            let names = page.event_buses.unwrap_or_default().into_iter();
            Ok((names.filter_map(|b| b.name).collect(), page.next_token))
        })
        .await
    }

    async fn rules(&self, bus: &str) -> Result<Vec<String>, DeployError> {
        all_pages(|next| async move {
            let page = self
                .events
                .list_rules()
                .event_bus_name(bus)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| sdk("EventBridge ListRules", &e))?;
            let names = page.rules.unwrap_or_default().into_iter();
            Ok((names.filter_map(|r| r.name).collect(), page.next_token))
        })
        .await
    }

    async fn targets(
        &self,
        bus: &str,
        rule: &str,
    ) -> Result<Vec<aws_sdk_eventbridge::types::Target>, DeployError> {
        all_pages(|next| async move {
            let page = self
                .events
                .list_targets_by_rule()
                .event_bus_name(bus)
                .rule(rule)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| sdk("EventBridge ListTargetsByRule", &e))?;
            Ok((page.targets.unwrap_or_default(), page.next_token))
        })
        .await
    }

    async fn rule_targets(&self) -> Result<Vec<Trigger>, DeployError> {
        let mut out = Vec::new();
        for bus in self.buses().await? {
            for rule in self.rules(&bus).await? {
                for t in self.targets(&bus, &rule).await? {
                    let Some(ecs) = t.ecs_parameters.filter(|_| is_cluster(&t.arn)) else {
                        continue;
                    };
                    out.push(Trigger {
                        id: TriggerId::RuleTarget {
                            bus: bus.clone(),
                            rule: rule.clone(),
                            target: t.id,
                        },
                        cluster: t.arn,
                        task_definition: ecs.task_definition_arn,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn point_schedule(
        &self,
        group: &str,
        name: &str,
        from: &str,
        to: &str,
    ) -> Result<(), DeployError> {
        let s = self.schedule(group, name).await?;
        let mut target = s.target.clone().ok_or_else(|| gone(group, name))?;
        let ecs = target
            .ecs_parameters
            .as_mut()
            .ok_or_else(|| gone(group, name))?;
        if !names(&ecs.task_definition_arn, from, to)? {
            return Ok(());
        }
        ecs.task_definition_arn = to.to_string();
        // UpdateSchedule replaces the whole schedule: everything it had is sent back.
        self.scheduler
            .update_schedule()
            .name(name)
            .group_name(group)
            .set_schedule_expression(s.schedule_expression)
            .set_schedule_expression_timezone(s.schedule_expression_timezone)
            .set_start_date(s.start_date)
            .set_end_date(s.end_date)
            .set_description(s.description)
            .set_state(s.state)
            .set_kms_key_arn(s.kms_key_arn)
            .set_flexible_time_window(s.flexible_time_window)
            .set_action_after_completion(s.action_after_completion)
            .target(target)
            .send()
            .await
            .map_err(|e| sdk("Scheduler UpdateSchedule", &e))?;
        Ok(())
    }

    async fn point_rule_target(
        &self,
        (bus, rule, id): (&str, &str, &str),
        from: &str,
        to: &str,
    ) -> Result<(), DeployError> {
        let found = self
            .targets(bus, rule)
            .await?
            .into_iter()
            .find(|t| t.id == id);
        let mut target = found.ok_or_else(|| {
            DeployError::permanent(format!("rule {bus}/{rule} has no target {id} any more"))
        })?;
        let Some(ecs) = target.ecs_parameters.as_mut() else {
            return Err(DeployError::permanent(format!(
                "rule {bus}/{rule} target {id} no longer runs an ECS task"
            )));
        };
        if !names(&ecs.task_definition_arn, from, to)? {
            return Ok(());
        }
        ecs.task_definition_arn = to.to_string();
        let out = self
            .events
            .put_targets()
            .event_bus_name(bus)
            .rule(rule)
            .targets(target)
            .send()
            .await
            .map_err(|e| sdk("EventBridge PutTargets", &e))?;
        // PutTargets answers 200 with the entries it refused.
        match out.failed_entries.unwrap_or_default().into_iter().next() {
            None if out.failed_entry_count == 0 => Ok(()),
            failed => {
                let (code, message) = failed
                    .map(|f| (f.error_code, f.error_message))
                    .unwrap_or_default();
                Err(DeployError {
                    message: format!(
                        "EventBridge PutTargets refused it: {} {}",
                        code.unwrap_or_default(),
                        message.unwrap_or_default()
                    ),
                    retryable: false,
                })
            }
        }
    }
}

/// Every item of a listing that pages by `NextToken`: `page(token)` answers one page's
/// items and the token of the next, if there is one.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, DeployError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), DeployError>>,
{
    let (mut out, mut next) = (Vec::new(), None);
    loop {
        let (items, token) = page(next).await?;
        out.extend(items);
        match token {
            Some(token) => next = Some(token),
            None => return Ok(out),
        }
    }
}

/// Whether a target's ARN is an ECS cluster's (the target runs a task).
fn is_cluster(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.contains(":ecs:") && arn.contains(":cluster/")
}

/// Whether a trigger naming `now` is to be pointed from `from` to `to`: false when it
/// already names `to`; an error when it names neither (it changed since it was listed).
fn names(now: &str, from: &str, to: &str) -> Result<bool, DeployError> {
    match now {
        _ if now == to => Ok(false),
        _ if now == from => Ok(true),
        _ => Err(DeployError::permanent(format!(
            "it names {now} now, not {from}; it changed while Shiplane moved it, and is left as it is"
        ))),
    }
}

fn gone(group: &str, name: &str) -> DeployError {
    DeployError::permanent(format!(
        "schedule {group}/{name} no longer runs an ECS task"
    ))
}

impl TriggerPort for AwsTriggers {
    async fn ecs_triggers(&self) -> Result<Vec<Trigger>, DeployError> {
        let mut out = self.schedules().await?;
        out.extend(self.rule_targets().await?);
        Ok(out)
    }

    async fn point(&self, trigger: &TriggerId, from: &str, to: &str) -> Result<(), DeployError> {
        match trigger {
            TriggerId::Schedule { group, name } => self.point_schedule(group, name, from, to).await,
            TriggerId::RuleTarget { bus, rule, target } => {
                self.point_rule_target((bus, rule, target), from, to).await
            }
        }
    }
}
