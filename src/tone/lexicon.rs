//! The classifier's data: lexicons and rules under `assets/tone/`, embedded at build time and parsed
//! once. A file that does not parse is reported and replaced by an empty (or default) part, so the
//! classifier still runs on the rest.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use serde::Deserialize;

use super::pattern::PhraseSet;
use super::token::{Doc, NO_ID, TokenTables, Vocab, tokenize};

/// The embedded data files, by name.
pub(crate) const EMBEDDED: Sources = Sources {
    valence: include_str!("../../assets/tone/valence.txt"),
    modifiers: include_str!("../../assets/tone/modifiers.toml"),
    rules: include_str!("../../assets/tone/rules.toml"),
    cues: include_str!("../../assets/tone/cues.toml"),
    ae: include_str!("../../assets/tone/ae.toml"),
    medical: include_str!("../../assets/tone/medical.toml"),
    hcp: include_str!("../../assets/tone/hcp.toml"),
};

/// The text of every data file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources {
    pub valence: &'static str,
    pub modifiers: &'static str,
    pub rules: &'static str,
    pub cues: &'static str,
    pub ae: &'static str,
    pub medical: &'static str,
    pub hcp: &'static str,
}

/// A problem in one of the data files.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("assets/tone/{file}: {message}")]
pub struct LexiconError {
    pub file: &'static str,
    pub message: String,
}

impl LexiconError {
    fn new(file: &'static str, message: impl Into<String>) -> Self {
        LexiconError {
            file,
            message: message.into(),
        }
    }
}

/// What a tone cue adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Effect {
    Complaint,
    Positive,
    Troll,
    Spam,
    Sarcasm,
    /// Consumes its words without adding to any tone ("thanks in advance").
    Neutral,
}

#[derive(Debug, Clone)]
pub(crate) struct ToneGroup {
    pub effect: Effect,
    /// How the cue is named in the reasons ("negative cue").
    pub reason: String,
    pub weight: f32,
    /// Troll: only when not self-directed.
    pub aimed: bool,
    /// Sarcasm: only when the post also has negative evidence.
    pub conditional: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AeGroup {
    pub kind: String,
    pub negatable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MedRole {
    Question,
    Topic,
}

/// A group of medical phrases (its role is the set it is in: `medical` or `medical_asks`).
#[derive(Debug, Clone)]
pub(crate) struct MedGroup {
    pub kind: String,
    pub medical: bool,
}

/// Negation, contrast, intensifiers and the people words.
#[derive(Debug, Clone)]
pub(crate) struct Modifiers {
    pub negators: HashSet<String>,
    /// Words after which a negation is a hedge ("not sure").
    pub hedges: HashSet<String>,
    /// Words after which a negation means the thing goes on ("can't stop throwing up").
    pub continuers: HashSet<String>,
    pub negation_window: usize,
    pub negation_factor: f32,
    /// For a negated negative word.
    pub negation_factor_negative: f32,
    pub contrast: HashSet<String>,
    pub contrast_before: f32,
    pub contrast_after: f32,
    pub intensifiers: HashMap<String, f32>,
    pub first_person: HashSet<String>,
    pub second_person: HashSet<String>,
    pub personal: HashSet<String>,
}

impl Default for Modifiers {
    fn default() -> Self {
        Modifiers {
            negators: ["not", "no", "never"]
                .map(String::from)
                .into_iter()
                .collect(),
            hedges: HashSet::default(),
            continuers: HashSet::default(),
            negation_window: 3,
            negation_factor: -0.74,
            negation_factor_negative: -0.4,
            contrast: ["but"].map(String::from).into_iter().collect(),
            contrast_before: 0.5,
            contrast_after: 1.5,
            intensifiers: HashMap::default(),
            first_person: ["i", "me", "my"].map(String::from).into_iter().collect(),
            second_person: ["you", "your"].map(String::from).into_iter().collect(),
            personal: ["i", "me", "my"].map(String::from).into_iter().collect(),
        }
    }
}

/// How evidence becomes a tone (rules.toml `[scoring]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Scoring {
    pub neutral: f32,
    pub caps: f32,
    pub elongation: f32,
    pub exclamation: f32,
    pub exclamation_max: u32,
    pub question_positive: f32,
    /// Negative words in a question count this much ("is my flight delayed?").
    pub question_negative: f32,
    /// A negation that negates no sentiment word ("they never called") adds this to the complaint
    /// score (at most twice).
    pub bare_negation: f32,
    /// "??" or more adds this to the complaint score.
    pub repeated_question_marks: f32,
    pub sarcasm_transfer: f32,
    /// A praise word in scare quotes ('great' service) counts as sarcasm this much.
    pub scare_quotes: f32,
    pub troll_min: f32,
    pub spam_min: f32,
    pub confidence_slope: f32,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            neutral: 1.0,
            caps: 0.7,
            elongation: 0.3,
            exclamation: 0.25,
            exclamation_max: 4,
            question_positive: 0.5,
            question_negative: 1.0,
            bare_negation: 0.0,
            repeated_question_marks: 0.0,
            sarcasm_transfer: 0.9,
            scare_quotes: 1.5,
            troll_min: 2.0,
            spam_min: 3.0,
            confidence_slope: 0.9,
        }
    }
}

