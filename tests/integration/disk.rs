//! A home on a full disk or a read-only one (issue 6): a clear message, no half-written state.
//! The home lives on a small tmpfs mounted for the test (root only: it is in CI; elsewhere a test
//! that cannot mount says why and skips), filled up with a ballast file or remounted read-only,
//! and always unmounted by a guard, even when an assertion fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::crash_storm::{self, MENTIONS, td};
use crate::{stderr, stdout};

/// Bytes left free on the "full" disk.
const LEAVE: u64 = 192 * 1024;

/// A tmpfs mounted on a temporary folder; unmounted when dropped.
struct Mount {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

fn mount(args: &[&str]) -> Result<(), String> {
    let o = Command::new("mount")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl Mount {
    /// A tmpfs of `size` (as `mount -o size=` takes it), or why there is none. Without one the
    /// test fails in CI (`CI` set) and is skipped elsewhere.
    fn tmpfs(size: &str) -> Option<Mount> {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).expect("mount point");
        let opts = format!("size={size},mode=0700");
        match mount(&[
            "-t",
            "tmpfs",
            "-o",
            &opts,
            "tmpfs",
            dir.to_str().expect("path"),
        ]) {
            Ok(()) => Some(Mount {
                dir,
                _parent: parent,
            }),
            Err(why) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a tmpfs (run as root): {why}"
                );
                eprintln!("SKIPPED: cannot mount a tmpfs: {why}");
                None
            }
        }
    }

    fn remount(&self, opts: &str) {
        let opts = format!("remount,{opts}");
        mount(&["-o", &opts, self.dir.to_str().expect("path")]).expect("remount");
    }

    /// Fills the file system up with a ballast file, leaving `leave` bytes free or less.
    fn fill(&self, leave: u64) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("ballast")).expect("ballast");
        let block = vec![0x5a_u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        f.set_len(written.saturating_sub(leave))
            .expect("trim the ballast");
        f.sync_all().expect("sync");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let dir = self.dir.to_str().expect("path");
        let done = Command::new("umount")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Something still holds it open: detach it now, it goes when released.
            let _ = Command::new("umount").args(["-l", dir]).status();
        }
    }
}

/// A command's output, off the async runtime the fake server lives on.
async fn run(h: &Path, args: &[&str]) -> Output {
    let mut c = td(h);
    c.args(args);
    crate::output_off_runtime(c).await
}

