//! What the rules find in one post, and how it becomes [`Tags`].

use std::fmt;

use crate::domain::{Flag, Flags, TagSource, Tags, Tone};

use super::lexicon::Scoring;
use super::token::{Doc, Span};

/// At most this many reasons are kept on a tag.
pub(crate) const MAX_REASONS: usize = 6;

/// Which tone a piece of evidence speaks for (`None`: a risk flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Positive,
    Negative,
    Troll,
    Spam,
}

/// One cue that fired, in a form cheap to build; it is put into words only if it is kept.
#[derive(Debug, Clone)]
pub(crate) enum Why<'a> {
    /// A phrase from the cue lists: "negative cue 'still waiting'", or "emoji 🙄 (sarcasm)".
    Cue {
        label: &'a str,
        text: &'a str,
        symbol: bool,
    },
    /// A sentiment word: "positive word 'great'".
    Word {
        positive: bool,
        text: &'a str,
    },
    /// A negated sentiment word or cue: "negated 'not good'".
    Negated {
        text: &'a str,
    },
    /// A shape of the text: "capitals 'WORST'", "shortened link 'bit.ly/…'".
    Shape {
        what: &'static str,
        text: &'a str,
    },
    Ae {
        product: &'a str,
        written: &'a str,
        kind: &'a str,
        text: &'a str,
    },
    Hcp {
        field: &'static str,
        text: &'a str,
    },
    MedicalQuestion {
        ask: Option<&'a str>,
        kind: &'a str,
        topic: &'a str,
    },
    Crisis {
        text: &'a str,
    },
    Plain(&'static str),
}

/// Shorten quoted text so a reason stays one short line.
pub(crate) struct Quote<'a>(pub &'a str);

impl fmt::Display for Quote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 40;
        let s = self.0.trim();
        f.write_str("'")?;
        // No more bytes than MAX is no more characters either.
        if s.len() <= MAX || s.chars().count() <= MAX {
            f.write_str(s)?;
        } else {
            let cut = s.char_indices().nth(MAX - 1).map_or(s, |(i, _)| &s[..i]);
            f.write_str(cut)?;
            f.write_str("…")?;
        }
        f.write_str("'")
    }
}

impl Why<'_> {
    /// The reason in words, in a string that seldom needs to grow.
    fn render(&self) -> String {
        use fmt::Write as _;
        let mut s = String::with_capacity(64);
        let _ = write!(s, "{self}");
        s
    }
}

