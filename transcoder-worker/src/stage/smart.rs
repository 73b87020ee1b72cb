//! The smart cut, run: the source's packets and first frame read, the head and tail encoded
//! with its own x264 settings and checked to carry its very codec headers, the whole groups
//! of pictures between copied, the pieces joined with the audio cut once. Any doubt on the
//! way (`Unqualified`) and the caller encodes every frame instead.

use super::clip::Clip;
use super::{Run, Transcoder, PROBE_DEADLINE};
use crate::ffmpeg::smart::{copy_args, encode_args, first_frame_args, join_args};
use crate::probe::{self, Input, Probe};
use crate::smart::{self, Packets, Piece, Plan, Unqualified};
use crate::workdir::{path_str, WorkDir};
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, StageError};
use shared_proto::Timecode;
use std::path::Path;

/// What a smart cut made.
pub(super) struct SmartDone {
    pub(super) copied_secs: f64,
    pub(super) encoded_secs: f64,
}

/// A clip's smart-cut pieces: the concat list's lines for them, the frames planned (when
/// known), and what was copied and encoded.
struct Pieces {
    list: String,
    frames: Option<u64>,
    done: SmartDone,
}

/// Writes a concat list.
async fn write_list(path: &Path, text: &str) -> Result<(), StageError> {
    tokio::fs::write(path, text).await.map_err(|e| {
        StageError::retry(
            shared_proto::ErrorCode::TranscodeFailed,
            format!("writing the smart cut's piece list: {e}"),
        )
    })
}

/// The largest first frame read by range for its x264 settings; a larger one (no frame a
/// muxer writes for video of a size this service takes) is left to ffmpeg.
const MAX_FIRST_SAMPLE: u64 = 32 * 1024 * 1024;
/// A piece file this large is not read into memory to compare its headers.
const MAX_PIECE_HEADER_READ: u64 = 256 * 1024 * 1024;

impl Transcoder {
    /// Makes `clip` of `input` by smart cut into `output` (with `stop_given` false, the clip
    /// runs to the end of the source). `Ok(Err(why))` when the source or the clip does not
    /// qualify: nothing was written to `output`, encode every frame instead.
    pub(super) async fn smart_cut(
        &self,
        tracker: &mut JobTracker,
        input: &Input,
        probe: &Probe,
        (clip, stop_given): (Clip, bool),
        dir: &WorkDir,
        output: &Path,
    ) -> Result<Result<SmartDone, Unqualified>, StageError> {
        let pieces = match self
            .smart_pieces(tracker, input, probe, (clip, stop_given), dir, "")
            .await?
        {
            Ok(pieces) => pieces,
            Err(why) => return Ok(Err(why)),
        };
        let list = dir.file("smart-pieces.txt");
        write_list(&list, &pieces.list).await?;
        let args = join_args(
            path_str(&list)?,
            input,
            clip.start,
            stop_given.then_some(clip.length),
            probe
                .audio()
                .is_some_and(|a| a.codec_name.as_deref() == Some("aac")),
            path_str(output)?,
        );
        self.piece(&args, clip).await?;
        if let Err(why) = self.joined_as_planned(output, pieces.frames).await? {
            return Ok(Err(why));
        }
        Ok(Ok(pieces.done))
    }

