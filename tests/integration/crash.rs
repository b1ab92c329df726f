//! `kill -9` between a send's intent and its result (DESIGN §3): the real binary replies to a
//! mention on a platform faked over loopback, is killed while the send is under way, and the next
//! start reconciles. The platform must never see a second post, the outbox must be settled, the
//! audit log must hold the intent and its result, and the mention must count as answered.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::{home, stderr, stdout};

/// How long the fake platform takes to answer a post: far longer than the test needs to see the
/// request arrive and kill the sender.
const SLOW: Duration = Duration::from_secs(5);
const MENTION_TEXT: &str = "the copay card was rejected again & nobody calls back";

/// What the fake platform has posted.
#[derive(Debug, Clone)]
pub(crate) struct Created {
    key: Option<String>,
    pub(crate) id: String,
    parent: String,
    text: String,
}

pub(crate) type Posted = Arc<Mutex<Vec<Created>>>;

/// A post endpoint: one new post per distinct `Idempotency-Key` (the same key gives back the
/// same post, as Mastodon does; `dedup` off, as on X, every request posts), answered late.
struct SlowPost {
    posted: Posted,
    dedup: bool,
    answer: fn(&Created) -> Value,
}

impl Respond for SlowPost {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let key = req
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut posted = self.posted.lock().unwrap();
        let same = posted
            .iter()
            .find(|p| self.dedup && key.is_some() && p.key == key)
            .cloned();
        let created = same.unwrap_or_else(|| {
            let parent = body["in_reply_to_id"]
                .as_str()
                .or(body["reply"]["in_reply_to_tweet_id"].as_str())
                .unwrap_or_default();
            let c = Created {
                key,
                id: format!("19000000000000007{:02}", posted.len() + 1),
                parent: parent.to_owned(),
                text: body["status"]
                    .as_str()
                    .or(body["text"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            };
            posted.push(c.clone());
            c
        });
        ResponseTemplate::new(200)
            .set_body_json((self.answer)(&created))
            .set_delay(SLOW)
    }
}

/// The account's own posts, newest first, as `find_sent` reads them.
struct OwnPosts {
    posted: Posted,
    page: fn(&[Created]) -> Value,
}

impl Respond for OwnPosts {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut posts = self.posted.lock().unwrap().clone();
        posts.reverse();
        ResponseTemplate::new(200).set_body_json((self.page)(&posts))
    }
}

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mastodon_account(id: &str, acct: &str) -> Value {
    json!({"id": id, "username": acct.split('@').next().unwrap(), "acct": acct,
           "display_name": "Maria Lopez", "note": "", "url": format!("https://social.example/@{acct}")})
}

fn mastodon_status(c: &Created) -> Value {
    json!({
        "id": c.id, "created_at": now(), "in_reply_to_id": c.parent, "visibility": "unlisted",
        "content": format!("<p>{}</p>", html_escape(&c.text)), "spoiler_text": "",
        "url": format!("https://pharma.social/@acmecare/{}", c.id),
        "uri": format!("https://pharma.social/users/acmecare/statuses/{}", c.id),
        "account": mastodon_account("1", "acmecare"),
    })
}

