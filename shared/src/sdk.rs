//! The AWS SDK plumbing every adapter shares, below them all: the functions' SDK
//! configuration and HTTPS client, clients built on first use, and one classification of
//! SDK failures. No port and no Shiplane rule lives here.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The roots every AWS endpoint's certificate chains to: Amazon Root CA 1-4 and Starfield
/// Services Root G2 (Amazon Trust Services).
pub const AMAZON_TRUST_SERVICES_ROOTS: &str = include_str!("../certs/amazon-trust-services.pem");

/// The HTTPS client for the functions: the SDK's own (rustls, aws-lc), trusting only the
/// Amazon Trust Services roots, embedded. The SDK's default loads the platform's whole
/// certificate store from disk at start-up; a function that only ever talks to AWS does not
/// need it, and cold start pays for it. With `native_roots` (SHIPLANE_TLS_NATIVE_ROOTS=1,
/// e.g. behind a TLS-inspecting proxy) the SDK default is kept: None.
pub fn https_client(native_roots: bool) -> Option<SharedHttpClient> {
    if native_roots {
        return None;
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS))
        .build()
        // The embedded PEM is tested to parse; keep the SDK default if it ever does not.
        .ok()?;
    let client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    Some(SharedHttpClient::new(ConnectOnFirstRequest(client)))
}

/// The SDK's HTTPS client without the TLS set-up it throws away at every SDK client
/// construction.
///
/// The SDK's client builds a whole TLS connector (trust store parsed, rustls configured)
/// each time an SDK client is constructed, so that a platform store loads early, then
/// discards it; the first request builds the one it keeps. With the embedded roots
/// there is nothing to load early, and the four clients of a function paid for four
/// discarded connectors at every cold start. Delegating everything but that check leaves
/// one connector, built at the first request and cached by the wrapped client.
#[derive(Debug)]
struct ConnectOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectOnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The SDK configuration of a function running in Lambda.
///
/// Lambda hands a function its region and its role's credentials in environment variables
/// (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), so the
/// functions read exactly those, with the container credentials endpoint
/// (AWS_CONTAINER_CREDENTIALS_FULL_URI) as the fallback. The SDK's default chains would
/// also build an STS client for web identity and IMDS clients for region and credentials,
/// sources that never answer inside Lambda; every cold start paid for building them
/// (BENCHMARKS.md, "Cold start, by measurement"). The CLI keeps the default chains.
pub async fn lambda_sdk_config(settings: &crate::settings::Settings) -> aws_config::SdkConfig {
    use aws_config::meta::credentials::CredentialsProviderChain;
    let credentials = CredentialsProviderChain::first_try(
        "Environment",
        aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "EcsContainer",
        aws_config::ecs::EcsCredentialsProvider::builder().build(),
    );
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .timeout_config(sdk_timeouts(settings.aws_attempt_timeout));
    if let Some(client) = https_client(settings.native_tls_roots) {
        loader = loader.http_client(client);
    }
    loader.load().await
}

/// How long a connection may take to open (the SDK's own default for current behaviour
/// versions).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The SDK's time limits: a connection opens within [`CONNECT_TIMEOUT`] and each attempt
/// answers within `attempt`, else the retry strategy tries again. Without an attempt
/// limit, an endpoint that accepts a connection and goes silent holds the function until
/// Lambda ends it.
pub fn sdk_timeouts(attempt: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .build()
}

/// An SDK client built the first time an event needs it, then kept for the life of the
/// process.
///
/// Building a client costs more than anything else a function does at start-up (each SDK
/// crate parses its endpoint partition table and compiles its region patterns), and many
/// events need no client, or only some: the untagged children of a multi-arch push, a
/// task that Shiplane did not start. Built on first use, an event pays only for the
/// clients it calls, and the first event that calls one pays once (BENCHMARKS.md, "Cold
/// start"). Cloning shares the client.
pub struct OnFirstUse<C>(Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>);

