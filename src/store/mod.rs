//! The local cache: SQLite through rusqlite. Migrations, queue pages, full-text search, the audit
//! chain and the outbox. The interface is narrow and speaks domain types; the SQL stays here.

mod actor;
mod ae;
mod authors;
mod checkpoint;
mod drafts;
mod index;
mod schema;
pub mod stats;
mod tally;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;

pub use actor::StoreHandle;
pub use ae::StoredAeCase;
pub use index::FTS_BATCH;
use tally::Tally;

use crate::domain::audit::{AuditEntry, AuditHead, AuditRecord, GENESIS};
use crate::domain::playbook::{self, OVERDUE_AE_RANK, Targets};
use crate::domain::{
    Author, Flag, Flags, IncomingMention, Mention, MentionId, MentionState, Platform, TagSource,
    Tags, Tone,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("the database holds a value it cannot read: {0}")]
    Corrupt(String),
    #[error("no mention with id {0} (see `tonedesk queue --json` for ids)")]
    NoMention(MentionId),
    #[error(
        "mention {mention} already has a reply in state '{state}'; check it before sending another"
    )]
    AlreadyAnswered { mention: MentionId, state: String },
    /// Another send of this home already holds the idempotency key (see [`Store::begin_send`]).
    #[error("the idempotency key {0} is already another send's; make a new key and try again")]
    KeyTaken(String),
    /// The change does not apply to the record as it stands (for example a decided draft).
    #[error("{0}")]
    Conflict(String),
    /// SQLite's `SQLITE_FULL`, or an I/O error on a file system with no space left (`ENOSPC`).
    #[error(
        "the disk is full: free some space in {} (or move the home with --home DIR) and run the \
         command again; the change was rolled back, nothing was half-written",
        .0.display()
    )]
    DiskFull(PathBuf),
    /// `SQLITE_READONLY`, or a file system mounted read-only (`EROFS`).
    #[error(
        "the tonedesk home {} is read-only: remount it read-write or make it writable, or pass \
         --home DIR with a writable folder; nothing was changed",
        .0.display()
    )]
    ReadOnly(PathBuf),
    /// `SQLITE_CANTOPEN` on a file system that is neither full nor read-only.
    #[error(
        "cannot open the database in {}: check that the folder exists and that this user may \
         read and write it, or pass --home DIR",
        .0.display()
    )]
    CannotOpen(PathBuf),
}

/// What is wrong with the disk under a folder, when an error comes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskTrouble {
    Full,
    ReadOnly,
    CannotOpen,
}

impl StoreError {
    /// A hint for the person reading the error.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Some("another tonedesk is writing: try again in a moment")
            }
            _ => None,
        }
    }

    /// The same error, named in words a person can act on when it comes from a full or
    /// read-only disk under `dir` (the database's folder).
    pub fn in_folder(self, dir: &Path) -> StoreError {
        let trouble = match &self {
            StoreError::Sqlite(e) => sqlite_trouble(e, dir),
            StoreError::Migration(rusqlite_migration::Error::RusqliteError { err, .. }) => {
                sqlite_trouble(err, dir)
            }
            _ => None,
        };
        match trouble {
            Some(t) => trouble_error(t, dir),
            None => self,
        }
    }

    /// An I/O error from a file under `dir` (logs, library, lock), named the same way when the
    /// disk is full or read-only.
    pub fn from_io(e: &std::io::Error, dir: &Path) -> Option<StoreError> {
        let trouble = match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => DiskTrouble::Full,
            Some(libc::EROFS) => DiskTrouble::ReadOnly,
            _ if e.kind() == std::io::ErrorKind::StorageFull => DiskTrouble::Full,
            _ if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => DiskTrouble::ReadOnly,
            _ => return None,
        };
        Some(trouble_error(trouble, dir))
    }
}

fn trouble_error(t: DiskTrouble, dir: &Path) -> StoreError {
    let dir = dir.to_path_buf();
    match t {
        DiskTrouble::Full => StoreError::DiskFull(dir),
        DiskTrouble::ReadOnly => StoreError::ReadOnly(dir),
        DiskTrouble::CannotOpen => StoreError::CannotOpen(dir),
    }
}

/// SQLite reports a full disk as `SQLITE_FULL` on most writes, but as an I/O error where it
/// grows its shared-memory file; and a read-only file system as `SQLITE_READONLY` or
/// `SQLITE_CANTOPEN` (it cannot make the WAL's files). The file system itself says which.
fn sqlite_trouble(e: &rusqlite::Error, dir: &Path) -> Option<DiskTrouble> {
    use rusqlite::ErrorCode;
    let rusqlite::Error::SqliteFailure(f, _) = e else {
        return None;
    };
    let state = folder_state(dir);
    let (read_only, nearly_full) = (state.read_only, state.nearly_full());
    match f.code {
        ErrorCode::DiskFull => Some(DiskTrouble::Full),
        ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure if read_only => {
            Some(DiskTrouble::ReadOnly)
        }
        ErrorCode::SystemIoFailure | ErrorCode::CannotOpen if nearly_full => {
            Some(DiskTrouble::Full)
        }
        ErrorCode::ReadOnly => Some(DiskTrouble::ReadOnly),
        ErrorCode::CannotOpen => Some(DiskTrouble::CannotOpen),
        _ => None,
    }
}

/// Free space a send asks for before it writes its intent (the intent, the result and room for
/// SQLite's WAL and its index).
pub const ROOM_TO_SEND: u64 = 1024 * 1024;

#[derive(Debug, Default)]
struct FolderState {
    read_only: bool,
    /// Bytes this user may still write, when the system says.
    free: Option<u64>,
}

impl FolderState {
    fn nearly_full(&self) -> bool {
        self.free.is_some_and(|f| f < 256 * 1024)
    }
}

/// Whether the file system holding `dir` is mounted read-only, and the space left on it.
fn folder_state(dir: &Path) -> FolderState {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return FolderState::default();
        };
        // SAFETY: statvfs only writes into the zeroed struct it is given; `c` is a valid
        // NUL-terminated path that outlives the call.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return FolderState::default();
        }
        FolderState {
            read_only: st.f_flag & libc::ST_RDONLY != 0,
            free: Some(st.f_bavail.saturating_mul(st.f_frsize)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        FolderState::default()
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which mentions a queue page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum View {
    /// Open mentions to answer, in playbook urgency order.
    #[default]
    Queue,
    /// Open trolls and spam.
    Moderation,
    /// Adverse events, open or answered, by report due time (overdue on top); reported ones last.
    Ae,
    /// Mentions with a custom draft awaiting MLR review.
    Review,
    /// Snoozed mentions and HCP follow-ups, by the time they come back.
    Snoozed,
    /// Answered or closed, newest first.
    Done,
}

impl View {
    pub const ALL: [View; 6] = [
        View::Queue,
        View::Moderation,
        View::Ae,
        View::Review,
        View::Snoozed,
        View::Done,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Queue => "Queue",
            View::Moderation => "Moderation",
            View::Ae => "AE",
            View::Review => "Review",
            View::Snoozed => "Snoozed",
            View::Done => "Done",
        }
    }
}

/// A narrowing of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Filter {
    Flag(Flag),
    Platform(Platform),
}

impl Filter {
    /// The order in which the filter key cycles.
    pub const CYCLE: [Option<Filter>; 8] = [
        None,
        Some(Filter::Flag(Flag::Ae)),
        Some(Filter::Flag(Flag::Hcp)),
        Some(Filter::Flag(Flag::MedicalQuestion)),
        Some(Filter::Flag(Flag::Crisis)),
        Some(Filter::Platform(Platform::X)),
        Some(Filter::Platform(Platform::Mastodon)),
        Some(Filter::Platform(Platform::Bluesky)),
    ];

    pub fn label(self) -> String {
        match self {
            Filter::Flag(f) => format!("flag {f}"),
            Filter::Platform(p) => format!("platform {p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QueueQuery {
    pub view: View,
    pub filter: Option<Filter>,
    /// Words to find in the text or the author's handle. Searches the full-text index, which
    /// the newest mentions may not have reached yet: run [`Store::index_pending`] first (the
    /// console's page load does).
    pub search: Option<String>,
}

/// Numbers for the status bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub open: u64,
    pub ae_open: u64,
    /// AE reports past their due time and not yet exported to pharmacovigilance.
    pub ae_overdue: u64,
    pub snoozed: u64,
    /// Custom drafts awaiting MLR review.
    pub drafts: u64,
    pub overdue: u64,
    pub moderation: u64,
    pub done: u64,
    pub crisis_open: u64,
}

/// A send about to happen, for the outbox.
#[derive(Debug, Clone)]
pub struct OutboxNew {
    pub idem_key: String,
    pub mention_id: MentionId,
    pub account: String,
    pub platform: Platform,
    pub template: String,
    pub version: u32,
    pub channel: String,
    pub text: String,
    /// The sending process (`pid:start-time`), so that another process does not settle a send
    /// that is still in flight.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub idem_key: String,
    pub mention_id: MentionId,
    pub account: String,
    pub channel: String,
    pub text: String,
    pub state: String,
    pub remote_id: Option<String>,
    pub owner: Option<String>,
    /// When the intent was written (unix seconds).
    pub created_at: i64,
}

/// What the poller of one account's stream last did. Times are unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollRecord {
    pub account: String,
    pub stream: String,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub next_at: Option<i64>,
    pub budget_limit: Option<i64>,
    pub budget_remaining: Option<i64>,
    pub budget_reset: Option<i64>,
}

/// The pragmas of every connection that writes a file of the home (the cache, the search
/// index): the write-ahead log, commits that do not wait for the disk, and a wait for a lock
/// that another connection holds.
fn write_pragmas(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

pub struct Store {
    conn: Connection,
    /// Commits through this connection, and catch-ups of the full-text index that indexed
    /// something (with SQLite's `data_version`, which counts other connections' commits, it
    /// tells whether anything a count reads changed since it was taken).
    writes: u64,
    /// The last filtered or searched count: (query, writes, data_version, count).
    counted: std::cell::RefCell<Option<(QueueQuery, u64, i64, usize)>>,
    /// The last search and the full-text query made of it (see [`Store::fts_query`]): a searched
    /// view asks again with the same words for each count and page.
    searched: std::cell::RefCell<Option<(String, String)>>,
    /// The authors ingest stored or read lately (see [`authors`]).
    authors: authors::KnownAuthors,
    /// The checkpointer to tell of each commit, when it runs (see [`checkpoint`]).
    checkpoints: Option<checkpoint::Checkpoints>,
    /// Who writes the full-text index (see [`index`]).
    indexer: index::Indexer,
}

const MENTION_COLUMNS: &str = "m.id, m.platform, m.account, m.remote_id, a.handle, a.display_name, a.bio, \
     m.text, m.created_at, m.url, m.in_reply_to, m.parent_text, m.reply_ref, m.private, m.tone, m.flags, \
     m.confidence, m.reasons, m.tag_source, m.state, m.due_at, m.snooze_until";

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let conn = Connection::open(path).map_err(|e| StoreError::from(e).in_folder(dir))?;
        crate::paths::restrict(path, 0o600);
        let index = crate::paths::search_index_beside(path);
        Store::setup(conn, Some((path, &index))).map_err(|e| e.in_folder(dir))
    }

