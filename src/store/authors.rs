//! Authors as ingest resolves them: a mention's (platform, handle) to the `authors` row's id,
//! reading the database only for people this connection has not seen lately.
//!
//! Most mentions come from people seen before (a few post a lot), and a page of 80 used to read
//! each of its authors back. The connection now remembers the authors it stored or read, with the
//! profile as stored, so a known author costs a hash look-up; a changed profile is still written.
//! What a batch learns is remembered only once its transaction committed, and everything is
//! forgotten when another connection (another process on the same home) committed since, since
//! its ingest may have changed a profile.

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;

use super::Result;
use crate::domain::{Author, Platform};

/// How many authors a connection remembers; past that it starts again. At a few hundred bytes
/// each (handle, display name, bio), a few MB at most.
const KEPT: usize = 16_384;

/// Authors this connection knows to be stored as they are here.
#[derive(Debug, Default)]
pub(super) struct KnownAuthors {
    by_platform: FxHashMap<Platform, FxHashMap<Box<str>, Stored>>,
    len: usize,
    /// SQLite's `data_version` when the map was last known to match the database.
    data_version: i64,
}

#[derive(Debug)]
struct Stored {
    id: i64,
    name: Box<str>,
    bio: Box<str>,
}

impl KnownAuthors {
    /// Forgets everything when another connection committed since the last look. Call inside
    /// the write transaction, where no other connection can commit.
    pub(super) fn sync(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if version != self.data_version {
            self.forget();
            self.data_version = version;
        }
        Ok(())
    }

    fn forget(&mut self) {
        self.by_platform.clear();
        self.len = 0;
    }

    fn get(&self, platform: Platform, handle: &str) -> Option<&Stored> {
        self.by_platform.get(&platform)?.get(handle)
    }

    /// Takes in what a committed batch read, added or changed.
    pub(super) fn remember(&mut self, batch: Batch<'_>) {
        if self.len + batch.len() > KEPT {
            self.forget();
        }
        for ((platform, handle), (id, name, bio)) in batch {
            let stored = Stored {
                id,
                name: name.into(),
                bio: bio.into(),
            };
            if self
                .by_platform
                .entry(platform)
                .or_default()
                .insert(handle.into(), stored)
                .is_none()
            {
                self.len += 1;
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// (platform, handle) → (id, display name, bio) as this batch left them.
pub(super) type Batch<'a> = FxHashMap<(Platform, &'a str), (i64, &'a str, &'a str)>;

/// Resolves the authors of one batch inside its transaction.
pub(super) struct Resolver<'k, 'a, 'tx> {
    known: &'k KnownAuthors,
    batch: Batch<'a>,
    find: CachedStatement<'tx>,
    add: CachedStatement<'tx>,
    change: CachedStatement<'tx>,
}

impl<'k, 'a, 'tx> Resolver<'k, 'a, 'tx> {
    pub(super) fn new(tx: &'tx Connection, known: &'k KnownAuthors) -> Result<Self> {
        Ok(Resolver {
            known,
            batch: Batch::default(),
            find: tx.prepare_cached(
                "SELECT id, display_name, bio FROM authors WHERE platform = ?1 AND handle = ?2",
            )?,
            add: tx.prepare_cached(
                "INSERT INTO authors (platform, handle, display_name, bio) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
            )?,
            change: tx
                .prepare_cached("UPDATE authors SET display_name = ?2, bio = ?3 WHERE id = ?1")?,
        })
    }

    /// The author's id, stored or updated as needed: the latest profile wins.
    pub(super) fn id(&mut self, platform: Platform, a: &'a Author) -> Result<i64> {
        let (name, bio) = (a.display_name.as_str(), a.bio.as_str());
        if let Some((id, n, b)) = self.batch.get_mut(&(platform, a.handle.as_str())) {
            if (*n, *b) != (name, bio) {
                self.change.execute(params![*id, name, bio])?;
                (*n, *b) = (name, bio);
            }
            return Ok(*id);
        }
        let id = match self.known.get(platform, &a.handle) {
            Some(s) if (&*s.name, &*s.bio) == (name, bio) => return Ok(s.id),
            Some(s) => {
                self.change.execute(params![s.id, name, bio])?;
                s.id
            }
            None => {
                let stored: Option<(i64, String, String)> = self
                    .find
                    .query_row(params![platform.as_str(), a.handle], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                match stored {
                    Some((id, n, b)) => {
                        if (n.as_str(), b.as_str()) != (name, bio) {
                            self.change.execute(params![id, name, bio])?;
                        }
                        id
                    }
                    None => self
                        .add
                        .query_row(params![platform.as_str(), a.handle, name, bio], |r| {
                            r.get(0)
                        })?,
                }
            }
        };
        self.batch.insert((platform, &a.handle), (id, name, bio));
        Ok(id)
    }

    /// What this batch learned, for [`KnownAuthors::remember`] once it committed.
    pub(super) fn into_batch(self) -> Batch<'a> {
        self.batch
    }
}
