//! Custom wording is never sent directly (DESIGN §2): it is drafted into a review queue and becomes
//! a library reply only once MLR gives it an approval reference.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use super::mention::{MentionId, UnknownName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DraftState {
    /// Waiting for MLR review. A draft in this state can never be sent.
    Draft,
    /// Approved: it now lives in the library under `reply_id`.
    Approved,
    /// Turned down by review.
    Rejected,
}

impl DraftState {
    pub fn as_str(self) -> &'static str {
        match self {
            DraftState::Draft => "draft",
            DraftState::Approved => "approved",
            DraftState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for DraftState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DraftState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "draft" => Ok(DraftState::Draft),
            "approved" => Ok(DraftState::Approved),
            "rejected" => Ok(DraftState::Rejected),
            other => Err(UnknownName::new(
                "draft state",
                other,
                "draft, approved, rejected",
            )),
        }
    }
}

/// A custom reply in the review queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub id: i64,
    /// The mention it was written for, if any.
    pub mention: Option<MentionId>,
    pub text: String,
    pub operator: String,
    pub created_at: OffsetDateTime,
    pub state: DraftState,
    /// The MLR reference it was approved under.
    pub approval: Option<String>,
    /// The library reply it became.
    pub reply_id: Option<String>,
}

/// Cleans what came back from the editor: comment lines (starting with '#') and surrounding
/// blank space dropped. `None` when nothing is left (the operator gave up).
pub fn clean_editor_text(text: &str) -> Option<String> {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let out = kept.join("\n").trim().to_owned();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_text_drops_comments_and_blank_space() {
        let t = "# Write the reply below.\n\nHi there, so sorry.\nWe'll DM you.\n\n# end\n";
        assert_eq!(
            clean_editor_text(t).as_deref(),
            Some("Hi there, so sorry.\nWe'll DM you.")
        );
        assert_eq!(clean_editor_text("# only a comment\n  \n"), None);
        for s in [
            DraftState::Draft,
            DraftState::Approved,
            DraftState::Rejected,
        ] {
            assert_eq!(s.as_str().parse::<DraftState>().unwrap(), s);
        }
    }
}
