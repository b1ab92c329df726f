//! The tone and risk classifier: pure and fast, lexicons and rules as data under `assets/tone/`.

use crate::domain::{Author, Flags, TagSource, Tags, Tone};

/// What the classifier needs from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ToneConfig {
    /// Brand and generic product names (and misspellings), for adverse-event detection.
    pub products: Vec<String>,
    /// Crisis keywords (recall, death, lawsuit…).
    pub crisis_keywords: Vec<String>,
    /// Handles known to belong to healthcare professionals.
    pub hcp_handles: Vec<String>,
}

/// Tags mentions with a tone, risk flags, a confidence and the reasons that fired.
#[derive(Debug, Clone)]
pub struct Classifier {
    config: ToneConfig,
}

impl Classifier {
    pub fn new(config: ToneConfig) -> Self {
        Classifier { config }
    }

    pub fn classify(&self, text: &str, author: &Author) -> Tags {
        let _ = (&self.config, text, author);
        Tags {
            tone: Tone::Neutral,
            flags: Flags::empty(),
            confidence: 0.0,
            reasons: vec!["placeholder".into()],
            source: TagSource::Classifier,
        }
    }
}
