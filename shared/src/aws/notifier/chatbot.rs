//! A notification in AWS Chatbot's (Amazon Q Developer in chat applications) custom
//! notification schema, which is the only JSON it renders in Slack or Teams:
//!
//! ```json
//! {"version": "1.0", "source": "custom", "id": "...",
//!  "content": {"textType": "client-markdown", "title": "...", "description": "...",
//!              "nextSteps": ["..."], "keywords": ["..."]},
//!  "metadata": {"threadId": "...", "summary": "...", "eventType": "...",
//!               "relatedResources": ["..."], "additionalContext": {"key": "string"}}}
//! ```
//!
//! `version` must be `1.0`, `source` must be `custom`, `textType` only `client-markdown`
//! (AWS's "Custom notifications" page, event schema and parameter details). Shiplane keeps
//! each field within the bounds in [`LIMITS`], far inside SNS's 256 KB message.

use serde_json::{Map, Value, json};

use super::Notification;

/// Shiplane's own bounds on the fields it fills, so that a long failure reason or many
/// tags never make a message Chatbot drops: characters of the title and the description,
/// how many next steps and keywords, and characters of each.
pub struct Limits {
    pub title: usize,
    pub description: usize,
    pub next_steps: usize,
    pub next_step: usize,
    pub keywords: usize,
    pub keyword: usize,
}

/// The bounds every Chatbot message of Shiplane keeps.
pub const LIMITS: Limits = Limits {
    title: 250,
    description: 4000,
    next_steps: 5,
    next_step: 350,
    keywords: 10,
    keyword: 75,
};

/// `text` with at most `max` characters, ending in `…` when shortened.
fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A marker people scan a channel for.
fn emoji(kind: &str) -> &'static str {
    match kind {
        "failed" | "rolled_back" | "alert" => ":rotating_light:",
        "awaiting_approval" => ":raising_hand:",
        "succeeded" => ":white_check_mark:",
        "stage_started" => ":rocket:",
        _ => ":information_source:",
    }
}

