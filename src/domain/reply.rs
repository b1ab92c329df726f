//! Approved replies, their placeholders, rendering and the rules that refuse a send (DESIGN §2).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Date;

use super::mention::{Author, Flag, Flags, Mention, Platform, Tone, UnknownName};
use super::text::measure;

/// Where a reply goes: on the timeline, or as a direct message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Public,
    Private,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Public => "public",
            Channel::Private => "private",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Channel::Public),
            "private" => Ok(Channel::Private),
            other => Err(UnknownName::new("channel", other, "public, private")),
        }
    }
}

/// Which channels an approved reply may be used on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelRule {
    Public,
    Private,
    Either,
}

impl ChannelRule {
    pub fn allows(self, channel: Channel) -> bool {
        matches!(
            (self, channel),
            (ChannelRule::Either, _)
                | (ChannelRule::Public, Channel::Public)
                | (ChannelRule::Private, Channel::Private)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelRule::Public => "public",
            ChannelRule::Private => "private",
            ChannelRule::Either => "either",
        }
    }
}

impl FromStr for ChannelRule {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(ChannelRule::Public),
            "private" => Ok(ChannelRule::Private),
            "either" => Ok(ChannelRule::Either),
            other => Err(UnknownName::new(
                "channel",
                other,
                "public, private, either",
            )),
        }
    }
}

/// A prompt variable the operator fills in, bounded in length and shape.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub name: String,
    pub max_len: usize,
    pub pattern: Regex,
}

/// One part of a reply's text: fixed wording or a placeholder the program fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Slot(Slot),
}

/// The closed set of placeholders (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// `{author}`: the author's handle with its `@`.
    Author,
    /// `{first_name}`: the author's first name, or "there".
    FirstName,
    /// `{agent}`: the operator's initials.
    Agent,
    /// `{signoff}`: the operator's sign-off (`^JR`).
    Signoff,
    /// `{case}`: the case number of this conversation.
    Case,
    /// `{contact.KEY}`: a configured contact line.
    Contact(String),
    /// `{var.NAME}`: a declared prompt variable.
    Var(String),
}

impl Slot {
    pub fn spelling(&self) -> String {
        match self {
            Slot::Author => "{author}".into(),
            Slot::FirstName => "{first_name}".into(),
            Slot::Agent => "{agent}".into(),
            Slot::Signoff => "{signoff}".into(),
            Slot::Case => "{case}".into(),
            Slot::Contact(k) => format!("{{contact.{k}}}"),
            Slot::Var(k) => format!("{{var.{k}}}"),
        }
    }
}

/// Why a reply's text could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "unknown placeholder '{{{0}}}' (allowed: {{author}}, {{first_name}}, {{agent}}, {{signoff}}, {{case}}, {{contact.KEY}}, {{var.NAME}})"
    )]
    UnknownPlaceholder(String),
    #[error("placeholder {{var.{0}}} is used but not declared in a [[reply.prompt]] table")]
    UndeclaredVar(String),
    #[error("unclosed '{{' in text (write '{{{{' for a literal brace)")]
    Unclosed,
    #[error("stray '}}' in text (write '}}}}' for a literal brace)")]
    Stray,
}

/// Parses `{slot}` placeholders; `{{` and `}}` are literal braces.
pub fn parse_template(text: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '}' => return Err(TemplateError::Stray),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(TemplateError::Unclosed),
                    }
                }
                if !lit.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut lit)));
                }
                out.push(Segment::Slot(parse_slot(&name)?));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Segment::Text(lit));
    }
    Ok(out)
}

fn parse_slot(name: &str) -> Result<Slot, TemplateError> {
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    Ok(match name {
        "author" => Slot::Author,
        "first_name" => Slot::FirstName,
        "agent" => Slot::Agent,
        "signoff" => Slot::Signoff,
        "case" => Slot::Case,
        _ => match name.split_once('.') {
            Some(("contact", k)) if ident(k) => Slot::Contact(k.to_owned()),
            Some(("var", k)) if ident(k) => Slot::Var(k.to_owned()),
            _ => return Err(TemplateError::UnknownPlaceholder(name.to_owned())),
        },
    })
}

