//! The built-in demo: mentions of a fictional brand seeded from `assets/demo/mentions.toml`, with
//! time stamps relative to the first poll, and a local sink (a JSON-lines file) that receives
//! what the demo "sends". The sink honours idempotency keys like Mastodon does.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{Connector, FetchPage, Outgoing, PlatformError, Sent};
use crate::domain::playbook::ModAction;
use crate::domain::{Author, Flag, IncomingMention, Mention, Platform, Tone};

const DEMO_TOML: &str = include_str!("../../assets/demo/mentions.toml");

/// The account name of the demo account for a platform.
pub fn account_name(p: Platform) -> String {
    format!("demo-{}", p.as_str())
}

/// The demo's own handle on a platform.
pub fn handle(p: Platform) -> &'static str {
    match p {
        Platform::X => "acmecare",
        Platform::Mastodon => "acmecare@pharma.social",
        Platform::Bluesky => "acmecare.bsky.social",
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoMention {
    pub platform: Platform,
    pub id: String,
    pub age: String,
    pub author: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub bio: String,
    pub text: String,
    pub parent: Option<String>,
    #[serde(default)]
    pub private: bool,
    /// What a careful reader would tag; used to check the classifier, never shown as its output.
    pub expect_tone: Tone,
    #[serde(default)]
    pub expect_flags: Vec<Flag>,
}

#[derive(Deserialize)]
struct DemoFile {
    mention: Vec<DemoMention>,
}

/// The demo mentions, parsed. The file is part of the binary; a test proves it parses.
pub fn demo_mentions() -> Result<Vec<DemoMention>, String> {
    let file: DemoFile = toml::from_str(DEMO_TOML).map_err(|e| e.to_string())?;
    for m in &file.mention {
        parse_age(&m.age).ok_or_else(|| format!("demo mention {}: bad age '{}'", m.id, m.age))?;
    }
    Ok(file.mention)
}

/// `45s`, `12m`, `3h`, `2d`.
pub fn parse_age(age: &str) -> Option<Duration> {
    let (num, unit) = age.split_at(age.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    Some(match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return None,
    })
}

impl DemoMention {
    pub fn to_incoming(&self, account: &str, now: OffsetDateTime) -> IncomingMention {
        let age = parse_age(&self.age).unwrap_or_default();
        let url = match self.platform {
            Platform::X => format!("https://x.com/{}/status/{}", self.author, self.id),
            Platform::Mastodon => format!("https://pharma.social/@{}/{}", self.author, self.id),
            Platform::Bluesky => {
                format!("https://bsky.app/profile/{}/post/{}", self.author, self.id)
            }
        };
        IncomingMention {
            platform: self.platform,
            account: account.to_owned(),
            remote_id: self.id.clone(),
            author: Author {
                handle: self.author.clone(),
                display_name: self.name.clone(),
                bio: self.bio.clone(),
            },
            text: self.text.clone(),
            created_at: now - age,
            url: Some(url),
            in_reply_to: self.parent.as_ref().map(|_| format!("{}-parent", self.id)),
            parent_text: self.parent.clone(),
            reply_ref: None,
            private: self.private,
        }
    }
}

/// One demo account (one per platform style).
pub struct Demo {
    platform: Platform,
    account: String,
    sink: PathBuf,
    /// Serialises writers of the sink file within this process.
    lock: Mutex<()>,
}

impl Demo {
    pub fn new(platform: Platform, sink: &Path) -> Self {
        Demo {
            platform,
            account: account_name(platform),
            sink: sink.to_path_buf(),
            lock: Mutex::new(()),
        }
    }

    fn sink_lines(&self) -> Vec<SinkLine> {
        let Ok(f) = std::fs::File::open(&self.sink) else {
            return Vec::new();
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    fn append(&self, line: &SinkLine) -> Result<(), PlatformError> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.sink)
            .map_err(|e| PlatformError::Local(format!("demo sink {}: {e}", self.sink.display())))?;
        let mut text =
            serde_json::to_string(line).map_err(|e| PlatformError::Local(e.to_string()))?;
        text.push('\n');
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| PlatformError::Local(format!("demo sink {}: {e}", self.sink.display())))
    }
}

/// One line of the demo sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SinkLine {
    pub at: String,
    pub account: String,
    pub platform: Platform,
    /// `reply`, or a playbook action (`like`, `hide`…).
    pub kind: String,
    pub target: String,
    pub key: Option<String>,
    pub channel: Option<String>,
    pub text: Option<String>,
    pub remote_id: Option<String>,
}

/// Reads the demo sink (for tests and `doctor`).
pub fn read_sink(path: &Path) -> Vec<SinkLine> {
    Demo::new(Platform::X, path).sink_lines()
}

