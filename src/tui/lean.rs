//! A terminal backend that draws the same screen as ratatui's `CrosstermBackend` in fewer bytes,
//! for the console over SSH, where every byte of a frame crosses the network.
//!
//! ratatui hands a backend only the cells that changed since the last frame. `CrosstermBackend`
//! writes each run of them after an absolute cursor move (`CSI row;col H`), even across a gap of
//! one unchanged cell, and blanks out a longer previous text by printing spaces. This backend
//! keeps its own copy of what the terminal shows (it sees every cell it writes; after a clear
//! everything is blank), and for each changed cell takes the cheapest way there:
//!
//! - a short gap of unchanged cells is printed again (with their style) when that is shorter
//!   than a cursor move, and only where the copy is known to be right;
//! - otherwise the shortest move: relative (`CSI n C`, `CSI n D`, backspaces, CR, LF, `CSI n A`,
//!   `CSI n B`), by column (`CSI n G`) or absolute (`CSI r;c H`); none when the cursor is
//!   already there after printing;
//! - a run of blanks whose style shows nothing but a background is erased (`CSI n X`, or
//!   `CSI K` when it reaches the right edge) after setting that background, since terminals
//!   erase with the current background;
//! - styles change by the smallest SGR: the difference from the current one, or a reset and the
//!   new one when that is shorter, in one sequence.
//!
//! Wide characters (CJK, emoji) are followed: the cell after one is its continuation, and a cell
//! whose width terminals may disagree about (an emoji, a cluster of several code points) is
//! never printed again from the copy, and is followed by a move that does not count on where the
//! terminal put the cursor. Moves by line feed assume raw mode (no `\n` → `\r\n`), which the
//! console is in.
//!
//! Everything else (cursor, size, clear, flush) behaves as `CrosstermBackend` does, except that a
//! cursor known to be hidden is not hidden again (ratatui hides it after every frame; a clear or a
//! resize makes it unknown). Output is kept until `flush` (ratatui flushes after every frame), or
//! a call that crossterm executes at once, and then written at once.

use std::cell::Cell as Memo;
use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier, Style};
use unicode_width::UnicodeWidthStr;

/// A [`Backend`] that writes to `W` in few bytes; see the module's documentation.
pub struct LeanBackend<W: Write> {
    writer: W,
    /// What is still to be written to `writer`.
    out: Vec<u8>,
    size: SizeFrom,
    screen: Shadow,
    at: Cursor,
    /// The terminal's current style, when known.
    pen: Option<Pen>,
    /// Whether the cursor is hidden, when known: ratatui hides it after every frame.
    hidden: Option<bool>,
    #[cfg(test)]
    fault: Option<Fault>,
}

/// Where the screen's size comes from.
enum SizeFrom {
    /// The process's terminal, asked as `CrosstermBackend` asks it; remembers the last answer.
    Terminal(Memo<Option<Size>>),
    /// A screen of a given size that is not the process's terminal (a test, a bench).
    Given(Size),
}

impl<W: Write> LeanBackend<W> {
    /// A backend for the process's own terminal (its size is asked of it), writing to `writer`.
    pub fn new(writer: W) -> Self {
        Self::with(writer, SizeFrom::Terminal(Memo::new(None)))
    }

    /// A backend for a screen of `size` that is not the process's terminal: `size` is what it
    /// reports, and the cursor position it reports is the one it keeps track of.
    pub fn headless(writer: W, size: Size) -> Self {
        Self::with(writer, SizeFrom::Given(size))
    }

    fn with(writer: W, size: SizeFrom) -> Self {
        LeanBackend {
            writer,
            out: Vec::new(),
            size,
            screen: Shadow::default(),
            at: Cursor::UNKNOWN,
            // As CrosstermBackend assumes at the start of every frame.
            pen: Some(Pen::default()),
            hidden: None,
            #[cfg(test)]
            fault: None,
        }
    }