/// An approved reply from the library.
#[derive(Debug, Clone)]
pub struct Reply {
    pub id: String,
    pub version: u32,
    /// The MLR approval reference.
    pub approval: String,
    pub approved_on: Date,
    pub expires_on: Date,
    pub tones: Vec<Tone>,
    pub flags: Flags,
    pub channel: ChannelRule,
    /// Empty means every platform.
    pub platforms: Vec<Platform>,
    /// A holding statement may still be sent in crisis mode.
    pub holding: bool,
    /// The wording speaks of the person's health condition or treatment: private channel only.
    pub confirms_health: bool,
    pub text: String,
    pub segments: Vec<Segment>,
    pub prompts: Vec<Prompt>,
}

impl Reply {
    /// SHA-256 of the text, hex: what the program remembers per id+version to detect tampering.
    pub fn text_hash(&self) -> String {
        hex::encode(Sha256::digest(self.text.as_bytes()))
    }

    pub fn suits_platform(&self, p: Platform) -> bool {
        self.platforms.is_empty() || self.platforms.contains(&p)
    }

    /// Checks that every `{var.X}` is declared. Called by the library loader.
    pub fn check_vars(&self) -> Result<(), TemplateError> {
        for seg in &self.segments {
            if let Segment::Slot(Slot::Var(name)) = seg
                && !self.prompts.iter().any(|p| &p.name == name)
            {
                return Err(TemplateError::UndeclaredVar(name.clone()));
            }
        }
        Ok(())
    }

    pub fn vars(&self) -> impl Iterator<Item = &Prompt> {
        self.prompts.iter()
    }

    /// How well this reply fits a mention's tags: higher is better. Flags weigh more than tone,
    /// because a flagged mention (AE, HCP, medical question) must get the reply written for it.
    pub fn fit(&self, tone: Tone, flags: Flags) -> i32 {
        let mut score = 0;
        for f in flags.iter() {
            if self.flags.contains(f) {
                score += 10;
            }
        }
        // A reply written for a flag the mention does not carry fits poorly.
        for f in self.flags.iter() {
            if !flags.contains(f) {
                score -= 6;
            }
        }
        if self.tones.contains(&tone) {
            score += 5;
        }
        if flags.private_only() && self.channel == ChannelRule::Public {
            score -= 20;
        }
        score
    }

    /// The channel to use when the operator did not pick one: private for AE and HCP mentions
    /// and for mentions that arrived as direct messages.
    pub fn default_channel(&self, m: &Mention) -> Channel {
        match self.channel {
            ChannelRule::Private => Channel::Private,
            ChannelRule::Public => Channel::Public,
            ChannelRule::Either if m.private || m.tags.flags.private_only() => Channel::Private,
            ChannelRule::Either => Channel::Public,
        }
    }
}

/// Everything the program fills into a reply besides the operator's prompt variables.
#[derive(Debug, Clone, Default)]
pub struct Fill {
    pub agent_initials: String,
    pub signoff: String,
    pub case: String,
    pub contacts: BTreeMap<String, String>,
}