    /// Several clips smart-cut into one `output`: every clip's pieces (its encoded edges and
    /// copied GOPs) in one list, joined as they are, and the sound taken again from the source
    /// clip by clip and encoded once. `Ok(Err(why))` when a clip does not qualify.
    pub(super) async fn smart_cut_clips(
        &self,
        tracker: &mut JobTracker,
        input: &Input,
        probe: &Probe,
        clips: &[shared_proto::ClipRange],
        dir: &WorkDir,
        output: &Path,
    ) -> Result<Result<SmartDone, Unqualified>, StageError> {
        let mut list = String::new();
        let mut frames = Some(0u64);
        let mut total = SmartDone {
            copied_secs: 0.0,
            encoded_secs: 0.0,
        };
        for (i, range) in clips.iter().enumerate() {
            let clip = Clip {
                start: range.start,
                length: range.length(),
            };
            let prefix = format!("{i}-");
            match self
                .smart_pieces(tracker, input, probe, (clip, true), dir, &prefix)
                .await?
            {
                Ok(pieces) => {
                    list.push_str(&pieces.list);
                    frames = frames.zip(pieces.frames).map(|(a, b)| a + b);
                    total.copied_secs += pieces.done.copied_secs;
                    total.encoded_secs += pieces.done.encoded_secs;
                }
                Err(why) => return Ok(Err(Unqualified(format!("clip {i}: {}", why.0)))),
            }
        }
        let listed = dir.file("smart-clips.txt");
        write_list(&listed, &list).await?;
        let whole = Clip {
            start: clips.first().map_or(Timecode::ZERO, |c| c.start),
            length: Timecode::from_micros(clips.iter().map(|c| c.length().as_micros()).sum()),
        };
        let args = crate::ffmpeg::smart::concat_copy_args(
            path_str(&listed)?,
            input,
            clips,
            probe.audio().is_some(),
            path_str(output)?,
        );
        self.piece(&args, whole).await?;
        if let Err(why) = self.joined_as_planned(output, frames).await? {
            return Ok(Err(why));
        }
        Ok(Ok(total))
    }

    /// Whether the joined `output` holds exactly the `planned` frames (when known): the
    /// stretch between the listed windows was counted, not listed. If not, it is removed.
    async fn joined_as_planned(
        &self,
        output: &Path,
        planned: Option<u64>,
    ) -> Result<Result<(), Unqualified>, StageError> {
        if let Some(planned) = planned {
            let made = self.video_packets(output).await;
            if made != Some(planned) {
                let _ = tokio::fs::remove_file(output).await;
                return Ok(Err(Unqualified(format!(
                    "the joined clip holds {made:?} frames, not the {planned} planned"
                ))));
            }
        }
        Ok(Ok(()))
    }

    /// The source's codec headers (its `avcC`) and the bytes of its first video frame, where
    /// x264 writes its settings. From the index where the source is an mp4 read by range or
    /// staged: the `moov` and that one sample, no process. Else from the first frame copied
    /// into a small mp4 by ffmpeg.
    async fn source_headers(
        &self,
        input: &Input,
        dir: &WorkDir,
    ) -> Result<(Option<Vec<u8>>, Vec<u8>), StageError> {
        if let Some((config, first_frame)) = self.source_headers_by_index(input).await {
            return Ok((Some(config), first_frame));
        }
        let first_frame = dir.file("smart-first.mp4");
        let args = first_frame_args(input, path_str(&first_frame)?);
        self.runner
            .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
            .await
            .map_err(|e| Run::Cut.failed(e))?;
        let bytes = read_small(&first_frame).await?;
        Ok((crate::mp4info::avcc(&bytes).map(<[u8]>::to_vec), bytes))
    }

    async fn source_headers_by_index(&self, input: &Input) -> Option<(Vec<u8>, Vec<u8>)> {
        let moov = self.source_moov(input).await?;
        let config = crate::mp4info::avcc(&moov)?.to_vec();
        let (offset, size) = crate::mp4info::sample_location(&moov, 0)?;
        if size == 0 || u64::from(size) > MAX_FIRST_SAMPLE {
            return None;
        }
        let sample = super::inspect::read_source_range(
            &self.loopback,
            input,
            offset,
            offset + u64::from(size) - 1,
        )
        .await?;
        Some((config, sample))
    }

