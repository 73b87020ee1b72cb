//! `POST /v1/jobs` bodies, through the same code the gateway's `create` runs: the contract's
//! body parser into `CreateJob`, then its rules and the spec (`shared_proto::api`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::api::parse_body;
use shared_proto::spec::normalize_url;
use shared_proto::CreateJob;

/// The default `video_url_template`.
const TEMPLATE: &str = "http://127.0.0.1:8000/{video_id}.mp4";

fuzz_target!(|data: &[u8]| {
    let spec = match parse_body::<CreateJob>(data).and_then(|body| body.into_spec(TEMPLATE)) {
        Ok(spec) => spec,
        Err(e) => {
            // `refused` in the gateway: an address the URL parser refused may still be named.
            if let Some(rejected) = e.rejected_url {
                let _ = shared_proto::net::forbidden_url_text(&rejected.text);
            }
            assert!(!e.message.is_empty());
            return;
        }
    };
    // The spec's URL is the one every later reader (the guard, the fetch, the job id) parses
    // again: it must read back as itself.
    assert_eq!(normalize_url(&spec.url).as_ref(), Ok(&spec.url));
    if let Some(callback) = &spec.callback_url {
        assert_eq!(normalize_url(callback).as_ref(), Ok(callback));
    }
    let _ = spec.job_id();
});