    /// Changes the size a headless backend reports (its screen was resized).
    pub fn set_size(&mut self, size: Size) {
        if let SizeFrom::Given(s) = &mut self.size {
            *s = size;
        }
    }

    /// The writer the backend writes to.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The writer the backend writes to; what is written to it directly goes around the
    /// backend's copy of the screen (call `clear` after).
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The size last known, asking the terminal if it never was.
    fn known_size(&self) -> io::Result<Size> {
        match &self.size {
            SizeFrom::Given(s) => Ok(*s),
            SizeFrom::Terminal(seen) => match seen.get() {
                Some(s) => Ok(s),
                None => self.size(),
            },
        }
    }

    /// Forgets what the screen shows when its size changed (a resize may reflow or move it).
    fn sync_size(&mut self) -> io::Result<()> {
        let s = self.known_size()?;
        if (s.width, s.height) != (self.screen.width, self.screen.height) {
            self.screen = Shadow::new(s.width, s.height, Slot::Unknown);
            self.at = Cursor::UNKNOWN;
            self.hidden = None;
        }
        Ok(())
    }

    /// Writes what is pending and flushes the writer (as crossterm's `execute!`).
    fn send(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        self.writer.flush()
    }

    // ─────────────────────────────── drawing ───────────────────────────────

    /// Moves the cursor to (`x`, `y`) the cheapest way, the next cell to be drawn in `next`.
    fn go(&mut self, x: u16, y: u16, next: Pen) {
        if self.at.row == Some(y) && self.at.col == Some(x) {
            return;
        }
        let mut moved = Vec::new();
        moves(self.at, x, y, &mut moved);
        if let Some((fill, pen)) = self.refill(x, y, moved.len()) {
            let by_fill = fill.len() + sgr_len(Some(pen), next);
            let by_move = moved.len() + sgr_len(self.pen, next);
            if by_fill < by_move {
                self.out.extend_from_slice(&fill);
                self.pen = Some(pen);
                self.at = Cursor::at(x, y);
                return;
            }
        }
        #[cfg(test)]
        if self.fault == Some(Fault::MoveOneShort) && moved.first() == Some(&b'\n') {
            moved.clear();
            moves(self.at, x, y.saturating_sub(1), &mut moved);
        }
        self.out.extend_from_slice(&moved);
        self.at = Cursor::at(x, y);
    }

    /// The bytes that print the unchanged cells between the cursor and (`x`, `y`) again, and the
    /// style they leave; `None` when that is not possible or cannot beat a move of `limit` bytes.
    fn refill(&self, x: u16, y: u16, limit: usize) -> Option<(Vec<u8>, Pen)> {
        if self.at.row != Some(y) {
            return None;
        }
        let mut c = self.at.col?;
        if c >= x || usize::from(x - c) >= limit {
            return None;
        }
        let mut pen = self.pen;
        let mut bytes = Vec::new();
        while c < x {
            let Slot::Shown(cell) = self.screen.get(c, y) else {
                return None;
            };
            let (w, trusted) = width_of(cell.symbol());
            if !trusted || c + w > x || (w == 2 && !matches!(self.screen.get(c + 1, y), Slot::Cont))
            {
                return None;
            }
            let p = Pen::of(cell);
            sgr(pen, p, &mut bytes);
            pen = Some(p);
            bytes.extend_from_slice(cell.symbol().as_bytes());
            c += w;
        }
        Some((bytes, pen?))
    }

    /// Prints `cell` at the cursor, which is at (`x`, `y`).
    fn put(&mut self, x: u16, y: u16, cell: &Cell) {
        let pen = Pen::of(cell);
        self.set_pen(pen);
        self.out.extend_from_slice(cell.symbol().as_bytes());
        let (w, trusted) = width_of(cell.symbol());
        self.screen.print(x, y, cell, w, trusted);
        self.at = if trusted && x + w < self.screen.width {
            Cursor::at(x + w, y)
        } else if trusted && x + w == self.screen.width {
            // At the right edge the terminal waits to wrap: only absolute columns are safe.
            Cursor {
                row: Some(y),
                col: None,
            }
        } else {
            Cursor::UNKNOWN
        };
    }

