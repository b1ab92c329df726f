//! The subcommands, run as a user would, each in a fresh home.

use std::fs;

use serde_json::Value;

use crate::{first_with, home, ok, queue, run, stderr, stdout};

fn audit_lines(home: &std::path::Path) -> Vec<Value> {
    ok(home, &["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[test]
fn queue_json_lists_every_demo_mention_with_tags() {
    let (_d, h) = home();
    let q = queue(&h);
    assert!(q.len() >= 60, "only {} demo mentions", q.len());
    let tones = ["positive", "neutral", "complaint", "troll", "spam"];
    for m in &q {
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
            assert!(m.get(k).is_some(), "mention lacks {k}: {m}");
        }
        assert!(tones.contains(&m["tone"].as_str().unwrap()), "{m}");
        time::OffsetDateTime::parse(
            m["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("created_at is RFC 3339");
    }
    for p in ["x", "mastodon", "bluesky"] {
        assert!(q.iter().any(|m| m["platform"] == p), "no {p} mention");
    }
    assert!(
        q.iter()
            .any(|m| m["flags"].as_array().unwrap().iter().any(|f| f == "ae"))
    );
    // A second run does not duplicate the demo.
    assert_eq!(queue(&h).len(), q.len());
    // The plain queue is a table of the open mentions.
    assert!(ok(&h, &["queue"]).lines().count() > 10);
}

#[test]
fn reply_sends_once_and_the_audit_chain_holds_it() {
    let (_d, h) = home();
    let q = queue(&h);
    let id = first_with(&q, true);
    let out = ok(
        &h,
        &[
            "reply",
            &id.to_string(),
            "--template",
            "ae-report-private",
            "--yes",
        ],
    );
    assert!(out.starts_with("sent: mention"), "{out}");

    let lines = audit_lines(&h);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (intent, result) = (&lines[0], &lines[1]);
    assert_eq!(intent["action"], "send_intent");
    assert_eq!(result["action"], "send_result");
    assert_eq!(result["outcome"], "sent");
    assert!(result["remote_id"].as_str().is_some_and(|r| !r.is_empty()));
    for e in [intent, result] {
        assert_eq!(e["template"], "ae-report-private");
        assert_eq!(e["template_version"], 1);
        assert!(e["approval"].as_str().unwrap().starts_with("MLR-"));
        assert_eq!(e["channel"], "private");
        assert_eq!(e["operator"], "tester");
        assert_eq!(e["mention"], id);
    }
    let text = intent["text"].as_str().unwrap();
    assert_eq!(result["text"], text);
    assert!(!text.contains('{'), "placeholders left in {text}");
    assert_eq!(result["prev_hash"], intent["hash"]);

    // The demo sink received exactly that text once.
    let sink = fs::read_to_string(h.join("demo-sink.jsonl")).unwrap();
    assert_eq!(sink.lines().count(), 1);
    assert!(sink.contains(&serde_json::to_string(text).unwrap()[1..text.len()]));

    // The mention is done, and a second reply to it is refused.
    let q = queue(&h);
    let m = q.iter().find(|m| m["id"] == id).unwrap();
    assert_eq!(m["state"], "done");
    let again = run(
        &h,
        &[
            "reply",
            &id.to_string(),
            "--template",
            "ae-report-private",
            "--yes",
        ],
    );
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stderr(&again).contains("rule 'answered'"),
        "{}",
        stderr(&again)
    );

    let v = ok(&h, &["audit", "verify"]);
    assert!(v.contains("intact: 2 entries"), "{v}");

    let csv = ok(&h, &["audit", "export", "--format", "csv"]);
    let mut rows = csv.lines();
    assert!(
        rows.next()
            .unwrap()
            .starts_with("seq,at,operator,action,platform,account,mention,template")
    );
    assert!(csv.contains("send_intent") && csv.contains("send_result"));
}

#[test]
fn changing_one_byte_of_an_audit_entry_is_caught_and_named() {
    let (_d, h) = home();
    let q = queue(&h);
    let id = first_with(&q, false);
    ok(
        &h,
        &[
            "reply",
            &id.to_string(),
            "--template",
            "neutral-invite-dm",
            "--yes",
        ],
    );
    ok(&h, &["crisis", "on", "--reason", "recall rumour"]);
    ok(&h, &["crisis", "off"]);
    assert!(ok(&h, &["audit", "verify"]).contains("4 entries"));

    // One byte of entry 2's text, changed behind tonedesk's back.
    let db = rusqlite::Connection::open(h.join("tonedesk.db")).unwrap();
    let n = db
        .execute(
            "UPDATE audit SET text = 'X' || substr(text, 2) WHERE seq = 2",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);
    let o = run(&h, &["audit", "verify"]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("entry 2"), "{}", stdout(&o));

    // Deleting an entry is caught too.
    let (_d2, h2) = home();
    ok(&h2, &["crisis", "on", "--reason", "a"]);
    ok(&h2, &["crisis", "off"]);
    ok(&h2, &["crisis", "on", "--reason", "b"]);
    let db = rusqlite::Connection::open(h2.join("tonedesk.db")).unwrap();
    db.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
    drop(db);
    let o = run(&h2, &["audit", "verify"]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("entry 3"), "{}", stdout(&o));
}

#[test]
fn refusals_name_their_rule_and_send_nothing() {
    let (_d, h) = home();
    let q = queue(&h);
    let ae = first_with(&q, true).to_string();
    let plain = first_with(&q, false).to_string();

    let expect_refused = |args: &[&str], rule: &str| {
        let o = run(&h, args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(rule), "{args:?}: {}", stderr(&o));
    };
    expect_refused(
        &[
            "reply",
            &plain,
            "--template",
            "awareness-week-thanks",
            "--yes",
        ],
        "rule 'expired'",
    );
    expect_refused(
        &[
            "reply",
            &ae,
            "--template",
            "neutral-invite-dm",
            "--channel",
            "public",
            "--yes",
        ],
        "rule 'private-only'",
    );
    expect_refused(
        &["reply", &plain, "--template", "complaint-access", "--yes"],
        "rule 'variable'",
    );
    expect_refused(
        &[
            "reply",
            &plain,
            "--template",
            "complaint-access",
            "--var",
            "topic=<script>",
            "--yes",
        ],
        "allowed pattern",
    );
    expect_refused(
        &["reply", &plain, "--template", "no-such-reply", "--yes"],
        "no approved reply",
    );
    ok(&h, &["crisis", "on", "--reason", "recall rumour"]);
    expect_refused(
        &["reply", &plain, "--template", "neutral-invite-dm", "--yes"],
        "rule 'crisis'",
    );
    ok(&h, &["crisis", "off"]);

    // Without --yes nothing is sent: the preview is printed.
    let o = run(&h, &["reply", &plain, "--template", "neutral-invite-dm"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("add --yes to send"), "{}", stdout(&o));

    // A library reply too long for the platform once rendered.
    let long = format!(
        "[[reply]]\nid = \"too-long\"\nversion = 1\napproval = \"MLR-T\"\napproved_on = 2026-01-01\nexpires_on = 2099-01-01\ntones = [\"neutral\"]\nchannel = \"either\"\ntext = \"{}\"\n",
        "word ".repeat(120)
    );
    fs::write(h.join("library/zz-test.toml"), long).unwrap();
    expect_refused(
        &["reply", &plain, "--template", "too-long", "--yes"],
        "rule 'too-long'",
    );

    // A changed text under the same id and version is refused as tampered.
    let lib = h.join("library/general.toml");
    let text = fs::read_to_string(&lib).unwrap();
    fs::write(
        &lib,
        text.replace("that made our day!", "that made our week!"),
    )
    .unwrap();
    expect_refused(
        &["reply", &plain, "--template", "thanks-short", "--yes"],
        "rule 'tampered'",
    );
    let check = run(&h, &["library", "check"]);
    assert!(!check.status.success());
    assert!(stdout(&check).contains("tampered"), "{}", stdout(&check));

    // Nothing reached the demo sink and every line of the audit is a crisis toggle.
    assert!(!h.join("demo-sink.jsonl").exists());
    let actions: Vec<String> = audit_lines(&h)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["crisis_on", "crisis_off"]);
}

#[test]
fn library_check_and_list() {
    let (_d, h) = home();
    let out = ok(&h, &["library", "check"]);
    assert!(out.contains("0 error(s)"), "{out}");
    assert!(
        out.contains("expired"),
        "the starter set has an expired reply: {out}"
    );
    let list: Vec<Value> = serde_json::from_str(&ok(&h, &["library", "list", "--json"])).unwrap();
    assert!(list.len() >= 12);
    for r in &list {
        for k in [
            "id",
            "version",
            "approval",
            "expires_on",
            "tones",
            "flags",
            "channel",
            "platforms",
        ] {
            assert!(r.get(k).is_some(), "{k} missing in {r}");
        }
    }

    fs::write(h.join("library/broken.toml"), "[[reply]]\nid = \"b\"\nversion = 1\napproval = \"M\"\napproved_on = 2026-01-01\nexpires_on = 2027-01-01\nchannel = \"public\"\ntext = \"Hello {nme}\"\n").unwrap();
    let o = run(&h, &["library", "check"]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("broken.toml:1: reply 'b': unknown placeholder '{nme}'"),
        "{out}"
    );
}

#[test]
fn a_broken_config_names_file_line_and_key() {
    let (_d, h) = home();
    fs::create_dir_all(&h).unwrap();
    fs::write(
        h.join("config.toml"),
        "operator = \"A\"\n\n[targets]\ncomplaint = \"soon\"\n",
    )
    .unwrap();
    let o = run(&h, &["queue"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("config.toml:4: key 'targets.complaint'"),
        "{err}"
    );
    assert!(err.contains("config.example.toml"), "{err}");

    fs::write(h.join("config.toml"), "[keys]\nreply = \"j\"\n").unwrap();
    let o = run(&h, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bound to both"), "{}", stderr(&o));
}

#[test]
fn configured_accounts_are_reported_not_pretended() {
    let (_d, h) = home();
    fs::create_dir_all(&h).unwrap();
    fs::write(
        h.join("config.toml"),
        "[[account]]\nname = \"care-x\"\nplatform = \"x\"\nhandle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_UNSET_TOKEN\"\n",
    )
    .unwrap();
    let o = run(&h, &["poll", "--once"]);
    assert!(!o.status.success());
    // Without its token the account cannot be polled; that is said plainly, per account.
    let out = stdout(&o);
    assert!(
        out.contains("care-x")
            && (out.contains("TONEDESK_TEST_UNSET_TOKEN") || out.contains("not built")),
        "{out}"
    );
    assert_eq!(queue(&h).len(), 0, "no demo data in a live home");
}

#[test]
fn tone_classify_and_eval() {
    let (_d, h) = home();
    let mut child = crate::td(&h)
        .args(["tone", "classify"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Thank you so much, you made my day!\nI took Zyntriva and now I have a rash\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        for k in ["tone", "flags", "confidence", "reasons"] {
            assert!(l.get(k).is_some(), "{k} missing: {l}");
        }
    }
    assert_eq!(lines[0]["tone"], "positive");
    assert!(
        lines[1]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "ae"),
        "{}",
        lines[1]
    );

    let tsv = h.parent().unwrap().join("eval.tsv");
    fs::write(&tsv, "positive\tThank you so much, you made my day!\nnegative\tStill waiting on hold for two hours, useless\nbogus line\n").unwrap();
    let o = run(&h, &["tone", "eval", tsv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("accuracy") && out.contains("macro-F1"),
        "{out}"
    );
    assert!(out.contains("texts     2"), "{out}");
    assert!(stderr(&o).contains("eval.tsv:3: skipped"), "{}", stderr(&o));
}

#[test]
fn ae_export_doctor_completions_and_man() {
    let (_d, h) = home();
    let csv = ok(&h, &["ae", "export", "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("case,mention,platform,account,url,reporter")
    );
    assert!(lines.count() >= 5, "{csv}");
    let json: Vec<Value> =
        serde_json::from_str(&ok(&h, &["ae", "export", "--format", "json"])).unwrap();
    assert!(
        json.iter()
            .all(|c| c["report_due_at"].is_string() && c["verbatim"].is_string())
    );

    let doctor = ok(&h, &["doctor"]);
    assert!(
        doctor.contains("DEMO") && doctor.contains("audit chain intact"),
        "{doctor}"
    );
    assert!(ok(&h, &["completions", "bash"]).contains("tonedesk"));
    assert!(ok(&h, &["man"]).contains(".TH tonedesk"));
    assert!(ok(&h, &["crisis", "status"]).contains("off"));

    // Playbook actions from the command line reach the demo sink and the audit log.
    let id = crate::first_with(&queue(&h), false).to_string();
    assert!(ok(&h, &["act", &id, "like"]).starts_with("like: done"));
    let sink = fs::read_to_string(h.join("demo-sink.jsonl")).unwrap();
    assert!(sink.contains("\"kind\":\"like\""), "{sink}");
    let audit = ok(&h, &["audit", "export", "--format", "jsonl"]);
    assert!(audit.contains("\"action\":\"like\""), "{audit}");
}

#[test]
fn home_comes_from_the_environment_too() {
    let (_d, h) = home();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tonedesk"))
        .env("TONEDESK_HOME", &h)
        .args(["library", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(h.join("library/general.toml").exists());
    assert!(h.join("tonedesk.db").exists());
    assert!(h.join("logs").is_dir());
}

/// `stats --format csv` as a map of (section, key) to value, checking the table's shape.
fn stats_csv(home: &std::path::Path) -> std::collections::BTreeMap<(String, String), String> {
    let out = ok(home, &["stats", "--format", "csv"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("section,key,value,unit"), "{out}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 4, "not section,key,value,unit: {l}");
            ((f[0].to_owned(), f[1].to_owned()), f[2].to_owned())
        })
        .collect()
}

#[test]
fn stats_count_the_first_reply_on_the_demo() {
    let (_d, h) = home();
    ok(&h, &["poll", "--once"]);
    let get = |m: &std::collections::BTreeMap<(String, String), String>, s: &str, k: &str| {
        m.get(&(s.to_owned(), k.to_owned()))
            .unwrap_or_else(|| panic!("no {s},{k} in {m:?}"))
            .clone()
    };
    let before = stats_csv(&h);
    assert_eq!(get(&before, "first_response", "answered"), "0");
    assert_eq!(get(&before, "first_response", "median"), "");
    let q = queue(&h);
    assert_eq!(get(&before, "tone_mix", "total"), q.len().to_string());

    let id = first_with(&q, false);
    let created = q.iter().find(|m| m["id"] == id).unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &h,
        &[
            "reply",
            &id.to_string(),
            "--template",
            "neutral-invite-dm",
            "--yes",
        ],
    );
    let after = stats_csv(&h);
    assert_eq!(get(&after, "first_response", "answered"), "1");
    // The response time is the mention's age when it was answered (the demo's posts are hours old).
    let age = time::OffsetDateTime::now_utc()
        - time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let median: f64 = get(&after, "first_response", "median").parse().unwrap();
    assert!(
        (median - age.as_seconds_f64() / 60.0).abs() < 5.0,
        "median {median} min, age {age}"
    );
    assert_eq!(
        get(&after, "first_response", "p90"),
        get(&after, "first_response", "median")
    );
    let open = |m| get(m, "first_response", "open").parse::<i64>().unwrap();
    assert_eq!(open(&after), open(&before) - 1);
    let per_hour: i64 = after
        .iter()
        .filter(|((s, _), _)| s == "per_hour_answered")
        .map(|(_, v)| v.parse::<i64>().unwrap())
        .sum();
    assert_eq!(per_hour, 1);

    let text = ok(&h, &["stats"]);
    assert!(text.contains("  answered             1\n"), "{text}");
    let o = run(&h, &["stats", "--days", "0"]);
    assert!(!o.status.success(), "--days 0 is refused");
}
