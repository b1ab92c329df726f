//! Faults: the real binary polls a Mastodon server on loopback that serves 10,000 mentions and
//! breaks a third of its answers (429s, 5xx, bodies cut short, bodies that are not the JSON
//! expected, requests left hanging past the client's timeout) while keeping a real rate budget.
//! Afterwards every mention is cached exactly once and no request arrived while the budget was
//! spent.
//!
//! The server is a small HTTP/1.1 server on a `TcpListener` rather than wiremock: a body shorter
//! than its `Content-Length`, or a request that is never answered, cannot be made with wiremock.
//! Faults are drawn from a seeded generator, so a failing run can be repeated.

use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::live::{account, status};
use crate::{Rng, home, stderr, stdout};

/// Mentions the server holds.
const TOTAL: usize = 10_000;
/// Mentions there before the desk has a cursor (a first poll reads only the newest page).
const BEFORE: usize = 5;
/// Mentions that arrive with every request once the desk has a cursor.
const ARRIVALS: usize = 200;
/// Requests per rate window, and the window.
const LIMIT: u64 = 12;
const WINDOW: Duration = Duration::from_secs(2);
/// The client's `[poll] request_timeout_secs`; a hanging request is held longer than this.
const TIMEOUT_SECS: u64 = 2;
const TOKEN: &str = "faults-token-42";
const SEED: u64 = 0x5EED_FA17;

fn note_id(i: usize) -> u64 {
    110_000_000_000 + 7 * i as u64
}

fn status_id(i: usize) -> String {
    (113_500_000_000_000 + 13 * i as u64).to_string()
}

const TEXTS: [&str; 6] = [
    "<p><span class=\"h-card\"><a href=\"https://pharma.social/@acmecare\">@<span>acmecare</span></a></span> my Zyntriva refill is late again &amp; nobody answers</p>",
    "<p>@acmecare thank you, the nurse line was great today!</p>",
    "<p>@acmecare I got a rash and a headache after my second Zyntriva dose, is that normal?</p>",
    "<p>@acmecare where do I find the copay card form?</p>",
    "<p>@acmecare is it ok to take Zyntriva with ibuprofen?<br>asking for my mum</p>",
    "<p>@acmecare 🙂 switching pharmacies, does my prior auth carry over?</p>",
];

/// The notification JSON of mention `i`.
fn notification(i: usize) -> String {
    let who = account(
        &(9000 + i % 250).to_string(),
        &format!("patient{}@social{}.example", i % 250, i % 7),
        &format!("Patient {}", i % 250),
    );
    let mut s = status(&status_id(i), who.clone(), TEXTS[i % TEXTS.len()], None);
    if i.is_multiple_of(9) {
        s["visibility"] = "direct".into();
    }
    let minute = i % 60;
    s["created_at"] = format!("2026-11-21T10:{minute:02}:00.000Z").into();
    serde_json::json!({
        "id": note_id(i).to_string(), "type": "mention",
        "created_at": format!("2026-11-21T10:{minute:02}:01.000Z"),
        "account": who, "status": s
    })
    .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    TooMany,
    ServerError,
    /// `Content-Length` promises more than is sent, then the connection closes.
    CutShort,
    /// Half a JSON document, with a `Content-Length` that matches it.
    CutJson,
    /// A 200 whose body is not the JSON expected (an HTML page, an object, a bad token).
    Malformed,
    /// No answer until after the client has given up.
    Hang,
}

#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    too_many: usize,
    server_error: usize,
    cut_short: usize,
    cut_json: usize,
    malformed: usize,
    hang: usize,
    /// Windows whose budget the desk spent to the last request.
    spent: usize,
    violations: Vec<String>,
    protocol: Vec<String>,
}

impl Tally {
    fn faults(&self) -> usize {
        self.too_many
            + self.server_error
            + self.cut_short
            + self.cut_json
            + self.malformed
            + self.hang
    }
}

struct State {
    notes: Vec<String>,
    visible: usize,
    /// Set by the first request with a `min_id`: from then on, mentions arrive.
    arriving: bool,
    rng: Rng,
    faults: bool,
    remaining: u64,
    reset_at: SystemTime,
    tally: Tally,
    base: String,
}

