//! Background polling: one task per account, each on its own schedule (the configured interval,
//! stretched to fit the account's remaining rate budget, or backing off after failures).

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::runtime::Handle;

use super::desk::{Desk, PollReport};

/// What a poller tells its listener.
#[derive(Debug, Clone)]
pub enum Round {
    /// A stream is still paging (a first-run backfill); the report so far.
    Paging(PollReport),
    /// An account's round has ended; the next one is scheduled.
    Done(Vec<PollReport>),
}

/// Starts one polling task per connected account; `report` hears every round and the progress of
/// long backfills. The tasks run until the runtime shuts down.
pub fn spawn(desk: Arc<Desk>, rt: &Handle, report: impl Fn(Round) + Send + Sync + 'static) {
    let report = Arc::new(report);
    for connector in desk.connectors.clone() {
        let (desk, report) = (desk.clone(), report.clone());
        rt.spawn(async move {
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
