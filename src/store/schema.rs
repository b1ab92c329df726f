//! Versioned migrations (`PRAGMA user_version`). Plain SQL types (TEXT, INTEGER, REAL) so the same
//! schema ports to PostgreSQL; full-text search (FTS5) is the one SQLite-specific part and lives
//! in its own table.

use rusqlite_migration::{M, Migrations};

const V1: &str = r#"
CREATE TABLE accounts (
    name        TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    handle      TEXT NOT NULL,
    demo        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE authors (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    handle       TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    bio          TEXT NOT NULL DEFAULT '',
    UNIQUE (platform, handle)
);

CREATE TABLE mentions (
    id           INTEGER PRIMARY KEY,
    platform     TEXT NOT NULL,
    account      TEXT NOT NULL REFERENCES accounts(name),
    remote_id    TEXT NOT NULL,
    author_id    INTEGER NOT NULL REFERENCES authors(id),
    text         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,          -- unix seconds, UTC
    fetched_at   INTEGER NOT NULL,
    url          TEXT,
    in_reply_to  TEXT,
    parent_text  TEXT,
    reply_ref    TEXT,
    private      INTEGER NOT NULL DEFAULT 0,
    tone         TEXT NOT NULL,
    flags        INTEGER NOT NULL,          -- bit set of domain::Flag
    confidence   REAL NOT NULL,
    reasons      TEXT NOT NULL,             -- JSON array of strings
    tag_source   TEXT NOT NULL,
    rank         INTEGER NOT NULL,          -- playbook urgency, lower first
    moderation   INTEGER NOT NULL,          -- 1 = moderation lane (troll, spam)
    due_at       INTEGER NOT NULL,          -- first-response target, unix seconds
    state        TEXT NOT NULL DEFAULT 'open',
    done_at      INTEGER,
    UNIQUE (platform, remote_id)
);
CREATE INDEX mentions_queue ON mentions (state, moderation, rank, due_at);
CREATE INDEX mentions_done ON mentions (state, done_at);

CREATE VIRTUAL TABLE mention_fts USING fts5 (text, handle);

CREATE TABLE cursors (
    account     TEXT NOT NULL,
    stream      TEXT NOT NULL,              -- 'mentions', 'watch:Zyntriva'…
    cursor      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account, stream)
);