impl<C: 'static> OnFirstUse<C> {
    /// A client that `build` makes from `config` when it is first used.
    pub fn new(config: &aws_config::SdkConfig, build: fn(&aws_config::SdkConfig) -> C) -> Self {
        let config = config.clone();
        OnFirstUse(Arc::new(LazyLock::new(Box::new(move || build(&config)))))
    }
}

/// A client already built (tests, the CLI).
impl<C: Send + 'static> From<C> for OnFirstUse<C> {
    fn from(client: C) -> Self {
        OnFirstUse(Arc::new(LazyLock::new(Box::new(move || client))))
    }
}

impl<C> Clone for OnFirstUse<C> {
    fn clone(&self) -> Self {
        OnFirstUse(Arc::clone(&self.0))
    }
}

impl<C> std::ops::Deref for OnFirstUse<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C> std::fmt::Debug for OnFirstUse<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnFirstUse").finish_non_exhaustive()
    }
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn build(config: &aws_config::SdkConfig) -> String {
        BUILT.fetch_add(1, Ordering::SeqCst);
        config
            .region()
            .map(std::string::ToString::to_string)
            .unwrap_or_default()
    }

    /// An endpoint on 127.0.0.1 that accepts connections and never answers; ends with the
    /// test's runtime.
    async fn silent_endpoint() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn an_endpoint_that_goes_silent_ends_an_attempt_at_the_settings_limit() {
        let mut vars: std::collections::HashMap<String, String> = [
            ("SHIPLANE_TABLE", "t"),
            ("SHIPLANE_TOPIC_ARN", "arn:aws:sns:eu-west-1:1:t"),
            ("SHIPLANE_HOOK_FUNCTION", "h"),
            ("SHIPLANE_SCHEDULE_GROUP", "g"),
            (
                "SHIPLANE_PROMOTE_FUNCTION_ARN",
                "arn:aws:lambda:eu-west-1:1:function:p",
            ),
            ("SHIPLANE_SCHEDULER_ROLE_ARN", "arn:aws:iam::1:role/s"),
            ("AWS_REGION", "eu-west-1"),
            ("SHIPLANE_AWS_ATTEMPT_TIMEOUT", "300ms"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = crate::settings::Settings::from_vars(&vars).unwrap();
        let config = lambda_sdk_config(&settings).await;
        // One attempt (the retry schedule is the SDK's) and fixed credentials: what is
        // tested is the limit the functions' configuration puts on an attempt.
        let conf = aws_sdk_dynamodb::config::Builder::from(&config)
            .endpoint_url(silent_endpoint().await)
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(conf);
        let started = std::time::Instant::now();
        let call = client.describe_table().table_name("t").send();
        let err = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the call waited on a silent endpoint past its attempt limit")
            .unwrap_err();
        let failure = classify("DynamoDB DescribeTable", &err);
        assert!(failure.retryable, "{}", failure.message);
        assert!(
            matches!(err, SdkError::TimeoutError(_)),
            "{}",
            failure.message
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        vars.remove("SHIPLANE_AWS_ATTEMPT_TIMEOUT");
        let settings = crate::settings::Settings::from_vars(&vars).unwrap();
        let timeouts = lambda_sdk_config(&settings).await.timeout_config().cloned();
        assert_eq!(
            timeouts.and_then(|t| t.operation_attempt_timeout()),
            Some(crate::settings::DEFAULT_AWS_ATTEMPT_TIMEOUT)
        );
    }

    #[test]
    fn a_client_on_first_use_is_built_once_when_first_used_and_shared_by_clones() {
        let config = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let client = OnFirstUse::new(&config, build);
        let clone = client.clone();
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing built before use");
        assert_eq!(*clone, "eu-west-1");
        assert_eq!(client.len(), 9);
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            1,
            "built once, shared by the clone"
        );
        let ready = OnFirstUse::from(String::from("prebuilt"));
        assert_eq!(*ready, "prebuilt");
    }

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