#[async_trait]
impl Connector for Demo {
    fn platform(&self) -> Platform {
        self.platform
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn streams(&self) -> Vec<String> {
        vec!["mentions".into()]
    }

    async fn fetch(&self, _stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        if cursor.is_some() {
            return Ok(FetchPage::default());
        }
        let now = OffsetDateTime::now_utc();
        let all = demo_mentions().map_err(PlatformError::Malformed)?;
        Ok(FetchPage {
            mentions: all
                .iter()
                .filter(|m| m.platform == self.platform)
                .map(|m| m.to_incoming(&self.account, now))
                .collect(),
            cursor: Some("seeded".into()),
            more: false,
            skipped: Vec::new(),
        })
    }

    async fn send(&self, out: &Outgoing<'_>) -> Result<Sent, PlatformError> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| PlatformError::Local("demo sink lock".into()))?;
        let lines = self.sink_lines();
        if let Some(done) = lines
            .iter()
            .find(|l| l.key.as_deref() == Some(out.idem_key))
        {
            return Ok(Sent {
                remote_id: done.remote_id.clone().unwrap_or_default(),
                url: None,
            });
        }
        let remote_id = format!("demo-reply-{}", lines.len() + 1);
        self.append(&SinkLine {
            at: crate::domain::audit::format_utc(OffsetDateTime::now_utc()),
            account: self.account.clone(),
            platform: self.platform,
            kind: "reply".into(),
            target: out.to.remote_id.clone(),
            key: Some(out.idem_key.to_owned()),
            channel: Some(out.channel.as_str().to_owned()),
            text: Some(out.text.to_owned()),
            remote_id: Some(remote_id.clone()),
        })?;
        Ok(Sent {
            remote_id,
            url: None,
        })
    }

    async fn act(&self, action: ModAction, target: &Mention) -> Result<(), PlatformError> {
        if action == ModAction::Hide && self.platform == Platform::Bluesky {
            return Err(PlatformError::Unsupported("hiding a reply"));
        }
        let _guard = self
            .lock
            .lock()
            .map_err(|_| PlatformError::Local("demo sink lock".into()))?;
        self.append(&SinkLine {
            at: crate::domain::audit::format_utc(OffsetDateTime::now_utc()),
            account: self.account.clone(),
            platform: self.platform,
            kind: action.as_str().to_owned(),
            target: target.remote_id.clone(),
            key: None,
            channel: None,
            text: None,
            remote_id: None,
        })
    }

    async fn find_sent(&self, out: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        Ok(self
            .sink_lines()
            .into_iter()
            .find(|l| l.key.as_deref() == Some(out.idem_key))
            .map(|l| Sent {
                remote_id: l.remote_id.unwrap_or_default(),
                url: None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn demo_data_covers_every_tone_flag_and_platform() {
        let all = demo_mentions().unwrap();
        assert!(all.len() >= 60, "only {} demo mentions", all.len());
        let ids: HashSet<&str> = all.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "demo ids must be unique");
        let tones: BTreeSet<Tone> = all.iter().map(|m| m.expect_tone).collect();
        assert_eq!(tones.len(), Tone::ALL.len());
        let flags: BTreeSet<Flag> = all.iter().flat_map(|m| m.expect_flags.clone()).collect();
        assert_eq!(flags.len(), Flag::ALL.len());
        for p in Platform::ALL {
            assert!(all.iter().filter(|m| m.platform == p).count() >= 15, "{p}");
        }
        let fresh = all
            .iter()
            .filter(|m| parse_age(&m.age).unwrap() < Duration::hours(1))
            .count();
        assert!(
            fresh > 5 && fresh < all.len() - 5,
            "fresh and overdue both present"
        );
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("45s"), Some(Duration::seconds(45)));
        assert_eq!(parse_age("2d"), Some(Duration::days(2)));
        assert_eq!(parse_age("2w"), None);
        assert_eq!(parse_age(""), None);
    }

    #[tokio::test]
    async fn sink_is_idempotent_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let demo = Demo::new(Platform::X, &dir.path().join("sink.jsonl"));
        let page = demo.fetch("mentions", None).await.unwrap();
        assert!(!page.mentions.is_empty());
        assert!(page.mentions.iter().all(|m| m.platform == Platform::X));
        assert!(
            demo.fetch("mentions", page.cursor.as_deref())
                .await
                .unwrap()
                .mentions
                .is_empty()
        );

        let m = crate::domain::reply::tests::mention(&[]);
        let out = Outgoing {
            idem_key: "k1",
            to: &m,
            channel: crate::domain::Channel::Public,
            text: "Thanks!",
        };
        assert_eq!(demo.find_sent(&out).await.unwrap(), None);
        let a = demo.send(&out).await.unwrap();
        let b = demo.send(&out).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(demo.find_sent(&out).await.unwrap(), Some(a));
        demo.act(ModAction::Like, &m).await.unwrap();
        let lines = read_sink(&dir.path().join("sink.jsonl"));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].kind, "like");
    }
}