    fn set_pen(&mut self, pen: Pen) {
        sgr(self.pen, pen, &mut self.out);
        self.pen = Some(pen);
    }

    /// The run of blanks that starts with the changed cell `cells[i]`, all in `pen`: how many
    /// changed cells it takes, the column after its last changed cell, and whether everything
    /// from there to the right edge is already blank in `pen`. `None` when `cells[i]` cannot
    /// start one.
    fn blank_run(&self, cells: &[(u16, u16, &Cell)], i: usize, pen: Pen) -> Option<Run> {
        let (x, y, _) = cells[i];
        let mut taken = 0;
        let mut c = x;
        let mut end = x;
        loop {
            if c >= self.screen.width {
                return (taken > 0).then_some(Run {
                    taken,
                    end,
                    to_edge: true,
                });
            }
            match cells.get(i + taken) {
                Some(&(cx, cy, cell)) if cy == y && cx == c => {
                    if blank_pen(cell) != Some(pen) || !self.screen.narrow(c, y) {
                        break;
                    }
                    taken += 1;
                    end = c + 1;
                }
                _ => {
                    if !self.screen.is_blank(c, y, pen) {
                        break;
                    }
                }
            }
            c += 1;
        }
        // Erasing stops short of a wide character's second half.
        (taken > 0 && !matches!(self.screen.get(end, y), Slot::Cont)).then_some(Run {
            taken,
            end,
            to_edge: false,
        })
    }

    /// Draws the blank run `run` that starts at (`x`, `y`): by printing its cells or by erasing
    /// them, whichever is shorter counting the move to the next cell to draw, `next`.
    fn blank(&mut self, x: u16, y: u16, pen: Pen, run: Run, next: Option<(u16, u16)>) {
        self.go(x, y, pen);
        self.set_pen(pen);
        let len = run.end - x;
        let mut erase = Vec::new();
        if run.to_edge {
            erase.extend_from_slice(b"\x1b[K");
        } else {
            csi(&mut erase, len, b'X');
        }
        #[cfg(test)]
        if self.fault == Some(Fault::EraseOneShort) && len > 1 {
            erase.clear();
            csi(&mut erase, len - 1, b'X');
        }
        let after_print = if run.end < self.screen.width {
            Cursor::at(run.end, y)
        } else {
            Cursor {
                row: Some(y),
                col: None,
            }
        };
        let cost = |from: Cursor| {
            next.map_or(0, |(nx, ny)| {
                let mut v = Vec::new();
                moves(from, nx, ny, &mut v);
                v.len()
            })
        };
        let by_print = usize::from(len) + cost(after_print);
        let by_erase = erase.len() + cost(Cursor::at(x, y));
        if by_erase < by_print {
            self.out.extend_from_slice(&erase);
            let to = if run.to_edge {
                self.screen.width
            } else {
                run.end
            };
            self.screen.erase(y, x, to, Some(pen));
        } else {
            let blank = pen.blank();
            for c in x..run.end {
                self.put(c, y, &blank);
            }
        }
    }
}

/// A run of blanks found by [`LeanBackend::blank_run`].
#[derive(Clone, Copy)]
struct Run {
    /// Changed cells in it.
    taken: usize,
    /// The column after its last changed cell.
    end: u16,
    /// Whether it may be erased to the right edge.
    to_edge: bool,
}

