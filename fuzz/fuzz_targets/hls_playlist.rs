//! An HLS playlist as the downloader reads it (`downloader-worker/src/hls/playlist.rs`): parsed,
//! a variant picked from a master, a media playlist's segments resolved against a base URL and
//! the ones a clip overlaps chosen. The first 8 bytes pick the clip and the height limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_proto::Timecode;

#[path = "../../downloader-worker/src/hls/playlist.rs"]
#[allow(dead_code)]
mod playlist;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, text) = data.split_at(8);
    let start = Timecode::from_micros(
        u64::from(u32::from_le_bytes([head[0], head[1], head[2], head[3]])) * 1000,
    );
    let length = u64::from(u16::from_le_bytes([head[4], head[5]])) * 10_000;
    let stop = Timecode::from_micros(start.as_micros() + length.max(1));
    let max_height = u32::from(u16::from_le_bytes([head[6], head[7]]));
    let _ = playlist::is_playlist(None, text);
    let base = url::Url::parse("https://cdn.example.com/v/index.m3u8").expect("base");
    match playlist::parse(text, &base) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(master)) => {
            if let Some(v) = playlist::pick_variant(&master, max_height) {
                let _ = playlist::resolve(&base, &v.uri, "variant", &|_| Ok(()));
            }
        }
        Ok(m3u8_rs::Playlist::MediaPlaylist(media)) => {
            if let Ok(all) = playlist::segments(&media, &base, &|_| Ok(())) {
                let needed = playlist::overlapping(&all, Some(start), Some(stop));
                assert!(needed.len() <= all.len());
                let _ = playlist::overlapping(&all, None, None);
            }
        }
        Err(_) => {}
    }
});
