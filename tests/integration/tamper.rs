//! Tampering with the audit table behind tonedesk's back, the way someone with the database open
//! in `sqlite3` would: each change makes `audit verify` exit non-zero naming the first bad entry.

use std::path::Path;

use rusqlite::{Connection, params};
use tonedesk::domain::audit::{AuditEntry, AuditHead};

use crate::{first_with, home, ok, queue, run, stdout};

/// A home with a working day's log: two replies (intent + result each), a like, crisis on and off.
///
/// | seq | action |
/// |---|---|
/// | 1, 2 | send_intent, send_result (public reply) |
/// | 3, 4 | send_intent, send_result (private AE reply) |
/// | 5 | like |
/// | 6, 7 | crisis_on, crisis_off |
fn busy_home() -> (tempfile::TempDir, std::path::PathBuf, i64) {
    let (d, h) = home();
    let q = queue(&h);
    let public = first_with(&q, false).to_string();
    let ae = first_with(&q, true);
    let reply = |id: &str, template: &str| {
        ok(&h, &["reply", id, "--template", template, "--yes"]);
    };
    reply(&public, "neutral-invite-dm");
    reply(&ae.to_string(), "ae-report-private");
    let other = queue(&h)
        .iter()
        .find(|m| m["state"] == "open")
        .and_then(|m| m["id"].as_i64())
        .expect("an open mention")
        .to_string();
    ok(&h, &["act", &other, "like"]);
    ok(&h, &["crisis", "on", "--reason", "recall rumour"]);
    ok(&h, &["crisis", "off"]);
    let v = ok(&h, &["audit", "verify"]);
    assert!(v.contains("intact: 7 entries"), "{v}");
    (d, h, ae)
}

fn db(h: &Path) -> Connection {
    Connection::open(h.join("tonedesk.db")).expect("open the database")
}

