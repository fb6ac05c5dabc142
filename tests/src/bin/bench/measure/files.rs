//! Figures read rather than run: the artifacts' sizes, criterion's medians of the core
//! decision, and the machine the run is on.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use shiplane_e2e::{python, workspace};

use crate::figures::{Artifact, Decision};
use crate::harness::{file_size, target_dir};

/// Every function the stack deploys (functions/<name>), in name order, with the sizes of
/// its bootstrap and zip under `lambda` (`<lambda>/<name>/bootstrap`, `<name>.zip`).
pub fn artifacts(lambda: &Path) -> Vec<Artifact> {
    let mut functions: Vec<String> = std::fs::read_dir(workspace().join("functions"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    functions.sort();
    functions
        .into_iter()
        .map(|f| Artifact {
            bootstrap: file_size(&lambda.join(&f).join("bootstrap")),
            zip: file_size(&lambda.join(&f).join(format!("{f}.zip"))),
            function: f,
        })
        .collect()
}

fn criterion_median_ns(name: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(name)
        .join("new/estimates.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The core decision's benchmarks, as criterion left them (`make bench` runs
/// `cargo bench -p shiplane --bench decision` before the bench).
pub fn decision() -> Decision {
    Decision {
        push: criterion_median_ns("decision_push_to_free_lane_1000_services"),
        parts: [
            "decision_part_parse_event",
            "decision_part_lookup_service_and_policy",
            "decision_part_new_release_and_apply",
        ]
        .into_iter()
        .filter_map(|part| Some((part, criterion_median_ns(part)?)))
        .collect(),
        parse: criterion_median_ns("pipeline_parse_and_validate_1000_services"),
    }
}

/// CPU, cores, memory, kernel, rustc and Python of this machine, in one line.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    let kernel = stdout_of(Command::new("uname").arg("-sr"));
    let rustc = stdout_of(Command::new("rustc").arg("--version"));
    let py = stdout_of(Command::new(python()).arg("--version"));
    format!(
        "{cpu}, {cores} cores, {:.1} GiB; {kernel}; {rustc}; {py}",
        mem as f64 / 1024.0 / 1024.0
    )
}

/// What `cmd` prints, trimmed; empty when it cannot run.
fn stdout_of(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
