//! `shiplane dashboard`: a local web page over the same table, engine and credentials as
//! the CLI (what `kubectl argo rollouts dashboard` is to Argo Rollouts). It listens on
//! 127.0.0.1 only; its buttons call the engine paths the CLI commands call and are
//! recorded as the same actor; [`guard`] keeps other web pages from using it.
//!
//! Routes: `GET /` (the pipeline view), `GET /releases/ID` (a release's timeline), their
//! JSON twins `GET /api/board` and `GET /api/releases/ID`, and `POST /actions/VERB` (approve,
//! reject, cancel, rollback) with the page's token: a form's post is answered with a
//! redirect back to the page and the outcome, a post that accepts JSON with JSON.

mod board;
mod form;
mod guard;
mod page;

use std::convert::Infallible;
use std::sync::Arc;

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use shiplane::release::{Event, LaneEvent, Transition};

use crate::commands::{self, APPROVE, CANCEL, CliDeps, Operation, REJECT};
use crate::output::{errln, outln};
use crate::{Failure, Operator};
use guard::Guard;

/// The largest action body read: a form with a reason.
const MAX_BODY: usize = 16 * 1024;

/// The running dashboard: one set of clients, the operator's name, the guard.
struct Dashboard {
    deps: CliDeps,
    config: SdkConfig,
    table: String,
    actor: String,
    announced: bool,
    guard: Guard,
}

/// Serves the dashboard until the process is stopped. Checks first that the table and its
/// pipeline answer, so a wrong setting fails here, explained, rather than on the page.
pub async fn serve(
    config: &SdkConfig,
    table: &str,
    who: &Operator,
    port: u16,
    json: bool,
) -> Result<(), Failure> {
    let actor = commands::actor_name(config, who.actor.clone()).await?;
    let deps = commands::deps(config, table, &who.aws).await;
    commands::valid_pipeline(&deps.store).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => Failure::Failed(format!(
                "port {port} on 127.0.0.1 is taken (another dashboard?): choose another with --port N, or --port 0 for any free one"
            )),
            _ => Failure::Failed(format!("cannot listen on 127.0.0.1:{port}: {e}")),
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::Failed(format!("cannot read the port listened on: {e}")))?
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    if json {
        outln!("{}", json!({"url": url, "actor": actor, "table": table}));
    } else {
        outln!("shiplane dashboard: {url} (table {table}; acting as {actor}; Ctrl-C stops it)");
    }
    let dashboard = Arc::new(Dashboard {
        deps,
        config: config.clone(),
        table: table.to_string(),
        actor,
        announced: who.aws.topic.as_deref().is_some_and(|t| !t.is_empty()),
        guard: Guard::new(port).map_err(Failure::Failed)?,
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                errln!("warning: a connection could not be accepted: {e}");
                continue;
            }
        };
        let dashboard = dashboard.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let dashboard = dashboard.clone();
                async move { Ok::<_, Infallible>(dashboard.answer(req).await) }
            });
            // A browser that goes away mid-request is nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn html(status: StatusCode, body: String) -> Answer {
    respond(status, "text/html; charset=utf-8", body)
}

fn json_answer(status: StatusCode, value: serde_json::Value) -> Answer {
    let value = crate::render::rfc3339_times(value);
    respond(
        status,
        "application/json",
        serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into()),
    )
}

fn status_of(f: &Failure) -> StatusCode {
    match f {
        Failure::BadInput(_) => StatusCode::BAD_REQUEST,
        Failure::Refused(_) => StatusCode::CONFLICT,
        Failure::Failed(_)
        | Failure::Aws(_)
        | Failure::Differs
        | Failure::Ended(_)
        | Failure::TimedOut(_) => StatusCode::BAD_GATEWAY,
    }
}

