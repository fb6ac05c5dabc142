//! What every Lambda function shares: settings and AWS clients built once, the runtime
//! loop, one reading of the delivered bytes ([`read_payload`]), a few-line handler shape,
//! and errors as Lambda reports them, with a stable `errorType` (`InvalidEvent`,
//! `ConfigError`, `Conflict`, `StoreUnavailable`, …) instead of a Rust type name.

use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::tower;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::{Instrument, error, info, info_span};

use crate::aws::{AwsDeployer, AwsTriggers, SchedulerTimer, SnsNotifier};
use crate::engine::{Deps, EngineError, Report};
use crate::inbound::Inbound;
use crate::release::{InvalidInput, Timestamp};
use crate::sdk::OnFirstUse;
use crate::settings::Settings;
use crate::store::{DynamoStore, StoreError};

/// The production ports: DynamoDB, ECS + CodeDeploy, SNS, EventBridge Scheduler.
pub type AwsPorts = (DynamoStore, AwsDeployer, SnsNotifier, SchedulerTimer);

/// The production clients, built once per cold start.
pub type AwsDeps = Deps<AwsPorts>;

/// The production clients from Lambda's environment ([`crate::sdk::lambda_sdk_config`]),
/// each built when an event first needs it ([`OnFirstUse`]). Throttling and 5xx are
/// retried with exponential backoff (5 attempts) before a step is failed. TLS trusts the
/// Amazon Trust Services roots (see [`crate::sdk::https_client`]).
pub async fn aws_deps(settings: &Settings) -> AwsDeps {
    deps_from(&crate::sdk::lambda_sdk_config(settings).await, settings)
}

fn deps_from(config: &aws_config::SdkConfig, settings: &Settings) -> AwsDeps {
    Deps {
        store: DynamoStore::new(
            OnFirstUse::new(config, aws_sdk_dynamodb::Client::new),
            &settings.table,
        ),
        deployer: AwsDeployer::new(
            OnFirstUse::new(config, aws_sdk_ecs::Client::new),
            OnFirstUse::new(config, aws_sdk_codedeploy::Client::new),
            &settings.hook_function,
            AwsTriggers::from_config(config),
        ),
        notifier: SnsNotifier::new(
            OnFirstUse::new(config, aws_sdk_sns::Client::new),
            &settings.topic_arn,
        )
        .with_chatbot_topic(settings.chatbot_topic_arn.clone()),
        timer: SchedulerTimer::new(
            OnFirstUse::new(config, aws_sdk_scheduler::Client::new),
            &settings.schedule_group,
            &settings.promote_function_arn,
            &settings.scheduler_role_arn,
        ),
    }
}

