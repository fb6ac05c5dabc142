//! Unknown keys: a problem for each key the pipeline file does not know, with the nearest
//! known key as a hint.

use super::Problems;

/// Every key the file format knows, for "did you mean" hints on unknown ones.
const KNOWN_KEYS: &[&str] = &[
    "pipeline",
    "environments",
    "defaults",
    "services",
    "repository",
    "kind",
    "container",
    "port",
    "tags",
    "regex",
    "semver",
    "prereleases",
    "cluster",
    "service",
    "codedeploy",
    "application",
    "deployment_group",
    "deployment_config",
    "keep_blue",
    "group_rollback",
    "checks",
    "name",
    "hook",
    "http",
    "expect_status",
    "timeout",
    "ecs_steady",
    "lambda",
    "method",
    "headers",
    "body_contains",
    "json_pointer",
    "json_equals",
    "latency",
    "retries",
    "interval",
    "alarms",
    "alarm_prefixes",
    "bake",
    "watch",
    "approval",
    "hold_while_alarms_in",
    "freeze",
    "migration",
    "family",
    "command",
    "task_families",
    "restarts",
    "keep",
];

/// One problem per key the file writes that the format does not know, with the nearest
/// known key as a hint.
pub(super) fn unknown_keys(unknown: Vec<String>, p: &mut Problems) {
    for path in unknown {
        // serde_ignored writes `?` for each Option it passes through; the file has no such key.
        let path = path
            .split('.')
            .filter(|segment| *segment != "?")
            .collect::<Vec<_>>()
            .join(".");
        let key = path.rsplit('.').next().unwrap_or(&path);
        let hint = KNOWN_KEYS
            .iter()
            .map(|k| (strsim::levenshtein(k, key), k))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, k)| format!("; did you mean \"{k}\"?"))
            .unwrap_or_else(|| "; remove it or check the spelling".to_string());
        p.add(path.clone(), format!("unknown key \"{key}\"{hint}"));
    }
}
