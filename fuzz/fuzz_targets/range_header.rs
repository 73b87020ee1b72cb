//! The `Range` header: the gateway's (`api-gateway/src/range/spec.rs`, any client) and the
//! transcoder's range proxy's (`transcoder-worker/src/proxy/range.rs`, ffmpeg's requests).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../api-gateway/src/range/spec.rs"]
mod gateway;
#[path = "../../transcoder-worker/src/proxy/range.rs"]
#[allow(dead_code)]
mod proxy;

use gateway::ByteRange;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for size in [0, 1, 1000, u64::MAX] {
        match gateway::parse(Some(header), size) {
            // What `range::serve` answers with and asks the store for: a non-empty range
            // inside the object.
            ByteRange::Partial { first, last } => {
                assert!(
                    first <= last && last < size,
                    "{header:?} of {size}: {first}-{last}"
                )
            }
            ByteRange::Full | ByteRange::Unsatisfiable => {}
        }
    }
    if let Some((first, Some(last))) = proxy::parse_range(Some(header)) {
        // The proxy answers `last + 1 - first` bytes.
        assert!(first <= last, "{header:?}: {first}-{last}");
    }
});
