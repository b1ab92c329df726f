//! X: a page of `GET /2/users/{id}/mentions` or `GET /2/tweets/search/recent` read with a stored
//! cursor. Input: the cursor on the first line (empty: none), the body after it.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tonedesk::domain::Platform;
use tonedesk::platforms::x;
use tonedesk_fuzz::{check_accounting, check_mention, cmp_digits, cursor_and_body};

/// A stored cursor as the connector reads it: a JSON object with these three fields, a field of
/// another type or a repeated field making the whole cursor unreadable (it then starts over).
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Stored {
    since_id: Option<String>,
    next_token: Option<String>,
    newest_id: Option<String>,
}

/// The `since_id` a stored cursor stands for, as the connector reads it (a bare id, or the JSON
/// object's `since_id` when it is an id).
fn since_id(cursor: Option<&str>) -> Option<String> {
    let text = cursor?.trim();
    let is_id = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    if is_id(text) {
        return Some(text.to_owned());
    }
    serde_json::from_str::<Stored>(text)
        .ok()?
        .since_id
        .filter(|s| is_id(s))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cursor, body) = cursor_and_body(text);
    let Ok(page) = x::parse_page("care-x", body, cursor) else {
        return;
    };
    // Every post of `data` is a mention or a skip. (serde also reads a page written as an array
    // of its fields, `[data, includes, meta]`.)
    // A body serde_json cannot hold as a `Value` (a number out of range in an ignored field) is
    // not counted.
    let items = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(o)) => Some(o.get("data").and_then(Value::as_array).map_or(0, Vec::len)),
        Ok(Value::Array(a)) => Some(a.first().and_then(Value::as_array).map_or(0, Vec::len)),
        _ => None,
    };
    if let Some(items) = items {
        assert_eq!(page.mentions.len() + page.skipped.len(), items);
        check_accounting(&page, items, 0);
    }
    for m in &page.mentions {
        check_mention(m, "care-x", 20_000);
        assert_eq!(m.platform, Platform::X);
        assert!(m.remote_id.bytes().all(|b| b.is_ascii_digit()));
        assert!(
            m.url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://x.com/"))
        );
    }
    let before = since_id(cursor);
    let next: Option<Value> = page
        .cursor
        .as_deref()
        .map(|c| serde_json::from_str(c).expect("the next cursor is JSON"));
    let field = |k: &str| {
        next.as_ref()
            .and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (after, token, newest) = match &next {
        Some(_) => (field("since_id"), field("next_token"), field("newest_id")),
        // The cursor stays as it was read.
        None => (before.clone(), None, None),
    };
    if next.is_some() {
        assert_eq!(
            page.more,
            token.is_some(),
            "more iff a page waits: {next:?}"
        );
    }
    if let Some(t) = &token {
        assert!(!t.is_empty());
    }
    if newest.is_some() {
        assert!(page.more, "newest_id outside a run");
    }
    // The cursor never goes back, and a run being paged keeps its floor.
    match (&before, &after) {
        (Some(b), Some(a)) => {
            assert_ne!(
                cmp_digits(a, b),
                Ordering::Less,
                "since_id {b} went back to {a}"
            );
            if page.more {
                assert_eq!(a, b, "a run being paged moved its floor");
            }
        }
        (Some(b), None) => panic!("since_id {b} was dropped: {next:?}"),
        (None, Some(a)) => assert!(!page.more, "a first run got a floor {a} while paging"),
        (None, None) => {}
    }
    // Nothing read is above the mark the cursor keeps: after the run its floor, during it the
    // run's newest id, so the next run never starts below a post already read.
    let mark = if page.more { newest.or(after) } else { after };
    if next.is_some() || !page.more {
        for m in &page.mentions {
            let mark = mark
                .as_deref()
                .unwrap_or_else(|| panic!("{} read, no mark", m.remote_id));
            assert_ne!(
                cmp_digits(mark, &m.remote_id),
                Ordering::Less,
                "{} read, cursor mark {mark}",
                m.remote_id
            );
        }
    }
});
