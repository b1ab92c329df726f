//! The compliance workflow through the real binary, as a new user would try it: the remaining
//! refusal rules, an adverse event from flag to export, a custom draft from review to the library,
//! snoozes and follow-ups — each step audited and the chain intact.

use std::fs;

use serde_json::Value;

use crate::{first_with, home, ok, queue, run, stderr, stdout};

fn audit(h: &std::path::Path) -> Vec<Value> {
    ok(h, &["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn refused(h: &std::path::Path, args: &[&str], rule: &str) -> String {
    let o = run(h, args);
    assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(rule), "{args:?}: {}", stderr(&o));
    stderr(&o)
}

#[test]
fn the_other_refusal_rules_name_themselves() {
    let (_d, h) = home();
    let q = queue(&h);
    let plain_id = first_with(&q, false);
    let plain = plain_id.to_string();
    let plain_m = q.iter().find(|m| m["id"] == plain_id).unwrap();
    let other_platform = match plain_m["platform"].as_str().unwrap() {
        "x" => "bluesky",
        _ => "x",
    };
    let lib = format!(
        r#"
[[reply]]
id = "future"
version = 1
approval = "MLR-F"
approved_on = 2099-01-01
expires_on = 2099-12-31
tones = ["neutral"]
channel = "either"
text = "Not yet. {{signoff}}"

[[reply]]
id = "dm-only"
version = 1
approval = "MLR-D"
approved_on = 2026-01-01
expires_on = 2099-01-01
channel = "private"
text = "In private. {{signoff}}"

[[reply]]
id = "elsewhere"
version = 1
approval = "MLR-E"
approved_on = 2026-01-01
expires_on = 2099-01-01
channel = "either"
platforms = ["{other_platform}"]
text = "Elsewhere. {{signoff}}"

[[reply]]
id = "no-contact"
version = 1
approval = "MLR-C"
approved_on = 2026-01-01
expires_on = 2099-01-01
channel = "either"
text = "Call {{contact.fax}}. {{signoff}}"

[[reply]]
id = "about-you"
version = 1
approval = "MLR-H"
approved_on = 2026-01-01
expires_on = 2099-01-01
channel = "either"
confirms_health = true
text = "We hope your treatment goes well. {{signoff}}"
"#
    );
    fs::create_dir_all(h.join("library")).unwrap();
    fs::write(h.join("library/zz-rules.toml"), lib).unwrap();
    let reply = |t: &'static str| ["reply", plain.as_str(), "--template", t, "--yes"];
    let e = refused(&h, &reply("future"), "rule 'not-yet-approved'");
    assert!(e.contains("2099-01-01"), "{e}");
    refused(
        &h,
        &[
            "reply",
            &plain,
            "--template",
            "dm-only",
            "--channel",
            "public",
            "--yes",
        ],
        "rule 'channel'",
    );
    refused(&h, &reply("elsewhere"), "rule 'platform'");
    let e = refused(&h, &reply("no-contact"), "rule 'contact'");
    assert!(e.contains("[contact]"), "{e}");
    // The privacy guard: a template that speaks of the person's treatment, in public …
    let e = refused(
        &h,
        &[
            "reply",
            &plain,
            "--template",
            "about-you",
            "--channel",
            "public",
            "--yes",
        ],
        "rule 'privacy'",
    );
    assert!(e.contains("confirms_health"), "{e}");
    // … and a filled-in value that names a condition or a product, in public.
    let e = refused(
        &h,
        &[
            "reply",
            &plain,
            "--template",
            "complaint-access",
            "--var",
            "topic=your Zyntriva refill",
            "--yes",
        ],
        "rule 'privacy'",
    );
    assert!(e.contains("'topic' mentions 'zyntriva'"), "{e}");
    // The same value is fine where it cannot confirm anything in public: nothing else refused it.
    ok(
        &h,
        &[
            "reply",
            &plain,
            "--template",
            "complaint-access",
            "--var",
            "topic=the refill form",
            "--yes",
        ],
    );
    let actions: Vec<String> = audit(&h)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["send_intent", "send_result"],
        "refusals send nothing"
    );
}

