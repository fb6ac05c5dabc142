//! Announcements on SNS: one per transition, plus "release created".
//!
//! The body is JSON; `service`, `environment`, `state` and `kind` are also message
//! attributes so subscribers can filter (e.g. only prod failures). Every body says what
//! happened, why, and the commands to type next ([`message`]); a second, optional topic
//! gets the same notifications in AWS Chatbot's custom-notification schema ([`chatbot`]).
//! Publishing is best effort: a failure is logged by the caller and never blocks or
//! retries a transition.

pub mod chatbot;
pub mod message;

use std::future::Future;

use std::collections::HashMap;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use serde_json::{Value, json};

use crate::release::{Cause, Release, StageState, Transition};
use crate::sdk::classify;
pub use message::{Guidance, release_arg};
use message::{fit_subject, guidance, subject_label};

/// What a notification announces: the `kind` message attribute subscribers filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    ReleaseCreated,
    /// A release began its work in an environment (migration or deployment).
    StageStarted,
    Queued,
    AwaitingApproval,
    Superseded,
    Failed,
    RolledBack,
    Succeeded,
    Cancelled,
    Rejected,
    /// Something needs a person: a transition that raised an [`Alert`] (a release that
    /// still runs with nothing to restore, a failed rollback or stop, a stage past its
    /// deadline), or a hook for a deployment Shiplane did not start.
    Alert,
    /// Any other transition, named by its cause.
    Other(Cause),
}

impl NotificationKind {
    /// The spelling of the `kind` attribute and the body's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ReleaseCreated => "release_created",
            NotificationKind::StageStarted => "stage_started",
            NotificationKind::Queued => "queued",
            NotificationKind::AwaitingApproval => "awaiting_approval",
            NotificationKind::Superseded => "superseded",
            NotificationKind::Failed => "failed",
            NotificationKind::RolledBack => "rolled_back",
            NotificationKind::Succeeded => "succeeded",
            NotificationKind::Cancelled => "cancelled",
            NotificationKind::Rejected => "rejected",
            NotificationKind::Alert => "alert",
            NotificationKind::Other(cause) => cause.as_str(),
        }
    }

    /// The kind of a transition: where it went, when it changed the state; else its cause.
    pub fn of(t: &Transition) -> NotificationKind {
        use StageState as S;
        if t.alert.is_some() {
            return NotificationKind::Alert;
        }
        if t.from == t.to {
            return NotificationKind::Other(t.cause);
        }
        match (t.from, t.to) {
            (_, Some(S::Queued)) => NotificationKind::Queued,
            (_, Some(S::AwaitingApproval)) => NotificationKind::AwaitingApproval,
            (_, Some(S::Superseded)) => NotificationKind::Superseded,
            (_, Some(S::Failed)) => NotificationKind::Failed,
            (_, Some(S::RolledBack)) => NotificationKind::RolledBack,
            (_, Some(S::Succeeded)) => NotificationKind::Succeeded,
            (_, Some(S::Cancelled)) => NotificationKind::Cancelled,
            (_, Some(S::Rejected)) => NotificationKind::Rejected,
            (None | Some(S::Queued | S::AwaitingApproval), Some(S::Migrating | S::Deploying)) => {
                NotificationKind::StageStarted
            }
            _ => NotificationKind::Other(t.cause),
        }
    }
}

impl std::fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A publish that failed; the release goes on regardless.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub message: String,
    /// Throttling or a 5xx: the next notification may well go through.
    pub retryable: bool,
}

/// One message for the topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub service: String,
    pub environment: Option<String>,
    pub state: Option<StageState>,
    /// At most 99 ASCII characters, as SNS requires, and never a word cut in two.
    pub subject: String,
    /// What happened, why, and what to type next: in the body, and what Chatbot shows.
    pub guidance: Guidance,
    pub body: Value,
}

