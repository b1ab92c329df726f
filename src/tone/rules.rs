//! The rule pipeline. Each rule reads the tokenised post (and the author) and adds evidence; the
//! evidence is weighed once at the end ([`Evidence::decide`]). A new rule is one more type that
//! implements [`Rule`], added to [`Engine::rules`].

use rustc_hash::FxHashSet as HashSet;
use std::cell::Cell;
use std::fmt;

use regex::Regex;

use crate::domain::{Author, Flag};

use super::ToneConfig;
use super::evidence::{Evidence, Side, ToneScores, Why, text_of};
use super::learn::Model;
use super::lexicon::{Effect, Lexicon, mark};
use super::pattern::{Match, PhraseSet};
use super::token::{Buffers, Doc, Kind, Span, tokenize, tokenize_into};

/// A configured product name, normalised like post text.
#[derive(Debug, Clone)]
pub(crate) struct Product {
    pub name: String,
    tokens: Vec<String>,
    /// One less than the characters of the first word: no shorter word is within one edit of it.
    min_len: usize,
}

/// A product found in a post.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProductHit {
    pub product: usize,
    pub start: usize,
    pub end: usize,
}

/// What every rule may read about one post.
pub(crate) struct Ctx<'a, 'd> {
    pub doc: &'d Doc<'a>,
    pub author: &'a Author,
    pub lex: &'a Lexicon,
    pub engine: &'a Engine,
    /// Configured products named in the post.
    pub products: Vec<ProductHit>,
    /// The post speaks of the author or someone close ("I", "my son").
    pub personal: bool,
}

impl Ctx<'_, '_> {
    /// Is there a negator within the negation window before token `i`, in the same clause?
    pub fn negated_before(&self, i: usize) -> Option<usize> {
        let window = self.lex.modifiers.negation_window;
        let doc = self.doc;
        let mut j = i;
        for _ in 0..window {
            if j == 0 || doc.tokens[j].clause_start {
                return None;
            }
            j -= 1;
            if doc.marked(j, mark::NEGATOR) {
                return Some(j);
            }
        }
        None
    }

    /// Is a first-person word within four tokens before token `i`, with no "you" in between
    /// ("I felt like an idiot", but not "I think you are idiots")?
    fn self_directed(&self, i: usize) -> bool {
        for j in (i.saturating_sub(4)..i).rev() {
            if self.doc.marked(j, mark::SECOND_PERSON) {
                return false;
            }
            if self.doc.marked(j, mark::FIRST_PERSON) {
                return true;
            }
        }
        false
    }
}

/// One step of the pipeline.
pub(crate) trait Rule: fmt::Debug + Send + Sync {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>);
}

thread_local! {
    /// The token buffers of the last post tokenised on this thread, for the next one to reuse
    /// (every post is still tokenised and weighed in full).
    static BUFFERS: Cell<Buffers> = Cell::new(Buffers::default());
}

/// Keep the buffers of a post that is done with, for the next.
fn recycle(doc: Doc<'_>) {
    BUFFERS.set(doc.into_buffers());
}

/// The lexicon, the configuration compiled for matching, and the rules.
#[derive(Debug)]
pub(crate) struct Engine {
    pub lex: Lexicon,
    pub products: Vec<Product>,
    rules: Vec<Box<dyn Rule>>,
}

impl Engine {
    pub fn new(mut lex: Lexicon, config: &ToneConfig) -> Engine {
        let products = config
            .products
            .iter()
            .filter_map(|name| {
                let doc = tokenize(name, &lex.tables);
                let tokens: Vec<String> = (0..doc.len()).map(|i| doc.norm(i).to_owned()).collect();
                let min_len = tokens.first()?.chars().count().saturating_sub(1);
                Some(Product {
                    name: name.trim().to_owned(),
                    tokens,
                    min_len,
                })
            })
            .collect();
        let mut crisis = Crisis::new(&config.crisis_keywords, &lex);
        lex.index_words(&mut [&mut crisis.keywords]);
        let rules: Vec<Box<dyn Rule>> = vec![
            Box::new(ToneCues),
            Box::new(Valence),
            Box::new(SpamShape),
            Box::new(AdverseEvent),
            Box::new(crisis),
            Box::new(Hcp::new(&config.hcp_handles, &lex)),
            Box::new(MedicalQuestion),
        ];
        Engine {
            lex,
            products,
            rules,
        }
    }

