//! A loopback HTTP proxy in front of one source URL, so ffmpeg reads only the byte ranges a
//! clip needs without ever connecting to the source itself: ffmpeg may open only
//! `http://127.0.0.1:PORT/source` (protocol whitelist), and every upstream request goes through
//! the guarded source client (SSRF guard, timeouts), with the bytes counted and capped.

use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod range;
use range::{parse_range, total_size};

/// Largest request head accepted from ffmpeg.
const MAX_HEAD: usize = 16 * 1024;
/// Bytes fetched by the first upstream request of a read; each next one doubles, up to
/// [`MAX_WINDOW`]: a short read (an index, a probe) costs little, a long sequential read few
/// round trips.
pub const WINDOW: u64 = 128 * 1024;
const MAX_WINDOW: u64 = 4 * 1024 * 1024;
/// Send buffer of the sockets to ffmpeg: small, so the proxy cannot run far ahead of what
/// ffmpeg actually reads (accepted sockets inherit it from the listener).
const SEND_BUFFER: u32 = 64 * 1024;

/// Why the proxy stopped reading the source: the stage makes its outcome of this, so a failed
/// ffmpeg is blamed on the source when the source was the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The guard refused the source's address (at a hop, by name, or the connected peer).
    Forbidden(String),
    /// More than the source size limit was read.
    TooLarge(String),
    /// The source answered 404 or 410.
    NotFound(String),
    /// The source answered a range request with the whole body (it takes no ranges).
    NoRanges(String),
    /// Anything else: the network, a status, an answer without a size.
    Failed(String),
}

struct Shared {
    client: reqwest::Client,
    source: String,
    max_bytes: u64,
    /// The first window of a read ([`WINDOW`] unless started with another).
    window: u64,
    bytes: AtomicU64,
    upstream_error: Mutex<Option<Upstream>>,
}

impl Shared {
    fn fail(&self, why: Upstream) {
        if let Ok(mut slot) = self.upstream_error.lock() {
            slot.get_or_insert(why);
        }
    }
}

/// A running proxy; stops when dropped.
pub struct RangeProxy {
    /// What ffmpeg opens.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RangeProxy {
    /// Starts the proxy; each read fetches `window` bytes first ([`WINDOW`] for a cut; many
    /// short reads, a storyboard's keyframes each an input of its own, over-read less with a
    /// smaller one).
    pub async fn start(
        client: reqwest::Client,
        source: String,
        max_bytes: u64,
        window: u64,
    ) -> std::io::Result<RangeProxy> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_send_buffer_size(SEND_BUFFER)?;
        socket.bind("127.0.0.1:0".parse().map_err(std::io::Error::other)?)?;
        let listener: TcpListener = socket.listen(64)?;
        let url = format!("http://{}/source", listener.local_addr()?);
        let shared = Arc::new(Shared {
            client,
            source,
            max_bytes,
            window: window.clamp(4 * 1024, MAX_WINDOW),
            bytes: AtomicU64::new(0),
            upstream_error: Mutex::new(None),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, serving.clone()));
            }
        });
        Ok(RangeProxy { url, shared, task })
    }

    /// Bytes read from the source so far.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::SeqCst)
    }

    /// The first upstream failure (network, refusal, status, limit), if any.
    pub fn upstream_error(&self) -> Option<Upstream> {
        self.shared
            .upstream_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
    }
}

impl Drop for RangeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the request head; returns the path and the Range header.
async fn read_head(socket: &mut TcpStream) -> Option<(String, Option<String>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request = lines.next()?.split_whitespace();
    let (method, path) = (request.next()?, request.next()?);
    if method != "GET" {
        return None;
    }
    let range = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("range"))
        .map(|(_, v)| v.trim().to_owned());
    Some((path.to_owned(), range))
}

/// The total size from the response's `Content-Range: bytes A-B/TOTAL`.
fn total_of(response: &reqwest::Response) -> Option<u64> {
    total_size(
        response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)?
            .to_str()
            .ok()?,
    )
}

/// Fetches `first..=last` from the source; `None` (after recording why) on failure.
async fn window(shared: &Shared, first: u64, last: u64) -> Option<reqwest::Response> {
    let request = shared
        .client
        .get(&shared.source)
        .header(reqwest::header::RANGE, format!("bytes={first}-{last}"));
    match request.send().await {
        Ok(r) if r.status().as_u16() == 206 => Some(r),
        Ok(r) if matches!(r.status().as_u16(), 404 | 410) => {
            shared.fail(Upstream::NotFound(format!(
                "the source answered {}",
                r.status()
            )));
            None
        }
        Ok(r) if r.status().is_success() => {
            shared.fail(Upstream::NoRanges(format!(
                "the source answered {} to a range request: it does not serve ranges",
                r.status()
            )));
            None
        }
        Ok(r) => {
            shared.fail(Upstream::Failed(format!(
                "the source answered {} to a range request",
                r.status()
            )));
            None
        }
        Err(e) => {
            shared.fail(match hopster_common::guard::refusal(&e) {
                Some(why) => Upstream::Forbidden(why),
                None => Upstream::Failed(format!("fetching the source: {e}")),
            });
            None
        }
    }
}

/// Copies one upstream response to ffmpeg, counting and capping; `false` when to stop.
async fn forward(socket: &mut TcpStream, shared: &Shared, response: reqwest::Response) -> bool {
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                shared.fail(Upstream::Failed(format!("reading the source: {e}")));
                return false;
            }
        };
        let total =
            shared.bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
        if total > shared.max_bytes {
            shared.fail(Upstream::TooLarge(format!(
                "more than the limit of {} bytes read from the source",
                shared.max_bytes
            )));
            return false;
        }
        // ffmpeg hangs up when it has what it needs (or seeks elsewhere): stop reading then.
        if socket.write_all(&chunk).await.is_err() {
            return false;
        }
    }
    true
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    const BAD: &[u8] =
        b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    let Some((path, range)) = read_head(&mut socket).await else {
        let _ = socket
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
        return;
    };
    if path != "/source" {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .await;
        return;
    }
    // ffmpeg asks for open ranges (`bytes=N-`) and hangs up when it has enough. Fetching such a
    // range whole would read far past what it needs, so it is fetched in bounded windows as
    // ffmpeg consumes them; the reply to ffmpeg still covers the range it asked for.
    let (first, wanted_last) = parse_range(range.as_deref()).unwrap_or((0, None));
    let Some(response) = window(&shared, first, first + shared.window - 1).await else {
        let _ = socket.write_all(BAD).await;
        return;
    };
    let Some(total) = total_of(&response) else {
        shared.fail(Upstream::Failed(
            "the source's range answer has no total size".into(),
        ));
        let _ = socket.write_all(BAD).await;
        return;
    };
    if first >= total {
        let _ = socket.write_all(format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{total}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
        return;
    }
    let last = wanted_last.unwrap_or(total - 1).min(total - 1);
    let head = if range.is_some() {
        format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{total}\r\n")
    } else {
        "HTTP/1.1 200 OK\r\n".to_owned()
    };
    let head = format!(
        "{head}Content-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        last + 1 - first
    );
    if socket.write_all(head.as_bytes()).await.is_err()
        || !forward(&mut socket, &shared, response).await
    {
        return;
    }
    let mut next = first + shared.window;
    let mut size = shared.window;
    while next <= last {
        size = (size * 2).min(MAX_WINDOW);
        let Some(response) = window(&shared, next, (next + size - 1).min(last)).await else {
            return;
        };
        if !forward(&mut socket, &shared, response).await {
            return;
        }
        next += size;
    }
}
