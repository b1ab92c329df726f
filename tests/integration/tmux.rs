//! The console driven through tmux as a person would: open the demo, reply to the first mention
//! with `r`, `Enter`, `y`, quit with `q`, then check the audit trail.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{home, ok};

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A private tmux server with one session whose pane runs a program; killed on drop.
pub(crate) struct Tmux {
    socket: String,
    pub(crate) session: String,
}

impl Tmux {
    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(home: &Path, width: u16, height: u16) -> Tmux {
        Tmux::start_with(home, width, height, "")
    }

    /// Starts the console with extra `NAME=value` words in its environment.
    fn start_with(home: &Path, width: u16, height: u16, env: &str) -> Tmux {
        let program = format!(
            "env -u NO_COLOR -u SSH_CONNECTION -u SSH_TTY USER=tester TONEDESK_HOME={} {env} {}",
            home.display(),
            env!("CARGO_BIN_EXE_tonedesk")
        );
        Tmux::start_program(&program, width, height)
    }

    /// Starts `program` (a shell command line) in the pane.
    pub(crate) fn start_program(program: &str, width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: format!(
                "tonedesk-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            session: "desk".into(),
        };
        let status = t
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", &t.session])
            .args(["-x", &width.to_string(), "-y", &height.to_string(), program])
            .status()
            .expect("start tmux");
        assert!(status.success());
        t
    }