    /// Refuses with [`StoreError::DiskFull`] when the database's disk has less than
    /// [`ROOM_TO_SEND`] left: a send writes its intent, then posts, then writes its result, and
    /// a result that cannot be written leaves a post the log does not show as sent.
    pub fn ensure_room(&self) -> Result<()> {
        let Some(dir) = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .and_then(|p| Path::new(p).parent())
        else {
            return Ok(());
        };
        match folder_state(dir).free {
            Some(free) if free < ROOM_TO_SEND => Err(StoreError::DiskFull(dir.to_path_buf())),
            _ => Ok(()),
        }
    }

    /// `e` named as a full or read-only disk where it is one (see [`StoreError::in_folder`]).
    pub(crate) fn explain(&self, e: StoreError) -> StoreError {
        match self.conn.path().filter(|p| !p.is_empty()) {
            Some(p) => e.in_folder(Path::new(p).parent().unwrap_or(Path::new("."))),
            None => e,
        }
    }

    pub fn open_in_memory() -> Result<Store> {
        Store::setup(Connection::open_in_memory()?, None)
    }

    /// Pragmas, migrations and the full-text index: for a store with a file, `files` holds the
    /// cache's path and the index's.
    fn setup(mut conn: Connection, files: Option<(&Path, &Path)>) -> Result<Store> {
        write_pragmas(&conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrations().to_latest(&mut conn)?;
        let indexer = match files {
            Some((cache, path)) => {
                let writer = index::Writer::open(path, cache)?;
                index::attach(&conn, Some(path))?;
                index::Indexer::Own(Box::new(writer))
            }
            None => {
                index::attach(&conn, None)?;
                index::Indexer::Inline
            }
        };
        Ok(Store {
            conn,
            writes: 0,
            counted: Default::default(),
            searched: Default::default(),
            authors: Default::default(),
            checkpoints: None,
            indexer,
        })
    }

    /// Moves the writing of the full-text index onto a thread of its own (see [`index`]); for
    /// the long-lived store thread.
    pub(crate) fn index_off_thread(&mut self) {
        self.indexer.off_thread();
    }

    /// Moves checkpoints off this connection's commits onto a thread of their own (see
    /// [`checkpoint`]); for the long-lived store thread. Without a file, or when the thread
    /// cannot start, SQLite's own checkpoints stay.
    pub(crate) fn checkpoint_off_thread(&mut self) {
        if let Some(db) = self.conn.path().filter(|p| !p.is_empty()) {
            self.checkpoints = checkpoint::Checkpoints::start(&self.conn, Path::new(db));
        }
    }

    /// Copies everything the write-ahead log holds into the database now, waiting for readers
    /// where it must.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA main.wal_checkpoint(FULL)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Runs `f` in one write transaction, taken up front so that two processes never interleave.
    /// A full or read-only disk comes back as [`StoreError::DiskFull`] or
    /// [`StoreError::ReadOnly`], after the transaction was rolled back.
    fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let done = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        match done {
            Ok(out) => {
                self.writes += 1;
                if let Some(checkpoints) = &self.checkpoints {
                    checkpoints.committed(&self.conn);
                }
                Ok(out)
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Registers an account at every start; one that did not change writes nothing, so that a
    /// start on a full disk can still read.
    pub fn upsert_account(
        &mut self,
        name: &str,
        platform: Platform,
        handle: &str,
        demo: bool,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO accounts (name, platform, handle, demo) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET platform = excluded.platform,
                     handle = excluded.handle, demo = excluded.demo
                 WHERE (accounts.platform, accounts.handle, accounts.demo)
                     IS NOT (excluded.platform, excluded.handle, excluded.demo)",
                params![name, platform.as_str(), handle, demo],
            )?;
            Ok(())
        })
    }

