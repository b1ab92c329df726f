//! Helpers shared by the fuzz targets: how an input is split, and the checks several targets make.

use std::cmp::Ordering;

use tonedesk::domain::IncomingMention;
use tonedesk::platforms::FetchPage;

/// Splits a platform target's input into the stored cursor (the first line; empty means none)
/// and the response body (the rest). An input without a line break is all body.
pub fn cursor_and_body(text: &str) -> (Option<&str>, &str) {
    match text.split_once('\n') {
        Some(("", body)) => (None, body),
        Some((cursor, body)) => (Some(cursor), body),
        None => (None, text),
    }
}

/// Compares two strings of ASCII digits as the numbers they write (leading zeros ignored).
pub fn cmp_digits(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// What every mention read from any platform must look like.
pub fn check_mention(m: &IncomingMention, account: &str, max_chars: usize) {
    assert_eq!(m.account, account);
    assert!(!m.remote_id.trim().is_empty(), "a mention without an id");
    assert!(!m.author.handle.starts_with('@'), "{:?}", m.author.handle);
    assert!(
        m.text.chars().count() <= max_chars,
        "text of {} chars",
        m.text.chars().count()
    );
    if let Some(url) = &m.url {
        assert!(
            url.starts_with("https://") || url.starts_with("http://"),
            "{url}"
        );
    }
    if let Some(r) = &m.reply_ref {
        serde_json::from_str::<serde_json::Value>(r).expect("reply_ref is JSON");
    }
}

/// Every item of the page was either read or skipped, never both, never lost.
pub fn check_accounting(page: &FetchPage, items: usize, extra_skips: usize) {
    assert!(
        page.mentions.len() + page.skipped.len() <= items + extra_skips,
        "{} mentions + {} skipped from {items} items",
        page.mentions.len(),
        page.skipped.len()
    );
}