impl<W: Write> Backend for LeanBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.sync_size()?;
        let cells: Vec<(u16, u16, &Cell)> = content.collect();
        let mut i = 0;
        while i < cells.len() {
            let (x, y, cell) = cells[i];
            if x >= self.screen.width || y >= self.screen.height {
                // Off the screen as known: drawn as CrosstermBackend would, and forgotten.
                self.set_pen(Pen::of(cell));
                let mut to = Vec::new();
                moves(Cursor::UNKNOWN, x, y, &mut to);
                self.out.extend_from_slice(&to);
                self.out.extend_from_slice(cell.symbol().as_bytes());
                self.at = Cursor::UNKNOWN;
                i += 1;
                continue;
            }
            if let Some(pen) = blank_pen(cell)
                && let Some(run) = self.blank_run(&cells, i, pen)
            {
                let next = cells.get(i + run.taken).map(|&(nx, ny, _)| (nx, ny));
                self.blank(x, y, pen, run, next);
                i += run.taken;
                continue;
            }
            self.go(x, y, Pen::of(cell));
            self.put(x, y, cell);
            i += 1;
        }
        // Leave the terminal in its default style, as CrosstermBackend does.
        self.set_pen(Pen::default());
        Ok(())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        for _ in 0..n {
            self.out.push(b'\n');
        }
        // The screen may have scrolled.
        self.screen.fill(Slot::Unknown);
        self.at = Cursor::UNKNOWN;
        self.hidden = None;
        self.send()
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.hidden != Some(true) {
            self.out.extend_from_slice(b"\x1b[?25l");
            self.hidden = Some(true);
        }
        self.send()
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.hidden != Some(false) {
            self.out.extend_from_slice(b"\x1b[?25h");
            self.hidden = Some(false);
        }
        self.send()
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        match self.size {
            SizeFrom::Terminal(_) => {
                // The terminal answers after what is pending has reached it.
                self.send()?;
                crossterm::cursor::position()
                    .map(|(x, y)| Position { x, y })
                    .map_err(io::Error::other)
            }
            SizeFrom::Given(_) => Ok(Position {
                x: self.at.col.unwrap_or(0),
                y: self.at.row.unwrap_or(0),
            }),
        }
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        self.sync_size()?;
        let Position { x, y } = position.into();
        let mut to = Vec::new();
        moves(self.at, x, y, &mut to);
        self.out.extend_from_slice(&to);
        self.at = if x < self.screen.width && y < self.screen.height {
            Cursor::at(x, y)
        } else {
            // The terminal keeps the cursor on the screen: where exactly is its business.
            Cursor::UNKNOWN
        };
        self.send()
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        self.sync_size()?;
        let (code, erase): (&[u8], _) = match clear_type {
            ClearType::All => (b"\x1b[2J", Erase::All),
            ClearType::AfterCursor => (b"\x1b[J", Erase::After),
            ClearType::BeforeCursor => (b"\x1b[1J", Erase::Before),
            ClearType::CurrentLine => (b"\x1b[2K", Erase::Line),
            ClearType::UntilNewLine => (b"\x1b[K", Erase::LineAfter),
        };
        self.out.extend_from_slice(code);
        // A clear is where the console takes the terminal back (after an editor, a resize):
        // whether the cursor shows is then not known.
        self.hidden = None;
        // Erased cells take the current background.
        let pen = self.pen.filter(|p| p.blank_shows_only_background());
        let (w, h) = (self.screen.width, self.screen.height);
        match (erase, self.at.row, self.at.col) {
            (Erase::All, _, _) => {
                self.screen.erase_rows(0, h, pen);
            }
            (Erase::After, Some(y), Some(x)) => {
                self.screen.erase(y, x, w, pen);
                self.screen.erase_rows(y + 1, h, pen);
            }
            (Erase::Before, Some(y), Some(x)) => {
                self.screen.erase_rows(0, y, pen);
                self.screen.erase(y, 0, x.saturating_add(1).min(w), pen);
            }
            (Erase::Line, Some(y), _) => self.screen.erase(y, 0, w, pen),
            (Erase::LineAfter, Some(y), Some(x)) => self.screen.erase(y, x, w, pen),
            // Where the cursor is is not known, nor so what was erased.
            _ => self.screen.fill(Slot::Unknown),
        }
        self.send()
    }

    fn size(&self) -> io::Result<Size> {
        match &self.size {
            SizeFrom::Given(s) => Ok(*s),
            SizeFrom::Terminal(seen) => {
                let (width, height) = crossterm::terminal::size()?;
                let s = Size { width, height };
                seen.set(Some(s));
                Ok(s)
            }
        }
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        match self.size {
            SizeFrom::Given(s) => Ok(WindowSize {
                columns_rows: s,
                pixels: Size::default(),
            }),
            SizeFrom::Terminal(_) => {
                let w = crossterm::terminal::window_size()?;
                Ok(WindowSize {
                    columns_rows: Size {
                        width: w.columns,
                        height: w.rows,
                    },
                    pixels: Size {
                        width: w.width,
                        height: w.height,
                    },
                })
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[derive(Clone, Copy)]
enum Erase {
    All,
    After,
    Before,
    Line,
    LineAfter,
}

// ─────────────────────────────── the cursor ───────────────────────────────

/// Where the terminal's cursor is, as far as known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    row: Option<u16>,
    col: Option<u16>,
}

impl Cursor {
    const UNKNOWN: Cursor = Cursor {
        row: None,
        col: None,
    };

    fn at(x: u16, y: u16) -> Cursor {
        Cursor {
            row: Some(y),
            col: Some(x),
        }
    }
}

/// Writes the shortest move from `from` to (`x`, `y`) (zero-based) into `out`.
fn moves(from: Cursor, x: u16, y: u16, out: &mut Vec<u8>) {
    let mut best: Option<Vec<u8>> = None;
    let mut keep = |v: Vec<u8>| {
        if best.as_ref().is_none_or(|b| v.len() < b.len()) {
            best = Some(v);
        }
    };
    // Absolute.
    let mut v = b"\x1b[".to_vec();
    if (x, y) != (0, 0) {
        push_num(&mut v, y + 1);
        if x != 0 {
            v.push(b';');
            push_num(&mut v, x + 1);
        }
    }
    v.push(b'H');
    keep(v);
    // The line first (keeping the column), then the column.
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut vpa = Vec::new();
    csi(&mut vpa, y + 1, b'd');
    lines.push(vpa);
    match from.row {
        Some(r) if r == y => lines.push(Vec::new()),
        Some(r) if r < y => {
            lines.push(vec![b'\n'; usize::from(y - r)]);
            let mut v = Vec::new();
            csi(&mut v, y - r, b'B');
            lines.push(v);
        }
        Some(r) => {
            let mut v = Vec::new();
            csi(&mut v, r - y, b'A');
            lines.push(v);
        }
        None => {}
    }
    let mut cols: Vec<Vec<u8>> = Vec::new();
    let mut cha = Vec::new();
    csi(&mut cha, x + 1, b'G');
    cols.push(cha);
    if x == 0 {
        cols.push(b"\r".to_vec());
    } else {
        let mut v = b"\r".to_vec();
        csi(&mut v, x, b'C');
        cols.push(v);
    }
    match from.col {
        Some(c) if c == x => cols.push(Vec::new()),
        Some(c) if c < x => {
            let mut v = Vec::new();
            csi(&mut v, x - c, b'C');
            cols.push(v);
        }
        Some(c) => {
            let mut v = Vec::new();
            csi(&mut v, c - x, b'D');
            cols.push(v);
            if c - x <= 3 {
                cols.push(vec![0x08; usize::from(c - x)]);
            }
        }
        None => {}
    }
    for l in &lines {
        for c in &cols {
            let mut v = l.clone();
            v.extend_from_slice(c);
            keep(v);
        }
    }
    if let Some(b) = best {
        out.extend_from_slice(&b);
    }
}

/// `CSI n <f>`, with `n` left out when it is 1 (the default).
fn csi(out: &mut Vec<u8>, n: u16, f: u8) {
    out.extend_from_slice(b"\x1b[");
    if n != 1 {
        push_num(out, n);
    }
    out.push(f);
}

fn push_num(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

// ─────────────────────────────── styles ───────────────────────────────

/// A cell's style as the terminal holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    ul: Color,
    modifier: Modifier,
}

impl Default for Pen {
    fn default() -> Self {
        Pen {
            fg: Color::Reset,
            bg: Color::Reset,
            ul: Color::Reset,
            modifier: Modifier::empty(),
        }
    }
}

impl Pen {
    fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            ul: cell.underline_color,
            modifier: cell.modifier,
        }
    }

    /// Whether a blank in this style shows nothing but its background, so that erasing (which
    /// terminals do with the current background) makes the same cell.
    fn blank_shows_only_background(self) -> bool {
        self.fg == Color::Reset && self.ul == Color::Reset && self.modifier.is_empty()
    }

    /// A blank cell in this style.
    fn blank(self) -> Cell {
        let mut c = Cell::default();
        c.set_style(
            Style::new()
                .fg(self.fg)
                .bg(self.bg)
                .underline_color(self.ul)
                .add_modifier(self.modifier),
        );
        c
    }
}

