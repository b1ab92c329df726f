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

    pub fn spawn(mut store: Store) -> Result<StoreHandle> {
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
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Box::new(move |s| {
                let out = f(s).map_err(|e| s.explain(e));
                let _ = reply.send(out);
            }))
            .map_err(|_| StoreError::Corrupt("the store thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the store thread dropped a request".into()))?
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
}
