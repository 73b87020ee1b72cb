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
        JobView::drawn_to(mode, ProgressDrawTarget::stderr())
    }

    /// The same view drawing to `target` (the tests' is hidden).
    fn drawn_to(mode: Mode, target: ProgressDrawTarget) -> JobView {
        JobView {
            mode,
            multi: MultiProgress::with_draw_target(target),
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
        DownloadView::drawn_to(mode, to, size, from, ProgressDrawTarget::stderr())
    }

    fn drawn_to(
        mode: Mode,
        to: &str,
        size: u64,
        from: u64,
        target: ProgressDrawTarget,
    ) -> DownloadView {
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
                let bar = ProgressBar::with_draw_target(Some(size), target)
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::{ErrorCode, JobSpec, Timecode};

    fn job() -> JobStatus {
        let spec = JobSpec::new("http://h/v.mp4", None, None, None).unwrap();
        JobStatus::queued(spec, 1)
    }

    fn hidden(mode: Mode) -> JobView {
        JobView::drawn_to(mode, ProgressDrawTarget::hidden())
    }

    fn state(bar: &Option<ProgressBar>) -> Option<(u64, Option<u64>, bool)> {
        bar.as_ref()
            .map(|b| (b.position(), b.length(), b.is_finished()))
    }

    #[test]
    fn each_stage_gets_its_bar_as_the_job_reaches_it_and_finishes_with_it() {
        let mut view = hidden(Mode::Bars);
        let mut status = job();
        view.update(&status);
        assert!(view.header.is_some());
        assert_eq!(state(&view.download), None, "not downloading yet");

        status.advance(JobState::Downloading);
        JobStatus::record_transfer(&mut status.progress.download, 250, Some(1000));
        view.update(&status);
        assert_eq!(state(&view.download), Some((250, Some(1000), false)));
        assert_eq!(state(&view.transcode), None);

        status.advance(JobState::Transcoding);
        status.record_transcode(
            Timecode::from_micros(1_500_000),
            Timecode::from_micros(3_000_000),
            Some(2.5),
        );
        view.update(&status);
        // The download is done once the job moved on: its bar shows it all, finished.
        assert_eq!(state(&view.download), Some((1000, Some(1000), true)));
        assert_eq!(state(&view.transcode), Some((500, Some(PER_MILLE), false)));
        assert_eq!(view.transcode.as_ref().unwrap().message(), "2.5x");

        status.advance(JobState::Uploading);
        JobStatus::record_transfer(&mut status.progress.upload, 10, None);
        view.update(&status);
        assert_eq!(
            state(&view.transcode),
            Some((PER_MILLE, Some(PER_MILLE), true))
        );
        // An upload of unknown size: a spinner with a count, no length.
        assert_eq!(state(&view.upload), Some((10, None, false)));

        status.advance(JobState::Completed);
        view.update(&status);
        assert_eq!(state(&view.upload), Some((10, Some(10), true)));
        assert!(view.header.as_ref().unwrap().is_finished());
    }

    #[test]
    fn a_failed_job_leaves_the_bars_it_touched_as_they_were() {
        let mut view = hidden(Mode::Bars);
        let mut status = job();
        status.advance(JobState::Downloading);
        JobStatus::record_transfer(&mut status.progress.download, 400, Some(1000));
        status.progress.download.cached = true;
        view.update(&status);
        assert_eq!(view.download.as_ref().unwrap().message(), "cached");
        status.fail(ErrorCode::SourceNotFound, "404");
        view.update(&status);
        // Abandoned where it stood, not filled up as if it had finished.
        assert_eq!(state(&view.download), Some((400, Some(1000), true)));
        assert_eq!(state(&view.transcode), None);
        assert!(view.header.as_ref().unwrap().is_finished());
    }

    #[test]
    fn lines_and_silent_modes_draw_no_bars() {
        for mode in [Mode::Lines, Mode::Silent] {
            let mut view = hidden(mode);
            let mut status = job();
            status.advance(JobState::Downloading);
            JobStatus::record_transfer(&mut status.progress.download, 1, Some(2));
            view.update(&status);
            view.note("following by polling");
            assert!(view.header.is_none() && view.download.is_none(), "{mode:?}");
        }
    }

    #[test]
    fn a_download_bar_starts_where_a_resumed_file_ends() {
        let view = DownloadView::drawn_to(
            Mode::Bars,
            "clip.mp4",
            1000,
            300,
            ProgressDrawTarget::hidden(),
        );
        let bar = view.bar.clone().expect("a bar");
        assert_eq!((bar.position(), bar.length()), (300, Some(1000)));
        view.set(700);
        assert_eq!(bar.position(), 700);
        view.finish();
        assert!(bar.is_finished());
        // Dropped unfinished (Ctrl-C): abandoned, not left ticking.
        let view =
            DownloadView::drawn_to(Mode::Bars, "clip.mp4", 10, 0, ProgressDrawTarget::hidden());
        let bar = view.bar.clone().expect("a bar");
        drop(view);
        assert!(bar.is_finished());
        for mode in [Mode::Lines, Mode::Silent] {
            let view = DownloadView::drawn_to(mode, "-", 10, 5, ProgressDrawTarget::hidden());
            assert!(view.bar.is_none());
            view.set(6);
            view.finish();
        }
    }
}
