//! Showing a job and a download as they move. On a terminal (stderr) that is a bar per stage;
//! anywhere else one line per step, so logs and CI output stay readable. Progress never goes to
//! stdout: that belongs to the command's result (and to `--json`).

use crate::output::describe_step;
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shared_proto::status::TransferProgress;
use shared_proto::{JobState, JobStatus};
use std::io::IsTerminal;
use std::time::Duration;

const BYTES: &str = "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}";
/// A finished stage: a rate computed from one poll's jump would be meaningless.
const BYTES_DONE: &str = "{prefix:>9} [{bar:40}] {total_bytes} {msg}";
const BYTES_UNKNOWN: &str = "{prefix:>9} {spinner} {bytes} {binary_bytes_per_sec} {msg}";
const PERCENT: &str = "{prefix:>9} [{bar:40}] {percent:>3}% eta {eta} {msg}";
const PERCENT_DONE: &str = "{prefix:>9} [{bar:40}] {percent:>3}% {msg}";
const HEADER: &str = "{spinner} {msg}";
const DOWNLOAD: &str =
    "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}";
const DOWNLOAD_DONE: &str = "{prefix:>9} [{bar:40}] {total_bytes} in {elapsed}";
/// The transcode bar counts per mille so short clips still move smoothly.
const PER_MILLE: u64 = 1000;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Silent,
}

impl Mode {
    /// Bars on a terminal; otherwise lines, unless `--json` asked for machine output only.
    pub fn detect(json: bool) -> Mode {
        if std::io::stderr().is_terminal() {
            Mode::Bars
        } else if json {
            Mode::Silent
        } else {
            Mode::Lines
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A job's progress while it is followed.
pub struct JobView {
    mode: Mode,
    multi: MultiProgress,
    header: Option<ProgressBar>,
    download: Option<ProgressBar>,
    transcode: Option<ProgressBar>,
    upload: Option<ProgressBar>,
    seen: Option<(JobState, u32)>,
}

impl JobView {
    pub fn new(mode: Mode) -> JobView {
        JobView {
            mode,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            header: None,
            download: None,
            transcode: None,
            upload: None,
            seen: None,
        }
    }

    /// Shows the latest status document.
    pub fn update(&mut self, status: &JobStatus) {
        let step = (status.state, status.attempt);
        let changed = self.seen != Some(step);
        self.seen = Some(step);
        match self.mode {
            Mode::Silent => {}
            Mode::Lines if changed => eprintln!("job {}: {}", status.id, describe_step(status)),
            Mode::Lines => {}
            Mode::Bars => self.draw(status),
        }
    }

    /// A remark on how the job is followed, not a step of the job (e.g. falling back to
    /// polling).
    pub fn note(&self, text: &str) {
        match self.mode {
            Mode::Silent => {}
            Mode::Lines => eprintln!("{text}"),
            Mode::Bars => {
                let _ = self.multi.println(text);
            }
        }
    }

    fn draw(&mut self, status: &JobStatus) {
        let header = self.header.get_or_insert_with(|| {
            let bar = self
                .multi
                .add(ProgressBar::new_spinner().with_style(style(HEADER)));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        header.set_message(format!("job {}: {}", status.id, describe_step(status)));
        let state = status.state;
        let p = &status.progress;
        // A stage is shown once the job got to it; a failed job shows the stages it touched.
        let reached = |stage: JobState, touched: bool| {
            (stage <= state && state <= JobState::Completed) || touched
        };
        let passed = |stage: JobState| stage < state && state <= JobState::Completed;

        if reached(JobState::Downloading, p.download.bytes > 0) {
            let bar = bar_for(&self.multi, &mut self.download, "download");
            show_transfer(bar, &p.download, passed(JobState::Downloading));
            if p.download.cached {
                bar.set_message("cached");
            }
        }
        if reached(JobState::Transcoding, p.transcode.percent > 0.0) {
            let bar = bar_for(&self.multi, &mut self.transcode, "transcode");
            if bar.length() != Some(PER_MILLE) {
                bar.set_style(style(PERCENT));
                bar.set_length(PER_MILLE);
            }
            let done = passed(JobState::Transcoding);
            let per_mille = if done {
                1000.0
            } else {
                p.transcode.percent * 10.0
            };
            bar.set_position((per_mille as u64).min(PER_MILLE));
            if let Some(speed) = p.transcode.speed {
                bar.set_message(format!("{speed:.1}x"));
            }
            if done && !bar.is_finished() {
                bar.set_style(style(PERCENT_DONE));
                bar.finish();
            }
        }
        if reached(JobState::Uploading, p.upload.bytes > 0) {
            let bar = bar_for(&self.multi, &mut self.upload, "upload");
            show_transfer(bar, &p.upload, passed(JobState::Uploading));
        }
        if state.is_terminal() {
            header.finish();
            for bar in [&self.download, &self.transcode, &self.upload]
                .into_iter()
                .flatten()
            {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

impl Drop for JobView {
    /// Ctrl-C drops the view mid-job: abandoning every bar leaves them drawn as they were and
    /// the cursor below them, where the interruption message goes.
    fn drop(&mut self) {
        for bar in [&self.header, &self.download, &self.transcode, &self.upload]
            .into_iter()
            .flatten()
        {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

fn bar_for<'a>(
    multi: &MultiProgress,
    slot: &'a mut Option<ProgressBar>,
    name: &'static str,
) -> &'a ProgressBar {
    slot.get_or_insert_with(|| multi.add(ProgressBar::no_length().with_prefix(name)))
}

fn show_transfer(bar: &ProgressBar, p: &TransferProgress, done: bool) {
    if bar.is_finished() {
        return;
    }
    match p.total_bytes {
        Some(total) if bar.length() != Some(total) => {
            bar.set_style(style(BYTES));
            bar.set_length(total);
        }
        None if bar.length().is_none() => bar.set_style(style(BYTES_UNKNOWN)),
        _ => {}
    }
    bar.set_position(p.bytes);
    if done {
        let total = p.total_bytes.unwrap_or(p.bytes);
        bar.set_style(style(BYTES_DONE));
        bar.set_length(total);
        bar.set_position(total);
        bar.finish();
    }
}

/// The result file's download.
pub struct DownloadView {
    bar: Option<ProgressBar>,
}

impl DownloadView {
    /// Starts showing a download of `size` bytes into `to` (a path, or stdout) that already
    /// has `from` of them.
    pub fn start(mode: Mode, to: &str, size: u64, from: u64) -> DownloadView {
        match mode {
            Mode::Silent => DownloadView { bar: None },
            Mode::Lines => {
                let resuming = if from > 0 {
                    format!(", resuming at {}", HumanBytes(from))
                } else {
                    String::new()
                };
                eprintln!("downloading {} to {to}{resuming}", HumanBytes(size));
                DownloadView { bar: None }
            }
            Mode::Bars => {
                let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr())
                    .with_style(style(DOWNLOAD))
                    .with_prefix("save")
                    .with_position(from);
                DownloadView { bar: Some(bar) }
            }
        }
    }

    /// `bytes` of the file are on disk.
    pub fn set(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_style(style(DOWNLOAD_DONE));
            bar.finish();
        }
    }
}

impl Drop for DownloadView {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.as_ref().filter(|bar| !bar.is_finished()) {
            bar.abandon();
        }
    }
}
