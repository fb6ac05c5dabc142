//! A minimal Lambda Runtime API on 127.0.0.1, so the real function binaries can be run
//! with real event payloads, exactly as Lambda runs them.
//!
//! Implements `GET /2018-06-01/runtime/invocation/next` (long poll), `POST
//! …/invocation/{id}/response`, `POST …/invocation/{id}/error` and `POST …/init/error`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub request_id: String,
    /// The response body, or the error body for `Err`.
    pub result: Result<Value, Value>,
}

#[derive(Default)]
struct State {
    /// When each `next` poll arrived: the first one is the end of a cold start.
    polls: Vec<tokio::time::Instant>,
    pending: VecDeque<Pending>,
    outcomes: Vec<Outcome>,
    init_error: Option<Value>,
}

/// An invocation waiting for the function's next poll.
struct Pending {
    id: String,
    /// The payload's bytes, as the function receives them.
    body: Bytes,
    invoked_function_arn: String,
    timeout: Duration,
}

/// The function ARN invocations carry unless told otherwise.
pub const DEFAULT_FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";

/// A running Runtime API; dropping it stops the server.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    server: tokio::task::JoinHandle<()>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl RuntimeApi {
    /// Starts the API on a free 127.0.0.1 port.
    pub async fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| route(req, s.clone(), c.clone()));
                    // Title-case header names, as the real Runtime API sends them: clients
                    // such as awslambdaric look them up case-sensitively.
                    let _ = http1::Builder::new()
                        .title_case_headers(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RuntimeApi {
            addr,
            state,
            changed,
            server,
        }
    }

    /// Queues an event for the function; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        self.invoke_as(event, DEFAULT_FUNCTION_ARN, Duration::from_secs(30))
    }

    /// Queues an event invoked through `invoked_function_arn` (an alias or version in its
    /// qualifier), with `timeout` until the invocation's deadline.
    pub fn invoke_as(&self, event: Value, invoked_function_arn: &str, timeout: Duration) -> String {
        self.invoke_bytes(event.to_string(), invoked_function_arn, timeout)
    }

    /// Queues a payload of any bytes, JSON or not, as a direct invoke may send them.
    pub fn invoke_raw(&self, body: impl Into<Bytes>) -> String {
        self.invoke_bytes(body, DEFAULT_FUNCTION_ARN, Duration::from_secs(30))
    }

    fn invoke_bytes(
        &self,
        body: impl Into<Bytes>,
        invoked_function_arn: &str,
        timeout: Duration,
    ) -> String {
        let id = format!("req-{}", ulid::Ulid::generate());
        lock(&self.state).pending.push_back(Pending {
            id: id.clone(),
            body: body.into(),
            invoked_function_arn: invoked_function_arn.to_string(),
            timeout,
        });
        self.changed.notify_waiters();
        id
    }

    /// Waits until `ready` finds what it looks for in the state; panics naming `what` after
    /// `timeout`, or at once if the function failed to start.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: impl Fn(&State) -> String,
        ready: impl Fn(&State) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a change in between still wakes us.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = lock(&self.state);
                if let Some(err) = &st.init_error {
                    panic!("the function failed to start: {err}");
                }
                if let Some(found) = ready(&st) {
                    return found;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("{} within {timeout:?}", what(&lock(&self.state)));
            }
        }
    }

    /// Waits until `n` invocations have been answered (or the function failed to start).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Outcome> {
        self.wait_until(
            timeout,
            |st| format!("only {} of {n} invocations answered", st.outcomes.len()),
            |st| (st.outcomes.len() >= n).then(|| st.outcomes.clone()),
        )
        .await
    }

    /// Waits for the function's first poll for work (it finished init) and returns when it came.
    pub async fn first_poll(&self, timeout: Duration) -> tokio::time::Instant {
        self.wait_until(
            timeout,
            |_| "the function did not poll for work".to_string(),
            |st| st.polls.first().copied(),
        )
        .await
    }

    /// Spawns a function binary against this API with a Lambda-like environment.
    pub fn spawn(&self, binary: &Path, function_name: &str, env: &[(&str, &str)]) -> Function {
        self.spawn_command(Command::new(binary), function_name, env)
    }

    /// Spawns any command (a Python runtime, say) as the function.
    pub fn spawn_command(
        &self,
        mut command: Command,
        function_name: &str,
        env: &[(&str, &str)],
    ) -> Function {
        let program = command.get_program().to_string_lossy().into_owned();
        // Logs go to a file: a pipe nobody reads fills up and blocks the function.
        let log = std::env::temp_dir().join(format!("shiplane-fn-{}.log", ulid::Ulid::generate()));
        let log_file =
            std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = command
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().copied())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        Function {
            child: Some(child),
            log,
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A running function process; dropping it kills the process.
pub struct Function {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Function {
    /// The process's peak resident set size so far, in KiB (Linux `VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Stops the function and returns what it logged (JSON lines on stdout).
    pub fn stop(self) -> Vec<Value> {
        self.stop_text()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Stops the function and returns its log as it wrote it, line for line.
    pub fn stop_text(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("SHIPLANE_KEEP_FUNCTION_LOGS").is_none() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn route(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if std::env::var_os("SHIPLANE_RUNTIME_API_DEBUG").is_some() {
        eprintln!("runtime api: {method} {path} {:?}", req.headers());
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let parts: Vec<&str> = path
        .trim_start_matches("/2018-06-01/runtime/")
        .split('/')
        .collect();
    Ok(match (method, parts.as_slice()) {
        (Method::GET, ["invocation", "next"]) => {
            lock(&state).polls.push(tokio::time::Instant::now());
            changed.notify_waiters();
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(p) = lock(&state).pending.pop_front() {
                    let Pending {
                        id,
                        body,
                        invoked_function_arn,
                        timeout,
                    } = p;
                    let deadline = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        + timeout;
                    let mut r = reply(StatusCode::OK, body);
                    let h = r.headers_mut();
                    h.insert("lambda-runtime-aws-request-id", id.parse().expect("header"));
                    h.insert(
                        "lambda-runtime-deadline-ms",
                        deadline.as_millis().to_string().parse().expect("header"),
                    );
                    h.insert(
                        "lambda-runtime-invoked-function-arn",
                        invoked_function_arn.parse().expect("header"),
                    );
                    h.insert(
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000"
                            .parse()
                            .expect("header"),
                    );
                    // The real API always sends it; awslambdaric's native client crashes
                    // without it.
                    h.insert("content-type", "application/json".parse().expect("header"));
                    break r;
                }
                notified.await;
            }
        }
        (Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let result = if *kind == "response" {
                Ok(json())
            } else {
                Err(json())
            };
            lock(&state).outcomes.push(Outcome {
                request_id: id.to_string(),
                result,
            });
            changed.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, ["init", "error"]) => {
            lock(&state).init_error = Some(json());
            changed.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, "unknown runtime API path"),
    })
}
