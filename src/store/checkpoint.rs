//! Checkpoints off the write path.
//!
//! In WAL mode SQLite copies the log back into the database (a checkpoint, with an `fsync`) from
//! inside whichever commit takes the log past 1,000 pages, so every few pages of ingest one
//! commit stalls. The store thread's connection turns that off and nudges this thread after its
//! commits instead; the thread checkpoints through its own connection, which in WAL mode runs
//! beside the writer (`PASSIVE`: it never blocks it and copies what was committed when it began).
//! Other processes on the same home keep SQLite's own checkpoints.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

/// The log's size that starts a checkpoint: SQLite's own default of 1,000 pages (of 4 KiB).
const WAL_BYTES: u64 = 1_000 * 4_096;

/// The store thread's side: tells the checkpointer that something was committed.
#[derive(Debug)]
pub(super) struct Nudge(SyncSender<()>);

impl Nudge {
    /// Never waits: a nudge already pending covers this one.
    pub(super) fn commit(&self) {
        match self.0.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// Starts the checkpointer for the database at `db`; `None` when its connection cannot be made
/// (the writer then keeps SQLite's own checkpoints). It stops when the [`Nudge`] is dropped.
pub(super) fn start(db: &Path) -> Option<Nudge> {
    if std::env::var_os("TD_NOCKPT").is_some() {
        return None;
    }
    let conn = Connection::open(db).ok()?;
    conn.busy_timeout(Duration::from_secs(5)).ok()?;
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let (tx, rx) = mpsc::sync_channel(1);
    thread::Builder::new()
        .name("tonedesk-checkpoint".into())
        .spawn(move || run(&conn, &wal, &rx))
        .ok()?;
    Some(Nudge(tx))
}

fn run(conn: &Connection, wal: &Path, nudges: &Receiver<()>) {
    yield_to_others();
    for () in nudges {
        if std::fs::metadata(wal).is_ok_and(|m| m.len() >= WAL_BYTES)
            && let Err(e) = checkpoint(conn)
        {
            // A full disk, say; the next commit tries again, and the log only grows meanwhile.
            tracing::warn!("checkpoint failed: {e}");
        }
    }
}

/// Copies what the log holds back into the database without blocking a writer.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Lowers this thread's priority to the least, so that it copies the log in the time the writer
/// and the console leave: during a long backfill the log grows, and is copied back as soon as a
/// core is free.
#[cfg(target_os = "linux")]
fn yield_to_others() {
    // SAFETY: `gettid` has no preconditions; `setpriority` on this thread's own id changes only
    // its nice value, and its failure (which leaves the priority as it was) is harmless.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_to_others() {}
