//! Background polling: one task per account, each on its own schedule (the configured interval,
//! stretched to fit the account's remaining rate budget, or backing off after failures).

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::runtime::Handle;

use super::desk::{Desk, PollReport};

/// What a poller tells its listener.
#[derive(Debug, Clone)]
pub enum Round {
    /// Another tonedesk process polls this home; this one waits and tries again.
    Waiting,
    /// A stream is still paging (a first-run backfill); the report so far.
    Paging(PollReport),
    /// An account's round has ended; the next one is scheduled.
    Done(Vec<PollReport>),
}

/// Starts one polling task per connected account; `report` hears every round and the progress of
/// long backfills. The tasks run until the runtime shuts down.
///
/// Only one process polls a home at a time (two consoles over two SSH sessions share one cache):
/// the tasks start once this process holds the home's poll lock, and until then it reports
/// [`Round::Waiting`] and tries again every [`LOCK_RETRY`].
pub fn spawn(desk: Arc<Desk>, rt: &Handle, report: impl Fn(Round) + Send + Sync + 'static) {
    let report = Arc::new(report);
    let rt2 = rt.clone();
    rt.spawn(async move {
        let lock = loop {
            match desk.poll_lock() {
                Some(lock) => break Arc::new(lock),
                None => report(Round::Waiting),
            }
            tokio::time::sleep(LOCK_RETRY).await;
        };
        start(desk, &rt2, report, lock);
    });
}

/// How often a waiting process tries the poll lock again.
pub const LOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

fn start(
    desk: Arc<Desk>,
    rt: &Handle,
    report: Arc<impl Fn(Round) + Send + Sync + 'static>,
    lock: Arc<super::desk::PollLock>,
) {
    for connector in desk.connectors.clone() {
        let (desk, report, lock) = (desk.clone(), report.clone(), lock.clone());
        rt.spawn(async move {
            // Held for as long as the task runs; the OS releases it if the process dies.
            let _lock = lock;
            let mut failures = 0;
            loop {
                let progress = |r: &PollReport| report(Round::Paging(r.clone()));
                let reports = desk
                    .poll_account(connector.as_ref(), failures, &progress)
                    .await;
                failures = reports.first().map_or(0, |r| r.failures);
                let wait = match reports.first().and_then(|r| r.next_at) {
                    Some(next) => (next - OffsetDateTime::now_utc())
                        .try_into()
                        .unwrap_or_default(),
                    None => desk.next_delay(connector.as_ref(), failures),
                };
                report(Round::Done(reports));
                tokio::time::sleep(wait).await;
            }
        });
    }
}
