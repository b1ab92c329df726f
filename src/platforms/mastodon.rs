//! The Mastodon connector. The wire format follows the official spec
//! (`shared/specs/mastodon-openapi.json`, Mastodon API 4.7).
//!
//! - **Server.** `base_url` is required: Mastodon has no one server. Every request carries
//!   `Authorization: Bearer <token>`; the token goes nowhere else.
//! - **`mentions`.** `GET /api/v1/notifications?types[]=mention&limit=80` (the maximum); with a
//!   cursor also `min_id=<cursor>` (the items right after it, so paging forward leaves no gap) and
//!   `since_id=<cursor>` (a lower bound for servers that know only that one; Mastodon lets
//!   `min_id` win). `include_filtered=true` keeps Mastodon's notification policy (4.3+) from
//!   holding back private mentions from strangers, which is where adverse events often arrive. Servers that ignore `types[]` or the bounds are handled here: only
//!   `type == "mention"` is kept, and ids at or below the cursor are dropped. A `Link` header with
//!   `rel="next"` (or, without a `Link` header, a full page) says another page exists.
//! - **`watch:KEYWORD`.** `GET /api/v2/search?q=KEYWORD&type=statuses&resolve=false&limit=40`
//!   (plus `min_id=<cursor>`), filtered by id against the cursor; the account's own posts are left
//!   out. Mastodon finds only posts its full-text search indexes (servers without Elasticsearch
//!   find none), at most 40 a poll.
//! - **Cursor.** The newest notification id (or status id, for a watch stream) seen, exactly as
//!   the server wrote it. Ids may be non-numeric: two ids compare as integers when both parse,
//!   else by length and then lexically.
//! - **`reply_ref`.** `{"account_id": "<author's account id>", "acct": "<author's acct>"}`.
//! - **Send.** `POST /api/v1/statuses` with `status`, `in_reply_to_id` and `visibility`, and the
//!   header `Idempotency-Key: <idem_key>` (so it may be retried). Public replies are `unlisted`:
//!   visible in the thread and on the brand's profile, but not pushed to the public timelines or
//!   hashtag feeds, which keeps product talk from being broadcast. Private replies are `direct`.
//!   Mastodon delivers a reply or a direct message only to the accounts mentioned in its text, so
//!   `@acct ` is put in front of the text when it does not mention the author already; the audit
//!   records the approved text without that prefix.
//! - **`find_sent`.** The account's own statuses (`GET /api/v1/accounts/{own id}/statuses`, own id
//!   from `verify_credentials`, cached), newest first, following `Link: rel="next"` until the
//!   posts are older than the mention: a status replying to the mention whose text contains the
//!   reply's text.
//! - **Actions.** like (favourite), block, mute, report (category spam). Mastodon cannot hide a
//!   reply to someone else's post, so hide is unsupported.

use std::cmp::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, LINK};
use reqwest::{Response, Url};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::OnceCell;

use super::credentials::Secret;
use super::http::{self, Http, Retry};
use super::{AccountSpec, Connector, FetchPage, Outgoing, PlatformError, Sent, Stream};
use crate::domain::playbook::ModAction;
use crate::domain::{Author, Channel, IncomingMention, Mention, Platform};

/// Items asked for per page of statuses or search results (their maximum).
const PAGE: usize = 40;
/// Notifications asked for per page (their maximum): a backlog costs half the requests of the
/// default 40, and so half the rate budget.
const NOTIFICATIONS_PAGE: usize = 80;
/// Longest text kept from a post, in characters.
const MAX_TEXT: usize = 20_000;
/// The visibility of a public reply (see the module docs).
const PUBLIC_VISIBILITY: &str = "unlisted";
/// Pages of the account's own statuses `find_sent` reads before it gives up.
const FIND_SENT_PAGES: usize = 5;

/// Builds the connector. No network traffic: the own account id is fetched on first use.
pub fn connect(spec: &AccountSpec) -> Result<Arc<dyn Connector>, PlatformError> {
    let base = base_url(spec)?;
    let token = spec
        .secret
        .as_ref()
        .ok_or_else(|| {
            PlatformError::Auth(format!(
                "account '{}': no Mastodon access token is configured; set token_env = \"VARIABLE\" \
                 or token_file = \"/path/to/token\" (mode 600) for this account",
                spec.name
            ))
        })?
        .load(&spec.name)?;
    Ok(Arc::new(Mastodon::new(spec, base, token)?))
}

/// The account's server, which must be configured.
fn base_url(spec: &AccountSpec) -> Result<Url, PlatformError> {
    let raw = spec
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            PlatformError::Local(format!(
                "account '{}': Mastodon needs the address of your server; set base_url = \
                 \"https://your.server\" for this account in config.toml",
                spec.name
            ))
        })?;
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| {
        PlatformError::Local(format!(
            "account '{}': base_url '{raw}' is not a URL ({e}); write it like \"https://mastodon.social\"",
            spec.name
        ))
    })?;
    if !matches!(url.scheme(), "https" | "http") || !url.has_host() {
        return Err(PlatformError::Local(format!(
            "account '{}': base_url '{raw}' must start with https:// and name the server",
            spec.name
        )));
    }
    Ok(url)
}

/// One Mastodon account.
pub struct Mastodon {
    account: String,
    /// The account's own handle, without `@`.
    handle: String,
    base: Url,
    token: Secret,
    watch: Vec<String>,
    http: Http,
    own: OnceCell<OwnAccount>,
}

/// The authenticated account, from `verify_credentials`.
#[derive(Debug, Clone)]
struct OwnAccount {
    id: String,
}

/// What `reply_ref` holds for a Mastodon mention.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ReplyRef {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    acct: String,
}

#[derive(Debug, Deserialize)]
struct Account {
    #[serde(default, deserialize_with = "de_id")]
    id: Option<String>,
    #[serde(default)]
    acct: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default, deserialize_with = "de_id")]
    id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    spoiler_text: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    uri: Option<String>,
    #[serde(default, deserialize_with = "de_id")]
    in_reply_to_id: Option<String>,
    #[serde(default)]
    account: Option<Account>,
}

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(default)]
    account: Option<Account>,
    #[serde(default)]
    status: Option<Status>,
}

