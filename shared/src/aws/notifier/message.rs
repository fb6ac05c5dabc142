//! What a notification says to a person: a subject that fits SNS without cutting a word,
//! what happened, why, and the commands to type next. Pure: no AWS, no clock.

use super::NotificationKind;
use crate::release::{Alert, Cause, Release, ReleaseId, StageState, Transition};

/// SNS takes subjects of fewer than 100 printable ASCII characters.
pub const SUBJECT_MAX: usize = 99;

/// A label longer than this is replaced by the short digest in subjects, so that one long
/// tag cannot push the state out of the subject.
const LABEL_MAX: usize = 40;

/// How the CLI names a release on its command line, in every command a notification
/// suggests: by its id, never `SERVICE@TAG`. A tag moves (`latest`, a tag pushed again
/// onto a new image), and the CLI resolves a tag to the newest release pushed under it: an
/// approval copied from an older notification would act on another release. The text
/// around the command names the tag for a person.
pub fn release_arg(id: &ReleaseId, _release: Option<&Release>) -> String {
    id.to_string()
}

/// What a notification tells a person, besides its subject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Guidance {
    /// What happened, as one sentence.
    pub what: String,
    /// Why: the cause in words, the detail recorded with it, and who acted.
    pub why: String,
    /// Full commands to type next, the most likely first; empty when nothing is asked of
    /// anyone.
    pub next_steps: Vec<String>,
}

/// Printable ASCII only (SNS refuses the rest in subjects): anything else becomes `?`.
pub fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// `head` with as many whole words of `tail` as fit in [`SUBJECT_MAX`], written
/// `head (tail)`; a tail that does not fit whole ends in `...)`. Words are never cut:
/// a head that is itself too long keeps its whole words and ends in `...`.
pub fn fit_subject(head: &str, tail: Option<&str>) -> String {
    let head = fit_words(&ascii(head), SUBJECT_MAX);
    let Some(tail) = tail.map(ascii).filter(|t| !t.trim().is_empty()) else {
        return head;
    };
    let whole = format!("{head} ({})", tail.trim());
    if whole.len() <= SUBJECT_MAX {
        return whole;
    }
    let room = SUBJECT_MAX.saturating_sub(head.len() + " (...)".len());
    let mut kept = String::new();
    for word in tail.split_whitespace() {
        let next = if kept.is_empty() {
            word.len()
        } else {
            kept.len() + 1 + word.len()
        };
        if next > room {
            break;
        }
        if !kept.is_empty() {
            kept.push(' ');
        }
        kept.push_str(word);
    }
    if kept.is_empty() {
        head
    } else {
        format!("{head} ({kept}...)")
    }
}

/// As many whole words of `text` as fit in `max` characters, with `...` when some were
/// left out. A first word longer than `max` on its own is the only thing ever cut.
fn fit_words(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let next = out.len() + usize::from(!out.is_empty()) + word.len();
        if next + "...".len() > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(max - "...".len()).collect();
    }
    out.push_str("...");
    out
}

/// A release's label as subjects show it: its tag, or its short digest when the tag is long.
pub fn subject_label(release: Option<&Release>) -> String {
    match release {
        Some(r) if r.label().len() <= LABEL_MAX => r.label(),
        Some(r) => r.digest.short().to_string(),
        None => "-".into(),
    }
}

/// A transition's subject: `shiplane: <service> <label> in <env>: <state> (<detail>)`, or
/// for an alert `shiplane ALERT: <service> <label> in <env>: <what a person faces>`, its
/// detail left to the body. The state or the alert is what a subject is for: a long label
/// gives way to the short digest first, and in an alert then to nothing.
pub fn transition_subject(t: &Transition, release: Option<&Release>) -> String {
    let (prefix, said) = match t.alert {
        Some(alert) => ("shiplane ALERT", alert_phrase(alert).to_string()),
        None => {
            let state = match t.to {
                Some(s) if t.from != t.to => s.as_str(),
                _ => t.cause.as_str(),
            };
            ("shiplane", words(state))
        }
    };
    let (svc, env) = (&t.service, &t.environment);
    let head = |label: &str| format!("{prefix}: {svc} {label}in {env}: {said}");
    let mut heads = vec![head(&format!("{} ", subject_label(release)))];
    if let Some(r) = release {
        heads.push(head(&format!("{} ", r.digest.short())));
    }
    if t.alert.is_some() {
        heads.push(head(""));
    }
    let fits = heads.iter().position(|h| h.len() <= SUBJECT_MAX);
    let chosen = &heads[fits.unwrap_or(heads.len() - 1)];
    let tail = t.detail.as_deref().filter(|_| t.alert.is_none());
    fit_subject(chosen, tail)
}

