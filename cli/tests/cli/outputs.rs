//! What is made and where it goes: output options, posters, `-o -`, HLS, callbacks.

use crate::support::*;
use e2e::hook::HookServer;
use e2e::stack::Stack;
use e2e::TempDir;
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

async fn bytes_of(stack: &Stack, path: &str) -> Vec<u8> {
    let response = stack.http.get(stack.url(path)).send().await.expect("GET");
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.expect("the body").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn profile_max_height_and_poster_at_make_that_job_and_its_poster_is_saved() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    let file = dir.0.join("clip.webm");
    let server = ["--server", &stack.base_url];
    let source = sixty(&stack);
    let out = hopster(
        &dir.0,
        &[
            &server[..],
            &[
                "clip",
                "--url",
                &source,
                "--start",
                "00:00:10",
                "--stop",
                "00:00:12",
                "--profile",
                "webm",
                "--max-height",
                "240",
                "--poster-at",
                "00:00:00.500",
                "-o",
                file.to_str().expect("UTF-8"),
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let probed = e2e::media::probe(&file);
    assert!((probed.duration - 2.0).abs() <= 0.1, "{probed:?}");
    assert_eq!((probed.video_codec.as_str(), probed.height), ("vp9", 240));

    let jobs = stack.get_json("/v1/jobs").await.1;
    let job = &jobs["jobs"][0];
    let id = job["id"].as_str().expect("an id").to_owned();
    assert_eq!(job["spec"]["profile"], "webm", "{job}");
    assert_eq!(job["spec"]["max_height"], 240, "{job}");
    assert_eq!(job["spec"]["poster_at"], "00:00:00.5", "{job}");
    assert_eq!(job["result"]["mime"], "video/webm", "{job}");

    let poster = dir.0.join("poster.jpg");
    let out = hopster(
        &dir.0,
        &[
            &server[..],
            &["poster", &id, "-o", poster.to_str().expect("UTF-8")],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let served = bytes_of(&stack, &format!("/v1/jobs/{id}/poster")).await;
    let saved = std::fs::read(&poster).expect("the poster");
    assert_eq!(sha256_hex(&saved), sha256_hex(&served));
    assert_eq!(e2e::media::probe(&poster).height, 240);
    assert!(
        text(&out.stdout).contains("saved "),
        "{}",
        text(&out.stdout)
    );

    // `-o -`: the poster is stdout, byte for byte, and the words go to stderr.
    let out = hopster(&dir.0, &[&server[..], &["poster", &id, "-o", "-"]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&served));
    assert!(
        text(&out.stderr).contains("to stdout"),
        "{}",
        text(&out.stderr)
    );

    // An audio job has no poster: the server's `no_poster`, exit 5.
    let out = hopster(
        &dir.0,
        &[
            &server[..],
            &[
                "clip",
                "--url",
                &source,
                "--stop",
                "00:00:01",
                "--profile",
                "mp3",
                "-o",
                "a.mp3",
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        e2e::media::probe(&dir.0.join("a.mp3"))
            .audio_codec
            .as_deref(),
        Some("mp3")
    );
    let mp3 = stack.get_json("/v1/jobs?state=completed").await.1["jobs"][0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let out = hopster(&dir.0, &[&server[..], &["poster", &mp3]].concat()).await;
    assert_eq!(code(&out), SERVER, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no_poster"),
        "{}",
        text(&out.stderr)
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyframe_clip_with_a_callback_goes_to_stdout_and_the_callback_is_delivered() {
    let stack = stack().await;
    let hook = HookServer::start(vec![200]).await;
    let dir = TempDir::new("hopster-cli");
    let server = ["--server", &stack.base_url];
    let out = hopster(
        &dir.0,
        &[
            &server[..],
            &[
                "clip",
                "--url",
                &sixty(&stack),
                "--start",
                "00:00:10",
                "--stop",
                "00:00:13",
                "--accuracy",
                "keyframe",
                "--callback-url",
                &hook.url,
                "-o",
                "-",
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let job = stack.get_json("/v1/jobs").await.1["jobs"][0].clone();
    let id = job["id"].as_str().expect("an id").to_owned();
    assert_eq!(job["spec"]["accuracy"], "keyframe", "{job}");
    assert_eq!(job["spec"]["callback_url"], hook.url.as_str(), "{job}");
    assert!(job["result"]["start_achieved"].is_string(), "{job}");
    // stdout is the clip and nothing else.
    assert_eq!(
        Some(sha256_hex(&out.stdout).as_str()),
        job["result"]["sha256"].as_str()
    );
    let probed = e2e::media::probe_bytes(&out.stdout);
    assert!(
        probed.duration >= 2.9 && probed.duration < 13.0,
        "{probed:?}"
    );
    stack
        .wait_until(DEADLINE, "the callback", || async {
            hook.received().iter().any(|r| {
                let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                r.path == "/hook" && body["id"] == id.as_str()
            })
        })
        .await;

    let out = hopster(
        &dir.0,
        &[&server[..], &["download", &id, "-o", "-"]].concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        Some(sha256_hex(&out.stdout).as_str()),
        job["result"]["sha256"].as_str()
    );
    // The file and a JSON document cannot share stdout.
    let out = hopster(
        &dir.0,
        &[&server[..], &["--json", "download", &id, "-o", "-"]].concat(),
    )
    .await;
    assert_eq!(code(&out), USAGE, "{}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["error"]["code"], "usage");
    // An HLS result is played from the server, not saved.
    let out = hopster(
        &dir.0,
        &[
            &server[..],
            &[
                "clip",
                "--url",
                &sixty(&stack),
                "--stop",
                "00:00:02",
                "--profile",
                "hls",
            ],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let hls = stack.get_json("/v1/jobs").await.1["jobs"][0].clone();
    let hls_id = hls["id"].as_str().expect("an id");
    assert_eq!(hls["result"]["profile"], "hls", "{hls}");
    let play = format!("ffplay {}/v1/jobs/{hls_id}/video", stack.base_url);
    assert!(text(&out.stdout).contains(&play), "{}", text(&out.stdout));
    let out = hopster(&dir.0, &[&server[..], &["download", hls_id]].concat()).await;
    assert_eq!(code(&out), USAGE, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&play), "{}", text(&out.stderr));
    // A finished job cannot be cancelled: the server's `job_finished`, exit 5.
    let out = hopster(&dir.0, &[&server[..], &["cancel", &id]].concat()).await;
    assert_eq!(code(&out), SERVER, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("job_finished"),
        "{}",
        text(&out.stderr)
    );
    stack.stop().await;
}