/// The style of `cell` when it is a blank that erasing can make.
fn blank_pen(cell: &Cell) -> Option<Pen> {
    let pen = Pen::of(cell);
    (cell.symbol() == " " && pen.blank_shows_only_background()).then_some(pen)
}

/// Writes the shortest SGR sequence(s) that change the terminal's style from `from` (`None`:
/// not known) to `to`.
fn sgr(from: Option<Pen>, to: Pen, out: &mut Vec<u8>) {
    if from == Some(to) {
        return;
    }
    let mut reset = vec![0];
    added(Modifier::empty(), to.modifier, false, false, &mut reset);
    if to.fg != Color::Reset {
        color(to.fg, 30, &mut reset);
    }
    if to.bg != Color::Reset {
        color(to.bg, 40, &mut reset);
    }
    let params = match from {
        Some(f) => {
            let d = diff(f, to);
            if params_len(&d) <= params_len(&reset) {
                d
            } else {
                reset
            }
        }
        None => reset,
    };
    if params == [0] {
        out.extend_from_slice(b"\x1b[m");
    } else if !params.is_empty() {
        out.extend_from_slice(b"\x1b[");
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            push_num(out, *p);
        }
        out.push(b'm');
    }
    // The underline colour in a sequence of its own, as crossterm writes it (terminals without it
    // then ignore one sequence, not a whole style); a reset reset it too.
    let ul_was = match from {
        Some(f) if params.first() != Some(&0) => f.ul,
        _ => Color::Reset,
    };
    if to.ul != ul_was {
        let mut p = Vec::new();
        match to.ul {
            Color::Reset => p.push(59),
            Color::Rgb(r, g, b) => p.extend([58, 2, r.into(), g.into(), b.into()]),
            Color::Indexed(i) => p.extend([58, 5, i.into()]),
            named => p.extend([58, 5, named_index(named).into()]),
        }
        out.extend_from_slice(b"\x1b[");
        for (i, n) in p.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            push_num(out, *n);
        }
        out.push(b'm');
    }
}