/// Why a function returned an error to Lambda.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Not the event this function serves, or a field fails validation: retrying cannot
    /// help; Lambda's retries end in the dead-letter queue.
    #[error("{0}")]
    InvalidEvent(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl HandlerError {
    /// The `errorType` Lambda reports, in logs, metrics and the dead-letter queue.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::InvalidEvent(_) => "InvalidEvent",
            HandlerError::Engine(EngineError::Config(_)) => "ConfigError",
            HandlerError::Engine(EngineError::Unavailable(_)) => "AwsUnavailable",
            HandlerError::Engine(EngineError::Store(e)) => match e {
                StoreError::Conflict { .. } => "Conflict",
                StoreError::AlreadyClaimed { .. } => "AlreadyProcessed",
                StoreError::Unavailable { .. } => "StoreUnavailable",
                StoreError::Failed { .. } => "StoreError",
                StoreError::Corrupt { .. } => "CorruptItem",
            },
        }
    }

    /// Whether Lambda delivering the event again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Engine(e) if e.is_retryable())
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        Diagnostic {
            error_type: e.error_type().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// A handler's future, boxed: the engine's future is large, and its concrete type inside
/// the runtime's service layers overflows the compiler's type-depth limit. Not `Send`:
/// `lambda_runtime::run` awaits it in its own loop and does not ask it to be.
type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, HandlerError>> + 'a>>;

/// Runs a function: reads its settings (init fails naming a missing one), builds the AWS
/// clients once, and serves every invocation with `handler` (the function's `handle`), in
/// a span that names the request, here so that no function can forget it.
pub async fn serve<F>(function: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: AsyncFn(&AwsDeps, LambdaEvent<Value>) -> Result<Value, HandlerError>,
{
    serve_with(
        function,
        |_| (),
        async |deps, _, event| handler(deps, event).await,
    )
    .await
}

/// [`serve`], for a function that needs clients besides the common ones: `extra` builds
/// them once from the same SDK configuration.
pub async fn serve_with<X, B, F>(
    function: &'static str,
    extra: B,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    B: FnOnce(&aws_config::SdkConfig) -> X,
    F: AsyncFn(&AwsDeps, &X, LambdaEvent<Value>) -> Result<Value, HandlerError>,
{
    lambda_runtime::tracing::init_default_subscriber();
    // Metric records go to the log as EMF lines: CloudWatch extracts them, no AWS call.
    crate::metrics::set_sink(crate::metrics::Sink::Stdout);
    let settings = Settings::from_env_or_exit(function);
    let config = crate::sdk::lambda_sdk_config(&settings).await;
    let deps = deps_from(&config, &settings);
    let extra = extra(&config);
    let service = service_fn(|event: LambdaEvent<Checked>| -> HandlerFuture<'_> {
        // Every line an invocation logs names its request: `handle{request_id=…}`.
        let span = info_span!("handle", request_id = %event.context.request_id);
        let LambdaEvent { payload, context } = event;
        match payload {
            Checked::Payload(payload) => Box::pin(
                handler(&deps, &extra, LambdaEvent::new(payload, context)).instrument(span),
            ),
            Checked::Invalid(message) => Box::pin(
                async move {
                    error!(error = %message, "rejected: the payload is not one JSON object");
                    Err(HandlerError::InvalidEvent(message))
                }
                .instrument(span),
            ),
        }
    });
    lambda_runtime::Runtime::new(service)
        .layer(tower::layer::layer_fn(StrictPayload))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .run()
        .await
}

/// The one payload every function takes: the bytes Lambda delivered, read as exactly one
/// JSON object with nothing after it. Bytes that are not JSON, a value followed by more
/// (`{…}{…}`, `{…} junk`) and a JSON value that is not an object (`[1,2,3]`, `"ALARM"`,
/// `42`, `null`) are an `InvalidEvent`: no AWS service sends one, so a direct invoke made it
/// by mistake and it belongs in the dead-letter queue, not in an "ignored" answer.
pub fn read_payload(body: &[u8]) -> Result<Value, HandlerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        HandlerError::InvalidEvent(format!(
            "the payload is not one JSON value ({e}): send the event as a single JSON object"
        ))
    })?;
    let kind = match &value {
        Value::Object(_) => return Ok(value),
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
    };
    Err(HandlerError::InvalidEvent(format!(
        "the payload is {kind}, not a JSON object: send the event as a single JSON object"
    )))
}

/// What [`StrictPayload`] hands the runtime in place of the delivered bytes: the payload
/// [`read_payload`] accepted, or why it refused them. Every body is rewritten into one of
/// these, so no payload can pose as the other variant.
#[derive(serde::Serialize, serde::Deserialize)]
enum Checked {
    Payload(Value),
    Invalid(String),
}

/// The runtime's layer that reads each invocation's bytes with [`read_payload`] before the
/// runtime deserializes them: the runtime itself takes the first JSON value and drops what
/// follows, and answers bytes that are not JSON with its own Rust type name as `errorType`,
/// before any handler runs.
struct StrictPayload<S>(S);

impl<S> tower::Service<lambda_runtime::LambdaInvocation> for StrictPayload<S>
where
    S: tower::Service<lambda_runtime::LambdaInvocation>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: lambda_runtime::LambdaInvocation) -> Self::Future {
        invocation.body = checked(&invocation.body).into();
        self.0.call(invocation)
    }
}