    /// Stores new mentions and, in the same transaction, advances the cursor that covers them, so
    /// a cursor never runs ahead of what is cached. Mentions already cached are skipped. Returns
    /// how many were new.
    pub fn ingest(
        &mut self,
        items: &[(IncomingMention, Tags)],
        targets: &Targets,
        cursor: Option<(&str, &str, &str)>,
        now: OffsetDateTime,
    ) -> Result<usize> {
        let mut known = std::mem::take(&mut self.authors);
        let stored = self.write(|tx| {
            known.sync(tx)?;
            let mut authors = authors::Resolver::new(tx, &known)?;
            let mut new = 0;
            let mut mention_stmt = tx.prepare_cached(
                "INSERT INTO mentions (platform, account, remote_id, author_id, text, created_at,
                     fetched_at, url, in_reply_to, parent_text, reply_ref, private, tone, flags,
                     confidence, reasons, tag_source, rank, moderation, due_at, ae_due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                     ?18, ?19, ?20, ?21)
                 ON CONFLICT (platform, remote_id) DO NOTHING",
            )?;
            let mut tally = Tally::default();
            for (m, tags) in items {
                let author_id = authors.id(m.platform, &m.author)?;
                let due = targets.due_at(m.created_at, tags);
                let moderation = playbook::lane(tags) == playbook::Lane::Moderation;
                let ae_due = tags
                    .flags
                    .contains(Flag::Ae)
                    .then(|| targets.ae_report_due(m.created_at).unix_timestamp());
                let changed = mention_stmt.execute(params![
                    m.platform.as_str(),
                    m.account,
                    m.remote_id,
                    author_id,
                    m.text,
                    m.created_at.unix_timestamp(),
                    now.unix_timestamp(),
                    m.url,
                    m.in_reply_to,
                    m.parent_text,
                    m.reply_ref,
                    m.private,
                    tags.tone.as_str(),
                    tags.flags.bits(),
                    tags.confidence,
                    reasons_json(&tags.reasons),
                    source_str(tags.source),
                    playbook::urgency_rank(tags),
                    moderation,
                    due.unix_timestamp(),
                    ae_due,
                ])?;
                if changed == 1 {
                    tally.add(Tally::of("open", moderation, tags.flags.bits(), ae_due.is_some()));
                    new += 1;
                }
            }
            tally.apply(tx)?;
            if let Some((account, stream, cursor)) = cursor {
                tx.prepare_cached(
                    "INSERT INTO cursors (account, stream, cursor, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (account, stream) DO UPDATE SET cursor = excluded.cursor,
                         updated_at = excluded.updated_at",
                )?
                .execute(params![account, stream, cursor, now.unix_timestamp()])?;
            }
            Ok((new, authors.into_batch()))
        });
        let out = stored.map(|(new, batch)| {
            known.remember(batch);
            new
        });
        self.authors = known;
        if matches!(out, Ok(n) if n > 0) {
            self.indexer.committed(&mut self.conn);
        }
        out
    }

    /// Brings the full-text index up to date with every cached mention (ingest leaves up to
    /// [`FTS_BATCH`] of the newest for a later batch, and on the store thread the index is
    /// written beside it). Run at the end of a poll round that caught up with its stream and
    /// before a search; does not write when nothing waits. Returns how many it indexed.
    pub fn index_pending(&mut self) -> Result<usize> {
        let n = self
            .indexer
            .catch_up(&mut self.conn)
            .map_err(|e| self.explain(e))?;
        if n > 0 {
            // A searched view's count changes with the index (see `Store::count`).
            self.writes += 1;
        }
        Ok(n)
    }

    pub fn cursor(&self, account: &str, stream: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT cursor FROM cursors WHERE account = ?1 AND stream = ?2",
                params![account, stream],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn mention(&self, id: MentionId) -> Result<Mention> {
        let sql = format!(
            "SELECT {MENTION_COLUMNS} FROM mentions m JOIN authors a ON a.id = m.author_id WHERE m.id = ?1"
        );
        self.conn
            .query_row(&sql, [id], row_to_mention)
            .optional()?
            .ok_or(StoreError::NoMention(id))
    }

    /// One page of a view, in its order, `offset` rows from its start. (`_now`: the clock the page
    /// is read at; no order depends on it today, and callers keep passing it.)
    pub fn page(
        &self,
        q: &QueueQuery,
        _now: OffsetDateTime,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        self.run_page(q, Seek::Start, offset, limit)
    }

    /// One page of a view around the selection: up to `limit` rows from `start` rows in. When
    /// `near` names a row the caller holds and the index it stands at, the page is found from that
    /// row's place in the view's order (an index seek, as cheap at the millionth row as at the
    /// first); otherwise by counting from whichever end of the view (`total` rows) is nearer.
    /// Returns the index the page really starts at (the view may have changed since the caller's
    /// rows were read) with its rows.
    pub fn page_near(
        &self,
        q: &QueueQuery,
        start: usize,
        near: Option<(MentionId, usize)>,
        total: usize,
        limit: usize,
    ) -> Result<(usize, Vec<Mention>)> {
        if let Some((id, at)) = near
            && start.abs_diff(at) <= SEEK_REACH
            && let Some(key) = self.order_key(q.view, id)?
        {
            if start >= at {
                return Ok((
                    start,
                    self.run_page(q, Seek::From(&key), start - at, limit)?,
                ));
            }
            // The rows before the anchor, nearest last; then the anchor and what follows.
            let wanted = (at - start).min(limit);
            let skip = (at - start) - wanted;
            let mut rows = self.run_page(q, Seek::Before(&key), skip, wanted)?;
            if rows.len() == wanted {
                rows.reverse();
                rows.extend(self.run_page(q, Seek::From(&key), 0, limit - wanted)?);
                return Ok((start, rows));
            }
            // Fewer rows before it than the caller counted: the view starts sooner.
            return Ok((0, self.run_page(q, Seek::Start, 0, limit)?));
        }
        if total > 0 && start > total / 2 {
            let end = start.saturating_add(limit).min(total);
            let mut rows = self.run_page(q, Seek::End, total - end, end.saturating_sub(start))?;
            rows.reverse();
            return Ok((end.saturating_sub(rows.len()), rows));
        }
        Ok((start, self.run_page(q, Seek::Start, start, limit)?))
    }

    /// Where a row stands in a view's order (`None` when it has no place in it, e.g. a woken
    /// mention has no snooze time).
    fn order_key(&self, view: View, id: MentionId) -> Result<Option<Vec<i64>>> {
        let (cols, _) = order_keys(view);
        let sql = format!("SELECT {} FROM mentions m WHERE m.id = ?1", cols.join(", "));
        let key: Option<Vec<Option<i64>>> = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], |r| {
                (0..cols.len())
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<_>>()
            })
            .optional()?;
        Ok(key.and_then(|k| k.into_iter().collect()))
    }

    /// Turns what a person typed into a full-text query: the words the index's own tokenizer
    /// finds in it, each a quoted prefix term, all required; `None` for a blank search. The
    /// index keeps no word positions (`detail = none`), so it cannot answer a phrase: the words
    /// are split exactly as the index split the text (a typed "side-effect" asks for "side"* and
    /// "effect"*, "@Bob.Example" for "bob"* and "example"*), through a scratch index of this
    /// connection's own in the temp schema. A search with no word in it matches nothing.
    fn fts_query(&self, search: Option<&str>) -> Result<Option<String>> {
        let Some(search) = search.filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        if let Some((last, query)) = &*self.searched.borrow()
            && last == search
        {
            return Ok(Some(query.clone()));
        }
        self.conn.execute_batch(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_words USING fts5 (words, detail = none);
             CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_terms
                 USING fts5vocab (temp, search_words, row);
             DELETE FROM temp.search_words;",
        )?;
        self.conn
            .prepare_cached("INSERT INTO temp.search_words (words) VALUES (?1)")?
            .execute([search])?;
        let terms: Vec<String> = self
            .conn
            .prepare_cached("SELECT term FROM temp.search_terms")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let query = if terms.is_empty() {
            "\"\"".to_owned()
        } else {
            let quoted: Vec<String> = terms.iter().map(|t| format!("\"{t}\"*")).collect();
            quoted.join(" ")
        };
        *self.searched.borrow_mut() = Some((search.to_owned(), query.clone()));
        Ok(Some(query))
    }

    fn run_page(
        &self,
        q: &QueueQuery,
        seek: Seek<'_>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let fts = self.fts_query(q.search.as_deref())?;
        let mut where_sql = query_where(q, fts.is_some());
        let (cols, desc) = order_keys(q.view);
        let backwards = matches!(seek, Seek::End | Seek::Before(_));
        let key = match seek {
            Seek::From(k) | Seek::Before(k) => Some(k),
            Seek::Start | Seek::End => None,
        };
        if key.is_some() {
            // Row values compare in the order's direction; the index serves them as a range.
            let op = match (backwards, desc) {
                (false, false) => ">=",
                (false, true) => "<=",
                (true, false) => "<",
                (true, true) => ">",
            };
            let names: Vec<&str> = KEY_PARAMS[..cols.len()].to_vec();
            where_sql.push_str(&format!(
                " AND ({}) {op} ({})",
                cols.join(", "),
                names.join(", ")
            ));
        }
        let dir = if desc != backwards { "DESC" } else { "ASC" };
        let order: Vec<String> = cols.iter().map(|c| format!("{c} {dir}")).collect();
        let sql = format!(
            "SELECT {MENTION_COLUMNS} FROM mentions m JOIN authors a ON a.id = m.author_id
             WHERE {where_sql} ORDER BY {} LIMIT :limit OFFSET :offset",
            order.join(", ")
        );
        let (limit, offset) = (limit as i64, offset as i64);
        let mut p: Vec<(&str, &dyn rusqlite::ToSql)> =
            vec![(":limit", &limit), (":offset", &offset)];
        if let Some(f) = &fts {
            p.push((":fts", f));
        }
        if let Some(k) = key {
            for (name, v) in KEY_PARAMS.iter().zip(k) {
                p.push((name, v));
            }
        }
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(p.as_slice(), row_to_mention)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// How many mentions a query matches. A plain view reads the kept counts; a filter or a
    /// search counts its matches (run when the data or the query changes, not per frame).
    pub fn count(&self, q: &QueueQuery, _now: OffsetDateTime) -> Result<usize> {
        let fts = self.fts_query(q.search.as_deref())?;
        if q.filter.is_none() && fts.is_none() {
            let t = Tally::stored(&self.conn)?;
            let kept = match q.view {
                View::Queue => Some(t.open),
                View::Moderation => Some(t.moderation),
                View::Ae => Some(t.ae),
                View::Snoozed => Some(t.snoozed),
                View::Done => Some(t.done),
                View::Review => None,
            };
            if let Some(n) = kept {
                return Ok(n.max(0) as usize);
            }
        }
        // A filter or a search over a big view walks its matches: count again only when the
        // query or the data changed (paging through the same view asks for the same count).
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if let Some((cq, writes, v, n)) = &*self.counted.borrow()
            && cq == q
            && *writes == self.writes
            && *v == version
        {
            return Ok(*n);
        }
        let sql = format!(
            "SELECT count(*) FROM mentions m WHERE {}",
            query_where(q, fts.is_some())
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let n: i64 = match &fts {
            Some(f) => stmt.query_row(&[(":fts", f)], |r| r.get(0))?,
            None => stmt.query_row([], |r| r.get(0))?,
        };
        *self.counted.borrow_mut() = Some((q.clone(), self.writes, version, n as usize));
        Ok(n as usize)
    }

    /// The status bar's numbers: kept counts, plus the clock-dependent ones as indexed range
    /// counts over open mentions and unreported AEs only.
    pub fn counts(&self, now: OffsetDateTime) -> Result<Counts> {
        let t = Tally::stored(&self.conn)?;
        let now = now.unix_timestamp();
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64> {
            let n: i64 = self.conn.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        let u = |n: i64| n.max(0) as u64;
        Ok(Counts {
            open: u(t.open),
            ae_open: u(t.ae_open),
            // Late = open less those still within their target: few (the last hour's), and
            // found by seeks into `mentions_queue`, one a rank, however long the queue.
            overdue: u(t.open).saturating_sub(one(
                &format!(
                    "SELECT count(*) FROM mentions WHERE state = 'open' AND moderation = 0
                     AND rank IN ({}) AND due_at >= ?1",
                    RANKS.map(|r| r.to_string()).join(", ")
                ),
                &[&now],
            )?),
            moderation: u(t.moderation),
            done: u(t.done),
            crisis_open: u(t.crisis_open),
            snoozed: u(t.snoozed),
            ae_overdue: one(
                "SELECT count(*) FROM mentions
                 WHERE ae_due_at IS NOT NULL AND ae_reported = 0 AND ae_due_at < ?1",
                &[&now],
            )?,
            drafts: one("SELECT count(*) FROM drafts WHERE state = 'draft'", &[])?,
        })
    }

    /// Every mention, newest first (for `queue --json`).
    pub fn all_mentions(&self) -> Result<Vec<Mention>> {
        let sql = format!(
            "SELECT {MENTION_COLUMNS} FROM mentions m JOIN authors a ON a.id = m.author_id
             ORDER BY m.state = 'open' DESC, m.moderation, m.rank, m.due_at, m.id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], row_to_mention)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Changes a mention's state and writes its audit entry in the same transaction.
    pub fn set_state(
        &mut self,
        id: MentionId,
        state: MentionState,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<AuditEntry> {
        self.write(|tx| set_state_in(tx, id, state, audit, now))
    }

    /// [`Store::set_state`] for many mentions in one transaction (a bulk close; also how a
    /// generated cache gets its history): `(mention, state, audit, at)`. All or nothing.
    pub fn set_states(
        &mut self,
        changes: Vec<(MentionId, MentionState, AuditRecord, OffsetDateTime)>,
    ) -> Result<usize> {
        self.write(|tx| {
            let n = changes.len();
            for (id, state, audit, at) in changes {
                set_state_in(tx, id, state, audit, at)?;
            }
            Ok(n)
        })
    }

    /// Puts a mention aside until `until` (`reason`: 'snooze', or 'follow-up' for an HCP reminder
    /// months later), audited in the same transaction.
    pub fn snooze(
        &mut self,
        id: MentionId,
        until: OffsetDateTime,
        reason: &str,
        audit: AuditRecord,
    ) -> Result<AuditEntry> {
        self.write(|tx| {
            let n = Tally::around(tx, id, || {
                Ok(tx.execute(
                    "UPDATE mentions SET state = 'snoozed', snooze_until = ?2, snooze_reason = ?3,
                         done_at = NULL
                     WHERE id = ?1",
                    params![id, until.unix_timestamp(), reason],
                )?)
            })?;
            if n == 0 {
                return Err(StoreError::NoMention(id));
            }
            append_audit(tx, audit)
        })
    }

    /// Brings back to the queue every snoozed mention whose time has come; returns them with the
    /// reason they were put aside ('snooze' or 'follow-up').
    pub fn wake_snoozed(&mut self, now: OffsetDateTime) -> Result<Vec<(MentionId, String)>> {
        self.write(|tx| {
            let due: Vec<(MentionId, String)> = tx
                .prepare_cached(
                    "SELECT id, coalesce(snooze_reason, 'snooze') FROM mentions
                     WHERE state = 'snoozed' AND snooze_until <= ?1 ORDER BY snooze_until, id",
                )?
                .query_map([now.unix_timestamp()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut wake = tx.prepare_cached(
                "UPDATE mentions SET state = 'open', snooze_until = NULL, snooze_reason = NULL
                 WHERE id = ?1",
            )?;
            for (id, _) in &due {
                Tally::around(tx, *id, || Ok(wake.execute([id])?))?;
            }
            Ok(due)
        })
    }

    /// Replaces a mention's tags (an operator's correction), keeps the correction for the learned
    /// model, and audits it, in one transaction.
    pub fn retag(
        &mut self,
        id: MentionId,
        tags: &Tags,
        targets: &Targets,
        audit: AuditRecord,
    ) -> Result<AuditEntry> {
        self.write(|tx| {
            let created: i64 = tx
                .query_row("SELECT created_at FROM mentions WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or(StoreError::NoMention(id))?;
            tx.execute(
                "INSERT INTO corrections (mention_id, text, tone, flags, operator, at)
                 SELECT id, text, ?2, ?3, ?4, ?5 FROM mentions WHERE id = ?1",
                params![
                    id,
                    tags.tone.as_str(),
                    tags.flags.bits(),
                    audit.operator,
                    OffsetDateTime::now_utc().unix_timestamp()
                ],
            )?;
            let created = from_unix(created)?;
            let due = targets.due_at(created, tags);
            // The AE clock starts once and keeps running: an intake record keeps its own.
            Tally::around(tx, id, || {
                Ok(tx.execute(
                    "UPDATE mentions SET tone = ?2, flags = ?3, confidence = ?4, reasons = ?5,
                     tag_source = ?6, rank = ?7, moderation = ?8, due_at = ?9,
                     ae_due_at = CASE WHEN ?10 IS NOT NULL THEN coalesce(ae_due_at, ?10)
                         ELSE (SELECT c.due_at FROM ae_cases c WHERE c.mention_id = mentions.id) END
                 WHERE id = ?1",
                    params![
                        id,
                        tags.tone.as_str(),
                        tags.flags.bits(),
                        tags.confidence,
                        reasons_json(&tags.reasons),
                        source_str(tags.source),
                        playbook::urgency_rank(tags),
                        playbook::lane(tags) == playbook::Lane::Moderation,
                        due.unix_timestamp(),
                        tags.flags
                            .contains(Flag::Ae)
                            .then(|| targets.ae_report_due(created).unix_timestamp()),
                    ],
                )?)
            })?;
            append_audit(tx, audit)
        })
    }

    /// The text hash first seen for a reply's id+version.
    pub fn template_hash(&self, id: &str, version: u32) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT text_hash FROM template_versions WHERE id = ?1 AND version = ?2",
                params![id, version],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Remembers a reply version's text hash the first time it is seen; later sightings keep the
    /// first hash so a changed text is detected.
    pub fn remember_template(
        &mut self,
        id: &str,
        version: u32,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO template_versions (id, version, text_hash, first_seen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id, version) DO NOTHING",
                params![id, version, hash, now.unix_timestamp()],
            )?;
            Ok(())
        })
    }

    /// The state of an earlier reply to this mention that was sent or may have been.
    pub fn earlier_reply(&self, mention: MentionId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT state FROM outbox WHERE mention_id = ?1 AND state IN ('pending', 'sent', 'unknown')
                 ORDER BY id DESC LIMIT 1",
                [mention],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Step one of a send: the outbox row and the intent entry, in one transaction. A key that
    /// another send of this home holds is refused with [`StoreError::KeyTaken`] before anything
    /// is written, so that the caller can pick another.
    pub fn begin_send(
        &mut self,
        new: &OutboxNew,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<(i64, AuditEntry)> {
        self.write(|tx| {
            let busy: Option<String> = tx
                .query_row(
                    "SELECT state FROM outbox WHERE mention_id = ?1 AND state IN ('pending', 'sent', 'unknown')",
                    [new.mention_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(state) = busy {
                return Err(StoreError::AlreadyAnswered {
                    mention: new.mention_id,
                    state,
                });
            }
            let taken = tx
                .query_row(
                    "SELECT 1 FROM outbox WHERE idem_key = ?1",
                    [&new.idem_key],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if taken {
                return Err(StoreError::KeyTaken(new.idem_key.clone()));
            }
            tx.execute(
                "INSERT INTO outbox (idem_key, mention_id, account, platform, template, version, channel,
                     text, state, created_at, updated_at, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9, ?9, ?10)",
                params![
                    new.idem_key,
                    new.mention_id,
                    new.account,
                    new.platform.as_str(),
                    new.template,
                    new.version,
                    new.channel,
                    new.text,
                    now.unix_timestamp(),
                    new.owner,
                ],
            )?;
            let id = tx.last_insert_rowid();
            Ok((id, append_audit(tx, audit)?))
        })
    }

    /// Step three of a send: the outcome, the result entry and, when sent, the mention done.
    /// Only a pending send is settled: when another tonedesk settled it first (two starts
    /// reconciling the same crash), this is a [`StoreError::Conflict`] and writes nothing.
    pub fn finish_send(
        &mut self,
        outbox_id: i64,
        state: &str,
        remote_id: Option<&str>,
        error: Option<&str>,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<AuditEntry> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE outbox SET state = ?2, remote_id = ?3, error = ?4, updated_at = ?5
                 WHERE id = ?1 AND state = 'pending'",
                params![outbox_id, state, remote_id, error, now.unix_timestamp()],
            )?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!(
                    "send {outbox_id} was already settled (by another tonedesk)"
                )));
            }
            let mention: Option<MentionId> = tx
                .query_row(
                    "SELECT mention_id FROM outbox WHERE id = ?1",
                    [outbox_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let (true, Some(mention)) = (state == "sent", mention) {
                Tally::around(tx, mention, || {
                    Ok(tx.execute(
                        "UPDATE mentions SET state = 'done', done_at = ?2 WHERE id = ?1",
                        params![mention, now.unix_timestamp()],
                    )?)
                })?;
            }
            append_audit(tx, audit)
        })
    }

    /// Sends whose outcome was never written (a crash between intent and result).
    pub fn pending_sends(&self) -> Result<Vec<OutboxRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, idem_key, mention_id, account, channel, text, state, remote_id, owner,
                 created_at
             FROM outbox WHERE state = 'pending' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                idem_key: r.get(1)?,
                mention_id: r.get(2)?,
                account: r.get(3)?,
                channel: r.get(4)?,
                text: r.get(5)?,
                state: r.get(6)?,
                remote_id: r.get(7)?,
                owner: r.get(8)?,
                created_at: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Appends an entry to the audit chain on its own.
    pub fn audit(&mut self, record: AuditRecord) -> Result<AuditEntry> {
        self.write(|tx| append_audit(tx, record))
    }

    /// The whole chain in sequence order and the head recorded beside it, read together.
    pub fn audit_log(&self) -> Result<(Vec<AuditEntry>, Option<AuditHead>)> {
        let tx = self.conn.unchecked_transaction()?;
        let entries = self.audit_entries()?;
        let head = audit_head(&tx)?;
        tx.commit()?;
        Ok((entries, head))
    }

    /// The whole chain in sequence order.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at, operator, action, platform, account, mention, template, template_version,
                 approval, channel, text, outcome, remote_id, detail, prev_hash, hash, host, attempt
             FROM audit ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                record: AuditRecord {
                    at: r.get(1)?,
                    operator: r.get(2)?,
                    action: r.get(3)?,
                    platform: r.get(4)?,
                    account: r.get(5)?,
                    mention: r.get(6)?,
                    template: r.get(7)?,
                    template_version: r.get(8)?,
                    approval: r.get(9)?,
                    channel: r.get(10)?,
                    text: r.get(11)?,
                    outcome: r.get(12)?,
                    remote_id: r.get(13)?,
                    detail: r.get(14)?,
                    host: r.get(17)?,
                    attempt: r.get(18)?,
                },
                prev_hash: r.get(15)?,
                hash: r.get(16)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The crisis-mode reason when crisis mode is on.
    /// SQLite's data version: it changes whenever another connection (another process on the
    /// same home) commits, so a console can tell when to reload what it shows.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn crisis(&self) -> Result<Option<String>> {
        self.setting("crisis")
    }

    pub fn set_crisis(&mut self, reason: Option<&str>, audit: AuditRecord) -> Result<AuditEntry> {
        self.write(|tx| {
            match reason {
                Some(r) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES ('crisis', ?1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [r],
                )?,
                None => tx.execute("DELETE FROM settings WHERE key = 'crisis'", [])?,
            };
            append_audit(tx, audit)
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Records the outcome of one poll of a stream. A success keeps the last error (with its
    /// time) so `doctor` can still say what went wrong before; fields given as `None` are kept.
    pub fn record_poll(&mut self, r: &PollRecord) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO poll_status (account, stream, last_ok_at, last_error, last_error_at,
                     next_at, budget_limit, budget_remaining, budget_reset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (account, stream) DO UPDATE SET
                     last_ok_at = coalesce(excluded.last_ok_at, last_ok_at),
                     last_error = coalesce(excluded.last_error, last_error),
                     last_error_at = coalesce(excluded.last_error_at, last_error_at),
                     next_at = coalesce(excluded.next_at, next_at),
                     budget_limit = coalesce(excluded.budget_limit, budget_limit),
                     budget_remaining = coalesce(excluded.budget_remaining, budget_remaining),
                     budget_reset = coalesce(excluded.budget_reset, budget_reset)",
                params![
                    r.account,
                    r.stream,
                    r.last_ok_at,
                    r.last_error,
                    r.last_error_at,
                    r.next_at,
                    r.budget_limit,
                    r.budget_remaining,
                    r.budget_reset
                ],
            )?;
            Ok(())
        })
    }

    pub fn poll_statuses(&self) -> Result<Vec<PollRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT account, stream, last_ok_at, last_error, last_error_at, next_at, budget_limit,
                 budget_remaining, budget_reset
             FROM poll_status ORDER BY account, stream",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(PollRecord {
                account: r.get(0)?,
                stream: r.get(1)?,
                last_ok_at: r.get(2)?,
                last_error: r.get(3)?,
                last_error_at: r.get(4)?,
                next_at: r.get(5)?,
                budget_limit: r.get(6)?,
                budget_remaining: r.get(7)?,
                budget_reset: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The operators' corrections, the latest one per mention: (text, tone).
    pub fn corrections(&self) -> Result<Vec<(String, Tone)>> {
        let mut stmt = self.conn.prepare(
            "SELECT text, tone FROM corrections
             WHERE id IN (SELECT max(id) FROM corrections GROUP BY mention_id)
             ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let tone: String = r.get(1)?;
            Ok((r.get(0)?, tone.parse::<Tone>().map_err(corrupt)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores the learned model (one row, replaced on each training).
    pub fn save_model(&mut self, examples: usize, model: &str, now: OffsetDateTime) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO tone_model (id, examples, trained_at, model) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET examples = excluded.examples,
                     trained_at = excluded.trained_at, model = excluded.model",
                params![examples as i64, now.unix_timestamp(), model],
            )?;
            Ok(())
        })
    }

    /// The learned model, if one was trained: (examples, trained at, JSON).
    pub fn load_model(&self) -> Result<Option<(usize, i64, String)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT examples, trained_at, model FROM tone_model WHERE id = 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }

    /// A quick integrity check for `doctor`.
    pub fn integrity(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))?)
    }
}

