//! "Fast at a million mentions": every figure as a ratio measured in one run.
//!
//! `cargo bench --bench scale` (1,000,000 cached mentions against 1,000), or
//! `cargo bench --bench scale -- --quick` (100,000 against 1,000; also `TONEDESK_SCALE_QUICK=1`);
//! `-- --ingest` measures only the ingest (add `--breakdown` for where the store's time goes).
//! `TONEDESK_SCALE_DUMP_J=FILE` writes what one `j` sends to the terminal (detail pane open) to FILE.
//! Caches are generated under `$TONEDESK_SCALE_DIR` (default `/tmp/scale-bench`) with
//! `tonedesk::app::generate` (as `examples/gen-cache.rs` does) and reused by later runs; `--fresh`
//! makes them again. Each cache size is measured in a child process of its own (this binary run
//! with `--child`), so that its peak memory (`VmHWM`) is its own.
//!
//! 1. Ingest: Mastodon notification pages (80 mentions each, what the connector asks for) through
//!    the poller's own path, `Desk::poll_account`, with a connector whose fetch is the Mastodon
//!    connector's parse of the next page: tagged by the classifier, stored by `Store::ingest` on
//!    the store thread (written while the poller parses and tags the next pages; pages that
//!    arrive while it is still writing go to it together, up to four in one transaction), with
//!    the full-text index's batches, the catch-up once caught up, the poll records, and a last
//!    checkpoint counted in; against a plain rusqlite INSERT of the same rows into a fresh table
//!    of the same definition (same columns, constraints and indexes; no author upsert, no
//!    full-text index, no counts, no foreign key checks), 80 rows a transaction, same pragmas.
//!    Target: at least 0.5×.
//! 2. The console at 1M against 1k: a key press to its finished frame (`AppState::update`, any
//!    page load run against the store as the worker would, `view::draw` to a terminal), the start
//!    to the first full frame (open the store, first page, counts, draw), peak memory. Targets:
//!    at most 1.5×, 2×, 1.5×.
//! 3. Over SSH: bytes written to the terminal for a cursor move (`j`) against a full redraw of the
//!    same screen, both through the console's backend (`tui::lean`). Target: at most 10%. Over
//!    SSH the console starts with the detail pane closed (`[ui] detail = "auto"`), so that is the
//!    figure the target is for; a move with the pane open (the local default, or opened with
//!    `Enter`) redraws the pane's text too and is printed beside. The same frames through
//!    ratatui's own `CrosstermBackend` are printed beside, for comparison.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::{Rect, Size};
use ratatui::{Terminal, TerminalOptions, Viewport};
use rusqlite::Connection;
use time::OffsetDateTime;

use tonedesk::app::desk::{Desk, GROUP_PAGES};
use tonedesk::app::generate::{self, Generator};
use tonedesk::app::library::{Library, STARTER};
use tonedesk::app::state::{Action, AppState, Effect};
use tonedesk::app::worker::load_page;
use tonedesk::config::Config;
use tonedesk::domain::Mention;
use tonedesk::domain::Platform;
use tonedesk::domain::playbook::ModAction;
use tonedesk::domain::playbook::{self, Targets};
use tonedesk::domain::{IncomingMention, Tags};
use tonedesk::paths::Paths;
use tonedesk::platforms::{Connector, FetchPage, Outgoing, PlatformError, Sent, mastodon};
use tonedesk::store::{Filter, Store, StoreHandle, View};
use tonedesk::tone::Classifier;
use tonedesk::tui::keymap::KeyMap;
use tonedesk::tui::lean::LeanBackend;
use tonedesk::tui::view::{self, Theme, ViewState};