/// Shapes of spam (rules.toml `[spam]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SpamRules {
    pub shorteners: Vec<String>,
    pub shortener: f32,
    pub link_with_cue: f32,
    pub repeated_words: f32,
    pub symbol_run: u32,
    pub symbol_run_weight: f32,
    pub hashtags: u32,
    pub hashtags_weight: f32,
}

impl Default for SpamRules {
    fn default() -> Self {
        SpamRules {
            shorteners: vec!["bit.ly".into(), "tinyurl.com".into()],
            shortener: 1.5,
            link_with_cue: 1.0,
            repeated_words: 1.5,
            symbol_run: 6,
            symbol_run_weight: 1.0,
            hashtags: 5,
            hashtags_weight: 1.0,
        }
    }
}

/// Healthcare-professional signals (hcp.toml).
#[derive(Debug, Clone, Default)]
pub(crate) struct HcpLexicon {
    /// Case-sensitive credentials ("MD", "PharmD").
    pub credentials: Vec<String>,
    /// Case-insensitive titles ("physician", "Dr.").
    pub titles: Vec<String>,
    /// Phrases in the post text ("as a nurse").
    pub text_cues: PhraseSet<()>,
}

/// What the word lists say about one word, kept with the word in the word table.
/// [`Lexicon::annotate`] copies it into the word's tokens, so the rules test the marks without
/// looking the word up again.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WordInfo {
    /// The word's [`mark`]s.
    pub marks: u32,
    /// The bits of the phrase sets that have patterns starting with the word.
    pub starts: u32,
}

/// The numbers a word has on the lists, by word id.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Weights {
    /// With [`mark::VALENCE`].
    pub valence: f32,
    /// With [`mark::INTENSIFIER`].
    pub intensifier: f32,
}

/// The single-word lists a word is on, as bits of [`WordInfo::marks`] and of
/// [`Token::marks`](super::token::Token::marks).
pub(crate) mod mark {
    pub const NEGATOR: u32 = 1;
    pub const HEDGE: u32 = 1 << 1;
    pub const CONTINUER: u32 = 1 << 2;
    pub const CONTRAST: u32 = 1 << 3;
    pub const FIRST_PERSON: u32 = 1 << 4;
    pub const SECOND_PERSON: u32 = 1 << 5;
    pub const PERSONAL: u32 = 1 << 6;
    pub const MEDICAL_CONTEXT: u32 = 1 << 7;
    /// The word has a valence.
    pub const VALENCE: u32 = 1 << 8;
    pub const INTENSIFIER: u32 = 1 << 9;
    /// (Tokens only.) The de-elongated form has a valence.
    pub const ALT_VALENCE: u32 = 1 << 10;
}

/// A phrase set, whatever its payload, as [`Lexicon::index_words`] links it.
trait LinkedSet {
    fn first_words(&self) -> Box<dyn Iterator<Item = &str> + '_>;
    fn link(&mut self, vocab: &Vocab<WordInfo>, bit: u32);
}

impl<G> LinkedSet for PhraseSet<G> {
    fn first_words(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(PhraseSet::first_words(self))
    }

    fn link(&mut self, vocab: &Vocab<WordInfo>, bit: u32) {
        PhraseSet::link(self, vocab, bit);
    }
}

/// Everything the classifier knows, parsed from the data files.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lexicon {
    pub tables: TokenTables,
    pub valence: HashMap<String, f32>,
    pub modifiers: Modifiers,
    pub scoring: Scoring,
    pub spam: SpamRules,
    pub cues: PhraseSet<ToneGroup>,
    pub ae: PhraseSet<AeGroup>,
    /// Medical topics; the asking phrases are apart (`medical_asks`), so that a post that neither
    /// asks nor has a '?' is not searched for topics.
    pub medical: PhraseSet<MedGroup>,
    pub medical_asks: PhraseSet<MedGroup>,
    pub medical_context: HashSet<String>,
    pub hcp: HcpLexicon,
    /// Every word of the single-word lists above and every first word of a phrase list, with
    /// what the lists say of it; `weights[id]` holds its numbers.
    vocab: Vocab<WordInfo>,
    weights: Vec<Weights>,
}

