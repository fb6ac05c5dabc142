//! HTTP(S) probes of the new version through the test listener.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{CheckResult, excerpt, judge_http};
use crate::pipeline::HttpProbe;

/// How much of a response body a check reads (the rest is not needed to judge it).
const MAX_BODY: usize = 1024 * 1024;

type Https = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP(S) client built when the first probe runs (TLS trusts the platform's
/// certificate store, where internal CAs are installed), then kept.
#[derive(Default)]
pub struct HttpClient {
    client: OnceLock<Result<Https, String>>,
}

fn build() -> Result<Https, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

impl HttpClient {
    pub fn new() -> HttpClient {
        HttpClient::default()
    }

    /// Runs the probe: attempts until one answers as expected, at most `retries + 1`,
    /// `interval` apart, each within the latency budget. The result is the last attempt's.
    pub async fn probe(&self, probe: &HttpProbe) -> CheckResult {
        let mut last = CheckResult::failed(Duration::ZERO, "not run");
        for attempt in 0..=probe.retries {
            if attempt > 0 {
                tokio::time::sleep(probe.interval).await;
            }
            last = self.once(probe).await;
            if last.passed {
                break;
            }
        }
        last
    }

    async fn once(&self, probe: &HttpProbe) -> CheckResult {
        let started = Instant::now();
        let client = match self.client.get_or_init(build) {
            Ok(c) => c,
            Err(e) => return CheckResult::failed(Duration::ZERO, e.clone()),
        };
        let mut request = hyper::Request::builder()
            .method(probe.method.as_str())
            .uri(probe.url.as_str())
            .header("user-agent", "shiplane-deploy-hook");
        for (name, value) in &probe.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = match request.body(Full::new(Bytes::new())) {
            Ok(r) => r,
            Err(e) => return CheckResult::failed(Duration::ZERO, format!("bad request: {e}")),
        };
        let answer = tokio::time::timeout(probe.latency_budget, async {
            let response = client.request(request).await.map_err(|e| {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                message
            })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
        })
        .await;
        let latency = started.elapsed();
        match answer {
            Err(_) => CheckResult::failed(
                latency,
                format!(
                    "{} {}: no answer within {} ms",
                    probe.method,
                    probe.url,
                    probe.latency_budget.as_millis()
                ),
            ),
            Ok(Err(e)) => CheckResult::failed(
                latency,
                format!("{} {}: {}", probe.method, probe.url, excerpt(&e)),
            ),
            Ok(Ok((status, body))) => match judge_http(probe, status, &body) {
                Ok(()) => {
                    CheckResult::passed(latency, format!("status {status}: {}", excerpt(&body)))
                }
                Err(why) => CheckResult::failed(latency, why),
            },
        }
    }
}
