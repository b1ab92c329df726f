//! The compliance overlays: the AE intake form and the snooze menu.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use time::OffsetDateTime;

use super::inert::{one_line, paragraph};
use super::view::{Theme, centered};
use crate::app::state::{AeForm, SNOOZE_CHOICES};
use crate::domain::ElementState;
use crate::domain::audit::format_utc;
use crate::domain::playbook::short_duration;

pub fn draw_ae_form(
    f: &mut Frame<'_>,
    area: Rect,
    form: &AeForm,
    now: OffsetDateTime,
    theme: Theme,
) {
    let c = &form.case;
    let left = c.due_at - now;
    let clock = if c.overdue(now) {
        Span::styled(
            format!("OVERDUE by {}", short_duration(-left)),
            theme.overdue(),
        )
    } else {
        Span::raw(format!("due in {}", short_duration(left)))
    };
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!(
                "Mention {} · published {} · report ",
                c.mention,
                format_utc(c.published_at)
            )),
            clock,
        ]),
        // What to do comes first, so a short terminal that clips the verbatim still shows it.
        Line::styled(
            if form.editing.is_some() {
                "type the value · Enter keep · Esc drop the edit"
            } else {
                "j/k field · Enter edit · Space present/to ask/missing · y save (audited) · Esc close"
            },
            Style::new().add_modifier(Modifier::BOLD),
        ),
        match c.gaps().as_slice() {
            [] => Line::from("Valid case: all four minimum elements present."),
            gaps => Line::styled(
                format!("Not yet a valid case: {} to complete.", gaps.join(", ")),
                theme.overdue(),
            ),
        },
        Line::from(""),
    ];
    let names = ["Reporter", "Patient", "Product", "Reaction", "Notes"];
    for (i, name) in names.iter().enumerate() {
        let cursor = i == form.field;
        let marker = if cursor { "▶ " } else { "  " };
        let (state, state_style) = match c.elements().get(i) {
            Some((_, e)) => (
                format!("[{:<7}] ", e.state.as_str()),
                match e.state {
                    ElementState::Present => Style::new(),
                    ElementState::Ask => theme.overdue(),
                    ElementState::Missing => theme.dim(),
                },
            ),
            None => ("          ".to_owned(), Style::new()),
        };
        let value = match (&form.editing, cursor) {
            (Some(text), true) => format!("{}▏", one_line(text)),
            _ => one_line(form.value(i)),
        };
        let style = if cursor {
            theme.selected()
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{marker}{name:<9}"), style),
            Span::styled(state, state_style),
            Span::styled(value, style),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::styled("Verbatim:", theme.dim()));
    for l in paragraph(&c.verbatim).lines() {
        lines.push(Line::from(format!("  {l}")));
    }
    let title = if form.saved {
        " AE intake (saved record) "
    } else {
        " AE intake (pre-filled from the tags) "
    };
    let width = 84.min(area.width);
    let height = (lines.len() as u16 + 6).min(area.height.saturating_sub(2));
    let popup = centered(area, width, height);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::bordered().title(title))
            .wrap(Wrap { trim: false }),
        popup,
    );
}

pub fn draw_snooze(f: &mut Frame<'_>, area: Rect, theme: Theme) {
    let mut lines = vec![Line::from("Back in the queue after:")];
    for (key, label, _) in SNOOZE_CHOICES {
        lines.push(Line::from(format!("  {key}  {label}")));
    }
    lines.push(Line::from("  f  HCP follow-up reminder (months later)"));
    lines.push(Line::from(""));
    lines.push(Line::styled("Esc cancel · audited", theme.dim()));
    let popup = centered(area, 48, lines.len() as u16 + 2);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Snooze ")),
        popup,
    );
}
