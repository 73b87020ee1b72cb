//! s3s-fs serving a temp directory on a loopback port: a real S3 API, no Python, no Docker.
//! It can be taken down and brought back on the same port, for outage tests. The port stays
//! bound through an outage (connections are accepted and dropped at once): released, it could
//! be taken meanwhile as the local port of some outgoing connection, and the restore's bind
//! would fail.

use crate::{random_name, TempDir};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::{S3Service, S3ServiceBuilder};
use std::sync::Arc;
use tokio::task::{JoinHandle, JoinSet};

pub const ACCESS_KEY: &str = "hopster-test";
pub const SECRET_KEY: &str = "hopster-test-secret";

pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub root: TempDir,
    service: S3Service,
    listener: Arc<tokio::net::TcpListener>,
    task: Option<JoinHandle<()>>,
    /// Cuts every connection while the API is down.
    refuser: Option<JoinHandle<()>>,
}

/// Accepts connections until aborted; aborting drops the JoinSet, which aborts every open
/// connection too, so an outage is total.
fn serve(listener: Arc<tokio::net::TcpListener>, service: S3Service) -> JoinHandle<()> {
    tokio::spawn(async move {
        let http = Builder::new(TokioExecutor::new());
        let mut connections = JoinSet::new();
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            connections.spawn(async move {
                let _ = conn.await;
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

impl S3Server {
    /// Starts the server with one empty bucket of a random name.
    pub async fn start() -> S3Server {
        S3Server::start_with(&random_name("bucket"), ACCESS_KEY, SECRET_KEY).await
    }

    /// Starts the server with the bucket `bucket` and one key pair.
    pub async fn start_with(bucket: &str, access_key: &str, secret_key: &str) -> S3Server {
        S3Server::start_on(bucket, access_key, secret_key, 0).await
    }

    /// Like [`S3Server::start_with`], on a chosen loopback port (0: any).
    pub async fn start_on(bucket: &str, access_key: &str, secret_key: &str, port: u16) -> S3Server {
        let root = TempDir::new("hopster-s3");
        let bucket = bucket.to_owned();
        // s3s-fs keeps a bucket as a directory under its root.
        std::fs::create_dir_all(root.0.join(&bucket)).expect("creating the bucket");
        let fs = s3s_fs::FileSystem::new(&root.0).expect("opening the s3s-fs root");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(access_key, secret_key.to_owned()));
        let service = builder.build();
        let listener = Arc::new(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .expect("binding s3"),
        );
        let addr = listener.local_addr().expect("s3 address");
        let task = Some(serve(listener.clone(), service.clone()));
        S3Server {
            endpoint: format!("http://{addr}"),
            bucket,
            root,
            service,
            listener,
            task,
            refuser: None,
        }
    }

    /// Takes the API down: open connections are cut, and new ones are closed as soon as
    /// they are accepted.
    pub fn outage(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if self.refuser.is_none() {
            let listener = self.listener.clone();
            self.refuser = Some(tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    drop(socket);
                }
            }));
        }
    }

    /// Brings the API back on the same port with the same data.
    pub async fn restore(&mut self) {
        if let Some(refuser) = self.refuser.take() {
            refuser.abort();
            let _ = refuser.await;
        }
        if self.task.is_none() {
            self.task = Some(serve(self.listener.clone(), self.service.clone()));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        for task in [self.task.take(), self.refuser.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}
