//! Tokeniser: lowercase words, markers for @handles and URLs, hashtag words, emoji and emoticons as
//! tokens, elongations collapsed ("sooo" → "soo"), "n't" contractions expanded ("didn't" → "did not").
//!
//! One pass over the text into two buffers (the token list and one string buffer that holds every
//! normalised token), which [`tokenize_into`] reuses from an earlier document; a plain word (ASCII
//! letters) is lowercased, measured and hashed in a single step. Each token carries the FNV-1a hash
//! of its normal form, so phrase and word lookups probe integer-keyed maps and compare text only on
//! a hit ([`Vocab`]).

use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap as HashMap;

/// A byte range in the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// The spanned text, or "" when the span does not fit (never panics).
    pub fn of(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or("")
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    Number,
    Emoji,
    /// ":)", ":-(", "<3", and the "/s" sarcasm marker.
    Emoticon,
    /// An @handle; its normal form is `<user>`.
    Handle,
    /// A link; its normal form is `<url>`.
    Url,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Kind,
    norm: (u32, u32),
    /// The normal form with every elongation collapsed to one letter ("loove" → "love"), if it differs.
    alt: Option<(u32, u32)>,
    /// [`fnv`] of the normal form, and of the collapsed form when there is one (else 0).
    hash: u64,
    alt_hash: u64,
    /// The ids of the normal form and of the collapsed form in the word table that annotated the
    /// document ([`Doc::vocab`]); [`NO_ID`] before that, and for words it does not know.
    pub word: u32,
    pub alt_word: u32,
    /// One bit for each linked phrase set that has patterns starting with this word (or its
    /// collapsed form), set with the word ids.
    pub starts: u32,
    /// The lexicon's marks for this word (which lists it is on), set with the word ids.
    pub marks: u32,
    pub span: Span,
    /// Written in capitals (at least two letters, none lowercase).
    pub caps: bool,
    /// Had a run of three or more equal letters ("sooo").
    pub elongated: bool,
    /// A clause break (`, ; : . ! ?`, a line break) comes right before this token.
    pub clause_start: bool,
    /// Index of the sentence (split at `. ! ?` and line breaks).
    pub sentence: u16,
}

/// FNV-1a of a word: the hash every token carries. Stable across builds and machines (the learned
/// model's features are built on it).
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(FNV_OFFSET, fnv_step)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One byte of [`fnv`].
#[inline]
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

/// Words interned to dense ids, each with a small value `T`, found by a token's precomputed hash.
///
/// A map from hash to id finds the word (most tokens are not in the table, and a map of integers
/// says so quickly); the entry of the id holds the value and, for a word of up to eight bytes
/// (nearly all of them), the text itself as a number, so a found word is confirmed without
/// reading its text elsewhere. Words whose hashes collide are chained, so a lookup is exact.
#[derive(Debug, Clone)]
pub(crate) struct Vocab<T = ()> {
    by_hash: HashMap<u64, u32>,
    entries: Vec<Entry<T>>,
    /// The text of every word, one after the other.
    text: String,
    stamp: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry<T> {
    /// The text of a word of up to eight bytes, as a number (see [`short`]).
    short: u64,
    /// Where the text is in `Vocab::text`.
    start: u32,
    len: u32,
    /// The next word with the same hash.
    next: u32,
    value: T,
}

/// Up to eight bytes as one number (0 for more): two words of the same length up to eight bytes
/// are equal exactly when these are.
#[inline]
fn short(word: &[u8]) -> u64 {
    if word.len() > 8 {
        return 0;
    }
    word.iter().rev().fold(0, |x, &b| x << 8 | u64::from(b))
}

/// The source of [`Vocab::stamp`]s.
static STAMPS: AtomicU64 = AtomicU64::new(1);

/// The id of no word in a [`Vocab`].
pub(crate) const NO_ID: u32 = u32::MAX;

impl<T> Default for Vocab<T> {
    fn default() -> Self {
        Vocab {
            by_hash: HashMap::default(),
            entries: Vec::new(),
            text: String::new(),
            stamp: 0,
        }
    }
}

impl<T> Vocab<T> {
    /// Names these words and ids: it changes whenever a word is added (0 for no word yet), so two
    /// tables with the same stamp give every word the same id.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn text_of(&self, e: &Entry<T>) -> &str {
        let start = e.start as usize;
        &self.text[start..start + e.len as usize]
    }

