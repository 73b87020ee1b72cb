//! The web page at `/ui` in a real browser: Debian's headless Chromium, driven over WebDriver
//! by Debian's chromium-driver (`e2e::browser`, fantoccini) against the whole stack. The page
//! submits a clip from the form, watches it complete through its event stream, plays it,
//! downloads it and copies its link; cancels a running job from its row; shows a failed job's
//! and a bad time's errors with their codes; works from the keyboard and at phone width; and,
//! against a second stack with API keys, asks for a key, keeps it and sends it (as `?key=` on
//! the video). Installs chromium and chromium-driver (apt) when missing. Screenshots land in
//! `target/ui-artifacts/`; `HOPSTER_UI_UPDATE_DOCS=1` also copies one to `docs/ui.png`.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use anyhow::{bail, ensure, Context};
use e2e::browser::{wait_for, wait_until, Browser, Key};
use e2e::media::probe;
use e2e::stack::{Options, Stack};
use hopster_common::settings::{Backend, Secret};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const BROWSER_DEADLINE: Duration = Duration::from_secs(240);
const JOB_DEADLINE: Duration = Duration::from_secs(120);
const API_KEY: &str = "ui-test-key";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a screenshot",
        path.display()
    );
}

/// What the page did, for the checks against the server afterwards.
#[derive(Debug, Default)]
struct Outcome {
    job_id: String,
    states_seen: Vec<String>,
    cancelled_job: String,
    animation_job: String,
    audio_job: String,
    /// Jobs made from the editor: (id, start, stop) as the fields showed them.
    edited_jobs: Vec<(String, String, String)>,
    keyed_job_id: String,
    expected_network_errors: Vec<String>,
}

/// The focused element, and whether it shows a focus ring.
#[derive(Debug, Deserialize)]
struct Focus {
    id: String,
    tag: String,
    #[serde(rename = "focusVisible")]
    focus_visible: bool,
    #[serde(rename = "outlineStyle")]
    outline_style: String,
    #[serde(rename = "outlineWidth")]
    outline_width: String,
}

const FOCUS_JS: &str = "const el = document.activeElement; const style = el ? getComputedStyle(el) : null;
  return { id: el ? el.id : '', tag: el ? el.tagName.toLowerCase() : '',
           focusVisible: el ? el.matches(':focus-visible') : false,
           outlineStyle: style ? style.outlineStyle : '', outlineWidth: style ? style.outlineWidth : '' };";

async fn focus(b: &Browser) -> anyhow::Result<Focus> {
    b.js(FOCUS_JS, vec![]).await
}

fn row(id: &str) -> String {
    format!("#jobs li.job[data-id=\"{id}\"]")
}

/// The id of the newest job row that is not one of `known`.
async fn newest_job_id(b: &Browser, known: &[&str]) -> anyhow::Result<String> {
    wait_for("a new job row", Duration::from_secs(10), || async {
        let id: Option<String> = b
            .js(
                "const row = document.querySelector('#jobs li.job');
                 return row && !arguments[0].includes(row.dataset.id) ? row.dataset.id : null;",
                vec![json!(known)],
            )
            .await?;
        Ok(id)
    })
    .await
}

