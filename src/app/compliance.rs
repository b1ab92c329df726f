//! The compliance workflow on top of the desk: adverse-event intake and export, custom drafts for
//! MLR review and their approval into the library, snoozes and HCP follow-ups. Every step that
//! changes a record is audited in the same transaction as the change.

use std::path::PathBuf;

use time::{Date, Duration, OffsetDateTime};

use super::desk::{Desk, SendError};
use crate::domain::audit::AuditEntry;
use crate::domain::{
    AeCase, ChannelRule, Draft, DraftState, Flag, Mention, MentionId, TagSource, Tags, Tone,
};
use crate::store::{StoreError, StoredAeCase};

/// One AE for the safety team: the intake record when an operator saved one, else what the tags
/// pre-fill (marked as not confirmed).
#[derive(Debug, Clone)]
pub struct AeReport {
    pub case: AeCase,
    pub mention: Mention,
    /// An operator confirmed the record in the intake form.
    pub confirmed: bool,
    pub exported_at: Option<OffsetDateTime>,
}

/// What `library approve` needs besides the draft.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The new reply's id (letters, digits, '-', '_').
    pub reply_id: String,
    /// The MLR approval reference.
    pub reference: String,
    pub expires_on: Date,
    pub tones: Vec<Tone>,
    pub flags: Vec<Flag>,
    pub channel: ChannelRule,
}

impl Desk {
    /// The intake record of a mention: the stored one, or one pre-filled from its tags. The bool
    /// says whether it was stored.
    pub async fn ae_case(&self, mention: MentionId) -> Result<(AeCase, bool), SendError> {
        let hours = self.config.targets.ae_report_hours;
        Ok(self
            .store
            .call(move |s| {
                Ok(match s.ae_case(mention)? {
                    Some(stored) => (stored.case, true),
                    None => (AeCase::prefill(&s.mention(mention)?, hours), false),
                })
            })
            .await?)
    }

    /// Saves an intake record, audited as `ae_intake` the first time and `ae_edit` after. A
    /// mention the classifier did not flag is flagged first (audited as `ae_flag`).
    pub async fn save_ae_case(&self, case: AeCase) -> Result<AuditEntry, SendError> {
        let id = case.mention;
        let m = self.store.call(move |s| s.mention(id)).await?;
        if !m.tags.flags.contains(Flag::Ae) {
            let mut flags = m.tags.flags;
            flags.insert(Flag::Ae);
            let tags = Tags {
                flags,
                source: TagSource::Operator,
                ..m.tags.clone()
            };
            self.retag(id, tags).await?;
        }
        let existed = self.store.call(move |s| s.ae_case(id)).await?.is_some();
        let mut rec = self.record_about(if existed { "ae_edit" } else { "ae_intake" }, &m);
        rec.outcome = Some("ok".into());
        rec.text = Some(m.text.clone());
        rec.detail = Some(ae_detail(&case));
        let (_, entry) = self
            .store
            .call(move |s| s.save_ae_case(&case, rec, OffsetDateTime::now_utc()))
            .await?;
        Ok(entry)
    }

    /// Every AE for the safety team, by due time: saved intake records and flagged mentions not
    /// yet taken in. Marks the saved ones as exported and audits the export (`what` says where to).
    pub async fn ae_export(&self, what: &str) -> Result<Vec<AeReport>, SendError> {
        let hours = self.config.targets.ae_report_hours;
        let mut reports = self
            .store
            .call(move |s| {
                let stored: Vec<StoredAeCase> = s.ae_cases()?;
                let mut out = Vec::new();
                for sc in stored {
                    let mention = s.mention(sc.case.mention)?;
                    out.push(AeReport {
                        case: sc.case,
                        mention,
                        confirmed: true,
                        exported_at: sc.exported_at,
                    });
                }
                for m in s.all_mentions()? {
                    if m.tags.flags.contains(Flag::Ae) && !out.iter().any(|r| r.mention.id == m.id)
                    {
                        out.push(AeReport {
                            case: AeCase::prefill(&m, hours),
                            mention: m,
                            confirmed: false,
                            exported_at: None,
                        });
                    }
                }
                Ok(out)
            })
            .await?;
        reports.sort_by_key(|r| (r.case.due_at, r.mention.id));
        let confirmed: Vec<MentionId> = reports
            .iter()
            .filter(|r| r.confirmed)
            .map(|r| r.mention.id)
            .collect();
        let mut rec = self.record("ae_export");
        rec.outcome = Some("ok".into());
        rec.detail = Some(format!(
            "{} case(s), {} with a confirmed intake, {what}",
            reports.len(),
            confirmed.len()
        ));
        self.store
            .call(move |s| s.mark_ae_exported(&confirmed, rec, OffsetDateTime::now_utc()))
            .await?;
        Ok(reports)
    }

    /// Puts a mention aside until `until`; audited as `snooze`.
    pub async fn snooze(
        &self,
        mention: MentionId,
        until: OffsetDateTime,
    ) -> Result<AuditEntry, SendError> {
        self.put_aside(mention, until, "snooze").await
    }

    /// Sets a follow-up reminder for a healthcare professional's mention, `hcp_follow_up_days`
    /// from now; audited as `follow_up`. Returns when it comes back.
    pub async fn follow_up(
        &self,
        mention: MentionId,
    ) -> Result<(AuditEntry, OffsetDateTime), SendError> {
        let days = i64::from(self.config.targets.hcp_follow_up_days);
        let until = OffsetDateTime::now_utc() + Duration::days(days);
        let entry = self.put_aside(mention, until, "follow-up").await?;
        Ok((entry, until))
    }