fn set_state_in(
    tx: &Transaction<'_>,
    id: MentionId,
    state: MentionState,
    audit: AuditRecord,
    now: OffsetDateTime,
) -> Result<AuditEntry> {
    let n = Tally::around(tx, id, || {
        Ok(tx
            .prepare_cached(
                "UPDATE mentions SET state = ?2,
                     done_at = CASE WHEN ?2 = 'done' THEN ?3 ELSE NULL END,
                     snooze_until = NULL, snooze_reason = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id, state.as_str(), now.unix_timestamp()])?)
    })?;
    if n == 0 {
        return Err(StoreError::NoMention(id));
    }
    append_audit(tx, audit)
}

fn append_audit(tx: &Transaction<'_>, record: AuditRecord) -> Result<AuditEntry> {
    let last: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    // A recorded head ahead of the table means entries were cut from the end: chain on from the
    // head, so the cut stays a visible gap instead of being covered by the next entry.
    let head = audit_head(tx)?.map(|h| (h.seq, h.hash));
    let last = match (last, head) {
        (Some(l), Some(h)) if h.0 > l.0 => Some(h),
        (l, h) => l.or(h),
    };
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let e = AuditEntry::chain(seq, &prev, record);
    let r = &e.record;
    tx.prepare_cached(
        "INSERT INTO settings (key, value) VALUES ('audit_head', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([AuditHead::of(&e).to_setting()])?;
    tx.prepare_cached(
        "INSERT INTO audit (seq, at, operator, action, platform, account, mention, template,
             template_version, approval, channel, text, outcome, remote_id, detail, prev_hash, hash,
             host, attempt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
             ?19)",
    )?
    .execute(params![
        e.seq,
        r.at,
        r.operator,
        r.action,
        r.platform,
        r.account,
        r.mention,
        r.template,
        r.template_version,
        r.approval,
        r.channel,
        r.text,
        r.outcome,
        r.remote_id,
        r.detail,
        e.prev_hash,
        e.hash,
        r.host,
        r.attempt
    ])?;
    Ok(e)
}

/// The log's recorded head; `None` when there is none or it cannot be read.
fn audit_head(conn: &Connection) -> Result<Option<AuditHead>> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'audit_head'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.as_deref().and_then(AuditHead::parse))
}

/// Every urgency rank a mention may have (see `playbook::urgency_rank`).
const RANKS: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// How far (in rows) a page may start from the row it is found from; farther, it is counted
/// from an end of the view instead.
const SEEK_REACH: usize = 1000;

const KEY_PARAMS: [&str; 3] = [":k0", ":k1", ":k2"];

/// Where a page is read from.
#[derive(Debug, Clone, Copy)]
enum Seek<'a> {
    /// From the start of the view (skipping `offset` rows).
    Start,
    /// From the end of the view backwards (skipping `offset` rows); rows come last first.
    End,
    /// From the row with this order key onwards, that row included.
    From(&'a [i64]),
    /// From the row with this order key backwards, that row excluded; rows come last first.
    Before(&'a [i64]),
}

/// A view's order: its key columns (all one direction, the last one the id) and whether it is
/// descending. Each is served by an index: `mentions_queue` (state, moderation, rank, due_at),
/// `mentions_done` (state, done_at), `mentions_ae` (ae_reported, ae_due_at), `mentions_snoozed`
/// (state, snooze_until), each ending in the id.
///
/// The queue's playbook order puts overdue AEs first; as AEs are the first rank and an overdue
/// one is due before any AE that is not, ordering by (rank, due_at) already does, with no clock
/// in the order (`OVERDUE_AE_RANK` sorts before every rank).
fn order_keys(view: View) -> (&'static [&'static str], bool) {
    const _: () = assert!(OVERDUE_AE_RANK < 1);
    match view {
        View::Done => (&["m.done_at", "m.id"], true),
        View::Ae => (&["m.ae_reported", "m.ae_due_at", "m.id"], false),
        View::Snoozed => (&["m.snooze_until", "m.id"], false),
        View::Queue | View::Moderation | View::Review => (&["m.rank", "m.due_at", "m.id"], false),
    }
}

