//! Drawing. Reads the state, never changes it, never does I/O.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use time::OffsetDateTime;

use super::inert::{one_line, paragraph};
use super::keymap::{BINDINGS, KeyMap};
use crate::app::state::{AppState, Mode, PreviewView};
use crate::domain::playbook::{recommended, short_duration};
use crate::domain::{Flag, Mention, Tone};
use crate::store::View;

/// Colours, or none (`NO_COLOR`, `[ui] color = false`): then emphasis uses bold and reverse only.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub(crate) fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub(crate) fn tone(self, t: Tone) -> Style {
        self.fg(match t {
            Tone::Positive => Color::Green,
            Tone::Neutral => Color::Gray,
            Tone::Complaint => Color::Yellow,
            Tone::Troll => Color::Magenta,
            Tone::Spam => Color::DarkGray,
        })
    }

    pub(crate) fn alert(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    }

    pub(crate) fn bar(self) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub(crate) fn selected(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    pub(crate) fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }

    pub(crate) fn overdue(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
}

/// Draw-side state that persists between frames: the table's scroll position.
#[derive(Debug, Default)]
pub struct ViewState {
    pub table: TableState,
    /// The index in the whole view of the first row on screen, so that a new page of rows around
    /// the selection leaves the screen where it was (and repaints nothing).
    pub top: usize,
}

pub fn tone_badge(t: Tone) -> &'static str {
    match t {
        Tone::Positive => "POS",
        Tone::Neutral => "NEU",
        Tone::Complaint => "CMP",
        Tone::Troll => "TRL",
        Tone::Spam => "SPM",
    }
}

fn flag_badge(f: Flag) -> &'static str {
    match f {
        Flag::Ae => "AE",
        Flag::Hcp => "HCP",
        Flag::MedicalQuestion => "MQ",
        Flag::Crisis => "CR",
    }
}

fn flags_text(m: &Mention) -> String {
    m.tags
        .flags
        .iter()
        .map(flag_badge)
        .collect::<Vec<_>>()
        .join(" ")
}

fn age(m: &Mention, now: OffsetDateTime) -> String {
    short_duration(now - m.created_at)
}

/// Age in its largest unit only, for the narrow list column: `45s`, `12m`, `5h`, `3d`.
fn compact_age(m: &Mention, now: OffsetDateTime) -> String {
    let secs = (now - m.created_at).whole_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

pub fn draw(f: &mut Frame<'_>, s: &AppState, keys: &KeyMap, theme: Theme, vs: &mut ViewState) {
    let area = f.area();
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(f, title, s, theme);
    draw_status(f, status, s, theme);

    if let Mode::Stats(view) = &s.mode {
        super::stats::draw_stats_view(f, body, view, theme);
    } else if s.detail && s.selected_mention().is_some() {
        let wide = body.width >= 110;
        let [list, detail] = if wide {
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(body)
        } else {
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body)
        };
        draw_list(f, list, s, theme, vs);
        draw_detail(f, detail, s, theme);
    } else {
        draw_list(f, body, s, theme, vs);
    }

    match &s.mode {
        Mode::Normal | Mode::Search { .. } | Mode::Stats(_) => {}
        Mode::Help => draw_help(f, area, keys, theme),
        Mode::Picker {
            choices, selected, ..
        } => draw_picker(f, area, s, choices, *selected, theme),
        Mode::Preview { preview, sending } => draw_preview(f, area, preview, *sending, theme),
        Mode::AeForm(form) => super::forms::draw_ae_form(f, area, form, s.now, theme),
        Mode::Snooze { .. } => super::forms::draw_snooze(f, area, theme),
        Mode::Retag { tone, flags, .. } => {
            let mut lines = vec![Line::from("Tone:")];
            for (i, t) in Tone::ALL.iter().enumerate() {
                let mark = if t == tone { "●" } else { "○" };
                lines.push(Line::styled(
                    format!("  {} {mark} {t}", i + 1),
                    theme.tone(*t),
                ));
            }
            lines.push(Line::from("Flags:"));
            for (key, flag) in [
                ('a', Flag::Ae),
                ('h', Flag::Hcp),
                ('q', Flag::MedicalQuestion),
                ('c', Flag::Crisis),
            ] {
                let mark = if flags.contains(flag) { "[x]" } else { "[ ]" };
                lines.push(Line::from(format!("  {key} {mark} {flag}")));
            }
            lines.push(Line::from(""));
            lines.push(Line::styled(
                "Enter save (audited) · Esc cancel",
                theme.dim(),
            ));
            let popup = centered(area, 44, lines.len() as u16 + 2);
            f.render_widget(Clear, popup);
            f.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(" Retag ")),
                popup,
            );
        }
    }
}