    /// Tag one post: the rules, blended with the learned `model` when there is one.
    pub fn run<'a>(
        &'a self,
        text: &'a str,
        author: &'a Author,
        model: Option<&Model>,
    ) -> crate::domain::Tags {
        let doc = self.tokenize(text);
        let ev = self.evidence(&doc, author);
        let tags = match model {
            None => ev.decide(&doc, &self.lex.scoring),
            Some(model) => model.decide(ev, &doc, &self.lex),
        };
        recycle(doc);
        tags
    }

    /// The rules' tone scores for `text`, handed to `f` with the tokenised text (for training).
    pub fn with_scores<R>(&self, text: &str, f: impl FnOnce(&Doc<'_>, &ToneScores) -> R) -> R {
        let author = Author::default();
        let doc = self.tokenize(text);
        let mut ev = self.evidence(&doc, &author);
        let scores = ev.weigh(&doc, &self.lex.scoring);
        let result = f(&doc, &scores);
        recycle(doc);
        result
    }

    /// Tokenise `text` (into the buffers of the last post) and give its tokens their word ids.
    fn tokenize<'t>(&self, text: &'t str) -> Doc<'t> {
        let mut doc = tokenize_into(text, &self.lex.tables, BUFFERS.take());
        self.lex.annotate(&mut doc);
        doc
    }

    /// Run every rule over a tokenised post.
    fn evidence<'a>(&'a self, doc: &Doc<'a>, author: &'a Author) -> Evidence<'a> {
        let products = self.find_products(doc);
        let personal = doc.with_marks(mark::PERSONAL).next().is_some();
        let cx = Ctx {
            doc,
            author,
            lex: &self.lex,
            engine: self,
            products,
            personal,
        };
        let mut ev = Evidence::new(doc.len());
        for rule in &self.rules {
            rule.apply(&cx, &mut ev);
        }
        ev
    }

    fn find_products(&self, doc: &Doc<'_>) -> Vec<ProductHit> {
        let mut hits = Vec::new();
        if self.products.is_empty() {
            return hits;
        }
        for i in 0..doc.len() {
            if doc.tokens[i].kind != Kind::Word {
                continue;
            }
            for (p, product) in self.products.iter().enumerate() {
                let n = product.tokens.len();
                // A token shorter than `min_len` bytes cannot match the first word.
                if i + n <= doc.len()
                    && doc.norm_len(i) >= product.min_len
                    && product
                        .tokens
                        .iter()
                        .enumerate()
                        .all(|(k, want)| name_matches(want, doc.norm(i + k)))
                {
                    hits.push(ProductHit {
                        product: p,
                        start: i,
                        end: i + n,
                    });
                    break;
                }
            }
        }
        hits
    }
}

/// A product word matches exactly, or within one edit (insertion, deletion, substitution or swap of
/// neighbours) when it has six letters or more.
fn name_matches(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    // Within one edit of six letters or more is five letters or more (and as many bytes).
    if got.len() < 5 {
        return false;
    }
    let wl = want.chars().count();
    if wl < 6 {
        return false;
    }
    // One edit changes the first character or the last, not both.
    let ends = |s: &str| (s.chars().next(), s.chars().next_back());
    let ((wf, wb), (gf, gb)) = (ends(want), ends(got));
    if wf != gf && wb != gb {
        return false;
    }
    let gl = got.chars().count();
    wl.abs_diff(gl) <= 1 && within_one_edit(want, got)
}

/// Optimal-string-alignment distance ≤ 1, without allocating for ASCII words.
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if !a.is_ascii() || !b.is_ascii() {
        let a: Vec<char> = String::from_utf8_lossy(a).chars().collect();
        let b: Vec<char> = String::from_utf8_lossy(b).chars().collect();
        return one_edit(&a, &b);
    }
    one_edit(a, b)
}

