//! Learning from corrections: a small multinomial logistic regression that corrects the rules.
//!
//! Every retag is a labelled example. The model reads the same tokens as the rules ([`super::token`])
//! as hashed features: words (common function words only in pairs), words under a negation
//! (`not good` is its own feature, not `good`), pairs of neighbouring words in a sentence, and the
//! rules' own tone scores. It is trained *on top of* the rules: their scores are a fixed offset in
//! its logits, so it learns only where this desk's posts differ from what the rules say, and a
//! handful of corrections about one topic ("copay card … declined") can move similar posts without
//! disturbing the rest.
//!
//! Blend, for tone `t`: `z_t = beta · rules_t + w · Σ_f x_f θ_f,t`, with `w = n / (n + k)` for a
//! model trained on `n` corrections (`k` = 20). The same `w` is used in training, which with the
//! L2 penalty keeps the rules dominant at small `n`: after 10 corrections the model changes about
//! 2% of tones, after 100 about 13%. It is trained with FTRL-proximal (per-feature learning rates,
//! exact L2) for a fixed number of deterministic epochs. Risk flags are never touched.
//!
//! The model is arrays of numbers keyed by 64-bit hashes of features; it holds no post text,
//! persists as JSON ([`Model::to_json`]) and trains in about 0.1 s on 3,000 corrections.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::{Author, Tags, Tone};

use super::eval::Scores;
use super::evidence::{Evidence, Quote, ToneScores};
use super::lexicon::{Lexicon, Scoring, mark};
use super::rules::Engine;
use super::token::{Doc, Kind, fnv};
use super::{Classifier, ToneConfig};

/// One correction: the text of a mention and the tone an operator gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub tone: Tone,
}

/// How the model is trained and blended. [`Params::DEFAULT`] is what [`Model::train`] uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    /// Scale of the rules' scores in the logits (their inverse temperature).
    pub beta: f32,
    /// The model's weight is `n / (n + k)` after `n` corrections.
    pub k: f32,
    /// L1 and L2 penalties on the weights (on the summed loss, so they matter less as data grows).
    pub l1: f32,
    pub l2: f32,
    /// FTRL learning rate (alpha).
    pub rate: f32,
    pub epochs: usize,
    /// Learn features of pairs of neighbouring words.
    pub bigrams: bool,
    /// Learn a prior per tone.
    pub bias: bool,
    /// Learn from the rules' scores as features too.
    pub meta: bool,
    /// Leave out single function words ("the", "to", "I") as features of their own.
    pub stop: bool,
    /// Drop features whose weighted effect on every tone is below this (keeps the JSON small).
    pub prune: f32,
}

impl Params {
    pub const DEFAULT: Params = Params {
        beta: 1.0,
        k: 20.0,
        l1: 0.0,
        l2: 20.0,
        rate: 1.0,
        epochs: 12,
        bigrams: true,
        bias: false,
        meta: true,
        stop: true,
        prune: 0.01,
    };
}

/// Tones in the order of [`Tone::ALL`]; the model's class index is the position there.
const CLASSES: usize = 5;

fn class_of(tone: Tone) -> usize {
    Tone::ALL.iter().position(|t| *t == tone).unwrap_or(1)
}

/// Version of the feature hashing and of the JSON layout; a model of another version is refused.
const FORMAT: u32 = 1;

/// A trained model: one row of per-tone weights for every feature seen in training.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "ModelData", into = "ModelData")]
pub struct Model {
    examples: usize,
    per_tone: [usize; CLASSES],
    beta: f32,
    weight: f32,
    bias: [f32; CLASSES],
    /// The weights of each feature, by its hash (one lookup per feature of a post).
    index: HashMap<u64, [f32; CLASSES], BuildHasherDefault<IdHasher>>,
    /// The features in the order they are persisted.
    keys: Vec<u64>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("examples", &self.examples)
            .field("per_tone", &self.per_tone)
            .field("weight", &self.weight)
            .field("features", &self.keys.len())
            .finish()
    }
}

/// The persisted form of a [`Model`].
#[derive(Serialize, Deserialize)]
struct ModelData {
    format: u32,
    examples: usize,
    /// Corrections per tone, in the order positive, neutral, complaint, troll, spam.
    per_tone: [usize; CLASSES],
    beta: f32,
    weight: f32,
    bias: [f32; CLASSES],
    /// Feature hashes; `weights[i]` belongs to `features[i]`.
    features: Vec<u64>,
    weights: Vec<[f32; CLASSES]>,
}

