//! The full-text index of the cached mentions, in a database file of its own beside the cache
//! (see [`crate::paths::search_index_beside`]).
//!
//! Indexing a mention (splitting its text into words and writing them) costs about as much as
//! storing it. In the cache's own file it shared the cache's single write lock, so the store
//! thread did both in turn while the machine's other core waited. In a file of its own it has a
//! lock of its own: a thread indexes what the store thread committed, beside it.
//!
//! - The index file holds `mention_fts` (contentless, no word positions) and `fts_progress`: the
//!   highest mention id indexed, and the token of the cache it indexes (`search_link` in the
//!   cache), so that an index left beside another cache (a cache restored from a backup, say) is
//!   found out and built again from the start.
//! - The store's own connection attaches the index read-only as `search`: its write
//!   transactions (`BEGIN IMMEDIATE`) then take no lock on the index.
//! - The writer has a connection to the index and a read-only one to the cache. Each batch of
//!   [`FTS_BATCH`] takes the index's write lock, reads where the last stopped, reads the mentions
//!   after it from the cache in a statement of its own (a read held on the cache for a whole
//!   batch would keep the cache's log from starting over), and writes them; so two processes on
//!   one home never index a mention twice.
//! - A search first brings the index up to date ([`Indexer::catch_up`]); until then the newest
//!   mentions are cached but not yet found by a search.
//! - A store without a file (the tests' in-memory stores) keeps the index in memory, attached
//!   read-write to its own connection, and indexes on that connection.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{Result, StoreError};

/// How many of the newest mentions may wait for the full-text index before it is brought up to
/// date: the index is written in batches of about this size, which costs far less than a few
/// rows at a time.
pub const FTS_BATCH: i64 = 2_000;

/// Creates the index's tables in schema `index` when missing, and empties the index when it was
/// made for a cache other than the one whose `search_link` token is `token`. Run in a write
/// transaction on the index.
fn prepare(conn: &Connection, index: &str, token: &str) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {index}.fts_progress (
             id    INTEGER PRIMARY KEY CHECK (id = 1),
             upto  INTEGER NOT NULL,          -- the highest mention id in mention_fts
             cache TEXT NOT NULL              -- the search_link token of the cache indexed
         );
         CREATE VIRTUAL TABLE IF NOT EXISTS {index}.mention_fts USING fts5 (
             text, handle, content = '', columnsize = 0, detail = none
         );"
    ))?;
    let indexed: Option<String> = conn
        .query_row(
            &format!("SELECT cache FROM {index}.fts_progress WHERE id = 1"),
            [],
            |r| r.get(0),
        )
        .optional()?;
    if indexed.as_deref() != Some(token) {
        conn.execute_batch(&format!(
            "INSERT INTO {index}.mention_fts (mention_fts) VALUES ('delete-all');
             INSERT INTO {index}.mention_fts (mention_fts, rank) VALUES ('automerge', 8);
             DELETE FROM {index}.fts_progress;"
        ))?;
        conn.execute(
            &format!("INSERT INTO {index}.fts_progress (id, upto, cache) VALUES (1, 0, ?1)"),
            [token],
        )?;
    }
    Ok(())
}

/// The token that names the cache (in schema `cache`) to its index.
fn cache_token(conn: &Connection, cache: &str) -> Result<String> {
    Ok(conn.query_row(
        &format!("SELECT token FROM {cache}.search_link WHERE id = 1"),
        [],
        |r| r.get(0),
    )?)
}

/// The highest mention id in the index (in schema `index`).
fn upto(conn: &Connection, index: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT upto FROM {index}.fts_progress WHERE id = 1"
        ))?
        .query_row([], |r| r.get(0))?)
}

/// The newest cached mention's id (in schema `cache`).
fn newest(conn: &Connection, cache: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT coalesce(max(id), 0) FROM {cache}.mentions"
        ))?
        .query_row([], |r| r.get(0))?)
}

/// `path` as an SQLite URI that opens it read-only.
fn read_only_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' | b'~' => {
                uri.push(char::from(*b));
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?mode=ro");
    uri
}

/// Attaches the index to the store's connection: read-only from `path`, or in memory (and then
/// prepared, since this connection is its only writer) when the store has no file.
pub(super) fn attach(conn: &Connection, path: Option<&Path>) -> Result<()> {
    match path {
        Some(p) => {
            conn.execute("ATTACH DATABASE ?1 AS search", [read_only_uri(p)])?;
        }
        None => {
            conn.execute_batch("ATTACH DATABASE ':memory:' AS search")?;
            prepare(conn, "search", &cache_token(conn, "main")?)?;
        }
    }
    Ok(())
}