fn one_edit<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match (a.len(), b.len()) {
        (0, 0) | (1, 0) | (0, 1) => true,
        (la, lb) if la == lb => {
            // Substitution, or a swap of two neighbours.
            a[1..] == b[1..] || (la >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        (la, lb) if la == lb + 1 => a[1..] == *b,
        (la, lb) if la + 1 == lb => *a == b[1..],
        _ => false,
    }
}

// ---- tone ------------------------------------------------------------------------------------

/// Phrases from cues.toml: care failures, sarcasm, praise, insults, spam.
#[derive(Debug)]
struct ToneCues;

impl Rule for ToneCues {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let doc = cx.doc;
        let mut found: Vec<Match> = Vec::new();
        cx.lex.cues.find_all(doc, &mut found);
        for m in found {
            let g = &cx.lex.cues.groups[m.group as usize];
            let text = text_of(doc, m.span(doc));
            let symbol = m.end - m.start == 1
                && matches!(doc.tokens[m.start].kind, Kind::Emoji | Kind::Emoticon);
            let why = Why::Cue {
                label: &g.reason,
                text,
                symbol,
            };
            match g.effect {
                Effect::Complaint => {
                    ev.add(Side::Negative, g.weight, why);
                    ev.cover(m.start, m.end);
                }
                Effect::Positive => {
                    if let Some(neg) = cx.negated_before(m.start) {
                        let span = doc.tokens[neg].span.join(m.span(doc));
                        ev.add(
                            Side::Negative,
                            g.weight * -cx.lex.modifiers.negation_factor,
                            Why::Negated {
                                text: text_of(doc, span),
                            },
                        );
                    } else {
                        ev.add(Side::Positive, g.weight, why);
                    }
                    ev.cover(m.start, m.end);
                }
                Effect::Troll => {
                    if g.aimed && cx.self_directed(m.start) {
                        continue;
                    }
                    ev.add(Side::Troll, g.weight, why);
                    ev.cover(m.start, m.end);
                }
                Effect::Spam => {
                    ev.add(Side::Spam, g.weight, why);
                    ev.cover(m.start, m.end);
                }
                Effect::Neutral => ev.cover(m.start, m.end),
                Effect::Sarcasm if g.conditional => ev.add_conditional_sarcasm(g.weight, why),
                Effect::Sarcasm => {
                    ev.add_sarcasm(g.weight, why);
                    ev.cover(m.start, m.end);
                }
            }
        }
    }
}

/// Sentiment words with negation, contrast, intensifiers, capitals, elongation and questions.
#[derive(Debug)]
struct Valence;