const SMALL: usize = 1_000;
const SEED: u64 = 1;
/// The terminal the console figures are drawn on (a wide one: list and detail side by side).
const COLS: u16 = 120;
const LINES: u16 = 40;
/// Mentions in a page of Mastodon notifications, as the connector asks for them (its maximum),
/// and so in one ingest transaction.
const PAGE: usize = 80;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let db = PathBuf::from(&args[i + 1]);
        let figures = child(&db);
        println!("{}", figures.line());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var_os("TONEDESK_SCALE_QUICK").is_some_and(|v| !v.is_empty() && v != "0");
    let fresh = args.iter().any(|a| a == "--fresh");
    let big = if quick { 100_000 } else { 1_000_000 };
    let dir = std::env::var_os("TONEDESK_SCALE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/scale-bench"));
    std::fs::create_dir_all(&dir).expect("the bench folder can be made");

    println!(
        "tonedesk scale bench: {big} cached mentions against {SMALL}, caches in {}",
        dir.display()
    );
    println!("machine: {} cores, {}", cores(), cpu_model());
    println!();

    if args.iter().any(|a| a == "--ingest") {
        print_ingest(&dir, if quick { 20_000 } else { 100_000 });
        return;
    }

    // The console first: the ingest runs write and delete hundreds of megabytes, whose writeback
    // would otherwise compete with the console's reads. Each cache size in a child process.
    let small_db = cache(&dir, SMALL, fresh);
    let big_db = cache(&dir, big, fresh);
    let s = run_child(&small_db);
    let b = run_child(&big_db);

    // 1. Ingest.
    let n_ingest = if quick { 20_000 } else { 100_000 };
    print_ingest(&dir, n_ingest);

    // 2. The console.
    println!("2. The console at {big} cached mentions against {SMALL} ({COLS}x{LINES} terminal)");
    let row = |name: &str, unit: &str, x: f64, y: f64| {
        println!("   {name:<40} {x:>10.1} {unit:<3} {y:>10.1} {unit}");
    };
    println!(
        "   {:<40} {:>14} {:>14}",
        "",
        format!("{SMALL}"),
        format!("{big}")
    );
    row(
        "key press to frame, median (Done view)",
        "µs",
        s.key_med,
        b.key_med,
    );
    row(
        "  presses that load a page, median",
        "µs",
        s.key_load_med,
        b.key_load_med,
    );
    row("  slowest press", "µs", s.key_max, b.key_max);
    row(
        "  Done view of one platform, median",
        "µs",
        s.filtered_med,
        b.filtered_med,
    );
    row(
        "  open queue, j from the top, median",
        "µs",
        s.queue_med,
        b.queue_med,
    );
    row(
        "start to first full frame, median",
        "ms",
        s.start_ms,
        b.start_ms,
    );
    row(
        "peak memory (VmHWM)",
        "MiB",
        s.hwm_kb / 1024.0,
        b.hwm_kb / 1024.0,
    );
    ratio_line("   key press ratio", b.key_med / s.key_med, "<=", 1.5);
    ratio_line(
        "   key press with a page load ratio",
        b.key_load_med / s.key_load_med,
        "<=",
        1.5,
    );
    ratio_line("   start ratio", b.start_ms / s.start_ms, "<=", 2.0);
    ratio_line("   peak memory ratio", b.hwm_kb / s.hwm_kb, "<=", 1.5);
    println!();

    // 3. Over SSH (measured on the big cache).
    println!("3. Over SSH: bytes to the terminal ({COLS}x{LINES}, {big} cached mentions)");
    println!(
        "   full redraw (clear + draw)          {:>8.0} bytes (detail pane open), {:.0} (closed)",
        b.full_bytes, b.full_closed_bytes
    );
    println!(
        "   j, detail pane open (local default), median {:>6.0} bytes (90th percentile {:.0})",
        b.j_bytes, b.j_p90
    );
    println!(
        "   j, detail pane closed (SSH default), median {:>4.0} bytes (90th percentile {:.0})",
        b.j_closed_bytes, b.j_closed_p90
    );
    println!(
        "   ratatui's own backend (CrosstermBackend): full redraw {:.0} bytes, j open {:.0} ({:.1}%), \
         j closed {:.0} ({:.1}%)",
        b.ct_full_bytes,
        b.ct_j_bytes,
        100.0 * b.ct_j_bytes / b.ct_full_bytes,
        b.ct_j_closed_bytes,
        100.0 * b.ct_j_closed_bytes / b.ct_full_closed_bytes,
    );
    ratio_line(
        "   j / full redraw over SSH (detail closed)",
        b.j_closed_bytes / b.full_closed_bytes,
        "<=",
        0.10,
    );
    ratio_line(
        "   j / full redraw, detail open (Enter over SSH)",
        b.j_bytes / b.full_bytes,
        "<=",
        0.10,
    );
}

/// Measures and prints part 1, the ingest.
fn print_ingest(dir: &Path, n_ingest: usize) {
    let ingest = ingest_figures(dir, n_ingest);
    println!(
        "1. Ingest ({n_ingest} mentions in Mastodon pages of {PAGE}, median of {INGEST_RUNS} runs \
         each; a ratio is the median of each run's own, its figures measured one after the other)"
    );
    println!(
        "   parse only (connector code)  {:>10.0} mentions/s",
        ingest.parse
    );
    println!(
        "   parse + classify             {:>10.0} mentions/s",
        ingest.classify
    );
    println!(
        "   tonedesk: parse, tag, store  {:>10.0} mentions/s",
        median(ingest.ours.clone())
    );
    println!(
        "   raw rusqlite INSERT          {:>10.0} rows/s",
        median(ingest.raw.clone())
    );
    let runs =
        |of: &[f64], to: &[f64]| -> Vec<f64> { of.iter().zip(to).map(|(a, b)| a / b).collect() };
    let spread = |v: &[f64]| {
        let (lo, hi) = (percentile(v.to_vec(), 0.0), percentile(v.to_vec(), 1.0));
        format!("runs {lo:.3}x to {hi:.3}x")
    };
    let ratios = runs(&ingest.ours, &ingest.raw);
    ratio_line("   ratio", median(ratios.clone()), ">=", 0.5);
    println!("{:<40} {}", "", spread(&ratios));
    println!(
        "   raw, {} rows a transaction       {:>10.0} rows/s (tonedesk's largest group)",
        GROUP_PAGES * PAGE,
        median(ingest.raw_grouped.clone())
    );
    let grouped = runs(&ingest.ours, &ingest.raw_grouped);
    println!(
        "{:<40} {:>8.3}x  (no target; {})",
        "   ratio against it",
        median(grouped.clone()),
        spread(&grouped)
    );
    println!(
        "   the store's part alone (Store::ingest of the tagged mentions) {:.0} mentions/s",
        median(ingest.store.clone())
    );
    println!(
        "{:<40} {:>8.3}x  (no target)",
        "   store alone / raw",
        median(runs(&ingest.store, &ingest.raw))
    );
    println!();
}

