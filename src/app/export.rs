//! Machine-readable forms of mentions, audit entries and AE cases (the contract of DESIGN §6).

use serde_json::{Value, json};

use time::OffsetDateTime;

use super::compliance::AeReport;
use super::desk::case_number;
use crate::domain::Mention;
use crate::domain::audit::{AuditEntry, format_utc};

/// A mention as `queue --json` prints it.
pub fn mention_json(m: &Mention) -> Value {
    json!({
        "id": m.id,
        "platform": m.platform.as_str(),
        "account": m.account,
        "remote_id": m.remote_id,
        "author": m.author.handle,
        "author_name": m.author.display_name,
        "text": m.text,
        "created_at": format_utc(m.created_at),
        "tone": m.tags.tone.as_str(),
        "flags": m.tags.flags,
        "confidence": (f64::from(m.tags.confidence) * 1000.0).round() / 1000.0,
        "reasons": m.tags.reasons,
        "tag_source": match m.tags.source {
            crate::domain::TagSource::Classifier => "classifier",
            crate::domain::TagSource::Operator => "operator",
        },
        "state": m.state.as_str(),
        "due_at": format_utc(m.due_at),
        "private": m.private,
        "in_reply_to": m.in_reply_to,
        "url": m.url,
    })
}

/// The columns of `audit export`, in order. `host` and `attempt` came later and go last, so
/// readers that go by position keep working.
pub const AUDIT_COLUMNS: [&str; 19] = [
    "seq",
    "at",
    "operator",
    "action",
    "platform",
    "account",
    "mention",
    "template",
    "template_version",
    "approval",
    "channel",
    "text",
    "outcome",
    "remote_id",
    "detail",
    "prev_hash",
    "hash",
    "host",
    "attempt",
];

pub fn audit_json(e: &AuditEntry) -> Value {
    let r = &e.record;
    json!({
        "seq": e.seq,
        "at": r.at,
        "operator": r.operator,
        "action": r.action,
        "platform": r.platform,
        "account": r.account,
        "mention": r.mention,
        "template": r.template,
        "template_version": r.template_version,
        "approval": r.approval,
        "channel": r.channel,
        "text": r.text,
        "outcome": r.outcome,
        "remote_id": r.remote_id,
        "detail": r.detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
        "host": r.host,
        "attempt": r.attempt,
    })
}

/// One CSV record (RFC 4180 quoting) of a JSON object's fields, in the given column order.
pub fn csv_record(obj: &Value, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| match &obj[*c] {
            Value::Null => String::new(),
            Value::String(s) => csv_field(s),
            other => csv_field(&other.to_string()),
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The columns of `ae export`: the case, the four minimum elements with their state, the verbatim
/// text, the clock, and where the record stands.
pub const AE_COLUMNS: [&str; 24] = [
    "case",
    "mention",
    "platform",
    "account",
    "url",
    "reporter",
    "reporter_state",
    "patient",
    "patient_state",
    "product",
    "product_state",
    "reaction",
    "reaction_state",
    "valid_case",
    "missing",
    "verbatim",
    "published_at",
    "report_due_at",
    "overdue",
    "intake",
    "flagged_by",
    "notes",
    "state",
    "previously_exported_at",
];

/// One AE case for pharmacovigilance, as `ae export` writes it.
pub fn ae_json(r: &AeReport, now: OffsetDateTime) -> Value {
    let c = &r.case;
    let m = &r.mention;
    json!({
        "case": case_number(m.id),
        "mention": m.id,
        "platform": m.platform.as_str(),
        "account": m.account,
        "url": m.url,
        "reporter": c.reporter.value,
        "reporter_state": c.reporter.state.as_str(),
        "patient": c.patient.value,
        "patient_state": c.patient.state.as_str(),
        "product": c.product.value,
        "product_state": c.product.state.as_str(),
        "reaction": c.reaction.value,
        "reaction_state": c.reaction.state.as_str(),
        "valid_case": c.complete(),
        "missing": c.gaps().join(" "),
        "verbatim": c.verbatim,
        "published_at": format_utc(c.published_at),
        "report_due_at": format_utc(c.due_at),
        "overdue": c.overdue(now),
        "intake": if r.confirmed { "confirmed" } else { "from tags, not confirmed" },
        "flagged_by": match m.tags.source {
            crate::domain::TagSource::Classifier => "classifier",
            crate::domain::TagSource::Operator => "operator",
        },
        "notes": c.notes,
        "state": m.state.as_str(),
        "previously_exported_at": r.exported_at.map(format_utc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Flag;
    use crate::domain::reply::tests::mention;

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
        let v = json!({"a": "x,y", "b": null, "c": 3});
        assert_eq!(csv_record(&v, &["a", "b", "c"]), "\"x,y\",,3");
    }

    #[test]
    fn json_forms_carry_the_contract_fields() {
        let m = mention(&[Flag::Ae]);
        let j = mention_json(&m);
        for k in [
            "id",
            "platform",
            "account",
            "remote_id",
            "author",
            "text",
            "created_at",
            "tone",
            "flags",
            "state",
            "url",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["flags"], json!(["ae"]));
        assert_eq!(j["created_at"], "2026-06-01T10:00:00Z");
        let report = AeReport {
            case: crate::domain::AeCase::prefill(&m, 24),
            mention: m.clone(),
            confirmed: false,
            exported_at: None,
        };
        let ae = ae_json(&report, m.created_at);
        assert_eq!(ae["report_due_at"], "2026-06-02T10:00:00Z");
        assert_eq!(ae["overdue"], false);
        assert_eq!(ae["missing"], "patient product reaction");
        for col in AE_COLUMNS {
            assert!(ae.get(col).is_some(), "{col}");
        }
        let mut r = crate::domain::audit::AuditRecord::new(m.created_at, "Jamie Rivera", "like");
        r.host = Some("desk-01".into());
        let e = AuditEntry::chain(1, crate::domain::audit::GENESIS, r);
        let j = audit_json(&e);
        for k in AUDIT_COLUMNS {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["host"], "desk-01");
        assert_eq!(j["attempt"], Value::Null);
        assert!(csv_record(&j, &AUDIT_COLUMNS).ends_with(",desk-01,"));
    }
}