impl Rule for Valence {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let doc = cx.doc;
        let lex = cx.lex;
        let m = &lex.modifiers;
        let s = &lex.scoring;
        if s.bare_negation > 0.0 {
            let mut bare = 0;
            for i in doc.with_marks(mark::NEGATOR) {
                if bare >= 2 {
                    break;
                }
                if ev.covered.contains(i) || (i + 1 < doc.len() && doc.marked(i + 1, mark::HEDGE)) {
                    continue;
                }
                let negates_a_word = (i + 1..(i + 1 + m.negation_window).min(doc.len()))
                    .take_while(|&j| !doc.tokens[j].clause_start)
                    .any(|j| doc.marked(j, mark::VALENCE));
                if !negates_a_word {
                    bare += 1;
                    ev.add(
                        Side::Negative,
                        s.bare_negation,
                        Why::Cue {
                            label: "negation",
                            text: text_of(doc, doc.tokens[i].span),
                            symbol: false,
                        },
                    );
                }
            }
        }
        if s.repeated_question_marks > 0.0 && doc.longest_question_run >= 2 {
            ev.add(
                Side::Negative,
                s.repeated_question_marks,
                Why::Shape {
                    what: "repeated question marks",
                    text: "",
                },
            );
        }
        let contrast = doc
            .with_marks(mark::CONTRAST)
            .filter(|&i| !ev.covered.contains(i))
            .last();
        for i in doc.with_marks(mark::VALENCE | mark::ALT_VALENCE) {
            let Some(base) = lex.valence(doc, i) else {
                continue;
            };
            // Covered by a cue, or the same word again ("win win win" counts once).
            if ev.covered.contains(i) || (i > 0 && doc.same(i - 1, i)) {
                continue;
            }
            if base == 0.0 {
                continue;
            }
            let sign = base.signum();
            let tok = &doc.tokens[i];
            let mut v = base;
            // Intensifiers and diminishers just before, in the same clause.
            let mut j = i;
            for scale in [1.0, 0.95, 0.9] {
                if j == 0 || doc.tokens[j].clause_start {
                    break;
                }
                j -= 1;
                if let Some(b) = lex.intensifier(doc, j) {
                    v += sign * b * scale;
                }
            }
            if tok.caps && !doc.all_caps {
                v += sign * s.caps;
            }
            if tok.elongated {
                v += sign * s.elongation;
            }
            let negator = cx.negated_before(i);
            if negator.is_some() {
                v *= if base > 0.0 {
                    m.negation_factor
                } else {
                    m.negation_factor_negative
                };
            }
            if doc.in_question(i) {
                v *= if v > 0.0 {
                    s.question_positive
                } else {
                    s.question_negative
                };
            }
            if let Some(c) = contrast {
                if i < c {
                    v *= m.contrast_before;
                } else if i > c {
                    v *= m.contrast_after;
                }
            }
            // A praise word in scare quotes is sarcasm ('Thanks' for the voucher).
            if v > 0.0 && negator.is_none() && scare_quoted(doc.text, tok.span) {
                ev.add_sarcasm(
                    s.scare_quotes,
                    Why::Cue {
                        label: "sarcasm (scare quotes)",
                        text: text_of(doc, tok.span),
                        symbol: false,
                    },
                );
                continue;
            }
            let why = match negator {
                Some(n) => Why::Negated {
                    text: text_of(doc, doc.tokens[n].span.join(tok.span)),
                },
                None => Why::Word {
                    positive: v > 0.0,
                    text: text_of(doc, tok.span),
                },
            };
            if v > 0.0 {
                ev.add(Side::Positive, v, why);
            } else {
                ev.add(Side::Negative, -v, why);
            }
        }
    }
}

fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}'
    )
}

/// Is the word at `span` wrapped in quotes on both sides?
fn scare_quoted(text: &str, span: Span) -> bool {
    let (start, end) = (span.start as usize, span.end as usize);
    let before = text.get(..start).and_then(|t| t.chars().next_back());
    let after = text.get(end..).and_then(|t| t.chars().next());
    before.is_some_and(is_quote) && after.is_some_and(is_quote)
}

/// Spam that shows in the shape of the post: hidden links, repetition, symbol runs, hashtag walls.
#[derive(Debug)]
struct SpamShape;

impl Rule for SpamShape {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let doc = cx.doc;
        let rules = &cx.lex.spam;
        for &span in &doc.urls {
            let url = text_of(doc, span);
            let lower_host = host_of(url);
            if rules
                .shorteners
                .iter()
                .any(|s| lower_host.eq_ignore_ascii_case(s))
            {
                ev.add(
                    Side::Spam,
                    rules.shortener,
                    Why::Shape {
                        what: "shortened link",
                        text: url,
                    },
                );
                break;
            }
        }
        if ev.spam > 0.0 && !doc.urls.is_empty() {
            ev.add(
                Side::Spam,
                rules.link_with_cue,
                Why::Shape {
                    what: "link with an offer",
                    text: "",
                },
            );
        }
        if let Some(word) = repeated_word(doc) {
            ev.add(
                Side::Spam,
                rules.repeated_words,
                Why::Shape {
                    what: "repeated word",
                    text: word,
                },
            );
        }
        if doc.longest_symbol_run >= rules.symbol_run {
            ev.add(
                Side::Spam,
                rules.symbol_run_weight,
                Why::Shape {
                    what: "run of repeated symbols",
                    text: "",
                },
            );
        }
        if doc.hashtags >= rules.hashtags {
            ev.add(
                Side::Spam,
                rules.hashtags_weight,
                Why::Shape {
                    what: "many hashtags",
                    text: "",
                },
            );
        }
    }
}