fn sgr_len(from: Option<Pen>, to: Pen) -> usize {
    let mut v = Vec::new();
    sgr(from, to, &mut v);
    v.len()
}

/// The bytes of the parameters `p` once written (`;` between them, `CSI` and `m` around).
fn params_len(p: &[u16]) -> usize {
    match p {
        [] => return 0,
        [0] => return 3,
        _ => {}
    }
    let digits: usize = p.iter().map(|n| n.to_string().len()).sum();
    digits + p.len() - 1 + 3
}

/// SGR parameters from `from` to `to` (the underline colour aside).
fn diff(from: Pen, to: Pen) -> Vec<u16> {
    let mut p = Vec::new();
    let removed = from.modifier - to.modifier;
    if removed.contains(Modifier::REVERSED) {
        p.push(27);
    }
    // One parameter ends both bold and dim, another both blinks: what stays is set again.
    let intensity = removed.intersects(Modifier::BOLD | Modifier::DIM);
    if intensity {
        p.push(22);
        if to.modifier.contains(Modifier::DIM) {
            p.push(2);
        }
        if to.modifier.contains(Modifier::BOLD) {
            p.push(1);
        }
    }
    if removed.contains(Modifier::ITALIC) {
        p.push(23);
    }
    if removed.contains(Modifier::UNDERLINED) {
        p.push(24);
    }
    if removed.contains(Modifier::CROSSED_OUT) {
        p.push(29);
    }
    if removed.contains(Modifier::HIDDEN) {
        p.push(28);
    }
    let blink = removed.intersects(Modifier::SLOW_BLINK | Modifier::RAPID_BLINK);
    if blink {
        p.push(25);
        if to.modifier.contains(Modifier::SLOW_BLINK) {
            p.push(5);
        }
        if to.modifier.contains(Modifier::RAPID_BLINK) {
            p.push(6);
        }
    }
    added(from.modifier, to.modifier, intensity, blink, &mut p);
    if from.fg != to.fg {
        color(to.fg, 30, &mut p);
    }
    if from.bg != to.bg {
        color(to.bg, 40, &mut p);
    }
    p
}

