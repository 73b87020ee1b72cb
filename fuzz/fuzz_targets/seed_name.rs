//! The seed's output names (`/progress?reference=`, `/download?video_file=`): parsing is
//! strict, so whatever parses is exactly the name `seed_name` gives its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::naming::{parse_seed_name, seed_name};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(name) = parse_seed_name(text) {
        assert_eq!(seed_name(&name.video_id, name.start, name.stop), text);
    }
});
