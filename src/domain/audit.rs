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
    /// The machine the entry was written on. `None` only in entries written before hosts were
    /// recorded: a field that is `None` is left out of the hashed form, so those entries keep
    /// the hash they were written with, and one that is set is covered by the hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The send attempt (the outbox's idempotency key) a `send_intent` opens and its
    /// `send_result` closes; `None` in other entries and in sends written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
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
    #[error(
        "entry {seq}: missing: the log ends at entry {last} but its recorded head is entry {head} (entries were cut from the end)"
    )]
    Truncated { seq: i64, last: i64, head: i64 },
    #[error(
        "entry {seq}: it is not the entry the log's recorded head names (the last entry was replaced)"
    )]
    NotHead { seq: i64 },
    #[error(
        "entry {seq}: it comes after the log's recorded head, entry {head} (written outside tonedesk)"
    )]
    PastHead { seq: i64, head: i64 },
    #[error("entry {seq}: the log's recorded head is missing or unreadable (removed or edited)")]
    NoHead { seq: i64 },
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

/// The newest entry of the log as recorded beside it (the store keeps it in the same transaction
/// as each append). The chain alone cannot tell a log whose last entries were deleted from a
/// shorter one; the head can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

impl AuditHead {
    pub fn of(e: &AuditEntry) -> Self {
        AuditHead {
            seq: e.seq,
            hash: e.hash.clone(),
        }
    }

    /// The stored form, `SEQ HASH`.
    pub fn to_setting(&self) -> String {
        format!("{} {}", self.seq, self.hash)
    }

    pub fn parse(s: &str) -> Option<AuditHead> {
        let (seq, hash) = s.trim().split_once(' ')?;
        Some(AuditHead {
            seq: seq.parse().ok()?,
            hash: hash.to_owned(),
        })
    }
}

/// [`verify_chain`], then the last entry against the recorded head: finds edits, deletions and
/// reorderings anywhere, and entries cut from the end. `head` is `None` when none is recorded,
/// which only an empty log may be.
pub fn verify_log(entries: &[AuditEntry], head: Option<&AuditHead>) -> Result<u64, ChainBreak> {
    let n = verify_chain(entries)?;
    let last = entries.last();
    match (last, head) {
        (None, None) => {}
        (Some(l), None) => return Err(ChainBreak::NoHead { seq: l.seq }),
        (None, Some(h)) => {
            return Err(ChainBreak::Truncated {
                seq: 1,
                last: 0,
                head: h.seq,
            });
        }
        (Some(l), Some(h)) if l.seq < h.seq => {
            return Err(ChainBreak::Truncated {
                seq: l.seq + 1,
                last: l.seq,
                head: h.seq,
            });
        }
        (Some(l), Some(h)) if l.seq > h.seq => {
            return Err(ChainBreak::PastHead {
                seq: h.seq + 1,
                head: h.seq,
            });
        }
        (Some(l), Some(h)) if l.hash != h.hash => return Err(ChainBreak::NotHead { seq: l.seq }),
        (Some(_), Some(_)) => {}
    }
    Ok(n)
}

/// A send whose intent and result do not pair up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendGap {
    /// The entry that has no partner.
    pub seq: i64,
    pub mention: Option<i64>,
    pub attempt: Option<String>,
    pub kind: SendGapKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendGapKind {
    /// A `send_intent` with no later `send_result`.
    Unanswered,
    /// A `send_result` with no earlier `send_intent`.
    Orphan,
}

impl std::fmt::Display for SendGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mention = self
            .mention
            .map_or("an unnamed mention".to_owned(), |m| format!("mention {m}"));
        match self.kind {
            SendGapKind::Unanswered => write!(
                f,
                "entry {}: the send_intent to {mention} has no send_result. Either tonedesk \
                 stopped between writing the intent and hearing the platform (the reply may or may \
                 not have been posted), or another tonedesk is sending it right now (then this \
                 clears once that send finishes). Fix: run `tonedesk poll --once` or open the \
                 console: unfinished sends are reconciled at start",
                self.seq
            ),
            SendGapKind::Orphan => write!(
                f,
                "entry {}: the send_result to {mention} answers no send_intent before it (its \
                 intent was deleted or moved after it)",
                self.seq
            ),
        }
    }
}