fn ratio_line(name: &str, ratio: f64, op: &str, target: f64) {
    let met = match op {
        ">=" => ratio >= target,
        _ => ratio <= target,
    };
    println!(
        "{name:<40} {ratio:>8.3}x  (target {op} {target}x: {})",
        if met { "met" } else { "NOT met" }
    );
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

// ───────────────────────────── 1. Ingest ─────────────────────────────

/// Runs of each ingest figure but parsing and classifying.
const INGEST_RUNS: usize = 5;

/// Rates a second: parsing and classifying as medians; the others one a run, in run order.
struct Ingest {
    parse: f64,
    classify: f64,
    store: Vec<f64>,
    ours: Vec<f64>,
    raw: Vec<f64>,
    /// The raw insert in transactions as large as tonedesk's largest group of pages.
    raw_grouped: Vec<f64>,
}

/// Removes a database and its full-text index file, with their logs.
fn fresh_db(path: &Path) {
    let index = tonedesk::paths::search_index_beside(path);
    for file in [path, index.as_path()] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
}

fn ingest_figures(dir: &Path, n: usize) -> Ingest {
    // The pages a poll would fetch, made before any clock starts.
    let now = OffsetDateTime::now_utc();
    let mut g = Generator::new(SEED + 100, now, n).expect("the generator starts");
    let mentions: Vec<IncomingMention> = (0..n).map(|_| g.next_mention()).collect();
    let pages: Vec<String> = mentions.chunks(PAGE).map(generate::mastodon_page).collect();
    let account = "demo-mastodon";
    let classifier = Classifier::new(Config::default().tone_config());
    let targets = Targets::default();

    let parse = rate(n, || {
        for body in &pages {
            std::hint::black_box(mastodon::parse_page(account, body, None).expect("parses"));
        }
    });
    let classify = rate(n, || {
        for body in &pages {
            let page = mastodon::parse_page(account, body, None).expect("parses");
            for m in &page.mentions {
                std::hint::black_box(classifier.classify(&m.text, &m.author));
            }
        }
    });

    // The same rows for the raw insert, with their tags and authors' ids, worked out untimed.
    let mut tagged: Vec<(IncomingMention, Tags)> = Vec::with_capacity(n);
    for body in &pages {
        for m in mastodon::parse_page(account, body, None)
            .expect("parses")
            .mentions
        {
            let tags = classifier.classify(&m.text, &m.author);
            tagged.push((m, tags));
        }
    }
    let mut author_ids = std::collections::HashMap::new();
    let rows: Vec<RawRow> = tagged
        .iter()
        .map(|(m, tags)| {
            let next = author_ids.len() as i64 + 1;
            let author_id = *author_ids.entry(m.author.handle.clone()).or_insert(next);
            RawRow::new(m, tags, author_id, &targets, now)
        })
        .collect();

    let raw_db = dir.join("ingest-raw.db");
    let (mut ours, mut raw, mut store_only) = (Vec::new(), Vec::new(), Vec::new());
    let mut raw_grouped = Vec::new();
    for run in 0..INGEST_RUNS {
        // Each run has files of its own: a store thread that is still closing the last run's
        // database must not touch this one's.
        let store_db = dir.join(format!("ingest-store-only-{run}.db"));
        // The store's part alone: the same tagged mentions, one ingest a page, on the store
        // thread as the console runs it (checkpoints beside it), and a last checkpoint.
        let chunks: Vec<Vec<(IncomingMention, Tags)>> =
            tagged.chunks(PAGE).map(<[_]>::to_vec).collect();
        fresh_db(&store_db);
        let mut store = Store::open(&store_db).expect("the store opens");
        generate::demo_accounts(&mut store).expect("accounts");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        settle();
        let elapsed = runtime.block_on(async {
            let h = StoreHandle::spawn(store).expect("the store thread starts");
            let start = Instant::now();
            for chunk in chunks {
                let targets = targets.clone();
                h.call(move |s| s.ingest(&chunk, &targets, None, now))
                    .await
                    .expect("ingest");
            }
            // What ingest left for the full-text index's next batch, as a poll round's end does.
            h.call(|s| s.index_pending()).await.expect("indexes");
            h.call(|s| s.checkpoint()).await.expect("checkpoints");
            start.elapsed()
        });
        store_only.push(n as f64 / elapsed.as_secs_f64());
        fresh_db(&store_db);

        // Ours: the poller's own path. `Desk::poll_account` fetches pages from a connector that
        // serves the bodies (fetching is its parse), tags them, and has the store thread write
        // them while it tags the next (grouped as they queue up); the index catch-up and poll
        // records count, and so does a last checkpoint, so that no work is left behind when the
        // clock stops.
        let home = dir.join(format!("ingest-tonedesk-{run}"));
        let _ = std::fs::remove_dir_all(&home);
        settle();
        let (elapsed, stored) = runtime.block_on(async {
            let desk = Desk::open(Paths::under(&home), Config::default()).expect("the desk opens");
            let pages = Canned {
                account: account.to_owned(),
                pages: &pages,
            };
            let start = Instant::now();
            let mut stored = 0;
            while stored < n {
                let reports = desk.poll_account(&pages, 0, &|_| {}).await;
                for r in reports {
                    assert_eq!(r.error, None, "the poll stores every page");
                    assert!(r.new > 0, "each round stores something");
                    stored += r.new;
                }
            }
            desk.store
                .call(|s| s.checkpoint())
                .await
                .expect("checkpoints");
            (start.elapsed(), stored)
        });
        ours.push(n as f64 / elapsed.as_secs_f64());
        assert_eq!(stored, n, "every mention stored");
        let ours_db = Paths::under(&home).database;
        let ddl = mentions_ddl(&ours_db);
        let _ = std::fs::remove_dir_all(&home);

        fresh_db(&raw_db);
        let mut conn = raw_connection(&raw_db, &ddl);
        settle();
        raw.push(raw_insert(&mut conn, &rows, PAGE));
        drop(conn);
        fresh_db(&raw_db);
        let mut conn = raw_connection(&raw_db, &ddl);
        settle();
        raw_grouped.push(raw_insert(&mut conn, &rows, GROUP_PAGES * PAGE));
        if std::env::args().any(|a| a == "--breakdown") {
            breakdown(&raw_db, &ddl, &rows);
        }
    }
    fresh_db(&raw_db);
    Ingest {
        parse,
        classify,
        store: store_only,
        ours,
        raw,
        raw_grouped,
    }
}

/// A fresh database for the raw insert: the mentions table's definition, the store's pragmas.
fn raw_connection(db: &Path, ddl: &str) -> Connection {
    let conn = Connection::open(db).expect("opens");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("pragma");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("pragma");
    // The rows' accounts and authors are not in this database: no foreign key checks.
    conn.pragma_update(None, "foreign_keys", "OFF")
        .expect("pragma");
    conn.execute_batch(ddl).expect("the same table");
    conn
}

/// Inserts `rows`, `per_tx` a transaction; rows a second.
fn raw_insert(conn: &mut Connection, rows: &[RawRow], per_tx: usize) -> f64 {
    let start = Instant::now();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction().expect("tx");
        {
            let mut stmt = tx.prepare_cached(RAW_INSERT).expect("prepares");
            for r in chunk {
                r.insert(&mut stmt);
            }
        }
        tx.commit().expect("commits");
    }
    rows.len() as f64 / start.elapsed().as_secs_f64()
}

