//! What the account check concludes from what it read: pure functions over plain values
//! (CodeDeploy's and ECS's own spellings), so each rule is unit-tested without AWS.

use std::collections::BTreeSet;

use shiplane::pipeline::{
    BlueAfterSuccess, GroupExpectation, GroupRollback, LifecycleHook, ServiceKind,
};

use super::policy::Access;
use super::{Check, Finding, Severity};

/// Where a finding belongs: the environment (none: all) and the service.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub environment: Option<&'a str>,
    pub service: Option<&'a str>,
}

impl At<'_> {
    pub fn finding(
        &self,
        severity: Severity,
        check: Check,
        thing: String,
        problem: String,
        fix: String,
    ) -> Finding {
        Finding {
            severity,
            check,
            environment: self.environment.map(str::to_string),
            service: self.service.map(str::to_string),
            thing,
            problem,
            fix,
        }
    }

    /// `services.<s>.environments.<e>`: where a fix in the pipeline file goes.
    pub fn stage_path(&self) -> String {
        format!(
            "services.{}.environments.{}",
            self.service.unwrap_or_default(),
            self.environment.unwrap_or_default()
        )
    }
}

/// A deployment group's settings as CodeDeploy's GetDeploymentGroup answers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSettings {
    pub rollback_enabled: bool,
    /// `DEPLOYMENT_FAILURE`, `DEPLOYMENT_STOP_ON_ALARM`, `DEPLOYMENT_STOP_ON_REQUEST`.
    pub rollback_events: Vec<String>,
    /// `terminateBlueInstancesOnDeploymentSuccess.action`: `TERMINATE` or `KEEP_ALIVE`.
    pub blue_action: Option<String>,
    pub termination_wait_minutes: i32,
    /// `deploymentReadyOption`: action on timeout and wait, kept as they are by the fix.
    pub ready_option: Option<(String, i32)>,
    /// `deploymentStyle`: type and option.
    pub style: Option<(String, String)>,
    /// `ecsServices`: (cluster name, service name).
    pub ecs_services: Vec<(String, String)>,
    /// `alarmConfiguration.enabled` with at least one alarm: the group stops deployments itself.
    pub stops_on_alarms: bool,
}

/// A blue-green stage's group, as the pipeline names it.
#[derive(Debug, Clone, Copy)]
pub struct GroupStage<'a> {
    pub at: At<'a>,
    pub application: &'a str,
    pub group: &'a str,
    pub cluster: &'a str,
    pub service: &'a str,
    pub expect: GroupExpectation,
}

impl GroupStage<'_> {
    pub fn thing(&self) -> String {
        format!(
            "CodeDeploy deployment group {}/{}",
            self.application, self.group
        )
    }

    fn update(&self) -> String {
        format!(
            "aws deploy update-deployment-group --application-name {} --current-deployment-group-name {}",
            self.application, self.group
        )
    }
}

const FAILURE: &str = "DEPLOYMENT_FAILURE";
const STOP_ON_ALARM: &str = "DEPLOYMENT_STOP_ON_ALARM";
const STOP_ON_REQUEST: &str = "DEPLOYMENT_STOP_ON_REQUEST";

/// Everything wrong with a blue-green stage's deployment group.
pub fn group_findings(stage: &GroupStage<'_>, s: &GroupSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(style_finding(stage, s));
    out.extend(services_finding(stage, s));
    out.extend(rollback_findings(stage, s));
    out.extend(blue_finding(stage, s));
    out
}

fn style_finding(stage: &GroupStage<'_>, s: &GroupSettings) -> Option<Finding> {
    let (kind, option) = s.style.as_ref()?;
    if kind == "BLUE_GREEN" && option == "WITH_TRAFFIC_CONTROL" {
        return None;
    }
    Some(stage.at.finding(
        Severity::Error,
        Check::DeploymentGroup,
        stage.thing(),
        format!("is not an ECS blue/green group (deploymentStyle {kind} {option}): CodeDeploy refuses the release's deployment"),
        format!(
            "create the group with --deployment-style deploymentType=BLUE_GREEN,deploymentOption=WITH_TRAFFIC_CONTROL, or name the right one in {}.codedeploy.deployment_group",
            stage.at.stage_path()
        ),
    ))
}

