//! End to end against real servers on loopback, started by `tests/e2e/servers.sh` (see
//! `tests/e2e/README.md`): for each platform, a customer posts a mention through the server's own
//! API → `tonedesk poll --once` caches it → `queue --json` shows it with the right author and text
//! → `tonedesk reply … --yes` answers it → the server shows the answer as a reply to that post →
//! the audit result carries the remote id; then the playbook actions the server supports, and a
//! 429 that is waited out. A platform whose server is not up is skipped, saying why.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn env(key: &str) -> String {
    std::env::var(key)
        .unwrap_or_else(|_| panic!("{key} is not set (eval \"$(tests/e2e/servers.sh env)\")"))
}

/// Whether the server is up; if not, says why the test is skipped.
fn up(server: &str) -> bool {
    let servers = std::env::var("TONEDESK_E2E_SERVERS").unwrap_or_default();
    if servers.split_whitespace().any(|s| s == server) {
        return true;
    }
    let why = std::env::var(format!("TONEDESK_E2E_{}_SKIP", server.to_uppercase()))
        .unwrap_or_else(|_| "servers not started (tests/e2e/servers.sh start)".into());
    eprintln!("SKIPPED e2e {server}: {why}");
    false
}

fn curl(args: &[&str]) -> Value {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| {
        panic!(
            "curl {args:?} answered: {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

struct Desk {
    _dir: tempfile::TempDir,
    home: PathBuf,
    secret: (String, String),
}

impl Desk {
    /// A tonedesk home with one account; `secret` is the credential's variable and value.
    fn new(account: &str, secret: (&str, &str)) -> Desk {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("config.toml"),
            format!(
                "operator = \"E2E Tester\"\n[contact]\nemail = \"care@acme.example\"\nmedinfo = \"1-800-555-0199\"\nsafety = \"1-800-555-0123\"\nurl = \"https://acme.example/care\"\n[poll]\ninterval_secs = 5\n\n{account}"
            ),
        )
        .unwrap();
        Desk {
            _dir: dir,
            home,
            secret: (secret.0.to_owned(), secret.1.to_owned()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tonedesk"))
            .env_remove("TONEDESK_HOME")
            .env(&self.secret.0, &self.secret.1)
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .expect("run tonedesk")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "tonedesk {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Polls until a mention containing `marker` is cached, and returns it.
    fn wait_for_mention(&self, marker: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let polled = self.run(&["poll", "--once"]);
            let queue: Vec<Value> = serde_json::from_str(&self.ok(&["queue", "--json"])).unwrap();
            if let Some(m) = queue
                .into_iter()
                .find(|m| m["text"].as_str().is_some_and(|t| t.contains(marker)))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "the mention '{marker}' never arrived; last poll said:\n{}{}",
                String::from_utf8_lossy(&polled.stdout),
                String::from_utf8_lossy(&polled.stderr)
            );
            std::thread::sleep(Duration::from_millis(700));
        }
    }

    /// Sends the approved reply and returns the remote id from the audit result.
    fn reply(&self, mention: &Value, template: &str) -> String {
        let id = mention["id"].to_string();
        let out = self.ok(&["reply", &id, "--template", template, "--yes"]);
        assert!(out.starts_with("sent:"), "{out}");
        let audit: Vec<Value> = self
            .ok(&["audit", "export", "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let result = audit
            .iter()
            .rev()
            .find(|e| e["action"] == "send_result")
            .expect("a send_result entry");
        assert_eq!(result["outcome"], "sent", "{result}");
        assert_eq!(result["template"], template);
        assert!(self.ok(&["audit", "verify"]).contains("intact"));
        result["remote_id"].as_str().expect("remote id").to_owned()
    }

    /// Takes each playbook action on the mention through `tonedesk act`; each must succeed.
    fn act_all(&self, mention: &Value, actions: &[&str]) {
        for action in actions {
            let o = self.run(&["act", &mention["id"].to_string(), action]);
            assert!(
                o.status.success(),
                "{action}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

fn marker(platform: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e{platform}{}", nanos % 1_000_000_000)
}

fn complaint(mention: &str, marker: &str) -> String {
    format!("{mention} my Zyntriva refill is late again and nobody calls back, ref {marker}")
}

fn mastodon_flow(server: &str, prefix: &str, within: Duration, actions: &[&str]) {
    let url = env(&format!("{prefix}_URL"));
    let brand_token = env(&format!("{prefix}_BRAND_TOKEN"));
    let customer_token = env(&format!("{prefix}_CUSTOMER_TOKEN"));
    let desk = Desk::new(
        &format!(
            "[[account]]\nname = \"care-{server}\"\nplatform = \"mastodon\"\nbase_url = \"{url}\"\nhandle = \"{}\"\ntoken_env = \"TONEDESK_E2E_TOKEN\"\n",
            env(&format!("{prefix}_BRAND_USER"))
        ),
        ("TONEDESK_E2E_TOKEN", &brand_token),
    );
    let m = marker(server);
    let auth = format!("Authorization: Bearer {customer_token}");
    let posted = curl(&[
        "-X",
        "POST",
        "-H",
        &auth,
        &format!("{url}/api/v1/statuses"),
        "--data-urlencode",
        &format!(
            "status={}",
            complaint(&env(&format!("{prefix}_BRAND_MENTION")), &m)
        ),
    ]);
    let status_id = posted["id"].as_str().expect("status id").to_owned();

    let mention = desk.wait_for_mention(&m, within);
    assert_eq!(mention["platform"], "mastodon");
    assert_eq!(mention["remote_id"], status_id.as_str());
    let author = mention["author"].as_str().unwrap();
    let customer = env(&format!("{prefix}_CUSTOMER_USER"));
    assert!(
        author == customer || author.starts_with(&format!("{customer}@")),
        "author {author}"
    );
    assert!(
        mention["text"]
            .as_str()
            .unwrap()
            .contains("refill is late again"),
        "{mention}"
    );

    let reply_id = desk.reply(&mention, "complaint-ack");
    let reply = curl(&["-H", &auth, &format!("{url}/api/v1/statuses/{reply_id}")]);
    assert_eq!(reply["in_reply_to_id"], status_id.as_str(), "{reply}");

    desk.act_all(&mention, actions);
}

#[test]
fn mastodon_mock_end_to_end_with_a_429() {
    if !up("mmock") {
        return;
    }
    // A 429 with Retry-After on the first notifications poll: tonedesk must wait it out.
    let control = env("TONEDESK_E2E_MMOCK_CONTROL_URL");
    curl(&["-X", "DELETE", &format!("{control}/faults")]);
    mastodon_flow("mmock", "TONEDESK_E2E_MMOCK", Duration::from_secs(20), &[]);
    let reset = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2)
    .to_string();
    let fault = json!({
        "match": {"methods": ["GET"], "path": "/api/v1/notifications"},
        "effect": {"type": "ratelimit", "headers": {"Retry-After": "2", "X-RateLimit-Reset": reset}},
        "count": 1
    });
    curl(&[
        "-X",
        "POST",
        &format!("{control}/faults"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &fault.to_string(),
    ]);
    // The second flow's first poll meets the 429 and still delivers the mention.
    let started = Instant::now();
    mastodon_flow(
        "mmock",
        "TONEDESK_E2E_MMOCK",
        Duration::from_secs(20),
        &["like", "mute", "block", "report"],
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the 429 was not waited out"
    );
    curl(&["-X", "DELETE", &format!("{control}/faults")]);
    for undo in ["unblock", "unmute"] {
        let _ = Command::new("curl")
            .args(["-sS", "-X", "POST", "-H"])
            .arg(format!(
                "Authorization: Bearer {}",
                env("TONEDESK_E2E_MMOCK_BRAND_TOKEN")
            ))
            .arg(format!(
                "{}/api/v1/accounts/{}/{undo}",
                env("TONEDESK_E2E_MMOCK_URL"),
                env("TONEDESK_E2E_MMOCK_CUSTOMER_ID")
            ))
            .output();
    }
}

#[test]
fn snac2_end_to_end() {
    if !up("snac") {
        return;
    }
    // snac delivers through its own queue: allow it time. It has no mute or report.
    mastodon_flow(
        "snac",
        "TONEDESK_E2E_SNAC",
        Duration::from_secs(60),
        &["like"],
    );
}

#[test]
fn bluesky_end_to_end() {
    if !up("bsky") {
        return;
    }
    let pds = env("TONEDESK_E2E_BSKY_PDS_URL");
    let brand = env("TONEDESK_E2E_BSKY_BRAND_HANDLE");
    let brand_did = env("TONEDESK_E2E_BSKY_BRAND_DID");
    let desk = Desk::new(
        &format!(
            "[[account]]\nname = \"care-bsky\"\nplatform = \"bluesky\"\nbase_url = \"{pds}\"\nhandle = \"{brand}\"\nidentifier = \"{brand}\"\napp_password_env = \"TONEDESK_E2E_APP_PASSWORD\"\n"
        ),
        (
            "TONEDESK_E2E_APP_PASSWORD",
            &env("TONEDESK_E2E_BSKY_BRAND_APP_PASSWORD"),
        ),
    );
    // The customer logs in and posts a mention with its facet (no facet, no notification).
    let session = curl(&[
        "-X",
        "POST",
        &format!("{pds}/xrpc/com.atproto.server.createSession"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &json!({
            "identifier": env("TONEDESK_E2E_BSKY_CUSTOMER_HANDLE"),
            "password": env("TONEDESK_E2E_BSKY_CUSTOMER_APP_PASSWORD"),
        })
        .to_string(),
    ]);
    let jwt = session["accessJwt"]
        .as_str()
        .expect("customer session")
        .to_owned();
    let m = marker("bsky");
    let at = format!("@{brand}");
    let text = complaint(&at, &m);
    let record = json!({
        "repo": env("TONEDESK_E2E_BSKY_CUSTOMER_DID"),
        "collection": "app.bsky.feed.post",
        "record": {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "facets": [{
                "index": {"byteStart": 0, "byteEnd": at.len()},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": brand_did}]
            }]
        }
    });
    let auth = format!("Authorization: Bearer {jwt}");
    let created = curl(&[
        "-X",
        "POST",
        &format!("{pds}/xrpc/com.atproto.repo.createRecord"),
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        &record.to_string(),
    ]);
    let uri = created["uri"].as_str().expect("post uri").to_owned();

    let mention = desk.wait_for_mention(&m, Duration::from_secs(30));
    assert_eq!(mention["platform"], "bluesky");
    assert_eq!(mention["remote_id"], uri.as_str());
    assert_eq!(
        mention["author"],
        env("TONEDESK_E2E_BSKY_CUSTOMER_HANDLE").as_str()
    );
    assert_eq!(mention["text"], text.as_str());

    let reply_uri = desk.reply(&mention, "complaint-ack");
    let rkey = reply_uri.rsplit('/').next().unwrap();
    let reply = curl(&[&format!(
        "{pds}/xrpc/com.atproto.repo.getRecord?repo={brand_did}&collection=app.bsky.feed.post&rkey={rkey}"
    )]);
    assert_eq!(
        reply["value"]["reply"]["parent"]["uri"],
        uri.as_str(),
        "{reply}"
    );
    assert_eq!(
        reply["value"]["reply"]["root"]["uri"],
        uri.as_str(),
        "{reply}"
    );

    desk.act_all(&mention, &["like", "mute", "block", "report"]);
}

#[test]
fn x_end_to_end_against_the_official_spec() {
    if !up("x") {
        return;
    }
    let x = env("TONEDESK_E2E_X_URL");
    let control = env("TONEDESK_E2E_X_CONTROL_URL");
    let desk = Desk::new(
        &format!(
            "[[account]]\nname = \"care-x\"\nplatform = \"x\"\nbase_url = \"{x}\"\nhandle = \"{}\"\ntoken_env = \"TONEDESK_E2E_TOKEN\"\n",
            env("TONEDESK_E2E_X_BRAND_USERNAME")
        ),
        ("TONEDESK_E2E_TOKEN", &env("TONEDESK_E2E_X_BRAND_TOKEN")),
    );
    let m = marker("x");
    let text = complaint(&env("TONEDESK_E2E_X_BRAND_MENTION"), &m);
    let customer = format!(
        "Authorization: Bearer {}",
        env("TONEDESK_E2E_X_CUSTOMER_TOKEN")
    );
    let posted = curl(&[
        "-X",
        "POST",
        &format!("{x}/2/tweets"),
        "-H",
        &customer,
        "-H",
        "Content-Type: application/json",
        "-d",
        &json!({"text": text}).to_string(),
    ]);
    let post_id = posted["data"]["id"].as_str().expect("post id").to_owned();

    // The first poll of the mentions timeline meets a 429 whose reset is 2 s ahead.
    curl(&[
        "-X",
        "POST",
        &format!("{control}/faults"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"method":"GET","path":"^/2/users/[0-9]+/mentions$","status":429,"reset_in":2,"count":1}"#,
    ]);
    let mention = desk.wait_for_mention(&m, Duration::from_secs(30));
    assert_eq!(mention["platform"], "x");
    assert_eq!(mention["remote_id"], post_id.as_str());
    assert_eq!(
        mention["author"],
        env("TONEDESK_E2E_X_CUSTOMER_USERNAME").as_str()
    );
    assert_eq!(mention["text"], text.as_str());

    let reply_id = desk.reply(&mention, "complaint-ack");
    let reply = curl(&["-H", &customer, &format!("{x}/2/tweets/{reply_id}")]);
    let replied_to: Vec<&str> = reply["data"]["referenced_posts"]
        .as_array()
        .or_else(|| reply["data"]["referenced_tweets"].as_array())
        .map(|refs| {
            refs.iter()
                .filter(|r| r["type"] == "replied_to")
                .filter_map(|r| r["id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(replied_to, [post_id.as_str()], "{reply}");

    desk.act_all(&mention, &["like", "mute", "hide"]);
    // Every request tonedesk made conformed to the official spec (Prism validated each one).
    let requests = curl(&[&format!("{control}/requests")]);
    let refused: Vec<&Value> = requests
        .as_array()
        .expect("request log")
        .iter()
        .filter(|r| !r["violations"].is_null() || r["prism_status"].as_u64().unwrap_or(200) >= 400)
        .filter(|r| r["status"].as_u64() != Some(429))
        .collect();
    assert!(refused.is_empty(), "requests Prism refused: {refused:#?}");
}