enum Reply {
    Full(Vec<u8>),
    /// Bytes to send before closing without the rest.
    Short(Vec<u8>),
    Hang,
}

impl State {
    /// A fault for 42% of requests (the test asks for at least 30%).
    fn fault(&mut self) -> Option<Fault> {
        let r = self.rng.below(1000);
        Some(match r {
            0..80 => Fault::TooMany,
            80..200 => Fault::ServerError,
            200..260 => Fault::CutShort,
            260..320 => Fault::CutJson,
            320..390 => Fault::Malformed,
            390..420 => Fault::Hang,
            _ => return None,
        })
    }

    fn answer(&mut self, head: &str) -> Reply {
        let now = SystemTime::now();
        self.tally.requests += 1;
        if now >= self.reset_at {
            self.remaining = LIMIT;
            self.reset_at = now + WINDOW;
        }
        let reset = OffsetDateTime::from(self.reset_at)
            .format(&Rfc3339)
            .expect("format the reset");
        if self.remaining == 0 {
            let left = self.reset_at.duration_since(now).unwrap_or_default();
            self.tally.violations.push(format!(
                "request {} came {left:?} before the reset with no budget left",
                self.tally.requests
            ));
            return Reply::Full(response(
                429,
                &[("Retry-After", "3".into())],
                &reset,
                0,
                b"{\"error\":\"Too many requests\"}",
            ));
        }
        self.remaining -= 1;
        if self.remaining == 0 {
            self.tally.spent += 1;
        }
        let remaining = self.remaining;
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let url = reqwest::Url::parse(&format!("http://server{target}")).expect("a target");
        if !head.to_ascii_lowercase().contains(&format!(
            "\r\nauthorization: bearer {}\r\n",
            TOKEN.to_ascii_lowercase()
        )) {
            self.tally.protocol.push(format!("no token on {target}"));
            return Reply::Full(response(401, &[], &reset, remaining, b"{\"error\":\"no\"}"));
        }
        let q = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        if self.arriving {
            self.visible = (self.visible + ARRIVALS).min(TOTAL);
        }
        let (body, link) = match url.path() {
            "/api/v1/notifications" => {
                if q("types[]").as_deref() != Some("mention") {
                    self.tally
                        .protocol
                        .push(format!("not only mentions: {target}"));
                }
                let num = |k: &str| q(k).and_then(|v| v.parse::<u64>().ok());
                if num("min_id").is_some() {
                    self.arriving = true;
                }
                let limit = num("limit").unwrap_or(40).min(80) as usize;
                let low = num("min_id").max(num("since_id"));
                let high = num("max_id");
                let ids = &(0..self.visible).map(note_id).collect::<Vec<_>>();
                let from = low.map_or(0, |l| ids.partition_point(|&id| id <= l));
                let to = high.map_or(ids.len(), |h| ids.partition_point(|&id| id < h));
                let to = to.max(from);
                // min_id: the items right after it; otherwise the newest. Newest first.
                let range = if num("min_id").is_some() {
                    from..(from + limit).min(to)
                } else {
                    to.saturating_sub(limit).max(from)..to
                };
                let mut page: Vec<&str> = self.notes[range.clone()]
                    .iter()
                    .map(String::as_str)
                    .collect();
                page.reverse();
                let mut links = Vec::new();
                if page.len() == limit {
                    links.push(format!(
                        "<{}/api/v1/notifications?types%5B%5D=mention&limit={limit}&max_id={}>; rel=\"next\"",
                        self.base, ids[range.start]
                    ));
                }
                if !page.is_empty() {
                    links.push(format!(
                        "<{}/api/v1/notifications?types%5B%5D=mention&limit={limit}&min_id={}>; rel=\"prev\"",
                        self.base,
                        ids[range.end - 1]
                    ));
                }
                (format!("[{}]", page.join(",")), links.join(", "))
            }
            "/api/v1/accounts/verify_credentials" => (
                account("1", "acmecare", "Acme Care").to_string(),
                String::new(),
            ),
            other => {
                self.tally.protocol.push(format!("unexpected {other}"));
                return Reply::Full(response(
                    404,
                    &[],
                    &reset,
                    remaining,
                    b"{\"error\":\"Record not found\"}",
                ));
            }
        };
        let extra: Vec<(&str, String)> = if link.is_empty() {
            Vec::new()
        } else {
            vec![("Link", link)]
        };
        let fault = if self.faults { self.fault() } else { None };
        match fault {
            None => Reply::Full(response(200, &extra, &reset, remaining, body.as_bytes())),
            Some(Fault::TooMany) => {
                self.tally.too_many += 1;
                Reply::Full(response(
                    429,
                    &[("Retry-After", "1".into())],
                    &reset,
                    remaining,
                    b"{\"error\":\"Too many requests\"}",
                ))
            }
            Some(Fault::ServerError) => {
                self.tally.server_error += 1;
                let code = [500, 502, 503][self.tally.server_error % 3];
                Reply::Full(response(
                    code,
                    &[],
                    &reset,
                    remaining,
                    b"<html><body>We're sorry, but something went wrong.</body></html>",
                ))
            }
            Some(Fault::CutShort) => {
                self.tally.cut_short += 1;
                let mut full = response(200, &extra, &reset, remaining, body.as_bytes());
                full.truncate(full.len() - body.len() / 2);
                Reply::Short(full)
            }
            Some(Fault::CutJson) => {
                self.tally.cut_json += 1;
                let half = &body.as_bytes()[..body.len() / 2];
                Reply::Full(response(200, &extra, &reset, remaining, half))
            }
            Some(Fault::Malformed) => {
                self.tally.malformed += 1;
                let bad: &[u8] = match self.tally.malformed % 3 {
                    0 => b"<html><body>Bad gateway</body></html>",
                    1 => b"{\"notifications\": []}",
                    _ => b"[{\"id\": NaN, \"type\": \"mention\"}]",
                };
                Reply::Full(response(200, &extra, &reset, remaining, bad))
            }
            Some(Fault::Hang) => {
                self.tally.hang += 1;
                Reply::Hang
            }
        }
    }
}

