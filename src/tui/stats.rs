//! The stats screen (`S`): charts where a person would rather look than read, each with its
//! numbers beside it. It draws the computed [`Stats`] and never reads the store; below 60×21 it
//! falls back to the figures as text.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Bar, BarChart, Block, Borders, Padding, Paragraph, Sparkline, SparklineBar, Wrap,
};

use super::view::Theme;
use crate::app::stats::{
    AE_BUCKET_LABELS, CHART_HOURS, HourBucket, Stats, StatsView, fmt_minutes, fmt_share, fmt_short,
    share,
};
use crate::domain::Tone;

/// Width of the numbers column beside each chart (with its rule and padding).
const NUMBERS: u16 = 23;
/// Width of the row labels in front of the hour bars (24 bars and their gaps fit beside them
/// and the numbers in 80 columns) and in front of the tone rows.
const HOUR_LABEL: u16 = 8;
const LABEL: u16 = 10;
/// The smallest body that has room for the charts (an 80×24 terminal has 78×22 inside).
const MIN_WIDTH: u16 = 60;
const MIN_HEIGHT: u16 = 22;

pub fn draw_stats_view(f: &mut Frame<'_>, area: Rect, view: &StatsView, theme: Theme) {
    match view {
        StatsView::Ready(s) => draw_stats(f, area, s, theme),
        StatsView::Loading => f.render_widget(
            Paragraph::new("reading the figures…").block(Block::bordered().title(" Stats ")),
            area,
        ),
        StatsView::Failed(e) => f.render_widget(
            Paragraph::new(vec![
                Line::styled(
                    format!(
                        "the figures could not be read: {}",
                        super::inert::one_line(e)
                    ),
                    theme.overdue(),
                ),
                Line::styled("S or Esc goes back; try again in a moment", theme.dim()),
            ])
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Stats ")),
            area,
        ),
    }
}

/// The three panels: first responses per hour, the tone mix per day, AE intake times.
pub fn draw_stats(f: &mut Frame<'_>, area: Rect, s: &Stats, theme: Theme) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_compact(f, area, s, theme);
        return;
    }
    let [hours, tones, ae] = Layout::vertical([
        Constraint::Min(7),
        Constraint::Length(8),
        Constraint::Length(7),
    ])
    .areas(area);
    draw_hours(f, hours, s, theme);
    draw_tones(f, tones, s, theme);
    draw_ae(f, ae, s, theme);
}

fn draw_compact(f: &mut Frame<'_>, area: Rect, s: &Stats, theme: Theme) {
    let mut lines: Vec<Line> = s.summary().into_iter().map(Line::from).collect();
    lines.push(Line::styled(
        format!("(charts from {MIN_WIDTH}×{} up)", MIN_HEIGHT + 2),
        theme.dim(),
    ));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Stats ")),
        area,
    );
}

/// A bordered panel split into the chart and the numbers beside it.
fn panel(f: &mut Frame<'_>, area: Rect, title: String) -> (Rect, Rect) {
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [chart, numbers] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(NUMBERS)]).areas(inner);
    (chart, numbers)
}

fn draw_numbers(f: &mut Frame<'_>, area: Rect, lines: Vec<Line<'_>>) {
    f.render_widget(
        Paragraph::new(lines).block(
            Block::new()
                .borders(Borders::LEFT)
                .padding(Padding::left(1)),
        ),
        area,
    );
}

/// `label ……… value` filling `width` columns.
fn kv<'a>(label: &str, value: String, style: Style) -> Line<'a> {
    let width = usize::from(NUMBERS - 2);
    let pad = width.saturating_sub(label.chars().count() + value.chars().count());
    Line::from(vec![
        Span::raw(format!("{label}{}", " ".repeat(pad.max(1)))),
        Span::styled(value, style),
    ])
}

/// A median and a p90 as the numbers column shows them: `102 min (1h42m)` where both fit beside
/// their labels, else both as `1h42m`.
fn median_p90(median: Option<f64>, p90: Option<f64>) -> [String; 2] {
    let full = [fmt_minutes(median), fmt_minutes(p90)];
    let room = usize::from(NUMBERS - 2) - "median ".len();
    if full.iter().all(|v| v.chars().count() <= room) {
        full
    } else {
        [fmt_short(median), fmt_short(p90)]
    }
}

