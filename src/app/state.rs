//! The console's state and its one `update(Action) -> Vec<Effect>`. No I/O happens here: effects
//! are returned to the worker, whose answers come back as actions.

use std::sync::Arc;

use time::OffsetDateTime;

use super::desk::{PollReport, Preview, SendReport};
pub use super::forms::{AeForm, FORM_FIELDS, SNOOZE_CHOICES};
use super::library::Library;
use crate::domain::playbook::ModAction;
use crate::domain::{AeCase, Draft, Flag, Flags, Mention, MentionId, Tags, Tone};
use crate::store::{Counts, Filter, QueueQuery, View};

/// Rows fetched around the selection.
pub const WINDOW: usize = 120;

/// Rows of the very first page: a screenful, so the first frame waits for as few reads as
/// possible; the rest of the window follows at once.
pub const FIRST: usize = 48;

/// Everything that can happen to the console: keys (already mapped) and answers from the worker.
#[derive(Debug, Clone)]
pub enum Action {
    Down,
    Up,
    Top,
    Bottom,
    PageDown,
    PageUp,
    Open,
    Reply,
    Draft,
    Retag,
    AeIntake,
    /// `z`: snooze, or set an HCP follow-up.
    Snooze,
    Mod(ModAction),
    Done,
    Search,
    Filter,
    SwitchView,
    Help,
    /// `S`: the stats screen.
    Stats,
    Quit,
    /// Esc: close the overlay.
    Back,
    /// `y` in the preview.
    Confirm,
    /// Text typed into an input (search) or a choice key in an overlay.
    Input(char),
    Backspace,
    /// Enter inside an overlay.
    Submit,
    Resize,
    /// The clock moved.
    Tick(OffsetDateTime),

    // Answers from the worker.
    Page {
        query: QueueQuery,
        offset: usize,
        rows: Vec<Mention>,
        total: usize,
        counts: Counts,
        crisis: Option<String>,
    },
    Previewed(Result<Box<Preview>, String>),
    Sent(Result<SendReport, String>),
    Acted {
        what: String,
        result: Result<(), String>,
    },
    Polled(Vec<PollReport>),
    /// A stream is still paging through a first-run backfill.
    Backfilling(PollReport),
    /// A mention's AE intake record (saved, or pre-filled) and whether it was saved before.
    AeLoaded(Result<(Box<AeCase>, bool), String>),
    /// What the operator wrote in the editor (`None`: nothing, the draft was dropped).
    DraftWritten {
        mention: MentionId,
        text: Option<String>,
    },
    /// The drafts waiting for review (for the review view).
    DraftsLoaded(Vec<Draft>),
    /// Snoozed mentions and follow-ups back in the queue, with why they were put aside.
    Woke(Vec<(MentionId, String)>),
    /// Another process polls this home; this console shows what it stores.
    PollWaiting,
    /// The database's data version: it changes when another process (a second console, a
    /// `tonedesk poll`) commits.
    DataVersion(i64),
    /// The data version the page on screen was read at.
    Baseline(i64),
    StatsLoaded(Result<Box<super::stats::Stats>, String>),
}

/// Work for the worker; its answers come back as [`Action`]s.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Up to `limit` rows from `offset` on; `near`: a row of the current page and its index, to
    /// find the new page from (an index seek in the store, however deep the view).
    LoadPage {
        query: QueueQuery,
        offset: usize,
        near: Option<(MentionId, usize)>,
        limit: usize,
    },
    Preview {
        mention: MentionId,
        template: String,
    },
    Send {
        mention: MentionId,
        template: String,
    },
    Act {
        mention: MentionId,
        action: ModAction,
    },
    Retag {
        mention: MentionId,
        tags: Tags,
    },
    Done {
        mention: MentionId,
    },
    /// Start the background pollers (once, at start); their rounds come back as `Polled`.
    StartPolling,
    /// Settle sends a crash left between intent and result.
    Reconcile,
    LoadAe {
        mention: MentionId,
    },
    SaveAe {
        case: Box<AeCase>,
    },
    /// Open `$EDITOR` on `seed` (the console performs this one itself: it owns the terminal).
    EditDraft {
        mention: MentionId,
        seed: String,
    },
    FileDraft {
        mention: MentionId,
        text: String,
    },
    LoadDrafts,
    Snooze {
        mention: MentionId,
        until: OffsetDateTime,
    },
    FollowUp {
        mention: MentionId,
    },
    /// Bring back snoozed mentions whose time has come.
    Wake,
    /// Ask whether another process changed the database.
    CheckChanged,
    /// Read and compute the stats screen's figures; the answer is `StatsLoaded`.
    LoadStats,
}

