//! What a notification says to a person: a subject that fits SNS without cutting a word,
//! what happened, why, and the commands to type next. Pure: no AWS, no clock.

use super::NotificationKind;
use crate::release::{Cause, Release, ReleaseId, StageState, Transition};

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
        (NotificationKind::Alert, _) => format!("{who} in {env} needs a person."),
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
        NotificationKind::RolledBack => vec![history, status],
        NotificationKind::Alert if t.cause == Cause::RollbackFailed => {
            vec![format!("shiplane rollback {svc} {env} {reason}"), history]
        }
        NotificationKind::Alert => vec![history, status],
        NotificationKind::Other(Cause::StopFailed) => {
            vec![history, format!("shiplane unblock {svc} {env} {reason}")]
        }
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
}