    /// The words, in the order of their ids.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| self.text_of(e))
    }

    /// The id and the value of `word`, whose [`fnv`] is `hash`.
    #[inline]
    pub fn find(&self, hash: u64, word: &str) -> Option<(u32, &T)> {
        let mut id = *self.by_hash.get(&hash)?;
        let bytes = word.as_bytes();
        while let Some(e) = self.entries.get(id as usize) {
            let same = e.len as usize == bytes.len()
                && if bytes.len() <= 8 {
                    e.short == short(bytes)
                } else {
                    self.text_of(e) == word
                };
            if same {
                return Some((id, &e.value));
            }
            id = e.next;
        }
        None
    }

    /// The id of `word`, whose [`fnv`] is `hash`.
    #[inline]
    pub fn get(&self, hash: u64, word: &str) -> Option<u32> {
        self.find(hash, word).map(|(id, _)| id)
    }
}

impl<T: Default> Vocab<T> {
    /// The id of `word`, added (with the default value) if new.
    pub fn intern(&mut self, word: &str) -> u32 {
        let hash = fnv(word);
        if let Some(id) = self.get(hash, word) {
            return id;
        }
        let id = self.entries.len() as u32;
        let next = self.by_hash.insert(hash, id).unwrap_or(NO_ID);
        self.entries.push(Entry {
            short: short(word.as_bytes()),
            start: self.text.len() as u32,
            len: word.len() as u32,
            next,
            value: T::default(),
        });
        self.text.push_str(word);
        self.stamp = STAMPS.fetch_add(1, Ordering::Relaxed);
        id
    }

    /// The value of word `id`, to set it.
    pub fn value_mut(&mut self, id: u32) -> &mut T {
        &mut self.entries[id as usize].value
    }
}

impl Token {
    /// Could the token read as the word whose [`fnv`] is `hash` (directly or de-elongated)?
    /// (Only the text can tell for sure: see [`Doc::is`].)
    #[inline]
    pub fn may_be(&self, hash: u64) -> bool {
        self.hash == hash || (self.alt.is_some() && self.alt_hash == hash)
    }
}

/// What the tokeniser needs from the lexicon.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenTables {
    /// Emoticons that start with punctuation, longest first.
    pub emoticons: Vec<String>,
    /// Apostrophe-less contractions ("dont" → ["do", "not"]).
    pub expansions: Expansions,
}

/// Apostrophe-less contractions, looked up by the hash of a word (most words are passed over by
/// one bit test).
#[derive(Debug, Clone, Default)]
pub(crate) struct Expansions {
    map: HashMap<String, Vec<String>>,
    hashes: HashFilter,
}

impl Expansions {
    /// The expansion of `word`, whose [`fnv`] is `hash`.
    #[inline(always)]
    fn get(&self, hash: u64, word: &str) -> Option<&Vec<String>> {
        if !self.hashes.may_contain(hash) {
            return None;
        }
        self.map.get(word)
    }
}

impl FromIterator<(String, Vec<String>)> for Expansions {
    fn from_iter<I: IntoIterator<Item = (String, Vec<String>)>>(iter: I) -> Self {
        let mut e = Expansions::default();
        for (word, parts) in iter {
            e.hashes.insert(fnv(&word));
            e.map.insert(word, parts);
        }
        e
    }
}

/// A set of hashes, answered with false positives but no false negatives: a filter in front of a
/// map that most lookups would miss.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashFilter([u64; 16]);

impl HashFilter {
    fn bit(hash: u64) -> (usize, u64) {
        let b = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize;
        (b / 64, 1 << (b % 64))
    }

    pub fn insert(&mut self, hash: u64) {
        let (w, m) = HashFilter::bit(hash);
        self.0[w] |= m;
    }

    pub fn may_contain(&self, hash: u64) -> bool {
        let (w, m) = HashFilter::bit(hash);
        self.0[w] & m != 0
    }
}

/// A tokenised text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Doc<'t> {
    pub text: &'t str,
    buf: String,
    pub tokens: Vec<Token>,
    /// Number of '!' in the text.
    pub exclamations: u32,
    /// Longest run of the same symbol ("$$$$$$", "++++++"; not "!!!" or "...").
    pub longest_symbol_run: u32,
    pub has_question_mark: bool,
    /// Longest run of '?' ("??").
    pub longest_question_run: u32,
    /// Sentences (by index, up to 64) that end with '?'.
    question_sentences: u64,
    /// The text has letters and none of them is lowercase.
    pub all_caps: bool,
    pub urls: Vec<Span>,
    pub handles: u32,
    pub hashtags: u32,
    /// Number of tokens that are numbers.
    pub numbers: u32,
    /// [`Vocab::stamp`] of the word table that gave the tokens their ids (0: none did).
    pub vocab: u64,
    /// The union of [`Token::starts`].
    pub starts: u32,
}

