//! The TOML configuration (`config.example.toml` documents every key). Errors name the file,
//! the line and the key, and say what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::Platform;
use crate::domain::playbook::Targets;
use crate::tone::ToneConfig;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Recorded in every audit entry; defaults to the login name.
    pub operator: Option<String>,
    /// The operator's initials for `{agent}`; derived from `operator` when absent.
    pub initials: Option<String>,
    /// The sign-off for `{signoff}`; defaults to `^` and the initials.
    pub signoff: Option<String>,
    #[serde(default)]
    pub brand: Brand,
    /// Contact lines for `{contact.KEY}` placeholders.
    #[serde(default)]
    pub contact: BTreeMap<String, String>,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub poll: Poll,
    #[serde(default, rename = "account")]
    pub accounts: Vec<Account>,
    /// Action name → key (`reply = "r"`), see the README's key table.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    #[serde(default)]
    pub ui: Ui,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Brand {
    pub name: String,
    pub products: Vec<String>,
    pub crisis_keywords: Vec<String>,
    pub hcp_handles: Vec<String>,
}

impl Default for Brand {
    fn default() -> Self {
        Brand {
            name: "Acme Pharma".into(),
            products: vec!["Zyntriva".into(), "zyntrivastat".into()],
            crisis_keywords: [
                "recall",
                "death",
                "died",
                "lawsuit",
                "class action",
                "contaminated",
            ]
            .map(String::from)
            .to_vec(),
            hcp_handles: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Poll {
    /// Seconds between polls of one account when its rate budget allows.
    pub interval_secs: u64,
    /// Seconds one request to a platform may take, body included, before it is abandoned (and
    /// retried when that is safe).
    pub request_timeout_secs: u64,
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            interval_secs: 60,
            request_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ui {
    /// Colours on; `NO_COLOR` in the environment turns them off regardless.
    pub color: bool,
    /// Whether the console starts with the detail pane open beside the queue.
    pub detail: DetailPane,
}

impl Default for Ui {
    fn default() -> Self {
        Ui {
            color: true,
            detail: DetailPane::Auto,
        }
    }
}

/// How the console starts: with the selected mention's detail pane open beside the queue, or
/// with the queue alone (`Enter` opens and closes the pane either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetailPane {
    /// Open on a local terminal, closed over SSH: with the pane open, each move redraws the
    /// pane's text too, some four times the bytes of a move in the queue alone.
    Auto,
    Open,
    Closed,
}

impl DetailPane {
    /// Whether the pane is open at start, on a terminal reached over SSH or not.
    pub fn open_at_start(self, over_ssh: bool) -> bool {
        match self {
            DetailPane::Auto => !over_ssh,
            DetailPane::Open => true,
            DetailPane::Closed => false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub platform: Platform,
    pub base_url: Option<String>,
    pub handle: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub identifier: Option<String>,
    pub app_password_env: Option<String>,
    pub app_password_file: Option<PathBuf>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A configuration problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key '{key}'")?;
        }
        write!(
            f,
            ": {}\n(fix the file, or compare it with config.example.toml)",
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the config file; a missing file is the empty config (the built-in demo).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: None,
                message: format!("cannot read it: {e}"),
            }),
        }
    }

    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, key) = e
                .span()
                .map(|s| locate(text, s.start))
                .unwrap_or((None, None));
            ConfigError {
                file: file.to_path_buf(),
                line,
                key,
                message: e.message().trim().to_owned(),
            }
        })?;
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &Path) -> Result<(), ConfigError> {
        let err = |needle: &str, key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            line: find_line(text, needle),
            key: Some(key.to_owned()),
            message,
        };
        let mut names = BTreeSet::new();
        for a in &self.accounts {
            let needle = format!("\"{}\"", a.name);
            if a.name.trim().is_empty() {
                return Err(err(
                    "name",
                    "account.name",
                    "an account needs a non-empty name".into(),
                ));
            }
            if !names.insert(a.name.as_str()) {
                return Err(err(
                    &needle,
                    "account.name",
                    format!(
                        "account name '{}' is used twice; names must be unique",
                        a.name
                    ),
                ));
            }
            if a.name.starts_with("demo-") {
                return Err(err(
                    &needle,
                    "account.name",
                    "names starting with 'demo-' are kept for the built-in demo".into(),
                ));
            }
            if let Some(url) = &a.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(err(
                    url,
                    "account.base_url",
                    format!("'{url}' is not an http(s) URL"),
                ));
            }
        }
        if let Some(bad) = self.targets_zero() {
            return Err(err(
                bad,
                &format!("targets.{bad}"),
                "a target must be at least 1".into(),
            ));
        }
        if self.poll.interval_secs == 0 {
            return Err(err(
                "interval_secs",
                "poll.interval_secs",
                "the poll interval must be at least 1 second".into(),
            ));
        }
        if !(1..=300).contains(&self.poll.request_timeout_secs) {
            return Err(err(
                "request_timeout_secs",
                "poll.request_timeout_secs",
                "the request timeout must be between 1 and 300 seconds".into(),
            ));
        }
        Ok(())
    }

    fn targets_zero(&self) -> Option<&'static str> {
        let t = &self.targets;
        [
            ("positive", t.positive),
            ("neutral", t.neutral),
            ("complaint", t.complaint),
            ("troll", t.troll),
            ("spam", t.spam),
            ("ae", t.ae),
            ("ae_report_hours", t.ae_report_hours),
            ("hcp_follow_up_days", t.hcp_follow_up_days),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0)
        .map(|(k, _)| k)
    }

    /// No accounts configured: everything runs on the built-in demo.
    pub fn is_demo(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Who is recorded in audit entries: the configured `operator`, else the login name
    /// (`$USER`, `$LOGNAME`), else "operator".
    pub fn operator(&self) -> String {
        let set = |s: &String| !s.trim().is_empty();
        self.operator
            .clone()
            .filter(set)
            .or_else(|| std::env::var("USER").ok().filter(set))
            .or_else(|| std::env::var("LOGNAME").ok().filter(set))
            .unwrap_or_else(|| "operator".into())
    }

    pub fn initials(&self) -> String {
        if let Some(i) = &self.initials {
            return i.clone();
        }
        let op = self.operator();
        let initials: String = op
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .flat_map(char::to_uppercase)
            .collect();
        if initials.is_empty() {
            "TD".into()
        } else {
            initials
        }
    }

    pub fn signoff(&self) -> String {
        self.signoff
            .clone()
            .unwrap_or_else(|| format!("^{}", self.initials()))
    }

    /// Contact lines, with demo values for the built-in demo so its replies render.
    pub fn contacts(&self) -> BTreeMap<String, String> {
        let mut c = self.contact.clone();
        if self.is_demo() {
            for (k, v) in [
                ("medinfo", "1-800-555-0199"),
                ("email", "care@acme.example"),
                ("safety", "1-800-555-0123"),
                ("url", "https://acme.example/care"),
            ] {
                c.entry(k.to_owned()).or_insert_with(|| v.to_owned());
            }
        }
        c
    }

    pub fn tone_config(&self) -> ToneConfig {
        ToneConfig {
            products: self.brand.products.clone(),
            crisis_keywords: self.brand.crisis_keywords.clone(),
            hcp_handles: self.brand.hcp_handles.clone(),
        }
    }

    /// The line of the config file where `needle` first appears, for errors found after parsing.
    pub fn line_in(file: &Path, needle: &str) -> Option<usize> {
        let text = std::fs::read_to_string(file).ok()?;
        find_line(&text, needle)
    }
}

fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| !l.trim_start().starts_with('#') && l.contains(needle))
        .map(|i| i + 1)
}

/// The 1-based line of a byte offset and the key written on that line, qualified by its table.
fn locate(text: &str, offset: usize) -> (Option<usize>, Option<String>) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').to_owned());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let key = match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    };
    (Some(line_no), key)
}

/// The machine's name, recorded in audit entries: the kernel's (`uname -n`, read from
/// `/proc/sys/kernel/hostname`), else `/etc/hostname`, else `$HOSTNAME`, else "unknown-host".
pub fn host_name() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    first_host_name([
        read("/proc/sys/kernel/hostname"),
        read("/etc/hostname"),
        std::env::var("HOSTNAME").ok(),
    ])
}

/// The first usable name among the candidates: its first line, trimmed, without control
/// characters, at most 253 characters (the longest DNS name).
fn first_host_name(candidates: impl IntoIterator<Item = Option<String>>) -> String {
    candidates
        .into_iter()
        .flatten()
        .find_map(|c| {
            let name: String = c
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .chars()
                .filter(|ch| !ch.is_control())
                .take(253)
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .unwrap_or_else(|| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/home/x/config.toml"))
    }

    #[test]
    fn the_host_is_the_first_usable_name() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(first_host_name([s("desk-01\n"), s("other")]), "desk-01");
        assert_eq!(first_host_name([None, s("  \n"), s("b\x07ox\n# x")]), "box");
        assert_eq!(first_host_name([None, None]), "unknown-host");
        assert_eq!(first_host_name([s(&"a".repeat(300))]).len(), 253);
        assert!(!host_name().is_empty());
    }

    #[test]
    fn the_example_config_parses_and_is_not_demo() {
        let text = include_str!("../config.example.toml");
        let c = parse(text).unwrap();
        assert!(!c.is_demo());
        assert!(c.accounts.len() >= 3);
        assert_eq!(c.operator(), "Jamie Rivera");
        assert_eq!(c.initials(), "JR");
        assert!(c.brand.products.iter().any(|p| p == "Zyntriva"));
    }

    #[test]
    fn empty_config_is_the_demo() {
        let c = parse("").unwrap();
        assert!(c.is_demo());
        assert!(c.contacts().contains_key("medinfo"));
        assert_eq!(c.targets.complaint, 60);
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("operator = \"A\"\n[brand]\nname = \"B\"\nprodcts = [\"Z\"]\n").unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.line, Some(4), "{msg}");
        assert_eq!(e.key.as_deref(), Some("brand.prodcts"), "{msg}");
        assert!(msg.starts_with("/home/x/config.toml:4"), "{msg}");
        assert!(msg.contains("unknown field"), "{msg}");

        let e = parse("[[account]]\nname = \"a\"\nplatform = \"myspace\"\nhandle = \"h\"\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("myspace"), "{e}");

        let e = parse("[targets]\ncomplaint = -5\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn duplicate_account_names_are_refused() {
        let text = "[[account]]\nname = \"a\"\nplatform = \"x\"\nhandle = \"h\"\n\n[[account]]\nname = \"a\"\nplatform = \"mastodon\"\nhandle = \"h\"\n";
        let e = parse(text).unwrap_err();
        assert!(e.to_string().contains("used twice"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn the_detail_pane_starts_closed_over_ssh_unless_the_config_says() {
        let pane = |text: &str| parse(text).unwrap().ui.detail;
        assert_eq!(pane(""), DetailPane::Auto);
        assert!(DetailPane::Auto.open_at_start(false));
        assert!(!DetailPane::Auto.open_at_start(true));
        assert!(pane("[ui]\ndetail = \"open\"\n").open_at_start(true));
        assert!(!pane("[ui]\ndetail = \"closed\"\n").open_at_start(false));
        let e = parse("[ui]\ndetail = \"sideways\"\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.to_string().contains("expected one of `auto`"), "{e}");
    }

    #[test]
    fn the_request_timeout_is_bounded() {
        assert_eq!(parse("").unwrap().poll.request_timeout_secs, 30);
        let c = parse("[poll]\nrequest_timeout_secs = 2\n").unwrap();
        assert_eq!(c.poll.request_timeout_secs, 2);
        for bad in ["0", "301"] {
            let e = parse(&format!("[poll]\nrequest_timeout_secs = {bad}\n")).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("poll.request_timeout_secs"), "{e}");
            assert_eq!(e.line, Some(2), "{e}");
        }
    }
}
