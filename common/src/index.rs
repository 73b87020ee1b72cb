//! Writing the listing index with group commit: jobs submitted while an index write is in
//! flight share the next one, so under load a submission costs well under one extra object.
//! Nothing is acknowledged before its object is written.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use shared_proto::{keys, JobId};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

#[derive(Debug, Default)]
struct Pending {
    jobs: Vec<((JobId, u64), Waiter)>,
    /// A writer task is draining `jobs`.
    writing: bool,
}

/// The entries waiting for an index write.
#[derive(Debug)]
pub(crate) struct IndexQueue {
    pending: Mutex<Pending>,
    /// Entries per object at most.
    per_object: usize,
}

impl IndexQueue {
    pub(crate) fn new(per_object: usize) -> IndexQueue {
        IndexQueue {
            pending: Mutex::new(Pending::default()),
            per_object: per_object.max(1),
        }
    }

    /// Lists the job, returning once an index object naming it is written.
    pub(crate) async fn add(
        self: &Arc<Self>,
        store: &Arc<dyn ObjectStore>,
        id: &JobId,
        created_at_ms: u64,
    ) -> Result<(), object_store::Error> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut pending = self.lock();
            pending.jobs.push(((id.clone(), created_at_ms), tx));
            !std::mem::replace(&mut pending.writing, true)
        };
        if lead {
            tokio::spawn(self.clone().drain(store.clone()));
        }
        let failed = |message: String| object_store::Error::Generic {
            store: "hopster-index",
            source: message.into(),
        };
        match rx.await {
            Ok(written) => written.map_err(failed),
            Err(_) => Err(failed("the index writer stopped".into())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what is pending, then what arrived meanwhile, until nothing is left.
    async fn drain(self: Arc<Self>, store: Arc<dyn ObjectStore>) {
        loop {
            let jobs = {
                let mut pending = self.lock();
                if pending.jobs.is_empty() {
                    pending.writing = false;
                    return;
                }
                std::mem::take(&mut pending.jobs)
            };
            let mut batches = Vec::new();
            let mut jobs = jobs.into_iter().peekable();
            while jobs.peek().is_some() {
                let (entries, waiters): (Vec<_>, Vec<_>) =
                    jobs.by_ref().take(self.per_object).unzip();
                batches.push(write(&store, entries, waiters));
            }
            futures::future::join_all(batches).await;
        }
    }
}

async fn write(store: &Arc<dyn ObjectStore>, entries: Vec<(JobId, u64)>, waiters: Vec<Waiter>) {
    let (name, body) = keys::index_batch(&entries);
    let written = store
        .put(&Path::from(name), PutPayload::from(body))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    for waiter in waiters {
        // A submitter that went away (its request was dropped) needs no answer.
        let _ = waiter.send(written.clone());
    }
}
