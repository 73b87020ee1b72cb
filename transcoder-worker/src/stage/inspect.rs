//! Source inspection (`inspect` queue): a source's streams, its keyframes read from its index,
//! and a storyboard of keyframes across it, all through the guarded range proxy, so nothing
//! but the index and one keyframe a tile is read.

use super::{through_proxy, Run, Transcoder, PROBE_DEADLINE};
use crate::ffmpeg;
use crate::probe::{Input, Probe};
use crate::workdir::{path_str, WorkDir};
use hopster_common::worker::{Stage, StageError};
use shared_proto::api::{Inspection, SourceState, SourceStatus, Storyboard, StreamInfo};
use shared_proto::{keys, topology, ErrorCode, InspectJob, JobFailure, Timecode};

/// The most tiles in a storyboard, and the shortest time between two.
const MAX_TILES: f64 = 100.0;
const MIN_INTERVAL_SECS: f64 = 2.0;
/// Tile width (the height keeps the picture's shape); tiles a row.
const TILE_WIDTH: u32 = 160;
const COLUMNS: u32 = 10;
/// Tiles one ffmpeg makes: each is an input of its own (one HTTP connection through the proxy).
const TILES_A_RUN: usize = 10;
/// The proxy's first window for an inspection's reads: each tile reads one keyframe (about
/// 20 KB at 2 Mbit/s) after the source's head, so the proxy's usual 128 KiB would mostly be
/// read for nothing.
const INSPECTION_WINDOW: u64 = 16 * 1024;
/// How far past a tile's time its seek aims (see `storyboard`).
const SEEK_PAST_SECS: f64 = 0.1;
/// The largest `moov` read for the keyframes.
const MAX_MOOV: u64 = 64 * 1024 * 1024;

/// The inspection stage: the transcoder's tools, another queue.
pub struct Inspector(Transcoder);

impl Inspector {
    pub fn new(transcoder: Transcoder) -> Inspector {
        Inspector(transcoder)
    }
}

impl Stage for Inspector {
    type Message = InspectJob;
    const KEY: &'static str = topology::INSPECT;

    fn retry_policy(&self) -> hopster_common::retry::RetryPolicy {
        hopster_common::retry::RetryPolicy::of_jobs(&self.0.worker)
    }

    /// The inspection records its own failure: the worker loop's records a job's.
    async fn handle(&self, job: InspectJob) -> Result<(), StageError> {
        match self.0.inspect(&job).await {
            Ok(()) | Err(StageError::Cancelled) => Ok(()),
            Err(StageError::Retry { code, message })
                if self
                    .retry_policy()
                    .next_delay_ms(job.attempt.max(1), None)
                    .is_some() =>
            {
                Err(StageError::Retry { code, message })
            }
            Err(StageError::Abort { code, message } | StageError::Retry { code, message }) => {
                log::info!(
                    "source {}: inspection failed: {code}: {message}",
                    job.job_id
                );
                self.0
                    .record_inspection(&job, |s| {
                        s.state = SourceState::Failed;
                        s.error = Some(JobFailure { code, message });
                    })
                    .await
            }
        }
    }
}

impl Transcoder {
    /// Changes the inspection's document, if it is still there.
    async fn record_inspection(
        &self,
        job: &InspectJob,
        change: impl FnOnce(&mut SourceStatus),
    ) -> Result<(), StageError> {
        let Some(mut status) = self.store.inspection(&job.job_id).await? else {
            return Ok(());
        };
        change(&mut status);
        self.store.put_inspection(&status).await?;
        Ok(())
    }

