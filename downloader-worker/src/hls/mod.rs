//! HLS sources, read by this code and never by ffmpeg's `hls` demuxer (which would follow a
//! playlist's URIs anywhere, `file://` included). The playlist is parsed with `m3u8-rs`; a
//! master playlist gives one variant; only the segments the clip overlaps (by their
//! `EXTINF`s) are fetched, every URI through the guarded client and checked like a source
//! URL, AES-128 segments decrypted; their concatenation (after the `EXT-X-MAP` init section,
//! for fMP4) is staged as the job's source. The transcoder cuts it with the clip's times
//! made relative to the first fetched segment ([`HlsSource::offset`]).

mod playlist;

pub use playlist::is_playlist;

use crate::fetch;
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, KeyIvInit};
use futures::StreamExt;
use hopster_common::guard::{self, Policy};
use hopster_common::settings::SourceSettings;
use hopster_common::worker::{JobTracker, StageError};
use m3u8_rs::Playlist;
use playlist::{overlapping, parse, pick_variant, resolve, segments, Key, Refusal, Segment};
use shared_proto::{keys, ErrorCode, HlsSource, JobSpec, JobStatus, Timecode};
use std::collections::HashMap;
use url::Url;

/// Largest single segment, init section or key read (held in memory to decrypt).
const MAX_PIECE_BYTES: u64 = 256 * 1024 * 1024;

/// The staged part of an HLS source.
pub struct Staged {
    pub key: String,
    pub hls: HlsSource,
    /// Bytes staged; `None` when an earlier job staged the same segments.
    pub bytes: Option<u64>,
}

fn abort(code: ErrorCode, message: impl Into<String>) -> StageError {
    StageError::abort(code, message)
}

impl From<Refusal> for StageError {
    fn from(refusal: Refusal) -> Self {
        StageError::abort(refusal.code, refusal.message)
    }
}