    /// A clip's smart-cut pieces, written as `smart-{prefix}head.mp4` and so on: the edges
    /// encoded with the source's x264 settings (and checked to carry its codec headers), the
    /// whole GOPs between copied. Answers the concat list's lines for them, the frames planned
    /// and what was copied and encoded.
    async fn smart_pieces(
        &self,
        tracker: &mut JobTracker,
        input: &Input,
        probe: &Probe,
        (clip, stop_given): (Clip, bool),
        dir: &WorkDir,
        prefix: &str,
    ) -> Result<Result<Pieces, Unqualified>, StageError> {
        if let Err(why) = smart::check_stream(probe) {
            return Ok(Err(why));
        }
        tracker.status_mut().timeline.ffmpeg_started_ms = Some(hopster_common::now_ms());
        let video = probe.video().cloned().unwrap_or_default();
        let stop = stop_given.then(|| add(clip.start, clip.length));
        // The packets and the first frame are independent reads of the source.
        // The packets are listed a little past the stop: B-frames arrive after later frames.
        let listed_to = stop.map(|s| add(s, Timecode::from_micros(2_000_000)));
        let packets_args = smart::packets_args(input, clip.start, listed_to);
        let (listed, first) = tokio::join!(
            self.runner
                .run(&self.settings.ffprobe, &packets_args, PROBE_DEADLINE, None),
            self.source_headers(input, dir),
        );
        let listed = listed.map_err(|e| Run::Keyframes.failed(e))?;
        let (source_config, first_bytes) = first?;
        let packets = match Packets::parse(&listed) {
            Ok(p) => p,
            Err(why) => return Ok(Err(why)),
        };
        let plan = match Plan::new(&packets, clip.start, stop) {
            Ok(plan) => plan,
            Err(why) => return Ok(Err(why)),
        };
        let Some(source_config) = source_config else {
            return Ok(Err(Unqualified(
                "the source's codec headers could not be read".into(),
            )));
        };
        let Some(options) = smart::x264_options(&first_bytes) else {
            return Ok(Err(Unqualified(
                "the video carries no x264 settings to continue it with".into(),
            )));
        };
        let encoder = match self.encoder_args(&video, &options) {
            Ok(args) => args,
            Err(why) => return Ok(Err(why)),
        };
        log::info!(
            "job {}: smart cut: {} frames encoded, the rest copied",
            tracker.status().id,
            plan.encoded_frames()
        );

        // The pieces are independent: head, middle and tail run at once (within the runner's
        // process cap).
        let timescale = packets.den / packets.num.max(1);
        let piece = |name: &str| dir.file(&format!("smart-{prefix}{name}.mp4"));
        let (head, middle, tail) = (piece("head"), piece("middle"), piece("tail"));
        let encode = |p: Option<Piece>, file: &Path| {
            let args = p.map(|p| {
                Ok::<_, StageError>(encode_args(
                    input,
                    packets.time(p.first),
                    p.frames.unwrap_or(0),
                    &encoder,
                    timescale,
                    path_str(file)?,
                ))
            });
            async move {
                match args {
                    None => Ok(()),
                    Some(args) => self.piece(&args?, clip).await,
                }
            }
        };
        let copy = async {
            let args = copy_args(
                input,
                packets.time(plan.middle.first),
                plan.middle.frames,
                timescale,
                path_str(&middle)?,
            );
            self.piece(&args, clip).await
        };
        let (h, m, t) = tokio::join!(encode(plan.head, &head), copy, encode(plan.tail, &tail));
        h?;
        m?;
        t?;
        let done_secs = packets.secs(plan.frame_ticks * plan.encoded_frames() as i64);
        tracker.status_mut().record_transcode(
            Timecode::from_secs_f64(done_secs),
            clip.length,
            None,
        );
        match tracker.flush_throttled().await {
            Err(StoreError::Cancelled(_)) => return Err(StageError::Cancelled),
            Err(e) => log::warn!("job {}: progress write failed: {e}", tracker.status().id),
            Ok(()) => {}
        }

        // The join is only clean if every piece carries the source's own codec headers.
        for (p, file) in [(plan.head, &head), (plan.tail, &tail)] {
            if p.is_none() {
                continue;
            }
            let bytes = read_small(file).await?;
            if crate::mp4info::avcc(&bytes) != Some(source_config.as_slice()) {
                return Ok(Err(Unqualified(
                    "libx264 could not reproduce the source's codec headers".into(),
                )));
            }
        }

        let mut list = String::new();
        for (p, file) in [
            (plan.head, &head),
            (Some(plan.middle), &middle),
            (plan.tail, &tail),
        ] {
            let Some(p) = p else { continue };
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            list.push_str(&format!("file '{}'\n", name.unwrap_or_default()));
            if let Some(frames) = p.frames {
                let secs = packets.secs(plan.frame_ticks * frames as i64);
                list.push_str(&format!("duration {secs:.6}\n"));
            }
        }
        let copied_secs = match plan.middle.frames {
            Some(frames) => packets.secs(plan.frame_ticks * frames as i64),
            None => {
                let end = probe.duration().unwrap_or(clip.start).as_secs_f64();
                (end - packets.time(plan.middle.first).as_secs_f64()).max(0.0)
            }
        };
        Ok(Ok(Pieces {
            list,
            frames: plan.total_frames(),
            done: SmartDone {
                copied_secs,
                encoded_secs: done_secs,
            },
        }))
    }