/// The body [`StrictPayload`] hands the runtime for `body`: a [`Checked`], as JSON.
fn checked(body: &[u8]) -> Vec<u8> {
    let checked = match read_payload(body) {
        Ok(payload) => Checked::Payload(payload),
        Err(e) => Checked::Invalid(e.to_string()),
    };
    // Serializing a `Value` cannot fail (its keys are strings); were it to, the empty body
    // would be the runtime's own deserialization error.
    serde_json::to_vec(&checked).unwrap_or_default()
}

/// Parses an EventBridge envelope; a payload of another shape is an `InvalidEvent`.
pub fn envelope<T: DeserializeOwned + serde::Serialize>(
    payload: Value,
    what: &str,
) -> Result<EventBridgeEvent<T>, HandlerError> {
    serde_json::from_value(payload).map_err(|e| {
        error!(error = %e, "rejected: malformed event");
        HandlerError::InvalidEvent(format!("malformed {what} event: {e}"))
    })
}

/// What a parser reads, made from the Lambda payload by [`handle_event`]: the payload
/// itself (`Value`), or an EventBridge envelope ([`envelope`]). A function whose event has
/// its own type implements it on a wrapper of that type.
pub trait Payload: Sized {
    /// The parser's input; `what` names the event in the `InvalidEvent` for a payload of
    /// another shape.
    fn read(payload: Value, what: &str) -> Result<Self, HandlerError>;
}

impl Payload for Value {
    fn read(payload: Value, _what: &str) -> Result<Self, HandlerError> {
        Ok(payload)
    }
}

impl<T: DeserializeOwned + serde::Serialize> Payload for EventBridgeEvent<T> {
    fn read(payload: Value, what: &str) -> Result<Self, HandlerError> {
        envelope(payload, what)
    }
}

/// A handler whose event is one engine call, in one place so that every such function
/// logs, fails and answers alike: the payload read ([`Payload`]), `parse`d against the
/// time now (an event's own time may not be ahead of it) and [`accepted`], then `engine`
/// run on what was accepted (and the same time), and its outcome [`applied`] with `about`'s
/// fields of the event. `what` names the event in an `InvalidEvent`.
pub async fn handle_event<P: Payload, T>(
    payload: Value,
    what: &str,
    parse: impl FnOnce(&P, Timestamp) -> Result<Inbound<T>, InvalidInput>,
    engine: impl AsyncFnOnce(&T, Timestamp) -> Result<Inbound<Report>, EngineError>,
    about: impl FnOnce(&T) -> Value,
) -> Result<Value, HandlerError> {
    let input = P::read(payload, what)?;
    let now = Timestamp::now();
    let event = match accepted(parse(&input, now), what)? {
        Ok(event) => event,
        Err(answer) => return Ok(answer),
    };
    let outcome = engine(&event, now).await;
    applied(outcome, about(&event))
}

/// The domain input a parser made of an event, or the function's answer when there is
/// none: the logged "ignored: why", or an `InvalidEvent` naming the field.
pub fn accepted<T>(
    parsed: Result<Inbound<T>, InvalidInput>,
    what: &str,
) -> Result<Result<T, Value>, HandlerError> {
    match parsed {
        Ok(Inbound::Accepted(t)) => Ok(Ok(t)),
        Ok(Inbound::Ignored(reason)) => Ok(Err(ignored(&reason))),
        Err(invalid) => {
            error!(field = invalid.field, error = %invalid, "rejected");
            Err(HandlerError::InvalidEvent(format!(
                "invalid {what} event: {invalid}"
            )))
        }
    }
}

/// Logs an ignored event (the reason escaped: it may carry a tag from the event) and
/// returns the function's answer for it.
pub fn ignored(reason: &str) -> Value {
    info!(reason = ?reason, "ignored");
    json!({ "ignored": reason })
}

/// What a run of the engine moved, as a handler answers it: each transition's release,
/// environment, new state and cause.
pub fn moved(report: &Report) -> Value {
    report
        .transitions
        .iter()
        .map(|t| json!({"release": t.release, "environment": t.environment, "to": t.to, "cause": t.cause}))
        .collect()
}

