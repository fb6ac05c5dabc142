//! A service under test for lifecycle-hook checks, on 127.0.0.1: `/health` answers 200
//! with `{"status":"ok"}`, `/down` 503, and `/hang` never answers. Dropping it stops it.

use std::convert::Infallible;

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
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CheckServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
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
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        });
        CheckServer { base, server }
    }
}