/// A value's height in eighths of a cell out of `levels`, never invisible when not zero.
fn level(value: u64, max: u64, levels: u64) -> u64 {
    if value == 0 || max == 0 {
        0
    } else {
        (value * levels).div_ceil(max).min(levels)
    }
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn draw_hours(f: &mut Frame<'_>, area: Rect, s: &Stats, theme: Theme) {
    let fr = &s.first_response;
    let (chart, numbers) = panel(
        f,
        area,
        " First responses per hour · last 24 h (UTC) · on time = within target ".to_owned(),
    );
    let [median, p90] = median_p90(fr.median_min, fr.p90_min);
    draw_numbers(
        f,
        numbers,
        vec![
            kv(
                &format!("answered in {} d", s.days),
                fr.answered.to_string(),
                bold(),
            ),
            kv("median", median, bold()),
            kv("p90", p90, Style::new()),
            kv(
                "on time",
                format!(
                    "{} {}/{}",
                    fmt_share(fr.within_share()),
                    fr.within_target,
                    fr.answered
                ),
                bold(),
            ),
            kv(
                "open/overdue",
                format!("{}/{}", fr.open, fr.overdue),
                if fr.overdue > 0 {
                    theme.overdue()
                } else {
                    Style::new()
                },
            ),
        ],
    );

    // Two series of bars on one scale, in target above and late below, with an hour axis.
    let half = chart.height.saturating_sub(1) / 2;
    if half == 0 || chart.width <= HOUR_LABEL + 1 {
        return;
    }
    let hours = usize::from((chart.width - HOUR_LABEL).div_ceil(2)).min(CHART_HOURS);
    let shown = &s.per_hour[s.per_hour.len().saturating_sub(hours)..];
    let max = shown
        .iter()
        .map(|b| b.within_target.max(b.late()))
        .max()
        .unwrap_or(0);
    let levels = u64::from(half) * 8;
    let top = chart.y + chart.height - 1 - 2 * half;
    let bars_x = chart.x + HOUR_LABEL;
    let bars_w = chart.width - HOUR_LABEL;
    let series = [
        (
            "on time",
            theme.fg(Color::Green),
            shown.iter().map(|b| b.within_target).collect::<Vec<_>>(),
        ),
        (
            "late",
            theme.overdue(),
            shown.iter().map(HourBucket::late).collect(),
        ),
    ];
    for (i, (name, style, values)) in series.into_iter().enumerate() {
        let y = top + half * i as u16;
        f.render_widget(
            Paragraph::new(Line::styled(name, style)),
            Rect::new(chart.x, y, HOUR_LABEL, 1),
        );
        let bars: Vec<Bar> = values
            .into_iter()
            .map(|v| {
                Bar::default()
                    .value(level(v, max, levels))
                    .text_value(String::new())
                    .style(style)
            })
            .collect();
        f.render_widget(
            BarChart::new(bars).bar_width(1).bar_gap(1).max(levels),
            Rect::new(bars_x, y, bars_w, half),
        );
    }
    if max == 0 {
        f.render_widget(
            Paragraph::new(Line::styled(
                "no first responses in the last 24 h",
                theme.dim(),
            )),
            Rect::new(bars_x, top, bars_w, 1),
        );
    }
    // Every third hour, its label ending under its bar (so the current hour has one too).
    let mut axis = vec![' '; usize::from(bars_w)];
    for (i, b) in shown.iter().enumerate() {
        let label = format!("{:02}", b.start.hour());
        if b.start.hour() % 3 == 0 && i > 0 && 2 * i < axis.len() {
            for (j, c) in label.chars().enumerate() {
                axis[2 * i - 1 + j] = c;
            }
        }
    }
    f.render_widget(
        Paragraph::new(Line::styled(
            axis.into_iter().collect::<String>(),
            theme.dim(),
        )),
        Rect::new(bars_x, chart.y + chart.height - 1, bars_w, 1),
    );
}

fn draw_tones(f: &mut Frame<'_>, area: Rect, s: &Stats, theme: Theme) {
    let total = s.tone_total();
    let (chart, numbers) = panel(
        f,
        area,
        format!(
            " Tone mix · mentions per day, last {} days (UTC) · {total} in {} d ",
            s.per_day.len(),
            s.days
        ),
    );
    let mut lines = vec![Line::styled(
        format!("{:<9}{:>6} {:>5}", "", format!("in {} d", s.days), "share"),
        theme.dim(),
    )];
    for (t, n) in Tone::ALL.iter().zip(s.tone_mix) {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<9}", t.as_str()), theme.tone(*t)),
            Span::raw(format!("{n:>6} {:>5}", fmt_share(share(n, total)))),
        ]));
    }
    draw_numbers(f, numbers, lines);

    if chart.height < 2 || chart.width <= LABEL + 7 {
        return;
    }
    let days = s.per_day.len().max(1) as u16;
    // Each day: a bar as wide as fits (at most 4) and a gap.
    let slot = ((chart.width - LABEL) / days).clamp(2, 5);
    let max = s.per_day.iter().flat_map(|d| d.tones).max().unwrap_or(0);
    let axis: String = s
        .per_day
        .iter()
        .map(|d| {
            let name = if slot >= 4 {
                d.date.weekday().to_string().chars().take(3).collect()
            } else {
                format!("{:02}", d.date.day())
            };
            format!("{name:<width$}", width = usize::from(slot))
        })
        .collect();
    f.render_widget(
        Paragraph::new(Line::styled(axis, theme.dim())),
        Rect::new(chart.x + LABEL, chart.y, chart.width - LABEL, 1),
    );
    for (i, t) in Tone::ALL.iter().enumerate() {
        let y = chart.y + 1 + i as u16;
        if y >= chart.y + chart.height {
            break;
        }
        f.render_widget(
            Paragraph::new(Line::styled(t.as_str(), theme.tone(*t))),
            Rect::new(chart.x, y, LABEL, 1),
        );
        let data: Vec<SparklineBar> = s
            .per_day
            .iter()
            .flat_map(|d| {
                let v = level(d.tones[i], max, 8);
                (0..slot).map(move |k| SparklineBar::from((k + 1 < slot).then_some(v)))
            })
            .collect();
        f.render_widget(
            Sparkline::default()
                .data(data)
                .max(8)
                .absent_value_symbol(" ")
                .style(theme.tone(*t)),
            Rect::new(chart.x + LABEL, y, chart.width - LABEL, 1),
        );
    }
}

