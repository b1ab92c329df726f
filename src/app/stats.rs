//! The desk's figures: first-response times against target, the tone mix and adverse-event intake
//! times, for the console's stats screen (`S`) and `tonedesk stats`.
//!
//! Everything here but [`load`] is pure: [`compute`] turns the rows and audit events the store
//! reads (`Store::stat_inputs`) into [`Stats`]. Definitions:
//!
//! - **First response** of a mention: the earliest `send_result` entry with outcome `sent` for it,
//!   or, for a troll or spam mention, the earliest `hide`, `block`, `mute` or `report` entry with
//!   outcome `ok`. Response time = that time − the post's `created_at` (never below zero).
//! - **Within target**: answered by the mention's `due_at` (`created_at` + its tone's
//!   first-response target, `[targets]` in the config).
//! - The **window** is the last `days` × 24 hours up to now. The first-response figures count the
//!   first responses given in the window; **open** counts the mentions still waiting (open or
//!   snoozed, whatever their age) with no first response, **overdue** those of them past `due_at`.
//! - **Per hour**: the last 24 whole UTC hours up to and including the current one.
//! - **Tone mix**: mentions created in the window, by tone; **per day**: the last 7 UTC days,
//!   today included, by the day the post was created.
//! - **AE**: AE-flagged mentions created in the window or still open. **Time to intake** = the
//!   first `ae_flag` or `ae_intake` entry − the post's `created_at`; **past the clock**: no intake
//!   yet and older than `[targets] ae_report_hours` (24 h by default).
//! - Medians and p90 interpolate linearly between ranks (a spreadsheet's PERCENTILE.INC), so the
//!   median of an even count is the mean of the middle two.

use std::collections::HashMap;
use std::fmt::Write as _;

use time::{Date, Duration, OffsetDateTime, UtcOffset};

use super::desk::Desk;
use super::state::{Action, AppState, Effect, Mode, Notice};
use crate::domain::audit::format_utc;
use crate::domain::playbook::short_duration;
use crate::domain::{MentionId, Tone};
use crate::store::StoreError;
use crate::store::stats::{StatEvent, StatEventKind, StatRow};

/// The window of the console's stats screen, in days.
pub const CONSOLE_DAYS: u32 = 7;
/// How many UTC days the tone chart covers.
pub const CHART_DAYS: usize = 7;
/// How many UTC hours the first-response chart covers.
pub const CHART_HOURS: usize = 24;
/// Upper bounds (hours) of the AE intake-time buckets; the last bucket is everything above.
pub const AE_BUCKETS: [i64; 4] = [1, 4, 12, 24];
pub const AE_BUCKET_LABELS: [&str; 5] = ["<1h", "1-4h", "4-12h", "12-24h", ">24h"];

/// What the figures are computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The window, in days back from now.
    pub days: u32,
    /// The AE reporting clock (`[targets] ae_report_hours`).
    pub ae_report_hours: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            days: CONSOLE_DAYS,
            ae_report_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// When the figures were computed (UTC).
    pub now: OffsetDateTime,
    pub days: u32,
    pub first_response: FirstResponse,
    /// The last 24 UTC hours, oldest first; the last is the current hour.
    pub per_hour: Vec<HourBucket>,
    /// Mentions created in the window, in [`Tone::ALL`] order.
    pub tone_mix: [u64; 5],
    /// The last 7 UTC days, oldest first; the last is today.
    pub per_day: Vec<DayBucket>,
    pub ae: AeFigures,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirstResponse {
    /// First responses given in the window.
    pub answered: u64,
    pub within_target: u64,
    /// Response time in minutes; `None` without responses.
    pub median_min: Option<f64>,
    pub p90_min: Option<f64>,
    /// Mentions still waiting with no first response yet, whatever their age.
    pub open: u64,
    /// Of those, past their `due_at`.
    pub overdue: u64,
}

