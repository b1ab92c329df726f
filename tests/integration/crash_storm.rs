//! `kill -9` at random moments during 200 sends (issue 6): several `tonedesk reply` processes at
//! a time answer 200 mentions on a slow Mastodon, or a slow X, faked over loopback, and a seeded
//! generator kills
//! some of them at any point (starting, reconciling another's crash, between intent and post,
//! while the server holds the post before or after creating it). Killed sends are rerun until
//! every mention is answered or settled. Then: at most one post per mention (exactly one where
//! the audit says sent), every post has its intent and its result with the post's id, the next
//! start leaves nothing in flight, `audit verify` passes and the database is intact.
//!
//! The server is a small HTTP/1.1 server rather than wiremock: it must take time *before*
//! creating a post too, and keep going when the client that sent it is gone, as a real server
//! does. As Mastodon it honours `Idempotency-Key` (the same key gives back the same status); as X
//! it has no idempotency, as X has none, so a crashed send is settled only by finding the post
//! among the account's own (`find_sent`). `TONEDESK_CRASH_SEED` repeats a run.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::live::{account, status};
use crate::{Rng, home, stderr, stdout};

pub(crate) const MENTIONS: usize = 200;
/// `reply` processes running at once.
const PARALLEL: usize = 6;
/// Share of `reply` processes killed, per thousand.
const KILL_PER_MILLE: u64 = 500;
/// A kill lands this long after the start at most. A reply takes some 250 ms here (the start, the
/// intent, the post held by the server, the result), up to 650: with kills spread over 700 ms, one
/// run in many landed too few of them in a reply (35 of the 40 asked for, 33 of them mid-send).
const KILL_WITHIN_MS: u64 = 400;
/// The server holds a post this long at most before creating it, and again before answering.
const HOLD_MS: u64 = 300;
pub(crate) const TOKEN: &str = "storm-token-7";

/// The API the fake server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Mastodon,
    X,
}

fn mention_status(i: usize) -> String {
    (113_600_000_000_000 + 11 * i as u64).to_string()
}

/// The X account's own user id, and the id of the X post that is mention `i`.
const X_ME: &str = "4200000000";
fn mention_post(i: usize) -> u64 {
    1_900_000_000_000_000_000 + 11 * i as u64
}

/// One status the server created.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    key: Option<String>,
    id: String,
    parent: String,
    text: String,
    at: String,
}

pub(crate) struct Server {
    api: Api,
    /// The mentions by id, oldest first: Mastodon notifications, or X posts with their author
    /// (`{"post", "user"}`).
    notes: Vec<(u64, Value)>,
    /// Notifications shown (the oldest first).
    pub(crate) visible: usize,
    /// Show all of them once the first page was asked for (a first poll reads only the newest
    /// page).
    reveal_all: bool,
    pub(crate) posts: Vec<Post>,
    rng: Rng,
    /// POSTs received.
    requests: usize,
    problems: Vec<String>,
}

fn own_status(p: &Post) -> Value {
    let mut s = status(
        &p.id,
        account("1", "acmecare", "Acme Care"),
        &format!(
            "<p>{}</p>",
            p.text.replace('&', "&amp;").replace('<', "&lt;")
        ),
        Some(&p.parent),
    );
    s["created_at"] = p.at.clone().into();
    s["visibility"] = "unlisted".into();
    s
}

/// One of the X account's own posts, as `GET /2/users/{id}/tweets` lists it.
fn own_post(p: &Post) -> Value {
    json!({"id": p.id, "text": p.text, "author_id": X_ME, "created_at": p.at,
           "referenced_posts": [{"type": "replied_to", "id": p.parent}]})
}

fn http(code: u16, body: &str) -> Vec<u8> {
    let reason = if code == 200 { "OK" } else { "Not Found" };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The query parameter `name` of `url` as a number.
fn query_number(url: &reqwest::Url, name: &str) -> Option<u64> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.parse().ok())
}

impl Server {
    fn get(&mut self, target: &str) -> Vec<u8> {
        match self.api {
            Api::Mastodon => self.get_mastodon(target),
            Api::X => self.get_x(target),
        }
    }

