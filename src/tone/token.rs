//! Tokeniser: lowercase words, markers for @handles and URLs, hashtag words, emoji and emoticons as
//! tokens, elongations collapsed ("sooo" → "soo"), "n't" contractions expanded ("didn't" → "did not").
//!
//! One pass over the text, two allocations per document (the token list and one string buffer that
//! holds every normalised token).

use std::collections::HashMap;

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

/// What the tokeniser needs from the lexicon.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenTables {
    /// Emoticons that start with punctuation, longest first.
    pub emoticons: Vec<String>,
    /// Apostrophe-less contractions ("dont" → ["do", "not"]).
    pub expansions: HashMap<String, Vec<String>>,
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
}

impl<'t> Doc<'t> {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

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

    /// Does token `i` read as `word` (directly or once de-elongated)?
    pub fn is(&self, i: usize, word: &str) -> bool {
        self.norm(i) == word || self.alt(i) == Some(word)
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
    c.is_alphanumeric() && !is_emoji(c)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

struct Builder<'t, 'x> {
    doc: Doc<'t>,
    tables: &'x TokenTables,
    clause_start: bool,
    sentence: u16,
    upper: u32,
    lower: u32,
    word: String,
}

impl<'t> Builder<'t, '_> {
    fn push(&mut self, kind: Kind, norm: &str, span: Span, caps: bool, elongated: bool) {
        let a = self.doc.buf.len() as u32;
        self.doc.buf.push_str(norm);
        let b = self.doc.buf.len() as u32;
        let alt = if elongated {
            let c = self.doc.buf.len() as u32;
            let mut prev = None;
            for ch in norm.chars() {
                if Some(ch) != prev {
                    self.doc.buf.push(ch);
                }
                prev = Some(ch);
            }
            let d = self.doc.buf.len() as u32;
            let collapsed = &self.doc.buf[c as usize..d as usize];
            if collapsed == norm {
                self.doc.buf.truncate(c as usize);
                None
            } else {
                Some((c, d))
            }
        } else {
            None
        };
        self.doc.tokens.push(Token {
            kind,
            norm: (a, b),
            alt,
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

    /// Normalise one run of word characters (already cut at hyphens) and push it as one or more tokens.
    fn push_word(&mut self, raw: &str, start: usize, hashtag: bool) {
        // Split at letter/digit transitions ("10mg" → "10", "mg"); camel-case hashtags at case changes.
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
        let raw_trimmed = raw.trim_matches(is_apostrophe);
        if raw_trimmed.is_empty() {
            return;
        }
        let offset = raw.len() - raw.trim_start_matches(is_apostrophe).len();
        let start = start + offset;
        let span = Span::new(start, start + raw_trimmed.len());
        let raw = raw_trimmed;
        if raw.chars().all(|c| c.is_ascii_digit()) {
            self.push(Kind::Number, raw, span, false, false);
            return;
        }
        let mut word = std::mem::take(&mut self.word);
        word.clear();
        let mut letters = 0u32;
        let mut uppers = 0u32;
        let mut run = 0u32;
        let mut elongated = false;
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
                word.push(lc);
            }
        }
        let caps = letters >= 2 && uppers == letters;
        // Possessive "'s" is dropped ("zyntriva's" → "zyntriva").
        let mut span = span;
        if let Some(stem) = word.strip_suffix("'s") {
            let n = stem.len();
            word.truncate(n);
            if let Some(apostrophe) = raw.rfind(is_apostrophe) {
                span.end = span.start + apostrophe as u32;
            }
        }
        if let Some(stem) = word.strip_suffix("n't") {
            let base = match stem {
                "ca" => "can",
                "wo" => "will",
                "ai" => "is",
                "sha" => "shall",
                other => other,
            };
            let base = base.to_owned();
            self.push(Kind::Word, &base, span, caps, elongated);
            self.push(Kind::Word, "not", span, caps, false);
        } else if let Some(parts) = self.tables.expansions.get(word.as_str()) {
            for p in parts {
                self.push(Kind::Word, p, span, caps, elongated);
            }
        } else if !word.is_empty() {
            self.push(Kind::Word, &word, span, caps, elongated);
        }
        self.word = word;
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
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
    let mut b = Builder {
        doc: Doc {
            text,
            buf: String::with_capacity(text.len() + 16),
            tokens: Vec::with_capacity(text.len() / 4 + 4),
            ..Doc::default()
        },
        tables,
        clause_start: true,
        sentence: 0,
        upper: 0,
        lower: 0,
        word: String::new(),
    };
    let mut i = 0;
    let mut prev_char: Option<char> = None;
    let mut symbol_run = (None::<char>, 0u32);
    while i < text.len() {
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
        if at_boundary
            && (starts_with_ci(rest, "http://")
                || starts_with_ci(rest, "https://")
                || starts_with_ci(rest, "www."))
        {
            let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let span = Span::new(i, i + len);
            b.doc.urls.push(span);
            b.push(Kind::Url, "<url>", span, false, false);
            i += len;
            prev_char = Some(' ');
            continue;
        }
        if at_boundary && c.is_ascii_alphanumeric() {
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
            for e in &b.tables.emoticons {
                if rest.starts_with(e.as_str()) {
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
        if is_word_char(c) {
            let mut end = i;
            let mut it = rest.char_indices().peekable();
            while let Some((off, ch)) = it.next() {
                let next_is_word = it.peek().is_some_and(|&(_, n)| is_word_char(n));
                if is_word_char(ch) || (is_apostrophe(ch) && next_is_word) {
                    end = i + off + ch.len_utf8();
                } else {
                    break;
                }
            }
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