/// The host of a link, without scheme and "www.".
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = if rest
        .as_bytes()
        .get(..4)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"www."))
    {
        &rest[4..]
    } else {
        rest
    };
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// A word said three times in a row, or one word that makes up half of a post of eight words or more.
fn repeated_word<'a>(doc: &Doc<'a>) -> Option<&'a str> {
    let is_word = |i: &usize| (doc.tokens[*i].kind == Kind::Word) & two_chars(doc, *i);
    // First on the hashes alone, on the stack: equal words have equal hashes, so when no hashes
    // repeat like that, no words do (nearly always the end of it).
    if doc.len() <= 64 {
        let mut hashes = [0u64; 64];
        let mut n = 0;
        for i in 0..doc.len() {
            // (Stored either way, kept by counting it: no branch on what the token is.)
            hashes[n] = doc.hash(i);
            n += usize::from(is_word(&i));
        }
        if !hashes_repeat(&hashes[..n]) {
            return None;
        }
    }
    let words: Vec<usize> = (0..doc.len()).filter(is_word).collect();
    let said = |i: usize| doc.original(doc.tokens[i].span);
    for w in words.windows(3) {
        if doc.same(w[0], w[1]) && doc.same(w[1], w[2]) {
            return Some(said(w[0]));
        }
    }
    let half = halves(&words, |&a, &b| doc.same(a, b));
    // The first word, in text order, that makes up half of the post.
    let is_half = |i: usize| half.iter().flatten().any(|&h| doc.same(i, h));
    words.iter().copied().find(|&i| is_half(i)).map(said)
}

/// Could the hashes repeat as [`repeated_word`] looks for: three equal in a row, or (eight or more
/// of them) one that makes up half of them? (A hash that does fills at least as much of its
/// bucket of 64: counting buckets needs no branch per hash.)
fn hashes_repeat(h: &[u64]) -> bool {
    if h.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return true;
    }
    if h.len() < 8 {
        return false;
    }
    let mut buckets = [0u8; 64];
    let mut most = 0;
    for &x in h {
        let b = &mut buckets[(x >> 58) as usize];
        *b = b.saturating_add(1);
        most = most.max(*b);
    }
    usize::from(most) * 2 >= h.len()
}

/// The items (at most two) that make up half of `items`, when there are eight or more.
fn halves<T: Copy>(items: &[T], same: impl Fn(&T, &T) -> bool) -> [Option<T>; 2] {
    if items.len() < 8 {
        return [None, None];
    }
    // One that makes up half of them makes up more than a third, so it is one of the two
    // candidates left by a Misra–Gries pass; only those are then counted.
    let mut cand: [Option<(T, usize)>; 2] = [None, None];
    for x in items {
        if let Some((_, k)) = cand
            .iter_mut()
            .flatten()
            .find(|(c, k)| *k > 0 && same(c, x))
        {
            *k += 1;
        } else if let Some(c) = cand.iter_mut().find(|c| c.is_none_or(|(_, k)| k == 0)) {
            *c = Some((*x, 1));
        } else {
            for (_, k) in cand.iter_mut().flatten() {
                *k -= 1;
            }
        }
    }
    let half = |c: &T| items.iter().filter(|x| same(x, c)).count() * 2 >= items.len();
    cand.map(|c| c.filter(|(c, k)| *k > 0 && half(c)).map(|(c, _)| c))
}

/// Has token `i` at least two characters?
fn two_chars(doc: &Doc<'_>, i: usize) -> bool {
    // Five bytes or more are two characters or more, and so are two bytes or more after an ASCII
    // character; one byte or less is not.
    let len = doc.norm_len(i);
    let ascii = doc.first_byte(i).is_some_and(|b| b.is_ascii());
    (len >= 5) | ((len >= 2) & ascii) || (len >= 2 && doc.norm(i).chars().nth(1).is_some())
}

// ---- flags -----------------------------------------------------------------------------------

/// A configured product together with a personal-experience signal: side effect, lack of effect,
/// overdose or misuse, medication error, pregnancy or breastfeeding exposure.
#[derive(Debug)]
struct AdverseEvent;

