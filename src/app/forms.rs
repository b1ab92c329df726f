//! The console's forms for the compliance workflow, as parts of [`AppState::update`]: the AE
//! intake form (`a`) and the snooze menu (`z`). Like the rest of the state they perform no I/O:
//! they return effects.

use time::Duration;

use super::state::{Action, AppState, Effect, Mode};
use crate::domain::{AeCase, MentionId};

/// The AE intake form: the four minimum elements, then free notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeForm {
    pub case: AeCase,
    /// A record was saved before (this is an edit).
    pub saved: bool,
    /// The field with the cursor: 0–3 the elements, 4 the notes.
    pub field: usize,
    /// The text being typed into the field, while editing.
    pub editing: Option<String>,
}

/// Fields in the form: the four elements and the notes.
pub const FORM_FIELDS: usize = 5;
const MAX_FIELD_CHARS: usize = 500;

/// The snooze menu's choices: key, label, how long. `f` is the HCP follow-up.
pub const SNOOZE_CHOICES: [(char, &str, i64); 4] = [
    ('1', "1 hour", 60),
    ('2', "4 hours", 4 * 60),
    ('3', "24 hours", 24 * 60),
    ('4', "1 week", 7 * 24 * 60),
];

impl AeForm {
    fn value_mut(&mut self, field: usize) -> Option<&mut String> {
        if field == 4 {
            return Some(&mut self.case.notes);
        }
        self.case.element_mut(field).map(|e| &mut e.value)
    }

    /// The current text of a field.
    pub fn value(&self, field: usize) -> &str {
        match field {
            4 => &self.case.notes,
            i => self
                .case
                .elements()
                .get(i)
                .map_or("", |(_, e)| e.value.as_str()),
        }
    }
}

impl AppState {
    pub(super) fn on_ae_form(&mut self, action: Action, mut form: Box<AeForm>) -> Vec<Effect> {
        if let Some(mut text) = form.editing.take() {
            match action {
                Action::Input(c) if !c.is_control() && text.chars().count() < MAX_FIELD_CHARS => {
                    text.push(c);
                    form.editing = Some(text);
                }
                Action::Backspace => {
                    text.pop();
                    form.editing = Some(text);
                }
                Action::Submit => {
                    let field = form.field;
                    let text = text.trim().to_owned();
                    if field < 4
                        && let Some(e) = form.case.element_mut(field)
                    {
                        // Typing a value makes it present; clearing it makes it one to ask.
                        e.state = if text.is_empty() {
                            crate::domain::ElementState::Ask
                        } else {
                            crate::domain::ElementState::Present
                        };
                    }
                    if let Some(v) = form.value_mut(field) {
                        *v = text;
                    }
                }
                Action::Back => {} // the edit is dropped, the form stays
                _ => form.editing = Some(text),
            }
            self.mode = Mode::AeForm(form);
            return Vec::new();
        }
        match action {
            Action::Down | Action::Input('j') => {
                form.field = (form.field + 1).min(FORM_FIELDS - 1);
            }
            Action::Up | Action::Input('k') => form.field = form.field.saturating_sub(1),
            Action::Submit | Action::Open => {
                form.editing = Some(form.value(form.field).to_owned());
            }
            Action::Input(' ') => {
                let field = form.field;
                if let Some(e) = form.case.element_mut(field) {
                    e.state = e.state.next();
                }
            }
            Action::Input('y') | Action::Confirm => {
                let case = form.case.clone();
                return vec![Effect::SaveAe {
                    case: Box::new(case),
                }];
            }
            Action::Back | Action::Quit | Action::Input('q') => return Vec::new(),
            _ => self.dirty = false,
        }
        self.mode = Mode::AeForm(form);
        Vec::new()
    }

    pub(super) fn on_snooze(&mut self, action: Action, mention: MentionId) -> Vec<Effect> {
        match action {
            Action::Input('f') => vec![Effect::FollowUp { mention }],
            Action::Input(c) => match SNOOZE_CHOICES.iter().find(|(k, _, _)| *k == c) {
                Some((_, _, minutes)) => vec![Effect::Snooze {
                    mention,
                    until: self.now + Duration::minutes(*minutes),
                }],
                None => {
                    self.mode = Mode::Snooze { mention };
                    self.dirty = false;
                    Vec::new()
                }
            },
            Action::Back | Action::Quit => Vec::new(),
            _ => {
                self.mode = Mode::Snooze { mention };
                self.dirty = false;
                Vec::new()
            }
        }
    }
}
