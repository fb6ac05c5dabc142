//! The checks of a blue-green stage: the lifecycle hook each runs in and what it probes.

use std::time::Duration;

use super::Problems;
use crate::pipeline::raw::RawCheck;
use crate::pipeline::{Check, HttpProbe, LifecycleHook, Probe, parse_duration};

const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_LAMBDA_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// `path` is where the list is written: `….checks`.
pub(super) fn checks(path: &str, raw: &[RawCheck], p: &mut Problems) -> Vec<Check> {
    let mut out = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let cpath = format!("{path}.{i}");
        let hook = hook(&cpath, c, p);
        let probe = one_probe(&cpath, c, p);
        if c.http.is_none() {
            http_keys_without_http(&cpath, c, p);
        }
        let default_timeout = match probe {
            Some(Probe::Lambda { .. }) => DEFAULT_LAMBDA_CHECK_TIMEOUT,
            Some(Probe::Http(ref h)) => h.latency_budget * (h.retries + 1) + h.interval * h.retries,
            _ => DEFAULT_CHECK_TIMEOUT,
        };
        let timeout = duration(&cpath, "timeout", c.timeout.as_deref(), default_timeout, p);
        if let (Some(hook), Some(probe)) = (hook, probe) {
            out.push(Check {
                name: c.name.clone().unwrap_or_else(|| format!("check-{i}")),
                hook,
                probe,
                timeout,
            });
        }
    }
    out
}

