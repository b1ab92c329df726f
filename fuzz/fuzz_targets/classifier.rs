//! The classifier: any text by any author. Tags are well formed and the same every time.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tonedesk::config::Config;
use tonedesk::domain::Author;
use tonedesk::tone::Classifier;

static CLASSIFIER: LazyLock<Classifier> =
    LazyLock::new(|| Classifier::new(Config::default().tone_config()));

// The input: the author's handle, display name and bio on the first three lines, the post after
// them (an input with fewer lines is all post).
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (handle, name, bio, post) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(n), Some(b), Some(p)) => (h, n, b, p),
        _ => ("", "", "", text.as_ref()),
    };
    let author = Author {
        handle: handle.to_owned(),
        display_name: name.to_owned(),
        bio: bio.to_owned(),
    };
    let tags = CLASSIFIER.classify(post, &author);
    assert!(
        tags.confidence.is_finite() && (0.0..=1.0).contains(&tags.confidence),
        "confidence {}",
        tags.confidence
    );
    assert!(tags.reasons.len() <= 6, "{} reasons", tags.reasons.len());
    assert!(tags.reasons.iter().all(|r| !r.is_empty()));
    // Pure: the same post gets the same tags (the thread's reused buffers change nothing).
    let again = CLASSIFIER.classify(post, &author);
    assert_eq!(tags, again);
});