    async fn inspect(&self, job: &InspectJob) -> Result<(), StageError> {
        let id = &job.job_id;
        match self.store.inspection(id).await? {
            None => {
                log::info!("source {id}: no inspection asked for any more; nothing to do");
                return Ok(());
            }
            Some(s) if s.state == SourceState::Ready => return Ok(()),
            Some(_) => {}
        }
        self.record_inspection(job, |s| s.state = SourceState::Inspecting)
            .await?;
        let proxy = self.proxy(&job.url, INSPECTION_WINDOW).await?;
        let input = Input::proxied(proxy.url.clone()).capped(self.limits.max_pixels);
        let dir = WorkDir::create(self.settings.work_dir.as_deref(), id.as_str()).map_err(|e| {
            StageError::retry(ErrorCode::TranscodeFailed, format!("a work directory: {e}"))
        })?;
        let found = self.examine(&input, &proxy.url, &dir).await;
        let read = proxy.bytes();
        let (inspection, sprite) = through_proxy(found, proxy.upstream_error())?;
        log::info!("source {id}: inspected, {read} bytes of it read");
        if let (Some(board), Some(sprite)) = (&inspection.storyboard, sprite) {
            self.store
                .put_bytes(&keys::storyboard_key(id, "jpg"), sprite)
                .await?;
            let vtt = board.vtt("storyboard.jpg", inspection.duration_secs);
            self.store
                .put_bytes(&keys::storyboard_key(id, "vtt"), vtt.into_bytes())
                .await?;
        }
        self.record_inspection(job, |s| {
            s.state = SourceState::Ready;
            s.error = None;
            s.inspection = Some(inspection);
        })
        .await
    }

    /// What the source is: the probe, checked against the limits; the keyframes from its
    /// index; the storyboard's sprite.
    async fn examine(
        &self,
        input: &Input,
        proxy_url: &str,
        dir: &WorkDir,
    ) -> Result<(Inspection, Option<Vec<u8>>), StageError> {
        let probe = self.probe(input).await?;
        let duration = super::clip::check_source(&probe, &self.limits)?;
        // An mp4's index: the keyframes' times, and where each keyframe's bytes are.
        let moov = if probe.format.format_name.starts_with("mov,mp4") {
            read_moov(&self.loopback, proxy_url).await
        } else {
            None
        };
        let index = moov.as_deref().and_then(crate::mp4info::video_index);
        let avcc = moov.as_deref().and_then(crate::mp4info::avcc);
        let keyframes = index
            .as_ref()
            .map(|found| found.iter().map(|k| k.time).collect());
        let by_index =
            index
                .as_deref()
                .zip(moov.as_deref())
                .zip(avcc)
                .map(|((index, moov), avcc)| ByIndex {
                    proxy_url,
                    index,
                    moov,
                    avcc,
                });
        let (storyboard, sprite) = match self
            .storyboard(input, &probe, duration, dir, by_index)
            .await?
        {
            Some((board, sprite)) => (Some(board), Some(sprite)),
            None => (None, None),
        };
        let inspection = Inspection {
            duration_secs: duration.as_secs_f64(),
            container: probe.format.format_name.clone(),
            streams: probe
                .streams
                .iter()
                .map(|s| StreamInfo {
                    index: s.index,
                    kind: s.codec_type.clone(),
                    codec: s.codec_name.clone(),
                    width: s.width,
                    height: s.height,
                    fps: s.fps().filter(|_| s.codec_type == "video"),
                    bit_rate: s.bit_rate.as_deref().and_then(|b| b.parse().ok()),
                    channels: s.channels,
                    sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()),
                })
                .collect(),
            keyframes,
            storyboard,
        };
        Ok((inspection, sprite))
    }

    /// The storyboard: a keyframe every `interval_secs` (2 s, or longer so there are at most
    /// 100), each a tile `TILE_WIDTH` wide, laid out `COLUMNS` a row in one JPEG.
    async fn storyboard(
        &self,
        input: &Input,
        probe: &Probe,
        duration: Timecode,
        dir: &WorkDir,
        by_index: Option<ByIndex<'_>>,
    ) -> Result<Option<(Storyboard, Vec<u8>)>, StageError> {
        let Some(video) = probe.video() else {
            return Ok(None);
        };
        let (Some(width), Some(height)) = (video.width.filter(|w| *w > 0), video.height) else {
            return Ok(None);
        };
        let secs = duration.as_secs_f64();
        let interval = (secs / MAX_TILES).max(MIN_INTERVAL_SECS);
        let tiles = ((secs / interval).ceil() as u32).max(1);
        let tile_height = ((f64::from(TILE_WIDTH) * f64::from(height) / f64::from(width) / 2.0)
            .round() as u32
            * 2)
        .max(2);
        let columns = tiles.min(COLUMNS);
        let board = Storyboard {
            tiles,
            columns,
            rows: tiles.div_ceil(columns),
            tile_width: TILE_WIDTH,
            tile_height,
            interval_secs: interval,
        };
        // An H.264 mp4: each tile's keyframe read alone by the index, all decoded by one run.
        if let Some(by_index) = by_index {
            match self.sprite_by_index(&by_index, &board, dir).await {
                Ok(Some(sprite)) => return Ok(Some((board, sprite))),
                Ok(None) => log::info!("the index does not place every keyframe; seeking instead"),
                Err(e) => log::warn!("the storyboard from the index failed ({e}); seeking instead"),
            }
        }
        // Seeking lands on the keyframe before the target even when one is at the target
        // itself (Matroska's cues, by milliseconds): aim a little past it.
        let all: Vec<(Timecode, String)> = (0..tiles)
            .map(|i| {
                let at = Timecode::from_secs_f64(f64::from(i) * interval + SEEK_PAST_SECS);
                let file = dir.file(&format!("tile_{i:03}.jpg"));
                Ok((at, path_str(&file)?.to_owned()))
            })
            .collect::<Result<_, StageError>>()?;
        let format = Some(probe.format.format_name.as_str());
        for run in all.chunks(TILES_A_RUN) {
            let args = ffmpeg::storyboard_tiles_args(input, format, run, (TILE_WIDTH, tile_height));
            self.runner
                .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
                .await
                .map_err(|e| Run::Cut.failed(e))?;
        }
        // A tile ffmpeg found no keyframe for takes its neighbour's picture, so the sprite
        // keeps one tile per cue.
        for i in 0..all.len() {
            let tile = std::path::Path::new(&all[i].1);
            if !tile.exists() {
                let neighbour = if i > 0 {
                    &all[i - 1].1
                } else {
                    &all[(i + 1).min(all.len() - 1)].1
                };
                std::fs::copy(neighbour, tile).map_err(|e| {
                    StageError::abort(
                        ErrorCode::NotAVideo,
                        format!("no picture for the storyboard at {}: {e}", all[i].0),
                    )
                })?;
            }
        }
        let sprite = dir.file("storyboard.jpg");
        let args = ffmpeg::storyboard_sprite_args(
            path_str(&dir.file("tile_%03d.jpg"))?,
            (board.columns, board.rows),
            path_str(&sprite)?,
        );
        self.runner
            .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
            .await
            .map_err(|e| Run::Cut.failed(e))?;
        let bytes = std::fs::read(&sprite).map_err(|e| {
            StageError::retry(ErrorCode::TranscodeFailed, format!("the storyboard: {e}"))
        })?;
        Ok(Some((board, bytes)))
    }
}

