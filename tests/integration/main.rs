//! One integration-test binary: the real executable in temporary homes, the screens through
//! ratatui's TestBackend, and the console driven through tmux as a person would.

mod cli;
mod crash;
mod crash_storm;
mod disk;
mod faults;
mod live;
mod screens;
mod security;
mod ssh;
mod tamper;
mod tmux;
mod workflow;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// xorshift64*: a small seeded generator, so that a failing run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The built binary, run in `home` with a clean environment.
pub fn td(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tonedesk"));
    c.env_remove("TONEDESK_HOME")
        .env_remove("NO_COLOR")
        .env_remove("TONEDESK_LOG")
        .env("USER", "tester")
        .arg("--home")
        .arg(home);
    c
}

pub fn run(home: &Path, args: &[&str]) -> Output {
    td(home).args(args).output().expect("run tonedesk")
}

/// Runs a prepared command to the end off the async runtime (where a fake server lives, which
/// must keep answering while the command waits on it).
pub async fn output_off_runtime(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("run tonedesk"))
        .await
        .expect("join")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and insists on exit 0.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let o = run(home, args);
    assert!(
        o.status.success(),
        "tonedesk {args:?} failed: {}\n{}",
        stderr(&o),
        stdout(&o)
    );
    stdout(&o)
}

pub fn home() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("home");
    (dir, path)
}

/// The demo queue as JSON.
pub fn queue(home: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(home, &["queue", "--json"])).expect("queue --json is JSON")
}

/// The id of the first open, answerable mention that has the AE flag, or (with `ae` false) that
/// has neither the AE nor the HCP flag, so a public reply is allowed.
pub fn first_with(queue: &[serde_json::Value], ae: bool) -> i64 {
    queue
        .iter()
        .find(|m| {
            let flags = m["flags"].as_array().unwrap();
            let has = |name: &str| flags.iter().any(|f| f == name);
            let fits = if ae {
                has("ae")
            } else {
                !has("ae") && !has("hcp")
            };
            fits && m["state"] == "open" && m["tone"] != "troll" && m["tone"] != "spam"
        })
        .and_then(|m| m["id"].as_i64())
        .expect("a matching demo mention")
}