/// Reasons are written piece by piece (they are rendered for every post).
impl fmt::Display for Why<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = |f: &mut fmt::Formatter<'_>, text| fmt::Display::fmt(&Quote(text), f);
        match self {
            Why::Cue {
                label,
                text,
                symbol: true,
            } => {
                f.write_str("emoji ")?;
                f.write_str(text)?;
                f.write_str(" (")?;
                f.write_str(label)?;
                f.write_str(")")
            }
            Why::Cue { label, text, .. } => {
                f.write_str(label)?;
                f.write_str(" ")?;
                quote(f, text)
            }
            Why::Word {
                positive: true,
                text,
            } => {
                f.write_str("positive word ")?;
                quote(f, text)
            }
            Why::Word { text, .. } => {
                f.write_str("negative word ")?;
                quote(f, text)
            }
            Why::Negated { text } => {
                f.write_str("negated ")?;
                quote(f, text)
            }
            Why::Shape { what, text: "" } => f.write_str(what),
            Why::Shape { what, text } => {
                f.write_str(what)?;
                f.write_str(" ")?;
                quote(f, text)
            }
            Why::Ae {
                product,
                written,
                kind,
                text,
            } => {
                write!(f, "ae: product '{product}'")?;
                if !written.eq_ignore_ascii_case(product) {
                    write!(f, " (written {})", Quote(written))?;
                }
                write!(f, " + {kind} {}", Quote(text))
            }
            Why::Hcp { field, text } => write!(f, "hcp: {field} {}", Quote(text)),
            Why::MedicalQuestion { ask, kind, topic } => {
                f.write_str("medical question: ")?;
                match ask {
                    Some(ask) if ask.eq_ignore_ascii_case(topic) => write!(f, "{}", Quote(ask)),
                    Some(ask) => write!(f, "{} + {kind} {}", Quote(ask), Quote(topic)),
                    None => write!(f, "{kind} {}", Quote(topic)),
                }
            }
            Why::Crisis { text } => write!(f, "crisis keyword {}", Quote(text)),
            Why::Plain(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Reason<'a> {
    pub side: Option<Side>,
    /// Counts only if conditional sarcasm turns out to apply.
    pub pending: bool,
    pub weight: f32,
    pub why: Why<'a>,
}

/// A set of token positions, as bits (held inline for a post of up to 128 tokens).
#[derive(Debug)]
pub(crate) struct TokenSet {
    small: [u64; 2],
    large: Vec<u64>,
}

impl TokenSet {
    fn new(tokens: usize) -> Self {
        let large = if tokens > 128 {
            vec![0; tokens.div_ceil(64)]
        } else {
            Vec::new()
        };
        TokenSet {
            small: [0; 2],
            large,
        }
    }

    fn words(&mut self) -> &mut [u64] {
        if self.large.is_empty() {
            &mut self.small
        } else {
            &mut self.large
        }
    }

    fn insert(&mut self, i: usize) {
        if let Some(w) = self.words().get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        let words = if self.large.is_empty() {
            &self.small[..]
        } else {
            &self.large[..]
        };
        words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Everything the rules found in one post.
#[derive(Debug)]
pub(crate) struct Evidence<'a> {
    pub positive: f32,
    pub negative: f32,
    pub troll: f32,
    pub spam: f32,
    /// Sarcasm that always applies ("🙄", "yeah right").
    pub sarcasm: f32,
    /// Sarcasm that applies only alongside negative evidence ("love how…").
    pub sarcasm_conditional: f32,
    /// Tokens consumed by a tone cue; the valence rule skips them.
    pub covered: TokenSet,
    pub flags: Flags,
    pub reasons: Vec<Reason<'a>>,
}

impl<'a> Evidence<'a> {
    pub fn new(tokens: usize) -> Self {
        Evidence {
            positive: 0.0,
            negative: 0.0,
            troll: 0.0,
            spam: 0.0,
            sarcasm: 0.0,
            sarcasm_conditional: 0.0,
            covered: TokenSet::new(tokens),
            flags: Flags::empty(),
            reasons: Vec::with_capacity(8),
        }
    }

    pub fn add(&mut self, side: Side, weight: f32, why: Why<'a>) {
        match side {
            Side::Positive => self.positive += weight,
            Side::Negative => self.negative += weight,
            Side::Troll => self.troll += weight,
            Side::Spam => self.spam += weight,
        }
        self.reasons.push(Reason {
            side: Some(side),
            pending: false,
            weight,
            why,
        });
    }

    /// Sarcasm that always counts ("🙄", "yeah right").
    pub fn add_sarcasm(&mut self, weight: f32, why: Why<'a>) {
        self.sarcasm += weight;
        self.reasons.push(Reason {
            side: Some(Side::Negative),
            pending: false,
            weight,
            why,
        });
    }

    /// Sarcasm that counts only alongside negative evidence ("love how…").
    pub fn add_conditional_sarcasm(&mut self, weight: f32, why: Why<'a>) {
        self.sarcasm_conditional += weight;
        self.reasons.push(Reason {
            side: Some(Side::Negative),
            pending: true,
            weight,
            why,
        });
    }

    pub fn flag(&mut self, flag: Flag, why: Why<'a>) {
        self.flags.insert(flag);
        self.reasons.push(Reason {
            side: None,
            pending: false,
            weight: f32::INFINITY,
            why,
        });
    }

    pub fn cover(&mut self, start: usize, end: usize) {
        for i in start..end {
            self.covered.insert(i);
        }
    }

    /// Weigh the evidence: pick the tone, the confidence and the reasons to show.
    pub fn decide(mut self, doc: &Doc<'a>, scoring: &Scoring) -> Tags {
        let scores = self.weigh(doc, scoring);
        let (tone, margin) = pick(scores.iter().map(|s| (s.0, s.1)));
        self.finish(tone, confidence(margin, scoring), None)
    }

    /// Weigh the evidence into one score per tone, in tie order (neutral first: it is the safe
    /// default). Sarcasm and '!' are applied here, and reasons that did not come to count are dropped.
    pub fn weigh(&mut self, doc: &Doc<'a>, scoring: &Scoring) -> ToneScores {
        // Sarcasm turns praise into blame.
        let conditional = self.sarcasm_conditional > 0.0 && self.negative >= 1.0;
        if !conditional {
            self.reasons.retain(|r| !r.pending);
        }
        if self.sarcasm > 0.0 || conditional {
            let moved = self.positive * scoring.sarcasm_transfer;
            self.positive -= moved;
            self.negative += moved + self.sarcasm;
            if conditional {
                self.negative += self.sarcasm_conditional;
            }
            for r in &mut self.reasons {
                if r.side == Some(Side::Positive) {
                    r.side = Some(Side::Negative);
                    r.weight *= 0.5;
                }
            }
        }
        // '!' adds to whichever polarity is stronger.
        let bangs = doc.exclamations.min(scoring.exclamation_max) as f32 * scoring.exclamation;
        if bangs > 0.0 && (self.positive > 0.0 || self.negative > 0.0) {
            if self.positive > self.negative {
                self.positive += bangs;
            } else {
                self.negative += bangs;
            }
        }

        let troll = if self.troll >= scoring.troll_min {
            self.troll
        } else {
            0.0
        };
        let spam = if self.spam >= scoring.spam_min {
            self.spam
        } else {
            0.0
        };
        // Spam dresses up as praise ("amazing deal, best price"): once a post is spam enough,
        // its positive words do not compete.
        let positive = if spam > 0.0 { 0.0 } else { self.positive };
        [
            (Tone::Neutral, scoring.neutral),
            (Tone::Complaint, self.negative),
            (Tone::Positive, positive),
            (Tone::Troll, troll),
            (Tone::Spam, spam),
        ]
    }

    /// Put the decision into [`Tags`]: flags first, then `learned` (a reason from the learned model,
    /// when it changed the tone), then the cues that support `tone`, at most [`MAX_REASONS`].
    pub fn finish(mut self, tone: Tone, confidence: f32, learned: Option<String>) -> Tags {
        let supports = |side: Option<Side>| match (tone, side) {
            (_, None) => 0,
            (Tone::Positive, Some(Side::Positive))
            | (Tone::Complaint, Some(Side::Negative))
            | (Tone::Troll, Some(Side::Troll))
            | (Tone::Spam, Some(Side::Spam)) => 1,
            _ => 2,
        };
        self.reasons.sort_by(|a, b| {
            supports(a.side)
                .cmp(&supports(b.side))
                .then(b.weight.total_cmp(&a.weight))
        });
        self.reasons.truncate(MAX_REASONS);
        let mut reasons: Vec<String> = Vec::with_capacity(MAX_REASONS);
        let flags = self.reasons.iter().take_while(|r| r.side.is_none()).count();
        reasons.extend(self.reasons[..flags].iter().map(|r| r.why.render()));
        if let Some(learned) = learned {
            reasons.push(learned);
        }
        for r in &self.reasons[flags..] {
            if reasons.len() >= MAX_REASONS {
                break;
            }
            reasons.push(r.why.render());
        }
        reasons.truncate(MAX_REASONS);
        if reasons.is_empty() {
            reasons.push(Why::Plain("no tone cue fired").to_string());
        }
        Tags {
            tone,
            flags: self.flags,
            confidence,
            reasons,
            source: TagSource::Classifier,
        }
    }
}

/// The rules' score for each tone, in tie order (the first of equal scores wins).
pub(crate) type ToneScores = [(Tone, f32); 5];

/// The best tone (ties go to the first listed) and its margin over the second best.
pub(crate) fn pick(scores: impl Iterator<Item = (Tone, f32)> + Clone) -> (Tone, f32) {
    let mut best = (Tone::Neutral, f32::MIN);
    for s in scores.clone() {
        if s.1 > best.1 {
            best = s;
        }
    }
    let second = scores
        .filter(|s| s.0 != best.0)
        .map(|s| s.1)
        .fold(f32::MIN, f32::max);
    (best.0, (best.1 - second).max(0.0))
}

/// Confidence from the margin between the best and the second score.
pub(crate) fn confidence(margin: f32, scoring: &Scoring) -> f32 {
    (1.0 - (-scoring.confidence_slope * margin).exp()).clamp(0.05, 0.99)
}

/// Text of a span, for reasons.
pub(crate) fn text_of<'a>(doc: &Doc<'a>, span: Span) -> &'a str {
    doc.original(span)
}
