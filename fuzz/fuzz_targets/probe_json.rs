//! ffprobe's JSON (`transcoder_worker::probe::Probe::parse`), written by ffprobe about a file
//! anyone may serve, and everything the worker reads from a parsed probe.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../transcoder-worker/src/probe.rs"]
#[allow(dead_code)]
mod probe;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(probe) = probe::Probe::parse(json) else {
        return;
    };
    let _ = probe.duration().map(|d| d.ffmpeg_arg());
    let _ = probe.container_allowed();
    let _ = (probe.video(), probe.audio());
    for stream in &probe.streams {
        let _ = stream.fps();
    }
});