/// The tokens that have some marks ([`Doc::with_marks`]), found 64 at a time without a branch
/// per token (most tokens have none).
pub(crate) struct WithMarks<'d, 't> {
    doc: &'d Doc<'t>,
    marks: u32,
    /// The first token of the 64 in `bits`, and the first after them.
    base: usize,
    next: usize,
    bits: u64,
}

impl Iterator for WithMarks<'_, '_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            let tokens = self.doc.tokens.get(self.next..)?;
            if tokens.is_empty() {
                return None;
            }
            self.base = self.next;
            for (k, t) in tokens.iter().take(64).enumerate() {
                self.bits |= u64::from(t.marks & self.marks != 0) << k;
            }
            self.next += tokens.len().min(64);
        }
        let k = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some(self.base + k)
    }
}

/// The buffers of a [`Doc`], to tokenise the next text into without allocating again.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    buf: String,
    tokens: Vec<Token>,
    urls: Vec<Span>,
}

impl<'t> Doc<'t> {
    #[inline]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Give back the buffers, for [`tokenize_into`].
    pub fn into_buffers(self) -> Buffers {
        Buffers {
            buf: self.buf,
            tokens: self.tokens,
            urls: self.urls,
        }
    }

    /// The length in bytes of [`Doc::norm`].
    #[inline]
    pub fn norm_len(&self, i: usize) -> usize {
        let (a, b) = self.tokens[i].norm;
        (b - a) as usize
    }

    /// The first byte of [`Doc::norm`] (every token has one).
    #[inline]
    pub fn first_byte(&self, i: usize) -> Option<u8> {
        self.buf
            .as_bytes()
            .get(self.tokens[i].norm.0 as usize)
            .copied()
    }

    #[inline]
    pub fn norm(&self, i: usize) -> &str {
        let (a, b) = self.tokens[i].norm;
        &self.buf[a as usize..b as usize]
    }

    /// The normal form with elongations collapsed to one letter, when that differs from [`Doc::norm`].
    pub fn alt(&self, i: usize) -> Option<&str> {
        self.tokens[i]
            .alt
            .map(|(a, b)| &self.buf[a as usize..b as usize])
    }

    /// [`fnv`] of the normal form of token `i`.
    #[inline]
    pub fn hash(&self, i: usize) -> u64 {
        self.tokens[i].hash
    }

    /// [`fnv`] of [`Doc::alt`] of token `i`, when there is one.
    #[inline]
    pub fn alt_hash(&self, i: usize) -> Option<u64> {
        let t = &self.tokens[i];
        t.alt.map(|_| t.alt_hash)
    }

    /// Does token `i` read as `word` (directly or once de-elongated)? `hash` is `fnv(word)`.
    #[inline]
    pub fn is(&self, i: usize, hash: u64, word: &str) -> bool {
        let t = &self.tokens[i];
        (t.hash == hash && self.norm(i) == word)
            || (t.alt.is_some() && t.alt_hash == hash && self.alt(i) == Some(word))
    }

    /// Has token `i` any of the lexicon's `marks` (see [`Token::marks`])?
    #[inline]
    pub fn marked(&self, i: usize, marks: u32) -> bool {
        self.tokens[i].marks & marks != 0
    }

    /// The tokens that have any of the lexicon's `marks`, in order.
    pub fn with_marks(&self, marks: u32) -> WithMarks<'_, 't> {
        WithMarks {
            doc: self,
            marks,
            base: 0,
            next: 0,
            bits: 0,
        }
    }

    /// Do tokens `i` and `j` have the same normal form?
    #[inline]
    pub fn same(&self, i: usize, j: usize) -> bool {
        self.tokens[i].hash == self.tokens[j].hash && self.norm(i) == self.norm(j)
    }

    pub fn original(&self, span: Span) -> &'t str {
        span.of(self.text)
    }

    pub fn in_question(&self, i: usize) -> bool {
        let s = self.tokens[i].sentence;
        s < 64 && self.question_sentences & (1u64 << s) != 0
    }
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0x3030 | 0x303D)
}

/// Joiners and modifiers that belong to the emoji before them.
fn is_emoji_modifier(c: char) -> bool {
    matches!(
        c as u32,
        0xFE0E | 0xFE0F | 0x200D | 0x20E3 | 0x1F3FB..=0x1F3FF
    )
}

fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_alphanumeric() && !is_emoji(c)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// A plain word lowercased into the buffer by [`Builder::scan_letters`], not pushed yet.
struct Letters {
    /// Its length in the text (and in bytes).
    len: usize,
    /// Where it starts in the buffer.
    at: usize,
    uppers: u32,
    hash: u64,
    elongated: bool,
}

struct Builder<'t, 'x> {
    doc: Doc<'t>,
    tables: &'x TokenTables,
    clause_start: bool,
    sentence: u16,
    upper: u32,
    lower: u32,
}

impl<'t> Builder<'t, '_> {
    fn push(&mut self, kind: Kind, norm: &str, span: Span, caps: bool, elongated: bool) {
        let a = self.doc.buf.len();
        self.doc.buf.push_str(norm);
        self.push_buffered(kind, a, fnv(norm), span, caps, elongated);
    }

    /// Push the token whose normal form is the end of the buffer from byte `a`; `hash` is its
    /// [`fnv`].
    fn push_buffered(
        &mut self,
        kind: Kind,
        a: usize,
        hash: u64,
        span: Span,
        caps: bool,
        elongated: bool,
    ) {
        if kind == Kind::Number {
            self.doc.numbers += 1;
        }
        let buf = &mut self.doc.buf;
        let b = buf.len();
        let mut alt_hash = 0;
        let alt = if elongated {
            let mut prev = None;
            let mut k = a;
            while let Some(ch) = buf[k..b].chars().next() {
                k += ch.len_utf8();
                if Some(ch) != prev {
                    buf.push(ch);
                }
                prev = Some(ch);
            }
            let (c, d) = (b, buf.len());
            if buf[c..d] == buf[a..b] {
                buf.truncate(c);
                None
            } else {
                alt_hash = fnv(&buf[c..d]);
                Some((c as u32, d as u32))
            }
        } else {
            None
        };
        self.doc.tokens.push(Token {
            kind,
            norm: (a as u32, b as u32),
            alt,
            hash,
            alt_hash,
            word: NO_ID,
            alt_word: NO_ID,
            starts: 0,
            marks: 0,
            span,
            caps,
            elongated,
            clause_start: std::mem::take(&mut self.clause_start),
            sentence: self.sentence,
        });
    }

    fn clause_break(&mut self) {
        self.clause_start = true;
    }

    fn sentence_break(&mut self) {
        self.clause_start = true;
        // Only advance once per run of breaks, so "..." or "?!" is one boundary.
        if self
            .doc
            .tokens
            .last()
            .is_some_and(|t| t.sentence == self.sentence)
        {
            self.sentence = self.sentence.saturating_add(1);
        }
    }

    /// Lowercase the plain word at byte `i` (ASCII letters, then the end of the text or an ASCII
    /// character that is neither a letter, a digit nor an apostrophe) into the buffer, in one
    /// pass that also drops the third and later of a run of a letter ("sooo" → "soo"), counts the
    /// capitals and hashes what is kept. `None` (with nothing left behind) if there is no plain
    /// word at `i`. [`Builder::push_letters`] then pushes it, or [`Builder::drop_letters`] drops it.
    fn scan_letters(&mut self, bytes: &[u8], i: usize) -> Option<Letters> {
        let a = self.doc.buf.len();
        let buf = &mut self.doc.buf;
        let (mut uppers, mut run, mut last, mut elongated) = (0u32, 0u32, 0u8, false);
        let mut hash = FNV_OFFSET;
        let mut j = i;
        while let Some(&c) = bytes.get(j) {
            if !c.is_ascii_alphabetic() {
                break;
            }
            let lc = c.to_ascii_lowercase();
            uppers += u32::from(c != lc);
            run = if lc == last { run + 1 } else { 1 };
            last = lc;
            if run < 3 {
                buf.push(char::from(lc));
                hash = fnv_step(hash, lc);
            } else {
                elongated = true;
            }
            j += 1;
        }
        let plain = j > i
            && bytes
                .get(j)
                .is_none_or(|&b| b.is_ascii() && !b.is_ascii_alphanumeric() && b != b'\'');
        if !plain {
            buf.truncate(a);
            return None;
        }
        Some(Letters {
            len: j - i,
            at: a,
            uppers,
            hash,
            elongated,
        })
    }

    /// Forget a word from [`Builder::scan_letters`].
    fn drop_letters(&mut self, w: Letters) {
        self.doc.buf.truncate(w.at);
    }

    /// What [`Builder::push_word`] does with a plain word from [`Builder::scan_letters`] at byte
    /// `start`: no digits to split at, no apostrophes.
    fn push_letters(&mut self, w: Letters, start: usize) {
        let letters = w.len as u32;
        self.upper += w.uppers;
        self.lower += letters - w.uppers;
        let caps = letters >= 2 && w.uppers == letters;
        let span = Span::new(start, start + w.len);
        if let Some(parts) = self.tables.expansions.get(w.hash, &self.doc.buf[w.at..]) {
            self.doc.buf.truncate(w.at);
            for p in parts {
                self.push(Kind::Word, p, span, caps, w.elongated);
            }
        } else {
            self.push_buffered(Kind::Word, w.at, w.hash, span, caps, w.elongated);
        }
    }

    /// Normalise one run of word characters (already cut at hyphens) and push it as one or more tokens.
    fn push_word(&mut self, raw: &str, start: usize, hashtag: bool) {
        // Split at letter/digit transitions ("10mg" → "10", "mg"); camel-case hashtags at case changes.
        if !hashtag && !raw.bytes().any(|b| b.is_ascii_digit()) {
            // Nothing to split (the common case).
            self.push_piece(raw, start);
            return;
        }
        let mut piece_start = 0;
        let mut prev: Option<char> = None;
        let split_camel = hashtag && raw.chars().any(char::is_lowercase);
        for (i, c) in raw.char_indices() {
            if let Some(p) = prev {
                let digit_change = p.is_ascii_digit() != c.is_ascii_digit()
                    && !is_apostrophe(c)
                    && !is_apostrophe(p);
                let camel = split_camel && p.is_lowercase() && c.is_uppercase();
                if digit_change || camel {
                    self.push_piece(&raw[piece_start..i], start + piece_start);
                    piece_start = i;
                }
            }
            prev = Some(c);
        }
        self.push_piece(&raw[piece_start..], start + piece_start);
    }

    fn push_piece(&mut self, raw: &str, start: usize) {
        // An apostrophe at either end ('\'', or U+2019, which starts with 0xE2 and ends with 0x99).
        let (first, last) = (raw.as_bytes().first(), raw.as_bytes().last());
        let (raw, start) =
            if matches!(first, Some(b'\'' | 0xE2)) || matches!(last, Some(b'\'' | 0x99)) {
                let offset = raw.len() - raw.trim_start_matches(is_apostrophe).len();
                (raw.trim_matches(is_apostrophe), start + offset)
            } else {
                (raw, start)
            };
        if raw.is_empty() {
            return;
        }
        let span = Span::new(start, start + raw.len());
        if raw.bytes().all(|b| b.is_ascii_digit()) {
            self.push(Kind::Number, raw, span, false, false);
            return;
        }
        // Lowercased straight into the buffer; `a` is where this word starts.
        let a = self.doc.buf.len();
        let buf = &mut self.doc.buf;
        let mut letters = 0u32;
        let mut uppers = 0u32;
        let mut run = 0u32;
        let mut elongated = false;
        if raw.is_ascii() {
            // The same steps as below, on bytes (the common case): count the letters, and unless
            // three equal letters follow each other, the word is the text in lowercase.
            let bytes = raw.as_bytes();
            letters = bytes.iter().filter(|c| c.is_ascii_alphabetic()).count() as u32;
            uppers = bytes.iter().filter(|c| c.is_ascii_uppercase()).count() as u32;
            self.upper += uppers;
            self.lower += letters - uppers;
            elongated = bytes.windows(3).any(|w| {
                w[0].is_ascii_alphabetic()
                    && w[0].eq_ignore_ascii_case(&w[1])
                    && w[1].eq_ignore_ascii_case(&w[2])
            });
            if elongated {
                let mut last: Option<u8> = None;
                for &c in bytes {
                    let lc = c.to_ascii_lowercase();
                    if Some(lc) == last {
                        run += 1;
                    } else {
                        run = 1;
                    }
                    last = Some(lc);
                    if run < 3 || !lc.is_ascii_alphabetic() {
                        buf.push(char::from(lc));
                    }
                }
            } else {
                buf.push_str(raw);
                buf[a..].make_ascii_lowercase();
            }
        } else {
            let mut last: Option<char> = None;
            for c in raw.chars() {
                if c.is_alphabetic() {
                    letters += 1;
                    if c.is_uppercase() {
                        uppers += 1;
                        self.upper += 1;
                    } else if c.is_lowercase() {
                        self.lower += 1;
                    }
                }
                let c = if is_apostrophe(c) { '\'' } else { c };
                for lc in c.to_lowercase() {
                    if Some(lc) == last {
                        run += 1;
                    } else {
                        run = 1;
                    }
                    last = Some(lc);
                    if run >= 3 && lc.is_alphabetic() {
                        elongated = true;
                        continue;
                    }
                    buf.push(lc);
                }
            }
        }
        let caps = letters >= 2 && uppers == letters;
        // Possessive "'s" is dropped ("zyntriva's" → "zyntriva").
        let mut span = span;
        if buf[a..].ends_with("'s") {
            buf.truncate(buf.len() - 2);
            if let Some(apostrophe) = raw.rfind(is_apostrophe) {
                span.end = span.start + apostrophe as u32;
            }
        }
        let word = &buf[a..];
        if let Some(stem) = word.strip_suffix("n't") {
            let base = match stem {
                "ca" => Some("can"),
                "wo" => Some("will"),
                "ai" => Some("is"),
                "sha" => Some("shall"),
                _ => None,
            };
            match base {
                Some(base) => {
                    buf.truncate(a);
                    self.push(Kind::Word, base, span, caps, elongated);
                }
                None => {
                    let hash = fnv(stem);
                    buf.truncate(a + stem.len());
                    self.push_buffered(Kind::Word, a, hash, span, caps, elongated);
                }
            }
            self.push(Kind::Word, "not", span, caps, false);
            return;
        }
        let hash = fnv(word);
        if let Some(parts) = self.tables.expansions.get(hash, word) {
            buf.truncate(a);
            for p in parts {
                self.push(Kind::Word, p, span, caps, elongated);
            }
        } else if !word.is_empty() {
            self.push_buffered(Kind::Word, a, hash, span, caps, elongated);
        }
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Does `rest` start with "http://", "https://" or "www." (in any case)?
#[inline]
fn starts_link(rest: &str) -> bool {
    matches!(rest.as_bytes().first(), Some(b'h' | b'H' | b'w' | b'W'))
        && (starts_with_ci(rest, "http://")
            || starts_with_ci(rest, "https://")
            || starts_with_ci(rest, "www."))
}

/// The length of the word at the start of `rest`: word characters, and apostrophes between them.
fn word_len(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut j = 0;
    loop {
        while j < bytes.len() && bytes[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let Some(ch) = rest.get(j..).and_then(|r| r.chars().next()) else {
            return j;
        };
        let after = rest.get(j + ch.len_utf8()..).and_then(|r| r.chars().next());
        if is_word_char(ch) || (is_apostrophe(ch) && after.is_some_and(is_word_char)) {
            j += ch.len_utf8();
        } else {
            return j;
        }
    }
}

/// Is there a '/' before the first whitespace? (Only then can the chunk be a bare link.)
#[inline]
fn slash_before_space(rest: &str) -> bool {
    for c in rest.chars() {
        if c == '/' {
            return true;
        }
        if c.is_whitespace() {
            return false;
        }
    }
    false
}

/// Does a whitespace-delimited chunk look like a bare link ("bit.ly/x", "example.com/path")?
fn looks_like_bare_url(chunk: &str) -> bool {
    let Some(slash) = chunk.find('/') else {
        return false;
    };
    let host = &chunk[..slash];
    let Some(dot) = host.rfind('.') else {
        return false;
    };
    let tld = &host[dot + 1..];
    dot > 0
        && tld.len() >= 2
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Tokenise `text`.
pub(crate) fn tokenize<'t>(text: &'t str, tables: &TokenTables) -> Doc<'t> {
    tokenize_into(text, tables, Buffers::default())
}

/// Tokenise `text` into the (cleared) `buffers` of an earlier document.
pub(crate) fn tokenize_into<'t>(text: &'t str, tables: &TokenTables, buffers: Buffers) -> Doc<'t> {
    let Buffers {
        mut buf,
        mut tokens,
        mut urls,
    } = buffers;
    buf.clear();
    buf.reserve(text.len() + 16);
    tokens.clear();
    tokens.reserve(text.len() / 4 + 4);
    urls.clear();
    let mut b = Builder {
        doc: Doc {
            text,
            buf,
            tokens,
            urls,
            ..Doc::default()
        },
        tables,
        clause_start: true,
        sentence: 0,
        upper: 0,
        lower: 0,
    };
    let mut i = 0;
    let mut prev_char: Option<char> = None;
    let mut symbol_run = (None::<char>, 0u32);
    while i < text.len() {
        if text.as_bytes()[i] == b' ' {
            // What the steps below do with a space, in short (the most common character).
            symbol_run = (None, 0);
            prev_char = Some(' ');
            i += 1;
            continue;
        }
        if let Some(w) = b.scan_letters(text.as_bytes(), i) {
            // What the steps below do with a plain word (ASCII letters, then a space or
            // punctuation), in short, unless it starts a link.
            let rest = &text[i..];
            let n = w.len;
            let link = prev_char.is_none_or(|p| !is_word_char(p))
                && (starts_link(rest) || slash_before_space(&rest[n..]));
            if link {
                b.drop_letters(w);
            } else {
                symbol_run = (None, 0);
                b.push_letters(w, i);
                prev_char = Some(char::from(text.as_bytes()[i + n - 1]));
                i += n;
                continue;
            }
        }
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        let at_boundary = prev_char.is_none_or(|p| !is_word_char(p));
        // Runs of the same symbol ("!!!!", "$$$").
        if !c.is_alphanumeric() && !c.is_whitespace() {
            if symbol_run.0 == Some(c) {
                symbol_run.1 += 1;
            } else {
                symbol_run = (Some(c), 1);
            }
            // Only symbols that spam repeats count ("$$$$", "+++"), not "!!!" or "...".
            if c.is_ascii_punctuation()
                && !matches!(
                    c,
                    '!' | '?' | '.' | '-' | '_' | '*' | '\'' | '"' | '(' | ')'
                )
            {
                b.doc.longest_symbol_run = b.doc.longest_symbol_run.max(symbol_run.1);
            }
        } else {
            symbol_run = (None, 0);
        }

        if c.is_whitespace() {
            if c == '\n' {
                b.sentence_break();
            }
            i += c.len_utf8();
            prev_char = Some(c);
            continue;
        }
        // Links.
        if at_boundary && starts_link(rest) {
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let span = Span::new(i, i + len);
            b.doc.urls.push(span);
            b.push(Kind::Url, "<url>", span, false, false);
            i += len;
            prev_char = Some(' ');
            continue;
        }
        // The word that starts here (if one does): a bare link needs a '/' before the next space,
        // and the word itself has none.
        let word_len = if is_word_char(c) { word_len(rest) } else { 0 };
        if at_boundary && c.is_ascii_alphanumeric() && slash_before_space(&rest[word_len..]) {
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let chunk = rest[..len].trim_end_matches(['.', ',', ')', '!', '?']);
            if looks_like_bare_url(chunk) {
                let span = Span::new(i, i + chunk.len());
                b.doc.urls.push(span);
                b.push(Kind::Url, "<url>", span, false, false);
                i += chunk.len();
                prev_char = Some(' ');
                continue;
            }
        }
        // @handles.
        if c == '@' && at_boundary {
            let after = &rest[1..];
            let len = after
                .find(|ch: char| !(ch.is_alphanumeric() || matches!(ch, '_' | '.' | '-' | '@')))
                .unwrap_or(after.len());
            let handle = after[..len].trim_end_matches(['.', '-']);
            if !handle.is_empty() {
                b.doc.handles += 1;
                b.push(
                    Kind::Handle,
                    "<user>",
                    Span::new(i, i + 1 + handle.len()),
                    false,
                    false,
                );
                i += 1 + handle.len();
                prev_char = Some('_');
                continue;
            }
        }
        // Hashtags: keep the words.
        if c == '#' && at_boundary {
            let after = &rest[1..];
            let len = after
                .find(|ch: char| !(is_word_char(ch) || ch == '_'))
                .unwrap_or(after.len());
            if len > 0 {
                b.doc.hashtags += 1;
                for (off, part) in split_keep_offsets(&after[..len], '_') {
                    b.push_word(part, i + 1 + off, true);
                }
                i += 1 + len;
                prev_char = Some('_');
                continue;
            }
        }
        // The "/s" sarcasm marker.
        if c == '/'
            && at_boundary
            && rest.len() >= 2
            && rest.as_bytes()[1].eq_ignore_ascii_case(&b's')
        {
            let after = rest[2..].chars().next();
            if after.is_none_or(|a| !is_word_char(a)) {
                b.push(Kind::Emoticon, "/s", Span::new(i, i + 2), false, false);
                i += 2;
                prev_char = Some('s');
                continue;
            }
        }
        // Emoticons starting with punctuation.
        if !c.is_alphanumeric() && (prev_char.is_none_or(|p| p.is_whitespace() || !is_word_char(p)))
        {
            let mut matched = None;
            let first = rest.as_bytes()[0];
            for e in &b.tables.emoticons {
                if e.as_bytes().first() == Some(&first) && rest.starts_with(e.as_str()) {
                    let after = rest[e.len()..].chars().next();
                    if after.is_none_or(|a| !is_word_char(a)) {
                        matched = Some(e.len());
                        break;
                    }
                }
            }
            if let Some(len) = matched {
                let norm = &rest[..len];
                b.push(Kind::Emoticon, norm, Span::new(i, i + len), false, false);
                i += len;
                prev_char = Some(' ');
                continue;
            }
        }
        // Words (hyphens split words; apostrophes inside a word belong to it).
        if word_len > 0 {
            let end = i + word_len;
            let raw = &text[i..end];
            b.push_word(raw, i, false);
            prev_char = raw.chars().last();
            i = end;
            continue;
        }
        // Emoji (with their modifiers and joiners).
        if is_emoji(c) {
            let mut norm_end = c.len_utf8();
            let mut len = c.len_utf8();
            for ch in rest[len..].chars() {
                if is_emoji_modifier(ch) {
                    len += ch.len_utf8();
                } else {
                    break;
                }
            }
            if norm_end > len {
                norm_end = len;
            }
            let norm = &rest[..norm_end];
            b.push(Kind::Emoji, norm, Span::new(i, i + len), false, false);
            i += len;
            prev_char = Some(' ');
            continue;
        }
        // Punctuation.
        match c {
            '!' => {
                b.doc.exclamations += 1;
                b.sentence_break();
            }
            '?' => {
                b.doc.has_question_mark = true;
                if symbol_run.0 == Some('?') {
                    b.doc.longest_question_run = b.doc.longest_question_run.max(symbol_run.1);
                }
                if b.sentence < 64 {
                    b.doc.question_sentences |= 1u64 << b.sentence;
                }
                b.sentence_break();
            }
            '.' | '\u{2026}' => b.sentence_break(),
            ',' | ';' | ':' | '(' | ')' | '"' | '\u{201C}' | '\u{201D}' | '\u{2014}'
            | '\u{2013}' => b.clause_break(),
            '-' if prev_char.is_some_and(char::is_whitespace) => b.clause_break(),
            _ => {}
        }
        prev_char = Some(c);
        i += c.len_utf8();
    }
    b.doc.all_caps = b.upper >= 4 && b.lower == 0;
    b.doc
}

