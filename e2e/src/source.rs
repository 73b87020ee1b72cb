//! A source server on loopback: serves files from a directory, 404 for anything else, and
//! counts requests so tests can see what the downloader fetched. A few routes misbehave on
//! purpose for the hostile-input tests: `/special/html`, `/special/stall` (headers, a little
//! data, then silence), `/special/redirect?to=URL`, `/special/chunked/{name}` (no
//! Content-Length). `/tree/{path}` serves the directory tree (HLS renditions), with byte
//! ranges and content types by extension, and logs each path and the bytes sent.

use actix_web::{web, App, HttpResponse, HttpServer};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct SourceServer {
    pub base_url: String,
    pub requests: Arc<AtomicUsize>,
    /// Body bytes sent by the `/ranged/` route.
    pub ranged_bytes: Arc<std::sync::atomic::AtomicU64>,
    /// `/tree/` requests: the path asked for and the body bytes sent.
    pub tree_log: Arc<std::sync::Mutex<Vec<(String, u64)>>>,
    handle: actix_web::dev::ServerHandle,
}

struct Files {
    dir: PathBuf,
    requests: Arc<AtomicUsize>,
    ranged_bytes: Arc<std::sync::atomic::AtomicU64>,
    tree_log: Arc<std::sync::Mutex<Vec<(String, u64)>>>,
}

/// `/tree/{path}`: a file under the directory, by its relative path (no `..`), with
/// single-range support.
async fn tree(
    files: web::Data<Files>,
    path: web::Path<String>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    files.requests.fetch_add(1, Ordering::SeqCst);
    let path = path.into_inner();
    let safe = !path.split('/').any(|p| p.is_empty() || p.starts_with('.'));
    let file = if safe {
        tokio::fs::read(files.dir.join(&path)).await.ok()
    } else {
        None
    };
    let Some(bytes) = file else {
        files.tree_log.lock().expect("log").push((path, 0));
        return HttpResponse::NotFound().finish();
    };
    let size = bytes.len() as u64;
    let range = single_range(&req, size);
    let kind = match path.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("mp4" | "m4s") => "video/mp4",
        _ => "application/octet-stream",
    };
    let (mut response, body) = partial(bytes, range);
    files
        .tree_log
        .lock()
        .expect("log")
        .push((path, body.len() as u64));
    response
        .insert_header(("Accept-Ranges", "bytes"))
        .content_type(kind)
        .body(body)
}

/// The request's `Range: bytes=a-b` (or `a-`), clamped to `size`; `None` without one.
fn single_range(req: &actix_web::HttpRequest, size: u64) -> Option<(u64, u64)> {
    req.headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let first: u64 = a.parse().ok()?;
            let last: u64 = if b.is_empty() {
                size.checked_sub(1)?
            } else {
                b.parse::<u64>().ok()?.min(size.checked_sub(1)?)
            };
            (first <= last).then_some((first, last))
        })
}

/// The response to a request for `bytes` with `range`: `206` and that range, or `200` and all.
fn partial(bytes: Vec<u8>, range: Option<(u64, u64)>) -> (actix_web::HttpResponseBuilder, Vec<u8>) {
    let size = bytes.len() as u64;
    match range {
        Some((first, last)) => {
            let mut r = HttpResponse::PartialContent();
            r.insert_header(("Content-Range", format!("bytes {first}-{last}/{size}")));
            (r, bytes[first as usize..=last as usize].to_vec())
        }
        None => (HttpResponse::Ok(), bytes),
    }
}

/// `/ranged/{name}`: the file with single-range support (`bytes=a-b`, `bytes=a-`), counting
/// the body bytes it sends.
async fn ranged(
    files: web::Data<Files>,
    name: web::Path<String>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    files.requests.fetch_add(1, Ordering::SeqCst);
    let Ok(bytes) = tokio::fs::read(files.dir.join(name.as_str())).await else {
        return HttpResponse::NotFound().finish();
    };
    let size = bytes.len() as u64;
    let range = single_range(&req, size);
    let (mut response, body) = partial(bytes, range);
    // Count what goes out in chunks, so a client that hangs up early is not charged for all.
    let counter = files.ranged_bytes.clone();
    let chunks: Vec<web::Bytes> = body
        .chunks(16 * 1024)
        .map(web::Bytes::copy_from_slice)
        .collect();
    let len = body.len() as u64;
    let stream = futures::stream::iter(chunks).map(move |c| {
        counter.fetch_add(c.len() as u64, Ordering::SeqCst);
        Ok::<_, std::io::Error>(c)
    });
    response
        .insert_header(("Accept-Ranges", "bytes"))
        .content_type("video/mp4")
        .no_chunking(len)
        .streaming(stream)
}

