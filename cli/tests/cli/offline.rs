//! What is decided before or without a server: usage errors and unreachable servers.

use crate::support::*;
use e2e::TempDir;

#[tokio::test]
async fn a_server_that_refuses_connections_exits_4() {
    let dir = TempDir::new("hopster-cli");
    let refused = ["--server", "http://127.0.0.1:1"];
    for args in [
        vec!["status", "0123456789abcdef0123456789abcdef"],
        vec!["clip", "--url", "http://example.com/v.mp4"],
        vec!["download", "0123456789abcdef0123456789abcdef"],
    ] {
        let out = hopster(&dir.0, &[&refused[..], &args].concat()).await;
        assert_eq!(code(&out), CONNECTION, "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("cannot reach the server"));
    }
    // The server can come from the environment too.
    let out = command(&dir.0, &["--json", "jobs"])
        .env("HOPSTER_SERVER", "http://127.0.0.1:1")
        .output()
        .await
        .expect("running hopster");
    assert_eq!(code(&out), CONNECTION, "{}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["error"]["code"], "connection");
    assert!(text(&out.stderr).contains("127.0.0.1:1/v1/jobs"));
}

#[tokio::test]
async fn bad_arguments_exit_2_without_sending_a_request() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let server = format!("http://{}", listener.local_addr().expect("addr"));
    let dir = TempDir::new("hopster-cli");
    let url = "http://example.com/v.mp4";
    for args in [
        vec![
            "clip", "--url", url, "--start", "00:00:13", "--stop", "00:00:10",
        ],
        vec![
            "clip", "--url", url, "--start", "00:00:10", "--stop", "00:00:10",
        ],
        vec!["clip", "--url", url, "--start", "Mon"],
        vec!["clip", "--url", url, "--stop", "5"],
        vec!["clip", "--url", "file:///etc/passwd"],
        vec!["clip", "--url", "http://user:pw@example.com/v.mp4"],
        vec!["clip", "--url", url, "--video-id", "sixty"],
        vec!["clip", "--video-id", "../etc"],
        vec!["clip"],
        vec!["clip", "--url", url, "--profile", "mkv"],
        vec!["clip", "--url", url, "--max-height", "15"],
        vec!["clip", "--url", url, "--max-height", "4321"],
        vec![
            "clip",
            "--url",
            url,
            "--profile",
            "mp3",
            "--max-height",
            "240",
        ],
        vec![
            "clip",
            "--url",
            url,
            "--profile",
            "audio",
            "--poster-at",
            "00:00:01",
        ],
        vec![
            "clip",
            "--url",
            url,
            "--start",
            "00:00:10",
            "--stop",
            "00:00:12",
            "--poster-at",
            "00:00:02",
        ],
        vec!["clip", "--url", url, "--accuracy", "exact"],
        vec![
            "clip",
            "--url",
            url,
            "--accuracy",
            "keyframe",
            "--profile",
            "webm",
        ],
        vec![
            "clip",
            "--url",
            url,
            "--accuracy",
            "keyframe",
            "--max-height",
            "240",
        ],
        vec!["clip", "--url", url, "--poster-at", "1s"],
        vec![
            "clip",
            "--url",
            url,
            "--callback-url",
            "ftp://example.com/hook",
        ],
        vec!["clip", "--url", url, "--profile", "hls", "-o", "x.m3u8"],
        vec!["jobs", "--state", "done"],
        vec!["poster", "0123"],
        vec!["cancel", "not-a-job-id"],
        vec!["completions", "tcsh"],
        vec!["status", "not-a-job-id"],
        vec!["download", "0123"],
        vec!["frobnicate"],
    ] {
        let out = hopster(&dir.0, &[&["--server", &server][..], &args].concat()).await;
        assert_eq!(code(&out), USAGE, "{args:?}: {}", text(&out.stderr));
        assert!(!text(&out.stderr).is_empty(), "{args:?} says why");
    }
    let out = hopster(&dir.0, &["--server", "ftp://127.0.0.1/", "jobs"]).await;
    assert_eq!(code(&out), USAGE);
    // The file and the JSON document would both be stdout.
    let out = hopster(
        &dir.0,
        &[
            "--server", &server, "--json", "clip", "--url", url, "-o", "-",
        ],
    )
    .await;
    assert_eq!(code(&out), USAGE);
    // With --json even a usage error is one JSON document.
    let out = hopster(
        &dir.0,
        &["--server", &server, "--json", "clip", "--url", "file:///x"],
    )
    .await;
    assert_eq!(code(&out), USAGE);
    assert_eq!(stdout_json(&out)["error"]["code"], "usage");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a bad command reached the server: {other:?}"),
    }
}

#[tokio::test]
async fn completion_scripts_name_every_command_and_choice_and_parse_in_their_shell() {
    let dir = TempDir::new("hopster-cli");
    let out = hopster(&dir.0, &["completions", "bash"]).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let bash = text(&out.stdout);
    assert!(bash.contains("complete -F _hopster"), "{bash}");
    for word in [
        "clip",
        "status",
        "wait",
        "download",
        "poster",
        "cancel",
        "jobs",
        "completions",
        "--profile",
        "--max-height",
        "--accuracy",
        "--poster-at",
        "--callback-url",
        "--state",
        "webm",
        "keyframe",
        "cancelled",
    ] {
        assert!(bash.contains(word), "`{word}` is not completed");
    }
    let script = dir.0.join("hopster.bash");
    std::fs::write(&script, &out.stdout).expect("writing the script");
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("running bash");
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    // Loaded into bash, it completes the subcommand from its first letters.
    let completed = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(hopster can); COMP_CWORD=1; _hopster hopster can hopster; \
             echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .expect("running bash");
    assert_eq!(
        text(&completed.stdout).trim(),
        "cancel",
        "{}",
        text(&completed.stderr)
    );

    for (shell, marker) in [
        ("zsh", "#compdef hopster"),
        ("fish", "complete -c hopster"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[hopster]"),
    ] {
        let out = hopster(&dir.0, &["completions", shell]).await;
        assert_eq!(code(&out), 0, "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(
            script.contains(marker) && script.contains("poster"),
            "{shell}: {script}"
        );
    }
}
