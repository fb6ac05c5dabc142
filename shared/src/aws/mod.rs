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
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// The roots every AWS endpoint's certificate chains to: Amazon Root CA 1-4 and Starfield
/// Services Root G2 (Amazon Trust Services).
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../../certs/amazon-trust-services.pem");

/// The HTTPS client for the functions: the SDK's own (rustls, aws-lc), trusting only the
/// Amazon Trust Services roots, embedded. The SDK's default loads the platform's whole
/// certificate store from disk at start-up; a function that only ever talks to AWS does not
/// need it, and cold start pays for it. With `native_roots` (SHIPLANE_TLS_NATIVE_ROOTS=1,
/// e.g. behind a TLS-inspecting proxy) the SDK default is kept: None.
pub fn https_client(native_roots: bool) -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    if native_roots {
        return None;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS))
        .build()
        // The embedded PEM is tested to parse; keep the SDK default if it ever does not.
        .ok()?;
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_trust_store_holds_the_five_amazon_roots_and_builds_a_client() {
        assert_eq!(
            AMAZON_TRUST_SERVICES_ROOTS
                .matches("-----BEGIN CERTIFICATE-----")
                .count(),
            5
        );
        assert!(
            TlsContext::builder()
                .with_trust_store(
                    TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS)
                )
                .build()
                .is_ok()
        );
        assert!(https_client(false).is_some());
        assert!(
            https_client(true).is_none(),
            "native roots keep the SDK default"
        );
    }
}