fn services_finding(stage: &GroupStage<'_>, s: &GroupSettings) -> Option<Finding> {
    let name = |v: &str| v.rsplit('/').next().unwrap_or(v).to_string();
    let deploys: Vec<(String, String)> = s
        .ecs_services
        .iter()
        .map(|(c, v)| (name(c), name(v)))
        .collect();
    if deploys.is_empty()
        || deploys
            .iter()
            .any(|(c, v)| c == stage.cluster && v == stage.service)
    {
        return None;
    }
    let named: Vec<String> = deploys.iter().map(|(c, v)| format!("{c}/{v}")).collect();
    Some(stage.at.finding(
        Severity::Error,
        Check::DeploymentGroup,
        stage.thing(),
        format!(
            "deploys ECS service {}, not {}/{} that the stage names: a release would replace another service's tasks",
            named.join(", "),
            stage.cluster,
            stage.service
        ),
        format!(
            "name the group that deploys {}/{} in {}.codedeploy.deployment_group, or fix the stage's cluster and service",
            stage.cluster,
            stage.service,
            stage.at.stage_path()
        ),
    ))
}

fn rollback_findings(stage: &GroupStage<'_>, s: &GroupSettings) -> Vec<Finding> {
    let has = |event: &str| s.rollback_enabled && s.rollback_events.iter().any(|e| e == event);
    let fix = format!(
        "{} --auto-rollback-configuration enabled=true,events={FAILURE},{STOP_ON_ALARM},{STOP_ON_REQUEST} (console: the group's Advanced settings, Rollbacks); or, if it is meant, write group_rollback = false in {}.codedeploy",
        stage.update(),
        stage.at.stage_path()
    );
    let finding = |severity, problem: String| {
        stage.at.finding(
            severity,
            Check::GroupRollback,
            stage.thing(),
            problem,
            fix.clone(),
        )
    };
    if stage.expect.rollback == GroupRollback::Off {
        return if has(FAILURE) {
            Vec::new()
        } else {
            vec![stage.at.finding(
                Severity::Note,
                Check::GroupRollback,
                stage.thing(),
                "has its auto-rollback off, as the pipeline says (group_rollback = false); Shiplane's own deployments still roll back".into(),
                format!("none; remove group_rollback = false from {}.codedeploy to have it required", stage.at.stage_path()),
            )]
        };
    }
    let mut out = Vec::new();
    if !s.rollback_enabled {
        out.push(finding(Severity::Error, "has its auto-rollback off: a failed deployment is not rolled back unless whoever started it asked (Shiplane does; the console, a redeploy and other tools may not)".into()));
        return out;
    }
    if !has(FAILURE) {
        out.push(finding(
            Severity::Error,
            format!(
                "does not roll back a failed deployment (auto-rollback events: {}): the failed version keeps serving unless whoever started it asked",
                events(s)
            ),
        ));
    }
    if s.stops_on_alarms && !has(STOP_ON_ALARM) {
        out.push(finding(Severity::Error, format!("stops deployments on its own alarms but does not roll them back (auto-rollback events: {}): a stop leaves the new version serving", events(s))));
    }
    if !has(STOP_ON_REQUEST) {
        out.push(finding(Severity::Warning, format!("does not roll back a deployment stopped outside Shiplane, from the console or aws deploy stop-deployment (auto-rollback events: {})", events(s))));
    }
    out
}

fn events(s: &GroupSettings) -> String {
    if s.rollback_events.is_empty() {
        "none".into()
    } else {
        s.rollback_events.join(", ")
    }
}