impl Notification {
    /// A new release exists (before any stage notification).
    pub fn release_created(release: &Release) -> Notification {
        let guidance = Guidance {
            what: format!(
                "{} {} was pushed and is a new release.",
                release.service,
                release.label()
            ),
            why: format!("an image was pushed to {}", release.repository),
            next_steps: vec![format!(
                "shiplane history {}",
                release_arg(&release.id, Some(release))
            )],
        };
        Notification {
            kind: NotificationKind::ReleaseCreated,
            service: release.service.clone(),
            environment: None,
            state: None,
            subject: fit_subject(
                &format!(
                    "shiplane: {} {} created",
                    release.service,
                    subject_label(Some(release))
                ),
                None,
            ),
            body: json!({
                "what": guidance.what,
                "why": guidance.why,
                "next_steps": guidance.next_steps,
                "kind": "release_created",
                "service": release.service,
                "release": release.id,
                "repository": release.repository,
                "digest": release.digest,
                "tags": release.tags,
                "at": release.created,
            }),
            guidance,
        }
    }

    /// Something a person must look at, outside any transition.
    pub fn alert(service: Option<&str>, what: &str, body: Value) -> Notification {
        let service = service.unwrap_or("-").to_string();
        let guidance = Guidance {
            what: format!("{what}."),
            why: body.to_string(),
            next_steps: vec![if service == "-" {
                "shiplane status".to_string()
            } else {
                format!("shiplane status {service}")
            }],
        };
        Notification {
            kind: NotificationKind::Alert,
            subject: fit_subject(&format!("shiplane ALERT: {what}"), None),
            body: json!({
                "kind": "alert",
                "service": service,
                "what": what,
                "why": guidance.why,
                "next_steps": guidance.next_steps,
                "command": guidance.next_steps.first(),
                "detail": body,
            }),
            guidance,
            service,
            environment: None,
            state: None,
        }
    }

    /// A transition, with the release it moved when known.
    pub fn transition(t: &Transition, release: Option<&Release>) -> Notification {
        let kind = NotificationKind::of(t);
        let subject = message::transition_subject(t, release);
        let guidance = guidance(kind, t, release);
        Notification {
            kind,
            service: t.service.clone(),
            environment: Some(t.environment.clone()),
            state: t.to,
            subject,
            body: json!({
                "what": guidance.what,
                "why": guidance.why,
                "next_steps": guidance.next_steps,
                "command": guidance.next_steps.first(),
                "kind": kind.as_str(),
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
                "alert": t.alert,
                "at": t.at,
            }),
            guidance,
        }
    }
}

/// The port notifications go out through.
pub trait Notifier: Send + Sync {
    fn publish(
        &self,
        notification: &Notification,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send;

    /// Publishes a decision's notifications, in order, in as few calls as the port allows;
    /// returns those that failed, by index. By default one `publish` each.
    fn publish_all(
        &self,
        notifications: &[Notification],
    ) -> impl Future<Output = Vec<(usize, NotifyError)>> + Send {
        async move {
            let mut failed = Vec::new();
            for (i, n) in notifications.iter().enumerate() {
                if let Err(e) = self.publish(n).await {
                    failed.push((i, e));
                }
            }
            failed
        }
    }
}

/// A notification's message attributes, which subscribers filter on.
fn attributes(n: &Notification) -> Result<HashMap<String, MessageAttributeValue>, NotifyError> {
    let mut out = HashMap::new();
    let values = [
        ("kind", Some(n.kind.as_str().to_string())),
        ("service", Some(n.service.clone())),
        ("environment", n.environment.clone()),
        ("state", n.state.map(|s| s.to_string())),
    ];
    for (name, value) in values {
        if let Some(value) = value {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| NotifyError {
                    message: e.to_string(),
                    retryable: false,
                })?;
            out.insert(name.to_string(), attr);
        }
    }
    Ok(out)
}

/// SNS takes at most ten messages in one PublishBatch.
const PUBLISH_BATCH: usize = 10;

