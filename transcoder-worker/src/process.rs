//! The one place child processes run: argument vectors (never a shell), no stdin,
//! `kill_on_drop`, a deadline on every wait, a semaphore capping how many run at once, and a
//! memory and CPU-time cap on each process.
//!
//! The caps are resource limits (RLIMIT_AS, RLIMIT_CPU) set by util-linux's `prlimit`, which
//! sets them and then executes the program in the same process: the limits hold from the
//! program's first instruction, without unsafe code in this crate, and the exit status is the
//! program's own.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, Semaphore};

/// Bytes of stderr kept for error messages.
const STDERR_TAIL: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` was not found; install it (Debian: `apt-get install {package}`) or set its path in the settings")]
    NotFound {
        program: String,
        package: &'static str,
    },
    #[error("starting `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` did not finish within {after:?} and was killed")]
    TimedOut { program: String, after: Duration },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("`{program}` {limit}: {stderr}")]
    OverLimit {
        program: String,
        limit: Limit,
        stderr: String,
    },
}

/// Which cap a process went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Its address-space cap: an allocation failed.
    Memory { mib: u64 },
    /// Its CPU-time cap: the kernel stopped it.
    CpuTime { secs: u64 },
    /// A decoder refused a frame larger than `-max_pixels`.
    Pixels,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Memory { mib } => write!(f, "went over its memory cap of {mib} MiB"),
            Limit::CpuTime { secs } => write!(f, "went over its CPU-time cap of {secs} s"),
            Limit::Pixels => f.write_str("met a frame larger than `-max_pixels` allows"),
        }
    }
}

/// The resource caps of every process a [`Runner`] starts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Caps {
    /// Address space, in MiB; 0 = none.
    pub memory_mib: u64,
    /// CPU time as a multiple of the run's deadline; 0 = none.
    pub cpu_time_factor: f64,
}

impl Caps {
    /// The CPU-time cap of a run with this deadline, in whole seconds (at least 1).
    fn cpu_secs(&self, deadline: Duration) -> Option<u64> {
        (self.cpu_time_factor > 0.0).then(|| {
            (deadline.as_secs_f64() * self.cpu_time_factor)
                .ceil()
                .max(1.0) as u64
        })
    }

    /// `prlimit`'s options for a run with this deadline; empty when nothing is capped.
    fn prlimit_args(&self, deadline: Duration) -> Vec<String> {
        let mut args = Vec::new();
        if self.memory_mib > 0 {
            args.push(format!("--as={}", self.memory_mib.saturating_mul(1 << 20)));
        }
        if let Some(secs) = self.cpu_secs(deadline) {
            // SIGXCPU at the soft limit; SIGKILL a little later if the program ignores it.
            args.push(format!("--cpu={secs}:{}", secs + 5));
        }
        args
    }
}

/// Linux's signal numbers (x86-64 and aarch64 alike) that tell why a capped process died.
const SIGABRT: i32 = 6;
const SIGBUS: i32 = 7;
const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;
const SIGXCPU: i32 = 24;

/// Which cap, if any, explains a failed run. A CPU-time cap is the kernel's signal. Going over
/// the address-space cap leaves no such mark: an allocation fails inside the program, which
/// then reports it on stderr in its own words (`Cannot allocate memory`, x264's `malloc of
/// size N failed`, a decoder's `get_buffer() failed`, an encoder whose threads could not
/// start: `ff_frame_thread_encoder_init failed`) or, in a library that does not check,
/// dies of the failed allocation.
fn over_limit(
    caps: &Caps,
    deadline: Duration,
    status: std::process::ExitStatus,
    stderr: &str,
) -> Option<Limit> {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("exceeds specified max pixel count") {
        return Some(Limit::Pixels);
    }
    let signal = status.signal();
    if let Some(secs) = caps.cpu_secs(deadline) {
        if matches!(signal, Some(SIGXCPU | SIGKILL)) {
            return Some(Limit::CpuTime { secs });
        }
    }
    if caps.memory_mib > 0 {
        let lower = stderr.to_ascii_lowercase();
        // A thread's stack is address space too: a frame-threaded encoder whose threads
        // cannot start says only that its init failed.
        let said = ["alloc", "memory", "thread_encoder_init failed"]
            .iter()
            .any(|w| lower.contains(w));
        if said || matches!(signal, Some(SIGABRT | SIGBUS | SIGSEGV)) {
            return Some(Limit::Memory {
                mib: caps.memory_mib,
            });
        }
    }
    None
}