/// The overlay in front of the queue, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    /// The reply picker: library ids, best fit first.
    Picker {
        mention: MentionId,
        choices: Vec<String>,
        selected: usize,
    },
    /// The rendered reply waiting for `y`.
    Preview {
        preview: Box<PreviewView>,
        sending: bool,
    },
    Retag {
        mention: MentionId,
        tone: Tone,
        flags: Flags,
    },
    Search {
        input: String,
    },
    AeForm(Box<AeForm>),
    Snooze {
        mention: MentionId,
    },
    /// The full-screen stats (`S`).
    Stats(super::stats::StatsView),
}

/// What the preview shows (a flattened [`Preview`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewView {
    pub mention: MentionId,
    pub template: String,
    pub version: u32,
    pub approval: String,
    pub channel: String,
    pub platform: String,
    pub text: Option<String>,
    pub length: usize,
    pub limit: usize,
    pub refusal: Option<String>,
}

impl From<&Preview> for PreviewView {
    fn from(p: &Preview) -> Self {
        PreviewView {
            mention: p.mention.id,
            template: p.template.clone(),
            version: p.version,
            approval: p.approval.clone(),
            channel: p.channel.as_str().into(),
            platform: p.mention.platform.as_str().into(),
            text: p.text.clone(),
            length: p.length,
            limit: p.limit,
            refusal: p.verdict.as_ref().err().map(ToString::to_string),
        }
    }
}

/// A one-line message in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// The state of background polling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollStatus {
    pub started: bool,
    /// When the last round of any account ended.
    pub last: Option<OffsetDateTime>,
    /// New mentions in that round.
    pub last_new: usize,
    /// The latest error of each `account stream` whose last poll failed.
    pub errors: std::collections::BTreeMap<String, String>,
    /// Streams in a first-run backfill, with the mentions stored so far.
    pub backfill: std::collections::BTreeMap<String, usize>,
    /// Another process polls this home (this one shows what it stores).
    pub elsewhere: bool,
}

pub struct AppState {
    pub brand: String,
    pub demo: bool,
    pub library: Arc<Library>,
    pub now: OffsetDateTime,

    pub query: QueueQuery,
    /// Index of the first row of `rows` in the whole view.
    pub offset: usize,
    pub rows: Vec<Mention>,
    /// The query `rows` were read for.
    rows_query: Option<QueueQuery>,
    /// The selection when the last page was asked for.
    asked_for: usize,
    pub total: usize,
    /// Absolute index of the selected row in the view.
    pub selected: usize,
    pub counts: Counts,
    pub crisis: Option<String>,
    pub loaded: bool,
    /// A page request is out; do not ask again until it answers.
    pub loading: bool,

    pub detail: bool,
    pub mode: Mode,
    pub notice: Option<Notice>,
    pub poll: PollStatus,
    pub quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    /// Hours from publish time to the AE report (the AE clock), from the config.
    pub ae_report_hours: u32,
    /// Drafts waiting for MLR review (loaded for the review view).
    pub drafts: Vec<Draft>,
    /// Library replies that expire within 30 days: (id, days left).
    pub expiring: Vec<(String, i64)>,
    /// The database's data version when last seen (another process's commits change it).
    pub data_version: Option<i64>,
}

impl AppState {
    pub fn new(brand: String, demo: bool, library: Arc<Library>, now: OffsetDateTime) -> Self {
        let expiring = library
            .replies
            .iter()
            .filter_map(|r| {
                let days = (r.expires_on - now.date()).whole_days();
                (days <= 30).then(|| (r.id.clone(), days))
            })
            .collect();
        AppState {
            brand,
            demo,
            library,
            now,
            query: QueueQuery::default(),
            offset: 0,
            rows: Vec::new(),
            rows_query: None,
            asked_for: 0,
            total: 0,
            selected: 0,
            counts: Counts::default(),
            crisis: None,
            loaded: false,
            loading: false,
            detail: true,
            mode: Mode::Normal,
            notice: None,
            poll: PollStatus::default(),
            quit: false,
            dirty: true,
            ae_report_hours: 24,
            drafts: Vec::new(),
            expiring,
            data_version: None,
        }
    }

    /// The effects to run at start: the first page, settling a crash's leftovers, the first poll.
    pub fn start(&mut self) -> Vec<Effect> {
        self.loading = true;
        self.poll.started = true;
        let mut first = self.load(0);
        if let Effect::LoadPage { limit, .. } = &mut first {
            *limit = FIRST;
        }
        vec![first, Effect::Reconcile, Effect::StartPolling, Effect::Wake]
    }

    pub fn selected_mention(&self) -> Option<&Mention> {
        self.selected
            .checked_sub(self.offset)
            .and_then(|i| self.rows.get(i))
    }

    /// The mention an action applies to: the selection, or the one whose overlay is open.
    fn target(&self) -> Option<MentionId> {
        match &self.mode {
            Mode::Picker { mention, .. }
            | Mode::Retag { mention, .. }
            | Mode::Snooze { mention } => Some(*mention),
            Mode::AeForm(form) => Some(form.case.mention),
            Mode::Preview { preview, .. } => Some(preview.mention),
            _ => self.selected_mention().map(|m| m.id),
        }
    }