impl From<Model> for ModelData {
    fn from(m: Model) -> Self {
        ModelData {
            format: FORMAT,
            examples: m.examples,
            per_tone: m.per_tone,
            beta: m.beta,
            weight: m.weight,
            bias: m.bias,
            weights: m.keys.iter().map(|k| m.index[k]).collect(),
            features: m.keys,
        }
    }
}

impl TryFrom<ModelData> for Model {
    type Error = String;

    fn try_from(d: ModelData) -> Result<Self, String> {
        if d.format != FORMAT {
            return Err(format!(
                "tone model format {} is not supported (expected {FORMAT}); retrain it",
                d.format
            ));
        }
        if d.features.len() != d.weights.len() {
            return Err(format!(
                "tone model has {} features but {} weight rows",
                d.features.len(),
                d.weights.len()
            ));
        }
        let finite = |xs: &[f32]| xs.iter().all(|x| x.is_finite());
        if !(d.beta.is_finite() && d.beta > 0.0 && (0.0..=1.0).contains(&d.weight)) {
            return Err("tone model has an invalid blend weight".into());
        }
        if !finite(&d.bias) || !d.weights.iter().all(|r| finite(r)) {
            return Err("tone model has a weight that is not a finite number".into());
        }
        if d.per_tone.iter().sum::<usize>() != d.examples {
            return Err("tone model's counts per tone do not add up to its examples".into());
        }
        let mut index = HashMap::with_capacity_and_hasher(d.features.len(), Default::default());
        for (&key, &row) in d.features.iter().zip(&d.weights) {
            if index.insert(key, row).is_some() {
                return Err("tone model lists a feature twice".into());
            }
        }
        Ok(Model {
            examples: d.examples,
            per_tone: d.per_tone,
            beta: d.beta,
            weight: d.weight,
            bias: d.bias,
            index,
            keys: d.features,
        })
    }
}

/// The rules, with no configuration: tone does not depend on products, crisis words or handles.
fn rules() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(Lexicon::embedded().0, &ToneConfig::default()))
}

/// The rules' scores as logits, indexed like [`Tone::ALL`].
fn rule_logits(scores: &ToneScores, beta: f32) -> [f32; CLASSES] {
    let mut z = [0.0; CLASSES];
    for &(tone, s) in scores {
        z[class_of(tone)] = beta * s;
    }
    z
}

fn softmax(z: &[f32; CLASSES]) -> [f32; CLASSES] {
    let max = z.iter().copied().fold(f32::MIN, f32::max);
    let mut p = [0.0; CLASSES];
    let mut sum = 0.0;
    for (pi, zi) in p.iter_mut().zip(z) {
        *pi = (zi - max).exp();
        sum += *pi;
    }
    for pi in &mut p {
        *pi /= sum;
    }
    p
}

impl Model {
    /// Train on corrections (the latest tone per mention). Deterministic; 3,000 corrections take
    /// about 0.1 s in a release build.
    pub fn train(examples: &[Example]) -> Model {
        Model::train_with(examples, &Params::DEFAULT)
    }