impl Rule for AdverseEvent {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let Some(hit) = cx.products.first() else {
            return;
        };
        let doc = cx.doc;
        let mut found: Vec<Match> = Vec::new();
        cx.lex.ae.find_all(doc, &mut found);
        let mut kinds_seen: Vec<u16> = Vec::new();
        for m in found {
            // The product name itself is not a reaction.
            if cx
                .products
                .iter()
                .any(|p| m.start < p.end && p.start < m.end)
            {
                continue;
            }
            let g = &cx.lex.ae.groups[m.group as usize];
            let continues = |j: usize| j + 1 < doc.len() && doc.marked(j + 1, mark::CONTINUER);
            if g.negatable && cx.negated_before(m.start).is_some_and(|j| !continues(j)) {
                continue;
            }
            // A general question ("does it cause hair loss?") is not someone's experience.
            if doc.in_question(m.start) && !cx.personal {
                continue;
            }
            if kinds_seen.contains(&m.group) || kinds_seen.len() >= 2 {
                continue;
            }
            kinds_seen.push(m.group);
            let product = &cx.engine.products[hit.product];
            let written = text_of(
                doc,
                doc.tokens[hit.start]
                    .span
                    .join(doc.tokens[hit.end - 1].span),
            );
            ev.flag(
                Flag::Ae,
                Why::Ae {
                    product: &product.name,
                    written,
                    kind: &g.kind,
                    text: text_of(doc, m.span(doc)),
                },
            );
        }
    }
}

/// Configured crisis keywords, as whole words (a plural "-s"/"-es" also counts).
#[derive(Debug)]
struct Crisis {
    keywords: PhraseSet<()>,
}

impl Crisis {
    fn new(keywords: &[String], lex: &Lexicon) -> Crisis {
        let mut variants: Vec<String> = Vec::new();
        for k in keywords {
            let k = k.trim();
            if k.is_empty() {
                continue;
            }
            variants.push(k.to_owned());
            if k.chars().last().is_some_and(char::is_alphabetic) {
                variants.push(format!("{k}s"));
                variants.push(format!("{k}es"));
            }
        }
        let mut set = PhraseSet::default();
        // A keyword that is only punctuation cannot match a word; it is skipped.
        let _ = set.add_group((), variants.iter().map(String::as_str), &lex.tables);
        Crisis { keywords: set }
    }
}

impl Rule for Crisis {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        if self.keywords.is_empty() {
            return;
        }
        let mut found = Vec::new();
        self.keywords.find_all(cx.doc, &mut found);
        if let Some(m) = found.first() {
            ev.flag(
                Flag::Crisis,
                Why::Crisis {
                    text: text_of(cx.doc, m.span(cx.doc)),
                },
            );
        }
    }
}

/// Healthcare professionals: credentials and titles in the bio or display name, known handles, and
/// "as a nurse…" in the post.
#[derive(Debug)]
struct Hcp {
    handles: HashSet<String>,
    pattern: Option<Regex>,
}

