//! The checks a CodeDeploy lifecycle hook runs against the new version: one port,
//! [`Checker`], the pure rules that judge an answer, and (feature `hooks`, which only the
//! deploy-hook function turns on) the production checker, `AwsChecker`.

#[cfg(feature = "hooks")]
mod aws;
#[cfg(feature = "hooks")]
mod http;

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "hooks")]
pub use aws::AwsChecker;
#[cfg(feature = "hooks")]
pub use http::HttpClient;

use crate::pipeline::{Check, HttpProbe, Pipeline, Service, StageConfig};
use crate::release::escaped;

/// What a check may look at.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    pub pipeline: &'a Pipeline,
    pub service: &'a Service,
    pub stage: &'a StageConfig,
    pub deployment_id: &'a str,
}

impl CheckContext<'_> {
    /// The alarms an `alarms` check watches: the stage's own, and those of every
    /// environment its gate watches (`hold_while_alarms_in`): names and prefixes.
    pub fn watched_alarms(&self) -> (Vec<String>, Vec<String>) {
        let mut names = self.stage.alarms.clone();
        let mut prefixes = self.stage.alarm_prefixes.clone();
        for env in &self.stage.hold_while_alarms_in {
            if let Some(watched) = self.service.stage(env) {
                names.extend(watched.alarms.iter().cloned());
                prefixes.extend(watched.alarm_prefixes.iter().cloned());
            }
        }
        names.sort();
        names.dedup();
        prefixes.sort();
        prefixes.dedup();
        (names, prefixes)
    }
}

/// How one check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub passed: bool,
    pub latency: Duration,
    /// Why it failed, or what it saw (a truncated response excerpt).
    pub detail: String,
}

impl CheckResult {
    pub fn passed(latency: Duration, detail: impl Into<String>) -> CheckResult {
        CheckResult {
            passed: true,
            latency,
            detail: detail.into(),
        }
    }

    pub fn failed(latency: Duration, detail: impl Into<String>) -> CheckResult {
        CheckResult {
            passed: false,
            latency,
            detail: detail.into(),
        }
    }

    /// The history record: `name: passed in 12 ms: detail`.
    pub fn record(&self, name: &str) -> String {
        format!(
            "{name}: {} in {} ms: {}",
            if self.passed { "passed" } else { "failed" },
            self.latency.as_millis(),
            self.detail
        )
    }

    /// Reads back a history record written by [`CheckResult::record`]: the check's name,
    /// whether it passed, and its latency in milliseconds (for metrics).
    pub fn parse_record(record: &str) -> Option<(String, bool, u64)> {
        let (name, passed, rest) = [(": passed in ", true), (": failed in ", false)]
            .into_iter()
            .filter_map(|(sep, passed)| {
                record
                    .find(sep)
                    .map(|i| (&record[..i], passed, &record[i + sep.len()..]))
            })
            .min_by_key(|(name, _, _)| name.len())?;
        let ms = rest.split_once(" ms")?.0.parse().ok()?;
        Some((name.to_string(), passed, ms))
    }
}

/// The port checks run through. A check never errors: whatever goes wrong is a failed
/// result with the reason. The caller bounds it in time.
pub trait Checker: Send + Sync {
    fn run(
        &self,
        check: &Check,
        ctx: &CheckContext<'_>,
    ) -> impl Future<Output = CheckResult> + Send;
}

/// How much of a response body history keeps.
pub const EXCERPT_CHARS: usize = 200;

/// A response body as history shows it: at most [`EXCERPT_CHARS`] characters, escaped.
pub fn excerpt(body: &str) -> String {
    let cut: String = body.chars().take(EXCERPT_CHARS).collect();
    let more = if body.chars().count() > EXCERPT_CHARS {
        "…"
    } else {
        ""
    };
    format!("{}{more}", escaped(&cut))
}