/// What a storyboard is read by when the source is an H.264 mp4: its index and its `avcC`.
struct ByIndex<'a> {
    proxy_url: &'a str,
    index: &'a [crate::mp4info::Keyframe],
    moov: &'a [u8],
    avcc: &'a [u8],
}

impl Transcoder {
    /// The sprite from the keyframes the index places: tile `i` is the keyframe at or before
    /// `i × interval`, its sample read by range (one request, its exact bytes) and written
    /// behind the parameter sets into one raw H.264 stream, which one ffmpeg run decodes and
    /// tiles. `None` when a tile's keyframe has no place in the index.
    async fn sprite_by_index(
        &self,
        by: &ByIndex<'_>,
        board: &Storyboard,
        dir: &WorkDir,
    ) -> Result<Option<Vec<u8>>, StageError> {
        let client = &self.loopback;
        let mut stream = Vec::new();
        let mut last: Option<((u64, u32), Vec<u8>)> = None;
        for i in 0..board.tiles {
            let at = f64::from(i) * board.interval_secs + 1e-6;
            let before = by.index.partition_point(|k| k.time <= at).max(1) - 1;
            let Some(place) = by
                .index
                .get(before)
                .and_then(|k| crate::mp4info::sample_location(by.moov, k.sample))
            else {
                return Ok(None);
            };
            let frame = match &last {
                Some((p, frame)) if *p == place => frame.clone(),
                _ => {
                    let (offset, size) = place;
                    let Some(sample) =
                        fetch_range(client, by.proxy_url, offset, offset + u64::from(size) - 1)
                            .await
                            .filter(|s| s.len() == size as usize)
                    else {
                        return Ok(None);
                    };
                    let Some(frame) = crate::mp4info::annex_b(by.avcc, &sample) else {
                        return Ok(None);
                    };
                    last = Some((place, frame.clone()));
                    frame
                }
            };
            stream.extend_from_slice(&frame);
        }
        let raw = dir.file("tiles.h264");
        std::fs::write(&raw, &stream).map_err(|e| {
            StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("the tiles' stream: {e}"),
            )
        })?;
        let sprite = dir.file("storyboard.jpg");
        let args = ffmpeg::storyboard_stream_args(
            path_str(&raw)?,
            (board.tile_width, board.tile_height),
            (board.columns, board.rows),
            self.limits.max_pixels,
            path_str(&sprite)?,
        );
        self.runner
            .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
            .await
            .map_err(|e| Run::Cut.failed(e))?;
        std::fs::read(&sprite).map(Some).map_err(|e| {
            StageError::retry(ErrorCode::TranscodeFailed, format!("the storyboard: {e}"))
        })
    }
}

