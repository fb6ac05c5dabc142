//! Announcements on SNS: one per transition, plus "release created".
//!
//! The body is JSON; `service`, `environment`, `state` and `kind` are also message
//! attributes so subscribers can filter (e.g. only prod failures). Publishing is best
//! effort: a failure is logged by the caller and never blocks or retries a transition.

use std::future::Future;

use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::{Value, json};

use super::classify;
use crate::release::{Release, StageState, Transition};

/// One message for the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// `release_created`, `stage_started`, `queued`, `awaiting_approval`, `superseded`,
    /// `failed`, `rolled_back`, `succeeded`, or the transition's cause.
    pub kind: String,
    pub service: String,
    pub environment: Option<String>,
    pub state: Option<StageState>,
    /// At most 99 ASCII characters, as SNS requires.
    pub subject: String,
    pub body: Value,
}

fn ascii_subject(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(99)
        .collect()
}

impl Notification {
    /// A new release exists (before any stage notification).
    pub fn release_created(release: &Release) -> Notification {
        Notification {
            kind: "release_created".into(),
            service: release.service.clone(),
            environment: None,
            state: None,
            subject: ascii_subject(&format!(
                "shiplane: {} {} created",
                release.service,
                release.label()
            )),
            body: json!({
                "kind": "release_created",
                "service": release.service,
                "release": release.id,
                "repository": release.repository,
                "digest": release.digest,
                "tags": release.tags,
                "at": release.created,
            }),
        }
    }

    /// A transition, with the release it moved when known.
    pub fn transition(t: &Transition, release: Option<&Release>) -> Notification {
        let kind = match (t.from, t.to) {
            (_, Some(StageState::Queued)) => "queued",
            (_, Some(StageState::AwaitingApproval)) => "awaiting_approval",
            (_, Some(StageState::Superseded)) => "superseded",
            (_, Some(StageState::Failed)) => "failed",
            (_, Some(StageState::RolledBack)) => "rolled_back",
            (_, Some(StageState::Succeeded)) => "succeeded",
            (
                None | Some(StageState::Queued | StageState::AwaitingApproval),
                Some(StageState::Migrating | StageState::Deploying),
            ) => "stage_started",
            _ => t.cause.as_str(),
        }
        .to_string();
        let label = release.map(Release::label).unwrap_or_else(|| "-".into());
        let state = t.to.map_or_else(|| t.cause.clone(), |s| s.to_string());
        let mut subject = format!(
            "shiplane: {} {label} in {}: {state}",
            t.service, t.environment
        );
        if let Some(detail) = &t.detail {
            subject.push_str(&format!(" ({detail})"));
        }
        Notification {
            kind: kind.clone(),
            service: t.service.clone(),
            environment: Some(t.environment.clone()),
            state: t.to,
            subject: ascii_subject(&subject),
            body: json!({
                "kind": kind,
                "service": t.service,
                "environment": t.environment,
                "release": t.release,
                "digest": release.map(|r| r.digest.as_str()),
                "tags": release.map(|r| r.tags.clone()),
                "from": t.from,
                "to": t.to,
                "cause": t.cause,
                "actor": t.actor,
                "detail": t.detail,
                "at": t.at,
            }),
        }
    }
}

/// The port notifications go out through.
pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        notification: &Notification,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The production [`Notifier`]: one SNS topic.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: super::OnFirstUse<aws_sdk_sns::Client>,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(
        client: impl Into<super::OnFirstUse<aws_sdk_sns::Client>>,
        topic_arn: impl Into<String>,
    ) -> SnsNotifier {
        SnsNotifier {
            client: client.into(),
            topic_arn: topic_arn.into(),
        }
    }
}

impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), String> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&n.subject)
            .message(n.body.to_string());
        let attributes = [
            ("kind", Some(n.kind.clone())),
            ("service", Some(n.service.clone())),
            ("environment", n.environment.clone()),
            ("state", n.state.map(|s| s.to_string())),
        ];
        for (name, value) in attributes {
            if let Some(value) = value {
                let attr = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .map_err(|e| e.to_string())?;
                req = req.message_attributes(name, attr);
            }
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| classify("SNS Publish", &e).message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Digest, ReleaseId, Timestamp};

    #[test]
    fn transitions_map_to_kinds_and_readable_ascii_subjects() {
        let r = Release::new(
            ReleaseId::new(Timestamp(1)),
            "api",
            "shiplane/api",
            Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            Some("v1.0.0"),
            Timestamp(1),
        );
        let t = |from, to, cause: &str, detail: Option<&str>| Transition {
            at: Timestamp(2),
            service: "api".into(),
            environment: "dev".into(),
            release: Some(r.id.clone()),
            from,
            to,
            cause: cause.into(),
            actor: None,
            detail: detail.map(str::to_string),
        };
        use StageState as S;
        for (from, to, cause, kind) in [
            (None, Some(S::Deploying), "arrived", "stage_started"),
            (None, Some(S::Migrating), "arrived", "stage_started"),
            (
                Some(S::Queued),
                Some(S::Deploying),
                "dequeued",
                "stage_started",
            ),
            (None, Some(S::Queued), "arrived", "queued"),
            (
                Some(S::Queued),
                Some(S::Superseded),
                "superseded",
                "superseded",
            ),
            (
                Some(S::Migrating),
                Some(S::Failed),
                "migration_failed",
                "failed",
            ),
            (
                Some(S::Deploying),
                Some(S::Deploying),
                "deployment_created",
                "deployment_created",
            ),
        ] {
            let n = Notification::transition(&t(from, to, cause, None), Some(&r));
            assert_eq!(n.kind, kind, "{from:?} -> {to:?}");
            assert_eq!(n.body["kind"], kind);
        }
        let n = Notification::transition(
            &t(
                Some(S::Migrating),
                Some(S::Failed),
                "migration_failed",
                Some("exit 1 → ✗"),
            ),
            Some(&r),
        );
        assert_eq!(
            n.subject,
            "shiplane: api v1.0.0 in dev: failed (exit 1 ? ?)"
        );
        assert_eq!(
            n.body["detail"], "exit 1 → ✗",
            "the body keeps the text as it was"
        );
        let long = Notification::transition(
            &t(None, Some(S::Failed), "x", Some(&"y".repeat(300))),
            Some(&r),
        );
        assert_eq!(long.subject.len(), 99);
        let created = Notification::release_created(&r);
        assert_eq!(created.subject, "shiplane: api v1.0.0 created");
        assert_eq!(created.body["digest"], r.digest.as_str());
    }
}