/// The Chatbot form of a notification: title from the subject, description says what
/// happened and why, next steps are the commands to type (as code), threaded per release.
pub fn chatbot_message(n: &Notification) -> Value {
    let kind = n.kind.as_str();
    let release = n.body["release"].as_str();
    let title = n.subject.strip_prefix("shiplane: ").unwrap_or(&n.subject);
    let description = format!("{}\n*Why:* {}", n.guidance.what, n.guidance.why);
    let next_steps: Vec<String> = n
        .guidance
        .next_steps
        .iter()
        .take(LIMITS.next_steps)
        .map(|c| bounded(&format!("`{c}`"), LIMITS.next_step))
        .collect();
    let mut keywords = vec![n.service.clone()];
    keywords.extend(n.environment.clone());
    keywords.push(kind.to_string());
    let keywords: Vec<String> = keywords
        .iter()
        .take(LIMITS.keywords)
        .map(|k| bounded(k, LIMITS.keyword))
        .collect();
    let mut context = Map::new();
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            context.insert(key.to_string(), Value::String(v.to_string()));
        }
    };
    put("service", Some(&n.service));
    put("environment", n.environment.as_deref());
    put("release", release);
    put("digest", n.body["digest"].as_str());
    put(
        "state",
        n.state.map(shiplane_core::release::StageState::as_str),
    );
    let thread = match release {
        Some(id) => format!("shiplane-{}-{id}", n.service),
        None => format!("shiplane-{}", n.service),
    };
    let id = format!(
        "{thread}-{}-{kind}-{}",
        n.environment.as_deref().unwrap_or("-"),
        n.body["at"]
    );
    json!({
        "version": "1.0",
        "source": "custom",
        "id": id,
        "content": {
            "textType": "client-markdown",
            "title": bounded(&format!("{} {title}", emoji(kind)), LIMITS.title),
            "description": bounded(&description, LIMITS.description),
            "nextSteps": next_steps,
            "keywords": keywords,
        },
        "metadata": {
            "threadId": thread,
            "summary": n.subject,
            "eventType": kind,
            "additionalContext": context,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Cause, Digest, Release, ReleaseId, StageState, Timestamp, Transition};

    /// The documented schema, checked like a JSON schema would: required fields and their
    /// constants, the type of every field present, nothing unknown, and Shiplane's bounds.
    fn assert_chatbot_schema(m: &Value) {
        let top = m.as_object().expect("an object");
        for key in top.keys() {
            assert!(
                ["version", "source", "id", "content", "metadata"].contains(&key.as_str()),
                "unknown top-level field {key}"
            );
        }
        assert_eq!(m["version"], "1.0", "version is required and must be 1.0");
        assert_eq!(
            m["source"], "custom",
            "source is required and must be custom"
        );
        assert!(m["id"].is_string());
        let content = m["content"].as_object().expect("content is an object");
        for key in content.keys() {
            assert!(
                ["textType", "title", "description", "nextSteps", "keywords"]
                    .contains(&key.as_str()),
                "unknown content field {key}"
            );
        }
        assert_eq!(content["textType"], "client-markdown");
        let title = content["title"].as_str().expect("title is a string");
        let description = content["description"].as_str().expect("description");
        assert!(!title.is_empty() && title.chars().count() <= LIMITS.title);
        assert!(!description.is_empty() && description.chars().count() <= LIMITS.description);
        for (field, most, each) in [
            ("nextSteps", LIMITS.next_steps, LIMITS.next_step),
            ("keywords", LIMITS.keywords, LIMITS.keyword),
        ] {
            let items = content[field].as_array().expect("an array of strings");
            assert!(items.len() <= most, "{field}: {} items", items.len());
            for item in items {
                let s = item.as_str().expect("strings only");
                assert!(!s.is_empty() && s.chars().count() <= each, "{field}: {s}");
            }
        }
        let meta = m["metadata"].as_object().expect("metadata is an object");
        for key in meta.keys() {
            assert!(
                [
                    "threadId",
                    "summary",
                    "eventType",
                    "relatedResources",
                    "additionalContext"
                ]
                .contains(&key.as_str()),
                "unknown metadata field {key}"
            );
        }
        for key in ["threadId", "summary", "eventType"] {
            assert!(meta[key].is_string(), "metadata.{key} is a string");
        }
        for (k, v) in meta["additionalContext"].as_object().expect("a map") {
            assert!(v.is_string(), "additionalContext.{k} must be a string");
        }
    }

    fn release() -> Release {
        Release::new(
            ReleaseId::new(Timestamp(1)),
            "api",
            "shiplane/api",
            Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap(),
            Some("v1.2.0"),
            Timestamp(1),
        )
    }

    #[test]
    fn an_approval_in_chatbot_form_has_the_commands_as_next_steps() {
        let r = release();
        let t = Transition {
            at: Timestamp(2),
            service: "api".into(),
            environment: "prod".into(),
            release: Some(r.id.clone()),
            from: None,
            to: Some(StageState::AwaitingApproval),
            cause: Cause::Arrived,
            actor: None,
            detail: None,
            alert: None,
        };
        let m = chatbot_message(&Notification::transition(&t, Some(&r)));
        assert_chatbot_schema(&m);
        assert_eq!(
            m["content"]["nextSteps"][0],
            format!("`shiplane approve {} prod`", r.id)
        );
        assert_eq!(
            m["content"]["title"],
            ":raising_hand: api v1.2.0 in prod: awaiting approval"
        );
        assert_eq!(
            m["metadata"]["threadId"],
            format!("shiplane-api-{}", r.id).as_str()
        );
        assert_eq!(m["metadata"]["additionalContext"]["release"], r.id.as_str());
    }

    #[test]
    fn every_kind_of_notification_fits_the_schema_even_with_huge_text() {
        let r = release();
        let huge = "why ".repeat(5_000);
        let mut all = vec![
            Notification::release_created(&r),
            Notification::alert(
                Some("api"),
                "a hook for a deployment Shiplane did not start",
                json!({"deployment": "d-1"}),
            ),
            Notification::alert(None, &huge, json!(huge)),
        ];
        use StageState as S;
        for (from, to, cause) in [
            (None, Some(S::Deploying), Cause::Arrived),
            (None, Some(S::Queued), Cause::Arrived),
            (
                Some(S::Deploying),
                Some(S::Baking),
                Cause::DeploymentSucceeded,
            ),
            (Some(S::Baking), Some(S::Succeeded), Cause::BakeElapsed),
            (Some(S::Baking), Some(S::RolledBack), Cause::AlarmFired),
            (Some(S::Deploying), Some(S::Failed), Cause::DeploymentFailed),
            (Some(S::Baking), Some(S::Baking), Cause::RollbackFailed),
            (Some(S::Deploying), Some(S::Deploying), Cause::StopFailed),
            (None, None, Cause::Paused),
        ] {
            let t = Transition {
                at: Timestamp(3),
                service: "api".into(),
                environment: "prod".into(),
                release: to.map(|_| r.id.clone()),
                from,
                to,
                cause,
                actor: Some("ana".into()),
                detail: Some(huge.clone()),
                alert: None,
            };
            all.push(Notification::transition(&t, Some(&r)));
        }
        for n in &all {
            assert!(n.subject.len() <= 99, "{}", n.subject);
            assert_chatbot_schema(&chatbot_message(n));
        }
    }
}
