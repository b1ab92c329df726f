//! The lean backend against ratatui's `CrosstermBackend`: the same frames drawn through both into
//! a terminal emulator (`vt100`) must leave the same screen, cell by cell (text and style), after
//! every frame; and the lean one must write fewer bytes.

use std::cell::RefCell;
use std::io::{self, Write};
use std::num::NonZeroU16;
use std::rc::Rc;

use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, CrosstermBackend, WindowSize};
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::{Position, Rect, Size};
use ratatui::style::{Color, Modifier, Style};

use super::{Cursor, Fault, LeanBackend, Pen, moves, sgr};

/// A writer whose bytes the test can read while a terminal owns it.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// ratatui's CrosstermBackend on a screen of a given size (it would ask the process's terminal).
struct Reference {
    inner: CrosstermBackend<Shared>,
    size: Size,
}

impl Backend for Reference {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(Position::ORIGIN)
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.inner.set_cursor_position(position)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> io::Result<Size> {
        Ok(self.size)
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        Ok(WindowSize {
            columns_rows: self.size,
            pixels: Size::default(),
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        Backend::flush(&mut self.inner)
    }
}

fn emulator(size: Size) -> vt100::Parser {
    let mut p = vt100::Parser::new(nz(size.height), nz(size.width), 0);
    // As the console starts: raw mode's terminal in the alternate screen.
    p.process(b"\x1b[?1049h");
    p
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("a screen has a size")
}

/// What a person sees in one cell (and what vt100 keeps of its style). An erased cell and a
/// printed space look the same.
fn seen(p: &vt100::Parser, row: u16, col: u16) -> String {
    let Some(c) = p.screen().cell(row, col) else {
        return "-".into();
    };
    let text = match c.contents() {
        "" if !c.is_wide_continuation() => " ",
        t => t,
    };
    format!(
        "{text:?} fg={:?} bg={:?} b={} d={} i={} u={} r={} w={}{}",
        c.fgcolor(),
        c.bgcolor(),
        c.bold(),
        c.dim(),
        c.italic(),
        c.underline(),
        c.inverse(),
        c.is_wide(),
        c.is_wide_continuation(),
    )
}

/// The first cell where the two emulated screens differ, described.
fn difference(a: &vt100::Parser, b: &vt100::Parser, size: Size) -> Option<String> {
    for row in 0..size.height {
        for col in 0..size.width {
            let (x, y) = (seen(a, row, col), seen(b, row, col));
            if x != y {
                return Some(format!(
                    "at row {row} col {col}:\n  lean:      {x}\n  crossterm: {y}\nlean screen:\n{}\ncrossterm screen:\n{}",
                    a.screen().contents(),
                    b.screen().contents()
                ));
            }
        }
    }
    None
}

/// One change to the screen's model between frames.
#[derive(Clone, Debug)]
enum Op {
    /// Text at a place, in a style (from `STYLES`), over what was there.
    Text(u16, u16, String, usize),
    /// Blank cells from a place, on a background (from `BGS`).
    Blank(u16, u16, u16, usize),
    /// The window takes a new size.
    Resize(u16, u16),
    /// `terminal.clear()`.
    Clear,
}

const BGS: [Color; 5] = [
    Color::Reset,
    Color::Reset,
    Color::Blue,
    Color::Indexed(17),
    Color::Rgb(9, 8, 7),
];

/// Styles for text. Bold and dim are never together: terminals disagree about the pair (vt100
/// keeps whichever came last), and so would the two backends' screens, whose order differs.
fn style(i: usize) -> Style {
    const FGS: [Color; 7] = [
        Color::Reset,
        Color::Red,
        Color::White,
        Color::DarkGray,
        Color::Indexed(200),
        Color::Rgb(1, 2, 3),
        Color::Reset,
    ];
    const MODS: [Modifier; 11] = [
        Modifier::empty(),
        Modifier::empty(),
        Modifier::BOLD,
        Modifier::DIM,
        Modifier::ITALIC,
        Modifier::UNDERLINED,
        Modifier::REVERSED,
        Modifier::BOLD.union(Modifier::UNDERLINED),
        Modifier::CROSSED_OUT,
        Modifier::SLOW_BLINK,
        Modifier::HIDDEN,
    ];
    Style::new()
        .fg(FGS[i % FGS.len()])
        .bg(BGS[(i / 7) % BGS.len()])
        .add_modifier(MODS[(i / 35) % MODS.len()])
}

const STYLES: usize = 7 * 5 * 11;

fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => Just("ab"),
        4 => Just("c"),
        6 => Just(" "),
        3 => Just("    "),
        2 => Just("世"),
        1 => Just("界a"),
        1 => Just("😀"),
        1 => Just("é"),
        1 => Just("─"),
        1 => Just("e\u{301}"),
    ];
    prop::collection::vec(piece, 1..12).prop_map(|v| v.concat())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0u16..40, 0u16..12, text(), 0..STYLES).prop_map(|(x, y, t, s)| Op::Text(x, y, t, s)),
        5 => (0u16..40, 0u16..12, 1u16..40, 0..BGS.len()).prop_map(|(x, y, n, b)| Op::Blank(x, y, n, b)),
        1 => (1u16..40, 1u16..12).prop_map(|(w, h)| Op::Resize(w, h)),
        1 => Just(Op::Clear),
    ]
}

