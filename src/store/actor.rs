//! One owner thread for the database: everything that touches SQLite from async code goes through
//! a [`StoreHandle`], which runs closures on that thread in order.

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::{Result, Store, StoreError};

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// A cheap, cloneable handle to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Job>,
}

impl StoreHandle {
    /// Opens the database on its own thread.
    pub fn open(path: &Path) -> Result<StoreHandle> {
        StoreHandle::spawn(Store::open(path)?)
    }

    /// Runs `store` on a thread of its own, with its checkpoints on another (see
    /// [`Store::checkpoint_off_thread`]).
    pub fn spawn(mut store: Store) -> Result<StoreHandle> {
        store.checkpoint_off_thread();
        store.index_off_thread();
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("tonedesk-store".into())
            .spawn(move || {
                for job in rx {
                    job(&mut store);
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the store thread: {e}")))?;
        Ok(StoreHandle { tx })
    }

    /// Runs `f` on the store thread and waits for its answer.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Sends `f` to the store thread now; its answer comes with the returned future, so the
    /// caller can go on with other work while the store runs it. Jobs run in the order sent.
    pub fn submit<T, F>(&self, f: F) -> impl Future<Output = Result<T>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .tx
            .send(Box::new(move |s| {
                let out = f(s).map_err(|e| s.explain(e));
                let _ = reply.send(out);
            }))
            .is_ok();
        async move {
            if !sent {
                return Err(StoreError::Corrupt("the store thread has stopped".into()));
            }
            answer
                .await
                .map_err(|_| StoreError::Corrupt("the store thread dropped a request".into()))?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_run_on_the_store_thread_in_order() {
        let h = StoreHandle::spawn(Store::open_in_memory().unwrap()).unwrap();
        let name = h
            .call(|_| Ok(thread::current().name().map(str::to_owned)))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("tonedesk-store"));
        let crisis = h.call(|s| s.crisis()).await.unwrap();
        assert_eq!(crisis, None);
    }

    /// Ingests `pages` pages of 80 mentions of about 2 KB each (the demo X account's), each page
    /// sent as soon as the one before it committed.
    async fn ingest_pages(h: &StoreHandle, pages: usize) {
        use crate::domain::playbook::{Targets, tags_of};
        use crate::domain::{Platform, Tone};
        h.call(|s| s.upsert_account("demo-x", Platform::X, "acmecare", true))
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        for page in 0..pages {
            let items: Vec<_> = (0..80)
                .map(|i| {
                    let id = page * 80 + i;
                    let text = format!("{id} {}", "x".repeat(2_000));
                    let m = crate::store::tests::incoming(&id.to_string(), &text, 0);
                    (m, tags_of(Tone::Neutral, &[]))
                })
                .collect();
            h.call(move |s| s.ingest(&items, &Targets::default(), None, now))
                .await
                .unwrap();
        }
    }

    /// The one number `sql` answers, read on the store thread.
    async fn one_number(h: &StoreHandle, sql: &'static str) -> i64 {
        h.call(move |s| Ok(s.conn.query_row(sql, [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// The store thread's commits never stop to checkpoint; the checkpointer copies the log back
    /// into the database beside them.
    #[tokio::test]
    async fn the_log_is_checkpointed_off_the_store_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let h = StoreHandle::spawn(Store::open(&db).unwrap()).unwrap();
        let auto = one_number(&h, "PRAGMA wal_autocheckpoint").await;
        assert_eq!(auto, 0, "commits do not checkpoint");
        // About 8 MB of mentions in pages of 80: twice the log's size that starts a checkpoint.
        ingest_pages(&h, 50).await;
        // In WAL mode the database file grows only by checkpoints.
        let grown = || std::fs::metadata(&db).map_or(0, |m| m.len()) > 4_000_000;
        for _ in 0..100 {
            if grown() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(grown(), "the checkpointer copied the log into the database");
        let n = one_number(&h, "SELECT count(*) FROM mentions").await;
        assert_eq!(n, 4_000);
    }

    /// A backfill that never pauses still has its log started over: the file stays near
    /// SQLite's own checkpoint size instead of growing with everything written through it.
    #[tokio::test]
    async fn a_long_backfill_keeps_the_log_short() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let h = StoreHandle::spawn(Store::open(&db).unwrap()).unwrap();
        // About 40 MB of mentions.
        ingest_pages(&h, 250).await;
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        // The writer copies the rest itself at 4,000 pages (16 MB) if the checkpointer lags.
        assert!(wal < 24_000_000, "the log grew to {wal} bytes");
    }
}
