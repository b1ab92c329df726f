//! The console: terminal set-up, the event loop, keys to actions, drawing. It never awaits the
//! network or runs SQL: the worker does, and its answers arrive as actions.

mod forms;
pub mod inert;
pub mod keymap;
pub mod lean;
pub mod stats;
pub mod view;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, Event};
use time::OffsetDateTime;

use crate::app::Desk;
use crate::app::state::{Action, AppState, Effect};
use crate::app::worker::Worker;
use keymap::KeyMap;
use view::{Theme, ViewState};

/// Whether to use colours: the config says so and `NO_COLOR` is not set.
pub fn colors_wanted(config_color: bool) -> bool {
    config_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether the terminal is reached over SSH (sshd sets these for the login's processes).
pub fn over_ssh() -> bool {
    ["SSH_CONNECTION", "SSH_TTY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
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

    let mut terminal = init_terminal().context("cannot set up the terminal (is this a TTY?)")?;
    let tty = Tty::find();
    let result = event_loop(&mut terminal, desk, rt, &keys, theme, tty);
    if tty.hung_up() {
        // Nothing to restore. ratatui reports a failed restore with `eprintln!` (in `restore` and
        // when the terminal is dropped), which panics on a terminal that hung up, and that panic
        // aborts the process before its log is written: keep the terminal from being dropped.
        std::mem::forget(terminal);
    } else if let Err(e) = ratatui::try_restore() {
        tracing::warn!("cannot restore the terminal: {e}");
    }
    tracing::info!("the console closed");
    result
}

/// The console's terminal: ratatui drawing through the lean backend (few bytes a frame, for SSH).
type Term = ratatui::Terminal<lean::LeanBackend<std::io::Stdout>>;

/// Sets the terminal up as `ratatui::try_init` does (a panic hook that restores the terminal
/// before the panic is reported, raw mode, the alternate screen), with the lean backend, and
/// clears the screen: ratatui takes a new terminal to be blank, and the backend then knows it is.
fn init_terminal() -> std::io::Result<Term> {
    use ratatui::backend::Backend;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        ratatui::restore();
        hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    let mut terminal = ratatui::Terminal::new(lean::LeanBackend::new(std::io::stdout()))?;
    terminal.backend_mut().clear()?;
    Ok(terminal)
}

enum Msg {
    Input(Event),
    Action(Action),
    /// The terminal is gone (the SSH connection dropped, the window closed) or the process was
    /// told to stop: quit as `q` does, without drawing. Says why, for the log.
    Stop(String),
}

/// The console's terminal, to tell a hang-up from a quiet moment. After a hang-up (the SSH
/// connection dropped and sshd closed the pseudo-terminal's master) every read of the terminal
/// returns end-of-file at once, which crossterm's reader retries forever: its thread then spins,
/// and the console has to notice by itself and quit.
#[derive(Clone, Copy)]
struct Tty(Option<std::os::fd::RawFd>);

impl Tty {
    /// The first of stdin and stdout that is a terminal (crossterm reads stdin when it is one).
    fn find() -> Tty {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            Tty(Some(libc::STDIN_FILENO))
        } else if std::io::stdout().is_terminal() {
            Tty(Some(libc::STDOUT_FILENO))
        } else {
            Tty(None)
        }
    }

    /// Whether the terminal has hung up (poll(2) reports POLLHUP or an error on it).
    fn hung_up(self) -> bool {
        let Some(fd) = self.0 else { return false };
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd this function owns, with a zero timeout; it only writes
        // `revents`. The descriptor is stdin or stdout, open for the life of the process.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
}

/// Posts [`Msg::Stop`] when the process gets SIGHUP (its terminal hung up: the SSH connection
/// dropped) or SIGTERM, instead of dying at once in the middle of whatever it was doing.
fn watch_signals(rt: &tokio::runtime::Runtime, tx: mpsc::Sender<Msg>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _rt = rt.enter();
    let mut hup = signal(SignalKind::hangup()).context("cannot watch for SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    rt.spawn(async move {
        let why = tokio::select! {
            _ = hup.recv() => "the terminal hung up (SIGHUP)",
            _ = term.recv() => "asked to stop (SIGTERM)",
        };
        let _ = tx.send(Msg::Stop(why.into()));
    });
    Ok(())
}

fn event_loop(
    terminal: &mut Term,
    desk: Arc<Desk>,
    rt: &tokio::runtime::Runtime,
    keys: &KeyMap,
    theme: Theme,
    tty: Tty,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    watch_signals(rt, tx.clone())?;
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
    // The input thread can be parked while an editor owns the terminal (`e`).
    let (gate_tx, gate_rx) = mpsc::channel::<Gate>();
    std::thread::Builder::new()
        .name("tonedesk-input".into())
        .spawn(move || read_input(&tx, &gate_rx))?;

    let worker = Worker::new(desk.clone(), rt.handle().clone(), atx);
    let mut state = AppState::new(
        desk.config.brand.name.clone(),
        desk.demo,
        desk.library.clone(),
        OffsetDateTime::now_utc(),
    );
    state.ae_report_hours = desk.config.targets.ae_report_hours;
    state.detail = desk.config.ui.detail.open_at_start(over_ssh());
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
            Ok(Msg::Stop(why)) => {
                tracing::info!("{why}; quitting");
                break;
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // No signal reaches a console outside the terminal's session; the terminal still tells.
        if tty.hung_up() {
            tracing::info!("the terminal hung up (seen on the terminal); quitting");
            break;
        }
        // A stack: the key first, then the tick (and answers the console gives itself).
        let mut actions: Vec<Action> = Vec::new();
        // The clock advances even while keys keep arriving.
        if last_tick.elapsed() >= tick {
            last_tick = Instant::now();
            actions.push(Action::Tick(OffsetDateTime::now_utc()));
        }
        actions.extend(action);
        while let Some(a) = actions.pop() {
            for e in state.update(a) {
                match e {
                    Effect::EditDraft { mention, seed } => {
                        let text = edit_draft(terminal, &gate_tx, &desk, &seed);
                        actions.push(Action::DraftWritten { mention, text });
                        state.dirty = true;
                    }
                    e => worker.run(e),
                }
            }
        }
        if state.dirty {
            if let Err(e) = terminal.draw(|f| view::draw(f, &state, keys, theme, &mut vs)) {
                if tty.hung_up() {
                    tracing::info!("the terminal hung up (cannot draw: {e}); quitting");
                    break;
                }
                return Err(e.into());
            }
            state.dirty = false;
        }
    }
    // Sends and other writes under way finish before the process goes.
    let left = worker.finish(FINISH_WITHIN);
    if left > 0 {
        tracing::warn!(
            "quitting with {left} task(s) still under way after {FINISH_WITHIN:?}; a send cut short is settled at the next start"
        );
    }
    Ok(())
}

/// How long quitting waits for the work under way.
const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// Messages to the input thread.
enum Gate {
    /// Stop reading the terminal and say so on the enclosed channel; wait for `Resume`.
    Pause(mpsc::Sender<()>),
    Resume,
}

/// Forwards terminal events until the loop goes away. Polls with a timeout so that a `Pause`
/// is seen promptly, and never reads while parked (an editor then owns the keyboard).
fn read_input(tx: &mpsc::Sender<Msg>, gate: &mpsc::Receiver<Gate>) {
    loop {
        match gate.try_recv() {
            Ok(Gate::Pause(ack)) => {
                let _ = ack.send(());
                loop {
                    match gate.recv() {
                        Ok(Gate::Resume) => break,
                        Ok(Gate::Pause(ack)) => {
                            let _ = ack.send(());
                        }
                        Err(_) => return,
                    }
                }
            }
            Ok(Gate::Resume) | Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => return,
        }
        let failed = match event::poll(Duration::from_millis(100)) {
            Ok(true) => match event::read() {
                Ok(ev) => {
                    if tx.send(Msg::Input(ev)).is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => e,
            },
            Ok(false) => continue,
            Err(e) => e,
        };
        // The loop must hear of it: its other senders keep the channel open.
        let _ = tx.send(Msg::Stop(format!("cannot read the terminal ({failed})")));
        return;
    }
}

/// Opens `$VISUAL` / `$EDITOR` (else `vi`) on a private file seeded with `seed`, with the
/// terminal handed over, and returns what was written (comments and blank space removed), or
/// `None` when nothing was (or the editor failed: the reason is logged).
fn edit_draft(
    terminal: &mut Term,
    gate: &mpsc::Sender<Gate>,
    desk: &Desk,
    seed: &str,
) -> Option<String> {
    let (ack_tx, ack_rx) = mpsc::channel();
    if gate.send(Gate::Pause(ack_tx)).is_err() || ack_rx.recv().is_err() {
        return None;
    }
    let file = desk.paths.database.with_file_name("draft-in-progress.txt");
    let result = run_editor(&file, seed);
    let _ = std::fs::remove_file(&file);
    // Take the terminal back: raw mode, the alternate screen, a full redraw.
    let restored = crossterm::terminal::enable_raw_mode().and_then(|()| {
        crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)
    });
    if let Err(e) = restored {
        tracing::error!("cannot take the terminal back after the editor: {e}");
    }
    let _ = terminal.clear();
    let _ = gate.send(Gate::Resume);
    match result {
        Ok(text) => crate::domain::draft::clean_editor_text(&text),
        Err(e) => {
            tracing::error!("the draft editor failed: {e}");
            None
        }
    }
}

fn run_editor(file: &std::path::Path, seed: &str) -> Result<String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(file)?;
    crate::paths::restrict(file, 0o600);
    f.write_all(seed.as_bytes())?;
    drop(f);
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    ratatui::try_restore().context("cannot hand the terminal to the editor")?;
    // Through the shell, so EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("tonedesk-editor")
        .arg(file)
        .status()
        .with_context(|| format!("cannot run the editor '{editor}'"))?;
    if !status.success() {
        anyhow::bail!("the editor '{editor}' exited with {status}");
    }
    Ok(std::fs::read_to_string(file)?)
}

#[cfg(test)]
mod tests {
    use super::Tty;

    /// A pseudo-terminal as sshd makes one: the console's side stays quiet until the other side
    /// closes, then it reports the hang-up.
    #[test]
    fn a_closed_pseudo_terminal_reads_as_hung_up() {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty(3) writes two descriptors into the integers it is given; the name,
        // termios and window size pointers may be null.
        let made = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
        let tty = Tty(Some(slave));
        assert!(!tty.hung_up());
        // SAFETY: closes the master descriptor openpty made, once.
        unsafe { libc::close(master) };
        assert!(tty.hung_up());
        // SAFETY: closes the slave descriptor openpty made, once.
        unsafe { libc::close(slave) };
        assert!(!Tty(None).hung_up());
    }
}
