//! HLS playlists read: parsed with `m3u8-rs`, one variant picked from a master, the segments
//! of a media playlist resolved with their times, byte ranges, keys and init sections, and
//! those a clip overlaps chosen. No I/O: every URI is checked by the caller's `check` (the SSRF
//! guard), so the fetching (`super`) and the fuzz target share this file.

use m3u8_rs::{KeyMethod, MediaPlaylist, Playlist};
use shared_proto::{ErrorCode, Timecode};
use std::collections::HashMap;
use url::Url;

/// A playlist (or a URI in it) refused: permanent, with the code the job fails with.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

/// The check a URI must pass before it may be fetched.
pub type Check<'a> = &'a dyn Fn(&Url) -> Result<(), String>;

fn abort(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Content types that name an HLS playlist.
const PLAYLIST_TYPES: [&str; 4] = [
    "application/vnd.apple.mpegurl",
    "application/x-mpegurl",
    "audio/mpegurl",
    "audio/x-mpegurl",
];

/// Whether a response is an HLS playlist: by its content type, or by its first line.
pub fn is_playlist(content_type: Option<&str>, first_bytes: &[u8]) -> bool {
    let named = content_type
        .and_then(|t| t.split(';').next())
        .map(str::trim)
        .is_some_and(|t| PLAYLIST_TYPES.iter().any(|p| t.eq_ignore_ascii_case(p)));
    let body = first_bytes
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(first_bytes);
    named || body.starts_with(b"#EXTM3U")
}

/// One segment of the media playlist, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub url: Url,
    /// `(offset, length)` of `EXT-X-BYTERANGE`.
    pub range: Option<(u64, u64)>,
    pub start_us: u64,
    pub duration_us: u64,
    pub sequence: u64,
    pub key: Option<Key>,
    pub map: Option<Piece>,
}

/// An `EXT-X-MAP` init section.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub url: Url,
    pub range: Option<(u64, u64)>,
}

/// An `EXT-X-KEY` of method AES-128.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub url: Url,
    pub iv: Option<[u8; 16]>,
}

