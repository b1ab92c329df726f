//! Keys become actions. The defaults follow DESIGN §6; `[keys]` in the config changes them.

use std::collections::{BTreeMap, HashMap};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::state::{Action, Mode};
use crate::domain::playbook::ModAction;

/// A configurable action: its name in `[keys]`, its default key, its help text.
pub struct Binding {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
    pub action: Action,
}

const fn bind(
    name: &'static str,
    default: &'static str,
    help: &'static str,
    action: Action,
) -> Binding {
    Binding {
        name,
        default,
        help,
        action,
    }
}

/// The configurable actions, in the order the help lists them (DESIGN §6).
pub static BINDINGS: [Binding; 22] = [
    bind("down", "j", "move down", Action::Down),
    bind("up", "k", "move up", Action::Up),
    bind("top", "g", "first mention", Action::Top),
    bind("bottom", "G", "last mention", Action::Bottom),
    bind(
        "open",
        "Enter",
        "open / close the detail pane; pick in lists",
        Action::Open,
    ),
    bind(
        "reply",
        "r",
        "reply from the approved library (Enter picks, y sends)",
        Action::Reply,
    ),
    bind(
        "draft",
        "e",
        "draft custom wording for MLR review",
        Action::Draft,
    ),
    bind("retag", "t", "correct tone and flags", Action::Retag),
    bind(
        "ae_intake",
        "a",
        "AE intake form (four elements, clock)",
        Action::AeIntake,
    ),
    bind(
        "snooze",
        "z",
        "snooze, or HCP follow-up reminder",
        Action::Snooze,
    ),
    bind("like", "l", "like", Action::Mod(ModAction::Like)),
    bind("hide", "h", "hide the reply", Action::Mod(ModAction::Hide)),
    bind(
        "block",
        "b",
        "block the author",
        Action::Mod(ModAction::Block),
    ),
    bind("mute", "m", "mute the author", Action::Mod(ModAction::Mute)),
    bind(
        "report",
        "s",
        "report as spam",
        Action::Mod(ModAction::Report),
    ),
    bind("done", "d", "mark done", Action::Done),
    bind("search", "/", "search text and authors", Action::Search),
    bind(
        "filter",
        "f",
        "cycle filters (AE, HCP, medical, crisis, platform)",
        Action::Filter,
    ),
    bind(
        "switch_view",
        "Tab",
        "switch view: queue, moderation, AE, review, snoozed, done",
        Action::SwitchView,
    ),
    bind(
        "stats",
        "S",
        "stats: response times, tone mix, AE intake",
        Action::Stats,
    ),
    bind("help", "?", "this help", Action::Help),
    bind("quit", "q", "quit", Action::Quit),
];

/// A key as written in the config: `j`, `G`, `Enter`, `Tab`, `Ctrl-r`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
}

impl Key {
    pub fn parse(s: &str) -> Option<Key> {
        if let Some(rest) = s.strip_prefix("Ctrl-").or_else(|| s.strip_prefix("ctrl-")) {
            let mut chars = rest.chars();
            let c = chars.next()?;
            return chars.next().is_none().then_some(Key {
                code: KeyCode::Char(c.to_ascii_lowercase()),
                ctrl: true,
            });
        }
        let code = match s {
            "Enter" => KeyCode::Enter,
            "Esc" => KeyCode::Esc,
            "Tab" => KeyCode::Tab,
            "BackTab" => KeyCode::BackTab,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            "Space" => KeyCode::Char(' '),
            _ => {
                let mut chars = s.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(c)
            }
        };
        Some(Key { code, ctrl: false })
    }

    fn of(ev: &KeyEvent) -> Key {
        Key {
            code: ev.code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
        }
    }
}

/// A `[keys]` entry that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("[keys] {0}: no such action (actions: {1})")]
    UnknownAction(String, String),
    #[error(
        "[keys] {0} = \"{1}\": not a key (use one character, Enter, Esc, Tab, BackTab, Up, Down, Left, Right, Home, End, PageUp, PageDown, Space or Ctrl-<char>)"
    )]
    BadKey(String, String),
    #[error("[keys] \"{0}\" is bound to both {1} and {2}")]
    Clash(String, String, String),
}

#[derive(Debug, Clone)]
pub struct KeyMap {
    map: HashMap<Key, &'static str>,
    /// Action name → key as written, for the help overlay.
    pub shown: BTreeMap<&'static str, String>,
}

impl KeyMap {
    /// The defaults with the config's changes applied.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<KeyMap, KeyError> {
        let mut chosen: Vec<(&'static str, String)> = BINDINGS
            .iter()
            .map(|b| (b.name, b.default.to_owned()))
            .collect();
        for (name, key) in overrides {
            let Some(slot) = chosen.iter_mut().find(|(n, _)| n == name) else {
                let names: Vec<&str> = BINDINGS.iter().map(|b| b.name).collect();
                return Err(KeyError::UnknownAction(name.clone(), names.join(", ")));
            };
            slot.1 = key.clone();
        }
        let mut map = HashMap::new();
        let mut shown = BTreeMap::new();
        for (name, text) in chosen {
            let key =
                Key::parse(&text).ok_or_else(|| KeyError::BadKey(name.into(), text.clone()))?;
            if let Some(other) = map.insert(key, name) {
                return Err(KeyError::Clash(text, other.into(), name.into()));
            }
            shown.insert(name, text);
        }
        Ok(KeyMap { map, shown })
    }