/// Where the store's time goes: the raw insert with one of the store's extra parts added.
fn breakdown(db: &Path, ddl: &str, rows: &[RawRow]) {
    let variants: [(&str, &str, bool, bool); 5] = [
        ("raw", "", false, false),
        (
            "+ full-text index (contentless)",
            "CREATE VIRTUAL TABLE mention_fts USING fts5 (text, handle, content = '', columnsize = 0);",
            false,
            false,
        ),
        (
            "+ full-text index (with content)",
            "CREATE VIRTUAL TABLE mention_fts USING fts5 (text, handle);",
            false,
            false,
        ),
        ("+ author lookup", "", true, false),
        ("+ foreign keys", "", false, true),
    ];
    for (name, fts, author, fk) in variants {
        fresh_db(db);
        let mut conn = Connection::open(db).expect("opens");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("pragma");
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("pragma");
        conn.pragma_update(None, "foreign_keys", if fk { "ON" } else { "OFF" })
            .expect("pragma");
        conn.execute_batch(
            "CREATE TABLE accounts (name TEXT PRIMARY KEY);
             CREATE TABLE authors (id INTEGER PRIMARY KEY, platform TEXT NOT NULL, handle TEXT NOT NULL,
                 UNIQUE (platform, handle));",
        )
        .expect("tables");
        conn.execute_batch(ddl).expect("the same table");
        conn.execute_batch(fts).expect("fts");
        {
            let tx = conn.transaction().expect("tx");
            for a in ["demo-x", "demo-mastodon", "demo-bluesky"] {
                tx.execute("INSERT INTO accounts (name) VALUES (?1)", [a])
                    .expect("account");
            }
            let mut seen = std::collections::HashSet::new();
            for r in rows {
                if seen.insert(r.author_id) {
                    tx.execute(
                        "INSERT INTO authors (id, platform, handle) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                        rusqlite::params![r.author_id, r.platform, r.handle],
                    )
                    .expect("author");
                }
            }
            tx.commit().expect("commits");
        }
        let start = Instant::now();
        for chunk in rows.chunks(PAGE) {
            let tx = conn.transaction().expect("tx");
            {
                let mut stmt = tx.prepare_cached(RAW_INSERT).expect("prepares");
                for r in chunk {
                    if author {
                        let _: i64 = tx
                            .prepare_cached(
                                "SELECT id FROM authors WHERE platform = ?1 AND handle = ?2",
                            )
                            .expect("prepares")
                            .query_row(rusqlite::params![r.platform, r.handle], |x| x.get(0))
                            .unwrap_or(0);
                    }
                    r.insert(&mut stmt);
                    if !fts.is_empty() {
                        tx.prepare_cached(
                            "INSERT INTO mention_fts (rowid, text, handle) VALUES (?1, ?2, ?3)",
                        )
                        .expect("prepares")
                        .execute(rusqlite::params![tx.last_insert_rowid(), r.text, r.handle])
                        .expect("fts");
                    }
                }
            }
            tx.commit().expect("commits");
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "   breakdown: {name:<34} {:>8.0} rows/s  {:>6.1} µs a row",
            rows.len() as f64 / secs,
            secs * 1e6 / rows.len() as f64
        );
    }
}

