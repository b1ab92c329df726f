//! The inputs of the desk's figures (`tonedesk stats` and the console's stats screen): the
//! mentions a window needs and the audit entries that answered them. Only reading happens here;
//! the arithmetic is in `app::stats`, which takes these plain rows.

use rusqlite::params;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Result, Store, StoreError, corrupt, from_unix};
use crate::domain::{Flag, Flags, MentionId, Tone};

/// One mention as the figures see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatRow {
    pub id: MentionId,
    pub created_at: OffsetDateTime,
    /// `created_at` + the first-response target of its tone (AE: the AE target).
    pub due_at: OffsetDateTime,
    pub tone: Tone,
    pub ae: bool,
    /// Still waiting (state `open` or `snoozed`), as opposed to done.
    pub open: bool,
}

/// What an audit entry did for a mention, as far as the figures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatEventKind {
    /// `send_result` with outcome `sent`.
    Reply,
    /// `hide`, `block`, `mute` or `report` with outcome `ok`.
    Moderation,
    /// `ae_flag` or `ae_intake`.
    AeIntake,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatEvent {
    pub mention: MentionId,
    pub at: OffsetDateTime,
    pub kind: StatEventKind,
}

/// The mentions the figures of a window starting at `?1` need: created in it, still waiting
/// (whatever their age), or closed in it (their first response may fall in the window). Each
/// branch has its index (`mentions_created`, `mentions_queue`, `mentions_done`).
const WINDOW_MENTIONS: &str = "created_at >= ?1 OR state IN ('open', 'snoozed') \
     OR (state = 'done' AND done_at >= ?1)";