// ---- file formats ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModifiersFile {
    negation: NegationSpec,
    contrast: ContrastSpec,
    #[serde(default)]
    intensifiers: HashMap<String, f32>,
    #[serde(default)]
    expansions: HashMap<String, String>,
    tokens: TokensSpec,
    people: PeopleSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NegationSpec {
    window: usize,
    factor: f32,
    factor_negative: f32,
    words: Vec<String>,
    #[serde(default)]
    hedges: Vec<String>,
    #[serde(default)]
    continuers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContrastSpec {
    words: Vec<String>,
    before: f32,
    after: f32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensSpec {
    emoticons: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeopleSpec {
    first_person: Vec<String>,
    second_person: Vec<String>,
    personal: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    scoring: Scoring,
    #[serde(default)]
    spam: SpamRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CueGroupSpec {
    effect: Effect,
    reason: String,
    weight: f32,
    #[serde(default)]
    aimed: bool,
    #[serde(default)]
    conditional: bool,
    phrases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CuesFile {
    group: Vec<CueGroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AeGroupSpec {
    kind: String,
    #[serde(default)]
    negatable: bool,
    phrases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AeFile {
    group: Vec<AeGroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MedGroupSpec {
    role: MedRole,
    kind: String,
    #[serde(default)]
    medical: bool,
    phrases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MedicalFile {
    context: Vec<String>,
    group: Vec<MedGroupSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HcpFile {
    credentials: Vec<String>,
    titles: Vec<String>,
    #[serde(default)]
    text_cues: Vec<String>,
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
    errors: &mut Vec<LexiconError>,
) -> Option<T> {
    match toml::from_str::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(LexiconError::new(file, e.to_string().trim_end().to_owned()));
            None
        }
    }
}

/// The normal form of a single lexicon word, as the tokeniser would produce it.
fn normalise_word(word: &str, tables: &TokenTables) -> Option<String> {
    let doc = tokenize(word, tables);
    (doc.len() == 1).then(|| doc.norm(0).to_owned())
}

fn word_set(
    file: &'static str,
    words: &[String],
    tables: &TokenTables,
    errors: &mut Vec<LexiconError>,
) -> HashSet<String> {
    let mut set = HashSet::with_capacity_and_hasher(words.len(), Default::default());
    for w in words {
        match normalise_word(w, tables) {
            Some(n) => {
                set.insert(n);
            }
            None => errors.push(LexiconError::new(
                file,
                format!("'{w}' is not a single word"),
            )),
        }
    }
    set
}

fn report_patterns(
    file: &'static str,
    bad: Vec<(String, super::pattern::PatternError)>,
    errors: &mut Vec<LexiconError>,
) {
    for (phrase, e) in bad {
        errors.push(LexiconError::new(
            file,
            format!("phrase '{phrase}': {}", e.0),
        ));
    }
}

/// Parse the valence list: `token weight` a line, `#` comments.
fn parse_valence(
    text: &str,
    tables: &TokenTables,
    errors: &mut Vec<LexiconError>,
) -> HashMap<String, f32> {
    const FILE: &str = "valence.txt";
    let mut map = HashMap::with_capacity_and_hasher(600, Default::default());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(word), Some(weight), None) = (fields.next(), fields.next(), fields.next()) else {
            errors.push(LexiconError::new(
                FILE,
                format!("line {}: expected 'token weight', got '{line}'", n + 1),
            ));
            continue;
        };
        let Ok(weight) = weight.parse::<f32>() else {
            errors.push(LexiconError::new(
                FILE,
                format!("line {}: weight '{weight}' is not a number", n + 1),
            ));
            continue;
        };
        if !(-4.0..=4.0).contains(&weight) {
            errors.push(LexiconError::new(
                FILE,
                format!("line {}: weight {weight} is outside -4..4", n + 1),
            ));
            continue;
        }
        let Some(norm) = normalise_word(word, tables) else {
            errors.push(LexiconError::new(
                FILE,
                format!("line {}: '{word}' is not a single token", n + 1),
            ));
            continue;
        };
        if map.insert(norm, weight).is_some() {
            errors.push(LexiconError::new(
                FILE,
                format!("line {}: '{word}' is listed twice", n + 1),
            ));
        }
    }
    map
}

impl Lexicon {
    /// The lexicon built from the embedded files, and any problems found in them.
    pub fn embedded() -> (Lexicon, Vec<LexiconError>) {
        Lexicon::from_sources(&EMBEDDED)
    }

    pub fn from_sources(src: &Sources) -> (Lexicon, Vec<LexiconError>) {
        let mut errors = Vec::new();
        let mut lex = Lexicon::default();

        // Tokeniser tables and modifiers come first: every other list is normalised with them.
        if let Some(m) = parse_toml::<ModifiersFile>("modifiers.toml", src.modifiers, &mut errors) {
            let mut emoticons = m.tokens.emoticons;
            emoticons.sort_by_key(|e| std::cmp::Reverse(e.len()));
            lex.tables.emoticons = emoticons;
            lex.tables.expansions = m
                .expansions
                .into_iter()
                .map(|(k, v)| (k, v.split_whitespace().map(String::from).collect()))
                .collect();
            let t = &lex.tables;
            let file = "modifiers.toml";
            lex.modifiers = Modifiers {
                negators: word_set(file, &m.negation.words, t, &mut errors),
                hedges: word_set(file, &m.negation.hedges, t, &mut errors),
                continuers: word_set(file, &m.negation.continuers, t, &mut errors),
                negation_window: m.negation.window,
                negation_factor: m.negation.factor,
                negation_factor_negative: m.negation.factor_negative,
                contrast: word_set(file, &m.contrast.words, t, &mut errors),
                contrast_before: m.contrast.before,
                contrast_after: m.contrast.after,
                intensifiers: m
                    .intensifiers
                    .iter()
                    .filter_map(|(k, v)| normalise_word(k, t).map(|n| (n, *v)))
                    .collect(),
                first_person: word_set(file, &m.people.first_person, t, &mut errors),
                second_person: word_set(file, &m.people.second_person, t, &mut errors),
                personal: word_set(file, &m.people.personal, t, &mut errors),
            };
        }
        let tables = lex.tables.clone();

        lex.valence = parse_valence(src.valence, &tables, &mut errors);

        if let Some(r) = parse_toml::<RulesFile>("rules.toml", src.rules, &mut errors) {
            lex.scoring = r.scoring;
            lex.spam = r.spam;
            for s in &mut lex.spam.shorteners {
                s.make_ascii_lowercase();
            }
        }

        if let Some(c) = parse_toml::<CuesFile>("cues.toml", src.cues, &mut errors) {
            for g in c.group {
                let group = ToneGroup {
                    effect: g.effect,
                    reason: g.reason,
                    weight: g.weight,
                    aimed: g.aimed,
                    conditional: g.conditional,
                };
                let bad = lex
                    .cues
                    .add_group(group, g.phrases.iter().map(String::as_str), &tables);
                report_patterns("cues.toml", bad, &mut errors);
            }
        }

        if let Some(a) = parse_toml::<AeFile>("ae.toml", src.ae, &mut errors) {
            for g in a.group {
                let group = AeGroup {
                    kind: g.kind,
                    negatable: g.negatable,
                };
                let bad = lex
                    .ae
                    .add_group(group, g.phrases.iter().map(String::as_str), &tables);
                report_patterns("ae.toml", bad, &mut errors);
            }
        }

        if let Some(m) = parse_toml::<MedicalFile>("medical.toml", src.medical, &mut errors) {
            lex.medical_context = word_set("medical.toml", &m.context, &tables, &mut errors);
            for g in m.group {
                let group = MedGroup {
                    kind: g.kind,
                    medical: g.medical,
                };
                let set = match g.role {
                    MedRole::Question => &mut lex.medical_asks,
                    MedRole::Topic => &mut lex.medical,
                };
                let bad = set.add_group(group, g.phrases.iter().map(String::as_str), &tables);
                report_patterns("medical.toml", bad, &mut errors);
            }
        }

        if let Some(h) = parse_toml::<HcpFile>("hcp.toml", src.hcp, &mut errors) {
            lex.hcp.credentials = h.credentials;
            lex.hcp.titles = h.titles;
            let bad =
                lex.hcp
                    .text_cues
                    .add_group((), h.text_cues.iter().map(String::as_str), &tables);
            report_patterns("hcp.toml", bad, &mut errors);
        }

        lex.index_words(&mut []);
        (lex, errors)
    }

    /// Gather the single-word lists and the first words of the phrase sets (and of `extra`) into
    /// the word table, and link the phrase sets to it.
    pub fn index_words(&mut self, extra: &mut [&mut PhraseSet<()>]) {
        let mut vocab: Vocab<WordInfo> = Vocab::default();
        let mut weights: Vec<Weights> = Vec::new();
        let mut note = |w: &str, set: &dyn Fn(&mut WordInfo, &mut Weights)| {
            let id = vocab.intern(w) as usize;
            if id == weights.len() {
                weights.push(Weights::default());
            }
            set(vocab.value_mut(id as u32), &mut weights[id]);
        };
        // First words first: their ids are small, so each set's index by id stays short.
        let mut sets: Vec<&mut dyn LinkedSet> = vec![
            &mut self.cues,
            &mut self.ae,
            &mut self.medical,
            &mut self.medical_asks,
            &mut self.hcp.text_cues,
        ];
        sets.extend(extra.iter_mut().map(|s| &mut **s as &mut dyn LinkedSet));
        // One bit per set in `WordInfo::starts` (a set past the 32nd is looked up by hash).
        let bit = |k: usize| 1u32.checked_shl(k as u32).unwrap_or(0);
        for (k, set) in sets.iter().enumerate() {
            for w in set.first_words() {
                note(w, &|i, _| i.starts |= bit(k));
            }
        }
        for (w, &v) in &self.valence {
            note(w, &|i, n| {
                i.marks |= mark::VALENCE;
                n.valence = v;
            });
        }
        let m = &self.modifiers;
        for (w, &v) in &m.intensifiers {
            note(w, &|i, n| {
                i.marks |= mark::INTENSIFIER;
                n.intensifier = v;
            });
        }
        let mut mark_all = |set: &HashSet<String>, bit: u32| {
            for w in set {
                note(w, &|i, _| i.marks |= bit);
            }
        };
        mark_all(&m.negators, mark::NEGATOR);
        mark_all(&m.hedges, mark::HEDGE);
        mark_all(&m.continuers, mark::CONTINUER);
        mark_all(&m.contrast, mark::CONTRAST);
        mark_all(&m.first_person, mark::FIRST_PERSON);
        mark_all(&m.second_person, mark::SECOND_PERSON);
        mark_all(&m.personal, mark::PERSONAL);
        mark_all(&self.medical_context, mark::MEDICAL_CONTEXT);
        for (k, set) in sets.iter_mut().enumerate() {
            if bit(k) != 0 {
                set.link(&vocab, bit(k));
            }
        }
        self.vocab = vocab;
        self.weights = weights;
    }

    /// Give each token of `doc` its word ids, marks and phrase-set bits, for the rules and
    /// linked phrase sets.
    pub fn annotate(&self, doc: &mut Doc<'_>) {
        doc.starts = 0;
        for i in 0..doc.len() {
            let word = self.vocab.find(doc.hash(i), doc.norm(i));
            let alt = doc.alt_hash(i).zip(doc.alt(i));
            let alt_word = alt.and_then(|(hash, alt)| self.vocab.find(hash, alt));
            let t = &mut doc.tokens[i];
            (t.word, t.marks, t.starts) =
                word.map_or((NO_ID, 0, 0), |(id, w)| (id, w.marks, w.starts));
            t.alt_word = NO_ID;
            if let Some((id, w)) = alt_word {
                t.alt_word = id;
                t.starts |= w.starts;
                if w.marks & mark::VALENCE != 0 {
                    t.marks |= mark::ALT_VALENCE;
                }
            }
            doc.starts |= t.starts;
        }
        doc.vocab = self.vocab.stamp();
    }

    fn weights(&self, id: u32) -> Weights {
        self.weights.get(id as usize).copied().unwrap_or_default()
    }

    /// The valence of token `i` of an annotated document, or else of its de-elongated form.
    #[inline]
    pub fn valence(&self, doc: &Doc<'_>, i: usize) -> Option<f32> {
        let t = &doc.tokens[i];
        if t.marks & mark::VALENCE != 0 {
            Some(self.weights(t.word).valence)
        } else if t.marks & mark::ALT_VALENCE != 0 {
            Some(self.weights(t.alt_word).valence)
        } else {
            None
        }
    }

    /// The intensifier weight of token `i` of an annotated document.
    #[inline]
    pub fn intensifier(&self, doc: &Doc<'_>, i: usize) -> Option<f32> {
        let t = &doc.tokens[i];
        (t.marks & mark::INTENSIFIER != 0).then(|| self.weights(t.word).intensifier)
    }
}
