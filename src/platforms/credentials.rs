//! Credentials: read from an environment variable or from a file only the user can read. A secret
//! never prints (its Debug and Display say `[secret]`) and never enters the database or the logs.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use super::PlatformError;

/// A token or password.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// Every secret value this process has seen (the newest few), so that text from elsewhere — a
/// server's error body that echoes a token — can be scrubbed before it is shown or stored.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());
const KNOWN_MAX: usize = 64;
/// Shorter values are not scrubbed: they would match ordinary words.
const SCRUB_MIN_LEN: usize = 6;

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        if value.len() >= SCRUB_MIN_LEN {
            let mut known = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
            if !known.contains(&value) {
                if known.len() == KNOWN_MAX {
                    known.remove(0);
                }
                known.push(value.clone());
            }
        }
        Secret(value)
    }

    /// The value, for an Authorization header or a login body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// `text` with every known secret value replaced by `[secret]`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
    if !known.iter().any(|k| text.contains(k.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    for k in known.iter() {
        out = out.replace(k.as_str(), "[secret]");
    }
    Cow::Owned(out)
}

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env(String),
    File(PathBuf),
}

impl Source {
    /// Reads the secret. A file that its group or others can read is refused, with the fix.
    pub fn load(&self, account: &str) -> Result<Secret, PlatformError> {
        match self {
            Source::Env(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
                _ => Err(PlatformError::Auth(format!(
                    "account '{account}': the environment variable {var} is not set; export it before starting tonedesk"
                ))),
            },
            Source::File(path) => load_file(path, account),
        }
    }
}

fn load_file(path: &Path, account: &str) -> Result<Secret, PlatformError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| {
            PlatformError::Auth(format!(
                "account '{account}': cannot read the secret file {}: {e}",
                path.display()
            ))
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PlatformError::Auth(format!(
                "account '{account}': the secret file {} can be read by others (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        PlatformError::Auth(format!(
            "account '{account}': cannot read the secret file {}: {e}",
            path.display()
        ))
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(PlatformError::Auth(format!(
            "account '{account}': the secret file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_scrubbed_from_text() {
        let s = Secret::new("tok-9f8e7d6c5b4a");
        assert_eq!(
            scrub("401: the token tok-9f8e7d6c5b4a is invalid"),
            "401: the token [secret] is invalid"
        );
        assert_eq!(scrub("nothing here"), "nothing here");
        assert_eq!(s.expose(), "tok-9f8e7d6c5b4a");
        let _short = Secret::new("abc");
        assert_eq!(scrub("abc"), "abc", "too short to scrub safely");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("abc123");
        assert_eq!(format!("{s:?} {s}"), "[secret] [secret]");
        assert_eq!(s.expose(), "abc123");
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_are_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "tok\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Source::File(f.clone()).load("care-x").unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Source::File(f).load("care-x").unwrap().expose(), "tok");
        let e = Source::Env("TONEDESK_SURELY_UNSET_VAR".into())
            .load("care-x")
            .unwrap_err();
        assert!(e.to_string().contains("TONEDESK_SURELY_UNSET_VAR"), "{e}");
    }
}