/// Why a send was refused. Every variant names the rule in its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "rule 'expired': reply '{id}' v{version} expired on {expires_on}; ask MLR for a renewed version"
    )]
    Expired {
        id: String,
        version: u32,
        expires_on: Date,
    },
    #[error("rule 'not-yet-approved': reply '{id}' is approved from {approved_on} only")]
    NotYetApproved { id: String, approved_on: Date },
    #[error(
        "rule 'tampered': the text of reply '{id}' v{version} differs from the text first seen under that id and version; an approved text cannot change without a new version and approval"
    )]
    Tampered { id: String, version: u32 },
    #[error(
        "rule 'too-long': the rendered reply is {length} {unit}, over {platform}'s limit of {limit}"
    )]
    TooLong {
        platform: Platform,
        length: usize,
        limit: usize,
        unit: &'static str,
    },
    #[error(
        "rule 'private-only': this mention is {flags} and may only be answered in the private channel"
    )]
    PrivateOnlyMention { flags: String },
    #[error(
        "rule 'channel': reply '{id}' is approved for the {allowed} channel only, not {requested}"
    )]
    ChannelNotApproved {
        id: String,
        allowed: &'static str,
        requested: Channel,
    },
    #[error("rule 'platform': reply '{id}' is not approved for {platform}")]
    WrongPlatform { id: String, platform: Platform },
    #[error("rule 'crisis': crisis mode is on ({reason}); only holding statements may be sent")]
    Crisis { reason: String },
    #[error("rule 'variable': reply '{id}' needs --var {name}=… ({hint})")]
    MissingVar {
        id: String,
        name: String,
        hint: String,
    },
    #[error("rule 'variable': value of '{name}' {problem}")]
    BadVar { name: String, problem: String },
    #[error("rule 'variable': reply '{id}' declares no variable '{name}'")]
    UnknownVar { id: String, name: String },
    #[error(
        "rule 'contact': reply '{id}' uses {{contact.{key}}} but [contact] in the config has no '{key}'"
    )]
    MissingContact { id: String, key: String },
    #[error(
        "rule 'privacy': a public reply must not confirm a person's health condition or treatment: {what}; answer in the private channel or leave it out"
    )]
    Privacy { what: String },
    #[error(
        "rule 'answered': mention {mention} already has a reply ({state}); check it before sending another"
    )]
    AlreadyAnswered { mention: i64, state: String },
}

/// Fills a reply for one mention. Only placeholders are filled; the rest of the text is the
/// approved wording, unchanged.
pub fn render(
    reply: &Reply,
    author: &Author,
    fill: &Fill,
    vars: &BTreeMap<String, String>,
) -> Result<String, Refusal> {
    for name in vars.keys() {
        if !reply.prompts.iter().any(|p| &p.name == name) {
            return Err(Refusal::UnknownVar {
                id: reply.id.clone(),
                name: name.clone(),
            });
        }
    }
    let mut out = String::with_capacity(reply.text.len() + 32);
    for seg in &reply.segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Slot(slot) => match slot {
                Slot::Author => out.push_str(&author.at_handle()),
                Slot::FirstName => out.push_str(author.first_name().unwrap_or("there")),
                Slot::Agent => out.push_str(&fill.agent_initials),
                Slot::Signoff => out.push_str(&fill.signoff),
                Slot::Case => out.push_str(&fill.case),
                Slot::Contact(key) => match fill.contacts.get(key) {
                    Some(v) => out.push_str(v),
                    None => {
                        return Err(Refusal::MissingContact {
                            id: reply.id.clone(),
                            key: key.clone(),
                        });
                    }
                },
                Slot::Var(name) => out.push_str(&checked_var(reply, name, vars)?),
            },
        }
    }
    Ok(out)
}

fn checked_var(
    reply: &Reply,
    name: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, Refusal> {
    let prompt = reply.prompts.iter().find(|p| p.name == name);
    let Some(prompt) = prompt else {
        return Err(Refusal::UnknownVar {
            id: reply.id.clone(),
            name: name.to_owned(),
        });
    };
    let Some(value) = vars.get(name) else {
        return Err(Refusal::MissingVar {
            id: reply.id.clone(),
            name: name.to_owned(),
            hint: format!(
                "at most {} characters matching {}",
                prompt.max_len,
                prompt.pattern.as_str()
            ),
        });
    };
    if value.chars().count() > prompt.max_len {
        return Err(Refusal::BadVar {
            name: name.to_owned(),
            problem: format!(
                "is longer than its maximum of {} characters",
                prompt.max_len
            ),
        });
    }
    if value.chars().any(char::is_control) || !prompt.pattern.is_match(value) {
        return Err(Refusal::BadVar {
            name: name.to_owned(),
            problem: format!(
                "does not match its allowed pattern {}",
                prompt.pattern.as_str()
            ),
        });
    }
    Ok(value.clone())
}

/// The state a send is checked against, gathered by the caller.
#[derive(Debug, Clone)]
pub struct SendContext<'a> {
    pub today: Date,
    /// `Some(reason)` when crisis mode is on.
    pub crisis: Option<&'a str>,
    /// The text hash first seen for this reply's id+version, if it was seen before.
    pub known_hash: Option<&'a str>,
    /// The state of an earlier reply to the same mention, if any.
    pub earlier_reply: Option<&'a str>,
    /// The declared variables' values, as filled in (checked by the privacy guard).
    pub vars: &'a BTreeMap<String, String>,
    /// The brand's product names (a public reply must not name them next to the person).
    pub products: &'a [String],
}

