//! Downloading a result into a file, resuming what is already there. The file is written in
//! place, so an interrupted run leaves a prefix that the next run continues with
//! `Range: bytes=N-`; the server's SHA-256 decides whether the file is right at the end.
//! Onto stdout (`-o -`) nothing can be resumed across runs, but a dropped connection is still
//! continued where the bytes written so far end.

use crate::api::Job;
use crate::client::{self, Client};
use crate::error::CliError;
use crate::output::Target;
use crate::progress::{DownloadView, Mode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared_proto::{JobId, JobResult, Profile};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Tries per download: a dropped connection resumes from what reached the disk.
const ATTEMPTS: u32 = 3;

/// A saved clip (or poster).
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    /// `None` when the bytes went to stdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub bytes: u64,
    /// Bytes that were already in the file and were kept (0 for a fresh download).
    pub resumed_from: u64,
    pub sha256: String,
}

/// Downloads `job`'s video into `target`, resuming a partial file.
pub async fn fetch(
    client: &Client,
    job: &Job,
    target: &Target,
    mode: Mode,
) -> Result<Saved, CliError> {
    let id = &job.status.id;
    let result = job.status.result.as_ref().ok_or_else(|| {
        CliError::server(
            "invalid_response",
            format!("job {id} is completed but has no result"),
        )
    })?;
    if result.profile == Profile::Hls {
        // The gateway rewrites the playlist's segment URIs for each request, so it is not a
        // file with the job's checksum; players read it from the gateway.
        return Err(CliError::Usage(format!(
            "job {id} is an HLS playlist and segments: play it from the server with `ffplay \
             {}/v1/jobs/{id}/video`",
            client.server()
        )));
    }
    match target {
        Target::Stdout => to_stdout(client, id, result, mode).await,
        Target::File(path) => to_file(client, id, result, path, mode).await,
    }
}

async fn to_file(
    client: &Client,
    id: &JobId,
    result: &JobResult,
    path: &Path,
    mode: Mode,
) -> Result<Saved, CliError> {
    let size = result.size;
    let mut restart = false;
    let mut resumed_from = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let have = local_len(path)?;
        // A longer file, or one that did not turn out to be a prefix of this clip, is not ours
        // to continue.
        let offset = if restart || have > size { 0 } else { have };
        if offset == size && size > 0 {
            if sha256_of_file(path, size)? == result.sha256 {
                return Ok(saved(path, result, *resumed_from.get_or_insert(size)));
            }
            restart = true;
            continue;
        }
        let first = *resumed_from.get_or_insert(offset);
        match transfer(client, id, result, path, offset, mode).await {
            Ok(sha) if sha == result.sha256 => return Ok(saved(path, result, first)),
            Ok(_) if offset > 0 && attempt < ATTEMPTS => {
                restart = true;
                resumed_from = Some(0);
            }
            Ok(sha) => {
                return Err(CliError::server(
                    "checksum_mismatch",
                    format!(
                        "{} has SHA-256 {sha} but the job's result has {}",
                        path.display(),
                        result.sha256
                    ),
                ))
            }
            Err(CliError::Connection(_)) if attempt < ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
}

fn saved(path: &Path, result: &JobResult, resumed_from: u64) -> Saved {
    Saved {
        // Absolute, so the user (or a script reading `--json`) knows exactly where it is.
        path: Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())),
        bytes: result.size,
        resumed_from,
        sha256: result.sha256.clone(),
    }
}

/// One request: writes from `offset` to the end and returns the whole file's SHA-256.
async fn transfer(
    client: &Client,
    id: &JobId,
    result: &JobResult,
    path: &Path,
    offset: u64,
    mode: Mode,
) -> Result<String, CliError> {
    let mut response = client.video(id, offset).await?;
    let kept = match response.status().as_u16() {
        206 if range_start(&response) == Some(offset) => offset,
        // The server sent the whole file (it may ignore Range): start over.
        200 => 0,
        status => {
            return Err(CliError::server(
                format!("http_{status}"),
                format!("the server answered {status} to `Range: bytes={offset}-`"),
            ))
        }
    };
    let local = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(local)?;
    let mut hasher = Sha256::new();
    // Hashing the kept prefix also leaves the file positioned right after it.
    let hashed = std::io::copy(&mut (&mut file).take(kept), &mut hasher).map_err(local)?;
    if hashed != kept {
        return Err(CliError::Local(format!(
            "{} changed while it was being resumed",
            path.display()
        )));
    }
    file.set_len(kept).map_err(local)?;

    let view = DownloadView::start(mode, &path.display().to_string(), result.size, kept);
    let mut written = kept;
    while let Some(chunk) = response.chunk().await.map_err(client::transport)? {
        // Synchronous writes: if Ctrl-C drops this future, every chunk written is whole.
        file.write_all(&chunk).map_err(local)?;
        hasher.update(&chunk);
        written += chunk.len() as u64;
        view.set(written);
    }
    file.sync_all().map_err(local)?;
    if written != result.size {
        return Err(CliError::Connection(format!(
            "the download stopped after {written} of {} bytes",
            result.size
        )));
    }
    view.finish();
    Ok(hex(&hasher.finalize()))
}

