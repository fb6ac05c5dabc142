//! `shiplane dashboard` in a real headless browser (Debian's `chromium`; `make browser`
//! installs it) against the world `make demo` leaves: the demo's story plays, then a longer
//! dev bake is applied and api:v6 deploys and bakes with v7 queued behind it. The browser
//! renders the pipeline view and a release's timeline: the test reads the DOM as rendered
//! and checks each screenshot is a real picture (decoded: the size asked for, not blank).
//! The approve button is driven through the page's own form endpoint: without the page's
//! token it is refused (403) and nothing moves; with it the release deploys.
//!
//! `SHIPLANE_UPDATE_SCREENSHOTS=1` copies the screenshots to docs/ (the ones checked in).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use shiplane::aws::{CodeDeployHooks, HookStatus};
use shiplane::checks::AwsChecker;
use shiplane::engine::HookInvocation;
use shiplane::pipeline::LifecycleHook;
use shiplane::release::{ReleaseId, StageState, Timestamp};
use shiplane::store::{DynamoStore, ReleaseStore};
use shiplane_e2e::check_server::CheckServer;
use shiplane_e2e::{Account, TempDir};

const WIDTH: u32 = 1360;
const HEIGHT: u32 = 1000;

/// A binary built beside the demo (cargo builds every package's binaries for the tests).
fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_demo")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p shiplane-cli` (or the whole workspace's tests)",
        path.display()
    );
    path
}

/// Debian's chromium, or SHIPLANE_CHROMIUM; a clear failure when there is none.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPLANE_CHROMIUM") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("chromium");
        if p.exists() {
            return p;
        }
    }
    panic!(
        "no chromium on PATH: run `make browser` (as root it installs Debian's chromium; else \
         `sudo apt-get install --no-install-recommends chromium`), or set SHIPLANE_CHROMIUM"
    )
}

/// The dashboard process, stopped when dropped.
struct Dashboard {
    child: Child,
    url: String,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dashboard(table: &str, account: &Account) -> Dashboard {
    let mut child = Command::new(sibling("shiplane"))
        .args(["--json", "--table", table, "dashboard", "--port", "0"])
        .env("SHIPLANE_ACTOR", "ana (on call)")
        .env("SHIPLANE_TOPIC_ARN", &account.topic_arn)
        .env("SHIPLANE_HOOK_FUNCTION", "shiplane-deploy-hook")
        .env("SHIPLANE_SCHEDULE_GROUP", &account.schedule_group)
        .env(
            "SHIPLANE_PROMOTE_FUNCTION_ARN",
            &account.promote_function_arn,
        )
        .env("SHIPLANE_SCHEDULER_ROLE_ARN", &account.scheduler_role_arn)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shiplane dashboard");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut line)
        .expect("read the dashboard's first line");
    let said: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the dashboard's first line is no JSON ({e}): {line:?}"));
    let url = said["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{said}");
    Dashboard { child, url }
}

/// Chromium, headless, with a profile of its own that is removed afterwards.
fn browse(args: &[&str], url: &str) -> String {
    let profile = TempDir::new("shiplane-chromium");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--force-device-scale-factor=1",
            &format!("--window-size={WIDTH},{HEIGHT}"),
            &format!("--user-data-dir={}", profile.0.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} {url} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page's text as the browser rendered it: its DOM with the markup taken out.
fn rendered_text(dom: &str) -> String {
    let mut dom = dom.to_string();
    for tag in ["style", "script"] {
        while let Some(start) = dom.find(&format!("<{tag}")) {
            let end = dom[start..]
                .find(&format!("</{tag}>"))
                .map_or(dom.len(), |e| start + e + tag.len() + 3);
            dom.replace_range(start..end, " ");
        }
    }
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&amp;", "&")
        .replace("&gt;", ">")
        .replace("&lt;", "<");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A PNG decoded to RGBA rows: just what chromium writes (8-bit RGB or RGBA, no interlace).
struct Picture {
    width: u32,
    height: u32,
    pixels: Vec<[u8; 4]>,
}

fn decode_png(bytes: &[u8]) -> Picture {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut width, mut height, mut channels) = (0u32, 0u32, 0usize);
    let mut data = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let body = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(body[0..4].try_into().unwrap());
                height = u32::from_be_bytes(body[4..8].try_into().unwrap());
                assert_eq!(body[8], 8, "bit depth");
                channels = match body[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other} is not what chromium writes"),
                };
                assert_eq!(body[12], 0, "interlaced");
            }
            b"IDAT" => data.extend_from_slice(body),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .read_to_end(&mut raw)
        .expect("inflate the image data");
    let stride = width as usize * channels;
    assert_eq!(raw.len(), (stride + 1) * height as usize, "image data size");
    let mut rows: Vec<Vec<u8>> = Vec::new();
    for y in 0..height as usize {
        let filter = raw[y * (stride + 1)];
        let mut row = raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)].to_vec();
        let prev = rows.last().cloned().unwrap_or_else(|| vec![0; stride]);
        for i in 0..stride {
            let a = if i >= channels {
                row[i - channels] as i32
            } else {
                0
            };
            let b = prev[i] as i32;
            let c = if i >= channels {
                prev[i - channels] as i32
            } else {
                0
            };
            let add = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                4 => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            row[i] = (row[i] as i32 + add) as u8;
        }
        rows.push(row);
    }
    let pixels = rows
        .iter()
        .flat_map(|row| {
            row.chunks(channels)
                .map(|p| [p[0], p[1], p[2], if channels == 4 { p[3] } else { 255 }])
                .collect::<Vec<_>>()
        })
        .collect();
    Picture {
        width,
        height,
        pixels,
    }
}

