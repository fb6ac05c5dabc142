//! What the measurements stand on: the subjects measured and their processes behind a
//! local Lambda Runtime API, fresh worlds in the emulator, the events sent, the statistics
//! taken, and where cargo put what is measured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shiplane_e2e::runtime_api::{Function, RuntimeApi};
use shiplane_e2e::{deployed_world, python, workspace};

/// How long to wait for a function's answers.
pub const WAIT: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub enum Subject {
    Binary(PathBuf),
    PythonPeer,
}

/// The four subjects of a run: the functions as `make build` made them, the floor built
/// the same way, and the Python peer.
pub struct Subjects {
    pub hello: Subject,
    pub image_push: Subject,
    pub deployment_events: Subject,
    pub peer: Subject,
}

impl Subjects {
    /// The bootstraps under `lambda` (`<lambda>/<function>/bootstrap`), and the peer.
    pub fn in_dir(lambda: &Path) -> Subjects {
        let bootstrap = |name: &str| Subject::Binary(lambda.join(name).join("bootstrap"));
        Subjects {
            hello: bootstrap("hello-world"),
            image_push: bootstrap("image-push"),
            deployment_events: bootstrap("deployment-events"),
            peer: Subject::PythonPeer,
        }
    }
}

pub struct Env {
    pub vars: Vec<(String, String)>,
}

impl Env {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

pub fn spawn(api: &RuntimeApi, subject: &Subject, env: &Env) -> Function {
    match subject {
        Subject::Binary(path) => api.spawn(path, "bench", &env.pairs()),
        Subject::PythonPeer => {
            let mut cmd = Command::new(python());
            cmd.args(["-m", "awslambdaric", "image_push.handler"])
                .current_dir(workspace().join("bench/python-peer"));
            api.spawn_command(cmd, "bench", &env.pairs())
        }
    }
}

/// A fresh Runtime API with a process of `subject` polling it for work.
pub async fn started(subject: &Subject, env: &Env) -> (RuntimeApi, Function) {
    let api = RuntimeApi::start().await;
    let f = spawn(&api, subject, env);
    api.first_poll(Duration::from_secs(60)).await;
    (api, f)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// (median, p90).
pub fn stats(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(|a, b| a.total_cmp(b));
    (percentile(&xs, 0.5), percentile(&xs, 0.9))
}

/// Invokes `event` and returns the milliseconds until the answer.
pub async fn timed(api: &RuntimeApi, answered: &mut usize, event: Value) -> (f64, Value) {
    let t = Instant::now();
    api.invoke(event);
    *answered += 1;
    let out = api.wait_for(*answered, WAIT).await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let o = &out[*answered - 1];
    (ms, o.result.clone().unwrap_or_else(|e| json!({"error": e})))
}

pub fn synthetic_push(p: &str, service: &str, n: usize) -> Value {
    json!({
        "version": "0", "id": format!("bench-{n}"), "detail-type": "ECR Image Action", "source": "aws.ecr",
        "account": "123456789012", "time": "2026-11-16T01:54:34Z", "region": "us-east-1", "resources": [],
        "detail": {
            "result": "SUCCESS", "repository-name": format!("{p}/{service}"),
            "image-digest": format!("sha256:{n:064x}"), "action-type": "PUSH", "image-tag": format!("v1.0.{n}"),
            "manifest-media-type": "application/vnd.docker.distribution.manifest.v2+json",
            "artifact-media-type": "application/vnd.docker.container.image.v1+json"
        }
    })
}

pub fn task_stopped_unknown(n: usize) -> Value {
    json!({
        "version": "0", "id": format!("bench-task-{n}"), "detail-type": "ECS Task State Change", "source": "aws.ecs",
        "account": "123456789012", "time": "2026-11-16T01:54:34Z", "region": "us-east-1", "resources": [],
        "detail": {
            "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/other/{n:032x}"),
            "lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "app", "exitCode": 0}]
        }
    })
}

pub struct World {
    pub p: String,
    pub env: Env,
}

/// A fresh account, table and stored pipeline in the emulator.
pub async fn world() -> World {
    let (p, acct, store) = deployed_world().await;
    let env = Env {
        vars: acct
            .function_env(&store)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into())])
            .collect(),
    };
    World { p, env }
}

/// Where cargo built this binary (`<target dir>/release/bench`): the target directory,
/// wherever CARGO_TARGET_DIR put it, holding the artifacts, variants and probes measured.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace().join("target"))
}

pub fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}