impl Hcp {
    fn new(handles: &[String], lex: &Lexicon) -> Hcp {
        let handles = handles
            .iter()
            .map(|h| h.trim().trim_start_matches('@').to_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Hcp {
            handles,
            pattern: hcp_regex(&lex.hcp.credentials, &lex.hcp.titles),
        }
    }
}

/// One regex for all credentials (case-sensitive) and titles (case-insensitive), as whole words.
fn hcp_regex(credentials: &[String], titles: &[String]) -> Option<Regex> {
    fn alternation(words: &[String]) -> String {
        let mut words: Vec<&str> = words
            .iter()
            .map(|w| w.trim())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words
            .iter()
            .map(|w| regex::escape(w).replace(' ', r"\s+"))
            .collect::<Vec<_>>()
            .join("|")
    }
    let mut parts = Vec::new();
    if !credentials.is_empty() {
        parts.push(format!("(?:{})", alternation(credentials)));
    }
    if !titles.is_empty() {
        parts.push(format!("(?i:{})", alternation(titles)));
    }
    if parts.is_empty() {
        return None;
    }
    let pattern = format!(
        r"(?:^|[^\p{{L}}\p{{N}}])({})(?:$|[^\p{{L}}\p{{N}}])",
        parts.join("|")
    );
    match Regex::new(&pattern) {
        Ok(re) => Some(re),
        Err(e) => {
            tracing::warn!("tone: hcp patterns do not compile, hcp bio detection is off: {e}");
            None
        }
    }
}

impl Rule for Hcp {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let author = cx.author;
        let handle = author.handle.trim().trim_start_matches('@');
        if !self.handles.is_empty() && self.handles.contains(&handle.to_lowercase()) {
            ev.flag(
                Flag::Hcp,
                Why::Hcp {
                    field: "known handle",
                    text: handle,
                },
            );
            return;
        }
        if let Some(re) = &self.pattern {
            for (field, text) in [("bio", &author.bio), ("display name", &author.display_name)] {
                // An empty field holds no credential or title.
                if text.is_empty() || !re.is_match(text) {
                    continue;
                }
                if let Some(m) = re.captures(text).and_then(|c| c.get(1)) {
                    ev.flag(
                        Flag::Hcp,
                        Why::Hcp {
                            field,
                            text: m.as_str(),
                        },
                    );
                    return;
                }
            }
        }
        let mut found = Vec::new();
        cx.lex.hcp.text_cues.find_all(cx.doc, &mut found);
        if let Some(m) = found.first() {
            ev.flag(
                Flag::Hcp,
                Why::Hcp {
                    field: "says",
                    text: text_of(cx.doc, m.span(cx.doc)),
                },
            );
        }
    }
}

/// A question (or request) about dosing, interactions, off-label use, missed doses, pregnancy or
/// children, in a medical context.
#[derive(Debug)]
struct MedicalQuestion;

impl Rule for MedicalQuestion {
    fn apply<'a>(&'a self, cx: &Ctx<'a, '_>, ev: &mut Evidence<'a>) {
        let doc = cx.doc;
        let lex = cx.lex;
        let mut asks: Vec<Match> = Vec::new();
        lex.medical_asks.find_all(doc, &mut asks);
        let ask = asks.first();
        if ask.is_none() && !doc.has_question_mark {
            return;
        }
        let mut found: Vec<Match> = Vec::new();
        lex.medical.find_all(doc, &mut found);
        let topics = || found.iter();
        let Some(topic) = topics().next() else {
            return;
        };
        let medical = !cx.products.is_empty()
            || topics().any(|m| lex.medical.groups[m.group as usize].medical)
            || doc.with_marks(mark::MEDICAL_CONTEXT).next().is_some();
        if !medical {
            return;
        }
        // Prefer a topic other than the asking phrase itself, in a sentence that asks.
        let is_ask = |m: &Match| ask.is_some_and(|a| a.start == m.start && a.end == m.end);
        let topic = topics()
            .find(|m| !is_ask(m) && (doc.in_question(m.start) || ask.is_some()))
            .or_else(|| topics().find(|m| is_ask(m)))
            .unwrap_or(topic);
        let g = &lex.medical.groups[topic.group as usize];
        // When the topic phrase already holds the question ("how many … can I take"), name it once.
        let ask = ask.filter(|a| is_ask(topic) || !(topic.start <= a.start && a.end <= topic.end));
        ev.flag(
            Flag::MedicalQuestion,
            Why::MedicalQuestion {
                ask: ask.map(|a| text_of(doc, a.span(doc))),
                kind: &g.kind,
                topic: text_of(doc, topic.span(doc)),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_distance() {
        assert!(name_matches("zyntriva", "zyntriva"));
        assert!(name_matches("zyntriva", "zyntrva")); // deletion
        assert!(name_matches("zyntriva", "zynntriva")); // insertion
        assert!(name_matches("zyntriva", "zintriva")); // substitution
        assert!(name_matches("zyntriva", "zyntirva")); // swap
        assert!(!name_matches("zyntriva", "zintirva"));
        assert!(!name_matches("advil", "advul")); // short names must be exact
        assert!(!name_matches("zyntriva", "zyntrivastat"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://www.bit.ly/x?y"), "bit.ly");
        assert_eq!(host_of("bit.ly/abc"), "bit.ly");
        assert_eq!(host_of("http://a€b.example/x"), "a€b.example");
    }
}
