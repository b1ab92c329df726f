//! The status bar's counts, kept incrementally in the one-row `mention_counts` table: every write
//! that changes what a mention counts towards (state, lane, flags, AE clock) adds its difference in
//! the same transaction, so reading the counts never walks the mentions. The counts that depend on
//! the clock (late, AE report late) cannot be kept this way; they are indexed range counts.
//!
//! A new write path on `mentions` must go through [`Tally::around`] (or add [`Tally::of`] for an
//! insert); the test `counts_kept_incrementally_match_a_recount` recounts after every kind of write.

use rusqlite::{Connection, OptionalExtension, params};

use super::Result;
use crate::domain::Flag;

const AE: u8 = 1 << (Flag::Ae as u8);
const CRISIS: u8 = 1 << (Flag::Crisis as u8);

/// What a set of mentions counts towards, or the difference a write made to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub open: i64,
    pub moderation: i64,
    pub ae_open: i64,
    pub crisis_open: i64,
    pub snoozed: i64,
    pub done: i64,
    pub ae: i64,
}

impl Tally {
    /// What one mention counts towards.
    pub fn of(state: &str, moderation: bool, flags: u8, in_ae_view: bool) -> Tally {
        let open = state == "open";
        let n = |b: bool| i64::from(b);
        Tally {
            open: n(open && !moderation),
            moderation: n(open && moderation),
            ae_open: n(open && flags & AE != 0),
            crisis_open: n(open && flags & CRISIS != 0),
            snoozed: n(state == "snoozed"),
            done: n(state == "done"),
            ae: n(in_ae_view),
        }
    }

    /// What the mention `id` counts towards now (nothing if there is no such mention).
    pub fn read(conn: &Connection, id: i64) -> Result<Tally> {
        Ok(conn
            .prepare_cached(
                "SELECT state, moderation, flags, ae_due_at IS NOT NULL FROM mentions WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok(Tally::of(
                    &r.get::<_, String>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            })
            .optional()?
            .unwrap_or_default())
    }

    /// Runs `write` on mention `id` and adds the difference it made to the counts.
    pub fn around<T>(conn: &Connection, id: i64, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let before = Tally::read(conn, id)?;
        let out = write()?;
        Tally::read(conn, id)?.minus(before).apply(conn)?;
        Ok(out)
    }

    pub fn add(&mut self, o: Tally) {
        self.open += o.open;
        self.moderation += o.moderation;
        self.ae_open += o.ae_open;
        self.crisis_open += o.crisis_open;
        self.snoozed += o.snoozed;
        self.done += o.done;
        self.ae += o.ae;
    }

    fn minus(mut self, o: Tally) -> Tally {
        self.open -= o.open;
        self.moderation -= o.moderation;
        self.ae_open -= o.ae_open;
        self.crisis_open -= o.crisis_open;
        self.snoozed -= o.snoozed;
        self.done -= o.done;
        self.ae -= o.ae;
        self
    }

    /// Adds this difference to the stored counts (nothing to write when it is zero).
    pub fn apply(&self, conn: &Connection) -> Result<()> {
        if *self == Tally::default() {
            return Ok(());
        }
        conn.prepare_cached(
            "UPDATE mention_counts SET open = open + ?1, moderation = moderation + ?2,
                 ae_open = ae_open + ?3, crisis_open = crisis_open + ?4, snoozed = snoozed + ?5,
                 done = done + ?6, ae = ae + ?7
             WHERE id = 1",
        )?
        .execute(params![
            self.open,
            self.moderation,
            self.ae_open,
            self.crisis_open,
            self.snoozed,
            self.done,
            self.ae
        ])?;
        Ok(())
    }

    /// The stored counts.
    pub fn stored(conn: &Connection) -> Result<Tally> {
        Ok(conn
            .prepare_cached(
                "SELECT open, moderation, ae_open, crisis_open, snoozed, done, ae
                 FROM mention_counts WHERE id = 1",
            )?
            .query_row([], |r| {
                Ok(Tally {
                    open: r.get(0)?,
                    moderation: r.get(1)?,
                    ae_open: r.get(2)?,
                    crisis_open: r.get(3)?,
                    snoozed: r.get(4)?,
                    done: r.get(5)?,
                    ae: r.get(6)?,
                })
            })
            .optional()?
            .unwrap_or_default())
    }

    /// The counts recounted from the mentions themselves (a whole-table walk, for tests).
    #[cfg(test)]
    pub fn recount(conn: &Connection) -> Result<Tally> {
        let mut total = Tally::default();
        let mut stmt = conn.prepare(
            "SELECT state, moderation, flags, ae_due_at IS NOT NULL, count(*) FROM mentions
             GROUP BY 1, 2, 3, 4",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let one = Tally::of(&r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let n: i64 = r.get(4)?;
            total.add(one.times(n));
        }
        Ok(total)
    }

    #[cfg(test)]
    fn times(mut self, n: i64) -> Tally {
        self.open *= n;
        self.moderation *= n;
        self.ae_open *= n;
        self.crisis_open *= n;
        self.snoozed *= n;
        self.done *= n;
        self.ae *= n;
        self
    }
}