fn frames() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..6), 1..24)
}

/// Applies `op` to the model of the screen.
fn apply(model: &mut Buffer, op: &Op) {
    let area = model.area;
    match *op {
        Op::Text(x, y, ref t, s) if x < area.width && y < area.height => {
            // Whole styles, not patches over what was there.
            let max = usize::from(area.width - x);
            model.set_stringn(x, y, t, max, Style::reset().patch(style(s)));
        }
        Op::Blank(x, y, n, b) if x < area.width && y < area.height => {
            for c in x..(x + n).min(area.width) {
                let mut blank = Cell::default();
                blank.set_bg(BGS[b]);
                model[(c, y)] = blank;
            }
        }
        _ => {}
    }
}

/// Draws `frames` through both backends into an emulator each, comparing the screens after every
/// frame; the lean backend with `fault` switched on. Returns the first difference, and the bytes
/// each backend wrote.
fn compare(frames: &[Vec<Op>], fault: Option<Fault>) -> (Option<String>, usize, usize) {
    let mut size = Size::new(24, 8);
    let (lean_out, ref_out) = (Shared::default(), Shared::default());
    let mut lean_backend = LeanBackend::headless(lean_out.clone(), size);
    lean_backend.fault = fault;
    let mut lean = Terminal::new(lean_backend).expect("a terminal");
    let mut reference = Terminal::new(Reference {
        inner: CrosstermBackend::new(ref_out.clone()),
        size,
    })
    .expect("a terminal");
    let (mut lean_vt, mut ref_vt) = (emulator(size), emulator(size));
    let mut model = Buffer::empty(Rect::from((Position::ORIGIN, size)));
    let (mut lean_bytes, mut ref_bytes) = (0, 0);
    for (n, ops) in frames.iter().enumerate() {
        for op in ops {
            match *op {
                Op::Resize(w, h) => {
                    size = Size::new(w, h);
                    lean.backend_mut().set_size(size);
                    reference.backend_mut().size = size;
                    lean_vt.set_size(nz(h), nz(w));
                    ref_vt.set_size(nz(h), nz(w));
                    // A new screen's model is blank (Buffer::resize would keep the cells in
                    // their order, a wide character possibly cut at the right edge, which
                    // ratatui's diff does not expect).
                    model = Buffer::empty(Rect::from((Position::ORIGIN, size)));
                }
                Op::Clear => {
                    lean.clear().expect("clears");
                    reference.clear().expect("clears");
                }
                _ => apply(&mut model, op),
            }
        }
        lean.draw_model(&model);
        reference.draw_model(&model);
        let (l, r) = (lean_out.take(), ref_out.take());
        lean_bytes += l.len();
        ref_bytes += r.len();
        lean_vt.process(&l);
        ref_vt.process(&r);
        if let Some(d) = difference(&lean_vt, &ref_vt, size) {
            return (
                Some(format!(
                    "after frame {n} ({ops:?}), {d}\nlean wrote {:?}",
                    String::from_utf8_lossy(&l)
                )),
                lean_bytes,
                ref_bytes,
            );
        }
    }
    (None, lean_bytes, ref_bytes)
}

