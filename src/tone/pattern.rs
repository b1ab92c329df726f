//! Phrase patterns over tokens, compiled once and matched in one pass.
//!
//! A pattern is written as text and tokenised like a post ("didn't help" matches "did not help" and
//! "didnt help"). Between words a pattern may use:
//! - `*` any one token,
//! - `..` a gap of zero to three tokens that does not cross a sentence break,
//! - `word*` any token that starts with `word` (`refund*`),
//! - `<num>` any number, `<url>` a link, `<user>` an @handle.

use rustc_hash::FxHashMap as HashMap;

use super::token::{Doc, HashFilter, Kind, NO_ID, Span, TokenTables, Vocab, fnv, tokenize};

const GAP: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    /// A word and its [`fnv`] hash (compared first).
    Word(u64, Box<str>),
    Prefix(String),
    Any,
    Gap(u8),
    Num,
}

impl Elem {
    fn word(w: &str) -> Elem {
        Elem::Word(fnv(w), w.into())
    }

    fn matches(&self, doc: &Doc<'_>, i: usize) -> bool {
        match self {
            Elem::Word(h, w) => doc.is(i, *h, w),
            Elem::Prefix(p) => {
                doc.norm(i).starts_with(p.as_str())
                    || doc.alt(i).is_some_and(|a| a.starts_with(p.as_str()))
            }
            Elem::Any => true,
            Elem::Num => doc.tokens[i].kind == Kind::Number,
            Elem::Gap(_) => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    elems: Vec<Elem>,
    group: u16,
}

/// A found phrase: the group it belongs to and the tokens it covers (`start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub group: u16,
    pub start: usize,
    pub end: usize,
}

impl Match {
    pub fn span(&self, doc: &Doc<'_>) -> Span {
        let first = doc.tokens[self.start].span;
        let last = doc.tokens[self.end - 1].span;
        first.join(last)
    }
}

/// Phrases indexed by their first token, each belonging to a group of payload `G`.
#[derive(Debug, Clone)]
pub(crate) struct PhraseSet<G> {
    patterns: Vec<Pattern>,
    /// The words that start a pattern, and for each (by id) its patterns in the order added.
    firsts: Vocab,
    by_first: Vec<Starts>,
    /// The hashes of `firsts`: most tokens start no phrase and are passed over with one bit test.
    first_filter: HashFilter,
    /// Patterns that start with a prefix or `<num>`, tried at every token that could start them.
    other_first: Vec<Start>,
    /// Some pattern of `other_first` starts with `<num>`.
    other_num: bool,
    /// The first bytes of the prefixes that start a pattern of `other_first`.
    other_bytes: [u64; 4],
    /// `firsts` by the ids of a word table ([`PhraseSet::link`]).
    linked: Linked,
    pub groups: Vec<G>,
}

/// For each id of the word table stamped `stamp`, the id of that word in `firsts` (or
/// [`NO_ID`]): in a document annotated with that table, the patterns to try at a token are
/// found by array index.
#[derive(Debug, Clone, Default)]
struct Linked {
    stamp: u64,
    /// This set's bit in [`super::token::Token::starts`].
    bit: u32,
    firsts: Vec<u32>,
}

/// A pattern to try where its first element matches, and the hash of its second element when
/// that is a word (else 0): the next token must have that hash, checked before the pattern is
/// tried. (A word whose hash is 0 is only tried more often: the check is a filter, and the
/// pattern itself decides.)
#[derive(Debug, Clone, Copy)]
struct Start {
    next: u64,
    pattern: u32,
}

impl<G> Default for PhraseSet<G> {
    fn default() -> Self {
        PhraseSet {
            patterns: Vec::new(),
            firsts: Vocab::default(),
            by_first: Vec::new(),
            first_filter: HashFilter::default(),
            other_first: Vec::new(),
            other_num: false,
            other_bytes: [0; 4],
            linked: Linked::default(),
            groups: Vec::new(),
        }
    }
}

fn has_byte(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b / 64)] & (1 << (b % 64)) != 0
}

/// The patterns that start with one word, in the order added. A long list is also indexed by
/// its second words, so a token tries only the patterns its next token may continue.
#[derive(Debug, Clone, Default)]
struct Starts {
    list: Vec<Start>,
    by_next: Option<NextIndex>,
}

/// Positions in a list of [`Start`]s, by the hash of the second word (`any`: the patterns that
/// have no second word).
#[derive(Debug, Clone, Default)]
struct NextIndex {
    by_hash: HashMap<u64, Vec<u16>>,
    any: Vec<u16>,
}

impl Starts {
    /// Lists up to this long are scanned.
    const SCAN: usize = 8;