    pub(crate) fn keys(&self, keys: &str) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .expect("send-keys")
            .success();
        assert!(ok);
    }

    pub(crate) fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes (`capture-pane -e`).
    pub(crate) fn styled_screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-e", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The styled screen once it differs from `before` and has stopped changing.
    fn styled_change(&self, before: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = self.styled_screen();
        while last == before {
            assert!(
                Instant::now() < deadline,
                "the screen never changed:\n{last}"
            );
            std::thread::sleep(Duration::from_millis(50));
            last = self.styled_screen();
        }
        loop {
            std::thread::sleep(Duration::from_millis(150));
            let now = self.styled_screen();
            if now == last {
                return now;
            }
            last = now;
        }
    }

    /// Waits until the screen no longer shows `needle`.
    pub(crate) fn wait_gone(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.screen().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "screen kept showing {needle:?}:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Resizes the window and waits for a frame that shows `needle` and uses the new width (the
    /// frame from before the resize may show `needle` too).
    pub(crate) fn resize(&self, width: u16, height: u16, needle: &str) -> String {
        let resized = self
            .cmd()
            .args(["resize-window", "-t", &self.session])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .status()
            .expect("resize")
            .success();
        assert!(resized);
        self.wait_until(&format!("{needle:?} at {width} columns"), |s| {
            s.contains(needle)
                && s.lines()
                    .any(|l| l.trim_end().chars().count() > usize::from(width) - 10)
        })
    }

    fn pane_title(&self) -> String {
        let out = self
            .cmd()
            .args([
                "display-message",
                "-p",
                "-t",
                &self.session,
                "#{pane_title}",
            ])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", &self.session])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Waits until the screen shows every one of `needles`.
    pub(crate) fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_until(&format!("{needles:?}"), |s| {
            needles.iter().all(|n| s.contains(n))
        })
    }

    /// Waits until the screen passes `test`; `what` names it when it never does.
    pub(crate) fn wait_until(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if test(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

/// Whether tmux is here; without it a test says it skipped, except in CI, where it fails.
pub(crate) fn have_tmux() -> bool {
    let here = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install tmux (.ci/run does)"
        );
        eprintln!("SKIPPED: tmux is not installed");
    }
    here
}

#[test]
fn reply_to_the_first_mention_in_the_console() {
    if !have_tmux() {
        return;
    }
    let (_d, h) = home();
    let t = Tmux::start(&h, 100, 30);
    let first = t.wait_for(&["DEMO", "Queue — ", "polled", "Mention "]);
    // The detail pane names the selected (first) mention.
    let id: i64 = first
        .split("Mention ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no detail pane:\n{first}"));

    t.keys("r");
    t.wait_for(&["Approved replies"]);
    t.keys("Enter");
    let preview = t.wait_for(&["Preview", "y send"]);
    assert!(preview.contains("length "), "{preview}");
    t.keys("y");
    t.wait_for(&["reply sent to mention"]);
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() {
        assert!(Instant::now() < deadline, "q did not quit:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }

    let audit: Vec<serde_json::Value> = ok(&h, &["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["action"], "send_intent");
    assert_eq!(audit[1]["action"], "send_result");
    assert_eq!(audit[1]["outcome"], "sent");
    for e in &audit {
        assert_eq!(e["mention"], id);
        assert!(e["template"].is_string() && e["approval"].is_string() && e["text"].is_string());
        assert!(e["template_version"].is_number());
    }
    assert!(ok(&h, &["audit", "verify"]).contains("intact: 2 entries"));
}

#[test]
fn the_console_follows_a_resize_and_moves_with_keys() {
    if !have_tmux() {
        return;
    }
    let (_d, h) = home();
    let t = Tmux::start(&h, 80, 24);
    t.wait_for(&["DEMO", "Queue — "]);
    t.keys("?");
    t.wait_for(&["Keys — any key closes", "reply from the approved library"]);
    // Any key closes the help. (Not Escape: followed at once by Tab, a terminal reads the pair as
    // Alt+Tab.) Then Tab, once the help is gone.
    t.keys("x");
    t.wait_gone("Keys — any key closes");
    t.keys("Tab");
    t.wait_for(&["Moderation — "]);
    t.resize(130, 30, "Moderation — ");
    // Retag the selected troll as a complaint: t, 3, Enter. It is audited and learned from.
    t.keys("t");
    t.wait_for(&["Retag", "Enter save"]);
    t.keys("3");
    t.keys("Enter");
    t.wait_for(&["as complaint: done, audited"]);
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let audit = ok(&h, &["audit", "export", "--format", "jsonl"]);
    assert!(audit.contains("\"action\":\"retag\""), "{audit}");
    assert!(
        ok(&h, &["tone", "learn"]).contains("learned from 1 correction"),
        "the retag is kept as a correction"
    );
    assert!(ok(&h, &["doctor"]).contains("a model learned from 1 correction(s)"));
}

/// `/` searches the cache through the full-text index, which a thread of its own writes into a
/// file beside the cache: the console's first poll stores the demo's mentions, and the search
/// finds the two that say "copay" and nothing else; `Esc` gives the whole queue back.
#[test]
fn a_search_finds_the_mentions_that_say_its_word() {
    if !have_tmux() {
        return;
    }
    let (_d, h) = home();
    let t = Tmux::start(&h, 120, 40);
    let before = t.wait_for(&["DEMO", "Queue — ", "@finn@social"]);
    assert!(!before.contains("Queue — 2 "), "{before}");
    t.keys("/");
    t.wait_for(&["search: "]);
    t.keys("copay");
    t.keys("Enter");
    let found = t.wait_for(&["· /copay", "Queue — 2 ", "@jenn_b_writes", "@carla-m.bsky"]);
    assert!(!found.contains("@finn@social"), "{found}");
    assert!(h.join("tonedesk-search.db").exists());
    t.keys("Escape");
    t.wait_for(&["@finn@social"]);
    t.keys("q");
}

/// Over SSH the queue starts alone, so a move redraws two rows rather than the pane's text too;
/// `Enter` opens the selected mention and closes it again. `[ui] detail = "open"` keeps the pane
/// open over SSH as well.
#[test]
fn over_ssh_the_queue_starts_alone_and_enter_opens_a_mention() {
    if !have_tmux() {
        return;
    }
    let ssh = "SSH_CONNECTION='127.0.0.1 50000 127.0.0.1 22'";
    let (_d, h) = home();
    let t = Tmux::start_with(&h, 120, 30, ssh);
    let queue = t.wait_for(&["DEMO", "Queue — "]);
    assert!(!queue.contains("┌ Mention "), "{queue}");
    t.keys("Enter");
    t.wait_for(&["┌ Mention "]);
    t.keys("Enter");
    t.wait_gone("┌ Mention ");
    t.keys("q");

    std::fs::write(h.join("config.toml"), "[ui]\ndetail = \"open\"\n").expect("config");
    let t = Tmux::start_with(&h, 120, 30, ssh);
    t.wait_for(&["DEMO", "Queue — ", "┌ Mention "]);
    t.keys("q");

    // On a local terminal the pane is open from the start.
    std::fs::remove_file(h.join("config.toml")).expect("config");
    let t = Tmux::start(&h, 120, 30);
    t.wait_for(&["DEMO", "Queue — ", "┌ Mention "]);
    t.keys("q");
}

/// The compliance keys as a person uses them: `a` takes an AE in through the intake form, `e`
/// drafts custom wording in the editor into the review queue, `z` snoozes; all audited.
#[test]
fn ae_intake_draft_and_snooze_from_the_console() {
    if !have_tmux() {
        return;
    }
    let (d, h) = home();
    // An "editor" that writes the reply and quits, as a person would in vi.
    let editor = d.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nprintf 'So sorry about this, {first_name}. Please DM us. {signoff}\\n' >> \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let t = Tmux::start_with(&h, 100, 30, &format!("EDITOR={}", editor.display()));
    t.wait_for(&["DEMO", "Queue — ", "Mention "]);

    t.keys("a");
    let form = t.wait_for(&[
        "AE intake",
        "Reporter",
        "Patient",
        "Product",
        "Reaction",
        "y save",
    ]);
    assert!(
        form.contains("report due in") || form.contains("OVERDUE"),
        "{form}"
    );
    // Move to the patient, replace it, save.
    t.keys("j");
    t.keys("Enter");
    for _ in 0..30 {
        t.keys("BSpace");
    }
    t.keys("my father");
    t.keys("Enter");
    t.wait_for(&["my father"]);
    t.keys("y");
    t.wait_for(&["AE intake for mention", "saved"]);

    t.keys("e");
    t.wait_for(&["filed for MLR review"]);
    for _ in 0..3 {
        t.keys("Tab");
    }
    let review = t.wait_for(&["Review — 1", "awaiting MLR review", "So sorry about this"]);
    assert!(review.contains("not sendable"), "{review}");

    for _ in 0..3 {
        t.keys("Tab"); // Snoozed, Done, back to the queue
    }
    t.wait_for(&["Queue — "]);
    t.keys("z");
    t.wait_for(&["Snooze", "1 hour"]);
    t.keys("1");
    t.wait_for(&["snoozed until"]);
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }

    let audit: Vec<serde_json::Value> = ok(&h, &["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"ae_intake"), "{actions:?}");
    assert!(actions.contains(&"draft"), "{actions:?}");
    assert!(actions.contains(&"snooze"), "{actions:?}");
    let intake = audit.iter().find(|e| e["action"] == "ae_intake").unwrap();
    assert!(
        intake["detail"]
            .as_str()
            .unwrap()
            .contains("patient=my father (present)"),
        "{intake}"
    );
    let drafts: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&h, &["review", "list", "--json"])).unwrap();
    assert_eq!(
        drafts[0]["text"],
        "So sorry about this, {first_name}. Please DM us. {signoff}"
    );
    assert!(ok(&h, &["audit", "verify"]).contains("intact"));
}

/// Hostile text from a platform (a fake Mastodon server on loopback) reaches the screen inert:
/// escape sequences (CSI, OSC title and clipboard writes, DCS), C1 controls, bidi overrides and
/// zero-width tricks do nothing; wide, combined and ZWJ characters keep the columns straight;
/// a very long post is clipped in the list. The terminal's title and clipboard stay untouched.
#[test]
fn hostile_text_reaches_the_screen_inert() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    if !have_tmux() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start());
    let evil_name = "Eve \u{1b}]0;PWNED-NAME\u{7} \u{202e}reversed\u{202c}";
    let posts = [
        "\u{1b}]0;PWNED-TITLE\u{7}title change attempt",
        "\u{1b}]52;c;cHduZWQ=\u{7}clipboard write attempt",
        "\u{1b}[2J\u{1b}[Hclear screen \u{1b}[31mred \u{1b}[5mblink",
        "\u{1b}P+q544e\u{1b}\\ device control string",
        "\u{9b}31m C1 CSI and \u{85} next line",
        "\u{202e}evil bidi override\u{202c} and zero\u{200b}width\u{2060}joiner\u{feff}",
        "wide 中文字符 emoji 👩\u{200d}👩\u{200d}👧\u{200d}👦 combined e\u{301}\u{301}\u{301} end",
        &format!("long {} tail", "A".repeat(5000)),
    ];
    let notifications: Vec<serde_json::Value> = posts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let author = crate::live::account(&format!("9{i}"), "eve@evil.example", evil_name);
            // Mastodon sends HTML; the escapes ride inside it.
            let html = format!("<p>{}</p>", text.replace('&', "&amp;").replace('<', "&lt;"));
            json!({
                "id": format!("{}", 800 + i), "type": "mention",
                "created_at": "2026-11-21T10:00:01.000Z",
                "account": author.clone(),
                "status": crate::live::status(&format!("{}", 2000 + i), author, &html, None),
            })
        })
        .collect();
    rt.block_on(
        Mock::given(method("GET"))
            .and(path("/api/v1/notifications"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!(notifications)))
            .mount(&server),
    );
    let (_d, h) = home();
    std::fs::create_dir_all(&h).unwrap();
    std::fs::write(
        h.join("config.toml"),
        format!(
            "[[account]]\nname = \"care-mastodon\"\nplatform = \"mastodon\"\nbase_url = \"{}\"\nhandle = \"acmecare\"\ntoken_env = \"TONEDESK_TEST_MASTODON_TOKEN\"\n",
            server.uri()
        ),
    )
    .unwrap();
    let t = Tmux::start_with(&h, 100, 30, "TONEDESK_TEST_MASTODON_TOKEN=tok");
    let title_before = t.pane_title();
    // One of them may land in the moderation lane; the queue holds the rest.
    let screen = t.wait_for(&["Queue — ", "title change attempt", "long AAAA", "中文字符"]);

    assert_eq!(t.pane_title(), title_before, "the terminal title changed");
    assert!(!screen.contains("PWNED-TITLE\u{7}"));
    let buffers = t
        .cmd()
        .args(["list-buffers"])
        .output()
        .expect("list-buffers");
    assert!(
        String::from_utf8_lossy(&buffers.stdout).trim().is_empty(),
        "a clipboard write reached tmux: {}",
        String::from_utf8_lossy(&buffers.stdout)
    );
    // Nothing cleared the screen or broke the columns: every row of the list box still ends on
    // its right border, where the top border ends.
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("Queue — "))
        .expect("the list box");
    for l in lines.iter().skip(top + 1).take(9) {
        assert_eq!(l.chars().last(), Some('│'), "broken row: {l:?}\n{screen}");
    }
    assert!(screen.contains("中文字符"), "{screen}");
    assert!(!screen.contains('\u{202e}') && !screen.contains('\u{200b}'));
    // The escape sequences did nothing: a red or blinking rest of the screen would show in the
    // styled capture as SGR 31/5 on the text that followed them.
    let styled = t
        .cmd()
        .args(["capture-pane", "-p", "-e", "-t", &t.session])
        .output()
        .expect("capture-pane -e");
    let styled = String::from_utf8_lossy(&styled.stdout);
    assert!(!styled.contains("\u{1b}[5m"), "blink leaked: {styled}");
    // Moving over every hostile post keeps the title and the frame.
    for _ in 0..8 {
        t.keys("j");
    }
    let after = t.wait_for(&["Queue — "]);
    assert_eq!(t.pane_title(), title_before);
    assert!(after.lines().count() >= 29, "{after}");
    drop(t);
    drop(server);
}

