//! Where a new push goes among those that arrived before it. Pushes are placed by the
//! event's own time (EventBridge's `time`: whole seconds), so two pushes in one second
//! would be ordered by whichever was processed last; for such a pair, and only then, ECR
//! is asked for both images' own push times (to the millisecond). What ECR cannot say is
//! ordered by digest ([`crate::release::pushed_before`]).

use tracing::{info, warn};

use super::EngineError;
use crate::aws::PushClock;
use crate::release::{Digest, Lane, Release, Timestamp};

/// Whether a time is only known to the second (EventBridge's resolution).
fn whole_second(t: Timestamp) -> bool {
    t.0.is_multiple_of(1000)
}

/// The digests ECR must be asked about before `release` can be placed after or before the
/// lane's newest push: none unless the two share a second and one of them is known only to
/// the second.
fn to_ask(lane: &Lane, release: &Release) -> Vec<Digest> {
    let (Some(newest), Some(newest_digest)) = (lane.newest_pushed_at, &lane.newest_digest) else {
        return Vec::new();
    };
    if *newest_digest == release.digest || newest.0 / 1000 != release.pushed_at.0 / 1000 {
        return Vec::new();
    }
    [
        (release.pushed_at, &release.digest),
        (newest, newest_digest),
    ]
    .into_iter()
    .filter(|(t, _)| whole_second(*t))
    .map(|(_, d)| d.clone())
    .collect()
}

/// `release`, a push this pass minted, with ECR's time for it, and `lane` with ECR's time
/// for its newest push, when the two share a second; both as they were when ECR does not
/// answer for every image asked about (logged: the pair is then ordered by digest).
pub(super) async fn place(
    clock: &impl PushClock,
    lane: &mut Lane,
    mut release: Release,
) -> Result<Release, EngineError> {
    let ask = to_ask(lane, &release);
    if ask.is_empty() {
        return Ok(release);
    }
    let times = match clock
        .pushed_at(&release.registry, &release.repository, &ask)
        .await
    {
        Ok(times) if ask.iter().all(|d| times.contains_key(d)) => times,
        Ok(times) => {
            info!(release = %release.id, asked = ?ask, answered = times.len(), "ECR has no push time for every image sharing the push's second; ordering them by digest");
            return Ok(release);
        }
        // Throttled or unreachable: the push is delivered again (Lambda's retries) and
        // ECR asked again, rather than placed by digest, which may put the older first.
        Err(e) if e.retryable => {
            warn!(release = %release.id, error = ?e.message, "ECR push times not read; the push is tried again");
            return Err(EngineError::Unavailable(format!(
                "ECR push times of {} could not be read ({}); the push is tried again",
                release.repository, e.message
            )));
        }
        Err(e) => {
            warn!(release = %release.id, error = ?e.message, "ECR refused to tell push times; ordering pushes that share a second by digest");
            return Ok(release);
        }
    };
    if let Some(at) = times.get(&release.digest) {
        release.pushed_at = *at;
    }
    if let Some(newest) = lane.newest_digest.clone()
        && let Some(at) = times.get(&newest)
    {
        lane.refine_newest_push(&newest, *at);
    }
    info!(release = %release.id, pushed_at = release.pushed_at.0, newest_pushed_at = ?lane.newest_pushed_at.map(|t| t.0), "placed by ECR's push times: the push shares a second with the newest one here");
    Ok(release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::ReleaseId;

    fn release(n: u8, at: u64) -> Release {
        let digest = Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap();
        let mut r = Release::new(
            ReleaseId::new(Timestamp(at)),
            "api",
            "shiplane/api",
            digest,
            Some("v1"),
            Timestamp(at),
        );
        r.pushed_at = Timestamp(at);
        r
    }

    #[test]
    fn ecr_is_asked_only_about_pushes_that_may_share_a_second() {
        let mut lane = Lane::new("api", "dev");
        assert!(
            to_ask(&lane, &release(1, 5_000)).is_empty(),
            "nothing arrived yet"
        );
        lane.newest_pushed_at = Some(Timestamp(5_000));
        lane.newest_digest = Some(release(2, 0).digest);
        let d = |n| release(n, 0).digest;
        for (at, newest, want) in [
            (5_000, 5_000, vec![d(1), d(2)]),
            (6_000, 5_000, vec![]),
            (4_000, 5_000, vec![]),
            (5_000, 5_700, vec![d(1)]),
            (5_300, 5_000, vec![d(2)]),
            (5_300, 5_700, vec![]),
        ] {
            lane.newest_pushed_at = Some(Timestamp(newest));
            assert_eq!(to_ask(&lane, &release(1, at)), want, "{at} vs {newest}");
        }
        lane.newest_digest = Some(d(1));
        assert!(
            to_ask(&lane, &release(1, 5_000)).is_empty(),
            "the same image"
        );
    }
}
