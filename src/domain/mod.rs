//! Pure types and rules: mentions and tags, the playbook, approved replies and their rendering,
//! platform lengths, audit entries and their hash. No I/O lives here.

pub mod ae;
pub mod audit;
pub mod draft;
pub mod mention;
pub mod playbook;
pub mod privacy;
pub mod reply;
#[cfg(test)]
mod reply_props;
pub mod text;

pub use ae::{AeCase, Element, ElementState};
pub use draft::{Draft, DraftState};
pub use mention::{
    Author, Flag, Flags, IncomingMention, Mention, MentionId, MentionState, Platform, TagSource,
    Tags, Tone,
};
pub use reply::{Channel, ChannelRule, Refusal, Reply};
