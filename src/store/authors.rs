//! Authors as ingest resolves them: a mention's (platform, handle) to the `authors` row's id,
//! reading the database only for people this connection has not seen lately.
//!
//! Most mentions come from people seen before (a few post a lot), and a page of 80 used to read
//! each of its authors back. The connection now remembers the authors it stored or read, with a
//! fingerprint of the profile as stored, so a known author costs a hash look-up; a changed profile
//! is still written. What a batch learns is remembered only once its transaction committed, and
//! everything is forgotten when another connection (another process on the same home) committed
//! since, since its ingest may have changed a profile.
//!
//! The memory is two generations: the authors of recent batches, and those of the batches before.
//! When the recent one is full it becomes the older one and the oldest are forgotten, so the
//! people who keep posting stay known however many others pass by. (Forgetting everyone at a cap
//! made a backfill whose authors outnumbered the cap look most of them up again: 59,000 look-ups
//! for 100,000 mentions from about 31,500 people.)

use std::hash::{BuildHasher, RandomState};

use rusqlite::{CachedStatement, Connection, params};
use rustc_hash::FxHashMap;

use super::Result;
use crate::domain::{Author, Platform};

/// How many authors a generation holds: a connection remembers between this many and twice as
/// many. About 100 bytes each (handle, id, fingerprint, the map's own), 6 MB at most.
const GENERATION: usize = 32_768;

/// Authors this connection knows to be stored as they are here.
#[derive(Debug, Default)]
pub(super) struct KnownAuthors {
    recent: Generation,
    older: Generation,
    /// Keys the profile fingerprints with a key of this process's own, so that nobody can make
    /// two profiles that look alike to it on purpose.
    keys: RandomState,
    /// SQLite's `data_version` when the map was last known to match the database.
    data_version: i64,
}

/// Authors by platform and handle (one map for each platform, so that a look-up borrows the
/// handle).
#[derive(Debug, Default)]
struct Generation {
    by_platform: FxHashMap<Platform, FxHashMap<Box<str>, Stored>>,
}

impl Generation {
    fn get(&self, platform: Platform, handle: &str) -> Option<Stored> {
        self.by_platform.get(&platform)?.get(handle).copied()
    }

    /// Stores `stored` for the author, copying the handle only for one not held yet.
    fn insert(&mut self, platform: Platform, handle: &str, stored: Stored) {
        let authors = self.by_platform.entry(platform).or_default();
        match authors.get_mut(handle) {
            Some(s) => *s = stored,
            None => {
                authors.insert(handle.into(), stored);
            }
        }
    }

    fn len(&self) -> usize {
        self.by_platform.values().map(FxHashMap::len).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    id: i64,
    /// A keyed hash of (display name, bio) as stored.
    profile: u64,
}

impl KnownAuthors {
    /// Forgets everything when another connection committed since the last look. Call inside
    /// the write transaction, where no other connection can commit.
    pub(super) fn sync(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if version != self.data_version {
            self.recent = Generation::default();
            self.older = Generation::default();
            self.data_version = version;
        }
        Ok(())
    }

    fn profile(&self, name: &str, bio: &str) -> u64 {
        self.keys.hash_one((name, bio))
    }

    fn get(&self, platform: Platform, handle: &str) -> Option<Stored> {
        self.recent
            .get(platform, handle)
            .or_else(|| self.older.get(platform, handle))
    }

    /// Takes in what a committed batch read, added or changed.
    pub(super) fn remember(&mut self, batch: Batch<'_>) {
        for ((platform, handle), (id, name, bio)) in batch {
            let stored = Stored {
                id,
                profile: self.profile(name, bio),
            };
            if self.recent.len() >= GENERATION {
                self.older = std::mem::take(&mut self.recent);
            }
            self.recent.insert(platform, handle, stored);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.recent.len() + self.older.len()
    }
}

/// (platform, handle) → (id, display name, bio) as this batch left them.
pub(super) type Batch<'a> = FxHashMap<(Platform, &'a str), (i64, &'a str, &'a str)>;

/// Resolves the authors of one batch inside its transaction.
pub(super) struct Resolver<'k, 'a, 'tx> {
    known: &'k KnownAuthors,
    batch: Batch<'a>,
    tx: &'tx Connection,
    find: CachedStatement<'tx>,
    add: CachedStatement<'tx>,
    change: CachedStatement<'tx>,
}