/// Writes what earlier parts left in the page cache out to the disk before a part is timed, so
/// that no part pays for another's writeback.
fn settle() {
    // SAFETY: `sync` takes nothing and cannot fail.
    unsafe { libc::sync() };
}

/// Runs `f` (which handles `n` mentions) three times; the median rate.
fn rate(n: usize, mut f: impl FnMut()) -> f64 {
    let runs: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(runs)
}

/// The store's own definition of `mentions` and its indexes.
fn mentions_ddl(db: &Path) -> String {
    let conn = Connection::open(db).expect("opens");
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'mentions' AND sql IS NOT NULL ORDER BY type DESC")
        .expect("prepares");
    let parts: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("reads");
    parts.join(";\n") + ";"
}

/// Serves pre-made Mastodon notification pages: a fetch is the connector's parse of the next
/// body (the cursor is the page's index), so ingest is measured without the network.
struct Canned<'p> {
    account: String,
    pages: &'p [String],
}

#[async_trait::async_trait]
impl Connector for Canned<'_> {
    fn platform(&self) -> Platform {
        Platform::Mastodon
    }
    fn account(&self) -> &str {
        &self.account
    }
    fn streams(&self) -> Vec<String> {
        vec!["mentions".into()]
    }
    async fn fetch(&self, _stream: &str, cursor: Option<&str>) -> Result<FetchPage, PlatformError> {
        let i: usize = cursor.map_or(0, |c| c.parse().expect("a page index"));
        let mut page = mastodon::parse_page(&self.account, &self.pages[i], None)?;
        page.cursor = Some((i + 1).to_string());
        page.more = i + 1 < self.pages.len();
        Ok(page)
    }
    async fn send(&self, _: &Outgoing<'_>) -> Result<Sent, PlatformError> {
        Err(PlatformError::Unsupported("sending from the bench"))
    }
    async fn act(&self, _: ModAction, _: &Mention) -> Result<(), PlatformError> {
        Err(PlatformError::Unsupported("acting from the bench"))
    }
    async fn find_sent(&self, _: &Outgoing<'_>) -> Result<Option<Sent>, PlatformError> {
        Err(PlatformError::Unsupported(
            "looking up sends from the bench",
        ))
    }
}

const RAW_INSERT: &str = "INSERT INTO mentions (platform, account, remote_id, author_id, text,
    created_at, fetched_at, url, in_reply_to, parent_text, reply_ref, private, tone, flags,
    confidence, reasons, tag_source, rank, moderation, due_at, ae_due_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
    ?20, ?21)";

struct RawRow {
    handle: String,
    platform: &'static str,
    account: String,
    remote_id: String,
    author_id: i64,
    text: String,
    created_at: i64,
    fetched_at: i64,
    url: Option<String>,
    in_reply_to: Option<String>,
    parent_text: Option<String>,
    reply_ref: Option<String>,
    private: bool,
    tone: &'static str,
    flags: u8,
    confidence: f32,
    reasons: String,
    rank: u8,
    moderation: bool,
    due_at: i64,
    ae_due_at: Option<i64>,
}

impl RawRow {
    fn new(
        m: &IncomingMention,
        tags: &Tags,
        author_id: i64,
        targets: &Targets,
        now: OffsetDateTime,
    ) -> RawRow {
        RawRow {
            handle: m.author.handle.clone(),
            platform: m.platform.as_str(),
            account: m.account.clone(),
            remote_id: m.remote_id.clone(),
            author_id,
            text: m.text.clone(),
            created_at: m.created_at.unix_timestamp(),
            fetched_at: now.unix_timestamp(),
            url: m.url.clone(),
            in_reply_to: m.in_reply_to.clone(),
            parent_text: m.parent_text.clone(),
            reply_ref: m.reply_ref.clone(),
            private: m.private,
            tone: tags.tone.as_str(),
            flags: tags.flags.bits(),
            confidence: tags.confidence,
            reasons: serde_json::to_string(&tags.reasons).expect("json"),
            rank: playbook::urgency_rank(tags),
            moderation: playbook::lane(tags) == playbook::Lane::Moderation,
            due_at: targets.due_at(m.created_at, tags).unix_timestamp(),
            ae_due_at: tags
                .flags
                .contains(tonedesk::domain::Flag::Ae)
                .then(|| targets.ae_report_due(m.created_at).unix_timestamp()),
        }
    }