    /// X: who am I, the mentions (newest first, after `since_id`, paged by an offset as the
    /// token) and the account's own posts.
    fn get_x(&mut self, target: &str) -> Vec<u8> {
        let url = reqwest::Url::parse(&format!("http://server{target}")).expect("a target");
        let num = |k: &str| query_number(&url, k);
        let limit = num("max_results").unwrap_or(10) as usize;
        let since = num("since_id").unwrap_or(0);
        let offset = num("pagination_token").unwrap_or(0) as usize;
        // One page of `items` (newest first) from the offset, with X's `meta`.
        let page = |items: Vec<(u64, Value)>| -> (Vec<Value>, Value) {
            let end = items.len().min(offset + limit);
            let chosen: Vec<(u64, Value)> = items.get(offset..end).unwrap_or_default().to_vec();
            let mut meta = json!({"result_count": chosen.len()});
            if let (Some(first), Some(last)) = (chosen.first(), chosen.last()) {
                meta["newest_id"] = first.0.to_string().into();
                meta["oldest_id"] = last.0.to_string().into();
            }
            if end < items.len() {
                meta["next_token"] = end.to_string().into();
            }
            (chosen.into_iter().map(|(_, v)| v).collect(), meta)
        };
        let path = url.path().to_owned();
        if path == "/2/users/me" {
            return http(
                200,
                &json!({"data": {"id": X_ME, "name": "Acme Care", "username": "acmecare"}})
                    .to_string(),
            );
        }
        if path == format!("/2/users/{X_ME}/mentions") {
            let shown: Vec<(u64, Value)> = self.notes[..self.visible]
                .iter()
                .rev()
                .filter(|(id, _)| *id > since)
                .cloned()
                .collect();
            if self.reveal_all {
                self.visible = self.notes.len();
            }
            let (items, meta) = page(shown);
            let posts: Vec<&Value> = items.iter().map(|n| &n["post"]).collect();
            let users: Vec<&Value> = items.iter().map(|n| &n["user"]).collect();
            return http(
                200,
                &json!({"data": posts, "includes": {"users": users}, "meta": meta}).to_string(),
            );
        }
        if path == format!("/2/users/{X_ME}/tweets") {
            let own: Vec<(u64, Value)> = self
                .posts
                .iter()
                .rev()
                .filter_map(|p| Some((p.id.parse::<u64>().ok()?, own_post(p))))
                .filter(|(id, _)| *id > since)
                .collect();
            let (data, meta) = page(own);
            return http(200, &json!({"data": data, "meta": meta}).to_string());
        }
        self.problems.push(format!("unexpected GET {path}"));
        http(404, "{\"title\":\"Not Found Error\"}")
    }

    fn get_mastodon(&mut self, target: &str) -> Vec<u8> {
        let url = reqwest::Url::parse(&format!("http://server{target}")).expect("a target");
        let num = |k: &str| query_number(&url, k);
        let limit = num("limit").unwrap_or(40) as usize;
        match url.path() {
            "/api/v1/notifications" => {
                let shown = &self.notes[..self.visible];
                if self.reveal_all {
                    self.visible = self.notes.len();
                }
                let page: Vec<&Value> = match num("min_id") {
                    // The oldest `limit` after the cursor, newest first.
                    Some(min) => {
                        let mut p: Vec<&Value> = shown
                            .iter()
                            .filter(|(id, _)| *id > min)
                            .take(limit)
                            .map(|(_, n)| n)
                            .collect();
                        p.reverse();
                        p
                    }
                    None => shown.iter().rev().take(limit).map(|(_, n)| n).collect(),
                };
                http(200, &serde_json::to_string(&page).expect("json"))
            }
            "/api/v1/accounts/verify_credentials" => {
                http(200, &account("1", "acmecare", "Acme Care").to_string())
            }
            "/api/v1/accounts/1/statuses" => {
                let below = num("max_id").unwrap_or(u64::MAX);
                let page: Vec<Value> = self
                    .posts
                    .iter()
                    .rev()
                    .filter(|p| p.id.parse::<u64>().is_ok_and(|id| id < below))
                    .take(limit)
                    .map(own_status)
                    .collect();
                http(200, &Value::Array(page).to_string())
            }
            other => {
                self.problems.push(format!("unexpected GET {other}"));
                http(404, "{\"error\":\"Record not found\"}")
            }
        }
    }

