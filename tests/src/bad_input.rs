//! A built function fed what no AWS service sends (bytes that are not one JSON object: the
//! fuzz campaign's regressions for every function, `tests/fixtures/fuzz/regressions/all`),
//! with every AWS endpoint replaced by a probe that records each request it gets: the
//! answer must be an `InvalidEvent`, the log one rejected record per invocation, and the
//! probe must see no request at all. A valid event at the end proves the probe is where
//! the function's AWS calls go.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::runtime_api::RuntimeApi;

/// An HTTP endpoint on 127.0.0.1 that answers every request with a non-retryable 400 and
/// remembers what it was asked (`X-Amz-Target`, else method and path).
pub struct AwsProbe {
    pub endpoint: String,
    asked: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl AwsProbe {
    pub async fn start() -> AwsProbe {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let what = req
                            .headers()
                            .get("x-amz-target")
                            .and_then(|v| v.to_str().ok())
                            .map_or_else(
                                || format!("{} {}", req.method(), req.uri().path()),
                                str::to_string,
                            );
                        log.lock().unwrap_or_else(|p| p.into_inner()).push(what);
                        async {
                            let mut r = Response::new(Full::new(Bytes::from_static(
                                br#"{"__type":"ValidationException","message":"the bad-input probe answers nothing"}"#,
                            )));
                            *r.status_mut() = StatusCode::BAD_REQUEST;
                            r.headers_mut().insert(
                                "x-amzn-errortype",
                                "ValidationException".parse().expect("header"),
                            );
                            Ok::<_, Infallible>(r)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        AwsProbe {
            endpoint,
            asked,
            server,
        }
    }

    /// A function's environment with every AWS endpoint at this probe: dummy credentials,
    /// and `SHIPLANE_*` settings that name nothing that exists.
    pub fn function_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("SHIPLANE_TABLE", "shiplane-bad-input"),
            (
                "SHIPLANE_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:shiplane",
            ),
            ("SHIPLANE_HOOK_FUNCTION", "shiplane-deploy-hook"),
            ("SHIPLANE_SCHEDULE_GROUP", "shiplane"),
            (
                "SHIPLANE_PROMOTE_FUNCTION_ARN",
                "arn:aws:lambda:us-east-1:123456789012:function:shiplane-promote",
            ),
            (
                "SHIPLANE_SCHEDULER_ROLE_ARN",
                "arn:aws:iam::123456789012:role/shiplane-scheduler",
            ),
            // A probe answers at once; nothing here should wait for it anyway.
            ("SHIPLANE_AWS_ATTEMPT_TIMEOUT", "5s"),
        ]
    }

    /// The requests the probe got so far.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for AwsProbe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs `binary` (function `name`) against the probe, invokes it with every payload of
/// `tests/fixtures/fuzz/regressions/all` and then with `valid`, and checks what it
/// answered, logged and asked.
pub async fn bad_payloads_are_invalid_events(binary: &str, name: &str, valid: Value) {
    let bad = crate::fuzz::regressions("all");
    assert!(bad.len() >= 8, "the payloads: {bad:?}");
    let probe = AwsProbe::start().await;
    let api = RuntimeApi::start().await;
    let env = probe.function_env();
    let function = api.spawn(Path::new(binary), name, &env);
    for (_, body) in &bad {
        api.invoke_raw(body.clone());
    }
    let wait = Duration::from_secs(60);
    let out = api.wait_for(bad.len(), wait).await;
    for ((_, body), outcome) in bad.iter().zip(&out) {
        let shown = String::from_utf8_lossy(body);
        let error = outcome
            .result
            .as_ref()
            .expect_err(&format!("{name} answered {shown:?} with {outcome:?}"));
        assert_eq!(
            error["errorType"], "InvalidEvent",
            "{name}, {shown:?}: {error}"
        );
        let message = error["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.contains("single JSON object"),
            "{name}, {shown:?}: {message}"
        );
    }
    assert_eq!(probe.asked(), Vec::<String>::new(), "{name} asked AWS");
    api.invoke(valid);
    let out = api.wait_for(bad.len() + 1, wait).await;
    assert!(
        !probe.asked().is_empty(),
        "{name} served a valid event without AWS: the probe is not where its calls go ({:?})",
        out.last()
    );
    let log = function.stop_text();
    let records: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    for line in &records {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "{name}: a log line that is not one JSON record: {line:?}"
        );
    }
    let rejected = records
        .iter()
        .filter(|l| l.contains("rejected: the payload is not one JSON object"))
        .count();
    assert_eq!(rejected, bad.len(), "{name}: {log}");
}

/// An event fixture, `tests/fixtures/events/<path>.json`.
pub fn event_fixture(path: &str) -> Value {
    let file = crate::workspace().join(format!("tests/fixtures/events/{path}.json"));
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}