fn response(
    code: u16,
    headers: &[(&str, String)],
    reset: &str,
    remaining: u64,
    body: &[u8],
) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nX-RateLimit-Limit: {LIMIT}\r\n\
         X-RateLimit-Remaining: {remaining}\r\nX-RateLimit-Reset: {reset}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

async fn handle(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let reply = state.lock().expect("state").answer(&head);
    match reply {
        Reply::Full(bytes) | Reply::Short(bytes) => {
            let _ = sock.write_all(&bytes).await;
            let _ = sock.shutdown().await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(TIMEOUT_SECS + 2)).await,
    }
}

async fn start() -> (String, Arc<Mutex<State>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = Arc::new(Mutex::new(State {
        notes: (0..TOTAL).map(notification).collect(),
        visible: BEFORE,
        arriving: false,
        rng: Rng(SEED),
        faults: true,
        remaining: LIMIT,
        reset_at: SystemTime::now() + WINDOW,
        tally: Tally::default(),
        base: base.clone(),
    }));
    let s = state.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(handle(sock, s.clone()));
        }
    });
    (base, state)
}

fn cached(db: &Path) -> Vec<String> {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let _ = c.busy_timeout(Duration::from_secs(2));
    let Ok(mut st) = c.prepare("SELECT remote_id FROM mentions WHERE platform = 'mastodon'") else {
        return Vec::new();
    };
    st.query_map([], |r| r.get::<_, String>(0))
        .map(|rows| rows.flatten().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mentions_through_faults_are_cached_once_within_the_budget() {
    let started = Instant::now();
    let (base, state) = start().await;
    let (_d, h) = home();
    std::fs::create_dir_all(&h).expect("home");
    std::fs::write(
        h.join("config.toml"),
        format!(
            "operator = \"Tess Tester\"\n[contact]\nemail = \"care@acme.example\"\n\n[poll]\n\
             interval_secs = 1\nrequest_timeout_secs = {TIMEOUT_SECS}\n\n[[account]]\n\
             name = \"care-mastodon\"\nplatform = \"mastodon\"\nbase_url = \"{base}\"\n\
             handle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_MASTODON_TOKEN\"\n"
        ),
    )
    .expect("config");

    // `tonedesk poll` as a person runs it, until the whole storm is cached and a later round
    // reports nothing new and no error.
    let mut child = crate::td(&h)
        .env("TONEDESK_TEST_MASTODON_TOKEN", TOKEN)
        .arg("poll")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tonedesk poll");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = child.stdout.take().expect("stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    let db = h.join("tonedesk.db");
    let deadline = started + Duration::from_secs(170);
    let mut all_at: Option<usize> = None;
    let settled = loop {
        if let Some(code) = child.try_wait().expect("child") {
            break Err(format!("tonedesk poll exited early: {code}"));
        }
        let seen = lines.lock().expect("lines").clone();
        if all_at.is_none() && cached(&db).len() >= TOTAL {
            all_at = Some(seen.len());
        }
        if let Some(at) = all_at
            && seen[at..]
                .iter()
                .any(|l| l == "care-mastodon mentions: 0 new")
        {
            break Ok(());
        }
        if Instant::now() > deadline {
            let tail = seen[seen.len().saturating_sub(20)..].join("\n");
            break Err(format!(
                "{} of {TOTAL} cached after {:?}; last lines:\n{tail}",
                cached(&db).len(),
                started.elapsed()
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // SAFETY: kill(2) on the pid of a child this test started and has not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let stop = Instant::now();
    while child.try_wait().expect("child").is_none() {
        if stop.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let polling = started.elapsed();
    let tally = std::mem::take(&mut state.lock().expect("state").tally);
    let ratio = tally.faults() as f64 / tally.requests as f64;
    let log = lines.lock().expect("lines").clone();
    let errors = log.iter().filter(|l| l.contains(": error:")).count();
    println!(
        "faults: {} requests, {} faults ({:.1}%): {} 429, {} 5xx, {} cut short, {} cut JSON, \
         {} malformed, {} hung; budget spent {} times, {} violations; {errors} failed rounds; \
         {polling:.1?}",
        tally.requests,
        tally.faults(),
        ratio * 100.0,
        tally.too_many,
        tally.server_error,
        tally.cut_short,
        tally.cut_json,
        tally.malformed,
        tally.hang,
        tally.spent,
        tally.violations.len(),
    );
    settled.unwrap_or_else(|e| panic!("{e}"));
    assert!(tally.protocol.is_empty(), "{:?}", tally.protocol);
    assert!(
        tally.violations.is_empty(),
        "the rate budget was exceeded: {:#?}",
        tally.violations
    );
    assert!(tally.spent > 0, "the budget never ran out: {tally:?}");
    assert!(
        ratio >= 0.30,
        "only {:.1}% of requests faulted",
        ratio * 100.0
    );
    assert!(
        tally.too_many > 0
            && tally.server_error > 0
            && tally.cut_short > 0
            && tally.cut_json > 0
            && tally.malformed > 0
            && tally.hang > 0,
        "every kind of fault happened: {tally:?}"
    );

    // Every mention exactly once: none missing, none twice.
    let q = crate::ok(&h, &["queue", "--json"]);
    let q: Vec<Value> = serde_json::from_str(&q).expect("queue JSON");
    let mut ids: Vec<String> = q
        .iter()
        .map(|m| m["remote_id"].as_str().expect("remote_id").to_owned())
        .collect();
    assert_eq!(ids.len(), TOTAL, "mentions cached");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), TOTAL, "a mention was cached twice");
    let mut want: Vec<String> = (0..TOTAL).map(status_id).collect();
    want.sort();
    assert_eq!(ids, want, "the cached mentions are the served ones");
    assert!(q.iter().all(|m| m["account"] == "care-mastodon"));

    let o = crate::run(&h, &["audit", "verify"]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        polling < Duration::from_secs(170),
        "polling took {polling:?}"
    );
}