    pub(crate) fn train_with(examples: &[Example], params: &Params) -> Model {
        let engine = rules();
        let n = examples.len();
        let weight = if n == 0 {
            0.0
        } else {
            n as f32 / (n as f32 + params.k)
        };
        let mut index: HashMap<u64, u32, BuildHasherDefault<IdHasher>> = HashMap::default();
        let mut keys: Vec<u64> = Vec::new();
        let mut per_tone = [0usize; CLASSES];
        // Each example: its feature rows (flattened), the rules' logits and the gold class.
        let mut feats: Vec<(u32, f32)> = Vec::new();
        let mut data: Vec<(usize, usize, [f32; CLASSES], usize)> = Vec::with_capacity(n);
        for ex in examples {
            let gold = class_of(ex.tone);
            per_tone[gold] += 1;
            let start = feats.len();
            let offset = engine.with_scores(&ex.text, |doc, scores| {
                features(
                    doc,
                    &engine.lex,
                    scores,
                    (params.bigrams, params.meta, params.stop),
                    |key, x, _, _| {
                        let next = keys.len() as u32;
                        let row = *index.entry(key).or_insert_with(|| {
                            keys.push(key);
                            next
                        });
                        feats.push((row, x));
                    },
                );
                rule_logits(scores, params.beta)
            });
            data.push((start, feats.len(), offset, gold));
        }

        // FTRL-proximal (per-coordinate learning rates, L1 and L2 applied exactly and lazily):
        // it minimises the summed log-loss of the blend plus the penalties, so a feature's weight
        // grows with the evidence for it, and the rules' offset is the prior.
        let mut z = vec![[0.0f32; CLASSES]; keys.len() + 1];
        let mut acc = vec![[0.0f32; CLASSES]; keys.len() + 1];
        let bias_row = keys.len();
        let ftrl = |z: f32, n: f32, l1: f32| -> f32 {
            if z.abs() <= l1 {
                0.0
            } else {
                -(z - z.signum() * l1) / ((1.0 + n.sqrt()) / params.rate + params.l2)
            }
        };
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..params.epochs {
            // Fisher–Yates with a fixed seed: training is reproducible.
            for i in (1..order.len()).rev() {
                rng = splitmix(rng);
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for &e in &order {
                let (a, b, offset, gold) = data[e];
                let mut logit = offset;
                for c in 0..CLASSES {
                    let mut s = ftrl(z[bias_row][c], acc[bias_row][c], 0.0);
                    for &(f, x) in &feats[a..b] {
                        let f = f as usize;
                        s += x * ftrl(z[f][c], acc[f][c], params.l1);
                    }
                    logit[c] += weight * s;
                }
                let p = softmax(&logit);
                for c in 0..CLASSES {
                    let y = if c == gold { 1.0 } else { 0.0 };
                    let g = weight * (p[c] - y);
                    let bias = params.bias.then_some((bias_row as u32, 1.0));
                    for (f, x) in feats[a..b].iter().copied().chain(bias) {
                        let f = f as usize;
                        let g = g * x;
                        let l1 = if f == bias_row { 0.0 } else { params.l1 };
                        let w = ftrl(z[f][c], acc[f][c], l1);
                        let n_old = acc[f][c];
                        let n_new = n_old + g * g;
                        let sigma = (n_new.sqrt() - n_old.sqrt()) / params.rate;
                        z[f][c] += g - sigma * w;
                        acc[f][c] = n_new;
                    }
                }
            }
        }
        let rows: Vec<[f32; CLASSES]> = (0..keys.len())
            .map(|f| std::array::from_fn(|c| ftrl(z[f][c], acc[f][c], params.l1)))
            .collect();
        let bias: [f32; CLASSES] =
            std::array::from_fn(|c| ftrl(z[bias_row][c], acc[bias_row][c], 0.0));

        // Keep the features that matter, rounded: the JSON stays small.
        let round = |x: f32| (x * 1e3).round() / 1e3;
        let mut kept_keys = Vec::new();
        let mut kept_rows = Vec::new();
        for (key, row) in keys.into_iter().zip(rows) {
            if row.iter().any(|w| (w * weight).abs() >= params.prune) {
                kept_keys.push(key);
                kept_rows.push(row.map(round));
            }
        }
        let mut index = HashMap::with_capacity_and_hasher(kept_keys.len(), Default::default());
        for (&key, &row) in kept_keys.iter().zip(&kept_rows) {
            index.insert(key, row);
        }
        Model {
            examples: n,
            per_tone,
            beta: params.beta,
            weight,
            bias: bias.map(round),
            index,
            keys: kept_keys,
        }
    }

    /// How many corrections the model learned from.
    pub fn examples(&self) -> usize {
        self.examples
    }

    /// How many corrections it learned from, per tone.
    pub fn examples_per_tone(&self) -> Vec<(Tone, usize)> {
        Tone::ALL.into_iter().zip(self.per_tone).collect()
    }

    /// The model as JSON, for the store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A model from [`Model::to_json`]; anything else is an error.
    pub fn from_json(s: &str) -> Result<Model, String> {
        serde_json::from_str(s).map_err(|e| format!("tone model: {e}"))
    }

    /// The model's logits (times its weight) for a tokenised post, indexed like [`Tone::ALL`].
    fn logits(&self, doc: &Doc<'_>, lex: &Lexicon, scores: &ToneScores) -> [f32; CLASSES] {
        let mut s = self.bias;
        features(doc, lex, scores, (true, true, false), |key, x, _, _| {
            if let Some(row) = self.index.get(&key) {
                for c in 0..CLASSES {
                    s[c] += x * row[c];
                }
            }
        });
        s.map(|x| x * self.weight)
    }

    /// Blend the rules' evidence with the model into tags. Flags stay as the rules found them.
    pub(crate) fn decide<'a>(&self, mut ev: Evidence<'a>, doc: &Doc<'a>, lex: &Lexicon) -> Tags {
        let scoring: &Scoring = &lex.scoring;
        let scores = ev.weigh(doc, scoring);
        let (rules_tone, _) = super::evidence::pick(scores.iter().copied());
        let mut z = rule_logits(&scores, self.beta);
        let learned = self.logits(doc, lex, &scores);
        for c in 0..CLASSES {
            z[c] += learned[c];
        }
        // Same tie order as the rules; the margin is put back on the rules' scale so that a model
        // that adds nothing leaves the confidence as it was.
        let (tone, margin) =
            super::evidence::pick(scores.iter().map(|&(t, _)| (t, z[class_of(t)])));
        let confidence = super::evidence::confidence(margin / self.beta, scoring);
        let reason = (tone != rules_tone).then(|| self.reason(doc, lex, &scores, rules_tone, tone));
        ev.finish(tone, confidence, reason)
    }

