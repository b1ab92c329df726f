//! Makes text from the network inert before it reaches the terminal: no control characters, no
//! escape sequences, no bidirectional overrides or invisible characters that could fool the eye.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Text safe to draw on one line: controls and line breaks become spaces, runs of white space
/// collapse, and characters that reorder or hide text are dropped. A zero-width joiner that joins
/// nothing (it ends its grapheme, as after a digit) is dropped too: the terminal draws what
/// follows it on its own, while the line's measured width counted the pair as one emoji, so the
/// line came out wider than measured (found by fuzzing). The halfwidth katakana sound marks are
/// written as their standalone forms (see [`sound_mark`]), and letters that would be measured as
/// one ligature but drawn apart are kept apart (see [`unligate`]).
pub fn one_line(s: &str) -> String {
    let mut out = collapse(s);
    if out.contains(ZWJ) {
        let joined: String = out
            .graphemes(true)
            .map(|g| g.trim_end_matches(ZWJ))
            .collect();
        out = collapse(&joined);
    }
    unligate(out)
}

/// Keeps apart the letters that unicode-width measures as one ligature across two graphemes while
/// ratatui, like the terminal, draws each grapheme in columns of its own: an Arabic lam before an
/// alef (`لا` measures 1 column and draws 2), the Lisu tone letters and the Tifinagh consonant
/// joiner. A line holding one drew wider than measured (found by fuzzing). Between a lam and an
/// alef goes a zero-width joiner, which unicode-width reads as the end of the ligature and which
/// leaves the letters as the terminal shows them; a mark that joins the pair (the Tifinagh
/// joiner) is dropped; anything else gets a space between.
fn unligate(s: String) -> String {
    if !s.chars().any(joins_across) || measured_as_drawn(&s) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Where the last grapheme written to `out` starts.
    let mut last = 0;
    for g in s.graphemes(true) {
        if last < out.len() && !measured_as_drawn(&format!("{}{g}", &out[last..])) {
            let prev = out[last..].to_owned();
            let mut trimmed = prev.clone();
            // A grapheme's later characters are marks on its first.
            let mark = trimmed.pop().filter(|_| !trimmed.is_empty());
            if measured_as_drawn(&format!("{prev}{ZWJ}{g}")) {
                out.push(ZWJ);
            } else if mark.is_some() && measured_as_drawn(&format!("{trimmed}{g}")) {
                out.truncate(last);
                out.push_str(&trimmed);
            } else {
                out.push(' ');
            }
        }
        last = out.len();
        out.push_str(g);
    }
    out
}

/// Characters whose measured width can depend on a neighbour in another grapheme (unicode-width's
/// script-specific ligatures): the Arabic letters of the lam group, the Lisu tone letters, the
/// Tifinagh consonant joiner and the Khmer sign coeng. Only lines holding one are looked at
/// closely, which keeps the check off the path of every other line drawn.
fn joins_across(c: char) -> bool {
    matches!(c,
        '\u{0644}' | '\u{06B5}'..='\u{06B8}' | '\u{076A}' | '\u{08A6}'
        | '\u{A4F8}'..='\u{A4FD}' | '\u{2D7F}' | '\u{17D2}'
    )
}

/// Whether `s` is measured as wide as it is drawn, one grapheme at a time.
fn measured_as_drawn(s: &str) -> bool {
    s.width() == s.graphemes(true).map(UnicodeWidthStr::width).sum::<usize>()
}

const ZWJ: char = '\u{200D}';

fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if dropped(c) {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(sound_mark(c));
            space = false;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Text safe to draw as a paragraph: like [`one_line`] but line breaks are kept (never more than one
/// blank line in a row, none at the ends).
pub fn paragraph(s: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in s.split('\n').map(one_line) {
        let blank = line.is_empty();
        if blank && out.last().is_none_or(String::is_empty) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out.join("\n")
}

/// The halfwidth katakana voiced and semi-voiced sound marks (U+FF9E, U+FF9F) as the standalone
/// marks of the same meaning (U+309B, U+309C); any other character as it is. Terminals draw the
/// halfwidth marks as characters of their own, and ratatui draws them so, but unicode-width,
/// which measures lines for the layout, counts them as part of the character before: a line
/// holding one drew a column wider than measured (found by fuzzing). The standalone marks are
/// two columns wide for both.
fn sound_mark(c: char) -> char {
    match c {
        '\u{FF9E}' => '\u{309B}',
        '\u{FF9F}' => '\u{309C}',
        c => c,
    }
}

/// Characters that reorder or hide text (bidi controls, zero-width spaces, BOM) and escape-prone
/// C1 controls. The zero-width joiner stays: emoji sequences need it.
fn dropped(c: char) -> bool {
    matches!(c,
        '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}'
        | '\u{0080}'..='\u{009F}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_become_harmless() {
        let hostile = "hi\x1b]0;pwned\x07 there\x1b[2J\r\nnext\u{202E}gpj.exe\u{200B}\u{9b}31m";
        let s = one_line(hostile);
        assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        assert!(!s.contains('\u{202E}') && !s.contains('\u{200B}'));
        assert_eq!(one_line("  a \t\n b  "), "a b");
    }

    /// Fuzzing found it (fuzz/regressions/inert/loose-joiner): a joiner after a keycap-style
    /// `2\u{FE0F}` made the line measure 4 columns and draw 6.
    #[test]
    fn a_joiner_that_joins_nothing_is_dropped() {
        use unicode_width::UnicodeWidthStr;
        let s = one_line("\u{FFFD}\u{FFFD}2\u{FE0F}\u{200D}\u{1F467}");
        assert_eq!(s, "\u{FFFD}\u{FFFD}2\u{FE0F}\u{1F467}");
        let drawn: usize = s.graphemes(true).map(UnicodeWidthStr::width).sum();
        assert_eq!(s.width(), drawn);
        assert_eq!(one_line("a \u{200D} b"), "a b");
        assert_eq!(one_line("👨\u{200D}👩\u{200D}👧"), "👨\u{200D}👩\u{200D}👧");
    }

    /// Fuzzing found it (fuzz/regressions/inert/halfwidth-sound-mark): a line holding `\u{FF9F}`
    /// measured 3 columns and drew 4.
    #[test]
    fn halfwidth_sound_marks_take_the_columns_they_measure() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect;
        use ratatui::text::Line;
        let drawn = |s: &str| {
            let mut buf = Buffer::empty(Rect::new(0, 0, 40, 1));
            buf.set_stringn(0, 0, s, 40, ratatui::style::Style::default())
                .0
        };
        for text in [
            "\u{FFFD} \u{FF9F}",
            "\u{FF8A}\u{FF9F}\u{FF70}\u{FF84}",
            "\u{FF76}\u{FF9E}",
        ] {
            let s = one_line(text);
            assert!(!s.contains(['\u{FF9E}', '\u{FF9F}']), "{s:?}");
            assert_eq!(
                usize::from(drawn(&s)),
                Line::from(s.as_str()).width(),
                "{s:?}"
            );
        }
        assert_eq!(one_line("\u{FF8A}\u{FF9F}"), "\u{FF8A}\u{309C}");
        // The combining marks keep combining.
        assert_eq!(one_line("\u{304B}\u{3099}"), "\u{304B}\u{3099}");
    }

    /// Fuzzing found it (fuzz/regressions/inert/lam-alef): `\u{6B5}\u{675}`, a lam and an alef,
    /// measured one column and drew two.
    #[test]
    fn letters_measured_as_one_ligature_are_drawn_apart() {
        for (text, want) in [
            ("\u{644}\u{627}", "\u{644}\u{200D}\u{627}"),
            ("\u{6B5}\u{675}", "\u{6B5}\u{200D}\u{675}"),
            ("\u{644}\u{64E}\u{627}", "\u{644}\u{64E}\u{200D}\u{627}"),
            ("\u{A4F8}\u{A4FC}", "\u{A4F8} \u{A4FC}"),
            ("\u{2D31}\u{2D7F}\u{2D32}", "\u{2D31}\u{2D32}"),
        ] {
            assert!(!measured_as_drawn(text), "{text:?} is no test");
            let s = one_line(text);
            assert_eq!(s, want);
            assert!(measured_as_drawn(&s), "{s:?}");
            assert_eq!(one_line(&s), s, "not stable");
        }
        // Khmer's subscript consonants are one grapheme with their base: left as they are.
        assert_eq!(
            one_line("\u{1781}\u{17D2}\u{1789}"),
            "\u{1781}\u{17D2}\u{1789}"
        );
        assert_eq!(one_line("\u{644}\u{628}"), "\u{644}\u{628}");
    }

    #[test]
    fn paragraphs_keep_line_breaks_and_emoji() {
        assert_eq!(paragraph("a\n\n\n\nb"), "a\n\nb");
        assert_eq!(paragraph("👨‍👩‍👧 ok"), "👨‍👩‍👧 ok");
    }
}
