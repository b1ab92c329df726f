//! Pure types and rules: mentions and tags, the playbook, approved replies and their rendering,
//! platform lengths, audit entries and their hash. No I/O lives here.

pub mod audit;
pub mod mention;
pub mod playbook;
pub mod reply;
#[cfg(test)]
mod reply_props;
pub mod text;

pub use mention::{
    Author, Flag, Flags, IncomingMention, Mention, MentionId, MentionState, Platform, TagSource,
    Tags, Tone,
};
pub use reply::{Channel, ChannelRule, Refusal, Reply};
