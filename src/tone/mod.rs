//! The tone and risk classifier: pure and fast, lexicons and rules as data under `assets/tone/`.
//!
//! A post goes through one small pipeline:
//! 1. [`token`]: tokenise (lowercase; @handles and links become markers; hashtag words, emoji and
//!    emoticons are tokens; elongations collapse; "n't" expands to "not").
//! 2. [`rules`]: each rule adds evidence — tone cues (care failures, sarcasm, praise, insults, spam
//!    phrases), sentiment words (negation, contrast, intensifiers, capitals), spam shapes, and the risk
//!    flags (adverse event, crisis keyword, HCP author, medical question).
//! 3. [`evidence`]: the evidence is weighed into a tone, a confidence and at most six reasons.
//!
//! The data (`assets/tone/*.toml`, `valence.txt`) is embedded at build time and parsed once in
//! [`Classifier::new`]; phrase lists are indexed by their first token, so [`Classifier::classify`]
//! compiles nothing and allocates little.

mod evidence;
mod lexicon;
mod pattern;
mod rules;
mod token;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use crate::domain::{Author, Tags};

use lexicon::Lexicon;
use rules::Engine;

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
#[derive(Clone)]
pub struct Classifier {
    config: ToneConfig,
    engine: Arc<Engine>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lex = &self.engine.lex;
        f.debug_struct("Classifier")
            .field("config", &self.config)
            .field("valence_words", &lex.valence.len())
            .field("tone_cues", &lex.cues.len())
            .field("ae_cues", &lex.ae.len())
            .field("medical_cues", &lex.medical.len())
            .finish()
    }
}

impl Classifier {
    /// Build the classifier from the embedded lexicons. A data file that does not parse is logged and
    /// left out (the classifier then runs on the rest); the unit tests prove the shipped files parse.
    pub fn new(config: ToneConfig) -> Self {
        let (lex, errors) = Lexicon::embedded();
        for e in &errors {
            tracing::warn!("tone lexicon: {e}");
        }
        let engine = Arc::new(Engine::new(lex, &config));
        Classifier { config, engine }
    }

    /// Tag one post by `author`. Pure: the same input always gives the same tags.
    pub fn classify(&self, text: &str, author: &Author) -> Tags {
        self.engine.run(text, author)
    }
}