trait Draw {
    fn draw_model(&mut self, model: &Buffer);
}

impl<B: Backend> Draw for Terminal<B> {
    fn draw_model(&mut self, model: &Buffer) {
        let drawn = self.draw(|f| {
            let area = f.area();
            let buf = f.buffer_mut();
            for y in 0..area.height.min(model.area.height) {
                for x in 0..area.width.min(model.area.width) {
                    buf[(x, y)] = model[(x, y)].clone();
                }
            }
        });
        assert!(drawn.is_ok(), "the frame is drawn");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random styled text, wide characters, blanks, resizes and clears: after every frame the
    /// lean backend's screen is the one CrosstermBackend's leaves.
    #[test]
    fn lean_and_crossterm_leave_the_same_screen(frames in frames()) {
        let (diff, _, _) = compare(&frames, None);
        prop_assert!(diff.is_none(), "{}", diff.unwrap_or_default());
    }
}

/// Frames that need erasing and moves down by line feed: a long text replaced by a short one on
/// rows below each other, as the detail pane's lines are when the selection moves.
fn detail_pane_frames() -> Vec<Vec<Op>> {
    let long = "the first mention's long text goes here";
    let mut frames = vec![vec![Op::Clear]];
    for y in 1..6 {
        frames[0].push(Op::Text(2, y, long.into(), 0));
    }
    for round in 0..3u16 {
        let mut f = Vec::new();
        for y in 1..6 {
            f.push(Op::Blank(2, y, 40, 0));
            f.push(Op::Text(
                2,
                y,
                format!("short {round}{y}"),
                (y as usize) * 7,
            ));
        }
        frames.push(f);
        frames.push(
            (1..6)
                .map(|y| Op::Text(2, y, long.into(), (round as usize) * 35))
                .collect(),
        );
    }
    frames
}

/// The comparison above is worth something only if it fails for a broken encoder.
#[test]
fn the_comparison_catches_a_broken_encoder() {
    let frames = detail_pane_frames();
    assert_eq!(compare(&frames, None).0, None);
    for fault in [Fault::EraseOneShort, Fault::MoveOneShort] {
        let (diff, _, _) = compare(&frames, Some(fault));
        assert!(diff.is_some(), "{fault:?} went unnoticed");
    }
}

#[test]
fn the_lean_backend_writes_less_for_a_moving_detail_pane() {
    let (diff, lean, reference) = compare(&detail_pane_frames(), None);
    assert_eq!(diff, None);
    assert!(
        lean * 10 < reference * 7,
        "lean {lean} bytes against crossterm's {reference}"
    );
}

/// Erasing cells to the right edge, and a blank run on a background, with their bytes.
#[test]
fn blanks_are_erased_with_their_background() {
    let size = Size::new(20, 3);
    let out = Shared::default();
    let mut t = Terminal::new(LeanBackend::headless(out.clone(), size)).expect("a terminal");
    t.clear().expect("clears");
    let mut model = Buffer::empty(Rect::from((Position::ORIGIN, size)));
    model.set_string(0, 0, "abcdefghijklmnopqrst", Style::new());
    t.draw_model(&model);
    out.take();
    // Blank from column 4 to the edge: one EL after the move.
    let mut blank = Buffer::empty(Rect::from((Position::ORIGIN, size)));
    blank.set_string(0, 0, "abcd", Style::new());
    t.draw_model(&blank);
    assert_eq!(String::from_utf8_lossy(&out.take()), "\x1b[5G\x1b[K");
    // Blanks on a blue background in the middle of the row: the two blanks before them printed
    // again (shorter than a move), the background, then ECH.
    for x in 6..16 {
        blank[(x, 0)].set_bg(Color::Blue);
    }
    t.draw_model(&blank);
    assert_eq!(
        String::from_utf8_lossy(&out.take()),
        "  \x1b[44m\x1b[10X\x1b[m"
    );
}

/// The cursor is hidden after every frame: said once, and again after a clear (where the console
/// takes the terminal back from an editor) or a resize.
#[test]
fn a_hidden_cursor_is_hidden_once() {
    let size = Size::new(10, 2);
    let out = Shared::default();
    let mut t = Terminal::new(LeanBackend::headless(out.clone(), size)).expect("a terminal");
    let mut model = Buffer::empty(Rect::from((Position::ORIGIN, size)));
    t.draw_model(&model);
    assert_eq!(out.take(), b"\x1b[?25l");
    model.set_string(0, 0, "a", Style::new());
    t.draw_model(&model);
    assert_eq!(out.take(), b"\x1b[Ha");
    t.clear().expect("clears");
    // (The cursor is put back where it was, where it still is.)
    assert_eq!(out.take(), b"\x1b[2J");
    t.draw_model(&model);
    assert_eq!(out.take(), b"\ra\x1b[?25l");
    t.show_cursor().expect("shows");
    t.show_cursor().expect("shows");
    assert_eq!(out.take(), b"\x1b[?25h");
    t.backend_mut().set_size(Size::new(12, 2));
    t.draw_model(&Buffer::empty(Rect::new(0, 0, 12, 2)));
    assert!(out.take().ends_with(b"\x1b[?25l"));
}

/// Every move lands where it says, from every known and unknown cursor, in an emulator; the
/// cursor left at the right edge after printing there (where terminals wait to wrap) included.
#[test]
fn moves_land_where_they_say() {
    let (w, h) = (12u16, 5u16);
    for fy in 0..h {
        for fx in 0..w {
            for tx in 0..w {
                for ty in 0..h {
                    for from in [
                        Cursor::at(fx, fy),
                        Cursor {
                            row: Some(fy),
                            col: None,
                        },
                        Cursor::UNKNOWN,
                    ] {
                        let mut p = vt100::Parser::new(nz(h), nz(w), 0);
                        p.process(b"\x1b[?1049h");
                        // Put the cursor at (fx, fy); when its column counts as unknown, print
                        // to the right edge instead, leaving the terminal waiting to wrap.
                        let mut setup = Vec::new();
                        moves(Cursor::UNKNOWN, fx, fy, &mut setup);
                        if from.col.is_none() && from.row.is_some() {
                            setup.extend(std::iter::repeat_n(b'x', usize::from(w - fx)));
                        }
                        p.process(&setup);
                        let mut m = Vec::new();
                        moves(from, tx, ty, &mut m);
                        p.process(&m);
                        assert_eq!(
                            p.screen().cursor_position(),
                            (ty, tx),
                            "from {from:?} ({fx},{fy}) by {:?}",
                            String::from_utf8_lossy(&m)
                        );
                    }
                }
            }
        }
    }
}

/// A terminal's style as SGR parameters leave it: every attribute ratatui has, the underline
/// colour included (vt100 keeps only some).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sgr {
    fg: Option<[u16; 4]>,
    bg: Option<[u16; 4]>,
    ul: Option<[u16; 4]>,
    on: u16,
}