/// Whether an HTTP answer is what the probe expects; Err says what differs.
pub fn judge_http(probe: &HttpProbe, status: u16, body: &str) -> Result<(), String> {
    if status != probe.expect_status {
        return Err(format!(
            "status {status}, expected {}: {}",
            probe.expect_status,
            excerpt(body)
        ));
    }
    if let Some(needle) = &probe.body_contains
        && !body.contains(needle.as_str())
    {
        return Err(format!(
            "the body does not contain {:?}: {}",
            needle,
            excerpt(body)
        ));
    }
    if let Some((pointer, expected)) = &probe.json_pointer {
        let json: serde_json::Value = serde_json::from_str(body)
            .map_err(|e| format!("the body is not JSON ({e}): {}", excerpt(body)))?;
        match json.pointer(pointer) {
            Some(found) if found == expected => {}
            Some(found) => {
                return Err(format!("{pointer} is {found}, expected {expected}"));
            }
            None => return Err(format!("{pointer} is not in the body: {}", excerpt(body))),
        }
    }
    Ok(())
}

/// A [`Checker`] that answers from a script, by check name (unscripted checks pass): for
/// tests of the hook engine.
#[cfg(any(test, feature = "testing"))]
#[derive(Default)]
pub struct ScriptedChecker {
    pub results: std::sync::Mutex<std::collections::HashMap<String, CheckResult>>,
    /// Checks named here never answer (the caller's time budget ends them).
    pub hang: std::sync::Mutex<Vec<String>>,
    pub ran: std::sync::Mutex<Vec<String>>,
}

#[cfg(any(test, feature = "testing"))]
impl Checker for ScriptedChecker {
    async fn run(&self, check: &Check, _ctx: &CheckContext<'_>) -> CheckResult {
        let lock =
            |m: &'_ std::sync::Mutex<Vec<String>>| m.lock().map(|v| v.clone()).unwrap_or_default();
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(check.name.clone());
        }
        if lock(&self.hang).contains(&check.name) {
            std::future::pending::<()>().await;
        }
        self.results
            .lock()
            .ok()
            .and_then(|r| r.get(&check.name).cloned())
            .unwrap_or_else(|| CheckResult::passed(Duration::from_millis(1), "ok"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn probe() -> HttpProbe {
        HttpProbe {
            method: "GET".into(),
            url: "http://x/health".into(),
            headers: BTreeMap::new(),
            expect_status: 200,
            body_contains: None,
            json_pointer: None,
            latency_budget: Duration::from_secs(1),
            retries: 0,
            interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn an_answer_passes_only_when_status_body_and_json_agree() {
        let p = probe();
        assert_eq!(judge_http(&p, 200, "anything"), Ok(()));
        assert!(
            judge_http(&p, 503, "down")
                .unwrap_err()
                .starts_with("status 503, expected 200: down")
        );
        let p = HttpProbe {
            body_contains: Some("\"ok\"".into()),
            json_pointer: Some(("/checks/db".into(), serde_json::json!("up"))),
            ..probe()
        };
        assert_eq!(
            judge_http(&p, 200, r#"{"status":"ok","checks":{"db":"up"}}"#),
            Ok(())
        );
        assert!(
            judge_http(&p, 200, r#"{"status":"ko"}"#)
                .unwrap_err()
                .contains("does not contain")
        );
        assert_eq!(
            judge_http(&p, 200, r#"{"status":"ok","checks":{"db":"down"}}"#),
            Err("/checks/db is \"down\", expected \"up\"".into())
        );
        assert!(
            judge_http(&p, 200, r#""ok" but not json"#)
                .unwrap_err()
                .contains("not JSON")
        );
        assert!(
            judge_http(&p, 200, r#"{"status":"ok"}"#)
                .unwrap_err()
                .contains("not in the body")
        );
    }

    #[test]
    fn excerpts_are_bounded_and_cannot_break_lines() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let e = excerpt(&long);
        assert!(!e.contains('\n'));
        assert!(e.starts_with("line one\\nline two"));
        assert!(e.chars().count() <= EXCERPT_CHARS + 10 && e.ends_with('…'));
    }
}
