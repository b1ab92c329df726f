//! The Bluesky connector: XRPC (`GET|POST {base}/xrpc/<nsid>`) against the account's PDS, by
//! default `https://bsky.social`, with the NSIDs and field names of the official lexicons.
//!
//! - **Session.** `com.atproto.server.createSession` with the identifier and the app password on
//!   first use; the access and refresh JWTs, the DID and the handle are cached. When a call is
//!   refused because the access token expired (`ExpiredToken`, 400 or 401) or with any other 401,
//!   the session is renewed once with `com.atproto.server.refreshSession` (the refresh JWT as the
//!   bearer), or with a new `createSession` if the refresh fails, and the call is repeated once.
//! - **Streams.** `mentions` reads `app.bsky.notification.listNotifications` and keeps the
//!   reasons `mention`, `reply` and `quote`; `watch:<keyword>` reads `app.bsky.feed.searchPosts`
//!   (`sort=latest`). Both list newest first and page toward older items; see [`Cursor`] for how
//!   the stored cursor still never skips an item.
//! - **Replies.** `com.atproto.repo.createRecord` of an `app.bsky.feed.post` with `reply`
//!   root/parent strong refs and `facets`, under the record key `rkey = idem_key`, so a retried
//!   create can never make a second post. Bluesky has no direct messages in these lexicons.
//! - **Actions.** like (`app.bsky.feed.like`), block (`app.bsky.graph.block`), mute
//!   (`app.bsky.graph.muteActor`) and report (`com.atproto.moderation.createReport`). Hiding a
//!   reply is not offered: see [`Bluesky::act`].
//!
//! What `IncomingMention::reply_ref` holds: the JSON of [`ReplyRef`], the post's `uri` and `cid`,
//! the thread root's strong ref and the author's `did`.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use regex::Regex;
use reqwest::{Client, RequestBuilder, Response, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use super::credentials::Secret;
use super::http::{self, Http, Retry};
use super::{AccountSpec, Connector, FetchPage, Outgoing, PlatformError, Sent, Stream};
use crate::domain::playbook::ModAction;
use crate::domain::{Author, Channel, IncomingMention, Mention, Platform};

/// The PDS used when the account sets no `base_url`.
pub const DEFAULT_BASE: &str = "https://bsky.social";
/// Items asked for per page (both lists allow 1..=100).
const PAGE_LIMIT: &str = "50";
/// How many pages the first run of a stream reads back into the past, at most.
const BACKFILL_PAGES: u32 = 20;
/// Longest text kept from a post.
const MAX_TEXT_CHARS: usize = 20_000;
const POST: &str = "app.bsky.feed.post";
/// The notification reasons that are mentions for the desk.
const MENTION_REASONS: [&str; 3] = ["mention", "reply", "quote"];

/// Builds the connector. No network traffic: the session is created on first use.
pub fn connect(spec: &AccountSpec) -> Result<Arc<dyn Connector>, PlatformError> {
    let source = spec.secret.as_ref().ok_or_else(|| {
        PlatformError::Auth(format!(
            "account '{}': no Bluesky app password configured; set app_password_env or \
             app_password_file for it (make one in Bluesky under Settings → Privacy and security → App passwords)",
            spec.name
        ))
    })?;
    let password = source.load(&spec.name)?;
    Ok(Arc::new(Bluesky::new(spec, password)?))
}

/// One Bluesky account.
pub struct Bluesky {
    account: String,
    base: String,
    identifier: String,
    password: Secret,
    watch: Vec<String>,
    http: Http,
    session: Mutex<Option<Session>>,
}

#[derive(Clone)]
struct Session {
    access: Secret,
    refresh: Secret,
    did: String,
    handle: String,
}

#[derive(Deserialize)]
struct SessionOut {
    #[serde(rename = "accessJwt")]
    access_jwt: String,
    #[serde(rename = "refreshJwt")]
    refresh_jwt: String,
    did: String,
    handle: String,
}

impl From<SessionOut> for Session {
    fn from(s: SessionOut) -> Self {
        Session {
            access: Secret::new(s.access_jwt),
            refresh: Secret::new(s.refresh_jwt),
            did: s.did,
            handle: s.handle,
        }
    }
}

/// A strong reference to a record (`com.atproto.repo.strongRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StrongRef {
    uri: String,
    cid: String,
}

/// What a Bluesky mention's `reply_ref` holds: the post itself (the parent of a reply to it),
/// its thread's root, and its author's DID (for mention facets, block and mute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ReplyRef {
    uri: String,
    cid: String,
    root: StrongRef,
    did: String,
}

impl ReplyRef {
    fn of(m: &Mention) -> Result<ReplyRef, PlatformError> {
        m.reply_ref
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| {
                PlatformError::Local(format!(
                    "mention {} carries no Bluesky reference (uri, cid, did); it cannot be answered or acted on",
                    m.remote_id
                ))
            })
    }

    fn parent(&self) -> StrongRef {
        StrongRef {
            uri: self.uri.clone(),
            cid: self.cid.clone(),
        }
    }
}

/// The stored cursor of a stream (opaque JSON to the caller).
///
/// Both lists answer newest first, and their API cursor pages toward OLDER items, so the API
/// cursor cannot be the stored one. Instead:
///
/// - `seen` is the high-water mark: the newest time stamp returned so far (`indexedAt` for
///   notifications; for search, the earlier of `createdAt` and `indexedAt`, which is how search
///   orders) with the uris seen at that very instant. An item is new when it is later than the
///   mark, or at the same instant with an unseen uri.
/// - Each poll reads the newest page. If that page reaches the mark (or the list ends), it holds
///   every new item: they are returned and the mark moves to the newest of them.
/// - If it does not (more than a page arrived since the last poll), the page is returned with
///   `more = true` and the cursor keeps the OLD mark plus a `walk`: the API cursor of the next
///   older page and the newest item of the run (`top`). The next calls follow the walk one page
///   at a time until they reach the old mark; only then does the mark jump to `top`. Whatever
///   arrives meanwhile is newer than `top` and is found by the next poll, so no item is ever
///   passed over, whatever the caller's page limit.
/// - The first run (no cursor) is such a walk without a mark, limited to [`BACKFILL_PAGES`] pages.
/// - If the server refuses a walk's API cursor, the walk starts again from the newest page (items
///   already stored are dropped by the store as duplicates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seen: Option<Mark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    walk: Option<Walk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    /// RFC 3339, UTC.
    at: String,
    #[serde(default)]
    uris: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Walk {
    /// The API cursor of the next (older) page.
    page: String,
    /// The newest item of the run being walked; becomes `seen` when the walk ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    top: Option<Mark>,
    /// Pages still allowed (backfill only; a catch-up walk goes on until it meets `seen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pages_left: Option<u32>,
}

impl Mark {
    fn time(&self) -> Option<OffsetDateTime> {
        parse_time(&self.at)
    }
}

/// The later of two marks (the union of their uris when they are at the same instant).
fn later(a: Option<Mark>, b: Option<Mark>) -> Option<Mark> {
    match (a, b) {
        (Some(a), Some(b)) => match (a.time(), b.time()) {
            (Some(ta), Some(tb)) if ta == tb => {
                let mut uris = a.uris;
                for u in b.uris {
                    if !uris.contains(&u) {
                        uris.push(u);
                    }
                }
                Some(Mark { at: a.at, uris })
            }
            (Some(ta), Some(tb)) if tb > ta => Some(b),
            (Some(_), _) => Some(a),
            (None, _) => Some(b),
        },
        (a, b) => a.or(b),
    }
}

impl Cursor {
    fn encode(&self) -> Result<String, PlatformError> {
        serde_json::to_string(self)
            .map_err(|e| PlatformError::Local(format!("cannot write the Bluesky cursor: {e}")))
    }

    /// The cursor to go on with when the server refuses the walk's API cursor.
    fn without_walk(self) -> Cursor {
        match self.seen {
            // Catching up: walk the gap again from the newest page.
            Some(seen) => Cursor {
                seen: Some(seen),
                walk: None,
            },
            // Backfilling: keep what was read, stop going back.
            None => Cursor {
                seen: self.walk.and_then(|w| w.top),
                walk: None,
            },
        }
    }
}

/// One item of a listed page: where it sorts, and what it is for the desk.
struct Entry {
    key: OffsetDateTime,
    uri: String,
    /// A mention, `None` for an item that is not one (a like, our own post), or why it was
    /// skipped.
    outcome: Result<Option<IncomingMention>, String>,
}

/// One page as the API gave it.
struct RawPage {
    items: Vec<Value>,
    next: Option<String>,
}

