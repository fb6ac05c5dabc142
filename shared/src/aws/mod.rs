//! Ports to the AWS services Shiplane drives, their SDK adapters, and in-memory fakes.
//!
//! Handlers and the engine are generic over [`Deployer`] and [`Notifier`]; production
//! wires [`AwsDeployer`] and [`SnsNotifier`], unit tests the fakes in [`fake`].

mod appspec;
mod deployer;
mod notifier;

#[cfg(any(test, feature = "testing"))]
pub mod fake;

pub use appspec::appspec;
pub use deployer::{AwsDeployer, DeployError, DeployOutcome, DeployRequest, Deployer, started_by};
pub use notifier::{Notification, Notifier, SnsNotifier};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// How an SDK call failed: a message naming the service's error code, and whether
/// trying again later can help (throttling, 5xx, network). The SDK has already retried
/// transient faults with backoff by the time this is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkFailure {
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServerException",
    "TransactionInProgressException",
];

/// Classifies any SDK error the same way for every service.
pub fn classify<E, R>(operation: &str, err: &SdkError<E, R>) -> SdkFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            SdkFailure {
                message: format!("{operation}: {code}: {}", e.message().unwrap_or_default()),
                retryable: TRANSIENT_CODES.contains(&code.as_str()),
                code: Some(code),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SdkFailure {
                code: None,
                message: format!("{operation}: {}", DisplayErrorContext(err)),
                retryable: true,
            }
        }
        _ => SdkFailure {
            code: None,
            message: format!("{operation}: {}", DisplayErrorContext(err)),
            retryable: false,
        },
    }
}
