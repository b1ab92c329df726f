//! Mentions, their authors and the tags the classifier or the operator put on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A social network tonedesk can listen to and answer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    X,
    Mastodon,
    Bluesky,
}

impl Platform {
    pub const ALL: [Platform; 3] = [Platform::X, Platform::Mastodon, Platform::Bluesky];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::X => "x",
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
        }
    }

    /// A short label for narrow columns.
    pub fn short(self) -> &'static str {
        match self {
            Platform::X => "X",
            Platform::Mastodon => "MA",
            Platform::Bluesky => "BS",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "x" => Ok(Platform::X),
            "mastodon" => Ok(Platform::Mastodon),
            "bluesky" => Ok(Platform::Bluesky),
            other => Err(UnknownName::new("platform", other, "x, mastodon, bluesky")),
        }
    }
}

/// A name that is not one of a closed set (tone, flag, platform, state, channel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}' (expected one of: {expected})")]
pub struct UnknownName {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl UnknownName {
    pub fn new(kind: &'static str, value: &str, expected: &'static str) -> Self {
        Self {
            kind,
            value: value.to_owned(),
            expected,
        }
    }
}

/// The tone of a mention (DESIGN §1). The last three are the negative kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    Positive,
    Neutral,
    Complaint,
    Troll,
    Spam,
}

impl Tone {
    pub const ALL: [Tone; 5] = [
        Tone::Positive,
        Tone::Neutral,
        Tone::Complaint,
        Tone::Troll,
        Tone::Spam,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tone::Positive => "positive",
            Tone::Neutral => "neutral",
            Tone::Complaint => "complaint",
            Tone::Troll => "troll",
            Tone::Spam => "spam",
        }
    }

    /// The three-way polarity used by `tone eval` (complaint, troll and spam count as negative).
    pub fn polarity(self) -> &'static str {
        match self {
            Tone::Positive => "positive",
            Tone::Neutral => "neutral",
            Tone::Complaint | Tone::Troll | Tone::Spam => "negative",
        }
    }

    /// Trolls and spam are moderated, not answered.
    pub fn is_moderation(self) -> bool {
        matches!(self, Tone::Troll | Tone::Spam)
    }
}

impl fmt::Display for Tone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tone {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tone::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName::new("tone", s, "positive, neutral, complaint, troll, spam"))
    }
}

/// A risk flag, independent of tone (DESIGN §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    Ae,
    Hcp,
    MedicalQuestion,
    Crisis,
}

impl Flag {
    pub const ALL: [Flag; 4] = [Flag::Ae, Flag::Hcp, Flag::MedicalQuestion, Flag::Crisis];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Ae => "ae",
            Flag::Hcp => "hcp",
            Flag::MedicalQuestion => "medical_question",
            Flag::Crisis => "crisis",
        }
    }

    /// Mentions with this flag must only be answered privately.
    pub fn is_private_only(self) -> bool {
        matches!(self, Flag::Ae | Flag::Hcp)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flag {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Flag::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownName::new("flag", s, "ae, hcp, medical_question, crisis"))
    }
}

/// A small ordered set of flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub fn empty() -> Self {
        Flags(0)
    }

    fn bit(flag: Flag) -> u8 {
        1 << (flag as u8)
    }

    pub fn contains(self, flag: Flag) -> bool {
        self.0 & Self::bit(flag) != 0
    }

    pub fn insert(&mut self, flag: Flag) {
        self.0 |= Self::bit(flag);
    }

    pub fn remove(&mut self, flag: Flag) {
        self.0 &= !Self::bit(flag);
    }

    pub fn toggle(&mut self, flag: Flag) {
        self.0 ^= Self::bit(flag);
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    pub fn bits(self) -> u8 {
        self.0
    }

    pub fn from_bits(bits: u8) -> Self {
        Flags(bits & 0b1111)
    }

    /// Any flag that keeps the conversation in the private channel.
    pub fn private_only(self) -> bool {
        self.iter().any(Flag::is_private_only)
    }
}

impl FromIterator<Flag> for Flags {
    fn from_iter<I: IntoIterator<Item = Flag>>(iter: I) -> Self {
        let mut flags = Flags::empty();
        for f in iter {
            flags.insert(f);
        }
        flags
    }
}

impl Serialize for Flags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Flag>::deserialize(d)?;
        Ok(list.into_iter().collect())
    }
}

/// Who set the current tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    Classifier,
    Operator,
}

/// Tone, flags and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tags {
    pub tone: Tone,
    pub flags: Flags,
    /// 0.0 ..= 1.0
    pub confidence: f32,
    /// The cues that fired, in plain words ("negative cue 'still waiting'").
    pub reasons: Vec<String>,
    pub source: TagSource,
}