/// Steps the walk of [`Cursor`] over one page: returns the mentions, the next cursor and `more`.
fn step(
    state: &Cursor,
    entries: Vec<Result<Entry, String>>,
    api_next: Option<String>,
    skipped: &mut Vec<String>,
) -> (Vec<IncomingMention>, Cursor, bool) {
    let floor = state
        .seen
        .as_ref()
        .and_then(|m| m.time().map(|t| (t, &m.uris)));
    let mut mentions = Vec::new();
    let mut reached = false;
    let mut count = 0;
    let mut newest: Option<(OffsetDateTime, Vec<String>)> = None;
    for entry in entries {
        count += 1;
        let entry = match entry {
            Ok(e) => e,
            Err(why) => {
                skipped.push(why);
                continue;
            }
        };
        if let Some((at, uris)) = floor {
            if entry.key < at {
                reached = true;
                continue;
            }
            if entry.key == at && uris.contains(&entry.uri) {
                continue;
            }
        }
        match &mut newest {
            Some((t, uris)) if *t == entry.key => uris.push(entry.uri.clone()),
            Some((t, _)) if *t > entry.key => {}
            _ => newest = Some((entry.key, vec![entry.uri.clone()])),
        }
        match entry.outcome {
            Ok(Some(m)) => mentions.push(m),
            Ok(None) => {}
            Err(why) => skipped.push(why),
        }
    }
    let page_top = newest.map(|(t, uris)| Mark {
        at: format_time(t),
        uris,
    });
    let api_next = api_next.filter(|n| !n.is_empty());
    let next_page = if reached || count == 0 {
        None
    } else {
        api_next
    };
    let (next, more) = match (&state.walk, next_page) {
        // The newest page held everything new.
        (None, None) => (
            Cursor {
                seen: later(state.seen.clone(), page_top),
                walk: None,
            },
            false,
        ),
        // A run longer than a page (or the first run): walk down to the mark.
        (None, Some(page)) => (
            Cursor {
                seen: state.seen.clone(),
                walk: Some(Walk {
                    page,
                    top: page_top,
                    pages_left: state.seen.is_none().then_some(BACKFILL_PAGES - 1),
                }),
            },
            true,
        ),
        (Some(walk), next_page) => {
            let left = walk.pages_left.map(|n| n.saturating_sub(1));
            match next_page {
                Some(page) if left != Some(0) => (
                    Cursor {
                        seen: state.seen.clone(),
                        walk: Some(Walk {
                            page,
                            top: walk.top.clone(),
                            pages_left: left,
                        }),
                    },
                    true,
                ),
                // The walk met the mark, the list ended, or the backfill is long enough.
                _ => (
                    Cursor {
                        seen: later(state.seen.clone(), walk.top.clone()),
                        walk: None,
                    },
                    false,
                ),
            }
        }
    };
    (mentions, next, more)
}

#[derive(Deserialize)]
struct Profile {
    did: String,
    handle: String,
    #[serde(rename = "displayName", default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// The parts of an `app.bsky.feed.post` record the desk uses.
#[derive(Deserialize)]
struct PostRecord {
    #[serde(rename = "$type", default)]
    kind: Option<String>,
    text: String,
    /// Kept loose: a missing or invalid `createdAt` falls back to `indexedAt`.
    #[serde(rename = "createdAt", default)]
    created_at: Option<Value>,
    #[serde(default)]
    reply: Option<PostReply>,
}

#[derive(Deserialize)]
struct PostReply {
    root: StrongRef,
    parent: StrongRef,
}

/// A notification or a post view: the fields both share.
#[derive(Deserialize)]
struct ItemView {
    uri: String,
    cid: String,
    author: Profile,
    record: Value,
}

#[derive(Deserialize)]
struct NotificationsOut {
    #[serde(default)]
    cursor: Option<String>,
    notifications: Vec<Value>,
}

#[derive(Deserialize)]
struct SearchOut {
    #[serde(default)]
    cursor: Option<String>,
    posts: Vec<Value>,
}

#[derive(Deserialize)]
struct CreatedOut {
    uri: String,
}

#[derive(Deserialize)]
struct RecordOut {
    uri: String,
    #[serde(default)]
    value: Value,
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Now, in RFC 3339 with milliseconds, as Bluesky writes `createdAt`.
fn now_rfc3339() -> String {
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(u32::from(now.millisecond()) * 1_000_000)
        .unwrap_or(now);
    format_time(now)
}

/// The record key of an `app.bsky.feed.post` at-uri (`at://did/app.bsky.feed.post/rkey`).
fn post_rkey(uri: &str) -> Option<&str> {
    let mut parts = uri.strip_prefix("at://")?.split('/');
    let (authority, collection, rkey) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && !authority.is_empty() && collection == POST && !rkey.is_empty())
        .then_some(rkey)
}

/// The author's handle without its `@`; the DID when there is no usable handle (none, a lone `@`,
/// or `handle.invalid`, which Bluesky shows for a handle that no longer resolves), so that such
/// authors stay apart in the cache rather than become one author.
fn author_handle(handle: &str, did: &str) -> Result<String, String> {
    let handle = handle.trim().trim_start_matches('@');
    let handle = match handle {
        "" | "handle.invalid" => did.trim(),
        _ => handle,
    };
    match handle.is_empty() {
        true => Err("its author has neither a handle nor a DID".into()),
        false => Ok(handle.to_owned()),
    }
}

/// The web link of a post; by DID when the handle does not resolve.
fn web_url(handle: &str, did: &str, rkey: &str) -> String {
    let who = if handle.is_empty() || handle == "handle.invalid" {
        did
    } else {
        handle
    };
    format!("https://bsky.app/profile/{who}/post/{rkey}")
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A post (from a notification or a search hit) as a mention.
fn post_mention(
    account: &str,
    view: ItemView,
    indexed_at: OffsetDateTime,
) -> Result<IncomingMention, String> {
    let rkey = post_rkey(&view.uri).ok_or("its uri is not the at-uri of a post")?;
    let record: PostRecord = serde_json::from_value(view.record)
        .map_err(|e| format!("its post record cannot be read: {e}"))?;
    if let Some(kind) = &record.kind
        && kind != POST
    {
        return Err(format!("its record is a {kind}, not a post"));
    }
    let created_at = record
        .created_at
        .as_ref()
        .and_then(Value::as_str)
        .and_then(parse_time)
        .unwrap_or(indexed_at);
    let root = match &record.reply {
        Some(r) => r.root.clone(),
        None => StrongRef {
            uri: view.uri.clone(),
            cid: view.cid.clone(),
        },
    };
    let reply_ref = serde_json::to_string(&ReplyRef {
        uri: view.uri.clone(),
        cid: view.cid,
        root,
        did: view.author.did.clone(),
    })
    .map_err(|e| e.to_string())?;
    let handle = author_handle(&view.author.handle, &view.author.did)?;
    Ok(IncomingMention {
        platform: Platform::Bluesky,
        account: account.to_owned(),
        url: Some(web_url(&handle, &view.author.did, rkey)),
        remote_id: view.uri,
        author: Author {
            handle,
            display_name: view.author.display_name.unwrap_or_default(),
            bio: view.author.description.unwrap_or_default(),
        },
        text: record.text.chars().take(MAX_TEXT_CHARS).collect(),
        created_at,
        in_reply_to: record.reply.map(|r| r.parent.uri),
        parent_text: None,
        reply_ref: Some(reply_ref),
        private: false,
    })
}

/// One `app.bsky.notification.listNotifications` item.
fn notification_entry(account: &str, v: Value) -> Result<Entry, String> {
    let uri = str_field(&v, "uri")
        .ok_or("a notification without a uri")?
        .to_owned();
    let indexed =
        str_field(&v, "indexedAt").ok_or_else(|| format!("notification {uri}: no indexedAt"))?;
    let key = parse_time(indexed)
        .ok_or_else(|| format!("notification {uri}: indexedAt '{indexed}' is not a time"))?;
    let outcome = match str_field(&v, "reason") {
        None => Err(format!("notification {uri}: no reason")),
        Some(r) if !MENTION_REASONS.contains(&r) => Ok(None),
        Some(_) => serde_json::from_value::<ItemView>(v)
            .map_err(|e| e.to_string())
            .and_then(|view| post_mention(account, view, key))
            .map(Some)
            .map_err(|e| format!("notification {uri}: {e}")),
    };
    Ok(Entry { key, uri, outcome })
}

/// One `app.bsky.feed.searchPosts` hit; our own posts are not mentions.
fn search_entry(account: &str, own_did: &str, v: Value) -> Result<Entry, String> {
    let uri = str_field(&v, "uri")
        .ok_or("a search hit without a uri")?
        .to_owned();
    let indexed = str_field(&v, "indexedAt").ok_or_else(|| format!("post {uri}: no indexedAt"))?;
    let indexed = parse_time(indexed)
        .ok_or_else(|| format!("post {uri}: indexedAt '{indexed}' is not a time"))?;
    // Search sorts by the earlier of the two times.
    let created = v
        .get("record")
        .and_then(|r| str_field(r, "createdAt"))
        .and_then(parse_time);
    let key = created.map_or(indexed, |c| c.min(indexed));
    let own = v
        .get("author")
        .and_then(|a| str_field(a, "did"))
        .is_some_and(|d| d == own_did);
    let outcome = if own {
        Ok(None)
    } else {
        serde_json::from_value::<ItemView>(v)
            .map_err(|e| e.to_string())
            .and_then(|view| post_mention(account, view, indexed))
            .map(Some)
            .map_err(|e| format!("post {uri}: {e}"))
    };
    Ok(Entry { key, uri, outcome })
}

/// The stored cursor of `stream`; an unreadable one is noted in `skipped` and read as none.
fn read_cursor(stream: &str, cursor: Option<&str>, skipped: &mut Vec<String>) -> Option<Cursor> {
    let stored: Option<Cursor> = cursor.and_then(|text| serde_json::from_str(text).ok());
    if cursor.is_some() && stored.is_none() {
        skipped.push(format!(
            "the stored cursor of {stream} could not be read; reading from the newest items again"
        ));
    }
    stored
}

/// A listed page's entries, stepped from the `stored` cursor, as what `fetch` returns.
fn page_after(
    stored: Option<&Cursor>,
    entries: Vec<Result<Entry, String>>,
    api_next: Option<String>,
    mut skipped: Vec<String>,
) -> Result<FetchPage, PlatformError> {
    let state = stored.cloned().unwrap_or_default();
    let (mentions, next, more) = step(&state, entries, api_next, &mut skipped);
    // `None` keeps the stored cursor: nothing moved.
    let cursor = if next == Cursor::default() || stored == Some(&next) {
        None
    } else {
        Some(next.encode()?)
    };
    Ok(FetchPage {
        mentions,
        cursor,
        more,
        skipped,
    })
}

fn malformed(e: serde_json::Error) -> PlatformError {
    PlatformError::Malformed(format!("the body is not the JSON expected: {e}"))
}

/// Reads a page of `app.bsky.notification.listNotifications` (the response body) for the account
/// named `account` with the stored `cursor` of its `mentions` stream, as a poll does: the
/// mentions (post records included), what was skipped and why, the next cursor (`None` when it
/// stays as stored) and `more`. Pure: no I/O, for tests and fuzzing of the ingest path.
pub fn parse_notifications(
    account: &str,
    body: &str,
    cursor: Option<&str>,
) -> Result<FetchPage, PlatformError> {
    let mut skipped = Vec::new();
    let stored = read_cursor("mentions", cursor, &mut skipped);
    let out: NotificationsOut = serde_json::from_str(body).map_err(malformed)?;
    let entries = out
        .notifications
        .into_iter()
        .map(|v| notification_entry(account, v))
        .collect();
    page_after(stored.as_ref(), entries, out.cursor, skipped)
}

/// Like [`parse_notifications`] for a page of `app.bsky.feed.searchPosts` read by the account
/// whose DID is `own_did` (its own posts are not mentions).
pub fn parse_search(
    account: &str,
    own_did: &str,
    body: &str,
    cursor: Option<&str>,
) -> Result<FetchPage, PlatformError> {
    let mut skipped = Vec::new();
    let stored = read_cursor("the search", cursor, &mut skipped);
    let out: SearchOut = serde_json::from_str(body).map_err(malformed)?;
    let entries = out
        .posts
        .into_iter()
        .map(|v| search_entry(account, own_did, v))
        .collect();
    page_after(stored.as_ref(), entries, out.cursor, skipped)
}

/// Whether an error says the access token is no longer good. `Http` keeps the XRPC `message`
/// (for `ExpiredToken`: "Token has expired") rather than the error name, so both are looked for.
fn session_refused(e: &PlatformError) -> bool {
    let expired = |m: &str| {
        let m = m.to_ascii_lowercase();
        m.contains("expiredtoken") || (m.contains("expired") && m.contains("token"))
    };
    match e {
        PlatformError::Auth(m) => m.starts_with("401") || expired(m),
        PlatformError::Http {
            status: 400,
            message,
        } => expired(message),
        _ => false,
    }
}

/// Whether a `getRecord` error is `RecordNotFound` (PDS message: "Could not locate record: …").
fn record_not_found(e: &PlatformError) -> bool {
    match e {
        PlatformError::Http {
            status: 400,
            message,
        } => {
            let m = message.to_ascii_lowercase();
            m.contains("recordnotfound")
                || m.contains("could not locate record")
                || m.contains("record not found")
        }
        _ => false,
    }
}

static LINK: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"(?:^|[\s(\[])(https?://[^\s<>"]+)"#).ok());
static HANDLE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s(\[])(@[a-zA-Z0-9][a-zA-Z0-9.-]*)").ok());