    /// Creates the status or post (or, on Mastodon, finds the one its key already made).
    fn post(&mut self, key: Option<String>, body: &Value) -> Post {
        if let Some(same) = self.posts.iter().find(|p| key.is_some() && p.key == key) {
            return same.clone();
        }
        let n = self.posts.len() as u64 + 1;
        let (id, parent, text) = match self.api {
            Api::Mastodon => (
                114_000_000_000_000 + n,
                &body["in_reply_to_id"],
                &body["status"],
            ),
            Api::X => (
                1_950_000_000_000_000_000 + n,
                &body["reply"]["in_reply_to_tweet_id"],
                &body["text"],
            ),
        };
        let p = Post {
            key,
            id: id.to_string(),
            parent: parent.as_str().unwrap_or_default().to_owned(),
            text: text.as_str().unwrap_or_default().to_owned(),
            at: OffsetDateTime::now_utc().format(&Rfc3339).expect("now"),
        };
        self.posts.push(p.clone());
        p
    }
}

async fn handle(mut sock: TcpStream, state: Arc<Mutex<Server>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_owned)
    };
    let length: usize = header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let original = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let target = original.split_whitespace().nth(1).unwrap_or("/").to_owned();
    if header("authorization").as_deref() != Some(&format!("bearer {TOKEN}")) {
        let _ = sock.write_all(&http(404, "{\"error\":\"no token\"}")).await;
        return;
    }
    let api = state.lock().expect("state").api;
    let posting = match api {
        Api::Mastodon => original.starts_with("POST /api/v1/statuses"),
        Api::X => original.starts_with("POST /2/tweets"),
    };
    let answer = if posting {
        // The idempotency key as sent (header names are case-insensitive, values are not).
        let key = original.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("idempotency-key")
                .then(|| value.trim().to_owned())
        });
        let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or_default();
        let (before, after) = {
            let mut s = state.lock().expect("state");
            s.requests += 1;
            (s.rng.below(HOLD_MS), s.rng.below(HOLD_MS))
        };
        // The post is made whether or not its client is still there to hear about it.
        tokio::time::sleep(Duration::from_millis(before)).await;
        let made = state.lock().expect("state").post(key, &body);
        tokio::time::sleep(Duration::from_millis(after)).await;
        match api {
            Api::Mastodon => http(200, &own_status(&made).to_string()),
            Api::X => http(
                200,
                &json!({"data": {"id": made.id, "text": made.text}}).to_string(),
            ),
        }
    } else if original.starts_with("GET ") {
        state.lock().expect("state").get(&target)
    } else {
        http(404, "{}")
    };
    let _ = sock.write_all(&answer).await;
    let _ = sock.shutdown().await;
}

/// A Mastodon server on loopback with `MENTIONS` mention notifications, `visible` of them shown
/// at first; `reveal_all` shows the rest once the first page was read. Returns its base URL.
pub(crate) async fn start(
    seed: u64,
    visible: usize,
    reveal_all: bool,
) -> (String, Arc<Mutex<Server>>) {
    start_on(Api::Mastodon, seed, visible, reveal_all).await
}

/// The same as [`start`], speaking `api`.
pub(crate) async fn start_on(
    api: Api,
    seed: u64,
    visible: usize,
    reveal_all: bool,
) -> (String, Arc<Mutex<Server>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(30);
    let x_note = |i: usize| {
        let at = (now + time::Duration::seconds(i as i64))
            .format(&Rfc3339)
            .expect("time");
        let id = mention_post(i);
        let author = (7000 + i).to_string();
        let post = json!({"id": id.to_string(), "author_id": author, "created_at": at,
                          "text": "@acmecare the copay card was rejected again & nobody calls back",
                          "conversation_id": id.to_string(),
                          "edit_history_post_ids": [id.to_string()]});
        let user = json!({"id": author, "username": format!("patient{i}"),
                          "name": format!("Sam{i} Doe"), "description": ""});
        (id, json!({"post": post, "user": user}))
    };
    let mastodon_note = |i: usize| {
        let who = account(
            &(7000 + i).to_string(),
            &format!("patient{i}@clinic.example"),
            &format!("Sam{i} Doe"),
        );
        let mut s = status(
            &mention_status(i),
            who.clone(),
            "<p>@acmecare the copay card was rejected again &amp; nobody calls back</p>",
            None,
        );
        let at = (now + time::Duration::seconds(i as i64))
            .format(&Rfc3339)
            .expect("time");
        s["created_at"] = at.clone().into();
        let id = 120_000_000_000 + 3 * i as u64;
        let note = json!({"id": id.to_string(), "type": "mention", "created_at": at,
                              "account": who, "status": s});
        (id, note)
    };
    let notes = (0..MENTIONS)
        .map(|i| match api {
            Api::Mastodon => mastodon_note(i),
            Api::X => x_note(i),
        })
        .collect();
    let state = Arc::new(Mutex::new(Server {
        api,
        notes,
        visible,
        reveal_all,
        posts: Vec::new(),
        rng: Rng(seed ^ 0x9E37_79B9_7F4A_7C15),
        requests: 0,
        problems: Vec::new(),
    }));
    let s = state.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(handle(sock, s.clone()));
        }
    });
    (base, state)
}