    /// Why the model moved the tone from `from` to `to`: the feature that pushed hardest.
    fn reason(
        &self,
        doc: &Doc<'_>,
        lex: &Lexicon,
        scores: &ToneScores,
        from: Tone,
        to: Tone,
    ) -> String {
        let (a, b) = (class_of(from), class_of(to));
        let mut best: Option<(f32, usize, usize)> = None;
        features(
            doc,
            lex,
            scores,
            (true, true, false),
            |key, x, start, end| {
                if start == end {
                    return;
                }
                if let Some(row) = self.index.get(&key) {
                    let push = x * (row[b] - row[a]);
                    if push > 0.0 && best.is_none_or(|(p, _, _)| push > p) {
                        best = Some((push, start, end));
                    }
                }
            },
        );
        let what = match best {
            Some((_, start, end)) => {
                let span = doc.tokens[start].span.join(doc.tokens[end - 1].span);
                Quote(doc.original(span)).to_string()
            }
            None => "posts like this".to_owned(),
        };
        let n = self.examples;
        let s = if n == 1 { "" } else { "s" };
        format!("learned: {what} → {to} (from {n} correction{s})")
    }
}

// ---- features --------------------------------------------------------------------------------

/// Salts that keep the kinds of feature apart.
const NEGATED: u64 = 0x6E65_6761_7465_6421;
const BIGRAM: u64 = 0x6269_6772_616D_2121;
const META: u64 = 0x7275_6C65_7321_2121;

/// Calls `f(key, value, start, end)` for every feature of a tokenised post: each token, or under
/// a negation (up to the negation window, within the clause) the token marked as negated; each pair
/// of neighbouring tokens in a sentence; and, when `meta`, the rules' own scores (so the model
/// can re-weigh them for this brand; these cover no tokens, `start == end`). `start..end` are the
/// tokens a feature covers, for reasons.
fn features(
    doc: &Doc<'_>,
    lex: &Lexicon,
    scores: &ToneScores,
    (bigrams, meta, stop): (bool, bool, bool),
    mut f: impl FnMut(u64, f32, usize, usize),
) {
    if meta {
        for &(tone, score) in scores.iter().filter(|s| s.0 != Tone::Neutral) {
            let x = score.clamp(0.0, 6.0) * 0.5;
            if x > 0.0 {
                f(splitmix(META ^ class_of(tone) as u64), x, 0, 0);
            }
        }
    }
    let window = lex.modifiers.negation_window;
    let num = fnv("<num>");
    let mut negated_by: Option<usize> = None;
    let mut left = 0usize;
    let mut prev: Option<u64> = None;
    for i in 0..doc.len() {
        let tok = &doc.tokens[i];
        // Numbers are one feature, "<num>"; a token's hash is the fnv of its normal form.
        let number = tok.kind == Kind::Number;
        let h = if number { num } else { doc.hash(i) };
        if tok.clause_start {
            left = 0;
        }
        if bigrams
            && let Some(p) = prev
            && doc.tokens[i - 1].sentence == tok.sentence
        {
            f(splitmix(p.rotate_left(21) ^ h ^ BIGRAM), 1.0, i - 1, i + 1);
        }
        prev = Some(h);
        if !number && doc.marked(i, mark::NEGATOR) {
            f(splitmix(h), 1.0, i, i + 1);
            negated_by = Some(i);
            left = window;
        } else if left > 0 {
            left -= 1;
            f(splitmix(h ^ NEGATED), 1.0, negated_by.unwrap_or(i), i + 1);
        } else if !(stop && !number && is_stop(doc.norm(i))) {
            f(splitmix(h), 1.0, i, i + 1);
        }
    }
}