/// Opens the index file for writing (private to the user), made ready for the cache named by
/// `token` (see [`prepare`]).
fn open_index(path: &Path, token: &str) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    crate::paths::restrict(path, 0o600);
    super::write_pragmas(&conn)?;
    // Most starts find the index made for this cache: a read tells, with no write lock taken
    // (which would wait for another process's batch). A read that fails (a new or damaged file)
    // leaves it to `prepare`, which reports what is wrong.
    let made_for: Option<String> = conn
        .query_row("SELECT cache FROM fts_progress WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or(None);
    if made_for.as_deref() != Some(token) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        prepare(&tx, "main", token)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// The index's writer: a connection to the index, and one that reads the cache. The cache is
/// read in a statement of its own before each batch is written, not inside the batch's
/// transaction: a read transaction held on the cache for a whole batch would keep its log from
/// starting over (see [`super::checkpoint`]), and a long backfill's log would grow.
#[derive(Debug)]
pub(super) struct Writer {
    index: Connection,
    cache: Connection,
}

impl Writer {
    /// Opens (or creates, private to the user) the index at `index` for the cache at `cache`,
    /// and empties it if it was made for another cache. An index file that is damaged or not a
    /// database is removed and made again: everything in it comes from the cache.
    pub(super) fn open(index: &Path, cache: &Path) -> Result<Writer> {
        let cache = Connection::open_with_flags(
            cache,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        cache.busy_timeout(Duration::from_secs(5))?;
        let token = cache_token(&cache, "main")?;
        let index = match open_index(index, &token) {
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) =>
            {
                tracing::warn!(
                    "the full-text index {} is damaged ({e}); building it again from the cache",
                    index.display()
                );
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
                }
                open_index(index, &token)?
            }
            other => other?,
        };
        Ok(Writer { index, cache })
    }

    /// Indexes up to [`FTS_BATCH`] mentions the index does not hold yet, oldest first, in one
    /// write transaction on the index (which makes two writers take turns). Returns how many.
    fn batch(&mut self) -> Result<usize> {
        let Writer { index, cache } = self;
        let tx = index.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let from = upto(&tx, "main")?;
        let rows: Vec<(i64, String, String)> = cache
            .prepare_cached(
                "SELECT m.id, m.text, a.handle FROM mentions m JOIN authors a ON a.id = m.author_id
                 WHERE m.id > ?1 ORDER BY m.id LIMIT ?2",
            )?
            .query_map(params![from, FTS_BATCH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if let Some(&(last, _, _)) = rows.last() {
            let mut add = tx.prepare_cached(
                "INSERT INTO mention_fts (rowid, text, handle) VALUES (?1, ?2, ?3)",
            )?;
            for (id, text, handle) in &rows {
                add.execute(params![id, text, handle])?;
            }
            drop(add);
            tx.prepare_cached("UPDATE fts_progress SET upto = ?1 WHERE id = 1")?
                .execute([last])?;
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// How many cached mentions the index does not hold yet.
    fn behind(&self) -> Result<i64> {
        Ok(newest(&self.cache, "main")? - upto(&self.index, "main")?)
    }

    /// Indexes batches while at least `at_least` mentions wait (1: everything) and `stop` is
    /// not set. Returns how many.
    fn index_while(&mut self, at_least: i64, stop: &AtomicBool) -> Result<usize> {
        let mut done = 0;
        while !stop.load(Ordering::Acquire) && self.behind()? >= at_least.max(1) {
            let n = self.batch()?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// Indexes everything that waits on the store's own connection (an index in memory), once at
/// least `at_least` mentions wait. Returns how many.
fn index_inline(conn: &mut Connection, at_least: i64) -> Result<usize> {
    let from = upto(conn, "search")?;
    if newest(conn, "main")? - from < at_least.max(1) {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx
        .prepare_cached(
            "INSERT INTO search.mention_fts (rowid, text, handle)
             SELECT m.id, m.text, a.handle FROM main.mentions m
                 JOIN main.authors a ON a.id = m.author_id
             WHERE m.id > ?1 ORDER BY m.id",
        )?
        .execute([from])?;
    tx.prepare_cached(
        "UPDATE search.fts_progress SET upto = (SELECT coalesce(max(id), 0) FROM main.mentions)
         WHERE id = 1",
    )?
    .execute([])?;
    tx.commit()?;
    Ok(n)
}

/// Who writes the index, and where.
#[derive(Debug)]
pub(super) enum Indexer {
    /// The store's own connection, on the index it attached in memory.
    Inline,
    /// Connections of its own, on the caller's thread.
    Own(Box<Writer>),
    /// A thread of its own (see [`Indexer::off_thread`]).
    Thread(IndexThread),
}

impl Indexer {
    /// After an ingest committed on the store's connection `conn`: indexes a batch once
    /// [`FTS_BATCH`] mentions wait, or wakes the indexing thread. A failure is logged and left
    /// for the next [`Indexer::catch_up`] to report: the mentions are stored either way.
    pub(super) fn committed(&mut self, conn: &mut Connection) {
        let done = match self {
            Indexer::Inline => index_inline(conn, FTS_BATCH),
            Indexer::Own(w) => w.index_while(FTS_BATCH, &AtomicBool::new(false)),
            Indexer::Thread(t) => {
                t.wake();
                Ok(0)
            }
        };
        if let Err(e) = done {
            tracing::warn!("the full-text index could not take the newest mentions yet: {e}");
        }
    }

    /// Brings the index up to date with every cached mention. Returns how many it indexed.
    pub(super) fn catch_up(&mut self, conn: &mut Connection) -> Result<usize> {
        match self {
            Indexer::Inline => index_inline(conn, 1),
            Indexer::Own(w) => w.index_while(1, &AtomicBool::new(false)),
            Indexer::Thread(t) => t.catch_up(),
        }
    }

    /// Moves a writer of its own onto a thread of its own; for the long-lived store thread.
    /// Stays as it is when the thread cannot start.
    pub(super) fn off_thread(&mut self) {
        if let Indexer::Own(_) = self {
            let Indexer::Own(w) = std::mem::replace(self, Indexer::Inline) else {
                unreachable!("matched above");
            };
            *self = match IndexThread::start(w) {
                Ok(t) => Indexer::Thread(t),
                Err(w) => Indexer::Own(w),
            };
        }
    }
}

#[derive(Debug)]
enum Ask {
    /// Index while a batch's worth waits.
    Wake,
    /// Index everything and answer.
    CatchUp(Sender<Result<usize>>),
}

/// The indexing thread's handle; the thread stops (after its batch) when this is dropped.
#[derive(Debug)]
pub(super) struct IndexThread {
    asks: Option<Sender<Ask>>,
    /// Set while a wake is on its way, so that a burst of commits sends one.
    woken: Arc<AtomicBool>,
    /// Set when the handle is dropped: the thread stops after the batch it is in (a cache
    /// indexed from the start takes seconds, which a person quitting should not wait for).
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl IndexThread {
    fn start(w: Box<Writer>) -> std::result::Result<IndexThread, Box<Writer>> {
        let (asks, rx) = mpsc::channel::<Ask>();
        let woken = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (theirs, their_stop) = (Arc::clone(&woken), Arc::clone(&stop));
        // The writer goes to the thread through a channel, so that it comes back when the
        // thread cannot start.
        let (give, take) = mpsc::channel::<Box<Writer>>();
        let started = thread::Builder::new()
            .name("tonedesk-index".into())
            .spawn(move || {
                if let Ok(mut w) = take.recv() {
                    run(&mut w, &rx, &theirs, &their_stop);
                }
            });
        match started {
            Ok(thread) => {
                if let Err(mpsc::SendError(back)) = give.send(w) {
                    return Err(back);
                }
                Ok(IndexThread {
                    asks: Some(asks),
                    woken,
                    stop,
                    thread: Some(thread),
                })
            }
            Err(e) => {
                tracing::warn!("the full-text index stays on the store thread: {e}");
                Err(w)
            }
        }
    }

    fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel)
            && let Some(asks) = &self.asks
        {
            let _ = asks.send(Ask::Wake);
        }
    }

    fn catch_up(&self) -> Result<usize> {
        let stopped = || StoreError::Corrupt("the full-text index's thread stopped".into());
        let (answer, answered) = mpsc::channel();
        self.asks
            .as_ref()
            .ok_or_else(stopped)?
            .send(Ask::CatchUp(answer))
            .map_err(|_| stopped())?;
        answered.recv().map_err(|_| stopped())?
    }
}

impl Drop for IndexThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.asks = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(w: &mut Writer, asks: &Receiver<Ask>, woken: &AtomicBool, stop: &AtomicBool) {
    for ask in asks {
        match ask {
            Ask::Wake => {
                woken.store(false, Ordering::Release);
                if let Err(e) = w.index_while(FTS_BATCH, stop) {
                    tracing::warn!(
                        "the full-text index could not take the newest mentions yet: {e}"
                    );
                }
            }
            Ask::CatchUp(answer) => {
                let _ = answer.send(w.index_while(1, stop));
            }
        }
    }
}