fn draw_ae(f: &mut Frame<'_>, area: Rect, s: &Stats, theme: Theme) {
    let ae = &s.ae;
    let (chart, numbers) = panel(
        f,
        area,
        format!(
            " Adverse events, {} d or open · time from post to intake ",
            s.days
        ),
    );
    let [median, p90] = median_p90(ae.median_min, ae.p90_min);
    draw_numbers(
        f,
        numbers,
        vec![
            kv("flagged", ae.flagged.to_string(), bold()),
            kv("with intake", ae.with_intake.to_string(), Style::new()),
            kv("median", median, bold()),
            kv("p90", p90, Style::new()),
            kv(
                &format!("no intake >{} h", ae.clock_hours),
                ae.past_clock.to_string(),
                if ae.past_clock > 0 {
                    theme.overdue()
                } else {
                    bold()
                },
            ),
        ],
    );

    if chart.height < 2 {
        return;
    }
    let labels = AE_BUCKET_LABELS.iter().copied().chain(["none"]);
    let counts: Vec<u64> = ae.histogram.iter().copied().chain([ae.waiting]).collect();
    let n = counts.len() as u16;
    let width = ((chart.width + 1) / n).saturating_sub(1).clamp(3, 6);
    let max = counts.iter().copied().max().unwrap_or(0);
    let levels = u64::from(chart.height - 1) * 8;
    let last = counts.len() - 1;
    let bars: Vec<Bar> = labels
        .zip(&counts)
        .enumerate()
        .map(|(i, (label, &count))| {
            let style = if i == last {
                theme.fg(Color::Yellow)
            } else if i == last - 1 {
                theme.overdue()
            } else {
                theme.fg(Color::Green)
            };
            Bar::default()
                .value(level(count, max, levels))
                .label(Line::from(label))
                .text_value(if count > 0 {
                    count.to_string()
                } else {
                    String::new()
                })
                .style(style)
        })
        .collect();
    f.render_widget(
        BarChart::new(bars)
            .bar_width(width)
            .bar_gap(1)
            .max(levels)
            .value_style(Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD))
            .label_style(theme.dim()),
        chart,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::state::{Action, Mode};
    use crate::app::stats::{Params, compute};
    use crate::tui::keymap::KeyMap;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn render(s: &Stats, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw_stats(f, f.area(), s, Theme { color: false }))
            .unwrap();
        t.backend().to_string()
    }

    #[test]
    fn small_areas_fall_back_to_text_and_never_panic() {
        let s = compute(&[], &[], datetime!(2026-06-01 12:00 UTC), Params::default());
        let small = render(&s, 50, 12);
        assert!(small.contains("First response, 7 d"), "{small}");
        assert!(small.contains("charts from 60×24 up"), "{small}");
        let full = render(&s, 80, 22);
        assert!(
            full.contains("no first responses in the last 24 h"),
            "{full}"
        );
        for (w, h) in [(1, 1), (10, 3), (59, 40), (60, 22), (61, 23), (200, 60)] {
            render(&s, w, h);
        }
        // With colour, too.
        let mut t = Terminal::new(TestBackend::new(80, 22)).unwrap();
        t.draw(|f| draw_stats(f, f.area(), &s, Theme { color: true }))
            .unwrap();
    }

    #[test]
    fn capital_s_opens_and_leaves_the_screen() {
        let k = KeyMap::new(&BTreeMap::new()).unwrap();
        let press = |c| KeyEvent::new(c, KeyModifiers::NONE);
        let shifted = KeyEvent::new(KeyCode::Char('S'), KeyModifiers::SHIFT);
        assert!(matches!(
            k.action(&shifted, &Mode::Normal),
            Some(Action::Stats)
        ));
        let stats = Mode::Stats(StatsView::Loading);
        assert!(matches!(k.action(&shifted, &stats), Some(Action::Stats)));
        assert!(matches!(
            k.action(&press(KeyCode::Esc), &stats),
            Some(Action::Back)
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Char('q')), &stats),
            Some(Action::Quit)
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Char('s')), &Mode::Normal),
            Some(Action::Mod(_))
        ));
    }
}
