//! The template renderer: any reply text, any filling and any operator variables, rendered and
//! measured for a platform. What is accepted keeps the approved wording, fills only valid variables
//! and is refused exactly when it is over the platform's limit.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use time::macros::{date, datetime};
use tonedesk::domain::reply::{
    Fill, Prompt, Segment, SendContext, Slot, check_send, parse_template, render,
};
use tonedesk::domain::text::measure;
use tonedesk::domain::{
    Author, Channel, ChannelRule, Flags, Mention, MentionState, Platform, Refusal, Reply,
    TagSource, Tags, Tone,
};

/// The input: fields separated by `\x1e`, in this order (missing ones are empty): the reply
/// text, the platform (`x`, `m` or `b`), the author's handle, their display name, the agent's
/// initials, the sign-off, the case number, the contact lines and the variables (`KEY=VALUE`
/// separated by `\x1f`), then options: a variable's maximum length (the first byte), `s` for a
/// strict pattern, `d` to pass only declared variables.
struct Input<'a> {
    text: &'a str,
    platform: Platform,
    handle: &'a str,
    display_name: &'a str,
    agent: &'a str,
    signoff: &'a str,
    case: &'a str,
    contacts: Vec<(&'a str, &'a str)>,
    vars: Vec<(&'a str, &'a str)>,
    max_len: usize,
    strict: bool,
    only_declared: bool,
}

impl<'a> Input<'a> {
    fn read(text: &'a str) -> Input<'a> {
        let mut f = text.split('\x1e');
        let mut next = || f.next().unwrap_or("");
        let pairs = |s: &'a str| -> Vec<(&'a str, &'a str)> {
            s.split('\x1f')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect()
        };
        let text = next();
        let platform = match next() {
            "m" => Platform::Mastodon,
            "b" => Platform::Bluesky,
            _ => Platform::X,
        };
        let (handle, display_name, agent, signoff, case) = (next(), next(), next(), next(), next());
        let (contacts, vars) = (pairs(next()), pairs(next()));
        let options = next();
        Input {
            text,
            platform,
            handle,
            display_name,
            agent,
            signoff,
            case,
            contacts,
            vars,
            max_len: options.bytes().next().map_or(40, usize::from).max(1),
            strict: options.contains('s'),
            only_declared: options.contains('d'),
        }
    }
}

/// The text that parses back to `segments`.
fn spell(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => t.replace('{', "{{").replace('}', "}}"),
            Segment::Slot(slot) => slot.spelling(),
        })
        .collect()
}

fn mention(platform: Platform, author: Author) -> Mention {
    Mention {
        id: 1,
        platform,
        account: "care".into(),
        remote_id: "1".into(),
        author,
        text: "hi".into(),
        created_at: datetime!(2026-06-01 10:00 UTC),
        url: None,
        in_reply_to: None,
        parent_text: None,
        reply_ref: None,
        private: false,
        tags: Tags {
            tone: Tone::Neutral,
            flags: Flags::empty(),
            confidence: 0.5,
            reasons: vec![],
            source: TagSource::Classifier,
        },
        state: MentionState::Open,
        due_at: datetime!(2026-06-01 11:00 UTC),
        snooze_until: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::read(data);
    let Ok(segments) = parse_template(input.text) else {
        return;
    };
    // Parsing loses nothing: the segments spell a text that parses to the same segments.
    assert_eq!(parse_template(&spell(&segments)).as_ref(), Ok(&segments));

    let platform = input.platform;
    let pattern = if input.strict {
        "^(?:[A-Za-z0-9 .-]+)$"
    } else {
        "^(?:.*)$"
    };
    let mut prompts: Vec<Prompt> = Vec::new();
    for seg in &segments {
        if let Segment::Slot(Slot::Var(name)) = seg
            && !prompts.iter().any(|p| &p.name == name)
        {
            prompts.push(Prompt {
                name: name.clone(),
                max_len: input.max_len,
                pattern: Regex::new(pattern).unwrap(),
            });
        }
    }
    let reply = Reply {
        id: "fuzz".into(),
        version: 1,
        approval: "MLR-FUZZ".into(),
        approved_on: date!(2026 - 01 - 01),
        expires_on: date!(2027 - 01 - 01),
        tones: vec![Tone::Neutral],
        flags: Flags::empty(),
        channel: ChannelRule::Either,
        platforms: vec![],
        holding: false,
        confirms_health: false,
        text: input.text.to_owned(),
        segments: segments.clone(),
        prompts,
    };
    assert!(reply.check_vars().is_ok());
    let author = Author {
        handle: input.handle.to_owned(),
        display_name: input.display_name.to_owned(),
        bio: String::new(),
    };
    let fill = Fill {
        agent_initials: input.agent.to_owned(),
        signoff: input.signoff.to_owned(),
        case: input.case.to_owned(),
        contacts: input
            .contacts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let vars: BTreeMap<String, String> = input
        .vars
        .iter()
        .filter(|(k, _)| !input.only_declared || reply.prompts.iter().any(|p| p.name == *k))
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let Ok(out) = render(&reply, &author, &fill, &vars) else {
        return;
    };

    // Only declared variables, each within its length and pattern, without controls.
    for name in vars.keys() {
        let prompt = reply
            .prompts
            .iter()
            .find(|p| &p.name == name)
            .expect("declared");
        let value = &vars[name];
        if segments.contains(&Segment::Slot(Slot::Var(name.clone()))) {
            assert!(value.chars().count() <= prompt.max_len);
            assert!(!value.chars().any(char::is_control));
            assert!(prompt.pattern.is_match(value));
        }
    }
    // The approved wording is all there, in order.
    let mut rest = out.as_str();
    for seg in &segments {
        if let Segment::Text(t) = seg {
            let at = rest.find(t.as_str()).expect("approved wording kept");
            rest = &rest[at + t.len()..];
        }
    }

    // Refused as too long exactly when it is over the limit.
    let length = measure(platform, &out);
    let products: [String; 0] = [];
    let ctx = SendContext {
        today: date!(2026 - 06 - 01),
        crisis: None,
        known_hash: Some(&reply.text_hash()),
        earlier_reply: None,
        vars: &vars,
        products: &products,
    };
    let m = mention(platform, author);
    match check_send(&reply, &m, Channel::Private, &out, &ctx) {
        Ok(()) => assert!(
            length <= platform.limit(),
            "{length} accepted on {platform:?}"
        ),
        Err(Refusal::TooLong {
            length: l, limit, ..
        }) => {
            assert_eq!(l, length);
            assert_eq!(limit, platform.limit());
            assert!(length > limit);
        }
        Err(other) => panic!("unexpected refusal: {other}"),
    }
    if platform == Platform::Bluesky {
        assert!(length <= out.chars().count());
    }
    let _ = tonedesk::domain::text::addressed(platform, input.handle, &out);
});
