//! The desk: configuration, store, library, classifier and platform connectors wired together.
//! Both the console and the subcommands work through it, so a send from `tonedesk reply` and one
//! from the `y` key pass the same checks and write the same audit entries.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll, Waker};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::library::{Library, LibraryError};
use crate::config::Config;
use crate::domain::audit::{AuditEntry, AuditRecord};
use crate::domain::playbook::ModAction;
use crate::domain::reply::{Fill, SendContext, check_send, render};
use crate::domain::text::{addressed, measure};
use crate::domain::{
    Channel, Flag, Flags, IncomingMention, Mention, MentionId, MentionState, Platform, Refusal,
    Tags,
};
use crate::paths::Paths;
use crate::platforms::demo::{self, Demo};
use crate::platforms::http::Budget;
use crate::platforms::{Connector, Outgoing, PlatformError};
use crate::store::{PollRecord, Store, StoreError, StoreHandle};
use crate::tone::Classifier;

/// Why a send did not happen (or did not finish).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("refused by {0}")]
    Refused(#[from] Refusal),
    #[error("no approved reply with id '{0}' (see `tonedesk library list`)")]
    NoTemplate(String),
    #[error("account '{0}' is not connected: {1}")]
    NoConnector(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The platform answered but the result could not be written (a disk that filled up
    /// meanwhile): the send stays open in the outbox and the next start settles it.
    #[error(
        "the reply's outcome is '{outcome}'{}, but it could not be recorded: {source}. Once that \
         is fixed, the next start (`tonedesk poll --once`, or the console) settles it from the \
         platform; do not send it again",
        remote_id.as_deref().map(|r| format!(" (remote id {r})")).unwrap_or_default()
    )]
    Unrecorded {
        outcome: String,
        remote_id: Option<String>,
        source: StoreError,
    },
}

/// A rendered reply and the verdict of every rule on it, before anything leaves.
#[derive(Debug, Clone)]
pub struct Preview {
    pub mention: Mention,
    pub template: String,
    pub version: u32,
    pub approval: String,
    pub channel: Channel,
    /// The exact text that would be sent, when it could be rendered.
    pub text: Option<String>,
    pub length: usize,
    pub limit: usize,
    pub verdict: Result<(), Refusal>,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub mention: MentionId,
    /// `sent`, `failed` or `unknown`.
    pub outcome: String,
    pub remote_id: Option<String>,
    pub error: Option<String>,
    pub intent_seq: i64,
    pub result_seq: i64,
}

/// Hears a stream's running report while it is still paging (a first-run backfill).
pub type Progress<'a> = dyn Fn(&PollReport) + Send + Sync + 'a;

/// What one poll of one stream did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReport {
    pub account: String,
    pub stream: String,
    pub new: usize,
    pub error: Option<String>,
    /// Failed polls of this account in a row, this one included.
    pub failures: u32,
    /// When the account will be polled again.
    pub next_at: Option<OffsetDateTime>,
}

pub struct Desk {
    pub config: Config,
    pub paths: Paths,
    pub store: StoreHandle,
    pub library: Arc<Library>,
    pub library_errors: Vec<LibraryError>,
    pub classifier: Arc<Classifier>,
    pub connectors: Vec<Arc<dyn Connector>>,
    /// Configured accounts that could not be connected, with the reason.
    pub unconnected: Vec<(String, String)>,
    pub operator: String,
    /// The machine's name, recorded in every audit entry with the operator.
    pub host: String,
    pub demo: bool,
}

/// Proof that this process is the one polling its home; released when dropped.
#[derive(Debug)]
pub struct PollLock {
    _file: std::fs::File,
}

impl Desk {
    /// Opens everything under `paths`. Must run inside a tokio runtime (the store thread answers
    /// async calls).
    pub fn open(paths: Paths, config: Config) -> Result<Desk> {
        paths.create_dirs()?;
        // The store's error says why (a full or read-only disk, permissions) and what to do.
        let store = Store::open(&paths.database)
            .with_context(|| format!("cannot open the database {}", paths.database.display()))?;
        Library::seed(&paths.library_dir).with_context(|| {
            format!(
                "cannot seed the library folder {}",
                paths.library_dir.display()
            )
        })?;
        let (library, library_errors) = match Library::load(&paths.library_dir) {
            Ok(lib) => (lib, Vec::new()),
            Err(errors) => (Library::default(), errors),
        };
        Desk::assemble(paths, config, store, library, library_errors)
    }

