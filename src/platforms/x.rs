//! The X connector (API v2). The wire format follows the official spec
//! (`shared/specs/x-api-v2-openapi.json`, X API v2.167).
//!
//! - **Auth.** Every request carries `Authorization: Bearer <token>`; the token goes nowhere else.
//!   The secret is either a plain token or the JSON `{"access_token", "refresh_token",
//!   "client_id"}` (plus `client_secret` for a confidential client) of an OAuth 2.0 user token.
//!   With the JSON form a 401 refreshes the token once (`POST /2/oauth2/token`,
//!   `grant_type=refresh_token`) and repeats the request; the new tokens live in memory only.
//!   An app bearer token can read (search, and mentions through the configured `handle`) but
//!   not write: sends and actions then fail with an `Auth` error that says so.
//! - **`mentions`.** `GET /2/users/{id}/mentions` with `since_id` and `pagination_token`; the user
//!   id comes from `GET /2/users/me` on first use (or `GET /2/users/by/username/{handle}` when
//!   the token is an app token) and is cached.
//! - **`watch:KEYWORD`.** `GET /2/tweets/search/recent` with `query=KEYWORD -is:retweet
//!   -from:HANDLE` (a keyword with spaces is searched as a phrase), `since_id` and `next_token`.
//!   Recent search refuses a `since_id` older than seven days; the stream then starts over.
//! - **Field names.** The spec in use names post fields `post.fields` with the expansion
//!   `referenced_posts`; the API as long documented names them `tweet.fields` and
//!   `referenced_tweets.id`. Requests use the spec's names first; when the server answers 400 the
//!   request is repeated once with the other names, and the names that worked are kept. Answers
//!   are read with both spellings: `includes.posts` or `includes.tweets`, `referenced_posts` or
//!   `referenced_tweets`, `note_post` or `note_tweet` (the full text of a long post).
//! - **Cursor.** A small JSON object: `{"since_id":"…"}` between runs. While a run pages back
//!   (`meta.next_token`), `{"since_id":"<old>","next_token":"…","newest_id":"<newest of the run>"}`
//!   with `more = true`, so a crash resumes the run and nothing is skipped; after the last page
//!   the cursor becomes `{"since_id":"<newest of the run>"}`. A bare number is read as a
//!   `since_id`. A refused pagination token restarts the run from `since_id`.
//! - **`reply_ref`.** `{"author_id":"…","conversation_id":"…"}`: the author's user id is the DM
//!   participant and the mute target.
//! - **Send.** Public: `POST /2/tweets` `{"text", "reply": {"in_reply_to_tweet_id"}}`. Private:
//!   `POST /2/dm_conversations/with/{author_id}/messages` `{"text"}`. X has no idempotency, so
//!   both are tried once (`Retry::Once`).
//! - **`find_sent`.** Public: the account's own posts since the mention (`GET
//!   /2/users/{id}/tweets?since_id=<mention>`, all pages up to 1,000 posts) for a reply to the
//!   mention with the same text. Private: the DM events with the author (`GET
//!   /2/dm_conversations/with/{author_id}/dm_events`) back to the mention's time. Texts are
//!   compared after undoing X's changes: HTML entities, the leading @handles of a reply, and
//!   links (X rewrites them to t.co).
//! - **Actions.** Like (`POST /2/users/{id}/likes`), hide (`PUT /2/tweets/{id}/hidden`), mute
//!   (`POST /2/users/{id}/muting`). The spec has no endpoint that creates a block (only `GET
//!   /2/users/{id}/blocking`) and none for reports: both are unsupported.
//! - **Rate limits.** X counts requests per endpoint, some in 24-hour windows, so each endpoint
//!   has its own [`Http`] budget: a spent like budget never holds up a reply. [`Connector::budget`]
//!   reports the most constrained one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, RequestBuilder, Response, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Mutex, OnceCell};

use super::credentials::Secret;
use super::http::{self, Budget, Http, Retry};
use super::{AccountSpec, Connector, FetchPage, Outgoing, PlatformError, Sent, Stream};
use crate::domain::playbook::ModAction;
use crate::domain::{Author, Channel, IncomingMention, Mention, Platform};

/// The API's address when the account sets no `base_url`.
pub const DEFAULT_BASE: &str = "https://api.x.com";
/// The largest page the read endpoints allow.
const PAGE_SIZE: &str = "100";
/// Texts longer than this are cut (characters).
const MAX_TEXT: usize = 20_000;
/// How many pages `find_sent` reads before it gives up saying it cannot tell.
const FIND_PAGES: usize = 10;

/// Builds the X connector for an account. No network traffic happens here.
pub fn connect(spec: &AccountSpec) -> Result<Arc<dyn Connector>, PlatformError> {
    let source = spec.secret.as_ref().ok_or_else(|| {
        PlatformError::Auth(format!(
            "account '{}': no X token is configured; set token_env (the environment variable \
             that holds the token) or token_file in its [[account]] section",
            spec.name
        ))
    })?;
    let secret = source.load(&spec.name)?;
    Ok(Arc::new(X::new(spec, &secret)?))
}

/// The endpoints, each with its own rate budget (X limits each one separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    Me,
    Mentions,
    Search,
    Timeline,
    DmEvents,
    Post,
    Dm,
    Like,
    Hide,
    Mute,
    Token,
}

impl Ep {
    /// What a poll asks: who the account is, its mentions, its watched keywords.
    const POLL: [Ep; 3] = [Ep::Me, Ep::Mentions, Ep::Search];
    const ALL: [Ep; 11] = [
        Ep::Me,
        Ep::Mentions,
        Ep::Search,
        Ep::Timeline,
        Ep::DmEvents,
        Ep::Post,
        Ep::Dm,
        Ep::Like,
        Ep::Hide,
        Ep::Mute,
        Ep::Token,
    ];
}

/// Which field parameters a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fields {
    /// Mentions and search: author, parent and long text.
    Stream,
    /// The account's own posts: what each one replies to.
    Own,
}

/// The field parameters in the spec's names (`legacy == false`) or the long-documented ones.
fn field_params(legacy: bool, fields: Fields) -> &'static [(&'static str, &'static str)] {
    match (legacy, fields) {
        // `post.fields` in the spec lists no `author_id` or `referenced_posts`: the expansions
        // of the same names bring them.
        (false, Fields::Stream) => &[
            ("post.fields", "conversation_id,created_at,note_post"),
            ("expansions", "author_id,referenced_posts"),
            ("user.fields", "username,name,description"),
        ],
        (true, Fields::Stream) => &[
            (
                "tweet.fields",
                "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,note_tweet",
            ),
            ("expansions", "author_id,referenced_tweets.id"),
            ("user.fields", "username,name,description"),
        ],
        (false, Fields::Own) => &[("expansions", "referenced_posts")],
        (true, Fields::Own) => &[("tweet.fields", "referenced_tweets,in_reply_to_user_id")],
    }
}

/// The account's credentials.
enum Creds {
    /// A plain bearer token (user or app).
    Token(Secret),
    /// An OAuth 2.0 user token that can be refreshed.
    OAuth2 {
        access: Secret,
        refresh: Secret,
        client_id: String,
        client_secret: Option<Secret>,
    },
}

/// The JSON form of the secret.
#[derive(Deserialize)]
struct OAuth2Secret {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

fn parse_creds(secret: &Secret, account: &str) -> Result<Creds, PlatformError> {
    let raw = secret.expose().trim();
    if !raw.starts_with('{') {
        return Ok(Creds::Token(secret.clone()));
    }
    // The parse error is dropped on purpose: it could quote the secret.
    let parsed: OAuth2Secret = serde_json::from_str(raw).map_err(|_| {
        PlatformError::Auth(format!(
            "account '{account}': the X secret looks like JSON but is not \
             {{\"access_token\", \"refresh_token\", \"client_id\"}}"
        ))
    })?;
    if parsed.access_token.trim().is_empty() {
        return Err(PlatformError::Auth(format!(
            "account '{account}': the X secret has an empty access_token"
        )));
    }
    let access = Secret::new(parsed.access_token.trim());
    Ok(
        match (
            parsed.refresh_token.filter(|r| !r.trim().is_empty()),
            parsed.client_id.filter(|c| !c.trim().is_empty()),
        ) {
            (Some(refresh), Some(client_id)) => Creds::OAuth2 {
                access,
                refresh: Secret::new(refresh.trim()),
                client_id: client_id.trim().to_owned(),
                client_secret: parsed
                    .client_secret
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| Secret::new(s.trim())),
            },
            _ => Creds::Token(access),
        },
    )
}

/// One X account.
pub struct X {
    account: String,
    /// The account's own handle without `@` (for links, search and the app-token fallback).
    handle: String,
    base: String,
    watch: Vec<String>,
    creds: Mutex<Creds>,
    /// The account's user id, fetched on first use.
    me: OnceCell<String>,
    /// Whether the server takes the long-documented field names rather than the spec's.
    legacy: AtomicBool,
    /// One budget per endpoint, indexed by `Ep as usize`.
    https: Vec<Http>,
}

