//! `shiplane config validate | diff | apply` through the built binary: problems at their
//! FILE:LINE:COLUMN, routes and skip warnings, the diff and its exit code, and apply's
//! refusal to drop a lane with a live release (DynamoDB in the local AWS emulator).

// Test code: a helper that fails should stop the test where it failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use shiplane::release::{Digest, Release, ReleaseId, Timestamp};
use shiplane::store::ReleaseStore;
use shiplane_e2e::{TempDir, fresh_store};

mod common;
use common::shiplane;

const EXAMPLE: &str = include_str!("../../infra/pipeline.example.toml");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `EXAMPLE` edited, in a file removed with the returned directory.
fn example_with(dir: &TempDir, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut source = EXAMPLE.to_string();
    for (from, to) in edits {
        assert!(source.contains(from), "the example has no {from:?}");
        source = source.replace(from, to);
    }
    dir.file(name, &source)
}

/// The example without api's staging stage.
const NO_API_STAGING: (&str, &str) = (
    "[services.api.environments.staging]\nservice = \"api-staging\"\nalarms = [\"api-staging-5xx\"]\ncodedeploy = { application = \"api\", deployment_group = \"api-staging\", deployment_config = \"CodeDeployDefault.ECSLinear10PercentEvery1Minutes\" }\n",
    "",
);

/// The example without the tiles service.
fn no_tiles() -> (&'static str, &'static str) {
    let start = EXAMPLE.find("[services.tiles]").unwrap();
    let end = EXAMPLE.find("[services.etl]").unwrap();
    (&EXAMPLE[start..end], "")
}

#[test]
fn validate_places_each_problem_once_and_shows_every_route() {
    let dir = TempDir::new("shiplane-config");
    let bad = example_with(
        &dir,
        "bad.toml",
        &[
            ("bake = \"1h\"", "bake = \"1 hour\""),
            ("name = \"steady\"", "name = \"steady\"\ntimeot = \"5s\""),
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["config", "validate"])
        .arg(&bad)
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let f = bad.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:33:8: defaults.prod.bake: \"1 hour\" is not a duration; write \"1h\"\n\
             {f}:89:10: services.api.environments.dev.checks.1.timeot: unknown key \"timeot\"; did you mean \"timeout\"?\n\
             {f}: 2 problems\n"
        ),
        "the default three services inherit is wrong once, where it is written"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_shiplane"))
        .args(["config", "validate"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/pipeline.example.toml"))
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "valid: 3 services (api, etl, tiles) through dev → staging → prod\n  \
         api: dev → staging → prod\n  \
         etl: dev → prod (no staging)\n  \
         tiles: dev → prod (no staging)\n"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains(":110:1: services.tiles: dev → prod skips staging, which api goes through; add [services.tiles.environments.staging] if tiles should stop there too"),
        "{err}"
    );
    assert!(err.starts_with("warning: "), "{err}");
}

fn tiles_release(n: u64) -> Release {
    let id =
        ReleaseId::parse(&ulid::Ulid::from_parts(1_750_000_000_000 + n, u128::from(n)).to_string())
            .unwrap();
    Release::new(
        id,
        "tiles",
        "shiplane/tiles",
        Digest::parse(&format!("sha256:{n:064x}")).unwrap(),
        Some(&format!("release-{n}")),
        Timestamp(1_750_000_000_000 + n),
    )
}

#[tokio::test]
async fn diff_shows_each_lanes_changes_and_apply_refuses_to_strand_a_live_release() {
    let store = fresh_store().await;
    let table = store.table().to_string();
    let dir = TempDir::new("shiplane-config");
    let example = dir.file("example.toml", EXAMPLE);
    let example = example.to_str().unwrap();

    // Nothing stored: everything is new, and that is a difference.
    let out = shiplane(&table, &["config", "diff", example]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("--- nothing stored yet\n"), "{stdout}");
    assert!(
        stdout.contains("\n+ tiles: dev → prod (no staging)\n"),
        "{stdout}"
    );
    assert_eq!(
        shiplane(&table, &["config", "apply", example])
            .status
            .code(),
        Some(0)
    );
    let out = shiplane(&table, &["config", "diff", example]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).ends_with("no changes\n"));
    let v: Value =
        serde_json::from_slice(&shiplane(&table, &["--json", "config", "diff", example]).stdout)
            .unwrap();
    assert_eq!(
        (v["equal"].as_bool(), v["stored_version"].as_u64()),
        (Some(true), Some(1))
    );

    // A changed default and a dropped environment without a live release: shown, applied.
    let smaller = example_with(
        &dir,
        "smaller.toml",
        &[("bake = \"1h\"", "bake = \"2h\""), NO_API_STAGING],
    );
    let smaller = smaller.to_str().unwrap();
    let out = shiplane(&table, &["config", "diff", smaller]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = text(&out.stdout);
    let body: Vec<&str> = stdout.lines().skip(2).collect();
    assert_eq!(
        body,
        [
            "~ api: dev → prod (no staging) (was dev → staging → prod)",
            "  - staging",
            "  ~ prod",
            "      ~ bake: \"1h\" → \"2h\"",
            "~ etl: dev → prod (no staging)",
            "  ~ prod",
            "      ~ bake: \"1h\" → \"2h\"",
            "~ tiles: dev → prod (no staging)",
            "  ~ prod",
            "      ~ bake: \"1h\" → \"2h\"",
        ],
        "{stdout}"
    );
    assert!(stdout.starts_with("--- stored pipeline version 1, applied "));
    let out = shiplane(&table, &["config", "apply", smaller]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\n  - staging\n"),
        "the diff is shown: {stdout}"
    );
    assert!(stdout.ends_with("applied pipeline version 2 (3 services) as ana\n"));

    // tiles has a release deploying in dev: dropping tiles is refused, and says how on.
    let r = tiles_release(1);
    shiplane_e2e::arrive(&store, &r, "dev", Some("prod")).await;
    let no_tiles = example_with(
        &dir,
        "no-tiles.toml",
        &[
            ("bake = \"1h\"", "bake = \"2h\""),
            NO_API_STAGING,
            no_tiles(),
            // api restarts tiles: gone with it.
            ("restarts = [\"tiles\"]\n", ""),
        ],
    );
    let no_tiles = no_tiles.to_str().unwrap();
    let live = format!("tiles/dev: release-1 ({}) deploying", r.id);
    let out = shiplane(&table, &["config", "diff", no_tiles]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\n- tiles: was dev → prod (no staging)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "! tiles/dev has live release release-1 ({}) deploying: `shiplane config apply` refuses to drop it without --force",
            r.id
        )),
        "{stdout}"
    );

    let out = shiplane(&table, &["config", "apply", no_tiles]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "refused: the file drops lanes that have live releases, so nothing was stored:\n  {live}\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("shiplane cancel RELEASE ENVIRONMENT --reason TEXT")
            && err.contains("--force"),
        "{err}"
    );
    assert!(
        !err.contains("tiles/prod"),
        "a lane without a live release is not named: {err}"
    );
    assert_eq!(store.pipeline().await.unwrap().unwrap().version, 2);

    let out = shiplane(&table, &["--json", "config", "apply", no_tiles, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 3);
    assert_eq!(v["dropped_live_releases"][0]["service"], "tiles");
    assert_eq!(v["dropped_live_releases"][0]["release"], r.id.as_str());
    assert_eq!(v["dropped_live_releases"][0]["state"], "deploying");
    let tiles = v["diff"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "tiles")
        .unwrap();
    assert_eq!(tiles["change"], "removed");
    assert_eq!(v["routes"]["api"], "dev → prod (no staging)");
}
