//! A `tags` policy, the service's (which pushes become releases) or a stage's (which
//! releases may enter the environment): a regex or a semver range, named by its path when
//! it is not one.

use regex::Regex;

use super::Problems;
use crate::pipeline::TagPolicy;
use crate::pipeline::raw::RawTags;

/// The policy `tags` writes at `path` (`services.api.tags`, `defaults.prod.tags`); every
/// tag when it is left out.
pub(super) fn tag_policy(path: &str, tags: Option<&RawTags>, p: &mut Problems) -> TagPolicy {
    let Some(tags) = tags else {
        return TagPolicy::Any;
    };
    match (&tags.regex, &tags.semver) {
        (Some(_), Some(_)) => {
            p.add(path, "set either regex or semver, not both");
            TagPolicy::Any
        }
        (Some(re), None) => {
            if tags.prereleases.is_some() {
                p.add(
                    format!("{path}.prereleases"),
                    "only applies to a semver range; remove it or use semver",
                );
            }
            match Regex::new(re) {
                Ok(re) => TagPolicy::Regex(re),
                Err(e) => {
                    let first = e.to_string();
                    let detail = first.lines().last().unwrap_or_default().trim().to_string();
                    p.add(
                        format!("{path}.regex"),
                        format!("\"{re}\" is not a valid regex ({detail})"),
                    );
                    TagPolicy::Any
                }
            }
        }
        (None, Some(range)) => match semver::VersionReq::parse(range) {
            Ok(range) => TagPolicy::Semver {
                range,
                prereleases: tags.prereleases.unwrap_or(false),
            },
            Err(e) => {
                p.add(
                    format!("{path}.semver"),
                    format!("\"{range}\" is not a semver range ({e}); write e.g. \">=1.0.0, <2\""),
                );
                TagPolicy::Any
            }
        },
        (None, None) => {
            p.add(
                path,
                "set regex = \"...\" or semver = \"...\", or remove tags to accept every tag",
            );
            TagPolicy::Any
        }
    }
}
