//! The listing index on a real directory store: jobs indexed together share objects, every
//! one of them is paged exactly once newest first, a failed write fails every waiter and the
//! next write still happens, and the sweep removes an object only when none of its jobs is left.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers

use futures::TryStreamExt;
use hopster_common::settings::{Backend, StoreSettings};
use hopster_common::Store;
use object_store::path::Path;
use shared_proto::{keys, JobSpec, JobState, JobStatus, Timecode};
use std::time::Duration;

struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store(name: &str) -> (Store, Dir) {
    let dir = std::env::temp_dir().join(format!(
        "hopster-index-{name}-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let settings = StoreSettings {
        backend: Backend::Fs,
        root: dir.clone(),
        ..StoreSettings::default()
    };
    (Store::from_settings(&settings).unwrap(), Dir(dir))
}

/// Job `n`, created at `1_000 + n` ms (so a higher `n` is newer), its status stored.
async fn job(store: &Store, n: u64) -> JobStatus {
    let spec = JobSpec::new(
        "http://example.com/v.mp4",
        None,
        Some(Timecode::from_micros(n * 1_000_000)),
        None,
    )
    .unwrap();
    let status = JobStatus::queued(spec, 1_000 + n);
    store.put_status(&status).await.unwrap();
    status
}

async fn index_objects(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = store
        .objects()
        .list(Some(&Path::from(keys::INDEX_PREFIX)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    names.sort();
    names
}

/// Indexes jobs `numbers` at once: with one runtime thread, every call queues its entry
/// before the writer task first runs, so they make one batch.
async fn index_together(store: &Store, numbers: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut jobs = Vec::new();
    for n in numbers {
        jobs.push(job(store, n).await);
    }
    let written = futures::future::join_all(jobs.iter().map(|s| store.index_job(s))).await;
    assert!(written.iter().all(Result::is_ok), "{written:?}");
    jobs.iter().map(|s| s.created_at_ms).collect()
}

#[tokio::test]
async fn jobs_indexed_together_share_objects_and_page_once_each_newest_first() {
    let (store, _dir) = store("batch");
    // Two batches of ten, with single jobs before, between and after them.
    let mut created = Vec::new();
    for numbers in [0..1, 10..20, 50..51, 100..110, 200..201] {
        created.extend(index_together(&store, numbers).await);
    }
    let objects = index_objects(&store).await;
    assert_eq!(objects.len(), 5, "{objects:?}");
    for name in &objects {
        let named = keys::index_entries(name).expect("an index object");
        assert!(named.len() <= keys::INDEX_NAME_ENTRIES, "{name}");
        assert!(name.len() <= 105, "a name s3s-fs can store: {name}");
    }
    // A job alone gets an object of its own, named as before batching.
    let late = keys::index_entries(&objects[0]).unwrap();
    assert_eq!(late.len(), 1);

    for limit in [1, 4, 30] {
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = store
                .list_jobs(limit, cursor.as_deref(), |_| true)
                .await
                .unwrap();
            assert!(page.len() <= limit);
            paged.extend(page.into_iter().map(|s| s.created_at_ms));
            match next {
                Some(next) => {
                    assert!(
                        keys::parse_index_key(&next).is_some(),
                        "a cursor is one entry"
                    );
                    cursor = Some(next);
                }
                None => break,
            }
        }
        let mut expected = created.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(paged, expected, "pages of {limit}: newest first, each once");
    }
}

#[tokio::test]
async fn a_failed_index_write_fails_every_waiter_and_the_next_write_happens() {
    let (store, dir) = store("fail");
    let a = job(&store, 1).await;
    let b = job(&store, 2).await;
    // A file where the index directory goes: no index object can be written.
    let blocker = dir.0.join("index");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let (ra, rb) = tokio::join!(store.index_job(&a), store.index_job(&b));
    assert!(ra.is_err() && rb.is_err(), "{ra:?} {rb:?}");
    std::fs::remove_file(&blocker).unwrap();
    store.index_job(&a).await.unwrap();
    let (page, _) = store.list_jobs(10, None, |_| true).await.unwrap();
    assert_eq!(page.iter().map(|s| &s.id).collect::<Vec<_>>(), [&a.id]);
}

#[tokio::test]
async fn the_sweep_keeps_an_index_object_while_any_of_its_jobs_is_left() {
    let (store, _dir) = store("sweep");
    let mut done = Vec::new();
    for n in 0..3 {
        let mut status = job(&store, n).await;
        status.state = JobState::Completed;
        store.put_status(&status).await.unwrap();
        done.push(status);
    }
    let running = job(&store, 10).await;
    // Two objects (each `join_all` is one batch): three finished jobs; one finished job and
    // the running one.
    futures::future::join_all(done.iter().map(|s| store.index_job(s))).await;
    let mixed = [job(&store, 20).await, running.clone()];
    futures::future::join_all(mixed.iter().map(|s| store.index_job(s))).await;
    let mut finished = mixed[0].clone();
    finished.state = JobState::Completed;
    store.put_status(&finished).await.unwrap();
    assert_eq!(index_objects(&store).await.len(), 2);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let swept = store.sweep(Duration::from_millis(10)).await.unwrap();
    assert_eq!(swept.jobs, 4, "{swept:?}");
    let left = index_objects(&store).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(keys::index_entries(&left[0])
        .unwrap()
        .contains(&keys::index_key(&running.id, running.created_at_ms)));
    let (page, _) = store.list_jobs(10, None, |_| true).await.unwrap();
    assert_eq!(
        page.iter().map(|s| &s.id).collect::<Vec<_>>(),
        [&running.id]
    );
}