/// Runs the SGR sequences in `bytes` on `state`.
fn run_sgr(mut s: Sgr, bytes: &[u8]) -> Sgr {
    let text = String::from_utf8_lossy(bytes);
    for seq in text.split('\x1b').filter(|q| !q.is_empty()) {
        let body = seq
            .strip_prefix('[')
            .and_then(|q| q.strip_suffix('m'))
            .unwrap_or_else(|| panic!("not an SGR sequence: {seq:?}"));
        let ps: Vec<u16> = if body.is_empty() {
            vec![0]
        } else {
            body.split(';')
                .map(|p| p.parse().expect("a number"))
                .collect()
        };
        let mut i = 0;
        while i < ps.len() {
            // [kind, values…]: 5 indexed, 2 RGB, 0 a basic colour.
            let color = |i: &mut usize| -> [u16; 4] {
                if ps[*i + 1] == 5 {
                    *i += 2;
                    [5, ps[*i], 0, 0]
                } else {
                    *i += 4;
                    [2, ps[*i - 2], ps[*i - 1], ps[*i]]
                }
            };
            match ps[i] {
                0 => s = Sgr::default(),
                n @ 1..=9 => s.on |= 1 << n,
                22 => s.on &= !(1 << 1 | 1 << 2),
                25 => s.on &= !(1 << 5 | 1 << 6),
                n @ (23 | 24 | 27 | 28 | 29) => s.on &= !(1 << (n - 20)),
                n @ (30..=37 | 90..=97) => s.fg = Some([0, n, 0, 0]),
                38 => s.fg = Some(color(&mut i)),
                39 => s.fg = None,
                n @ (40..=47 | 100..=107) => s.bg = Some([0, n, 0, 0]),
                48 => s.bg = Some(color(&mut i)),
                49 => s.bg = None,
                58 => s.ul = Some(color(&mut i)),
                59 => s.ul = None,
                n => panic!("SGR {n} is not one of ours"),
            }
            i += 1;
        }
    }
    s
}

