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

/// Indexes for the desk's figures (`store::stats`): mentions by creation time, audit entries by
/// mention, so the stats read only the window's rows.
const V4: &str = r#"
CREATE INDEX mentions_created ON mentions (created_at);
CREATE INDEX audit_mention ON audit (mention, action);
"#;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1), M::up(V2), M::up(V3), M::up(V4)])
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