/// Streams the video onto stdout, continuing a dropped connection with a Range request from
/// the last byte written.
async fn to_stdout(
    client: &Client,
    id: &JobId,
    result: &JobResult,
    mode: Mode,
) -> Result<Saved, CliError> {
    let local = |e: std::io::Error| CliError::Local(format!("stdout: {e}"));
    let mut stdout = std::io::stdout();
    let mut hasher = Sha256::new();
    let mut written = 0;
    let view = DownloadView::start(mode, "stdout", result.size, 0);
    let mut attempt = 0;
    while written < result.size {
        attempt += 1;
        let mut response = client.video(id, written).await?;
        match response.status().as_u16() {
            206 if range_start(&response) == Some(written) => {}
            200 if written == 0 => {}
            status => {
                return Err(CliError::server(
                    format!("http_{status}"),
                    format!("the server answered {status} to `Range: bytes={written}-`"),
                ))
            }
        }
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    stdout.write_all(&chunk).map_err(local)?;
                    hasher.update(&chunk);
                    written += chunk.len() as u64;
                    view.set(written);
                }
                Ok(None) => break,
                Err(_) if attempt < ATTEMPTS => break,
                Err(e) => return Err(client::transport(e)),
            }
        }
        if written < result.size && attempt >= ATTEMPTS {
            return Err(CliError::Connection(format!(
                "the download stopped after {written} of {} bytes",
                result.size
            )));
        }
    }
    stdout.flush().map_err(local)?;
    let sha = hex(&hasher.finalize());
    if written != result.size || sha != result.sha256 {
        return Err(CliError::server(
            "checksum_mismatch",
            format!(
                "{written} bytes with SHA-256 {sha} went to stdout, but the job's result is {} \
                 bytes with {}",
                result.size, result.sha256
            ),
        ));
    }
    view.finish();
    Ok(Saved {
        path: None,
        bytes: written,
        resumed_from: 0,
        sha256: sha,
    })
}

/// Downloads a completed job's poster into `target`.
pub async fn poster(client: &Client, id: &JobId, target: &Target) -> Result<Saved, CliError> {
    let response = client.poster(id).await?;
    let bytes = response.bytes().await.map_err(client::transport)?;
    let saved = |path| Saved {
        path,
        bytes: bytes.len() as u64,
        resumed_from: 0,
        sha256: hex(&Sha256::digest(&bytes)),
    };
    match target {
        Target::Stdout => {
            let mut stdout = std::io::stdout();
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| CliError::Local(format!("stdout: {e}")))?;
            Ok(saved(None))
        }
        Target::File(path) => {
            std::fs::write(path, &bytes)
                .map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?;
            Ok(saved(Some(
                std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            )))
        }
    }
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/SIZE` answer.
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    parse_range_start(value)
}

fn parse_range_start(value: &str) -> Option<u64> {
    let range = value.trim().strip_prefix("bytes ")?;
    range.split_once('-')?.0.trim().parse().ok()
}

fn local_len(path: &Path) -> Result<u64, CliError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(meta.len()),
        Ok(_) => Err(CliError::Local(format!(
            "{} exists and is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(CliError::Local(format!("{}: {e}", path.display()))),
    }
}

fn sha256_of_file(path: &Path, len: u64) -> Result<String, CliError> {
    let local = |e: std::io::Error| CliError::Local(format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(local)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file.take(len), &mut hasher).map_err(local)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_of_a_content_range_is_read() {
        assert_eq!(parse_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(parse_range_start("bytes */200"), None);
        assert_eq!(parse_range_start("items 1-2/3"), None);
    }

    #[test]
    fn digests_are_lower_case_hex() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