impl FirstResponse {
    /// Share of the window's first responses given within target, in percent.
    pub fn within_share(&self) -> Option<f64> {
        share(self.within_target, self.answered)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourBucket {
    pub start: OffsetDateTime,
    pub answered: u64,
    pub within_target: u64,
}

impl HourBucket {
    pub fn late(&self) -> u64 {
        self.answered - self.within_target
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayBucket {
    pub date: Date,
    /// In [`Tone::ALL`] order.
    pub tones: [u64; 5],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AeFigures {
    /// AE-flagged mentions created in the window or still open.
    pub flagged: u64,
    pub with_intake: u64,
    pub median_min: Option<f64>,
    pub p90_min: Option<f64>,
    /// No intake yet.
    pub waiting: u64,
    /// No intake yet and older than the clock.
    pub past_clock: u64,
    pub clock_hours: u32,
    /// Intake times by [`AE_BUCKET_LABELS`].
    pub histogram: [u64; 5],
}

/// A percentage, `None` of nothing.
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// The `p` quantile (0..=1) of sorted values, interpolating linearly between ranks.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = p.clamp(0.0, 1.0) * last as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let (a, b) = (sorted.get(lo)?, sorted.get(hi)?);
    Some(a + (b - a) * (rank - lo as f64))
}

fn minutes(d: Duration) -> f64 {
    d.whole_seconds().max(0) as f64 / 60.0
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The start of the UTC hour `t` falls in.
fn hour_floor(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t - Duration::seconds(i64::from(t.minute()) * 60 + i64::from(t.second()))
        - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// The earliest time the store must read from for [`compute`] at `now` over `days`: the window's
/// start or the first of the 7 chart days, whichever is earlier.
pub fn since(now: OffsetDateTime, days: u32) -> OffsetDateTime {
    let now = now.to_offset(UtcOffset::UTC);
    let window = now - Duration::days(i64::from(days));
    let first_day = (now.date() - Duration::days(CHART_DAYS as i64 - 1))
        .midnight()
        .assume_utc();
    window.min(first_day)
}

/// The figures at `now` from the store's rows and events (see the module's definitions).
pub fn compute(rows: &[StatRow], events: &[StatEvent], now: OffsetDateTime, p: Params) -> Stats {
    let now = now.to_offset(UtcOffset::UTC);
    let now = now - Duration::nanoseconds(i64::from(now.nanosecond()));
    let window_start = now - Duration::days(i64::from(p.days));

    // The earliest answering event of each kind per mention.
    let mut replied: HashMap<MentionId, OffsetDateTime> = HashMap::new();
    let mut moderated: HashMap<MentionId, OffsetDateTime> = HashMap::new();
    let mut intake: HashMap<MentionId, OffsetDateTime> = HashMap::new();
    for e in events {
        let map = match e.kind {
            StatEventKind::Reply => &mut replied,
            StatEventKind::Moderation => &mut moderated,
            StatEventKind::AeIntake => &mut intake,
        };
        map.entry(e.mention)
            .and_modify(|t| *t = (*t).min(e.at))
            .or_insert(e.at);
    }

    let hours_start = hour_floor(now) - Duration::hours(CHART_HOURS as i64 - 1);
    let mut per_hour: Vec<HourBucket> = (0..CHART_HOURS)
        .map(|i| HourBucket {
            start: hours_start + Duration::hours(i as i64),
            answered: 0,
            within_target: 0,
        })
        .collect();
    let first_day = now.date() - Duration::days(CHART_DAYS as i64 - 1);
    let mut per_day: Vec<DayBucket> = (0..CHART_DAYS)
        .map(|i| DayBucket {
            date: first_day + Duration::days(i as i64),
            tones: [0; 5],
        })
        .collect();

    let mut fr = FirstResponse::default();
    let mut response_times = Vec::new();
    let mut tone_mix = [0u64; 5];
    let mut ae = AeFigures {
        clock_hours: p.ae_report_hours,
        ..AeFigures::default()
    };
    let mut intake_times = Vec::new();
    let clock = Duration::hours(i64::from(p.ae_report_hours));

    for r in rows {
        let tone_ix = Tone::ALL.iter().position(|t| *t == r.tone).unwrap_or(0);
        let created = r.created_at.to_offset(UtcOffset::UTC);
        let in_window = created >= window_start;
        if in_window {
            tone_mix[tone_ix] += 1;
        }
        if let Some(day) = per_day.iter_mut().find(|d| d.date == created.date()) {
            day.tones[tone_ix] += 1;
        }

        let moderation = r
            .tone
            .is_moderation()
            .then(|| moderated.get(&r.id))
            .flatten();
        let first = [replied.get(&r.id), moderation].into_iter().flatten().min();
        match first {
            Some(&at) => {
                let within = at <= r.due_at;
                if at >= window_start {
                    fr.answered += 1;
                    fr.within_target += u64::from(within);
                    response_times.push(minutes(at - r.created_at));
                }
                let since_start = at - hours_start;
                if !since_start.is_negative()
                    && let Some(b) = per_hour.get_mut(since_start.whole_hours() as usize)
                {
                    b.answered += 1;
                    b.within_target += u64::from(within);
                }
            }
            None if r.open => {
                fr.open += 1;
                fr.overdue += u64::from(r.due_at < now);
            }
            None => {}
        }

        if r.ae && (in_window || r.open) {
            ae.flagged += 1;
            match intake.get(&r.id) {
                Some(&at) => {
                    ae.with_intake += 1;
                    let d = at - r.created_at;
                    let bucket = AE_BUCKETS
                        .iter()
                        .position(|h| d < Duration::hours(*h))
                        .unwrap_or(AE_BUCKETS.len());
                    ae.histogram[bucket] += 1;
                    intake_times.push(minutes(d));
                }
                None => {
                    ae.waiting += 1;
                    ae.past_clock += u64::from(now - r.created_at > clock);
                }
            }
        }
    }

    let response_times = sorted(response_times);
    fr.median_min = percentile(&response_times, 0.5);
    fr.p90_min = percentile(&response_times, 0.9);
    let intake_times = sorted(intake_times);
    ae.median_min = percentile(&intake_times, 0.5);
    ae.p90_min = percentile(&intake_times, 0.9);

    Stats {
        now,
        days: p.days,
        first_response: fr,
        per_hour,
        tone_mix,
        per_day,
        ae,
    }
}

/// Reads the inputs through the store thread and computes the figures (for the worker and the
/// command line).
pub async fn load(desk: &Desk, days: u32, now: OffsetDateTime) -> Result<Stats, StoreError> {
    let from = since(now, days);
    let (rows, events) = desk.store.call(move |s| s.stat_inputs(from)).await?;
    let params = Params {
        days,
        ae_report_hours: desk.config.targets.ae_report_hours,
    };
    Ok(compute(&rows, &events, now, params))
}

/// Minutes for people: `14.0 min`, or `95 min (1h35m)` from an hour up; `–` of nothing.
pub fn fmt_minutes(m: Option<f64>) -> String {
    match m {
        None => "–".to_owned(),
        Some(m) if m < 60.0 => format!("{m:.1} min"),
        Some(m) => format!(
            "{m:.0} min ({})",
            short_duration(Duration::seconds((m * 60.0).round() as i64))
        ),
    }
}

/// Minutes for a narrow column: `14.0 min`, or `2h25m` from an hour up; `–` of nothing.
pub fn fmt_short(m: Option<f64>) -> String {
    match m {
        Some(m) if m >= 60.0 => short_duration(Duration::seconds((m * 60.0).round() as i64)),
        other => fmt_minutes(other),
    }
}

/// A share for people: `83%`, `–` of nothing.
pub fn fmt_share(s: Option<f64>) -> String {
    s.map_or_else(|| "–".to_owned(), |s| format!("{s:.0}%"))
}

fn hm(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

impl Stats {
    pub fn tone_total(&self) -> u64 {
        self.tone_mix.iter().sum()
    }

    /// The figures in a few lines (the start of the text output; the console's narrow layout).
    pub fn summary(&self) -> Vec<String> {
        let fr = &self.first_response;
        let total = self.tone_total();
        let ae = &self.ae;
        vec![
            format!(
                "First response, {} d: {} answered · median {} · p90 {} · {} within target · open {} · overdue {}",
                self.days,
                fr.answered,
                fmt_minutes(fr.median_min),
                fmt_minutes(fr.p90_min),
                fmt_share(fr.within_share()),
                fr.open,
                fr.overdue
            ),
            format!(
                "Tone mix, {} d: {} · total {total}",
                self.days,
                Tone::ALL
                    .iter()
                    .zip(self.tone_mix)
                    .map(|(t, n)| format!("{t} {n} ({})", fmt_share(share(n, total))))
                    .collect::<Vec<_>>()
                    .join(" · ")
            ),
            format!(
                "AE, {} d or open: {} flagged · {} with intake · median {} · p90 {} · {} waiting, {} past {} h",
                self.days,
                ae.flagged,
                ae.with_intake,
                fmt_minutes(ae.median_min),
                fmt_minutes(ae.p90_min),
                ae.waiting,
                ae.past_clock,
                ae.clock_hours
            ),
        ]
    }

    /// `tonedesk stats` (text): the figures in readable lines.
    pub fn text(&self) -> String {
        let fr = &self.first_response;
        let ae = &self.ae;
        let total = self.tone_total();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "Desk figures for the last {} day(s) to {} (hours and days in UTC)\n",
            self.days,
            format_utc(self.now)
        );
        let _ = writeln!(o, "First response (given in the window)");
        let _ = writeln!(o, "  answered             {}", fr.answered);
        let _ = writeln!(o, "  median               {}", fmt_minutes(fr.median_min));
        let _ = writeln!(o, "  p90                  {}", fmt_minutes(fr.p90_min));
        let _ = writeln!(
            o,
            "  within target        {} ({} of {})",
            fmt_share(fr.within_share()),
            fr.within_target,
            fr.answered
        );
        let _ = writeln!(
            o,
            "  open, no response    {} ({} overdue)\n",
            fr.open, fr.overdue
        );
        let _ = writeln!(o, "Tone mix (mentions created in the window)");
        for (t, n) in Tone::ALL.iter().zip(self.tone_mix) {
            let _ = writeln!(
                o,
                "  {:<10} {n:>6}  {:>4}",
                t.as_str(),
                fmt_share(share(n, total))
            );
        }
        let _ = writeln!(o, "  {:<10} {total:>6}\n", "total");
        let _ = writeln!(
            o,
            "Adverse events (flagged, created in the window or still open)"
        );
        let _ = writeln!(o, "  flagged              {}", ae.flagged);
        let _ = writeln!(o, "  with intake          {}", ae.with_intake);
        let _ = writeln!(o, "  time to intake p50   {}", fmt_minutes(ae.median_min));
        let _ = writeln!(o, "  time to intake p90   {}", fmt_minutes(ae.p90_min));
        let _ = writeln!(
            o,
            "  waiting for intake   {} ({} past the {} h clock)\n",
            ae.waiting, ae.past_clock, ae.clock_hours
        );
        let _ = writeln!(o, "First responses per hour, last 24 h (UTC)");
        let busy: Vec<&HourBucket> = self.per_hour.iter().filter(|b| b.answered > 0).collect();
        if busy.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for b in busy {
            let _ = writeln!(
                o,
                "  {} {}  {:>4} answered, {} within target",
                b.start.date(),
                hm(b.start),
                b.answered,
                b.within_target
            );
        }
        let _ = writeln!(o, "\nMentions per day by tone (UTC)");
        let _ = writeln!(
            o,
            "  {:<10} {}",
            "day",
            Tone::ALL
                .iter()
                .map(|t| format!("{:>10}", t.as_str()))
                .collect::<String>()
        );
        for d in &self.per_day {
            let _ = writeln!(
                o,
                "  {:<10} {}",
                d.date.to_string(),
                d.tones
                    .iter()
                    .map(|n| format!("{n:>10}"))
                    .collect::<String>()
            );
        }
        o
    }

    /// `tonedesk stats --format csv`: a header and one `section,key,value,unit` row per figure.
    /// Values that do not exist (the median of nothing) are empty.
    pub fn csv(&self) -> String {
        let fr = &self.first_response;
        let ae = &self.ae;
        let total = self.tone_total();
        let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:.1}"));
        let mut rows: Vec<(String, String, String, &str)> = Vec::new();
        let mut row = |section: &str, key: &str, value: String, unit: &'static str| {
            rows.push((section.to_owned(), key.to_owned(), value, unit));
        };
        row("window", "days", self.days.to_string(), "d");
        row("window", "end", format_utc(self.now), "");
        row(
            "first_response",
            "answered",
            fr.answered.to_string(),
            "count",
        );
        row("first_response", "median", num(fr.median_min), "min");
        row("first_response", "p90", num(fr.p90_min), "min");
        row(
            "first_response",
            "within_target",
            fr.within_target.to_string(),
            "count",
        );
        row(
            "first_response",
            "within_target_share",
            num(fr.within_share()),
            "%",
        );
        row("first_response", "open", fr.open.to_string(), "count");
        row("first_response", "overdue", fr.overdue.to_string(), "count");
        for (t, n) in Tone::ALL.iter().zip(self.tone_mix) {
            row("tone_mix", t.as_str(), n.to_string(), "count");
            row(
                "tone_mix",
                &format!("{}_share", t.as_str()),
                num(share(n, total)),
                "%",
            );
        }
        row("tone_mix", "total", total.to_string(), "count");
        row("ae", "flagged", ae.flagged.to_string(), "count");
        row("ae", "with_intake", ae.with_intake.to_string(), "count");
        row("ae", "intake_median", num(ae.median_min), "min");
        row("ae", "intake_p90", num(ae.p90_min), "min");
        row("ae", "waiting", ae.waiting.to_string(), "count");
        row("ae", "past_clock", ae.past_clock.to_string(), "count");
        row("ae", "clock", ae.clock_hours.to_string(), "h");
        for (label, n) in AE_BUCKET_LABELS.iter().zip(ae.histogram) {
            row("ae_intake_time", label, n.to_string(), "count");
        }
        for b in &self.per_hour {
            let at = format_utc(b.start);
            row("per_hour_answered", &at, b.answered.to_string(), "count");
            row(
                "per_hour_within_target",
                &at,
                b.within_target.to_string(),
                "count",
            );
        }
        for d in &self.per_day {
            for (t, n) in Tone::ALL.iter().zip(d.tones) {
                row(
                    &format!("per_day_{}", t.as_str()),
                    &d.date.to_string(),
                    n.to_string(),
                    "count",
                );
            }
        }
        let mut out = String::from("section,key,value,unit\n");
        for (s, k, v, u) in rows {
            let _ = writeln!(
                out,
                "{},{},{},{}",
                csv_field(&s),
                csv_field(&k),
                csv_field(&v),
                u
            );
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// What the stats screen shows.
#[derive(Debug, Clone, PartialEq)]
pub enum StatsView {
    Loading,
    Ready(Box<Stats>),
    Failed(String),
}

// The stats screen's part of the console's one `update` (`state.rs` dispatches here).
impl AppState {
    /// `S` in the queue: the full-screen stats, loaded off the draw path.
    pub(super) fn open_stats(&mut self) -> Vec<Effect> {
        self.mode = Mode::Stats(StatsView::Loading);
        self.notice = Some(Notice {
            text: "Esc back".into(),
            error: false,
        });
        vec![Effect::LoadStats]
    }

    pub(super) fn on_stats(&mut self, action: Action, view: StatsView) -> Vec<Effect> {
        match action {
            Action::Stats | Action::Back | Action::Quit => {
                self.notice = None;
            }
            _ => {
                self.mode = Mode::Stats(view);
                self.dirty = false;
            }
        }
        Vec::new()
    }

    /// The worker's answer; dropped when the screen was left meanwhile.
    pub(super) fn on_stats_loaded(&mut self, result: Result<Box<Stats>, String>) -> Vec<Effect> {
        if matches!(self.mode, Mode::Stats(_)) {
            self.mode = Mode::Stats(match result {
                Ok(s) => StatsView::Ready(s),
                Err(e) => StatsView::Failed(e),
            });
        } else {
            self.dirty = false;
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:30 UTC);

    fn row(id: MentionId, tone: Tone, created_min_ago: i64) -> StatRow {
        let created_at = NOW - Duration::minutes(created_min_ago);
        StatRow {
            id,
            created_at,
            due_at: created_at + Duration::minutes(60),
            tone,
            ae: false,
            open: true,
        }
    }

    fn ev(mention: MentionId, kind: StatEventKind, at: OffsetDateTime) -> StatEvent {
        StatEvent { mention, at, kind }
    }

    fn reply_after(r: &StatRow, minutes: i64) -> StatEvent {
        ev(
            r.id,
            StatEventKind::Reply,
            r.created_at + Duration::minutes(minutes),
        )
    }

    fn stats(rows: &[StatRow], events: &[StatEvent]) -> Stats {
        compute(rows, events, NOW, Params::default())
    }

    #[test]
    fn percentiles_on_odd_even_and_empty() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.5), Some(7.0));
        assert_eq!(percentile(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 10.0], 0.5), Some(2.0));
        assert_eq!(percentile(&[1.0, 2.0, 4.0, 10.0], 0.5), Some(3.0));
        // p90 of 1..=10: rank 0.9 × 9 = 8.1, between 9 and 10.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((percentile(&ten, 0.9).unwrap() - 9.1).abs() < 1e-9);
        let eleven: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(percentile(&eleven, 0.9), Some(9.0));
        assert_eq!(percentile(&eleven, 0.5), Some(5.0));
    }

    #[test]
    fn empty_data_has_zero_counts_and_no_medians() {
        let s = stats(&[], &[]);
        assert_eq!(s.first_response, FirstResponse::default());
        assert_eq!(s.first_response.within_share(), None);
        assert_eq!(s.per_hour.len(), 24);
        assert_eq!(s.per_day.len(), 7);
        assert_eq!(s.tone_total(), 0);
        assert_eq!(s.ae.flagged, 0);
        assert_eq!(s.ae.median_min, None);
        assert!(s.text().contains("median               –"));
        let csv = s.csv();
        assert!(csv.contains("first_response,median,,min\n"), "{csv}");
    }

    #[test]
    fn first_responses_median_p90_and_target() {
        let rows: Vec<StatRow> = (1..=4).map(|i| row(i, Tone::Complaint, 600)).collect();
        // 10, 20, 30 and 90 minutes: median 25, p90 between 30 and 90 (rank 2.7 → 72).
        let events = vec![
            reply_after(&rows[0], 10),
            reply_after(&rows[1], 20),
            reply_after(&rows[2], 30),
            reply_after(&rows[3], 90),
            // A later reply to the same mention does not move its first response.
            reply_after(&rows[0], 300),
        ];
        let s = stats(&rows, &events);
        let fr = &s.first_response;
        assert_eq!((fr.answered, fr.within_target), (4, 3));
        assert_eq!(fr.median_min, Some(25.0));
        assert!((fr.p90_min.unwrap() - 72.0).abs() < 1e-9);
        assert_eq!(fr.within_share(), Some(75.0));
        assert_eq!((fr.open, fr.overdue), (0, 0));
        assert_eq!(fmt_minutes(fr.median_min), "25.0 min");
        assert_eq!(fmt_minutes(Some(95.0)), "95 min (1h35m)");
    }

    #[test]
    fn moderation_answers_only_trolls_and_spam() {
        let troll = row(1, Tone::Troll, 100);
        let complaint = row(2, Tone::Complaint, 100);
        let spam = row(3, Tone::Spam, 100);
        let events = vec![
            ev(1, StatEventKind::Moderation, NOW - Duration::minutes(95)),
            ev(1, StatEventKind::Reply, NOW - Duration::minutes(99)),
            ev(2, StatEventKind::Moderation, NOW - Duration::minutes(90)),
            ev(3, StatEventKind::Moderation, NOW - Duration::minutes(10)),
        ];
        let s = stats(&[troll, complaint, spam], &events);
        let fr = &s.first_response;
        // Troll: the reply came first (1 min); spam: 90 min, late; the complaint is still open.
        assert_eq!((fr.answered, fr.within_target), (2, 1));
        assert_eq!(fr.median_min, Some(45.5));
        assert_eq!((fr.open, fr.overdue), (1, 1));
    }

    #[test]
    fn open_and_overdue_count_every_waiting_mention() {
        let fresh = row(1, Tone::Neutral, 30);
        let late = row(2, Tone::Neutral, 61);
        // Older than the window and still open: counted.
        let ancient = row(3, Tone::Neutral, 60 * 24 * 30);
        let mut closed = row(4, Tone::Neutral, 120);
        closed.open = false;
        let s = stats(&[fresh, late, ancient, closed], &[]);
        assert_eq!(
            (s.first_response.open, s.first_response.overdue),
            (3, 2),
            "a closed mention without a reply is not waiting"
        );
        // The ancient one is outside the tone mix of the window.
        assert_eq!(s.tone_total(), 3);
    }

    #[test]
    fn answers_outside_the_window_do_not_count() {
        let old = row(1, Tone::Complaint, 60 * 24 * 9);
        let events = vec![reply_after(&old, 60 * 24)];
        let s = stats(&[old], &events);
        assert_eq!(s.first_response.answered, 0);
        assert_eq!(s.first_response.open, 0);
        let s = compute(
            &[row(1, Tone::Complaint, 60 * 24 * 9)],
            &events,
            NOW,
            Params {
                days: 30,
                ..Params::default()
            },
        );
        assert_eq!(s.first_response.answered, 1);
    }

    #[test]
    fn hour_buckets_at_their_boundaries() {
        let s = stats(&[], &[]);
        assert_eq!(s.per_hour[23].start, datetime!(2026-06-01 12:00 UTC));
        assert_eq!(s.per_hour[0].start, datetime!(2026-05-31 13:00 UTC));
        let created = datetime!(2026-05-31 12:00 UTC);
        let mk = |id| StatRow {
            id,
            created_at: created,
            due_at: created + Duration::hours(2),
            tone: Tone::Neutral,
            ae: false,
            open: false,
        };
        let rows: Vec<StatRow> = (1..=5).map(mk).collect();
        let events = vec![
            // Before the first bucket: in the window but not on the chart.
            ev(1, StatEventKind::Reply, datetime!(2026-05-31 12:59:59 UTC)),
            // Exactly at the first bucket's start, within target.
            ev(2, StatEventKind::Reply, datetime!(2026-05-31 13:00 UTC)),
            // The last second of a bucket, late.
            ev(3, StatEventKind::Reply, datetime!(2026-05-31 14:59:59 UTC)),
            ev(4, StatEventKind::Reply, datetime!(2026-06-01 12:00 UTC)),
            ev(5, StatEventKind::Reply, datetime!(2026-06-01 12:29:59 UTC)),
        ];
        let s = stats(&rows, &events);
        assert_eq!(s.first_response.answered, 5);
        let counts: Vec<(u64, u64)> = s
            .per_hour
            .iter()
            .map(|b| (b.answered, b.within_target))
            .collect();
        assert_eq!(counts[0], (1, 1));
        assert_eq!(counts[1], (1, 0));
        assert_eq!(counts[23], (2, 0));
        assert_eq!(counts.iter().map(|c| c.0).sum::<u64>(), 4);
        assert_eq!(s.per_hour[1].late(), 1);
    }

    #[test]
    fn day_buckets_at_midnight_and_the_tone_mix() {
        let at = |t: OffsetDateTime, id, tone| StatRow {
            id,
            created_at: t,
            due_at: t + Duration::hours(1),
            tone,
            ae: false,
            open: false,
        };
        let rows = vec![
            at(datetime!(2026-06-01 00:00 UTC), 1, Tone::Positive),
            at(datetime!(2026-05-31 23:59:59 UTC), 2, Tone::Spam),
            at(datetime!(2026-05-26 00:00 UTC), 3, Tone::Troll),
            // The day before the chart: in the 7 × 24 h window (it ends at 12:30), not charted.
            at(datetime!(2026-05-25 23:00 UTC), 4, Tone::Complaint),
            at(datetime!(2026-05-25 12:30 UTC), 5, Tone::Complaint),
            at(datetime!(2026-05-25 12:29 UTC), 6, Tone::Neutral),
            // Local offsets are turned into UTC days.
            at(datetime!(2026-06-01 01:00 +02:00), 7, Tone::Positive),
        ];
        let s = stats(&rows, &[]);
        assert_eq!(s.per_day[0].date, date!(2026 - 05 - 26));
        assert_eq!(s.per_day[6].date, date!(2026 - 06 - 01));
        assert_eq!(s.per_day[6].tones, [1, 0, 0, 0, 0]);
        assert_eq!(s.per_day[5].tones, [1, 0, 0, 0, 1]);
        assert_eq!(s.per_day[0].tones, [0, 0, 0, 1, 0]);
        assert_eq!(
            s.per_day
                .iter()
                .map(|d| d.tones.iter().sum::<u64>())
                .sum::<u64>(),
            4
        );
        assert_eq!(s.tone_mix, [2, 0, 2, 1, 1]);
        assert_eq!(s.tone_total(), 6);
        assert_eq!(since(NOW, 7), datetime!(2026-05-25 12:30 UTC));
        assert_eq!(since(NOW, 1), datetime!(2026-05-26 00:00 UTC));
    }

    #[test]
    fn ae_intake_times_and_the_clock() {
        let ae = |id, created_min_ago, open| StatRow {
            ae: true,
            open,
            ..row(id, Tone::Neutral, created_min_ago)
        };
        let rows = vec![
            ae(1, 600, false),
            ae(2, 600, false),
            ae(3, 30 * 60, true),       // no intake, past 24 h
            ae(4, 60, true),            // no intake, within the clock
            ae(5, 60 * 24 * 20, false), // older than the window and closed: not counted
            row(6, Tone::Neutral, 60),
        ];
        let events = vec![
            ev(
                1,
                StatEventKind::AeIntake,
                rows[0].created_at + Duration::minutes(30),
            ),
            // ae_flag then ae_intake: the first one counts.
            ev(
                2,
                StatEventKind::AeIntake,
                rows[1].created_at + Duration::minutes(300),
            ),
            ev(
                2,
                StatEventKind::AeIntake,
                rows[1].created_at + Duration::minutes(500),
            ),
            ev(6, StatEventKind::AeIntake, NOW),
        ];
        let s = stats(&rows, &events);
        let a = &s.ae;
        assert_eq!(
            (a.flagged, a.with_intake, a.waiting, a.past_clock),
            (4, 2, 2, 1)
        );
        assert_eq!(a.median_min, Some(165.0));
        assert!((a.p90_min.unwrap() - 273.0).abs() < 1e-9);
        assert_eq!(a.histogram, [1, 0, 1, 0, 0]);
        let text = s.text();
        assert!(
            text.contains("waiting for intake   2 (1 past the 24 h clock)"),
            "{text}"
        );
    }

    #[test]
    fn csv_is_a_tidy_table() {
        let r = row(1, Tone::Complaint, 100);
        let s = stats(std::slice::from_ref(&r), &[reply_after(&r, 12)]);
        let csv = s.csv();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("section,key,value,unit"));
        for l in lines {
            assert_eq!(l.split(',').count(), 4, "{l}");
        }
        assert!(csv.contains("first_response,answered,1,count\n"));
        assert!(csv.contains("first_response,median,12.0,min\n"));
        assert!(csv.contains("first_response,within_target_share,100.0,%\n"));
        assert!(csv.contains("tone_mix,complaint,1,count\n"));
        assert!(
            csv.contains("per_hour_answered,2026-06-01T11:00:00Z,1,count\n"),
            "{csv}"
        );
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn the_screen_opens_loads_and_closes() {
        let mut s = AppState::new(
            "Acme".into(),
            true,
            Arc::new(super::super::Library::default()),
            NOW,
        );
        assert_eq!(s.update(Action::Stats), vec![Effect::LoadStats]);
        assert_eq!(s.mode, Mode::Stats(StatsView::Loading));
        assert!(s.update(Action::Down).is_empty());
        assert_eq!(s.mode, Mode::Stats(StatsView::Loading));
        s.update(Action::StatsLoaded(Ok(Box::new(stats(&[], &[])))));
        assert!(matches!(s.mode, Mode::Stats(StatsView::Ready(_))));
        // q leaves the screen, not the program.
        s.update(Action::Quit);
        assert_eq!(s.mode, Mode::Normal);
        assert!(!s.quit);
        // A late answer after leaving is dropped.
        s.update(Action::StatsLoaded(Err("busy".into())));
        assert_eq!(s.mode, Mode::Normal);
        s.update(Action::Stats);
        s.update(Action::StatsLoaded(Err("database is locked".into())));
        assert_eq!(
            s.mode,
            Mode::Stats(StatsView::Failed("database is locked".into()))
        );
        s.update(Action::Back);
        assert_eq!(s.mode, Mode::Normal);
    }
}
