//! Runs the console's effects in the background (store thread, network) and posts the answers
//! back as actions, so the draw loop never waits on I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use time::OffsetDateTime;
use tokio::runtime::Handle;

use super::desk::Desk;
use super::poller;
use super::state::{Action, Effect, WINDOW};
use crate::domain::MentionState;

pub struct Worker {
    desk: Arc<Desk>,
    rt: Handle,
    tx: Sender<Action>,
}

impl Worker {
    pub fn new(desk: Arc<Desk>, rt: Handle, tx: Sender<Action>) -> Self {
        Worker { desk, rt, tx }
    }

    /// Starts an effect; its answer arrives later on the action channel.
    pub fn run(&self, effect: Effect) {
        let desk = self.desk.clone();
        let tx = self.tx.clone();
        if effect == Effect::StartPolling {
            // Each round of each account comes back as its own action.
            let tx = std::sync::Mutex::new(tx);
            poller::spawn(desk, &self.rt, move |round| {
                let action = match round {
                    poller::Round::Paging(r) => Action::Backfilling(r),
                    poller::Round::Done(reports) => Action::Polled(reports),
                };
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(action);
                }
            });
            return;
        }
        self.rt.spawn(async move {
            if let Some(action) = perform(&desk, effect).await {
                // The console may have quit; then nobody needs the answer.
                let _ = tx.send(action);
            }
        });
    }
}

async fn perform(desk: &Desk, effect: Effect) -> Option<Action> {
    let no_vars = BTreeMap::new();
    match effect {
        Effect::LoadPage { query, offset } => {
            let q = query.clone();
            let answer = desk
                .store
                .call(move |s| {
                    let now = OffsetDateTime::now_utc();
                    let rows = s.page(&q, now, offset, WINDOW)?;
                    Ok((rows, s.count(&q, now)?, s.counts(now)?, s.crisis()?))
                })
                .await;
            match answer {
                Ok((rows, total, counts, crisis)) => Some(Action::Page {
                    query,
                    offset,
                    rows,
                    total,
                    counts,
                    crisis,
                }),
                Err(e) => {
                    tracing::error!("loading the queue failed: {e}");
                    Some(Action::Acted {
                        what: "loading the queue".into(),
                        result: Err(e.to_string()),
                    })
                }
            }
        }
        Effect::Preview { mention, template } => Some(Action::Previewed(
            desk.preview(mention, &template, None, &no_vars)
                .await
                .map(Box::new)
                .map_err(|e| e.to_string()),
        )),
        Effect::Send { mention, template } => Some(Action::Sent(
            desk.send(mention, &template, None, &no_vars)
                .await
                .map_err(|e| e.to_string()),
        )),
        Effect::Act { mention, action } => {
            let result = desk.act(mention, action).await;
            let result = match result {
                Ok(entry) if entry.record.outcome.as_deref() == Some("ok") => Ok(()),
                Ok(entry) => Err(entry.record.detail.unwrap_or_else(|| "failed".into())),
                Err(e) => Err(e.to_string()),
            };
            Some(Action::Acted {
                what: format!("{} mention {mention}", action.as_str()),
                result,
            })
        }
        Effect::Retag { mention, tags } => Some(Action::Acted {
            what: format!("retag mention {mention} as {}", tags.tone),
            result: desk
                .retag(mention, tags)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }),
        Effect::Done { mention } => Some(Action::Acted {
            what: format!("mention {mention} closed"),
            result: desk
                .set_state(mention, MentionState::Done)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }),
        Effect::StartPolling => None,
        Effect::LoadStats => {
            let days = super::stats::CONSOLE_DAYS;
            let stats = super::stats::load(desk, days, OffsetDateTime::now_utc()).await;
            Some(Action::StatsLoaded(
                stats.map(Box::new).map_err(|e| e.to_string()),
            ))
        }
        Effect::Reconcile => match desk.reconcile().await {
            Ok(settled) if settled.is_empty() => None,
            Ok(settled) => Some(Action::Acted {
                what: format!(
                    "{} unfinished send(s) from the last run settled: {}",
                    settled.len(),
                    settled
                        .iter()
                        .map(|r| format!("mention {} {}", r.mention, r.outcome))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                result: Ok(()),
            }),
            Err(e) => Some(Action::Acted {
                what: "settling unfinished sends".into(),
                result: Err(e.to_string()),
            }),
        },
    }
}
