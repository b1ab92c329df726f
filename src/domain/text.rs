//! Text measured the way each platform counts it (DESIGN §2).

use unicode_segmentation::UnicodeSegmentation;

use super::mention::Platform;

/// How many characters a URL counts for on X and Mastodon.
pub const URL_WEIGHT: usize = 23;

impl Platform {
    /// The longest post the platform accepts, in its own unit.
    pub fn limit(self) -> usize {
        match self {
            Platform::X => 280,
            Platform::Mastodon => 500,
            Platform::Bluesky => 300,
        }
    }

    /// What [`Platform::limit`] counts.
    pub fn unit(self) -> &'static str {
        match self {
            Platform::X => "weighted characters",
            Platform::Mastodon => "characters",
            Platform::Bluesky => "graphemes",
        }
    }
}

/// The length of `text` as `platform` counts it.
pub fn measure(platform: Platform, text: &str) -> usize {
    match platform {
        Platform::X => split_urls(text)
            .map(|piece| match piece {
                Piece::Url => URL_WEIGHT,
                Piece::Text(t) => t.graphemes(true).map(x_grapheme_weight).sum(),
            })
            .sum(),
        Platform::Mastodon => split_urls(text)
            .map(|piece| match piece {
                Piece::Url => URL_WEIGHT,
                Piece::Text(t) => t.chars().count(),
            })
            .sum(),
        Platform::Bluesky => text.graphemes(true).count(),
    }
}

/// The text as it must be posted on `platform` to reach `handle`: Mastodon delivers a reply or a
/// direct message only to the accounts its text mentions, so the author's `@handle` goes first
/// when the approved text does not already name them. Other platforms thread by reference.
pub fn addressed(platform: Platform, handle: &str, text: &str) -> String {
    let at = format!("@{handle}");
    let named = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | ';' | '(' | ')'))
        .any(|w| {
            w.trim_end_matches(['.', '!', '?'])
                .eq_ignore_ascii_case(&at)
        });
    if platform == Platform::Mastodon && !named {
        format!("{at} {text}")
    } else {
        text.to_owned()
    }
}

/// X's weighted count: most Latin-script characters weigh 1, everything else (CJK, emoji) 2.
fn x_grapheme_weight(g: &str) -> usize {
    if g.chars().any(is_emoji) {
        return 2;
    }
    g.chars().map(x_char_weight).sum()
}

fn x_char_weight(c: char) -> usize {
    let cp = c as u32;
    let light = cp <= 4351
        || (8192..=8205).contains(&cp)
        || (8208..=8223).contains(&cp)
        || (8242..=8247).contains(&cp);
    // Combining marks and joiners add nothing on their own.
    if (0x300..=0x36F).contains(&cp) || cp == 0x200D || (0xFE00..=0xFE0F).contains(&cp) {
        return 0;
    }
    if light { 1 } else { 2 }
}

fn is_emoji(c: char) -> bool {
    let cp = c as u32;
    (0x1F000..=0x1FAFF).contains(&cp) || (0x2600..=0x27BF).contains(&cp)
}

enum Piece<'a> {
    Url,
    Text(&'a str),
}

/// Splits text into URL and non-URL runs. A URL starts with `http://` or `https://` and ends at
/// white space.
fn split_urls(text: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let start = ["https://", "http://"]
            .iter()
            .filter_map(|p| rest.find(p))
            .min();
        match start {
            Some(0) => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let tail = &rest[end..];
                rest = tail;
                Some(Piece::Url)
            }
            Some(i) => {
                let (head, tail) = rest.split_at(i);
                rest = tail;
                Some(Piece::Text(head))
            }
            None => {
                let all = rest;
                rest = "";
                Some(Piece::Text(all))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_count_as_23_on_x_and_mastodon() {
        let text = "See https://example.com/a/very/long/path/that/goes/on/and/on ok";
        assert_eq!(measure(Platform::X, text), 4 + 23 + 3);
        assert_eq!(measure(Platform::Mastodon, text), 4 + 23 + 3);
        assert_eq!(measure(Platform::Bluesky, text), text.chars().count());
    }

    #[test]
    fn x_weighs_cjk_and_emoji_double() {
        assert_eq!(measure(Platform::X, "abc"), 3);
        assert_eq!(measure(Platform::X, "日本"), 4);
        assert_eq!(measure(Platform::X, "👍"), 2);
        // A family emoji joined with ZWJ is one grapheme and weighs 2.
        assert_eq!(measure(Platform::X, "👨‍👩‍👧"), 2);
        assert_eq!(measure(Platform::X, "café"), 4);
    }

    #[test]
    fn mastodon_replies_address_the_author() {
        assert_eq!(
            addressed(Platform::Mastodon, "ana@med.social", "Thanks!"),
            "@ana@med.social Thanks!"
        );
        assert_eq!(
            addressed(
                Platform::Mastodon,
                "ana@med.social",
                "Thanks @ana@med.social!"
            ),
            "Thanks @ana@med.social!"
        );
        assert_eq!(addressed(Platform::X, "ana", "Thanks!"), "Thanks!");
        assert_eq!(addressed(Platform::Bluesky, "ana.bsky.social", "Hi"), "Hi");
    }

    #[test]
    fn bluesky_counts_graphemes() {
        assert_eq!(measure(Platform::Bluesky, "👨‍👩‍👧 e\u{301}"), 3);
        assert_eq!(Platform::Bluesky.limit(), 300);
    }
}
