//! What fresh processes cost: cold starts of the subjects and of the release-profile
//! variants, SDK client construction, and aws-lc's first random draw.

use std::process::Command;
use std::time::{Duration, Instant};

use shiplane_e2e::runtime_api::RuntimeApi;

use crate::figures::{CLIENTS, Clients, ColdStarts, Variant};
use crate::harness::{Env, Subject, Subjects, file_size, spawn, stats, target_dir};

/// Process start → first poll for work, `runs` times for each subject, taken in turns
/// (one start of each, then again) so that drift in the machine's load falls on every
/// subject alike. One list of milliseconds per subject, in order.
async fn cold_starts(subjects: &[&Subject], env: &Env, runs: usize) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); subjects.len()];
    for _ in 0..runs {
        for (i, subject) in subjects.iter().enumerate() {
            let api = RuntimeApi::start().await;
            let t0 = tokio::time::Instant::now();
            let f = spawn(&api, subject, env);
            let polled = api.first_poll(Duration::from_secs(60)).await;
            out[i].push((polled - t0).as_secs_f64() * 1000.0);
            drop(f);
        }
    }
    out
}

/// [`cold_starts`] of the four subjects, in turns: the floor, image-push,
/// deployment-events, the peer.
pub async fn subjects_cold(s: &Subjects, env: &Env, runs: usize) -> ColdStarts {
    let all = [&s.hello, &s.image_push, &s.deployment_events, &s.peer];
    let each: [Vec<f64>; 4] = cold_starts(&all, env, runs)
        .await
        .try_into()
        .unwrap_or_else(|_| unreachable!("one list per subject"));
    let [floor, image_push, deployment_events, peer] = each.map(stats);
    ColdStarts {
        floor,
        image_push,
        deployment_events,
        peer,
    }
}

/// The child side of [`client_construction`]: in this fresh process, builds the SDK
/// configuration as the functions do, then each client once, and prints the milliseconds
/// each took.
pub async fn client_construction_child() {
    let settings = shiplane::settings::Settings {
        table: "bench".into(),
        topic_arn: "arn:aws:sns:us-east-1:123456789012:bench".into(),
        chatbot_topic_arn: None,
        hook_function: "bench".into(),
        schedule_group: "bench".into(),
        promote_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
        scheduler_role_arn: "arn:aws:iam::123456789012:role/bench".into(),
        region: "us-east-1".into(),
        native_tls_roots: false,
        aws_attempt_timeout: shiplane::settings::DEFAULT_AWS_ATTEMPT_TIMEOUT,
    };
    let config = shiplane::sdk::lambda_sdk_config(&settings).await;
    let mut ms = Vec::new();
    let dynamodb = built(&mut ms, || aws_sdk_dynamodb::Client::new(&config));
    let ecs = built(&mut ms, || aws_sdk_ecs::Client::new(&config));
    let codedeploy = built(&mut ms, || aws_sdk_codedeploy::Client::new(&config));
    let sns = built(&mut ms, || aws_sdk_sns::Client::new(&config));
    drop((dynamodb, ecs, codedeploy, sns));
    let out: Vec<String> = ms
        .iter()
        .map(|d| format!("{:.4}", d.as_secs_f64() * 1000.0))
        .collect();
    println!("{}", out.join(" "));
}

/// What `build` returns, the time it took pushed to `ms`.
fn built<T>(ms: &mut Vec<Duration>, build: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let client = build();
    ms.push(t.elapsed());
    client
}

/// What a function's clients cost to build, the first time in a process (the work
/// `OnFirstUse` leaves to the first event that calls each service): median milliseconds per
/// client, in [`CLIENTS`] order, and of all four together, over `runs` fresh processes.
pub fn client_construction(runs: usize) -> Clients {
    let exe = std::env::current_exe().expect("the bench binary's own path");
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); CLIENTS.len()];
    let mut totals = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&exe)
            .arg("--client-construction")
            .output()
            .expect("re-running the bench binary");
        let line = String::from_utf8_lossy(&out.stdout);
        let ms: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert_eq!(
            ms.len(),
            CLIENTS.len(),
            "client construction printed {line:?}"
        );
        for (i, x) in ms.iter().enumerate() {
            per[i].push(*x);
        }
        totals.push(ms.iter().sum());
    }
    Clients {
        each: per.into_iter().map(|xs| stats(xs).0).collect(),
        total: stats(totals).0,
    }
}

/// Median microseconds of aws-lc's first random draw in a fresh process, over `runs`
/// runs of the probe that `bench/profiles.sh` built in `<target dir>/entropy-probe/<mode>/`;
/// None when it was not built.
pub fn first_random_draw(mode: &str, runs: usize) -> Option<f64> {
    let probe = target_dir()
        .join("entropy-probe")
        .join(mode)
        .join("entropy-probe");
    if !probe.exists() {
        return None;
    }
    let mut xs = Vec::new();
    for _ in 0..runs {
        let out = Command::new(&probe).output().ok()?;
        xs.push(String::from_utf8_lossy(&out.stdout).trim().parse().ok()?);
    }
    Some(stats(xs).0)
}

/// The release-profile variants, if `bench/profiles.sh` built them
/// (`<target dir>/profiles/<variant>/{image-push,hello-world}`): sizes, and cold starts of
/// image-push and hello-world in turns, `runs` each.
pub async fn variants(env: &Env, runs: usize) -> Vec<Variant> {
    let mut variants = Vec::new();
    let profiles = target_dir().join("profiles");
    let Ok(dir) = std::fs::read_dir(&profiles) else {
        return variants;
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let bin = profiles.join(&name).join("image-push");
        let hello_bin = profiles.join(&name).join("hello-world");
        if !bin.exists() {
            continue;
        }
        eprintln!("profile variant {name}");
        let pair = [
            Subject::Binary(bin.clone()),
            Subject::Binary(hello_bin.clone()),
        ];
        let mut xs = cold_starts(&[&pair[0], &pair[1]], env, runs).await;
        let hello_cold = stats(xs.pop().unwrap_or_default());
        let image_push_cold = stats(xs.pop().unwrap_or_default());
        variants.push(Variant {
            name,
            image_push_size: file_size(&bin),
            hello_size: file_size(&hello_bin),
            image_push_cold,
            hello_cold,
        });
    }
    variants
}