/// Takes a screenshot of `url` and checks it is the size asked for and a real picture: many
/// colours, and a good share of it not the background.
fn screenshot(url: &str, name: &str, dir: &TempDir) -> PathBuf {
    let path = dir.0.join(name);
    browse(&[&format!("--screenshot={}", path.display())], url);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let picture = decode_png(&bytes);
    assert_eq!(
        (picture.width, picture.height),
        (WIDTH, HEIGHT),
        "{name}: the window size asked for"
    );
    let mut counts = std::collections::HashMap::new();
    for p in &picture.pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().max().copied().unwrap_or_default();
    let drawn = 1.0 - background as f64 / picture.pixels.len() as f64;
    assert!(
        counts.len() > 50,
        "{name}: only {} colours: blank?",
        counts.len()
    );
    assert!(drawn > 0.15, "{name}: {:.0}% drawn: blank?", drawn * 100.0);
    if std::env::var_os("SHIPLANE_UPDATE_SCREENSHOTS").is_some() {
        std::fs::copy(&path, shiplane_e2e::workspace().join("docs").join(name))
            .expect("copy the screenshot to docs/");
    }
    path
}

/// One HTTP/1.1 request to the dashboard; its status, headers and body.
fn request(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connect to the dashboard");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn state(store: &DynamoStore, id: &ReleaseId, env: &str) -> Option<StageState> {
    store
        .release(id)
        .await
        .expect("read the release")
        .and_then(|r| r.item.state_in(env))
}

async fn release_tagged(store: &DynamoStore, service: &str, tag: &str) -> ReleaseId {
    store
        .releases_of_service(service, 50)
        .await
        .expect("list the releases")
        .into_iter()
        .find(|r| r.tags.iter().any(|t| t == tag))
        .map(|r| r.id)
        .unwrap_or_else(|| panic!("no {service}:{tag} release"))
}

