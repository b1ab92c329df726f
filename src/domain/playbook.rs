//! The care playbook: urgency order, response targets and the actions each tone calls for (DESIGN §1).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::mention::{Flag, Flags, Tags, Tone};

/// Where a mention is worked: the answer queue or the moderation lane (trolls and spam).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Answer,
    Moderation,
}

/// Urgency rank of a tagged mention, lower first: AE, complaint, HCP, medical question, neutral,
/// positive; trolls and spam after them (moderation lane). An overdue AE goes before all of
/// these; that depends on the clock, so the queue adds it at read time (see [`is_overdue`]).
pub fn urgency_rank(tags: &Tags) -> u8 {
    let f = tags.flags;
    if f.contains(Flag::Ae) {
        1
    } else if tags.tone.is_moderation() {
        match tags.tone {
            Tone::Troll => 7,
            _ => 8,
        }
    } else if tags.tone == Tone::Complaint {
        2
    } else if f.contains(Flag::Hcp) {
        3
    } else if f.contains(Flag::MedicalQuestion) {
        4
    } else if tags.tone == Tone::Neutral {
        5
    } else {
        6
    }
}

/// Rank used for an AE whose response target has passed: ahead of everything.
pub const OVERDUE_AE_RANK: u8 = 0;

pub fn lane(tags: &Tags) -> Lane {
    if tags.tone.is_moderation() && !tags.flags.contains(Flag::Ae) {
        Lane::Moderation
    } else {
        Lane::Answer
    }
}

/// First-response targets per tone, in minutes, and the AE reporting clock in hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    pub positive: u32,
    pub neutral: u32,
    pub complaint: u32,
    pub troll: u32,
    pub spam: u32,
    /// First-response target of an adverse event, whatever its tone.
    pub ae: u32,
    /// Hours from the post's publish time until an AE must reach pharmacovigilance.
    pub ae_report_hours: u32,
    /// Days until a healthcare professional's follow-up reminder comes back to the queue.
    pub hcp_follow_up_days: u32,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            positive: 60,
            neutral: 60,
            complaint: 60,
            troll: 60,
            spam: 60,
            ae: 60,
            ae_report_hours: 24,
            hcp_follow_up_days: 90,
        }
    }
}

impl Targets {
    pub fn response_minutes(&self, tags: &Tags) -> u32 {
        if tags.flags.contains(Flag::Ae) {
            return self.ae;
        }
        match tags.tone {
            Tone::Positive => self.positive,
            Tone::Neutral => self.neutral,
            Tone::Complaint => self.complaint,
            Tone::Troll => self.troll,
            Tone::Spam => self.spam,
        }
    }

    pub fn due_at(&self, created_at: OffsetDateTime, tags: &Tags) -> OffsetDateTime {
        created_at + Duration::minutes(i64::from(self.response_minutes(tags)))
    }

    pub fn ae_report_due(&self, created_at: OffsetDateTime) -> OffsetDateTime {
        created_at + Duration::hours(i64::from(self.ae_report_hours))
    }
}

pub fn is_overdue(due_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    due_at < now
}

/// A platform action the playbook may call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModAction {
    Like,
    Hide,
    Block,
    Mute,
    Report,
}

impl ModAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModAction::Like => "like",
            ModAction::Hide => "hide",
            ModAction::Block => "block",
            ModAction::Mute => "mute",
            ModAction::Report => "report",
        }
    }
}

/// What the playbook recommends for a tagged mention, in plain words, first step first.
pub fn recommended(tags: &Tags) -> &'static str {
    if tags.flags.contains(Flag::Ae) {
        return "adverse event: approved AE reply in private, open the AE intake (a), report within the clock";
    }
    if tags.flags.contains(Flag::Hcp) {
        return "healthcare professional: answer privately (DM), keep product talk off the timeline";
    }
    if tags.flags.contains(Flag::MedicalQuestion) {
        return "medical question: approved Medical Information reply only, never improvise";
    }
    match tags.tone {
        Tone::Positive => "like it and send a short approved thank-you",
        Tone::Neutral => "reply inviting a DM or email, then move offline",
        Tone::Complaint => "acknowledge publicly now, solve if simple, move offline",
        Tone::Troll => "do not argue: hide and block",
        Tone::Spam => "hide, block and report to the network",
    }
}

/// Human form of a signed duration: `42m`, `3h05m`, `2d4h`; negative values read as overdue.
pub fn short_duration(d: Duration) -> String {
    let secs = d.whole_seconds().unsigned_abs();
    let mins = secs / 60;
    let (h, m) = (mins / 60, mins % 60);
    let text = if mins < 60 {
        format!("{mins}m")
    } else if h < 24 {
        format!("{h}h{m:02}m")
    } else {
        format!("{}d{}h", h / 24, h % 24)
    };
    if d.is_negative() {
        format!("-{text}")
    } else {
        text
    }
}

/// Convenience for tests and the demo.
pub fn tags_of(tone: Tone, flags: &[Flag]) -> Tags {
    Tags {
        tone,
        flags: flags.iter().copied().collect::<Flags>(),
        confidence: 1.0,
        reasons: Vec::new(),
        source: super::mention::TagSource::Classifier,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urgency_follows_the_playbook() {
        let order = [
            tags_of(Tone::Positive, &[Flag::Ae]),
            tags_of(Tone::Complaint, &[]),
            tags_of(Tone::Neutral, &[Flag::Hcp]),
            tags_of(Tone::Neutral, &[Flag::MedicalQuestion]),
            tags_of(Tone::Neutral, &[]),
            tags_of(Tone::Positive, &[]),
            tags_of(Tone::Troll, &[]),
            tags_of(Tone::Spam, &[]),
        ];
        let ranks: Vec<u8> = order.iter().map(urgency_rank).collect();
        let mut sorted = ranks.clone();
        sorted.sort();
        assert_eq!(ranks, sorted);
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        assert!(OVERDUE_AE_RANK < ranks[0]);
        assert_eq!(lane(&order[6]), Lane::Moderation);
        assert_eq!(lane(&tags_of(Tone::Troll, &[Flag::Ae])), Lane::Answer);
    }

    #[test]
    fn targets_and_durations() {
        let t = Targets {
            complaint: 30,
            ..Targets::default()
        };
        let now = time::macros::datetime!(2026-01-01 12:00 UTC);
        let due = t.due_at(now, &tags_of(Tone::Complaint, &[]));
        assert_eq!(due - now, Duration::minutes(30));
        assert_eq!(
            t.ae_report_due(now) - now,
            Duration::hours(24),
            "AE clock defaults to 24 h"
        );
        assert_eq!(short_duration(Duration::minutes(42)), "42m");
        assert_eq!(short_duration(Duration::minutes(185)), "3h05m");
        assert_eq!(short_duration(Duration::minutes(-61)), "-1h01m");
        assert_eq!(short_duration(Duration::hours(52)), "2d4h");
    }
}
