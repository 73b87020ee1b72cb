//! The one place child processes run: argument vectors (never a shell), no stdin,
//! `kill_on_drop`, a deadline on every wait, and a semaphore capping how many run at once.

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
    #[error("`{program}` was not found; install it (Debian: `apt-get install ffmpeg`) or set its path in the settings")]
    NotFound { program: String },
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
}

/// Runs programs under a shared concurrency cap.
#[derive(Clone, Debug)]
pub struct Runner {
    permits: Arc<Semaphore>,
}

impl Runner {
    pub fn new(max_processes: usize) -> Self {
        Runner {
            permits: Arc::new(Semaphore::new(max_processes.max(1))),
        }
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
        // The semaphore is never closed, so acquiring cannot fail; a failure would only skip
        // the cap, never the work.
        let _permit = self.permits.acquire().await.ok();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => ProcessError::NotFound {
                    program: program.to_owned(),
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
            Ok((Ok(status), out, _)) if status.success() => Ok(out),
            Ok((Ok(status), _, stderr)) => Err(ProcessError::Failed {
                program: program.to_owned(),
                status,
                stderr,
            }),
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