    fn insert(&self, stmt: &mut rusqlite::CachedStatement<'_>) {
        stmt.execute(rusqlite::params![
            self.platform,
            self.account,
            self.remote_id,
            self.author_id,
            self.text,
            self.created_at,
            self.fetched_at,
            self.url,
            self.in_reply_to,
            self.parent_text,
            self.reply_ref,
            self.private,
            self.tone,
            self.flags,
            self.confidence,
            self.reasons,
            "classifier",
            self.rank,
            self.moderation,
            self.due_at,
            self.ae_due_at,
        ])
        .expect("inserts");
    }
}

// ───────────────────────────── caches ─────────────────────────────

/// The database of a generated cache of `n` mentions, made when missing (or `fresh`).
fn cache(dir: &Path, n: usize, fresh: bool) -> PathBuf {
    let home = dir.join(format!("cache-{n}"));
    let db = home.join("tonedesk.db");
    let marker = home.join("generated");
    if fresh || !marker.exists() {
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("the cache folder can be made");
        let start = Instant::now();
        eprintln!("generating {n} mentions into {} …", home.display());
        let mut store = Store::open(&db).expect("opens");
        generate::demo_accounts(&mut store).expect("accounts");
        let classifier = Classifier::new(Config::default().tone_config());
        let p = generate::populate(
            &mut store,
            &classifier,
            SEED,
            OffsetDateTime::now_utc(),
            n,
            &mut |_| {},
        )
        .expect("the cache is generated");
        drop(store);
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "  {} mentions in {secs:.1}s ({:.0}/s): {} answered, {} open, {} snoozed, {} AE reports",
            p.mentions,
            p.mentions as f64 / secs,
            p.done,
            p.open,
            p.snoozed,
            p.ae_cases
        );
        std::fs::write(&marker, format!("{n} mentions, seed {SEED}\n")).expect("marker");
    }
    db
}

// ───────────────────────────── 2 and 3. The console ─────────────────────────────

#[derive(Debug, Default)]
struct Figures {
    key_med: f64,
    key_load_med: f64,
    key_max: f64,
    queue_med: f64,
    filtered_med: f64,
    start_ms: f64,
    hwm_kb: f64,
    full_bytes: f64,
    full_closed_bytes: f64,
    j_bytes: f64,
    j_p90: f64,
    j_closed_bytes: f64,
    j_closed_p90: f64,
    /// The same through ratatui's CrosstermBackend.
    ct_full_bytes: f64,
    ct_full_closed_bytes: f64,
    ct_j_bytes: f64,
    ct_j_closed_bytes: f64,
}

const FIELDS: usize = 17;

impl Figures {
    fn values(&self) -> [f64; FIELDS] {
        [
            self.key_med,
            self.key_load_med,
            self.key_max,
            self.queue_med,
            self.filtered_med,
            self.start_ms,
            self.hwm_kb,
            self.full_bytes,
            self.full_closed_bytes,
            self.j_bytes,
            self.j_p90,
            self.j_closed_bytes,
            self.j_closed_p90,
            self.ct_full_bytes,
            self.ct_full_closed_bytes,
            self.ct_j_bytes,
            self.ct_j_closed_bytes,
        ]
    }

    fn line(&self) -> String {
        let v: Vec<String> = self.values().iter().map(|x| x.to_string()).collect();
        format!("FIGURES {}", v.join(" "))
    }

    fn parse(line: &str) -> Option<Figures> {
        let v: Vec<f64> = line
            .strip_prefix("FIGURES ")?
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        (v.len() == FIELDS).then(|| Figures {
            key_med: v[0],
            key_load_med: v[1],
            key_max: v[2],
            queue_med: v[3],
            filtered_med: v[4],
            start_ms: v[5],
            hwm_kb: v[6],
            full_bytes: v[7],
            full_closed_bytes: v[8],
            j_bytes: v[9],
            j_p90: v[10],
            j_closed_bytes: v[11],
            j_closed_p90: v[12],
            ct_full_bytes: v[13],
            ct_full_closed_bytes: v[14],
            ct_j_bytes: v[15],
            ct_j_closed_bytes: v[16],
        })
    }
}

fn run_child(db: &Path) -> Figures {
    let exe = std::env::current_exe().expect("the bench knows its path");
    let out = Command::new(exe)
        .arg("--child")
        .arg(db)
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(Figures::parse)
        .expect("the child reports its figures")
}

