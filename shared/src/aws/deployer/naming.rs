//! How the deployer names and tags what it leaves in AWS (deployment descriptions, a
//! migration task's `startedBy` and RunTask client token, the tags of a revision), and how
//! it reads those names back: the names are how a replay finds its own earlier effects.

use super::DeployRequest;
use crate::release::{Release, ReleaseId};

pub(super) const TAG_RELEASE: &str = "shiplane:release";
pub(super) const TAG_ENVIRONMENT: &str = "shiplane:environment";
pub(super) const TAG_DIGEST: &str = "shiplane:digest";

/// The revision this attempt of the release already deployed here, recorded with its
/// deployment: a restore deploys exactly it again (the family's latest may be a newer
/// release's by then, and registering another would leave two revisions per release).
pub fn pinned_revision<'a>(req: &DeployRequest<'a>) -> Option<&'a str> {
    req.release
        .stages
        .get(&req.stage.environment)
        .and_then(|s| s.task_definition.as_deref())
}

/// Which attempt at a stage this is (0 the first; `shiplane retry` counts up): every
/// effect an attempt leaves in AWS is named with it, so a retry starts afresh.
pub(super) fn attempt(release: &Release, environment: &str) -> u32 {
    release.stages.get(environment).map_or(0, |s| s.attempt)
}

/// The `startedBy` Shiplane gives a release's migration task: `shiplane/<release>/<env>`
/// (and `/<attempt>` for a retry; at most 110 of the 128 characters ECS allows), so a
/// task's stop event names its release and environment even if the function died before
/// it recorded the task's ARN.
pub fn started_by(release: &Release, environment: &str) -> String {
    match attempt(release, environment) {
        0 => format!("shiplane/{}/{environment}", release.id),
        n => format!("shiplane/{}/{environment}/{n}", release.id),
    }
}

/// The release, environment and attempt a `startedBy` of [`started_by`] names; None for
/// any other.
pub fn parse_started_by(started_by: &str) -> Option<(ReleaseId, String, u32)> {
    let rest = started_by.strip_prefix("shiplane/")?;
    let mut parts = rest.split('/');
    let id = ReleaseId::parse(parts.next()?).ok()?;
    let env = parts.next().filter(|e| !e.is_empty())?;
    let attempt = match parts.next() {
        None => 0,
        Some(n) => n.parse().ok().filter(|n| *n > 0)?,
    };
    parts
        .next()
        .is_none()
        .then(|| (id, env.to_string(), attempt))
}

/// RunTask's idempotency token for a release's migration in one environment and attempt
/// (at most the 64 characters ECS allows): a retried or concurrent RunTask starts no
/// second task.
pub fn client_token(release: &Release, environment: &str) -> String {
    let suffix = match attempt(release, environment) {
        0 => String::new(),
        n => format!("-{n}"),
    };
    let token = format!("{}-{environment}{suffix}", release.id);
    if token.len() <= 64 {
        return token;
    }
    // FNV-1a of the environment name: stable across processes and versions.
    let hash = environment.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{}-{hash:016x}{suffix}", release.id)
}

/// The description Shiplane gives a release's CodeDeploy deployment; how it finds its own.
/// It names the attempt and, for a restore of the last known good, which try at the
/// restore this is: each names one deployment, so one found by it is this try's.
pub fn deployment_description(release: &Release, environment: &str) -> String {
    let label: String = release.label().chars().take(40).collect();
    let mut description = format!("shiplane release {} ({label}) to {environment}", release.id);
    let stage = release.stages.get(environment);
    if let Some(n) = stage.map(|s| s.attempt).filter(|n| *n > 0) {
        description.push_str(&format!(", attempt {n}"));
    }
    if let Some(stage) = stage.filter(|s| s.redeploy) {
        description.push_str(&format!(", restore {}", stage.restore_failures + 1));
    }
    description
}