async fn ok(h: &Path, args: &[&str]) -> String {
    let o = run(h, args).await;
    assert!(
        o.status.success(),
        "tonedesk {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// No panic, no backtrace: the words a person reads.
fn no_traceback(o: &Output) {
    let all = format!("{}{}", stdout(o), stderr(o));
    assert!(
        !all.contains("panicked")
            && !all.contains("RUST_BACKTRACE")
            && !all.contains("stack backtrace"),
        "{all}"
    );
}

/// The cache, read-only, with its full-text index file attached as `search`.
fn db(h: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(
        h.join("tonedesk.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the database");
    c.execute(
        "ATTACH DATABASE ?1 AS search",
        [h.join("tonedesk-search.db").to_string_lossy()],
    )
    .expect("attach the index");
    c
}

/// `PRAGMA integrity_check`, the cached mentions' remote ids, and whether each has its
/// full-text row and author; the mention cursor.
fn cache(h: &Path) -> (String, Vec<String>, Option<String>) {
    let c = db(h);
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let column = |sql: &str| -> Vec<String> {
        let mut st = c.prepare(sql).expect("prepare");
        st.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let whole = column(
        "SELECT m.remote_id FROM mentions m JOIN authors a ON a.id = m.author_id
         ORDER BY m.remote_id",
    );
    let all = column("SELECT remote_id FROM mentions ORDER BY remote_id");
    assert_eq!(all, whole, "a mention without its author");
    // Every mention says "copay": the text index finds each stored one it says it holds (up
    // to `fts_progress.upto`; the index is written in batches, and a round that ends in a
    // failure leaves the newest for the next batch), and nothing else.
    let mut indexed = column(
        "SELECT CAST(rowid AS TEXT) FROM search.mention_fts WHERE mention_fts MATCH 'copay'",
    );
    let mut ids = column(
        "SELECT CAST(id AS TEXT) FROM mentions WHERE id <= (SELECT upto FROM search.fts_progress)",
    );
    indexed.sort();
    ids.sort();
    assert_eq!(
        indexed, ids,
        "the text index holds exactly the stored mentions up to its mark"
    );
    let cursor = c
        .query_row(
            "SELECT cursor FROM cursors WHERE account = 'care' AND stream = 'mentions'",
            [],
            |r| r.get(0),
        )
        .ok();
    (check, whole, cursor)
}

fn mention_remote(i: usize) -> String {
    (113_600_000_000_000 + 11 * i as u64).to_string()
}

fn note_id(i: usize) -> u64 {
    120_000_000_000 + 3 * i as u64
}

/// The mentions a cursor covers: every notification up to it, none after.
fn covered(cursor: Option<&str>) -> Vec<String> {
    let c: u64 = cursor.map_or(0, |c| c.parse().expect("a numeric cursor"));
    let mut v: Vec<String> = (0..MENTIONS)
        .filter(|&i| note_id(i) <= c)
        .map(mention_remote)
        .collect();
    v.sort();
    v
}

fn audit_entries(h: &Path) -> i64 {
    db(h)
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_during_poll_and_reply_says_so_and_loses_nothing() {
    let Some(m) = Mount::tmpfs("6m") else { return };
    let (base, server) = crash_storm::start(11, 40, false).await;
    let h = m.dir.join("home");
    crash_storm::configure(&h, &base);
    let first = run(&h, &["poll", "--once"]).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let q: Vec<Value> = serde_json::from_str(&ok(&h, &["queue", "--json"]).await).expect("json");
    assert_eq!(q.len(), 40);
    let target = q[0]["id"].as_i64().expect("id").to_string();

    // The rest arrive while the disk is nearly full: room to open the database (its WAL index
    // takes 32 KiB) and store a page or two, not all of them.
    m.fill(LEAVE);
    server.lock().expect("server").visible = MENTIONS;
    let o = run(&h, &["poll", "--once"]).await;
    println!("poll on a full disk:\n{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "a poll that could not store must fail");
    no_traceback(&o);
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        said.contains(&format!(
            "the disk is full: free some space in {}",
            h.display()
        )),
        "{said}"
    );

    // A reply on the full disk: refused before anything leaves, nothing written.
    let o = run(
        &h,
        &["reply", &target, "--template", "complaint-ack", "--yes"],
    )
    .await;
    println!("reply on a full disk:\n{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success());
    no_traceback(&o);
    assert!(
        stderr(&o).contains(&format!(
            "the disk is full: free some space in {}",
            h.display()
        )),
        "{}",
        stderr(&o)
    );
    assert!(
        server.lock().expect("server").posts.is_empty(),
        "nothing was posted"
    );
    let v = run(&h, &["audit", "verify"]).await;
    println!("audit verify on a full disk:\n{}{}", stdout(&v), stderr(&v));
    no_traceback(&v);

    // Space again. Reading the database needs room for its WAL index, so what the full disk
    // left behind is looked at now, before any command runs again.
    m.remount("size=64m");
    let (check, cached, cursor) = cache(&h);
    assert_eq!(check, "ok");
    println!("stored on the full disk: {} of {MENTIONS}", cached.len());
    assert!(cached.len() < MENTIONS, "the full disk stopped the ingest");
    assert_eq!(
        cached,
        covered(cursor.as_deref()),
        "the cursor covers what is stored, no more"
    );
    assert_eq!(audit_entries(&h), 0, "no audit entry half-written");
    let outbox: i64 = db(&h)
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("outbox");
    assert_eq!(outbox, 0, "no outbox row");
    let v = ok(&h, &["audit", "verify"]).await;
    assert!(v.contains("intact: 0 entries"), "{v}");

    // The same commands succeed, nothing lost or doubled.
    let o = ok(&h, &["poll", "--once"]).await;
    assert!(o.contains("care mentions:"), "{o}");
    let (check, cached, cursor) = cache(&h);
    assert_eq!(check, "ok");
    let unindexed: i64 = db(&h)
        .query_row(
            "SELECT count(*) FROM mentions WHERE id > (SELECT upto FROM search.fts_progress)",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(unindexed, 0, "a round that caught up indexed every mention");
    let mut all: Vec<String> = (0..MENTIONS).map(mention_remote).collect();
    all.sort();
    assert_eq!(cached, all, "every mention once");
    assert_eq!(covered(cursor.as_deref()), all);
    let o = ok(
        &h,
        &["reply", &target, "--template", "complaint-ack", "--yes"],
    )
    .await;
    assert!(o.starts_with("sent:"), "{o}");
    assert_eq!(server.lock().expect("server").posts.len(), 1, "one post");
    let v = ok(&h, &["audit", "verify"]).await;
    assert!(v.contains("intact: 2 entries"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_home_is_named_and_nothing_is_sent() {
    let Some(m) = Mount::tmpfs("16m") else { return };
    let (base, server) = crash_storm::start(12, 40, false).await;
    let h = m.dir.join("home");
    crash_storm::configure(&h, &base);
    ok(&h, &["poll", "--once"]).await;
    let q: Vec<Value> = serde_json::from_str(&ok(&h, &["queue", "--json"]).await).expect("json");
    let target = q[0]["id"].as_i64().expect("id").to_string();
    m.remount("ro");
    let read_only = format!("the tonedesk home {} is read-only", h.display());

    let o = run(&h, &["queue", "--json"]).await;
    println!(
        "queue --json on a read-only home:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    no_traceback(&o);
    if o.status.success() {
        let q2: Vec<Value> = serde_json::from_str(&stdout(&o)).expect("json");
        assert_eq!(q2.len(), q.len());
    } else {
        assert!(stderr(&o).contains(&read_only), "{}", stderr(&o));
    }
    for args in [
        &["reply", &target, "--template", "complaint-ack", "--yes"][..],
        &["poll", "--once"],
        &[],
    ] {
        let o = run(&h, args).await;
        println!(
            "{args:?} on a read-only home:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(!o.status.success(), "{args:?}");
        no_traceback(&o);
        assert!(
            format!("{}{}", stdout(&o), stderr(&o)).contains(&read_only),
            "{args:?}: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("remount it read-write"),
            "{}",
            stderr(&o)
        );
    }
    // The console as a person opens it: the message on the terminal, no crash.
    if crate::tmux::have_tmux() {
        let program = format!(
            "env USER=tester TONEDESK_TEST_TOKEN={} {} --home {}; echo \"[exit $?]\"; sleep 30",
            crash_storm::TOKEN,
            env!("CARGO_BIN_EXE_tonedesk"),
            h.display()
        );
        let t = crate::tmux::Tmux::start_program(&program, 200, 20);
        let screen = t.wait_for(&["[exit 1]"]);
        let flat = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("is read-only: remount it read-write"),
            "{screen}"
        );
        assert!(!flat.contains("panicked"), "{screen}");
    }
    assert!(
        server.lock().expect("server").posts.is_empty(),
        "nothing was posted"
    );
    m.remount("rw");
    let v = ok(&h, &["audit", "verify"]).await;
    assert!(v.contains("intact: 0 entries"), "{v}");
}
