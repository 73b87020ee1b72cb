//! `POST /schedule` bodies (the seed's API), through the same code the gateway's `schedule`
//! runs (`shared_proto::api::Schedule`). The name it answers must lead `/progress` and
//! `/download` back to the job it scheduled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::api::{parse_body, Schedule};
use shared_proto::naming::{parse_seed_name, seed_name};
use shared_proto::spec::url_for_video_id;
use shared_proto::JobSpec;

/// The default `video_url_template`.
const TEMPLATE: &str = "http://127.0.0.1:8000/{video_id}.mp4";

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_body::<Schedule>(data) else {
        return;
    };
    let Ok(spec) = body.to_spec(TEMPLATE) else {
        return;
    };
    let name = seed_name(&body.video_id, body.start, body.stop);
    // `lookup` in seed.rs: the name parsed back, the spec built again without the id.
    let parsed = parse_seed_name(&name).unwrap_or_else(|| panic!("{name} does not parse"));
    let url = url_for_video_id(TEMPLATE, &parsed.video_id).ok();
    let found = url.and_then(|url| JobSpec::new(&url, None, parsed.start, parsed.stop).ok());
    assert_eq!(found.map(|s| s.job_id()), Some(spec.job_id()), "{name}");
});
