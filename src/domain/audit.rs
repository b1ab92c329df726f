//! Audit entries and their hash chain (DESIGN §3).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The hash that the first entry links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry records. Fields that do not apply are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, second precision or finer, as stored.
    pub at: String,
    pub operator: String,
    /// `send_intent`, `send_result`, `like`, `hide`, `block`, `mute`, `report`, `retag`, `ae_flag`,
    /// `done`, `crisis_on`, `crisis_off`…
    pub action: String,
    pub platform: Option<String>,
    pub account: Option<String>,
    pub mention: Option<i64>,
    pub template: Option<String>,
    pub template_version: Option<u32>,
    pub approval: Option<String>,
    pub channel: Option<String>,
    pub text: Option<String>,
    /// `sent`, `failed`, `unknown`, `ok`, `intent`…
    pub outcome: Option<String>,
    pub remote_id: Option<String>,
    /// Free-form detail (an error message, the old and new tags of a retag).
    pub detail: Option<String>,
}

impl AuditRecord {
    pub fn new(at: OffsetDateTime, operator: &str, action: &str) -> Self {
        AuditRecord {
            at: format_utc(at),
            operator: operator.to_owned(),
            action: action.to_owned(),
            ..AuditRecord::default()
        }
    }
}

/// Formats a time as RFC 3339 in UTC.
pub fn format_utc(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A record in its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash of an entry: SHA-256 over its sequence number, the previous hash and a canonical
/// JSON of the record (fields in declaration order), hex.
pub fn entry_hash(seq: i64, prev_hash: &str, record: &AuditRecord) -> String {
    let mut h = Sha256::new();
    h.update(b"tonedesk-audit-v1\n");
    h.update(seq.to_string().as_bytes());
    h.update(b"\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    // Serializing a plain struct of strings and numbers cannot fail.
    h.update(serde_json::to_vec(record).unwrap_or_default());
    hex::encode(h.finalize())
}

impl AuditEntry {
    pub fn chain(seq: i64, prev_hash: &str, record: AuditRecord) -> Self {
        let hash = entry_hash(seq, prev_hash, &record);
        AuditEntry {
            seq,
            record,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// The first place the chain breaks, in words that name the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {seq}: its content does not match its hash (edited after it was written)")]
    Edited { seq: i64 },
    #[error(
        "entry {seq}: it does not link to entry {prev} before it (deleted, inserted or reordered)"
    )]
    Unlinked { seq: i64, prev: i64 },
    #[error(
        "entry {seq}: expected sequence number {expected} (an entry is missing or out of order)"
    )]
    Gap { seq: i64, expected: i64 },
    #[error("entry {seq}: the first entry must link to the genesis hash")]
    BadStart { seq: i64 },
}

/// Walks entries in sequence order and reports the first break.
pub fn verify_chain<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
) -> Result<u64, ChainBreak> {
    let mut prev: Option<&AuditEntry> = None;
    let mut count = 0;
    for e in entries {
        match prev {
            None => {
                if e.seq != 1 {
                    return Err(ChainBreak::Gap {
                        seq: e.seq,
                        expected: 1,
                    });
                }
                if e.prev_hash != GENESIS {
                    return Err(ChainBreak::BadStart { seq: e.seq });
                }
            }
            Some(p) => {
                if e.seq != p.seq + 1 {
                    return Err(ChainBreak::Gap {
                        seq: e.seq,
                        expected: p.seq + 1,
                    });
                }
                if e.prev_hash != p.hash {
                    return Err(ChainBreak::Unlinked {
                        seq: e.seq,
                        prev: p.seq,
                    });
                }
            }
        }
        if entry_hash(e.seq, &e.prev_hash, &e.record) != e.hash {
            return Err(ChainBreak::Edited { seq: e.seq });
        }
        prev = Some(e);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
            let mut r = AuditRecord::new(OffsetDateTime::UNIX_EPOCH, "op", "like");
            r.mention = Some(seq);
            out.push(AuditEntry::chain(seq, &prev, r));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(5));
        assert_eq!(verify_chain(&[]), Ok(0));
    }

    #[test]
    fn edits_deletions_and_reorders_are_found() {
        let mut c = chain(5);
        c[2].record.text = Some("changed".into());
        assert_eq!(verify_chain(&c), Err(ChainBreak::Edited { seq: 3 }));

        let mut c = chain(5);
        c.remove(2);
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak::Gap {
                seq: 4,
                expected: 3
            })
        );

        let mut c = chain(5);
        c.swap(1, 2);
        assert!(verify_chain(&c).is_err());

        // Renumbering after a deletion still breaks the link.
        let mut c = chain(5);
        c.remove(2);
        c[2].seq = 3;
        c[3].seq = 4;
        assert_eq!(
            verify_chain(&c),
            Err(ChainBreak::Unlinked { seq: 3, prev: 2 })
        );

        let mut c = chain(2);
        c.remove(0);
        assert!(verify_chain(&c).is_err());
    }
}
