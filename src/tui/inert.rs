//! Makes text from the network inert before it reaches the terminal: no control characters, no
//! escape sequences, no bidirectional overrides or invisible characters that could fool the eye.

use unicode_segmentation::UnicodeSegmentation;

/// Text safe to draw on one line: controls and line breaks become spaces, runs of white space
/// collapse, and characters that reorder or hide text are dropped. A zero-width joiner that joins
/// nothing (it ends its grapheme, as after a digit) is dropped too: the terminal draws what
/// follows it on its own, while the line's measured width counted the pair as one emoji, so the
/// line came out wider than measured (found by fuzzing). The halfwidth katakana sound marks are
/// written as their standalone forms (see [`sound_mark`]).
pub fn one_line(s: &str) -> String {
    let out = collapse(s);
    if !out.contains(ZWJ) {
        return out;
    }
    let joined: String = out
        .graphemes(true)
        .map(|g| g.trim_end_matches(ZWJ))
        .collect();
    collapse(&joined)
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

    #[test]
    fn paragraphs_keep_line_breaks_and_emoji() {
        assert_eq!(paragraph("a\n\n\n\nb"), "a\n\nb");
        assert_eq!(paragraph("👨‍👩‍👧 ok"), "👨‍👩‍👧 ok");
    }
}
