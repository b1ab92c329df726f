//! The console: terminal set-up, the event loop, keys to actions, drawing. It never awaits the
//! network or runs SQL: the worker does, and its answers arrive as actions.

pub mod inert;
pub mod keymap;
pub mod stats;
pub mod view;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, Event};
use time::OffsetDateTime;

use crate::app::Desk;
use crate::app::state::{Action, AppState};
use crate::app::worker::Worker;
use keymap::KeyMap;
use view::{Theme, ViewState};

/// Whether to use colours: the config says so and `NO_COLOR` is not set.
pub fn colors_wanted(config_color: bool) -> bool {
    config_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs the console until the operator quits.
pub fn run(desk: Arc<Desk>, rt: &tokio::runtime::Runtime) -> Result<()> {
    let keys = KeyMap::new(&desk.config.keys).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n(fix the file, or compare it with config.example.toml)",
            desk.paths.config_file.display()
        )
    })?;
    let theme = Theme {
        color: colors_wanted(desk.config.ui.color),
    };

    // ratatui::try_init enters raw mode and the alternate screen and installs a panic hook that
    // restores the terminal before the panic is reported.
    let mut terminal =
        ratatui::try_init().context("cannot set up the terminal (is this a TTY?)")?;
    let result = event_loop(&mut terminal, desk, rt, &keys, theme);
    ratatui::restore();
    result
}

enum Msg {
    Input(Event),
    Action(Action),
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    desk: Arc<Desk>,
    rt: &tokio::runtime::Runtime,
    keys: &KeyMap,
    theme: Theme,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let (atx, arx) = mpsc::channel::<Action>();
    // Answers from the worker are forwarded into the one loop channel.
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("tonedesk-answers".into())
            .spawn(move || {
                for a in arx {
                    if tx.send(Msg::Action(a)).is_err() {
                        break;
                    }
                }
            })?;
    }
    std::thread::Builder::new()
        .name("tonedesk-input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if tx.send(Msg::Input(ev)).is_err() {
                    break;
                }
            }
        })?;

    let worker = Worker::new(desk.clone(), rt.handle().clone(), atx);
    let mut state = AppState::new(
        desk.config.brand.name.clone(),
        desk.demo,
        desk.library.clone(),
        OffsetDateTime::now_utc(),
    );
    let mut vs = ViewState::default();

    // Paint first, then start the slow work.
    terminal.draw(|f| view::draw(f, &state, keys, theme, &mut vs))?;
    state.dirty = false;
    for e in state.start() {
        worker.run(e);
    }
    if !desk.library_errors.is_empty() {
        state.update(Action::Acted {
            what: "library".into(),
            result: Err(format!(
                "{} problem(s) in the library; run `tonedesk library check`",
                desk.library_errors.len()
            )),
        });
    }

    let tick = Duration::from_secs(5);
    let mut last_tick = Instant::now();
    while !state.quit {
        let action = match rx.recv_timeout(tick) {
            Ok(Msg::Input(Event::Key(k))) => keys.action(&k, &state.mode),
            Ok(Msg::Input(Event::Resize(_, _))) => Some(Action::Resize),
            Ok(Msg::Input(_)) => None,
            Ok(Msg::Action(a)) => Some(a),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut actions: Vec<Action> = action.into_iter().collect();
        // The clock advances even while keys keep arriving.
        if last_tick.elapsed() >= tick {
            last_tick = Instant::now();
            actions.push(Action::Tick(OffsetDateTime::now_utc()));
        }
        for a in actions {
            for e in state.update(a) {
                worker.run(e);
            }
        }
        if state.dirty {
            terminal.draw(|f| view::draw(f, &state, keys, theme, &mut vs))?;
            state.dirty = false;
        }
    }
    Ok(())
}
