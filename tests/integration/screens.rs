//! Snapshots of the main screens through ratatui's TestBackend, on the demo data at a fixed time
//! and without colour, so they are stable.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use time::OffsetDateTime;
use time::macros::datetime;
use tonedesk::app::library::{Library, STARTER};
use tonedesk::app::state::{Action, AppState, Effect, Mode, PreviewView, WINDOW};
use tonedesk::app::stats::{self, Params, StatsView};
use tonedesk::config::Config;
use tonedesk::domain::playbook::Targets;
use tonedesk::domain::reply::{Fill, render};
use tonedesk::domain::text::measure;
use tonedesk::platforms::demo::{account_name, demo_mentions};
use tonedesk::store::{QueueQuery, Store, View};
use tonedesk::tone::Classifier;
use tonedesk::tui::keymap::KeyMap;
use tonedesk::tui::view::{Theme, ViewState, draw};

const NOW: OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

fn library() -> Arc<Library> {
    let mut lib = Library::default();
    let mut errors = Vec::new();
    for (name, text) in STARTER {
        lib.add_file(Path::new(name), text, &mut errors);
    }
    assert!(errors.is_empty(), "{errors:?}");
    Arc::new(lib)
}

fn demo_store() -> Store {
    let mut store = Store::open_in_memory().unwrap();
    let classifier = Classifier::new(Config::default().tone_config());
    let items: Vec<_> = demo_mentions()
        .unwrap()
        .iter()
        .map(|d| {
            let m = d.to_incoming(&account_name(d.platform), NOW);
            let tags = classifier.classify(&m.text, &m.author);
            (m, tags)
        })
        .collect();
    for p in tonedesk::domain::Platform::ALL {
        store
            .upsert_account(&account_name(p), p, "acmecare", true)
            .unwrap();
    }
    store
        .ingest(&items, &Targets::default(), None, NOW)
        .unwrap();
    store
}

fn state_for(store: &Store, view: View) -> AppState {
    let mut s = AppState::new("Acme Pharma".into(), true, library(), NOW);
    s.query.view = view;
    let q = QueueQuery {
        view,
        ..QueueQuery::default()
    };
    s.update(Action::Page {
        query: q.clone(),
        offset: 0,
        rows: store.page(&q, NOW, 0, WINDOW).unwrap(),
        total: store.count(&q, NOW).unwrap(),
        counts: store.counts(NOW).unwrap(),
        crisis: None,
    });
    s
}