/// The lifecycle hook a check runs in; `cpath` is the check's, `….checks.<i>`.
fn hook(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<LifecycleHook> {
    match c.hook.as_deref() {
        Some(h) => LifecycleHook::from_config_name(h).or_else(|| {
            let names: Vec<_> = LifecycleHook::ALL.iter().map(|h| h.config_name()).collect();
            p.add(
                format!("{cpath}.hook"),
                format!(
                    "\"{h}\" is not a lifecycle hook; write one of {}",
                    names.join(", ")
                ),
            );
            None
        }),
        None => {
            p.add(
                format!("{cpath}.hook"),
                "missing; name the lifecycle hook this check runs in, e.g. \"after_allow_test_traffic\"",
            );
            None
        }
    }
}

/// A check's duration setting `key`: `default` when it is not set, or not a duration.
fn duration(
    cpath: &str,
    key: &str,
    value: Option<&str>,
    default: Duration,
    p: &mut Problems,
) -> Duration {
    value.map_or(default, |t| {
        parse_duration(t).unwrap_or_else(|e| {
            p.add(format!("{cpath}.{key}"), e);
            default
        })
    })
}

/// What a check probes, when it names exactly one of the kinds.
fn one_probe(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<Probe> {
    let kinds = [
        c.http.is_some(),
        c.alarms == Some(true),
        c.ecs_steady == Some(true),
        c.lambda.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        0 => {
            p.add(
                format!("{cpath}.http"),
                "missing; a check is one of http = \"URL\", alarms = true, ecs_steady = true or lambda = \"FUNCTION\"",
            );
            None
        }
        1 => probe(cpath, c, p),
        _ => {
            p.add(
                cpath,
                "more than one of http, alarms, ecs_steady and lambda; make each its own check",
            );
            None
        }
    }
}

/// The keys of an http check, set on a check of another kind.
fn http_keys_without_http(cpath: &str, c: &RawCheck, p: &mut Problems) {
    for (key, set) in [
        ("method", c.method.is_some()),
        ("headers", c.headers.is_some()),
        ("expect_status", c.expect_status.is_some()),
        ("body_contains", c.body_contains.is_some()),
        ("json_pointer", c.json_pointer.is_some()),
        ("json_equals", c.json_equals.is_some()),
        ("latency", c.latency.is_some()),
        ("retries", c.retries.is_some()),
        ("interval", c.interval.is_some()),
    ] {
        if set {
            p.add(format!("{cpath}.{key}"), "applies to http checks only");
        }
    }
}

/// The probe of a check that names exactly one kind.
fn probe(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<Probe> {
    if c.alarms == Some(true) {
        return Some(Probe::Alarms);
    }
    if c.ecs_steady == Some(true) {
        return Some(Probe::EcsSteady);
    }
    if let Some(function) = &c.lambda {
        if function.is_empty() {
            p.add(format!("{cpath}.lambda"), "name the function to invoke");
            return None;
        }
        return Some(Probe::Lambda {
            function: function.clone(),
        });
    }
    let url = c.http.as_deref()?;
    http_probe(cpath, c, url, p)
}

/// The request of an http check to `url`, and what its answer must be. Each helper below
/// records its problem and gives `None` when its setting is wrong.
fn http_probe(cpath: &str, c: &RawCheck, url: &str, p: &mut Problems) -> Option<Probe> {
    let mut ok = true;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        p.add(
            format!("{cpath}.http"),
            format!("\"{url}\" is not an http(s) URL"),
        );
        ok = false;
    }
    let method = method(cpath, c, p);
    let expect_status = expect_status(cpath, c, p);
    let json_pointer = json_pointer(cpath, c, p);
    let retries = retries(cpath, c, p);
    let latency_budget = duration(
        cpath,
        "latency",
        c.latency.as_deref(),
        DEFAULT_CHECK_TIMEOUT,
        p,
    );
    let interval = duration(
        cpath,
        "interval",
        c.interval.as_deref(),
        Duration::from_secs(5),
        p,
    );
    let (true, Some(method), Some(expect_status), Some(json_pointer), Some(retries)) =
        (ok, method, expect_status, json_pointer, retries)
    else {
        return None;
    };
    Some(Probe::Http(HttpProbe {
        method,
        url: url.to_string(),
        headers: c.headers.clone().unwrap_or_default(),
        expect_status,
        body_contains: c.body_contains.clone(),
        json_pointer,
        latency_budget,
        retries,
        interval,
    }))
}

fn method(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<String> {
    let method = c
        .method
        .clone()
        .unwrap_or_else(|| "GET".into())
        .to_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        p.add(
            format!("{cpath}.method"),
            format!("\"{method}\" is not an HTTP method; write GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
        );
        return None;
    }
    Some(method)
}

fn expect_status(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<u16> {
    match c.expect_status {
        None => Some(200),
        Some(s) if (100..=599).contains(&s) => u16::try_from(s).ok(),
        Some(s) => {
            p.add(
                format!("{cpath}.expect_status"),
                format!("{s} is not an HTTP status; use 100-599"),
            );
            None
        }
    }
}

/// Where the JSON body is looked at and the value it must hold there: `Some(None)` when
/// the check sets neither.
fn json_pointer(
    cpath: &str,
    c: &RawCheck,
    p: &mut Problems,
) -> Option<Option<(String, serde_json::Value)>> {
    match (&c.json_pointer, &c.json_equals) {
        (None, None) => Some(None),
        (Some(ptr), Some(value)) if ptr.is_empty() || ptr.starts_with('/') => Some(Some((
            ptr.clone(),
            serde_json::to_value(value).unwrap_or_default(),
        ))),
        (Some(ptr), Some(_)) => {
            p.add(
                format!("{cpath}.json_pointer"),
                format!("\"{ptr}\" is not a JSON pointer; start it with '/', e.g. \"/status\""),
            );
            None
        }
        (Some(_), None) => {
            p.add(
                format!("{cpath}.json_equals"),
                "missing; give the value json_pointer must equal",
            );
            None
        }
        (None, Some(_)) => {
            p.add(
                format!("{cpath}.json_pointer"),
                "missing; say where json_equals is looked for",
            );
            None
        }
    }
}

fn retries(cpath: &str, c: &RawCheck, p: &mut Problems) -> Option<u32> {
    match c.retries {
        None => Some(0),
        Some(r) if (0..=20).contains(&r) => u32::try_from(r).ok(),
        Some(r) => {
            p.add(format!("{cpath}.retries"), format!("{r} is not 0-20"));
            None
        }
    }
}
