//! `Timecode::parse` (the `start`, `stop` and `poster_at` of every request) and the seed's
//! twelve-digit fragment: whatever parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::Timecode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Timecode::parse(text) {
        assert_eq!(Timecode::parse(&t.to_string()), Ok(t), "{text:?}");
        assert_eq!(Timecode::parse_seed_fragment(&t.seed_fragment()), Some(t));
        let _ = t.ffmpeg_arg();
    }
    if let Some(t) = Timecode::parse_seed_fragment(text) {
        assert_eq!(t.seed_fragment(), text);
    }
});