/// A writer that counts what it is given, and keeps it only while asked to.
#[derive(Clone, Default)]
struct Counter(Rc<Cell<usize>>, Rc<RefCell<Option<Vec<u8>>>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.set(self.0.get() + buf.len());
        if let Some(kept) = self.1.borrow_mut().as_mut() {
            kept.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The console's terminal: its backend, on a screen of COLS x LINES.
type Term = Terminal<LeanBackend<Counter>>;

fn lean_term(bytes: &Counter) -> Term {
    Terminal::with_options(
        LeanBackend::headless(bytes.clone(), Size::new(COLS, LINES)),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, COLS, LINES)),
        },
    )
    .expect("a terminal")
}

/// ratatui's own backend on the same screen, for comparison.
fn crossterm_term(bytes: &Counter) -> Terminal<CrosstermBackend<Counter>> {
    Terminal::with_options(
        CrosstermBackend::new(bytes.clone()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, COLS, LINES)),
        },
    )
    .expect("a terminal")
}

struct Console {
    store: Store,
    state: AppState,
    keys: KeyMap,
    vs: ViewState,
    term: Term,
    bytes: Counter,
    /// When set, every frame is drawn through CrosstermBackend too (part 3 only: part 2 times
    /// the console's own frames).
    crossterm: Option<(Terminal<CrosstermBackend<Counter>>, Counter)>,
}

impl Console {
    /// Opens the store and draws the first full frame, as the console starts; returns the
    /// console and what its first page asked for next (the rest of the window, which the
    /// console's worker reads after that frame).
    fn start(db: &Path, library: Arc<Library>) -> (Console, Vec<Effect>) {
        let store = Store::open(db).expect("the store opens");
        let keys = KeyMap::new(&Config::default().keys).expect("default keys");
        let bytes = Counter::default();
        let mut term = lean_term(&bytes);
        // The console clears the screen it starts on.
        term.backend_mut().clear().expect("clears");
        let state = AppState::new(
            "Acme Pharma".into(),
            true,
            library,
            OffsetDateTime::now_utc(),
        );
        let mut c = Console {
            store,
            state,
            keys,
            vs: ViewState::default(),
            term,
            bytes,
            crossterm: None,
        };
        // Paint first (as the console does), then the first page, then the full frame.
        c.draw();
        let fx = c.state.start();
        let (next, _) = c.perform_once(fx);
        c.draw();
        c.state.dirty = false;
        (c, next)
    }

    /// The rest of the start: what the first page asked for, and its frame.
    fn settle(&mut self, next: Vec<Effect>) {
        self.perform(next);
        self.draw();
        self.state.dirty = false;
    }

    /// Runs the page loads among `fx` as the worker would, feeding the answers back.
    fn perform(&mut self, fx: Vec<Effect>) -> bool {
        let mut loaded = false;
        let mut pending = fx;
        while !pending.is_empty() {
            let (again, any) = self.perform_once(pending);
            loaded |= any;
            pending = again;
        }
        loaded
    }

    /// Runs the page loads among `fx` once; returns the effects their answers asked for.
    fn perform_once(&mut self, fx: Vec<Effect>) -> (Vec<Effect>, bool) {
        let mut loaded = false;
        let mut next = Vec::new();
        for e in fx {
            if let Effect::LoadPage {
                query,
                offset,
                near,
                limit,
            } = e
            {
                loaded = true;
                let (offset, rows, total, counts, crisis) =
                    load_page(&mut self.store, &query, offset, near, limit)
                        .expect("the page loads");
                next.extend(self.state.update(Action::Page {
                    query,
                    offset,
                    rows,
                    total,
                    counts,
                    crisis,
                }));
            }
        }
        (next, loaded)
    }

    fn draw(&mut self) {
        let (s, keys, vs) = (&self.state, &self.keys, &mut self.vs);
        let frame = self
            .term
            .draw(|f| view::draw(f, s, keys, Theme { color: true }, vs))
            .expect("draws");
        if let Some((ct, _)) = &mut self.crossterm {
            let buffer = frame.buffer.clone();
            ct.draw(|f| *f.buffer_mut() = buffer).expect("draws");
        }
    }

    /// The bytes written through CrosstermBackend so far.
    fn crossterm_bytes(&self) -> usize {
        self.crossterm.as_ref().map_or(0, |(_, b)| b.0.get())
    }

    /// A key press to its finished frame: the time, whether it loaded a page, the bytes written.
    fn press(&mut self, action: Action) -> (Duration, bool, usize) {
        let before = self.bytes.0.get();
        let start = Instant::now();
        let fx = self.state.update(action);
        let loaded = self.perform(fx);
        if self.state.dirty {
            self.draw();
            self.state.dirty = false;
        }
        (start.elapsed(), loaded, self.bytes.0.get() - before)
    }

