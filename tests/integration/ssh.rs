//! The console over a real SSH login (issue 6): a private Debian `sshd` on loopback, the console
//! opened through `ssh -t` in a tmux pane, used, resized, and then the connection is dropped while
//! the reply picker is open by killing the server side of the session, so the pseudo-terminal
//! hangs up under the console. Nothing may be lost: the console quits by itself, the database and
//! the audit chain are intact, the reply sent before the drop is recorded, no send is left in
//! flight, the poll lock is free, and the next login opens cleanly.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tmux::{Tmux, have_tmux};
use crate::{home, ok};

const SSHD: &str = "/usr/sbin/sshd";

/// Whether OpenSSH's server and client are here, and sshd's privilege separation directory
/// (`/run/sshd`, which it insists on) exists or can be made; without them the test says it
/// skipped, except in CI, where it fails.
fn have_openssh() -> bool {
    let runs = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .stdin(Stdio::null())
            .output()
            .is_ok()
    };
    let here = Path::new(SSHD).exists()
        && runs("ssh", "-V")
        && runs("ssh-keygen", "-?")
        && std::fs::create_dir_all("/run/sshd").is_ok();
    if !here {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install openssh-server and openssh-client (.ci/run does)"
        );
        eprintln!(
            "SKIPPED: {SSHD}, ssh or ssh-keygen is not installed (apt-get install openssh-server \
             openssh-client), or /run/sshd cannot be made"
        );
    }
    here
}