/// Two consoles on one home (two SSH sessions): one polls, the other says so and still shows what
/// arrives; a reply sent from one shows in the other, which then refuses to answer the same
/// mention again; the database stays consistent.
#[test]
fn two_consoles_share_one_home() {
    if !have_tmux() {
        return;
    }
    let (_d, h) = home();
    let a = Tmux::start(&h, 100, 30);
    a.wait_for(&["Queue — 66", "polled", "Mention "]);
    let b = Tmux::start(&h, 100, 30);
    b.wait_for(&["Queue — 66", "another tonedesk polls"]);
    let title = |screen: &str| {
        screen
            .lines()
            .find(|l| l.contains("┌ Mention "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    // A may have drawn its first page while the demo was still being imported, and a console
    // keeps its selection on the mention it shows when more arrive above it: both go to the top.
    a.keys("g");
    b.keys("g");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (x, y) = (title(&a.screen()), title(&b.screen()));
        if x == y && !x.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both select the same mention: {x:?} vs {y:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A answers the first mention; B sees it leave the queue without a key press.
    a.keys("r");
    a.wait_for(&["Approved replies"]);
    a.keys("Enter");
    a.wait_for(&["Preview", "y send"]);
    a.keys("y");
    a.wait_for(&["reply sent to mention"]);
    b.wait_for(&["Queue — 65"]);

    // B goes to Done, where the answered mention now is, and cannot answer it again.
    b.keys("Tab");
    b.keys("Tab");
    b.keys("Tab");
    b.keys("Tab");
    b.keys("Tab");
    b.wait_for(&["Done — 1"]);
    b.keys("r");
    b.wait_for(&["Approved replies"]);
    b.keys("Enter");
    let refused = b.wait_for(&["REFUSED"]);
    assert!(refused.contains("rule 'answered'"), "{refused}");

    // `n` closes B's preview (Escape then q could read as Alt+q); q quits both.
    b.keys("n");
    b.wait_gone("REFUSED");
    for t in [&a, &b] {
        t.keys("q");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (a.alive() || b.alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!a.alive() && !b.alive(), "q did not quit both consoles");
    let doctor = ok(&h, &["doctor"]);
    assert!(doctor.contains("database integrity: ok"), "{doctor}");
    assert!(
        doctor.contains("audit chain intact (2 entries)"),
        "{doctor}"
    );
}

/// With the detail pane open, each move through the demo queue (`j`, `k`, `G`, `g`) leaves the
/// screen, colours included (`capture-pane -e`), that a full redraw of the same state leaves: the
/// console's frame after a move (the lean backend's relative moves, reprinted gaps, erased runs)
/// against the clear and redraw that follow a resize.
#[test]
fn each_move_leaves_the_screen_a_full_redraw_leaves() {
    if !have_tmux() {
        return;
    }
    let (_d, h) = home();
    let (width, rows) = (120u16, 40u16);
    let t = Tmux::start(&h, width, rows);
    t.wait_for(&["DEMO", "Queue — ", "polled"]);
    // Whether the console has drawn at `w` columns: the list's top right corner, or the detail
    // pane's, is then in the last column.
    let drawn_at = |w: u16| {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let s = t.screen();
            if s.lines()
                .nth(1)
                .is_some_and(|l| l.trim_end().ends_with('┐') && l.chars().count() == usize::from(w))
            {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let resize = |w: u16| {
        let ok = t
            .cmd()
            .args(["resize-window", "-t", &t.session])
            .args(["-x", &w.to_string(), "-y", &rows.to_string()])
            .status()
            .expect("resize")
            .success();
        assert!(ok);
    };
    // A full redraw: one column less (not a row: the list would scroll), then the width it had;
    // each a clear and a frame. A resize back and forth quickly is now and then not passed on
    // to the console (with ratatui's own backend too), so this tries again.
    let full_redraw = || {
        for _ in 0..5 {
            resize(width - 1);
            let narrow = drawn_at(width - 1);
            resize(width);
            if narrow && drawn_at(width) {
                return t.styled_screen();
            }
        }
        panic!("the console did not follow the resizes:\n{}", t.screen());
    };
    let back = |key: &str| match key {
        "j" => "k",
        "k" => "j",
        "G" => "g",
        _ => "G",
    };
    for key in ["j", "j", "j", "k", "j", "G", "k", "k", "g", "j"] {
        let mut tries = 0;
        loop {
            let before = t.styled_screen();
            t.keys(key);
            let moved = t.styled_change(&before);
            let full = full_redraw();
            if full == moved {
                break;
            }
            // The clock (ages are in minutes) or a poll may have changed the screen meanwhile:
            // move back and try the same move again, twice at most.
            tries += 1;
            let differ: Vec<String> = moved
                .lines()
                .zip(full.lines())
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| format!("row {i}:\n  moved: {a:?}\n  full:  {b:?}"))
                .collect();
            assert!(
                tries < 3,
                "after {key}, the screen differs from its full redraw:\n{}",
                differ.join("\n")
            );
            let before = t.styled_screen();
            t.keys(back(key));
            t.styled_change(&before);
        }
    }
}
