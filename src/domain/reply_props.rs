//! Properties of rendering (DESIGN §2): no path sends text other than an approved reply with its
//! declared variables. For any template built from the closed placeholder set and any values,
//! `render` either refuses, for a reason the inputs show, or returns the template's literal
//! segments in order with only placeholder values between them: the program's own fills exactly,
//! and prompt variables that meet their declared length and pattern.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use regex::Regex;
use time::macros::date;

use super::mention::{Author, Flags, Tone};
use super::reply::{
    ChannelRule, Fill, Prompt, Refusal, Reply, Segment, Slot, parse_template, render,
};

const VARS: [&str; 3] = ["product", "topic", "date"];
const CONTACTS: [&str; 3] = ["email", "phone", "web"];
const PATTERNS: [&str; 4] = [
    "^[A-Za-z ]+$",
    "^[0-9]{1,4}$",
    "^[A-Za-z0-9 ,.'-]+$",
    "^.*$",
];

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        Just(Slot::Author),
        Just(Slot::FirstName),
        Just(Slot::Agent),
        Just(Slot::Signoff),
        Just(Slot::Case),
        prop::sample::select(&CONTACTS[..]).prop_map(|k| Slot::Contact(k.to_owned())),
        prop::sample::select(&VARS[..]).prop_map(|k| Slot::Var(k.to_owned())),
    ]
}

/// Wording of any kind, braces included (written doubled in the template's text).
fn literal() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 ,.!?'@#{}-]{1,12}", ".{1,8}"]
}

fn segments() -> impl Strategy<Value = Vec<Segment>> {
    prop::collection::vec(
        prop_oneof![
            literal().prop_map(Segment::Text),
            slot().prop_map(Segment::Slot)
        ],
        0..8,
    )
}

fn prompts() -> impl Strategy<Value = Vec<Prompt>> {
    prop::collection::vec(
        (
            prop::sample::select(&VARS[..]),
            1usize..16,
            prop::sample::select(&PATTERNS[..]),
        ),
        0..4,
    )
    .prop_map(|ps| {
        let mut seen = HashSet::new();
        ps.into_iter()
            .filter(|(name, _, _)| seen.insert(*name))
            .map(|(name, max_len, pattern)| Prompt {
                name: name.to_owned(),
                max_len,
                pattern: Regex::new(pattern).expect("a valid pattern"),
            })
            .collect()
    })
}

/// Values that fit some patterns and not others, too long, empty, or with control characters.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z ]{1,20}",
        "[0-9]{1,6}",
        "[A-Za-z0-9 ,.'-]{0,18}",
        ".{0,12}",
        "[a-z]{0,3}[\\x00-\\x1f\\x7f][a-z]{0,3}",
        "[a-z]{1,4}\\{author\\}",
    ]
}

fn vars() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["product", "topic", "date", "other"]).prop_map(str::to_owned),
        value(),
        0..4,
    )
}

fn fill() -> impl Strategy<Value = Fill> {
    (
        ".{0,4}",
        ".{0,6}",
        "C[0-9]{6}",
        prop::collection::btree_map(
            prop::sample::select(&CONTACTS[..]).prop_map(str::to_owned),
            ".{0,10}",
            0..3,
        ),
    )
        .prop_map(|(agent_initials, signoff, case, contacts)| Fill {
            agent_initials,
            signoff,
            case,
            contacts,
        })
}

fn author() -> impl Strategy<Value = Author> {
    ("[a-z_]{1,10}", ".{0,16}").prop_map(|(handle, display_name)| Author {
        handle,
        display_name,
        bio: String::new(),
    })
}

/// The text of a template as a library file would hold it.
fn template_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => t.replace('{', "{{").replace('}', "}}"),
            Segment::Slot(slot) => slot.spelling(),
        })
        .collect()
}

/// Segments as the parser gives them: adjacent wording in one piece.
fn merged(segments: &[Segment]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for s in segments {
        match (out.last_mut(), s) {
            (Some(Segment::Text(prev)), Segment::Text(t)) => prev.push_str(t),
            _ => out.push(s.clone()),
        }
    }
    out
}

fn reply(text: String, segments: Vec<Segment>, prompts: Vec<Prompt>) -> Reply {
    Reply {
        id: "prop".into(),
        version: 1,
        approval: "MLR-PROP".into(),
        approved_on: date!(2026 - 01 - 01),
        expires_on: date!(2027 - 01 - 01),
        tones: vec![Tone::Neutral],
        flags: Flags::empty(),
        channel: ChannelRule::Either,
        platforms: vec![],
        holding: false,
        confirms_health: false,
        text,
        segments,
        prompts,
    }
}