/// Resolves a URI of the playlist at `base` and checks it like a source URL: http(s) only,
/// then `check` (the SSRF guard's check of the URL; names are checked where they resolve).
pub fn resolve(base: &Url, uri: &str, what: &str, check: Check) -> Result<Url, Refusal> {
    let url = base.join(uri.trim()).map_err(|e| {
        abort(
            ErrorCode::NotAVideo,
            format!(
                "the playlist's {what} URI `{}` is not a URL: {e}",
                clipped(uri)
            ),
        )
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(abort(
            ErrorCode::SourceForbidden,
            format!(
                "the playlist's {what} URI `{}` is a {} URL; only http and https are fetched",
                clipped(uri),
                url.scheme()
            ),
        ));
    }
    check(&url).map_err(|e| {
        abort(
            ErrorCode::SourceForbidden,
            format!("the playlist's {what} URI: {e}"),
        )
    })?;
    Ok(url)
}

pub fn clipped(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A playlist, master or media.
pub fn parse(bytes: &[u8], url: &Url) -> Result<Playlist, Refusal> {
    m3u8_rs::parse_playlist_res(bytes).map_err(|e| {
        abort(
            ErrorCode::NotAVideo,
            format!(
                "the playlist at {url} does not parse: {}",
                clipped(&e.to_string())
            ),
        )
    })
}

/// The variant a master playlist offers that this job takes: the highest bandwidth among
/// those no taller than `max_height` (a variant that states no resolution counts as fitting),
/// or the highest bandwidth overall when none fits.
pub fn pick_variant(
    master: &m3u8_rs::MasterPlaylist,
    max_height: u32,
) -> Option<&m3u8_rs::VariantStream> {
    let variants = master.variants.iter().filter(|v| !v.is_i_frame);
    let fits = |v: &&m3u8_rs::VariantStream| {
        v.resolution
            .as_ref()
            .is_none_or(|r| r.height <= u64::from(max_height))
    };
    variants
        .clone()
        .filter(fits)
        .max_by_key(|v| v.bandwidth)
        .or_else(|| variants.max_by_key(|v| v.bandwidth))
}

pub fn parse_iv(text: &str) -> Option<[u8; 16]> {
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    let value = u128::from_str_radix(hex, 16).ok()?;
    (hex.len() <= 32).then(|| value.to_be_bytes())
}

/// The segments of a media playlist, resolved, with their times and the key and init section
/// in force for each.
pub fn segments(media: &MediaPlaylist, base: &Url, check: Check) -> Result<Vec<Segment>, Refusal> {
    let mut out = Vec::with_capacity(media.segments.len());
    let mut start_us = 0u64;
    let mut key: Option<Key> = None;
    let mut map: Option<Piece> = None;
    let mut next_offset: HashMap<Url, u64> = HashMap::new();
    let mut range_of = |url: &Url, range: &Option<m3u8_rs::ByteRange>| {
        range.as_ref().map(|r| {
            let offset = r
                .offset
                .unwrap_or_else(|| next_offset.get(url).copied().unwrap_or(0));
            next_offset.insert(url.clone(), offset.saturating_add(r.length));
            (offset, r.length)
        })
    };
    for (i, s) in media.segments.iter().enumerate() {
        // m3u8-rs 6.0.1 refuses `METHOD=NONE` without an IV (its check is inverted) and keeps
        // the tag as an unknown one: read it here, or the key before it would carry on.
        let unencrypted = s.unknown_tags.iter().any(|t| {
            t.tag == "X-KEY"
                && t.rest
                    .as_deref()
                    .is_some_and(|r| r.split(',').any(|a| a.trim() == "METHOD=NONE"))
        });
        if unencrypted {
            key = None;
        }
        if let Some(k) = &s.key {
            key = match &k.method {
                KeyMethod::None => None,
                KeyMethod::AES128 => {
                    let uri = k.uri.as_deref().ok_or_else(|| {
                        abort(ErrorCode::NotAVideo, "an AES-128 EXT-X-KEY has no URI")
                    })?;
                    let iv = match k.iv.as_deref() {
                        Some(text) => Some(parse_iv(text).ok_or_else(|| {
                            abort(
                                ErrorCode::NotAVideo,
                                format!(
                                    "the EXT-X-KEY IV `{}` is not a 128-bit hex number",
                                    clipped(text)
                                ),
                            )
                        })?),
                        None => None,
                    };
                    Some(Key {
                        url: resolve(base, uri, "key", check)?,
                        iv,
                    })
                }
                other => {
                    return Err(abort(
                        ErrorCode::NotAVideo,
                        format!("segments encrypted with {other} cannot be read (AES-128 can)"),
                    ))
                }
            };
        }
        if let Some(m) = &s.map {
            let url = resolve(base, &m.uri, "init section (EXT-X-MAP)", check)?;
            let range = m
                .byte_range
                .as_ref()
                .map(|r| (r.offset.unwrap_or(0), r.length));
            map = Some(Piece { url, range });
        }
        let url = resolve(base, &s.uri, "segment", check)?;
        let range = range_of(&url, &s.byte_range);
        let duration_us = (f64::from(s.duration).max(0.0) * 1e6).round() as u64;
        out.push(Segment {
            url,
            range,
            start_us,
            duration_us,
            sequence: media.media_sequence.saturating_add(i as u64),
            key: key.clone(),
            map: map.clone(),
        });
        start_us = start_us.saturating_add(duration_us);
    }
    Ok(out)
}

/// The segments that overlap `[start, stop)` (to the end without a stop).
pub fn overlapping(
    segments: &[Segment],
    start: Option<Timecode>,
    stop: Option<Timecode>,
) -> &[Segment] {
    let start = start.map_or(0, Timecode::as_micros);
    let stop = stop.map_or(u64::MAX, Timecode::as_micros);
    let first = segments
        .iter()
        .position(|s| s.start_us.saturating_add(s.duration_us) > start)
        .unwrap_or(segments.len());
    let last = segments
        .iter()
        .rposition(|s| s.start_us < stop)
        .map_or(first, |i| i + 1);
    &segments[first..last.max(first)]
}

#[cfg(test)]
mod tests {
    use super::*;

    use shared_proto::net::forbidden_url;

    /// The guard's check of an address host (what the downloader adds: names resolved).
    fn guard(url: &Url) -> Result<(), String> {
        match forbidden_url(url) {
            Some((ip, reason)) => Err(format!("{ip} is a {reason} address")),
            None => Ok(()),
        }
    }

    fn media(text: &str) -> (MediaPlaylist, Url) {
        let url = Url::parse("https://cdn.example.com/v/index.m3u8").unwrap();
        match m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap() {
            Playlist::MediaPlaylist(m) => (m, url),
            Playlist::MasterPlaylist(_) => panic!("master"),
        }
    }

    const VOD: &str = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n\
        #EXTINF:4.0,\nseg0.ts\n#EXTINF:4.0,\nseg1.ts\n#EXTINF:4.0,\nseg2.ts\n#EXTINF:2.5,\nseg3.ts\n\
        #EXT-X-ENDLIST\n";

    #[test]
    fn only_the_segments_a_clip_overlaps_are_needed() {
        let (m, url) = media(VOD);
        let all = segments(&m, &url, &guard).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[2].url.as_str(), "https://cdn.example.com/v/seg2.ts");
        assert_eq!((all[2].start_us, all[2].sequence), (8_000_000, 9));
        let tc = |s: &str| Some(Timecode::parse(s).unwrap());
        let names = |s: &[Segment]| s.iter().map(|s| s.sequence).collect::<Vec<_>>();
        assert_eq!(
            names(overlapping(&all, tc("00:00:05"), tc("00:00:07"))),
            [8]
        );
        assert_eq!(
            names(overlapping(&all, tc("00:00:04"), tc("00:00:08"))),
            [8]
        );
        assert_eq!(
            names(overlapping(&all, tc("00:00:03.9"), tc("00:00:08.1"))),
            [7, 8, 9]
        );
        assert_eq!(names(overlapping(&all, None, tc("00:00:01"))), [7]);
        assert_eq!(names(overlapping(&all, tc("00:00:13"), None)), [10]);
        assert_eq!(names(overlapping(&all, None, None)), [7, 8, 9, 10]);
    }

    #[test]
    fn byte_ranges_keys_and_maps_carry_forward() {
        let (m, url) = media(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"700@0\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1\",IV=0x000102030405060708090a0b0c0d0e0f\n\
             #EXTINF:4,\n#EXT-X-BYTERANGE:1000@700\nmedia.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:500\nmedia.mp4\n\
             #EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\nplain.m4s\n#EXT-X-ENDLIST\n",
        );
        let all = segments(&m, &url, &guard).unwrap();
        assert_eq!(all[0].range, Some((700, 1000)));
        assert_eq!(all[1].range, Some((1700, 500)));
        let key = all[0].key.as_ref().unwrap();
        assert_eq!(key.url.as_str(), "https://cdn.example.com/keys/k1");
        assert_eq!(key.iv.unwrap()[15], 0x0f);
        assert_eq!(all[1].key, all[0].key);
        assert_eq!(all[2].key, None);
        for s in &all {
            let map = s.map.as_ref().unwrap();
            assert_eq!((map.url.path(), map.range), ("/v/init.mp4", Some((0, 700))));
        }
    }

    #[test]
    fn every_uri_is_checked_like_a_source() {
        for (uri, code) in [
            ("file:///etc/passwd", ErrorCode::SourceForbidden),
            ("http://127.0.0.1/seg.ts", ErrorCode::SourceForbidden),
            ("http://2130706433/seg.ts", ErrorCode::SourceForbidden),
            (
                "http://[::ffff:10.0.0.1]/seg.ts",
                ErrorCode::SourceForbidden,
            ),
            ("http://169.254.169.254/latest", ErrorCode::SourceForbidden),
            ("gopher://x/", ErrorCode::SourceForbidden),
        ] {
            let (m, url) = media(&VOD.replace("seg2.ts", uri));
            let err = segments(&m, &url, &guard).unwrap_err();
            assert_eq!(err.code, code, "{uri}: {err:?}");
        }
        let (m, url) = media(&VOD.replace(
            "#EXTINF:4.0,\nseg0.ts",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"http://10.1.2.3/k\"\n#EXTINF:4.0,\nseg0.ts",
        ));
        let err = segments(&m, &url, &guard).unwrap_err();
        assert_eq!(err.code, ErrorCode::SourceForbidden, "{err:?}");
    }

    #[test]
    fn a_master_playlist_gives_the_best_variant_that_fits() {
        let text = "#EXTM3U\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nlow.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nmid.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=6000000,RESOLUTION=1920x1080\nhigh.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=1920x1080,URI=\"iframes.m3u8\"\n";
        let Playlist::MasterPlaylist(master) =
            m3u8_rs::parse_playlist_res(text.as_bytes()).unwrap()
        else {
            panic!("not a master")
        };
        assert_eq!(pick_variant(&master, 7680).unwrap().uri, "high.m3u8");
        assert_eq!(pick_variant(&master, 720).unwrap().uri, "mid.m3u8");
        assert_eq!(pick_variant(&master, 719).unwrap().uri, "low.m3u8");
        assert_eq!(pick_variant(&master, 100).unwrap().uri, "high.m3u8");
    }

    #[test]
    fn absurd_numbers_saturate_instead_of_overflowing() {
        let (m, url) = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n\
             #EXTINF:100000000000000000000000000000.0,\n#EXT-X-BYTERANGE:18446744073709551615@18446744073709551615\na.ts\n\
             #EXTINF:100000000000000000000000000000.0,\n#EXT-X-BYTERANGE:18446744073709551615\na.ts\n#EXTINF:NaN,\nb.ts\n\
             #EXT-X-ENDLIST\n",
        );
        let all = segments(&m, &url, &guard).unwrap();
        assert_eq!(all[1].start_us, u64::MAX);
        assert_eq!(all[1].range, Some((u64::MAX, u64::MAX)));
        assert_eq!(all[2].sequence, u64::MAX);
        let tc = |s: &str| Some(Timecode::parse(s).unwrap());
        assert_eq!(overlapping(&all, tc("00:00:01"), tc("00:00:02")).len(), 1);
    }

    #[test]
    fn playlists_are_told_by_type_or_first_line() {
        assert!(is_playlist(Some("application/vnd.apple.mpegurl"), b""));
        assert!(is_playlist(
            Some("Application/X-MPEGURL; charset=utf-8"),
            b""
        ));
        assert!(is_playlist(Some("application/octet-stream"), b"#EXTM3U\n"));
        assert!(is_playlist(None, b"\xef\xbb\xbf#EXTM3U"));
        assert!(!is_playlist(Some("video/mp4"), b"\0\0\0 ftypisom"));
    }
}