    /// The bytes of a full redraw of the same screen: the screen cleared (`ESC [2J`) and every
    /// cell drawn again, as after a resize or `terminal.clear()`. (A fresh terminal of the same
    /// size holds nothing, so its first frame is that redraw; `clear()` itself would ask the real
    /// terminal where its cursor is.)
    fn full_redraw_bytes(&mut self) -> usize {
        let counter = Counter::default();
        let mut term = lean_term(&counter);
        term.backend_mut().clear().expect("clears");
        let (s, keys, vs) = (&self.state, &self.keys, &mut self.vs);
        term.draw(|f| view::draw(f, s, keys, Theme { color: true }, vs))
            .expect("draws");
        counter.0.get()
    }

    /// The same through CrosstermBackend, whose terminal then follows every frame (see
    /// `crossterm_bytes`).
    fn crossterm_full_redraw_bytes(&mut self) -> usize {
        let mut counter = Counter::default();
        counter.write_all(b"\x1b[2J").expect("counts");
        let mut term = crossterm_term(&counter);
        let (s, keys, vs) = (&self.state, &self.keys, &mut self.vs);
        term.draw(|f| view::draw(f, s, keys, Theme { color: true }, vs))
            .expect("draws");
        let full = counter.0.get();
        self.crossterm = Some((term, counter));
        full
    }
}

fn library() -> Arc<Library> {
    let mut lib = Library::default();
    let mut errors = Vec::new();
    for (name, text) in STARTER {
        lib.add_file(Path::new(name), text, &mut errors);
    }
    Arc::new(lib)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Measures one cache in this process.
fn child(db: &Path) -> Figures {
    // Start to the first full frame, five times.
    let mut starts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (c, _) = Console::start(db, library());
        starts.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(!c.state.rows.is_empty(), "the queue has rows");
    }
    let (mut c, next) = Console::start(db, library());
    c.settle(next);

    // The Done view holds nearly the whole cache: 400 presses down from its top, then 400 up
    // from its far end; several of them load the next page.
    while c.state.query.view != View::Done {
        c.press(Action::SwitchView);
    }
    let (mut all, mut loads) = (Vec::new(), Vec::new());
    let mut walk = |c: &mut Console, action: Action| {
        let (t, loaded, _) = c.press(action);
        all.push(micros(t));
        if loaded {
            loads.push(micros(t));
        }
    };
    for _ in 0..400 {
        walk(&mut c, Action::Down);
    }
    c.press(Action::Bottom);
    for _ in 0..400 {
        walk(&mut c, Action::Up);
    }
    let key_max = all.iter().copied().fold(0.0, f64::max);

    // The same view narrowed to one platform (a third of it): 200 presses down from the top.
    while c.state.query.filter != Some(Filter::Platform(Platform::X)) {
        c.press(Action::Filter);
    }
    let filtered: Vec<f64> = (0..200).map(|_| micros(c.press(Action::Down).0)).collect();
    c.press(Action::Back); // clears the filter

    // The open queue, down from its top (at 1,000 mentions it holds a handful).
    while c.state.query.view != View::Queue {
        c.press(Action::SwitchView);
    }
    let queue: Vec<f64> = (0..100).map(|_| micros(c.press(Action::Down).0)).collect();

    // Bytes: at the top of the queue, a full redraw, then j presses.
    c.press(Action::Top);
    let full = c.full_redraw_bytes();
    let ct_full = c.crossterm_full_redraw_bytes();
    let (mut j, mut ct_j) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let before = c.crossterm_bytes();
        j.push(c.press(Action::Down).2 as f64);
        ct_j.push((c.crossterm_bytes() - before) as f64);
    }
    if let Some(path) = std::env::var_os("TONEDESK_SCALE_DUMP_J") {
        // What one `j` writes (detail pane open), for a look at where its bytes go.
        *c.bytes.1.borrow_mut() = Some(Vec::new());
        c.press(Action::Down);
        let kept = c.bytes.1.borrow_mut().take().unwrap_or_default();
        std::fs::write(path, kept).expect("the dump is written");
    }
    c.press(Action::Top);
    c.press(Action::Open); // closes the detail pane
    let full_closed = c.full_redraw_bytes();
    let ct_full_closed = c.crossterm_full_redraw_bytes();
    let (mut j_closed, mut ct_j_closed) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let before = c.crossterm_bytes();
        j_closed.push(c.press(Action::Down).2 as f64);
        ct_j_closed.push((c.crossterm_bytes() - before) as f64);
    }

    Figures {
        key_med: median(all),
        key_load_med: median(loads),
        key_max,
        queue_med: median(queue),
        filtered_med: median(filtered),
        start_ms: median(starts),
        hwm_kb: vm_hwm_kb(),
        full_bytes: full as f64,
        full_closed_bytes: full_closed as f64,
        j_bytes: median(j.clone()),
        j_p90: percentile(j, 0.9),
        j_closed_bytes: median(j_closed.clone()),
        j_closed_p90: percentile(j_closed, 0.9),
        ct_full_bytes: ct_full as f64,
        ct_full_closed_bytes: ct_full_closed as f64,
        ct_j_bytes: median(ct_j),
        ct_j_closed_bytes: median(ct_j_closed),
    }
}

fn vm_hwm_kb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}