/// WHERE for a query; with `fts`, a `:fts` parameter holds the full-text query.
fn query_where(q: &QueueQuery, fts: bool) -> String {
    let mut conds = vec![match q.view {
        View::Queue => "m.state = 'open' AND m.moderation = 0".to_owned(),
        View::Moderation => "m.state = 'open' AND m.moderation = 1".to_owned(),
        View::Ae => "m.ae_due_at IS NOT NULL".to_owned(),
        View::Review => {
            "m.id IN (SELECT mention_id FROM drafts WHERE state = 'draft' AND mention_id IS NOT NULL)"
                .to_owned()
        }
        View::Snoozed => "m.state = 'snoozed'".to_owned(),
        View::Done => "m.state = 'done'".to_owned(),
    }];
    match q.filter {
        Some(Filter::Flag(f)) => {
            conds.push(format!("(m.flags & {}) != 0", Flags::from_iter([f]).bits()));
        }
        Some(Filter::Platform(p)) => conds.push(format!("m.platform = '{}'", p.as_str())),
        None => {}
    }
    if fts {
        conds.push(
            "m.id IN (SELECT rowid FROM search.mention_fts WHERE mention_fts MATCH :fts)".into(),
        );
    }
    conds.join(" AND ")
}

fn reasons_json(reasons: &[String]) -> String {
    serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into())
}

fn source_str(s: TagSource) -> &'static str {
    match s {
        TagSource::Classifier => "classifier",
        TagSource::Operator => "operator",
    }
}

fn from_unix(secs: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn corrupt(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.to_string().into())
}

