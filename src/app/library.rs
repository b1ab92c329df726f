//! The approved reply library: TOML files under the library folder, seeded from `assets/library/`
//! on first run. Errors name the file and line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use time::Date;

use crate::domain::reply::{ChannelRule, Prompt, Reply, parse_template};
use crate::domain::{Flag, Mention, Platform, Tone};

/// The starter library shipped in the binary: (file name, contents).
pub const STARTER: &[(&str, &str)] = &[
    (
        "general.toml",
        include_str!("../../assets/library/general.toml"),
    ),
    (
        "complaints.toml",
        include_str!("../../assets/library/complaints.toml"),
    ),
    (
        "safety.toml",
        include_str!("../../assets/library/safety.toml"),
    ),
    (
        "medical.toml",
        include_str!("../../assets/library/medical.toml"),
    ),
    (
        "moderation.toml",
        include_str!("../../assets/library/moderation.toml"),
    ),
];

/// A problem with one library file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LibraryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LibraryError {}

#[derive(Debug, Clone, Default)]
pub struct Library {
    pub replies: Vec<Reply>,
    /// Where each reply came from, for messages.
    pub origin: HashMap<String, (PathBuf, usize)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    reply: Vec<toml::Spanned<RawReply>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    id: String,
    version: u32,
    approval: String,
    approved_on: toml::value::Datetime,
    expires_on: toml::value::Datetime,
    #[serde(default)]
    tones: Vec<Tone>,
    #[serde(default)]
    flags: Vec<Flag>,
    channel: ChannelRule,
    #[serde(default)]
    platforms: Vec<Platform>,
    #[serde(default)]
    holding: bool,
    #[serde(default)]
    confirms_health: bool,
    text: String,
    #[serde(default)]
    prompt: Vec<RawPrompt>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    name: String,
    max_len: usize,
    pattern: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn to_date(d: &toml::value::Datetime, what: &str) -> Result<Date, String> {
    let Some(date) = d.date else {
        return Err(format!("{what} must be a date like 2026-03-01"));
    };
    let month = time::Month::try_from(date.month).map_err(|e| format!("{what}: {e}"))?;
    Date::from_calendar_date(i32::from(date.year), month, date.day)
        .map_err(|e| format!("{what}: {e}"))
}

impl Library {
    /// Copies the starter library into an empty (or missing) library folder.
    pub fn seed(dir: &Path) -> std::io::Result<bool> {
        std::fs::create_dir_all(dir)?;
        let has_toml = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "toml"));
        if has_toml {
            return Ok(false);
        }
        for (name, text) in STARTER {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(true)
    }