/// An id as the spec gives it (a string); integers are accepted too, anything else is an error.
fn de_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(other) => Err(serde::de::Error::custom(format!(
            "an id must be a string, not {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `id` of a raw item, if it has a usable one.
fn value_id(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// Orders two ids: as integers when both parse, else by length and then lexically (the order
/// of Mastodon's snowflakes and of the fixed-width string ids some other servers use).
pub fn cmp_ids(a: &str, b: &str) -> Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
    }
}

fn newer(id: &str, than: Option<&str>) -> bool {
    than.is_none_or(|t| cmp_ids(id, t) == Ordering::Greater)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn cap(mut s: String) -> String {
    // A character is at least a byte: a text of at most MAX_TEXT bytes is within the cap.
    if s.len() <= MAX_TEXT {
        return s;
    }
    if let Some((at, _)) = s.char_indices().nth(MAX_TEXT) {
        s.truncate(at);
    }
    s
}

/// Reads a page of mention notifications (the body of `GET /api/v1/notifications`) for the
/// account named `account`, as a poll does: the mentions newer than `cursor`, what was skipped and
/// why, and the newest id as the next cursor (`more` is for the caller, who sees the headers).
/// Pure: no I/O, for tests and benchmarks of the ingest path.
pub fn parse_page(
    account: &str,
    body: &str,
    cursor: Option<&str>,
) -> Result<FetchPage, PlatformError> {
    let items: Vec<Box<RawValue>> = serde_json::from_str(body)
        .map_err(|e| PlatformError::Malformed(format!("the body is not the JSON expected: {e}")))?;
    Ok(read_notifications(account, &items, cursor).0)
}

/// A notification read straight into its fields, as a well-formed one is.
#[derive(Debug, Deserialize)]
struct NotificationItem {
    #[serde(default, deserialize_with = "de_id")]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    account: Option<Account>,
    #[serde(default)]
    status: Option<Status>,
}

/// One item of a page: read in one pass when it has the spec's shape, or kept as JSON so that
/// what is wrong with it can be told (and its id still moves the cursor past it).
// One lives at a time, on the stack, while its item is read: boxing the large variant would cost
// an allocation per item for nothing.
#[allow(clippy::large_enum_variant)]
enum Item {
    Typed(NotificationItem),
    Loose(Value),
    /// JSON in its syntax that no reader takes whole (a number out of range, say).
    Broken(String),
}

impl Item {
    fn read(raw: &RawValue) -> Item {
        match serde_json::from_str(raw.get()) {
            Ok(n) => Item::Typed(n),
            Err(_) => match serde_json::from_str(raw.get()) {
                Ok(v) => Item::Loose(v),
                Err(e) => Item::Broken(e.to_string()),
            },
        }
    }

    fn id(&self) -> Option<String> {
        match self {
            Item::Typed(n) => n.id.clone().filter(|id| !id.is_empty()),
            Item::Loose(v) => value_id(v),
            Item::Broken(_) => None,
        }
    }

    fn kind(&self) -> Option<&str> {
        match self {
            Item::Typed(n) => n.kind.as_deref(),
            Item::Loose(v) => v.get("type").and_then(Value::as_str),
            Item::Broken(_) => None,
        }
    }

    fn mention(self, account: &str) -> Result<IncomingMention, String> {
        match self {
            Item::Typed(n) => incoming(
                account,
                n.status.ok_or("a mention without a status")?,
                n.account,
            ),
            Item::Loose(v) => notification_mention(account, &v),
            Item::Broken(why) => Err(format!("unreadable: {why}")),
        }
    }
}

/// The mentions of a page of notifications, and whether the server honoured the cursor (false
/// when it sent items at or below it: it ignores the bounds, so asking again would only bring the
/// same page).
fn read_notifications(
    account: &str,
    items: &[Box<RawValue>],
    cursor: Option<&str>,
) -> (FetchPage, bool) {
    let mut page = FetchPage::default();
    let mut newest: Option<String> = None;
    let mut honoured = true;
    for raw in items {
        let item = Item::read(raw);
        let Some(id) = item.id() else {
            page.skipped.push(match &item {
                Item::Broken(why) => format!("an unreadable notification: {why}"),
                _ => "a notification without an id".into(),
            });
            continue;
        };
        if !newer(&id, cursor) {
            honoured = false;
            continue;
        }
        if newer(&id, newest.as_deref()) {
            newest = Some(id.clone());
        }
        match item.kind() {
            Some("mention") => {}
            // A server that ignores `types[]`: not a mention, nothing to read.
            Some(_) => continue,
            None => {
                page.skipped
                    .push(format!("notification {id}: it has no type"));
                continue;
            }
        }
        match item.mention(account) {
            Ok(m) => page.mentions.push(m),
            Err(why) => page.skipped.push(format!("notification {id}: {why}")),
        }
    }
    page.cursor = newest;
    (page, honoured)
}

fn notification_mention(account: &str, item: &Value) -> Result<IncomingMention, String> {
    let n = Notification::deserialize(item).map_err(|e| format!("unreadable: {e}"))?;
    let status = n.status.ok_or("a mention without a status")?;
    incoming(account, status, n.account)
}

/// A status as a mention; `account` (the notification's) wins over the status's own.
fn incoming(
    account_name: &str,
    status: Status,
    account: Option<Account>,
) -> Result<IncomingMention, String> {
    let account = account
        .or(status.account)
        .ok_or("the status has no account")?;
    let remote_id = non_empty(status.id).ok_or("the status has no id")?;
    let account_id = non_empty(account.id).ok_or("the account has no id")?;
    // An acct of a lone `@` is no acct either (found by fuzzing).
    let acct = non_empty(
        account
            .acct
            .map(|a| a.trim().trim_start_matches('@').to_owned()),
    )
    .ok_or("the account has no acct")?;
    let created = status
        .created_at
        .as_deref()
        .ok_or("the status has no created_at")?;
    let created_at = OffsetDateTime::parse(created, &Rfc3339)
        .map_err(|_| format!("created_at '{created}' is not an RFC 3339 time"))?;
    let content = status.content.ok_or("the status has no content")?;
    let private = match status.visibility.as_deref() {
        Some("direct") => true,
        Some("public" | "unlisted" | "private") => false,
        Some(other) => return Err(format!("unknown visibility '{other}'")),
        None => return Err("the status has no visibility".into()),
    };
    let mut text = html_to_text(&content);
    if let Some(warning) = non_empty(status.spoiler_text) {
        text = format!("CW: {}\n\n{text}", warning.trim());
    }
    let reply_ref = serde_json::to_string(&ReplyRef {
        account_id,
        acct: acct.clone(),
    })
    .map_err(|e| e.to_string())?;
    let url = non_empty(status.url)
        .or_else(|| non_empty(status.uri))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    Ok(IncomingMention {
        platform: Platform::Mastodon,
        account: account_name.to_owned(),
        remote_id,
        author: Author {
            handle: acct,
            display_name: account.display_name.unwrap_or_default(),
            bio: cap(html_to_text(account.note.as_deref().unwrap_or_default())),
        },
        text: cap(text),
        created_at,
        url,
        in_reply_to: non_empty(status.in_reply_to_id),
        parent_text: None,
        reply_ref: Some(reply_ref),
        private,
    })
}

impl Mastodon {
    fn new(spec: &AccountSpec, base: Url, token: Secret) -> Result<Mastodon, PlatformError> {
        Ok(Mastodon {
            account: spec.name.clone(),
            handle: spec.handle.trim().trim_start_matches('@').to_owned(),
            base,
            token,
            watch: spec
                .watch
                .iter()
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect(),
            http: Http::new(spec.request_timeout)?,
            own: OnceCell::new(),
        })
    }

    /// The URL of an API path under the base URL, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<Url, PlatformError> {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| PlatformError::Local("the base_url cannot hold an API path".into()))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// A link from the server (`Link` header), resolved against the base URL, only when it stays
    /// on the same server: the token must never go anywhere else.
    fn follow(&self, link: &str) -> Option<Url> {
        let url = self.base.join(link).ok()?;
        (url.origin() == self.base.origin()).then_some(url)
    }

    async fn get(&self, url: &Url) -> Result<Response, PlatformError> {
        let token = self.token.expose();
        self.http
            .send(Retry::Safe, |c| c.get(url.clone()).bearer_auth(token))
            .await
    }

    /// A read whose body is JSON, asked for again when the body arrives broken.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
    ) -> Result<(HeaderMap, T), PlatformError> {
        let token = self.token.expose();
        self.http
            .send_json(Retry::Safe, |c| c.get(url.clone()).bearer_auth(token))
            .await
    }

    async fn post(
        &self,
        url: &Url,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<Response, PlatformError> {
        let token = self.token.expose();
        self.http
            .send(retry, |c| {
                let r = c.post(url.clone()).bearer_auth(token);
                match body {
                    Some(b) => r.json(b),
                    None => r,
                }
            })
            .await
    }

    async fn own(&self) -> Result<&OwnAccount, PlatformError> {
        self.own
            .get_or_try_init(|| async {
                let url = self.endpoint(&["api", "v1", "accounts", "verify_credentials"], &[])?;
                let me: Account = http::json(self.get(&url).await?).await?;
                let id = non_empty(me.id).ok_or_else(|| {
                    PlatformError::Malformed("verify_credentials gave no account id".into())
                })?;
                Ok(OwnAccount { id })
            })
            .await
    }

    /// Whether a status was written by this account (watch searches find the brand's own posts).
    fn is_own(&self, author: &Account) -> bool {
        if let (Some(own), Some(id)) = (self.own.get(), author.id.as_deref()) {
            return own.id == id;
        }
        let Some(acct) = author.acct.as_deref().map(|a| a.trim_start_matches('@')) else {
            return false;
        };
        if self.handle.is_empty() || acct.is_empty() {
            return false;
        }
        acct.eq_ignore_ascii_case(&self.handle)
            || (!acct.contains('@')
                && self
                    .handle
                    .split('@')
                    .next()
                    .is_some_and(|user| user.eq_ignore_ascii_case(acct)))
    }

    async fn fetch_mentions(&self, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        let limit = NOTIFICATIONS_PAGE.to_string();
        let mut query = vec![
            ("types[]", "mention"),
            ("limit", limit.as_str()),
            ("include_filtered", "true"),
        ];
        if let Some(c) = cursor {
            query.push(("min_id", c));
            query.push(("since_id", c));
        }
        let url = self.endpoint(&["api", "v1", "notifications"], &query)?;
        let (headers, items): (_, Vec<Box<RawValue>>) = self.get_json(&url).await?;
        let has_link = headers.contains_key(LINK);
        let next = link_rel(&headers, "next").is_some();
        let (mut page, honoured) = read_notifications(&self.account, &items, cursor);
        let full = if has_link {
            next
        } else {
            items.len() >= NOTIFICATIONS_PAGE
        };
        page.more = full && honoured && page.cursor.is_some();
        Ok(page)
    }

    /// A status as a mention; `account` (the notification's) wins over the status's own.
    fn incoming(
        &self,
        status: Status,
        account: Option<Account>,
    ) -> Result<IncomingMention, String> {
        incoming(&self.account, status, account)
    }

    async fn fetch_watch(
        &self,
        keyword: &str,
        cursor: Option<&str>,
    ) -> Result<FetchPage, PlatformError> {
        let keyword = keyword.trim();
        if keyword.is_empty() {
            return Err(PlatformError::Local(
                "a watch stream needs a keyword".into(),
            ));
        }
        let limit = PAGE.to_string();
        let mut query = vec![
            ("q", keyword),
            ("type", "statuses"),
            ("resolve", "false"),
            ("limit", limit.as_str()),
        ];
        if let Some(c) = cursor {
            query.push(("min_id", c));
        }
        let url = self.endpoint(&["api", "v2", "search"], &query)?;
        let found: Value = http::json(self.get(&url).await?).await?;
        let statuses = found
            .get("statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PlatformError::Malformed("the search answer has no list of statuses".into())
            })?;

        let mut page = FetchPage::default();
        let mut newest: Option<String> = None;
        for item in statuses {
            let Some(id) = value_id(item) else {
                page.skipped.push("a status without an id".into());
                continue;
            };
            if !newer(&id, cursor) {
                continue;
            }
            if newer(&id, newest.as_deref()) {
                newest = Some(id.clone());
            }
            let status: Status = match serde_json::from_value(item.clone()) {
                Ok(s) => s,
                Err(e) => {
                    page.skipped.push(format!("status {id}: unreadable: {e}"));
                    continue;
                }
            };
            if status.account.as_ref().is_some_and(|a| self.is_own(a)) {
                continue;
            }
            match self.incoming(status, None) {
                Ok(m) => page.mentions.push(m),
                Err(why) => page.skipped.push(format!("status {id}: {why}")),
            }
        }
        page.cursor = newest;
        Ok(page)
    }

    /// The author's account id, from `reply_ref`, or else from the status itself.
    async fn author_id(&self, target: &Mention) -> Result<String, PlatformError> {
        if let Some(id) = reply_ref(target).map(|r| r.account_id)
            && !id.is_empty()
        {
            return Ok(id);
        }
        let url = self.endpoint(&["api", "v1", "statuses", &target.remote_id], &[])?;
        let status: Status = http::json(self.get(&url).await?).await?;
        status
            .account
            .and_then(|a| non_empty(a.id))
            .ok_or_else(|| PlatformError::Malformed("the status has no account id".into()))
    }
}

fn reply_ref(m: &Mention) -> Option<ReplyRef> {
    serde_json::from_str(m.reply_ref.as_deref()?).ok()
}

/// The author's acct (`maria` or `maria@med.example`), from `reply_ref` or else the handle.
fn target_acct(m: &Mention) -> String {
    reply_ref(m)
        .map(|r| r.acct)
        .filter(|a| !a.trim().is_empty())
        .unwrap_or_else(|| m.author.handle.clone())
        .trim()
        .trim_start_matches('@')
        .to_owned()
}

fn handle_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `text` mentions `@acct` as a whole handle (any case).
fn mentions(text: &str, acct: &str) -> bool {
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let needle: Vec<char> = format!("@{}", acct.to_lowercase()).chars().collect();
    if needle.len() < 2 || text.len() < needle.len() {
        return false;
    }
    (0..=text.len() - needle.len()).any(|i| {
        if text[i..i + needle.len()] != needle[..] {
            return false;
        }
        let before_ok = i == 0 || !(handle_char(text[i - 1]) || text[i - 1] == '@');
        let rest = &text[i + needle.len()..];
        let after_ok = match rest {
            [] => true,
            [c, ..] if handle_char(*c) || *c == '@' => false,
            ['.' | '-', c, ..] if handle_char(*c) => false,
            _ => true,
        };
        before_ok && after_ok
    })
}

/// The text as sent: Mastodon delivers a reply or direct message only to the accounts its text
/// mentions, so the author is addressed first unless the text mentions them already.
fn addressed(text: &str, acct: &str) -> String {
    if acct.is_empty() || mentions(text, acct) {
        text.to_owned()
    } else {
        format!("@{acct} {text}")
    }
}

/// Text reduced for comparing what was sent with what the server shows: whitespace collapsed,
/// and `@user@domain` shortened to `@user` (Mastodon's HTML shows mentions without the domain).
fn comparable(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let chars: Vec<char> = joined.chars().collect();
    let part = |c: char| handle_char(c) || c == '.' || c == '-';
    let mut out = String::with_capacity(joined.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        i += 1;
        if c == '@' && (i < 2 || !handle_char(chars[i - 2])) {
            while i < chars.len() && part(chars[i]) {
                out.push(chars[i]);
                i += 1;
            }
            if i + 1 < chars.len() && chars[i] == '@' && handle_char(chars[i + 1]) {
                let mut j = i + 1;
                while j < chars.len() && part(chars[j]) {
                    j += 1;
                }
                // A sentence's full stop after the domain stays.
                while j > i + 1 && matches!(chars[j - 1], '.' | '-') {
                    j -= 1;
                }
                i = j;
            }
        }
    }
    out
}

/// The target of the first `Link` entry with relation `rel` (`next`, `prev`).
fn link_rel(headers: &HeaderMap, rel: &str) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| parse_link(v, rel))
}