/// `app.bsky.richtext.facet`s for the links (`http://`, `https://`) and the @handles of `text`
/// whose DIDs are known (`known`: handle, did). Handles we cannot resolve stay plain text.
/// `byteStart`/`byteEnd` count UTF-8 bytes, as the lexicon says.
fn facets(text: &str, known: &[(&str, &str)]) -> Vec<Value> {
    let mut found: Vec<(usize, usize, Value)> = Vec::new();
    if let Some(re) = LINK.as_ref() {
        for cap in re.captures_iter(text) {
            let Some(m) = cap.get(1) else { continue };
            let url = trim_link(m.as_str());
            let host = url.split_once("://").map_or("", |(_, rest)| rest);
            if host.is_empty() || host.starts_with('/') {
                continue;
            }
            found.push((
                m.start(),
                m.start() + url.len(),
                json!({"$type": "app.bsky.richtext.facet#link", "uri": url}),
            ));
        }
    }
    if let Some(re) = HANDLE.as_ref() {
        for cap in re.captures_iter(text) {
            let Some(m) = cap.get(1) else { continue };
            let written = m.as_str().trim_end_matches(['.', '-']);
            let handle = &written[1..];
            let did = known
                .iter()
                .find(|(h, _)| h.trim_start_matches('@').eq_ignore_ascii_case(handle))
                .map(|(_, d)| *d);
            if let Some(did) = did
                && !did.is_empty()
            {
                found.push((
                    m.start(),
                    m.start() + written.len(),
                    json!({"$type": "app.bsky.richtext.facet#mention", "did": did}),
                ));
            }
        }
    }
    found.sort_by_key(|(start, _, _)| *start);
    found
        .into_iter()
        .map(|(start, end, feature)| {
            json!({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
        })
        .collect()
}

/// A URL without the punctuation that ends the sentence around it.
fn trim_link(mut url: &str) -> &str {
    loop {
        let before = url.len();
        url = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
        if url.ends_with(')') && url.matches(')').count() > url.matches('(').count() {
            url = &url[..url.len() - 1];
        }
        if url.ends_with(']') && url.matches(']').count() > url.matches('[').count() {
            url = &url[..url.len() - 1];
        }
        if url.len() == before {
            return url;
        }
    }
}

impl Bluesky {
    fn new(spec: &AccountSpec, password: Secret) -> Result<Bluesky, PlatformError> {
        let base = spec.base(DEFAULT_BASE);
        Url::parse(&base).map_err(|e| {
            PlatformError::Local(format!(
                "account '{}': the base_url '{base}' is not a URL: {e}",
                spec.name
            ))
        })?;
        let identifier = spec
            .identifier
            .clone()
            .filter(|i| !i.trim().is_empty())
            .unwrap_or_else(|| spec.handle.trim_start_matches('@').to_owned());
        Ok(Bluesky {
            account: spec.name.clone(),
            base,
            identifier,
            password,
            watch: spec
                .watch
                .iter()
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect(),
            http: Http::new(spec.request_timeout)?,
            session: Mutex::new(None),
        })
    }

    fn url(&self, nsid: &str, query: &[(&str, &str)]) -> Result<Url, PlatformError> {
        let mut url = Url::parse(&format!("{}/xrpc/{nsid}", self.base))
            .map_err(|e| PlatformError::Local(format!("bad base URL {}: {e}", self.base)))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// The cached session, created on first use.
    async fn session(&self) -> Result<Session, PlatformError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = self.create_session().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    async fn create_session(&self) -> Result<Session, PlatformError> {
        let url = self.url("com.atproto.server.createSession", &[])?;
        let body = json!({"identifier": self.identifier, "password": self.password.expose()});
        let response = self
            .http
            .send(Retry::Safe, |c| c.post(url.clone()).json(&body))
            .await
            .map_err(|e| match e {
                PlatformError::Auth(m) => PlatformError::Auth(format!(
                    "account '{}': Bluesky login as '{}' failed: {m}",
                    self.account, self.identifier
                )),
                other => other,
            })?;
        tracing::info!(account = %self.account, "Bluesky session created");
        Ok(http::json::<SessionOut>(response).await?.into())
    }

    async fn refresh_session(&self, refresh: &Secret) -> Result<Session, PlatformError> {
        let url = self.url("com.atproto.server.refreshSession", &[])?;
        let response = self
            .http
            .send(Retry::Safe, |c| {
                c.post(url.clone()).bearer_auth(refresh.expose())
            })
            .await?;
        Ok(http::json::<SessionOut>(response).await?.into())
    }

    /// Renews a refused session: refresh it, or log in again when the refresh fails. A session
    /// another task already renewed is taken as it is.
    async fn renew(&self, stale: &Session) -> Result<Session, PlatformError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref()
            && s.access != stale.access
        {
            return Ok(s.clone());
        }
        *slot = None;
        let fresh = match self.refresh_session(&stale.refresh).await {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(account = %self.account, error = %e, "refreshing the Bluesky session failed; logging in again");
                self.create_session().await?
            }
        };
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// An authenticated XRPC call; renews the session and repeats the call once when the
    /// access token is refused.
    async fn authed(
        &self,
        retry: Retry,
        make: impl Fn(&Client, &str) -> RequestBuilder,
    ) -> Result<Response, PlatformError> {
        let session = self.session().await?;
        match self
            .http
            .send(retry, |c| make(c, session.access.expose()))
            .await
        {
            Err(e) if session_refused(&e) => {
                tracing::info!(account = %self.account, "the Bluesky session was refused; renewing it");
                let fresh = self.renew(&session).await?;
                self.http
                    .send(retry, |c| make(c, fresh.access.expose()))
                    .await
            }
            other => other,
        }
    }

    async fn get(&self, nsid: &str, query: &[(&str, &str)]) -> Result<Response, PlatformError> {
        let url = self.url(nsid, query)?;
        self.authed(Retry::Safe, |c, token| {
            c.get(url.clone()).bearer_auth(token)
        })
        .await
    }

    async fn post(
        &self,
        nsid: &str,
        body: &Value,
        retry: Retry,
    ) -> Result<Response, PlatformError> {
        let url = self.url(nsid, &[])?;
        self.authed(retry, |c, token| {
            c.post(url.clone()).bearer_auth(token).json(body)
        })
        .await
    }

    /// `com.atproto.repo.createRecord` in our own repo; returns the new record's uri.
    async fn create_record(
        &self,
        did: &str,
        collection: &str,
        rkey: Option<&str>,
        record: Value,
        retry: Retry,
    ) -> Result<String, PlatformError> {
        let mut body = json!({"repo": did, "collection": collection, "record": record});
        if let Some(rkey) = rkey {
            body["rkey"] = json!(rkey);
        }
        let response = self
            .post("com.atproto.repo.createRecord", &body, retry)
            .await?;
        Ok(http::json::<CreatedOut>(response).await?.uri)
    }

    /// Our own post under record key `rkey` (`com.atproto.repo.getRecord`); `None` when the PDS
    /// answers `RecordNotFound`.
    async fn own_post(
        &self,
        session: &Session,
        rkey: &str,
    ) -> Result<Option<RecordOut>, PlatformError> {
        let query = [
            ("repo", session.did.as_str()),
            ("collection", POST),
            ("rkey", rkey),
        ];
        match self.get("com.atproto.repo.getRecord", &query).await {
            Ok(r) => Ok(Some(http::json::<RecordOut>(r).await?)),
            Err(e) if record_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn sent(&self, session: &Session, uri: String) -> Sent {
        let url = uri
            .rsplit_once('/')
            .map(|(_, rkey)| web_url(&session.handle, &session.did, rkey));
        Sent {
            remote_id: uri,
            url,
        }
    }

    async fn list(
        &self,
        feed: Stream<'_>,
        page: Option<&str>,
        seen: Option<&Mark>,
    ) -> Result<RawPage, PlatformError> {
        match feed {
            Stream::Mentions => {
                let mut query = vec![("limit", PAGE_LIMIT)];
                query.extend(MENTION_REASONS.iter().map(|r| ("reasons", *r)));
                if let Some(p) = page {
                    query.push(("cursor", p));
                }
                let r = self
                    .get("app.bsky.notification.listNotifications", &query)
                    .await?;
                let out: NotificationsOut = http::json(r).await?;
                Ok(RawPage {
                    items: out.notifications,
                    next: out.cursor,
                })
            }
            Stream::Watch(q) => {
                let mut query = vec![("q", q), ("sort", "latest"), ("limit", PAGE_LIMIT)];
                if let Some(seen) = seen {
                    query.push(("since", seen.at.as_str()));
                }
                if let Some(p) = page {
                    query.push(("cursor", p));
                }
                let r = self.get("app.bsky.feed.searchPosts", &query).await?;
                let out: SearchOut = http::json(r).await?;
                Ok(RawPage {
                    items: out.posts,
                    next: out.cursor,
                })
            }
        }
    }
}

#[async_trait]
impl Connector for Bluesky {
    fn platform(&self) -> Platform {
        Platform::Bluesky
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn streams(&self) -> Vec<String> {
        Stream::names(&self.watch)
    }

    async fn fetch(&self, stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        let feed = Stream::parse(stream, &self.account)?;
        let mut skipped = Vec::new();
        let stored = read_cursor(stream, cursor, &mut skipped);
        let state = stored.clone().unwrap_or_default();
        let page = state.walk.as_ref().map(|w| w.page.as_str());
        let raw = match self.list(feed, page, state.seen.as_ref()).await {
            Ok(raw) => raw,
            Err(PlatformError::Http {
                status: 400,
                message,
            }) if state.walk.is_some() => {
                skipped.push(format!(
                    "the server refused the paging cursor of {stream} ({message}); reading from the newest items again"
                ));
                return Ok(FetchPage {
                    mentions: Vec::new(),
                    cursor: Some(state.without_walk().encode()?),
                    more: false,
                    skipped,
                });
            }
            Err(e) => return Err(e),
        };
        let entries: Vec<Result<Entry, String>> = match feed {
            Stream::Mentions => raw
                .items
                .into_iter()
                .map(|v| notification_entry(&self.account, v))
                .collect(),
            Stream::Watch(_) => {
                let own = self.session().await?.did;
                raw.items
                    .into_iter()
                    .map(|v| search_entry(&self.account, &own, v))
                    .collect()
            }
        };
        page_after(stored.as_ref(), entries, raw.next, skipped)
    }

    /// A public reply: an `app.bsky.feed.post` under `rkey = idem_key`, so a repeated create
    /// fails instead of posting twice. When the create fails in a way that may hide a success
    /// (the key is taken, an unreadable answer, a lost connection), the record is looked up by
    /// its key and, if it is the reply to this mention, taken as sent.
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, PlatformError> {
        if out.channel == Channel::Private {
            return Err(PlatformError::Unsupported("private messages on Bluesky"));
        }
        let target = ReplyRef::of(out.to)?;
        let session = self.session().await?;
        let known = [
            (out.to.author.handle.as_str(), target.did.as_str()),
            (session.handle.as_str(), session.did.as_str()),
        ];
        let mut record = json!({
            "$type": POST,
            "text": out.text,
            "createdAt": now_rfc3339(),
            "reply": {"root": target.root, "parent": target.parent()},
        });
        let facets = facets(out.text, &known);
        if !facets.is_empty() {
            record["facets"] = Value::Array(facets);
        }
        let created = self
            .create_record(&session.did, POST, Some(out.idem_key), record, Retry::Safe)
            .await;
        match created {
            Ok(uri) => Ok(self.sent(&session, uri)),
            Err(
                e @ (PlatformError::Http { .. }
                | PlatformError::Network(_)
                | PlatformError::Malformed(_)),
            ) => match self.own_post(&session, out.idem_key).await {
                Ok(Some(found)) => {
                    let parent = found
                        .value
                        .get("reply")
                        .and_then(|r| r.get("parent"))
                        .and_then(|p| str_field(p, "uri"));
                    if parent == Some(target.uri.as_str()) {
                        tracing::info!(account = %self.account, key = out.idem_key, "the reply already exists under its record key");
                        Ok(self.sent(&session, found.uri))
                    } else {
                        Err(PlatformError::Local(format!(
                            "the record key {} already holds another post ({}); nothing was sent",
                            out.idem_key, found.uri
                        )))
                    }
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// like, block, mute and report. Hiding a reply is not offered: Bluesky hides replies
    /// through the `hiddenReplies` list of the thread ROOT's `app.bsky.feed.threadgate`, which
    /// only exists for threads our own account started, and changing it is a read-modify-write
    /// of a record that may already hold reply rules (`com.atproto.repo.putRecord` is not among
    /// the provided lexicons), so it cannot be done cleanly here.
    async fn act(&self, action: ModAction, target: &Mention) -> Result<(), PlatformError> {
        if action == ModAction::Hide {
            return Err(PlatformError::Unsupported("hiding a reply"));
        }
        let t = ReplyRef::of(target)?;
        let session = self.session().await?;
        match action {
            // The PDS replaces an earlier like or block of the same subject, so a retried
            // create cannot leave two.
            ModAction::Like => {
                let record = json!({
                    "$type": "app.bsky.feed.like",
                    "subject": t.parent(),
                    "createdAt": now_rfc3339(),
                });
                self.create_record(
                    &session.did,
                    "app.bsky.feed.like",
                    None,
                    record,
                    Retry::Safe,
                )
                .await
                .map(drop)
            }
            ModAction::Block => {
                let record = json!({
                    "$type": "app.bsky.graph.block",
                    "subject": t.did,
                    "createdAt": now_rfc3339(),
                });
                self.create_record(
                    &session.did,
                    "app.bsky.graph.block",
                    None,
                    record,
                    Retry::Safe,
                )
                .await
                .map(drop)
            }
            ModAction::Mute => self
                .post(
                    "app.bsky.graph.muteActor",
                    &json!({"actor": t.did}),
                    Retry::Safe,
                )
                .await
                .map(drop),
            ModAction::Report => {
                let body = json!({
                    "reasonType": "com.atproto.moderation.defs#reasonSpam",
                    "subject": {
                        "$type": "com.atproto.repo.strongRef",
                        "uri": t.uri,
                        "cid": t.cid,
                    },
                });
                self.post("com.atproto.moderation.createReport", &body, Retry::Once)
                    .await
                    .map(drop)
            }
            ModAction::Hide => Err(PlatformError::Unsupported("hiding a reply")),
        }
    }

    async fn find_sent(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        if out.channel == Channel::Private {
            // `send` never makes anything for a private reply.
            return Ok(None);
        }
        let session = self.session().await?;
        Ok(self
            .own_post(&session, out.idem_key)
            .await?
            .map(|found| self.sent(&session, found.uri)))
    }

    fn budget(&self) -> Option<http::Budget> {
        Some(self.http.budget())
    }

    fn resume_budget(&self, recorded: http::Budget) {
        self.http
            .resume_budget(recorded, time::OffsetDateTime::now_utc());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Flags, MentionState, Tags, Tone};
    use crate::platforms::credentials::Source;
    use std::time::{Duration, Instant};
    use wiremock::matchers::{
        bearer_token, body_partial_json, header, method, path, query_param, query_param_is_missing,
    };
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const DID: &str = "did:plc:acmecare7q2xkzn3uw4rfd5b";
    const HANDLE: &str = "acmecare.bsky.social";
    const PASSWORD: &str = "abcd-efgh-ijkl-mnop";
    const MARIA: &str = "did:plc:maria4j7tq6fw2xk3ha5lz";
    const LIST: &str = "/xrpc/app.bsky.notification.listNotifications";
    const CREATE: &str = "/xrpc/com.atproto.repo.createRecord";
    const GET_RECORD: &str = "/xrpc/com.atproto.repo.getRecord";

    fn spec(base: &str) -> AccountSpec {
        AccountSpec {
            name: "care-bsky".into(),
            platform: Platform::Bluesky,
            base_url: Some(format!("{base}/")),
            handle: HANDLE.into(),
            secret: None,
            identifier: None,
            request_timeout: std::time::Duration::from_secs(30),
            watch: vec!["Zyntriva".into(), "  ".into()],
        }
    }

    fn connector(server: &MockServer) -> Bluesky {
        let mut b = Bluesky::new(&spec(&server.uri()), Secret::new(PASSWORD)).unwrap();
        b.http.max_wait = Duration::from_secs(5);
        b
    }

    fn session_json(access: &str, refresh: &str) -> Value {
        json!({
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": HANDLE,
            "did": DID,
            "email": "care@acme.example",
            "emailConfirmed": true,
            "active": true
        })
    }

    /// createSession with the identifier and app password, answered once with access-1.
    async fn mount_login(server: &MockServer) {
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .and(body_partial_json(
                json!({"identifier": HANDLE, "password": PASSWORD}),
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(session_json("access-1", "refresh-1")),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(server)
            .await;
    }

    fn profile(did: &str, handle: &str, name: &str) -> Value {
        json!({
            "did": did,
            "handle": handle,
            "displayName": name,
            "description": format!("{name} writes here"),
            "avatar": "https://cdn.bsky.app/img/avatar/plain/x@jpeg",
            "indexedAt": "2025-01-01T00:00:00.000Z",
            "viewer": {"muted": false, "blockedBy": false},
            "labels": []
        })
    }

    fn uri(did: &str, rkey: &str) -> String {
        format!("at://{did}/app.bsky.feed.post/{rkey}")
    }

    fn post(text: &str, created: &str, reply: Option<(&str, &str)>) -> Value {
        let mut record = json!({
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": created,
            "langs": ["en"]
        });
        if let Some((root, parent)) = reply {
            record["reply"] = json!({
                "root": {"uri": root, "cid": "bafyroot"},
                "parent": {"uri": parent, "cid": "bafyparent"}
            });
        }
        record
    }

    fn notification(rkey: &str, reason: &str, record: Value, indexed: &str) -> Value {
        json!({
            "uri": uri(MARIA, rkey),
            "cid": format!("bafy{rkey}"),
            "author": profile(MARIA, "maria.bsky.social", "Maria Lopez"),
            "reason": reason,
            "record": record,
            "isRead": false,
            "indexedAt": indexed,
            "labels": []
        })
    }

    fn mention_at(rkey: &str, reason: &str, indexed: &str) -> Value {
        notification(
            rkey,
            reason,
            post(&format!("@{HANDLE} about {rkey}"), indexed, None),
            indexed,
        )
    }

    fn like_at(rkey: &str, indexed: &str) -> Value {
        json!({
            "uri": format!("at://{MARIA}/app.bsky.feed.like/{rkey}"),
            "cid": "bafylike",
            "author": profile(MARIA, "maria.bsky.social", "Maria Lopez"),
            "reason": "like",
            "reasonSubject": uri(DID, "ourpost"),
            "record": {
                "$type": "app.bsky.feed.like",
                "subject": {"uri": uri(DID, "ourpost"), "cid": "bafyours"},
                "createdAt": indexed
            },
            "isRead": true,
            "indexedAt": indexed
        })
    }

    fn page(items: Vec<Value>, cursor: Option<&str>) -> ResponseTemplate {
        let mut body = json!({"notifications": items, "seenAt": "2026-03-01T09:00:00.000Z"});
        if let Some(c) = cursor {
            body["cursor"] = json!(c);
        }
        ResponseTemplate::new(200).set_body_json(body)
    }

    fn ids(p: &FetchPage) -> Vec<String> {
        p.mentions
            .iter()
            .map(|m| m.remote_id.rsplit('/').next().unwrap().to_owned())
            .collect()
    }

    fn decode(cursor: &str) -> Cursor {
        serde_json::from_str(cursor).unwrap()
    }

    fn as_mention(m: IncomingMention) -> Mention {
        Mention {
            id: 7,
            platform: m.platform,
            account: m.account,
            remote_id: m.remote_id,
            author: m.author,
            text: m.text,
            created_at: m.created_at,
            url: m.url,
            in_reply_to: m.in_reply_to,
            parent_text: m.parent_text,
            reply_ref: m.reply_ref,
            private: m.private,
            tags: Tags::operator(Tone::Spam, Flags::empty(), "test"),
            state: MentionState::Open,
            due_at: m.created_at,
            snooze_until: None,
        }
    }

    /// A stored mention by Maria, a reply in a thread whose root is ours.
    fn target() -> Mention {
        let n = notification(
            "3mreply",
            "reply",
            post(
                "Is Zyntriva safe with ibuprofen?",
                "2026-03-01T10:00:00.000Z",
                Some((&uri(DID, "3root"), &uri(DID, "3root"))),
            ),
            "2026-03-01T10:00:01.000Z",
        );
        let entry = notification_entry("care-bsky", n).unwrap();
        as_mention(entry.outcome.unwrap().unwrap())
    }

    fn outgoing<'a>(to: &'a Mention, text: &'a str, channel: Channel) -> Outgoing<'a> {
        Outgoing {
            idem_key: "tdk-7-1",
            to,
            channel,
            text,
        }
    }

    #[tokio::test]
    async fn first_fetch_walks_back_then_only_new_items_come() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let root = uri(DID, "3root");
        let reply = notification(
            "3m2",
            "reply",
            post(
                "Still waiting for an answer",
                "2026-03-01T10:01:00.000Z",
                Some((&root, &uri(DID, "3mid"))),
            ),
            "2026-03-01T10:01:00.500Z",
        );
        // The newest page: a mention, a like (not for the desk), a reply.
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(bearer_token("access-1"))
            .and(query_param("limit", "50"))
            .and(query_param("reasons", "mention"))
            .and(query_param("reasons", "reply"))
            .and(query_param("reasons", "quote"))
            .and(query_param_is_missing("cursor"))
            .respond_with(page(
                vec![
                    mention_at("3m3", "mention", "2026-03-01T10:03:00.000Z"),
                    like_at("3l1", "2026-03-01T10:02:00.000Z"),
                    reply.clone(),
                ],
                Some("2026-03-01T10:01:00.500Z::bafy3m2"),
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param("cursor", "2026-03-01T10:01:00.500Z::bafy3m2"))
            .respond_with(page(
                vec![mention_at("3m1", "quote", "2026-03-01T09:00:00.000Z")],
                None,
            ))
            .expect(1)
            .mount(&server)
            .await;
        let b = connector(&server);

        let first = b.fetch("mentions", None).await.unwrap();
        assert_eq!(ids(&first), ["3m3", "3m2"]);
        assert!(first.more && first.skipped.is_empty());
        let c1 = first.cursor.clone().unwrap();
        assert!(decode(&c1).walk.is_some());

        let m2 = &first.mentions[1];
        assert_eq!(m2.platform, Platform::Bluesky);
        assert_eq!(m2.account, "care-bsky");
        assert_eq!(m2.remote_id, uri(MARIA, "3m2"));
        assert_eq!(m2.author.handle, "maria.bsky.social");
        assert_eq!(m2.author.display_name, "Maria Lopez");
        assert_eq!(m2.author.bio, "Maria Lopez writes here");
        assert_eq!(m2.text, "Still waiting for an answer");
        assert_eq!(m2.created_at, time::macros::datetime!(2026-03-01 10:01 UTC));
        assert_eq!(
            m2.url.as_deref(),
            Some("https://bsky.app/profile/maria.bsky.social/post/3m2")
        );
        assert_eq!(m2.in_reply_to.as_deref(), Some(uri(DID, "3mid").as_str()));
        assert!(!m2.private && m2.parent_text.is_none());
        let r: Value = serde_json::from_str(m2.reply_ref.as_deref().unwrap()).unwrap();
        assert_eq!(
            r,
            json!({"uri": uri(MARIA, "3m2"), "cid": "bafy3m2",
                   "root": {"uri": root, "cid": "bafyroot"}, "did": MARIA})
        );
        // Not a reply: the post is its own thread root.
        let r: Value =
            serde_json::from_str(first.mentions[0].reply_ref.as_deref().unwrap()).unwrap();
        assert_eq!(
            r["root"],
            json!({"uri": uri(MARIA, "3m3"), "cid": "bafy3m3"})
        );

        // The walk goes on to the older page; the list ends there.
        let second = b.fetch("mentions", Some(&c1)).await.unwrap();
        assert_eq!(ids(&second), ["3m1"]);
        assert!(!second.more);
        let c2 = second.cursor.clone().unwrap();
        assert_eq!(
            decode(&c2),
            Cursor {
                seen: Some(Mark {
                    at: "2026-03-01T10:03:00Z".into(),
                    uris: vec![uri(MARIA, "3m3")],
                }),
                walk: None,
            }
        );

        // Later polls read from the top again and keep only what is newer than the mark.
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param_is_missing("cursor"))
            .respond_with(page(
                vec![
                    mention_at("3m4", "mention", "2026-03-01T10:05:00.000Z"),
                    mention_at("3m3", "mention", "2026-03-01T10:03:00.000Z"),
                    like_at("3l1", "2026-03-01T10:02:00.000Z"),
                    reply,
                ],
                Some("older"),
            ))
            .expect(2)
            .mount(&server)
            .await;
        let third = b.fetch("mentions", Some(&c2)).await.unwrap();
        assert_eq!(ids(&third), ["3m4"]);
        assert!(!third.more);
        let c3 = third.cursor.unwrap();
        assert_eq!(decode(&c3).seen.unwrap().at, "2026-03-01T10:05:00Z");
        let fourth = b.fetch("mentions", Some(&c3)).await.unwrap();
        assert!(fourth.mentions.is_empty() && !fourth.more);
        assert_eq!(fourth.cursor, None, "nothing new: the cursor stays");
    }

    #[tokio::test]
    async fn a_run_longer_than_a_page_is_walked_down_to_the_mark() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let stored = Cursor {
            seen: Some(Mark {
                at: "2026-03-01T09:00:00Z".into(),
                uris: vec![uri(MARIA, "3old")],
            }),
            walk: None,
        }
        .encode()
        .unwrap();
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param_is_missing("cursor"))
            .respond_with(page(
                vec![
                    mention_at("3n3", "mention", "2026-03-01T10:03:00.000Z"),
                    mention_at("3n2", "reply", "2026-03-01T10:02:00.000Z"),
                ],
                Some("p2"),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param("cursor", "p2"))
            .respond_with(page(
                vec![
                    mention_at("3n1", "mention", "2026-03-01T09:30:00.000Z"),
                    mention_at("3old", "mention", "2026-03-01T09:00:00.000Z"),
                    mention_at("3older", "mention", "2026-03-01T08:00:00.000Z"),
                ],
                Some("p3"),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param("cursor", "p3"))
            .respond_with(page(vec![], None))
            .expect(0)
            .mount(&server)
            .await;
        let b = connector(&server);

        let top = b.fetch("mentions", Some(&stored)).await.unwrap();
        assert_eq!(ids(&top), ["3n3", "3n2"]);
        assert!(top.more);
        let walking = decode(top.cursor.as_deref().unwrap());
        // The mark stays where it was until the walk meets it.
        assert_eq!(walking.seen.as_ref().unwrap().at, "2026-03-01T09:00:00Z");
        assert_eq!(walking.walk.as_ref().unwrap().page, "p2");
        assert_eq!(walking.walk.as_ref().unwrap().pages_left, None);

        let rest = b.fetch("mentions", top.cursor.as_deref()).await.unwrap();
        assert_eq!(ids(&rest), ["3n1"]);
        assert!(!rest.more);
        let done = decode(rest.cursor.as_deref().unwrap());
        assert_eq!(
            done.seen,
            Some(Mark {
                at: "2026-03-01T10:03:00Z".into(),
                uris: vec![uri(MARIA, "3n3")],
            })
        );
        assert!(done.walk.is_none());
    }

    #[tokio::test]
    async fn items_at_the_marks_instant_are_told_apart_by_uri() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let at = "2026-03-01T10:00:00.000Z";
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(page(
                vec![
                    mention_at("3b", "mention", at),
                    mention_at("3a", "mention", at),
                    mention_at("3z", "mention", "2026-03-01T09:59:59.999Z"),
                ],
                Some("more"),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let stored = Cursor {
            seen: Some(Mark {
                at: "2026-03-01T10:00:00Z".into(),
                uris: vec![uri(MARIA, "3a")],
            }),
            walk: None,
        }
        .encode()
        .unwrap();
        let p = connector(&server)
            .fetch("mentions", Some(&stored))
            .await
            .unwrap();
        assert_eq!(ids(&p), ["3b"]);
        assert!(!p.more);
        let mark = decode(&p.cursor.unwrap()).seen.unwrap();
        assert_eq!(mark.uris, [uri(MARIA, "3a"), uri(MARIA, "3b")]);
    }

    #[tokio::test]
    async fn the_backfill_stops_after_its_page_budget() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param("cursor", "deep"))
            .respond_with(page(
                vec![mention_at("3deep", "mention", "2026-02-01T10:00:00.000Z")],
                Some("deeper"),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let top = Mark {
            at: "2026-03-01T10:00:00Z".into(),
            uris: vec![uri(MARIA, "3top")],
        };
        let stored = Cursor {
            seen: None,
            walk: Some(Walk {
                page: "deep".into(),
                top: Some(top.clone()),
                pages_left: Some(1),
            }),
        }
        .encode()
        .unwrap();
        let p = connector(&server)
            .fetch("mentions", Some(&stored))
            .await
            .unwrap();
        assert_eq!(ids(&p), ["3deep"]);
        assert!(
            !p.more,
            "the platform has more, but the backfill is long enough"
        );
        assert_eq!(
            decode(&p.cursor.unwrap()),
            Cursor {
                seen: Some(top),
                walk: None
            }
        );
    }

    #[tokio::test]
    async fn a_refused_paging_cursor_starts_the_walk_again_from_the_top() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(query_param("cursor", "stale"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(
                    json!({"error": "InvalidRequest", "message": "Malformed cursor"}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let seen = Mark {
            at: "2026-03-01T09:00:00Z".into(),
            uris: vec![],
        };
        let stored = Cursor {
            seen: Some(seen.clone()),
            walk: Some(Walk {
                page: "stale".into(),
                top: None,
                pages_left: None,
            }),
        }
        .encode()
        .unwrap();
        let p = connector(&server)
            .fetch("mentions", Some(&stored))
            .await
            .unwrap();
        assert!(p.mentions.is_empty());
        assert!(p.skipped[0].contains("Malformed cursor"), "{:?}", p.skipped);
        assert_eq!(
            decode(&p.cursor.unwrap()),
            Cursor {
                seen: Some(seen),
                walk: None
            }
        );
    }

    #[tokio::test]
    async fn a_malformed_item_is_skipped_and_the_rest_kept() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let mut no_text = mention_at("3bad", "mention", "2026-03-01T10:04:00.000Z");
        no_text["record"].as_object_mut().unwrap().remove("text");
        let mut bad_time = mention_at("3badtime", "mention", "2026-03-01T10:03:00.000Z");
        bad_time["indexedAt"] = json!("yesterday");
        let mut wrong_type = mention_at("3wrong", "mention", "2026-03-01T10:02:30.000Z");
        wrong_type["author"] = json!("maria");
        // An invalid createdAt falls back to indexedAt.
        let odd_date = notification(
            "3odd",
            "mention",
            post("hello @acmecare.bsky.social", "not a date", None),
            "2026-03-01T10:02:00.000Z",
        );
        let unknown_reason = json!({"uri": uri(MARIA, "3new"), "reason": "some-future-reason",
            "indexedAt": "2026-03-01T10:01:30.000Z", "brandNewField": {"x": 1}});
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(page(
                vec![
                    no_text,
                    bad_time,
                    wrong_type,
                    odd_date,
                    unknown_reason,
                    mention_at("3ok", "mention", "2026-03-01T10:01:00.000Z"),
                ],
                None,
            ))
            .mount(&server)
            .await;
        let p = connector(&server).fetch("mentions", None).await.unwrap();
        assert_eq!(ids(&p), ["3odd", "3ok"]);
        assert_eq!(
            p.mentions[0].created_at,
            time::macros::datetime!(2026-03-01 10:02 UTC)
        );
        assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
        assert!(p.skipped[0].contains("3bad") && p.skipped[0].contains("text"));
        assert!(p.skipped[1].contains("yesterday"));
        assert!(p.skipped[2].contains("3wrong"));
        // The mark moves past the skipped items too, so they are not read again.
        assert_eq!(
            decode(&p.cursor.unwrap()).seen.unwrap().at,
            "2026-03-01T10:04:00Z"
        );
    }

    #[tokio::test]
    async fn a_truncated_page_is_an_error_and_no_cursor() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"notifications":[{"uri":"at://did:plc:m"#,
                "application/json",
            ))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"cursor": "x"})))
            .mount(&server)
            .await;
        let b = connector(&server);
        let e = b.fetch("mentions", None).await.unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
        let e = b.fetch("mentions", None).await.unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
        assert!(e.to_string().contains("notifications"), "{e}");
    }

    #[tokio::test]
    async fn keyword_watch_searches_latest_since_the_mark_and_drops_our_own_posts() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let view = |did: &str, handle: &str, rkey: &str, text: &str, at: &str| {
            json!({
                "uri": uri(did, rkey),
                "cid": format!("bafy{rkey}"),
                "author": {"did": did, "handle": handle, "displayName": "Someone"},
                "record": post(text, at, None),
                "replyCount": 0, "repostCount": 0, "likeCount": 3, "quoteCount": 0,
                "indexedAt": at,
                "labels": []
            })
        };
        Mock::given(method("GET"))
            .and(path("/xrpc/app.bsky.feed.searchPosts"))
            .and(bearer_token("access-1"))
            .and(query_param("q", "Zyntriva"))
            .and(query_param("sort", "latest"))
            .and(query_param("limit", "50"))
            .and(query_param_is_missing("since"))
            .and(query_param_is_missing("cursor"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "hitsTotal": 2,
                "posts": [
                    view(DID, HANDLE, "3ours", "Zyntriva info: call us", "2026-03-01T10:05:00.000Z"),
                    view(MARIA, "handle.invalid", "3hit", "Zyntriva gave me a rash", "2026-03-01T10:04:00.000Z"),
                ]
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/xrpc/app.bsky.feed.searchPosts"))
            .and(query_param("since", "2026-03-01T10:05:00Z"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"posts": []})))
            .expect(1)
            .mount(&server)
            .await;
        let b = connector(&server);
        assert_eq!(b.streams(), ["mentions", "watch:Zyntriva"]);
        let p = b.fetch("watch:Zyntriva", None).await.unwrap();
        assert_eq!(ids(&p), ["3hit"]);
        assert_eq!(p.mentions[0].author.bio, "");
        // No usable handle: the author is known by DID, and so is the link.
        assert_eq!(p.mentions[0].author.handle, MARIA);
        assert_eq!(
            p.mentions[0].url.as_deref(),
            Some(format!("https://bsky.app/profile/{MARIA}/post/3hit").as_str())
        );
        let again = b
            .fetch("watch:Zyntriva", p.cursor.as_deref())
            .await
            .unwrap();
        assert!(again.mentions.is_empty() && again.cursor.is_none());
        assert!(matches!(
            b.fetch("timeline", None).await,
            Err(PlatformError::Local(_))
        ));
    }

    /// Authors without a usable handle stay apart: each is known by its DID (the Mastodon fuzz
    /// finding `lone-at-acct` has the same shape).
    #[test]
    fn an_author_without_a_usable_handle_is_known_by_did() {
        assert_eq!(
            author_handle("@maria.bsky.social", MARIA).unwrap(),
            "maria.bsky.social"
        );
        for handle in ["", "@", " @ ", "handle.invalid"] {
            assert_eq!(author_handle(handle, MARIA).unwrap(), MARIA, "{handle:?}");
        }
        assert!(author_handle("@", " ").is_err());
    }

    #[test]
    fn facets_count_utf8_bytes_and_resolve_only_known_handles() {
        let text = "¡Hola @maria.bsky.social! 👋 Más info: https://acme.example/médinfo \
                    (o https://acme.example/a_(b)). — @otro.bsky.social @acmecare.bsky.social";
        let f = facets(
            text,
            &[("Maria.bsky.social", MARIA), ("acmecare.bsky.social", DID)],
        );
        let spans: Vec<(u64, u64)> = f
            .iter()
            .map(|f| {
                (
                    f["index"]["byteStart"].as_u64().unwrap(),
                    f["index"]["byteEnd"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(spans, [(7, 25), (43, 72), (76, 102), (127, 148)]);
        for (facet, expected) in f.iter().zip([
            "@maria.bsky.social",
            "https://acme.example/médinfo",
            "https://acme.example/a_(b)",
            "@acmecare.bsky.social",
        ]) {
            let (s, e) = (
                facet["index"]["byteStart"].as_u64().unwrap() as usize,
                facet["index"]["byteEnd"].as_u64().unwrap() as usize,
            );
            assert_eq!(&text.as_bytes()[s..e], expected.as_bytes());
        }
        assert_eq!(
            f[0]["features"],
            json!([{"$type": "app.bsky.richtext.facet#mention", "did": MARIA}])
        );
        assert_eq!(
            f[1]["features"],
            json!([{"$type": "app.bsky.richtext.facet#link", "uri": "https://acme.example/médinfo"}])
        );
        assert!(
            facets(
                "mail me@maria.bsky.social or see http:// now",
                &[("maria.bsky.social", MARIA)]
            )
            .is_empty()
        );
        assert!(facets("plain text", &[]).is_empty());
    }

    #[tokio::test]
    async fn a_public_reply_is_a_post_record_under_the_idempotency_key() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let to = target();
        let text =
            "Hi @maria.bsky.social 👋 please call Medical Information: https://acme.example/mi";
        let made = uri(DID, "tdk-7-1");
        Mock::given(method("POST"))
            .and(path(CREATE))
            .and(bearer_token("access-1"))
            .and(header("content-type", "application/json"))
            .and(body_partial_json(json!({
                "repo": DID,
                "collection": "app.bsky.feed.post",
                "rkey": "tdk-7-1",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": text,
                    "reply": {
                        "root": {"uri": uri(DID, "3root"), "cid": "bafyroot"},
                        "parent": {"uri": uri(MARIA, "3mreply"), "cid": "bafy3mreply"}
                    }
                }
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "uri": made,
                "cid": "bafyreply",
                "commit": {"cid": "bafycommit", "rev": "3lrev"},
                "validationStatus": "valid"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let b = connector(&server);
        let sent = b.send(&outgoing(&to, text, Channel::Public)).await.unwrap();
        assert_eq!(
            sent,
            Sent {
                remote_id: made,
                url: Some(format!("https://bsky.app/profile/{HANDLE}/post/tdk-7-1")),
            }
        );
        let requests = server.received_requests().await.unwrap();
        let body: Value = requests
            .iter()
            .find(|r| r.url.path() == CREATE)
            .unwrap()
            .body_json()
            .unwrap();
        let record = &body["record"];
        assert!(parse_time(record["createdAt"].as_str().unwrap()).is_some());
        assert_eq!(
            record["facets"],
            json!([
                {"index": {"byteStart": 3, "byteEnd": 21},
                 "features": [{"$type": "app.bsky.richtext.facet#mention", "did": MARIA}]},
                {"index": {"byteStart": 60, "byteEnd": 83},
                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://acme.example/mi"}]}
            ])
        );
        assert_eq!(&text.as_bytes()[60..83], b"https://acme.example/mi");
    }

    #[tokio::test]
    async fn private_replies_are_unsupported_and_send_nothing() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(CREATE))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let to = target();
        let b = connector(&server);
        let out = outgoing(&to, "Please check your DMs", Channel::Private);
        assert_eq!(
            b.send(&out).await,
            Err(PlatformError::Unsupported("private messages on Bluesky"))
        );
        assert_eq!(b.find_sent(&out).await, Ok(None));
    }

    #[tokio::test]
    async fn a_taken_record_key_is_success_when_it_holds_this_reply() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("POST"))
            .and(path(CREATE))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"error": "InvalidRequest", "message": "Record already exists"}),
            ))
            .expect(2)
            .mount(&server)
            .await;
        let existing = |parent: &str| {
            json!({
                "uri": uri(DID, "tdk-7-1"),
                "cid": "bafyreply",
                "value": post("Thanks", "2026-03-01T10:10:00.000Z", Some((&uri(DID, "3root"), parent)))
            })
        };
        Mock::given(method("GET"))
            .and(path(GET_RECORD))
            .and(query_param("repo", DID))
            .and(query_param("collection", "app.bsky.feed.post"))
            .and(query_param("rkey", "tdk-7-1"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(existing(&uri(MARIA, "3mreply"))),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(GET_RECORD))
            .respond_with(ResponseTemplate::new(200).set_body_json(existing(&uri(MARIA, "3else"))))
            .expect(1)
            .mount(&server)
            .await;
        let to = target();
        let b = connector(&server);
        let out = outgoing(&to, "Thanks", Channel::Public);
        let sent = b.send(&out).await.unwrap();
        assert_eq!(sent.remote_id, uri(DID, "tdk-7-1"));
        // The key holds a reply to something else: refuse, and say so.
        let e = b.send(&out).await.unwrap_err();
        assert!(
            matches!(e, PlatformError::Local(_)) && e.to_string().contains("tdk-7-1"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn find_sent_gets_the_record_by_key() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(GET_RECORD))
            .and(bearer_token("access-1"))
            .and(query_param("repo", DID))
            .and(query_param("collection", "app.bsky.feed.post"))
            .and(query_param("rkey", "tdk-7-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "uri": uri(DID, "tdk-7-1"),
                "cid": "bafyreply",
                "value": post("Thanks", "2026-03-01T10:10:00.000Z", None)
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(GET_RECORD))
            .and(query_param("rkey", "tdk-8-1"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": "RecordNotFound",
                "message": format!("Could not locate record: {}", uri(DID, "tdk-8-1"))
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(GET_RECORD))
            .and(query_param("rkey", "tdk-9-1"))
            .respond_with(ResponseTemplate::new(400).set_body_json(
                json!({"error": "InvalidRequest", "message": "Params must have the property \"repo\""}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let to = target();
        let b = connector(&server);
        let found = b
            .find_sent(&outgoing(&to, "Thanks", Channel::Public))
            .await
            .unwrap();
        assert_eq!(
            found,
            Some(Sent {
                remote_id: uri(DID, "tdk-7-1"),
                url: Some(format!("https://bsky.app/profile/{HANDLE}/post/tdk-7-1")),
            })
        );
        let mut out = outgoing(&to, "Thanks", Channel::Public);
        out.idem_key = "tdk-8-1";
        assert_eq!(b.find_sent(&out).await, Ok(None));
        // Any other refusal is not proof of absence.
        out.idem_key = "tdk-9-1";
        assert!(b.find_sent(&out).await.is_err());
    }

    #[tokio::test]
    async fn like_block_mute_and_report_use_their_lexicons() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let subject = json!({"uri": uri(MARIA, "3mreply"), "cid": "bafy3mreply"});
        let created = |rkey: &str| {
            ResponseTemplate::new(200)
                .set_body_json(json!({"uri": format!("at://{DID}/x/{rkey}"), "cid": "bafyx"}))
        };
        Mock::given(method("POST"))
            .and(path(CREATE))
            .and(bearer_token("access-1"))
            .and(body_partial_json(json!({
                "repo": DID,
                "collection": "app.bsky.feed.like",
                "record": {"$type": "app.bsky.feed.like", "subject": subject}
            })))
            .respond_with(created("like"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(CREATE))
            .and(body_partial_json(json!({
                "repo": DID,
                "collection": "app.bsky.graph.block",
                "record": {"$type": "app.bsky.graph.block", "subject": MARIA}
            })))
            .respond_with(created("block"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/app.bsky.graph.muteActor"))
            .and(bearer_token("access-1"))
            .and(body_partial_json(json!({"actor": MARIA})))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.moderation.createReport"))
            .and(bearer_token("access-1"))
            .and(body_partial_json(json!({
                "reasonType": "com.atproto.moderation.defs#reasonSpam",
                "subject": {"$type": "com.atproto.repo.strongRef",
                            "uri": uri(MARIA, "3mreply"), "cid": "bafy3mreply"}
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": 42,
                "reasonType": "com.atproto.moderation.defs#reasonSpam",
                "subject": {"$type": "com.atproto.repo.strongRef",
                            "uri": uri(MARIA, "3mreply"), "cid": "bafy3mreply"},
                "reportedBy": DID,
                "createdAt": "2026-03-01T10:20:00.000Z"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let to = target();
        let b = connector(&server);
        for action in [
            ModAction::Like,
            ModAction::Block,
            ModAction::Mute,
            ModAction::Report,
        ] {
            b.act(action, &to).await.unwrap();
        }
        assert_eq!(
            b.act(ModAction::Hide, &to).await,
            Err(PlatformError::Unsupported("hiding a reply"))
        );
        let mut bare = to.clone();
        bare.reply_ref = None;
        assert!(matches!(
            b.act(ModAction::Like, &bare).await,
            Err(PlatformError::Local(_))
        ));
        // The like's record carries its own time.
        let requests = server.received_requests().await.unwrap();
        let like: Value = requests
            .iter()
            .filter(|r| r.url.path() == CREATE)
            .map(|r| r.body_json::<Value>().unwrap())
            .find(|b| b["collection"] == "app.bsky.feed.like")
            .unwrap();
        assert!(parse_time(like["record"]["createdAt"].as_str().unwrap()).is_some());
        assert!(like.get("rkey").is_none());
    }

    #[tokio::test]
    async fn a_429_is_waited_out() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_json(
                        json!({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}),
                    ),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(page(
                vec![mention_at("3m", "mention", "2026-03-01T10:00:00.000Z")],
                None,
            ))
            .expect(1)
            .mount(&server)
            .await;
        let started = Instant::now();
        let p = connector(&server).fetch("mentions", None).await.unwrap();
        assert_eq!(ids(&p), ["3m"]);
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_refused_login_is_an_auth_error_without_the_password() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": "AuthenticationRequired",
                "message": "Invalid identifier or password"
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(page(vec![], None))
            .expect(0)
            .mount(&server)
            .await;
        let e = connector(&server)
            .fetch("mentions", None)
            .await
            .unwrap_err();
        let PlatformError::Auth(message) = &e else {
            panic!("{e:?}")
        };
        assert!(
            message.contains("care-bsky") && message.contains("Invalid identifier or password"),
            "{message}"
        );
        assert!(!e.to_string().contains(PASSWORD), "{e}");
    }

    #[tokio::test]
    async fn a_401_on_a_call_is_an_auth_error_without_any_token() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let refused = ResponseTemplate::new(401).set_body_json(
            json!({"error": "InvalidToken", "message": "Token could not be verified"}),
        );
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(refused.clone())
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.refreshSession"))
            .respond_with(refused)
            .expect(1)
            .mount(&server)
            .await;
        // Logging in again is refused too (the app password was revoked).
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "error": "AuthenticationRequired", "message": "Invalid identifier or password"
            })))
            .mount(&server)
            .await;
        let e = connector(&server)
            .fetch("mentions", None)
            .await
            .unwrap_err();
        assert!(matches!(e, PlatformError::Auth(_)), "{e:?}");
        let text = format!("{e} {e:?}");
        for secret in [PASSWORD, "access-1", "refresh-1"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[tokio::test]
    async fn an_expired_token_is_refreshed_and_the_call_repeated_once() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(bearer_token("access-1"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(
                    json!({"error": "ExpiredToken", "message": "Token has expired"}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.refreshSession"))
            .and(bearer_token("refresh-1"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(session_json("access-2", "refresh-2")),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(bearer_token("access-2"))
            .respond_with(page(
                vec![mention_at("3m", "mention", "2026-03-01T10:00:00.000Z")],
                None,
            ))
            .expect(2)
            .mount(&server)
            .await;
        let b = connector(&server);
        assert_eq!(ids(&b.fetch("mentions", None).await.unwrap()), ["3m"]);
        // The renewed session is kept.
        assert_eq!(ids(&b.fetch("mentions", None).await.unwrap()), ["3m"]);
    }

    #[tokio::test]
    async fn a_failed_refresh_logs_in_again() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(session_json("access-1", "refresh-1")),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.createSession"))
            .and(body_partial_json(
                json!({"identifier": HANDLE, "password": PASSWORD}),
            ))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(session_json("access-3", "refresh-3")),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(bearer_token("access-1"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(
                    json!({"error": "ExpiredToken", "message": "Token has expired"}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/xrpc/com.atproto.server.refreshSession"))
            .and(bearer_token("refresh-1"))
            .respond_with(
                ResponseTemplate::new(400).set_body_json(
                    json!({"error": "ExpiredToken", "message": "Token has expired"}),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LIST))
            .and(bearer_token("access-3"))
            .respond_with(page(vec![], None))
            .expect(1)
            .mount(&server)
            .await;
        let p = connector(&server).fetch("mentions", None).await.unwrap();
        assert!(p.mentions.is_empty() && p.cursor.is_none());
    }

    #[tokio::test]
    async fn rate_headers_fill_the_budget() {
        let server = MockServer::start().await;
        mount_login(&server).await;
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 300;
        Mock::given(method("GET"))
            .and(path(LIST))
            .respond_with(
                page(vec![], None)
                    .insert_header("RateLimit-Limit", "3000")
                    .insert_header("RateLimit-Remaining", "2999")
                    .insert_header("RateLimit-Reset", reset.to_string().as_str())
                    .insert_header("RateLimit-Policy", "3000;w=300"),
            )
            .mount(&server)
            .await;
        let b = connector(&server);
        b.fetch("mentions", None).await.unwrap();
        let budget = b.budget().unwrap();
        assert_eq!(budget.limit, Some(3000));
        assert_eq!(budget.remaining, Some(2999));
        assert_eq!(budget.reset_at.map(|t| t.unix_timestamp()), Some(reset));
    }

    #[tokio::test]
    async fn connect_needs_the_app_password_and_stays_offline() {
        let mut s = spec("http://127.0.0.1:9");
        let e = connect(&s).err().unwrap();
        assert!(matches!(e, PlatformError::Auth(_)));
        assert!(e.to_string().contains("app_password_env"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bsky");
        std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        s.secret = Some(Source::File(file));
        s.base_url = None;
        s.identifier = Some("did:plc:acmecare7q2xkzn3uw4rfd5b".into());
        let c = connect(&s).unwrap();
        assert_eq!(c.platform(), Platform::Bluesky);
        assert_eq!(c.account(), "care-bsky");
        assert_eq!(c.streams(), ["mentions", "watch:Zyntriva"]);

        s.base_url = Some("not a url".into());
        assert!(matches!(connect(&s).err(), Some(PlatformError::Local(_))));
    }

    #[test]
    fn parse_notifications_steps_the_cursor_as_fetch_does() {
        let body = json!({
            "notifications": [
                mention_at("3k2", "mention", "2026-06-01T10:00:00.000Z"),
                like_at("3k1", "2026-06-01T09:00:00.000Z"),
            ]
        })
        .to_string();
        let page = parse_notifications("care-b", &body, None).unwrap();
        assert_eq!(ids(&page), ["3k2"]);
        assert!(!page.more);
        let cursor = decode(page.cursor.as_deref().unwrap());
        assert_eq!(cursor.seen.unwrap().at, "2026-06-01T10:00:00Z");
        // The same page again brings nothing new and keeps the cursor.
        let again = parse_notifications("care-b", &body, page.cursor.as_deref()).unwrap();
        assert!(again.mentions.is_empty() && again.cursor.is_none());
        // An unreadable stored cursor is said, and read as none.
        let fresh = parse_notifications("care-b", &body, Some("{")).unwrap();
        assert_eq!(ids(&fresh), ["3k2"]);
        assert!(fresh.skipped[0].starts_with("the stored cursor of mentions"));
        let hit = json!({"posts": [mention_at("3s1", "mention", "2026-06-01T10:00:00.000Z")]});
        let found = parse_search("care-b", DID, &hit.to_string(), None).unwrap();
        assert_eq!(found.mentions.len(), 1);
    }

    #[test]
    fn at_uris_and_error_shapes() {
        assert_eq!(post_rkey(&uri(MARIA, "3abc")), Some("3abc"));
        assert_eq!(post_rkey("at://did:plc:x/app.bsky.feed.like/3abc"), None);
        assert_eq!(post_rkey("https://bsky.app/profile/x/post/3abc"), None);
        assert!(session_refused(&http::status_error(
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"error":"ExpiredToken","message":"Token has expired"}"#
        )));
        assert!(!session_refused(&http::status_error(
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"error":"InvalidRequest","message":"Invalid app.bsky.feed.post record"}"#
        )));
        assert!(record_not_found(&http::status_error(
            reqwest::StatusCode::BAD_REQUEST,
            r#"{"error":"RecordNotFound","message":"Could not locate record: at://x"}"#
        )));
        assert!(!record_not_found(&http::status_error(
            reqwest::StatusCode::NOT_FOUND,
            "<html>Not Found</html>"
        )));
        assert_eq!(trim_link("https://a.example/x)."), "https://a.example/x");
        assert_eq!(
            trim_link("https://a.example/w_(y)"),
            "https://a.example/w_(y)"
        );
    }
}
