//! The mp4 box reader (`transcoder_worker::mp4info::describe`): it reads the `moov` ffmpeg wrote
//! for a clip, and with `accuracy: keyframe` the codec headers in it are the source's, copied;
//! an inspection reads a source's keyframes from its `moov` (`mp4info::keyframes`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../transcoder-worker/src/mp4info.rs"]
#[allow(dead_code)]
mod mp4info;
#[path = "../../transcoder-worker/src/probe.rs"]
#[allow(dead_code)]
mod probe;

fuzz_target!(|data: &[u8]| {
    if let Some(described) = mp4info::describe(data) {
        let _ = described.duration();
        let _ = described.container_allowed();
    }
    // The smart cut compares the `avcC` of its pieces with the source's.
    if let Some(config) = mp4info::avcc(data) {
        assert!(config.len() <= data.len());
    }
    // A source's inspection reads its keyframes from the `moov` a stranger's server sent.
    if let Some(found) = mp4info::video_index(data) {
        assert!(found.iter().all(|k| k.time.is_finite() && k.time >= 0.0));
        assert!(found.windows(2).all(|w| w[0].time < w[1].time));
        // A storyboard places a few of them in the file.
        for k in found.iter().take(8) {
            let _ = mp4info::sample_location(data, k.sample);
        }
    }
});
