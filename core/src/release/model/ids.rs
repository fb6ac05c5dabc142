//! The values the model is keyed and timed by (Timestamp, ReleaseId, Digest) and the
//! checks of input from outside (InvalidInput, validate_tag, escaped): small types with
//! their parsing, apart from the records built from them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch; the core never reads the clock itself.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time, for the edges (handlers, CLI) to pass into the core.
    pub fn now() -> Timestamp {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Timestamp(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// This time plus a duration, saturating.
    pub fn after(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = UNIX_EPOCH + Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(t))
    }
}

/// Input that fails validation; names the field and what a valid value looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: String,
}

/// A release id: a ULID, so ids sort by creation time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseId(String);

impl ReleaseId {
    /// A fresh id minted at `now`.
    pub fn new(now: Timestamp) -> ReleaseId {
        #[cfg(any(test, feature = "testing"))]
        if let Some(random) = seeded::next() {
            return ReleaseId(ulid::Ulid::from_parts(now.0, random).to_string());
        }
        let t = UNIX_EPOCH + Duration::from_millis(now.0);
        ReleaseId(ulid::Ulid::from_datetime(t).to_string())
    }

    /// Parses an id typed by an operator or read from an event.
    pub fn parse(text: &str) -> Result<ReleaseId, InvalidInput> {
        ulid::Ulid::from_string(text)
            .map(|u| ReleaseId(u.to_string()))
            .map_err(|_| InvalidInput {
                field: "release",
                message: format!(
                    "\"{}\" is not a release id (26 characters, e.g. 01JD2B3C4D5E6F7G8H9J0KMNPQ)",
                    escaped(&text.chars().take(64).collect::<String>())
                ),
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Ids minted from a seed instead of the system's entropy, on one thread: a simulation
/// that replays a seed must mint the same ids in the same order.
#[cfg(any(test, feature = "testing"))]
pub mod seeded {
    use std::cell::Cell;

    thread_local! {
        static STATE: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Seeds the ids this thread mints from now on; None gives them back their entropy.
    pub fn seed_ids(seed: Option<u64>) {
        STATE.set(seed);
    }

    /// The random part of the next id, when seeded (splitmix64, twice).
    pub(super) fn next() -> Option<u128> {
        let mut state = STATE.get()?;
        let mut draw = || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let random = (u128::from(draw()) << 16) ^ u128::from(draw());
        STATE.set(Some(state));
        Some(random & ((1u128 << 80) - 1))
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image digest, always `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Digest, InvalidInput> {
        let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Digest(text.to_string()))
        } else {
            Err(InvalidInput {
                field: "image-digest",
                message: format!(
                    "\"{}\" is not an image digest; expected \"sha256:\" followed by 64 lowercase hex digits",
                    escaped(&text.chars().take(100).collect::<String>())
                ),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as people quote digests.
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Untrusted text made safe for one log line or message: control characters (a newline
/// that would forge a log line in text format) are escaped, `\n` instead of a line break.
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks a Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), InvalidInput> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(InvalidInput {
            field: "image-tag",
            message: format!(
                "\"{}\"{} is not a valid Docker tag; tags are 1-128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'",
                escaped(&tag.chars().take(64).collect::<String>()),
                if tag.chars().count() > 64 { "…" } else { "" }
            ),
        })
    }
}