/// Which form of a notification a topic carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// Shiplane's JSON body (the main topic: queues, Lambdas, email filters).
    Shiplane,
    /// AWS Chatbot's custom-notification schema ([`chatbot`]).
    Chatbot,
}

impl Form {
    fn body(self, n: &Notification) -> String {
        match self {
            Form::Shiplane => n.body.to_string(),
            Form::Chatbot => chatbot::chatbot_message(n).to_string(),
        }
    }
}

/// The production [`Notifier`]: the main SNS topic, and optionally a second topic for AWS
/// Chatbot that gets the same notifications in Chatbot's schema, published at the same
/// time (no longer critical path).
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: crate::sdk::OnFirstUse<aws_sdk_sns::Client>,
    topic_arn: String,
    chatbot_topic_arn: Option<String>,
}

impl SnsNotifier {
    pub fn new(
        client: impl Into<crate::sdk::OnFirstUse<aws_sdk_sns::Client>>,
        topic_arn: impl Into<String>,
    ) -> SnsNotifier {
        SnsNotifier {
            client: client.into(),
            topic_arn: topic_arn.into(),
            chatbot_topic_arn: None,
        }
    }

    /// Also publishes every notification to `topic` in AWS Chatbot's schema (the topic a
    /// Chatbot channel configuration subscribes to); None publishes to the main topic only.
    pub fn with_chatbot_topic(mut self, topic: Option<String>) -> SnsNotifier {
        self.chatbot_topic_arn = topic.filter(|t| !t.is_empty());
        self
    }

    async fn publish_one(
        &self,
        topic: &str,
        form: Form,
        n: &Notification,
    ) -> Result<(), NotifyError> {
        self.client
            .publish()
            .topic_arn(topic)
            .subject(&n.subject)
            .message(form.body(n))
            .set_message_attributes(Some(attributes(n)?))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let f = classify("SNS Publish", &e);
                NotifyError {
                    message: f.message,
                    retryable: f.retryable,
                }
            })
    }

    /// One PublishBatch per ten notifications (one notification: one Publish) to one topic.
    async fn publish_to(
        &self,
        topic: &str,
        form: Form,
        notifications: &[Notification],
    ) -> Vec<(usize, NotifyError)> {
        if let [one] = notifications {
            return self
                .publish_one(topic, form, one)
                .await
                .err()
                .map(|e| (0, e))
                .into_iter()
                .collect();
        }
        let mut failed = Vec::new();
        for (chunk_no, chunk) in notifications.chunks(PUBLISH_BATCH).enumerate() {
            let base = chunk_no * PUBLISH_BATCH;
            let mut entries = Vec::new();
            for (i, n) in chunk.iter().enumerate() {
                let entry = attributes(n).and_then(|attrs| {
                    PublishBatchRequestEntry::builder()
                        .id((base + i).to_string())
                        .subject(&n.subject)
                        .message(form.body(n))
                        .set_message_attributes(Some(attrs))
                        .build()
                        .map_err(|e| NotifyError {
                            message: e.to_string(),
                            retryable: false,
                        })
                });
                match entry {
                    Ok(e) => entries.push(e),
                    Err(e) => failed.push((base + i, e)),
                }
            }
            if entries.is_empty() {
                continue;
            }
            match self
                .client
                .publish_batch()
                .topic_arn(topic)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => failed.extend(out.failed().iter().filter_map(|f| {
                    let i = f.id().parse().ok()?;
                    Some((
                        i,
                        NotifyError {
                            message: format!(
                                "SNS PublishBatch: {}: {}",
                                f.code(),
                                f.message().unwrap_or_default()
                            ),
                            retryable: !f.sender_fault(),
                        },
                    ))
                })),
                Err(e) => {
                    let f = classify("SNS PublishBatch", &e);
                    failed.extend((base..base + chunk.len()).map(|i| {
                        (
                            i,
                            NotifyError {
                                message: f.message.clone(),
                                retryable: f.retryable,
                            },
                        )
                    }));
                }
            }
        }
        failed
    }
}

