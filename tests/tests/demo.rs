//! `make demo`'s driver, run as a newcomer runs it: every scripted step happens and it
//! exits 0; with a step broken on purpose (v1's health check failing, so its hook answers
//! Failed) it stops there and exits 1, saying which.

use std::process::Command;

fn demo(prefix: &str, broken: bool) -> std::process::Output {
    shiplane_e2e::endpoint();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo"));
    cmd.env("SHIPLANE_DEMO_PREFIX", prefix);
    if broken {
        cmd.env("SHIPLANE_DEMO_BREAK", "v1-health");
    } else {
        cmd.env_remove("SHIPLANE_DEMO_BREAK");
    }
    cmd.output().expect("run the demo")
}

#[test]
fn the_demo_plays_every_step_and_exits_zero() {
    let out = demo(&shiplane_e2e::unique_prefix(), false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in [
        "1. Push api:v1",
        "2. Push api:v2",
        "3. Push api:v3 and api:v4",
        "4. v3 bakes in dev",
        "5. Push etl:v1",
        "6. Push api:v5",
        "tiles restarted for api v5",
        "Demo complete: every step happened",
    ] {
        assert!(stdout.contains(step), "missing {step:?}:\n{stdout}");
    }
    // The timeline says what happened and why.
    assert!(stdout.contains("baking → rolled_back"), "{stdout}");
    assert!(stdout.contains("held:"), "{stdout}");
    // The approval notification tells the person the command, and the DORA figures show.
    assert!(stdout.contains("next: shiplane approve "), "{stdout}");
    assert!(stdout.contains("awaiting approval"), "{stdout}");
    assert!(stdout.contains("LEAD TIME (median)"), "{stdout}");
    // v2's failure says why: never "… failed:" with nothing after the colon.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("validating → failed") && l.contains("CodeDeploy deployment")),
        "{stdout}"
    );
    assert!(
        !stdout.lines().any(|l| {
            let l = l.trim_end();
            l.ends_with("failed:") || l.ends_with("stopped:")
        }),
        "a failure without its reason:\n{stdout}"
    );
    // Its output is a pipe here, not a terminal: no colour codes.
    assert!(!stdout.contains('\x1b'), "ANSI codes in a pipe:\n{stdout}");
}

#[test]
fn a_step_broken_on_purpose_stops_the_demo_with_exit_one() {
    let out = demo(&shiplane_e2e::unique_prefix(), true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("demo failed: v1 should be baking in dev, but is failed"),
        "{stderr}"
    );
    assert!(!stderr.contains('\x1b'), "ANSI codes in a pipe:\n{stderr}");
    assert!(!stdout.contains("Demo complete"), "{stdout}");
}