    fn push(&mut self, start: Start) {
        self.list.push(start);
        self.by_next = None;
        if self.list.len() > Starts::SCAN && self.list.len() <= usize::from(u16::MAX) {
            let mut index = NextIndex::default();
            for (k, s) in self.list.iter().enumerate() {
                match s.next {
                    0 => index.any.push(k as u16),
                    h => index.by_hash.entry(h).or_default().push(k as u16),
                }
            }
            self.by_next = Some(index);
        }
    }
}

/// How [`PhraseSet::find_all`] goes over one document.
struct Scan {
    /// The document was annotated with the word table the set is linked to.
    linked: bool,
    /// It has numbers, and some pattern starts with `<num>`.
    numbers: bool,
    /// Some pattern starts with a prefix.
    prefixes: bool,
    /// Where this search's matches start in `out`.
    base: usize,
}

/// Why a pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PatternError(pub String);

fn compile(text: &str, tables: &TokenTables) -> Result<Vec<Elem>, PatternError> {
    let mut elems = Vec::new();
    for piece in text.split_whitespace() {
        match piece {
            "*" => elems.push(Elem::Any),
            ".." => elems.push(Elem::Gap(GAP)),
            "<num>" => elems.push(Elem::Num),
            "<url>" | "<user>" => elems.push(Elem::word(piece)),
            _ if piece.len() > 1 && piece.ends_with('*') => {
                let stem = &piece[..piece.len() - 1];
                let doc = tokenize(stem, tables);
                if doc.len() != 1 {
                    return Err(PatternError(format!("prefix '{piece}' must be one word")));
                }
                elems.push(Elem::Prefix(doc.norm(0).to_owned()));
            }
            _ => {
                let doc = tokenize(piece, tables);
                if doc.len() == 0 {
                    return Err(PatternError(format!(
                        "'{piece}' has no word, emoji or emoticon"
                    )));
                }
                for i in 0..doc.len() {
                    elems.push(Elem::word(doc.norm(i)));
                }
            }
        }
    }
    match elems.first() {
        None => Err(PatternError("empty pattern".into())),
        Some(Elem::Any | Elem::Gap(_)) => Err(PatternError(
            "a pattern cannot start with '*' or '..'".into(),
        )),
        Some(_) if matches!(elems.last(), Some(Elem::Gap(_))) => {
            Err(PatternError("a pattern cannot end with '..'".into()))
        }
        Some(_) => Ok(elems),
    }
}

