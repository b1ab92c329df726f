//! Large, realistic caches for the scale benchmark and anyone reproducing its figures
//! (`cargo run --release --example gen-cache -- --home DIR --mentions 1000000`).
//!
//! Mentions are built from the demo data (`assets/demo/mentions.toml`): its texts, recombined
//! clause by clause within a tone, with numbers, openings and endings varied; authors drawn from a
//! pool in which some post often; the three platforms; publish times spread over the past year.
//! They go through the real classifier and the store's real ingest path in batches, and then get a
//! desk's history through the store's real writes: what is older than two days was answered
//! (audited `done`, with a response time), a few were snoozed for an HCP follow-up, a few were left
//! open, and every adverse event old enough has its intake record, exported.
//!
//! Deterministic for a seed and a `now`. Not used by the console or the subcommands.

use anyhow::{Context, Result, bail};
use time::{Duration, OffsetDateTime};

use crate::domain::audit::AuditRecord;
use crate::domain::playbook::Targets;
use crate::domain::{AeCase, Author, Flag, IncomingMention, MentionState, Platform, Tags, Tone};
use crate::platforms::demo::{self, DemoMention};
use crate::store::{Store, StoreError};
use crate::tone::Classifier;

/// Mentions per ingest transaction (a few poll pages' worth).
pub const BATCH: usize = 1000;

/// A small, fast, deterministic random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const OPENINGS: &[&str] = &[
    "",
    "",
    "",
    "",
    "hey ",
    "hi ",
    "ok so ",
    "honestly ",
    "quick one: ",
    "update: ",
    "fyi ",
    "not gonna lie, ",
    "PSA: ",
];
const ENDINGS: &[&str] = &[
    "",
    "",
    "",
    "",
    " 🙏",
    " 😩",
    " 🙂",
    " lol",
    " #migraine",
    " #chronicpain",
    " thanks",
    " any ideas?",
    " ugh",
    " !!",
    " #pharma",
];
const NAMES: &[&str] = &[
    "alex",
    "sam",
    "jo",
    "maria",
    "li",
    "priya",
    "tom",
    "kelly",
    "nina",
    "omar",
    "grace",
    "dev",
    "ana",
    "ben",
    "chloe",
    "dan",
    "emma",
    "felix",
    "gina",
    "hugo",
    "ines",
    "jamal",
    "kai",
    "lena",
    "marco",
    "nora",
    "oli",
    "paula",
    "quinn",
    "rosa",
    "sven",
    "tara",
    "umar",
    "vera",
    "wes",
    "yuki",
    "zoe",
    "drmehta",
    "nurse_kim",
    "pharmd_lee",
    "migrainemom",
    "runner",
    "bookworm",
    "night_owl",
    "catlady",
    "gamer",
    "chef",
    "teacher",
];
const SUFFIXES: &[&str] = &[
    "",
    "_",
    ".",
    "_x",
    "_uk",
    "_md",
    "_rn",
    "88",
    "_k",
    "_official",
];

/// A source text cut into clauses, with the tone and flags a careful reader gave it.
struct Source {
    clauses: Vec<String>,
    tone: Tone,
    ae: bool,
    weight: f64,
    parent: Option<String>,
    private: bool,
}

/// Builds mentions one after another, oldest first.
pub struct Generator {
    rng: Rng,
    sources: Vec<Source>,
    /// Cumulative weights of `sources`.
    cumulative: Vec<f64>,
    /// Indexes of the sources of each tone (for clauses that keep a text's tone).
    by_tone: Vec<(Tone, Vec<usize>)>,
    bios: Vec<String>,
    authors: usize,
    now: OffsetDateTime,
    span: Duration,
    total: usize,
    made: usize,
}

