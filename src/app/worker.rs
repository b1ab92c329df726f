//! Runs the console's effects in the background (store thread, network) and posts the answers
//! back as actions, so the draw loop never waits on I/O.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::runtime::Handle;

use super::desk::Desk;
use super::poller;
use super::state::{Action, Effect};
use crate::domain::{Mention, MentionId, MentionState};
use crate::store::{Counts, QueueQuery, Store};

pub struct Worker {
    desk: Arc<Desk>,
    rt: Handle,
    tx: Sender<Action>,
    /// Effects started and not yet finished (the pollers are not counted: they never finish).
    under_way: Arc<AtomicUsize>,
}

/// Counts one effect as under way for as long as it lives, however its task ends.
struct UnderWay(Arc<AtomicUsize>);

impl UnderWay {
    fn start(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        UnderWay(count.clone())
    }
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Worker {
    pub fn new(desk: Arc<Desk>, rt: Handle, tx: Sender<Action>) -> Self {
        Worker {
            desk,
            rt,
            tx,
            under_way: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits, at most `within`, for the effects under way to finish, so that quitting (`q`, or a
    /// dropped SSH connection) never cuts a send between its network call and its result.
    /// Returns how many were still under way when it gave up.
    pub fn finish(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let left = self.under_way.load(Ordering::SeqCst);
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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
                    poller::Round::Waiting => Action::PollWaiting,
                    poller::Round::Paging(r) => Action::Backfilling(r),
                    poller::Round::Done(reports) => Action::Polled(reports),
                };
                if let Ok(tx) = tx.lock() {
                    let _ = tx.send(action);
                }
            });
            return;
        }
        let under_way = UnderWay::start(&self.under_way);
        self.rt.spawn(async move {
            let _under_way = under_way;
            if let Some(action) = perform(&desk, effect, &tx).await {
                // The console may have quit; then nobody needs the answer.
                let _ = tx.send(action);
            }
        });
    }
}

/// What a page load reads: where the page starts, its rows, the view's length, the status bar's
/// counts and crisis mode. None of it walks the whole table (see `Store::page_near`, `counts`).
pub type PageAnswer = (usize, Vec<Mention>, usize, Counts, Option<String>);

/// Runs an [`Effect::LoadPage`] against the store, as the store thread does for the console.
pub fn load_page(
    s: &mut Store,
    q: &QueueQuery,
    offset: usize,
    near: Option<(MentionId, usize)>,
    limit: usize,
) -> crate::store::Result<PageAnswer> {
    if q.search.is_some() {
        // A search finds what the last ingests left for the index's next batch too.
        s.index_pending()?;
    }
    let now = OffsetDateTime::now_utc();
    let total = s.count(q, now)?;
    let (offset, rows) = s.page_near(q, offset, near, total, limit)?;
    Ok((offset, rows, total, s.counts(now)?, s.crisis()?))
}

