//! `POST /v1/jobs` bodies: the bytes read into a JSON object by the gateway's own body reader
//! (`api-gateway/src/routes/body/json.rs`), then the steps of `create` and `output_options`
//! (`api-gateway/src/routes/v1.rs`) in their order, through the same parsers. The handler
//! itself needs actix and the app state, so its few lines of glue are repeated here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::spec::{normalize_url, parse_bound, url_for_video_id};
use shared_proto::{Accuracy, JobSpec, Profile};

#[path = "../../api-gateway/src/routes/body/json.rs"]
#[allow(dead_code)]
mod body;

/// The default `video_url_template`.
const TEMPLATE: &str = "http://127.0.0.1:8000/{video_id}.mp4";

fuzz_target!(|data: &[u8]| {
    let Some(spec) = create(data) else {
        return;
    };
    // The spec's URL is the one every later reader (the guard, the fetch, the job id) parses
    // again: it must read back as itself.
    assert_eq!(normalize_url(&spec.url).as_ref(), Ok(&spec.url));
    if let Some(callback) = &spec.callback_url {
        assert_eq!(normalize_url(callback).as_ref(), Ok(callback));
    }
    let _ = spec.job_id();
});

fn create(data: &[u8]) -> Option<JobSpec> {
    let obj = body::object(data).ok()?;
    body::only_fields(
        &obj,
        &[
            "url",
            "video_id",
            "start",
            "stop",
            "accuracy",
            "profile",
            "max_height",
            "poster_at",
            "callback_url",
        ],
    )
    .ok()?;
    let accuracy = match body::string_field(&obj, "accuracy").ok()?.as_deref() {
        None | Some("frame") => Accuracy::Frame,
        Some("keyframe") => Accuracy::Keyframe,
        Some(other) => {
            let _ = other.chars().take(40).collect::<String>();
            return None;
        }
    };
    let url = body::string_field(&obj, "url").ok()?;
    let video_id = body::string_field(&obj, "video_id").ok()?;
    let start = parse_bound("start", body::string_field(&obj, "start").ok()?.as_deref()).ok()?;
    let stop = parse_bound("stop", body::string_field(&obj, "stop").ok()?.as_deref()).ok()?;
    let url = match (url, &video_id) {
        (Some(url), None) => url,
        (None, Some(id)) => url_for_video_id(TEMPLATE, id).ok()?,
        _ => return None,
    };
    let spec = JobSpec::new(&url, video_id, start, stop);
    if spec.is_err() {
        // `jobs::refuse_unacceptable`: an address the URL parser refused may still be named.
        let _ = shared_proto::net::forbidden_url_text(&url);
    }
    let mut spec = spec.ok()?;
    spec.accuracy = accuracy;
    output_options(&obj, &mut spec)?;
    Some(spec)
}

fn output_options(
    obj: &serde_json::Map<String, serde_json::Value>,
    spec: &mut JobSpec,
) -> Option<()> {
    if let Some(text) = body::string_field(obj, "profile").ok()? {
        spec.profile = Profile::parse(&text)?;
    }
    match obj.get("max_height") {
        None | Some(serde_json::Value::Null) => {}
        Some(value) => {
            let height = value.as_u64().filter(|h| (16..=4320).contains(h))?;
            if !spec.profile.has_video() {
                return None;
            }
            spec.max_height = Some(height as u32);
        }
    }
    spec.poster_at = parse_bound(
        "poster_at",
        body::string_field(obj, "poster_at").ok()?.as_deref(),
    )
    .ok()?;
    if spec.poster_at.is_some() && !spec.profile.has_video() {
        return None;
    }
    if let (Some(at), Some(length)) = (spec.poster_at, spec.clip_length()) {
        if at >= length {
            return None;
        }
    }
    if spec.accuracy == Accuracy::Keyframe
        && (spec.profile != Profile::Mp4 || spec.max_height.is_some())
    {
        return None;
    }
    if let Some(url) = body::string_field(obj, "callback_url").ok()? {
        match normalize_url(&url) {
            Ok(url) => spec.callback_url = Some(url),
            Err(_) => {
                let _ = shared_proto::net::forbidden_url_text(&url);
                return None;
            }
        }
    }
    Some(())
}