impl<'k, 'a, 'tx> Resolver<'k, 'a, 'tx> {
    pub(super) fn new(tx: &'tx Connection, known: &'k KnownAuthors) -> Result<Self> {
        Ok(Resolver {
            known,
            batch: Batch::default(),
            tx,
            find: tx.prepare_cached(
                "SELECT id, display_name, bio FROM authors WHERE platform = ?1 AND handle = ?2",
            )?,
            add: tx.prepare_cached(
                "INSERT INTO authors (platform, handle, display_name, bio) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (platform, handle) DO NOTHING",
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
            Some(s) if s.profile == self.known.profile(name, bio) => return Ok(s.id),
            Some(s) => {
                self.change.execute(params![s.id, name, bio])?;
                s.id
            }
            // Not known to this process: most such authors are new, so the insert is tried
            // first (one look in the handle index), and only a taken handle is read back. (No
            // RETURNING: SQLite keeps its rows in a temporary table, made for each insert.)
            None => match self
                .add
                .execute(params![platform.as_str(), a.handle, name, bio])?
            {
                1 => self.tx.last_insert_rowid(),
                _ => {
                    let (id, n, b): (i64, String, String) = self
                        .find
                        .query_row(params![platform.as_str(), a.handle], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?;
                    if (n.as_str(), b.as_str()) != (name, bio) {
                        self.change.execute(params![id, name, bio])?;
                    }
                    id
                }
            },
        };
        self.batch.insert((platform, &a.handle), (id, name, bio));
        Ok(id)
    }

    /// What this batch learned, for [`KnownAuthors::remember`] once it committed.
    pub(super) fn into_batch(self) -> Batch<'a> {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(platform: Platform, handle: &str, id: i64) -> Batch<'_> {
        let mut batch = Batch::default();
        batch.insert((platform, handle), (id, "Name", "bio"));
        batch
    }

    #[test]
    fn people_who_keep_posting_stay_known_while_many_others_pass_by() {
        let mut known = KnownAuthors::default();
        let passers: Vec<String> = (0..GENERATION * 3).map(|i| format!("p{i}")).collect();
        for (i, handle) in passers.iter().enumerate() {
            known.remember(one(Platform::X, handle, i as i64));
            if i % 1000 == 0 {
                known.remember(one(Platform::X, "regular", -1));
            }
        }
        // Three generations' worth went by: the regular is still known, by their id …
        assert_eq!(known.get(Platform::X, "regular").map(|s| s.id), Some(-1));
        // … as is every one of the last generation's worth of passers-by, but not the first.
        let recent = passers.len() - GENERATION..passers.len();
        for (i, handle) in passers.iter().enumerate().skip(recent.start) {
            assert_eq!(
                known.get(Platform::X, handle).map(|s| s.id),
                Some(i as i64),
                "{handle}"
            );
        }
        assert_eq!(known.get(Platform::X, &passers[0]), None);
        assert!(known.len() <= 2 * GENERATION, "{} remembered", known.len());
        // Platforms are apart: the same handle elsewhere is somebody else.
        assert_eq!(known.get(Platform::Mastodon, "regular"), None);
    }

    #[test]
    fn a_profile_is_known_by_its_fingerprint() {
        let mut known = KnownAuthors::default();
        known.remember(one(Platform::Bluesky, "ana", 7));
        let stored = known.get(Platform::Bluesky, "ana").expect("remembered");
        assert_eq!(stored.profile, known.profile("Name", "bio"));
        assert_ne!(stored.profile, known.profile("Name", "bio, edited"));
        // The two fields stay apart: moving a word from one to the other is a change.
        assert_ne!(known.profile("Name ", "bio"), known.profile("Name", " bio"));
    }
}