/// An alert in a few words, for a subject: what a person faces.
pub fn alert_phrase(alert: Alert) -> &'static str {
    match alert {
        Alert::NothingToRestore => "still runs, nothing to restore",
        Alert::RollbackFailed => "CodeDeploy's rollback failed",
        Alert::StopFailed => "its deployment could not be stopped",
        Alert::PastDeadline => "failed, no outcome by its deadline",
        Alert::AlarmAfterRelease => "rolled back, alarm after its bake",
        Alert::RestartFailed => "a service it restarts was not",
        Alert::AppDown => "service stopped, not started again",
        Alert::SchemaMoved => "still runs, schema moved past last good",
        Alert::Other => "a person must act",
    }
}

/// An alert as a sentence, after "needs a person:": what happened and what may be wrong.
fn alert_sentence(alert: Alert, t: &Transition) -> String {
    let ended =
        t.to.map_or_else(|| "ended".to_string(), |s| words(s.as_str()));
    match alert {
        Alert::NothingToRestore => format!(
            "it {ended}, yet still runs, and there is no last known good release to put back over it"
        ),
        Alert::RollbackFailed => {
            "CodeDeploy's rollback of its deployment failed, so what serves is unknown".into()
        }
        Alert::StopFailed => {
            "AWS would not stop its deployment, which may go on and serve".into()
        }
        Alert::PastDeadline => {
            "its deployment or migration had no outcome by its deadline, so it failed; AWS may still be running it"
                .into()
        }
        Alert::AlarmAfterRelease => {
            "an alarm fired while it was still watched after its bake, so it was rolled back to the release before it; find out why before it is released again"
                .into()
        }
        Alert::RestartFailed => {
            "a service its release restarts (`restarts`) could not be restarted, and still runs tasks started before it; restart it by hand (aws ecs update-service --force-new-deployment)"
                .into()
        }
        Alert::AppDown => {
            "the service it stopped for its migration could not be started again and serves nothing; scale it back up by hand (aws ecs update-service --desired-count, the count its history names)"
                .into()
        }
        Alert::SchemaMoved => format!(
            "it {ended}, yet still runs: a stop-first migration here changed the schema the release before it was built for, so that release is not put back; fix forward (a fixed push, then `shiplane unblock` while the alarm holds the lane), or restore the database and name the release to go back to"
        ),
        Alert::Other => "a person must act (see its history)".into(),
    }
}

/// A cause as words: `deployment_failed` → `deployment failed`.
fn words(snake: &str) -> String {
    snake.replace('_', " ")
}

/// What a transition tells a person: what happened, why, and what to type next.
pub fn guidance(kind: NotificationKind, t: &Transition, release: Option<&Release>) -> Guidance {
    let who = match release {
        Some(r) => format!("{} {}", t.service, r.label()),
        None => t
            .release
            .as_ref()
            .map_or_else(|| t.service.clone(), |id| format!("{} {id}", t.service)),
    };
    let env = t.environment.as_str();
    let what = match (kind, t.to) {
        (NotificationKind::AwaitingApproval, _) => {
            format!("{who} is waiting for a person to approve it into {env}.")
        }
        (NotificationKind::StageStarted, Some(StageState::Migrating)) => {
            format!("{who} started its migration task in {env}.")
        }
        (NotificationKind::StageStarted, _) => format!("{who} started deploying to {env}."),
        (NotificationKind::Queued, _) => format!("{who} is queued in {env}."),
        (NotificationKind::Superseded, _) => {
            format!("{who} was superseded in {env} by a newer release; it will not deploy there.")
        }
        (NotificationKind::Failed, _) => format!("{who} failed in {env}."),
        (NotificationKind::RolledBack, _) => format!("{who} was rolled back in {env}."),
        (NotificationKind::Succeeded, _) => format!("{who} succeeded in {env}."),
        (NotificationKind::Cancelled, _) => format!("{who} was cancelled in {env}."),
        (NotificationKind::Rejected, _) => format!("{who} was rejected for {env}."),
        (NotificationKind::Other(Cause::NotPromoted), _) => {
            format!("{who} succeeded in {env} and goes no further: it is not promoted.")
        }
        (NotificationKind::Other(Cause::AppStopped), _) => format!(
            "{who} stopped the service in {env} for its migration: it serves nothing until the new version (or, if the release fails, the one it ran) is up."
        ),
        (NotificationKind::Other(Cause::AppStarted), _) => {
            format!("The service in {env} serves again after {who}'s migration.")
        }
        (NotificationKind::Alert, _) => match t.alert {
            Some(alert) => format!(
                "{who} in {env} needs a person: {}.",
                alert_sentence(alert, t)
            ),
            None => format!("{who} in {env} needs a person."),
        },
        (_, Some(to)) if t.from != t.to => {
            format!("{who} is now {} in {env}.", words(to.as_str()))
        }
        (_, _) => format!("{who} in {env}: {}.", words(t.cause.as_str())),
    };
    let mut why = words(t.cause.as_str());
    if let Some(detail) = t.detail.as_deref().filter(|d| !d.is_empty()) {
        why.push_str(": ");
        why.push_str(detail);
    }
    if let Some(actor) = &t.actor {
        why.push_str(&format!(" (by {actor})"));
    }
    Guidance {
        what,
        why,
        next_steps: next_steps(kind, t, release),
    }
}

