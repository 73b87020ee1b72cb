//! The source's `Content-Range` as the transcoder's range proxy reads it
//! (`transcoder-worker/src/proxy/range.rs`): the one number it takes from an untrusted server.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../transcoder-worker/src/proxy/range.rs"]
#[allow(dead_code)]
mod proxy;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        let _ = proxy::total_size(value);
    }
});
