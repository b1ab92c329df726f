//! The console driven through tmux as a person would: open the demo, reply to the first mention
//! with `r`, `Enter`, `y`, quit with `q`, then check the audit trail.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{home, ok};

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(home: &Path, width: u16, height: u16) -> Tmux {
        Tmux::start_with(home, width, height, "")
    }

    /// Starts the console with extra `NAME=value` words in its environment.
    fn start_with(home: &Path, width: u16, height: u16, env: &str) -> Tmux {
        let t = Tmux {
            socket: format!(
                "tonedesk-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
            session: "desk".into(),
        };
        let program = format!(
            "env -u NO_COLOR USER=tester TONEDESK_HOME={} {env} {}",
            home.display(),
            env!("CARGO_BIN_EXE_tonedesk")
        );
        let status = t
            .cmd()
            .args(["-f", "/dev/null", "new-session", "-d", "-s", &t.session])
            .args([
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                &program,
            ])
            .status()
            .expect("start tmux");
        assert!(status.success());
        t
    }

    fn keys(&self, keys: &str) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .expect("send-keys")
            .success();
        assert!(ok);
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", &self.session])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// Waits until the screen shows every one of `needles`.
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen never showed {needles:?}:\n{s}"
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
fn have_tmux() -> bool {
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
    t.keys("Escape");
    t.keys("Tab");
    t.wait_for(&["Moderation — "]);
    let resized = t
        .cmd()
        .args(["resize-window", "-t", &t.session, "-x", "130", "-y", "30"])
        .status()
        .expect("resize")
        .success();
    assert!(resized);
    let wide = t.wait_for(&["Moderation — "]);
    assert!(
        wide.lines().any(|l| l.chars().count() > 100),
        "did not redraw wider:\n{wide}"
    );
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
