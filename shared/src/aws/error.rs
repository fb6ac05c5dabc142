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

/// The outcome of a call that is done once, whoever does it: Ok(true) when this call did
/// it, Ok(false) when AWS answers that it was already done (`already`: a schedule of
/// that name exists, a deployment already completed), else the classified failure. A
/// replay or a second invocation then finds its work done instead of failing.
pub(super) fn once<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    already: impl Fn(&E) -> bool,
    operation: &str,
) -> Result<bool, DeployError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if already(e.err()) => Ok(false),
        Err(e) => Err(sdk(operation, &e)),
    }
}
