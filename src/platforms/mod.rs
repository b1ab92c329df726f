//! The platforms behind one trait: fetch new mentions since a stored cursor, send a reply (public
//! or private), and the playbook actions. One file per platform; the built-in demo is one of them.

pub mod bluesky;
pub mod credentials;
pub mod demo;
pub mod http;
pub mod mastodon;
pub mod x;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::playbook::ModAction;
use crate::domain::{Channel, IncomingMention, Mention, Platform};

/// What a connector polls: the account's mentions, and one search per watched keyword. Each
/// stream has its own cursor, stored under its name (`mentions`, `watch:KEYWORD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream<'a> {
    Mentions,
    Watch(&'a str),
}

impl<'a> Stream<'a> {
    /// The names of an account's streams.
    pub fn names(watch: &[String]) -> Vec<String> {
        std::iter::once("mentions".to_owned())
            .chain(watch.iter().map(|w| format!("watch:{w}")))
            .collect()
    }

    /// Reads a stream name; an unknown one is a local error naming the account.
    pub fn parse(name: &'a str, account: &str) -> Result<Stream<'a>, PlatformError> {
        match name {
            "mentions" => Ok(Stream::Mentions),
            _ => match name.strip_prefix("watch:").map(str::trim) {
                Some(k) if !k.is_empty() => Ok(Stream::Watch(k)),
                _ => Err(PlatformError::Local(format!(
                    "account '{account}': unknown stream '{name}' (expected mentions or watch:KEYWORD)"
                ))),
            },
        }
    }
}

/// One page of mentions and the cursor that follows it.
#[derive(Debug, Clone, Default)]
pub struct FetchPage {
    pub mentions: Vec<IncomingMention>,
    /// Store this after the mentions are committed; `None` keeps the old cursor.
    pub cursor: Option<String>,
    /// Another page is waiting right now.
    pub more: bool,
    /// Items of the page that could not be read, with the reason (logged, skipped).
    pub skipped: Vec<String>,
}

/// A reply about to leave.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Idempotency key / client record key; the same key never posts twice where the platform
    /// supports it.
    pub idem_key: &'a str,
    pub to: &'a Mention,
    pub channel: Channel,
    pub text: &'a str,
}

/// What the platform says it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub remote_id: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    #[error(
        "{platform} connector is not built yet: configure no accounts to use the built-in demo"
    )]
    NotBuilt { platform: Platform },
    #[error("{0} is not supported on this platform")]
    Unsupported(&'static str),
    #[error("rate limited: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("the server answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("could not reach the server: {0}")]
    Network(String),
    #[error("the server's answer could not be read: {0}")]
    Malformed(String),
    #[error("local error: {0}")]
    Local(String),
}

impl PlatformError {
    /// True when the request certainly did not create anything, so a send can be marked `failed`
    /// rather than `unknown`.
    pub fn certainly_not_sent(&self) -> bool {
        match self {
            PlatformError::NotBuilt { .. }
            | PlatformError::Unsupported(_)
            | PlatformError::RateLimited { .. }
            | PlatformError::Auth(_)
            | PlatformError::Local(_) => true,
            PlatformError::Http { status, .. } => (400..500).contains(status),
            PlatformError::Network(_) | PlatformError::Malformed(_) => false,
        }
    }
}

/// One configured account, as the connectors need it (built by the app from the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    /// The configured account name (unique).
    pub name: String,
    pub platform: Platform,
    /// The API's base URL, without a trailing slash; `None` takes the platform's default.
    pub base_url: Option<String>,
    /// The account's own handle (without `@`).
    pub handle: String,
    /// X and Mastodon: the access token; Bluesky: the app password.
    pub secret: Option<credentials::Source>,
    /// Bluesky: the login identifier (handle or DID); defaults to `handle`.
    pub identifier: Option<String>,
    /// How long one request may take (`[poll] request_timeout_secs`).
    pub request_timeout: std::time::Duration,
    /// Keywords to listen for without an @-mention.
    pub watch: Vec<String>,
}

impl AccountSpec {
    /// The base URL with the platform's default filled in and no trailing slash.
    pub fn base(&self, default: &str) -> String {
        self.base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_owned()
    }
}

/// Builds the connector for an account. No network traffic happens here: sessions and user ids
/// are fetched on first use.
pub fn connect(spec: &AccountSpec) -> Result<Arc<dyn Connector>, PlatformError> {
    match spec.platform {
        Platform::X => x::connect(spec),
        Platform::Mastodon => mastodon::connect(spec),
        Platform::Bluesky => bluesky::connect(spec),
    }
}

#[async_trait]
pub trait Connector: Send + Sync {
    fn platform(&self) -> Platform;
    /// The configured account name.
    fn account(&self) -> &str;
    /// The streams to poll, each with its own cursor: `mentions`, `watch:KEYWORD`…
    fn streams(&self) -> Vec<String>;
    async fn fetch(&self, stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError>;
    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, PlatformError>;
    async fn act(&self, action: ModAction, target: &Mention) -> Result<(), PlatformError>;
    /// Finds the reply `out` describes if an earlier attempt made it (by its idempotency key or
    /// record key, or by looking through the account's own recent replies), for reconciling
    /// after a crash. `Ok(None)` means it was certainly not made; an error means it cannot be
    /// known. Never posts.
    async fn find_sent(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError>;
    /// What the server last said about the budget of the requests a poll makes (none for the
    /// demo).
    fn budget(&self) -> Option<http::Budget> {
        None
    }
    /// Starts from the poll budget an earlier process recorded (see [`http::Http::resume_budget`]).
    fn resume_budget(&self, _recorded: http::Budget) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip() {
        let names = Stream::names(&["Zyntriva".into()]);
        assert_eq!(names, ["mentions", "watch:Zyntriva"]);
        assert_eq!(Stream::parse(&names[1], "a"), Ok(Stream::Watch("Zyntriva")));
        assert_eq!(Stream::parse("mentions", "a"), Ok(Stream::Mentions));
        let e = Stream::parse("watch:", "care-x").unwrap_err();
        assert!(e.to_string().contains("care-x"), "{e}");
    }
}