fn row_to_mention(r: &Row<'_>) -> rusqlite::Result<Mention> {
    let parse = |s: String| -> rusqlite::Result<Platform> { s.parse().map_err(corrupt) };
    let tone: Tone = r.get::<_, String>(14)?.parse().map_err(corrupt)?;
    let reasons: Vec<String> = serde_json::from_str(&r.get::<_, String>(17)?).map_err(corrupt)?;
    let source = match r.get::<_, String>(18)?.as_str() {
        "operator" => TagSource::Operator,
        _ => TagSource::Classifier,
    };
    let state: MentionState = r.get::<_, String>(19)?.parse().map_err(corrupt)?;
    let created = OffsetDateTime::from_unix_timestamp(r.get(8)?).map_err(corrupt)?;
    let due = OffsetDateTime::from_unix_timestamp(r.get(20)?).map_err(corrupt)?;
    Ok(Mention {
        id: r.get(0)?,
        platform: parse(r.get(1)?)?,
        account: r.get(2)?,
        remote_id: r.get(3)?,
        author: Author {
            handle: r.get(4)?,
            display_name: r.get(5)?,
            bio: r.get(6)?,
        },
        text: r.get(7)?,
        created_at: created,
        url: r.get(9)?,
        in_reply_to: r.get(10)?,
        parent_text: r.get(11)?,
        reply_ref: r.get(12)?,
        private: r.get(13)?,
        tags: Tags {
            tone,
            flags: Flags::from_bits(r.get::<_, u8>(15)?),
            confidence: r.get(16)?,
            reasons,
            source,
        },
        state,
        due_at: due,
        snooze_until: r
            .get::<_, Option<i64>>(21)?
            .map(OffsetDateTime::from_unix_timestamp)
            .transpose()
            .map_err(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DraftState;
    use crate::domain::audit::verify_chain;
    use crate::domain::playbook::tags_of;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    pub(super) fn incoming(id: &str, text: &str, minutes_ago: i64) -> IncomingMention {
        IncomingMention {
            platform: Platform::X,
            account: "demo-x".into(),
            remote_id: id.into(),
            author: Author {
                handle: format!("user{id}"),
                display_name: "A Person".into(),
                bio: String::new(),
            },
            text: text.into(),
            created_at: NOW - time::Duration::minutes(minutes_ago),
            url: Some(format!("https://x.com/u/status/{id}")),
            in_reply_to: None,
            parent_text: None,
            reply_ref: None,
            private: false,
        }
    }

    fn store_with(items: &[(IncomingMention, Tags)]) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        s.ingest(
            items,
            &Targets::default(),
            Some(("demo-x", "mentions", "c1")),
            NOW,
        )
        .unwrap();
        s
    }

    #[test]
    fn ingest_skips_duplicates_and_advances_the_cursor() {
        let items = vec![
            (incoming("1", "thanks", 5), tags_of(Tone::Positive, &[])),
            (incoming("2", "broken", 5), tags_of(Tone::Complaint, &[])),
        ];
        let mut s = store_with(&items);
        assert_eq!(
            s.cursor("demo-x", "mentions").unwrap().as_deref(),
            Some("c1")
        );
        let again = s
            .ingest(
                &items,
                &Targets::default(),
                Some(("demo-x", "mentions", "c2")),
                NOW,
            )
            .unwrap();
        assert_eq!(again, 0);
        assert_eq!(s.all_mentions().unwrap().len(), 2);
        assert_eq!(
            s.cursor("demo-x", "mentions").unwrap().as_deref(),
            Some("c2")
        );
    }

    /// The author's row as stored: (id, display name).
    fn stored_author(s: &Store, handle: &str) -> Option<(i64, String)> {
        s.conn
            .query_row(
                "SELECT id, display_name FROM authors WHERE handle = ?1",
                [handle],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .unwrap()
    }

    fn by(id: &str, handle: &str, name: &str) -> (IncomingMention, Tags) {
        let mut m = incoming(id, "a remark", 5);
        m.author.handle = handle.into();
        m.author.display_name = name.into();
        (m, tags_of(Tone::Neutral, &[]))
    }

    #[test]
    fn remembered_authors_still_get_their_latest_profile() {
        let mut s = store_with(&[]);
        let t = Targets::default();
        s.ingest(&[by("1", "ana", "Ana")], &t, None, NOW).unwrap();
        let (id, _) = stored_author(&s, "ana").unwrap();
        // Remembered now; a changed name is still written, across batches and within one.
        s.ingest(&[by("2", "ana", "Ana B")], &t, None, NOW).unwrap();
        assert_eq!(stored_author(&s, "ana"), Some((id, "Ana B".into())));
        s.ingest(
            &[by("3", "ana", "Ana C"), by("4", "ana", "Ana D")],
            &t,
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(stored_author(&s, "ana"), Some((id, "Ana D".into())));
        s.ingest(&[by("5", "ana", "Ana")], &t, None, NOW).unwrap();
        assert_eq!(stored_author(&s, "ana"), Some((id, "Ana".into())));
        assert_eq!(s.authors.len(), 1);
        let ids: Vec<i64> = s
            .conn
            .prepare("SELECT DISTINCT author_id FROM mentions")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, [id]);
    }

    #[test]
    fn a_batch_that_rolls_back_leaves_no_author_remembered() {
        let mut s = store_with(&[]);
        let t = Targets::default();
        // The second mention names an account that does not exist: the whole batch rolls back,
        // the new author's row with it.
        let mut orphan = by("2", "bo", "Bo");
        orphan.0.account = "nobody".into();
        assert!(
            s.ingest(&[by("1", "bo", "Bo"), orphan], &t, None, NOW)
                .is_err()
        );
        assert_eq!(stored_author(&s, "bo"), None);
        assert_eq!(s.authors.len(), 0);
        // So the next batch stores them again rather than pointing at a row that is not there.
        s.ingest(&[by("1", "bo", "Bo")], &t, None, NOW).unwrap();
        assert!(stored_author(&s, "bo").is_some());
        assert_eq!(s.all_mentions().unwrap().len(), 1);
    }

    #[test]
    fn another_connection_s_ingest_makes_a_store_forget_its_authors() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let mut a = Store::open(&db).unwrap();
        a.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        let mut b = Store::open(&db).unwrap();
        let t = Targets::default();
        a.ingest(&[by("1", "cy", "Cy")], &t, None, NOW).unwrap();
        b.ingest(&[by("2", "cy", "Cy (other)")], &t, None, NOW)
            .unwrap();
        // `a` remembered "Cy" as stored, but `b` changed it since: the latest profile wins.
        a.ingest(&[by("3", "cy", "Cy")], &t, None, NOW).unwrap();
        let (id, name) = stored_author(&a, "cy").unwrap();
        assert_eq!(name, "Cy");
        // One author, whichever store stored or found them: every mention points at them.
        let authors: Vec<i64> = a
            .conn
            .prepare("SELECT author_id FROM mentions ORDER BY remote_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(authors, [id; 3]);
    }

    /// `n` mentions from `from` on, each with its own word and one they share.
    fn numbered(from: usize, n: usize) -> Vec<(IncomingMention, Tags)> {
        (from..from + n)
            .map(|i| {
                (
                    incoming(&i.to_string(), &format!("word{i} shared"), 5),
                    tags_of(Tone::Neutral, &[]),
                )
            })
            .collect()
    }

    fn searched(s: &Store, word: &str) -> usize {
        let q = QueueQuery {
            search: Some(word.to_owned()),
            ..QueueQuery::default()
        };
        s.count(&q, NOW).unwrap()
    }

    /// Rows in the index file that match `word` (a mention indexed twice counts twice).
    fn index_rows(index: &std::path::Path, word: &str) -> i64 {
        let conn = Connection::open(index).unwrap();
        conn.query_row(
            "SELECT count(*) FROM mention_fts WHERE mention_fts MATCH ?1",
            [word],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn the_index_file_is_written_beside_the_store_by_its_own_thread_and_by_each_process_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tonedesk.db");
        let index = crate::paths::search_index_beside(&db);
        let mut s = Store::open(&db).unwrap();
        s.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        s.index_off_thread();
        assert!(matches!(s.indexer, index::Indexer::Thread(_)));
        let n = FTS_BATCH as usize * 2 + 5;
        for chunk in numbered(0, n).chunks(80) {
            s.ingest(chunk, &Targets::default(), None, NOW).unwrap();
        }
        // A search brings the index up to date first (the thread took most of it meanwhile).
        s.index_pending().unwrap();
        // Checkpoints copy the cache's log only: the index is attached read-only.
        s.checkpoint().unwrap();
        assert_eq!(searched(&s, "shared"), n);
        assert_eq!(searched(&s, &format!("word{}", n - 1)), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&index).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }

        // Another process on the same home (another store on the same files) indexes what it
        // stored, and nothing twice.
        let mut other = Store::open(&db).unwrap();
        other
            .ingest(&numbered(n, 3), &Targets::default(), None, NOW)
            .unwrap();
        assert_eq!(s.index_pending().unwrap(), 3);
        assert_eq!(other.index_pending().unwrap(), 0);
        assert_eq!(searched(&other, "shared"), n + 3);
        drop((s, other));
        assert_eq!(index_rows(&index, "shared"), (n + 3) as i64);
    }

    #[test]
    fn an_index_made_for_another_cache_deleted_or_damaged_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let mut s = Store::open(&a).unwrap();
        s.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        s.ingest(&numbered(0, 5), &Targets::default(), None, NOW)
            .unwrap();
        s.index_pending().unwrap();
        drop(s);
        // b's cache holds other mentions under the same ids; a's index is put beside it.
        let mut t = Store::open(&b).unwrap();
        t.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        t.ingest(&numbered(100, 2), &Targets::default(), None, NOW)
            .unwrap();
        drop(t);
        let b_index = crate::paths::search_index_beside(&b);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", b_index.display()));
        }
        std::fs::copy(crate::paths::search_index_beside(&a), &b_index).unwrap();
        assert_eq!(index_rows(&b_index, "word0"), 1, "a's index, as copied");
        let mut t = Store::open(&b).unwrap();
        assert_eq!(t.index_pending().unwrap(), 2);
        assert_eq!(searched(&t, "word0"), 0, "a's mentions are not b's");
        assert_eq!(searched(&t, "word100"), 1);
        assert_eq!(searched(&t, "shared"), 2);
        drop(t);
        // A deleted index is built again too.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", b_index.display()));
        }
        let mut t = Store::open(&b).unwrap();
        assert_eq!(t.index_pending().unwrap(), 2);
        assert_eq!(searched(&t, "shared"), 2);
        drop(t);
        // So is one that is not a database at all.
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", b_index.display()));
        }
        std::fs::write(
            &b_index,
            "not a database, but 512 bytes of something else".repeat(11),
        )
        .unwrap();
        let mut t = Store::open(&b).unwrap();
        assert_eq!(t.index_pending().unwrap(), 2);
        assert_eq!(searched(&t, "word101"), 1);
    }

    #[test]
    fn the_full_text_index_is_written_in_batches_and_misses_nothing() {
        let mut s = store_with(&[]);
        let batch = |from: usize, n: usize| -> Vec<(IncomingMention, Tags)> {
            (from..from + n)
                .map(|i| {
                    (
                        incoming(&i.to_string(), &format!("word{i} shared"), 5),
                        tags_of(Tone::Neutral, &[]),
                    )
                })
                .collect()
        };
        let found = |s: &Store, word: &str| {
            let q = QueueQuery {
                search: Some(word.to_owned()),
                ..QueueQuery::default()
            };
            s.count(&q, NOW).unwrap()
        };
        let batch_size = FTS_BATCH as usize;
        // Below a batch: nothing indexed yet.
        s.ingest(&batch(0, batch_size - 1), &Targets::default(), None, NOW)
            .unwrap();
        assert_eq!(found(&s, "shared"), 0);
        // The ingest that fills a batch indexes all that waited, in its own transaction.
        s.ingest(&batch(batch_size - 1, 2), &Targets::default(), None, NOW)
            .unwrap();
        assert_eq!(found(&s, "shared"), batch_size + 1);
        assert_eq!(found(&s, "word0"), 1);
        // Duplicates store nothing and index nothing twice.
        s.ingest(&batch(0, 10), &Targets::default(), None, NOW)
            .unwrap();
        s.ingest(&batch(batch_size + 1, 3), &Targets::default(), None, NOW)
            .unwrap();
        assert_eq!(found(&s, "shared"), batch_size + 1);
        assert_eq!(s.index_pending().unwrap(), 3);
        assert_eq!(found(&s, "shared"), batch_size + 4);
        assert_eq!(found(&s, &format!("word{}", batch_size + 3)), 1);
    }

    #[test]
    fn an_authors_latest_profile_wins() {
        let mut a = incoming("1", "hi", 5);
        let mut b = incoming("2", "hello", 4);
        b.author.handle = a.author.handle.clone();
        (a.author.display_name, b.author.display_name) = ("Old".into(), "New".into());
        let t = tags_of(Tone::Neutral, &[]);
        let mut s = store_with(&[(a.clone(), t.clone()), (b, t.clone())]);
        let names = |s: &Store| -> Vec<String> {
            s.all_mentions()
                .unwrap()
                .into_iter()
                .map(|m| m.author.display_name)
                .collect()
        };
        assert_eq!(names(&s), ["New", "New"]);
        let mut c = incoming("3", "again", 3);
        c.author = a.author.clone();
        c.author.bio = "a bio".into();
        s.ingest(&[(c, t)], &Targets::default(), None, NOW).unwrap();
        assert_eq!(names(&s), ["Old", "Old", "Old"]);
        assert!(
            s.all_mentions()
                .unwrap()
                .iter()
                .all(|m| m.author.bio == "a bio")
        );
        // Search still finds text and handles (the full-text index keeps no copy of either).
        s.index_pending().unwrap();
        let q = QueueQuery {
            search: Some("again".into()),
            ..QueueQuery::default()
        };
        assert_eq!(s.page(&q, NOW, 0, 10).unwrap()[0].remote_id, "3");
    }

    #[test]
    fn queue_is_in_urgency_order_with_overdue_ae_first() {
        let items = vec![
            (incoming("pos", "great", 5), tags_of(Tone::Positive, &[])),
            (
                incoming("ae-fresh", "rash", 5),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
            (incoming("cmp", "broken", 5), tags_of(Tone::Complaint, &[])),
            (
                incoming("ae-old", "dizzy", 120),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
            (incoming("troll", "shills", 5), tags_of(Tone::Troll, &[])),
            (
                incoming("hcp", "data?", 5),
                tags_of(Tone::Neutral, &[Flag::Hcp]),
            ),
        ];
        let s = store_with(&items);
        let page = s.page(&QueueQuery::default(), NOW, 0, 50).unwrap();
        let ids: Vec<&str> = page.iter().map(|m| m.remote_id.as_str()).collect();
        assert_eq!(ids, ["ae-old", "ae-fresh", "cmp", "hcp", "pos"]);
        let moderation = QueueQuery {
            view: View::Moderation,
            ..QueueQuery::default()
        };
        assert_eq!(
            s.page(&moderation, NOW, 0, 50).unwrap()[0].remote_id,
            "troll"
        );
        assert_eq!(s.count(&QueueQuery::default(), NOW).unwrap(), 5);
        let second = s.page(&QueueQuery::default(), NOW, 2, 2).unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(second[0].remote_id, "cmp");
        let c = s.counts(NOW).unwrap();
        assert_eq!((c.open, c.ae_open, c.moderation, c.done), (5, 2, 1, 0));
        assert!(c.overdue >= 1);
    }

    fn view(s: &Store, view: View) -> Vec<String> {
        let q = QueueQuery {
            view,
            ..QueueQuery::default()
        };
        s.page(&q, NOW, 0, 50)
            .unwrap()
            .into_iter()
            .map(|m| m.remote_id)
            .collect()
    }

    fn op(action: &str) -> AuditRecord {
        AuditRecord::new(NOW, "tester", action)
    }

    #[test]
    fn ae_view_orders_by_report_due_time_and_keeps_cases() {
        let items = vec![
            (
                incoming("ae-new", "rash", 5),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
            (
                incoming("ae-old", "dizzy", 60 * 30),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
            (incoming("cmp", "broken", 5), tags_of(Tone::Complaint, &[])),
        ];
        let mut s = store_with(&items);
        assert_eq!(view(&s, View::Ae), ["ae-old", "ae-new"]);
        assert_eq!(
            s.counts(NOW).unwrap().ae_overdue,
            1,
            "30 h old, due in 24 h"
        );

        // Intake of the old one, then its export: it drops to the end of the AE view.
        let old = s
            .page(
                &QueueQuery {
                    view: View::Ae,
                    ..QueueQuery::default()
                },
                NOW,
                0,
                1,
            )
            .unwrap()
            .remove(0);
        let case = crate::domain::AeCase::prefill(&old, 24);
        let (new, _) = s.save_ae_case(&case, op("ae_intake"), NOW).unwrap();
        assert!(new);
        let (new, _) = s.save_ae_case(&case, op("ae_edit"), NOW).unwrap();
        assert!(!new, "a second save edits the same record");
        assert_eq!(s.ae_case(old.id).unwrap().unwrap().case, case);
        s.mark_ae_exported(&[old.id], op("ae_export"), NOW).unwrap();
        assert!(s.ae_case(old.id).unwrap().unwrap().exported_at.is_some());
        assert_eq!(view(&s, View::Ae), ["ae-new", "ae-old"]);
        assert_eq!(s.counts(NOW).unwrap().ae_overdue, 0);

        // A retag that adds AE starts the clock; one that removes it keeps a case's clock.
        let cmp = s.page(&QueueQuery::default(), NOW, 0, 50).unwrap();
        let cmp = cmp.iter().find(|m| m.remote_id == "cmp").unwrap().id;
        s.retag(
            cmp,
            &tags_of(Tone::Complaint, &[Flag::Ae]),
            &Targets::default(),
            op("retag"),
        )
        .unwrap();
        assert_eq!(view(&s, View::Ae).len(), 3);
        s.retag(
            old.id,
            &tags_of(Tone::Neutral, &[]),
            &Targets::default(),
            op("retag"),
        )
        .unwrap();
        assert_eq!(
            view(&s, View::Ae).len(),
            3,
            "the intake record keeps it in view"
        );
        s.retag(
            cmp,
            &tags_of(Tone::Complaint, &[]),
            &Targets::default(),
            op("retag"),
        )
        .unwrap();
        assert_eq!(view(&s, View::Ae).len(), 2);
        assert_eq!(s.ae_cases().unwrap().len(), 1);
    }

    #[test]
    fn drafts_wait_for_review_and_are_decided_once() {
        let items = vec![(incoming("cmp", "broken", 5), tags_of(Tone::Complaint, &[]))];
        let mut s = store_with(&items);
        let m = s.all_mentions().unwrap()[0].id;
        let (id, entry) = s
            .add_draft(Some(m), "Sorry, we'll fix it", op("draft"), NOW)
            .unwrap();
        assert_eq!(
            entry.record.detail.as_deref(),
            Some(&*format!("draft {id}"))
        );
        assert_eq!(view(&s, View::Review), ["cmp"]);
        assert_eq!(s.counts(NOW).unwrap().drafts, 1);
        let waiting = s.drafts(Some(DraftState::Draft)).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].text, "Sorry, we'll fix it");
        s.decide_draft(
            id,
            DraftState::Approved,
            Some("MLR-1"),
            Some("custom-1"),
            op("draft_approve"),
            NOW,
        )
        .unwrap();
        let again = s.decide_draft(
            id,
            DraftState::Rejected,
            None,
            None,
            op("draft_reject"),
            NOW,
        );
        assert!(matches!(again, Err(StoreError::Conflict(_))));
        assert!(view(&s, View::Review).is_empty());
        assert_eq!(
            s.draft(id).unwrap().unwrap().reply_id.as_deref(),
            Some("custom-1")
        );
        assert_eq!(s.audit_entries().unwrap().len(), 2);
    }

    #[test]
    fn snoozed_mentions_come_back_when_their_time_comes() {
        let items = vec![
            (incoming("a", "hi", 5), tags_of(Tone::Neutral, &[])),
            (
                incoming("b", "data?", 5),
                tags_of(Tone::Neutral, &[Flag::Hcp]),
            ),
        ];
        let mut s = store_with(&items);
        let ids: Vec<MentionId> = s.all_mentions().unwrap().iter().map(|m| m.id).collect();
        s.snooze(
            ids[0],
            NOW + time::Duration::hours(1),
            "snooze",
            op("snooze"),
        )
        .unwrap();
        s.snooze(
            ids[1],
            NOW + time::Duration::days(90),
            "follow-up",
            op("follow_up"),
        )
        .unwrap();
        assert_eq!(view(&s, View::Snoozed).len(), 2);
        assert!(view(&s, View::Queue).is_empty());
        assert!(view(&s, View::Done).is_empty(), "snoozed is not done");
        assert_eq!(s.counts(NOW).unwrap().snoozed, 2);
        assert!(s.mention(ids[0]).unwrap().snooze_until.is_some());
        assert!(s.wake_snoozed(NOW).unwrap().is_empty());
        let woke = s.wake_snoozed(NOW + time::Duration::hours(2)).unwrap();
        assert_eq!(woke, vec![(ids[0], "snooze".to_owned())]);
        assert_eq!(view(&s, View::Queue).len(), 1);
        let woke = s.wake_snoozed(NOW + time::Duration::days(91)).unwrap();
        assert_eq!(woke, vec![(ids[1], "follow-up".to_owned())]);
        assert_eq!(s.mention(ids[1]).unwrap().snooze_until, None);
    }

    #[test]
    fn search_and_filters() {
        let items = vec![
            (
                incoming("1", "my copay card was rejected", 5),
                tags_of(Tone::Complaint, &[]),
            ),
            (
                incoming("2", "dizzy after a dose", 5),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
        ];
        let mut s = store_with(&items);
        let q = |search: &str, filter| QueueQuery {
            view: View::Queue,
            filter,
            search: Some(search.to_owned()),
        };
        // Ingest leaves a small batch for the index; a search catches up first.
        assert_eq!(s.count(&q("copa", None), NOW).unwrap(), 0);
        assert_eq!(s.index_pending().unwrap(), 2);
        assert_eq!(s.index_pending().unwrap(), 0);
        assert_eq!(
            s.page(&q("copa", None), NOW, 0, 10).unwrap()[0].remote_id,
            "1"
        );
        assert_eq!(s.count(&q("user2", None), NOW).unwrap(), 1);
        assert_eq!(s.count(&q("\"unbalanced (", None), NOW).unwrap(), 0);
        // Words are split as the index splits them; each is a prefix, all are required.
        assert_eq!(s.count(&q("copay-card", None), NOW).unwrap(), 1);
        assert_eq!(s.count(&q("card-copay", None), NOW).unwrap(), 1);
        assert_eq!(s.count(&q("DIZZY dos", None), NOW).unwrap(), 1);
        assert_eq!(s.count(&q("dizzy copay", None), NOW).unwrap(), 0);
        assert_eq!(s.count(&q("@user2", None), NOW).unwrap(), 1);
        assert_eq!(s.count(&q("Dízzy’s", None), NOW).unwrap(), 0);
        assert_eq!(s.count(&q("dízzy", None), NOW).unwrap(), 1);
        // A search with no word in it matches nothing; a blank one is no search.
        assert_eq!(s.count(&q("!!! -- \"\"", None), NOW).unwrap(), 0);
        assert_eq!(s.count(&q("   ", None), NOW).unwrap(), 2);
        let ae_only = QueueQuery {
            filter: Some(Filter::Flag(Flag::Ae)),
            ..QueueQuery::default()
        };
        assert_eq!(s.page(&ae_only, NOW, 0, 10).unwrap()[0].remote_id, "2");
    }

    #[test]
    fn a_filtered_count_is_counted_again_only_after_a_change() {
        let items = vec![
            (
                incoming("1", "rash", 5),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
            (
                incoming("2", "hives", 5),
                tags_of(Tone::Neutral, &[Flag::Ae]),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut s = Store::open(&path).unwrap();
        s.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        s.ingest(&items, &Targets::default(), None, NOW).unwrap();
        let q = QueueQuery {
            filter: Some(Filter::Flag(Flag::Ae)),
            ..QueueQuery::default()
        };
        assert_eq!(s.count(&q, NOW).unwrap(), 2);
        let id = s.all_mentions().unwrap()[0].id;
        s.set_state(id, MentionState::Done, op("done"), NOW)
            .unwrap();
        assert_eq!(s.count(&q, NOW).unwrap(), 1, "a write of this store");
        // Another process (here another connection) answers one too.
        let mut other = Store::open(&path).unwrap();
        let id = other.all_mentions().unwrap()[0].id;
        other
            .set_state(id, MentionState::Done, op("done"), NOW)
            .unwrap();
        assert_eq!(s.count(&q, NOW).unwrap(), 0, "a write of another process");
    }

    #[test]
    fn sends_are_audited_and_chained() {
        let mut s = store_with(&[
            (incoming("1", "thanks", 5), tags_of(Tone::Positive, &[])),
            (
                incoming("2", "thanks again", 6),
                tags_of(Tone::Positive, &[]),
            ),
        ]);
        let mut both = s.all_mentions().unwrap();
        let m = both.iter().position(|m| m.remote_id == "1").unwrap();
        let (m, second) = (both.remove(m), both.remove(0).id);
        let new = OutboxNew {
            idem_key: "k1".into(),
            mention_id: m.id,
            account: "demo-x".into(),
            platform: Platform::X,
            template: "thanks".into(),
            version: 1,
            channel: "public".into(),
            text: "Thank you!".into(),
            owner: None,
        };
        let (ob, intent) = s
            .begin_send(&new, AuditRecord::new(NOW, "op", "send_intent"), NOW)
            .unwrap();
        assert_eq!(intent.seq, 1);
        assert_eq!(s.earlier_reply(m.id).unwrap().as_deref(), Some("pending"));
        assert_eq!(s.pending_sends().unwrap().len(), 1);
        assert!(matches!(
            s.begin_send(&new, AuditRecord::new(NOW, "op", "send_intent"), NOW),
            Err(StoreError::AlreadyAnswered { .. })
        ));
        // Another mention's send under a key already used is refused, and writes nothing.
        let taken = s.begin_send(
            &OutboxNew {
                mention_id: second,
                ..new.clone()
            },
            AuditRecord::new(NOW, "op", "send_intent"),
            NOW,
        );
        assert!(
            matches!(taken, Err(StoreError::KeyTaken(ref k)) if k == "k1"),
            "{taken:?}"
        );
        assert_eq!(s.earlier_reply(second).unwrap(), None);
        assert_eq!(s.audit_entries().unwrap().len(), 1);
        let result = s
            .finish_send(
                ob,
                "sent",
                Some("r1"),
                None,
                AuditRecord::new(NOW, "op", "send_result"),
                NOW,
            )
            .unwrap();
        assert_eq!(result.prev_hash, intent.hash);
        assert_eq!(s.mention(m.id).unwrap().state, MentionState::Done);
        assert!(s.pending_sends().unwrap().is_empty());
        // A second settling (two starts reconciling the same crash) writes nothing.
        let again = s.finish_send(
            ob,
            "failed",
            None,
            None,
            AuditRecord::new(NOW, "op", "send_result"),
            NOW,
        );
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let entries = s.audit_entries().unwrap();
        assert_eq!(verify_chain(&entries), Ok(2));
        assert_eq!(s.earlier_reply(m.id).unwrap().as_deref(), Some("sent"));
    }

    #[test]
    fn a_full_or_read_only_disk_is_named_with_its_folder() {
        let dir = Path::new("/srv/desk");
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let e = StoreError::from(full).in_folder(dir);
        assert!(
            e.to_string()
                .starts_with("the disk is full: free some space in /srv/desk"),
            "{e}"
        );
        let ro = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        );
        let e = StoreError::from(ro).in_folder(dir);
        assert!(
            e.to_string()
                .starts_with("the tonedesk home /srv/desk is read-only: remount it read-write"),
            "{e}"
        );
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(matches!(
            StoreError::from_io(&enospc, dir),
            Some(StoreError::DiskFull(_))
        ));
        let erofs = std::io::Error::from_raw_os_error(libc::EROFS);
        assert!(matches!(
            StoreError::from_io(&erofs, dir),
            Some(StoreError::ReadOnly(_))
        ));
        let other = std::io::Error::from_raw_os_error(libc::EACCES);
        assert!(StoreError::from_io(&other, dir).is_none());
        // Other errors pass through as they were.
        let e = StoreError::NoMention(7).in_folder(dir);
        assert!(matches!(e, StoreError::NoMention(7)));
    }

    #[test]
    fn tampering_in_the_table_breaks_the_chain() {
        let mut s = Store::open_in_memory().unwrap();
        for action in ["like", "hide", "block"] {
            s.audit(AuditRecord::new(NOW, "op", action)).unwrap();
        }
        s.conn
            .execute("UPDATE audit SET action = 'hidf' WHERE seq = 2", [])
            .unwrap();
        let err = verify_chain(&s.audit_entries().unwrap()).unwrap_err();
        assert!(err.to_string().starts_with("entry 2"), "{err}");
    }

    #[test]
    fn a_cut_tail_is_found_and_stays_found_after_the_next_entry() {
        use crate::domain::audit::{ChainBreak, verify_log};
        let mut s = Store::open_in_memory().unwrap();
        for action in ["like", "hide", "block", "mute"] {
            let mut r = AuditRecord::new(NOW, "op", action);
            r.host = Some("desk-01".into());
            s.audit(r).unwrap();
        }
        let (entries, head) = s.audit_log().unwrap();
        assert_eq!(verify_log(&entries, head.as_ref()), Ok(4));
        assert_eq!(entries[3].record.host.as_deref(), Some("desk-01"));
        s.conn
            .execute("DELETE FROM audit WHERE seq >= 3", [])
            .unwrap();
        let (entries, head) = s.audit_log().unwrap();
        assert_eq!(
            verify_log(&entries, head.as_ref()),
            Err(ChainBreak::Truncated {
                seq: 3,
                last: 2,
                head: 4
            })
        );
        // The next entry chains on from the head, so the cut remains a gap.
        let e = s.audit(AuditRecord::new(NOW, "op", "report")).unwrap();
        assert_eq!(e.seq, 5);
        let (entries, head) = s.audit_log().unwrap();
        assert_eq!(
            verify_log(&entries, head.as_ref()),
            Err(ChainBreak::Gap {
                seq: 5,
                expected: 3
            })
        );
    }

    #[test]
    fn retag_and_template_hashes_and_crisis() {
        let mut s = store_with(&[(incoming("1", "meh", 5), tags_of(Tone::Neutral, &[]))]);
        let id = s.all_mentions().unwrap()[0].id;
        let t = Tags::operator(Tone::Troll, Flags::empty(), "operator");
        s.retag(
            id,
            &t,
            &Targets::default(),
            AuditRecord::new(NOW, "op", "retag"),
        )
        .unwrap();
        let m = s.mention(id).unwrap();
        assert_eq!(m.tags.tone, Tone::Troll);
        assert_eq!(m.tags.source, TagSource::Operator);
        assert_eq!(s.count(&QueueQuery::default(), NOW).unwrap(), 0);
        assert!(matches!(s.mention(999), Err(StoreError::NoMention(999))));

        // The correction is kept for learning; a second retag of the same mention replaces it.
        let t2 = Tags::operator(Tone::Complaint, Flags::empty(), "operator");
        s.retag(
            id,
            &t2,
            &Targets::default(),
            AuditRecord::new(NOW, "op", "retag"),
        )
        .unwrap();
        assert_eq!(
            s.corrections().unwrap(),
            vec![("meh".to_owned(), Tone::Complaint)]
        );
        assert_eq!(s.load_model().unwrap(), None);
        s.save_model(1, "{}", NOW).unwrap();
        s.save_model(2, "{\"v\":2}", NOW).unwrap();
        assert_eq!(
            s.load_model().unwrap(),
            Some((2, NOW.unix_timestamp(), "{\"v\":2}".to_owned()))
        );

        s.remember_template("thanks", 1, "aaa", NOW).unwrap();
        s.remember_template("thanks", 1, "bbb", NOW).unwrap();
        assert_eq!(
            s.template_hash("thanks", 1).unwrap().as_deref(),
            Some("aaa")
        );
        assert_eq!(s.template_hash("thanks", 2).unwrap(), None);

        assert_eq!(s.crisis().unwrap(), None);
        s.set_crisis(
            Some("recall rumour"),
            AuditRecord::new(NOW, "op", "crisis_on"),
        )
        .unwrap();
        assert_eq!(s.crisis().unwrap().as_deref(), Some("recall rumour"));
        s.set_crisis(None, AuditRecord::new(NOW, "op", "crisis_off"))
            .unwrap();
        assert_eq!(s.crisis().unwrap(), None);
    }

    /// A generated store: `n` mentions of every kind, some answered, snoozed, reported.
    fn generated(n: usize) -> Store {
        use crate::app::generate;
        let mut s = Store::open_in_memory().unwrap();
        generate::demo_accounts(&mut s).unwrap();
        let classifier =
            crate::tone::Classifier::new(crate::config::Config::default().tone_config());
        generate::populate(&mut s, &classifier, 11, NOW, n, &mut |_| {}).unwrap();
        s
    }

    #[test]
    fn counts_kept_incrementally_match_a_recount() {
        let mut s = generated(600);
        let mut rng = crate::app::generate::Rng::new(3);
        let check = |s: &Store, step: &str| {
            assert_eq!(
                Tally::stored(&s.conn).unwrap(),
                Tally::recount(&s.conn).unwrap(),
                "after {step}"
            );
        };
        check(&s, "generating");
        let mut sent = 0;
        for step in 0..400 {
            let id = 1 + rng.below(620) as i64; // some ids do not exist
            let later = NOW + time::Duration::minutes(step);
            let name = match rng.below(9) {
                0 => {
                    let st = *rng.pick(&[MentionState::Open, MentionState::Done]);
                    let _ = s.set_state(id, st, op("state"), later);
                    "set_state"
                }
                1 => {
                    let until = NOW + time::Duration::minutes(rng.below(120) as i64);
                    let _ = s.snooze(id, until, "snooze", op("snooze"));
                    "snooze"
                }
                2 => {
                    s.wake_snoozed(later).unwrap();
                    "wake"
                }
                3 => {
                    let tone = *rng.pick(&Tone::ALL);
                    let flags: Vec<Flag> =
                        Flag::ALL.into_iter().filter(|_| rng.chance(0.3)).collect();
                    let _ = s.retag(id, &tags_of(tone, &flags), &Targets::default(), op("retag"));
                    "retag"
                }
                4 => {
                    if let Ok(m) = s.mention(id) {
                        let case = crate::domain::AeCase::prefill(&m, 24);
                        s.save_ae_case(&case, op("ae_intake"), NOW).unwrap();
                        s.mark_ae_exported(&[id], op("ae_export"), NOW).unwrap();
                    }
                    "ae"
                }
                5 => {
                    let items: Vec<(IncomingMention, Tags)> = (0..3)
                        .map(|k| {
                            let tone = *rng.pick(&Tone::ALL);
                            let flags: Vec<Flag> =
                                Flag::ALL.into_iter().filter(|_| rng.chance(0.2)).collect();
                            (
                                incoming(&format!("n{step}-{k}"), "new", 3),
                                tags_of(tone, &flags),
                            )
                        })
                        .collect();
                    // Twice: the second time every one is a duplicate.
                    s.ingest(&items, &Targets::default(), None, NOW).unwrap();
                    s.ingest(&items, &Targets::default(), None, NOW).unwrap();
                    "ingest"
                }
                6 => {
                    if s.mention(id).is_ok() {
                        sent += 1;
                        let new = OutboxNew {
                            idem_key: format!("k{sent}"),
                            mention_id: id,
                            account: "demo-x".into(),
                            platform: Platform::X,
                            template: "t".into(),
                            version: 1,
                            channel: "public".into(),
                            text: "Thanks".into(),
                            owner: None,
                        };
                        if let Ok((ob, _)) = s.begin_send(&new, op("send_intent"), NOW) {
                            let outcome = *rng.pick(&["sent", "failed"]);
                            s.finish_send(ob, outcome, None, None, op("send_result"), NOW)
                                .unwrap();
                        }
                    }
                    "send"
                }
                7 => {
                    let ids: Vec<(MentionId, MentionState, AuditRecord, OffsetDateTime)> = (0..4)
                        .map(|k| (id + k, MentionState::Done, op("done"), later))
                        .filter(|(i, ..)| s.mention(*i).is_ok())
                        .collect();
                    s.set_states(ids).unwrap();
                    "set_states"
                }
                _ => {
                    let _ = s.add_draft(Some(id), "draft", op("draft"), NOW);
                    "draft"
                }
            };
            check(&s, name);
            // Every plain view's length is its kept count.
            for view in View::ALL {
                let q = QueueQuery {
                    view,
                    ..QueueQuery::default()
                };
                let listed = s.page(&q, NOW, 0, 10_000).unwrap().len();
                assert_eq!(s.count(&q, NOW).unwrap(), listed, "{view:?} after {name}");
            }
        }
        // The clock-dependent counts agree with a walk over the mentions.
        let c = s.counts(NOW).unwrap();
        let all = s.all_mentions().unwrap();
        let late = all
            .iter()
            .filter(|m| {
                m.state == MentionState::Open
                    && playbook::lane(&m.tags) == playbook::Lane::Answer
                    && m.due_at < NOW
            })
            .count();
        assert_eq!(c.overdue as usize, late);
        // Every rank a mention can have is among those the late count seeks.
        for tone in Tone::ALL {
            for flag in Flag::ALL {
                let rank = playbook::urgency_rank(&tags_of(tone, &[flag]));
                assert!(
                    RANKS.contains(&rank)
                        && RANKS.contains(&playbook::urgency_rank(&tags_of(tone, &[])))
                );
            }
        }
    }

    #[test]
    fn pages_found_from_a_row_match_pages_counted_from_the_start() {
        let s = generated(900);
        for view in View::ALL {
            for filter in [None, Some(Filter::Platform(Platform::Bluesky))] {
                let q = QueueQuery {
                    view,
                    filter,
                    search: None,
                };
                let all = s.page(&q, NOW, 0, 10_000).unwrap();
                let total = s.count(&q, NOW).unwrap();
                assert_eq!(total, all.len(), "{q:?}");
                let ids = |rows: &[Mention]| rows.iter().map(|m| m.id).collect::<Vec<_>>();
                for (start, at) in [(0, 0), (40, 100), (100, 40), (5, 7), (300, 10), (0, 90)] {
                    let Some(anchor) = all.get(at).filter(|_| start < total) else {
                        continue;
                    };
                    let (got_start, rows) = s
                        .page_near(&q, start, Some((anchor.id, at)), total, 30)
                        .unwrap();
                    assert_eq!(got_start, start, "{q:?} {start} {at}");
                    let want: Vec<_> = all.iter().skip(start).take(30).map(|m| m.id).collect();
                    assert_eq!(ids(&rows), want, "{q:?} from {start} near {at}");
                }
                // Without a row to start from: counted from the nearer end.
                for start in [
                    0,
                    total / 3,
                    total.saturating_sub(10),
                    total.saturating_sub(1),
                ] {
                    let (got_start, rows) = s.page_near(&q, start, None, total, 30).unwrap();
                    assert_eq!(got_start, start, "{q:?}");
                    let want: Vec<_> = all.iter().skip(start).take(30).map(|m| m.id).collect();
                    assert_eq!(ids(&rows), want, "{q:?} from {start}");
                }
            }
        }
    }

    #[test]
    fn pages_and_counts_are_served_by_indexes() {
        let s = generated(300);
        let plan = |sql: &str| -> String {
            let mut stmt = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<Vec<_>>>()
                .unwrap();
            rows.join(" | ")
        };
        for view in View::ALL {
            let q = QueueQuery {
                view,
                ..QueueQuery::default()
            };
            let (cols, desc) = order_keys(view);
            let keys = match cols.len() {
                2 => "(1, 2)",
                _ => "(1, 2, 3)",
            };
            for (seek, op) in [("", ""), ("from", if desc { "<=" } else { ">=" })] {
                let extra = if seek.is_empty() {
                    String::new()
                } else {
                    format!(" AND ({}) {op} {keys}", cols.join(", "))
                };
                let sql = format!(
                    "SELECT {MENTION_COLUMNS} FROM mentions m JOIN authors a ON a.id = m.author_id
                     WHERE {}{extra} ORDER BY {} LIMIT 120",
                    query_where(&q, false),
                    cols.iter()
                        .map(|c| format!("{c} {}", if desc { "DESC" } else { "ASC" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let p = plan(&sql);
                // The review view holds the few mentions with a draft waiting; it may sort them.
                if view != View::Review {
                    assert!(!p.contains("TEMP B-TREE"), "{view:?} {seek}: sorts: {p}");
                    assert!(
                        p.contains("USING INDEX") || p.contains("USING COVERING INDEX"),
                        "{view:?} {seek}: {p}"
                    );
                    assert!(
                        !p.contains("SCAN m |"),
                        "{view:?} {seek}: scans the table: {p}"
                    );
                    if !seek.is_empty() {
                        assert!(p.starts_with("SEARCH m"), "{view:?} {seek}: no seek: {p}");
                    }
                }
            }
        }
        for sql in [
            "SELECT count(*) FROM mentions WHERE state = 'open' AND moderation = 0
             AND rank IN (1, 2, 3) AND due_at >= 5",
            "SELECT count(*) FROM mentions WHERE ae_due_at IS NOT NULL AND ae_reported = 0 AND ae_due_at < 5",
        ] {
            let p = plan(sql);
            assert!(p.contains("COVERING INDEX"), "{sql}: {p}");
            assert!(p.contains("due_at>?"), "{sql}: not a range: {p}");
        }
    }

    #[test]
    fn poll_status_keeps_the_last_error_after_a_success() {
        let mut s = Store::open_in_memory().unwrap();
        let failed = PollRecord {
            account: "care-x".into(),
            stream: "mentions".into(),
            last_error: Some("429".into()),
            last_error_at: Some(10),
            budget_remaining: Some(0),
            ..PollRecord::default()
        };
        s.record_poll(&failed).unwrap();
        let ok = PollRecord {
            last_ok_at: Some(20),
            next_at: Some(80),
            budget_remaining: Some(14),
            ..PollRecord {
                account: "care-x".into(),
                stream: "mentions".into(),
                ..PollRecord::default()
            }
        };
        s.record_poll(&ok).unwrap();
        let all = s.poll_statuses().unwrap();
        assert_eq!(all.len(), 1);
        let r = &all[0];
        assert_eq!(
            (r.last_ok_at, r.last_error_at, r.next_at),
            (Some(20), Some(10), Some(80))
        );
        assert_eq!(r.budget_remaining, Some(14));
        assert_eq!(r.last_error.as_deref(), Some("429"));
    }
}