/// A Mastodon server: one mention notification, `verify_credentials`, the slow deduplicating
/// post endpoint and the account's own statuses.
pub(crate) async fn mastodon(posted: &Posted) -> MockServer {
    let server = MockServer::start().await;
    let maria = mastodon_account("109", "maria@med.example");
    Mock::given(method("GET"))
        .and(path("/api/v1/notifications"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": "501", "type": "mention", "created_at": "2026-11-21T10:00:01.000Z",
            "account": maria,
            "status": {
                "id": "1001", "created_at": "2026-11-21T10:00:00.000Z", "visibility": "public",
                "content": format!("<p>@acmecare {}</p>", html_escape(MENTION_TEXT)),
                "spoiler_text": "", "in_reply_to_id": null, "account": maria,
                "url": "https://social.example/@maria/1001",
            }
        }])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/verify_credentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(mastodon_account("1", "acmecare")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(SlowPost {
            posted: posted.clone(),
            dedup: true,
            answer: mastodon_status,
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/accounts/1/statuses"))
        .respond_with(OwnPosts {
            posted: posted.clone(),
            page: |posts| posts.iter().map(mastodon_status).collect(),
        })
        .mount(&server)
        .await;
    server
}

const X_ME: &str = "4200000000";
const X_MENTION: &str = "1900000000000000001";

fn x_post(c: &Created) -> Value {
    json!({"id": c.id, "text": c.text, "author_id": X_ME, "created_at": now(),
           "referenced_posts": [{"type": "replied_to", "id": c.parent}]})
}

/// An X API: who am I, one mention, the slow post endpoint without idempotency and the
/// account's own posts.
async fn x(posted: &Posted) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"id": X_ME, "name": "Acme Care", "username": "acmecare"}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{X_ME}/mentions")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": X_MENTION, "text": format!("@acmecare {MENTION_TEXT}"),
                      "author_id": "111", "created_at": "2026-11-21T10:00:00.000Z",
                      "conversation_id": X_MENTION, "edit_history_post_ids": [X_MENTION]}],
            "includes": {"users": [{"id": "111", "username": "maria_l", "name": "Maria Lopez",
                                    "description": ""}]},
            "meta": {"newest_id": X_MENTION, "oldest_id": X_MENTION, "result_count": 1}
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(SlowPost {
            posted: posted.clone(),
            dedup: false,
            answer: |c| json!({"data": {"id": c.id, "text": c.text}}),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/2/users/{X_ME}/tweets")))
        .respond_with(OwnPosts {
            posted: posted.clone(),
            page: |posts| {
                let data: Vec<Value> = posts.iter().map(x_post).collect();
                json!({"data": data, "meta": {"result_count": data.len()}})
            },
        })
        .mount(&server)
        .await;
    server
}

/// Points the home's one account at `base`, with requests abandoned after `timeout` seconds.
pub(crate) fn configure(h: &Path, platform: &str, base: &str, timeout: u64) {
    std::fs::create_dir_all(h).unwrap();
    std::fs::write(
        h.join("config.toml"),
        format!(
            "operator = \"Tess Tester\"\n\n[poll]\nrequest_timeout_secs = {timeout}\n\n[[account]]\n\
             name = \"care\"\nplatform = \"{platform}\"\n\
             base_url = \"{base}\"\nhandle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_TOKEN\"\n"
        ),
    )
    .unwrap();
}

fn td(h: &Path) -> Command {
    let mut c = crate::td(h);
    c.env("TONEDESK_TEST_TOKEN", "test-token-123");
    c
}

/// Runs the binary to the end, off the async runtime the fake server lives on.
async fn run(h: &Path, args: &[&str]) -> Output {
    let mut c = td(h);
    c.args(args);
    crate::output_off_runtime(c).await
}

async fn ok(h: &Path, args: &[&str]) -> Output {
    let o = run(h, args).await;
    assert!(
        o.status.success(),
        "tonedesk {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Starts `reply <id> --template complaint-ack --yes` in the background.
fn start_reply(h: &Path, id: &str) -> Child {
    td(h)
        .args(["reply", id, "--template", "complaint-ack", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tonedesk reply")
}

/// Waits (polling, bounded) until `ready` holds while the child is still running, then kills it
/// with SIGKILL and checks that the signal is what ended it.
async fn kill_when(child: &mut Child, what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the reply ended before {what}"
        );
        if ready().await {
            break;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("kill -9");
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed, not finished: {status:?}");
}

async fn posts_received(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect()
}

fn outbox(h: &Path) -> Vec<(String, Option<String>, String)> {
    let db = rusqlite::Connection::open(h.join("tonedesk.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT state, remote_id, idem_key FROM outbox ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn audit(h: &Path) -> Vec<Value> {
    let o = ok(h, &["audit", "export", "--format", "jsonl"]).await;
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Polls the configured account and returns the one mention's id.
async fn poll_the_mention(h: &Path) -> String {
    ok(h, &["poll", "--once"]).await;
    let q: Vec<Value> = serde_json::from_slice(&ok(h, &["queue", "--json"]).await.stdout).unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    q[0]["id"].as_i64().unwrap().to_string()
}

/// The crash while the post is at the platform, then reconciliation at the next start.
async fn killed_after_the_post_arrived(platform: &str, server: &MockServer, posted: &Posted) {
    let (_d, h) = home();
    configure(&h, platform, &server.uri(), 30);
    let id = poll_the_mention(&h).await;

    let mut child = start_reply(&h, &id);
    kill_when(&mut child, "the post reached the platform", async || {
        !posts_received(server).await.is_empty()
    })
    .await;

    // The crash left the send open: an outbox row in 'pending' and an intent without a result,
    // which `audit verify` names with the way out.
    assert_eq!(outbox(&h)[0].0, "pending");
    let v = run(&h, &["audit", "verify"]).await;
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).starts_with(&format!(
            "entry 1: the send_intent to mention {id} has no send_result"
        )),
        "{}",
        stdout(&v)
    );
    assert!(stdout(&v).contains("run `tonedesk poll --once`"));

    // The next start settles it by asking the platform, without posting.
    let o = ok(&h, &["poll", "--once"]).await;
    assert!(
        stderr(&o).contains(&format!(
            "reconciled an unfinished send to mention {id}: sent"
        )),
        "{}",
        stderr(&o)
    );
    let made = posted.lock().unwrap().clone();
    assert_eq!(made.len(), 1, "one post on the platform: {made:?}");
    assert_eq!(
        made[0].parent,
        if platform == "x" { X_MENTION } else { "1001" }
    );
    let rows = outbox(&h);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "sent");
    assert_eq!(rows[0].1.as_deref(), Some(made[0].id.as_str()));

    let v = ok(&h, &["audit", "verify"]).await;
    assert!(stdout(&v).contains("intact: 2 entries"), "{}", stdout(&v));
    let log = audit(&h).await;
    assert_eq!(log.len(), 2, "{log:?}");
    let (intent, result) = (&log[0], &log[1]);
    assert_eq!(intent["action"], "send_intent");
    assert_eq!(result["action"], "send_result");
    assert_eq!(result["outcome"], "sent");
    assert_eq!(result["remote_id"], made[0].id.as_str());
    assert_eq!(intent["attempt"], rows[0].2.as_str());
    assert_eq!(result["attempt"], intent["attempt"]);
    assert_eq!(intent["mention"], result["mention"]);
    for e in [intent, result] {
        assert_eq!(e["operator"], "Tess Tester");
        assert!(e["host"].as_str().is_some_and(|h| !h.is_empty()), "{e}");
    }

    // A second reply to the same mention is refused before anything leaves.
    let again = run(&h, &["reply", &id, "--template", "complaint-ack", "--yes"]).await;
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("rule 'answered'"),
        "{}",
        stderr(&again)
    );
    let requests = posts_received(server).await;
    assert_eq!(requests.len(), 1, "one request in all");
    if platform == "mastodon" {
        assert_eq!(
            requests[0]
                .headers
                .get("idempotency-key")
                .and_then(|k| k.to_str().ok()),
            Some(rows[0].2.as_str()),
            "the post carried the outbox's key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_post_reached_mastodon_is_settled_as_sent() {
    let posted = Posted::default();
    let server = mastodon(&posted).await;
    killed_after_the_post_arrived("mastodon", &server, &posted).await;
}

/// X has no idempotency: the same crash is settled by finding the post among the account's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_post_reached_x_is_settled_as_sent() {
    let posted = Posted::default();
    let server = x(&posted).await;
    killed_after_the_post_arrived("x", &server, &posted).await;
}

/// The crash before the post reached the platform: the reply goes to a port that takes
/// connections but never reads them, and is killed once its intent is written. Reconciliation
/// finds nothing on the platform; once no request of the dead sender can still arrive, it settles
/// the attempt as `failed` (the platform was asked and certainly has no such post), which leaves
/// the mention open: the next reply posts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_post_left_is_settled_as_failed_and_posts_once() {
    let posted = Posted::default();
    let server = mastodon(&posted).await;
    let (_d, h) = home();
    configure(&h, "mastodon", &server.uri(), 1);
    let id = poll_the_mention(&h).await;

    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    configure(
        &h,
        "mastodon",
        &format!("http://{}", hole.local_addr().unwrap()),
        1,
    );
    let mut child = start_reply(&h, &id);
    let home = h.clone();
    kill_when(&mut child, "the intent was written", async || {
        !outbox(&home).is_empty()
    })
    .await;
    drop(hole);
    assert_eq!(outbox(&h)[0].0, "pending");
    assert!(posts_received(&server).await.is_empty());

    configure(&h, "mastodon", &server.uri(), 1);
    // Right after the crash the request might still be on its way to the platform: not there
    // yet is not failed, until every attempt of the dead sender would have timed out
    // (`longest_send`: 5 × the 1 s timeout + backoffs, about 10 s).
    let o = ok(&h, &["poll", "--once"]).await;
    assert!(
        stderr(&o).contains(&format!(
            "an unfinished send to mention {id} is not settled yet: not on the platform yet"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(outbox(&h)[0].0, "pending");
    let early = run(&h, &["reply", &id, "--template", "complaint-ack", "--yes"]).await;
    assert_eq!(early.status.code(), Some(3), "{}", stderr(&early));
    assert!(posts_received(&server).await.is_empty());
    tokio::time::sleep(Duration::from_secs(11)).await;
    let o = ok(&h, &["poll", "--once"]).await;
    assert!(
        stderr(&o).contains(&format!(
            "reconciled an unfinished send to mention {id}: failed (reconciled: not found on the platform)"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(outbox(&h)[0].0, "failed");
    assert!(posted.lock().unwrap().is_empty(), "nothing was posted");
    let v = ok(&h, &["audit", "verify"]).await;
    assert!(stdout(&v).contains("intact: 2 entries"), "{}", stdout(&v));
    let log = audit(&h).await;
    assert_eq!(
        (log[0]["action"].as_str(), log[1]["outcome"].as_str()),
        (Some("send_intent"), Some("failed"))
    );
    assert_eq!(log[1]["attempt"], log[0]["attempt"]);

    // The operator replies again: one post, under a new attempt (given time for the slow post).
    configure(&h, "mastodon", &server.uri(), 30);
    let o = ok(&h, &["reply", &id, "--template", "complaint-ack", "--yes"]).await;
    assert!(stdout(&o).starts_with("sent:"), "{}", stdout(&o));
    assert_eq!(posted.lock().unwrap().len(), 1);
    assert_eq!(posts_received(&server).await.len(), 1);
    let rows = outbox(&h);
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["failed", "sent"]
    );
    assert_ne!(rows[0].2, rows[1].2);
    let v = ok(&h, &["audit", "verify"]).await;
    assert!(stdout(&v).contains("intact: 4 entries"), "{}", stdout(&v));
}