impl Tags {
    pub fn operator(tone: Tone, flags: Flags, reason: impl Into<String>) -> Self {
        Tags {
            tone,
            flags,
            confidence: 1.0,
            reasons: vec![reason.into()],
            source: TagSource::Operator,
        }
    }
}

/// The person (or bot) who wrote a mention.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// Handle without a leading '@' (`drlee`, `nurse@med.social`, `ana.bsky.social`).
    pub handle: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub bio: String,
}

impl Author {
    /// The handle as people write it (`@drlee`).
    pub fn at_handle(&self) -> String {
        format!("@{}", self.handle)
    }

    /// The first word of the display name when it looks like a name, for greetings.
    pub fn first_name(&self) -> Option<&str> {
        let word = self.display_name.split_whitespace().next()?;
        let honorific = matches!(
            word.trim_end_matches('.').to_ascii_lowercase().as_str(),
            "dr" | "mr" | "mrs" | "ms" | "prof" | "nurse"
        );
        let namelike = word
            .chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
            && word.chars().next().is_some_and(char::is_uppercase);
        (namelike && !honorific).then_some(word)
    }
}

/// Where a mention stands in the desk's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MentionState {
    Open,
    Done,
    Snoozed,
}

impl MentionState {
    pub fn as_str(self) -> &'static str {
        match self {
            MentionState::Open => "open",
            MentionState::Done => "done",
            MentionState::Snoozed => "snoozed",
        }
    }
}

impl FromStr for MentionState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(MentionState::Open),
            "done" => Ok(MentionState::Done),
            "snoozed" => Ok(MentionState::Snoozed),
            other => Err(UnknownName::new("state", other, "open, done, snoozed")),
        }
    }
}

/// A mention as a platform delivers it, before it is tagged and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMention {
    pub platform: Platform,
    pub account: String,
    pub remote_id: String,
    pub author: Author,
    pub text: String,
    pub created_at: OffsetDateTime,
    pub url: Option<String>,
    /// The remote id of the post it answers, when it is a reply.
    pub in_reply_to: Option<String>,
    /// The text of the post it answers, when the platform gave it.
    pub parent_text: Option<String>,
    /// Platform-specific reference needed to answer (e.g. Bluesky root/parent CIDs), opaque here.
    pub reply_ref: Option<String>,
    /// It arrived in a private channel (DM).
    pub private: bool,
}

/// Local id of a cached mention.
pub type MentionId = i64;

/// A cached, tagged mention.
#[derive(Debug, Clone, PartialEq)]
pub struct Mention {
    pub id: MentionId,
    pub platform: Platform,
    pub account: String,
    pub remote_id: String,
    pub author: Author,
    pub text: String,
    pub created_at: OffsetDateTime,
    pub url: Option<String>,
    pub in_reply_to: Option<String>,
    pub parent_text: Option<String>,
    pub reply_ref: Option<String>,
    pub private: bool,
    pub tags: Tags,
    pub state: MentionState,
    /// When the first-response target runs out.
    pub due_at: OffsetDateTime,
    /// When a snoozed mention (or an HCP follow-up) comes back to the queue.
    pub snooze_until: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Tone::ALL {
            assert_eq!(t.as_str().parse::<Tone>(), Ok(t));
        }
        for f in Flag::ALL {
            assert_eq!(f.as_str().parse::<Flag>(), Ok(f));
        }
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
        }
        let err = "angry".parse::<Tone>().unwrap_err();
        assert!(err.to_string().contains("positive, neutral"), "{err}");
    }

    #[test]
    fn flags_set_operations() {
        let mut f: Flags = [Flag::Hcp, Flag::Crisis].into_iter().collect();
        assert!(f.contains(Flag::Hcp) && !f.contains(Flag::Ae));
        assert!(f.private_only());
        f.toggle(Flag::Hcp);
        assert!(!f.private_only());
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![Flag::Crisis]);
        assert_eq!(Flags::from_bits(f.bits()), f);
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"["crisis"]"#);
    }

    #[test]
    fn first_name_skips_honorifics_and_handles() {
        let a = |n: &str| Author {
            handle: "h".into(),
            display_name: n.into(),
            bio: String::new(),
        };
        assert_eq!(a("Maria Lopez").first_name(), Some("Maria"));
        assert_eq!(a("Dr. Lee").first_name(), None);
        assert_eq!(a("xX_gamer_Xx").first_name(), None);
        assert_eq!(a("").first_name(), None);
    }
}
