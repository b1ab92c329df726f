//! The review queue: custom drafts waiting for MLR, and their decisions, each audited.

use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{Result, Store, StoreError, append_audit, corrupt};
use crate::domain::audit::{AuditEntry, AuditRecord};
use crate::domain::{Draft, DraftState, MentionId};

const DRAFT_COLUMNS: &str = "id, mention_id, text, operator, created_at, state, approval, reply_id";

impl Store {
    /// Files a draft for review and audits it, in one transaction. Returns its id.
    pub fn add_draft(
        &mut self,
        mention: Option<MentionId>,
        text: &str,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<(i64, AuditEntry)> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO drafts (mention_id, text, operator, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![mention, text, audit.operator, now.unix_timestamp()],
            )?;
            let id = tx.last_insert_rowid();
            let mut audit = audit;
            audit.detail = Some(format!("draft {id}"));
            Ok((id, append_audit(tx, audit)?))
        })
    }

    pub fn draft(&self, id: i64) -> Result<Option<Draft>> {
        let sql = format!("SELECT {DRAFT_COLUMNS} FROM drafts WHERE id = ?1");
        Ok(self.conn.query_row(&sql, [id], row_to_draft).optional()?)
    }

    /// Drafts in a state (all when `None`), oldest first.
    pub fn drafts(&self, state: Option<DraftState>) -> Result<Vec<Draft>> {
        let sql = format!(
            "SELECT {DRAFT_COLUMNS} FROM drafts WHERE ?1 IS NULL OR state = ?1 ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([state.map(DraftState::as_str)], row_to_draft)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records MLR's decision on a waiting draft, audited. Refuses a draft already decided.
    pub fn decide_draft(
        &mut self,
        id: i64,
        state: DraftState,
        approval: Option<&str>,
        reply_id: Option<&str>,
        audit: AuditRecord,
        now: OffsetDateTime,
    ) -> Result<AuditEntry> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE drafts SET state = ?2, approval = ?3, reply_id = ?4, decided_at = ?5
                 WHERE id = ?1 AND state = 'draft'",
                params![id, state.as_str(), approval, reply_id, now.unix_timestamp()],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "draft {id} does not exist or was already decided (see `tonedesk review list`)"
                )));
            }
            append_audit(tx, audit)
        })
    }
}

fn row_to_draft(r: &Row<'_>) -> rusqlite::Result<Draft> {
    Ok(Draft {
        id: r.get(0)?,
        mention: r.get(1)?,
        text: r.get(2)?,
        operator: r.get(3)?,
        created_at: OffsetDateTime::from_unix_timestamp(r.get(4)?).map_err(corrupt)?,
        state: r.get::<_, String>(5)?.parse().map_err(corrupt)?,
        approval: r.get(6)?,
        reply_id: r.get(7)?,
    })
}