/// Fetches `url` (or its byte range) whole, up to `max` bytes.
async fn get(
    http: &reqwest::Client,
    url: &Url,
    range: Option<(u64, u64)>,
    max: u64,
    what: &str,
    mut on_chunk: impl FnMut(usize),
) -> Result<Vec<u8>, StageError> {
    let mut request = http.get(url.clone());
    if let Some((offset, length)) = range {
        let last = offset.saturating_add(length.max(1) - 1);
        request = request.header(reqwest::header::RANGE, format!("bytes={offset}-{last}"));
    }
    let response = fetch::open(request, url.as_str()).await?;
    if range.is_some() && response.status().as_u16() != 206 {
        return Err(abort(
            ErrorCode::SourceUnreachable,
            format!(
                "{url} answered {} to a byte-range request ({what} with EXT-X-BYTERANGE)",
                response.status()
            ),
        ));
    }
    let too_large = |bytes: u64| {
        abort(
            ErrorCode::SourceTooLarge,
            format!(
                "the {what} at {url} is larger than the limit of {max} bytes (at least {bytes})"
            ),
        )
    };
    if let Some(len) = response.content_length().filter(|len| *len > max) {
        return Err(too_large(len));
    }
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            StageError::retry(
                ErrorCode::SourceUnreachable,
                format!("reading the {what} at {url}: {e}"),
            )
        })?;
        if (out.len() + chunk.len()) as u64 > max {
            return Err(too_large((out.len() + chunk.len()) as u64));
        }
        on_chunk(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn decrypt(data: Vec<u8>, key: &[u8; 16], iv: [u8; 16], url: &Url) -> Result<Vec<u8>, StageError> {
    cbc::Decryptor::<aes::Aes128>::new(key.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| {
            abort(
                ErrorCode::NotAVideo,
                format!("the segment at {url} does not decrypt with its AES-128 key"),
            )
        })
}

/// Stages the part of the HLS source at `url` that the job's clip needs.
pub async fn stage(
    http: &reqwest::Client,
    limits: &SourceSettings,
    policy: &Policy,
    spec: &JobSpec,
    tracker: &mut JobTracker,
) -> Result<Staged, StageError> {
    let url = Url::parse(&spec.url)
        .map_err(|e| abort(ErrorCode::InvalidUrl, format!("{}: {e}", spec.url)))?;
    let max_playlist = limits.max_playlist_bytes;
    let check = |url: &Url| guard::check_url(url, policy).map_err(|e| e.to_string());
    let text = get(http, &url, None, max_playlist, "playlist", |_| {}).await?;
    let (media_url, media) = match parse(&text, &url)? {
        Playlist::MediaPlaylist(media) => (url.clone(), media),
        Playlist::MasterPlaylist(master) => {
            let max_height = spec
                .max_height
                .unwrap_or(limits.max_height)
                .min(limits.max_height);
            let variant = pick_variant(&master, max_height).ok_or_else(|| {
                abort(
                    ErrorCode::NotAVideo,
                    format!("the master playlist at {url} lists no variant"),
                )
            })?;
            let variant_url = resolve(&url, &variant.uri, "variant", &check)?;
            log::info!(
                "job {}: variant {variant_url} ({} bit/s{}) of {} listed",
                tracker.status().id,
                variant.bandwidth,
                variant
                    .resolution
                    .as_ref()
                    .map(|r| format!(", {}x{}", r.width, r.height))
                    .unwrap_or_default(),
                master.variants.len()
            );
            let text = get(
                http,
                &variant_url,
                None,
                max_playlist,
                "variant playlist",
                |_| {},
            )
            .await?;
            match parse(&text, &variant_url)? {
                Playlist::MediaPlaylist(media) => (variant_url, media),
                Playlist::MasterPlaylist(_) => {
                    return Err(abort(
                        ErrorCode::NotAVideo,
                        format!("the variant {variant_url} is another master playlist"),
                    ))
                }
            }
        }
    };
    if !media.end_list {
        return Err(abort(
            ErrorCode::LiveSource,
            format!(
                "{media_url} is a live playlist (no EXT-X-ENDLIST); only finished streams are cut"
            ),
        ));
    }
    let listed = segments(&media, &media_url, &check)?;
    let total_us = listed
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.duration_us));
    if total_us > limits.max_duration_secs.saturating_mul(1_000_000) {
        return Err(abort(
            ErrorCode::SourceTooLong,
            format!(
                "the stream is {:.1} s long; the limit is {} s",
                total_us as f64 / 1e6,
                limits.max_duration_secs
            ),
        ));
    }
    let (start, stop) = spec.span();
    if start.is_some_and(|s| s.as_micros() >= total_us) {
        return Err(abort(
            ErrorCode::ClipOutOfRange,
            format!(
                "the clip starts at or past the end of the stream ({})",
                Timecode::from_micros(total_us)
            ),
        ));
    }
    let needed = overlapping(&listed, start, stop);
    let (Some(first), Some(last)) = (needed.first(), needed.last()) else {
        return Err(abort(
            ErrorCode::NotAVideo,
            format!("{media_url} lists no segment"),
        ));
    };
    if needed.len() as u64 > u64::from(limits.max_segments) {
        return Err(abort(
            ErrorCode::SourceTooLarge,
            format!(
                "the clip needs {} segments; at most {} are fetched (sources.max_segments)",
                needed.len(),
                limits.max_segments
            ),
        ));
    }
    if needed.iter().any(|s| s.map != first.map) {
        return Err(abort(
            ErrorCode::NotAVideo,
            "the clip spans segments with different init sections (EXT-X-MAP)",
        ));
    }
    let hls = HlsSource {
        offset: Timecode::from_micros(first.start_us),
        segments: needed.len() as u32,
        listed: listed.len() as u32,
    };
    let key = keys::hls_source_key(&spec.url, media_url.as_str(), first.sequence, last.sequence);
    let progress = &mut tracker.status_mut().progress.download;
    progress.total_segments = Some(hls.segments);
    progress.segments = Some(0);
    if tracker.store().head(&key).await?.is_some() {
        log::info!(
            "job {}: the {} segments are staged already",
            tracker.status().id,
            hls.segments
        );
        let progress = &mut tracker.status_mut().progress.download;
        progress.cached = true;
        progress.segments = Some(hls.segments);
        return Ok(Staged {
            key,
            hls,
            bytes: None,
        });
    }
    let bytes = fetch_segments(http, limits, needed, &key, tracker).await?;
    Ok(Staged {
        key,
        hls,
        bytes: Some(bytes),
    })
}