fn screen(s: &AppState, width: u16, height: u16) -> String {
    let keys = KeyMap::new(&BTreeMap::new()).unwrap();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let mut vs = ViewState::default();
    terminal
        .draw(|f| draw(f, s, &keys, Theme { color: false }, &mut vs))
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn queue_at_80x24() {
    let store = demo_store();
    let s = state_for(&store, View::Queue);
    insta::assert_snapshot!(screen(&s, 80, 24));
}

#[test]
fn queue_wide_with_detail_beside() {
    let store = demo_store();
    let mut s = state_for(&store, View::Queue);
    s.update(Action::Down);
    s.update(Action::Down);
    insta::assert_snapshot!(screen(&s, 140, 36));
}

#[test]
fn moderation_view() {
    let store = demo_store();
    let s = state_for(&store, View::Moderation);
    insta::assert_snapshot!(screen(&s, 100, 24));
}

#[test]
fn help_overlay() {
    let store = demo_store();
    let mut s = state_for(&store, View::Queue);
    s.update(Action::Help);
    insta::assert_snapshot!(screen(&s, 80, 30));
}

#[test]
fn reply_picker_and_preview() {
    let store = demo_store();
    let mut s = state_for(&store, View::Queue);
    s.update(Action::Reply);
    insta::assert_snapshot!("picker", screen(&s, 80, 24));

    let Mode::Picker { choices, .. } = &s.mode else {
        panic!("no picker");
    };
    let lib = library();
    let reply = lib.get(&choices[0]).unwrap();
    let m = s.selected_mention().unwrap().clone();
    let fill = Fill {
        agent_initials: "JR".into(),
        signoff: "^JR".into(),
        case: format!("C{:06}", m.id),
        contacts: Config::default().contacts(),
    };
    let text = render(reply, &m.author, &fill, &BTreeMap::new()).unwrap();
    s.mode = Mode::Preview {
        preview: Box::new(PreviewView {
            mention: m.id,
            template: reply.id.clone(),
            version: reply.version,
            approval: reply.approval.clone(),
            channel: "private".into(),
            platform: m.platform.as_str().into(),
            length: measure(m.platform, &text),
            limit: m.platform.limit(),
            text: Some(text),
            refusal: None,
        }),
        sending: false,
    };
    insta::assert_snapshot!("preview", screen(&s, 80, 24));
}

#[test]
fn hostile_text_is_drawn_inert() {
    let mut store = demo_store();
    let classifier = Classifier::new(Config::default().tone_config());
    let mut m = demo_mentions().unwrap()[0].to_incoming("demo-x", NOW);
    m.remote_id = "hostile".into();
    m.text =
        "\u{1b}]0;pwned\u{7}title \u{1b}[31mred\u{1b}[0m \u{202e}txt.exe\r\nnext 日本語 👨‍👩‍👧".into();
    let tags = classifier.classify(&m.text, &m.author);
    store
        .ingest(&[(m, tags)], &Targets::default(), None, NOW)
        .unwrap();
    let s = state_for(&store, View::Queue);
    let mut found = false;
    for (i, row) in s.rows.iter().enumerate() {
        if row.remote_id == "hostile" {
            let mut s2 = state_for(&store, View::Queue);
            for _ in 0..i {
                s2.update(Action::Down);
            }
            let out = screen(&s2, 100, 30);
            assert!(!out.contains('\u{1b}') && !out.contains('\u{202e}') && !out.contains('\u{7}'));
            assert!(out.contains("日本語"), "{out}");
            found = true;
        }
    }
    assert!(found);
}

#[test]
fn a_failing_account_is_named_in_the_status_bar() {
    let store = demo_store();
    let mut s = state_for(&store, View::Queue);
    let report = |account: &str, error: Option<&str>| tonedesk::app::PollReport {
        account: account.into(),
        stream: "mentions".into(),
        new: 0,
        error: error.map(str::to_owned),
        failures: 1,
        next_at: None,
    };
    s.update(Action::Polled(vec![
        report("care-x", Some("rate limited: retry in 30 s")),
        report("care-bsky", Some("authentication failed")),
    ]));
    let out = screen(&s, 160, 24);
    let status = out.lines().next_back().unwrap_or_default();
    assert!(
        status.contains("care-bsky mentions: authentication failed (+1 more: tonedesk doctor)"),
        "{out}"
    );
}

/// The demo with some of it answered at fixed times: replies to the recent answerable mentions,
/// the trolls and spam hidden, two adverse events taken in.
fn answered_demo_store() -> Store {
    use tonedesk::domain::Flag;
    use tonedesk::domain::audit::AuditRecord;
    let mut store = demo_store();
    let mut record = |mention: i64, at: OffsetDateTime, action: &str, outcome: &str| {
        let mut r = AuditRecord::new(at, "tester", action);
        r.mention = Some(mention);
        r.outcome = Some(outcome.into());
        store.audit(r).unwrap();
    };
    let mentions = demo_store().all_mentions().unwrap();
    let mut ae_taken = 0;
    let mut done = Vec::new();
    for (i, m) in mentions.iter().enumerate() {
        let after = |minutes: i64| m.created_at + time::Duration::minutes(minutes);
        if m.tags.flags.contains(Flag::Ae) {
            if ae_taken < 2 && after(45) <= NOW {
                record(m.id, after(45 + 200 * ae_taken), "ae_flag", "ok");
                ae_taken += 1;
            }
        } else if m.tags.tone.is_moderation() {
            if after(10) <= NOW {
                record(m.id, after(10), "hide", "ok");
            }
        } else if i % 3 != 0 {
            let at = after(7 + (i as i64 * 23) % 110);
            if at <= NOW && NOW - m.created_at < time::Duration::hours(20) {
                record(m.id, at, "send_result", "sent");
                done.push((m.id, at));
            }
        }
    }
    for (id, at) in done {
        let r = AuditRecord::new(at, "tester", "done");
        store
            .set_state(id, tonedesk::domain::MentionState::Done, r, at)
            .unwrap();
    }
    store
}

#[test]
fn stats_at_80x24() {
    let store = answered_demo_store();
    let (rows, events) = store.stat_inputs(stats::since(NOW, 7)).unwrap();
    let figures = stats::compute(&rows, &events, NOW, Params::default());
    let mut s = state_for(&store, View::Queue);
    assert_eq!(s.update(Action::Stats), vec![Effect::LoadStats]);
    s.update(Action::StatsLoaded(Ok(Box::new(figures))));
    assert!(matches!(s.mode, Mode::Stats(StatsView::Ready(_))));
    insta::assert_snapshot!(screen(&s, 80, 24));
    // Crisis mode stays in sight on this screen too.
    s.crisis = Some("recall rumour".into());
    let out = screen(&s, 80, 24);
    assert!(out.contains("CRISIS MODE: recall rumour"), "{out}");
    // Smaller terminals get the figures as text.
    let small = screen(&s, 60, 16);
    assert!(small.contains("First response, 7 d"), "{small}");
}

/// A writer whose bytes the test reads while a terminal owns it.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// Every cell of an emulated screen as a person sees it (an erased cell and a space alike).
fn cells(p: &vt100::Parser, width: u16, height: u16) -> Vec<String> {
    let mut v = Vec::new();
    for row in 0..height {
        for col in 0..width {
            let c = p.screen().cell(row, col).unwrap();
            let text = match c.contents() {
                "" if !c.is_wide_continuation() => " ",
                t => t,
            };
            v.push(format!(
                "{row},{col} {text:?} {:?} {:?} {}{}{}{}{}",
                c.fgcolor(),
                c.bgcolor(),
                c.bold(),
                c.dim(),
                c.italic(),
                c.underline(),
                c.inverse()
            ));
        }
    }
    v
}

/// The scale bench's SSH figure, on the demo queue: at 120x40 with the detail pane open, each `j`
/// through the console's backend (`tui::lean`) writes fewer bytes than through ratatui's
/// CrosstermBackend, and both leave the same screen in a terminal emulator.
#[test]
fn a_cursor_move_costs_fewer_bytes_through_the_lean_backend() {
    use ratatui::backend::{Backend, CrosstermBackend};
    use ratatui::layout::{Rect, Size};
    use ratatui::{TerminalOptions, Viewport};
    use tonedesk::tui::lean::LeanBackend;

    let (w, h) = (120, 40);
    let store = demo_store();
    let mut s = state_for(&store, View::Queue);
    let keys = KeyMap::new(&BTreeMap::new()).unwrap();
    let (lean_out, ct_out) = (Shared::default(), Shared::default());
    let mut lean = Terminal::new(LeanBackend::headless(lean_out.clone(), Size::new(w, h))).unwrap();
    // As the console starts.
    lean.backend_mut().clear().unwrap();
    let mut ct = Terminal::with_options(
        CrosstermBackend::new(ct_out.clone()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, w, h)),
        },
    )
    .unwrap();
    let emulator = || vt100::Parser::new(h.try_into().unwrap(), w.try_into().unwrap(), 0);
    let (mut lean_vt, mut ct_vt) = (emulator(), emulator());
    let (mut lean_vs, mut ct_vs) = (ViewState::default(), ViewState::default());
    let theme = Theme { color: true };
    let (mut lean_moves, mut ct_moves) = (Vec::new(), Vec::new());
    for step in 0..12 {
        if step > 0 {
            s.update(Action::Down);
        }
        lean.draw(|f| draw(f, &s, &keys, theme, &mut lean_vs))
            .unwrap();
        ct.draw(|f| draw(f, &s, &keys, theme, &mut ct_vs)).unwrap();
        let (l, c) = (lean_out.take(), ct_out.take());
        lean_vt.process(&l);
        ct_vt.process(&c);
        assert_eq!(
            cells(&lean_vt, w, h),
            cells(&ct_vt, w, h),
            "after {step} moves:\n{}",
            lean_vt.screen().contents()
        );
        if step > 0 {
            assert!(
                l.len() < c.len(),
                "move {step}: {} bytes against crossterm's {}",
                l.len(),
                c.len()
            );
            lean_moves.push(l.len());
            ct_moves.push(c.len());
        } else {
            assert!(lean_vt.screen().contents().contains("Queue — "));
        }
    }
    let (lean_sum, ct_sum): (usize, usize) = (lean_moves.iter().sum(), ct_moves.iter().sum());
    assert!(
        lean_sum * 10 < ct_sum * 7,
        "moves {lean_moves:?} against crossterm's {ct_moves:?}"
    );
}