fn blue_finding(stage: &GroupStage<'_>, s: &GroupSettings) -> Option<Finding> {
    let action = s.blue_action.as_deref();
    if action == Some("TERMINATE") {
        return None;
    }
    let said = action.map_or_else(
        || "no terminateBlueInstancesOnDeploymentSuccess".to_string(),
        |a| format!("terminateBlueInstancesOnDeploymentSuccess {a}"),
    );
    if stage.expect.blue == BlueAfterSuccess::Keep {
        return Some(stage.at.finding(
            Severity::Note,
            Check::GroupBlue,
            stage.thing(),
            format!("keeps the blue task set after a success ({said}), as the pipeline says (keep_blue = true)"),
            format!("none; remove keep_blue = true from {}.codedeploy to have it required", stage.at.stage_path()),
        ));
    }
    let wait = if s.termination_wait_minutes > 0 {
        s.termination_wait_minutes
    } else {
        5
    };
    let ready = s
        .ready_option
        .as_ref()
        .map(|(action, minutes)| {
            format!(
                ",deploymentReadyOption={{actionOnTimeout={action},waitTimeInMinutes={minutes}}}"
            )
        })
        .unwrap_or_default();
    Some(stage.at.finding(
        Severity::Error,
        Check::GroupBlue,
        stage.thing(),
        format!("keeps the blue (original) task set forever after a success ({said}): the old version keeps running beside the new one"),
        format!(
            "{} --blue-green-deployment-configuration 'terminateBlueInstancesOnDeploymentSuccess={{action=TERMINATE,terminationWaitTimeInMinutes={wait}}}{ready}' (console: the group's Deployment settings, Original revision termination); or, if it is meant, write keep_blue = true in {}.codedeploy",
            stage.update(),
            stage.at.stage_path()
        ),
    ))
}

/// A service whose deployment controller does not match how the stage deploys it
/// (`controller` as ECS answers it; none means ECS).
pub fn controller_finding(
    at: At<'_>,
    kind: ServiceKind,
    cluster: &str,
    service: &str,
    controller: Option<&str>,
) -> Option<Finding> {
    let controller = controller.unwrap_or("ECS");
    let (wanted, fix) = match kind {
        ServiceKind::BlueGreen => (
            "CODE_DEPLOY",
            "a blue-green stage deploys through CodeDeploy: create the service with --deployment-controller type=CODE_DEPLOY and a CodeDeploy group for it, or release it with kind = \"rolling\"".to_string(),
        ),
        ServiceKind::Rolling => (
            "ECS",
            "a rolling stage updates the service itself: use a service with the ECS deployment controller, or release it with kind = \"blue-green\" through its CodeDeploy group".to_string(),
        ),
        ServiceKind::Task => return None,
    };
    (controller != wanted).then(|| {
        at.finding(
            Severity::Error,
            Check::DeploymentController,
            format!("ECS service {cluster}/{service}"),
            format!(
                "has the {controller} deployment controller; a {} stage needs {wanted}: its deployment would be refused",
                kind.as_str()
            ),
            fix,
        )
    })
}

/// A task definition without the container a release replaces the image of (or a migration
/// runs its command in).
pub fn container_finding(
    at: At<'_>,
    check: Check,
    task_definition: &str,
    container: &str,
    containers: &[String],
    setting: &str,
) -> Option<Finding> {
    if containers.iter().any(|c| c == container) {
        return None;
    }
    Some(at.finding(
        Severity::Error,
        check,
        format!("task definition {task_definition}"),
        format!(
            "has no container \"{container}\" (it has: {}): a release cannot put its image there",
            if containers.is_empty() {
                "none".to_string()
            } else {
                containers.join(", ")
            }
        ),
        format!("set {setting} to one of its containers, or register a revision of it that has \"{container}\""),
    ))
}