impl X {
    fn new(spec: &AccountSpec, secret: &Secret) -> Result<X, PlatformError> {
        let base = spec.base(DEFAULT_BASE);
        Url::parse(&base).map_err(|e| {
            PlatformError::Local(format!(
                "account '{}': base_url '{base}' is not a URL: {e}",
                spec.name
            ))
        })?;
        let https = Ep::ALL
            .iter()
            .map(|_| Http::new(spec.request_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(X {
            account: spec.name.clone(),
            handle: spec.handle.trim().trim_start_matches('@').to_owned(),
            base,
            watch: spec
                .watch
                .iter()
                .map(|w| w.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect(),
            creds: Mutex::new(parse_creds(secret, &spec.name)?),
            me: OnceCell::new(),
            legacy: AtomicBool::new(false),
            https,
        })
    }

    fn http(&self, ep: Ep) -> &Http {
        &self.https[ep as usize]
    }

    /// `base + path`, with the query parameters percent-encoded (`%20` for a space).
    fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<Url, PlatformError> {
        let mut text = format!("{}{path}", self.base);
        for (i, (k, v)) in params.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(&encode(k));
            text.push('=');
            text.push_str(&encode(v));
        }
        Url::parse(&text).map_err(|e| PlatformError::Local(format!("cannot build the URL: {e}")))
    }

    async fn access(&self) -> Secret {
        match &*self.creds.lock().await {
            Creds::Token(t) => t.clone(),
            Creds::OAuth2 { access, .. } => access.clone(),
        }
    }

    /// Sends an authorised request on an endpoint's budget; a 401 with a refreshable token
    /// refreshes it and repeats the request once (a 401 certainly created nothing).
    async fn call(
        &self,
        ep: Ep,
        retry: Retry,
        make: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response, PlatformError> {
        let token = self.access().await;
        let http = self.http(ep);
        match http
            .send(retry, |c| make(c).bearer_auth(token.expose()))
            .await
        {
            Err(e) if is_unauthorized(&e) => {
                if !self.refresh(&token).await? {
                    return Err(e);
                }
                let token = self.access().await;
                http.send(retry, |c| make(c).bearer_auth(token.expose()))
                    .await
            }
            other => other,
        }
    }

    /// Refreshes the OAuth 2.0 access token that `used` was. Returns false when the secret is a
    /// plain token, so there is nothing to refresh with.
    async fn refresh(&self, used: &Secret) -> Result<bool, PlatformError> {
        let mut creds = self.creds.lock().await;
        let Creds::OAuth2 {
            access,
            refresh,
            client_id,
            client_secret,
        } = &mut *creds
        else {
            return Ok(false);
        };
        if access != used {
            // Another request refreshed it meanwhile.
            return Ok(true);
        }
        let url = self.url("/2/oauth2/token", &[])?;
        let body = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
            ("client_id", client_id.as_str()),
        ]
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let (id, secret) = (client_id.clone(), client_secret.clone());
        let refused = || {
            PlatformError::Auth(format!(
                "account '{}': X refused to refresh the OAuth 2.0 token; authorize tonedesk again \
                 and store the new access_token and refresh_token",
                self.account
            ))
        };
        let response = self
            .http(Ep::Token)
            .send(Retry::Once, |c| {
                let r = c
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone());
                match &secret {
                    Some(s) => r.basic_auth(&id, Some(s.expose())),
                    None => r,
                }
            })
            .await
            .map_err(|e| match e {
                PlatformError::Auth(_) | PlatformError::Http { status: 400, .. } => refused(),
                other => other,
            })?;
        #[derive(Deserialize)]
        struct TokenAnswer {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
        }
        let answer: TokenAnswer = http::json(response).await.map_err(|_| {
            PlatformError::Malformed("the OAuth 2.0 token answer could not be read".into())
        })?;
        if answer.access_token.trim().is_empty() {
            return Err(refused());
        }
        *access = Secret::new(answer.access_token.trim());
        if let Some(r) = answer.refresh_token.filter(|r| !r.trim().is_empty()) {
            *refresh = Secret::new(r.trim());
        }
        tracing::info!(account = %self.account, "refreshed the X access token");
        Ok(true)
    }

    /// The account's user id, asked once.
    async fn me(&self) -> Result<&str, PlatformError> {
        self.me
            .get_or_try_init(|| self.lookup_me())
            .await
            .map(String::as_str)
    }

    async fn lookup_me(&self) -> Result<String, PlatformError> {
        let url = self.url("/2/users/me", &[])?;
        match self.call(Ep::Me, Retry::Safe, |c| c.get(url.clone())).await {
            Ok(r) => user_id(r).await,
            Err(e @ PlatformError::Auth(_)) if is_handle(&self.handle) => {
                // An app bearer token cannot ask who it is, but it can look the handle up.
                let url = self.url(&format!("/2/users/by/username/{}", self.handle), &[])?;
                match self.call(Ep::Me, Retry::Safe, |c| c.get(url.clone())).await {
                    Ok(r) => {
                        tracing::info!(account = %self.account, "user id found by the configured handle");
                        user_id(r).await
                    }
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A GET that asks for post fields, in whichever names the server takes.
    async fn get_posts(
        &self,
        ep: Ep,
        path: &str,
        params: &[(&str, &str)],
        fields: Fields,
    ) -> Result<Response, PlatformError> {
        let legacy = self.legacy.load(Ordering::Relaxed);
        let first = self.get_with(ep, path, params, fields, legacy).await;
        let Err(PlatformError::Http { status: 400, .. }) = &first else {
            return first;
        };
        match self.get_with(ep, path, params, fields, !legacy).await {
            Ok(r) => {
                self.legacy.store(!legacy, Ordering::Relaxed);
                let names = if legacy {
                    "post.fields"
                } else {
                    "tweet.fields"
                };
                tracing::info!(account = %self.account, names, "X took the other field names; keeping them");
                Ok(r)
            }
            Err(PlatformError::Http { status: 400, .. }) => first,
            Err(other) => Err(other),
        }
    }

    async fn get_with(
        &self,
        ep: Ep,
        path: &str,
        params: &[(&str, &str)],
        fields: Fields,
        legacy: bool,
    ) -> Result<Response, PlatformError> {
        let mut all = params.to_vec();
        all.extend_from_slice(field_params(legacy, fields));
        let url = self.url(path, &all)?;
        self.call(ep, Retry::Safe, |c| c.get(url.clone())).await
    }

    /// One page of a stream for `cursor`.
    async fn read_stream(&self, stream: &Stream<'_>, cur: &Cursor) -> Result<Page, PlatformError> {
        let query = match stream {
            Stream::Watch(keyword) => search_query(keyword, &self.handle),
            Stream::Mentions => String::new(),
        };
        let (ep, path, token_name) = match stream {
            Stream::Mentions => (
                Ep::Mentions,
                format!("/2/users/{}/mentions", self.me().await?),
                "pagination_token",
            ),
            Stream::Watch(_) => (
                Ep::Search,
                "/2/tweets/search/recent".to_owned(),
                "next_token",
            ),
        };
        let mut params: Vec<(&str, &str)> = vec![("max_results", PAGE_SIZE)];
        if !query.is_empty() {
            params.push(("query", &query));
        }
        if let Some(s) = &cur.since_id {
            params.push(("since_id", s.as_str()));
        }
        if let Some(t) = &cur.next_token {
            params.push((token_name, t.as_str()));
        }
        let response = self.get_posts(ep, &path, &params, Fields::Stream).await?;
        http::json(response).await
    }

    /// The link to one of the account's own posts.
    fn own_url(&self, id: &str) -> String {
        status_url(Some(self.handle.as_str()).filter(|h| is_handle(h)), id)
    }

    async fn find_reply(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        let to = x_id(&out.to.remote_id, "the mention's id")?;
        let path = format!("/2/users/{}/tweets", self.me().await?);
        let want = comparable(out.text);
        let mut token: Option<String> = None;
        let mut unsure = 0usize;
        for _ in 0..FIND_PAGES {
            // Our reply is newer than the mention it answers, so `since_id` bounds the search.
            let mut params = vec![
                ("max_results", PAGE_SIZE),
                ("since_id", to),
                ("exclude", "retweets"),
            ];
            if let Some(t) = &token {
                params.push(("pagination_token", t.as_str()));
            }
            let response = self
                .get_posts(Ep::Timeline, &path, &params, Fields::Own)
                .await?;
            let page: Page = http::json(response).await?;
            for item in page.data.unwrap_or_default() {
                let Ok(post) = serde_json::from_value::<Post>(item) else {
                    unsure += 1;
                    continue;
                };
                if post.full_text().map(|t| comparable(&t)).as_deref() != Some(want.as_str()) {
                    continue;
                }
                match post.replied_to() {
                    Some(parent) if parent == to && is_id(&post.id) => {
                        return Ok(Some(Sent {
                            url: Some(self.own_url(&post.id)),
                            remote_id: post.id,
                        }));
                    }
                    // Same text, but what it answers was not given.
                    None if post.referenced_posts.is_none() => unsure += 1,
                    _ => {}
                }
            }
            match page
                .meta
                .and_then(|m| m.next_token)
                .filter(|t| !t.is_empty())
            {
                Some(t) => token = Some(t),
                None if unsure == 0 => return Ok(None),
                None => {
                    return Err(PlatformError::Malformed(format!(
                        "{unsure} of the account's posts could not be checked; look for the reply by hand"
                    )));
                }
            }
        }
        Err(PlatformError::Local(format!(
            "the account posted more than {} times since the mention; look for the reply by hand",
            FIND_PAGES * 100
        )))
    }

    async fn find_dm(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        let peer = author_id(out.to)?;
        let me = self.me().await?.to_owned();
        let path = format!("/2/dm_conversations/with/{peer}/dm_events");
        let want = comparable(out.text);
        let mut token: Option<String> = None;
        let mut unsure = 0usize;
        for _ in 0..FIND_PAGES {
            let mut params = vec![
                ("max_results", PAGE_SIZE),
                ("event_types", "MessageCreate"),
                ("dm_event.fields", "created_at,event_type,id,text"),
                ("expansions", "sender_id"),
            ];
            if let Some(t) = &token {
                params.push(("pagination_token", t.as_str()));
            }
            let url = self.url(&path, &params)?;
            let response = self
                .call(Ep::DmEvents, Retry::Safe, |c| c.get(url.clone()))
                .await?;
            let page: Page = http::json(response).await?;
            let mut older = false;
            for item in page.data.unwrap_or_default() {
                let Ok(event) = serde_json::from_value::<DmEvent>(item) else {
                    unsure += 1;
                    continue;
                };
                let at = event
                    .created_at
                    .as_deref()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
                if at.is_some_and(|at| at < out.to.created_at) {
                    // Events come newest first; the reply cannot be older than the mention.
                    older = true;
                    continue;
                }
                let same = event.text.as_deref().map(comparable).as_deref() == Some(want.as_str());
                if same && event.sender_id.as_deref().is_none_or(|s| s == me) {
                    return Ok(Some(Sent {
                        remote_id: event.id,
                        url: event
                            .dm_conversation_id
                            .as_deref()
                            .and_then(conversation_url),
                    }));
                }
            }
            match page
                .meta
                .and_then(|m| m.next_token)
                .filter(|t| !t.is_empty())
            {
                Some(t) if !older => token = Some(t),
                _ if unsure == 0 => return Ok(None),
                _ => {
                    return Err(PlatformError::Malformed(format!(
                        "{unsure} direct messages could not be checked; look for the reply by hand"
                    )));
                }
            }
        }
        Err(PlatformError::Local(
            "too many direct messages since the mention; look for the reply by hand".into(),
        ))
    }

    /// A JSON write on an endpoint, with the write errors made plain.
    async fn write(
        &self,
        ep: Ep,
        retry: Retry,
        put: bool,
        path: &str,
        body: &Value,
    ) -> Result<Response, PlatformError> {
        let url = self.url(path, &[])?;
        self.call(ep, retry, |c| {
            let r = if put {
                c.put(url.clone())
            } else {
                c.post(url.clone())
            };
            r.json(body)
        })
        .await
        .map_err(write_error)
    }

    #[cfg(test)]
    fn set_max_wait(&mut self, wait: std::time::Duration) {
        for h in &mut self.https {
            h.max_wait = wait;
        }
    }
}

#[async_trait]
impl Connector for X {
    fn platform(&self) -> Platform {
        Platform::X
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn streams(&self) -> Vec<String> {
        Stream::names(&self.watch)
    }

    async fn fetch(&self, stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        let kind = Stream::parse(stream, &self.account)?;
        let given = Cursor::read(cursor);
        let mut cur = given.clone();
        let page = loop {
            match self.read_stream(&kind, &cur).await {
                Ok(page) => break page,
                Err(PlatformError::Http { status: 400, .. }) if cur.next_token.is_some() => {
                    tracing::warn!(account = %self.account, stream, "X refused the pagination token; restarting the run");
                    cur = Cursor {
                        since_id: cur.since_id.take(),
                        ..Cursor::default()
                    };
                }
                Err(PlatformError::Http { status: 400, .. })
                    if matches!(kind, Stream::Watch(_)) && cur.since_id.is_some() =>
                {
                    tracing::warn!(account = %self.account, stream, "recent search refused since_id (older than seven days?); starting over");
                    cur = Cursor::default();
                }
                Err(e) => return Err(e),
            }
        };
        Ok(read_page(&self.account, page, &cur, &given))
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, PlatformError> {
        match out.channel {
            Channel::Public => {
                let to = x_id(&out.to.remote_id, "the mention's id")?;
                let body = json!({"text": out.text, "reply": {"in_reply_to_tweet_id": to}});
                let response = self
                    .write(Ep::Post, Retry::Once, false, "/2/tweets", &body)
                    .await?;
                #[derive(Deserialize)]
                struct Created {
                    #[serde(default)]
                    data: Option<CreatedData>,
                }
                #[derive(Deserialize)]
                struct CreatedData {
                    id: String,
                }
                let created: Created = http::json(response).await?;
                let id = created
                    .data
                    .map(|d| d.id)
                    .filter(|id| is_id(id))
                    .ok_or_else(|| {
                        PlatformError::Malformed("X answered without the new post's id".into())
                    })?;
                Ok(Sent {
                    url: Some(self.own_url(&id)),
                    remote_id: id,
                })
            }
            Channel::Private => {
                let peer = author_id(out.to)?;
                let body = json!({"text": out.text});
                let path = format!("/2/dm_conversations/with/{peer}/messages");
                let response = self.write(Ep::Dm, Retry::Once, false, &path, &body).await?;
                #[derive(Deserialize)]
                struct Created {
                    #[serde(default)]
                    data: Option<CreatedData>,
                }
                #[derive(Deserialize)]
                struct CreatedData {
                    dm_event_id: String,
                    #[serde(default)]
                    dm_conversation_id: Option<String>,
                }
                let created: Created = http::json(response).await?;
                let data = created.data.ok_or_else(|| {
                    PlatformError::Malformed("X answered without the message's id".into())
                })?;
                Ok(Sent {
                    remote_id: data.dm_event_id,
                    url: data
                        .dm_conversation_id
                        .as_deref()
                        .and_then(conversation_url),
                })
            }
        }
    }

    async fn act(&self, action: ModAction, target: &Mention) -> Result<(), PlatformError> {
        // Each of these is idempotent on X (liking twice likes once), so it may be repeated.
        match action {
            ModAction::Like => {
                let post = x_id(&target.remote_id, "the mention's id")?;
                let path = format!("/2/users/{}/likes", self.me().await?);
                let body = json!({"tweet_id": post});
                self.write(Ep::Like, Retry::Safe, false, &path, &body)
                    .await?;
            }
            ModAction::Hide => {
                let post = x_id(&target.remote_id, "the mention's id")?;
                let path = format!("/2/tweets/{post}/hidden");
                self.write(Ep::Hide, Retry::Safe, true, &path, &json!({"hidden": true}))
                    .await?;
            }
            ModAction::Mute => {
                let user = author_id(target)?;
                let path = format!("/2/users/{}/muting", self.me().await?);
                let body = json!({"target_user_id": user});
                self.write(Ep::Mute, Retry::Safe, false, &path, &body)
                    .await?;
            }
            ModAction::Block => {
                return Err(PlatformError::Unsupported(
                    "blocking through the X API (its spec can only list blocks, not create one)",
                ));
            }
            ModAction::Report => {
                return Err(PlatformError::Unsupported(
                    "reporting through the X API (it has no report endpoint)",
                ));
            }
        }
        Ok(())
    }

    async fn find_sent(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        match out.channel {
            Channel::Public => self.find_reply(out).await,
            Channel::Private => self.find_dm(out).await,
        }
    }

    /// The most constrained budget, still in its window, of the endpoints a poll uses. Sends and
    /// actions have budgets of their own (a day's worth of DMs, say), which must not hold the
    /// polls back.
    fn budget(&self) -> Option<Budget> {
        let now = OffsetDateTime::now_utc();
        let tightest = Ep::POLL
            .iter()
            .map(|&ep| self.http(ep).budget())
            .filter(|b| b.remaining.is_some() && b.reset_at.is_none_or(|r| r > now))
            .min_by_key(|b| b.remaining);
        Some(tightest.unwrap_or_default())
    }

    fn resume_budget(&self, recorded: Budget) {
        let now = OffsetDateTime::now_utc();
        for ep in Ep::POLL {
            self.http(ep).resume_budget(recorded, now);
        }
    }
}

/// Reads a page of posts (the body of `GET /2/users/{id}/mentions` or `GET
/// /2/tweets/search/recent`) for the account named `account`, as a poll does: the mentions, what
/// was skipped and why, the next cursor (`None` when it stays as given) and `more`.
/// Pure: no I/O, for tests and fuzzing of the ingest path.
pub fn parse_page(
    account: &str,
    body: &str,
    cursor: Option<&str>,
) -> Result<FetchPage, PlatformError> {
    let page: Page = serde_json::from_str(body)
        .map_err(|e| PlatformError::Malformed(format!("the body is not the JSON expected: {e}")))?;
    let cur = Cursor::read(cursor);
    Ok(read_page(account, page, &cur, &cur))
}

/// A page read with the cursor `cur` (which may differ from the stored `given` when a refused
/// token restarted the run) as the mentions and the next cursor.
fn read_page(account: &str, page: Page, cur: &Cursor, given: &Cursor) -> FetchPage {
    let found = Found::from(page.includes.unwrap_or_default());
    let items = page.data.unwrap_or_default();
    let data_newest = items
        .iter()
        .filter_map(|v| v.get("id").and_then(Value::as_str))
        .filter(|id| is_id(id))
        .fold(None, |acc: Option<String>, id| {
            newer(acc, Some(id.to_owned()))
        });
    let mut out = FetchPage::default();
    for item in items {
        match to_mention(account, item, &found) {
            Ok(m) => out.mentions.push(m),
            Err(why) => out.skipped.push(why),
        }
    }
    let meta = page.meta.unwrap_or_default();
    // The larger of what `meta` says and what `data` holds: a server whose `newest_id` is below
    // an id it sent must not hold the cursor back (found by fuzzing).
    let page_newest = newer(meta.newest_id.filter(|n| is_id(n)), data_newest);
    let run_newest = newer(cur.newest_id.clone(), page_newest);
    let next = match meta.next_token.filter(|t| !t.is_empty()) {
        Some(token) => {
            out.more = true;
            Cursor {
                since_id: cur.since_id.clone(),
                next_token: Some(token),
                newest_id: run_newest,
            }
        }
        None => Cursor {
            since_id: newer(cur.since_id.clone(), run_newest),
            ..Cursor::default()
        },
    };
    if next != *given {
        out.cursor = Some(next.write());
    }
    out
}

fn to_mention(account: &str, item: Value, found: &Found) -> Result<IncomingMention, String> {
    let hint = short(item.get("id").and_then(Value::as_str).unwrap_or("?"));
    let post: Post = serde_json::from_value(item).map_err(|e| format!("post {hint}: {e}"))?;
    if !is_id(&post.id) {
        return Err(format!("post {hint}: the id is not an X id"));
    }
    let created_at = post
        .created_at
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .ok_or_else(|| format!("post {}: created_at is missing or not RFC 3339", post.id))?;
    let author_id = post
        .author_id
        .clone()
        .filter(|a| is_id(a))
        .ok_or_else(|| format!("post {}: author_id is missing", post.id))?;
    let text = post
        .full_text()
        .ok_or_else(|| format!("post {}: the text is missing", post.id))?;
    let user = found.users.get(&author_id);
    let username = user
        .and_then(|u| u.username.clone())
        .filter(|u| is_handle(u));
    let in_reply_to = post.replied_to().map(str::to_owned);
    let reply_ref = serde_json::to_string(&ReplyRef {
        author_id: author_id.clone(),
        conversation_id: post.conversation_id.clone(),
    })
    .ok();
    Ok(IncomingMention {
        platform: Platform::X,
        account: account.to_owned(),
        url: Some(status_url(username.as_deref(), &post.id)),
        author: Author {
            // Without the expanded user the id stands in for the handle.
            handle: username.unwrap_or(author_id),
            display_name: user.and_then(|u| u.name.clone()).unwrap_or_default(),
            bio: user.and_then(|u| u.description.clone()).unwrap_or_default(),
        },
        remote_id: post.id,
        text,
        created_at,
        parent_text: in_reply_to
            .as_ref()
            .and_then(|p| found.parents.get(p).cloned()),
        in_reply_to,
        reply_ref,
        private: false,
    })
}

/// The stream cursor (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    /// The newest id of the run being paged; it becomes `since_id` after the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    newest_id: Option<String>,
}

impl Cursor {
    fn read(cursor: Option<&str>) -> Cursor {
        let Some(text) = cursor.map(str::trim).filter(|t| !t.is_empty()) else {
            return Cursor::default();
        };
        if is_id(text) {
            return Cursor {
                since_id: Some(text.to_owned()),
                ..Cursor::default()
            };
        }
        match serde_json::from_str::<Cursor>(text) {
            Ok(mut c) => {
                c.since_id = c.since_id.filter(|s| is_id(s));
                c.next_token = c.next_token.filter(|t| !t.is_empty());
                c.newest_id = c.newest_id.filter(|n| is_id(n) && c.next_token.is_some());
                c
            }
            Err(_) => {
                tracing::warn!("unreadable X cursor; reading from the newest posts again");
                Cursor::default()
            }
        }
    }

    fn write(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What `reply_ref` holds.
#[derive(Debug, Serialize, Deserialize)]
struct ReplyRef {
    author_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conversation_id: Option<String>,
}

/// The author's user id from a mention's `reply_ref`.
fn author_id(m: &Mention) -> Result<String, PlatformError> {
    m.reply_ref
        .as_deref()
        .and_then(|r| serde_json::from_str::<ReplyRef>(r).ok())
        .map(|r| r.author_id)
        .filter(|a| is_id(a))
        .ok_or_else(|| {
            PlatformError::Local(format!(
                "mention {} carries no X author id; poll the account again first",
                short(&m.remote_id)
            ))
        })
}

/// One page of posts (or DM events). Items stay raw so one bad item cannot fail the page.
#[derive(Debug, Default, Deserialize)]
struct Page {
    #[serde(default)]
    data: Option<Vec<Value>>,
    #[serde(default)]
    includes: Option<Includes>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Debug, Default, Deserialize)]
struct Includes {
    #[serde(default)]
    users: Option<Vec<Value>>,
    /// `posts` in the spec, `tweets` before the rename.
    #[serde(default, alias = "tweets")]
    posts: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct Meta {
    #[serde(default)]
    newest_id: Option<String>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Post {
    id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    author_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default, alias = "referenced_tweets")]
    referenced_posts: Option<Vec<Reference>>,
    /// The full text of a post longer than 280 characters.
    #[serde(default, alias = "note_tweet")]
    note_post: Option<Note>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

#[derive(Debug, Deserialize)]
struct Note {
    #[serde(default)]
    text: Option<String>,
}

impl Post {
    fn full_text(&self) -> Option<String> {
        self.note_post
            .as_ref()
            .and_then(|n| n.text.as_deref())
            .filter(|t| !t.is_empty())
            .or(self.text.as_deref())
            .map(clean_text)
    }

    fn replied_to(&self) -> Option<&str> {
        self.referenced_posts
            .as_ref()?
            .iter()
            .find(|r| r.kind == "replied_to")
            .map(|r| r.id.as_str())
    }
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DmEvent {
    id: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    sender_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    dm_conversation_id: Option<String>,
}

/// The expanded users and parent posts of a page, by id.
#[derive(Default)]
struct Found {
    users: HashMap<String, User>,
    parents: HashMap<String, String>,
}

impl From<Includes> for Found {
    fn from(inc: Includes) -> Self {
        let users = inc
            .users
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| serde_json::from_value::<User>(v).ok())
            .map(|u| (u.id.clone(), u))
            .collect();
        let parents = inc
            .posts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Post>(v).ok())
            .filter_map(|p| p.full_text().map(|t| (p.id, t)))
            .collect();
        Found { users, parents }
    }
}

async fn user_id(r: Response) -> Result<String, PlatformError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        data: Option<UserId>,
    }
    #[derive(Deserialize)]
    struct UserId {
        id: String,
    }
    let answer: Answer = http::json(r).await?;
    answer
        .data
        .map(|d| d.id)
        .filter(|id| is_id(id))
        .ok_or_else(|| PlatformError::Malformed("X answered without the account's user id".into()))
}

/// Whether the error is a 401 (the shared [`http::status_error`] puts the status first).
fn is_unauthorized(e: &PlatformError) -> bool {
    matches!(e, PlatformError::Auth(m) if m.starts_with("401"))
}

/// Write errors in plain words: X answers 403 to duplicate posts (not an auth problem) and to
/// app tokens (which cannot write).
fn write_error(e: PlatformError) -> PlatformError {
    let PlatformError::Auth(message) = e else {
        return e;
    };
    let lower = message.to_ascii_lowercase();
    if lower.contains("duplicate") {
        let plain = message
            .trim_start_matches("403 ")
            .split(" (check the account")
            .next()
            .unwrap_or_default()
            .to_owned();
        PlatformError::Http {
            status: 403,
            message: plain,
        }
    } else if lower.contains("application-only") || lower.contains("unsupported authentication") {
        PlatformError::Auth(format!(
            "{message}; replies, DMs, likes, hiding and muting need an OAuth 2.0 user token \
             (an app bearer token can only read and search)"
        ))
    } else {
        PlatformError::Auth(message)
    }
}

/// The recent-search query for a watched keyword: a phrase when it has spaces, no reposts, and
/// not the account's own posts.
fn search_query(keyword: &str, handle: &str) -> String {
    let keyword = keyword.trim();
    let mut query = if keyword.chars().any(char::is_whitespace) {
        format!("\"{}\"", keyword.replace('"', ""))
    } else {
        keyword.to_owned()
    };
    query.push_str(" -is:retweet");
    if is_handle(handle) {
        query.push_str(" -from:");
        query.push_str(handle);
    }
    query
}

/// Percent-encoding for query strings and form bodies (`%20` for a space; commas stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An X id: 1 to 19 digits (the spec's pattern).
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

fn x_id<'a>(s: &'a str, what: &str) -> Result<&'a str, PlatformError> {
    if is_id(s) {
        Ok(s)
    } else {
        Err(PlatformError::Local(format!(
            "{what} '{}' is not an X id",
            short(s)
        )))
    }
}

/// An X handle: 1 to 15 letters, digits or underscores.
fn is_handle(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The larger of two ids (ids grow with time).
fn newer(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            // As numbers: leading zeros count for nothing, in the length or in the digits.
            fn key(s: &str) -> (usize, &str) {
                let digits = s.trim_start_matches('0');
                (digits.len(), digits)
            }
            Some(if key(&b) > key(&a) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

fn status_url(username: Option<&str>, id: &str) -> String {
    match username {
        Some(u) => format!("https://x.com/{u}/status/{id}"),
        None => format!("https://x.com/i/web/status/{id}"),
    }
}

fn conversation_url(id: &str) -> Option<String> {
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        .then(|| format!("https://x.com/messages/{id}"))
}

/// At most 40 characters of a value, for messages.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The text as the person wrote it: X escapes `&`, `<` and `>` as HTML entities. Cut to
/// [`MAX_TEXT`] characters.
fn clean_text(text: &str) -> String {
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    if text.chars().count() > MAX_TEXT {
        text.chars().take(MAX_TEXT).collect()
    } else {
        text
    }
}

/// A text reduced to what survives X's changes, for comparing a sent text with what X shows:
/// entities undone, the leading @handles of a reply dropped, links (rewritten to t.co)
/// replaced by a marker, white space collapsed.
fn comparable(text: &str) -> String {
    let text = clean_text(text);
    let mut words = text.split_whitespace().peekable();
    while words.peek().is_some_and(|w| w.starts_with('@')) {
        words.next();
    }
    words
        .map(|w| if looks_like_link(w) { "<link>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn looks_like_link(word: &str) -> bool {
    let core = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/');
    if core.contains("://") {
        return true;
    }
    let host = core.split('/').next().unwrap_or(core);
    let Some((name, tld)) = host.rsplit_once('.') else {
        return false;
    };
    !name.is_empty()
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use wiremock::matchers::{
        body_json, body_string_contains, header, method, path, query_param, query_param_is_missing,
    };
    use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

    const TOKEN: &str = "tok-x-9f8e7d";
    const ME: &str = "2244994945";
    const AUTH: &str = "Bearer tok-x-9f8e7d";

    fn spec(base: &str) -> AccountSpec {
        AccountSpec {
            name: "care-x".into(),
            platform: Platform::X,
            base_url: Some(base.into()),
            handle: "acmecare".into(),
            secret: None,
            identifier: None,
            request_timeout: std::time::Duration::from_secs(30),
            watch: vec!["Zyntriva".into(), "side effects".into()],
        }
    }

    fn connector(server: &MockServer, secret: &str) -> X {
        let mut x = X::new(&spec(&server.uri()), &Secret::new(secret)).unwrap();
        x.set_max_wait(Duration::from_secs(5));
        x
    }

    async fn mount_me(server: &MockServer) {
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .and(header("authorization", AUTH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": {"id": ME, "name": "Acme Care", "username": "acmecare"}
            })))
            .expect(1)
            .mount(server)
            .await;
    }

    fn post(id: &str, author: &str, text: &str) -> Value {
        json!({
            "id": id,
            "text": text,
            "author_id": author,
            "created_at": "2026-06-01T10:00:00.000Z",
            "conversation_id": id,
            "edit_history_post_ids": [id],
            "lang": "en"
        })
    }

    fn users() -> Value {
        json!([
            {"id": "111", "username": "maria_l", "name": "Maria Lopez", "description": "Mum of two"},
            {"id": "222", "username": "drlee", "name": "Dr. Lee", "description": "GP, views my own"}
        ])
    }

    fn mention_to(remote_id: &str, author: &str) -> Mention {
        let mut m = crate::domain::reply::tests::mention(&[]);
        m.platform = Platform::X;
        m.remote_id = remote_id.into();
        m.reply_ref = Some(format!(
            r#"{{"author_id":"{author}","conversation_id":"{remote_id}"}}"#
        ));
        m
    }

    fn stream_fields(m: MockBuilder) -> MockBuilder {
        m.and(query_param(
            "post.fields",
            "conversation_id,created_at,note_post",
        ))
        .and(query_param("expansions", "author_id,referenced_posts"))
        .and(query_param("user.fields", "username,name,description"))
    }

    #[tokio::test]
    async fn first_fetch_backfills_and_pages_without_advancing_early() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        let mut reply = post(
            "1900000000000000003",
            "222",
            "@acmecare does &amp; dose &lt;5mg&gt; matter?",
        );
        reply["referenced_posts"] = json!([{"type": "replied_to", "id": "1800000000000000001"}]);
        reply["conversation_id"] = json!("1800000000000000001");
        // Page 1 of the first run: newest first, more behind it.
        stream_fields(Mock::given(method("GET")))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(header("authorization", AUTH))
            .and(query_param("max_results", "100"))
            .and(query_param_is_missing("since_id"))
            .and(query_param_is_missing("pagination_token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [reply, post("1900000000000000002", "111", "Thanks @acmecare!")],
                "includes": {
                    "users": users(),
                    "posts": [{"id": "1800000000000000001", "text": "Our new leaflet is out", "author_id": ME}]
                },
                "meta": {"newest_id": "1900000000000000003", "oldest_id": "1900000000000000002",
                         "result_count": 2, "next_token": "7140dibdnow9c7btw3z"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        // Page 2 of the run.
        stream_fields(Mock::given(method("GET")))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("pagination_token", "7140dibdnow9c7btw3z"))
            .and(query_param_is_missing("since_id"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1900000000000000001", "111", "older one")],
                "includes": {"users": users()},
                "meta": {"newest_id": "1900000000000000001", "result_count": 1}
            })))
            .expect(1)
            .mount(&server)
            .await;
        // The next poll: since the newest of the run, nothing new.
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("since_id", "1900000000000000003"))
            .and(query_param_is_missing("pagination_token"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;

        let x = connector(&server, TOKEN);
        let p1 = x.fetch("mentions", None).await.unwrap();
        assert!(p1.more && p1.skipped.is_empty());
        assert_eq!(p1.mentions.len(), 2);
        let m = &p1.mentions[0];
        assert_eq!(m.remote_id, "1900000000000000003");
        assert_eq!(m.account, "care-x");
        assert_eq!(m.text, "@acmecare does & dose <5mg> matter?");
        assert_eq!(m.author.handle, "drlee");
        assert_eq!(m.author.display_name, "Dr. Lee");
        assert_eq!(m.author.bio, "GP, views my own");
        assert_eq!(m.in_reply_to.as_deref(), Some("1800000000000000001"));
        assert_eq!(m.parent_text.as_deref(), Some("Our new leaflet is out"));
        assert_eq!(
            m.url.as_deref(),
            Some("https://x.com/drlee/status/1900000000000000003")
        );
        assert_eq!(m.created_at, time::macros::datetime!(2026-06-01 10:00 UTC));
        assert!(!m.private);
        let r: Value = serde_json::from_str(m.reply_ref.as_deref().unwrap()).unwrap();
        assert_eq!(
            r,
            json!({"author_id": "222", "conversation_id": "1800000000000000001"})
        );
        assert_eq!(p1.mentions[1].in_reply_to, None);
        let c1: Value = serde_json::from_str(p1.cursor.as_deref().unwrap()).unwrap();
        assert_eq!(
            c1,
            json!({"next_token": "7140dibdnow9c7btw3z", "newest_id": "1900000000000000003"}),
            "no since_id yet: the run is not finished"
        );

        let p2 = x.fetch("mentions", p1.cursor.as_deref()).await.unwrap();
        assert!(!p2.more);
        assert_eq!(p2.mentions.len(), 1);
        assert_eq!(
            p2.cursor.as_deref(),
            Some(r#"{"since_id":"1900000000000000003"}"#)
        );

        let p3 = x.fetch("mentions", p2.cursor.as_deref()).await.unwrap();
        assert!(p3.mentions.is_empty() && !p3.more);
        assert_eq!(p3.cursor, None, "nothing new: the cursor stays");
    }

    #[tokio::test]
    async fn paging_with_a_cursor_keeps_since_id_until_the_last_page() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("since_id", "1500"))
            .and(query_param_is_missing("pagination_token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1700", "111", "b")],
                "includes": {"users": users()},
                "meta": {"newest_id": "1700", "next_token": "tok2"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("since_id", "1500"))
            .and(query_param("pagination_token", "tok2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1600", "111", "a")],
                "includes": {"users": users()},
                "meta": {"newest_id": "1600"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        // A bare number is read as a since_id.
        let p1 = x.fetch("mentions", Some("1500")).await.unwrap();
        assert!(p1.more);
        assert_eq!(
            p1.cursor.as_deref(),
            Some(r#"{"since_id":"1500","next_token":"tok2","newest_id":"1700"}"#)
        );
        let p2 = x.fetch("mentions", p1.cursor.as_deref()).await.unwrap();
        assert!(!p2.more);
        assert_eq!(p2.mentions[0].remote_id, "1600");
        assert_eq!(p2.cursor.as_deref(), Some(r#"{"since_id":"1700"}"#));
    }

    #[tokio::test]
    async fn a_refused_pagination_token_restarts_the_run() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("pagination_token", "stale"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.x.com/2/problems/invalid-request"
            })))
            .expect(2) // once in each naming
            .mount(&server)
            .await;
        stream_fields(Mock::given(method("GET")))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("since_id", "1500"))
            .and(query_param_is_missing("pagination_token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1600", "111", "a")], "meta": {"newest_id": "1600"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let page = x
            .fetch(
                "mentions",
                Some(r#"{"since_id":"1500","next_token":"stale","newest_id":"1650"}"#),
            )
            .await
            .unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.mentions[0].author.handle, "111", "no expanded user");
        assert_eq!(page.cursor.as_deref(), Some(r#"{"since_id":"1600"}"#));
        assert!(!x.legacy.load(Ordering::Relaxed), "the names stay");
    }

    #[tokio::test]
    async fn older_field_names_are_sent_and_read_when_the_server_wants_them() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param("post.fields", "conversation_id,created_at,note_post"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "errors": [{"parameters": {"post.fields": ["created_at"]},
                            "message": "The query parameter [post.fields] is not one of [id,max_results,tweet.fields]"}],
                "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let mut long = post("1700", "111", "Zyntriva gave me a rash and…");
        long["referenced_tweets"] = json!([{"type": "replied_to", "id": "1699"}]);
        long["note_tweet"] = json!({"text": "Zyntriva gave me a rash and a headache that lasted three days, is that normal?"});
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(query_param(
                "tweet.fields",
                "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,note_tweet",
            ))
            .and(query_param("expansions", "author_id,referenced_tweets.id"))
            .and(query_param("user.fields", "username,name,description"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [long],
                "includes": {"users": users(), "tweets": [{"id": "1699", "text": "How are you all?"}]},
                "meta": {"newest_id": "1700"}
            })))
            .expect(2)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let page = x.fetch("mentions", Some("1600")).await.unwrap();
        let m = &page.mentions[0];
        assert!(m.text.contains("lasted three days"), "{}", m.text);
        assert_eq!(m.in_reply_to.as_deref(), Some("1699"));
        assert_eq!(m.parent_text.as_deref(), Some("How are you all?"));
        // The names that worked are kept: no second 400.
        x.fetch("mentions", Some("1600")).await.unwrap();
    }

    #[tokio::test]
    async fn a_malformed_item_is_skipped_and_the_rest_kept() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        let mut no_date = post("1703", "111", "no date");
        no_date.as_object_mut().unwrap().remove("created_at");
        let mut bad_date = post("1702", "111", "bad date");
        bad_date["created_at"] = json!("yesterday");
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [no_date, bad_date, {"id": 1701, "text": "wrong type"},
                         post("1700", "111", "fine"), {"id": "1699", "text": "no author",
                         "created_at": "2026-06-01T10:00:00Z"}],
                "includes": {"users": [{"id": 111, "username": "broken"}]},
                "meta": {"newest_id": "1703", "future_field": {"x": 1}}
            })))
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let page = x.fetch("mentions", Some("1600")).await.unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.mentions[0].text, "fine");
        assert_eq!(page.skipped.len(), 4, "{:?}", page.skipped);
        assert!(page.skipped[0].contains("created_at"), "{:?}", page.skipped);
        assert!(page.skipped[3].contains("author_id"), "{:?}", page.skipped);
        assert_eq!(page.cursor.as_deref(), Some(r#"{"since_id":"1703"}"#));
    }

    #[tokio::test]
    async fn a_truncated_body_is_an_error_and_no_cursor() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(r#"{"data":[{"id":"1700","text":"hel"#, "application/json"),
            )
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let e = x.fetch("mentions", Some("1600")).await.unwrap_err();
        assert!(matches!(e, PlatformError::Malformed(_)), "{e}");
    }