#[tokio::test]
async fn the_dashboard_renders_the_demos_world_in_a_browser_and_its_approve_button_moves_the_release()
 {
    // The demo's story, as `make demo` plays it; it says where it happened.
    let p = shiplane_e2e::unique_prefix();
    let dir = TempDir::new("shiplane-dashboard");
    let world_file = dir.0.join("world.json");
    let demo = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env("SHIPLANE_DEMO_PREFIX", &p)
        .env("SHIPLANE_DEMO_WORLD", &world_file)
        .env_remove("SHIPLANE_DEMO_BREAK")
        .output()
        .expect("run the demo");
    assert!(
        demo.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&demo.stdout),
        String::from_utf8_lossy(&demo.stderr)
    );
    let world: Value =
        serde_json::from_str(&std::fs::read_to_string(&world_file).expect("the demo's world"))
            .expect("the world as JSON");
    let text = |k: &str| world[k].as_str().unwrap_or_default().to_string();
    let account = Account {
        topic_arn: text("topic_arn"),
        queue_url: text("queue_url"),
        schedule_group: text("schedule_group"),
        promote_function_arn: text("promote_function_arn"),
        scheduler_role_arn: text("scheduler_role_arn"),
    };
    let config = shiplane_e2e::aws_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), text("table"));

    // The story goes on: dev's bake is made 30 minutes (and its health check points at a
    // service under test that is up; the demo's stopped with it), api:v6 deploys there, its
    // hook's check passes, it bakes, and v7 queues behind it.
    let service_under_test = CheckServer::start().await;
    shiplane_e2e::edit_pipeline(&store, |s| {
        s.lines()
            .map(|line| match line {
                "bake = \"5s\"" => "bake = \"30m\"".to_string(),
                l if l.starts_with("http = \"http://127.0.0.1:") => {
                    format!("http = \"{}/health\"", service_under_test.base)
                }
                l => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
    .await;
    let aws = shiplane_e2e::aws_adapters(&account).await;
    let engine = aws.engine(&store);
    let v6 = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v6"),
    )
    .await;
    let hook = HookInvocation {
        deployment_id: shiplane_e2e::deployment_of(&store, &v6, "dev").await,
        execution_id: format!("{p}-v6-dev"),
        hook: Some(LifecycleHook::AfterAllowTestTraffic),
    };
    let answer = engine
        .on_hook(
            &AwsChecker::new(&config),
            &CodeDeployHooks::new(aws_sdk_codedeploy::Client::new(&config)),
            &hook,
            tokio::time::Instant::now() + std::time::Duration::from_secs(30),
            Timestamp::now(),
        )
        .await;
    assert_eq!(answer.status, HookStatus::Succeeded, "{answer:?}");
    shiplane_e2e::deployment_succeeds(&engine, &v6, "dev", Timestamp::now()).await;
    assert_eq!(state(&store, &v6, "dev").await, Some(StageState::Baking));
    let v7 = shiplane_e2e::release_from_push(
        &engine,
        &shiplane_e2e::image_push(&format!("{p}/api"), "v7"),
    )
    .await;
    assert_eq!(state(&store, &v7, "dev").await, Some(StageState::Queued));
    let v5 = release_tagged(&store, "api", "v5").await;
    assert_eq!(
        state(&store, &v5, "staging").await,
        Some(StageState::AwaitingApproval)
    );

    let dashboard = start_dashboard(store.table(), &account);
    let url = dashboard.url.clone();

    // The pipeline view, as the browser renders it.
    let dom = browse(&["--dump-dom"], &url);
    let page = rendered_text(&dom);
    for expected in [
        "acting as ana (on call)",
        "api blue-green",
        "etl task",
        "tiles rolling",
        "baking",
        "bake ends in 29m",
        "queued",
        "awaiting approval",
        "Approve v5",
        &format!("{p}-api-dev-5xx OK"),
        "✔ health",
        "known good v1",
    ] {
        assert!(
            page.contains(expected),
            "the board lacks {expected:?}:\n{page}"
        );
    }
    // Lanes in promotion order: dev, then staging, then prod.
    let (d, s, pr) = (
        page.find(" dev "),
        page.find(" staging "),
        page.find(" prod "),
    );
    assert!(d < s && s < pr, "{page}");
    let shots = TempDir::new("shiplane-shots");
    screenshot(&url, "dashboard-pipeline.png", &shots);

    // The approve button, through the page's own endpoint.
    let token = dom
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page embeds its token")
        .to_string();
    assert_eq!(token.len(), 64);
    let fields = [
        ("release", v5.as_str()),
        ("environment", "staging"),
        ("service", "api"),
    ];
    let origin = url.trim_end_matches('/');
    let (status, _, body) = request(
        &url,
        "POST",
        "/actions/approve",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin),
        ],
        &form(&fields),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("needs the page's token"), "{body}");
    let mut forged = fields.to_vec();
    forged.push(("token", &token));
    let (status, _, body) = request(
        &url,
        "POST",
        "/actions/approve",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://evil.example"),
        ],
        &form(&forged),
    );
    assert_eq!(
        status, 403,
        "another site's page, even with the token: {body}"
    );
    assert_eq!(
        state(&store, &v5, "staging").await,
        Some(StageState::AwaitingApproval),
        "a refused post changes nothing"
    );
    let (status, head, body) = request(
        &url,
        "POST",
        "/actions/approve",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", origin),
        ],
        &form(&forged),
    );
    assert_eq!(status, 303, "{head}\n{body}");
    assert!(
        head.to_lowercase().contains("location: /?said=approve"),
        "{head}"
    );
    assert_eq!(
        state(&store, &v5, "staging").await,
        Some(StageState::Deploying)
    );
    // Where the redirect leads, the browser shows what the button did.
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .expect("a Location");
    let page = rendered_text(&browse(&["--dump-dom"], &format!("{origin}{location}")));
    assert!(
        page.contains("approve: done; api/staging awaiting_approval → deploying"),
        "{page}"
    );
    let approved = store
        .history_of_release(&v5)
        .await
        .expect("v5's history")
        .into_iter()
        .find(|t| t.cause.as_str() == "approved" && t.environment == "staging")
        .expect("an approval in v5's history");
    assert_eq!(approved.actor.as_deref(), Some("ana (on call)"));
    // Approving again: the engine refuses, as the CLI does (409 for a script).
    let (status, _, body) = request(
        &url,
        "POST",
        "/actions/approve",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ],
        &form(&forged),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("its stage there is deploying"), "{body}");
    // A name that is not this server (DNS rebinding) gets nothing.
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut rebound = std::net::TcpStream::connect(host).unwrap();
    rebound
        .write_all(b"GET /api/board HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    rebound.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    // The JSON mirrors the page.
    let (status, _, body) = request(&url, "GET", "/api/board", &[], "");
    assert_eq!(status, 200);
    let board: Value = serde_json::from_str(&body).expect("the board as JSON");
    let api = board["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "api"))
        .expect("api on the board");
    let dev = &api["lanes"][0];
    assert_eq!(dev["environment"], "dev");
    assert_eq!(dev["in_flight"]["id"], v6.as_str());
    assert_eq!(dev["in_flight"]["state"], "baking");
    assert_eq!(dev["queued"]["id"], v7.as_str());
    assert!(dev["in_flight_stage"]["bake_until"].is_string(), "{dev}");
    assert_eq!(api["lanes"][1]["in_flight"]["state"], "deploying");

    // v5's timeline: its whole story, the approval by the operator included.
    let timeline_url = format!("{url}releases/{v5}");
    let page = rendered_text(&browse(&["--dump-dom"], &timeline_url));
    for expected in [
        "api v5",
        "Timeline",
        "arrived",
        "restarted",
        "cleaned_up",
        "check_passed",
        "bake_elapsed",
        "awaiting approval → deploying",
        "approved ana (on call)",
    ] {
        assert!(
            page.contains(expected),
            "the timeline lacks {expected:?}:\n{page}"
        );
    }
    screenshot(&timeline_url, "dashboard-timeline.png", &shots);
    drop(dashboard);
}
