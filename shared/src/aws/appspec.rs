//! The ECS AppSpec a CodeDeploy blue/green deployment runs, built with serde_json.

use serde_json::{Value, json};

use crate::pipeline::LifecycleHook;

/// The AppSpec for deploying `task_definition` behind `container:port`, with every hook
/// in `hooks` handled by the deploy-hook function through its alias of the same name
/// (`shiplane-deploy-hook:AfterAllowTestTraffic`): CodeDeploy's invocation payload does not
/// say which hook it is for, the invoked function ARN's qualifier does. Hooks without
/// checks are left out, so CodeDeploy does not wait for them.
pub fn appspec(
    task_definition: &str,
    container: &str,
    port: u16,
    hooks: &[LifecycleHook],
    hook_function: &str,
) -> Value {
    let mut ordered: Vec<LifecycleHook> = hooks.to_vec();
    ordered.sort();
    ordered.dedup();
    let hooks: Vec<Value> = ordered
        .iter()
        .map(|h| json!({ h.appspec_name(): hook_target(hook_function, *h) }))
        .collect();
    json!({
        "version": 0.0,
        "Resources": [{
            "TargetService": {
                "Type": "AWS::ECS::Service",
                "Properties": {
                    "TaskDefinition": task_definition,
                    "LoadBalancerInfo": {
                        "ContainerName": container,
                        "ContainerPort": port,
                    }
                }
            }
        }],
        "Hooks": hooks,
    })
}

/// The task definition an AppSpec of [`appspec`]'s deploys: what a deployment found by its
/// description (its creator died before recording it) runs.
pub fn task_definition_of(content: &str) -> Option<String> {
    let spec: Value = serde_json::from_str(content).ok()?;
    spec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
        .as_str()
        .map(str::to_string)
}

/// The deploy-hook function's alias for `hook`, as a function name or ARN with qualifier.
pub fn hook_target(hook_function: &str, hook: LifecycleHook) -> String {
    format!("{hook_function}:{}", hook.appspec_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_definition_is_read_back_from_an_appspec() {
        let td = "arn:aws:ecs:us-east-1:1:task-definition/api:8";
        let spec = appspec(td, "app", 8080, &[], "hook");
        assert_eq!(task_definition_of(&spec.to_string()).as_deref(), Some(td));
        assert_eq!(task_definition_of("not json"), None);
        assert_eq!(task_definition_of("{\"Resources\": []}"), None);
    }

    #[test]
    fn appspec_has_the_shape_codedeploy_expects() {
        let spec = appspec(
            "arn:aws:ecs:us-east-1:1:task-definition/api:8",
            "app",
            8080,
            &[
                LifecycleHook::AfterAllowTraffic,
                LifecycleHook::AfterAllowTestTraffic,
                LifecycleHook::AfterAllowTraffic,
            ],
            "shiplane-deploy-hook",
        );
        assert_eq!(spec["version"], json!(0.0));
        let target = &spec["Resources"][0]["TargetService"];
        assert_eq!(target["Type"], "AWS::ECS::Service");
        assert_eq!(
            target["Properties"]["TaskDefinition"],
            "arn:aws:ecs:us-east-1:1:task-definition/api:8"
        );
        assert_eq!(
            target["Properties"]["LoadBalancerInfo"],
            json!({"ContainerName": "app", "ContainerPort": 8080})
        );
        // Hooks in CodeDeploy's order, each named once, each naming the function.
        assert_eq!(
            spec["Hooks"],
            json!([
                {"AfterAllowTestTraffic": "shiplane-deploy-hook:AfterAllowTestTraffic"},
                {"AfterAllowTraffic": "shiplane-deploy-hook:AfterAllowTraffic"}
            ])
        );
    }
}