/// Bytes `from..=to` of `url` when it answers the range (`206`).
async fn fetch_range(client: &reqwest::Client, url: &str, from: u64, to: u64) -> Option<Vec<u8>> {
    let response = client
        .get(url)
        .header(reqwest::header::RANGE, format!("bytes={from}-{to}"))
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return None;
    }
    response.bytes().await.ok().map(|b| b.to_vec())
}

/// The `moov` of the mp4 at `url` (the range proxy), found by walking the top-level boxes
/// with range requests: a few small reads, and the `moov` itself. `None` when the source does
/// not answer ranges or the walk finds no `moov`.
pub(super) async fn read_moov(client: &reqwest::Client, url: &str) -> Option<Vec<u8>> {
    walk_to_moov(|from, to| fetch_range(client, url, from, to)).await
}

/// The `moov` of the mp4 file at `path` (a staged source), found as [`read_moov`] finds it.
pub(super) async fn read_moov_file(path: &std::path::Path) -> Option<Vec<u8>> {
    walk_to_moov(|from, to| read_file_range(path, from, to)).await
}

/// Bytes `from..=to` of the source: by range through the proxy, or from the staged file.
/// `None` when the source is neither, or the read gives other than that many bytes.
pub(super) async fn read_source_range(
    client: &reqwest::Client,
    input: &crate::probe::Input,
    from: u64,
    to: u64,
) -> Option<Vec<u8>> {
    let bytes = match (input.proxy_url(), input.file_path()) {
        (Some(url), _) => fetch_range(client, url, from, to).await?,
        (None, Some(path)) => read_file_range(path, from, to).await?,
        (None, None) => return None,
    };
    (u64::try_from(bytes.len()).ok()? == to.checked_sub(from)? + 1).then_some(bytes)
}

async fn read_file_range(path: &std::path::Path, from: u64, to: u64) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await.ok()?;
    file.seek(std::io::SeekFrom::Start(from)).await.ok()?;
    let mut bytes = Vec::new();
    file.take(to.checked_sub(from)? + 1)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    Some(bytes)
}

/// Walks the top-level boxes with `range` (bytes `from..=to`) to the `moov`, and reads it.
async fn walk_to_moov<F, R>(range: F) -> Option<Vec<u8>>
where
    F: Fn(u64, u64) -> R,
    R: std::future::Future<Output = Option<Vec<u8>>>,
{
    let mut offset = 0u64;
    for _ in 0..32 {
        let head = range(offset, offset + 15).await?;
        let size = u64::from(u32::from_be_bytes(head.get(0..4)?.try_into().ok()?));
        let kind = head.get(4..8)?;
        let size = match size {
            1 => u64::from_be_bytes(head.get(8..16)?.try_into().ok()?),
            // Runs to the end of the file: nothing after it.
            0 => return None,
            n => n,
        };
        if size < 8 {
            return None;
        }
        if kind == b"moov" {
            if size > MAX_MOOV {
                return None;
            }
            let moov = range(offset, offset + size - 1).await?;
            return (moov.len() as u64 == size).then_some(moov);
        }
        offset = offset.checked_add(size)?;
    }
    None
}