    /// Wires an already opened store and library (tests use an in-memory store).
    pub fn assemble(
        paths: Paths,
        config: Config,
        mut store: Store,
        library: Library,
        library_errors: Vec<LibraryError>,
    ) -> Result<Desk> {
        let demo = config.is_demo();
        let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
        let mut unconnected = Vec::new();
        if demo {
            for p in Platform::ALL {
                store.upsert_account(&demo::account_name(p), p, demo::handle(p), true)?;
                connectors.push(Arc::new(Demo::new(p, &paths.demo_sink)));
            }
        } else {
            for a in &config.accounts {
                store.upsert_account(&a.name, a.platform, &a.handle, false)?;
                match crate::platforms::connect(&account_spec(a, &config.poll)) {
                    Ok(c) => connectors.push(c),
                    Err(e) => unconnected.push((a.name.clone(), e.to_string())),
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        // What the last polls left of each account's budget (perhaps in another process: a
        // `poll --once` from cron, a console since closed) still holds until its window resets.
        match store.poll_statuses() {
            Ok(records) => {
                for c in &connectors {
                    if let Some(b) = recorded_budget(&records, c.account(), now) {
                        c.resume_budget(b);
                    }
                }
            }
            Err(e) => tracing::warn!("cannot read the recorded poll budgets: {e}"),
        }
        // The first sight of every reply version fixes its text hash; a later change of the text
        // under the same id and version is then refused as tampered.
        for r in &library.replies {
            store.remember_template(&r.id, r.version, &r.text_hash(), now)?;
        }
        let classifier = Arc::new(Classifier::new(config.tone_config()));
        if let Some((_, _, json)) = store.load_model()? {
            match crate::tone::Model::from_json(&json) {
                Ok(model) => classifier.set_model(Some(model)),
                Err(e) => {
                    // A model from another version of tonedesk: learn again from the corrections.
                    tracing::warn!("the stored tone model could not be read ({e}); retraining");
                    let model = train(store.corrections()?);
                    store.save_model(
                        model.examples(),
                        &model.to_json(),
                        OffsetDateTime::now_utc(),
                    )?;
                    classifier.set_model(Some(model));
                }
            }
        }
        let operator = config.operator();
        Ok(Desk {
            store: StoreHandle::spawn(store)?,
            library: Arc::new(library),
            library_errors,
            classifier,
            connectors,
            unconnected,
            operator,
            host: crate::config::host_name(),
            demo,
            config,
            paths,
        })
    }

    /// The home's poll lock, if no other process holds it (an advisory file lock next to the
    /// database; the OS drops it when the holder exits, even on kill -9).
    pub fn poll_lock(&self) -> Option<PollLock> {
        let path = self.paths.database.with_file_name("poll.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| tracing::warn!("cannot open {}: {e}", path.display()))
            .ok()?;
        match file.try_lock() {
            Ok(()) => Some(PollLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => None,
            Err(std::fs::TryLockError::Error(e)) => {
                // A file system without locks: poll anyway rather than never.
                tracing::warn!(
                    "cannot lock {}: {e}; polling without the lock",
                    path.display()
                );
                Some(PollLock { _file: file })
            }
        }
    }

    pub fn connector(&self, account: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.iter().find(|c| c.account() == account)
    }

    pub(crate) fn record(&self, action: &str) -> AuditRecord {
        let mut rec = AuditRecord::new(OffsetDateTime::now_utc(), &self.operator, action);
        rec.host = Some(self.host.clone());
        rec
    }

    /// An audit record about one mention.
    pub(crate) fn record_about(&self, action: &str, m: &Mention) -> AuditRecord {
        let mut rec = self.record(action);
        rec.platform = Some(m.platform.as_str().into());
        rec.account = Some(m.account.clone());
        rec.mention = Some(m.id);
        rec
    }

    /// Tags a mention the way ingest does.
    pub fn classify(&self, m: &crate::domain::IncomingMention) -> Tags {
        self.classifier.classify(&m.text, &m.author)
    }

    /// Polls every stream of every connector once. Errors are reported per stream, never fatal.
    pub async fn poll_once(&self) -> Vec<PollReport> {
        let mut reports = Vec::new();
        for c in &self.connectors {
            reports.extend(self.poll_account(c.as_ref(), 0, &|_| {}).await);
        }
        reports
    }

    /// Polls every stream of one account once and records how it went (for the status bar and
    /// `doctor`), including when the next poll is due given `failures` in a row before this one.
    pub async fn poll_account(
        &self,
        c: &dyn Connector,
        failures: u32,
        progress: &Progress<'_>,
    ) -> Vec<PollReport> {
        let mut reports = Vec::new();
        for stream in c.streams() {
            let report = self.poll_stream(c, &stream, progress).await;
            if let Some(e) = &report.error {
                tracing::warn!(account = c.account(), stream, error = %e, "poll failed");
            }
            reports.push(report);
        }
        let failures = if reports.iter().any(|r| r.error.is_some()) {
            failures + 1
        } else {
            0
        };
        let now = OffsetDateTime::now_utc();
        let next = now + self.next_delay(c, failures);
        let budget = c.budget();
        let records: Vec<PollRecord> = reports
            .iter()
            .map(|r| PollRecord {
                account: r.account.clone(),
                stream: r.stream.clone(),
                last_ok_at: r.error.is_none().then_some(now.unix_timestamp()),
                last_error: r.error.clone(),
                last_error_at: r.error.as_ref().map(|_| now.unix_timestamp()),
                next_at: Some(next.unix_timestamp()),
                budget_limit: budget.and_then(|b| b.limit).map(|n| n as i64),
                budget_remaining: budget.and_then(|b| b.remaining).map(|n| n as i64),
                budget_reset: budget.and_then(|b| b.reset_at).map(|t| t.unix_timestamp()),
            })
            .collect();
        let saved = self
            .store
            .call(move |s| records.iter().try_for_each(|r| s.record_poll(r)))
            .await;
        if let Err(e) = saved {
            tracing::warn!("could not record the poll status: {e}");
        }
        for r in &mut reports {
            r.failures = failures;
            r.next_at = Some(next);
        }
        reports
    }

    /// How long to wait before polling an account again: the configured interval, stretched so
    /// the remaining rate budget lasts until its reset (never spending the last request), or an
    /// exponential backoff with jitter after failures.
    pub fn next_delay(&self, c: &dyn Connector, failures: u32) -> Duration {
        let base = Duration::from_secs(self.config.poll.interval_secs);
        let now = OffsetDateTime::now_utc();
        let mut delay = base;
        if failures > 0 {
            let backoff = crate::platforms::http::backoff(failures + 3).max(base);
            delay = backoff.min(Duration::from_secs(15 * 60));
        }
        if let Some(b) = c.budget()
            && let (Some(remaining), Some(reset)) = (b.remaining, b.reset_at)
            && reset > now
        {
            let window = Duration::from_secs((reset - now).whole_seconds().unsigned_abs() + 1);
            // Each poll costs one request per stream; keep one request in reserve.
            let streams = c.streams().len().max(1) as u64;
            let polls_left = remaining.saturating_sub(1) / streams;
            let spread = if polls_left == 0 {
                window
            } else {
                window / u32::try_from(polls_left).unwrap_or(u32::MAX)
            };
            delay = delay.max(spread);
        }
        delay
    }

    async fn poll_stream(
        &self,
        c: &dyn Connector,
        stream: &str,
        progress: &Progress<'_>,
    ) -> PollReport {
        let mut report = PollReport {
            account: c.account().to_owned(),
            stream: stream.to_owned(),
            new: 0,
            error: None,
            failures: 0,
            next_at: None,
        };
        let (account, s) = (report.account.clone(), report.stream.clone());
        let mut cursor = match self.store.call(move |st| st.cursor(&account, &s)).await {
            Ok(c) => c,
            Err(e) => {
                report.error = Some(e.to_string());
                return report;
            }
        };
        // Pages are fetched and tagged while the store thread writes the ones before. Pages that
        // arrive while it is still writing wait and go to it together, in one transaction, once
        // it is done (up to `GROUP_PAGES`), which costs it less than a transaction each. A
        // group is sent only once the one before it committed, since its cursor continues from
        // that one's, so a group that fails leaves every later page unstored and the stored
        // cursor where the last committed group put it.
        let mut storing: Option<Pin<Box<dyn Future<Output = crate::store::Result<usize>> + Send>>> =
            None;
        let mut group = Group::default();
        let mut stored_ok = true;
        let mut caught_up = false;
        for _ in 0..ROUND_PAGES {
            let page = match c.fetch(stream, cursor.as_deref()).await {
                Ok(page) => page,
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            };
            for why in &page.skipped {
                tracing::warn!(account = c.account(), stream, "skipped an item: {why}");
            }
            // Tagged before waiting, so that the tagging too runs beside the store's write.
            group.items.extend(page.mentions.into_iter().map(|m| {
                let tags = self.classify(&m);
                (m, tags)
            }));
            group.pages += 1;
            if page.cursor.is_some() {
                cursor.clone_from(&page.cursor);
                group.cursor = page.cursor;
            }
            if let Some(busy) = storing.as_mut() {
                let done = if group.pages >= GROUP_PAGES || !page.more {
                    Some(busy.await)
                } else {
                    now_or_never(busy)
                };
                let Some(stored) = done else {
                    continue;
                };
                storing = None;
                if !count_stored(stored, &mut report, Some(progress)) {
                    stored_ok = false;
                    break;
                }
            }
            storing = Some(Box::pin(
                self.store_group(std::mem::take(&mut group), &report),
            ));
            if !page.more {
                caught_up = true;
                break;
            }
        }
        if let Some(busy) = storing.take() {
            stored_ok = count_stored(busy.await, &mut report, None);
        }
        // Pages that were waiting for the store when the round ended (a fetch failed, or the
        // round's last page was fetched) are stored too.
        if stored_ok && group.pages > 0 {
            let stored = self.store_group(group, &report).await;
            count_stored(stored, &mut report, None);
        }
        // Once the stream is caught up, its last mentions go into the full-text index (the
        // index's own thread takes them in batches as ingest commits, and this waits for the
        // rest). A round that stops with pages still to come (a backfill) leaves them to the
        // batches that follow; a search indexes whatever waits first.
        if caught_up
            && stored_ok
            && let Err(e) = self.store.call(|st| st.index_pending()).await
        {
            report.error.get_or_insert(e.to_string());
        }
        report
    }

    /// Sends a group of tagged pages to the store thread: one transaction, which also moves the
    /// stream's cursor to the group's last.
    fn store_group(
        &self,
        group: Group,
        report: &PollReport,
    ) -> impl Future<Output = crate::store::Result<usize>> + Send + use<> {
        let targets = self.config.targets.clone();
        let (account, stream) = (report.account.clone(), report.stream.clone());
        self.store.submit(move |st| {
            let cursor = group
                .cursor
                .as_deref()
                .map(|n| (account.as_str(), stream.as_str(), n));
            st.ingest(&group.items, &targets, cursor, OffsetDateTime::now_utc())
        })
    }

    /// Renders a reply for a mention and runs every rule on it, without sending.
    pub async fn preview(
        &self,
        mention: MentionId,
        template: &str,
        channel: Option<Channel>,
        vars: &BTreeMap<String, String>,
    ) -> Result<Preview, SendError> {
        let reply = self
            .library
            .get(template)
            .ok_or_else(|| SendError::NoTemplate(template.to_owned()))?
            .clone();
        let (id, version) = (reply.id.clone(), reply.version);
        let (m, known_hash, earlier, crisis) = self
            .store
            .call(move |s| {
                Ok((
                    s.mention(mention)?,
                    s.template_hash(&id, version)?,
                    s.earlier_reply(mention)?,
                    s.crisis()?,
                ))
            })
            .await?;
        let channel = channel.unwrap_or_else(|| reply.default_channel(&m));
        let fill = Fill {
            agent_initials: self.config.initials(),
            signoff: self.config.signoff(),
            case: case_number(m.id),
            contacts: self.config.contacts(),
        };
        let rendered = render(&reply, &m.author, &fill, vars)
            .map(|text| addressed(m.platform, &m.author.handle, &text));
        let ctx = SendContext {
            today: OffsetDateTime::now_utc().date(),
            crisis: crisis.as_deref(),
            known_hash: known_hash.as_deref(),
            earlier_reply: earlier.as_deref(),
            vars,
            products: &self.config.brand.products,
        };
        let (text, verdict) = match rendered {
            Ok(text) => {
                let verdict = check_send(&reply, &m, channel, &text, &ctx);
                (Some(text), verdict)
            }
            Err(refusal) => (None, Err(refusal)),
        };
        Ok(Preview {
            length: text.as_deref().map_or(0, |t| measure(m.platform, t)),
            limit: m.platform.limit(),
            mention: m,
            template: reply.id.clone(),
            version: reply.version,
            approval: reply.approval.clone(),
            channel,
            text,
            verdict,
        })
    }

    /// Sends an approved reply: intent (audit + outbox, one transaction) → network → result.
    /// Every rule is checked again right before the intent is written.
    pub async fn send(
        &self,
        mention: MentionId,
        template: &str,
        channel: Option<Channel>,
        vars: &BTreeMap<String, String>,
    ) -> Result<SendReport, SendError> {
        let p = self.preview(mention, template, channel, vars).await?;
        p.verdict.clone()?;
        let Some(text) = p.text.clone() else {
            return Err(SendError::NoTemplate(template.to_owned()));
        };
        let m = &p.mention;
        let connector = self
            .connector(&m.account)
            .ok_or_else(|| {
                let why = self
                    .unconnected
                    .iter()
                    .find(|(a, _)| a == &m.account)
                    .map_or("no such account in the config".to_owned(), |(_, e)| {
                        e.clone()
                    });
                SendError::NoConnector(m.account.clone(), why)
            })?
            .clone();

        let reply = self
            .library
            .get(template)
            .ok_or_else(|| SendError::NoTemplate(template.to_owned()))?;
        let hash = reply.text_hash();
        let first_key = idempotency_key(m.id, &p.template);
        let mut intent = self.record_about("send_intent", m);
        fill_send_fields(&mut intent, &p, &text);
        intent.outcome = Some("intent".into());
        let outbox = crate::store::OutboxNew {
            idem_key: String::new(),
            mention_id: m.id,
            account: m.account.clone(),
            platform: m.platform,
            template: p.template.clone(),
            version: p.version,
            channel: p.channel.as_str().into(),
            text: text.clone(),
            owner: process_identity(),
        };
        let (tid, tver) = (p.template.clone(), p.version);
        let (outbox_id, intent_entry, idem_key) = self
            .store
            .call(move |s| {
                let now = OffsetDateTime::now_utc();
                s.ensure_room()?;
                s.remember_template(&tid, tver, &hash, now)?;
                begin_send_under_a_free_key(s, first_key, outbox, intent, now)
            })
            .await?;

        let result = connector
            .send(&Outgoing {
                idem_key: &idem_key,
                to: m,
                channel: p.channel,
                text: &text,
            })
            .await;
        let (outcome, remote_id, error) = match result {
            Ok(sent) => ("sent", Some(sent.remote_id), None),
            Err(e) if e.certainly_not_sent() => ("failed", None, Some(e.to_string())),
            Err(e) => ("unknown", None, Some(e.to_string())),
        };
        let mut rec = self.record_about("send_result", m);
        fill_send_fields(&mut rec, &p, &text);
        rec.outcome = Some(outcome.into());
        rec.remote_id = remote_id.clone();
        rec.detail = error.clone();
        rec.attempt = Some(idem_key.clone());
        let (rid, err) = (remote_id.clone(), error.clone());
        let result_entry = self
            .store
            .call(move |s| {
                s.finish_send(
                    outbox_id,
                    outcome,
                    rid.as_deref(),
                    err.as_deref(),
                    rec,
                    OffsetDateTime::now_utc(),
                )
            })
            .await
            .map_err(|source| SendError::Unrecorded {
                outcome: outcome.into(),
                remote_id: remote_id.clone(),
                source,
            })?;
        Ok(SendReport {
            mention: m.id,
            outcome: outcome.into(),
            remote_id,
            error,
            intent_seq: intent_entry.seq,
            result_seq: result_entry.seq,
        })
    }

    /// Settles sends whose outcome was never written (the program stopped between intent and
    /// result): asks the platform whether the reply exists; never sends again.
    pub async fn reconcile(&self) -> Result<Vec<SendReport>, SendError> {
        let pending = self.store.call(|s| s.pending_sends()).await?;
        let mut out = Vec::new();
        // A send whose process is still running is in flight, not crashed: leave it to that process.
        // The demo's sends are local and synchronous: nothing of them can still be on its way.
        let window = if self.demo {
            Duration::ZERO
        } else {
            crate::platforms::http::longest_send(Duration::from_secs(
                self.config.poll.request_timeout_secs,
            ))
        };
        for row in pending
            .into_iter()
            .filter(|r| !r.owner.as_deref().is_some_and(process_alive))
        {
            let mention_id = row.mention_id;
            let mention = self.store.call(move |s| s.mention(mention_id)).await?;
            let channel = row.channel.parse().unwrap_or(Channel::Public);
            let attempt = Outgoing {
                idem_key: &row.idem_key,
                to: &mention,
                channel,
                text: &row.text,
            };
            let found = match self.connector(&row.account) {
                Some(c) => c.find_sent(&attempt).await,
                None => Err(PlatformError::Local("account not connected".into())),
            };
            let (outcome, remote_id, detail) = match found {
                Ok(Some(sent)) => (
                    "sent",
                    Some(sent.remote_id),
                    "reconciled: found on the platform".to_owned(),
                ),
                Ok(None) => {
                    // The sender died, but a request it sent may still be on its way or at the
                    // server: until that cannot be, "not there yet" is not "failed" (settling it
                    // as failed would let the mention be answered a second time).
                    let age = OffsetDateTime::now_utc().unix_timestamp() - row.created_at;
                    let wait = if window.is_zero() {
                        0
                    } else {
                        window.as_secs() as i64 + 1 - age
                    };
                    if wait > 0 {
                        out.push(SendReport {
                            mention: row.mention_id,
                            outcome: "pending".into(),
                            remote_id: None,
                            error: Some(format!(
                                "not on the platform yet, but its request may still arrive; \
                                 settled by a start in {wait} s or later"
                            )),
                            intent_seq: 0,
                            result_seq: 0,
                        });
                        continue;
                    }
                    (
                        "failed",
                        None,
                        "reconciled: not found on the platform".to_owned(),
                    )
                }
                Err(e) => (
                    "unknown",
                    None,
                    format!("reconcile failed, check by hand: {e}"),
                ),
            };
            let mut rec = self.record("send_result");
            rec.account = Some(row.account.clone());
            rec.mention = Some(row.mention_id);
            rec.outcome = Some(outcome.into());
            rec.remote_id = remote_id.clone();
            rec.detail = Some(detail.clone());
            rec.attempt = Some(row.idem_key.clone());
            let rid = remote_id.clone();
            let settled = self
                .store
                .call(move |s| {
                    s.finish_send(
                        row.id,
                        outcome,
                        rid.as_deref(),
                        None,
                        rec,
                        OffsetDateTime::now_utc(),
                    )
                })
                .await;
            let entry = match settled {
                Ok(entry) => entry,
                // Another start settled it while this one asked the platform.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            out.push(SendReport {
                mention: row.mention_id,
                outcome: outcome.into(),
                remote_id,
                error: Some(detail),
                intent_seq: 0,
                result_seq: entry.seq,
            });
        }
        Ok(out)
    }

    /// A playbook action on the platform (like, hide, block, mute, report), audited either way.
    pub async fn act(
        &self,
        mention: MentionId,
        action: ModAction,
    ) -> Result<AuditEntry, SendError> {
        let m = self.store.call(move |s| s.mention(mention)).await?;
        let result = match self.connector(&m.account) {
            Some(c) => c.act(action, &m).await,
            None => Err(PlatformError::Local(format!(
                "account '{}' is not connected",
                m.account
            ))),
        };
        let mut rec = self.record_about(action.as_str(), &m);
        rec.remote_id = Some(m.remote_id.clone());
        match &result {
            Ok(()) => rec.outcome = Some("ok".into()),
            Err(e) => {
                rec.outcome = Some(
                    if e.certainly_not_sent() {
                        "failed"
                    } else {
                        "unknown"
                    }
                    .into(),
                );
                rec.detail = Some(e.to_string());
            }
        }
        Ok(self.store.call(move |s| s.audit(rec)).await?)
    }

    /// An operator's correction of the tags; kept and audited.
    pub async fn retag(&self, mention: MentionId, tags: Tags) -> Result<AuditEntry, SendError> {
        let old = self.store.call(move |s| s.mention(mention)).await?;
        let newly_ae = tags.flags.contains(Flag::Ae) && !old.tags.flags.contains(Flag::Ae);
        let mut rec = self.record_about(if newly_ae { "ae_flag" } else { "retag" }, &old);
        rec.outcome = Some("ok".into());
        rec.detail = Some(format!(
            "{} [{}] -> {} [{}]",
            old.tags.tone,
            flag_list(old.tags.flags),
            tags.tone,
            flag_list(tags.flags)
        ));
        let targets = self.config.targets.clone();
        let entry = self
            .store
            .call(move |s| s.retag(mention, &tags, &targets, rec))
            .await?;
        // Every correction teaches the model at once (a logistic regression over the rules'
        // scores: about 0.1 s for 3,000 corrections, off the async threads).
        self.relearn().await?;
        Ok(entry)
    }

    /// Retrains the tone model from every stored correction, stores it, and uses it from now on.
    /// Returns how many corrections it learned from.
    pub async fn relearn(&self) -> Result<usize, SendError> {
        let corrections = self.store.call(|s| s.corrections()).await?;
        if corrections.is_empty() {
            self.classifier.set_model(None);
            return Ok(0);
        }
        let model = tokio::task::spawn_blocking(move || train(corrections))
            .await
            .map_err(|e| StoreError::Corrupt(format!("training the tone model failed: {e}")))?;
        let (n, json) = (model.examples(), model.to_json());
        self.store
            .call(move |s| s.save_model(n, &json, OffsetDateTime::now_utc()))
            .await?;
        self.classifier.set_model(Some(model));
        Ok(n)
    }

    /// Closes (or reopens) a mention; audited.
    pub async fn set_state(
        &self,
        mention: MentionId,
        state: MentionState,
    ) -> Result<AuditEntry, SendError> {
        let m = self.store.call(move |s| s.mention(mention)).await?;
        let action = if state == MentionState::Done {
            "done"
        } else {
            "reopen"
        };
        let mut rec = self.record_about(action, &m);
        rec.outcome = Some("ok".into());
        Ok(self
            .store
            .call(move |s| s.set_state(mention, state, rec, OffsetDateTime::now_utc()))
            .await?)
    }

    /// Crisis mode on (with a reason) or off; audited.
    pub async fn set_crisis(&self, reason: Option<String>) -> Result<AuditEntry, SendError> {
        let mut rec = self.record(if reason.is_some() {
            "crisis_on"
        } else {
            "crisis_off"
        });
        rec.detail = reason.clone();
        rec.outcome = Some("ok".into());
        Ok(self
            .store
            .call(move |s| s.set_crisis(reason.as_deref(), rec))
            .await?)
    }

    /// Remembers the text hash of every library reply not seen before, and lists the replies
    /// whose text changed under an unchanged id+version.
    pub async fn check_templates(&self) -> Result<Vec<String>, SendError> {
        let entries: Vec<(String, u32, String)> = self
            .library
            .replies
            .iter()
            .map(|r| (r.id.clone(), r.version, r.text_hash()))
            .collect();
        Ok(self
            .store
            .call(move |s| {
                let now = OffsetDateTime::now_utc();
                let mut tampered = Vec::new();
                for (id, version, hash) in entries {
                    match s.template_hash(&id, version)? {
                        Some(h) if h != hash => tampered.push(id),
                        Some(_) => {}
                        None => s.remember_template(&id, version, &hash, now)?,
                    }
                }
                Ok(tampered)
            })
            .await?)
    }
}

fn fill_send_fields(rec: &mut AuditRecord, p: &Preview, text: &str) {
    rec.template = Some(p.template.clone());
    rec.template_version = Some(p.version);
    rec.approval = Some(p.approval.clone());
    rec.channel = Some(p.channel.as_str().into());
    rec.text = Some(text.to_owned());
}

/// This process as `pid:start-time` (the start time in clock ticks since boot, from
/// `/proc/self/stat`), which a reused pid does not share. `None` where there is no `/proc`.
pub fn process_identity() -> Option<String> {
    let pid = std::process::id();
    start_ticks(pid).map(|t| format!("{pid}:{t}"))
}

/// Whether the process named by [`process_identity`] still runs.
pub fn process_alive(identity: &str) -> bool {
    let Some((pid, ticks)) = identity.split_once(':') else {
        return false;
    };
    pid.parse()
        .ok()
        .and_then(start_ticks)
        .is_some_and(|t| t.to_string() == ticks)
}

fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What a connector needs of a configured account.
pub fn account_spec(
    a: &crate::config::Account,
    poll: &crate::config::Poll,
) -> crate::platforms::AccountSpec {
    use crate::platforms::credentials::Source;
    let (env, file) = match a.platform {
        Platform::Bluesky => (&a.app_password_env, &a.app_password_file),
        Platform::X | Platform::Mastodon => (&a.token_env, &a.token_file),
    };
    let secret = match (env, file) {
        (Some(var), _) => Some(Source::Env(var.clone())),
        (None, Some(path)) => Some(Source::File(path.clone())),
        (None, None) => None,
    };
    crate::platforms::AccountSpec {
        name: a.name.clone(),
        platform: a.platform,
        base_url: a.base_url.clone(),
        handle: a.handle.clone(),
        secret,
        identifier: a.identifier.clone(),
        request_timeout: Duration::from_secs(poll.request_timeout_secs),
        watch: a.watch.clone(),
    }
}

/// Trains the tone model on the operators' corrections.
fn train(corrections: Vec<(String, crate::domain::Tone)>) -> crate::tone::Model {
    let examples: Vec<crate::tone::Example> = corrections
        .into_iter()
        .map(|(text, tone)| crate::tone::Example { text, tone })
        .collect();
    crate::tone::Model::train(&examples)
}

/// The tightest poll budget recorded for `account` whose window has not reset by `now`.
fn recorded_budget(records: &[PollRecord], account: &str, now: OffsetDateTime) -> Option<Budget> {
    records
        .iter()
        .filter(|r| r.account == account)
        .filter_map(|r| {
            let reset = OffsetDateTime::from_unix_timestamp(r.budget_reset?).ok()?;
            let remaining = u64::try_from(r.budget_remaining?).ok()?;
            (reset > now).then(|| Budget {
                limit: r.budget_limit.and_then(|n| u64::try_from(n).ok()),
                remaining: Some(remaining),
                reset_at: Some(reset),
            })
        })
        .min_by_key(|b| b.remaining)
}

/// The case number a conversation is filed under.
pub fn case_number(mention: MentionId) -> String {
    format!("C{mention:06}")
}

fn flag_list(f: Flags) -> String {
    f.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(",")
}

/// The most keys [`begin_send_under_a_free_key`] tries: each is a microsecond after the last, so
/// only sends of this home started in the same few microseconds can hold them.
const KEY_TRIES: u64 = 16;

/// Step one of a send under the key `first`, or under the next key free in this home when
/// another send holds it: two processes that make a key in the same microsecond draw the same
/// 10-bit clock id once in 1,024 times. The key chosen is in the outbox row and the intent entry.
fn begin_send_under_a_free_key(
    s: &mut Store,
    first: u64,
    mut outbox: crate::store::OutboxNew,
    mut intent: AuditRecord,
    now: OffsetDateTime,
) -> Result<(i64, AuditEntry, String), StoreError> {
    let mut next = 0;
    loop {
        let key = tid(first + (next << 10));
        outbox.idem_key.clone_from(&key);
        intent.attempt = Some(key.clone());
        match s.begin_send(&outbox, intent.clone(), now) {
            Err(StoreError::KeyTaken(_)) if next + 1 < KEY_TRIES => next += 1,
            done => return done.map(|(id, entry)| (id, entry, key)),
        }
    }
}

/// A key that is unique per send attempt and stable across retries of the same attempt, in the
/// form of an AT Protocol TID (13 characters of sortable base32: microseconds since the epoch and
/// a 10-bit clock id), which every platform accepts: Bluesky requires a TID as the record key of
/// a post, and Mastodon takes any string as an `Idempotency-Key`. [`tid`] spells it.
fn idempotency_key(mention: MentionId, template: &str) -> u64 {
    let now = OffsetDateTime::now_utc();
    let micros = (now.unix_timestamp_nanos() / 1_000) as u64 & ((1 << 53) - 1);
    let mut h = Sha256::new();
    h.update(format!(
        "{mention}:{template}:{}:{}",
        now.unix_timestamp_nanos(),
        std::process::id()
    ));
    let digest = h.finalize();
    let clock = u64::from(u16::from_be_bytes([digest[0], digest[1]]) & 0x3ff);
    (micros << 10) | clock
}

fn tid(value: u64) -> String {
    const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
    (0..13)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The most pages a stream's poll round fetches, so that one busy account cannot starve the
/// others.
const ROUND_PAGES: usize = 20;

/// The most pages one ingest transaction holds (see `Desk::poll_stream`).
pub const GROUP_PAGES: usize = 4;

/// Tagged pages waiting to be stored together, with the cursor that follows the last of them.
#[derive(Default)]
struct Group {
    items: Vec<(IncomingMention, Tags)>,
    pages: usize,
    cursor: Option<String>,
}

/// The future's output if it is ready now; otherwise `None`, and it can be awaited later.
fn now_or_never<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    match Pin::new(f).poll(&mut task::Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// Counts a stored group of pages into `report`, or records why it failed (false: stop the
/// round). With `progress`, says how far a backfill got, since more pages wait.
fn count_stored(
    stored: crate::store::Result<usize>,
    report: &mut PollReport,
    progress: Option<&Progress<'_>>,
) -> bool {
    match stored {
        Ok(n) => {
            report.new += n;
            if let Some(progress) = progress {
                progress(report);
            }
            true
        }
        Err(e) => {
            report.error = Some(e.to_string());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::library::STARTER;
    use crate::domain::playbook::Targets;
    use crate::domain::{Flag, Tone};
    use crate::platforms::demo::read_sink;
    use crate::store::OutboxNew;
    use std::sync::atomic::Ordering;

    fn desk(dir: &std::path::Path) -> Desk {
        let mut lib = Library::default();
        let mut errors = Vec::new();
        for (name, text) in STARTER {
            lib.add_file(std::path::Path::new(name), text, &mut errors);
        }
        Desk::assemble(
            Paths::under(dir),
            Config::default(),
            Store::open_in_memory().unwrap(),
            lib,
            errors,
        )
        .unwrap()
    }

    async fn open_ids(d: &Desk) -> Vec<Mention> {
        d.store.call(|s| s.all_mentions()).await.unwrap()
    }

    #[tokio::test]
    async fn a_send_is_intent_network_result() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let polled = d.poll_once().await;
        assert!(polled.iter().all(|r| r.error.is_none()), "{polled:?}");
        assert!(polled.iter().map(|r| r.new).sum::<usize>() >= 60);
        let m = open_ids(&d)
            .await
            .into_iter()
            .find(|m| m.tags.flags.contains(Flag::Ae))
            .unwrap();
        let p = d
            .preview(m.id, "ae-report-private", None, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(
            p.channel,
            Channel::Private,
            "AE mentions default to private"
        );
        assert!(p.verdict.is_ok(), "{:?}", p.verdict);
        let r = d
            .send(m.id, "ae-report-private", None, &BTreeMap::new())
            .await
            .unwrap();
        assert_eq!(r.outcome, "sent");
        assert_eq!((r.intent_seq, r.result_seq), (1, 2));
        let entries = d.store.call(|s| s.audit_entries()).await.unwrap();
        let (intent, result) = (&entries[0].record, &entries[1].record);
        assert!(intent.attempt.is_some());
        assert_eq!(intent.attempt, result.attempt);
        assert_eq!(intent.host.as_deref(), Some(d.host.as_str()));
        assert_eq!(result.host, intent.host);
        let sink = read_sink(&d.paths.demo_sink);
        assert_eq!(sink.len(), 1);
        assert_eq!(sink[0].text, p.text);
        let err = d
            .send(m.id, "ae-report-private", None, &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("rule 'answered'"), "{err}");
    }

    #[tokio::test]
    async fn reconcile_settles_a_crash_between_intent_and_result_without_resending() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        d.poll_once().await;
        let ms = open_ids(&d).await;
        let (made, lost, inflight) = (&ms[0], &ms[1], &ms[2]);
        // One reply reached the platform before the crash, the other did not.
        let connector = d.connector(&made.account).unwrap().clone();
        connector
            .send(&Outgoing {
                idem_key: "key-made",
                to: made,
                channel: Channel::Public,
                text: "approved text",
            })
            .await
            .unwrap();
        // The first two were written by processes that are gone (one of them by a pid that
        // cannot exist); the third by this one, still sending.
        let dead = Some("4194304999:1".to_owned());
        for (m, key, owner) in [
            (made, "key-made", dead),
            (lost, "key-lost", None),
            (inflight, "key-inflight", process_identity()),
        ] {
            let new = OutboxNew {
                idem_key: key.into(),
                mention_id: m.id,
                account: m.account.clone(),
                platform: m.platform,
                template: "thanks-short".into(),
                version: 1,
                channel: "public".into(),
                text: "approved text".into(),
                owner,
            };
            let mut rec = d.record("send_intent");
            rec.attempt = Some(key.into());
            d.store
                .call(move |s| s.begin_send(&new, rec, OffsetDateTime::now_utc()))
                .await
                .unwrap();
        }
        let reports = d.reconcile().await.unwrap();
        let outcomes: Vec<(&str, MentionId)> = reports
            .iter()
            .map(|r| (r.outcome.as_str(), r.mention))
            .collect();
        assert_eq!(outcomes, vec![("sent", made.id), ("failed", lost.id)]);
        assert!(process_identity().as_deref().is_some_and(process_alive));
        let still = d.store.call(|s| s.pending_sends()).await.unwrap();
        assert_eq!(still.len(), 1, "the send in flight is left to its process");
        assert_eq!(still[0].mention_id, inflight.id);
        assert_eq!(
            read_sink(&d.paths.demo_sink).len(),
            1,
            "nothing was sent again"
        );
        assert!(d.reconcile().await.unwrap().is_empty());
        let entries = d.store.call(|s| s.audit_entries()).await.unwrap();
        assert_eq!(crate::domain::audit::verify_chain(&entries), Ok(5));
        // Each settled result names the attempt its intent opened.
        assert_eq!(entries[3].record.attempt.as_deref(), Some("key-made"));
    }

    #[tokio::test]
    async fn actions_retags_and_crisis_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        d.poll_once().await;
        let m = open_ids(&d).await.remove(0);
        let e = d.act(m.id, ModAction::Like).await.unwrap();
        assert_eq!(
            (e.record.action.as_str(), e.record.outcome.as_deref()),
            ("like", Some("ok"))
        );
        let mut tags = m.tags.clone();
        tags.flags.insert(Flag::Ae);
        tags.flags.remove(Flag::Hcp);
        let e = d.retag(m.id, tags).await.unwrap();
        let expected = if m.tags.flags.contains(Flag::Ae) {
            "retag"
        } else {
            "ae_flag"
        };
        assert_eq!(e.record.action, expected);
        let e = d.set_crisis(Some("recall rumour".into())).await.unwrap();
        assert_eq!(e.record.action, "crisis_on");
        let p = d
            .preview(
                m.id,
                "thanks-short",
                Some(Channel::Private),
                &BTreeMap::new(),
            )
            .await
            .unwrap();
        assert!(
            p.verdict
                .unwrap_err()
                .to_string()
                .starts_with("rule 'crisis'")
        );
        let e = d.set_state(m.id, MentionState::Done).await.unwrap();
        assert_eq!(e.record.action, "done");
    }

    /// A connector that only reports a rate budget.
    struct Budgeted(crate::platforms::http::Budget, usize);

    #[async_trait::async_trait]
    impl Connector for Budgeted {
        fn platform(&self) -> Platform {
            Platform::X
        }
        fn account(&self) -> &str {
            "care-x"
        }
        fn streams(&self) -> Vec<String> {
            (0..self.1).map(|i| format!("s{i}")).collect()
        }
        async fn fetch(
            &self,
            _: &str,
            _: Option<&str>,
        ) -> Result<crate::platforms::FetchPage, PlatformError> {
            Ok(crate::platforms::FetchPage::default())
        }
        async fn send(&self, _: &Outgoing<'_>) -> Result<crate::platforms::Sent, PlatformError> {
            Err(PlatformError::Unsupported("send"))
        }
        async fn act(&self, _: ModAction, _: &Mention) -> Result<(), PlatformError> {
            Err(PlatformError::Unsupported("act"))
        }
        async fn find_sent(
            &self,
            _: &Outgoing<'_>,
        ) -> Result<Option<crate::platforms::Sent>, PlatformError> {
            Ok(None)
        }
        fn budget(&self) -> Option<crate::platforms::http::Budget> {
            Some(self.0)
        }
    }

    /// `pages` pages of two mentions for `demo-x`, the cursor being the page's index. While
    /// `broken`, page 1 holds a mention for an account that does not exist, which the store
    /// refuses (its whole transaction rolls back). With `hold`, fetching page 0 holds that store
    /// thread until page 4 is fetched too (or page `fail_at`), so that pages 1 to 4 arrive while
    /// page 0 is still being written. Fetching page `fail_at` fails.
    struct Paged {
        pages: usize,
        broken: std::sync::atomic::AtomicBool,
        fetched: Arc<std::sync::Mutex<Vec<usize>>>,
        hold: Option<StoreHandle>,
        fail_at: Option<usize>,
    }

    impl Paged {
        fn new(pages: usize) -> Paged {
            Paged {
                pages,
                broken: false.into(),
                fetched: Default::default(),
                hold: None,
                fail_at: None,
            }
        }

        /// Holds the store thread (see [`Paged`]); its answer is not awaited.
        fn hold_store(&self, store: &StoreHandle) {
            let (fetched, fail_at) = (self.fetched.clone(), self.fail_at);
            let held = move || {
                let f = fetched.lock().unwrap();
                f.len() < 5 && f.last().copied() != fail_at
            };
            drop(store.submit(move |_| {
                let start = std::time::Instant::now();
                while held() && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(())
            }));
        }
    }

    #[async_trait::async_trait]
    impl Connector for Paged {
        fn platform(&self) -> Platform {
            Platform::X
        }
        fn account(&self) -> &str {
            "demo-x"
        }
        fn streams(&self) -> Vec<String> {
            vec!["mentions".into()]
        }
        async fn fetch(
            &self,
            _: &str,
            cursor: Option<&str>,
        ) -> Result<crate::platforms::FetchPage, PlatformError> {
            let i: usize = cursor.map_or(0, |c| c.parse().unwrap());
            self.fetched.lock().unwrap().push(i);
            if let Some(store) = &self.hold
                && i == 0
            {
                self.hold_store(store);
            }
            if self.fail_at == Some(i) {
                return Err(PlatformError::Unsupported("fetching this page"));
            }
            let mention = |n: usize| {
                let broken = i == 1 && n == 1 && self.broken.load(Ordering::SeqCst);
                crate::domain::IncomingMention {
                    platform: Platform::X,
                    account: if broken { "nobody" } else { "demo-x" }.into(),
                    remote_id: format!("{i}{n}"),
                    author: crate::domain::Author {
                        handle: format!("u{i}{n}"),
                        display_name: String::new(),
                        bio: String::new(),
                    },
                    text: format!("page {i} mention {n}"),
                    created_at: OffsetDateTime::now_utc(),
                    url: None,
                    in_reply_to: None,
                    parent_text: None,
                    reply_ref: None,
                    private: false,
                }
            };
            Ok(crate::platforms::FetchPage {
                mentions: vec![mention(0), mention(1)],
                cursor: Some((i + 1).to_string()),
                more: i + 1 < self.pages,
                skipped: Vec::new(),
            })
        }
        async fn send(&self, _: &Outgoing<'_>) -> Result<crate::platforms::Sent, PlatformError> {
            Err(PlatformError::Unsupported("send"))
        }
        async fn act(&self, _: ModAction, _: &Mention) -> Result<(), PlatformError> {
            Err(PlatformError::Unsupported("act"))
        }
        async fn find_sent(
            &self,
            _: &Outgoing<'_>,
        ) -> Result<Option<crate::platforms::Sent>, PlatformError> {
            Ok(None)
        }
    }

    /// The cursor stored for `demo-x`'s mentions.
    async fn stored_cursor(d: &Desk) -> Option<String> {
        d.store
            .call(|s| s.cursor("demo-x", "mentions"))
            .await
            .unwrap()
    }

    /// The next page is fetched while the store writes the one before, but is stored only once
    /// that one committed: a page that fails leaves every later page unstored and the cursor
    /// after the last page that committed, and the next round goes on from there.
    #[tokio::test]
    async fn a_page_that_fails_to_store_stops_the_round_before_any_later_page() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let c = Paged::new(3);
        c.broken.store(true, Ordering::SeqCst);
        let progress = std::sync::Mutex::new(Vec::new());
        let reports = d
            .poll_account(&c, 0, &|r| progress.lock().unwrap().push(r.new))
            .await;
        assert_eq!(reports.len(), 1);
        assert!(reports[0].error.is_some(), "{reports:?}");
        assert_eq!(reports[0].new, 2, "page 0 only");
        // Page 2 was fetched (while page 1 was being written), then dropped.
        assert_eq!(*c.fetched.lock().unwrap(), [0, 1, 2]);
        let texts = |d: &Desk| {
            let d = d.store.clone();
            async move {
                let mut t: Vec<String> = d
                    .call(|s| s.all_mentions())
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| m.text)
                    .collect();
                t.sort();
                t
            }
        };
        assert_eq!(texts(&d).await, ["page 0 mention 0", "page 0 mention 1"]);
        assert_eq!(stored_cursor(&d).await.as_deref(), Some("1"));
        assert_eq!(*progress.lock().unwrap(), [2], "progress after page 0");

        // Mended: the next round starts from page 1 and stores the rest.
        c.broken.store(false, Ordering::SeqCst);
        c.fetched.lock().unwrap().clear();
        let reports = d.poll_account(&c, 0, &|_| {}).await;
        assert_eq!(reports[0].error, None);
        assert_eq!(reports[0].new, 4);
        assert_eq!(*c.fetched.lock().unwrap(), [1, 2]);
        assert_eq!(texts(&d).await.len(), 6);
        assert_eq!(stored_cursor(&d).await.as_deref(), Some("3"));
    }

    /// Pages that arrive while the store thread is still writing go to it together, up to
    /// `GROUP_PAGES` in one transaction; a fetch that fails stores what waited, and the next
    /// round goes on from the page that failed.
    #[tokio::test]
    async fn pages_that_arrive_while_the_store_is_busy_are_stored_together() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let c = Paged {
            hold: Some(d.store.clone()),
            ..Paged::new(6)
        };
        let progress = std::sync::Mutex::new(Vec::new());
        let reports = d
            .poll_account(&c, 0, &|r| progress.lock().unwrap().push(r.new))
            .await;
        assert_eq!(reports[0].error, None);
        assert_eq!(reports[0].new, 12);
        // Page 0 alone, pages 1 to 4 in one transaction, then page 5 (the last is not reported
        // as progress: the round's report says it).
        assert_eq!(*progress.lock().unwrap(), [2, 10]);
        assert_eq!(stored_cursor(&d).await.as_deref(), Some("6"));
        // The stream is caught up: its mentions are all in the full-text index already.
        assert_eq!(d.store.call(|s| s.index_pending()).await.unwrap(), 0);

        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let c = Paged {
            hold: Some(d.store.clone()),
            fail_at: Some(3),
            ..Paged::new(6)
        };
        let reports = d.poll_account(&c, 0, &|_| {}).await;
        assert!(reports[0].error.is_some(), "{reports:?}");
        assert_eq!(reports[0].new, 6, "pages 0 to 2");
        assert_eq!(stored_cursor(&d).await.as_deref(), Some("3"));
    }

    #[test]
    fn the_tightest_recorded_budget_of_the_account_still_holds() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let rec = |account: &str, stream: &str, remaining, reset: i64| PollRecord {
            account: account.into(),
            stream: stream.into(),
            last_ok_at: None,
            last_error: None,
            last_error_at: None,
            next_at: None,
            budget_limit: Some(300),
            budget_remaining: Some(remaining),
            budget_reset: Some(now.unix_timestamp() + reset),
        };
        let records = [
            rec("care-x", "mentions", 40, 600),
            rec("care-x", "watch:Zyntriva", 3, 300),
            rec("care-x", "watch:old", 0, -5),
            rec("care-m", "mentions", 1, 900),
        ];
        let b = recorded_budget(&records, "care-x", now).unwrap();
        assert_eq!((b.limit, b.remaining), (Some(300), Some(3)));
        assert_eq!(
            b.reset_at.map(|t| t.unix_timestamp()),
            Some(now.unix_timestamp() + 300)
        );
        assert_eq!(recorded_budget(&records[2..3], "care-x", now), None);
        assert_eq!(recorded_budget(&records, "care-b", now), None);
    }

    #[tokio::test]
    async fn the_poll_interval_fits_the_rate_budget() {
        use crate::platforms::http::Budget;
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let now = OffsetDateTime::now_utc();
        let budget = |remaining, secs| Budget {
            limit: Some(100),
            remaining: Some(remaining),
            reset_at: Some(now + time::Duration::seconds(secs)),
        };
        let base = Duration::from_secs(d.config.poll.interval_secs);
        // Plenty left: the configured interval.
        assert_eq!(d.next_delay(&Budgeted(budget(100, 900), 1), 0), base);
        let reports = d
            .poll_account(&Budgeted(budget(100, 900), 2), 0, &|_| {})
            .await;
        assert_eq!(reports.len(), 2);
        // 4 requests left for 2 streams over 15 minutes: one more poll fits (one request is kept
        // in reserve), so it waits out the window.
        let d1 = d.next_delay(&Budgeted(budget(4, 900), 2), 0);
        assert!(d1 >= Duration::from_secs(900), "{d1:?}");
        // 11 left, 1 stream, 600 s: ten polls fit, one every minute or so.
        let d2 = d.next_delay(&Budgeted(budget(11, 600), 1), 0);
        assert!(
            d2 >= Duration::from_secs(60) && d2 <= Duration::from_secs(61),
            "{d2:?}"
        );
        // Spent: wait for the reset.
        assert!(d.next_delay(&Budgeted(budget(0, 300), 1), 0) >= Duration::from_secs(300));
        // Failures back off beyond the interval, bounded at 15 minutes.
        let f = d.next_delay(&Budgeted(budget(100, 900), 1), 3);
        assert!(f >= base && f <= Duration::from_secs(900), "{f:?}");
    }

    /// What leaves is what `render` made: for any value of a prompt variable, a send either is
    /// refused with nothing written or sent, or the demo platform, the intent and the result all
    /// carry exactly the rendered text (addressed as the platform needs).
    #[test]
    fn the_send_path_carries_only_the_rendered_text() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config as Cases, TestRunner};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let topic = prop_oneof![
            "[A-Za-z0-9 ,.'-]{1,40}",
            "[A-Za-z ]{41,45}",
            ".{0,12}",
            "[a-z]{1,5}\\{author\\}",
        ];
        let mut runner = TestRunner::new(Cases::with_cases(12));
        let result = runner.run(&topic, |topic| {
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let d = desk(dir.path());
                d.poll_once().await;
                let m = open_ids(&d)
                    .await
                    .into_iter()
                    .find(|m| !m.private && !m.tags.flags.private_only())
                    .unwrap();
                let vars = BTreeMap::from([("topic".to_owned(), topic)]);
                let reply = d.library.get("complaint-access").unwrap();
                let fill = Fill {
                    agent_initials: d.config.initials(),
                    signoff: d.config.signoff(),
                    case: case_number(m.id),
                    contacts: d.config.contacts(),
                };
                let expected = render(reply, &m.author, &fill, &vars)
                    .map(|t| addressed(m.platform, &m.author.handle, &t));
                let sent = d.send(m.id, "complaint-access", None, &vars).await;
                let entries = d.store.call(|s| s.audit_entries()).await.unwrap();
                let sink = read_sink(&d.paths.demo_sink);
                match expected {
                    Err(refusal) => {
                        let err = sent.unwrap_err().to_string();
                        prop_assert!(err.contains(&refusal.to_string()), "{}", err);
                        prop_assert!(entries.is_empty() && sink.is_empty());
                    }
                    Ok(text) => {
                        prop_assert_eq!(sent.unwrap().outcome, "sent");
                        prop_assert_eq!(sink.len(), 1);
                        prop_assert_eq!(sink[0].text.as_deref(), Some(text.as_str()));
                        for e in &entries {
                            prop_assert_eq!(e.record.text.as_deref(), Some(text.as_str()));
                        }
                        prop_assert_eq!(entries.len(), 2);
                    }
                }
                Ok(())
            })
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    #[tokio::test]
    async fn a_key_another_send_holds_is_passed_over_for_the_next_free_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        d.poll_once().await;
        let ms = open_ids(&d).await;
        let first = idempotency_key(ms[0].id, "thanks");
        let mut keys = Vec::new();
        for m in &ms[..3] {
            let outbox = OutboxNew {
                idem_key: String::new(),
                mention_id: m.id,
                account: m.account.clone(),
                platform: m.platform,
                template: "thanks".into(),
                version: 1,
                channel: "public".into(),
                text: "Thank you!".into(),
                owner: None,
            };
            let intent = d.record_about("send_intent", m);
            let (_, entry, key) = d
                .store
                .call(move |s| {
                    begin_send_under_a_free_key(s, first, outbox, intent, OffsetDateTime::now_utc())
                })
                .await
                .unwrap();
            assert_eq!(entry.record.attempt.as_deref(), Some(key.as_str()));
            keys.push(key);
        }
        // Three sends that drew the same key: the second and third take the next microseconds.
        let expected: Vec<String> = (0..3).map(|i| tid(first + (i << 10))).collect();
        assert_eq!(keys, expected);
        let pending = d.store.call(|s| s.pending_sends()).await.unwrap();
        let mut stored: Vec<String> = pending.into_iter().map(|r| r.idem_key).collect();
        stored.sort();
        assert_eq!(stored, expected, "one outbox row under each key");
    }