/// Function words too common to say anything about tone on their own (they still count in pairs).
fn is_stop(word: &str) -> bool {
    matches!(
        word,
        "<user>"
            | "<url>"
            | "the"
            | "a"
            | "an"
            | "to"
            | "of"
            | "and"
            | "or"
            | "in"
            | "on"
            | "at"
            | "for"
            | "from"
            | "i"
            | "my"
            | "me"
            | "we"
            | "our"
            | "you"
            | "your"
            | "it"
            | "is"
            | "was"
            | "are"
            | "be"
            | "this"
            | "that"
            | "with"
            | "just"
    )
}

/// The splitmix64 finaliser: mixes a hash so every bit depends on every input bit.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The keys are already well-mixed hashes: use them as they are.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

// ---- evaluation ------------------------------------------------------------------------------

/// One point of a learning curve: trained on the first `k` rows, evaluated on the `n_eval` after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    pub k: usize,
    pub n_eval: usize,
    pub rules_accuracy: f64,
    pub rules_macro_f1: f64,
    pub blended_accuracy: f64,
    pub blended_macro_f1: f64,
}

/// The tone a labelled row teaches: positive, neutral, or a negative kind ("negative" is a complaint).
fn label_tone(label: &str) -> Option<Tone> {
    match label.trim() {
        "negative" => Some(Tone::Complaint),
        other => other.parse().ok(),
    }
}

/// A learning curve over labelled `(label, text)` rows (labels positive | neutral | negative, or a
/// tone): for each `k`, train on the first `k` rows as if they were corrections (negative taught as
/// complaint) and score rules only and rules + model on the rows after. Rows with another label
/// are skipped; a `k` that leaves nothing to evaluate gives no point.
pub fn learning_curve(rows: &[(String, String)], ks: &[usize]) -> Vec<CurvePoint> {
    learning_curve_with(rows, ks, &Params::DEFAULT)
}

pub(crate) fn learning_curve_with(
    rows: &[(String, String)],
    ks: &[usize],
    params: &Params,
) -> Vec<CurvePoint> {
    let labelled: Vec<Example> = rows
        .iter()
        .filter_map(|(label, text)| {
            label_tone(label).map(|tone| Example {
                text: text.clone(),
                tone,
            })
        })
        .collect();
    let classifier = Classifier::new(ToneConfig::default());
    let author = Author::default();
    let mut points = Vec::new();
    for &k in ks {
        if k >= labelled.len() {
            continue;
        }
        let (train, eval) = labelled.split_at(k);
        classifier.set_model(None);
        let mut rules_only = Scores::default();
        for ex in eval {
            rules_only.add_tones(ex.tone, classifier.classify(&ex.text, &author).tone);
        }
        classifier.set_model(Some(Model::train_with(train, params)));
        let mut blended = Scores::default();
        for ex in eval {
            blended.add_tones(ex.tone, classifier.classify(&ex.text, &author).tone);
        }
        classifier.set_model(None);
        points.push(CurvePoint {
            k,
            n_eval: eval.len(),
            rules_accuracy: rules_only.accuracy(),
            rules_macro_f1: rules_only.macro_f1(),
            blended_accuracy: blended.accuracy(),
            blended_macro_f1: blended.macro_f1(),
        });
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unigram features of `text` (token features only), with the text each covers.
    fn unigrams(text: &str) -> Vec<(u64, String)> {
        let engine = rules();
        engine.with_scores(text, |doc, scores| {
            let mut out = Vec::new();
            features(
                doc,
                &engine.lex,
                scores,
                (false, false, true),
                |key, _, s, e| {
                    let span = doc.tokens[s].span.join(doc.tokens[e - 1].span);
                    out.push((key, doc.original(span).to_owned()));
                },
            );
            out
        })
    }

    #[test]
    fn negation_makes_its_own_features() {
        let good = unigrams("good")[0].0;
        let not_good = unigrams("not good");
        assert_eq!(not_good.len(), 2, "{not_good:?}");
        assert_ne!(not_good[1].0, good);
        assert_eq!(not_good[1].1, "not good");
        // "didn't" is "did not"; the negation ends at a clause break.
        let f = unigrams("didn't help, fine");
        let help = unigrams("help")[0].0;
        let fine = unigrams("fine")[0].0;
        assert!(f.iter().all(|(k, _)| *k != help), "{f:?}");
        assert!(f.iter().any(|(k, _)| *k == fine), "{f:?}");
    }

    #[test]
    fn function_words_count_only_in_pairs() {
        assert!(unigrams("the to my").is_empty());
        assert_eq!(unigrams("the copay").len(), 1);
    }

    #[test]
    fn hashing_is_stable() {
        // Persisted models depend on these values never changing.
        assert_eq!(splitmix(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(fnv(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