/// Fetches `needed` in order (after their init section), decrypting where a key says so,
/// into the store at `key`.
async fn fetch_segments(
    http: &reqwest::Client,
    limits: &SourceSettings,
    needed: &[Segment],
    key: &str,
    tracker: &mut JobTracker,
) -> Result<u64, StageError> {
    let mut upload = tracker
        .store()
        .upload(key, fetch::PART_BYTES, fetch::PARTS_IN_FLIGHT)
        .await?;
    let mut keys: HashMap<Url, [u8; 16]> = HashMap::new();
    let mut bytes = 0u64;
    let budget = |bytes: u64| limits.max_bytes.saturating_sub(bytes).min(MAX_PIECE_BYTES);
    let count = |n: usize| {
        hopster_common::metrics::count(
            "hopster_downloaded_bytes_total",
            &[("how", "hls")],
            n as f64,
        );
    };
    /// One GET of the fetch: the init section or a segment.
    struct Fetch<'a> {
        url: &'a Url,
        range: Option<(u64, u64)>,
        key: Option<&'a Key>,
        sequence: u64,
        what: &'static str,
    }
    let init = needed.first().and_then(|first| {
        let map = first.map.as_ref()?;
        Some(Fetch {
            url: &map.url,
            range: map.range,
            key: first.key.as_ref(),
            sequence: first.sequence,
            what: "init section",
        })
    });
    let has_init = usize::from(init.is_some());
    let segments = needed.iter().map(|s| Fetch {
        url: &s.url,
        range: s.range,
        key: s.key.as_ref(),
        sequence: s.sequence,
        what: "segment",
    });
    for (i, piece) in init.into_iter().chain(segments).enumerate() {
        let Fetch {
            url,
            range,
            key: aes,
            sequence,
            what,
        } = piece;
        let data = get(http, url, range, budget(bytes), what, count).await?;
        let data = match aes {
            None => data,
            Some(k) => {
                let secret = match keys.get(&k.url) {
                    Some(secret) => *secret,
                    None => {
                        let raw = get(http, &k.url, None, 64, "key", |_| {}).await?;
                        let secret: [u8; 16] = raw.as_slice().try_into().map_err(|_| {
                            abort(
                                ErrorCode::NotAVideo,
                                format!(
                                    "the AES-128 key at {} is {} bytes, not 16",
                                    k.url,
                                    raw.len()
                                ),
                            )
                        })?;
                        keys.insert(k.url.clone(), secret);
                        secret
                    }
                };
                let iv = k.iv.unwrap_or(u128::from(sequence).to_be_bytes());
                decrypt(data, &secret, iv, url)?
            }
        };
        bytes += data.len() as u64;
        if bytes > limits.max_bytes {
            return Err(abort(
                ErrorCode::SourceTooLarge,
                format!(
                    "the segments are larger than the limit of {} bytes (at least {bytes})",
                    limits.max_bytes
                ),
            ));
        }
        upload.put(data.into()).await?;
        let done = (i + 1).saturating_sub(has_init) as u32;
        let progress = &mut tracker.status_mut().progress.download;
        JobStatus::record_transfer(progress, bytes, None);
        progress.segments = Some(done);
        progress.percent = Some(f64::from(done) * 100.0 / needed.len() as f64);
        tracker.flush_throttled().await?;
    }
    upload.finish().await?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_128_cbc_segments_decrypt() {
        use aes::cipher::BlockEncryptMut;
        let key = [7u8; 16];
        let iv = u128::from(9u64).to_be_bytes();
        let plain = b"a segment of mpeg-ts bytes, not a multiple of sixteen".to_vec();
        let sealed = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(&plain);
        let url = Url::parse("https://cdn.example.com/s.ts").unwrap();
        assert_eq!(decrypt(sealed.clone(), &key, iv, &url).unwrap(), plain);
        assert!(decrypt(sealed, &[8u8; 16], iv, &url).is_err());
    }
}