/// The failures of the main topic, then those of the Chatbot topic not already failed,
/// named as such.
fn merge_failures(
    main: Vec<(usize, NotifyError)>,
    chatbot: Vec<(usize, NotifyError)>,
) -> Vec<(usize, NotifyError)> {
    let mut out = main;
    for (i, mut e) in chatbot {
        if out.iter().all(|(j, _)| *j != i) {
            e.message = format!("Chatbot topic: {}", e.message);
            out.push((i, e));
        }
    }
    out
}

impl Notifier for SnsNotifier {
    async fn publish(&self, n: &Notification) -> Result<(), NotifyError> {
        let failed = self.publish_all(std::slice::from_ref(n)).await;
        match failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }

    async fn publish_all(&self, notifications: &[Notification]) -> Vec<(usize, NotifyError)> {
        let main = self.publish_to(&self.topic_arn, Form::Shiplane, notifications);
        match &self.chatbot_topic_arn {
            None => main.await,
            Some(topic) => {
                let (main, chatbot) =
                    tokio::join!(main, self.publish_to(topic, Form::Chatbot, notifications));
                merge_failures(main, chatbot)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Digest, ReleaseId, Timestamp};

    #[test]
    fn awaiting_approval_says_the_command_that_approves() {
        let id = ReleaseId::new(Timestamp(1));
        let t = Transition {
            at: Timestamp(2),
            service: "api".into(),
            environment: "prod".into(),
            release: Some(id.clone()),
            from: None,
            to: Some(StageState::AwaitingApproval),
            cause: Cause::Arrived,
            actor: None,
            detail: None,
            alert: None,
        };
        let n = Notification::transition(&t, None);
        let command = format!("shiplane approve {id} prod");
        assert_eq!(n.body["command"], command.as_str());
        assert_eq!(n.body["next_steps"][0], command.as_str());
        assert_eq!(
            n.body["next_steps"][1],
            format!("shiplane reject {id} prod --reason \"...\"").as_str()
        );
        assert_eq!(n.subject, "shiplane: api - in prod: awaiting approval");
        assert_eq!(
            n.body["what"],
            format!("api {id} is waiting for a person to approve it into prod.").as_str()
        );
        let done = Notification::transition(
            &Transition {
                from: Some(StageState::Baking),
                to: Some(StageState::Succeeded),
                cause: Cause::BakeElapsed,
                ..t
            },
            None,
        );
        assert!(done.body["command"].is_null(), "nothing asked of anyone");
        assert_eq!(done.body["next_steps"], json!([]));
    }

    #[test]
    fn the_approval_subject_of_the_longest_names_keeps_whole_words() {
        // The subject that used to be cut inside the approve command.
        let r = Release::new(
            ReleaseId::new(Timestamp(1)),
            "payments-gateway-eu",
            "shop/payments-gateway-eu",
            Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap(),
            Some("release-2024.11.05-build.1234"),
            Timestamp(1),
        );
        let t = Transition {
            at: Timestamp(2),
            service: r.service.clone(),
            environment: "production-eu-west".into(),
            release: Some(r.id.clone()),
            from: Some(StageState::Queued),
            to: Some(StageState::AwaitingApproval),
            cause: Cause::Dequeued,
            actor: None,
            detail: Some(
                "the lane is free; prod asks for a person before anything deploys there".into(),
            ),
            alert: None,
        };
        let n = Notification::transition(&t, Some(&r));
        assert!(n.subject.len() <= 99, "{}", n.subject);
        let full = format!(
            "shiplane: payments-gateway-eu {} in production-eu-west: awaiting approval ({})",
            r.digest.short(),
            t.detail.as_deref().unwrap()
        );
        let kept = n.subject.trim_end_matches("...)").trim_end_matches("...");
        assert!(full.starts_with(kept), "{}", n.subject);
        assert!(
            matches!(full[kept.len()..].chars().next(), Some(' ' | '(') | None),
            "cut between words: {}",
            n.subject
        );
        assert_eq!(
            n.body["command"],
            format!("shiplane approve {} production-eu-west", r.id).as_str(),
            "the whole command, by id, in the body"
        );
    }

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
        let t = |from, to, cause: Cause, detail: Option<&str>| Transition {
            at: Timestamp(2),
            service: "api".into(),
            environment: "dev".into(),
            release: Some(r.id.clone()),
            from,
            to,
            cause,
            actor: None,
            detail: detail.map(str::to_string),
            alert: None,
        };
        use StageState as S;
        for (from, to, cause, kind) in [
            (None, Some(S::Deploying), Cause::Arrived, "stage_started"),
            (None, Some(S::Migrating), Cause::Arrived, "stage_started"),
            (
                Some(S::Queued),
                Some(S::Deploying),
                Cause::Dequeued,
                "stage_started",
            ),
            (None, Some(S::Queued), Cause::Arrived, "queued"),
            (
                Some(S::Queued),
                Some(S::Superseded),
                Cause::Superseded,
                "superseded",
            ),
            (
                Some(S::Migrating),
                Some(S::Failed),
                Cause::MigrationFailed,
                "failed",
            ),
            (
                Some(S::Deploying),
                Some(S::Deploying),
                Cause::DeploymentCreated,
                "deployment_created",
            ),
            (
                Some(S::Queued),
                Some(S::Queued),
                Cause::TagAdded,
                "tag_added",
            ),
        ] {
            let n = Notification::transition(&t(from, to, cause, None), Some(&r));
            assert_eq!(n.kind.as_str(), kind, "{from:?} -> {to:?}");
            assert_eq!(n.body["kind"], kind);
        }
        let n = Notification::transition(
            &t(
                Some(S::Migrating),
                Some(S::Failed),
                Cause::MigrationFailed,
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
            &t(None, Some(S::Failed), Cause::Other, Some(&"y".repeat(300))),
            Some(&r),
        );
        assert_eq!(
            long.subject, "shiplane: api v1.0.0 in dev: failed",
            "a detail too long for the subject stays in the body"
        );
        // A release that goes no further says where it ends and why, once.
        let why = "tag v1.0.0 not accepted by staging (tags = { regex = \"^release-\" })";
        let ends = Notification::transition(
            &t(
                Some(S::Succeeded),
                Some(S::Succeeded),
                Cause::NotPromoted,
                Some(why),
            ),
            Some(&r),
        );
        assert_eq!(ends.kind.as_str(), "not_promoted");
        assert_eq!(
            ends.body["what"],
            "api v1.0.0 succeeded in dev and goes no further: it is not promoted."
        );
        assert_eq!(ends.body["why"], format!("not promoted: {why}"));
        assert_eq!(ends.body["command"], format!("shiplane history {}", r.id));
        // A stop-first migration's outage: announced at both ends, by their own kinds.
        let down = Notification::transition(
            &t(
                Some(S::Migrating),
                Some(S::Migrating),
                Cause::AppStopped,
                Some("scaled from 3 tasks to 0 for a migration"),
            ),
            Some(&r),
        );
        assert_eq!(down.kind.as_str(), "app_stopped");
        assert!(
            down.body["what"]
                .as_str()
                .unwrap()
                .contains("stopped the service in dev for its migration"),
            "{}",
            down.body
        );
        assert_eq!(down.body["command"], format!("shiplane history {}", r.id));
        let up = Notification::transition(
            &t(
                Some(S::Deploying),
                Some(S::Deploying),
                Cause::AppStarted,
                Some("serves again after 4m 12s"),
            ),
            Some(&r),
        );
        assert_eq!(up.kind.as_str(), "app_started");
        let created = Notification::release_created(&r);
        assert_eq!(created.subject, "shiplane: api v1.0.0 created");
        assert_eq!(created.body["digest"], r.digest.as_str());
    }
}
