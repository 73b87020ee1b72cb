//! Resuming a partial download with `Range`.

use crate::support::*;
use e2e::TempDir;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let stack = stack().await;
    let (code_, job) = stack
        .post(
            "/v1/jobs",
            &serde_json::json!({"url": sixty(&stack), "start": "00:00:20", "stop": "00:00:22"}),
        )
        .await;
    assert_eq!(code_, 202, "{job}");
    let id = job["id"].as_str().expect("an id").to_owned();
    let (status, _) = stack.wait_for_job(&id, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "completed", "{status}");
    let sha = status["result"]["sha256"]
        .as_str()
        .expect("a sha256")
        .to_owned();
    let full = stack
        .http
        .get(stack.url(&format!("/v1/jobs/{id}/video")))
        .send()
        .await
        .expect("GET video")
        .bytes()
        .await
        .expect("the video");
    assert_eq!(sha256_hex(&full), sha);

    let dir = TempDir::new("hopster-cli");
    let file = dir.0.join("partial.mp4");
    let file_arg = file.to_str().expect("UTF-8");
    let n = full.len() / 3;
    std::fs::write(&file, &full[..n]).expect("writing the partial file");
    let (proxy, recorded) = recording_proxy(&stack.base_url).await;
    let args = [
        "--server",
        &proxy,
        "--api-key",
        "k3y",
        "download",
        &id,
        "-o",
        file_arg,
    ];
    let out = hopster(&dir.0, &args).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let sent = text(&recorded.lock().expect("lock")).to_ascii_lowercase();
    assert!(
        sent.contains(&format!("get /v1/jobs/{id}/video ")),
        "{sent}"
    );
    assert!(
        sent.contains(&format!("\r\nrange: bytes={n}-\r\n")),
        "{sent}"
    );
    assert!(sent.contains("\r\nauthorization: bearer k3y\r\n"), "{sent}");
    assert_eq!(sha256_hex(&std::fs::read(&file).expect("the file")), sha);
    assert!(text(&out.stdout).contains(&format!("resumed at byte {n}")));

    // A complete file is left alone.
    recorded.lock().expect("lock").clear();
    let out = hopster(&dir.0, &args).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already complete"),
        "{}",
        text(&out.stdout)
    );
    assert!(!text(&recorded.lock().expect("lock")).contains("/video"));

    // A prefix of something else is not resumed into a corrupt clip: it is replaced.
    std::fs::write(&file, vec![0u8; n]).expect("writing garbage");
    let out = hopster(&dir.0, &args).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sha256_hex(&std::fs::read(&file).expect("the file")), sha);
    stack.stop().await;
}
