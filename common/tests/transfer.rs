//! The store's transfers on a real directory store: an upload dropped before it is finished
//! leaves nothing behind (not the object, not a staged part), a finished one is whole, and a
//! download streams it back into a file.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers

use hopster_common::settings::{Backend, StoreSettings};
use hopster_common::store::DownloadError;
use hopster_common::Store;
use std::time::{Duration, Instant};

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn an_unfinished_upload_leaves_nothing_and_a_finished_one_downloads_whole() {
    let root = std::env::temp_dir().join(format!("hopster-transfer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = Dir(root.clone());
    let store = Store::from_settings(&StoreSettings {
        backend: Backend::Fs,
        root: root.clone(),
        ..StoreSettings::default()
    })
    .unwrap();
    let part = 5 * 1024 * 1024;
    let body: Vec<u8> = (0..(2 * part + 123)).map(|i| (i % 251) as u8).collect();

    // Two whole parts are written, then the upload is dropped (as an error's `?` would).
    let mut upload = store.upload("results/partial.bin", part, 2).await.unwrap();
    upload.put(body.clone().into()).await.unwrap();
    drop(upload);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files(&root).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the aborted upload left {:?}",
            files(&root)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(store.head("results/partial.bin").await.unwrap().is_none());

    let mut upload = store.upload("results/whole.bin", part, 2).await.unwrap();
    for chunk in body.chunks(1_000_000) {
        upload.put(chunk.to_vec().into()).await.unwrap();
    }
    upload.finish().await.unwrap();
    let local = dir.0.join("downloaded.bin");
    let size = store
        .download_to_file("results/whole.bin", &local)
        .await
        .unwrap();
    assert_eq!(size, body.len() as u64);
    assert_eq!(std::fs::read(&local).unwrap(), body);
    assert!(matches!(
        store.download_to_file("results/none.bin", &local).await,
        Err(DownloadError::Missing(_))
    ));
}