fn header_str(req: &Request<Incoming>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Dashboard {
    fn frame<'a>(&'a self, said: Option<&'a str>) -> page::Frame<'a> {
        page::Frame {
            actor: &self.actor,
            token: self.guard.token(),
            announced: self.announced,
            said,
        }
    }

    /// A failure's message as the CLI would print it (AWS errors explained).
    async fn words(&self, f: Failure) -> (StatusCode, &'static str, String) {
        let status = status_of(&f);
        match f {
            Failure::Aws(raw) => (
                status,
                "failure",
                crate::diagnose::explain(&self.config, &self.table, &raw).await,
            ),
            Failure::Failed(m) => (status, "failure", m),
            Failure::BadInput(m) => (status, "usage", m),
            Failure::Refused(m) => (status, "refused", m),
            Failure::Differs => (status, "failure", String::new()),
            // `wait`'s outcomes; no button waits.
            Failure::Ended(m) | Failure::TimedOut(m) => (status, "failure", m),
        }
    }

    async fn answer(&self, req: Request<Incoming>) -> Answer {
        if let Err(guard::Refused(why)) = self.guard.check_host(header_str(&req, header::HOST)) {
            return respond(StatusCode::FORBIDDEN, "text/plain; charset=utf-8", why);
        }
        let path = req.uri().path().to_string();
        let query = form::parse(req.uri().query().unwrap_or_default());
        let said = query.get("said").map(String::as_str);
        match (req.method(), path.as_str()) {
            (&Method::GET, "/") => match board::board(&self.deps.store).await {
                Ok(b) => html(StatusCode::OK, page::board(&b, &self.frame(said))),
                Err(f) => self.problem_page(f).await,
            },
            (&Method::GET, "/api/board") => match board::board(&self.deps.store).await {
                Ok(b) => json_answer(StatusCode::OK, json!(b)),
                Err(f) => self.problem_json(f).await,
            },
            (&Method::GET, p) if p.starts_with("/releases/") => {
                match board::timeline(&self.deps.store, &p["/releases/".len()..]).await {
                    Ok(t) => html(StatusCode::OK, page::timeline(&t, &self.frame(said))),
                    Err(f) => self.problem_page(f).await,
                }
            }
            (&Method::GET, p) if p.starts_with("/api/releases/") => {
                match board::timeline(&self.deps.store, &p["/api/releases/".len()..]).await {
                    Ok(t) => json_answer(StatusCode::OK, json!(t)),
                    Err(f) => self.problem_json(f).await,
                }
            }
            (&Method::GET, "/favicon.ico") => {
                respond(StatusCode::NO_CONTENT, "text/plain", String::new())
            }
            (&Method::POST, p) if p.starts_with("/actions/") => {
                let verb = p["/actions/".len()..].to_string();
                self.act(req, &verb).await
            }
            (_, "/" | "/api/board") => respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET here; actions are POST /actions/VERB".into(),
            ),
            _ => html(
                StatusCode::NOT_FOUND,
                page::problem(&format!("nothing at {path}"), &self.frame(None)),
            ),
        }
    }

    async fn problem_page(&self, f: Failure) -> Answer {
        let (status, kind, message) = self.words(f).await;
        html(
            status,
            page::problem(&format!("{kind}: {message}"), &self.frame(None)),
        )
    }

    async fn problem_json(&self, f: Failure) -> Answer {
        let (status, kind, message) = self.words(f).await;
        json_answer(status, json!({"error": {"kind": kind, "message": message}}))
    }

    /// One button: guarded, then the engine path its CLI command takes.
    async fn act(&self, req: Request<Incoming>, verb: &str) -> Answer {
        let wants_json =
            header_str(&req, header::ACCEPT).is_some_and(|a| a.contains("application/json"));
        let origin = header_str(&req, header::ORIGIN).map(str::to_string);
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return respond(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "text/plain; charset=utf-8",
                    format!("an action's form is at most {MAX_BODY} bytes"),
                );
            }
        };
        let fields = form::parse(&String::from_utf8_lossy(&body));
        if let Err(guard::Refused(why)) = self
            .guard
            .check_action(origin.as_deref(), fields.get("token").map(String::as_str))
        {
            return if wants_json {
                json_answer(
                    StatusCode::FORBIDDEN,
                    json!({"error": {"kind": "forbidden", "message": why}}),
                )
            } else {
                respond(StatusCode::FORBIDDEN, "text/plain; charset=utf-8", why)
            };
        }
        let back = match fields.get("back").map(String::as_str).unwrap_or_default() {
            b if b.starts_with('/') && !b.starts_with("//") => b.to_string(),
            _ => "/".to_string(),
        };
        let outcome = self.run_action(verb, &fields).await;
        // The page runs until stopped: what the action measured is sent now.
        crate::metrics::publish().await;
        let said = match &outcome {
            Ok(transitions) => done(verb, transitions),
            Err(_) => String::new(),
        };
        match outcome {
            Ok(transitions) if wants_json => {
                json_answer(StatusCode::OK, json!({"transitions": transitions}))
            }
            Ok(_) => see_other(&back, &said),
            Err(f) => {
                let (status, kind, message) = self.words(f).await;
                if wants_json {
                    json_answer(status, json!({"error": {"kind": kind, "message": message}}))
                } else {
                    see_other(&back, &format!("{kind}: {message}"))
                }
            }
        }
    }

    async fn run_action(
        &self,
        verb: &str,
        fields: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<Transition>, Failure> {
        let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
        let (release, environment, service) =
            (field("release"), field("environment"), field("service"));
        let reason = || {
            let r = field("reason").trim();
            if r.is_empty() {
                Err(Failure::BadInput(format!(
                    "{verb} needs a reason: type why in the box beside the button (it is recorded in history)"
                )))
            } else {
                Ok(r.to_string())
            }
        };
        let actor = self.actor.clone();
        let operation = match verb {
            "approve" => {
                Operation::release(release, environment, &APPROVE, Event::Approved { actor })
            }
            "reject" => {
                let event = Event::Rejected {
                    actor,
                    reason: reason()?,
                };
                Operation::release(release, environment, &REJECT, event)
            }
            "cancel" => {
                let event = Event::Cancelled {
                    actor,
                    reason: reason()?,
                };
                Operation::release(release, environment, &CANCEL, event)
            }
            "rollback" => {
                let event = LaneEvent::Rollback {
                    actor,
                    reason: reason()?,
                    to: None,
                };
                Operation::lane(service, environment, event)
            }
            other => {
                return Err(Failure::BadInput(format!(
                    "no action \"{other}\"; the dashboard's actions are approve, reject, cancel and rollback"
                )));
            }
        };
        operation.apply(&self.deps).await
    }
}

/// What an action changed, in one line for the page.
fn done(verb: &str, transitions: &[Transition]) -> String {
    let moves: Vec<String> = transitions
        .iter()
        .filter(|t| t.from != t.to)
        .filter_map(|t| {
            let to = t.to?;
            Some(format!(
                "{}/{} {}{}",
                t.service,
                t.environment,
                t.from.map(|f| format!("{f} → ")).unwrap_or_default(),
                to
            ))
        })
        .collect();
    format!("{verb}: done; {}", moves.join("; "))
}

fn see_other(back: &str, said: &str) -> Answer {
    let mut r = respond(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        said.to_string(),
    );
    let location = format!("{back}?said={}", form::encode(said));
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