/// Whether a value may stand in a slot: the program's own fill exactly, or a declared variable's
/// value within its length and pattern and free of control characters.
fn allowed(reply: &Reply, author: &Author, fill: &Fill, slot: &Slot, value: &str) -> bool {
    match slot {
        Slot::Author => value == author.at_handle(),
        Slot::FirstName => value == author.first_name().unwrap_or("there"),
        Slot::Agent => value == fill.agent_initials,
        Slot::Signoff => value == fill.signoff,
        Slot::Case => value == fill.case,
        Slot::Contact(k) => fill.contacts.get(k).is_some_and(|v| v == value),
        Slot::Var(name) => reply.prompts.iter().any(|p| {
            &p.name == name
                && value.chars().count() <= p.max_len
                && !value.chars().any(char::is_control)
                && p.pattern.is_match(value)
        }),
    }
}

/// Reads `out` back as the template: each literal segment where it stands, each slot filled
/// with an allowed value. Backtracks over where each slot's value ends; memoized.
fn parses_back(segments: &[Segment], out: &str, ok: &dyn Fn(&Slot, &str) -> bool) -> bool {
    fn go(
        segs: &[Segment],
        i: usize,
        out: &str,
        at: usize,
        ok: &dyn Fn(&Slot, &str) -> bool,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        if failed.contains(&(i, at)) {
            return false;
        }
        let rest = &out[at..];
        let found = match segs.get(i) {
            None => rest.is_empty(),
            Some(Segment::Text(t)) => {
                rest.starts_with(t.as_str()) && go(segs, i + 1, out, at + t.len(), ok, failed)
            }
            Some(Segment::Slot(slot)) => rest
                .char_indices()
                .map(|(n, _)| n)
                .chain([rest.len()])
                .any(|n| ok(slot, &rest[..n]) && go(segs, i + 1, out, at + n, ok, failed)),
        };
        if !found {
            failed.insert((i, at));
        }
        found
    }
    go(segments, 0, out, 0, ok, &mut HashSet::new())
}

/// Why rendering must refuse, found from the inputs alone (not by rendering).
fn must_refuse(reply: &Reply, fill: &Fill, vars: &BTreeMap<String, String>) -> bool {
    let declared = |n: &str| reply.prompts.iter().find(|p| p.name == n);
    let unknown_given = vars.keys().any(|k| declared(k).is_none());
    let bad_slot = reply.segments.iter().any(|s| match s {
        Segment::Slot(Slot::Contact(k)) => !fill.contacts.contains_key(k),
        Segment::Slot(Slot::Var(n)) => match (declared(n), vars.get(n)) {
            (Some(p), Some(v)) => {
                v.chars().count() > p.max_len
                    || v.chars().any(char::is_control)
                    || !p.pattern.is_match(v)
            }
            _ => true,
        },
        _ => false,
    });
    unknown_given || bad_slot
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn render_refuses_or_fills_only_the_placeholders(
        segs in segments(),
        prompts in prompts(),
        vars in vars(),
        fill in fill(),
        author in author(),
    ) {
        let text = template_text(&segs);
        let parsed = parse_template(&text).expect("a template of the closed set parses");
        prop_assert_eq!(&parsed, &merged(&segs));
        let r = reply(text, parsed, prompts);
        let refuse = must_refuse(&r, &fill, &vars);
        match render(&r, &author, &fill, &vars) {
            Ok(out) => {
                prop_assert!(!refuse, "rendered although it must refuse: {:?}", out);
                let ok = |slot: &Slot, v: &str| allowed(&r, &author, &fill, slot, v);
                prop_assert!(
                    parses_back(&r.segments, &out, &ok),
                    "{:?} is not the template {:?} with allowed values", out, r.text
                );
            }
            Err(refusal) => {
                prop_assert!(refuse, "refused without a reason: {}", refusal);
                let variable_or_contact = matches!(
                    refusal,
                    Refusal::UnknownVar { .. }
                        | Refusal::MissingVar { .. }
                        | Refusal::BadVar { .. }
                        | Refusal::MissingContact { .. }
                );
                prop_assert!(variable_or_contact, "{}", refusal);
            }
        }
    }
}

#[test]
fn the_reader_back_is_strict() {
    // The checker itself must be able to say no.
    let r = reply(
        "Hi {var.product}!".into(),
        parse_template("Hi {var.product}!").unwrap(),
        vec![Prompt {
            name: "product".into(),
            max_len: 8,
            pattern: Regex::new("^[A-Za-z]+$").unwrap(),
        }],
    );
    let author = Author::default();
    let fill = Fill::default();
    let ok = |slot: &Slot, v: &str| allowed(&r, &author, &fill, slot, v);
    assert!(parses_back(&r.segments, "Hi Zyntriva!", &ok));
    assert!(!parses_back(&r.segments, "Hi Zyntrivas!", &ok), "too long");
    assert!(
        !parses_back(&r.segments, "Hi Zyn riva!", &ok),
        "off pattern"
    );
    assert!(
        !parses_back(&r.segments, "Hey Zyntriva!", &ok),
        "wording changed"
    );
    assert!(
        !parses_back(&r.segments, "Hi Zyntriva!!", &ok),
        "text added"
    );
}