/// Parameters for the modifiers in `to` and not in `from`, less those already set again after an
/// intensity or blink reset.
fn added(from: Modifier, to: Modifier, intensity: bool, blink: bool, p: &mut Vec<u16>) {
    let added = to - from;
    let order = [
        (Modifier::REVERSED, 7, false),
        (Modifier::BOLD, 1, intensity),
        (Modifier::ITALIC, 3, false),
        (Modifier::UNDERLINED, 4, false),
        (Modifier::DIM, 2, intensity),
        (Modifier::CROSSED_OUT, 9, false),
        (Modifier::HIDDEN, 8, false),
        (Modifier::SLOW_BLINK, 5, blink),
        (Modifier::RAPID_BLINK, 6, blink),
    ];
    for (m, n, done) in order {
        if added.contains(m) && !done {
            p.push(n);
        }
    }
}

/// Parameters for a colour, `base` 30 for the foreground and 40 for the background: ratatui's
/// named colours are the ANSI ones (`Red` is 31/41, `LightRed` 91/101).
fn color(c: Color, base: u16, p: &mut Vec<u16>) {
    match c {
        Color::Reset => p.push(base + 9),
        Color::Indexed(i) => p.extend([base + 8, 5, i.into()]),
        Color::Rgb(r, g, b) => p.extend([base + 8, 2, r.into(), g.into(), b.into()]),
        named => {
            let i = u16::from(named_index(named));
            p.push(if i < 8 { base + i } else { base + 60 + i - 8 });
        }
    }
}

/// The palette index of a named colour.
fn named_index(c: Color) -> u8 {
    match c {
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Reset | Color::Indexed(_) | Color::Rgb(..) => 0,
    }
}

// ─────────────────────────────── the copy of the screen ───────────────────────────────

/// What one cell of the terminal shows, as far as known.
#[derive(Clone, Debug)]
enum Slot {
    Unknown,
    /// The second half of the wide character in the cell before.
    Cont,
    Shown(Cell),
}

/// The backend's copy of what the terminal shows.
#[derive(Default)]
struct Shadow {
    width: u16,
    height: u16,
    slots: Vec<Slot>,
}

impl Shadow {
    fn new(width: u16, height: u16, slot: Slot) -> Shadow {
        Shadow {
            width,
            height,
            slots: vec![slot; usize::from(width) * usize::from(height)],
        }
    }

    fn index(&self, x: u16, y: u16) -> Option<usize> {
        (x < self.width && y < self.height)
            .then(|| usize::from(y) * usize::from(self.width) + usize::from(x))
    }

    fn get(&self, x: u16, y: u16) -> &Slot {
        self.index(x, y).map_or(&Slot::Unknown, |i| &self.slots[i])
    }

    fn set(&mut self, x: u16, y: u16, slot: Slot) {
        if let Some(i) = self.index(x, y) {
            self.slots[i] = slot;
        }
    }

    fn fill(&mut self, slot: Slot) {
        self.slots.fill(slot);
    }

