//! The error every AWS port answers with, and how an SDK failure becomes one.

use aws_sdk_dynamodb::error::SdkError;

use crate::sdk::classify;

/// A step that failed; `retryable` when trying later may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeployError {
    pub message: String,
    pub retryable: bool,
}

impl DeployError {
    pub(crate) fn permanent(message: impl Into<String>) -> DeployError {
        DeployError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// An SDK failure as a [`DeployError`], classified as every adapter classifies them.
pub(super) fn sdk<E, R>(operation: &str, err: &SdkError<E, R>) -> DeployError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let f = classify(operation, err);
    DeployError {
        message: f.message,
        retryable: f.retryable,
    }
}
