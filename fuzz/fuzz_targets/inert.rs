//! The inert-text sanitiser: any text from the network. The output holds no control, escape,
//! bidirectional or invisible character, is stable, and takes on screen exactly the width the
//! layout measures for it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use tonedesk::tui::inert::{one_line, paragraph};
use unicode_width::UnicodeWidthStr;

/// Characters that must never reach the terminal from the network.
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}' | '\u{200C}' | '\u{200E}' | '\u{200F}' | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// The columns `line` takes when drawn, as ratatui draws it.
fn drawn_width(line: &str) -> usize {
    let measured = Line::from(line).width();
    let width = u16::try_from(measured + 4).unwrap_or(u16::MAX);
    let mut buf = Buffer::empty(Rect::new(0, 0, width, 1));
    let (x, _) = buf.set_stringn(0, 0, line, usize::from(width), Style::default());
    usize::from(x)
}

fn check_line(s: &str) {
    assert!(!s.chars().any(hostile), "{s:?}");
    assert!(!s.starts_with(' ') && !s.ends_with(' '), "{s:?}");
    assert!(!s.contains("  "), "{s:?}");
    assert_eq!(one_line(s), s, "not stable");
    if s.len() <= 4096 {
        assert_eq!(
            drawn_width(s),
            UnicodeWidthStr::width(s),
            "measured and drawn widths differ: {s:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let line = one_line(&text);
    check_line(&line);

    let para = paragraph(&text);
    assert!(!para.starts_with('\n') && !para.ends_with('\n'), "{para:?}");
    assert!(!para.contains("\n\n\n"), "{para:?}");
    for l in para.split('\n') {
        check_line(l);
    }
    assert_eq!(paragraph(&para), para, "not stable");
});
