//! What commands print on stdout: a few readable lines, or exactly one JSON document.

use crate::api::Job;
use crate::error::CliError;
use indicatif::HumanBytes;
use serde::Serialize;
use shared_proto::{JobId, JobResult, JobState, JobStatus};
use std::path::{Path, PathBuf};

/// Prints `value` as the command's one JSON document.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Local(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `3.00 s, 320x240 h264/aac, 48.2 KiB`; audio profiles have no picture: `3.00 s, mp3, …`.
pub fn result_summary(r: &JobResult) -> String {
    let codecs: Vec<&str> = [
        r.video_codec.as_str(),
        r.audio_codec.as_deref().unwrap_or(""),
    ]
    .into_iter()
    .filter(|c| !c.is_empty())
    .collect();
    let picture = if r.width > 0 {
        format!("{}x{} ", r.width, r.height)
    } else {
        String::new()
    };
    format!(
        "{:.2} s, {picture}{}, {}",
        r.duration_secs,
        codecs.join("/"),
        HumanBytes(r.size)
    )
}

/// The source and the range of a job: `http://h/v.mp4 [00:00:10 → 00:00:13]`.
pub fn source_summary(status: &JobStatus) -> String {
    let spec = &status.spec;
    let source = match &spec.video_id {
        Some(id) => format!("{id} ({})", spec.url),
        None => spec.url.clone(),
    };
    let bound = |t: Option<shared_proto::Timecode>, open: &str| {
        t.map(|t| t.to_string()).unwrap_or_else(|| open.to_owned())
    };
    format!(
        "{source} [{} → {}]",
        bound(spec.start, "start"),
        bound(spec.stop, "end")
    )
}

/// The multi-line view of `hopster status`.
pub fn describe_job(job: &Job, server: &str) -> String {
    let s = &job.status;
    let p = &s.progress;
    let mut lines = vec![
        format!("job       {}", s.id),
        format!("state     {} (attempt {})", s.state.as_str(), s.attempt),
        format!("source    {}", source_summary(s)),
    ];
    let transfer = |t: &shared_proto::status::TransferProgress| {
        let mut text = HumanBytes(t.bytes).to_string();
        if let Some(total) = t.total_bytes {
            text = format!("{text} of {}", HumanBytes(total));
        }
        if let Some(percent) = t.percent {
            text = format!("{text} ({percent:.0}%)");
        }
        if t.cached {
            text = format!("{text}, cached");
        }
        text
    };
    lines.push(format!("download  {}", transfer(&p.download)));
    let mut transcode = format!("{:.0}%", p.transcode.percent);
    if let Some(speed) = p.transcode.speed {
        transcode = format!("{transcode} at {speed:.1}x");
    }
    lines.push(format!("transcode {transcode}"));
    lines.push(format!("upload    {}", transfer(&p.upload)));
    if let Some(r) = &s.result {
        lines.push(format!("result    {}", result_summary(r)));
        lines.push(format!("sha256    {}", r.sha256));
        lines.push(format!("video     {server}/v1/jobs/{}/video", s.id));
    }
    if let Some(e) = &s.error {
        lines.push(format!("error     {}: {}", e.code, e.message));
    }
    lines.join("\n")
}

/// One step in words: the state and what the job has to show for it so far.
pub fn describe_step(status: &JobStatus) -> String {
    let p = &status.progress;
    let mut text = status.state.as_str().to_owned();
    let detail = match status.state {
        JobState::Transcoding if p.download.cached => "source cached".to_owned(),
        JobState::Transcoding => format!("source {} downloaded", HumanBytes(p.download.bytes)),
        JobState::Uploading => "transcoded".to_owned(),
        JobState::Completed => status
            .result
            .as_ref()
            .map(result_summary)
            .unwrap_or_default(),
        JobState::Failed | JobState::Cancelled => status
            .error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default(),
        _ => String::new(),
    };
    if !detail.is_empty() {
        text = format!("{text} ({detail})");
    }
    if status.attempt > 1 && !status.state.is_terminal() {
        text = format!("{text}, attempt {}", status.attempt);
    }
    text
}

/// Where a downloaded file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-o -`: the bytes are the command's stdout, and nothing else is printed there.
    Stdout,
    File(PathBuf),
}