fn clauses(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        // A clause ends at a stop followed by a space (not inside a handle or a link).
        let ends = c == '\n'
            || (matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()));
        if ends && cur.trim().len() > 12 {
            out.push(cur.trim().to_owned());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// How often a demo mention's kind appears in a real desk's traffic (the demo file is rich in
/// adverse events and crises on purpose; real traffic is not).
fn weight(m: &DemoMention) -> f64 {
    if m.expect_flags.contains(&Flag::Ae) {
        0.12
    } else if m.expect_flags.contains(&Flag::Crisis) {
        0.25
    } else if matches!(m.expect_tone, Tone::Spam | Tone::Troll) {
        0.6
    } else if m.expect_tone == Tone::Positive {
        2.5
    } else {
        1.0
    }
}

impl Generator {
    /// A generator of `total` mentions published over the year before `now`.
    pub fn new(seed: u64, now: OffsetDateTime, total: usize) -> Result<Generator> {
        let demo = demo::demo_mentions().map_err(anyhow::Error::msg)?;
        let sources: Vec<Source> = demo
            .iter()
            .map(|m| Source {
                clauses: clauses(&m.text),
                tone: m.expect_tone,
                ae: m.expect_flags.contains(&Flag::Ae),
                weight: weight(m),
                parent: m.parent.clone(),
                private: m.private,
            })
            .collect();
        let mut acc = 0.0;
        let cumulative = sources
            .iter()
            .map(|s| {
                acc += s.weight;
                acc
            })
            .collect();
        let by_tone = Tone::ALL
            .iter()
            .map(|t| {
                let idx = (0..sources.len())
                    .filter(|&i| sources[i].tone == *t && !sources[i].ae)
                    .collect();
                (*t, idx)
            })
            .collect();
        let bios = demo
            .iter()
            .map(|m| m.bio.clone())
            .filter(|b| !b.is_empty())
            .collect();
        Ok(Generator {
            rng: Rng::new(seed),
            sources,
            cumulative,
            by_tone,
            bios,
            // Some authors post often: a pool of about one author for every eight mentions.
            authors: (total / 8).max(50),
            now,
            span: Duration::days(365),
            total,
            made: 0,
        })
    }

    fn source(&mut self) -> usize {
        let last = self.cumulative.last().copied().unwrap_or(1.0);
        let x = self.rng.unit() * last;
        self.cumulative
            .partition_point(|c| *c <= x)
            .min(self.sources.len() - 1)
    }

    fn vary_numbers(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        let mut in_number = false;
        for c in text.chars() {
            if c.is_ascii_digit() {
                if !in_number {
                    out.push_str(&(1 + self.rng.below(12)).to_string());
                }
                in_number = true;
            } else {
                in_number = false;
                out.push(c);
            }
        }
        out
    }

    fn text(&mut self, src: usize) -> String {
        let s = &self.sources[src];
        let tone = s.tone;
        let mut parts: Vec<String> = s.clauses.clone();
        // Swap in a clause from another text of the same tone, or add one.
        let same: Vec<usize> = self
            .by_tone
            .iter()
            .find(|(t, _)| *t == tone)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if !same.is_empty() && self.rng.chance(0.6) {
            let other = &self.sources[*self.rng.pick(&same)];
            let clause = other.clauses[self.rng.below(other.clauses.len())].clone();
            if parts.len() > 1 && self.rng.chance(0.5) {
                let at = self.rng.below(parts.len());
                parts[at] = clause;
            } else {
                parts.push(clause);
            }
        }
        let opening = *self.rng.pick(OPENINGS);
        let ending = *self.rng.pick(ENDINGS);
        let body = self.vary_numbers(&parts.join(" "));
        format!("{opening}{body}{ending}")
    }

    fn author(&mut self) -> Author {
        // Squaring a uniform draw favours low indexes: a few authors post a lot.
        let n = (self.rng.unit().powi(2) * self.authors as f64) as usize;
        let name = NAMES[n % NAMES.len()];
        let suffix = SUFFIXES[(n / NAMES.len()) % SUFFIXES.len()];
        let number = n / (NAMES.len() * SUFFIXES.len());
        let handle = if number == 0 {
            format!("{name}{suffix}")
        } else {
            format!("{name}{suffix}{number}")
        };
        let mut display = name.replace('_', " ");
        if let Some(first) = display.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let bio = if n % 5 < 3 {
            self.bios[n % self.bios.len()].clone()
        } else {
            String::new()
        };
        Author {
            handle,
            display_name: display,
            bio,
        }
    }

    /// The next mention, each a little later than the one before.
    pub fn next_mention(&mut self) -> IncomingMention {
        let i = self.made;
        self.made += 1;
        let src = self.source();
        let text = self.text(src);
        let mut author = self.author();
        let platform = Platform::ALL[self.rng.below(Platform::ALL.len())];
        if platform == Platform::Mastodon && !author.handle.contains('@') {
            // A person's account lives on one server: the same author, the same server.
            let servers = ["mastodon.social", "fosstodon.org", "med.social"];
            let server = handle_number(0, &author.handle) % servers.len() as u64;
            author.handle = format!("{}@{}", author.handle, servers[server as usize]);
        }
        let s = &self.sources[src];
        let (parent, private) = (s.parent.clone(), s.private);
        let step = self.span.whole_seconds() / self.total.max(1) as i64;
        let ago = self.span.whole_seconds() * (self.total - i) as i64 / self.total.max(1) as i64
            - self.rng.below(step.max(1) as usize) as i64;
        let created_at = self.now - Duration::seconds(ago.max(1));
        let remote_id = format!("{}{:08}", 1_800_000_000_000u64 + i as u64, i % 97);
        let url = match platform {
            Platform::X => format!("https://x.com/{}/status/{remote_id}", author.handle),
            Platform::Mastodon => {
                let (user, server) = author
                    .handle
                    .split_once('@')
                    .unwrap_or((&author.handle, "mastodon.social"));
                format!("https://{server}/@{user}/{remote_id}")
            }
            Platform::Bluesky => format!(
                "https://bsky.app/profile/{}/post/{remote_id}",
                author.handle
            ),
        };
        IncomingMention {
            platform,
            account: demo::account_name(platform),
            remote_id: remote_id.clone(),
            author,
            text,
            created_at,
            url: Some(url),
            in_reply_to: parent.as_ref().map(|_| format!("{remote_id}-parent")),
            parent_text: parent,
            reply_ref: None,
            private,
        }
    }
}

/// A number that a handle always gives (for ids and choices that must stay the same for one
/// person): a multiplicative hash of its bytes from `seed`.
fn handle_number(seed: u64, handle: &str) -> u64 {
    handle
        .bytes()
        .fold(seed, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

/// A page of Mastodon notifications (`GET /api/v1/notifications?types[]=mention`) holding these
/// mentions, as a server would send it: HTML content, accounts, visibility, ids newest first.
pub fn mastodon_page(mentions: &[IncomingMention]) -> String {
    let items: Vec<serde_json::Value> = mentions
        .iter()
        .rev()
        .map(|m| {
            let html: String = m
                .text
                .split("\n\n")
                .map(|p| format!("<p>{}</p>", html_escape(p).replace('\n', "<br>")))
                .collect();
            let content = format!(
                "<p><span class=\"h-card\"><a href=\"https://pharma.social/@acmecare\" class=\"u-url mention\">@<span>acmecare</span></a></span> </p>{html}"
            );
            let account = serde_json::json!({
                "id": handle_number(7, &m.author.handle).to_string(),
                "acct": m.author.handle,
                "display_name": m.author.display_name,
                "note": format!("<p>{}</p>", html_escape(&m.author.bio)),
                "url": m.url,
            });
            serde_json::json!({
                "id": m.remote_id,
                "type": "mention",
                "created_at": crate::domain::audit::format_utc(m.created_at),
                "account": account,
                "status": {
                    "id": m.remote_id,
                    "created_at": crate::domain::audit::format_utc(m.created_at),
                    "in_reply_to_id": m.in_reply_to,
                    "visibility": if m.private { "direct" } else { "public" },
                    "spoiler_text": "",
                    "content": content,
                    "url": m.url,
                    "uri": m.url,
                    "account": account,
                },
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What a populated cache holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Populated {
    pub mentions: usize,
    pub done: usize,
    pub snoozed: usize,
    pub open: usize,
    pub ae_cases: usize,
}

/// Fills an empty store with `total` generated mentions and their history, reporting progress
/// after each batch. The demo accounts must exist (see [`demo_accounts`]).
pub fn populate(
    store: &mut Store,
    classifier: &Classifier,
    seed: u64,
    now: OffsetDateTime,
    total: usize,
    progress: &mut dyn FnMut(&Populated),
) -> Result<Populated> {
    if !matches!(store.mention(1), Err(StoreError::NoMention(_))) {
        bail!("the cache already holds mentions: generate into an empty --home");
    }
    let targets = Targets::default();
    let mut generator = Generator::new(seed, now, total)?;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut done = Populated::default();
    let mut next_id = 1i64;
    let answered_before = now - Duration::days(2);
    while done.mentions < total {
        let n = BATCH.min(total - done.mentions);
        let batch: Vec<(IncomingMention, Tags)> = (0..n)
            .map(|_| {
                let m = generator.next_mention();
                let tags = classifier.classify(&m.text, &m.author);
                (m, tags)
            })
            .collect();
        let stored = store.ingest(&batch, &targets, None, now)?;
        if stored != n {
            bail!(
                "{} of {n} generated mentions were stored (ids must be unique)",
                stored
            );
        }
        let first_id = next_id;
        next_id += n as i64;
        let last = store.mention(next_id - 1)?;
        if last.remote_id != batch[n - 1].0.remote_id {
            bail!("the cache was not empty: mention ids do not follow the generated order");
        }

        // The desk's history: answered, snoozed for a follow-up, or still open.
        let mut changes = Vec::new();
        let mut ae_exports = Vec::new();
        for (k, (m, tags)) in batch.iter().enumerate() {
            let id = first_id + k as i64;
            let old = m.created_at < answered_before;
            let roll = rng.unit();
            if old && roll < 0.002 {
                done.open += 1;
            } else if old && roll < 0.004 {
                let until = now + Duration::days(1 + rng.below(90) as i64);
                store.snooze(
                    id,
                    until,
                    "follow-up",
                    AuditRecord::new(m.created_at + Duration::hours(2), "generator", "follow_up"),
                )?;
                done.snoozed += 1;
            } else if old || roll < 0.3 {
                let response = Duration::minutes(5 + rng.below(if old { 600 } else { 60 }) as i64);
                let at = (m.created_at + response).min(now);
                let mut record = AuditRecord::new(at, "generator", "done");
                record.platform = Some(m.platform.as_str().into());
                record.account = Some(m.account.clone());
                record.mention = Some(id);
                changes.push((id, MentionState::Done, record, at));
                done.done += 1;
            } else {
                done.open += 1;
            }
            if tags.flags.contains(Flag::Ae) && old {
                let mention = store.mention(id)?;
                let case = AeCase::prefill(&mention, targets.ae_report_hours);
                let at = m.created_at + Duration::hours(3);
                store
                    .save_ae_case(&case, AuditRecord::new(at, "generator", "ae_intake"), at)
                    .context("saving a generated AE intake record")?;
                ae_exports.push(id);
                done.ae_cases += 1;
            }
        }
        store.set_states(changes)?;
        if !ae_exports.is_empty() {
            let at = batch[n - 1].0.created_at + Duration::hours(20);
            store.mark_ae_exported(
                &ae_exports,
                AuditRecord::new(at.min(now), "generator", "ae_export"),
                at.min(now),
            )?;
        }
        done.mentions += n;
        progress(&done);
    }
    store.index_pending()?;
    Ok(done)
}

/// Registers the demo accounts the generated mentions belong to.
pub fn demo_accounts(store: &mut Store) -> Result<()> {
    for p in Platform::ALL {
        store.upsert_account(&demo::account_name(p), p, demo::handle(p), true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use time::macros::datetime;

    #[test]
    fn generates_varied_mentions_and_a_history() {
        let now = datetime!(2026-06-01 12:00 UTC);
        let mut g = Generator::new(7, now, 2000).unwrap();
        let all: Vec<IncomingMention> = (0..2000).map(|_| g.next_mention()).collect();
        let texts: std::collections::HashSet<&str> = all.iter().map(|m| m.text.as_str()).collect();
        assert!(texts.len() > 1000, "only {} distinct texts", texts.len());
        assert!(
            all.windows(2)
                .all(|w| w[0].created_at <= w[1].created_at + Duration::hours(5))
        );
        assert!(all[0].created_at < now - Duration::days(360));
        assert!(
            all.iter().all(|m| !m.text.contains("@pharma. social")),
            "handles and links stay whole"
        );
        // A Mastodon author has one server, however often they post.
        let mut servers: std::collections::HashMap<&str, std::collections::HashSet<&str>> =
            Default::default();
        for m in all.iter().filter(|m| m.platform == Platform::Mastodon) {
            let (user, server) = m.author.handle.split_once('@').expect("user@server");
            servers.entry(user).or_default().insert(server);
        }
        assert!(servers.len() > 50, "{} Mastodon authors", servers.len());
        assert!(servers.values().all(|s| s.len() == 1), "{servers:?}");
        let used: std::collections::HashSet<_> = servers.values().flatten().collect();
        assert_eq!(used.len(), 3, "every server has people: {used:?}");

        let mut store = Store::open_in_memory().unwrap();
        demo_accounts(&mut store).unwrap();
        let classifier = Classifier::new(Config::default().tone_config());
        let p = populate(&mut store, &classifier, 7, now, 2000, &mut |_| {}).unwrap();
        assert_eq!(p.mentions, 2000);
        assert_eq!(p.done + p.open + p.snoozed, 2000);
        assert!(p.done > 1900 && p.ae_cases > 10, "{p:?}");
        let c = store.counts(now).unwrap();
        assert_eq!(c.done as usize, p.done);
        assert_eq!((c.open + c.moderation) as usize, p.open);
        assert_eq!(c.ae_overdue, 0, "old AEs were reported");
        let page = mastodon_page(&all[..3]);
        let parsed = crate::platforms::mastodon::parse_page("care-m", &page, None).unwrap();
        assert_eq!(parsed.mentions.len(), 3, "{:?}", parsed.skipped);
        assert_eq!(parsed.mentions[2].remote_id, all[0].remote_id);
        assert!(
            parsed.mentions[2]
                .text
                .contains(all[0].text.split(' ').next_back().unwrap())
        );
    }
}