/// A stage's alarms that CloudWatch does not have, and prefixes no alarm starts with.
pub fn alarm_findings(
    at: At<'_>,
    names: &[String],
    prefixes: &[String],
    existing: &BTreeSet<String>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for name in names.iter().filter(|n| !existing.contains(*n)) {
        out.push(at.finding(
            Severity::Error,
            Check::Alarm,
            format!("CloudWatch alarm {name}"),
            "does not exist: nothing it watches can stop or roll back a release there".into(),
            format!(
                "create it (aws cloudwatch put-metric-alarm --alarm-name {name} ...), or fix the name in {}.alarms",
                at.stage_path()
            ),
        ));
    }
    for prefix in prefixes
        .iter()
        .filter(|p| !existing.iter().any(|a| a.starts_with(p.as_str())))
    {
        out.push(at.finding(
            Severity::Warning,
            Check::Alarm,
            format!("CloudWatch alarms named {prefix}*"),
            "match none: the prefix watches nothing yet".into(),
            format!(
                "create the alarms it is meant to cover, or fix {}.alarm_prefixes",
                at.stage_path()
            ),
        ));
    }
    out
}

/// The deploy-hook function's name, when AWS's limited managed policy for ECS blue/green
/// would not let a role invoke it (it allows `CodeDeployHook_*` only): said only when the
/// groups' service roles could not be read and told.
pub fn hook_name_finding(function: &str) -> Option<Finding> {
    let name = function
        .rsplit(":function:")
        .next()
        .unwrap_or(function)
        .split(':')
        .next()
        .unwrap_or(function);
    if name.starts_with("CodeDeployHook_") {
        return None;
    }
    Some(At { environment: None, service: None }.finding(
        Severity::Warning,
        Check::HookFunction,
        format!("Lambda function {name}"),
        "is not named CodeDeployHook_*, the only functions AWS's managed policy AWSCodeDeployRoleForECSLimited lets a service role invoke, and the groups' service roles could not be told: unless they may invoke it, every lifecycle hook with checks fails".into(),
        "attach the stack's DeployHookInvokePolicy output to the groups' service roles (the stack's CodeDeployServiceRoleName parameter does it), or deploy the stack with DeployHookFunctionName = CodeDeployHook_<name>".into(),
    ))
}

/// A blue-green stage with checks, whose deployment group acts as a service role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleUse {
    pub environment: String,
    pub service: String,
    /// `application/group`.
    pub group: String,
    /// The hooks its checks run in: CodeDeploy invokes the deploy-hook's alias for each.
    pub hooks: BTreeSet<LifecycleHook>,
}

/// Where a role's finding belongs: the environment and service its groups share, if one.
pub fn role_at(uses: &[RoleUse]) -> At<'_> {
    let shared = |of: fn(&RoleUse) -> &str| {
        let first = uses.first().map(of)?;
        uses.iter().all(|u| of(u) == first).then_some(first)
    };
    At {
        environment: shared(|u| &u.environment),
        service: shared(|u| &u.service),
    }
}

/// `IAM role NAME (the service role of CodeDeploy group APP/GROUP)`.
pub fn role_thing(role_arn: &str, uses: &[RoleUse]) -> String {
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let groups: BTreeSet<&str> = uses.iter().map(|u| u.group.as_str()).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    format!(
        "IAM role {name} (the service role of CodeDeploy group{} {})",
        if groups.len() == 1 { "" } else { "s" },
        groups.join(", ")
    )
}

/// A group's service role that IAM does not have: CodeDeploy can do nothing as it.
pub fn missing_role_finding(role_arn: &str, uses: &[RoleUse]) -> Finding {
    role_at(uses).finding(
        Severity::Error,
        Check::ServiceRole,
        role_thing(role_arn, uses),
        "does not exist: CodeDeploy acts as it for every deployment of the group, and fails them".into(),
        "create it (trusting codedeploy.amazonaws.com, with AWSCodeDeployRoleForECS or AWSCodeDeployRoleForECSLimited attached, and the stack's DeployHookInvokePolicy output), or name an existing one: aws deploy update-deployment-group ... --service-role-arn ARN".into(),
    )
}