impl Target {
    /// `-o` as given (`-` is stdout), `ID.EXT` inside it when it is a directory, or
    /// `./ID.EXT`.
    pub fn of(output: Option<&Path>, id: &JobId, extension: &str) -> Target {
        let name = format!("{id}.{extension}");
        match output {
            Some(path) if path == Path::new("-") => Target::Stdout,
            Some(path) if path.is_dir() => Target::File(path.join(name)),
            Some(path) => Target::File(path.to_path_buf()),
            None => Target::File(PathBuf::from(name)),
        }
    }

    /// Whether `-o` names stdout.
    pub fn is_stdout(output: Option<&Path>) -> bool {
        output == Some(Path::new("-"))
    }

    /// The `-o` argument that names this target again.
    pub fn shell_arg(&self) -> String {
        match self {
            Target::Stdout => "-".to_owned(),
            Target::File(path) => shell_path(path),
        }
    }
}

/// A path as the user can paste it back into a shell.
pub fn shell_path(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// What an inspection found, a line each: the source, its streams, its keyframes, its
/// storyboard's URLs on `server`.
pub fn inspection_summary(server: &str, view: &shared_proto::api::SourceView) -> String {
    let status = &view.status;
    let mut lines = vec![format!("source {} {}", status.id, status.url)];
    let Some(found) = &status.inspection else {
        return lines.join("\n");
    };
    lines.push(format!(
        "  {:.2} s, {}",
        found.duration_secs, found.container
    ));
    for s in &found.streams {
        let mut parts = vec![format!("  stream {}: {}", s.index, s.kind)];
        parts.extend(s.codec.clone());
        if let (Some(w), Some(h)) = (s.width, s.height) {
            parts.push(format!("{w}x{h}"));
        }
        if let Some(fps) = s.fps {
            parts.push(format!("{fps:.3} fps"));
        }
        if let Some(ch) = s.channels {
            parts.push(format!("{ch} ch"));
        }
        if let Some(rate) = s.sample_rate {
            parts.push(format!("{rate} Hz"));
        }
        if let Some(bits) = s.bit_rate {
            parts.push(format!("{} kbit/s", bits / 1000));
        }
        lines.push(parts.join(" "));
    }
    match &found.keyframes {
        Some(k) if !k.is_empty() => lines.push(format!(
            "  keyframes: {} ({:.3} … {:.3} s)",
            k.len(),
            k[0],
            k[k.len() - 1]
        )),
        _ => lines.push("  keyframes: not in the container's index".to_owned()),
    }
    if let Some(board) = &found.storyboard {
        lines.push(format!(
            "  storyboard: {} tiles, one every {:.1} s: {server}{} and {server}{}",
            board.tiles, board.interval_secs, view.links.storyboard_jpg, view.links.storyboard_vtt
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::{ErrorCode, JobSpec};

    fn status() -> JobStatus {
        JobStatus::queued(JobSpec::new("http://h/v", None, None, None).unwrap(), 1)
    }

    #[test]
    fn a_step_line_says_what_the_job_has_done() {
        let mut s = status();
        assert_eq!(describe_step(&s), "queued");
        s.advance(JobState::Transcoding);
        s.progress.download.bytes = 2048;
        s.attempt = 2;
        assert_eq!(
            describe_step(&s),
            "transcoding (source 2.00 KiB downloaded), attempt 2"
        );
        s.fail(ErrorCode::TranscodeFailed, "ffmpeg exited 1");
        assert_eq!(
            describe_step(&s),
            "failed (transcode_failed: ffmpeg exited 1)"
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted_for_the_shell() {
        assert_eq!(shell_path(Path::new("out/clip.mp4")), "out/clip.mp4");
        assert_eq!(shell_path(Path::new("my clip.mp4")), "'my clip.mp4'");
        assert_eq!(shell_path(Path::new("it's.mp4")), r"'it'\''s.mp4'");
    }

    #[test]
    fn a_result_is_summed_up_in_one_line() {
        let r = JobResult {
            key: "results/x.mp4".into(),
            size: 2048,
            duration_secs: 3.0,
            mime: "video/mp4".into(),
            video_codec: "h264".into(),
            audio_codec: Some("aac".into()),
            width: 320,
            height: 240,
            sha256: String::new(),
            start_achieved: None,
            method: None,
            copied_secs: None,
            encoded_secs: None,
            source_segments: None,
            profile: Default::default(),
            poster_key: None,
            segments: Vec::new(),
        };
        assert_eq!(result_summary(&r), "3.00 s, 320x240 h264/aac, 2.00 KiB");
    }
}