/// The release, environment and attempt a deployment description of Shiplane's names;
/// None for a deployment someone else made.
pub fn parse_deployment_description(description: &str) -> Option<(ReleaseId, String, u32)> {
    let rest = description.strip_prefix("shiplane release ")?;
    let (id, rest) = rest.split_once(' ')?;
    let (_, rest) = rest.rsplit_once(") to ")?;
    let mut parts = rest.split(", ");
    let env = parts.next().filter(|e| !e.is_empty() && !e.contains(' '))?;
    let mut attempt = 0;
    for part in parts {
        match part.split_once(' ') {
            Some(("attempt", n)) => attempt = n.parse().ok()?,
            Some(("restore", n)) => _ = n.parse::<u32>().ok()?,
            _ => return None,
        }
    }
    let id = ReleaseId::parse(id).ok()?;
    Some((id, env.to_string(), attempt))
}

/// Whether a description of [`deployment_description`]'s names a restore of the last
/// known good (`…, restore N`).
pub fn is_restore_description(description: &str) -> bool {
    parse_deployment_description(description).is_some()
        && description
            .rsplit(", ")
            .next()
            .is_some_and(|last| last.starts_with("restore "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_by_names_release_and_environment_in_full_and_parses_back() {
        let r = Release::new(
            ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            "api",
            "team/api",
            crate::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            None,
            crate::release::Timestamp(0),
        );
        let long_env = format!("e{}", "x".repeat(62));
        for env in ["dev", "staging-eu-west-1", long_env.as_str()] {
            let s = started_by(&r, env);
            assert!(s.len() <= 128, "{s}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b)),
                "ECS allows letters, digits, - _ / only: {s}"
            );
            assert_eq!(
                parse_started_by(&s),
                Some((r.id.clone(), env.to_string(), 0))
            );
            let token = client_token(&r, env);
            assert!(token.len() <= 64, "{token}");
        }
        // Two environments with a long common prefix no longer collide.
        let a = format!("{}a", "x".repeat(40));
        let b = format!("{}b", "x".repeat(40));
        assert_ne!(started_by(&r, &a), started_by(&r, &b));
        assert_ne!(client_token(&r, &a), client_token(&r, &b));
        assert_eq!(client_token(&r, &a), client_token(&r, &a), "stable");
        for other in [
            "01JD2B3C4D5E6F7G8H9J0KMNPQ-dev",
            "shiplane/nope/dev",
            "shiplane/01JD2B3C4D5E6F7G8H9J0KMNPQ/",
            "ecs-svc/123",
        ] {
            assert_eq!(parse_started_by(other), None, "{other}");
        }
    }

    #[test]
    fn a_deployment_description_names_release_environment_attempt_and_restore_try() {
        use crate::release::{Stage, StageState, Timestamp};
        let mut r = Release::new(
            ReleaseId::parse("01JD2B3C4D5E6F7G8H9J0KMNPQ").unwrap(),
            "api",
            "team/api",
            crate::release::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            Some("v1.2.0"),
            Timestamp(0),
        );
        let first = deployment_description(&r, "prod");
        assert_eq!(
            first,
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1.2.0) to prod"
        );
        let mut stage = Stage::new(StageState::Deploying, Timestamp(0));
        stage.attempt = 2;
        r.stages.insert("prod".into(), stage.clone());
        let retried = deployment_description(&r, "prod");
        stage.redeploy = true;
        r.stages.insert("prod".into(), stage.clone());
        let restore = deployment_description(&r, "prod");
        stage.restore_failures = 1;
        r.stages.insert("prod".into(), stage);
        let restore_again = deployment_description(&r, "prod");
        assert!(
            restore_again.ends_with(", attempt 2, restore 2"),
            "{restore_again}"
        );
        let all = [&first, &retried, &restore, &restore_again];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "each try is a deployment of its own");
            }
        }
        let attempts = [0, 2, 2, 2];
        let restores: Vec<bool> = all.iter().map(|d| is_restore_description(d)).collect();
        assert_eq!(restores, [false, false, true, true]);
        for (d, attempt) in all.iter().zip(attempts) {
            assert_eq!(
                parse_deployment_description(d),
                Some((r.id.clone(), "prod".to_string(), attempt)),
                "{d}"
            );
        }
        for other in [
            "deployed by hand",
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1) to prod, by hand",
            "shiplane release nope (v1) to prod",
            "shiplane release 01JD2B3C4D5E6F7G8H9J0KMNPQ (v1) to ",
        ] {
            assert_eq!(parse_deployment_description(other), None, "{other}");
        }
    }
}