    /// Loads every `*.toml` file of the folder, in name order. Returns all problems found, not
    /// just the first, so `library check` can list them.
    pub fn load(dir: &Path) -> Result<Library, Vec<LibraryError>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                return Err(vec![LibraryError {
                    file: dir.to_path_buf(),
                    line: None,
                    message: format!("cannot read the library folder: {e}"),
                }]);
            }
        };
        files.sort();
        let mut lib = Library::default();
        let mut errors = Vec::new();
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => lib.add_file(&file, &text, &mut errors),
                Err(e) => errors.push(LibraryError {
                    file: file.clone(),
                    line: None,
                    message: format!("cannot read it: {e}"),
                }),
            }
        }
        if errors.is_empty() {
            Ok(lib)
        } else {
            Err(errors)
        }
    }

    /// Parses one file's text (also used for the built-in starter set in tests).
    pub fn add_file(&mut self, file: &Path, text: &str, errors: &mut Vec<LibraryError>) {
        let err = |line: Option<usize>, message: String| LibraryError {
            file: file.to_path_buf(),
            line,
            message,
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(err(
                    e.span().map(|s| line_of(text, s.start)),
                    e.message().trim().to_owned(),
                ));
                return;
            }
        };
        for spanned in raw.reply {
            let line = line_of(text, spanned.span().start);
            match build(spanned.into_inner()) {
                Ok(reply) => {
                    if let Some((other, other_line)) = self.origin.get(&reply.id) {
                        errors.push(err(
                            Some(line),
                            format!(
                                "reply id '{}' is already used at {}:{other_line}; ids must be unique (raise `version` to change a text)",
                                reply.id,
                                other.display()
                            ),
                        ));
                        continue;
                    }
                    self.origin
                        .insert(reply.id.clone(), (file.to_path_buf(), line));
                    self.replies.push(reply);
                }
                Err(message) => errors.push(err(Some(line), message)),
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Reply> {
        self.replies.iter().find(|r| r.id == id)
    }

    /// Replies usable on the mention's platform, best fit first (ties: id order).
    pub fn suggestions(&self, m: &Mention) -> Vec<&Reply> {
        let mut out: Vec<&Reply> = self
            .replies
            .iter()
            .filter(|r| r.suits_platform(m.platform))
            .collect();
        out.sort_by(|a, b| {
            b.fit(m.tags.tone, m.tags.flags)
                .cmp(&a.fit(m.tags.tone, m.tags.flags))
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }
}

/// Appends a draft approved by MLR to `file` as a new library reply (version 1, approved today).
/// The draft's wording is kept exactly, placeholders included (checked when it was filed). The
/// entry is parsed back before anything is written, and written in one append.
pub fn append_approved(
    file: &Path,
    draft: &crate::domain::Draft,
    a: &super::compliance::Approval,
    today: Date,
) -> Result<(), String> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let list = |items: Vec<&str>| {
        let quoted: Vec<String> = items.into_iter().map(quote).collect();
        format!("[{}]", quoted.join(", "))
    };
    let text = draft.text.clone();
    let entry = format!(
        "\n# Approved from draft {draft_id} ({operator}, {created}).\n[[reply]]\nid = {id}\nversion = 1\napproval = {approval}\napproved_on = {today}\nexpires_on = {expires}\ntones = {tones}\nflags = {flags}\nchannel = {channel}\ntext = {text}\n",
        draft_id = draft.id,
        operator = draft.operator.replace('\n', " "),
        created = crate::domain::audit::format_utc(draft.created_at),
        id = quote(&a.reply_id),
        approval = quote(&a.reference),
        expires = a.expires_on,
        tones = list(a.tones.iter().map(|t| t.as_str()).collect()),
        flags = list(a.flags.iter().map(|f| f.as_str()).collect()),
        channel = quote(a.channel.as_str()),
        text = quote(&text),
    );
    let mut check = Library::default();
    let mut errors = Vec::new();
    check.add_file(file, &entry, &mut errors);
    if let Some(e) = errors.first() {
        return Err(format!("the approved reply would not load: {e}"));
    }
    if let Some(r) = check.replies.first()
        && r.text != text
    {
        return Err("the approved reply's text would not round-trip".into());
    }
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    f.write_all(entry.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn build(raw: RawReply) -> Result<Reply, String> {
    let id_ok = !raw.id.is_empty()
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(format!(
            "reply id '{}' must be letters, digits, '-' or '_'",
            raw.id
        ));
    }
    let ctx = |m: String| format!("reply '{}': {m}", raw.id);
    if raw.approval.trim().is_empty() {
        return Err(ctx(
            "`approval` (the MLR reference) must not be empty".into()
        ));
    }
    if raw.text.trim().is_empty() {
        return Err(ctx("`text` must not be empty".into()));
    }
    let approved_on = to_date(&raw.approved_on, "approved_on").map_err(ctx)?;
    let expires_on = to_date(&raw.expires_on, "expires_on").map_err(ctx)?;
    if expires_on < approved_on {
        return Err(ctx("expires_on is before approved_on".into()));
    }
    let segments = parse_template(&raw.text).map_err(|e| ctx(e.to_string()))?;
    let mut prompts = Vec::new();
    let mut seen = BTreeMap::new();
    for p in raw.prompt {
        let anchored = format!(
            "^(?:{})$",
            p.pattern.trim_start_matches('^').trim_end_matches('$')
        );
        let pattern = Regex::new(&anchored)
            .map_err(|e| ctx(format!("prompt '{}': bad pattern: {e}", p.name)))?;
        if p.max_len == 0 {
            return Err(ctx(format!(
                "prompt '{}': max_len must be at least 1",
                p.name
            )));
        }
        if seen.insert(p.name.clone(), ()).is_some() {
            return Err(ctx(format!("prompt '{}' is declared twice", p.name)));
        }
        prompts.push(Prompt {
            name: p.name,
            max_len: p.max_len,
            pattern,
        });
    }
    let reply = Reply {
        id: raw.id.clone(),
        version: raw.version,
        approval: raw.approval,
        approved_on,
        expires_on,
        tones: raw.tones,
        flags: raw.flags.into_iter().collect(),
        channel: raw.channel,
        platforms: raw.platforms,
        holding: raw.holding,
        confirms_health: raw.confirms_health,
        text: raw.text,
        segments,
        prompts,
    };
    reply.check_vars().map_err(|e| ctx(e.to_string()))?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reply::tests::mention;

    fn starter() -> Library {
        let mut lib = Library::default();
        let mut errors = Vec::new();
        for (name, text) in STARTER {
            lib.add_file(Path::new(name), text, &mut errors);
        }
        assert!(errors.is_empty(), "{errors:?}");
        lib
    }

    #[test]
    fn starter_library_covers_every_tone_and_flag() {
        let lib = starter();
        assert!(lib.replies.len() >= 12);
        for t in Tone::ALL {
            assert!(
                lib.replies.iter().any(|r| r.tones.contains(&t)),
                "no reply for {t}"
            );
        }
        for f in Flag::ALL {
            assert!(
                lib.replies.iter().any(|r| r.flags.contains(f)),
                "no reply for {f}"
            );
        }
        assert!(lib.replies.iter().any(|r| r.holding));
    }

    #[test]
    fn suggestions_put_the_flagged_reply_first() {
        let lib = starter();
        let ae = mention(&[Flag::Ae]);
        let first = lib.suggestions(&ae)[0];
        assert!(first.flags.contains(Flag::Ae), "{}", first.id);
    }

    #[test]
    fn errors_name_file_and_line() {
        let mut lib = Library::default();
        let mut errors = Vec::new();
        let text = "[[reply]]\nid = \"a\"\nversion = 1\napproval = \"M\"\napproved_on = 2026-01-01\nexpires_on = 2027-01-01\nchannel = \"public\"\ntext = \"ok\"\n\n[[reply]]\nid = \"b\"\nversion = 1\napproval = \"M\"\napproved_on = 2026-01-01\nexpires_on = 2027-01-01\nchannel = \"public\"\ntext = \"Hi {name}\"\n";
        lib.add_file(Path::new("lib/x.toml"), text, &mut errors);
        assert_eq!(lib.replies.len(), 1);
        assert_eq!(errors.len(), 1);
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("lib/x.toml:10: reply 'b': unknown placeholder '{name}'"),
            "{msg}"
        );

        let mut errors = Vec::new();
        lib.add_file(
            Path::new("lib/y.toml"),
            "[[reply]]\nid = \"c\"\nchanel = 1\n",
            &mut errors,
        );
        assert!(
            errors[0].to_string().contains("lib/y.toml:"),
            "{}",
            errors[0]
        );

        let mut errors = Vec::new();
        lib.add_file(Path::new("lib/z.toml"), text, &mut errors);
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("already used at lib/x.toml:1")),
            "{errors:?}"
        );
    }

    #[test]
    fn seeding_fills_an_empty_folder_once() {
        let dir = tempfile::tempdir().unwrap();
        let lib_dir = dir.path().join("library");
        assert!(Library::seed(&lib_dir).unwrap());
        assert!(!Library::seed(&lib_dir).unwrap());
        let lib = Library::load(&lib_dir).unwrap();
        assert_eq!(lib.replies.len(), starter().replies.len());
    }
}