/// Waits for a job row to reach `completed`, recording the states it showed.
async fn wait_for_completed(b: &Browser, id: &str, states: &mut Vec<String>) -> anyhow::Result<()> {
    let css = row(id);
    let deadline = std::time::Instant::now() + JOB_DEADLINE;
    loop {
        let state = b.attr(&css, "data-state").await?.unwrap_or_default();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        match state.as_str() {
            "completed" => return Ok(()),
            "failed" | "cancelled" => anyhow::bail!(
                "the job ended {state}: {:?}",
                b.text(&format!("{css} .job-error")).await?
            ),
            _ => {}
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the job is still {state} after {JOB_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the video element in `css` has played past its start without an error.
async fn wait_for_playing(b: &Browser, css: &str) -> anyhow::Result<f64> {
    wait_for("the clip to play", Duration::from_secs(20), || async {
        let played: Option<f64> = b
            .js(
                "const v = document.querySelector(arguments[0]);
                 return v && v.currentTime > 0 && !v.error ? v.currentTime : null;",
                vec![json!(css)],
            )
            .await?;
        Ok(played)
    })
    .await
}

/// Chooses `value` in the `<select>` `id`, as a person picking it would (its `change` fires).
async fn choose(b: &Browser, id: &str, value: &str) -> anyhow::Result<()> {
    b.js::<()>(
        "const s = document.getElementById(arguments[0]); s.value = arguments[1];
         s.dispatchEvent(new Event('change'));",
        vec![json!(id), json!(value)],
    )
    .await
}

/// Seeks the preview to `at` seconds and waits until it is there.
async fn seek_preview(b: &Browser, at: f64) -> anyhow::Result<()> {
    b.js::<()>(
        "document.getElementById('preview').currentTime = arguments[0];",
        vec![json!(at)],
    )
    .await?;
    wait_until("the preview to seek", Duration::from_secs(10), || async {
        b.js::<bool>(
            "const v = document.getElementById('preview');
             return !v.seeking && Math.abs(v.currentTime - arguments[0]) < 0.001;",
            vec![json!(at)],
        )
        .await
    })
    .await
}

/// Whether the image `css` is shown and decoded, `width` pixels wide.
async fn image_drawn(b: &Browser, css: &str, width: u32) -> anyhow::Result<bool> {
    b.js(
        "const img = document.querySelector(arguments[0]);
         return !!img && !img.hidden && img.complete && img.naturalWidth === arguments[1];",
        vec![json!(css), json!(width)],
    )
    .await
}

/// Fails on any console error since the last check, but for failed loads with `allowed`
/// statuses, which are kept in `expected`.
async fn no_console_errors(
    b: &Browser,
    allowed: &[u16],
    expected: &mut Vec<String>,
) -> anyhow::Result<()> {
    let (seen, errors) = b.console_errors(allowed).await?;
    expected.extend(seen);
    ensure!(errors.is_empty(), "console errors: {errors:#?}");
    Ok(())
}

/// The whole session in the browser; every check that fails returns an error.
async fn drive(
    b: &mut Browser,
    base: &str,
    source: &str,
    keyed_base: &str,
    artifacts: &Path,
) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    b.allow_clipboard(base).await?;

    // The page, with its policy.
    b.goto(&format!("{base}/ui")).await?;
    b.read_network().await?;
    let (_, status, headers) = b
        .responses
        .iter()
        .find(|(url, _, _)| url == &format!("{base}/ui"))
        .context("the page's own response")?;
    ensure!(*status == 200, "GET /ui answered {status}");
    let csp = headers
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("content-security-policy"))
        })
        .and_then(|(_, v)| v.as_str())
        .unwrap_or_default();
    ensure!(
        csp.contains("script-src 'self'"),
        "Content-Security-Policy: {csp}"
    );
    ensure!(b.client.title().await? == "Hopster — video clips");
    wait_until("the first listing", Duration::from_secs(10), || async {
        Ok(b.text("#jobs-empty").await?.as_deref() == Some("No jobs yet."))
    })
    .await?;
    eprintln!("[ui] page loaded");

    // Keyboard: Tab reaches the source field, then the submit button, with a visible focus ring.
    let mut reached = Vec::new();
    for _ in 0..25 {
        b.press(Key::Tab).await?;
        let f = focus(b).await?;
        if f.id == "submit" {
            ensure!(f.focus_visible, "the submit button matches :focus-visible");
            ensure!(
                f.outline_style != "none",
                "the focused submit button has an outline"
            );
            ensure!(
                f.outline_width != "0px",
                "the focused submit button has an outline"
            );
        }
        reached.push(if f.id.is_empty() { f.tag } else { f.id });
        if reached.last().is_some_and(|r| r == "submit") {
            break;
        }
    }
    let position = |id: &str| reached.iter().position(|r| r == id);
    ensure!(
        matches!((position("source"), position("submit")), (Some(s), Some(t)) if s < t),
        "Tab order: {}",
        reached.join(" → ")
    );
    eprintln!("[ui] tab order: {}", reached.join(" → "));

    // The source plays in the browser: the preview's time becomes the start.
    b.fill("#source", source).await?;
    b.press_in("#source", Key::Tab).await?;
    wait_until("the preview button", Duration::from_secs(15), || async {
        b.visible("#start-now").await
    })
    .await?;
    // The test's source server answers without Range, so the preview cannot seek: play it
    // (fast, muted) past 2 s instead, as a person would, and pause.
    let played: Option<String> = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             const video = document.getElementById('preview');
             video.playbackRate = 4;
             video.play().then(() => done(null), (e) => done(String(e)));",
        )
        .await?;
    ensure!(played.is_none(), "the preview did not play: {played:?}");
    wait_until(
        "the preview to pass 2 s",
        Duration::from_secs(15),
        || async {
            b.js::<bool>(
                "return document.getElementById('preview').currentTime >= 2;",
                vec![],
            )
            .await
        },
    )
    .await?;
    b.js::<()>(
        "document.getElementById('preview').pause(); document.getElementById('start-now').focus();",
        vec![],
    )
    .await?;
    b.press(Key::Enter).await?;
    let from_preview = b.value("#start").await?;
    let seconds = shared_proto::Timecode::parse(&from_preview)
        .ok()
        .map(|t| t.as_micros());
    ensure!(
        seconds.is_some_and(|s| (2_000_000..10_000_000).contains(&s)),
        "start from the preview: {from_preview}"
    );
    b.fill("#start", "00:00:02").await?;
    eprintln!("[ui] preview time used as start: {from_preview}");

    // Submit from the keyboard: Enter in the stop field.
    b.fill("#stop", "00:00:04").await?;
    b.press_in("#stop", Key::Enter).await?;
    let id = newest_job_id(b, &[]).await?;
    let css = row(&id);
    let said = b.text("#form-status").await?.unwrap_or_default();
    ensure!(said.contains("Clip requested"), "form status: {said}");
    let range = b
        .text(&format!("{css} .job-range"))
        .await?
        .unwrap_or_default();
    ensure!(range.trim() == "00:00:02 → 00:00:04", "range: {range}");
    eprintln!("[ui] submitted job {id}");

    // The row goes through its stages to completed.
    wait_for_completed(b, &id, &mut out.states_seen).await?;
    let result = b
        .text(&format!("{css} .job-result"))
        .await?
        .unwrap_or_default();
    ensure!(
        result.starts_with("2.0") && result.contains(" s · 320×240"),
        "result: {result}"
    );
    eprintln!("[ui] completed; states {}", out.states_seen.join(" → "));
    // The row was followed live, through the job's event stream.
    b.read_network().await?;
    ensure!(
        b.requests
            .iter()
            .any(|u| u.contains(&format!("/v1/jobs/{id}/events"))),
        "no event stream for {id}"
    );

    // Play it in the page.
    b.click(&format!("{css} button.play")).await?;
    let player = format!("{css} .job-player video");
    let src = b.attr(&player, "src").await?;
    ensure!(
        src.as_deref() == Some(&*format!("/v1/jobs/{id}/video")),
        "src {src:?}"
    );
    let played_to = wait_for_playing(b, &player).await?;
    eprintln!("[ui] played to {played_to}s");

    // Download it.
    let link = format!("{css} a.download");
    let href = b.attr(&link, "href").await?;
    ensure!(
        href.as_deref() == Some(&*format!("/v1/jobs/{id}/video")),
        "href {href:?}"
    );
    let before = b.downloaded()?;
    b.click(&link).await?;
    let name = b
        .take_download(&before, &artifacts.join("clip.mp4"))
        .await?;
    eprintln!("[ui] downloaded {name}");

    // Copy its link.
    b.click(&format!("{css} button.copy")).await?;
    wait_until("the toast", Duration::from_secs(5), || async {
        Ok(b.text("#toast")
            .await?
            .is_some_and(|t| t.starts_with("Link copied")))
    })
    .await?;
    let copied: String = b
        .js_async(
            "const done = arguments[arguments.length - 1];
             navigator.clipboard.readText().then(done, (e) => done('clipboard error: ' + e));",
        )
        .await?;
    ensure!(
        copied == format!("{base}/v1/jobs/{id}/video"),
        "copied {copied}"
    );
    eprintln!("[ui] link copied");

    // The finished row shows its poster, decoded.
    let thumb = format!("{css} img.job-thumb");
    wait_until("the poster thumbnail", Duration::from_secs(10), || {
        image_drawn(b, &thumb, 320)
    })
    .await?;

    // An animation, from the output options: the GIF takes a frame rate and no loudness, and
    // is shown in its row as a picture.
    b.click("#output-box summary").await?;
    choose(b, "profile", "gif").await?;
    ensure!(b.visible("#fps-field").await?, "no frame rate for a GIF");
    ensure!(
        !b.visible("#normalize-field").await?,
        "loudness offered for a GIF"
    );
    let summary = b.text("#output-summary").await?.unwrap_or_default();
    ensure!(summary == "(GIF)", "output summary: {summary}");
    b.fill("#fps", "8").await?;
    b.fill("#start", "00:00:01").await?;
    b.fill("#stop", "00:00:03").await?;
    b.click("#submit").await?;
    let gif_id = newest_job_id(b, &[&id]).await?;
    wait_for_completed(b, &gif_id, &mut Vec::new()).await?;
    b.click(&format!("{} button.play", row(&gif_id))).await?;
    let shown = format!("{} .job-player img", row(&gif_id));
    wait_until("the GIF to show", Duration::from_secs(10), || {
        image_drawn(b, &shown, 320)
    })
    .await?;
    out.animation_job = gif_id.clone();
    // Sound only: the result plays in an audio player.
    choose(b, "profile", "mp3").await?;
    ensure!(
        !b.visible("#fps-field").await? && b.visible("#normalize-field").await?,
        "an mp3 takes loudness, not a frame rate"
    );
    b.click("#submit").await?;
    let mp3_id = newest_job_id(b, &[&id, &gif_id]).await?;
    wait_for_completed(b, &mp3_id, &mut Vec::new()).await?;
    b.click(&format!("{} button.play", row(&mp3_id))).await?;
    wait_for_playing(b, &format!("{} .job-player audio", row(&mp3_id))).await?;
    b.js::<()>(
        "document.querySelectorAll('.job-player audio').forEach((a) => a.pause());",
        vec![],
    )
    .await?;
    out.audio_job = mp3_id.clone();
    eprintln!("[ui] mp3 {mp3_id} plays in an audio player");
    // Back to the defaults for what follows.
    choose(b, "profile", "mp4").await?;
    b.js::<()>(
        "document.getElementById('fps').value = '';
         document.getElementById('output-box').open = false;",
        vec![],
    )
    .await?;
    eprintln!("[ui] GIF {gif_id} shown");

    // The editor: a source that takes ranges is inspected and shown as a filmstrip of its
    // storyboard with its keyframes marked; the handles set start and stop, by pointer (on
    // frames) and by keyboard (I and O at the preview's time, arrows a frame, Shift a second).
    let ranged = source.replace("/sixty.mp4", "/ranged/sixty.mp4");
    b.fill("#start", "").await?;
    b.fill("#stop", "").await?;
    b.fill("#source", &ranged).await?;
    b.press_in("#source", Key::Tab).await?;
    wait_until(
        "the filmstrip's sprite",
        Duration::from_secs(60),
        || async { Ok(b.attr("#filmstrip", "data-loaded").await?.as_deref() == Some("1600")) },
    )
    .await?;
    let (tiles, shown, marks): (String, u32, u32) = b
        .js(
            "return [document.getElementById('filmstrip').dataset.tiles,
                     document.querySelectorAll('#filmstrip .tile').length,
                     document.querySelectorAll('#keyframe-marks .mark').length];",
            vec![],
        )
        .await?;
    ensure!(
        tiles == "30" && shown >= 2 && marks == 30,
        "tiles {tiles}, shown {shown}, keyframe marks {marks}"
    );
    b.drag("#handle-in", "#timeline", 0.25, false).await?;
    // At a phone's width the timeline fits, and a finger drags the other handle.
    b.viewport(390, 844).await?;
    let width: u32 = b
        .js("return document.documentElement.scrollWidth;", vec![])
        .await?;
    ensure!(
        width <= 390,
        "the editor is {width}px wide at a 390px viewport"
    );
    b.drag("#handle-out", "#timeline", 0.5, true).await?;
    b.viewport(1280, 900).await?;
    let time = |text: &str| shared_proto::Timecode::parse(text).map(|t| t.as_micros());
    let (start, stop) = (b.value("#start").await?, b.value("#stop").await?);
    match (time(&start), time(&stop)) {
        (Ok(s), Ok(t))
            if (14_000_000..16_000_000).contains(&s)
                && (29_000_000..31_000_000).contains(&t)
                && s % 40_000 == 0
                && t % 40_000 == 0 => {}
        _ => bail!("dragged to {start} → {stop}, not on frames near 15 s and 30 s"),
    }
    b.click("#submit").await?;
    let dragged = newest_job_id(b, &[&id, &gif_id, &out.audio_job]).await?;
    out.edited_jobs
        .push((dragged.clone(), start.clone(), stop.clone()));
    eprintln!("[ui] dragged: {start} → {stop}, job {dragged}");

    // The keyboard, with the preview at 20 s and then 25 s.
    seek_preview(b, 20.0).await?;
    b.js::<()>("document.getElementById('handle-in').focus();", vec![])
        .await?;
    b.press_char('i').await?;
    seek_preview(b, 25.0).await?;
    b.press_char('o').await?;
    b.press(Key::Right).await?;
    b.press(Key::Right).await?;
    b.js::<()>("document.getElementById('handle-out').focus();", vec![])
        .await?;
    b.chord(&[Key::Shift, Key::Right]).await?;
    let (start, stop) = (b.value("#start").await?, b.value("#stop").await?);
    ensure!(
        (start.as_str(), stop.as_str()) == ("00:00:20.08", "00:00:26"),
        "keyboard: {start} → {stop}"
    );
    // Space plays the selection in the preview, and stops at its end.
    b.js::<()>(
        "const v = document.getElementById('preview'); v.muted = true; v.playbackRate = 2;",
        vec![],
    )
    .await?;
    b.press_char(' ').await?;
    wait_until(
        "the selection to play to its end",
        Duration::from_secs(15),
        || async {
            b.js::<bool>(
                "const v = document.getElementById('preview');
                 return v.paused && v.currentTime >= 25.9 && v.currentTime < 26.8;",
                vec![],
            )
            .await
        },
    )
    .await?;
    // The accuracy says what a copy would cost for this selection.
    b.click("#output-box summary").await?;
    choose(b, "accuracy", "keyframe").await?;
    let hint = b.text("#accuracy-hint").await?.unwrap_or_default();
    ensure!(
        hint.contains("would start at 00:00:20, 0.08 s before 00:00:20.08"),
        "accuracy hint: {hint}"
    );
    choose(b, "accuracy", "frame").await?;
    b.js::<()>(
        "document.getElementById('output-box').open = false;",
        vec![],
    )
    .await?;
    b.js::<()>(
        "document.getElementById('editor').scrollIntoView({block: 'center'});",
        vec![],
    )
    .await?;
    b.screenshot(&artifacts.join("editor.png"), false).await?;
    b.click("#submit").await?;
    let keyed_edit = newest_job_id(b, &[&id, &gif_id, &out.audio_job, &dragged]).await?;
    out.edited_jobs
        .push((keyed_edit.clone(), start.clone(), stop.clone()));
    eprintln!("[ui] keyboard: {start} → {stop}, job {keyed_edit}");
    b.fill("#source", source).await?;
    b.press_in("#source", Key::Tab).await?;

    // A running job can be cancelled from its row.
    let known: Vec<String> = b
        .js(
            "return [...document.querySelectorAll('#jobs li.job')].map((li) => li.dataset.id);",
            vec![],
        )
        .await?;
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    b.fill("#start", "").await?;
    b.fill("#stop", "").await?;
    b.click("#submit").await?;
    let long_id = newest_job_id(b, &known).await?;
    let long = row(&long_id);
    wait_until(
        "the long job to transcode",
        Duration::from_secs(60),
        || async { Ok(b.attr(&long, "data-state").await?.as_deref() == Some("transcoding")) },
    )
    .await?;
    b.click(&format!("{long} button.cancel")).await?;
    wait_until(
        "the row to show cancelled",
        Duration::from_secs(10),
        || async { Ok(b.attr(&long, "data-state").await?.as_deref() == Some("cancelled")) },
    )
    .await?;
    ensure!(
        !b.visible(&format!("{long} button.cancel")).await?,
        "no cancel button on a cancelled job"
    );
    out.cancelled_job = long_id.clone();
    eprintln!("[ui] cancelled {long_id}");

    // A job that fails shows its error in words, with the code.
    b.fill("#source", "nosuchvideo").await?;
    b.fill("#start", "").await?;
    b.fill("#stop", "").await?;
    b.press_in("#source", Key::Enter).await?;
    let mut known: Vec<&str> = vec![&id, &long_id, &out.animation_job, &out.audio_job];
    known.extend(out.edited_jobs.iter().map(|(id, ..)| id.as_str()));
    let failed_id = newest_job_id(b, &known).await?;
    let failed = row(&failed_id);
    wait_until(
        "the failed job's error",
        Duration::from_secs(60),
        || async { b.visible(&format!("{failed} .job-error")).await },
    )
    .await?;
    ensure!(b.attr(&failed, "data-state").await?.as_deref() == Some("failed"));
    let failure = b
        .text(&format!("{failed} .job-error"))
        .await?
        .unwrap_or_default();
    ensure!(
        failure.contains("source_not_found") && failure.to_lowercase().contains("not found"),
        "failed job shows: {failure}"
    );
    eprintln!("[ui] failed job shows: {failure}");
    no_console_errors(b, &[], &mut out.expected_network_errors).await?;

    // A bad time: the server's invalid_timecode is shown next to the start field.
    b.fill("#source", source).await?;
    b.fill("#start", "5").await?;
    b.fill("#stop", "00:00:04").await?;
    b.click("#submit").await?;
    wait_until(
        "the start field's error",
        Duration::from_secs(15),
        || async { b.visible("#start-error").await },
    )
    .await?;
    let start_error = b.text("#start-error").await?.unwrap_or_default();
    ensure!(
        start_error.contains("invalid_timecode"),
        "start error: {start_error}"
    );
    ensure!(b.attr("#start", "aria-invalid").await?.as_deref() == Some("true"));
    ensure!(
        b.js::<bool>(
            "return document.getElementById('start').parentElement.parentElement
                 .contains(document.getElementById('start-error'));",
            vec![]
        )
        .await?,
        "the error sits in the start field"
    );
    ensure!(
        focus(b).await?.id == "start",
        "focus moves to the field in error"
    );
    ensure!(
        !b.visible("#stop-error").await?,
        "no error at the stop field"
    );
    no_console_errors(b, &[400], &mut out.expected_network_errors).await?;
    eprintln!("[ui] start error: {start_error}");

    // Screenshots: desktop (full page) and phone width.
    b.js::<()>(
        "document.getElementById('toast').hidden = true; window.scrollTo(0, 0);
         document.querySelectorAll('.job-player video').forEach((v) => v.pause());",
        vec![],
    )
    .await?;
    b.screenshot(&artifacts.join("ui.png"), true).await?;
    b.viewport(390, 844).await?;
    let width: u32 = b
        .js("return document.documentElement.scrollWidth;", vec![])
        .await?;
    ensure!(
        width <= 390,
        "the page is {width}px wide at a 390px viewport"
    );
    b.screenshot(&artifacts.join("ui-phone.png"), false).await?;
    b.viewport(1280, 900).await?;
    eprintln!("[ui] screenshots taken");

    // A smart-cut clip (its edges encoded, its middle the source's own packets) plays to the
    // end in the browser's <video>: the join is clean for a real player too.
    let known: Vec<String> = b
        .js(
            "return [...document.querySelectorAll('#jobs li.job')].map((r) => r.dataset.id);",
            vec![],
        )
        .await?;
    let submitted: serde_json::Value = b
        .js_async(&format!(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/jobs', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
               body: JSON.stringify({{url: {source:?}, start: '00:00:01.5', stop: '00:00:06.3',
                                      accuracy: 'smart'}})}})
               .then((r) => r.json()).then(done, (e) => done({{error: String(e)}}));"
        ))
        .await?;
    let smart_id = submitted["id"]
        .as_str()
        .context("the smart job's id")?
        .to_owned();
    ensure!(!known.contains(&smart_id), "the smart job is new");
    let mut states = Vec::new();
    wait_for_completed(b, &smart_id, &mut states).await?;
    let method: Option<String> = b
        .js_async(&format!(
            "const done = arguments[arguments.length - 1];
             fetch('/v1/jobs/{smart_id}').then((r) => r.json())
               .then((j) => done(j.result && j.result.method), () => done(null));"
        ))
        .await?;
    ensure!(
        method.as_deref() == Some("smart"),
        "the job was made by {method:?}, not smart"
    );
    let ended: serde_json::Value = b
        .js_async(&format!(
            "const done = arguments[arguments.length - 1];
             const v = document.createElement('video');
             v.muted = true;
             v.addEventListener('ended', () => done({{ended: true, at: v.currentTime, of: v.duration}}));
             v.addEventListener('error', () => done({{error: v.error && v.error.code}}));
             v.src = '/v1/jobs/{smart_id}/video';
             document.body.append(v);
             v.playbackRate = 4;
             v.play().catch((e) => done({{error: String(e)}}));"
        ))
        .await?;
    ensure!(
        ended["ended"] == json!(true),
        "the smart clip did not play to its end: {ended}"
    );
    let (at, of) = (
        ended["at"].as_f64().unwrap_or(0.0),
        ended["of"].as_f64().unwrap_or(0.0),
    );
    ensure!(
        (of - 4.8).abs() < 0.1 && at >= of - 0.1,
        "played to {at} of {of} s"
    );
    b.js::<()>(
        "document.querySelectorAll('body > video').forEach((v) => v.remove());",
        vec![],
    )
    .await?;
    eprintln!("[ui] smart clip played to its end ({at:.2} of {of:.2} s)");

    // API keys, against a second gateway that has them: a 401 asks for a key, a wrong key is
    // refused, the right one goes out as a Bearer header and, on the video URLs (which cannot
    // send headers), as ?key=; it survives a reload.
    let keyed = [401];
    b.goto(&format!("{keyed_base}/ui")).await?;
    wait_until("the key prompt", Duration::from_secs(15), || async {
        b.visible("#banner").await
    })
    .await?;
    let banner = b.text("#banner").await?.unwrap_or_default();
    ensure!(banner.contains("needs an API key"), "banner: {banner}");
    ensure!(b.attr("#key-box", "open").await?.as_deref() == Some(""));
    ensure!(b.text("#jobs-empty").await?.as_deref() == Some("Enter an API key to see the jobs."));
    b.fill("#key", "not-the-key").await?;
    b.press_in("#key", Key::Enter).await?;
    wait_until(
        "the wrong key to be refused",
        Duration::from_secs(10),
        || async {
            Ok(b.text("#banner")
                .await?
                .is_some_and(|t| t.contains("refused the API key")))
        },
    )
    .await?;
    b.fill("#key", API_KEY).await?;
    b.press_in("#key", Key::Enter).await?;
    wait_until("the banner to go", Duration::from_secs(10), || async {
        Ok(!b.visible("#banner").await?)
    })
    .await?;
    wait_until("the keyed listing", Duration::from_secs(10), || async {
        Ok(b.text("#jobs-empty").await?.as_deref() == Some("No jobs yet."))
    })
    .await?;
    let stored: Option<String> = b
        .js("return localStorage.getItem('hopster.apiKey');", vec![])
        .await?;
    ensure!(stored.as_deref() == Some(API_KEY), "stored key {stored:?}");
    ensure!(b.text("#key-state").await?.as_deref() == Some("(set)"));

    b.fill("#source", source).await?;
    b.fill("#start", "00:00:01").await?;
    b.fill("#stop", "00:00:02").await?;
    b.press_in("#stop", Key::Enter).await?;
    let keyed_id = newest_job_id(b, &[]).await?;
    let keyed_row = row(&keyed_id);
    wait_for_completed(b, &keyed_id, &mut Vec::new()).await?;
    let keyed_video = format!("/v1/jobs/{keyed_id}/video?key={API_KEY}");
    b.click(&format!("{keyed_row} button.play")).await?;
    let keyed_player = format!("{keyed_row} .job-player video");
    let src = b.attr(&keyed_player, "src").await?;
    ensure!(src.as_deref() == Some(&*keyed_video), "keyed src {src:?}");
    wait_for_playing(b, &keyed_player).await?;
    let keyed_link = format!("{keyed_row} a.download");
    let href = b.attr(&keyed_link, "href").await?;
    ensure!(
        href.as_deref() == Some(&*keyed_video),
        "keyed href {href:?}"
    );
    let before = b.downloaded()?;
    b.click(&keyed_link).await?;
    b.take_download(&before, &artifacts.join("keyed-clip.mp4"))
        .await?;
    out.keyed_job_id = keyed_id;

    b.client.refresh().await?;
    wait_until(
        "the keyed row after a reload",
        Duration::from_secs(15),
        || async { b.visible(&keyed_row).await },
    )
    .await?;
    ensure!(
        !b.visible("#banner").await?,
        "no key prompt after a reload with a saved key"
    );
    ensure!(b.text("#key-state").await?.as_deref() == Some("(set)"));
    no_console_errors(b, &keyed, &mut out.expected_network_errors).await?;
    eprintln!("[ui] API key flow works");
    out.job_id = id;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_page_makes_plays_and_downloads_a_clip() {
    let root = workspace_root();
    let artifacts = root.join("target/ui-artifacts");
    for stale in [
        "clip.mp4",
        "keyed-clip.mp4",
        "ui.png",
        "ui-phone.png",
        "editor.png",
        "failure.png",
    ] {
        let _ = std::fs::remove_file(artifacts.join(stale));
    }
    std::fs::create_dir_all(&artifacts).expect("creating target/ui-artifacts");

    // The whole-video job the page cancels must be encoded (a long job), not remuxed as it is.
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.transcoder.passthrough = false,
    )
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

    let mut browser = Browser::launch().await.expect("starting the browser");
    let outcome = tokio::time::timeout(
        BROWSER_DEADLINE,
        drive(
            &mut browser,
            &stack.base_url,
            &source,
            &keyed.base_url,
            &artifacts,
        ),
    )
    .await
    .unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "the browser test took over {BROWSER_DEADLINE:?}"
        ))
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => {
            let shot = artifacts.join("failure.png");
            let _ = browser.screenshot(&shot, true).await;
            if let Ok((_, errors)) = browser.console_errors(&[]).await {
                eprintln!("console errors: {errors:#?}");
            }
            panic!("the browser test failed: {error:#}; see {}", shot.display());
        }
    };
    browser.close().await.expect("closing the browser");
    eprintln!("browser test outcome: {outcome:#?}");

    assert_eq!(
        outcome.states_seen.last().map(String::as_str),
        Some("completed"),
        "{outcome:?}"
    );
    // The page's bad-time request was answered 400, and that was the only failed load.
    assert!(
        outcome
            .expected_network_errors
            .iter()
            .any(|e| e.contains("status of 400")),
        "{outcome:?}"
    );
    // The job cancelled from the page really is cancelled on the server.
    let (_, status) = stack
        .get_json(&format!("/v1/jobs/{}", outcome.cancelled_job))
        .await;
    assert_eq!(status["state"], "cancelled", "{status}");
    // The editor's jobs cut what the handles showed.
    for (id, start, stop) in &outcome.edited_jobs {
        let (_, job) = stack.get_json(&format!("/v1/jobs/{id}")).await;
        let micros = |t: &Value| {
            t.as_str()
                .and_then(|t| shared_proto::Timecode::parse(t).ok())
                .map(|t| t.as_micros())
        };
        let asked = |t: &str| shared_proto::Timecode::parse(t).ok().map(|t| t.as_micros());
        assert_eq!(
            (micros(&job["spec"]["start"]), micros(&job["spec"]["stop"])),
            (asked(start), asked(stop)),
            "{job}"
        );
    }
    // The page's GIF is the job it asked for.
    let (_, gif) = stack
        .get_json(&format!("/v1/jobs/{}", outcome.animation_job))
        .await;
    assert_eq!(
        (gif["spec"]["profile"].as_str(), gif["spec"]["fps"].as_u64()),
        (Some("gif"), Some(8)),
        "{gif}"
    );
    assert_eq!(gif["result"]["mime"], "image/gif", "{gif}");
    let (_, mp3) = stack
        .get_json(&format!("/v1/jobs/{}", outcome.audio_job))
        .await;
    assert_eq!(mp3["result"]["mime"], "audio/mpeg", "{mp3}");
    // The page's job is the API's job, and the file it downloaded is the 2 s clip.
    let (code, job) = stack
        .get_json(&format!("/v1/jobs/{}", outcome.job_id))
        .await;
    assert_eq!((code, job["state"].as_str()), (200, Some("completed")));
    assert_eq!(job["spec"]["start"], "00:00:02");
    assert_eq!(job["spec"]["stop"], "00:00:04");
    let clip = artifacts.join("clip.mp4");
    let size = std::fs::metadata(&clip).expect("the downloaded clip").len();
    assert_eq!(Some(size), job["result"]["size"].as_u64());
    let duration = probe(&clip).duration;
    assert!((duration - 2.0).abs() <= 0.05, "duration {duration}");

    // With keys: the page's key reached the API, and ?key= fetched the 1 s clip.
    let (code, _) = keyed
        .get_json(&format!("/v1/jobs/{}", outcome.keyed_job_id))
        .await;
    assert_eq!(code, 401, "the keyed stack wants a key");
    let duration = probe(&artifacts.join("keyed-clip.mp4")).duration;
    assert!(
        (duration - 1.0).abs() <= 0.05,
        "keyed clip duration {duration}"
    );

    let shot = artifacts.join("ui.png");
    assert_png(&shot);
    assert_png(&artifacts.join("ui-phone.png"));
    assert_png(&artifacts.join("editor.png"));
    if std::env::var("HOPSTER_UI_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::copy(&shot, root.join("docs/ui.png")).expect("copying to docs/ui.png");
        std::fs::copy(artifacts.join("editor.png"), root.join("docs/editor.png"))
            .expect("copying to docs/editor.png");
    }
    keyed.stop().await;
    stack.stop().await;
}
