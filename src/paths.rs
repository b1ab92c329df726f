//! Where tonedesk keeps its files: XDG locations through `directories`, or everything under one
//! folder given by `--home DIR` / `TONEDESK_HOME`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub database: PathBuf,
    pub library_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Where the demo platform writes what it "sends".
    pub demo_sink: PathBuf,
    /// Set when everything lives under one folder.
    pub home: Option<PathBuf>,
}

impl Paths {
    /// All files under one folder.
    pub fn under(home: &Path) -> Self {
        Paths {
            config_file: home.join("config.toml"),
            database: home.join("tonedesk.db"),
            library_dir: home.join("library"),
            log_dir: home.join("logs"),
            demo_sink: home.join("demo-sink.jsonl"),
            home: Some(home.to_path_buf()),
        }
    }

    /// The platform's usual places (XDG on Linux).
    pub fn xdg() -> Result<Self> {
        let dirs = directories::ProjectDirs::from("", "", "tonedesk").context(
            "could not find a home directory for tonedesk's files; pass --home DIR or set TONEDESK_HOME",
        )?;
        let data = dirs.data_dir();
        let state = dirs.state_dir().unwrap_or(data);
        Ok(Paths {
            config_file: dirs.config_dir().join("config.toml"),
            database: data.join("tonedesk.db"),
            library_dir: data.join("library"),
            log_dir: state.join("logs"),
            demo_sink: data.join("demo-sink.jsonl"),
            home: None,
        })
    }

    /// `--home` wins, then `TONEDESK_HOME` (clap already folds the variable into `home`), then XDG.
    pub fn resolve(home: Option<&Path>) -> Result<Self> {
        match home {
            Some(h) => Ok(Paths::under(h)),
            None => Paths::xdg(),
        }
    }

    /// Creates the folders that hold the database, library and logs, private to the user.
    pub fn create_dirs(&self) -> Result<()> {
        let mut dirs: Vec<&Path> = vec![&self.library_dir, &self.log_dir];
        if let Some(parent) = self.database.parent() {
            dirs.push(parent);
        }
        if let Some(home) = &self.home {
            dirs.push(home);
        }
        for d in dirs {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create folder {}", d.display()))?;
            restrict(d, 0o700);
        }
        Ok(())
    }
}

/// The full-text index's database, beside the cache at `db` (`tonedesk.db` →
/// `tonedesk-search.db`): a file of its own, so that it is written beside the cache, not after it.
pub fn search_index_beside(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map_or("tonedesk".into(), |s| s.to_string_lossy());
    db.with_file_name(format!("{stem}-search.db"))
}

/// Makes every file and folder this process creates private to its owner (database and its
/// journal, library, logs, demo sink, draft files): umask 077. Called first thing in `main`.
pub fn private_by_default() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-mode creation mask; it cannot fail and touches
    // no memory. It runs before any other thread exists.
    unsafe {
        libc::umask(0o077);
    }
}

/// Best effort: make a file or folder private to its owner.
pub fn restrict(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_puts_everything_under_one_folder() {
        let p = Paths::under(Path::new("/tmp/td"));
        for f in [
            &p.config_file,
            &p.database,
            &p.library_dir,
            &p.log_dir,
            &p.demo_sink,
        ] {
            assert!(f.starts_with("/tmp/td"), "{}", f.display());
        }
        assert_eq!(p.config_file, Path::new("/tmp/td/config.toml"));
        assert_eq!(
            search_index_beside(&p.database),
            Path::new("/tmp/td/tonedesk-search.db")
        );
    }
}