impl Store {
    /// The rows and audit events for the figures of the window from `since` to now: the mentions
    /// created in the window, still open, or closed in it, and every answering audit entry of those
    /// mentions (whenever it was written, so an old open mention hidden long ago still counts as
    /// answered). Read in one transaction, so both halves see the same moment.
    pub fn stat_inputs(&self, since: OffsetDateTime) -> Result<(Vec<StatRow>, Vec<StatEvent>)> {
        let tx = self.conn.unchecked_transaction()?;
        let since = since.unix_timestamp();
        let ae = Flags::from_iter([Flag::Ae]).bits();
        let rows = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id, created_at, due_at, tone, flags, state FROM mentions
                 WHERE {WINDOW_MENTIONS} ORDER BY id"
            ))?;
            stmt.query_map(params![since], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u8>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?
            .map(|row| {
                let (id, created, due, tone, flags, state) = row?;
                Ok(StatRow {
                    id,
                    created_at: from_unix(created)?,
                    due_at: from_unix(due)?,
                    tone: tone.parse().map_err(corrupt)?,
                    ae: flags & ae != 0,
                    open: state != "done",
                })
            })
            .collect::<Result<Vec<_>>>()?
        };
        let events = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT mention, at, action FROM audit
                 WHERE mention IN (SELECT id FROM mentions WHERE {WINDOW_MENTIONS})
                   AND ((action = 'send_result' AND outcome = 'sent')
                     OR (action IN ('hide', 'block', 'mute', 'report') AND outcome = 'ok')
                     OR action IN ('ae_flag', 'ae_intake'))
                 ORDER BY seq"
            ))?;
            stmt.query_map(params![since], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .map(|row| {
                let (mention, at, action) = row?;
                let at = OffsetDateTime::parse(&at, &Rfc3339)
                    .map_err(|e| StoreError::Corrupt(format!("audit time '{at}': {e}")))?;
                let kind = match action.as_str() {
                    "send_result" => StatEventKind::Reply,
                    "ae_flag" | "ae_intake" => StatEventKind::AeIntake,
                    _ => StatEventKind::Moderation,
                };
                Ok(StatEvent { mention, at, kind })
            })
            .collect::<Result<Vec<_>>>()?
        };
        Ok((rows, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::AuditRecord;
    use crate::domain::playbook::{Targets, tags_of};
    use crate::domain::{Author, IncomingMention, MentionState, Platform};
    use time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn incoming(id: &str, minutes_ago: i64) -> IncomingMention {
        IncomingMention {
            platform: Platform::X,
            account: "demo-x".into(),
            remote_id: id.into(),
            author: Author {
                handle: format!("user{id}"),
                display_name: String::new(),
                bio: String::new(),
            },
            text: format!("mention {id}"),
            created_at: NOW - Duration::minutes(minutes_ago),
            url: None,
            in_reply_to: None,
            parent_text: None,
            reply_ref: None,
            private: false,
        }
    }

    fn entry(s: &mut Store, mention: MentionId, at: OffsetDateTime, action: &str, outcome: &str) {
        let mut r = AuditRecord::new(at, "op", action);
        r.mention = Some(mention);
        r.outcome = Some(outcome.into());
        s.audit(r).unwrap();
    }

    #[test]
    fn reads_the_window_and_the_answering_entries() {
        let mut s = Store::open_in_memory().unwrap();
        s.upsert_account("demo-x", Platform::X, "acmecare", true)
            .unwrap();
        let day = 24 * 60;
        let items = vec![
            (incoming("new", 30), tags_of(Tone::Complaint, &[])),
            (incoming("ae", 90), tags_of(Tone::Neutral, &[Flag::Ae])),
            (incoming("old-open", 10 * day), tags_of(Tone::Troll, &[])),
            (incoming("old-done", 10 * day), tags_of(Tone::Positive, &[])),
            (
                incoming("old-closed-now", 9 * day),
                tags_of(Tone::Neutral, &[]),
            ),
        ];
        s.ingest(&items, &Targets::default(), None, NOW).unwrap();
        let id = |remote: &str| {
            s.all_mentions()
                .unwrap()
                .into_iter()
                .find(|m| m.remote_id == remote)
                .unwrap()
                .id
        };
        let (new, ae, old_open, old_done, closed_now) = (
            id("new"),
            id("ae"),
            id("old-open"),
            id("old-done"),
            id("old-closed-now"),
        );
        s.set_state(
            old_done,
            MentionState::Done,
            AuditRecord::new(NOW, "op", "done"),
            NOW - Duration::days(9),
        )
        .unwrap();
        s.set_state(
            closed_now,
            MentionState::Done,
            AuditRecord::new(NOW, "op", "done"),
            NOW - Duration::hours(1),
        )
        .unwrap();

        entry(
            &mut s,
            new,
            NOW - Duration::minutes(20),
            "send_intent",
            "intent",
        );
        entry(
            &mut s,
            new,
            NOW - Duration::minutes(20),
            "send_result",
            "failed",
        );
        entry(
            &mut s,
            new,
            NOW - Duration::minutes(10),
            "send_result",
            "sent",
        );
        entry(&mut s, ae, NOW - Duration::minutes(60), "ae_flag", "ok");
        entry(&mut s, ae, NOW - Duration::minutes(50), "ae_intake", "ok");
        entry(&mut s, ae, NOW - Duration::minutes(40), "retag", "ok");
        // Answered long before the window, and still open: the entry is read all the same.
        entry(&mut s, old_open, NOW - Duration::days(9), "hide", "ok");
        entry(&mut s, old_open, NOW - Duration::days(9), "block", "failed");
        entry(&mut s, old_done, NOW - Duration::days(9), "like", "ok");

        let (rows, events) = s.stat_inputs(NOW - Duration::days(7)).unwrap();
        let ids: Vec<MentionId> = rows.iter().map(|r| r.id).collect();
        assert_eq!(ids, [new, ae, old_open, closed_now], "{rows:?}");
        let ae_row = &rows[1];
        assert!(ae_row.ae && ae_row.open);
        assert_eq!(ae_row.due_at - ae_row.created_at, Duration::minutes(60));
        assert!(!rows[3].open);

        let got: Vec<(MentionId, StatEventKind, OffsetDateTime)> =
            events.iter().map(|e| (e.mention, e.kind, e.at)).collect();
        assert_eq!(
            got,
            [
                (new, StatEventKind::Reply, NOW - Duration::minutes(10)),
                (ae, StatEventKind::AeIntake, NOW - Duration::minutes(60)),
                (ae, StatEventKind::AeIntake, NOW - Duration::minutes(50)),
                (old_open, StatEventKind::Moderation, NOW - Duration::days(9)),
            ]
        );
    }

    #[test]
    fn the_queries_use_indexes() {
        let s = Store::open_in_memory().unwrap();
        for sql in [
            format!("SELECT id FROM mentions WHERE {WINDOW_MENTIONS}"),
            format!(
                "SELECT at FROM audit WHERE mention IN (SELECT id FROM mentions WHERE {WINDOW_MENTIONS})"
            ),
        ] {
            let mut stmt = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map([0], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN")),
                "{sql}: {plan:?}"
            );
        }
    }
}