    /// The action for a key press in the current mode. Releases and repeats are ignored (terminals
    /// over SSH may report them).
    pub fn action(&self, ev: &KeyEvent, mode: &Mode) -> Option<Action> {
        if ev.kind != KeyEventKind::Press {
            return None;
        }
        let ctrl_c = ev.code == KeyCode::Char('c') && ev.modifiers.contains(KeyModifiers::CONTROL);
        match mode {
            Mode::Search { .. } | Mode::Retag { .. } | Mode::AeForm(_) | Mode::Snooze { .. } => {
                return match ev.code {
                    KeyCode::Down | KeyCode::Tab => Some(Action::Down),
                    KeyCode::Up | KeyCode::BackTab => Some(Action::Up),
                    _ if ctrl_c => Some(Action::Back),
                    KeyCode::Enter => Some(Action::Submit),
                    KeyCode::Esc => Some(Action::Back),
                    KeyCode::Backspace => Some(Action::Backspace),
                    KeyCode::Char(c) => Some(Action::Input(c)),
                    _ => None,
                };
            }
            Mode::Preview { .. } => {
                return match ev.code {
                    KeyCode::Char('y') if !ctrl_c => Some(Action::Confirm),
                    KeyCode::Char('n') | KeyCode::Esc => Some(Action::Back),
                    _ if ctrl_c => Some(Action::Back),
                    _ => self.lookup(ev).filter(|a| matches!(a, Action::Quit)),
                };
            }
            Mode::Help => return Some(Action::Back),
            Mode::Normal | Mode::Picker { .. } | Mode::Stats(_) => {}
        }
        if ctrl_c {
            return Some(if matches!(mode, Mode::Normal) {
                Action::Quit
            } else {
                Action::Back
            });
        }
        match ev.code {
            KeyCode::Esc => return Some(Action::Back),
            KeyCode::Down => return Some(Action::Down),
            KeyCode::Up => return Some(Action::Up),
            KeyCode::PageDown => return Some(Action::PageDown),
            KeyCode::PageUp => return Some(Action::PageUp),
            KeyCode::Home => return Some(Action::Top),
            KeyCode::End => return Some(Action::Bottom),
            _ => {}
        }
        self.lookup(ev).or(match (mode, ev.code) {
            (Mode::Picker { .. }, KeyCode::Enter) => Some(Action::Submit),
            _ => None,
        })
    }

    fn lookup(&self, ev: &KeyEvent) -> Option<Action> {
        let mut key = Key::of(ev);
        // Shifted letters arrive as the capital with SHIFT set; the capital is what is bound.
        if let KeyCode::Char(_) = key.code {
            key.ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        }
        let name = self.map.get(&key)?;
        BINDINGS
            .iter()
            .find(|b| b.name == *name)
            .map(|b| b.action.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventState;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn defaults_follow_the_design() {
        let k = KeyMap::new(&BTreeMap::new()).unwrap();
        let n = Mode::Normal;
        assert!(matches!(
            k.action(&press(KeyCode::Char('j')), &n),
            Some(Action::Down)
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Char('G')), &n),
            Some(Action::Bottom)
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Tab), &n),
            Some(Action::SwitchView)
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Char('s')), &n),
            Some(Action::Mod(ModAction::Report))
        ));
        let mut release = press(KeyCode::Char('j'));
        release.kind = KeyEventKind::Release;
        release.state = KeyEventState::NONE;
        assert!(k.action(&release, &n).is_none());
    }

    #[test]
    fn text_inputs_take_characters() {
        let k = KeyMap::new(&BTreeMap::new()).unwrap();
        let search = Mode::Search {
            input: String::new(),
        };
        assert!(matches!(
            k.action(&press(KeyCode::Char('q')), &search),
            Some(Action::Input('q'))
        ));
        assert!(matches!(
            k.action(&press(KeyCode::Enter), &search),
            Some(Action::Submit)
        ));
    }

    #[test]
    fn overrides_and_their_errors() {
        let k = KeyMap::new(&BTreeMap::from([("reply".to_string(), "R".to_string())])).unwrap();
        assert!(matches!(
            k.action(&press(KeyCode::Char('R')), &Mode::Normal),
            Some(Action::Reply)
        ));
        assert!(
            k.action(&press(KeyCode::Char('r')), &Mode::Normal)
                .is_none()
        );
        let e = KeyMap::new(&BTreeMap::from([("reply".to_string(), "j".to_string())])).unwrap_err();
        assert!(e.to_string().contains("bound to both"), "{e}");
        let e =
            KeyMap::new(&BTreeMap::from([("replyy".to_string(), "x".to_string())])).unwrap_err();
        assert!(e.to_string().contains("no such action"), "{e}");
        let e = KeyMap::new(&BTreeMap::from([(
            "reply".to_string(),
            "Hyper".to_string(),
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("not a key"), "{e}");
        assert_eq!(Key::parse("Ctrl-R"), Key::parse("ctrl-r"));
    }
}
