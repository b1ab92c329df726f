//! Logs go to a file only (never the terminal the console draws on), without ANSI colours.
//! `TONEDESK_LOG` sets the filter (default `info`).

use std::path::Path;

use anyhow::{Context, Result};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts logging to `DIR/tonedesk.log`, rotated daily. Keep the guard alive until exit so the
/// last lines are written. A log file that cannot be opened (a read-only or full home) leaves
/// logging off rather than stopping the program: the command then says what is wrong with the
/// home itself.
pub fn init(dir: &Path) -> Result<Option<WorkerGuard>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the log folder {}", dir.display()))?;
    let Ok(appender) = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("tonedesk.log")
        .build(dir)
    else {
        return Ok(None);
    };
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("TONEDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests calling the CLI twice in one process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(Some(guard))
}