impl<G> PhraseSet<G> {
    /// Add a group and its phrases. Returns the phrases that did not compile (with the reason).
    pub fn add_group<'p>(
        &mut self,
        group: G,
        phrases: impl IntoIterator<Item = &'p str>,
        tables: &TokenTables,
    ) -> Vec<(String, PatternError)> {
        let gid = self.groups.len() as u16;
        self.groups.push(group);
        let mut errors = Vec::new();
        for text in phrases {
            match compile(text, tables) {
                Ok(elems) => {
                    let start = Start {
                        pattern: self.patterns.len() as u32,
                        next: match elems.get(1) {
                            Some(Elem::Word(h, _)) => *h,
                            _ => 0,
                        },
                    };
                    match &elems[0] {
                        Elem::Word(h, w) => {
                            self.linked = Linked::default();
                            let id = self.firsts.intern(w) as usize;
                            if id == self.by_first.len() {
                                self.by_first.push(Starts::default());
                            }
                            self.by_first[id].push(start);
                            self.first_filter.insert(*h);
                        }
                        other => {
                            match other {
                                Elem::Num => self.other_num = true,
                                Elem::Prefix(p) => {
                                    if let Some(&b) = p.as_bytes().first() {
                                        self.other_bytes[usize::from(b / 64)] |= 1 << (b % 64);
                                    }
                                }
                                _ => {}
                            }
                            self.other_first.push(start);
                        }
                    }
                    self.patterns.push(Pattern { elems, group: gid });
                }
                Err(e) => errors.push((text.to_owned(), e)),
            }
        }
        errors
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// Every match, in text order. At one start position the longest match of each group wins, and a
    /// group does not match again inside its own previous match (so "still waiting" does not also count
    /// "waiting" from the same group).
    pub fn find_all(&self, doc: &Doc<'_>, out: &mut Vec<Match>) {
        if self.patterns.is_empty() {
            return;
        }
        let scan = Scan {
            linked: self.linked.stamp != 0 && self.linked.stamp == doc.vocab,
            numbers: self.other_num && doc.numbers > 0,
            prefixes: self.other_bytes != [0; 4],
            base: out.len(),
        };
        if scan.linked && doc.starts & self.linked.bit == 0 && !scan.numbers && !scan.prefixes {
            // No token starts a phrase of this set.
            return;
        }
        if scan.linked && doc.len() <= 64 {
            // The tokens where a phrase may start, found without a branch per token, then tried.
            let mut may_start = 0u64;
            for (i, t) in doc.tokens.iter().enumerate() {
                let first = t.starts & self.linked.bit != 0;
                let other = (scan.numbers && t.kind == Kind::Number)
                    || (scan.prefixes && self.prefix_may_start(doc, i));
                may_start |= u64::from(first | other) << i;
            }
            while may_start != 0 {
                let i = may_start.trailing_zeros() as usize;
                may_start &= may_start - 1;
                self.try_token(doc, &scan, i, out);
            }
        } else {
            for i in 0..doc.len() {
                self.try_token(doc, &scan, i, out);
            }
        }
    }

    /// Try at token `i` the phrases that start with its word, then with its de-elongated form,
    /// then with a prefix or a number, in the order they were added.
    fn try_token(&self, doc: &Doc<'_>, scan: &Scan, i: usize, out: &mut Vec<Match>) {
        let (t, base) = (&doc.tokens[i], scan.base);
        if scan.linked {
            if t.starts & self.linked.bit != 0 {
                for id in [t.word, t.alt_word] {
                    if let Some(&own) = self.linked.firsts.get(id as usize)
                        && own != NO_ID
                    {
                        self.try_starts(&self.by_first[own as usize], doc, i, base, out);
                    }
                }
            }
        } else {
            let firsts = [self.first(doc.hash(i), doc.norm(i)), self.first_alt(doc, i)];
            for id in firsts.into_iter().flatten() {
                self.try_starts(&self.by_first[id], doc, i, base, out);
            }
        }
        if (scan.numbers && t.kind == Kind::Number)
            || (scan.prefixes && self.prefix_may_start(doc, i))
        {
            self.try_all(&self.other_first, false, doc, i, base, out);
        }
    }

    /// Try `starts` at token `i`, those whose second word the next token has first.
    fn try_all(
        &self,
        starts: &[Start],
        first_known: bool,
        doc: &Doc<'_>,
        i: usize,
        base: usize,
        out: &mut Vec<Match>,
    ) {
        let next = doc.tokens.get(i + 1);
        for s in starts {
            if s.next != 0 && !next.is_some_and(|n| n.may_be(s.next)) {
                continue;
            }
            self.try_at(s, first_known, doc, i, base, out);
        }
    }

    /// Try the patterns of `starts` (which start with the word of token `i`) at `i`, in the
    /// order they were added.
    fn try_starts(
        &self,
        starts: &Starts,
        doc: &Doc<'_>,
        i: usize,
        base: usize,
        out: &mut Vec<Match>,
    ) {
        let Some(NextIndex { by_hash, any }) = &starts.by_next else {
            return self.try_all(&starts.list, true, doc, i, base, out);
        };
        // The patterns whose second word the next token may be, and those with no second word,
        // merged back into their order.
        let none: &[u16] = &[];
        let (mut a, mut b) = (none, none);
        if i + 1 < doc.len() {
            let hash = doc.hash(i + 1);
            a = by_hash.get(&hash).map_or(none, Vec::as_slice);
            if let Some(alt) = doc.alt_hash(i + 1)
                && alt != hash
            {
                b = by_hash.get(&alt).map_or(none, Vec::as_slice);
            }
        }
        let mut c = any.as_slice();
        loop {
            let head = [a.first(), b.first(), c.first()]
                .into_iter()
                .flatten()
                .min();
            let Some(&k) = head else {
                return;
            };
            for list in [&mut a, &mut b, &mut c] {
                if list.first() == Some(&k) {
                    *list = &list[1..];
                }
            }
            self.try_at(&starts.list[usize::from(k)], true, doc, i, base, out);
        }
    }

    /// The words that start a pattern.
    pub fn first_words(&self) -> impl Iterator<Item = &str> {
        self.firsts.words()
    }

    /// Index the first words by their ids in `vocab`, for documents annotated with it, whose
    /// tokens have `bit` in [`Token::starts`] where a first word of this set is. (Left unlinked
    /// if `vocab` lacks one of them: lookups by hash still work.)
    ///
    /// [`Token::starts`]: super::token::Token::starts
    pub fn link<T>(&mut self, vocab: &Vocab<T>, bit: u32) {
        self.linked = Linked::default();
        let mut firsts = vec![NO_ID; vocab.len()];
        for (own, w) in self.firsts.words().enumerate() {
            let Some(id) = vocab.get(fnv(w), w) else {
                return;
            };
            firsts[id as usize] = own as u32;
        }
        // Only words up to the last first word need an entry.
        let len = firsts
            .iter()
            .rposition(|&f| f != NO_ID)
            .map_or(0, |p| p + 1);
        firsts.truncate(len);
        self.linked = Linked {
            stamp: vocab.stamp(),
            bit,
            firsts,
        };
    }

    /// The patterns that start with `word` (whose hash is `hash`), as an index into `by_first`.
    fn first(&self, hash: u64, word: &str) -> Option<usize> {
        if !self.first_filter.may_contain(hash) {
            return None;
        }
        self.firsts.get(hash, word).map(|id| id as usize)
    }

    /// The patterns that start with the de-elongated form of token `i`.
    fn first_alt(&self, doc: &Doc<'_>, i: usize) -> Option<usize> {
        self.first(doc.alt_hash(i)?, doc.alt(i)?)
    }

    /// Try the pattern of `s` at token `i` (its first element is known to match when
    /// `first_known`, and its second word to be the next token's hash), and record a match in
    /// `out[base..]`.
    fn try_at(
        &self,
        s: &Start,
        first_known: bool,
        doc: &Doc<'_>,
        i: usize,
        base: usize,
        out: &mut Vec<Match>,
    ) {
        let p = &self.patterns[s.pattern as usize];
        if !first_known && !p.elems[0].matches(doc, i) {
            return;
        }
        let Some(end) = match_rest(&p.elems[1..], doc, i + 1, doc.tokens[i].sentence) else {
            return;
        };
        let covered = out[base..]
            .iter()
            .any(|m| m.group == p.group && m.start <= i && i < m.end && m.start != i);
        if covered {
            return;
        }
        if let Some(m) = out[base..]
            .iter_mut()
            .find(|m| m.group == p.group && m.start == i)
        {
            m.end = m.end.max(end);
        } else {
            out.push(Match {
                group: p.group,
                start: i,
                end,
            });
        }
    }

    /// Could a prefix of `other_first` match token `i`? (A prefix shares the first byte of the
    /// token, and of its de-elongated form, which starts with the same letter.)
    fn prefix_may_start(&self, doc: &Doc<'_>, i: usize) -> bool {
        doc.first_byte(i)
            .is_some_and(|b| has_byte(&self.other_bytes, b))
    }
}