async fn serve(files: web::Data<Files>, name: web::Path<String>) -> HttpResponse {
    files.requests.fetch_add(1, Ordering::SeqCst);
    let name = name.into_inner();
    if name.contains('/') || name.starts_with('.') {
        return HttpResponse::NotFound().finish();
    }
    match tokio::fs::read(files.dir.join(&name)).await {
        Ok(bytes) => HttpResponse::Ok().content_type("video/mp4").body(bytes),
        Err(_) => HttpResponse::NotFound().body("no such file"),
    }
}

async fn special(
    files: web::Data<Files>,
    what: web::Path<String>,
    req: actix_web::HttpRequest,
) -> HttpResponse {
    files.requests.fetch_add(1, Ordering::SeqCst);
    match what.as_str() {
        "html" => HttpResponse::Ok()
            .content_type("text/html")
            .body("<!doctype html><html><body>Not a video</body></html>"),
        "stall" => {
            let first = futures::stream::once(async {
                Ok::<_, std::io::Error>(web::Bytes::from(vec![0u8; 1000]))
            });
            let never = futures::stream::pending();
            HttpResponse::Ok()
                .content_type("video/mp4")
                .no_chunking(1_000_000)
                .streaming(futures::StreamExt::chain(first, never))
        }
        "redirect" => {
            let to = web::Query::<std::collections::HashMap<String, String>>::from_query(
                req.query_string(),
            )
            .ok()
            .and_then(|q| q.get("to").cloned())
            .unwrap_or_default();
            HttpResponse::Found()
                .insert_header(("Location", to))
                .finish()
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

async fn chunked(files: web::Data<Files>, name: web::Path<String>) -> HttpResponse {
    files.requests.fetch_add(1, Ordering::SeqCst);
    match tokio::fs::read(files.dir.join(name.as_str())).await {
        Ok(bytes) => {
            let chunks: Vec<Result<web::Bytes, std::io::Error>> = bytes
                .chunks(64 * 1024)
                .map(|c| Ok(web::Bytes::copy_from_slice(c)))
                .collect();
            HttpResponse::Ok()
                .content_type("video/mp4")
                .streaming(futures::stream::iter(chunks))
        }
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

impl SourceServer {
    /// Serves the files of `dir` at `{base_url}/{name}`, on a free loopback port.
    pub fn start(dir: PathBuf) -> SourceServer {
        SourceServer::start_on(dir, std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// Like [`SourceServer::start`], on a free port of `ip` (for containers: the bridge's
    /// gateway address, which they reach as `host.docker.internal`).
    pub fn start_on(dir: PathBuf, ip: std::net::IpAddr) -> SourceServer {
        let requests = Arc::new(AtomicUsize::new(0));
        let ranged_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tree_log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let data = web::Data::new(Files {
            dir,
            requests: requests.clone(),
            ranged_bytes: ranged_bytes.clone(),
            tree_log: tree_log.clone(),
        });
        let listener = std::net::TcpListener::bind((ip, 0)).expect("binding the source server");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/ranged/{name}", web::get().to(ranged))
                .route("/tree/{path:.*}", web::get().to(tree))
                .route("/special/chunked/{name}", web::get().to(chunked))
                .route("/special/{what}", web::get().to(special))
                .route("/{name}", web::get().to(serve))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listening")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        SourceServer {
            base_url,
            requests,
            ranged_bytes,
            tree_log,
            handle,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The `/tree/` paths requested so far, with the body bytes sent for each.
    pub fn tree_requests(&self) -> Vec<(String, u64)> {
        self.tree_log.lock().expect("log").clone()
    }
}

impl Drop for SourceServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}
