//! The tone and risk classifier: pure and fast, lexicons and rules as data under `assets/tone/`.
//!
//! A post goes through one small pipeline:
//! 1. [`token`]: tokenise (lowercase; @handles and links become markers; hashtag words, emoji and
//!    emoticons are tokens; elongations collapse; "n't" expands to "not").
//! 2. [`rules`]: each rule adds evidence — tone cues (care failures, sarcasm, praise, insults, spam
//!    phrases), sentiment words (negation, contrast, intensifiers, capitals), spam shapes, and the risk
//!    flags (adverse event, crisis keyword, HCP author, medical question).
//! 3. [`evidence`]: the evidence is weighed into a tone, a confidence and at most six reasons.
//! 4. [`learn`] (optional): a model trained on the operators' corrections is blended with the rules'
//!    tone scores ([`Classifier::set_model`]); it never touches the risk flags.
//!
//! The data (`assets/tone/*.toml`, `valence.txt`) is embedded at build time and parsed once in
//! [`Classifier::new`], so [`Classifier::classify`] compiles nothing and allocates little (a thread
//! reuses the token buffers of its last post). Between steps 1 and 2 each token is looked up once,
//! by integer:
//! - every token carries the FNV-1a hash of its normal form;
//! - the lexicon gathers its single-word lists (valence, negators, intensifiers, people…) and the
//!   first words of its phrase lists in one word table; [`lexicon::Lexicon::annotate`] gives each
//!   token its word id, the lists it is on (as bits the rules test) and which phrase lists may
//!   start at it;
//! - a phrase list finds the phrases to try at a token by its word id, and tries one only when the
//!   next token has the hash of the phrase's second word.
//!
//! A hash hit is always confirmed on the text, so the hashes change no result.

pub mod eval;
mod evidence;
mod learn;
mod lexicon;
mod pattern;
mod rules;
mod token;

#[cfg(test)]
mod learn_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use crate::domain::{Author, Tags};

use lexicon::Lexicon;
use rules::Engine;

pub use learn::{CurvePoint, Example, Model, learning_curve};

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
///
/// Clones share the rules and the learned-model slot.
#[derive(Clone)]
pub struct Classifier {
    config: ToneConfig,
    engine: Arc<Engine>,
    model: Arc<RwLock<Option<Arc<Model>>>>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lex = &self.engine.lex;
        f.debug_struct("Classifier")
            .field("config", &self.config)
            .field("valence_words", &lex.valence.len())
            .field("tone_cues", &lex.cues.len())
            .field("ae_cues", &lex.ae.len())
            .field(
                "medical_cues",
                &(lex.medical.len() + lex.medical_asks.len()),
            )
            .field("model_examples", &self.model_examples())
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
        Classifier {
            config,
            engine,
            model: Arc::default(),
        }
    }

    /// Tag one post by `author`. Pure for a given model: the same input always gives the same tags.
    pub fn classify(&self, text: &str, author: &Author) -> Tags {
        let model = self.model();
        self.engine.run(text, author, model.as_deref())
    }

    /// Replace the learned model (`None`: rules only). Every clone of this classifier sees it.
    pub fn set_model(&self, model: Option<Model>) {
        let model = model.map(Arc::new);
        *self.model.write().unwrap_or_else(PoisonError::into_inner) = model;
    }

    /// How many corrections the learned model was trained on (0 without a model).
    pub fn model_examples(&self) -> usize {
        self.model().map_or(0, |m| m.examples())
    }

    fn model(&self) -> Option<Arc<Model>> {
        self.model
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