/// Every rule of DESIGN §2 that can refuse a send, in the order a person would want to hear them.
pub fn check_send(
    reply: &Reply,
    mention: &Mention,
    channel: Channel,
    rendered: &str,
    ctx: &SendContext<'_>,
) -> Result<(), Refusal> {
    if let Some(reason) = ctx.crisis
        && !reply.holding
    {
        return Err(Refusal::Crisis {
            reason: reason.to_owned(),
        });
    }
    if let Some(state) = ctx.earlier_reply {
        return Err(Refusal::AlreadyAnswered {
            mention: mention.id,
            state: state.to_owned(),
        });
    }
    if let Some(h) = ctx.known_hash
        && h != reply.text_hash()
    {
        return Err(Refusal::Tampered {
            id: reply.id.clone(),
            version: reply.version,
        });
    }
    if ctx.today < reply.approved_on {
        return Err(Refusal::NotYetApproved {
            id: reply.id.clone(),
            approved_on: reply.approved_on,
        });
    }
    if ctx.today > reply.expires_on {
        return Err(Refusal::Expired {
            id: reply.id.clone(),
            version: reply.version,
            expires_on: reply.expires_on,
        });
    }
    if !reply.suits_platform(mention.platform) {
        return Err(Refusal::WrongPlatform {
            id: reply.id.clone(),
            platform: mention.platform,
        });
    }
    if channel == Channel::Public && mention.private {
        return Err(Refusal::PrivateOnlyMention {
            flags: "a direct message".into(),
        });
    }
    if channel == Channel::Public && mention.tags.flags.private_only() {
        let flags: Vec<&str> = mention
            .tags
            .flags
            .iter()
            .filter(|f| f.is_private_only())
            .map(Flag::as_str)
            .collect();
        return Err(Refusal::PrivateOnlyMention {
            flags: format!("flagged {}", flags.join("+")),
        });
    }
    if !reply.channel.allows(channel) {
        return Err(Refusal::ChannelNotApproved {
            id: reply.id.clone(),
            allowed: reply.channel.as_str(),
            requested: channel,
        });
    }
    if channel == Channel::Public {
        if reply.confirms_health {
            return Err(Refusal::Privacy {
                what: format!(
                    "reply '{}' is declared as confirming health (confirms_health)",
                    reply.id
                ),
            });
        }
        for (name, value) in ctx.vars {
            if let Some(term) = super::privacy::health_term(value, ctx.products) {
                return Err(Refusal::Privacy {
                    what: format!("the value of '{name}' mentions '{term}'"),
                });
            }
        }
    }
    let length = measure(mention.platform, rendered);
    let limit = mention.platform.limit();
    if length > limit {
        return Err(Refusal::TooLong {
            platform: mention.platform,
            length,
            limit,
            unit: mention.platform.unit(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::mention::{MentionState, TagSource, Tags};
    use time::macros::{date, datetime};

    pub(crate) fn reply(text: &str) -> Reply {
        Reply {
            id: "thanks".into(),
            version: 1,
            approval: "MLR-1".into(),
            approved_on: date!(2026 - 01 - 01),
            expires_on: date!(2027 - 01 - 01),
            tones: vec![Tone::Positive],
            flags: Flags::empty(),
            channel: ChannelRule::Either,
            platforms: vec![],
            holding: false,
            confirms_health: false,
            text: text.into(),
            segments: parse_template(text).unwrap(),
            prompts: vec![Prompt {
                name: "product".into(),
                max_len: 12,
                pattern: Regex::new("^[A-Za-z ]+$").unwrap(),
            }],
        }
    }

    pub(crate) fn mention(flags: &[Flag]) -> Mention {
        Mention {
            id: 7,
            platform: Platform::X,
            account: "demo-x".into(),
            remote_id: "1".into(),
            author: Author {
                handle: "maria".into(),
                display_name: "Maria Lopez".into(),
                bio: String::new(),
            },
            text: "hi".into(),
            created_at: datetime!(2026-06-01 10:00 UTC),
            url: None,
            in_reply_to: None,
            parent_text: None,
            reply_ref: None,
            private: false,
            tags: Tags {
                tone: Tone::Positive,
                flags: flags.iter().copied().collect(),
                confidence: 0.9,
                reasons: vec![],
                source: TagSource::Classifier,
            },
            state: MentionState::Open,
            due_at: datetime!(2026-06-01 11:00 UTC),
            snooze_until: None,
        }
    }

    static NO_VARS: BTreeMap<String, String> = BTreeMap::new();
    static PRODUCTS: [String; 0] = [];

    fn ctx() -> SendContext<'static> {
        SendContext {
            today: date!(2026 - 06 - 01),
            crisis: None,
            known_hash: None,
            earlier_reply: None,
            vars: &NO_VARS,
            products: &PRODUCTS,
        }
    }

    #[test]
    fn parses_the_closed_set_of_placeholders() {
        let segs = parse_template("Hi {first_name} {{ok}} {contact.phone} {var.product}").unwrap();
        assert!(segs.contains(&Segment::Slot(Slot::Contact("phone".into()))));
        assert!(segs.contains(&Segment::Text(" {ok} ".into())));
        assert_eq!(
            parse_template("Hi {name}"),
            Err(TemplateError::UnknownPlaceholder("name".into()))
        );
        assert_eq!(parse_template("Hi {author"), Err(TemplateError::Unclosed));
        assert_eq!(parse_template("Hi }"), Err(TemplateError::Stray));
        assert!(parse_template("{contact.}").is_err());
    }

    #[test]
    fn renders_only_placeholders() {
        let r = reply("Thanks {first_name} ({author}), enjoy {var.product}! {signoff} #{case}");
        let fill = Fill {
            agent_initials: "JR".into(),
            signoff: "^JR".into(),
            case: "C000007".into(),
            contacts: BTreeMap::new(),
        };
        let vars = BTreeMap::from([("product".to_string(), "Zyntriva".to_string())]);
        let m = mention(&[]);
        let out = render(&r, &m.author, &fill, &vars).unwrap();
        assert_eq!(out, "Thanks Maria (@maria), enjoy Zyntriva! ^JR #C000007");
    }

    #[test]
    fn refuses_bad_variables() {
        let r = reply("{var.product}");
        let m = mention(&[]);
        let f = Fill::default();
        let err = render(&r, &m.author, &f, &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, Refusal::MissingVar { .. }), "{err}");
        let long = BTreeMap::from([("product".to_string(), "A".repeat(13))]);
        assert!(matches!(
            render(&r, &m.author, &f, &long),
            Err(Refusal::BadVar { .. })
        ));
        let bad = BTreeMap::from([("product".to_string(), "x<script>".to_string())]);
        let err = render(&r, &m.author, &f, &bad).unwrap_err();
        assert!(err.to_string().contains("pattern"), "{err}");
        let unknown = BTreeMap::from([("other".to_string(), "x".to_string())]);
        assert!(matches!(
            render(&r, &m.author, &f, &unknown),
            Err(Refusal::UnknownVar { .. })
        ));
        let contact = reply("{contact.phone}");
        assert!(matches!(
            render(&contact, &m.author, &f, &BTreeMap::new()),
            Err(Refusal::MissingContact { .. })
        ));
    }

    #[test]
    fn every_rule_refuses_with_its_name() {
        let r = reply("Thanks!");
        let m = mention(&[]);
        assert_eq!(
            check_send(&r, &m, Channel::Public, "Thanks!", &ctx()),
            Ok(())
        );

        let expired = SendContext {
            today: date!(2027 - 02 - 01),
            ..ctx()
        };
        let e = check_send(&r, &m, Channel::Public, "x", &expired).unwrap_err();
        assert!(e.to_string().starts_with("rule 'expired'"), "{e}");

        let tampered = SendContext {
            known_hash: Some("abc"),
            ..ctx()
        };
        let e = check_send(&r, &m, Channel::Public, "x", &tampered).unwrap_err();
        assert!(e.to_string().starts_with("rule 'tampered'"), "{e}");

        let e = check_send(&r, &m, Channel::Public, &"a".repeat(281), &ctx()).unwrap_err();
        assert!(e.to_string().contains("281 weighted characters"), "{e}");

        let hcp = mention(&[Flag::Hcp]);
        let e = check_send(&r, &hcp, Channel::Public, "x", &ctx()).unwrap_err();
        assert!(e.to_string().starts_with("rule 'private-only'"), "{e}");
        assert_eq!(check_send(&r, &hcp, Channel::Private, "x", &ctx()), Ok(()));

        let private = Reply {
            channel: ChannelRule::Private,
            ..reply("x")
        };
        let e = check_send(&private, &m, Channel::Public, "x", &ctx()).unwrap_err();
        assert!(e.to_string().starts_with("rule 'channel'"), "{e}");

        let crisis = SendContext {
            crisis: Some("recall rumour"),
            ..ctx()
        };
        let e = check_send(&r, &m, Channel::Public, "x", &crisis).unwrap_err();
        assert!(e.to_string().starts_with("rule 'crisis'"), "{e}");
        let holding = Reply {
            holding: true,
            ..reply("x")
        };
        assert_eq!(
            check_send(&holding, &m, Channel::Public, "x", &crisis),
            Ok(())
        );

        let only_bsky = Reply {
            platforms: vec![Platform::Bluesky],
            ..reply("x")
        };
        let e = check_send(&only_bsky, &m, Channel::Public, "x", &ctx()).unwrap_err();
        assert!(e.to_string().starts_with("rule 'platform'"), "{e}");

        let answered = SendContext {
            earlier_reply: Some("sent"),
            ..ctx()
        };
        let e = check_send(&r, &m, Channel::Public, "x", &answered).unwrap_err();
        assert!(e.to_string().starts_with("rule 'answered'"), "{e}");

        // The privacy guard: what is filled in, and what the template declares.
        let products = vec!["Zyntriva".to_owned()];
        let vars = BTreeMap::from([("topic".to_owned(), "your Zyntriva refill".to_owned())]);
        let filled = SendContext {
            vars: &vars,
            products: &products,
            ..ctx()
        };
        let e = check_send(&r, &m, Channel::Public, "x", &filled).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rule 'privacy': a public reply must not confirm a person's health condition or treatment: the value of 'topic' mentions 'zyntriva'; answer in the private channel or leave it out"
        );
        assert_eq!(check_send(&r, &m, Channel::Private, "x", &filled), Ok(()));
        let health = Reply {
            confirms_health: true,
            ..reply("x")
        };
        let e = check_send(&health, &m, Channel::Public, "x", &ctx()).unwrap_err();
        assert!(e.to_string().contains("confirms_health"), "{e}");
        assert_eq!(
            check_send(&health, &m, Channel::Private, "x", &ctx()),
            Ok(())
        );
    }

    #[test]
    fn fit_prefers_replies_written_for_the_flags() {
        let mut ae = reply("x");
        ae.flags = [Flag::Ae].into_iter().collect();
        ae.channel = ChannelRule::Private;
        ae.tones = vec![];
        let thanks = reply("x");
        let flags: Flags = [Flag::Ae].into_iter().collect();
        assert!(ae.fit(Tone::Positive, flags) > thanks.fit(Tone::Positive, flags));
        assert!(
            thanks.fit(Tone::Positive, Flags::empty()) > ae.fit(Tone::Positive, Flags::empty())
        );
        let mut dm = mention(&[]);
        assert_eq!(ae.default_channel(&mention(&[Flag::Ae])), Channel::Private);
        assert_eq!(
            thanks.default_channel(&mention(&[Flag::Hcp])),
            Channel::Private
        );
        assert_eq!(thanks.default_channel(&dm), Channel::Public);
        dm.private = true;
        assert_eq!(thanks.default_channel(&dm), Channel::Private);
        let e = check_send(&thanks, &dm, Channel::Public, "x", &ctx()).unwrap_err();
        assert!(e.to_string().contains("direct message"), "{e}");
    }
}
