//! [`PushClock`] over ECR DescribeImages.

use std::collections::BTreeMap;

use aws_sdk_ecr::types::ImageIdentifier;

use super::PushClock;
use crate::aws::error::{DeployError, sdk};
use crate::release::{Digest, Timestamp};
use crate::sdk::OnFirstUse;

/// The production [`PushClock`]: ECR DescribeImages `imagePushedAt`, every digest in one
/// call. The client is built the first time two pushes share a second, so a function
/// that never sees that pays nothing for it at cold start.
#[derive(Clone, Debug)]
pub struct EcrPushClock {
    ecr: OnFirstUse<aws_sdk_ecr::Client>,
}

impl EcrPushClock {
    pub fn new(ecr: impl Into<OnFirstUse<aws_sdk_ecr::Client>>) -> Self {
        EcrPushClock { ecr: ecr.into() }
    }

    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(OnFirstUse::new(config, aws_sdk_ecr::Client::new))
    }

    async fn describe(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digests: &[Digest],
    ) -> Result<Option<BTreeMap<Digest, Timestamp>>, DeployError> {
        let ids = digests
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d.as_str()).build())
            .collect();
        let answer = self
            .ecr
            .describe_images()
            .set_registry_id(registry_id.map(str::to_string))
            .repository_name(repository)
            .set_image_ids(Some(ids))
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_ecr::operation::describe_images::DescribeImagesError::is_image_not_found_exception) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(sdk("ECR DescribeImages", &e)),
        };
        let mut times = BTreeMap::new();
        for image in out.image_details() {
            let (Some(digest), Some(at)) = (image.image_digest(), image.image_pushed_at()) else {
                continue;
            };
            let (Ok(digest), Ok(ms)) = (Digest::parse(digest), at.to_millis()) else {
                continue;
            };
            if let Ok(ms) = u64::try_from(ms) {
                times.insert(digest, Timestamp(ms));
            }
        }
        Ok(Some(times))
    }
}

/// The account of a registry host (`123456789012.dkr.ecr.us-east-1.amazonaws.com`), if
/// it names one.
fn registry_id(registry: &str) -> Option<&str> {
    registry
        .split('.')
        .next()
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
}

impl PushClock for EcrPushClock {
    async fn pushed_at(
        &self,
        registry: &str,
        repository: &str,
        digests: &[Digest],
    ) -> Result<BTreeMap<Digest, Timestamp>, DeployError> {
        let registry = registry_id(registry);
        if let Some(times) = self.describe(registry, repository, digests).await? {
            return Ok(times);
        }
        // ECR refuses the whole call when one image is gone (ImageNotFoundException):
        // ask for each, leaving out those it no longer has.
        let mut times = BTreeMap::new();
        for digest in digests {
            if let Some(found) = self
                .describe(registry, repository, std::slice::from_ref(digest))
                .await?
            {
                times.extend(found);
            }
        }
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_id_is_the_account_of_the_registry_host() {
        assert_eq!(
            registry_id("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some("123456789012")
        );
        assert_eq!(registry_id("localhost:5000"), None);
        assert_eq!(registry_id(""), None);
    }
}