/// Match `elems` from token `i`; returns the end (exclusive) of the match.
fn match_rest(elems: &[Elem], doc: &Doc<'_>, i: usize, sentence: u16) -> Option<usize> {
    let Some((first, rest)) = elems.split_first() else {
        return Some(i);
    };
    match first {
        Elem::Gap(n) => {
            for skip in 0..=(*n as usize) {
                let j = i + skip;
                if j > doc.len() {
                    break;
                }
                if skip > 0 && doc.tokens[j - 1].sentence != sentence {
                    break;
                }
                if let Some(end) = match_rest(rest, doc, j, sentence) {
                    return Some(end);
                }
            }
            None
        }
        e => {
            if i < doc.len() && e.matches(doc, i) {
                match_rest(rest, doc, i + 1, doc.tokens[i].sentence)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(phrases: &[&str]) -> (PhraseSet<&'static str>, TokenTables) {
        let tables = TokenTables {
            expansions: [(
                "didnt".to_string(),
                vec!["did".to_string(), "not".to_string()],
            )]
            .into_iter()
            .collect(),
            ..TokenTables::default()
        };
        let mut s = PhraseSet::default();
        let errors = s.add_group("g", phrases.iter().copied(), &tables);
        assert!(errors.is_empty(), "{errors:?}");
        (s, tables)
    }

    fn found(s: &PhraseSet<&'static str>, tables: &TokenTables, text: &str) -> Vec<String> {
        let doc = tokenize(text, tables);
        let mut out = Vec::new();
        s.find_all(&doc, &mut out);
        out.iter()
            .map(|m| doc.original(m.span(&doc)).to_owned())
            .collect()
    }

    #[test]
    fn words_gaps_prefixes_numbers() {
        let (s, t) = set(&[
            "didn't help",
            "why .. not working",
            "refund*",
            "took <num>",
            "still waiting",
            "waiting",
        ]);
        assert_eq!(
            found(&s, &t, "It did not help at all"),
            vec!["did not help"]
        );
        assert_eq!(found(&s, &t, "it didnt help"), vec!["didnt help"]);
        assert_eq!(
            found(&s, &t, "Why is my app not working?"),
            vec!["Why is my app not working"]
        );
        assert!(found(&s, &t, "Why? The app is fine. Not working today").is_empty());
        assert_eq!(found(&s, &t, "any REFUNDS yet"), vec!["REFUNDS"]);
        assert_eq!(found(&s, &t, "I took 3 today"), vec!["took 3"]);
        assert_eq!(
            found(&s, &t, "still waiting, waiting"),
            vec!["still waiting", "waiting"]
        );
    }

    #[test]
    fn bad_patterns_are_reported() {
        let tables = TokenTables::default();
        let mut s: PhraseSet<()> = PhraseSet::default();
        let errors = s.add_group((), ["* alone", "!!!", "ends with .."], &tables);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