/// The commands a person types next after `t`, the most likely first.
pub fn next_steps(
    kind: NotificationKind,
    t: &Transition,
    release: Option<&Release>,
) -> Vec<String> {
    let (svc, env) = (t.service.as_str(), t.environment.as_str());
    let status = format!("shiplane status {svc}");
    let Some(id) = t.release.as_ref().map(|id| release_arg(id, release)) else {
        return match t.cause {
            Cause::Paused => vec![format!("shiplane resume {svc} {env}"), status],
            _ => vec![status],
        };
    };
    let history = format!("shiplane history {id}");
    let reason = "--reason \"...\"";
    match kind {
        NotificationKind::AwaitingApproval => vec![
            format!("shiplane approve {id} {env}"),
            format!("shiplane reject {id} {env} {reason}"),
        ],
        NotificationKind::StageStarted => {
            vec![history, format!("shiplane cancel {id} {env} {reason}")]
        }
        NotificationKind::Queued => vec![status, format!("shiplane cancel {id} {env} {reason}")],
        NotificationKind::Failed => vec![history, format!("shiplane retry {id} {env}")],
        NotificationKind::RolledBack
        | NotificationKind::Other(Cause::NotPromoted | Cause::AppStopped) => {
            vec![history, status]
        }
        NotificationKind::Alert => match t.alert {
            Some(Alert::RollbackFailed) => {
                vec![format!("shiplane rollback {svc} {env} {reason}"), history]
            }
            Some(Alert::StopFailed) => {
                vec![history, format!("shiplane unblock {svc} {env} {reason}")]
            }
            Some(Alert::NothingToRestore) => vec![
                status,
                format!("shiplane deploy {svc} --digest sha256:<a good image> {reason}"),
                history,
            ],
            Some(Alert::PastDeadline) => vec![history, format!("shiplane retry {id} {env}")],
            Some(Alert::SchemaMoved) => vec![
                history,
                format!("shiplane unblock {svc} {env} {reason}"),
                format!("shiplane rollback {svc} {env} --to RELEASE {reason}"),
            ],
            Some(Alert::AlarmAfterRelease) => vec![history, status],
            _ => vec![history, status],
        },
        NotificationKind::Other(_) if t.to == Some(StageState::Baking) && t.from != t.to => vec![
            format!("shiplane rollback {svc} {env} {reason}"),
            format!("shiplane promote {id} {env} --skip-bake {reason}"),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_whole_words_within_the_limit() {
        let head = "shiplane: api v1.2.0 in prod: failed";
        assert_eq!(fit_subject(head, None), head);
        assert_eq!(
            fit_subject(head, Some("exit 1")),
            format!("{head} (exit 1)")
        );
        let long = "the deployment d-ABCDEFGHI failed its AfterAllowTestTraffic hook: health answered 503 three times in a row";
        let s = fit_subject(head, Some(long));
        assert!(s.len() <= SUBJECT_MAX, "{s}");
        assert!(s.ends_with("...)"), "{s}");
        let kept = s
            .strip_prefix(&format!("{head} ("))
            .and_then(|k| k.strip_suffix("...)"))
            .unwrap();
        assert!(long.starts_with(kept), "only whole words, in order: {kept}");
        assert!(
            long[kept.len()..].starts_with(' '),
            "the cut falls between words: {kept}"
        );
        // A head alone too long keeps its whole words.
        let words = "word ".repeat(40);
        let s = fit_subject(&words, Some("detail"));
        assert!(s.len() <= SUBJECT_MAX && s.ends_with("word..."), "{s}");
        // One tail word too long for the room left: the head alone.
        assert_eq!(fit_subject(head, Some(&"x".repeat(90))), head);
    }

    #[test]
    fn every_suggested_command_names_the_release_as_the_cli_takes_it() {
        let id = ReleaseId::new(crate::release::Timestamp(1));
        let t = Transition {
            at: crate::release::Timestamp(2),
            service: "api".into(),
            environment: "prod".into(),
            release: Some(id.clone()),
            from: Some(StageState::Deploying),
            to: Some(StageState::Failed),
            cause: Cause::DeploymentFailed,
            actor: None,
            detail: Some("hook failed".into()),
            alert: None,
        };
        let steps = next_steps(NotificationKind::Failed, &t, None);
        assert_eq!(
            steps,
            [
                format!("shiplane history {id}"),
                format!("shiplane retry {id} prod"),
            ],
            "without the release at hand, its id"
        );
        let g = guidance(NotificationKind::Failed, &t, None);
        assert_eq!(g.what, format!("api {id} failed in prod."));
        assert_eq!(g.why, "deployment failed: hook failed");

        let release = Release::new(
            id.clone(),
            "api",
            "shiplane/api",
            crate::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            Some("v1.2.0"),
            crate::release::Timestamp(1),
        );
        assert_eq!(
            next_steps(NotificationKind::Failed, &t, Some(&release)),
            [
                format!("shiplane history {id}"),
                format!("shiplane retry {id} prod")
            ],
            "by id, even tagged: a tag may move to another release"
        );
    }

    /// Every situation where a person must act is an alert whose subject says what they
    /// face in whole words (the detail in the body), with the command to type first.
    #[test]
    fn a_transition_that_raises_an_alert_is_announced_as_one() {
        use super::super::Notification;
        let release = Release::new(
            ReleaseId::new(crate::release::Timestamp(1)),
            "payments-gateway-eu",
            "shop/payments-gateway-eu",
            crate::release::Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap(),
            Some("release-2024.11.05-build.1234"),
            crate::release::Timestamp(1),
        );
        let id = release.id.clone();
        let t = |to, cause, alert| {
            Transition {
            at: crate::release::Timestamp(2),
            service: release.service.clone(),
            environment: "production-eu-west".into(),
            release: Some(id.clone()),
            from: Some(StageState::Baking),
            to: Some(to),
            cause,
            actor: Some("oncall".into()),
            detail: Some(
                "bad; no last known good release to restore here: it keeps running, manual action needed"
                    .into(),
            ),
            alert,
        }
        };
        let svc = "payments-gateway-eu";
        let env = "production-eu-west";
        for (to, cause, alert, first) in [
            (
                StageState::Cancelled,
                Cause::Cancelled,
                Alert::NothingToRestore,
                format!("shiplane status {svc}"),
            ),
            (
                StageState::Failed,
                Cause::TimedOut,
                Alert::PastDeadline,
                format!("shiplane history {id}"),
            ),
            (
                StageState::Cancelled,
                Cause::StopFailed,
                Alert::StopFailed,
                format!("shiplane history {id}"),
            ),
            (
                StageState::RolledBack,
                Cause::RollbackFailed,
                Alert::RollbackFailed,
                format!("shiplane rollback {svc} {env} --reason \"...\""),
            ),
            (
                StageState::RolledBack,
                Cause::AlarmFired,
                Alert::SchemaMoved,
                format!("shiplane history {id}"),
            ),
        ] {
            let n = Notification::transition(&t(to, cause, Some(alert)), Some(&release));
            assert_eq!(n.kind, NotificationKind::Alert, "{alert}");
            assert_eq!(n.body["kind"], "alert");
            assert_eq!(n.body["alert"], alert.as_str());
            assert_eq!(
                n.state,
                Some(to),
                "subscribers filtering on state still get it"
            );
            assert!(n.subject.len() <= SUBJECT_MAX, "{}", n.subject);
            assert!(n.subject.starts_with("shiplane ALERT: "), "{}", n.subject);
            assert!(
                n.subject.ends_with(alert_phrase(alert)),
                "the phrase whole, no detail: {}",
                n.subject
            );
            assert_eq!(n.body["command"], first.as_str(), "{alert}");
            let what = n.body["what"].as_str().unwrap();
            assert!(what.contains("needs a person: "), "{what}");
        }
        // The same change without an alert is announced as its state, detail and all.
        let plain = Notification::transition(
            &t(StageState::Cancelled, Cause::Cancelled, None),
            Some(&release),
        );
        assert_eq!(plain.kind, NotificationKind::Cancelled);
        assert!(plain.subject.starts_with("shiplane: "), "{}", plain.subject);
    }
}
