//! Adverse-event intake (DESIGN §1): the four minimum elements pharmacovigilance needs, each with
//! its state, the verbatim text and a clock that starts at the post's publish time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::mention::{Mention, MentionId, UnknownName};

/// Whether an element of the minimum data set is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementState {
    /// Known from the post (or confirmed by the operator).
    Present,
    /// Not in the post; to be asked of the reporter (in the private channel).
    Ask,
    /// Not known and not going to be asked (for example the reporter does not answer).
    Missing,
}

impl ElementState {
    pub const ALL: [ElementState; 3] = [
        ElementState::Present,
        ElementState::Ask,
        ElementState::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ElementState::Present => "present",
            ElementState::Ask => "to ask",
            ElementState::Missing => "missing",
        }
    }

    /// The next state in the form's cycle.
    pub fn next(self) -> ElementState {
        match self {
            ElementState::Present => ElementState::Ask,
            ElementState::Ask => ElementState::Missing,
            ElementState::Missing => ElementState::Present,
        }
    }
}

impl fmt::Display for ElementState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ElementState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "present" => Ok(ElementState::Present),
            "to ask" | "ask" => Ok(ElementState::Ask),
            "missing" => Ok(ElementState::Missing),
            other => Err(UnknownName::new(
                "element state",
                other,
                "present, ask, missing",
            )),
        }
    }
}

/// One of the four minimum elements: what is known and whether it counts as present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    pub value: String,
    pub state: ElementState,
}

impl Element {
    fn new(value: impl Into<String>) -> Element {
        let value = value.into();
        let state = if value.trim().is_empty() {
            ElementState::Ask
        } else {
            ElementState::Present
        };
        Element { value, state }
    }
}

/// The names of the four elements, in the order forms and exports show them.
pub const ELEMENTS: [&str; 4] = ["reporter", "patient", "product", "reaction"];

/// An adverse-event intake record for one mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AeCase {
    pub mention: MentionId,
    /// Identifiable reporter: the author's handle and name, and the post's link.
    pub reporter: Element,
    /// Identifiable patient: "self (the reporter)" or who the post describes.
    pub patient: Element,
    /// Suspect product.
    pub product: Element,
    /// Adverse reaction (or lack of effect, overdose, medication error, exposure).
    pub reaction: Element,
    /// The post's text, exactly as received.
    pub verbatim: String,
    pub link: Option<String>,
    /// The post's publish time: the clock starts here.
    pub published_at: OffsetDateTime,
    /// When the report is due at pharmacovigilance.
    pub due_at: OffsetDateTime,
    /// Free text from the operator (what was asked, follow-up attempts).
    pub notes: String,
}

impl AeCase {
    /// A case pre-filled from the mention and its tags' reasons (which name the product and the
    /// reaction found), due `report_hours` after the post was published.
    pub fn prefill(m: &Mention, report_hours: u32) -> AeCase {
        let (product, reaction) = from_reasons(&m.tags.reasons);
        let reporter = match &m.url {
            Some(url) => format!("{} ({})", reporter_name(m), url),
            None => reporter_name(m),
        };
        AeCase {
            mention: m.id,
            reporter: Element::new(reporter),
            patient: Element::new(patient_of(&m.text)),
            product: Element::new(product),
            reaction: Element::new(reaction),
            verbatim: m.text.clone(),
            link: m.url.clone(),
            published_at: m.created_at,
            due_at: m.created_at + time::Duration::hours(i64::from(report_hours)),
            notes: String::new(),
        }
    }

    /// The elements in form order.
    pub fn elements(&self) -> [(&'static str, &Element); 4] {
        [
            ("reporter", &self.reporter),
            ("patient", &self.patient),
            ("product", &self.product),
            ("reaction", &self.reaction),
        ]
    }

    pub fn element_mut(&mut self, index: usize) -> Option<&mut Element> {
        match index {
            0 => Some(&mut self.reporter),
            1 => Some(&mut self.patient),
            2 => Some(&mut self.product),
            3 => Some(&mut self.reaction),
            _ => None,
        }
    }

    /// A valid case for pharmacovigilance has all four elements.
    pub fn complete(&self) -> bool {
        self.elements()
            .iter()
            .all(|(_, e)| e.state == ElementState::Present && !e.value.trim().is_empty())
    }

    /// The elements not yet present, by name.
    pub fn gaps(&self) -> Vec<&'static str> {
        self.elements()
            .iter()
            .filter(|(_, e)| e.state != ElementState::Present || e.value.trim().is_empty())
            .map(|(name, _)| *name)
            .collect()
    }

    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        self.due_at < now
    }
}

fn reporter_name(m: &Mention) -> String {
    let name = m.author.display_name.trim();
    if name.is_empty() {
        m.author.at_handle()
    } else {
        format!("{name} ({})", m.author.at_handle())
    }
}

