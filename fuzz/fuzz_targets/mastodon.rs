//! Mastodon: a page of `GET /api/v1/notifications` read with a stored cursor. Input: the cursor
//! on the first line (empty: none), the body after it.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use tonedesk::domain::Platform;
use tonedesk::platforms::mastodon::{self, cmp_ids};
use tonedesk_fuzz::{check_accounting, check_mention, cursor_and_body};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (cursor, body) = cursor_and_body(text);
    let Ok(page) = mastodon::parse_page("care-m", body, cursor) else {
        return;
    };
    // Items as the reader splits them: JSON in syntax (a number out of any range still is).
    let items = serde_json::from_str::<Vec<Box<RawValue>>>(body).map_or(0, |v| v.len());
    check_accounting(&page, items, 0);
    assert!(!page.more, "only the headers say more");
    for m in &page.mentions {
        check_mention(m, "care-m", 20_000);
        assert_eq!(m.platform, Platform::Mastodon);
        assert!(!m.author.handle.is_empty());
    }
    if let Some(next) = &page.cursor {
        // The cursor never goes back: the newest id read is past the stored one.
        if let Some(before) = cursor {
            assert_eq!(
                cmp_ids(next, before),
                Ordering::Greater,
                "{before} -> {next}"
            );
        }
        assert_eq!(cmp_ids(next, next), Ordering::Equal);
    } else {
        assert!(
            page.mentions.is_empty(),
            "mentions read but the cursor stayed"
        );
    }
    if let (Some(a), Some(b)) = (cursor, page.cursor.as_deref()) {
        assert_eq!(cmp_ids(a, b), cmp_ids(b, a).reverse());
    }
});
