//! The web page at `/ui` in a real browser: Debian's headless Chromium, driven by
//! `e2e/ui/ui.test.mjs` (playwright-core) against the whole stack. The page submits a clip
//! from the form, watches it complete, plays it, downloads it and copies its link; shows a
//! failed job's and a bad time's errors with their codes; works from the keyboard and at
//! phone width; and, against a second stack with API keys, asks for a key, keeps it and
//! sends it (as `?key=` on the video). Installs Chromium (apt) and the script's npm package
//! when missing. `HOPSTER_UI_UPDATE_DOCS=1` also copies the screenshot to `docs/ui.png`.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::media::probe;
use e2e::stack::{Options, Stack};
use hopster_common::settings::{Backend, Secret};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const BROWSER_DEADLINE: Duration = Duration::from_secs(240);
const RESULT_PREFIX: &str = "HOPSTER_UI_RESULT ";
const API_KEY: &str = "ui-test-key";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn run(command: &mut Command, what: &str) {
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    assert!(status.success(), "{what} failed ({status})");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `args` as root: directly when we are root, else through passwordless sudo.
fn as_root(args: &[&str]) -> Command {
    let mut command = if is_root() {
        Command::new(args[0])
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", args[0]]);
        sudo
    };
    command
        .args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive");
    command
}

/// Debian's Chromium, installed when missing (`HOPSTER_UI_CHROMIUM` names another binary).
fn ensure_chromium() -> String {
    if let Ok(path) = std::env::var("HOPSTER_UI_CHROMIUM") {
        return path;
    }
    if !Path::new(CHROMIUM).exists() {
        eprintln!("the UI test needs Chromium: installing Debian's package `chromium`");
        run(
            &mut as_root(&["apt-get", "update", "-qq"]),
            "apt-get update",
        );
        run(
            &mut as_root(&["apt-get", "install", "-y", "-qq", "chromium"]),
            "apt-get install -y chromium (needs root or passwordless sudo)",
        );
    }
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium"
    );
    CHROMIUM.to_owned()
}

/// Node 20+ must be there; the script's one package (playwright-core, which downloads no
/// browser) is installed from the lock file when missing.
fn ensure_node_modules(dir: &Path) {
    let version = Command::new("node").arg("--version").output();
    let major = version
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok())
        });
    assert!(
        major.is_some_and(|m| m >= 20),
        "the UI test runs e2e/ui/ui.test.mjs with Node.js 20 or newer; `node --version` said {version:?}"
    );
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        eprintln!(
            "the UI test needs playwright-core: npm ci in {}",
            dir.display()
        );
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir),
            "npm ci in e2e/ui",
        );
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a screenshot",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_page_makes_plays_and_downloads_a_clip() {
    let root = workspace_root();
    let ui_dir = root.join("e2e/ui");
    let chromium = ensure_chromium();
    ensure_node_modules(&ui_dir);
    let artifacts = root.join("target/ui-artifacts");
    for stale in [
        "clip.mp4",
        "keyed-clip.mp4",
        "ui.png",
        "ui-phone.png",
        "failure.png",
    ] {
        let _ = std::fs::remove_file(artifacts.join(stale));
    }
    std::fs::create_dir_all(&artifacts).expect("creating target/ui-artifacts");

    let stack = Stack::spawn(Options {
        backend: Backend::Fs,
        workers: true,
    })
    .await;
    let keyed = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.auth.api_keys = vec![Secret::new(API_KEY)],
    )
    .await;
    let source = format!("{}/sixty.mp4", stack.source.base_url);

    let browser = tokio::process::Command::new("node")
        .arg("ui.test.mjs")
        .current_dir(&ui_dir)
        .env("HOPSTER_UI_BASE_URL", &stack.base_url)
        .env("HOPSTER_UI_SOURCE_URL", &source)
        .env("HOPSTER_UI_KEYED_BASE_URL", &keyed.base_url)
        .env("HOPSTER_UI_KEY", API_KEY)
        .env("HOPSTER_UI_ARTIFACTS", &artifacts)
        .env("HOPSTER_UI_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running node");
    let output = tokio::time::timeout(BROWSER_DEADLINE, browser.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the browser test took over {BROWSER_DEADLINE:?}"))
        .expect("waiting for node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}); see {}/failure.png\n{stdout}\n{stderr}",
        output.status,
        artifacts.display()
    );
    let result: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| panic!("no {RESULT_PREFIX}line from the browser test:\n{stdout}"));

    eprintln!("browser test result: {result:#}");
    assert_eq!(result["console_errors"], serde_json::json!([]), "{result}");
    assert_eq!(
        result["states_seen"].as_array().and_then(|s| s.last()),
        Some(&Value::from("completed")),
        "{result}"
    );
    // The page's job is the API's job, and the file it downloaded is the 2 s clip.
    // The job cancelled from the page really is cancelled on the server.
    let cancelled = result["cancelled_job"].as_str().expect("a cancelled job");
    let (_, status) = stack.get_json(&format!("/v1/jobs/{cancelled}")).await;
    assert_eq!(status["state"], "cancelled", "{status}");
    let id = result["job_id"].as_str().expect("a job id");
    let (code, job) = stack.get_json(&format!("/v1/jobs/{id}")).await;
    assert_eq!((code, job["state"].as_str()), (200, Some("completed")));
    assert_eq!(job["spec"]["start"], "00:00:02");
    assert_eq!(job["spec"]["stop"], "00:00:04");
    let clip = artifacts.join("clip.mp4");
    let size = std::fs::metadata(&clip).expect("the downloaded clip").len();
    assert_eq!(Some(size), job["result"]["size"].as_u64());
    let duration = probe(&clip).duration;
    assert!((duration - 2.0).abs() <= 0.05, "duration {duration}");

    // With keys: the page's key reached the API, and ?key= fetched the 1 s clip.
    assert_eq!(result["key_flow"], true, "{result}");
    let keyed_id = result["keyed_job_id"].as_str().expect("a keyed job id");
    let (code, _) = keyed.get_json(&format!("/v1/jobs/{keyed_id}")).await;
    assert_eq!(code, 401, "the keyed stack wants a key");
    let duration = probe(&artifacts.join("keyed-clip.mp4")).duration;
    assert!(
        (duration - 1.0).abs() <= 0.05,
        "keyed clip duration {duration}"
    );

    let shot = artifacts.join("ui.png");
    assert_png(&shot);
    assert_png(&artifacts.join("ui-phone.png"));
    if std::env::var("HOPSTER_UI_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::copy(&shot, root.join("docs/ui.png")).expect("copying to docs/ui.png");
    }
    keyed.stop().await;
    stack.stop().await;
}
