//! Tag policies: which pushed tags become releases (a service's `tags`) and which
//! releases may enter an environment (a stage's `tags`), with how they are written.

use std::fmt;

/// Which pushed tags become releases (a service's `tags`), or may enter an environment
/// (a stage's `tags`).
#[derive(Debug, Clone)]
pub enum TagPolicy {
    /// Every valid tag.
    Any,
    /// Tags matching the regex (anchored by the author).
    Regex(regex::Regex),
    /// Tags that parse as semver (an optional leading `v` allowed) and satisfy the range.
    Semver {
        range: semver::VersionReq,
        /// Pre-releases (`1.2.0-rc.1`) are excluded unless this is set.
        prereleases: bool,
    },
}

impl TagPolicy {
    /// Whether a pushed tag makes a release under this policy.
    pub fn accepts(&self, tag: &str) -> bool {
        match self {
            TagPolicy::Any => true,
            TagPolicy::Regex(re) => re.is_match(tag),
            TagPolicy::Semver { range, prereleases } => {
                let bare = tag.strip_prefix('v').unwrap_or(tag);
                match semver::Version::parse(bare) {
                    Ok(v) if !v.pre.is_empty() && !prereleases => false,
                    Ok(v) if !v.pre.is_empty() => {
                        // VersionReq only matches pre-releases named in the range; compare the
                        // release part instead so `prereleases = true` means what it says.
                        let mut release = v.clone();
                        release.pre = semver::Prerelease::EMPTY;
                        range.matches(&release)
                    }
                    Ok(v) => range.matches(&v),
                    Err(_) => false,
                }
            }
        }
    }

    /// Whether this policy accepts any of `tags` (a release pushed under several).
    pub fn accepts_any<S: AsRef<str>>(&self, tags: &[S]) -> bool {
        matches!(self, TagPolicy::Any) || tags.iter().any(|t| self.accepts(t.as_ref()))
    }
}

/// As written in the pipeline file: `{ regex = "^release-" }`, `{ semver = ">=1.0.0" }`;
/// `any tag` when none is set.
impl fmt::Display for TagPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        match self {
            TagPolicy::Any => f.write_str("any tag"),
            TagPolicy::Regex(re) => write!(f, "{{ regex = {} }}", quoted(re.as_str())),
            TagPolicy::Semver { range, prereleases } => {
                write!(f, "{{ semver = {}", quoted(&range.to_string()))?;
                if *prereleases {
                    f.write_str(", prereleases = true")?;
                }
                f.write_str(" }")
            }
        }
    }
}

/// Two policies are the same when they are written the same (a compiled regex has no
/// equality of its own).
impl PartialEq for TagPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for TagPolicy {}
