//! Bluesky: a page of `app.bsky.notification.listNotifications` (or of `app.bsky.feed.searchPosts`)
//! with the post records in it, read with a stored cursor. Input: the cursor on the first line
//! (empty: none), the body after it; the body is given to both readers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tonedesk::domain::Platform;
use tonedesk::platforms::{FetchPage, bluesky};
use tonedesk_fuzz::{check_accounting, check_mention, cursor_and_body};

const OWN_DID: &str = "did:plc:careteam";

fn seen_at(cursor: &Value) -> Option<OffsetDateTime> {
    let at = cursor.get("seen")?.get("at")?.as_str()?;
    OffsetDateTime::parse(at, &Rfc3339).ok()
}

fn pages_left(cursor: &Value) -> Option<u64> {
    cursor.get("walk")?.get("pages_left")?.as_u64()
}

fn check(page: &FetchPage, cursor: Option<&str>, items: usize, counted: bool) {
    // One more skip when the stored cursor could not be read. (A body serde_json cannot hold as a
    // `Value`, with a number out of range in an ignored field, is not counted.)
    if counted {
        check_accounting(page, items, 1);
    }
    for m in &page.mentions {
        check_mention(m, "care-b", 20_000);
        assert_eq!(m.platform, Platform::Bluesky);
        assert!(m.remote_id.starts_with("at://"), "{}", m.remote_id);
        assert!(
            m.url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://bsky.app/profile/"))
        );
        assert!(m.reply_ref.is_some());
    }
    // The stored cursor as the connector read it (none when it said it could not).
    let unreadable = page
        .skipped
        .iter()
        .any(|s| s.starts_with("the stored cursor of"));
    let stored: Option<Value> = cursor
        .filter(|_| !unreadable)
        .and_then(|c| serde_json::from_str(c).ok());
    let Some(next) = &page.cursor else {
        // The cursor stays: only a walk that goes on may say there is more.
        if page.more {
            assert!(stored.as_ref().is_some_and(|s| s.get("walk").is_some()));
        }
        return;
    };
    let next: Value = serde_json::from_str(next).expect("the next cursor is JSON");
    assert_eq!(
        page.more,
        next.get("walk").is_some(),
        "more iff a walk goes on: {next}"
    );
    if let Some(stored) = &stored {
        // The high-water mark never goes back.
        if let (Some(before), Some(after)) = (seen_at(stored), seen_at(&next)) {
            assert!(after >= before, "seen went back: {stored} -> {next}");
        }
        if seen_at(stored).is_some() {
            assert!(
                seen_at(&next).is_some(),
                "seen was lost: {stored} -> {next}"
            );
        }
        // A backfill walk only ever shortens.
        if let (Some(before), Some(after)) = (pages_left(stored), pages_left(&next)) {
            assert!(after < before, "pages_left {before} -> {after}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cursor, body) = cursor_and_body(text);
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    // serde also reads an answer written as an array of its fields, `[cursor, items]`.
    let count = |key: &str| match &parsed {
        Some(Value::Object(o)) => o.get(key).and_then(Value::as_array).map_or(0, Vec::len),
        Some(Value::Array(a)) => a.get(1).and_then(Value::as_array).map_or(0, Vec::len),
        _ => 0,
    };
    if let Ok(page) = bluesky::parse_notifications("care-b", body, cursor) {
        check(&page, cursor, count("notifications"), parsed.is_some());
    }
    if let Ok(page) = bluesky::parse_search("care-b", OWN_DID, body, cursor) {
        check(&page, cursor, count("posts"), parsed.is_some());
        for m in &page.mentions {
            let r: Value = serde_json::from_str(m.reply_ref.as_deref().unwrap_or("{}")).unwrap();
            assert_ne!(
                r.get("did").and_then(Value::as_str),
                Some(OWN_DID),
                "our own post"
            );
        }
    }
});
