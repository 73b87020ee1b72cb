//! `POST /schedule` bodies (the seed's API): the bytes read into a JSON object by the gateway's
//! own body reader (`api-gateway/src/routes/body/json.rs`), then the steps of `schedule`
//! (`api-gateway/src/routes/seed.rs`) in their order, through the same parsers. The name it
//! answers must lead `/progress` and `/download` back to the job it scheduled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::naming::{parse_seed_name, seed_name};
use shared_proto::spec::{parse_bound, url_for_video_id};
use shared_proto::JobSpec;

#[path = "../../api-gateway/src/routes/body/json.rs"]
#[allow(dead_code)]
mod body;

/// The default `video_url_template`.
const TEMPLATE: &str = "http://127.0.0.1:8000/{video_id}.mp4";

fuzz_target!(|data: &[u8]| {
    let Some((spec, name)) = schedule(data) else {
        return;
    };
    // `lookup` in seed.rs: the name parsed back, the spec built again without the id.
    let parsed = parse_seed_name(&name).unwrap_or_else(|| panic!("{name} does not parse"));
    let url = url_for_video_id(TEMPLATE, &parsed.video_id).ok();
    let found = url.and_then(|url| JobSpec::new(&url, None, parsed.start, parsed.stop).ok());
    assert_eq!(found.map(|s| s.job_id()), Some(spec.job_id()), "{name}");
});

fn schedule(data: &[u8]) -> Option<(JobSpec, String)> {
    let obj = body::object(data).ok()?;
    let video_id = body::string_field(&obj, "video_id").ok()??;
    let start = parse_bound("start", body::string_field(&obj, "start").ok()?.as_deref()).ok()?;
    let stop = parse_bound("stop", body::string_field(&obj, "stop").ok()?.as_deref()).ok()?;
    let url = url_for_video_id(TEMPLATE, &video_id).ok()?;
    let spec = JobSpec::new(&url, Some(video_id.clone()), start, stop).ok()?;
    let name = seed_name(&video_id, start, stop);
    Some((spec, name))
}