/// The style `pen` reached from the default one by SGR written for it from scratch.
fn reached(pen: Pen) -> Sgr {
    let mut v = Vec::new();
    sgr(None, pen, &mut v);
    run_sgr(Sgr::default(), &v)
}

#[test]
fn style_changes_reach_every_style_from_every_style() {
    let mods: Vec<Modifier> = (0..512u16).map(Modifier::from_bits_truncate).collect();
    let colors = [
        Color::Reset,
        Color::Red,
        Color::LightCyan,
        Color::Indexed(3),
        Color::Rgb(200, 100, 0),
    ];
    let pen = |m: Modifier, c: usize| Pen {
        fg: colors[c % 5],
        bg: colors[(c / 5) % 5],
        ul: colors[(c / 25) % 5],
        modifier: m,
    };
    // Every pair of modifier sets, on a few colours; every pair of colours, on a few modifiers.
    let mut pairs: Vec<(Pen, Pen)> = Vec::new();
    for (i, &a) in mods.iter().enumerate() {
        for (j, &b) in mods.iter().enumerate() {
            pairs.push((pen(a, i % 125), pen(b, (i + j) % 125)));
        }
    }
    for a in 0..125 {
        for b in 0..125 {
            pairs.push((pen(mods[a % 512], a), pen(mods[(b * 7) % 512], b)));
        }
    }
    for (from, to) in pairs {
        let mut v = Vec::new();
        sgr(Some(from), to, &mut v);
        let got = run_sgr(reached(from), &v);
        assert_eq!(
            got,
            reached(to),
            "{from:?} -> {to:?} by {:?}",
            String::from_utf8_lossy(&v)
        );
        // Never longer than the reset that CrosstermBackend's style of writing would need.
        let mut fresh = Vec::new();
        sgr(None, to, &mut fresh);
        assert!(
            v.len() <= fresh.len() || from.ul != to.ul,
            "{v:?} against {fresh:?}"
        );
    }
    // Named colours are the ANSI ones ratatui documents.
    let mut v = Vec::new();
    sgr(Some(Pen::default()), pen(Modifier::BOLD, 1 + 5), &mut v);
    assert_eq!(String::from_utf8_lossy(&v), "\x1b[1;31;41m");
}