    #[tokio::test]
    async fn watch_streams_use_recent_search() {
        let server = MockServer::start().await;
        stream_fields(Mock::given(method("GET")))
            .and(path("/2/tweets/search/recent"))
            .and(header("authorization", AUTH))
            .and(query_param(
                "query",
                "\"side effects\" -is:retweet -from:acmecare",
            ))
            .and(query_param("since_id", "1500"))
            .and(query_param("max_results", "100"))
            .and(query_param_is_missing("next_token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1600", "111", "any side effects with Zyntriva?")],
                "includes": {"users": users()},
                "meta": {"newest_id": "1600", "next_token": "b26v89c19zqg8o3fpzbkk"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/2/tweets/search/recent"))
            .and(query_param("since_id", "1500"))
            .and(query_param("next_token", "b26v89c19zqg8o3fpzbkk"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        assert_eq!(
            x.streams(),
            vec!["mentions", "watch:Zyntriva", "watch:side effects"]
        );
        let p = x.fetch("watch:side effects", Some("1500")).await.unwrap();
        assert_eq!(p.mentions[0].author.handle, "maria_l");
        assert!(p.more);
        let p = x
            .fetch("watch:side effects", p.cursor.as_deref())
            .await
            .unwrap();
        assert!(!p.more);
        assert_eq!(p.cursor.as_deref(), Some(r#"{"since_id":"1600"}"#));
        assert!(x.fetch("elsewhere", None).await.is_err());
    }

    #[tokio::test]
    async fn search_starts_over_when_since_id_is_too_old() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/2/tweets/search/recent"))
            .and(query_param("since_id", "15"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "title": "Invalid Request",
                "detail": "Invalid 'since_id':'15'. 'since_id' must be a post id created after 2026-05-25T10:00Z."
            })))
            .expect(2)
            .mount(&server)
            .await;
        stream_fields(Mock::given(method("GET")))
            .and(path("/2/tweets/search/recent"))
            .and(query_param_is_missing("since_id"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1600", "111", "Zyntriva!")], "meta": {"newest_id": "1600"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let p = x.fetch("watch:Zyntriva", Some("15")).await.unwrap();
        assert_eq!(p.mentions.len(), 1);
        assert_eq!(p.cursor.as_deref(), Some(r#"{"since_id":"1600"}"#));
    }

    #[tokio::test]
    async fn a_public_reply_threads_to_the_mention() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .and(header("authorization", AUTH))
            .and(body_json(json!({
                "text": "Thanks for reaching out! ^JR",
                "reply": {"in_reply_to_tweet_id": "1900000000000000003"}
            })))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "data": {"id": "1900000000000000009", "text": "@drlee Thanks for reaching out! ^JR",
                         "edit_history_post_ids": ["1900000000000000009"]}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "Thanks for reaching out! ^JR",
        };
        let sent = x.send(&out).await.unwrap();
        assert_eq!(
            sent,
            Sent {
                remote_id: "1900000000000000009".into(),
                url: Some("https://x.com/acmecare/status/1900000000000000009".into()),
            }
        );
    }

    #[tokio::test]
    async fn a_private_reply_is_a_direct_message_to_the_author() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2/dm_conversations/with/222/messages"))
            .and(header("authorization", AUTH))
            .and(body_json(json!({"text": "Please write to medinfo@acme.example"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "data": {"dm_conversation_id": "222-2244994945", "dm_event_id": "1900000000000000010"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k2",
            to: &m,
            channel: Channel::Private,
            text: "Please write to medinfo@acme.example",
        };
        let sent = x.send(&out).await.unwrap();
        assert_eq!(sent.remote_id, "1900000000000000010");
        assert_eq!(
            sent.url.as_deref(),
            Some("https://x.com/messages/222-2244994945")
        );

        // Without the author's id nothing is sent.
        let mut bare = m.clone();
        bare.reply_ref = None;
        let out = Outgoing { to: &bare, ..out };
        let e = x.send(&out).await.unwrap_err();
        assert!(
            matches!(e, PlatformError::Local(_)) && e.certainly_not_sent(),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_app_token_cannot_write_and_says_so() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "title": "Unsupported Authentication",
                "detail": "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                "type": "https://api.x.com/2/problems/unsupported-authentication",
                "status": 403
            })))
            .expect(1)
            .mount(&server)
            .await;
        // /2/users/me refuses app tokens; the handle is looked up instead.
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "title": "Unsupported Authentication", "detail": "Application-Only is forbidden", "status": 403
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/2/users/by/username/acmecare"))
            .and(header("authorization", AUTH))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": {"id": ME, "name": "Acme Care", "username": "acmecare"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "hi",
        };
        let e = x.send(&out).await.unwrap_err();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        assert!(e.to_string().contains("OAuth 2.0 user token"), "{e}");
        assert!(e.certainly_not_sent());
        x.fetch("mentions", None).await.unwrap();
    }

    #[tokio::test]
    async fn a_duplicate_post_is_not_called_an_auth_problem() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/2/tweets"))
            .respond_with(ResponseTemplate::new(403).set_body_json(json!({
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank", "title": "Forbidden", "status": 403
            })))
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "hi",
        };
        let e = x.send(&out).await.unwrap_err();
        assert_eq!(
            e,
            PlatformError::Http {
                status: 403,
                message: "You are not allowed to create a Tweet with duplicate content.".into()
            }
        );
    }

    #[tokio::test]
    async fn like_hide_and_mute_call_their_endpoints_and_block_report_are_unsupported() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("POST"))
            .and(path(format!("/2/users/{ME}/likes")))
            .and(header("authorization", AUTH))
            .and(body_json(json!({"tweet_id": "1900000000000000003"})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"liked": true}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PUT"))
            .and(path("/2/tweets/1900000000000000003/hidden"))
            .and(header("authorization", AUTH))
            .and(body_json(json!({"hidden": true})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"hidden": true}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/2/users/{ME}/muting")))
            .and(header("authorization", AUTH))
            .and(body_json(json!({"target_user_id": "222"})))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"data": {"muting": true}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        x.act(ModAction::Like, &m).await.unwrap();
        x.act(ModAction::Hide, &m).await.unwrap();
        x.act(ModAction::Mute, &m).await.unwrap();
        let before = server.received_requests().await.unwrap().len();
        for a in [ModAction::Block, ModAction::Report] {
            let e = x.act(a, &m).await.unwrap_err();
            assert!(matches!(e, PlatformError::Unsupported(_)), "{e}");
        }
        assert_eq!(server.received_requests().await.unwrap().len(), before);
    }

    fn own_posts_mock(token: Option<&str>) -> MockBuilder {
        let m = Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/tweets")))
            .and(header("authorization", AUTH))
            .and(query_param("since_id", "1900000000000000003"))
            .and(query_param("exclude", "retweets"))
            .and(query_param("max_results", "100"))
            .and(query_param("expansions", "referenced_posts"));
        match token {
            Some(t) => m.and(query_param("pagination_token", t)),
            None => m.and(query_param_is_missing("pagination_token")),
        }
    }

    fn own(id: &str, parent: &str, text: &str) -> Value {
        json!({"id": id, "text": text, "referenced_posts": [{"type": "replied_to", "id": parent}]})
    }

    #[tokio::test]
    async fn find_sent_finds_the_reply_despite_xs_rewriting() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        own_posts_mock(None)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [
                    own("1900000000000000012", "1900000000000000004", "@maria_l Thanks &amp; see https://t.co/Ab12"),
                    own("1900000000000000011", "1900000000000000003", "@drlee Other text"),
                    own("1900000000000000010", "1900000000000000003", "@drlee Thanks &amp; see https://t.co/Xy9Z"),
                ],
                "meta": {"result_count": 3, "newest_id": "1900000000000000012"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "Thanks & see https://acme.example/medinfo",
        };
        let found = x.find_sent(&out).await.unwrap();
        assert_eq!(
            found,
            Some(Sent {
                remote_id: "1900000000000000010".into(),
                url: Some("https://x.com/acmecare/status/1900000000000000010".into()),
            })
        );
    }