    /// Whether the cell holds a known character one column wide (erasing it erases it alone).
    fn narrow(&self, x: u16, y: u16) -> bool {
        matches!(self.get(x, y), Slot::Shown(c) if width_of(c.symbol()) == (1, true))
    }

    /// Whether the cell is known to show a blank in `pen`.
    fn is_blank(&self, x: u16, y: u16, pen: Pen) -> bool {
        matches!(self.get(x, y), Slot::Shown(c) if c.symbol() == " " && Pen::of(c) == pen)
    }

    /// Notes that `cell` (`w` columns wide; `trusted`: every terminal agrees on that) was printed
    /// at (`x`, `y`), and what that did to the wide characters around it.
    fn print(&mut self, x: u16, y: u16, cell: &Cell, w: u16, trusted: bool) {
        match self.get(x, y) {
            // Half of a wide character cannot stay: terminals blank the other half, each its way.
            Slot::Cont if x > 0 => self.set(x - 1, y, Slot::Unknown),
            Slot::Shown(old) if width_of(old.symbol()).0 == 2 && w != 2 => {
                self.set(x + 1, y, Slot::Unknown);
            }
            _ => {}
        }
        if w == 2 {
            if let Slot::Shown(old) = self.get(x + 1, y)
                && width_of(old.symbol()).0 == 2
            {
                self.set(x + 2, y, Slot::Unknown);
            }
            self.set(x + 1, y, if trusted { Slot::Cont } else { Slot::Unknown });
        }
        let slot = if trusted {
            Slot::Shown(cell.clone())
        } else {
            Slot::Unknown
        };
        self.set(x, y, slot);
    }

    /// Notes that the cells from `x0` to before `x1` on row `y` were erased, to blanks in `pen`
    /// (`None`: to something not known).
    fn erase(&mut self, y: u16, x0: u16, x1: u16, pen: Option<Pen>) {
        if x0 >= x1 {
            return;
        }
        if x0 > 0 && matches!(self.get(x0, y), Slot::Cont) {
            self.set(x0 - 1, y, Slot::Unknown);
        }
        if matches!(self.get(x1, y), Slot::Cont) {
            self.set(x1, y, Slot::Unknown);
        }
        let slot = pen.map_or(Slot::Unknown, |p| Slot::Shown(p.blank()));
        for x in x0..x1.min(self.width) {
            self.set(x, y, slot.clone());
        }
    }

    /// Notes that the rows from `y0` to before `y1` were erased.
    fn erase_rows(&mut self, y0: u16, y1: u16, pen: Option<Pen>) {
        for y in y0..y1.min(self.height) {
            self.erase(y, 0, self.width, pen);
        }
    }
}

/// How many columns a cell's symbol takes, and whether every terminal agrees: one character of
/// one column, or of two in the East Asian scripts (emoji widths differ between terminals and
/// their versions, and so do clusters of several code points).
fn width_of(symbol: &str) -> (u16, bool) {
    let w = u16::try_from(symbol.width()).unwrap_or(u16::MAX);
    let mut chars = symbol.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return (w, false);
    };
    let trusted = match w {
        1 => true,
        2 => east_asian_wide(c),
        _ => false,
    };
    (w, trusted)
}

fn east_asian_wide(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x115F        // Hangul Jamo
        | 0x2E80..=0x303E      // CJK radicals, Kangxi, CJK symbols and punctuation
        | 0x3041..=0x33FF      // Hiragana, Katakana, Bopomofo, CJK compatibility
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xA000..=0xA4CF      // Yi
        | 0xAC00..=0xD7A3      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFE30..=0xFE4F      // CJK compatibility forms
        | 0xFF00..=0xFF60      // full-width forms
        | 0xFFE0..=0xFFE6
        | 0x20000..=0x2FFFD    // CJK extensions B and on
        | 0x30000..=0x3FFFD)
}

/// Encoder faults a test switches on to show that the comparisons catch them.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Erase one cell too few.
    EraseOneShort,
    /// Move by line feeds one line short.
    MoveOneShort,
}

#[cfg(test)]
mod tests;