    /// The number of video packets in a file this worker wrote (read from its index); `None`
    /// when ffprobe cannot tell.
    async fn video_packets(&self, file: &Path) -> Option<u64> {
        // An mp4 this worker wrote lists its samples in its index: no ffprobe process (about
        // 65 ms to start here, on the critical path of every smart cut).
        if let Some(count) = super::inspect::read_moov_file(file)
            .await
            .and_then(|moov| crate::mp4info::video_samples(&moov))
        {
            return Some(count);
        }
        let args = probe::ffprobe_args(
            &Input::output(file),
            &[
                "-select_streams",
                "v:0",
                "-count_packets",
                "-show_entries",
                "stream=nb_read_packets",
                "-of",
                "csv=p=0",
            ],
        );
        let out = self
            .runner
            .run(&self.settings.ffprobe, &args, PROBE_DEADLINE, None)
            .await
            .ok()?;
        out.trim().parse().ok()
    }

    /// One ffmpeg run of the smart cut, with the clip's deadline.
    async fn piece(&self, args: &[String], clip: Clip) -> Result<(), StageError> {
        self.runner
            .run(
                &self.settings.ffmpeg,
                args,
                self.deadline(clip.length),
                None,
            )
            .await
            .map(|_| ())
            .map_err(|e| Run::Cut.failed(e))
    }

    /// libx264's arguments that continue the source's video: its profile, level and x264
    /// settings, the service's preset for anything they leave open.
    fn encoder_args(
        &self,
        video: &crate::probe::Stream,
        options: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<String>, Unqualified> {
        let params = smart::x264_params(options, self.settings.crf)?;
        let mut args = vec![
            "-c:v".to_owned(),
            "libx264".to_owned(),
            "-preset".to_owned(),
            self.settings.preset.clone(),
            "-profile:v".to_owned(),
            smart::profile_arg(video.profile.as_deref())?.to_owned(),
            "-level".to_owned(),
            smart::level_arg(video.level)?,
            "-x264-params".to_owned(),
            params,
            "-pix_fmt".to_owned(),
            "yuv420p".to_owned(),
        ];
        if self.settings.threads > 0 {
            args.extend(["-threads".to_owned(), self.settings.threads.to_string()]);
        }
        Ok(args)
    }
}

fn add(a: Timecode, b: Timecode) -> Timecode {
    Timecode::from_micros(a.as_micros() + b.as_micros())
}

/// A small file this worker wrote (a first frame, a head or tail piece), read whole.
async fn read_small(path: &Path) -> Result<Vec<u8>, StageError> {
    use tokio::io::AsyncReadExt;
    let mut bytes = Vec::new();
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        StageError::retry(
            shared_proto::ErrorCode::TranscodeFailed,
            format!("reading {}: {e}", path.display()),
        )
    })?;
    file.take(MAX_PIECE_HEADER_READ)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| {
            StageError::retry(
                shared_proto::ErrorCode::TranscodeFailed,
                format!("reading {}: {e}", path.display()),
            )
        })?;
    Ok(bytes)
}