    #[test]
    fn idempotency_keys_are_tids() {
        let a = tid(idempotency_key(1, "thanks"));
        let b = tid(idempotency_key(1, "thanks"));
        assert_ne!(a, b, "every attempt has its own key");
        let shape = regex::Regex::new("^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
            .unwrap();
        assert!(shape.is_match(&a), "{a}");
        assert_eq!(tid(0), "2222222222222");
        assert!(tid(1 << 40) > tid(1 << 39), "TIDs sort by time");
    }

    #[tokio::test]
    async fn retagging_changes_later_predictions_on_similar_text() {
        let dir = tempfile::tempdir().unwrap();
        let d = desk(dir.path());
        let author = crate::domain::Author::default();
        let probe = "the lavender pharmacy box arrived at the depot on tuesday";
        let before = d.classifier.classify(probe, &author).tone;
        assert_ne!(
            before,
            Tone::Complaint,
            "the rules alone do not call it a complaint"
        );

        // The operator corrects a run of similar mentions to complaints, as on a busy shift.
        let now = OffsetDateTime::now_utc();
        let items: Vec<_> = (0..12)
            .map(|i| {
                let m = crate::domain::IncomingMention {
                    platform: Platform::X,
                    account: "demo-x".into(),
                    remote_id: format!("lavender-{i}"),
                    author: author.clone(),
                    text: format!("lavender pharmacy box arrived at the depot again, day {i}"),
                    created_at: now,
                    url: None,
                    in_reply_to: None,
                    parent_text: None,
                    reply_ref: None,
                    private: false,
                };
                let tags = d.classify(&m);
                (m, tags)
            })
            .collect();
        d.store
            .call(move |s| s.ingest(&items, &Targets::default(), None, now))
            .await
            .unwrap();
        let ids: Vec<MentionId> = open_ids(&d)
            .await
            .iter()
            .filter(|m| m.remote_id.starts_with("lavender-"))
            .map(|m| m.id)
            .collect();
        assert_eq!(ids.len(), 12);
        for id in ids {
            let tags = Tags::operator(Tone::Complaint, Flags::empty(), "operator");
            d.retag(id, tags).await.unwrap();
        }
        assert_eq!(d.classifier.model_examples(), 12);
        let after = d.classifier.classify(probe, &author);
        assert_eq!(after.tone, Tone::Complaint, "{:?}", after.reasons);
        assert!(
            after.reasons.iter().any(|r| r.starts_with("learned")),
            "{:?}",
            after.reasons
        );

        // The model is stored: a desk opened on the same data predicts the same.
        let stored = d.store.call(|s| s.load_model()).await.unwrap().unwrap();
        assert_eq!(stored.0, 12);
        let fresh = Classifier::new(Config::default().tone_config());
        fresh.set_model(Some(crate::tone::Model::from_json(&stored.2).unwrap()));
        assert_eq!(fresh.classify(probe, &author).tone, Tone::Complaint);
    }
}
