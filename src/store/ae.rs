//! Adverse-event intake records: one per mention, written and exported with their audit entries.

use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{Result, Store, StoreError, Tally, append_audit, corrupt};
use crate::domain::audit::{AuditEntry, AuditRecord};
use crate::domain::{AeCase, Element, MentionId};

const CASE_COLUMNS: &str = "mention_id, reporter, reporter_state, patient, patient_state, product, \
     product_state, reaction, reaction_state, verbatim, link, published_at, due_at, notes, exported_at";

/// A stored case and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAeCase {
    pub case: AeCase,
    /// When it was last exported for pharmacovigilance, if ever.
    pub exported_at: Option<OffsetDateTime>,
}

impl Store {
    /// Writes (or rewrites) the intake record of `case.mention`, keeps the AE clock on the mention
    /// in step, and audits it, in one transaction. Returns whether it was new.
    pub fn save_ae_case(
        &mut self,
        case: &AeCase,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<(bool, AuditEntry)> {
        self.write(|tx| {
            let exists: bool = tx
                .query_row(
                    "SELECT 1 FROM ae_cases WHERE mention_id = ?1",
                    [case.mention],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            let e = |e: &Element| (e.value.clone(), e.state.as_str());
            let (reporter, rs) = e(&case.reporter);
            let (patient, ps) = e(&case.patient);
            let (product, prs) = e(&case.product);
            let (reaction, res) = e(&case.reaction);
            tx.execute(
                "INSERT INTO ae_cases (mention_id, reporter, reporter_state, patient, patient_state,
                     product, product_state, reaction, reaction_state, verbatim, link, published_at,
                     due_at, notes, operator, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)
                 ON CONFLICT (mention_id) DO UPDATE SET reporter = excluded.reporter,
                     reporter_state = excluded.reporter_state, patient = excluded.patient,
                     patient_state = excluded.patient_state, product = excluded.product,
                     product_state = excluded.product_state, reaction = excluded.reaction,
                     reaction_state = excluded.reaction_state, due_at = excluded.due_at,
                     notes = excluded.notes, updated_at = excluded.updated_at",
                params![
                    case.mention,
                    reporter,
                    rs,
                    patient,
                    ps,
                    product,
                    prs,
                    reaction,
                    res,
                    case.verbatim,
                    case.link,
                    case.published_at.unix_timestamp(),
                    case.due_at.unix_timestamp(),
                    case.notes,
                    audit.operator,
                    now.unix_timestamp(),
                ],
            )?;
            let n = Tally::around(tx, case.mention, || {
                Ok(tx.execute(
                    "UPDATE mentions SET ae_due_at = ?2 WHERE id = ?1",
                    params![case.mention, case.due_at.unix_timestamp()],
                )?)
            })?;
            if n == 0 {
                return Err(StoreError::NoMention(case.mention));
            }
            Ok((!exists, append_audit(tx, audit)?))
        })
    }

    pub fn ae_case(&self, mention: MentionId) -> Result<Option<StoredAeCase>> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM ae_cases WHERE mention_id = ?1");
        Ok(self
            .conn
            .query_row(&sql, [mention], row_to_case)
            .optional()?)
    }

    /// Every intake record, by due time (for `ae export`).
    pub fn ae_cases(&self) -> Result<Vec<StoredAeCase>> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM ae_cases ORDER BY due_at, mention_id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], row_to_case)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks cases as exported to pharmacovigilance and audits the export, in one transaction.
    pub fn mark_ae_exported(
        &mut self,
        mentions: &[MentionId],
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<AuditEntry> {
        self.write(|tx| {
            let mut stmt =
                tx.prepare_cached("UPDATE ae_cases SET exported_at = ?2 WHERE mention_id = ?1")?;
            // The mention keeps a copy, for the AE view's index.
            let mut reported =
                tx.prepare_cached("UPDATE mentions SET ae_reported = 1 WHERE id = ?1")?;
            for m in mentions {
                if stmt.execute(params![m, now.unix_timestamp()])? == 1 {
                    reported.execute([m])?;
                }
            }
            append_audit(tx, audit)
        })
    }
}

fn row_to_case(r: &Row<'_>) -> rusqlite::Result<StoredAeCase> {
    let el = |v: usize, s: usize| -> rusqlite::Result<Element> {
        Ok(Element {
            value: r.get(v)?,
            state: r.get::<_, String>(s)?.parse().map_err(corrupt)?,
        })
    };
    let time = |i: usize| -> rusqlite::Result<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(r.get(i)?).map_err(corrupt)
    };
    Ok(StoredAeCase {
        case: AeCase {
            mention: r.get(0)?,
            reporter: el(1, 2)?,
            patient: el(3, 4)?,
            product: el(5, 6)?,
            reaction: el(7, 8)?,
            verbatim: r.get(9)?,
            link: r.get(10)?,
            published_at: time(11)?,
            due_at: time(12)?,
            notes: r.get(13)?,
        },
        exported_at: r
            .get::<_, Option<i64>>(14)?
            .map(OffsetDateTime::from_unix_timestamp)
            .transpose()
            .map_err(corrupt)?,
    })
}