#[test]
fn an_adverse_event_goes_from_flag_to_export_with_its_four_elements_and_clock() {
    let (_d, h) = home();
    let q = queue(&h);
    // A mention the classifier did not flag: the operator takes it in by hand.
    let plain = first_with(&q, false);
    let id = plain.to_string();
    let show = ok(&h, &["ae", "show", &id]);
    assert!(
        show.contains("pre-filled from the tags, not saved"),
        "{show}"
    );
    let saved = ok(
        &h,
        &[
            "ae",
            "intake",
            &id,
            "--patient",
            "the reporter's mother",
            "--product",
            "Zyntriva",
            "--reaction",
            "dizziness",
            "--notes",
            "asked for the lot number in DM",
        ],
    );
    assert!(saved.contains("valid case"), "{saved}");
    // Now it is an AE (flagged by the operator) with an intake record.
    let m = queue(&h).into_iter().find(|m| m["id"] == plain).unwrap();
    assert!(m["flags"].as_array().unwrap().iter().any(|f| f == "ae"));
    // An edit: the reaction is not known after all and must be asked for.
    ok(&h, &["ae", "intake", &id, "--ask", "reaction"]);

    let json: Vec<Value> =
        serde_json::from_str(&ok(&h, &["ae", "export", "--format", "json"])).unwrap();
    let case = json.iter().find(|c| c["mention"] == plain).unwrap();
    assert_eq!(case["intake"], "confirmed");
    assert_eq!(case["patient"], "the reporter's mother");
    assert_eq!(case["product"], "Zyntriva");
    assert_eq!(case["reaction_state"], "to ask");
    assert_eq!(case["valid_case"], false);
    assert_eq!(case["missing"], "reaction");
    assert_eq!(case["notes"], "asked for the lot number in DM");
    assert_eq!(case["verbatim"], m["text"]);
    let published = time::OffsetDateTime::parse(
        case["published_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let due = time::OffsetDateTime::parse(
        case["report_due_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        due - published,
        time::Duration::hours(24),
        "the default clock"
    );
    assert_eq!(
        case["published_at"], m["created_at"],
        "the clock starts at publish time"
    );
    // Every AE the classifier found is in the export too, marked as not confirmed, by due time.
    assert!(json.len() > 5);
    assert!(
        json.iter()
            .any(|c| c["intake"] == "from tags, not confirmed")
    );
    let dues: Vec<&str> = json
        .iter()
        .map(|c| c["report_due_at"].as_str().unwrap())
        .collect();
    let mut sorted = dues.clone();
    sorted.sort();
    assert_eq!(dues, sorted, "sorted by due time, overdue first");

    let csv = ok(&h, &["ae", "export", "--format", "csv"]);
    let header = csv.lines().next().unwrap();
    for col in [
        "case",
        "reporter",
        "reporter_state",
        "patient",
        "product",
        "reaction",
        "verbatim",
        "published_at",
        "report_due_at",
        "overdue",
    ] {
        assert!(header.split(',').any(|c| c == col), "{col} in {header}");
    }
    let json2: Vec<Value> =
        serde_json::from_str(&ok(&h, &["ae", "export", "--format", "json"])).unwrap();
    let again = json2.iter().find(|c| c["mention"] == plain).unwrap();
    assert!(again["previously_exported_at"].is_string());

    // Flag, intake, edit and each export are audited; the chain is intact.
    let actions: Vec<String> = audit(&h)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "ae_flag",
            "ae_intake",
            "ae_edit",
            "ae_export",
            "ae_export",
            "ae_export"
        ]
    );
    assert!(ok(&h, &["audit", "verify"]).contains("intact"));
}