/// A private `sshd` on 127.0.0.1 with its own config, host key and authorized key, run in the
/// foreground and killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        for key in ["host_key", "client_key"] {
            let made = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "tonedesk-test", "-f"])
                .arg(dir.join(key))
                .stdin(Stdio::null())
                .status()
                .expect("ssh-keygen")
                .success();
            assert!(made, "ssh-keygen could not make {key}");
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let d = dir.display();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPrintMotd no\nPrintLastLog no\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd {
            child,
            port,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!("sshd exited with {status}:\n{}", sshd.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd never listened:\n{}",
                sshd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// The command line that logs in with a terminal (`ssh -t`) and runs `remote` there.
    fn ssh(&self, remote: &str) -> String {
        assert!(!remote.contains('\''), "{remote}");
        format!(
            "ssh -t -p {} -i {}/client_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
             -o BatchMode=yes -o LogLevel=ERROR 127.0.0.1 '{remote}'",
            self.port,
            self.dir.display()
        )
    }

    /// Kills (SIGKILL) every sshd process serving a connection, the server side of each session:
    /// the pseudo-terminal's master goes with them and the console's terminal hangs up.
    fn drop_sessions(&self) -> usize {
        let listener = self.child.id() as i32;
        let table = processes();
        let mut serving = Vec::new();
        let mut parents = vec![listener];
        while let Some(parent) = parents.pop() {
            for p in table
                .iter()
                .filter(|p| p.ppid == parent && p.comm == "sshd")
            {
                serving.push(p.pid);
                parents.push(p.pid);
            }
        }
        for &pid in &serving {
            // SAFETY: kill(2) on sshd processes descended from the sshd this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        serving.len()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.drop_sessions();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Proc {
    pid: i32,
    ppid: i32,
    comm: String,
}

/// Every process, from /proc/PID/stat (`pid (comm) state ppid …`).
fn processes() -> Vec<Proc> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        all.push(Proc {
            pid,
            ppid,
            comm: stat[open + 1..close].to_owned(),
        });
    }
    all
}

/// The tonedesk processes whose environment names `home` as their home.
fn consoles_of(home: &Path) -> Vec<i32> {
    let needle = format!("TONEDESK_HOME={}\0", home.display());
    processes()
        .into_iter()
        .filter(|p| p.comm == "tonedesk")
        .filter(|p| {
            std::fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|p| p.pid)
        .collect()
}

/// What /proc says about a process: its state and the CPU time it has used, in clock ticks.
fn describe(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    format!(
        "pid {pid}: state {}, utime {} stime {} ticks",
        fields.first().unwrap_or(&"?"),
        fields.get(11).unwrap_or(&"?"),
        fields.get(12).unwrap_or(&"?")
    )
}

/// The id in the detail pane's title (`┌ Mention 27 ─…`).
fn detail_id(screen: &str) -> i64 {
    screen
        .split("Mention ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no detail pane:\n{screen}"))
}

#[test]
fn ssh_login_resize_and_a_dropped_connection_lose_nothing() {
    if !have_tmux() || !have_openssh() {
        return;
    }
    let started = Instant::now();
    let (d, h) = home();
    let sshd = Sshd::start(&d.path().join("sshd"));
    let remote = format!(
        "USER=tester TONEDESK_HOME={} {}",
        h.display(),
        env!("CARGO_BIN_EXE_tonedesk")
    );

    // First login: the queue alone (over SSH the detail pane starts closed), the pane opened,
    // a move, one approved reply, a resize.
    let t = Tmux::start_program(&sshd.ssh(&remote), 100, 30);
    let queue = t.wait_for(&["DEMO", "Queue — 66", "polled"]);
    assert!(
        !queue.contains("┌ Mention "),
        "the detail pane is open at the start of an SSH login:\n{queue}"
    );
    t.keys("Enter");
    let first = t.wait_for(&["┌ Mention "]);
    let top = detail_id(&first);
    t.keys("j");
    let moved = t.wait_until("the next mention", |s| {
        s.contains("┌ Mention ") && detail_id(s) != top
    });
    let id = detail_id(&moved);
    t.keys("r");
    t.wait_for(&["Approved replies"]);
    t.keys("Enter");
    t.wait_for(&["Preview", "y send"]);
    t.keys("y");
    t.wait_for(&[&format!("reply sent to mention {id}"), "Queue — 65"]);
    t.resize(140, 35, "Queue — 65");

    // Drop the connection with the picker open.
    t.keys("r");
    t.wait_for(&["Approved replies"]);
    let consoles = consoles_of(&h);
    assert_eq!(consoles.len(), 1, "one console over ssh: {consoles:?}");
    assert!(
        sshd.drop_sessions() > 0,
        "no sshd session to kill:\n{}",
        sshd.log()
    );

    // The console notices the hang-up and quits by itself, promptly, without spinning.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(&pid) = consoles_of(&h).first() {
        assert!(
            Instant::now() < deadline,
            "the console outlived its terminal by 10 s: {}",
            describe(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() {
        assert!(Instant::now() < deadline, "ssh outlived its connection");
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = std::fs::read_dir(h.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    // Both lines: the second is written once the terminal is let go, the step that used to
    // abort the process.
    assert!(
        logs.contains("the terminal hung up (SIGHUP); quitting")
            && logs.contains("the console closed"),
        "the console did not quit on its own terms:\n{logs}"
    );

    // Nothing lost: the database and the audit chain are intact, the reply is recorded, and no
    // send is left in flight.
    {
        let db = rusqlite::Connection::open(h.join("tonedesk.db")).unwrap();
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let outbox: Vec<(i64, String)> = db
            .prepare("SELECT mention_id, state FROM outbox ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(outbox, vec![(id, "sent".to_owned())]);
    }
    assert!(ok(&h, &["audit", "verify"]).contains("intact: 2 entries"));
    let audit: Vec<serde_json::Value> = ok(&h, &["audit", "export", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(&str, i64)> = audit
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["mention"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(actions, [("send_intent", id), ("send_result", id)]);
    assert_eq!(audit[1]["outcome"], "sent");

    // The next login opens cleanly: this console polls (the lock was released) and the answered
    // mention has left the queue for Done.
    let t = Tmux::start_program(&sshd.ssh(&remote), 100, 30);
    let next = t.wait_for(&["Queue — 65", "polled", "done 1"]);
    assert!(!next.contains("another tonedesk polls"), "{next}");
    let queue = crate::queue(&h);
    let answered = queue.iter().find(|m| m["id"] == id).expect("in the cache");
    assert_eq!(answered["state"], "done", "{answered}");
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() {
        assert!(Instant::now() < deadline, "q did not quit:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(consoles_of(&h).is_empty(), "the second console lingers");
    eprintln!("ssh test took {:?}", started.elapsed());
}

/// The connection drops while a send is under way (the platform, a fake Mastodon server on
/// loopback, takes 5 s to answer the post): the console lets the send finish before it goes, so
/// the outbox holds its result at once, not a row in flight for the next start to settle, and the
/// platform saw one post.
#[test]
fn ssh_connection_dropped_mid_send_lets_the_send_finish() {
    if !have_tmux() || !have_openssh() {
        return;
    }
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let posted = crate::crash::Posted::default();
    let server = rt.block_on(crate::crash::mastodon(&posted));
    let (d, h) = home();
    crate::crash::configure(&h, "mastodon", &server.uri(), 30);
    let sshd = Sshd::start(&d.path().join("sshd"));
    let remote = format!(
        "USER=tester TONEDESK_TEST_TOKEN=test-token-123 TONEDESK_HOME={} {}",
        h.display(),
        env!("CARGO_BIN_EXE_tonedesk")
    );
    let t = Tmux::start_program(&sshd.ssh(&remote), 100, 30);
    t.wait_for(&["Queue — 1", "polled"]);
    t.keys("r");
    // complaint-ack needs no variables; the best fit first may.
    let picker = t.wait_for(&["Approved replies", "complaint-ack "]);
    let below = picker
        .lines()
        .skip_while(|l| !l.contains("REPLY (best fit first)"))
        .skip(1)
        .position(|l| l.contains("complaint-ack "))
        .unwrap_or_else(|| panic!("no complaint-ack:\n{picker}"));
    for _ in 0..below {
        t.keys("j");
    }
    t.wait_for(&["▶complaint-ack "]);
    t.keys("Enter");
    t.wait_for(&["Preview", "y send"]);
    t.keys("y");
    let deadline = Instant::now() + Duration::from_secs(10);
    while posted.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the post never reached the platform:\n{}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sshd.drop_sessions() > 0, "no sshd session to kill");

    // The console waits for the platform's answer, then quits.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Some(&pid) = consoles_of(&h).first() {
        assert!(
            Instant::now() < deadline,
            "the console outlived its terminal by 15 s: {}",
            describe(pid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let db = rusqlite::Connection::open(h.join("tonedesk.db")).unwrap();
    let outbox: Vec<(String, Option<String>)> = db
        .prepare("SELECT state, remote_id FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let remote_id = posted.lock().unwrap()[0].id.clone();
    assert_eq!(outbox, vec![("sent".to_owned(), Some(remote_id))]);
    let audit = ok(&h, &["audit", "export", "--format", "jsonl"]);
    let results: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| e["action"] == "send_result")
        .collect();
    assert_eq!(results.len(), 1, "{audit}");
    assert_eq!(results[0]["outcome"], "sent");
    assert_eq!(posted.lock().unwrap().len(), 1, "one post on the platform");
    drop(db);
    drop(t);
    drop(server);
    eprintln!("ssh mid-send test took {:?}", started.elapsed());
}