/// Split `s` at `sep`, keeping each part's byte offset.
fn split_keep_offsets(s: &str, sep: char) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    s.split(sep)
        .map(move |part| {
            let o = offset;
            offset += part.len() + sep.len_utf8();
            (o, part)
        })
        .filter(|(_, p)| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> TokenTables {
        TokenTables {
            emoticons: vec![":-)".into(), ":)".into(), ":(".into(), "<3".into()],
            expansions: [(
                "dont".to_string(),
                vec!["do".to_string(), "not".to_string()],
            )]
            .into_iter()
            .collect(),
        }
    }

    fn norms(text: &str) -> Vec<String> {
        let t = tables();
        let d = tokenize(text, &t);
        (0..d.len()).map(|i| d.norm(i).to_string()).collect()
    }

    #[test]
    fn markers_hashtags_and_contractions() {
        assert_eq!(
            norms("@acme_care Didn't help!! see https://x.co/abc #NeverAgain :) dont"),
            vec![
                "<user>", "did", "not", "help", "see", "<url>", "never", "again", ":)", "do", "not"
            ]
        );
    }

    #[test]
    fn elongation_numbers_and_emoji() {
        let t = tables();
        let d = tokenize("Sooo GOOOD 10mg 🙄🙄 bit.ly/free", &t);
        assert_eq!(d.norm(0), "soo");
        assert!(d.tokens[0].elongated);
        assert_eq!(d.alt(0), Some("so"));
        assert_eq!(d.norm(1), "good");
        assert!(d.tokens[1].caps);
        assert_eq!(d.norm(2), "10");
        assert_eq!(d.tokens[2].kind, Kind::Number);
        assert_eq!(d.norm(3), "mg");
        assert_eq!(d.norm(4), "🙄");
        assert_eq!(d.tokens[5].kind, Kind::Emoji);
        assert_eq!(d.tokens[6].kind, Kind::Url);
        assert_eq!(d.original(d.tokens[6].span), "bit.ly/free");
    }

    #[test]
    fn sentences_questions_and_spans() {
        let t = tables();
        let d = tokenize("Great flight. Why is it late? /s", &t);
        assert!(!d.in_question(0));
        assert!(d.in_question(3));
        assert_eq!(d.norm(6), "/s");
        assert_eq!(d.original(d.tokens[1].span), "flight");
        assert!(d.tokens[2].clause_start);
    }
}