/// Where `program` is: itself when it names a path, else the first match on `PATH`.
fn locate(program: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(program);
    if path.components().count() > 1 {
        return path.is_file().then(|| path.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs programs under a shared concurrency cap.
#[derive(Clone, Debug)]
pub struct Runner {
    permits: Arc<Semaphore>,
    caps: Caps,
}

impl Runner {
    pub fn new(max_processes: usize) -> Self {
        Runner {
            permits: Arc::new(Semaphore::new(max_processes.max(1))),
            caps: Caps::default(),
        }
    }

    /// Runs every process under these caps.
    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    /// Runs `program args…` to completion within `deadline`, sending each stdout line to
    /// `lines` (when given) and returning stdout when `lines` is `None`.
    pub async fn run(
        &self,
        program: &str,
        args: &[String],
        deadline: Duration,
        lines: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<String, ProcessError> {
        self.run_with_log(program, args, deadline, lines)
            .await
            .map(|(out, _)| out)
    }

    /// [`Runner::run`], also returning the end of what the program logged (its last
    /// `STDERR_TAIL` bytes), where ffmpeg's filters report what they measured.
    pub async fn run_with_log(
        &self,
        program: &str,
        args: &[String],
        deadline: Duration,
        lines: Option<mpsc::UnboundedSender<String>>,
    ) -> Result<(String, String), ProcessError> {
        // The semaphore is never closed, so acquiring cannot fail; a failure would only skip
        // the cap, never the work.
        let _permit = self.permits.acquire().await.ok();
        let limits = self.caps.prlimit_args(deadline);
        let mut command = if limits.is_empty() {
            Command::new(program)
        } else {
            // `prlimit` would report a missing program as its own failure: find it first.
            let located = locate(program).ok_or_else(|| ProcessError::NotFound {
                program: program.to_owned(),
                package: "ffmpeg",
            })?;
            let mut command = Command::new("prlimit");
            command.args(&limits).arg("--").arg(located);
            command
        };
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound if limits.is_empty() => ProcessError::NotFound {
                    program: program.to_owned(),
                    package: "ffmpeg",
                },
                std::io::ErrorKind::NotFound => ProcessError::NotFound {
                    program: "prlimit".to_owned(),
                    package: "util-linux",
                },
                _ => ProcessError::Spawn {
                    program: program.to_owned(),
                    source,
                },
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let work = async {
            let read_out = async {
                let mut collected = String::new();
                if let Some(out) = stdout {
                    let mut reader = BufReader::new(out).lines();
                    while let Ok(Some(line)) = reader.next_line().await {
                        match &lines {
                            Some(tx) => {
                                let _ = tx.send(line);
                            }
                            None => {
                                collected.push_str(&line);
                                collected.push('\n');
                            }
                        }
                    }
                }
                collected
            };
            let read_err = async {
                let mut buf = Vec::new();
                if let Some(mut err) = stderr {
                    let _ = err.read_to_end(&mut buf).await;
                }
                let start = buf.len().saturating_sub(STDERR_TAIL);
                String::from_utf8_lossy(&buf[start..]).trim().to_owned()
            };
            let (out, err) = tokio::join!(read_out, read_err);
            (child.wait().await, out, err)
        };
        match tokio::time::timeout(deadline, work).await {
            Err(_) => Err(ProcessError::TimedOut {
                program: program.to_owned(),
                after: deadline,
            }),
            // `kill_on_drop` reaps the child when `work` is dropped above.
            Ok((Err(source), _, _)) => Err(ProcessError::Spawn {
                program: program.to_owned(),
                source,
            }),
            Ok((Ok(status), out, err)) if status.success() => Ok((out, err)),
            Ok((Ok(status), _, stderr)) => {
                match over_limit(&self.caps, deadline, status, &stderr) {
                    Some(limit) => Err(ProcessError::OverLimit {
                        program: program.to_owned(),
                        limit,
                        stderr,
                    }),
                    None => Err(ProcessError::Failed {
                        program: program.to_owned(),
                        status,
                        stderr,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_program_says_what_to_install() {
        let err = Runner::new(1)
            .run("hopster-no-such-program", &[], Duration::from_secs(5), None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("apt-get install ffmpeg"), "{err}");
    }

    #[tokio::test]
    async fn a_process_past_its_deadline_is_killed() {
        let started = std::time::Instant::now();
        let err = Runner::new(1)
            .run("sleep", &["30".into()], Duration::from_millis(200), None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_program_is_named_under_caps_too() {
        let caps = Caps {
            memory_mib: 512,
            cpu_time_factor: 1.0,
        };
        let err = Runner::new(1)
            .with_caps(caps)
            .run("hopster-no-such-program", &[], Duration::from_secs(5), None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("hopster-no-such-program") && text.contains("apt-get install ffmpeg"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_process_over_its_cpu_time_cap_is_stopped_and_says_so() {
        // A deadline of 4 s and a factor of 0.25: one CPU-second, long before the deadline.
        let caps = Caps {
            memory_mib: 0,
            cpu_time_factor: 0.25,
        };
        let spin = ["-c".to_owned(), "while :; do :; done".to_owned()];
        let err = Runner::new(1)
            .with_caps(caps)
            .run("sh", &spin, Duration::from_secs(4), None)
            .await
            .unwrap_err();
        match err {
            ProcessError::OverLimit { limit, .. } => {
                assert_eq!(limit, Limit::CpuTime { secs: 1 })
            }
            other => panic!("expected the CPU-time cap, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_process_over_its_memory_cap_fails_to_allocate_and_says_so() {
        // `tail` keeps a line that never ends in memory: past 64 MiB it cannot grow it.
        let caps = Caps {
            memory_mib: 64,
            cpu_time_factor: 0.0,
        };
        let grow = [
            "-c".to_owned(),
            "head -c 300000000 /dev/zero | tail -n 1".to_owned(),
        ];
        let err = Runner::new(1)
            .with_caps(caps)
            .run("sh", &grow, Duration::from_secs(30), None)
            .await
            .unwrap_err();
        match err {
            ProcessError::OverLimit { limit, stderr, .. } => {
                assert_eq!(limit, Limit::Memory { mib: 64 }, "{stderr}")
            }
            other => panic!("expected the memory cap, got {other}"),
        }
        // The same work without a cap succeeds: the cap, not the work, failed it.
        Runner::new(1)
            .run("sh", &grow, Duration::from_secs(30), None)
            .await
            .unwrap();
    }

    #[test]
    fn caps_become_prlimit_options_scaled_to_the_deadline() {
        let caps = Caps {
            memory_mib: 4096,
            cpu_time_factor: 2.0,
        };
        assert_eq!(
            caps.prlimit_args(Duration::from_secs(70)),
            ["--as=4294967296", "--cpu=140:145"]
        );
        assert!(Caps::default()
            .prlimit_args(Duration::from_secs(70))
            .is_empty());
    }

    #[tokio::test]
    async fn failure_carries_the_exit_status_and_stderr() {
        let args = ["-c".to_owned(), "echo oops >&2; exit 3".to_owned()];
        let err = Runner::new(1)
            .run("sh", &args, Duration::from_secs(5), None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("oops") && text.contains('3'), "{text}");
    }
}
