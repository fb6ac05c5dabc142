//! Errors a person can act on, through the built `shiplane`: each AWS failure one line
//! that names the thing and the fix, never an SDK dump; refusals exit 3; `--json` errors
//! are JSON; times in `--json` are RFC 3339; a closed pipe is no panic.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use shiplane_e2e::{TempDir, fresh_store, workspace};

fn shiplane(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiplane"));
    cmd.args(args).env("SHIPLANE_ACTOR", "ana");
    for k in remove {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run shiplane")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One line, starting `error: <start>`, with nothing of the SDK's debug output.
fn one_actionable_line(o: &Output, start: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(
        err.starts_with(&format!("error: {start}")),
        "want `error: {start}…`, got:\n{err}"
    );
    for dump in ["DispatchFailure", "ConnectorError", "{ ", "Error {"] {
        assert!(!err.contains(dump), "an SDK dump ({dump}):\n{err}");
    }
}

#[test]
fn without_credentials_the_error_says_how_to_sign_in() {
    shiplane_e2e::endpoint();
    let dir = TempDir::new("shiplane-nocreds");
    let none = dir.0.join("none");
    let none = none.to_str().unwrap();
    let out = shiplane(
        &["status"],
        &[
            ("AWS_CONFIG_FILE", none),
            ("AWS_SHARED_CREDENTIALS_FILE", none),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("XDG_CONFIG_HOME", none),
        ],
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ],
    );
    one_actionable_line(&out, "no AWS credentials found: sign in");
    assert!(
        stderr(&out).contains("AWS_ACCESS_KEY_ID"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn without_a_region_the_error_says_where_to_set_it() {
    shiplane_e2e::endpoint();
    let dir = TempDir::new("shiplane-noregion");
    let none = dir.0.join("none");
    let out = shiplane(
        &["status"],
        &[
            ("AWS_CONFIG_FILE", none.to_str().unwrap()),
            ("XDG_CONFIG_HOME", none.to_str().unwrap()),
        ],
        &["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"],
    );
    one_actionable_line(&out, "no AWS region is set: export AWS_REGION=");
}

#[tokio::test]
async fn a_missing_table_or_the_wrong_region_names_the_table_and_the_region() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    // The table exists in us-east-1 (the emulator's region); asked in eu-west-1 it is not there.
    let out = shiplane(
        &["--table", &table, "status"],
        &[("AWS_REGION", "eu-west-1")],
        &[],
    );
    one_actionable_line(&out, &format!("no table \"{table}\" in eu-west-1: "));
    assert!(stderr(&out).contains("set AWS_REGION"), "{}", stderr(&out));

    // With --json: the same, as JSON on stdout.
    let out = shiplane(
        &["--json", "--table", "nope-no-such-table", "status"],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(v["error"]["kind"], "failure");
    assert_eq!(v["error"]["exit_code"], 1);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no table \"nope-no-such-table\" in us-east-1"),
        "{v}"
    );
}

/// An endpoint on 127.0.0.1 that answers every DynamoDB call as AWS does when IAM denies
/// it, for as long as the returned guard lives.
struct DenyingEndpoint {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DenyingEndpoint {
    fn start() -> DenyingEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        deny(stream);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        DenyingEndpoint { url, stop }
    }
}

impl Drop for DenyingEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn deny(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let target = "arn:aws:dynamodb:us-east-1:123456789012:table/shiplane";
    let answer = serde_json::json!({
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": format!("User: arn:aws:iam::123456789012:user/ana is not authorized to perform: dynamodb:Query on resource: {target} because no identity-based policy allows the dynamodb:Query action"),
    })
    .to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: r1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

#[test]
fn a_missing_permission_names_the_action() {
    let denying = DenyingEndpoint::start();
    let out = shiplane(
        &["status"],
        &[
            ("AWS_ENDPOINT_URL", &denying.url),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
        &[],
    );
    one_actionable_line(
        &out,
        "permission denied: your AWS identity may not call dynamodb:Query on arn:aws:dynamodb:us-east-1:123456789012:table/shiplane; ask for dynamodb:Query",
    );
}

#[tokio::test]
async fn json_output_has_rfc3339_times_and_a_closed_pipe_is_no_panic() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let example = workspace().join("infra/pipeline.example.toml");
    let out = shiplane(
        &[
            "--table",
            &table,
            "config",
            "apply",
            example.to_str().unwrap(),
        ],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = shiplane(
        &[
            "--json", "--table", &table, "pause", "api", "prod", "--reason", "freeze",
        ],
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = shiplane(&["--json", "--table", &table, "history", "api"], &[], &[]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let at = v["history"][0]["at"].as_str().expect("a string time");
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "RFC 3339 with milliseconds: {at}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n.len() == 13),
        "no epoch milliseconds left: {text}"
    );

    // The reader goes away before the output is written: quiet, no panic, no backtrace.
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["--json", "--table", &table, "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shiplane");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn usage_errors_are_json_with_json_and_help_documents_the_exit_codes() {
    let out = shiplane(&["--json", "approve"], &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("a JSON error");
    assert_eq!(v["error"]["kind"], "usage");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("required arguments"),
        "{v}"
    );
    let help = shiplane(&["--help"], &[], &[]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Exit codes: 0 ok, 1 failure")
            && text.contains("3 refused")
            && text.contains(".shiplane/config.toml"),
        "{text}"
    );
}

#[test]
fn settings_come_from_the_flag_then_the_environment_then_the_project_file() {
    shiplane_e2e::endpoint();
    let dir = TempDir::new("shiplane-settings");
    std::fs::create_dir_all(dir.0.join(".shiplane")).unwrap();
    dir.file(".shiplane/config.toml", "table = \"from-file\"\n");
    // From a subdirectory: the nearest project file up the tree applies.
    let sub = dir.0.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let run = |args: &[&str], table_env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiplane"));
        cmd.args(args)
            .current_dir(&sub)
            .env("XDG_CONFIG_HOME", dir.0.join("xdg"))
            .env_remove("SHIPLANE_TABLE");
        if let Some(t) = table_env {
            cmd.env("SHIPLANE_TABLE", t);
        }
        cmd.output().expect("run shiplane")
    };
    let named = |o: &Output, table: &str| {
        assert!(
            stderr(o).starts_with(&format!("error: no table \"{table}\"")),
            "{}",
            stderr(o)
        );
    };
    named(&run(&["status"], None), "from-file");
    named(&run(&["status"], Some("from-env")), "from-env");
    named(
        &run(&["--table", "from-flag", "status"], Some("from-env")),
        "from-flag",
    );

    // A typo in the file: exit 2, naming the file and the key.
    dir.file(".shiplane/config.toml", "tabel = \"x\"\n");
    let out = run(&["status"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(".shiplane/config.toml") && stderr(&out).contains("tabel"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_of_a_stack_that_is_not_there_says_where_it_looked() {
    shiplane_e2e::endpoint();
    let dir = TempDir::new("shiplane-init");
    let out = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["init", "--stack", "no-such-stack"])
        .current_dir(&dir.0)
        .env("XDG_CONFIG_HOME", dir.0.join("xdg"))
        .output()
        .expect("run shiplane");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("no stack \"no-such-stack\" in us-east-1: "),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.0.join(".shiplane").exists(),
        "nothing written when the stack is not found"
    );
}
