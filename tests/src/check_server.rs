//! A service under test for lifecycle-hook checks, on 127.0.0.1: `/health` answers 200
//! with `{"status":"ok"}` (503 while told to be unhealthy: the demo's broken version),
//! `/down` 503, and `/hang` never answers. Dropping it stops it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The running server; `base` is `http://127.0.0.1:<port>`.
pub struct CheckServer {
    pub base: String,
    unhealthy: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CheckServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    unhealthy: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/health" if unhealthy => (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"degraded","error":"orders: 500"}"#,
        ),
        "/health" => (StatusCode::OK, r#"{"status":"ok"}"#),
        "/down" => (StatusCode::SERVICE_UNAVAILABLE, "upstream down"),
        "/hang" => std::future::pending().await,
        _ => (StatusCode::NOT_FOUND, "no such page"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    Ok(r)
}

impl CheckServer {
    pub async fn start() -> CheckServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let unhealthy = Arc::new(AtomicBool::new(false));
        let flag = unhealthy.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(req, flag.load(Ordering::SeqCst)));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        CheckServer {
            base,
            unhealthy,
            server,
        }
    }

    /// Makes `/health` answer 503 (a version that is broken) or 200 again.
    pub fn set_unhealthy(&self, unhealthy: bool) {
        self.unhealthy.store(unhealthy, Ordering::SeqCst);
    }
}