/// A home whose one account is the fake Mastodon server's (requests time out after a second).
pub(crate) fn configure(h: &Path, base: &str) {
    configure_on(h, Api::Mastodon, base);
}

/// The same as [`configure`], for a server speaking `api`.
pub(crate) fn configure_on(h: &Path, api: Api, base: &str) {
    let platform = match api {
        Api::Mastodon => "mastodon",
        Api::X => "x",
    };
    std::fs::create_dir_all(h).expect("home");
    std::fs::write(
        h.join("config.toml"),
        format!(
            "operator = \"Tess Tester\"\n\n[poll]\nrequest_timeout_secs = 1\n\n[[account]]\n\
             name = \"care\"\nplatform = \"{platform}\"\nbase_url = \"{base}\"\n\
             handle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_TOKEN\"\n"
        ),
    )
    .expect("config");
}

/// The binary with the fake server's token.
pub(crate) fn td(h: &Path) -> std::process::Command {
    let mut c = crate::td(h);
    c.env("TONEDESK_TEST_TOKEN", TOKEN);
    c
}

/// The outbox as it stands: mention → states of its rows, oldest first.
fn outbox(h: &Path) -> BTreeMap<i64, Vec<String>> {
    let db = rusqlite::Connection::open(h.join("tonedesk.db")).expect("open the database");
    db.busy_timeout(Duration::from_secs(5)).expect("timeout");
    let mut stmt = db
        .prepare("SELECT mention_id, state FROM outbox ORDER BY id")
        .expect("prepare");
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .expect("query");
    for row in rows {
        let (m, state) = row.expect("row");
        out.entry(m).or_default().push(state);
    }
    out
}

/// What the test does with a mention next, from its outbox rows.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// No reply yet, or only failed ones: reply.
    Reply,
    /// A crash left it pending: a later start reconciles it.
    Wait,
    /// Sent or unknown (a person checks an unknown one): nothing more to do.
    Settled,
}

fn next(rows: Option<&Vec<String>>) -> Next {
    let rows = rows.map(Vec::as_slice).unwrap_or_default();
    if rows.iter().any(|s| s == "sent" || s == "unknown") {
        Next::Settled
    } else if rows.iter().any(|s| s == "pending") {
        Next::Wait
    } else {
        Next::Reply
    }
}