CREATE TABLE template_versions (
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    text_hash   TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    idem_key     TEXT NOT NULL UNIQUE,      -- idempotency key / client record key
    mention_id   INTEGER NOT NULL REFERENCES mentions(id),
    account      TEXT NOT NULL,
    platform     TEXT NOT NULL,
    template     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    text         TEXT NOT NULL,
    state        TEXT NOT NULL,             -- pending | sent | failed | unknown
    remote_id    TEXT,
    error        TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX outbox_mention ON outbox (mention_id);

CREATE TABLE audit (
    seq              INTEGER PRIMARY KEY,
    at               TEXT NOT NULL,
    operator         TEXT NOT NULL,
    action           TEXT NOT NULL,
    platform         TEXT,
    account          TEXT,
    mention          INTEGER,
    template         TEXT,
    template_version INTEGER,
    approval         TEXT,
    channel          TEXT,
    text             TEXT,
    outcome          TEXT,
    remote_id        TEXT,
    detail           TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
"#;

/// What each account's poller last did, for the status bar and `doctor` (another process may ask).
const V2: &str = r#"
CREATE TABLE poll_status (
    account          TEXT NOT NULL,
    stream           TEXT NOT NULL,
    last_ok_at       INTEGER,
    last_error       TEXT,
    last_error_at    INTEGER,
    next_at          INTEGER,
    budget_limit     INTEGER,
    budget_remaining INTEGER,
    budget_reset     INTEGER,
    PRIMARY KEY (account, stream)
);
"#;

/// Operators' corrections of tags (what the learned model trains on) and the model itself.
const V3: &str = r#"
CREATE TABLE corrections (
    id          INTEGER PRIMARY KEY,
    mention_id  INTEGER NOT NULL REFERENCES mentions(id),
    text        TEXT NOT NULL,
    tone        TEXT NOT NULL,
    flags       INTEGER NOT NULL,
    operator    TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX corrections_mention ON corrections (mention_id);

CREATE TABLE tone_model (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    examples    INTEGER NOT NULL,
    trained_at  INTEGER NOT NULL,
    model       TEXT NOT NULL
);
"#;

/// The compliance workflow: adverse-event intake records (with the AE clock also kept on the
/// mention for the AE view's order), snoozes and follow-ups, and custom drafts awaiting MLR review.
const V4: &str = r#"
ALTER TABLE mentions ADD COLUMN ae_due_at INTEGER;       -- report due at pharmacovigilance
ALTER TABLE mentions ADD COLUMN snooze_until INTEGER;    -- back in the queue at this time
ALTER TABLE mentions ADD COLUMN snooze_reason TEXT;      -- 'snooze' | 'follow-up'
UPDATE mentions SET ae_due_at = created_at + 86400 WHERE (flags & 1) != 0;
CREATE INDEX mentions_ae ON mentions (ae_due_at);
CREATE INDEX mentions_snoozed ON mentions (state, snooze_until);

CREATE TABLE ae_cases (
    mention_id     INTEGER PRIMARY KEY REFERENCES mentions(id),
    reporter       TEXT NOT NULL,
    reporter_state TEXT NOT NULL,               -- present | to ask | missing
    patient        TEXT NOT NULL,
    patient_state  TEXT NOT NULL,
    product        TEXT NOT NULL,
    product_state  TEXT NOT NULL,
    reaction       TEXT NOT NULL,
    reaction_state TEXT NOT NULL,
    verbatim       TEXT NOT NULL,
    link           TEXT,
    published_at   INTEGER NOT NULL,
    due_at         INTEGER NOT NULL,
    notes          TEXT NOT NULL DEFAULT '',
    operator       TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    exported_at    INTEGER
);

CREATE TABLE drafts (
    id          INTEGER PRIMARY KEY,
    mention_id  INTEGER REFERENCES mentions(id),
    text        TEXT NOT NULL,
    operator    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'draft', -- draft | approved | rejected
    approval    TEXT,
    reply_id    TEXT,
    decided_at  INTEGER
);
CREATE INDEX drafts_state ON drafts (state, mention_id);
"#;

/// Audit entries record the host they were written on and the send attempt (the outbox's
/// idempotency key) that links a `send_intent` to its `send_result`; both stay NULL in older
/// entries. The log's head (`SEQ HASH` of its newest entry) is kept in `settings`, updated with
/// every append, so that entries cut from the end are found; it starts at the current newest.
const V5: &str = r#"
ALTER TABLE audit ADD COLUMN host TEXT;
ALTER TABLE audit ADD COLUMN attempt TEXT;
INSERT INTO settings (key, value)
    SELECT 'audit_head', seq || ' ' || hash FROM audit ORDER BY seq DESC LIMIT 1;
"#;

/// Indexes for the desk's figures (`store::stats`): mentions by creation time, audit entries by
/// mention, so the stats read only the window's rows.
const V6: &str = r#"
CREATE INDEX mentions_created ON mentions (created_at);
CREATE INDEX audit_mention ON audit (mention, action);
"#;

/// The process that writes a send's intent, so that another process (a second console) does not
/// settle it as a crash while it is still in flight.
const V7: &str = r#"
ALTER TABLE outbox ADD COLUMN owner TEXT;
"#;

/// Scale: the status bar's counts kept in one row, changed in the same transaction as the
/// mentions they count (so no page load counts the whole table); the AE view's order served by an
/// index (`ae_reported` mirrors `ae_cases.exported_at IS NOT NULL` on the mention); and the
/// full-text index made contentless (search reads only its rowids; the text lives in `mentions`),
/// which halves what ingest writes for it.
const V8: &str = r#"
DROP TABLE mention_fts;
CREATE VIRTUAL TABLE mention_fts USING fts5 (text, handle, content = '', columnsize = 0);
INSERT INTO mention_fts (rowid, text, handle)
    SELECT m.id, m.text, a.handle FROM mentions m JOIN authors a ON a.id = m.author_id;

ALTER TABLE mentions ADD COLUMN ae_reported INTEGER NOT NULL DEFAULT 0;
UPDATE mentions SET ae_reported = 1
    WHERE id IN (SELECT mention_id FROM ae_cases WHERE exported_at IS NOT NULL);
DROP INDEX mentions_ae;
CREATE INDEX mentions_ae ON mentions (ae_reported, ae_due_at) WHERE ae_due_at IS NOT NULL;

CREATE TABLE mention_counts (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    open         INTEGER NOT NULL,          -- state open, answer lane
    moderation   INTEGER NOT NULL,          -- state open, moderation lane
    ae_open      INTEGER NOT NULL,          -- state open, flagged AE
    crisis_open  INTEGER NOT NULL,          -- state open, flagged crisis
    snoozed      INTEGER NOT NULL,
    done         INTEGER NOT NULL,
    ae           INTEGER NOT NULL           -- in the AE view (an AE clock is running or ran)
);
INSERT INTO mention_counts (id, open, moderation, ae_open, crisis_open, snoozed, done, ae)
SELECT 1,
    coalesce(sum(CASE WHEN state = 'open' AND moderation = 0 THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN state = 'open' AND moderation = 1 THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN state = 'open' AND (flags & 1) != 0 THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN state = 'open' AND (flags & 8) != 0 THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN state = 'snoozed' THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END), 0),
    coalesce(sum(CASE WHEN ae_due_at IS NOT NULL THEN 1 ELSE 0 END), 0)
FROM mentions;
"#;

/// The full-text index is written in batches rather than in every ingest's transaction: a
/// mention is indexed once `fts_progress.upto` reaches its id (mention ids only grow). Every
/// mention cached so far is in the index already.
const V9: &str = r#"
CREATE TABLE fts_progress (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    upto  INTEGER NOT NULL              -- the highest mention id in mention_fts
);
INSERT INTO fts_progress (id, upto) SELECT 1, coalesce(max(id), 0) FROM mentions;
"#;

/// Ingest speed: the full-text index keeps no word positions (`detail = none`: search asks for
/// words, never phrases; see `Store::fts_query`), which makes what each batch writes and merges
/// smaller, and merges its segments eight at a time rather than four. Every cached mention is
/// indexed again, once (5.4 s for the scale bench's million).
const V10: &str = r#"
DROP TABLE mention_fts;
CREATE VIRTUAL TABLE mention_fts USING fts5 (text, handle, content = '', columnsize = 0, detail = none);
INSERT INTO mention_fts (mention_fts, rank) VALUES ('automerge', 8);
INSERT INTO mention_fts (rowid, text, handle)
    SELECT m.id, m.text, a.handle FROM mentions m JOIN authors a ON a.id = m.author_id;
UPDATE fts_progress SET upto = (SELECT coalesce(max(id), 0) FROM mentions);
"#;

/// Ingest speed: the full-text index moves to a database file of its own, written by a thread of
/// its own beside the store's (see `store::index`). The cache keeps a token that names it to its
/// index, so that an index beside another cache is found out and built again; the new index
/// starts empty and catches up from the cache.
const V11: &str = r#"
DROP TABLE mention_fts;
DROP TABLE fts_progress;
CREATE TABLE search_link (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL                 -- fts_progress.cache in the index file that indexes this cache
);
INSERT INTO search_link (id, token) VALUES (1, lower(hex(randomblob(16))));
"#;

/// Every migration, oldest first.
const ALL: [&str; 11] = [V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11];

pub fn migrations() -> Migrations<'static> {
    Migrations::new(ALL.into_iter().map(M::up).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditEntry, AuditRecord, GENESIS};

    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }

    /// The migrations up to the `n`th (to test one on the schema as it found it).
    fn through(n: usize) -> Migrations<'static> {
        Migrations::new(ALL[..n].iter().copied().map(M::up).collect())
    }

    #[test]
    fn the_index_file_migration_leaves_the_cache_a_token_and_no_index() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        through(10).to_latest(&mut conn).unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name IN ('mention_fts', 'fts_progress')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        let token: String = conn
            .query_row("SELECT token FROM search_link", [], |r| r.get(0))
            .unwrap();
        assert!(
            regex::Regex::new("^[0-9a-f]{32}$")
                .unwrap()
                .is_match(&token),
            "{token}"
        );
        let mut other = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut other).unwrap();
        let theirs: String = other
            .query_row("SELECT token FROM search_link", [], |r| r.get(0))
            .unwrap();
        assert_ne!(token, theirs, "each cache has a token of its own");
    }

    #[test]
    fn v5_anchors_the_head_of_an_existing_log() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3)])
            .to_latest(&mut conn)
            .unwrap();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=3 {
            let r = AuditRecord::new(time::OffsetDateTime::UNIX_EPOCH, "op", "like");
            let e = AuditEntry::chain(seq, &prev, r.clone());
            conn.execute(
                "INSERT INTO audit (seq, at, operator, action, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![e.seq, r.at, r.operator, r.action, e.prev_hash, e.hash],
            )
            .unwrap();
            prev = e.hash;
        }
        migrations().to_latest(&mut conn).unwrap();
        let head: String = conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'audit_head'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(head, format!("3 {prev}"));
        let hosts: i64 = conn
            .query_row("SELECT count(*) FROM audit WHERE host IS NULL", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(hosts, 3);

        // An empty log gets no head.
        let mut empty = rusqlite::Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut empty).unwrap();
        let n: i64 = empty
            .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn the_counts_migration_counts_an_existing_cache() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3), M::up(V4)])
            .to_latest(&mut conn)
            .unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, platform, handle) VALUES ('a', 'x', 'h');
             INSERT INTO authors (id, platform, handle) VALUES (1, 'x', 'someone');
             INSERT INTO mentions (id, platform, account, remote_id, author_id, text, created_at,
                 fetched_at, tone, flags, confidence, reasons, tag_source, rank, moderation,
                 due_at, state, ae_due_at)
             VALUES
                 (1, 'x', 'a', 'r1', 1, 'my rash', 0, 0, 'neutral', 1, 1, '[]', 'c', 1, 0, 5, 'open', 10),
                 (2, 'x', 'a', 'r2', 1, 'spam', 0, 0, 'spam', 0, 1, '[]', 'c', 8, 1, 5, 'open', NULL),
                 (3, 'x', 'a', 'r3', 1, 'recall?', 0, 0, 'neutral', 8, 1, '[]', 'c', 5, 0, 5, 'done', NULL),
                 (4, 'x', 'a', 'r4', 1, 'dizzy', 0, 0, 'neutral', 1, 1, '[]', 'c', 1, 0, 5, 'snoozed', 20);
             INSERT INTO mention_fts (rowid, text, handle) VALUES (1, 'my rash', 'someone');
             INSERT INTO ae_cases (mention_id, reporter, reporter_state, patient, patient_state,
                 product, product_state, reaction, reaction_state, verbatim, published_at, due_at,
                 operator, created_at, updated_at, exported_at)
             VALUES (4, '', 'missing', '', 'missing', '', 'missing', '', 'missing', 'dizzy', 0, 20,
                 'op', 0, 0, 30);",
        )
        .unwrap();
        through(10).to_latest(&mut conn).unwrap();
        let counts: (i64, i64, i64, i64, i64, i64, i64) = conn
            .query_row(
                "SELECT open, moderation, ae_open, crisis_open, snoozed, done, ae FROM mention_counts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .unwrap();
        assert_eq!(counts, (1, 1, 1, 0, 1, 1, 2));
        let reported: Vec<i64> = conn
            .prepare("SELECT id FROM mentions WHERE ae_reported = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(reported, [4]);
        // The full-text index was rebuilt from every mention, not only those it held.
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM mention_fts WHERE mention_fts MATCH '\"dizzy\"* OR \"someone\"*'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 4);
    }

    #[test]
    fn the_wordlist_migration_indexes_every_mention_again() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let upto_v9: Vec<M> = [V1, V2, V3, V4, V5, V6, V7, V8, V9]
            .into_iter()
            .map(M::up)
            .collect();
        Migrations::new(upto_v9).to_latest(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts (name, platform, handle) VALUES ('a', 'x', 'h');
             INSERT INTO authors (id, platform, handle) VALUES (1, 'x', 'someone');
             INSERT INTO mentions (id, platform, account, remote_id, author_id, text, created_at,
                 fetched_at, tone, flags, confidence, reasons, tag_source, rank, moderation,
                 due_at, state)
             VALUES
                 (1, 'x', 'a', 'r1', 1, 'my rash', 0, 0, 'neutral', 1, 1, '[]', 'c', 1, 0, 5, 'open'),
                 (2, 'x', 'a', 'r2', 1, 'a side-effect', 0, 0, 'neutral', 0, 1, '[]', 'c', 8, 0, 5, 'open');
             INSERT INTO mention_fts (rowid, text, handle) VALUES (1, 'my rash', 'someone');
             UPDATE fts_progress SET upto = 1;",
        )
        .unwrap();
        through(10).to_latest(&mut conn).unwrap();
        let found = |q: &str| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM mention_fts WHERE mention_fts MATCH ?1",
                [q],
                |r| r.get(0),
            )
            .unwrap()
        };
        // Both mentions, the one the old index held and the one still waiting for its batch.
        assert_eq!(found("\"someone\"*"), 2);
        assert_eq!(found("\"side\"* \"effect\"*"), 1);
        let upto: i64 = conn
            .query_row("SELECT upto FROM fts_progress", [], |r| r.get(0))
            .unwrap();
        assert_eq!(upto, 2);
        // No positions are kept: a phrase is refused (so `Store::fts_query` never asks for one).
        let phrase = conn.query_row(
            "SELECT count(*) FROM mention_fts WHERE mention_fts MATCH '\"side effect\"'",
            [],
            |r| r.get::<_, i64>(0),
        );
        assert!(phrase.is_err());
    }
}