fn draw_title(f: &mut Frame<'_>, area: Rect, s: &AppState, theme: Theme) {
    let mut spans = vec![Span::styled(
        " tonedesk ",
        theme.bar().add_modifier(Modifier::BOLD),
    )];
    if s.demo {
        spans.push(Span::styled(" DEMO ", theme.alert()));
    }
    // Crisis mode comes first so that no width of terminal and no screen can hide it.
    if let Some(reason) = &s.crisis {
        spans.push(Span::styled(
            format!(" CRISIS MODE: {} ", one_line(reason)),
            theme.alert(),
        ));
    }
    spans.push(Span::raw(format!(" {} · ", one_line(&s.brand))));
    let views: Vec<Span> = View::ALL
        .iter()
        .flat_map(|v| {
            let style = if *v == s.query.view {
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            } else {
                theme.dim()
            };
            [Span::styled(v.title(), style), Span::raw(" ")]
        })
        .collect();
    spans.extend(views);
    if let Some(filter) = s.query.filter {
        spans.push(Span::raw(format!("· {} ", filter.label())));
    }
    if let Some(q) = &s.query.search {
        spans.push(Span::raw(format!("· /{} ", one_line(q))));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(f: &mut Frame<'_>, area: Rect, s: &AppState, theme: Theme) {
    if let Mode::Search { input } = &s.mode {
        let line = Line::from(vec![
            Span::styled(" search: ", theme.bar()),
            Span::raw(format!(" {}█  (Enter find · Esc cancel)", one_line(input))),
        ]);
        f.render_widget(Paragraph::new(line), area);
        return;
    }
    let c = &s.counts;
    let mut spans = Vec::new();
    if s.demo {
        spans.push(Span::styled(" DEMO ", theme.alert()));
    }
    // What the operator just did comes first after DEMO, so a narrow terminal still shows it;
    // the counts and the background news follow on the next key.
    if let Some(n) = &s.notice {
        let style = if n.error {
            theme.overdue()
        } else {
            theme.fg(Color::Green)
        };
        spans.push(Span::styled(format!(" {} │", one_line(&n.text)), style));
    }
    spans.push(Span::styled(
        format!(
            " open {} AE {} late {} mod {} done {} ",
            c.open, c.ae_open, c.overdue, c.moderation, c.done
        ),
        theme.bar(),
    ));
    if c.crisis_open > 0 {
        spans.push(Span::styled(
            format!(" crisis {} ", c.crisis_open),
            theme.alert(),
        ));
    }
    if c.ae_overdue > 0 {
        spans.push(Span::styled(
            format!(" AE report late {} ", c.ae_overdue),
            theme.alert(),
        ));
    }
    let poll = match s.poll.last {
        Some(at) => format!(
            " polled {:02}:{:02} +{}",
            at.hour(),
            at.minute(),
            s.poll.last_new
        ),
        None if s.poll.elsewhere => " another tonedesk polls".to_owned(),
        None if s.poll.started => " polling…".to_owned(),
        None => " not polling".to_owned(),
    };
    spans.push(Span::raw(poll));
    if !s.poll.backfill.is_empty() {
        let total: usize = s.poll.backfill.values().sum();
        let streams: Vec<&str> = s.poll.backfill.keys().map(String::as_str).collect();
        spans.push(Span::styled(
            format!(" backfilling {} (+{total} so far)", streams.join(", ")),
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    // The first failing stream in plain words; `tonedesk doctor` lists them all.
    if let Some((stream, error)) = s.poll.errors.iter().next() {
        let more = match s.poll.errors.len() {
            1 => String::new(),
            n => format!(" (+{} more: tonedesk doctor)", n - 1),
        };
        spans.push(Span::styled(
            format!(" {stream}: {}{more}", one_line(error)),
            theme.overdue(),
        ));
    }
    if c.drafts > 0 {
        spans.push(Span::raw(format!(" review {}", c.drafts)));
    }
    if c.snoozed > 0 {
        spans.push(Span::raw(format!(" zz {}", c.snoozed)));
    }
    // Replies expiring within 30 days (or expired): `tonedesk library check` names them.
    if !s.expiring.is_empty() {
        let expired = s.expiring.iter().filter(|(_, d)| *d < 0).count();
        spans.push(Span::styled(
            if expired > 0 {
                format!(
                    " library: {expired} expired, {} soon",
                    s.expiring.len() - expired
                )
            } else {
                format!(" library: {} expire ≤30d", s.expiring.len())
            },
            theme.overdue(),
        ));
    }
    spans.push(Span::styled(" │ ? help", theme.dim()));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_list(f: &mut Frame<'_>, area: Rect, s: &AppState, theme: Theme, vs: &mut ViewState) {
    let title = format!(" {} — {} ", s.query.view.title(), s.total);
    let block = Block::bordered().title(title);
    if !s.loaded {
        f.render_widget(Paragraph::new("loading the queue…").block(block), area);
        return;
    }
    if s.rows.is_empty() {
        let msg = match (&s.query.search, s.query.filter, s.query.view) {
            (None, None, View::Queue) => "Nothing to answer. Tab switches to moderation and done.",
            (None, None, _) => "Nothing here.",
            _ => "No mention matches. Esc clears the search and filter.",
        };
        f.render_widget(Paragraph::new(msg).block(block), area);
        return;
    }
    let rows = s.rows.iter().map(|m| {
        // The clock that matters in this view: first response, AE report, or the snooze.
        let clock = match s.query.view {
            View::Done => None,
            View::Ae => Some(ae_due(m, s) - s.now),
            View::Snoozed => m.snooze_until.map(|t| t - s.now),
            _ => Some(m.due_at - s.now),
        };
        let left_style = if clock.is_some_and(|l| l.is_negative()) {
            theme.overdue()
        } else {
            Style::new()
        };
        let left_text = clock.map(short_duration).unwrap_or_default();
        Row::new(vec![
            Cell::from(Span::styled(
                tone_badge(m.tags.tone),
                theme.tone(m.tags.tone),
            )),
            Cell::from(Span::styled(
                flags_text(m),
                if m.tags.flags.contains(Flag::Ae) {
                    theme.overdue()
                } else {
                    Style::new()
                },
            )),
            Cell::from(m.platform.short()),
            Cell::from(one_line(&m.author.at_handle())),
            Cell::from(compact_age(m, s.now)),
            Cell::from(Span::styled(left_text, left_style)),
            Cell::from(one_line(&m.text)),
        ])
    });
    let widths = [
        Constraint::Length(3),
        Constraint::Length(6),
        Constraint::Length(2),
        Constraint::Length(14),
        Constraint::Length(3),
        Constraint::Length(7),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "TONE",
        "FLAGS",
        "PL",
        "AUTHOR",
        "AGE",
        match s.query.view {
            View::Done => "",
            View::Ae => "REPORT",
            View::Snoozed => "BACK",
            _ => "LEFT",
        },
        "TEXT",
    ])
    .style(theme.dim().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶");
    // When the selection leaves the screen, scroll by half a screen rather than a row: over SSH a
    // one-row scroll repaints every row, a move within the screen only the two rows it touches.
    let height = usize::from(area.height.saturating_sub(3)).max(1); // borders and header
    if s.selected < vs.top || s.selected >= vs.top + height {
        vs.top = s
            .selected
            .saturating_sub(height / 2)
            .min(s.total.saturating_sub(height));
    }
    vs.table.select(s.selected.checked_sub(s.offset));
    *vs.table.offset_mut() = vs.top.saturating_sub(s.offset);
    f.render_stateful_widget(table, area, &mut vs.table);
    vs.top = s.offset + vs.table.offset();
}

fn draw_detail(f: &mut Frame<'_>, area: Rect, s: &AppState, theme: Theme) {
    let Some(m) = s.selected_mention() else {
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    let name = if m.author.display_name.is_empty() {
        String::new()
    } else {
        format!(" ({})", one_line(&m.author.display_name))
    };
    lines.push(Line::from(vec![
        Span::styled(
            one_line(&m.author.at_handle()),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(name),
        Span::styled(
            format!(
                " · {} · {} · {} ago{}",
                m.platform,
                m.account,
                age(m, s.now),
                if m.private { " · DM" } else { "" }
            ),
            theme.dim(),
        ),
    ]));
    if !m.author.bio.is_empty() {
        lines.push(Line::styled(
            format!("bio: {}", one_line(&m.author.bio)),
            theme.dim(),
        ));
    }
    if let Some(parent) = &m.parent_text {
        lines.push(Line::styled(
            format!("↳ in reply to: {}", one_line(parent)),
            theme.dim(),
        ));
    }
    lines.push(Line::from(""));
    for l in paragraph(&m.text).lines() {
        lines.push(Line::from(l.to_owned()));
    }
    // A draft under review comes right after the text it answers (the review view's point).
    for d in s.drafts.iter().filter(|d| d.mention == Some(m.id)) {
        lines.push(Line::styled(
            format!(
                "draft {} awaiting MLR review (not sendable; tonedesk library approve {}):",
                d.id, d.id
            ),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        for l in paragraph(&d.text).lines() {
            lines.push(Line::from(format!("  {l}")));
        }
    }
    lines.push(Line::from(""));
    let flags: Vec<&str> = m.tags.flags.iter().map(Flag::as_str).collect();
    let left = m.due_at - s.now;
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} ", m.tags.tone),
            theme.tone(m.tags.tone).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "{:.0}% · flags: {} · by {} · ",
            m.tags.confidence * 100.0,
            if flags.is_empty() {
                "none".to_owned()
            } else {
                flags.join(", ")
            },
            match m.tags.source {
                crate::domain::TagSource::Classifier => "classifier",
                crate::domain::TagSource::Operator => "operator",
            },
        )),
        Span::styled(
            if left.is_negative() {
                format!("overdue {}", short_duration(-left))
            } else {
                format!("due in {}", short_duration(left))
            },
            if left.is_negative() {
                theme.overdue()
            } else {
                Style::new()
            },
        ),
    ]));
    if !m.tags.reasons.is_empty() {
        lines.push(Line::styled(
            format!("why: {}", one_line(&m.tags.reasons.join("; "))),
            theme.dim(),
        ));
    }
    lines.push(Line::from(format!("do: {}", recommended(&m.tags))));
    if m.tags.flags.contains(Flag::Ae) || s.query.view == View::Ae {
        let due = ae_due(m, s);
        let left = due - s.now;
        lines.push(Line::styled(
            if left.is_negative() {
                format!(
                    "AE report to pharmacovigilance OVERDUE by {} · a: intake form",
                    short_duration(-left)
                )
            } else {
                format!(
                    "AE report to pharmacovigilance due in {} · a: intake form",
                    short_duration(left)
                )
            },
            theme.overdue(),
        ));
    }
    if let Some(until) = m.snooze_until {
        lines.push(Line::from(format!(
            "snoozed: back in the queue in {}",
            short_duration(until - s.now)
        )));
    }
    if let Some(url) = &m.url {
        lines.push(Line::styled(one_line(url), theme.dim()));
    }
    let block = Block::bordered().title(format!(" Mention {} ", m.id));
    f.render_widget(
        Paragraph::new(Text::from(lines))
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// When an AE's report is due: the post's publish time plus the configured AE clock.
fn ae_due(m: &Mention, s: &AppState) -> OffsetDateTime {
    m.created_at + time::Duration::hours(i64::from(s.ae_report_hours))
}

fn draw_help(f: &mut Frame<'_>, area: Rect, keys: &KeyMap, theme: Theme) {
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            let key = keys.shown.get(b.name).cloned().unwrap_or_default();
            Line::from(vec![
                Span::styled(
                    format!(" {key:>6} "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::styled(
        " arrows, PageUp/PageDown, Home/End also move; Esc closes or clears",
        theme.dim(),
    ));
    lines.push(Line::styled(
        " keys are set in [keys] of config.toml",
        theme.dim(),
    ));
    let popup = centered(area, 72, lines.len() as u16 + 2);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys — any key closes ")),
        popup,
    );
}

fn draw_picker(
    f: &mut Frame<'_>,
    area: Rect,
    s: &AppState,
    choices: &[String],
    selected: usize,
    theme: Theme,
) {
    let today = s.now.date();
    let rows = choices.iter().filter_map(|id| s.library.get(id)).map(|r| {
        let fits: Vec<String> = r
            .tones
            .iter()
            .map(|t| t.as_str().to_owned())
            .chain(r.flags.iter().map(|f| f.as_str().to_owned()))
            .collect();
        let days_left = (r.expires_on - today).whole_days();
        let (suits, style) = if days_left < 0 {
            ("EXPIRED".to_owned(), theme.overdue())
        } else if days_left <= 30 {
            (
                format!("expires in {days_left}d · {}", fits.join(",")),
                theme.overdue(),
            )
        } else {
            (fits.join(","), theme.dim())
        };
        Row::new(vec![
            Cell::from(r.id.clone()),
            Cell::from(format!("v{}", r.version)),
            Cell::from(r.channel.as_str()),
            Cell::from(Span::styled(suits, style)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(28),
            Constraint::Length(3),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["REPLY (best fit first)", "V", "CHANNEL", "SUITS"]).style(theme.dim()))
    .block(Block::bordered().title(" Approved replies — Enter preview · Esc back "))
    .row_highlight_style(theme.selected())
    .highlight_symbol("▶");
    let height = (choices.len() as u16 + 3).min(area.height.saturating_sub(2));
    let popup = centered(area, 76, height);
    f.render_widget(Clear, popup);
    let mut state = TableState::default().with_selected(Some(selected));
    f.render_stateful_widget(table, popup, &mut state);
}

fn draw_preview(f: &mut Frame<'_>, area: Rect, p: &PreviewView, sending: bool, theme: Theme) {
    let mut lines = vec![
        Line::from(format!(
            "{} v{} · approval {} · {} channel · {}",
            p.template, p.version, p.approval, p.channel, p.platform
        )),
        Line::from(""),
    ];
    match &p.text {
        Some(t) => {
            for l in paragraph(t).lines() {
                lines.push(Line::from(l.to_owned()));
            }
        }
        None => lines.push(Line::styled("(could not be rendered)", theme.dim())),
    }
    lines.push(Line::from(""));
    let over = p.length > p.limit;
    lines.push(Line::styled(
        format!("length {}/{}", p.length, p.limit),
        if over { theme.overdue() } else { Style::new() },
    ));
    match (&p.refusal, sending) {
        (Some(why), _) => {
            lines.push(Line::styled(
                format!("REFUSED: {}", one_line(why)),
                theme.overdue(),
            ));
            lines.push(Line::styled("Esc back", theme.dim()));
        }
        (None, true) => lines.push(Line::styled(
            "sending…",
            Style::new().add_modifier(Modifier::BOLD),
        )),
        (None, false) => lines.push(Line::styled(
            "y send (audited) · Esc back",
            Style::new().add_modifier(Modifier::BOLD),
        )),
    }
    let width = 72.min(area.width);
    let height = (lines.len() as u16 + 6).min(area.height);
    let popup = centered(area, width, height);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(" Preview "))
            .wrap(Wrap { trim: false }),
        popup,
    );
}

pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