/// Pairs every `send_intent` with the `send_result` (outcome sent, failed or unknown) of the same
/// attempt after it, and returns what does not pair, in sequence order. Entries written before
/// attempts were recorded pair by mention, first intent with first result.
pub fn send_gaps(entries: &[AuditEntry]) -> Vec<SendGap> {
    use std::collections::{BTreeMap, VecDeque};
    let gap = |e: &AuditEntry, kind| SendGap {
        seq: e.seq,
        mention: e.record.mention,
        attempt: e.record.attempt.clone(),
        kind,
    };
    let mut open: BTreeMap<&str, &AuditEntry> = BTreeMap::new();
    let mut legacy: BTreeMap<Option<i64>, VecDeque<&AuditEntry>> = BTreeMap::new();
    let mut gaps = Vec::new();
    for e in entries {
        let r = &e.record;
        match r.action.as_str() {
            "send_intent" => match r.attempt.as_deref() {
                Some(a) => {
                    // Attempt keys are unique; a repeated one leaves the earlier intent open.
                    if let Some(earlier) = open.insert(a, e) {
                        gaps.push(gap(earlier, SendGapKind::Unanswered));
                    }
                }
                None => legacy.entry(r.mention).or_default().push_back(e),
            },
            "send_result"
                if matches!(r.outcome.as_deref(), Some("sent" | "failed" | "unknown")) =>
            {
                let paired = r
                    .attempt
                    .as_deref()
                    .and_then(|a| open.remove(a))
                    .or_else(|| {
                        // An intent written before attempts were recorded, settled after.
                        legacy.get_mut(&r.mention).and_then(VecDeque::pop_front)
                    });
                if paired.is_none() {
                    gaps.push(gap(e, SendGapKind::Orphan));
                }
            }
            _ => {}
        }
    }
    let left = open.into_values().chain(legacy.into_values().flatten());
    gaps.extend(left.map(|e| gap(e, SendGapKind::Unanswered)));
    gaps.sort_by_key(|g| g.seq);
    gaps
}