    fn load(&self, offset: usize) -> Effect {
        // The row of the current page nearest to where the new one starts. Not from the top: the
        // first rows are one index seek away, and the hint would be wrong once mentions arrived
        // above it (the hinted row moved down, and the page read from it would pass for the top,
        // hiding the newest urgent mentions until something else reloaded the page).
        let near = match (self.rows_query.as_ref(), self.rows.len()) {
            _ if offset == 0 => None,
            (Some(q), n) if *q == self.query && n > 0 => {
                let at = offset.clamp(self.offset, self.offset + n - 1);
                Some((self.rows[at - self.offset].id, at))
            }
            _ => None,
        };
        Effect::LoadPage {
            query: self.query.clone(),
            offset,
            near,
            limit: WINDOW,
        }
    }

    fn reload(&mut self) -> Vec<Effect> {
        self.loading = true;
        self.asked_for = self.selected;
        let start = self.selected.saturating_sub(WINDOW / 2);
        let mut fx = vec![self.load(start)];
        if self.query.view == View::Review {
            fx.push(Effect::LoadDrafts);
        }
        fx
    }

    fn note(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            error,
        });
    }

    fn move_to(&mut self, index: usize) -> Vec<Effect> {
        if self.total == 0 {
            self.dirty = false;
            return Vec::new();
        }
        let last = self.total.saturating_sub(1);
        self.selected = index.min(last);
        let end = self.offset + self.rows.len();
        let margin = WINDOW / 4;
        let near_start = self.selected < self.offset + margin && self.offset > 0;
        // A short page already reaches the end of the view.
        let near_end =
            self.selected + margin >= end && end < self.total && self.rows.len() >= WINDOW;
        if (near_start || near_end || self.selected_mention().is_none()) && !self.loading {
            return self.reload();
        }
        Vec::new()
    }

    /// The one place where state changes.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        match action {
            Action::Tick(now) => {
                // Only a change of minute changes what is drawn (ages and time left).
                let new_minute = now.minute() != self.now.minute() || now.hour() != self.now.hour();
                self.dirty = new_minute;
                self.now = now;
                if new_minute {
                    vec![Effect::Wake, Effect::CheckChanged]
                } else {
                    vec![Effect::CheckChanged]
                }
            }
            Action::Resize => Vec::new(),
            Action::Polled(reports) => {
                self.poll.elsewhere = false;
                self.poll.last = Some(self.now);
                self.poll.last_new = reports.iter().map(|r| r.new).sum();
                for r in &reports {
                    let key = format!("{} {}", r.account, r.stream);
                    self.poll.backfill.remove(&key);
                    match &r.error {
                        Some(e) => self.poll.errors.insert(key, e.clone()),
                        None => self.poll.errors.remove(&key),
                    };
                }
                if self.poll.last_new > 0 || !self.loaded {
                    self.reload()
                } else {
                    Vec::new()
                }
            }
            Action::Backfilling(r) => {
                self.poll
                    .backfill
                    .insert(format!("{} {}", r.account, r.stream), r.new);
                // Show what has arrived so far.
                self.reload()
            }
            Action::Page {
                query,
                offset,
                rows,
                total,
                counts,
                crisis,
            } => {
                self.loading = false;
                if query != self.query {
                    // An answer to an older query; ask for the current one.
                    return self.reload();
                }
                // The first page is a screenful: ask for the rest of the window behind it.
                let first = !self.loaded && rows.len() == FIRST && total > FIRST;
                self.offset = offset;
                self.rows = rows;
                self.rows_query = Some(query);
                self.total = total;
                self.counts = counts;
                self.crisis = crisis;
                self.loaded = true;
                if self.selected >= total {
                    self.selected = total.saturating_sub(1);
                }
                if self.selected_mention().is_none() && !self.rows.is_empty() {
                    if self.selected != self.asked_for {
                        // The operator moved on while the page was read: read theirs.
                        return self.reload();
                    }
                    // The view changed under the selection: keep it on the nearest row read.
                    self.selected = self
                        .selected
                        .clamp(self.offset, self.offset + self.rows.len() - 1);
                } else if self.rows.is_empty() && total > 0 && offset > 0 {
                    self.selected = 0;
                    return self.reload();
                }
                if first {
                    return self.reload();
                }
                Vec::new()
            }
            Action::Previewed(result) => {
                match result {
                    Ok(p) => {
                        self.mode = Mode::Preview {
                            preview: Box::new(PreviewView::from(p.as_ref())),
                            sending: false,
                        }
                    }
                    Err(e) => {
                        self.mode = Mode::Normal;
                        self.note(e, true);
                    }
                }
                Vec::new()
            }
            Action::Sent(result) => {
                self.mode = Mode::Normal;
                match result {
                    Ok(r) if r.outcome == "sent" => {
                        let id = r.remote_id.unwrap_or_default();
                        self.note(
                            format!(
                                "reply sent to mention {} (remote id {id}); audited",
                                r.mention
                            ),
                            false,
                        );
                    }
                    Ok(r) => self.note(
                        format!(
                            "reply to mention {} {}: {}",
                            r.mention,
                            r.outcome,
                            r.error.unwrap_or_default()
                        ),
                        true,
                    ),
                    Err(e) => self.note(e, true),
                }
                self.reload()
            }
            Action::Acted { what, result } => {
                match result {
                    Ok(()) => self.note(format!("{what}: done, audited"), false),
                    Err(e) => self.note(format!("{what}: {e}"), true),
                }
                self.reload()
            }
            Action::AeLoaded(result) => {
                match result {
                    Ok((case, saved)) => {
                        self.mode = Mode::AeForm(Box::new(AeForm {
                            case: *case,
                            saved,
                            field: 0,
                            editing: None,
                        }));
                    }
                    Err(e) => self.note(format!("AE intake: {e}"), true),
                }
                Vec::new()
            }
            Action::DraftWritten { mention, text } => match text {
                Some(text) => vec![Effect::FileDraft { mention, text }],
                None => {
                    self.note("draft dropped: nothing was written", false);
                    Vec::new()
                }
            },
            Action::PollWaiting => {
                self.dirty = !self.poll.elsewhere;
                self.poll.elsewhere = true;
                Vec::new()
            }
            Action::DataVersion(v) => {
                let changed = self.data_version.is_some_and(|old| old != v);
                self.data_version = Some(v);
                if changed && !self.loading {
                    return self.reload();
                }
                self.dirty = false;
                Vec::new()
            }
            Action::Baseline(v) => {
                self.data_version = Some(v);
                self.dirty = false;
                Vec::new()
            }
            Action::DraftsLoaded(drafts) => {
                self.drafts = drafts;
                Vec::new()
            }
            Action::Woke(back) => {
                if back.is_empty() {
                    self.dirty = false;
                    return Vec::new();
                }
                let follow_ups = back.iter().filter(|(_, r)| r == "follow-up").count();
                let ids: Vec<String> = back.iter().map(|(id, _)| id.to_string()).collect();
                self.note(
                    format!(
                        "reminder: {} mention(s) back in the queue ({} HCP follow-up(s)): {}",
                        back.len(),
                        follow_ups,
                        ids.join(", ")
                    ),
                    false,
                );
                self.reload()
            }
            Action::StatsLoaded(result) => self.on_stats_loaded(result),
            other => self.on_key(other),
        }
    }

    fn on_key(&mut self, action: Action) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.on_normal(action),
            Mode::Help => {
                if !matches!(
                    action,
                    Action::Help | Action::Back | Action::Quit | Action::Submit
                ) {
                    self.mode = Mode::Help;
                }
                Vec::new()
            }
            Mode::Picker {
                mention,
                choices,
                selected,
            } => self.on_picker(action, mention, choices, selected),
            Mode::Preview { preview, sending } => self.on_preview(action, preview, sending),
            Mode::Retag {
                mention,
                tone,
                flags,
            } => self.on_retag(action, mention, tone, flags),
            Mode::Search { input } => self.on_search(action, input),
            Mode::AeForm(form) => self.on_ae_form(action, form),
            Mode::Snooze { mention } => self.on_snooze(action, mention),
            Mode::Stats(view) => self.on_stats(action, view),
        }
    }

    fn on_normal(&mut self, action: Action) -> Vec<Effect> {
        self.notice = None;
        match action {
            Action::Down => self.move_to(self.selected + 1),
            Action::Up => self.move_to(self.selected.saturating_sub(1)),
            Action::PageDown => self.move_to(self.selected + 10),
            Action::PageUp => self.move_to(self.selected.saturating_sub(10)),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(self.total.saturating_sub(1)),
            Action::Open => {
                self.detail = !self.detail;
                Vec::new()
            }
            Action::Help => {
                self.mode = Mode::Help;
                Vec::new()
            }
            Action::Stats => self.open_stats(),
            Action::Quit => {
                self.quit = true;
                Vec::new()
            }
            Action::SwitchView => {
                let i = View::ALL
                    .iter()
                    .position(|v| *v == self.query.view)
                    .unwrap_or(0);
                self.query.view = View::ALL[(i + 1) % View::ALL.len()];
                self.selected = 0;
                self.reload()
            }
            Action::Filter => {
                let i = Filter::CYCLE
                    .iter()
                    .position(|f| *f == self.query.filter)
                    .unwrap_or(0);
                self.query.filter = Filter::CYCLE[(i + 1) % Filter::CYCLE.len()];
                self.selected = 0;
                self.reload()
            }
            Action::Search => {
                self.mode = Mode::Search {
                    input: self.query.search.clone().unwrap_or_default(),
                };
                Vec::new()
            }
            Action::Back => {
                if self.query.search.is_some() || self.query.filter.is_some() {
                    self.query.search = None;
                    self.query.filter = None;
                    self.selected = 0;
                    return self.reload();
                }
                Vec::new()
            }
            Action::Reply => {
                let Some(m) = self.selected_mention() else {
                    self.note("nothing selected", true);
                    return Vec::new();
                };
                let choices: Vec<String> = self
                    .library
                    .suggestions(m)
                    .into_iter()
                    .map(|r| r.id.clone())
                    .collect();
                if choices.is_empty() {
                    self.note(
                        "the library has no reply for this platform (tonedesk library check)",
                        true,
                    );
                    return Vec::new();
                }
                self.mode = Mode::Picker {
                    mention: m.id,
                    choices,
                    selected: 0,
                };
                Vec::new()
            }
            Action::Retag => {
                if let Some(m) = self.selected_mention() {
                    self.mode = Mode::Retag {
                        mention: m.id,
                        tone: m.tags.tone,
                        flags: m.tags.flags,
                    };
                }
                Vec::new()
            }
            Action::AeIntake => match self.selected_mention() {
                Some(m) => vec![Effect::LoadAe { mention: m.id }],
                None => Vec::new(),
            },
            Action::Snooze => {
                if let Some(m) = self.selected_mention() {
                    self.mode = Mode::Snooze { mention: m.id };
                }
                Vec::new()
            }
            Action::Mod(action) => match self.target() {
                Some(mention) => vec![Effect::Act { mention, action }],
                None => Vec::new(),
            },
            Action::Done => match self.target() {
                Some(mention) => vec![Effect::Done { mention }],
                None => Vec::new(),
            },
            Action::Draft => match self.selected_mention() {
                Some(m) => vec![Effect::EditDraft {
                    mention: m.id,
                    seed: draft_seed(m),
                }],
                None => {
                    self.note("nothing selected", true);
                    Vec::new()
                }
            },
            _ => {
                self.dirty = false;
                Vec::new()
            }
        }
    }

    fn on_picker(
        &mut self,
        action: Action,
        mention: MentionId,
        choices: Vec<String>,
        selected: usize,
    ) -> Vec<Effect> {
        let n = choices.len();
        let selected = match action {
            Action::Down => (selected + 1).min(n.saturating_sub(1)),
            Action::Up => selected.saturating_sub(1),
            Action::Top => 0,
            Action::Bottom => n.saturating_sub(1),
            Action::Back | Action::Quit => return Vec::new(),
            Action::Open | Action::Submit => {
                let template = choices.get(selected).cloned().unwrap_or_default();
                return vec![Effect::Preview { mention, template }];
            }
            _ => selected,
        };
        self.mode = Mode::Picker {
            mention,
            choices,
            selected,
        };
        Vec::new()
    }

    fn on_preview(
        &mut self,
        action: Action,
        preview: Box<PreviewView>,
        sending: bool,
    ) -> Vec<Effect> {
        if sending {
            // Keys wait until the send has an outcome.
            self.mode = Mode::Preview { preview, sending };
            self.dirty = false;
            return Vec::new();
        }
        match action {
            Action::Confirm if preview.refusal.is_none() => {
                let effect = Effect::Send {
                    mention: preview.mention,
                    template: preview.template.clone(),
                };
                self.mode = Mode::Preview {
                    preview,
                    sending: true,
                };
                vec![effect]
            }
            Action::Confirm => {
                let why = preview.refusal.clone().unwrap_or_default();
                self.mode = Mode::Preview { preview, sending };
                self.note(format!("cannot send: {why}"), true);
                Vec::new()
            }
            Action::Back | Action::Quit => Vec::new(),
            _ => {
                self.mode = Mode::Preview { preview, sending };
                Vec::new()
            }
        }
    }

    fn on_retag(
        &mut self,
        action: Action,
        mention: MentionId,
        mut tone: Tone,
        mut flags: Flags,
    ) -> Vec<Effect> {
        match action {
            Action::Input(c) => match c {
                '1'..='5' => tone = Tone::ALL[(c as usize) - ('1' as usize)],
                'a' => flags.toggle(Flag::Ae),
                'h' => flags.toggle(Flag::Hcp),
                'q' => flags.toggle(Flag::MedicalQuestion),
                'c' => flags.toggle(Flag::Crisis),
                _ => {}
            },
            Action::Submit => {
                let tags = Tags::operator(tone, flags, "retagged by the operator");
                return vec![Effect::Retag { mention, tags }];
            }
            Action::Back => return Vec::new(),
            _ => {}
        }
        self.mode = Mode::Retag {
            mention,
            tone,
            flags,
        };
        Vec::new()
    }

    fn on_search(&mut self, action: Action, mut input: String) -> Vec<Effect> {
        match action {
            Action::Input(c) if !c.is_control() && input.chars().count() < 80 => input.push(c),
            Action::Backspace => {
                input.pop();
            }
            Action::Submit => {
                let text = input.trim();
                self.query.search = (!text.is_empty()).then(|| text.to_owned());
                self.selected = 0;
                return self.reload();
            }
            Action::Back => return Vec::new(),
            _ => {}
        }
        self.mode = Mode::Search { input };
        Vec::new()
    }

    /// Whether typed characters go to an input rather than the key map.
    pub fn wants_text(&self) -> bool {
        matches!(
            self.mode,
            Mode::Search { .. } | Mode::Retag { .. } | Mode::AeForm(_) | Mode::Snooze { .. }
        )
    }
}