/// The verdict a role's finding tells, and the alias ARNs it names: those that surely
/// fail (a Deny first), or else those that cannot be told; `None`: all are allowed.
fn worst(verdicts: &[(String, Access)]) -> Option<(&Access, Vec<&str>)> {
    let rank = |a: &Access| match a {
        Access::Denied { .. } => 0,
        Access::OutsideBoundary { .. } => 1,
        Access::NotGranted => 2,
        Access::Unknown { .. } => 3,
        Access::Allowed => 4,
    };
    let worst = verdicts.iter().map(|(_, a)| a).min_by_key(|a| rank(a))?;
    let fails = |a: &Access| rank(a) < 3;
    let listed = verdicts
        .iter()
        .filter(|(_, a)| if fails(worst) { fails(a) } else { a == worst })
        .map(|(arn, _)| arn.as_str())
        .collect();
    Some((worst, listed))
}

/// What a service role's policies say of invoking the deploy-hook's aliases (`verdicts`:
/// each alias ARN CodeDeploy invokes for its groups' checks); nothing when all are allowed.
pub fn invoke_finding(
    role_arn: &str,
    uses: &[RoleUse],
    function: &str,
    verdicts: &[(String, Access)],
) -> Option<Finding> {
    let (worst, listed) = worst(verdicts)?;
    let name = function.rsplit(":function:").next().unwrap_or(function);
    let aliases: Vec<&str> = listed
        .iter()
        .map(|arn| arn.rsplit(':').next().unwrap_or(arn))
        .collect();
    let what = format!(
        "invoke Lambda function {name} through its alias{} {}",
        if aliases.len() == 1 { "" } else { "es" },
        aliases.join(", ")
    );
    let arns = listed.join(", ");
    let fails =
        "CodeDeploy fails every lifecycle hook with checks there, and the deployment with it";
    let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let attach = format!(
        "attach the stack's DeployHookInvokePolicy output to it (aws iam attach-role-policy --role-name {role} --policy-arn <the DeployHookInvokePolicy output>, or deploy the stack with CodeDeployServiceRoleName={role}), or add a statement to its policies allowing lambda:InvokeFunction on {arns}"
    );
    let them = if listed.len() == 1 { "it" } else { "them" };
    let (severity, problem, fix) = match worst {
        Access::Allowed => return None,
        Access::Denied { policy } => (
            Severity::Error,
            format!("may not {what} ({policy} denies it, and a Deny wins over any Allow): {fails}"),
            format!(
                "narrow the Deny in {policy} so that it leaves lambda:InvokeFunction on {arns}"
            ),
        ),
        Access::OutsideBoundary { boundary } => (
            Severity::Error,
            format!("may not {what} (its {boundary} does not allow it): {fails}"),
            format!("let its permissions boundary allow lambda:InvokeFunction on {arns}"),
        ),
        Access::NotGranted => (
            Severity::Error,
            format!(
                "may not {what} (none of its policies allows lambda:InvokeFunction on {them}): {fails}"
            ),
            attach,
        ),
        Access::Unknown { policy, why } => (
            Severity::Warning,
            format!(
                "may not be allowed to {what} (could not tell: {why} in {policy} decides it): where it does not hold, {fails}"
            ),
            format!(
                "make sure it holds when CodeDeploy invokes {them}, or allow lambda:InvokeFunction on {arns} outright (the stack's DeployHookInvokePolicy output does)"
            ),
        ),
    };
    Some(role_at(uses).finding(
        severity,
        Check::ServiceRole,
        role_thing(role_arn, uses),
        problem,
        fix,
    ))
}

#[cfg(test)]
mod tests;