struct Running {
    child: Child,
    mention: i64,
    kill_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Counts {
    started: usize,
    killed: usize,
    /// Kills that left a send open (after its intent, before its result).
    mid_send: usize,
    exited: BTreeMap<i32, usize>,
    starts_to_reconcile: usize,
}

/// Starts replies, kills some, and reruns until every mention is settled or the deadline.
fn storm(h: &Path, ids: &[i64], seed: u64, deadline: Instant) -> Counts {
    let mut rng = Rng(seed);
    let mut counts = Counts::default();
    let mut running: Vec<Running> = Vec::new();
    let reply = |m: i64| {
        td(h)
            .args([
                "reply",
                &m.to_string(),
                "--template",
                "complaint-ack",
                "--yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tonedesk reply")
    };
    loop {
        // Reap and kill.
        let now = Instant::now();
        let mut killed_now = Vec::new();
        running.retain_mut(|r| {
            if r.kill_at.is_some_and(|at| now >= at) {
                if r.child.try_wait().expect("child").is_none() {
                    r.child.kill().expect("kill -9");
                }
                let status = r.child.wait().expect("wait");
                if status.signal() == Some(9) {
                    counts.killed += 1;
                    killed_now.push(r.mention);
                } else {
                    *counts
                        .exited
                        .entry(status.code().unwrap_or(-1))
                        .or_default() += 1;
                }
                return false;
            }
            match r.child.try_wait().expect("child") {
                None => true,
                Some(status) => {
                    let code = status.code().unwrap_or(-1);
                    let mut err = String::new();
                    if let Some(mut e) = r.child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    // 0 sent, 3 refused (answered meanwhile, by this start's reconciling), 1
                    // a send whose outcome is failed or unknown (said on stderr).
                    assert!(
                        code == 0
                            || code == 3
                            || (code == 1 && err.contains("check before sending again")),
                        "reply to mention {} exited {code}: {err}",
                        r.mention
                    );
                    *counts.exited.entry(code).or_default() += 1;
                    false
                }
            }
        });
        let rows = outbox(h);
        counts.mid_send += killed_now
            .iter()
            .filter(|m| {
                rows.get(m)
                    .and_then(|r| r.last())
                    .is_some_and(|s| s == "pending")
            })
            .count();
        let busy: BTreeSet<i64> = running.iter().map(|r| r.mention).collect();
        let todo: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|m| next(rows.get(m)) == Next::Reply && !busy.contains(m))
            .collect();
        let waiting = ids
            .iter()
            .filter(|m| next(rows.get(m)) == Next::Wait)
            .count();
        if todo.is_empty() && waiting == 0 && running.is_empty() {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "not settled in time: {} to reply, {waiting} pending, {} running; {counts:?}",
            todo.len(),
            running.len()
        );
        if todo.is_empty() && running.is_empty() {
            // Only crashed sends are left: any start reconciles them (the queue is one).
            let o = td(h).args(["queue", "--json"]).output().expect("queue");
            assert!(o.status.success(), "{}", stderr(&o));
            counts.starts_to_reconcile += 1;
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        for &m in todo.iter().take(PARALLEL.saturating_sub(running.len())) {
            let kill_at = (rng.below(1000) < KILL_PER_MILLE)
                .then(|| Instant::now() + Duration::from_millis(rng.below(KILL_WITHIN_MS)));
            running.push(Running {
                child: reply(m),
                mention: m,
                kill_at,
            });
            counts.started += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_storm_of_kill_9_during_200_sends_posts_each_reply_at_most_once() {
    crash_storm(Api::Mastodon).await;
}

/// The same on X, which has no idempotency: what a crash left in flight is settled only by
/// looking for the post among the account's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_storm_on_x_without_idempotency_posts_each_reply_at_most_once() {
    crash_storm(Api::X).await;
}

async fn crash_storm(api: Api) {
    let started = Instant::now();
    let seed = std::env::var("TONEDESK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 | 1);
    println!("crash storm on {api:?}, seed {seed} (TONEDESK_CRASH_SEED={seed} repeats it)");
    let (base, server) = start_on(api, seed, 80, true).await;
    let (_d, h) = home();
    configure_on(&h, api, &base);

    let h2 = h.clone();
    let (ids, counts) = tokio::task::spawn_blocking(move || {
        // The first page shows 80 mentions, and the rest come once it was read: a Mastodon poll
        // asks again at once, an X poll (no next page) on its next run.
        let polls = match api {
            Api::Mastodon => 1,
            Api::X => 2,
        };
        for _ in 0..polls {
            let o = td(&h2).args(["poll", "--once"]).output().expect("poll");
            assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        }
        let q = crate::queue(&h2);
        let ids: Vec<i64> = q.iter().filter_map(|m| m["id"].as_i64()).collect();
        assert_eq!(ids.len(), MENTIONS, "every mention cached");
        assert!(
            q.iter()
                .all(|m| m["tone"] == "complaint" && m["state"] == "open")
        );
        let counts = storm(&h2, &ids, seed, started + Duration::from_secs(75));
        (ids, counts)
    })
    .await
    .expect("join");
    let storm_time = started.elapsed();

    // The next start: reconciling finds nothing left in flight.
    let h2 = h.clone();
    let (next_start, verify, log) = tokio::task::spawn_blocking(move || {
        let o = td(&h2).args(["poll", "--once"]).output().expect("poll");
        let v = crate::run(&h2, &["audit", "verify"]);
        let log: Vec<Value> = crate::ok(&h2, &["audit", "export", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        (o, v, log)
    })
    .await
    .expect("join");
    assert!(
        next_start.status.success(),
        "{}\n{}",
        stdout(&next_start),
        stderr(&next_start)
    );
    assert!(
        !stderr(&next_start).contains("reconciled"),
        "nothing was left to reconcile: {}",
        stderr(&next_start)
    );

    let (posts, requests, problems) = {
        let s = server.lock().expect("state");
        (s.posts.clone(), s.requests, s.problems.clone())
    };
    let rows = outbox(&h);
    let sent = log
        .iter()
        .filter(|e| e["action"] == "send_result" && e["outcome"] == "sent")
        .count();
    let unknown = log
        .iter()
        .filter(|e| e["action"] == "send_result" && e["outcome"] == "unknown")
        .count();
    let failed = log
        .iter()
        .filter(|e| e["action"] == "send_result" && e["outcome"] == "failed")
        .count();
    println!(
        "crash storm on {api:?}: {} replies started, {} killed ({} between intent and result), exits {:?}, \
         {} extra starts to reconcile; {requests} posts asked for, {} made; results: {sent} \
         sent, {failed} failed, {unknown} unknown; {:.1?} (storm {:.1?})",
        counts.started,
        counts.killed,
        counts.mid_send,
        counts.exited,
        counts.starts_to_reconcile,
        posts.len(),
        started.elapsed(),
        storm_time,
    );
    assert!(problems.is_empty(), "{problems:?}");

    // At most one post per mention.
    let mut per_parent: BTreeMap<&str, Vec<&Post>> = BTreeMap::new();
    for p in &posts {
        per_parent.entry(p.parent.as_str()).or_default().push(p);
    }
    let twice: Vec<_> = per_parent.values().filter(|v| v.len() > 1).collect();
    assert!(twice.is_empty(), "posted twice: {twice:#?}");

    // Every post has a result naming it, and that attempt its intent; on Mastodon the attempt is
    // the post's key.
    for p in &posts {
        let result = log
            .iter()
            .find(|e| e["action"] == "send_result" && e["remote_id"] == p.id.as_str())
            .unwrap_or_else(|| panic!("no result names post {p:?}"));
        let key = result["attempt"].as_str().expect("the result's attempt");
        match api {
            Api::Mastodon => assert_eq!(p.key.as_deref(), Some(key), "post {p:?}"),
            Api::X => assert_eq!(p.key, None, "X has no idempotency key"),
        }
        let of_attempt: Vec<&Value> = log.iter().filter(|e| e["attempt"] == key).collect();
        let actions: Vec<&str> = of_attempt
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["send_intent", "send_result"], "post {p:?}");
        assert_eq!(
            of_attempt[1]["outcome"], "sent",
            "post {p:?}: {}",
            of_attempt[1]
        );
        assert_eq!(of_attempt[1]["remote_id"], p.id.as_str(), "post {p:?}");
    }
    // Every mention the audit calls sent has exactly its one post; every mention is settled.
    let mention_remote: BTreeMap<i64, String> = crate::queue(&h)
        .iter()
        .map(|m| {
            (
                m["id"].as_i64().expect("id"),
                m["remote_id"].as_str().expect("remote_id").to_owned(),
            )
        })
        .collect();
    for e in log
        .iter()
        .filter(|e| e["action"] == "send_result" && e["outcome"] == "sent")
    {
        let m = e["mention"].as_i64().expect("mention");
        let made = &per_parent[mention_remote[&m].as_str()];
        assert_eq!(made.len(), 1);
        assert_eq!(e["remote_id"], made[0].id.as_str());
    }
    assert_eq!(sent, posts.len(), "one sent result per post");
    for m in &ids {
        assert_eq!(
            next(rows.get(m)),
            Next::Settled,
            "mention {m}: {:?}",
            rows.get(m)
        );
    }
    assert!(
        rows.values().flatten().all(|s| s != "pending"),
        "nothing in flight after the next start"
    );
    assert!(
        counts.killed >= 40 && counts.mid_send >= 10,
        "too few kills to mean much: {counts:?}"
    );

    assert!(verify.status.success(), "{}", stdout(&verify));
    let db = rusqlite::Connection::open(h.join("tonedesk.db")).expect("open");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}