async fn perform(desk: &Desk, effect: Effect, tx: &Sender<Action>) -> Option<Action> {
    let no_vars = BTreeMap::new();
    match effect {
        Effect::LoadPage {
            query,
            offset,
            near,
            limit,
        } => {
            let q = query.clone();
            let answer = desk
                .store
                .call(move |s| {
                    // Read first: a commit by another process after it shows as a change.
                    let version = s.data_version()?;
                    Ok((load_page(s, &q, offset, near, limit)?, version))
                })
                .await;
            match answer {
                Ok(((offset, rows, total, counts, crisis), version)) => {
                    let _ = tx.send(Action::Page {
                        query,
                        offset,
                        rows,
                        total,
                        counts,
                        crisis,
                    });
                    Some(Action::Baseline(version))
                }
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
        Effect::LoadAe { mention } => Some(Action::AeLoaded(
            desk.ae_case(mention)
                .await
                .map(|(case, saved)| (Box::new(case), saved))
                .map_err(|e| e.to_string()),
        )),
        Effect::SaveAe { case } => {
            let mention = case.mention;
            let gaps = case.gaps();
            let result = desk.save_ae_case(*case).await;
            Some(Action::Acted {
                what: if gaps.is_empty() {
                    format!("AE intake for mention {mention} saved, all four elements present")
                } else {
                    format!(
                        "AE intake for mention {mention} saved, still to complete: {}",
                        gaps.join(", ")
                    )
                },
                result: result.map(|_| ()).map_err(|e| e.to_string()),
            })
        }
        // The console opens the editor itself (it owns the terminal).
        Effect::EditDraft { .. } => None,
        Effect::FileDraft { mention, text } => {
            let result = desk.draft(Some(mention), text).await;
            Some(Action::Acted {
                what: match &result {
                    Ok((id, _)) => format!(
                        "draft {id} filed for MLR review (Tab to the Review view; it cannot be sent until `tonedesk library approve {id}`)"
                    ),
                    Err(_) => "filing the draft".into(),
                },
                result: result.map(|_| ()).map_err(|e| e.to_string()),
            })
        }
        Effect::LoadDrafts => match desk.drafts(Some(crate::domain::DraftState::Draft)).await {
            Ok(d) => Some(Action::DraftsLoaded(d)),
            Err(e) => Some(Action::Acted {
                what: "loading the drafts".into(),
                result: Err(e.to_string()),
            }),
        },
        Effect::Snooze { mention, until } => Some(Action::Acted {
            what: format!(
                "mention {mention} snoozed until {}",
                crate::domain::audit::format_utc(until)
            ),
            result: desk
                .snooze(mention, until)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }),
        Effect::FollowUp { mention } => {
            let result = desk.follow_up(mention).await;
            Some(Action::Acted {
                what: match &result {
                    Ok((_, until)) => format!(
                        "follow-up reminder for mention {mention} on {}",
                        until.date()
                    ),
                    Err(_) => format!("follow-up for mention {mention}"),
                },
                result: result.map(|_| ()).map_err(|e| e.to_string()),
            })
        }
        Effect::CheckChanged => match desk.store.call(|s| s.data_version()).await {
            Ok(v) => {
                tracing::debug!("data version {v}");
                Some(Action::DataVersion(v))
            }
            Err(e) => {
                tracing::warn!("reading the data version failed: {e}");
                None
            }
        },
        Effect::Wake => match desk.wake().await {
            Ok(back) if back.is_empty() => None,
            Ok(back) => Some(Action::Woke(back)),
            Err(e) => {
                tracing::warn!("waking snoozed mentions failed: {e}");
                None
            }
        },
        Effect::LoadStats => {
            let days = super::stats::CONSOLE_DAYS;
            let stats = super::stats::load(desk, days, OffsetDateTime::now_utc()).await;
            Some(Action::StatsLoaded(
                stats.map(Box::new).map_err(|e| e.to_string()),
            ))
        }
        Effect::Reconcile => match desk.reconcile().await {
            Ok(settled) if settled.is_empty() => None,
            Ok(settled) if settled.iter().all(|r| r.outcome == "pending") => Some(Action::Acted {
                what: "settling unfinished sends".into(),
                result: Err(format!(
                    "{} unfinished send(s) of a stopped tonedesk may still reach the platform; \
                     they are settled at the next start in a few minutes",
                    settled.len()
                )),
            }),
            Ok(settled) => {
                let settled: Vec<_> = settled
                    .into_iter()
                    .filter(|r| r.outcome != "pending")
                    .collect();
                let list = settled
                    .iter()
                    .map(|r| format!("mention {} {}", r.mention, r.outcome))
                    .collect::<Vec<_>>()
                    .join(", ");
                let unknown = settled.iter().filter(|r| r.outcome == "unknown").count();
                Some(Action::Acted {
                    what: format!(
                        "{} unfinished send(s) from the last run settled",
                        settled.len()
                    ),
                    // An outcome nobody could establish is for a person to check on the platform.
                    result: if unknown > 0 {
                        Err(format!(
                            "{list}; check the {unknown} unknown one(s) on the platform before answering again"
                        ))
                    } else {
                        Ok(())
                    },
                })
            }
            Err(e) => Some(Action::Acted {
                what: "settling unfinished sends".into(),
                result: Err(e.to_string()),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Library;
    use crate::app::library::STARTER;
    use crate::config::Config;
    use crate::paths::Paths;
    use crate::store::Store;

    #[test]
    fn finish_waits_for_a_send_under_way() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut lib = Library::default();
        let mut errors = Vec::new();
        for (name, text) in STARTER {
            lib.add_file(std::path::Path::new(name), text, &mut errors);
        }
        let desk = {
            let _rt = rt.enter();
            let store = Store::open_in_memory().unwrap();
            Arc::new(
                Desk::assemble(
                    Paths::under(dir.path()),
                    Config::default(),
                    store,
                    lib,
                    errors,
                )
                .unwrap(),
            )
        };
        rt.block_on(desk.poll_once());
        let all = rt.block_on(desk.store.call(|s| s.all_mentions())).unwrap();
        let m = all
            .iter()
            .find(|m| m.tags.flags.contains(crate::domain::Flag::Ae))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let worker = Worker::new(desk.clone(), rt.handle().clone(), tx);
        worker.run(Effect::Send {
            mention: m.id,
            template: "ae-report-private".into(),
        });
        assert_eq!(worker.finish(Duration::from_secs(10)), 0);
        // Finished means answered: the result is written and the console was told.
        let entries = rt.block_on(desk.store.call(|s| s.audit_entries())).unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.record.action.as_str()).collect();
        assert_eq!(actions, ["send_intent", "send_result"]);
        assert!(rx.try_iter().any(|a| matches!(a, Action::Sent(Ok(_)))));
        assert_eq!(worker.finish(Duration::ZERO), 0);
    }
}