    async fn put_aside(
        &self,
        mention: MentionId,
        until: OffsetDateTime,
        reason: &'static str,
    ) -> Result<AuditEntry, SendError> {
        let m = self.store.call(move |s| s.mention(mention)).await?;
        let action = if reason == "snooze" {
            "snooze"
        } else {
            "follow_up"
        };
        let mut rec = self.record_about(action, &m);
        rec.outcome = Some("ok".into());
        rec.detail = Some(format!("until {}", crate::domain::audit::format_utc(until)));
        Ok(self
            .store
            .call(move |s| s.snooze(mention, until, reason, rec))
            .await?)
    }

    /// Brings back snoozed mentions and follow-ups whose time has come.
    pub async fn wake(&self) -> Result<Vec<(MentionId, String)>, SendError> {
        Ok(self
            .store
            .call(|s| s.wake_snoozed(OffsetDateTime::now_utc()))
            .await?)
    }

    /// Files custom wording for MLR review (never sendable as it is); audited as `draft`. It may
    /// use the closed set of placeholders, but no prompt variables (review has no way to declare
    /// their bounds).
    pub async fn draft(
        &self,
        mention: Option<MentionId>,
        text: String,
    ) -> Result<(i64, AuditEntry), SendError> {
        check_draft(&text).map_err(StoreError::Conflict)?;
        let mut rec = match mention {
            Some(id) => {
                let m = self.store.call(move |s| s.mention(id)).await?;
                self.record_about("draft", &m)
            }
            None => self.record("draft"),
        };
        rec.outcome = Some("ok".into());
        rec.text = Some(text.clone());
        Ok(self
            .store
            .call(move |s| s.add_draft(mention, &text, rec, OffsetDateTime::now_utc()))
            .await?)
    }

    pub async fn drafts(&self, state: Option<DraftState>) -> Result<Vec<Draft>, SendError> {
        Ok(self.store.call(move |s| s.drafts(state)).await?)
    }

    /// Makes an approved draft a library reply: appends it to `approved.toml` in the library
    /// folder (checked by loading it back), then records the decision, audited as
    /// `draft_approve`. Returns the file written.
    pub async fn approve_draft(&self, id: i64, a: Approval) -> Result<PathBuf, SendError> {
        let draft = self
            .store
            .call(move |s| s.draft(id))
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!(
                    "no draft {id} (see `tonedesk review list` for the waiting drafts)"
                ))
            })?;
        if draft.state != DraftState::Draft {
            return Err(StoreError::Conflict(format!(
                "draft {id} was already {} (reply '{}')",
                draft.state,
                draft.reply_id.as_deref().unwrap_or("-")
            ))
            .into());
        }
        if self.library.get(&a.reply_id).is_some() {
            return Err(StoreError::Conflict(format!(
                "the library already has a reply '{}': choose another --id",
                a.reply_id
            ))
            .into());
        }
        let today = OffsetDateTime::now_utc().date();
        let file = self.paths.library_dir.join("approved.toml");
        super::library::append_approved(&file, &draft, &a, today)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut rec = self.record("draft_approve");
        rec.mention = draft.mention;
        rec.template = Some(a.reply_id.clone());
        rec.template_version = Some(1);
        rec.approval = Some(a.reference.clone());
        rec.text = Some(draft.text.clone());
        rec.outcome = Some("ok".into());
        rec.detail = Some(format!("draft {id}"));
        let (reference, reply_id) = (a.reference.clone(), a.reply_id.clone());
        self.store
            .call(move |s| {
                s.decide_draft(
                    id,
                    DraftState::Approved,
                    Some(&reference),
                    Some(&reply_id),
                    rec,
                    OffsetDateTime::now_utc(),
                )
            })
            .await?;
        Ok(file)
    }

    /// Turns a draft down; audited as `draft_reject` with the reason.
    pub async fn reject_draft(&self, id: i64, reason: &str) -> Result<AuditEntry, SendError> {
        let mut rec = self.record("draft_reject");
        rec.outcome = Some("ok".into());
        rec.detail = Some(format!("draft {id}: {reason}"));
        Ok(self
            .store
            .call(move |s| {
                s.decide_draft(
                    id,
                    DraftState::Rejected,
                    None,
                    None,
                    rec,
                    OffsetDateTime::now_utc(),
                )
            })
            .await?)
    }
}

/// A draft must read as a template of the closed placeholder set, without prompt variables.
pub fn check_draft(text: &str) -> Result<(), String> {
    use crate::domain::reply::{Segment, Slot, parse_template};
    let segments = parse_template(text).map_err(|e| {
        format!(
            "the draft does not read as a reply template: {e}; use {{author}} {{first_name}} {{agent}} {{signoff}} {{case}} {{contact.KEY}}, or {{{{ and }}}} for literal braces"
        )
    })?;
    if let Some(name) = segments.iter().find_map(|s| match s {
        Segment::Slot(Slot::Var(name)) => Some(name),
        _ => None,
    }) {
        return Err(format!(
            "the draft uses {{var.{name}}}: prompt variables need a declared length and pattern, so write the wording out (or ask MLR to add the variable in the library file)"
        ));
    }
    Ok(())
}

/// The record's content in one line, for the audit entry.
fn ae_detail(c: &AeCase) -> String {
    let parts: Vec<String> = c
        .elements()
        .iter()
        .map(|(name, e)| format!("{name}={} ({})", e.value, e.state))
        .collect();
    format!(
        "{}; due {}",
        parts.join("; "),
        crate::domain::audit::format_utc(c.due_at)
    )
}