/// The intents that no result answers (see [`send_gaps`]).
pub fn unanswered_intents(entries: &[AuditEntry]) -> Vec<SendGap> {
    send_gaps(entries)
        .into_iter()
        .filter(|g| g.kind == SendGapKind::Unanswered)
        .collect()
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

    /// A record as written before hosts and attempts were recorded.
    fn sent_record() -> AuditRecord {
        AuditRecord {
            at: "2026-06-01T12:00:00Z".into(),
            operator: "Jamie Rivera".into(),
            action: "send_result".into(),
            platform: Some("mastodon".into()),
            account: Some("care-mastodon".into()),
            mention: Some(7),
            template: Some("thanks-short".into()),
            template_version: Some(1),
            approval: Some("MLR-2026-0142".into()),
            channel: Some("public".into()),
            text: Some("Thank you Maria!".into()),
            outcome: Some("sent".into()),
            remote_id: Some("7001".into()),
            detail: None,
            host: None,
            attempt: None,
        }
    }

    #[test]
    fn entries_written_before_hosts_keep_their_hash() {
        // The record type as it was (v1), hashed the v1 way.
        #[derive(Serialize)]
        struct V1<'a> {
            at: &'a str,
            operator: &'a str,
            action: &'a str,
            platform: Option<&'a str>,
            account: Option<&'a str>,
            mention: Option<i64>,
            template: Option<&'a str>,
            template_version: Option<u32>,
            approval: Option<&'a str>,
            channel: Option<&'a str>,
            text: Option<&'a str>,
            outcome: Option<&'a str>,
            remote_id: Option<&'a str>,
            detail: Option<&'a str>,
        }
        let r = sent_record();
        let v1 = V1 {
            at: &r.at,
            operator: &r.operator,
            action: &r.action,
            platform: r.platform.as_deref(),
            account: r.account.as_deref(),
            mention: r.mention,
            template: r.template.as_deref(),
            template_version: r.template_version,
            approval: r.approval.as_deref(),
            channel: r.channel.as_deref(),
            text: r.text.as_deref(),
            outcome: r.outcome.as_deref(),
            remote_id: r.remote_id.as_deref(),
            detail: r.detail.as_deref(),
        };
        let mut h = Sha256::new();
        h.update(format!("tonedesk-audit-v1\n3\n{GENESIS}\n"));
        h.update(serde_json::to_vec(&v1).unwrap());
        let v1_hash = hex::encode(h.finalize());
        assert_eq!(entry_hash(3, GENESIS, &r), v1_hash);
        // The same figure computed outside Rust (Python's hashlib and json), so a change of the
        // hashed form cannot slip through by changing both sides of the comparison above.
        assert_eq!(
            v1_hash,
            "6bf28b2d3b051cb44543a68b23ecc894fb1373b90ffce8372ba3ca07f0f323e7"
        );

        // A host, once written, is covered: changing or dropping it breaks the entry.
        let mut with_host = r.clone();
        with_host.host = Some("desk-01".into());
        with_host.attempt = Some("3lk2a7xq2cs2d".into());
        let e = AuditEntry::chain(1, GENESIS, with_host);
        assert_ne!(e.hash, entry_hash(1, GENESIS, &r));
        let changes: [fn(&mut AuditRecord); 3] = [
            |r| r.host = Some("desk-02".into()),
            |r| r.host = None,
            |r| r.attempt = None,
        ];
        for change in changes {
            let mut bad = e.clone();
            change(&mut bad.record);
            assert_eq!(verify_chain([&bad]), Err(ChainBreak::Edited { seq: 1 }));
        }
    }

    #[test]
    fn the_head_catches_a_cut_tail() {
        let c = chain(5);
        let head = AuditHead::of(&c[4]);
        assert_eq!(AuditHead::parse(&head.to_setting()), Some(head.clone()));
        assert_eq!(AuditHead::parse("x y"), None);
        assert_eq!(verify_log(&c, Some(&head)), Ok(5));
        assert_eq!(verify_log(&[], None), Ok(0));

        let cut = &c[..3];
        assert_eq!(verify_chain(cut), Ok(3), "the chain alone cannot tell");
        let err = verify_log(cut, Some(&head)).unwrap_err();
        assert_eq!(
            err,
            ChainBreak::Truncated {
                seq: 4,
                last: 3,
                head: 5
            }
        );
        assert!(err.to_string().starts_with("entry 4: missing"), "{err}");
        assert!(matches!(
            verify_log(&[], Some(&head)),
            Err(ChainBreak::Truncated { seq: 1, .. })
        ));
        assert_eq!(verify_log(&c, None), Err(ChainBreak::NoHead { seq: 5 }));
        let stale = AuditHead::of(&c[3]);
        assert_eq!(
            verify_log(&c, Some(&stale)),
            Err(ChainBreak::PastHead { seq: 5, head: 4 })
        );
        // The last entry replaced by another that chains correctly.
        let mut other = c.clone();
        let mut r = other[4].record.clone();
        r.action = "block".into();
        other[4] = AuditEntry::chain(5, &other[3].hash, r);
        assert_eq!(verify_chain(&other), Ok(5));
        assert_eq!(
            verify_log(&other, Some(&head)),
            Err(ChainBreak::NotHead { seq: 5 })
        );
    }

    fn log(items: &[(&str, Option<&str>, Option<&str>, i64)]) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for (i, (action, outcome, attempt, mention)) in items.iter().enumerate() {
            let prev = out.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
            let mut r = AuditRecord::new(OffsetDateTime::UNIX_EPOCH, "op", action);
            r.outcome = outcome.map(str::to_owned);
            r.attempt = attempt.map(str::to_owned);
            r.mention = Some(*mention);
            out.push(AuditEntry::chain(i as i64 + 1, &prev, r));
        }
        out
    }

    #[test]
    fn every_intent_needs_a_later_result_of_the_same_attempt() {
        let ok = log(&[
            ("send_intent", Some("intent"), Some("a"), 1),
            ("like", Some("ok"), None, 2),
            ("send_intent", Some("intent"), Some("b"), 2),
            ("send_result", Some("failed"), Some("b"), 2),
            ("send_result", Some("sent"), Some("a"), 1),
            ("send_intent", Some("intent"), Some("c"), 2),
            ("send_result", Some("unknown"), Some("c"), 2),
        ]);
        assert_eq!(send_gaps(&ok), vec![]);

        let open = log(&[
            ("send_intent", Some("intent"), Some("a"), 1),
            ("send_intent", Some("intent"), Some("b"), 4),
            ("send_result", Some("sent"), Some("a"), 1),
        ]);
        let gaps = unanswered_intents(&open);
        assert_eq!(gaps.len(), 1);
        assert_eq!((gaps[0].seq, gaps[0].mention), (2, Some(4)));
        let msg = gaps[0].to_string();
        assert!(
            msg.starts_with("entry 2: the send_intent to mention 4"),
            "{msg}"
        );
        assert!(msg.contains("tonedesk poll --once"), "{msg}");
        assert!(
            msg.contains("another tonedesk is sending it right now"),
            "{msg}"
        );

        // A result of another attempt, or one before its intent, answers nothing.
        let crossed = log(&[
            ("send_result", Some("sent"), Some("a"), 1),
            ("send_intent", Some("intent"), Some("a"), 1),
            ("send_result", Some("sent"), Some("z"), 1),
        ]);
        let kinds: Vec<(i64, SendGapKind)> = send_gaps(&crossed)
            .iter()
            .map(|g| (g.seq, g.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, SendGapKind::Orphan),
                (2, SendGapKind::Unanswered),
                (3, SendGapKind::Orphan)
            ]
        );
        // The intent alone deleted: its result stands alone.
        let orphan = log(&[("send_result", Some("sent"), Some("a"), 1)]);
        assert!(
            send_gaps(&orphan)[0]
                .to_string()
                .contains("answers no send_intent")
        );
    }

    #[test]
    fn sends_written_before_attempts_pair_by_mention() {
        let old = log(&[
            ("send_intent", Some("intent"), None, 1),
            ("send_intent", Some("intent"), None, 2),
            ("send_result", Some("sent"), None, 2),
            ("send_result", Some("failed"), None, 1),
            ("send_intent", Some("intent"), None, 1),
            // Settled by a newer tonedesk, which names the attempt.
            ("send_result", Some("sent"), Some("k"), 1),
        ]);
        assert_eq!(send_gaps(&old), vec![]);
        let open = log(&[
            ("send_intent", Some("intent"), None, 1),
            ("send_result", Some("sent"), None, 2),
        ]);
        let kinds: Vec<(i64, SendGapKind)> =
            send_gaps(&open).iter().map(|g| (g.seq, g.kind)).collect();
        assert_eq!(
            kinds,
            vec![(1, SendGapKind::Unanswered), (2, SendGapKind::Orphan)]
        );
    }
}