/// A handler's answer for an event the engine applied or ignored: the logged "ignored:
/// why", or `about` (the event's own fields) with what moved and what was refused. An
/// engine failure is returned as the function's error, so Lambda retries what may succeed.
pub fn applied(
    outcome: Result<Inbound<Report>, EngineError>,
    about: Value,
) -> Result<Value, HandlerError> {
    match outcome {
        Ok(Inbound::Ignored(reason)) => Ok(ignored(&reason)),
        Ok(Inbound::Accepted(report)) => {
            info!(event = %about, transitions = report.transitions.len(), refused = ?report.refused, "applied");
            let mut answer = about;
            if let Value::Object(fields) = &mut answer {
                fields.insert("transitions".into(), moved(&report));
                fields.insert("refused".into(), json!(report.refused));
            }
            Ok(answer)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Logs an engine failure with whether Lambda's retry may help, and passes it on.
pub fn failed(e: EngineError) -> HandlerError {
    error!(error = %e, retryable = e.is_retryable(), "event not processed");
    HandlerError::Engine(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_is_one_json_object_and_nothing_else() {
        assert_eq!(
            read_payload(b" {\"a\": [1, 2]}\n").unwrap(),
            json!({"a": [1, 2]})
        );
        for (body, says) in [
            (&b"[1,2,3]"[..], "an array"),
            (b"\"ALARM\"", "a string"),
            (b"42", "a number"),
            (b"null", "null"),
            (b"true", "a boolean"),
            (b"", "not one JSON value"),
            (b"ALARM", "not one JSON value"),
            (b"\xff\xfe{}", "not one JSON value"),
            (b"{\"a\": 1}{\"b\": 2}", "trailing characters"),
            (b"{\"a\": 1} junk", "trailing characters"),
            (b"{\"a\": 1", "not one JSON value"),
        ] {
            let err = read_payload(body).unwrap_err();
            assert_eq!(err.error_type(), "InvalidEvent", "{body:?}");
            let message = err.to_string();
            assert!(message.contains(says), "{body:?}: {message}");
            assert!(message.contains("single JSON object"), "{message}");
        }
    }

    /// What the runtime's layer hands on: the accepted payload, or the refusal, in a shape
    /// no payload can imitate.
    #[test]
    fn the_layer_rewrites_every_body_into_a_checked_payload() {
        let through = |body: &[u8]| -> Checked { serde_json::from_slice(&checked(body)).unwrap() };
        assert!(matches!(through(b"{\"Invalid\": \"x\"}"),
            Checked::Payload(p) if p == json!({"Invalid": "x"})));
        assert!(matches!(through(b"{}{}"), Checked::Invalid(m) if m.contains("trailing")));
    }

    #[test]
    fn every_error_has_a_stable_meaningful_type() {
        let cases = [
            (
                HandlerError::InvalidEvent("x".into()),
                "InvalidEvent",
                false,
            ),
            (EngineError::Config("x".into()).into(), "ConfigError", false),
            (
                EngineError::Unavailable("ECR DescribeImages: throttled".into()).into(),
                "AwsUnavailable",
                true,
            ),
            (
                EngineError::Store(StoreError::Conflict { what: "x".into() }).into(),
                "Conflict",
                true,
            ),
            (
                EngineError::Store(StoreError::Unavailable {
                    message: "x".into(),
                })
                .into(),
                "StoreUnavailable",
                true,
            ),
            (
                EngineError::Store(StoreError::Failed {
                    message: "x".into(),
                })
                .into(),
                "StoreError",
                false,
            ),
            (
                EngineError::Store(StoreError::Corrupt {
                    what: "x".into(),
                    message: "y".into(),
                })
                .into(),
                "CorruptItem",
                false,
            ),
        ];
        for (e, kind, retryable) in cases {
            assert_eq!(e.is_retryable(), retryable, "{kind}");
            let message = e.to_string();
            let d: Diagnostic = e.into();
            assert_eq!(d.error_type, kind);
            assert_eq!(d.error_message, message);
        }
    }
}
