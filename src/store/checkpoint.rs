//! Checkpoints off the write path.
//!
//! In WAL mode SQLite copies the log back into the database (a checkpoint, with an `fsync`) from
//! inside whichever commit takes the log past 1,000 pages, so every few pages of ingest one
//! commit stalls. The store thread's connection turns that off and nudges this thread after its
//! commits instead; the thread checkpoints through its own connection, which in WAL mode runs
//! beside the writer (`PASSIVE`: it never blocks it and copies what was committed when it began).
//! Other processes on the same home keep SQLite's own checkpoints.
//!
//! A checkpointer beside a busy writer never finds the whole log copied, since the writer has
//! always committed more since it began; and SQLite starts the log over from its first page only
//! when a write begins with all of it copied. Left there, a long backfill grows the log file
//! without end (400 MB for 100,000 mentions, kept on disk until the last connection closes, and
//! written back long after the backfill). So once the log is long and the
//! checkpointer has copied all but its last few commits, the writer copies those itself right
//! after a commit (a few hundred pages at most), and its next write starts the log over.
//!
//! The checkpointer runs at the normal priority. At the lowest, a busy machine (a build beside a
//! backfill) starved it while it held the checkpoint lock, which the writer needs to finish a
//! copy, and the log grew past 60 MB again.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::Wal;

/// The log's length (in pages, 4 KiB each) at which the checkpointer starts copying it.
const COPY_FROM: i32 = 500;
/// The length at which the writer finishes the copy and starts the log over: SQLite's own
/// checkpoint size.
const RESTART_AT: i32 = 1_000;
/// The most the writer copies itself at [`RESTART_AT`]: what the checkpointer has not copied yet.
const WRITER_COPIES: i32 = 400;
/// The length at which the writer copies whatever is left, when the checkpointer cannot keep up
/// (the machine is busy), so the log stays bounded.
const WRITER_COPIES_ALL: i32 = 4_000;

thread_local! {
    /// The log's length after the last commit on this thread, set by [`note_length`].
    static LOG_LENGTH: Cell<i32> = const { Cell::new(0) };
}

/// SQLite's write-ahead-log hook (called after each commit with the log's length in pages).
/// The hook takes no state, and commits run on the thread that owns the connection, so the
/// length goes to that thread's [`LOG_LENGTH`].
fn note_length(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOG_LENGTH.set(pages);
    Ok(())
}

/// The store thread's side of the checkpointer.
#[derive(Debug)]
pub(super) struct Checkpoints {
    nudge: SyncSender<()>,
    /// How far the checkpointer's last pass copied the log, in pages: a hint (it may belong to
    /// the log before its last restart), never relied on for correctness.
    copied: Arc<AtomicI32>,
}

impl Checkpoints {
    /// Starts the checkpointer for the database that `conn` writes, and takes the checkpoints
    /// off `conn`'s commits; `None` (and SQLite's own checkpoints kept) when the checkpointer's
    /// connection cannot be made. It stops when this is dropped.
    pub(super) fn start(conn: &Connection, db: &Path) -> Option<Checkpoints> {
        let own = Connection::open(db).ok()?;
        own.busy_timeout(Duration::from_secs(5)).ok()?;
        let (nudge, nudges) = mpsc::sync_channel(1);
        let copied = Arc::new(AtomicI32::new(0));
        let theirs = Arc::clone(&copied);
        thread::Builder::new()
            .name("tonedesk-checkpoint".into())
            .spawn(move || run(&own, &nudges, &theirs))
            .ok()?;
        // Turning SQLite's checkpoints off clears its hook; ours replaces it.
        conn.pragma_update(None, "wal_autocheckpoint", 0).ok()?;
        conn.wal_hook(Some(note_length));
        Some(Checkpoints { nudge, copied })
    }

    /// After a commit on `conn`: nudges the checkpointer once the log is long enough to copy,
    /// and finishes the copy itself once the checkpointer has done most of it (see the module's
    /// documentation). Never waits for the checkpointer.
    pub(super) fn committed(&self, conn: &Connection) {
        let length = LOG_LENGTH.replace(0);
        if length < COPY_FROM {
            return;
        }
        let copied = self.copied.load(Ordering::Relaxed);
        // A figure larger than the log belongs to the log before it started over.
        let copied = if copied > length { 0 } else { copied };
        let finish = length >= WRITER_COPIES_ALL
            || (length >= RESTART_AT && length - copied <= WRITER_COPIES);
        if finish {
            match passive(conn) {
                Ok(Pass { busy: false, .. }) => self.copied.store(0, Ordering::Relaxed),
                // The checkpointer is at it: the next commit tries again.
                Ok(Pass { busy: true, .. }) => {}
                Err(e) => tracing::warn!("checkpoint failed: {e}"),
            }
        } else {
            match self.nudge.try_send(()) {
                // A nudge already pending covers this one.
                Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
            }
        }
    }
}

fn run(conn: &Connection, nudges: &Receiver<()>, copied: &AtomicI32) {
    for () in nudges {
        match passive(conn) {
            Ok(Pass {
                busy: false,
                copied: pages,
            }) => copied.store(pages, Ordering::Relaxed),
            Ok(Pass { busy: true, .. }) => {}
            // A full disk, say; the next commit tries again, and the log only grows meanwhile.
            Err(e) => tracing::warn!("checkpoint failed: {e}"),
        }
    }
}

/// What a checkpoint did.
#[derive(Debug)]
struct Pass {
    /// Another connection was checkpointing, so this one copied nothing.
    busy: bool,
    /// The pages of the log copied into the database, this pass and earlier ones.
    copied: i32,
}

/// Copies what the log holds back into the database without blocking a writer.
fn passive(conn: &Connection) -> rusqlite::Result<Pass> {
    conn.query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |r| {
        Ok(Pass {
            busy: r.get::<_, i32>(0)? != 0,
            copied: r.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's connection has the full-text index attached read-only; the writer's own
    /// copies (and the checkpointer's) must name the cache, or they fail on the index.
    #[test]
    fn a_pass_copies_the_cache_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let pass = passive(&store.conn);
        assert!(pass.is_ok(), "{pass:?}");
    }
}