/// Runs `audit verify`, insists that it fails, and returns what it printed.
fn verify_fails(h: &Path) -> String {
    let o = run(h, &["audit", "verify"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "verify should fail:\n{out}");
    out
}

#[test]
fn an_edited_field_is_named() {
    let (_d, h, _) = busy_home();
    // Who sent the AE reply, moved to another machine.
    let n = db(&h)
        .execute("UPDATE audit SET host = 'laptop-at-home' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(n, 1);
    let out = verify_fails(&h);
    assert!(
        out.starts_with(
            "audit chain broken at entry 3: its content does not match its hash (edited after it was written)"
        ),
        "{out}"
    );
}

#[test]
fn a_deleted_middle_entry_is_named() {
    let (_d, h, _) = busy_home();
    db(&h)
        .execute("DELETE FROM audit WHERE seq = 5", [])
        .unwrap();
    let out = verify_fails(&h);
    assert!(
        out.starts_with(
            "audit chain broken at entry 6: expected sequence number 5 (an entry is missing or out of order)"
        ),
        "{out}"
    );
}

#[test]
fn reordered_entries_are_named() {
    let (_d, h, _) = busy_home();
    // The like and the crisis switch trade places.
    let c = db(&h);
    for (from, to) in [(5, -5), (6, 5), (-5, 6)] {
        c.execute(
            "UPDATE audit SET seq = ?2 WHERE seq = ?1",
            params![from, to],
        )
        .unwrap();
    }
    let actions: Vec<String> = c
        .prepare("SELECT action FROM audit WHERE seq IN (5, 6) ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(actions, ["crisis_on", "like"]);
    drop(c);
    let out = verify_fails(&h);
    assert!(
        out.starts_with(
            "audit chain broken at entry 5: it does not link to entry 4 before it (deleted, inserted or reordered)"
        ),
        "{out}"
    );
}

#[test]
fn a_cut_tail_is_named_and_stays_named() {
    let (_d, h, _) = busy_home();
    let before = ok(&h, &["audit", "export", "--format", "jsonl"]);
    db(&h)
        .execute("DELETE FROM audit WHERE seq >= 6", [])
        .unwrap();
    let out = verify_fails(&h);
    assert!(
        out.starts_with(
            "audit chain broken at entry 6: missing: the log ends at entry 5 but its recorded head is entry 7 (entries were cut from the end)"
        ),
        "{out}"
    );

    // Work goes on: the next entry chains on from the recorded head, so the cut stays visible.
    ok(&h, &["crisis", "on", "--reason", "second rumour"]);
    let out = verify_fails(&h);
    assert!(
        out.starts_with("audit chain broken at entry 8: expected sequence number 6"),
        "{out}"
    );

    // Someone who rewrites the head as well can make a shorter log look whole: what the table
    // and the settings row both say cannot be checked on this machine alone. A copy exported
    // earlier is the anchor off the machine: it holds entries the log no longer has.
    let c = db(&h);
    c.execute("DELETE FROM audit WHERE seq = 8", []).unwrap();
    let last: (i64, String) = c
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    c.execute(
        "UPDATE settings SET value = ?1 WHERE key = 'audit_head'",
        [format!("{} {}", last.0, last.1)],
    )
    .unwrap();
    drop(c);
    assert!(ok(&h, &["audit", "verify"]).contains("intact: 5 entries"));
    let now = ok(&h, &["audit", "export", "--format", "jsonl"]);
    assert!(before.starts_with(&now) && before.len() > now.len());
}

#[test]
fn a_deleted_intent_is_named() {
    let (_d, h, ae) = busy_home();
    db(&h)
        .execute(
            "DELETE FROM audit WHERE seq = 3 AND action = 'send_intent'",
            [],
        )
        .unwrap();
    let out = verify_fails(&h);
    assert!(
        out.starts_with("audit chain broken at entry 4: expected sequence number 3"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "entry 4: the send_result to mention {ae} answers no send_intent"
        )),
        "{out}"
    );
}

#[test]
fn a_deleted_intent_is_named_even_after_the_log_is_rechained() {
    let (_d, h, ae) = busy_home();
    // The intent of the AE reply removed, every later entry renumbered and re-hashed, and the
    // head rewritten: the chain holds, but the result now answers no intent.
    let entries = tonedesk::store::Store::open(&h.join("tonedesk.db"))
        .unwrap()
        .audit_entries()
        .unwrap();
    let mut kept: Vec<AuditEntry> = entries[..2].to_vec();
    for e in entries.into_iter().skip(3) {
        let prev = kept.last().unwrap();
        kept.push(AuditEntry::chain(prev.seq + 1, &prev.hash, e.record));
    }
    let c = db(&h);
    c.execute("DELETE FROM audit WHERE seq >= 3", []).unwrap();
    for e in &kept[2..] {
        let r = &e.record;
        c.execute(
            "INSERT INTO audit (seq, at, operator, action, platform, account, mention, template,
                 template_version, approval, channel, text, outcome, remote_id, detail, prev_hash,
                 hash, host, attempt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)",
            params![
                e.seq,
                r.at,
                r.operator,
                r.action,
                r.platform,
                r.account,
                r.mention,
                r.template,
                r.template_version,
                r.approval,
                r.channel,
                r.text,
                r.outcome,
                r.remote_id,
                r.detail,
                e.prev_hash,
                e.hash,
                r.host,
                r.attempt
            ],
        )
        .unwrap();
    }
    let head = AuditHead::of(kept.last().unwrap()).to_setting();
    c.execute(
        "UPDATE settings SET value = ?1 WHERE key = 'audit_head'",
        [head],
    )
    .unwrap();
    drop(c);
    let out = verify_fails(&h);
    assert!(
        out.starts_with(&format!(
            "entry 3: the send_result to mention {ae} answers no send_intent before it"
        )),
        "{out}"
    );
    assert!(
        out.contains("the hash chain holds (6 entries), but 1 send(s) do not pair up"),
        "{out}"
    );
}