#[test]
fn a_custom_draft_is_reviewed_approved_and_only_then_sendable() {
    let (_d, h) = home();
    let q = queue(&h);
    let plain = first_with(&q, false).to_string();
    let draft = h.parent().unwrap().join("draft.txt");
    fs::write(
        &draft,
        "# a comment the editor seed would hold\nHi {first_name}, we're looking into it now. {signoff}\n",
    )
    .unwrap();
    let filed = ok(
        &h,
        &[
            "review",
            "add",
            "--mention",
            &plain,
            "--file",
            draft.to_str().unwrap(),
        ],
    );
    assert!(filed.contains("draft 1 filed"), "{filed}");
    // A draft is not a library reply: it cannot be sent.
    let o = run(&h, &["reply", &plain, "--template", "custom-1", "--yes"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no approved reply"), "{}", stderr(&o));

    let list: Vec<Value> = serde_json::from_str(&ok(&h, &["review", "list", "--json"])).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0]["text"],
        "Hi {first_name}, we're looking into it now. {signoff}"
    );
    let csv = ok(&h, &["review", "export", "--format", "csv"]);
    assert!(csv.starts_with("draft,state,mention"), "{csv}");

    // A draft with an unknown placeholder is refused when filed.
    fs::write(&draft, "Hi {name}").unwrap();
    let o = run(&h, &["review", "add", "--file", draft.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("does not read as a reply template"),
        "{}",
        stderr(&o)
    );

    // Approval needs a reference and a future expiry; then it is a reply like any other.
    let o = run(
        &h,
        &[
            "library",
            "approve",
            "1",
            "--approval",
            "MLR-9",
            "--expires",
            "2020-01-01",
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not in the future"), "{}", stderr(&o));
    let approved = ok(
        &h,
        &[
            "library",
            "approve",
            "1",
            "--approval",
            "MLR-2026-0999",
            "--expires",
            "2099-06-30",
            "--tone",
            "complaint",
            "--channel",
            "public",
        ],
    );
    assert!(
        approved.contains("library reply 'custom-1' v1"),
        "{approved}"
    );
    let again = run(
        &h,
        &[
            "library",
            "approve",
            "1",
            "--approval",
            "MLR-X",
            "--expires",
            "2099-01-01",
        ],
    );
    assert!(!again.status.success(), "a draft is approved once");
    assert!(ok(&h, &["library", "check"]).contains("0 error(s)"));
    let listed: Vec<Value> = serde_json::from_str(&ok(&h, &["library", "list", "--json"])).unwrap();
    assert!(
        listed
            .iter()
            .any(|r| r["id"] == "custom-1" && r["approval"] == "MLR-2026-0999")
    );
    let sent = ok(&h, &["reply", &plain, "--template", "custom-1", "--yes"]);
    assert!(sent.contains("sent"), "{sent}");

    let actions: Vec<String> = audit(&h)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["draft", "draft_approve", "send_intent", "send_result"]
    );
    let log = audit(&h);
    assert_eq!(log[1]["approval"], "MLR-2026-0999");
    assert!(ok(&h, &["audit", "verify"]).contains("intact"));
}

#[test]
fn snoozed_mentions_and_follow_ups_leave_the_queue_audited() {
    let (_d, h) = home();
    let q = queue(&h);
    let plain = first_with(&q, false);
    let id = plain.to_string();
    let out = ok(&h, &["snooze", &id, "--for", "2h"]);
    assert!(out.contains("snoozed until"), "{out}");
    let m = queue(&h).into_iter().find(|m| m["id"] == plain).unwrap();
    assert_eq!(m["state"], "snoozed");
    let o = run(&h, &["snooze", &id, "--for", "soon"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("90m, 4h or 2d"), "{}", stderr(&o));
    let out = ok(&h, &["snooze", &id, "--follow-up"]);
    assert!(out.contains("follow-up reminder"), "{out}");
    let log = audit(&h);
    assert_eq!(log[0]["action"], "snooze");
    assert_eq!(log[1]["action"], "follow_up");
    assert!(stdout(&run(&h, &["audit", "verify"])).contains("intact"));
}