/// The product and the reaction named by the classifier's AE reasons
/// (`ae: product 'Zyntriva' + reaction 'rash'`), each joined when several fired.
fn from_reasons(reasons: &[String]) -> (String, String) {
    let mut products: Vec<String> = Vec::new();
    let mut reactions: Vec<String> = Vec::new();
    for r in reasons {
        let Some(rest) = r.strip_prefix("ae: ") else {
            continue;
        };
        // The quoted part runs from the first quote to the last: the words may hold apostrophes.
        let quoted = |s: &str| {
            let (a, b) = (s.find('\'')?, s.rfind('\'')?);
            (b > a + 1).then(|| s[a + 1..b].to_owned())
        };
        let (left, right) = rest.split_once(" + ").unwrap_or((rest, ""));
        if left.starts_with("product")
            && let Some(p) = quoted(left)
            && !products.iter().any(|q| q.eq_ignore_ascii_case(&p))
        {
            products.push(p);
        }
        if let Some((kind, _)) = right.split_once(" '")
            && let Some(what) = quoted(right)
        {
            let item = if kind == "reaction" {
                what
            } else {
                format!("{kind}: {what}")
            };
            if !reactions.contains(&item) {
                reactions.push(item);
            }
        }
    }
    (products.join(", "), reactions.join("; "))
}

/// Who the post describes as the patient: someone named by relation ("my daughter"), else the
/// reporter when they speak in the first person, else unknown (to ask).
fn patient_of(text: &str) -> String {
    const RELATIONS: [&str; 24] = [
        "daughter",
        "son",
        "wife",
        "husband",
        "mother",
        "mom",
        "mum",
        "father",
        "dad",
        "child",
        "kid",
        "baby",
        "sister",
        "brother",
        "partner",
        "grandmother",
        "grandma",
        "grandfather",
        "grandpa",
        "friend",
        "patient",
        "aunt",
        "uncle",
        "girlfriend",
    ];
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if matches!(pair[0], "my" | "our") {
            let noun = pair[1].trim_end_matches('s');
            if RELATIONS.contains(&noun) || RELATIONS.contains(&pair[1]) {
                return format!("the reporter's {}", pair[1]);
            }
        }
    }
    if words
        .iter()
        .any(|w| matches!(*w, "i" | "i'm" | "i've" | "me" | "my" | "myself"))
    {
        return "self (the reporter)".into();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Flag;
    use crate::domain::reply::tests::mention;

    fn ae_mention(text: &str, reasons: &[&str]) -> Mention {
        let mut m = mention(&[Flag::Ae]);
        m.text = text.into();
        m.url = Some("https://x.com/ana/status/1".into());
        m.tags.reasons = reasons.iter().map(|s| s.to_string()).collect();
        m
    }

    #[test]
    fn prefill_takes_product_and_reaction_from_the_reasons() {
        let m = ae_mention(
            "my zyntriva gave me a terrible rash, took two by mistake",
            &[
                "ae: product 'Zyntriva' + reaction 'rash'",
                "ae: product 'Zyntriva' + overdose or misuse 'took two'",
                "ae: product 'Zyntriva' + lack of effect 'didn't do anything'",
                "negative word 'terrible'",
            ],
        );
        let c = AeCase::prefill(&m, 24);
        assert_eq!(c.product.value, "Zyntriva");
        assert_eq!(
            c.reaction.value,
            "rash; overdose or misuse: took two; lack of effect: didn't do anything"
        );
        assert_eq!(c.patient.value, "self (the reporter)");
        assert!(c.reporter.value.contains("https://x.com/ana/status/1"));
        assert!(c.complete(), "{:?}", c.gaps());
        assert_eq!(c.due_at - c.published_at, time::Duration::hours(24));
        assert_eq!(c.verbatim, m.text);
    }

    #[test]
    fn a_relative_is_the_patient_and_unknowns_are_to_ask() {
        let m = ae_mention("My daughter broke out in hives after her dose", &[]);
        let c = AeCase::prefill(&m, 12);
        assert_eq!(c.patient.value, "the reporter's daughter");
        assert_eq!(c.product.state, ElementState::Ask);
        assert_eq!(c.reaction.state, ElementState::Ask);
        assert_eq!(c.gaps(), vec!["product", "reaction"]);
        assert!(!c.complete());
        let m = ae_mention("Has anyone had headaches on this?", &[]);
        assert_eq!(AeCase::prefill(&m, 24).patient.state, ElementState::Ask);
    }

    #[test]
    fn element_states_cycle_and_parse() {
        for s in ElementState::ALL {
            assert_eq!(s.as_str().parse::<ElementState>().unwrap(), s);
            assert_ne!(s.next(), s);
        }
        assert_eq!(ElementState::Missing.next(), ElementState::Present);
        assert!("maybe".parse::<ElementState>().is_err());
    }
}
