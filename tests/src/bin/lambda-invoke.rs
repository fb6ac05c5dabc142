//! Runs a Lambda function binary behind a local Runtime API and delivers events to it, as
//! Lambda would: `lambda-invoke --function PATH [--qualifier ALIAS] [--env K=V]...
//! EVENT.json...` (`-` reads one event from stdin). `--qualifier` invokes through an alias
//! (the deploy-hook's per-hook aliases). Prints one JSON line per invocation; exits 1 if
//! any returned an error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use shiplane_e2e::runtime_api::RuntimeApi;

fn usage() -> ExitCode {
    eprintln!(
        "usage: lambda-invoke --function PATH [--name NAME] [--qualifier ALIAS] [--env KEY=VALUE]... EVENT.json|-..."
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut function, mut name, mut env, mut events) =
        (None, "function".to_string(), Vec::new(), Vec::new());
    let mut qualifier: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--function" => function = args.next().map(PathBuf::from),
            "--name" => name = args.next().unwrap_or(name),
            "--qualifier" => qualifier = args.next(),
            "--env" => match args.next().and_then(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            }) {
                Some(kv) => env.push(kv),
                None => return usage(),
            },
            path => {
                let text = if path == "-" {
                    std::io::read_to_string(std::io::stdin())
                } else {
                    std::fs::read_to_string(path)
                };
                match text.map(|t| serde_json::from_str::<Value>(&t)) {
                    Ok(Ok(v)) => events.push(v),
                    Ok(Err(e)) => {
                        eprintln!("{path}: not JSON: {e}");
                        return ExitCode::from(2);
                    }
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
        }
    }
    let Some(function) = function else {
        return usage();
    };
    if events.is_empty() {
        return usage();
    }
    let api = RuntimeApi::start().await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let running = api.spawn(&function, &name, &env);
    let mut failed = false;
    for (n, event) in events.into_iter().enumerate() {
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
        let arn = match &qualifier {
            Some(q) => format!("{arn}:{q}"),
            None => arn,
        };
        api.invoke_as(event, &arn, Duration::from_secs(60));
        let outcomes = api.wait_for(n + 1, Duration::from_secs(120)).await;
        let o = &outcomes[n];
        failed |= o.result.is_err();
        let line = match &o.result {
            Ok(v) => json!({"request": o.request_id, "ok": true, "response": v}),
            Err(e) => json!({"request": o.request_id, "ok": false, "error": e}),
        };
        println!("{line}");
    }
    drop(running);
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
