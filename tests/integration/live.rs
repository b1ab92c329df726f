//! A configured (non-demo) account, end to end through the real binary, against a Mastodon API
//! faked over real HTTP on loopback: poll (through a 429), queue, reply, audit, doctor.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{home, stderr, stdout};

pub(crate) fn account(id: &str, acct: &str, name: &str) -> Value {
    json!({
        "id": id, "username": acct.split('@').next().unwrap(), "acct": acct,
        "display_name": name, "locked": false, "bot": false, "group": false,
        "created_at": "2024-03-01T00:00:00.000Z", "note": "<p>Runner &amp; migraine veteran</p>",
        "url": format!("https://social.example/@{acct}"), "avatar": "", "avatar_static": "",
        "header": "", "header_static": "", "followers_count": 1, "following_count": 1,
        "statuses_count": 1, "emojis": [], "fields": []
    })
}

pub(crate) fn status(id: &str, author: Value, content: &str, in_reply_to: Option<&str>) -> Value {
    json!({
        "id": id, "uri": format!("https://social.example/statuses/{id}"),
        "url": format!("https://social.example/@x/{id}"), "created_at": "2026-11-21T10:00:00.000Z",
        "account": author, "content": content, "visibility": "public", "sensitive": false,
        "spoiler_text": "", "media_attachments": [], "mentions": [], "tags": [], "emojis": [],
        "reblogs_count": 0, "favourites_count": 0, "replies_count": 0,
        "in_reply_to_id": in_reply_to, "in_reply_to_account_id": null, "reblog": null,
        "poll": null, "card": null, "language": "en"
    })
}

fn limited(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(body)
        .insert_header("X-RateLimit-Limit", "300")
        .insert_header("X-RateLimit-Remaining", "297")
        .insert_header("X-RateLimit-Reset", "2099-01-01T00:00:00.000Z")
}

/// Writes a config under `home` with `top` (top-level settings) and one Mastodon account,
/// `care-mastodon`, on `server`.
fn configure(home: &std::path::Path, server: &MockServer, top: &str) {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "{top}\n[[account]]\nname = \"care-mastodon\"\nplatform = \"mastodon\"\nbase_url = \"{}\"\nhandle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_MASTODON_TOKEN\"\n",
            server.uri()
        ),
    )
    .unwrap();
}

/// Runs the binary off the async runtime (the fake server lives on it).
async fn run(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (home, args): (std::path::PathBuf, Vec<String>) = (
        home.to_path_buf(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        crate::td(&home)
            .env("TONEDESK_TEST_MASTODON_TOKEN", "test-token-123")
            .args(args)
            .output()
            .expect("run tonedesk")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mastodon_account_is_polled_answered_and_audited() {
    let server = MockServer::start().await;
    let maria = account("109", "maria@med.example", "Maria Lopez");
    let mention = json!([{
        "id": "501", "type": "mention", "created_at": "2026-11-21T10:00:01.000Z",
        "account": maria.clone(),
        "status": status("1001", maria.clone(),
            "<p><span class=\"h-card\"><a href=\"https://pharma.social/@acmecare\">@<span>acmecare</span></a></span> the copay card was rejected again &amp; nobody calls back</p>", None)
    }]);
    // The first poll meets a 429 that must be waited out.
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"error": "Too many requests"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .and(header("authorization", "Bearer test-token-123"))
        .respond_with(limited(mention))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .and(header("authorization", "Bearer test-token-123"))
        .and(header_exists("idempotency-key"))
        .and(body_partial_json(
            json!({"in_reply_to_id": "1001", "visibility": "unlisted"}),
        ))
        .respond_with(limited(status(
            "7001",
            account("1", "acmecare", "Acme Care"),
            "<p>reply</p>",
            Some("1001"),
        )))
        .expect(1)
        .mount(&server)
        .await;

    let (_d, h) = home();
    configure(
        &h,
        &server,
        "operator = \"Tess Tester\"\n[contact]\nemail = \"care@acme.example\"\n",
    );

    let o = run(&h, &["poll", "--once"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("care-mastodon mentions: 1 new"),
        "{}",
        stdout(&o)
    );

    let o = run(&h, &["queue", "--json"]).await;
    let q: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    let m = &q[0];
    assert_eq!(m["platform"], "mastodon");
    assert_eq!(m["account"], "care-mastodon");
    assert_eq!(m["remote_id"], "1001");
    assert_eq!(m["author"], "maria@med.example");
    assert_eq!(
        m["text"],
        "@acmecare the copay card was rejected again & nobody calls back"
    );
    assert_eq!(m["tone"], "complaint", "{m}");
    let id = m["id"].as_i64().unwrap().to_string();

    let o = run(&h, &["reply", &id, "--template", "complaint-ack", "--yes"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("remote id 7001"), "{}", stdout(&o));

    let o = run(&h, &["audit", "export", "--format", "jsonl"]).await;
    let audit: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1]["outcome"], "sent");
    assert_eq!(audit[1]["remote_id"], "7001");
    assert_eq!(audit[1]["operator"], "Tess Tester");
    let text = audit[1]["text"].as_str().unwrap();
    assert!(text.starts_with("@maria@med.example "), "{text}");

    // What was posted is exactly what was audited.
    let posted: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["status"], text);

    let o = run(&h, &["doctor"]).await;
    let out = stdout(&o);
    assert!(
        out.contains("account care-mastodon (mastodon): connected"),
        "{out}"
    );
    assert!(out.contains("297/300 requests left"), "{out}");
    // The token is nowhere on disk.
    for entry in walk(&h) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let needle = b"test-token-123";
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "token found in {}",
            entry.display()
        );
    }
    server.verify().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A server that echoes the token in its error body: the token reaches neither the terminal, nor
/// the database, the logs or the audit log; the error still says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_echoed_by_the_server_is_never_shown_or_stored() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": "The access token test-token-123 was revoked"})),
        )
        .mount(&server)
        .await;
    let (_d, h) = home();
    configure(&h, &server, "");
    let mut seen = String::new();
    for args in [
        &["poll", "--once"][..],
        &["doctor"],
        &["queue"],
        &["audit", "export", "--format", "jsonl"],
    ] {
        let o = run(&h, args).await;
        seen.push_str(&stdout(&o));
        seen.push_str(&stderr(&o));
    }
    assert!(
        seen.contains("revoked"),
        "the error is still reported: {seen}"
    );
    assert!(seen.contains("[secret]"), "{seen}");
    assert!(!seen.contains("test-token-123"), "token shown: {seen}");
    for entry in walk(&h) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let needle = b"test-token-123";
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "token found in {}",
            entry.display()
        );
    }
}

/// A `poll --once` (from cron, say) that spent the account's budget leaves it recorded: the next
/// process waits for the window to reset instead of asking again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_process_keeps_to_the_budget_an_earlier_one_spent() {
    let server = MockServer::start().await;
    let reset = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let reset = reset
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([]))
                .insert_header("X-RateLimit-Limit", "300")
                .insert_header("X-RateLimit-Remaining", "0")
                .insert_header("X-RateLimit-Reset", reset.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (_d, h) = home();
    configure(&h, &server, "");

    let o = run(&h, &["poll", "--once"]).await;
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let o = run(&h, &["poll", "--once"]).await;
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("rate"), "{out}");
    // `.expect(1)`: the second process made no request.
    server.verify().await;
}
