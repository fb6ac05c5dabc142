//! docs/cli.md's by-hand walk-through, run as written against the local AWS, so the
//! document a newcomer follows cannot drift from what the CLI does.

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use shiplane_e2e::{TempDir, python, workspace};

/// The ```sh block that follows `<!-- walkthrough: NAME -->` in docs/cli.md.
fn block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- walkthrough: {name} -->");
    let after = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/cli.md has no {marker}"))
        .1;
    let body = after
        .split_once("```sh\n")
        .expect("a ```sh block after the marker")
        .1;
    body.split_once("```")
        .expect("the block's end")
        .0
        .to_string()
}

#[test]
fn the_walkthrough_in_docs_cli_md_runs_as_written() {
    let emulator = shiplane_e2e::endpoint();
    let doc = std::fs::read_to_string(workspace().join("docs/cli.md")).expect("docs/cli.md");

    // The setup block points at the local AWS the way with-emulator.sh does (the test's
    // emulator is on another port) and runs the CLI of this checkout.
    let setup = block(&doc, "setup");
    assert!(
        setup.contains("alias shiplane='cargo run -q --locked -p shiplane-cli --'"),
        "{setup}"
    );
    for var in [
        "AWS_ENDPOINT_URL=http://127.0.0.1:4566",
        "AWS_REGION=us-east-1",
        "AWS_ACCESS_KEY_ID=testing",
        "AWS_SECRET_ACCESS_KEY=testing",
    ] {
        assert!(setup.contains(var), "setup should export {var}:\n{setup}");
    }

    // The walk-through runs at the root of a project: `infra/` and `.venv/` as in the
    // repository, `shiplane` on the PATH, no settings but those it writes.
    let dir = TempDir::new("shiplane-walkthrough");
    let venv = python()
        .parent()
        .and_then(Path::parent)
        .expect("the venv of the project's python")
        .to_path_buf();
    std::os::unix::fs::symlink(workspace().join("infra"), dir.0.join("infra")).unwrap();
    std::os::unix::fs::symlink(&venv, dir.0.join(".venv")).unwrap();
    let bin = dir.0.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_shiplane"), bin.join("shiplane")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let script = block(&doc, "run");
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &script])
        .current_dir(&dir.0)
        .env("PATH", path)
        .env("AWS_ENDPOINT_URL", &emulator)
        .env("XDG_CONFIG_HOME", dir.0.join("xdg"))
        .env("SHIPLANE_ACTOR", "walkthrough");
    for (k, _) in std::env::vars() {
        if k.starts_with("SHIPLANE_") && k != "SHIPLANE_ACTOR" {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walk-through stopped:\n{stdout}\n{stderr}"
    );

    let settings = std::fs::read_to_string(dir.0.join(".shiplane/config.toml"))
        .expect("init wrote the project file");
    assert!(
        settings.contains("schedule_group = \"shiplane-bake\""),
        "{settings}"
    );
    for expected in [
        "wrote .shiplane/config.toml from stack shiplane",
        "applied pipeline version 1 (3 services) as walkthrough",
        "error: api: CloudWatch alarm api-prod-latency does not exist",
        "exit code 1",
        "awaiting_approval",
        "exit code 3",
        "release etl@20261207-abc1234 (",
        "etl@20261207-abc1234 reached succeeded in prod",
        "total ",
        "cancelled",
        "paused",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
    assert!(
        stderr.contains("refused: cannot approve 20261207-abc1234"),
        "{stderr}"
    );
    assert!(
        stdout.contains("\"kind\":\"refused\""),
        "the --json refusal: {stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