/// What the editor opens with for a custom draft: how it works, then the mention, as comments.
fn draft_seed(m: &Mention) -> String {
    let mut seed = String::from(
        "# Write the custom reply below; lines starting with '#' are left out.\n\
         # It goes to the MLR review queue and cannot be sent until it is approved\n\
         # (tonedesk library approve). Placeholders you may use: {first_name} {author}\n\
         # {agent} {signoff} {case} {contact.KEY}. Save and quit to file it; an empty\n\
         # file drops it.\n#\n",
    );
    seed.push_str(&format!(
        "# Replying to {} on {} (mention {}):\n",
        m.author.at_handle(),
        m.platform,
        m.id
    ));
    for line in m.text.lines() {
        seed.push_str("# > ");
        seed.extend(line.chars().filter(|c| !c.is_control()));
        seed.push('\n');
    }
    seed.push('\n');
    seed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::playbook::tags_of;
    use crate::domain::reply::tests::mention;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn library() -> Arc<Library> {
        let mut lib = Library::default();
        let mut errors = Vec::new();
        for (name, text) in super::super::library::STARTER {
            lib.add_file(std::path::Path::new(name), text, &mut errors);
        }
        Arc::new(lib)
    }

    fn rows(n: usize) -> Vec<Mention> {
        (0..n)
            .map(|i| {
                let mut m = mention(&[]);
                m.id = i as i64 + 1;
                m.tags = tags_of(Tone::Complaint, &[]);
                m
            })
            .collect()
    }

    fn loaded(n: usize) -> AppState {
        let mut s = AppState::new("Acme".into(), true, library(), NOW);
        let fx = s.start();
        assert_eq!(
            fx[0],
            Effect::LoadPage {
                query: QueueQuery::default(),
                offset: 0,
                near: None,
                limit: FIRST,
            }
        );
        s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 0,
            rows: rows(n),
            total: n,
            counts: Counts::default(),
            crisis: None,
        });
        s
    }

    #[test]
    fn reply_flow_picks_previews_and_sends() {
        let mut s = loaded(3);
        assert!(s.update(Action::Reply).is_empty());
        let Mode::Picker { choices, .. } = &s.mode else {
            panic!("no picker")
        };
        let first = choices[0].clone();
        let fx = s.update(Action::Open);
        assert_eq!(
            fx,
            vec![Effect::Preview {
                mention: 1,
                template: first.clone()
            }]
        );
        let preview = PreviewView {
            mention: 1,
            template: first.clone(),
            version: 1,
            approval: "MLR".into(),
            channel: "public".into(),
            platform: "x".into(),
            text: Some("Thanks".into()),
            length: 6,
            limit: 280,
            refusal: None,
        };
        s.mode = Mode::Preview {
            preview: Box::new(preview.clone()),
            sending: false,
        };
        let fx = s.update(Action::Confirm);
        assert_eq!(
            fx,
            vec![Effect::Send {
                mention: 1,
                template: first
            }]
        );
        // A second y while sending does nothing: no double send from the console.
        assert!(s.update(Action::Confirm).is_empty());
        let fx = s.update(Action::Sent(Ok(SendReport {
            mention: 1,
            outcome: "sent".into(),
            remote_id: Some("r1".into()),
            error: None,
            intent_seq: 1,
            result_seq: 2,
        })));
        assert!(matches!(fx[0], Effect::LoadPage { .. }));
        assert_eq!(s.mode, Mode::Normal);
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| !n.error && n.text.contains("sent"))
        );
    }

    #[test]
    fn a_refused_preview_cannot_be_sent() {
        let mut s = loaded(1);
        let preview = PreviewView {
            mention: 1,
            template: "x".into(),
            version: 1,
            approval: "MLR".into(),
            channel: "public".into(),
            platform: "x".into(),
            text: None,
            length: 0,
            limit: 280,
            refusal: Some("rule 'expired'".into()),
        };
        s.mode = Mode::Preview {
            preview: Box::new(preview),
            sending: false,
        };
        assert!(s.update(Action::Confirm).is_empty());
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.error && n.text.contains("expired"))
        );
    }

    #[test]
    fn the_first_page_is_a_screenful_and_the_window_follows() {
        let mut s = AppState::new("Acme".into(), true, library(), NOW);
        s.start();
        let fx = s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 0,
            rows: rows(FIRST),
            total: 1000,
            counts: Counts::default(),
            crisis: None,
        });
        assert!(s.dirty && s.selected_mention().is_some(), "drawn at once");
        assert_eq!(
            fx,
            vec![Effect::LoadPage {
                query: QueueQuery::default(),
                offset: 0,
                near: None,
                limit: WINDOW,
            }]
        );
        // A view shorter than a screenful needs nothing more.
        let mut s = AppState::new("Acme".into(), true, library(), NOW);
        s.start();
        let fx = s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 0,
            rows: rows(5),
            total: 5,
            counts: Counts::default(),
            crisis: None,
        });
        assert!(fx.is_empty());
    }

    #[test]
    fn moving_pages_around_the_selection() {
        let mut s = AppState::new("Acme".into(), true, library(), NOW);
        s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 0,
            rows: rows(WINDOW),
            total: 1000,
            counts: Counts::default(),
            crisis: None,
        });
        for _ in 0..(WINDOW - WINDOW / 4 - 1) {
            assert!(s.update(Action::Down).is_empty());
        }
        let fx = s.update(Action::Down);
        // The next page is found from a row on screen, not counted from the start.
        let selected = s.selected;
        assert!(
            matches!(&fx[..], [Effect::LoadPage { offset, near: Some((id, at)), .. }]
                if *offset == selected - WINDOW / 2 && *at == *offset && *id == *at as i64 + 1),
            "{fx:?}"
        );
        assert!(
            s.update(Action::Bottom).is_empty(),
            "no second request while one is out"
        );
        assert_eq!(s.selected, 999);
        // The answer for the old selection comes; the operator has moved on: ask again.
        let fx = s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 30,
            rows: rows(WINDOW),
            total: 1000,
            counts: Counts::default(),
            crisis: None,
        });
        assert!(
            matches!(
                &fx[..],
                [Effect::LoadPage {
                    offset: 939,
                    near: Some(_),
                    ..
                }]
            ),
            "{fx:?}"
        );
        // A page that does not hold the selection it was asked for keeps the nearest row.
        let fx = s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 800,
            rows: rows(60),
            total: 1000,
            counts: Counts::default(),
            crisis: None,
        });
        assert!(fx.is_empty());
        assert_eq!(s.selected, 859);
        assert!(s.selected_mention().is_some());
    }

    #[test]
    fn views_filters_and_search_reload() {
        let mut s = loaded(2);
        let fx = s.update(Action::SwitchView);
        assert_eq!(s.query.view, View::Moderation);
        assert!(matches!(&fx[0], Effect::LoadPage { query, .. } if query.view == View::Moderation));
        s.update(Action::Filter);
        assert_eq!(s.query.filter, Some(Filter::Flag(Flag::Ae)));
        s.update(Action::Search);
        for c in "copay".chars() {
            s.update(Action::Input(c));
        }
        s.update(Action::Backspace);
        let fx = s.update(Action::Submit);
        assert_eq!(s.query.search.as_deref(), Some("copa"));
        assert!(matches!(&fx[0], Effect::LoadPage { query, .. } if query.search.is_some()));
        // A page for an older query is not shown.
        let fx = s.update(Action::Page {
            query: QueueQuery::default(),
            offset: 0,
            rows: rows(1),
            total: 1,
            counts: Counts::default(),
            crisis: None,
        });
        assert!(!fx.is_empty());
    }

    #[test]
    fn retag_and_moderation_become_effects() {
        let mut s = loaded(1);
        s.update(Action::Retag);
        s.update(Action::Input('4'));
        s.update(Action::Input('h'));
        let fx = s.update(Action::Submit);
        let Effect::Retag { tags, .. } = &fx[0] else {
            panic!("{fx:?}")
        };
        assert_eq!(tags.tone, Tone::Troll);
        assert!(tags.flags.contains(Flag::Hcp));
        assert_eq!(
            s.update(Action::Mod(ModAction::Block)),
            vec![Effect::Act {
                mention: 1,
                action: ModAction::Block
            }]
        );
        assert_eq!(s.update(Action::Done), vec![Effect::Done { mention: 1 }]);
        assert_eq!(
            s.update(Action::AeIntake),
            vec![Effect::LoadAe { mention: 1 }]
        );
        s.update(Action::Help);
        assert_eq!(s.mode, Mode::Help);
        s.update(Action::Back);
        assert_eq!(s.mode, Mode::Normal);
        s.update(Action::Quit);
        assert!(s.quit);
    }

    #[test]
    fn polling_rounds_track_backfill_and_errors() {
        let mut s = loaded(1);
        let report = |new, error: Option<&str>| PollReport {
            account: "care-x".into(),
            stream: "mentions".into(),
            new,
            error: error.map(str::to_owned),
            failures: u32::from(error.is_some()),
            next_at: None,
        };
        let fx = s.update(Action::Backfilling(report(100, None)));
        assert!(matches!(fx[..], [Effect::LoadPage { .. }]));
        s.loading = false;
        assert_eq!(s.poll.backfill.get("care-x mentions"), Some(&100));
        s.update(Action::Polled(vec![report(0, Some("429"))]));
        assert!(s.poll.backfill.is_empty());
        assert_eq!(
            s.poll.errors.get("care-x mentions").map(String::as_str),
            Some("429")
        );
        let fx = s.update(Action::Polled(vec![report(3, None)]));
        assert!(s.poll.errors.is_empty());
        assert!(
            matches!(fx[..], [Effect::LoadPage { .. }]),
            "new mentions reload the page"
        );
    }

    #[test]
    fn the_ae_form_edits_cycles_and_saves() {
        let mut s = loaded(3);
        let mut m = mention(&[Flag::Ae]);
        m.text = "my zyntriva gave me hives".into();
        let case = AeCase::prefill(&m, 24);
        s.update(Action::AeLoaded(Ok((Box::new(case), false))));
        assert!(s.wants_text());
        // Field 0 (reporter) → down to patient, edit it.
        s.update(Action::Input('j'));
        s.update(Action::Submit);
        for _ in 0..40 {
            s.update(Action::Backspace);
        }
        for c in "my son".chars() {
            s.update(Action::Input(c));
        }
        s.update(Action::Submit);
        // Product (nothing found, so "to ask"): cycle its state to "missing".
        s.update(Action::Down);
        s.update(Action::Input(' '));
        let Mode::AeForm(form) = &s.mode else {
            panic!("the form closed: {:?}", s.mode);
        };
        assert_eq!(form.case.patient.value, "my son");
        assert_eq!(
            form.case.patient.state,
            crate::domain::ElementState::Present
        );
        assert_eq!(
            form.case.product.state,
            crate::domain::ElementState::Missing
        );
        let fx = s.update(Action::Input('y'));
        assert!(
            matches!(&fx[..], [Effect::SaveAe { case }] if case.patient.value == "my son"),
            "{fx:?}"
        );
        assert_eq!(s.mode, Mode::Normal);

        // Esc while typing drops the edit only; Esc again closes without saving.
        let case = AeCase::prefill(&m, 24);
        s.update(Action::AeLoaded(Ok((Box::new(case.clone()), true))));
        s.update(Action::Submit);
        s.update(Action::Input('x'));
        s.update(Action::Back);
        assert!(matches!(&s.mode, Mode::AeForm(f) if f.case == case && f.editing.is_none()));
        assert!(s.update(Action::Back).is_empty());
        assert_eq!(s.mode, Mode::Normal);
    }

    #[test]
    fn snooze_follow_up_draft_and_wake() {
        let mut s = loaded(3);
        s.update(Action::Snooze);
        assert_eq!(s.mode, Mode::Snooze { mention: 1 });
        assert!(s.update(Action::Input('9')).is_empty(), "not a choice");
        assert_eq!(
            s.update(Action::Input('2')),
            vec![Effect::Snooze {
                mention: 1,
                until: NOW + time::Duration::hours(4)
            }]
        );
        s.update(Action::Snooze);
        assert_eq!(
            s.update(Action::Input('f')),
            vec![Effect::FollowUp { mention: 1 }]
        );

        let fx = s.update(Action::Draft);
        assert!(
            matches!(&fx[..], [Effect::EditDraft { mention: 1, seed }] if seed.contains("# > hi")),
            "{fx:?}"
        );
        assert!(
            s.update(Action::DraftWritten {
                mention: 1,
                text: None
            })
            .is_empty()
        );
        assert_eq!(
            s.update(Action::DraftWritten {
                mention: 1,
                text: Some("Sorry!".into())
            }),
            vec![Effect::FileDraft {
                mention: 1,
                text: "Sorry!".into()
            }]
        );

        let fx = s.update(Action::Woke(vec![(2, "follow-up".into())]));
        assert!(matches!(fx[0], Effect::LoadPage { .. }));
        assert!(
            s.notice
                .as_ref()
                .is_some_and(|n| n.text.contains("1 HCP follow-up"))
        );
        // A new minute asks for a wake-up; the review view also loads its drafts.
        assert_eq!(
            s.update(Action::Tick(NOW + time::Duration::minutes(1))),
            vec![Effect::Wake, Effect::CheckChanged]
        );
        for _ in 0..3 {
            s.update(Action::SwitchView);
        }
        assert_eq!(s.query.view, View::Review);
        s.update(Action::SwitchView);
        assert_eq!(s.query.view, View::Snoozed);
    }

    #[test]
    fn another_process_commit_reloads_the_page() {
        let mut s = loaded(3);
        assert_eq!(
            s.update(Action::Tick(NOW + time::Duration::seconds(5))),
            vec![Effect::CheckChanged]
        );
        assert!(s.update(Action::DataVersion(4)).is_empty(), "first sight");
        assert!(s.update(Action::DataVersion(4)).is_empty(), "unchanged");
        let fx = s.update(Action::DataVersion(5));
        assert!(matches!(fx[..], [Effect::LoadPage { .. }]), "{fx:?}");
        s.update(Action::PollWaiting);
        assert!(s.poll.elsewhere);
    }
}