fn parse_link(value: &str, rel: &str) -> Option<String> {
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let target = &after[..end];
        let tail = &after[end + 1..];
        let params_end = tail.find('<').unwrap_or(tail.len());
        let wanted = tail[..params_end]
            .split([';', ','])
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("rel").then_some(v)
            })
            .any(|v| {
                v.trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
            });
        if wanted {
            return Some(target.trim().to_owned());
        }
        rest = &tail[params_end..];
    }
    None
}

#[async_trait]
impl Connector for Mastodon {
    fn platform(&self) -> Platform {
        Platform::Mastodon
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn streams(&self) -> Vec<String> {
        Stream::names(&self.watch)
    }

    async fn fetch(&self, stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        let cursor = cursor.filter(|c| !c.trim().is_empty());
        match Stream::parse(stream, &self.account)? {
            Stream::Mentions => self.fetch_mentions(cursor).await,
            Stream::Watch(keyword) => self.fetch_watch(keyword, cursor).await,
        }
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, PlatformError> {
        let key = HeaderValue::from_str(out.idem_key).map_err(|_| {
            PlatformError::Local("the idempotency key is not a valid header value".into())
        })?;
        let visibility = match out.channel {
            Channel::Public => PUBLIC_VISIBILITY,
            Channel::Private => "direct",
        };
        let body = json!({
            "status": addressed(out.text, &target_acct(out.to)),
            "in_reply_to_id": out.to.remote_id,
            "visibility": visibility,
        });
        let url = self.endpoint(&["api", "v1", "statuses"], &[])?;
        let token = self.token.expose();
        let response = self
            .http
            .send(Retry::Safe, |c| {
                c.post(url.clone())
                    .bearer_auth(token)
                    .header("Idempotency-Key", key.clone())
                    .json(&body)
            })
            .await?;
        let status: Status = http::json(response).await?;
        let remote_id = non_empty(status.id)
            .ok_or_else(|| PlatformError::Malformed("the new status has no id".into()))?;
        Ok(Sent {
            remote_id,
            url: non_empty(status.url).or_else(|| non_empty(status.uri)),
        })
    }

    async fn act(&self, action: ModAction, target: &Mention) -> Result<(), PlatformError> {
        match action {
            ModAction::Like => {
                let url = self.endpoint(
                    &["api", "v1", "statuses", &target.remote_id, "favourite"],
                    &[],
                )?;
                self.post(&url, None, Retry::Safe).await?;
            }
            ModAction::Hide => return Err(PlatformError::Unsupported("hiding a reply")),
            ModAction::Block | ModAction::Mute => {
                let id = self.author_id(target).await?;
                let verb = if action == ModAction::Block {
                    "block"
                } else {
                    "mute"
                };
                let url = self.endpoint(&["api", "v1", "accounts", &id, verb], &[])?;
                self.post(&url, None, Retry::Safe).await?;
            }
            ModAction::Report => {
                let id = self.author_id(target).await?;
                let body = json!({
                    "account_id": id,
                    "status_ids": [target.remote_id],
                    "category": "spam",
                });
                let url = self.endpoint(&["api", "v1", "reports"], &[])?;
                // Reports are not deduplicated by the server: one attempt only.
                self.post(&url, Some(&body), Retry::Once).await?;
            }
        }
        Ok(())
    }

    async fn find_sent(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        let own = self.own().await?.id.clone();
        let want = comparable(out.text);
        let parent = out.to.remote_id.as_str();
        // A reply is newer than the mention; an hour of slack covers clocks of other servers.
        let since = out.to.created_at - time::Duration::hours(1);
        let limit = PAGE.to_string();
        let mut url = self.endpoint(
            &["api", "v1", "accounts", &own, "statuses"],
            &[("exclude_reblogs", "true"), ("limit", limit.as_str())],
        )?;
        let mut unreadable = 0usize;
        for _ in 0..FIND_SENT_PAGES {
            let response = self.get(&url).await?;
            let has_link = response.headers().contains_key(LINK);
            let next = link_rel(response.headers(), "next");
            let items: Vec<Value> = http::json(response).await?;
            let mut oldest: Option<String> = None;
            let mut reached_older = false;
            for item in &items {
                let Ok(status) = serde_json::from_value::<Status>(item.clone()) else {
                    unreadable += 1;
                    continue;
                };
                if let Some(id) = status.id.as_deref()
                    && oldest
                        .as_deref()
                        .is_none_or(|o| cmp_ids(id, o) == Ordering::Less)
                {
                    oldest = Some(id.to_owned());
                }
                if status
                    .created_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                    .is_some_and(|t| t < since)
                {
                    reached_older = true;
                }
                let replies = status.in_reply_to_id.as_deref() == Some(parent);
                let same_text = status
                    .content
                    .as_deref()
                    .is_some_and(|c| comparable(&html_to_text(c)).contains(&want));
                if replies
                    && same_text
                    && let Some(remote_id) = non_empty(status.id)
                {
                    return Ok(Some(Sent {
                        remote_id,
                        url: non_empty(status.url).or_else(|| non_empty(status.uri)),
                    }));
                }
            }
            let next_url = if reached_older {
                None
            } else {
                match next {
                    Some(link) => Some(self.follow(&link).ok_or_else(|| {
                        PlatformError::Malformed(
                        "the next page of the account's posts is on another server; not followed"
                            .into(),
                    )
                    })?),
                    None if !has_link && items.len() >= PAGE => match oldest {
                        Some(o) => Some(self.endpoint(
                            &["api", "v1", "accounts", &own, "statuses"],
                            &[
                                ("exclude_reblogs", "true"),
                                ("limit", limit.as_str()),
                                ("max_id", o.as_str()),
                            ],
                        )?),
                        None => None,
                    },
                    None => None,
                }
            };
            match next_url {
                Some(u) => url = u,
                None if unreadable > 0 => {
                    return Err(PlatformError::Malformed(format!(
                        "{unreadable} of the account's recent posts could not be read"
                    )));
                }
                None => return Ok(None),
            }
        }
        Err(PlatformError::Local(format!(
            "looked through the account's newest {} posts without reaching the mention's time",
            FIND_SENT_PAGES * PAGE
        )))
    }

    fn budget(&self) -> Option<http::Budget> {
        Some(self.http.budget())
    }

    fn resume_budget(&self, recorded: http::Budget) {
        self.http
            .resume_budget(recorded, time::OffsetDateTime::now_utc());
    }
}

// ---------------------------------------------------------------------------------------------
// HTML to text
// ---------------------------------------------------------------------------------------------

/// Mastodon's HTML content as plain text: `<br>` is a newline, a paragraph (or other block) break
/// a blank line, other tags are dropped (the text of links stays), `<script>` and `<style>`
/// are dropped with their content, entities are decoded (`&nbsp;` as a plain space), and runs
/// of white space collapse as a browser would (except inside `<pre>`). Other control
/// characters are left as written. Broken HTML never panics: a `<` that starts no tag is text.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut pre = 0u32;
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < html.len() {
        let run = plain_run(&bytes[i..]);
        if run > 0 {
            out.push_str(&html[i..i + run]);
            i += run;
            continue;
        }
        let Some(c) = html[i..].chars().next() else {
            break;
        };
        match c {
            '<' => match read_tag(&html[i..]) {
                Some(tag) => {
                    apply_tag(&tag, &mut out, &mut pre);
                    i += tag.len;
                }
                None => {
                    out.push('<');
                    i += 1;
                }
            },
            '&' => match entity(&html[i..]) {
                Some((ch, used)) => {
                    out.push(ch);
                    i += used;
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            },
            ' ' | '\t' | '\n' | '\r' | '\x0c' if pre == 0 => {
                if !(out.is_empty() || out.ends_with(' ') || out.ends_with('\n')) {
                    out.push(' ');
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out.trim_matches(|c| c == ' ' || c == '\n').to_owned()
}

/// The length of the run of plain text at the start of `b`, copied as it is: it ends before a
/// tag, an entity or white space, except that one space between words stays in the run (white
/// space collapses to that very space). The bytes that end it are ASCII, so it ends on a
/// character boundary.
fn plain_run(b: &[u8]) -> usize {
    let mut end = 0;
    while let Some(&c) = b.get(end) {
        match c {
            b' ' if end > 0 && b[end - 1] != b' ' => {}
            b'<' | b'&' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => break,
            _ => {}
        }
        end += 1;
    }
    end
}

struct Tag {
    /// Lowercase ASCII name; empty for comments, declarations and names longer than any tag
    /// that changes the text (those are dropped like any other).
    name: TagName,
    closing: bool,
    /// Bytes consumed, including any content skipped with it (scripts).
    len: usize,
}

/// A tag's name, lowercased in place: a tag is read for each `<` of every post, so its name is
/// not worth an allocation.
#[derive(Clone, Copy, Default)]
struct TagName {
    bytes: [u8; TagName::MAX],
    len: u8,
}

impl TagName {
    /// The longest name `apply_tag` knows ("blockquote").
    const MAX: usize = 10;

    fn new(name: &[u8]) -> Self {
        let mut this = Self::default();
        if name.len() <= Self::MAX {
            this.bytes[..name.len()].copy_from_slice(name);
            this.bytes[..name.len()].make_ascii_lowercase();
            this.len = name.len() as u8;
        }
        this
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Reads the tag at the start of `s` (which starts with `<`), or `None` when it is not a tag.
fn read_tag(s: &str) -> Option<Tag> {
    let b = s.as_bytes();
    let skip = |len| {
        Some(Tag {
            name: TagName::default(),
            closing: false,
            len,
        })
    };
    if let Some(comment) = s.strip_prefix("<!--") {
        return skip(comment.find("-->").map_or(s.len(), |p| 4 + p + 3));
    }
    if matches!(b.get(1), Some(b'!' | b'?')) {
        return skip(s.find('>').map_or(s.len(), |p| p + 1));
    }
    let (closing, start) = if b.get(1) == Some(&b'/') {
        (true, 2)
    } else {
        (false, 1)
    };
    if !b.get(start).is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut j = start;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
        j += 1;
    }
    let name = TagName::new(&b[start..j]);
    let end = tag_end(b, j)?;
    let mut len = end + 1;
    let self_closing = end > 0 && b[end - 1] == b'/';
    if !closing && !self_closing && matches!(name.as_bytes(), b"script" | b"style") {
        let close = [b"</", name.as_bytes()].concat();
        len = find_ascii_ci(&b[len..], &close)
            .and_then(|p| {
                let from = len + p + close.len();
                s[from..].find('>').map(|q| from + q + 1)
            })
            .unwrap_or(s.len());
    }
    Some(Tag { name, closing, len })
}

/// The index of the `>` that ends a tag whose name ends at `from`, honouring quoted attribute
/// values (a quote right after `=`); `None` when the tag never ends.
fn tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut k = from;
    // Attributes are skipped a run at a time: only `>` and quotes matter.
    while let Some(p) = b[k..]
        .iter()
        .position(|&c| matches!(c, b'>' | b'"' | b'\''))
    {
        k += p;
        let c = b[k];
        if c == b'>' {
            return Some(k);
        }
        let after_equals = b[from..k]
            .iter()
            .rev()
            .find(|c| !c.is_ascii_whitespace())
            .is_some_and(|&c| c == b'=');
        if after_equals {
            match b[k + 1..].iter().position(|&q| q == c) {
                Some(p) => k += 1 + p,
                None => break,
            }
        }
        k += 1;
    }
    // An unclosed quote, or a `>` only inside quotes: fall back to the first `>` at all.
    b[from..].iter().position(|&c| c == b'>').map(|p| p + from)
}

fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn apply_tag(tag: &Tag, out: &mut String, pre: &mut u32) {
    match tag.name.as_bytes() {
        b"br" => {
            trim_spaces(out);
            out.push('\n');
        }
        b"pre" => {
            block_break(out, 2);
            *pre = if tag.closing {
                pre.saturating_sub(1)
            } else {
                pre.saturating_add(1)
            };
        }
        b"p" | b"div" | b"blockquote" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"ul"
        | b"ol" | b"table" | b"section" | b"article" | b"header" | b"footer" | b"hr"
        | b"figure" => {
            block_break(out, 2);
        }
        b"li" | b"tr" | b"dt" | b"dd" if !tag.closing => block_break(out, 1),
        _ => {}
    }
}

fn trim_spaces(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Ends the text so far with at least `newlines` line breaks (none at the very start).
fn block_break(out: &mut String, newlines: usize) {
    trim_spaces(out);
    if out.is_empty() {
        return;
    }
    let have = out.chars().rev().take_while(|&c| c == '\n').count();
    for _ in have..newlines {
        out.push('\n');
    }
}

/// Decodes the character reference at the start of `s` (which starts with `&`), with the bytes
/// it takes; `None` when it is not one (the `&` is then plain text).
fn entity(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let hex = matches!(b.get(2), Some(b'x' | b'X'));
        let start = if hex { 3 } else { 2 };
        let radix = if hex { 16 } else { 10 };
        let digits = b[start.min(b.len())..]
            .iter()
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        if digits == 0 {
            return None;
        }
        let value = b[start..start + digits]
            .iter()
            .try_fold(0u32, |acc, &c| {
                acc.checked_mul(radix)?
                    .checked_add((c as char).to_digit(radix)?)
            })
            .unwrap_or(u32::MAX);
        let ch = match value {
            0 => '\u{FFFD}',
            v => char::from_u32(v).unwrap_or('\u{FFFD}'),
        };
        let semi = usize::from(b.get(start + digits) == Some(&b';'));
        return Some((ch, start + digits + semi));
    }
    let name_len = b[1..]
        .iter()
        .take(12)
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if name_len == 0 || b.get(1 + name_len) != Some(&b';') {
        return None;
    }
    let ch = match &s[1..1 + name_len] {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "hellip" => '…',
        "mdash" => '—',
        "ndash" => '–',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "middot" => '·',
        "bull" => '•',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "times" => '×',
        _ => return None,
    };
    Some((ch, name_len + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use time::macros::datetime;
    use wiremock::matchers::{
        body_json, body_partial_json, header, header_exists, method, path, query_param,
        query_param_is_missing,
    };
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    const TOKEN: &str = "tok-SECRET-9f8e7d";
    const AUTH: &str = "Bearer tok-SECRET-9f8e7d";

    fn spec(base: Option<&str>) -> AccountSpec {
        AccountSpec {
            name: "care-ma".into(),
            platform: Platform::Mastodon,
            base_url: base.map(str::to_owned),
            handle: "acmecare".into(),
            secret: None,
            identifier: None,
            request_timeout: std::time::Duration::from_secs(30),
            watch: vec!["Zyntriva".into(), "  ".into()],
        }
    }

    fn connector(server: &MockServer) -> Mastodon {
        let spec = spec(Some(&server.uri()));
        let mut m = Mastodon::new(&spec, base_url(&spec).unwrap(), Secret::new(TOKEN)).unwrap();
        m.http.max_wait = Duration::from_secs(5);
        m
    }

    // Payloads written from the spec's schemas (Account, Status, Notification, Search).

    fn account(id: &str, acct: &str) -> Value {
        let user = acct.split('@').next().unwrap();
        json!({
            "id": id,
            "username": user,
            "acct": acct,
            "display_name": "Maria Lopez",
            "locked": false,
            "bot": false,
            "discoverable": true,
            "indexable": true,
            "group": false,
            "created_at": "2024-03-01T00:00:00.000Z",
            "note": "<p>Nurse &amp; runner<br>she/her</p>",
            "url": format!("https://med.example/@{user}"),
            "uri": format!("https://med.example/users/{user}"),
            "avatar": "https://med.example/avatars/original/missing.png",
            "avatar_static": "https://med.example/avatars/original/missing.png",
            "header": "https://med.example/headers/original/missing.png",
            "header_static": "https://med.example/headers/original/missing.png",
            "followers_count": 12,
            "following_count": 34,
            "statuses_count": 56,
            "last_status_at": "2026-11-20",
            "emojis": [],
            "fields": []
        })
    }

    fn maria() -> Value {
        account("109", "maria@med.example")
    }

    fn status(id: &str, author: Value, content: &str, visibility: &str) -> Value {
        json!({
            "id": id,
            "uri": format!("https://med.example/users/maria/statuses/{id}"),
            "url": format!("https://med.example/@maria/{id}"),
            "created_at": "2026-11-21T10:00:00.000Z",
            "account": author,
            "content": content,
            "visibility": visibility,
            "sensitive": false,
            "spoiler_text": "",
            "media_attachments": [],
            "application": null,
            "mentions": [],
            "tags": [],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": 0,
            "in_reply_to_id": null,
            "in_reply_to_account_id": null,
            "reblog": null,
            "poll": null,
            "card": null,
            "language": "en",
            "text": null,
            "edited_at": null
        })
    }

    fn notification(id: &str, kind: &str, status: Option<Value>) -> Value {
        json!({
            "id": id,
            "type": kind,
            "group_key": format!("ungrouped-{id}"),
            "created_at": "2026-11-21T10:00:01.000Z",
            "account": maria(),
            "status": status
        })
    }

    fn mention_note(id: &str, sid: &str, content: &str) -> Value {
        notification(id, "mention", Some(status(sid, maria(), content, "public")))
    }

    fn target(remote_id: &str) -> Mention {
        let mut m = crate::domain::reply::tests::mention(&[]);
        m.platform = Platform::Mastodon;
        m.account = "care-ma".into();
        m.remote_id = remote_id.into();
        m.author.handle = "maria@med.example".into();
        m.created_at = datetime!(2026-11-21 10:00 UTC);
        m.reply_ref = Some(r#"{"account_id":"109","acct":"maria@med.example"}"#.into());
        m
    }

    fn ok(body: Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(body)
    }

    // -- HTML to text ------------------------------------------------------------------------

    #[test]
    fn html_becomes_text() {
        let html = "<p><span class=\"h-card\"><a href=\"https://pharma.social/@acmecare\" \
                    class=\"u-url mention\">@<span>acmecare</span></a></span> my dose of \
                    Zyntriva &amp; I feel &lt;dizzy&gt;<br />since Monday</p>\
                    <p>See <a href=\"https://example.com/long/path\" rel=\"nofollow\">\
                    <span class=\"invisible\">https://</span><span class=\"ellipsis\">\
                    example.com/long/pa</span><span class=\"invisible\">th</span></a> \
                    &quot;ok&quot; it&#39;s &apos;fine&apos;&nbsp;&#233;&#xE9; &#x1F600;</p>";
        assert_eq!(
            html_to_text(html),
            "@acmecare my dose of Zyntriva & I feel <dizzy>\nsince Monday\n\n\
             See https://example.com/long/path \"ok\" it's 'fine' éé 😀"
        );
        assert_eq!(html_to_text("a<br>b<br/><br >c"), "a\nb\n\nc");
        assert_eq!(html_to_text("<p>one</p>\n<p>two</p>"), "one\n\ntwo");
        assert_eq!(html_to_text("  lots   of\n\n space "), "lots of space");
        assert_eq!(
            html_to_text("<ul><li>a</li><li>b</li></ul>after"),
            "a\nb\n\nafter"
        );
        assert_eq!(html_to_text("<pre>x  y\nz</pre>"), "x  y\nz");
        assert_eq!(html_to_text(""), "");
        // Names in any case, up to the longest the text cares about; longer ones are dropped.
        assert_eq!(
            html_to_text("a<BlockQuote class='q'>b</BLOCKQUOTE>c<figcaption-x>d"),
            "a\n\nb\n\ncd"
        );
        assert_eq!(html_to_text("a <x alt = 'p>q' b=\"r'>s\">t"), "a t");
    }

    #[test]
    fn broken_html_never_panics_and_keeps_the_text() {
        assert_eq!(html_to_text("I <3 you & me"), "I <3 you & me");
        assert_eq!(html_to_text("a < b > c"), "a < b > c");
        assert_eq!(html_to_text("x <b unterminated"), "x <b unterminated");
        assert_eq!(html_to_text("<a title=\"1>2\">link</a>"), "link");
        assert_eq!(html_to_text("<a title=\"open>x"), "x");
        assert_eq!(
            html_to_text("&amp &bogus; &#; &#x; &#xZZ;"),
            "&amp &bogus; &#; &#x; &#xZZ;"
        );
        assert_eq!(
            html_to_text("&#0;&#xD800;&#99999999999;&#x110000;"),
            "\u{FFFD}".repeat(4)
        );
        assert_eq!(html_to_text("&#65&#x42;C"), "ABC");
        assert_eq!(html_to_text("<!-- hidden --> shown <!-- open"), "shown");
        assert_eq!(html_to_text("<!DOCTYPE html><?xml x?>t"), "t");
        assert_eq!(html_to_text("</></ ><>"), "</></ ><>");
        assert_eq!(html_to_text("ü<br>ß&"), "ü\nß&");
        assert_eq!(html_to_text("<"), "<");
        assert_eq!(html_to_text("&"), "&");
        assert_eq!(html_to_text("&#"), "&#");
        // Scripts and styles go with their content, however they are spelled.
        assert_eq!(
            html_to_text("a<script>alert('<p>x</p>')</script>b<STYLE type=x>p{}</sTyLe >c"),
            "abc"
        );
        assert_eq!(html_to_text("a<script src=x />b"), "ab");
        assert_eq!(html_to_text("a<script>never closed"), "a");
        // Control characters stay as written (the console makes them inert); HTML white space
        // collapses.
        assert_eq!(
            html_to_text("\u{1b}[31mred\u{7}\u{0}<br>\ttab\r\nline"),
            "\u{1b}[31mred\u{7}\u{0}\ntab line"
        );
        // Any cut of a valid document still parses.
        let doc = "<p>Ünïcödé <a href=\"x\">l&amp;nk</a><br>😀 &#x1F600;</p><script>s</script>";
        for (i, _) in doc.char_indices() {
            let _ = html_to_text(&doc[..i]);
            let _ = html_to_text(&doc[i..]);
        }
    }

    #[test]
    fn ids_compare_as_numbers_or_by_length() {
        assert_eq!(cmp_ids("9", "10"), Ordering::Less);
        assert_eq!(
            cmp_ids("110000000000000002", "110000000000000001"),
            Ordering::Greater
        );
        assert_eq!(cmp_ids("007", "7"), Ordering::Equal);
        assert_eq!(cmp_ids("AbC10", "AbC09"), Ordering::Greater);
        assert_eq!(cmp_ids("Zz", "Aaa"), Ordering::Less);
        assert_eq!(cmp_ids("b", "a"), Ordering::Greater);
    }

    #[test]
    fn link_headers_are_read() {
        let v = "<https://m.example/api/v1/notifications?max_id=7163058&types%5B%5D=mention>; \
                 rel=\"next\", <https://m.example/api/v1/notifications?min_id=7275607>; rel=\"prev\"";
        assert_eq!(
            parse_link(v, "next").as_deref(),
            Some("https://m.example/api/v1/notifications?max_id=7163058&types%5B%5D=mention")
        );
        assert_eq!(
            parse_link(v, "prev").as_deref(),
            Some("https://m.example/api/v1/notifications?min_id=7275607")
        );
        assert_eq!(
            parse_link("<a>; rel=\"prev next\"", "next").as_deref(),
            Some("a")
        );
        assert_eq!(parse_link("<a>; REL=next", "next").as_deref(), Some("a"));
        assert_eq!(parse_link(v, "last"), None);
        assert_eq!(parse_link("<broken; rel=next", "next"), None);
        assert_eq!(parse_link("", "next"), None);
    }

    #[test]
    fn addressing_and_comparing() {
        assert_eq!(
            addressed("Thanks!", "maria@med.example"),
            "@maria@med.example Thanks!"
        );
        assert_eq!(
            addressed("Hi @Maria@Med.Example, thanks", "maria@med.example"),
            "Hi @Maria@Med.Example, thanks"
        );
        assert_eq!(addressed("Hi @maria, thanks", "maria"), "Hi @maria, thanks");
        // A longer handle that starts the same is not the author.
        assert_eq!(addressed("Hi @mariana", "maria"), "@maria Hi @mariana");
        assert_eq!(
            addressed("Hi @maria@med.example.org", "maria@med.example"),
            "@maria@med.example Hi @maria@med.example.org"
        );
        assert_eq!(
            addressed("mail x@maria now", "maria"),
            "@maria mail x@maria now"
        );
        assert_eq!(addressed("Hi", ""), "Hi");
        assert_eq!(
            comparable("@maria@med.example  Thanks,\n\nsee you. Mail a@b.example"),
            "@maria Thanks, see you. Mail a@b.example"
        );
        assert_eq!(comparable("Hi @maria@med.example."), "Hi @maria.");
    }

    // -- Building --------------------------------------------------------------------------

    #[test]
    fn connect_needs_a_base_url_and_a_token_and_makes_no_requests() {
        let e = connect(&spec(None)).err().unwrap();
        assert!(matches!(e, PlatformError::Local(_)), "{e}");
        assert!(e.to_string().contains("base_url"), "{e}");
        let e = connect(&spec(Some("  "))).err().unwrap();
        assert!(e.to_string().contains("base_url"), "{e}");
        let e = connect(&spec(Some("ftp://m.example"))).err().unwrap();
        assert!(e.to_string().contains("https://"), "{e}");

        let e = connect(&spec(Some("https://m.example"))).err().unwrap();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        assert!(e.to_string().contains("token_env"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut s = spec(Some("https://m.example/"));
        s.secret = Some(crate::platforms::credentials::Source::File(file));
        // An address nothing listens on: connect must not touch the network.
        let c = connect(&s).unwrap();
        assert_eq!(c.platform(), Platform::Mastodon);
        assert_eq!(c.account(), "care-ma");
        assert_eq!(c.streams(), vec!["mentions", "watch:Zyntriva"]);
        assert_eq!(c.budget(), Some(http::Budget::default()));
    }

    #[tokio::test]
    async fn unknown_streams_are_an_error() {
        let server = MockServer::start().await;
        let c = connector(&server);
        let e = c.fetch("timeline", None).await.unwrap_err();
        assert!(e.to_string().contains("unknown stream"), "{e}");
    }

    // -- Mentions --------------------------------------------------------------------------

    #[tokio::test]
    async fn first_fetch_backfills_one_page() {
        let server = MockServer::start().await;
        let mut dm = status(
            "1002",
            maria(),
            "<p>I had a rash after <b>Zyntriva</b></p>",
            "direct",
        );
        dm["in_reply_to_id"] = json!("990");
        dm["spoiler_text"] = json!("side effect");
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(header("authorization", AUTH))
            .and(query_param("types[]", "mention"))
            .and(query_param("limit", "80"))
            .and(query_param("include_filtered", "true"))
            .and(query_param_is_missing("min_id"))
            .and(query_param_is_missing("since_id"))
            .respond_with(
                ok(json!([
                    notification("21", "mention", Some(dm)),
                    mention_note(
                        "20",
                        "1001",
                        "<p>Thanks <a href=\"https://x\">@acmecare</a>!</p>"
                    ),
                ]))
                .insert_header(
                    "link",
                    format!(
                        "<{0}/api/v1/notifications?max_id=20>; rel=\"next\", \
                     <{0}/api/v1/notifications?min_id=21>; rel=\"prev\"",
                        server.uri()
                    )
                    .as_str(),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server).fetch("mentions", None).await.unwrap();
        assert_eq!(page.cursor.as_deref(), Some("21"));
        assert!(page.more, "the Link header says older pages exist");
        assert!(page.skipped.is_empty(), "{:?}", page.skipped);
        assert_eq!(page.mentions.len(), 2);
        let m = &page.mentions[0];
        assert_eq!(m.platform, Platform::Mastodon);
        assert_eq!(m.account, "care-ma");
        assert_eq!(m.remote_id, "1002");
        assert_eq!(m.author.handle, "maria@med.example");
        assert_eq!(m.author.display_name, "Maria Lopez");
        assert_eq!(m.author.bio, "Nurse & runner\nshe/her");
        assert_eq!(m.text, "CW: side effect\n\nI had a rash after Zyntriva");
        assert_eq!(m.created_at, datetime!(2026-11-21 10:00 UTC));
        assert_eq!(m.url.as_deref(), Some("https://med.example/@maria/1002"));
        assert_eq!(m.in_reply_to.as_deref(), Some("990"));
        assert_eq!(m.parent_text, None);
        assert!(m.private, "direct visibility is a private message");
        let r: Value = serde_json::from_str(m.reply_ref.as_deref().unwrap()).unwrap();
        assert_eq!(r, json!({"account_id": "109", "acct": "maria@med.example"}));
        assert_eq!(page.mentions[1].text, "Thanks @acmecare!");
        assert!(!page.mentions[1].private);
    }

    #[tokio::test]
    async fn fetch_with_a_cursor_asks_for_what_follows_it() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("types[]", "mention"))
            .and(query_param("min_id", "20"))
            .and(query_param("since_id", "20"))
            .and(query_param("limit", "80"))
            .respond_with(
                ok(json!([mention_note("22", "1003", "<p>hello</p>")])).insert_header(
                    "link",
                    format!(
                        "<{}/api/v1/notifications?min_id=22>; rel=\"prev\"",
                        server.uri()
                    )
                    .as_str(),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("mentions", Some("20"))
            .await
            .unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.cursor.as_deref(), Some("22"));
        assert!(!page.more, "no rel=next: the page was not full");

        // Nothing new: the cursor stays.
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!([])))
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("mentions", Some("22"))
            .await
            .unwrap();
        assert!(page.mentions.is_empty() && page.cursor.is_none() && !page.more);
    }

    #[tokio::test]
    async fn a_full_page_with_a_next_link_pages_forward() {
        let server = MockServer::start().await;
        let first: Vec<Value> = (0..40)
            .rev()
            .map(|i| mention_note(&(100 + i).to_string(), &(5000 + i).to_string(), "<p>hi</p>"))
            .collect();
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("min_id", "99"))
            .respond_with(
                ok(Value::Array(first)).insert_header(
                    "link",
                    format!(
                        "<{0}/api/v1/notifications?max_id=100&limit=40>; rel=\"next\", \
                     <{0}/api/v1/notifications?min_id=139&limit=40>; rel=\"prev\"",
                        server.uri()
                    )
                    .as_str(),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("min_id", "139"))
            .respond_with(ok(json!([mention_note("140", "5040", "<p>last</p>")])))
            .expect(1)
            .mount(&server)
            .await;
        let c = connector(&server);
        let page = c.fetch("mentions", Some("99")).await.unwrap();
        assert_eq!(page.mentions.len(), 40);
        assert_eq!(page.cursor.as_deref(), Some("139"));
        assert!(page.more);
        let page = c.fetch("mentions", page.cursor.as_deref()).await.unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.cursor.as_deref(), Some("140"));
        assert!(!page.more, "no Link header and a short page");
    }

    #[tokio::test]
    async fn servers_that_ignore_types_and_since_id_are_filtered_here() {
        let server = MockServer::start().await;
        // Newest first, as servers answer; this one ignores types[], min_id and since_id.
        let page_json = json!([
            notification(
                "32",
                "favourite",
                Some(status("2001", maria(), "<p>ours</p>", "public"))
            ),
            mention_note("31", "1031", "<p>new</p>"),
            notification("30", "follow", None),
            mention_note("29", "1029", "<p>old</p>"),
        ]);
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(page_json))
            .expect(2)
            .mount(&server)
            .await;
        let c = connector(&server);
        let page = c.fetch("mentions", Some("29")).await.unwrap();
        assert_eq!(page.mentions.len(), 1, "only the new mention");
        assert_eq!(page.mentions[0].remote_id, "1031");
        assert!(page.skipped.is_empty(), "{:?}", page.skipped);
        assert_eq!(page.cursor.as_deref(), Some("32"), "the newest id seen");
        assert!(!page.more, "a server that ignores the bounds is not paged");

        // Asked again with the new cursor, it repeats itself: nothing is taken twice.
        let page = c.fetch("mentions", Some("32")).await.unwrap();
        assert!(page.mentions.is_empty());
        assert_eq!(page.cursor, None);
        assert!(!page.more);
    }

    #[tokio::test]
    async fn non_numeric_ids_keep_their_order() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("min_id", "AbC10"))
            .respond_with(ok(json!([
                mention_note("AbD00", "9xQ2", "<p>newest</p>"),
                mention_note("AbC11", "9xQ1", "<p>newer</p>"),
                mention_note("AbC09", "9xP9", "<p>already seen</p>"),
                mention_note("Zz", "9xP8", "<p>shorter, so older</p>"),
            ])))
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("mentions", Some("AbC10"))
            .await
            .unwrap();
        let ids: Vec<&str> = page.mentions.iter().map(|m| m.remote_id.as_str()).collect();
        assert_eq!(ids, vec!["9xQ2", "9xQ1"]);
        assert_eq!(page.cursor.as_deref(), Some("AbD00"));
    }

    #[tokio::test]
    async fn a_malformed_item_is_skipped_and_the_rest_kept() {
        let server = MockServer::start().await;
        let mut bad_date = status("1102", maria(), "<p>b</p>", "public");
        bad_date["created_at"] = json!("yesterday");
        let mut bad_type = status("1103", maria(), "<p>c</p>", "public");
        bad_type["content"] = json!(42);
        let mut bad_vis = status("1104", maria(), "<p>d</p>", "public");
        bad_vis["visibility"] = json!("galaxy");
        let mut no_account = notification(
            "45",
            "mention",
            Some(status("1105", maria(), "e", "public")),
        );
        no_account.as_object_mut().unwrap().remove("account");
        no_account["status"]
            .as_object_mut()
            .unwrap()
            .remove("account");
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!([
                mention_note("47", "1107", "<p>good</p>"),
                notification("46", "mention", None),
                no_account,
                notification("44", "mention", Some(bad_vis)),
                notification("43", "mention", Some(bad_type)),
                notification("42", "mention", Some(bad_date)),
                {"type": "mention"},
                "not an object",
                {"id": "41", "status": null},
                mention_note("40", "1100", "<p>also good</p>"),
            ])))
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("mentions", Some("39"))
            .await
            .unwrap();
        let ids: Vec<&str> = page.mentions.iter().map(|m| m.remote_id.as_str()).collect();
        assert_eq!(ids, vec!["1107", "1100"]);
        assert_eq!(page.cursor.as_deref(), Some("47"));
        let why = page.skipped.join(" | ");
        assert_eq!(page.skipped.len(), 8, "{why}");
        for part in [
            "46: a mention without a status",
            "45: the status has no account",
            "unknown visibility 'galaxy'",
            "43: unreadable",
            "created_at 'yesterday'",
            "41: it has no type",
            "without an id",
        ] {
            assert!(why.contains(part), "{part} not in {why}");
        }
    }

    /// Fuzzing found it (fuzz/regressions/mastodon/number-out-of-range): a number too large for
    /// JSON readers in one item. Where tonedesk does not read that field the mention is read; where
    /// it does, that item is skipped with the reason, and the rest of the page is still read.
    #[test]
    fn a_number_out_of_range_spoils_one_item_at_most() {
        let huge = format!("1{}E{}", "1".repeat(30), "1".repeat(40));
        let note = |id: &str, extra: &str| {
            let mut n = mention_note(id, &format!("10{id}"), "<p>hello</p>");
            n["status"]["x_extra"] = json!("HUGE");
            if !extra.is_empty() {
                n["status"][extra] = json!("HUGE");
            }
            n.to_string().replace("\"HUGE\"", &huge)
        };
        let body = format!("[{},{}]", note("51", ""), note("52", "in_reply_to_id"));
        let page = parse_page("care-m", &body, Some("50")).unwrap();
        assert_eq!(page.mentions.len(), 1, "{:?}", page.skipped);
        assert_eq!(page.mentions[0].text, "hello");
        assert_eq!(page.skipped.len(), 1);
        assert!(page.skipped[0].contains("unreadable"), "{:?}", page.skipped);
        assert_eq!(page.cursor.as_deref(), Some("51"));
    }

    /// Fuzzing found it (fuzz/regressions/mastodon/lone-at-acct): an acct of a lone `@` left
    /// the author without a handle, so every such author would have been one author in the cache.
    /// That item is skipped with the reason; the rest of the page is read.
    #[test]
    fn an_acct_of_a_lone_at_sign_is_no_acct() {
        for acct in ["@", " @ ", "@@"] {
            let mut bare = mention_note("61", "1061", "<p>hi</p>");
            bare["account"]["acct"] = json!(acct);
            let body = json!([bare, mention_note("62", "1062", "<p>hello</p>")]).to_string();
            let page = parse_page("care-m", &body, Some("60")).unwrap();
            assert_eq!(page.mentions.len(), 1, "{acct:?}: {:?}", page.skipped);
            assert_eq!(page.mentions[0].author.handle, "maria@med.example");
            assert!(page.skipped[0].contains("no acct"), "{:?}", page.skipped);
            assert_eq!(page.cursor.as_deref(), Some("62"));
        }
    }

    #[tokio::test]
    async fn a_truncated_body_is_asked_for_again_then_an_error() {
        let server = MockServer::start().await;
        let cut = || {
            ResponseTemplate::new(200).set_body_raw(
                r#"[{"id":"50","type":"mention","status":{"id":"1"#,
                "application/json",
            )
        };
        // Cut once: the page is asked for again, and the second answer is used.
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(cut())
            .up_to_n_times(1)
            .with_priority(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!([mention_note("50", "1001", "<p>whole</p>")])))
            .with_priority(2)
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("mentions", Some("49"))
            .await
            .unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.cursor.as_deref(), Some("50"));
        server.verify().await;

        // Cut every time: an error once the attempts are spent, and the cursor is not moved.
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(cut())
            .expect(2)
            .mount(&server)
            .await;
        let mut c = connector(&server);
        c.http.attempts = 2;
        let e = c.fetch("mentions", Some("49")).await.unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
    }

    #[tokio::test]
    async fn long_text_is_capped() {
        let server = MockServer::start().await;
        let long = format!("<p>{}</p>", "é".repeat(MAX_TEXT + 50));
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!([mention_note("60", "1200", &long)])))
            .mount(&server)
            .await;
        let page = connector(&server).fetch("mentions", None).await.unwrap();
        assert_eq!(page.mentions[0].text.chars().count(), MAX_TEXT);
    }

    // -- Watch -----------------------------------------------------------------------------

    #[tokio::test]
    async fn watch_searches_statuses_newer_than_the_cursor() {
        let server = MockServer::start().await;
        let ours = status(
            "3004",
            account("1", "acmecare"),
            "<p>Zyntriva info</p>",
            "public",
        );
        Mock::given(method("GET"))
            .and(path("/api/v2/search"))
            .and(header("authorization", AUTH))
            .and(query_param("q", "Zyntriva"))
            .and(query_param("type", "statuses"))
            .and(query_param("resolve", "false"))
            .and(query_param("limit", "40"))
            .and(query_param("min_id", "3000"))
            .respond_with(ok(json!({
                "accounts": [],
                "hashtags": [],
                "statuses": [
                    status("3001", maria(), "<p>Zyntriva gave me a headache</p>", "public"),
                    ours,
                    status("2999", maria(), "<p>old Zyntriva post</p>", "public"),
                    status("3003", maria(), "<p>Zyntriva rocks</p>", "unlisted"),
                ]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("watch:Zyntriva", Some("3000"))
            .await
            .unwrap();
        let ids: Vec<&str> = page.mentions.iter().map(|m| m.remote_id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["3001", "3003"],
            "old posts and our own are left out"
        );
        assert_eq!(page.mentions[0].text, "Zyntriva gave me a headache");
        assert_eq!(page.cursor.as_deref(), Some("3004"));
        assert!(!page.more);

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v2/search"))
            .and(query_param_is_missing("min_id"))
            .respond_with(ok(json!({"accounts": [], "hashtags": [], "statuses": []})))
            .expect(1)
            .mount(&server)
            .await;
        let page = connector(&server)
            .fetch("watch:Zyntriva", None)
            .await
            .unwrap();
        assert!(page.mentions.is_empty() && page.cursor.is_none());

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v2/search"))
            .respond_with(ok(json!({"accounts": []})))
            .mount(&server)
            .await;
        let e = connector(&server)
            .fetch("watch:Zyntriva", None)
            .await
            .unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
    }

    // -- Sending ---------------------------------------------------------------------------

    fn created(id: &str) -> ResponseTemplate {
        ok(status(id, account("1", "acmecare"), "<p>x</p>", "unlisted"))
    }

    #[tokio::test]
    async fn a_public_reply_is_threaded_addressed_and_idempotent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(header("authorization", AUTH))
            .and(header("idempotency-key", "send-7-1"))
            .and(body_json(json!({
                "status": "@maria@med.example Thanks for your kind words!",
                "in_reply_to_id": "1001",
                "visibility": "unlisted"
            })))
            .respond_with(created("7001"))
            .expect(1)
            .mount(&server)
            .await;
        let to = target("1001");
        let sent = connector(&server)
            .send(&Outgoing {
                idem_key: "send-7-1",
                to: &to,
                channel: Channel::Public,
                text: "Thanks for your kind words!",
            })
            .await
            .unwrap();
        assert_eq!(sent.remote_id, "7001");
        assert_eq!(sent.url.as_deref(), Some("https://med.example/@maria/7001"));
    }

    #[tokio::test]
    async fn a_private_reply_is_direct_and_not_addressed_twice() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(header("idempotency-key", "send-8-1"))
            .and(body_json(json!({
                "status": "Hi @maria@med.example, please write to medinfo@acme.example.",
                "in_reply_to_id": "1002",
                "visibility": "direct"
            })))
            .respond_with(created("7002"))
            .expect(1)
            .mount(&server)
            .await;
        let to = target("1002");
        let sent = connector(&server)
            .send(&Outgoing {
                idem_key: "send-8-1",
                to: &to,
                channel: Channel::Private,
                text: "Hi @maria@med.example, please write to medinfo@acme.example.",
            })
            .await
            .unwrap();
        assert_eq!(sent.remote_id, "7002");
    }

    #[tokio::test]
    async fn a_reply_without_reply_ref_addresses_the_handle() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses"))
            .and(body_partial_json(
                json!({"status": "@maria@med.example Hello"}),
            ))
            .respond_with(created("7003"))
            .expect(1)
            .mount(&server)
            .await;
        let mut to = target("1003");
        to.reply_ref = None;
        connector(&server)
            .send(&Outgoing {
                idem_key: "k",
                to: &to,
                channel: Channel::Public,
                text: "Hello",
            })
            .await
            .unwrap();
    }

    // -- Actions ---------------------------------------------------------------------------

    fn relationship() -> ResponseTemplate {
        ok(json!({"id": "109", "blocking": true, "muting": true, "following": false}))
    }

    #[tokio::test]
    async fn actions_hit_their_endpoints() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/statuses/1001/favourite"))
            .and(header("authorization", AUTH))
            .respond_with(ok(status("1001", maria(), "<p>x</p>", "public")))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/accounts/109/block"))
            .and(header("authorization", AUTH))
            .respond_with(relationship())
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/accounts/109/mute"))
            .and(header("authorization", AUTH))
            .respond_with(relationship())
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/reports"))
            .and(header("authorization", AUTH))
            .and(body_json(json!({
                "account_id": "109",
                "status_ids": ["1001"],
                "category": "spam"
            })))
            .respond_with(ok(json!({"id": "r1", "category": "spam"})))
            .expect(1)
            .mount(&server)
            .await;
        let c = connector(&server);
        let to = target("1001");
        c.act(ModAction::Like, &to).await.unwrap();
        c.act(ModAction::Block, &to).await.unwrap();
        c.act(ModAction::Mute, &to).await.unwrap();
        c.act(ModAction::Report, &to).await.unwrap();
        let e = c.act(ModAction::Hide, &to).await.unwrap_err();
        assert!(matches!(e, PlatformError::Unsupported(_)), "{e}");
    }

    #[tokio::test]
    async fn an_action_without_reply_ref_looks_the_author_up() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/statuses/1001"))
            .respond_with(ok(status(
                "1001",
                account("555", "spam@bots.example"),
                "x",
                "public",
            )))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/api/v1/accounts/555/block"))
            .respond_with(relationship())
            .expect(1)
            .mount(&server)
            .await;
        let mut to = target("1001");
        to.reply_ref = Some("not json".into());
        connector(&server).act(ModAction::Block, &to).await.unwrap();
    }

    // -- Reconciliation --------------------------------------------------------------------

    async fn mount_me(server: &MockServer) {
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/verify_credentials"))
            .and(header("authorization", AUTH))
            .respond_with(ok(account("1", "acmecare")))
            .expect(1)
            .mount(server)
            .await;
    }

    fn own_reply(id: &str, parent: &str, content: &str, created: &str) -> Value {
        let mut s = status(id, account("1", "acmecare"), content, "unlisted");
        s["in_reply_to_id"] = json!(parent);
        s["created_at"] = json!(created);
        s["url"] = json!(format!("https://pharma.social/@acmecare/{id}"));
        s
    }

    const SENT_HTML: &str = "<p><span class=\"h-card\"><a href=\"https://med.example/@maria\" \
                             class=\"u-url mention\">@<span>maria</span></a></span> Thanks for \
                             your kind words! &amp; more</p>";

    #[tokio::test]
    async fn find_sent_finds_the_reply_and_caches_the_own_id() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .and(header("authorization", AUTH))
            .and(query_param("exclude_reblogs", "true"))
            .and(query_param("limit", "40"))
            .respond_with(ok(json!([
                own_reply("7010", "999", SENT_HTML, "2026-11-21T10:06:00.000Z"),
                own_reply("7009", "1001", SENT_HTML, "2026-11-21T10:05:00.000Z"),
            ])))
            .expect(2)
            .mount(&server)
            .await;
        let c = connector(&server);
        let to = target("1001");
        let out = Outgoing {
            idem_key: "k",
            to: &to,
            channel: Channel::Public,
            text: "Thanks for your kind words! & more",
        };
        let found = c.find_sent(&out).await.unwrap().unwrap();
        assert_eq!(found.remote_id, "7009");
        assert_eq!(
            found.url.as_deref(),
            Some("https://pharma.social/@acmecare/7009")
        );
        // With the author's full handle in the approved text too.
        let out = Outgoing {
            text: "@maria@med.example Thanks for your kind words!",
            ..out
        };
        assert_eq!(c.find_sent(&out).await.unwrap().unwrap().remote_id, "7009");
    }

    #[tokio::test]
    async fn find_sent_is_sure_when_it_reaches_older_posts() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .respond_with(
                ok(json!([
                    own_reply(
                        "7010",
                        "1001",
                        "<p>@maria Other words</p>",
                        "2026-11-21T10:06:00.000Z"
                    ),
                    own_reply("6000", "1001", SENT_HTML, "2026-11-20T08:00:00.000Z"),
                ]))
                .insert_header(
                    "link",
                    format!(
                        "<{}/api/v1/accounts/1/statuses?max_id=6000>; rel=\"next\"",
                        server.uri()
                    )
                    .as_str(),
                ),
            )
            .expect(1)
            .mount(&server)
            .await;
        let to = target("1002");
        let out = Outgoing {
            idem_key: "k",
            to: &to,
            channel: Channel::Public,
            text: "Thanks for your kind words!",
        };
        assert_eq!(connector(&server).find_sent(&out).await.unwrap(), None);

        // The end of the account's posts is as sure.
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .respond_with(ok(json!([])))
            .expect(1)
            .mount(&server)
            .await;
        assert_eq!(connector(&server).find_sent(&out).await.unwrap(), None);

        // A post that cannot be read might be the reply: not sure, so an error.
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .respond_with(ok(json!([{"id": "7011", "content": 5}])))
            .expect(1)
            .mount(&server)
            .await;
        let e = connector(&server).find_sent(&out).await.unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
    }

    #[tokio::test]
    async fn find_sent_follows_the_next_link() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        let newer: Vec<Value> = (0..40)
            .map(|i| {
                own_reply(
                    &(8000 - i).to_string(),
                    "555",
                    "<p>other</p>",
                    "2026-11-21T11:00:00.000Z",
                )
            })
            .collect();
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .and(query_param_is_missing("max_id"))
            .respond_with(ok(Value::Array(newer)).insert_header(
                "link",
                format!(
                    "<{0}/api/v1/accounts/1/statuses?exclude_reblogs=true&limit=40&max_id=7961>; \
                     rel=\"next\", <{0}/api/v1/accounts/1/statuses?min_id=8000>; rel=\"prev\"",
                    server.uri()
                )
                .as_str(),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .and(query_param("max_id", "7961"))
            .and(header("authorization", AUTH))
            .respond_with(ok(json!([own_reply(
                "7009",
                "1001",
                SENT_HTML,
                "2026-11-21T10:05:00.000Z"
            )])))
            .expect(1)
            .mount(&server)
            .await;
        let to = target("1001");
        let out = Outgoing {
            idem_key: "k",
            to: &to,
            channel: Channel::Public,
            text: "Thanks for your kind words!",
        };
        let found = connector(&server).find_sent(&out).await.unwrap();
        assert_eq!(found.map(|s| s.remote_id).as_deref(), Some("7009"));
    }

    #[tokio::test]
    async fn find_sent_never_follows_a_link_to_another_server() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        let newer: Vec<Value> = (0..40)
            .map(|i| {
                own_reply(
                    &(8000 - i).to_string(),
                    "555",
                    "x",
                    "2026-11-21T11:00:00.000Z",
                )
            })
            .collect();
        Mock::given(method("GET"))
            .and(path("/api/v1/accounts/1/statuses"))
            .respond_with(ok(Value::Array(newer)).insert_header(
                "link",
                "<https://evil.example/api/v1/accounts/1/statuses?max_id=7961>; rel=\"next\"",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let to = target("1001");
        let out = Outgoing {
            idem_key: "k",
            to: &to,
            channel: Channel::Public,
            text: "Thanks",
        };
        let e = connector(&server).find_sent(&out).await.unwrap_err();
        assert!(e.to_string().contains("another server"), "{e}");
    }

    // -- Errors and the budget -------------------------------------------------------------

    #[tokio::test]
    async fn a_429_is_waited_out() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "1")
                    .set_body_json(json!({"error": "Too many requests"})),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ok(json!([mention_note("70", "1300", "<p>hi</p>")])))
            .expect(1)
            .mount(&server)
            .await;
        let started = std::time::Instant::now();
        let page = connector(&server)
            .fetch("mentions", Some("69"))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(page.mentions.len(), 1);
    }

    #[tokio::test]
    async fn a_401_is_an_auth_error_without_the_token() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"error": "The access token is invalid"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let e = connector(&server)
            .fetch("mentions", None)
            .await
            .unwrap_err();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        let text = format!("{e} {e:?}");
        assert!(text.contains("token is invalid"), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }

    #[tokio::test]
    async fn rate_headers_reach_the_budget() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("min_id", "1"))
            .respond_with(
                ok(json!([]))
                    .insert_header("X-RateLimit-Limit", "300")
                    .insert_header("X-RateLimit-Remaining", "298")
                    .insert_header("X-RateLimit-Reset", "2026-11-21T12:05:00.000Z"),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .and(query_param("min_id", "2"))
            .respond_with(
                ok(json!([]))
                    .insert_header("X-RateLimit-Limit", "300")
                    .insert_header("X-RateLimit-Remaining", "297")
                    .insert_header("X-RateLimit-Reset", "1795000000"),
            )
            .mount(&server)
            .await;
        let c = connector(&server);
        assert_eq!(c.budget(), Some(http::Budget::default()));
        c.fetch("mentions", Some("1")).await.unwrap();
        let b = c.budget().unwrap();
        assert_eq!((b.limit, b.remaining), (Some(300), Some(298)));
        assert_eq!(b.reset_at, Some(datetime!(2026-11-21 12:05 UTC)));
        c.fetch("mentions", Some("2")).await.unwrap();
        let b = c.budget().unwrap();
        assert_eq!(b.remaining, Some(297));
        assert_eq!(
            b.reset_at,
            Some(OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap())
        );
    }

    #[tokio::test]
    async fn the_token_travels_only_in_the_header() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(header_exists("authorization"))
            .respond_with(ok(json!([])))
            .mount(&server)
            .await;
        let c = connector(&server);
        c.fetch("mentions", Some("5")).await.unwrap();
        c.fetch("watch:Zyntriva", Some("5"))
            .await
            .unwrap_or_default();
        let requests: Vec<Request> = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        for r in requests {
            assert!(!r.url.as_str().contains(TOKEN), "{}", r.url);
        }
    }
}