    #[tokio::test]
    async fn find_sent_reads_every_page_before_saying_not_found() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        own_posts_mock(None)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [own("1900000000000000011", "1900000000000000003", "@drlee Other text"),
                         {"id": "1900000000000000010", "text": "A standalone post"}],
                "meta": {"next_token": "7140dibdnow9c7btw3z"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        own_posts_mock(Some("7140dibdnow9c7btw3z"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "Thanks!",
        };
        assert_eq!(x.find_sent(&out).await.unwrap(), None);
    }

    #[tokio::test]
    async fn find_sent_is_unsure_when_a_matching_post_hides_its_parent() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        own_posts_mock(None)
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"id": "1900000000000000010", "text": "@drlee Thanks!"}]
            })))
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: Channel::Public,
            text: "Thanks!",
        };
        assert!(x.find_sent(&out).await.is_err());
    }

    #[tokio::test]
    async fn find_sent_looks_through_direct_messages_for_a_private_reply() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path("/2/dm_conversations/with/222/dm_events"))
            .and(header("authorization", AUTH))
            .and(query_param("event_types", "MessageCreate"))
            .and(query_param("dm_event.fields", "created_at,event_type,id,text"))
            .and(query_param("expansions", "sender_id"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [
                    {"id": "30", "event_type": "MessageCreate", "text": "Please write to medinfo@acme.example",
                     "sender_id": "222", "created_at": "2026-06-01T10:07:00.000Z", "dm_conversation_id": "222-2244994945"},
                    {"id": "29", "event_type": "MessageCreate", "text": "Please write to medinfo@acme.example",
                     "sender_id": ME, "created_at": "2026-06-01T10:05:00.000Z", "dm_conversation_id": "222-2244994945"},
                    {"id": "28", "event_type": "MessageCreate", "text": "old",
                     "sender_id": ME, "created_at": "2026-05-01T10:05:00.000Z", "dm_conversation_id": "222-2244994945"}
                ],
                "meta": {"result_count": 3, "next_token": "not-needed-since-older-seen"}
            })))
            .expect(2)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let m = mention_to("1900000000000000003", "222");
        let out = Outgoing {
            idem_key: "k2",
            to: &m,
            channel: Channel::Private,
            text: "Please write to medinfo@acme.example",
        };
        let found = x.find_sent(&out).await.unwrap().unwrap();
        assert_eq!(
            found.remote_id, "29",
            "the author's own message is not ours"
        );
        let other = Outgoing {
            text: "Something else",
            ..out
        };
        assert_eq!(x.find_sent(&other).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_429_with_retry_after_is_waited_out() {
        let server = MockServer::start().await;
        mount_me(&server).await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [post("1700", "111", "hi")], "meta": {"newest_id": "1700"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let start = Instant::now();
        let page = x.fetch("mentions", Some("1600")).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(1));
        assert_eq!(page.mentions.len(), 1);
    }

    #[tokio::test]
    async fn a_401_is_an_auth_error_without_the_token() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(ResponseTemplate::new(401).set_body_json(json!({
                "title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"
            })))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/2/users/by/username/acmecare"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        let e = x.fetch("mentions", None).await.unwrap_err();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        assert!(!e.to_string().contains(TOKEN), "{e}");
        assert!(!format!("{e:?}").contains(TOKEN));
    }

    #[tokio::test]
    async fn an_oauth2_token_is_refreshed_once_on_a_401() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .and(header("authorization", "Bearer old-access"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"detail": "Unauthorized"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/2/oauth2/token"))
            .and(header("content-type", "application/x-www-form-urlencoded"))
            .and(body_string_contains("grant_type=refresh_token"))
            .and(body_string_contains("refresh_token=refresh-1"))
            .and(body_string_contains("client_id=client-abc"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "token_type": "bearer", "expires_in": 7200, "access_token": "new-access",
                "scope": "tweet.read users.read offline.access", "refresh_token": "refresh-2"
            })))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .and(header("authorization", "Bearer new-access"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": ME}})))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .and(header("authorization", "Bearer new-access"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"meta": {"result_count": 0}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let secret =
            r#"{"access_token":"old-access","refresh_token":"refresh-1","client_id":"client-abc"}"#;
        let x = connector(&server, secret);
        x.fetch("mentions", None).await.unwrap();
        match &*x.creds.lock().await {
            Creds::OAuth2 { refresh, .. } => assert_eq!(refresh.expose(), "refresh-2"),
            Creds::Token(_) => panic!("still OAuth 2.0"),
        }
    }

    #[tokio::test]
    async fn a_refused_refresh_is_a_plain_auth_error() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/2/oauth2/token"))
            .respond_with(ResponseTemplate::new(400).set_body_json(json!({
                "error": "invalid_request", "error_description": "Value passed for the token was invalid."
            })))
            .expect(1)
            .mount(&server)
            .await;
        let mut s = spec(&server.uri());
        s.handle = String::new();
        let secret =
            r#"{"access_token":"old-access","refresh_token":"refresh-1","client_id":"client-abc"}"#;
        let x = X::new(&s, &Secret::new(secret)).unwrap();
        let e = x.fetch("mentions", None).await.unwrap_err();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        assert!(e.to_string().contains("authorize tonedesk again"), "{e}");
        assert!(!e.to_string().contains("refresh-1") && !e.to_string().contains("old-access"));
    }

    #[tokio::test]
    async fn rate_headers_reach_the_budget() {
        let server = MockServer::start().await;
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 600;
        Mock::given(method("GET"))
            .and(path("/2/users/me"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"id": ME}}))
                    .insert_header("x-rate-limit-limit", "75")
                    .insert_header("x-rate-limit-remaining", "74")
                    .insert_header("x-rate-limit-reset", reset.to_string()),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/2/users/{ME}/mentions")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"meta": {"result_count": 0}}))
                    .insert_header("x-rate-limit-limit", "450")
                    .insert_header("x-rate-limit-remaining", "12")
                    .insert_header("x-rate-limit-reset", reset.to_string()),
            )
            .mount(&server)
            .await;
        let x = connector(&server, TOKEN);
        assert_eq!(x.budget(), Some(Budget::default()));
        x.fetch("mentions", None).await.unwrap();
        let b = x.budget().unwrap();
        assert_eq!((b.limit, b.remaining), (Some(450), Some(12)));
        assert_eq!(b.reset_at.map(|r| r.unix_timestamp()), Some(reset));
        // Each endpoint keeps its own budget.
        assert_eq!(x.http(Ep::Me).budget().remaining, Some(74));
        assert_eq!(x.http(Ep::Post).budget(), Budget::default());
    }

    #[tokio::test]
    async fn a_spent_send_budget_does_not_hold_the_polls_back() {
        let server = MockServer::start().await;
        let x = connector(&server, TOKEN);
        let now = OffsetDateTime::now_utc();
        let spent = |secs| Budget {
            limit: Some(15),
            remaining: Some(0),
            reset_at: Some(now + time::Duration::seconds(secs)),
        };
        // A day's DMs spent: the poll interval must not stretch to the next day.
        x.http(Ep::Dm).resume_budget(spent(86_400), now);
        assert_eq!(x.budget(), Some(Budget::default()));
        // A poll budget recorded by an earlier process goes to the endpoints a poll uses only.
        x.resume_budget(spent(600));
        assert_eq!(x.budget(), Some(spent(600)));
        assert_eq!(x.http(Ep::Search).budget(), spent(600));
        assert_eq!(x.http(Ep::Post).budget(), Budget::default());
        // A window that has already reset is no budget at all.
        let fresh = connector(&server, TOKEN);
        fresh.resume_budget(spent(-1));
        assert_eq!(fresh.budget(), Some(Budget::default()));
    }

    #[test]
    fn connect_needs_a_secret_and_reads_the_json_form() {
        let mut s = spec("https://api.x.com");
        let e = connect(&s).err().unwrap();
        assert!(
            matches!(e, PlatformError::Auth(_)) && e.to_string().contains("token_env"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x-token");
        std::fs::write(
            &file,
            r#"{"access_token":"a","refresh_token":"r","client_id":"c"}"#,
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        s.secret = Some(super::super::credentials::Source::File(file.clone()));
        let c = connect(&s).unwrap();
        assert_eq!((c.platform(), c.account()), (Platform::X, "care-x"));

        std::fs::write(&file, r#"{"token":"sekrit-value"}"#).unwrap();
        let e = connect(&s).err().unwrap();
        assert!(matches!(e, PlatformError::Auth(_)), "{e}");
        assert!(!e.to_string().contains("sekrit-value"), "{e}");
    }

    /// Every request against Prism mocking the official spec, which answers 4xx to a request
    /// the spec does not allow. Run with `npx @stoplight/prism-cli mock -p 4010
    /// shared/specs/x-api-v2-openapi.json` and `TONEDESK_X_PRISM=http://127.0.0.1:4010 cargo test
    /// --lib platforms::x -- --ignored`. Prism's made-up ids ("string") are not X ids, so items are
    /// skipped and sends answer Malformed; only the requests are judged.
    #[tokio::test]
    #[ignore = "needs Prism mocking the X spec (TONEDESK_X_PRISM)"]
    async fn requests_conform_to_the_spec_under_prism() {
        let Ok(base) = std::env::var("TONEDESK_X_PRISM") else {
            return;
        };
        let x = X::new(&spec(&base), &Secret::new(TOKEN)).unwrap();
        x.me.set(ME.to_owned()).unwrap();
        let refused = |what: &str, r: Result<(), PlatformError>| {
            if let Err(e @ (PlatformError::Http { .. } | PlatformError::Auth(_))) = &r {
                panic!("{what}: {e}");
            }
        };
        let m = mention_to("1900000000000000003", "222");
        refused("mentions", x.fetch("mentions", None).await.map(drop));
        refused(
            "mentions since",
            x.fetch("mentions", Some("1500")).await.map(drop),
        );
        refused(
            "watch",
            x.fetch("watch:side effects", Some("1500")).await.map(drop),
        );
        assert!(
            !x.legacy.load(Ordering::Relaxed),
            "the spec's names were taken"
        );
        for channel in [Channel::Public, Channel::Private] {
            let out = Outgoing {
                idem_key: "k",
                to: &m,
                channel,
                text: "Thanks!",
            };
            refused("send", x.send(&out).await.map(drop));
            refused("find_sent", x.find_sent(&out).await.map(drop));
        }
        for a in [ModAction::Like, ModAction::Hide, ModAction::Mute] {
            refused(a.as_str(), x.act(a, &m).await);
        }
    }

    #[test]
    fn parse_page_reads_a_page_as_fetch_does() {
        let body = json!({
            "data": [post("1900000000000000002", "111", "@acmecare hi &amp; thanks"), {"id": "x"}],
            "includes": {"users": users()},
            "meta": {"newest_id": "1900000000000000002"}
        })
        .to_string();
        let page = parse_page("care-x", &body, Some("1800000000000000000")).unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(page.mentions[0].text, "@acmecare hi & thanks");
        assert_eq!(page.mentions[0].author.handle, "maria_l");
        assert_eq!(page.skipped.len(), 1);
        assert!(!page.more);
        assert_eq!(
            page.cursor.as_deref(),
            Some(r#"{"since_id":"1900000000000000002"}"#)
        );
        // Nothing new: the cursor stays.
        let page = parse_page("care-x", "{}", Some("1900000000000000002")).unwrap();
        assert_eq!(page.cursor, None);
        assert!(matches!(
            parse_page("care-x", "{", None),
            Err(PlatformError::Malformed(_))
        ));
    }

    /// Fuzzing found it (fuzz/regressions/x/meta-newest-below-data): a `meta.newest_id` below the
    /// ids the page holds held the cursor back, so the next run read the same posts again.
    #[test]
    fn a_low_meta_newest_id_does_not_hold_the_cursor_back() {
        let body = json!({
            "data": [post("1900000000000000005", "111", "thanks!")],
            "meta": {"newest_id": "0091000000000000005", "next_token": "b26v"}
        })
        .to_string();
        let page = parse_page("care-x", &body, Some("1700000000000000000")).unwrap();
        assert!(page.more);
        let c = Cursor::read(page.cursor.as_deref());
        assert_eq!(c.newest_id.as_deref(), Some("1900000000000000005"));
        let last = parse_page("care-x", "{}", page.cursor.as_deref()).unwrap();
        assert_eq!(
            last.cursor.as_deref(),
            Some(r#"{"since_id":"1900000000000000005"}"#)
        );
    }

    /// Fuzzing found it (fuzz/regressions/x/leading-zero-id): ids of the same length without their
    /// leading zeros were compared with them, so `0950…` counted as older than `1000…`.
    #[test]
    fn ids_compare_as_numbers_whatever_their_leading_zeros() {
        assert_eq!(
            newer(
                Some("100000000000000005".into()),
                Some("0950000000000000002".into())
            )
            .as_deref(),
            Some("0950000000000000002")
        );
        assert_eq!(
            newer(Some("07".into()), Some("7".into())).as_deref(),
            Some("07"),
            "equal ids keep the first"
        );
    }

    /// Fuzzing found it (fuzz/regressions/x/repeated-key-cursor): a stored cursor that names a
    /// field twice cannot be read, so the stream starts over from the newest posts (duplicates
    /// are not stored twice) rather than trusting either of the two values.
    #[test]
    fn a_cursor_with_a_repeated_field_is_unreadable_and_starts_over() {
        let stored = r#"{"since_id":"sam_k","since_id":"1700000000000000000"}"#;
        assert_eq!(Cursor::read(Some(stored)), Cursor::default());
        let body = json!({"data": [post("1900000000000000005", "111", "thanks!")]}).to_string();
        let page = parse_page("care-x", &body, Some(stored)).unwrap();
        assert_eq!(page.mentions.len(), 1);
        assert_eq!(
            page.cursor.as_deref(),
            Some(r#"{"since_id":"1900000000000000005"}"#)
        );
    }

    #[test]
    fn cursors_read_leniently() {
        assert_eq!(Cursor::read(None), Cursor::default());
        assert_eq!(Cursor::read(Some("123")).since_id.as_deref(), Some("123"));
        assert_eq!(Cursor::read(Some("garbage")), Cursor::default());
        let c = Cursor::read(Some(r#"{"since_id":"5","newest_id":"9"}"#));
        assert_eq!(c.newest_id, None, "newest_id only matters mid-run");
        assert_eq!(
            newer(Some("99".into()), Some("100".into())).as_deref(),
            Some("100")
        );
        assert_eq!(newer(None, Some("7".into())).as_deref(), Some("7"));
    }

    #[test]
    fn texts_compare_after_xs_rewriting() {
        assert_eq!(
            comparable("@drlee @acme  Thanks &amp; see (https://t.co/abc)."),
            comparable("Thanks & see (https://acme.example/mi).")
        );
        assert_eq!(
            comparable("Call us: acme.example/contact"),
            comparable("Call us: https://t.co/q1")
        );
        assert_ne!(comparable("Thanks!"), comparable("Thanks again!"));
        assert_eq!(comparable("e.g. a dose"), "e.g. a dose");
        assert_eq!(clean_text(&"a".repeat(MAX_TEXT + 5)).len(), MAX_TEXT);
        assert_eq!(
            search_query("Zyntriva", "acmecare"),
            "Zyntriva -is:retweet -from:acmecare"
        );
        assert_eq!(encode("a b,c:d"), "a%20b,c%3Ad");
    }
}
