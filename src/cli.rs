//! The command line (clap). `tonedesk` alone opens the console; subcommands serve scripts, cron
//! and compliance. With no accounts configured everything runs on the built-in demo.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use crate::app::desk::{Desk, SendError};
use crate::app::export;
use crate::config::Config;
use crate::domain::audit::{send_gaps, verify_log};
use crate::domain::playbook::ModAction;
use crate::domain::{Author, Channel};
use crate::paths::Paths;
use crate::tone::Classifier;
use crate::tone::eval::{Scores, label_index};

mod workflow;

use workflow::{AeCommand, ApproveArgs, ReviewCommand};

/// Exit code of a send refused by a rule.
const REFUSED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "tonedesk",
    version,
    about = "Triage console for the social-media care desk of a regulated brand",
    long_about = "tonedesk polls X, Mastodon and Bluesky into a local cache and shows a keyboard-driven \
queue: every mention is tagged by tone and risk and answered only from a library of approved replies; \
every send is written to a tamper-evident audit log. With no accounts configured it runs on a built-in DEMO."
)]
pub struct Cli {
    /// Keep config, database, library and logs under DIR.
    #[arg(long, global = true, env = "TONEDESK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch new mentions from every account into the cache.
    Poll {
        /// Poll once and exit (for cron or systemd timers); without it, poll until interrupted.
        #[arg(long)]
        once: bool,
    },
    /// Print the queue.
    Queue {
        /// Every cached mention as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Send an approved reply to a mention (the same checks as the console).
    Reply {
        /// The mention's `id` from `queue --json`.
        mention: i64,
        /// The approved reply's id (see `library list`).
        #[arg(long)]
        template: String,
        /// public or private; by default the reply's channel, private for AE and HCP mentions.
        #[arg(long)]
        channel: Option<ChannelArg>,
        /// A declared prompt variable, as NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Really send; without it, print the preview and exit.
        #[arg(long)]
        yes: bool,
    },
    /// Take a playbook action on a mention's platform (audited).
    Act {
        /// The mention's `id` from `queue --json`.
        mention: i64,
        #[arg(value_enum)]
        action: ActArg,
    },
    /// The approved reply library.
    Library {
        #[command(subcommand)]
        command: LibraryCommand,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The tone and risk classifier.
    Tone {
        #[command(subcommand)]
        command: ToneCommand,
    },
    /// Adverse events for pharmacovigilance.
    Ae {
        #[command(subcommand)]
        command: AeCommand,
    },
    /// Custom drafts waiting for MLR review (the review queue).
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Put a mention aside until later, or set an HCP follow-up reminder (audited).
    Snooze {
        mention: i64,
        /// How long: 90m, 4h, 2d.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "follow_up")]
        duration: Option<String>,
        /// A follow-up reminder `targets.hcp_follow_up_days` from now.
        #[arg(long)]
        follow_up: bool,
    },
    /// Desk figures: first-response times against target, tone mix, AE intake times.
    Stats {
        #[arg(long, value_enum, default_value = "text")]
        format: StatsFormat,
        /// The window in days back from now (the per-hour and per-day series always cover the
        /// last 24 hours and 7 days).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// Crisis mode: pause all outbound except holding statements.
    Crisis {
        #[command(subcommand)]
        command: CrisisCommand,
    },
    /// Check the set-up and say what to fix.
    Doctor,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum LibraryCommand {
    /// Validate every reply (placeholders, dates, tampering, expiry).
    Check,
    /// List the replies.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a reviewed draft a library reply, with its MLR approval reference and expiry.
    Approve(ApproveArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exit non-zero naming the first bad entry.
    Verify,
    /// Write the log for compliance.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: AuditFormat,
        /// Write to FILE instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ToneCommand {
    /// Score the classifier on a TSV file of `label<TAB>text` (positive|neutral|negative).
    Eval { file: PathBuf },
    /// Classify one text per line of standard input; one JSON object per line out.
    Classify,
    /// Retrain the learned model from the operators' corrections (retags); says how many.
    Learn,
    /// Learning curve on a TSV file: train on the first k rows as if they were corrections
    /// (k = 100, 300, 1000, 3000) and score the rest, rules alone and with the model.
    Curve { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum CrisisCommand {
    /// Turn crisis mode on.
    On {
        #[arg(long)]
        reason: String,
    },
    /// Turn crisis mode off.
    Off,
    /// Show whether crisis mode is on.
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    Public,
    Private,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActArg {
    Like,
    Hide,
    Block,
    Mute,
    Report,
}

impl From<ActArg> for ModAction {
    fn from(a: ActArg) -> Self {
        match a {
            ActArg::Like => ModAction::Like,
            ActArg::Hide => ModAction::Hide,
            ActArg::Block => ModAction::Block,
            ActArg::Mute => ModAction::Mute,
            ActArg::Report => ModAction::Report,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatsFormat {
    Text,
    Csv,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    crate::paths::private_by_default();
    let cli = Cli::parse();
    let home = Paths::resolve(cli.home.as_deref())
        .ok()
        .and_then(|p| p.database.parent().map(Path::to_path_buf));
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(disk) = disk_trouble(&e, home.as_deref()) {
                // A full or read-only home: what to do first, then what was being done.
                if disk == e.to_string() {
                    eprintln!("error: {disk}");
                } else {
                    eprintln!("error: {disk}\n  while: {e}");
                }
                return ExitCode::FAILURE;
            }
            let mut msg = format!("error: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!("\n  caused by: {cause}"));
            }
            if let Some(hint) = e
                .downcast_ref::<crate::store::StoreError>()
                .and_then(|s| s.hint())
            {
                msg.push_str(&format!("\n  hint: {hint}"));
            }
            // Not `eprintln!`, which panics when stderr is a terminal that hung up.
            let _ = writeln!(std::io::stderr(), "{msg}");
            ExitCode::FAILURE
        }
    }
}

/// A full or read-only disk anywhere in the error's chain, in the store's words.
fn disk_trouble(e: &anyhow::Error, home: Option<&Path>) -> Option<String> {
    use crate::store::StoreError;
    let dir = home.unwrap_or(Path::new("."));
    e.chain()
        .find_map(|c| match c.downcast_ref::<StoreError>() {
            Some(
                s @ (StoreError::DiskFull(_) | StoreError::ReadOnly(_) | StoreError::CannotOpen(_)),
            ) => Some(s.to_string()),
            _ => c
                .downcast_ref::<std::io::Error>()
                .and_then(|io| StoreError::from_io(io, dir))
                .map(|s| s.to_string()),
        })
}

/// The reader of our output went away (`tonedesk queue | head`): not an error worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(|j| j.io_error_kind())
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    // Commands that need no home.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "tonedesk",
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Tone { command }) if !matches!(command, ToneCommand::Learn) => {
            return tone(command, cli.home.as_deref());
        }
        _ => {}
    }

    let paths = Paths::resolve(cli.home.as_deref())?;
    let config = Config::load(&paths.config_file)?;
    paths.create_dirs()?;
    let _log = crate::logging::init(&paths.log_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let desk = {
        let _enter = rt.enter();
        Arc::new(Desk::open(paths, config)?)
    };

    match cli.command {
        None => {
            // The console settles unfinished sends in the background, after its first frame.
            crate::tui::run(desk, &rt)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(cmd) => rt.block_on(command(desk, cmd)),
    }
}

/// Work every start does before anything else: settle sends a crash left open.
async fn settle(desk: &Desk) -> Result<()> {
    for r in desk.reconcile().await? {
        if r.outcome == "pending" {
            eprintln!(
                "an unfinished send to mention {} is not settled yet: {}",
                r.mention,
                r.error.unwrap_or_default()
            );
            continue;
        }
        eprintln!(
            "reconciled an unfinished send to mention {}: {} ({})",
            r.mention,
            r.outcome,
            r.error.unwrap_or_default()
        );
    }
    Ok(())
}

/// In the demo, the first command of a fresh home fills the cache (as a first poll would).
async fn seed_demo(desk: &Desk) {
    if desk.demo {
        desk.poll_once().await;
    }
}

async fn command(desk: Arc<Desk>, cmd: Command) -> Result<ExitCode> {
    // The audit commands read the log as it is; settling would write to it first.
    if !matches!(cmd, Command::Audit { .. }) {
        settle(&desk).await?;
    }
    let desk = &desk;
    match cmd {
        Command::Poll { once } => poll(desk, once).await,
        Command::Queue { json } => {
            seed_demo(desk).await;
            queue(desk, json).await
        }
        Command::Reply {
            mention,
            template,
            channel,
            vars,
            yes,
        } => {
            seed_demo(desk).await;
            reply(desk, mention, &template, channel, &vars, yes).await
        }
        Command::Act { mention, action } => act(desk, mention, action.into()).await,
        Command::Library { command } => library(desk, command).await,
        Command::Audit { command } => audit(desk, command).await,
        Command::Ae { command } => {
            seed_demo(desk).await;
            workflow::ae(desk, command).await
        }
        Command::Review { command } => {
            seed_demo(desk).await;
            workflow::review(desk, command).await
        }
        Command::Snooze {
            mention,
            duration,
            follow_up,
        } => workflow::snooze(desk, mention, duration, follow_up).await,
        Command::Stats { format, days } => {
            seed_demo(desk).await;
            let s = crate::app::stats::load(desk, days, OffsetDateTime::now_utc()).await?;
            let out = match format {
                StatsFormat::Text => s.text(),
                StatsFormat::Csv => s.csv(),
            };
            std::io::stdout().lock().write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crisis { command } => crisis(desk, command).await,
        Command::Doctor => doctor(desk).await,
        Command::Tone { .. } => {
            let n = desk.relearn().await?;
            match n {
                0 => println!(
                    "no corrections yet: the rules alone tag mentions (retag with t in the console)"
                ),
                n => println!(
                    "learned from {n} correction(s); the model is stored and used from now on"
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { .. } | Command::Man => Ok(ExitCode::SUCCESS),
    }
}

fn print_reports(reports: &[crate::app::PollReport]) -> bool {
    let mut failed = false;
    for r in reports {
        match &r.error {
            None => println!("{} {}: {} new", r.account, r.stream, r.new),
            Some(e) => {
                failed = true;
                println!("{} {}: error: {e}", r.account, r.stream);
            }
        }
    }
    failed
}

async fn poll(desk: &Arc<Desk>, once: bool) -> Result<ExitCode> {
    for (account, why) in &desk.unconnected {
        println!("{account}: not polled: {why}");
    }
    if once {
        let Some(_lock) = desk.poll_lock() else {
            println!(
                "another tonedesk is polling this home (a console or `tonedesk poll`); nothing to do"
            );
            return Ok(ExitCode::SUCCESS);
        };
        let failed = print_reports(&desk.poll_once().await);
        let ok = !failed && desk.unconnected.is_empty();
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    crate::app::poller::spawn(
        desk.clone(),
        &tokio::runtime::Handle::current(),
        |round| match round {
            crate::app::poller::Round::Waiting => {
                println!("another tonedesk is polling this home; waiting for it to stop")
            }
            crate::app::poller::Round::Paging(r) => {
                println!("{} {}: backfilling, {} so far", r.account, r.stream, r.new)
            }
            crate::app::poller::Round::Done(reports) => {
                print_reports(&reports);
            }
        },
    );
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

async fn queue(desk: &Desk, json: bool) -> Result<ExitCode> {
    let all = desk.store.call(|s| s.all_mentions()).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<_> = all.iter().map(export::mention_json).collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = OffsetDateTime::now_utc();
    writeln!(
        out,
        "{:>5}  {:<9} {:<22} {:<9} {:<8} {:>7}  TEXT",
        "ID", "TONE", "FLAGS", "PLATFORM", "STATE", "LEFT"
    )?;
    for m in all
        .iter()
        .filter(|m| m.state == crate::domain::MentionState::Open)
    {
        let flags: Vec<&str> = m.tags.flags.iter().map(|f| f.as_str()).collect();
        let text = crate::tui::inert::one_line(&m.text);
        let text: String = text.chars().take(60).collect();
        writeln!(
            out,
            "{:>5}  {:<9} {:<22} {:<9} {:<8} {:>7}  {text}",
            m.id,
            m.tags.tone.as_str(),
            flags.join(","),
            m.platform.as_str(),
            m.state.as_str(),
            crate::domain::playbook::short_duration(m.due_at - now),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in vars {
        let Some((k, val)) = v.split_once('=') else {
            bail!("--var '{v}' must be NAME=VALUE");
        };
        out.insert(k.trim().to_owned(), val.to_owned());
    }
    Ok(out)
}

async fn reply(
    desk: &Desk,
    mention: i64,
    template: &str,
    channel: Option<ChannelArg>,
    vars: &[String],
    yes: bool,
) -> Result<ExitCode> {
    let vars = parse_vars(vars)?;
    let channel = channel.map(|c| match c {
        ChannelArg::Public => Channel::Public,
        ChannelArg::Private => Channel::Private,
    });
    if !yes {
        let p = match desk.preview(mention, template, channel, &vars).await {
            Ok(p) => p,
            Err(e) => return refusal(e),
        };
        println!(
            "to:       @{} on {} ({})",
            p.mention.author.handle, p.mention.platform, p.mention.account
        );
        println!(
            "reply:    {} v{} (approval {})",
            p.template, p.version, p.approval
        );
        println!("channel:  {}", p.channel);
        println!(
            "length:   {}/{} {}",
            p.length,
            p.limit,
            p.mention.platform.unit()
        );
        println!(
            "text:     {}",
            p.text.as_deref().unwrap_or("(not rendered)")
        );
        return match p.verdict {
            Ok(()) => {
                println!("not sent: add --yes to send");
                Ok(ExitCode::from(REFUSED))
            }
            Err(r) => refusal(SendError::Refused(r)),
        };
    }
    match desk.send(mention, template, channel, &vars).await {
        Ok(r) if r.outcome == "sent" => {
            println!(
                "sent: mention {} remote id {} (audit entries {} and {})",
                r.mention,
                r.remote_id.unwrap_or_default(),
                r.intent_seq,
                r.result_seq
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            eprintln!(
                "{}: {} (audit entries {} and {}); check before sending again",
                r.outcome,
                r.error.unwrap_or_default(),
                r.intent_seq,
                r.result_seq
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => refusal(e),
    }
}

fn refusal(e: SendError) -> Result<ExitCode> {
    match e {
        SendError::Refused(r) => {
            eprintln!("refused: {r}");
            Ok(ExitCode::from(REFUSED))
        }
        SendError::Store(e) => Err(e.into()),
        e @ SendError::Unrecorded { .. } => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
        other => {
            eprintln!("not sent: {other}");
            Ok(ExitCode::from(REFUSED))
        }
    }
}

async fn act(desk: &Desk, mention: i64, action: ModAction) -> Result<ExitCode> {
    let entry = match desk.act(mention, action).await {
        Ok(e) => e,
        Err(SendError::Store(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("not done: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let outcome = entry.record.outcome.as_deref().unwrap_or("");
    if outcome == "ok" {
        println!(
            "{}: done on mention {mention} (audit entry {})",
            action.as_str(),
            entry.seq
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{}: {outcome}: {} (audit entry {})",
            action.as_str(),
            entry.record.detail.unwrap_or_default(),
            entry.seq
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn library(desk: &Desk, cmd: LibraryCommand) -> Result<ExitCode> {
    match cmd {
        LibraryCommand::Approve(args) => return workflow::approve(desk, args).await,
        LibraryCommand::List { json } => {
            let lib = &desk.library;
            if json {
                let list: Vec<_> = lib
                    .replies
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id,
                            "version": r.version,
                            "approval": r.approval,
                            "approved_on": r.approved_on.to_string(),
                            "expires_on": r.expires_on.to_string(),
                            "tones": r.tones,
                            "flags": r.flags,
                            "channel": r.channel.as_str(),
                            "platforms": r.platforms,
                            "holding": r.holding,
                            "text": r.text,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in &lib.replies {
                    println!(
                        "{:<28} v{:<3} {:<8} expires {}  {}",
                        r.id,
                        r.version,
                        r.channel.as_str(),
                        r.expires_on,
                        r.approval
                    );
                }
            }
            for e in &desk.library_errors {
                eprintln!("error: {e}");
            }
            Ok(if desk.library_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        LibraryCommand::Check => {
            let today = OffsetDateTime::now_utc().date();
            let mut bad = desk.library_errors.len();
            for e in &desk.library_errors {
                println!("error: {e}");
            }
            for id in desk.check_templates().await? {
                bad += 1;
                let (file, line) = desk.library.origin.get(&id).cloned().unwrap_or_default();
                println!(
                    "error: {}:{line}: reply '{id}': text changed under the same id and version (tampered); restore the approved text or give the new text a new version and approval",
                    file.display()
                );
            }
            for r in &desk.library.replies {
                let (file, line) = desk.library.origin.get(&r.id).cloned().unwrap_or_default();
                if today > r.expires_on {
                    println!(
                        "warning: {}:{line}: reply '{}' expired on {} (sends are refused)",
                        file.display(),
                        r.id,
                        r.expires_on
                    );
                } else if r.expires_on - today <= time::Duration::days(30) {
                    println!(
                        "warning: {}:{line}: reply '{}' expires on {} (in {} days)",
                        file.display(),
                        r.id,
                        r.expires_on,
                        (r.expires_on - today).whole_days()
                    );
                }
            }
            println!(
                "{} replies in {}; {} error(s)",
                desk.library.replies.len(),
                desk.paths.library_dir.display(),
                bad
            );
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

async fn audit(desk: &Desk, cmd: AuditCommand) -> Result<ExitCode> {
    let (entries, head) = desk.store.call(|s| s.audit_log()).await?;
    match cmd {
        AuditCommand::Verify => {
            let chain = verify_log(&entries, head.as_ref());
            if let Err(b) = &chain {
                println!("audit chain broken at {b}");
            }
            let gaps = send_gaps(&entries);
            for g in &gaps {
                println!("{g}");
            }
            match chain {
                Ok(n) if gaps.is_empty() => {
                    println!("audit chain intact: {n} entries");
                    Ok(ExitCode::SUCCESS)
                }
                Ok(n) => {
                    println!(
                        "the hash chain holds ({n} entries), but {} send(s) do not pair up",
                        gaps.len()
                    );
                    Ok(ExitCode::FAILURE)
                }
                Err(_) => Ok(ExitCode::FAILURE),
            }
        }
        AuditCommand::Export { format, output } => {
            let mut out: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            if let AuditFormat::Csv = format {
                writeln!(out, "{}", export::AUDIT_COLUMNS.join(","))?;
            }
            for e in &entries {
                let j = export::audit_json(e);
                match format {
                    AuditFormat::Jsonl => writeln!(out, "{j}")?,
                    AuditFormat::Csv => {
                        writeln!(out, "{}", export::csv_record(&j, &export::AUDIT_COLUMNS))?
                    }
                }
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn crisis(desk: &Desk, cmd: CrisisCommand) -> Result<ExitCode> {
    match cmd {
        CrisisCommand::On { reason } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why crisis mode is on");
            }
            let e = desk.set_crisis(Some(reason.clone())).await?;
            println!(
                "crisis mode ON ({reason}); only holding statements can be sent (audit entry {})",
                e.seq
            );
        }
        CrisisCommand::Off => {
            let e = desk.set_crisis(None).await?;
            println!("crisis mode off (audit entry {})", e.seq);
        }
        CrisisCommand::Status => match desk.store.call(|s| s.crisis()).await? {
            Some(r) => println!("crisis mode ON: {r}"),
            None => println!("crisis mode off"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

async fn doctor(desk: &Desk) -> Result<ExitCode> {
    let p = &desk.paths;
    let mut problems = 0;
    let mut line = |ok: bool, what: String| {
        if !ok {
            problems += 1;
        }
        println!("{} {what}", if ok { "ok  " } else { "FIX " });
    };
    println!("tonedesk {}", env!("CARGO_PKG_VERSION"));
    println!(
        "home      {}",
        p.home
            .as_ref()
            .map_or("(XDG locations)".into(), |h| h.display().to_string())
    );
    println!(
        "config    {}{}",
        p.config_file.display(),
        if p.config_file.exists() {
            ""
        } else {
            " (absent: built-in demo)"
        }
    );
    println!("database  {}", p.database.display());
    println!("library   {}", p.library_dir.display());
    println!("logs      {}", p.log_dir.display());
    println!("operator  {}", desk.operator);
    println!(
        "mode      {}",
        if desk.demo {
            "DEMO (no accounts configured)"
        } else {
            "live"
        }
    );

    let integrity = desk.store.call(|s| s.integrity()).await?;
    line(
        integrity == "ok",
        format!("database integrity: {integrity}"),
    );
    let (entries, head) = desk.store.call(|s| s.audit_log()).await?;
    match verify_log(&entries, head.as_ref()) {
        Ok(n) => line(true, format!("audit chain intact ({n} entries)")),
        Err(b) => line(
            false,
            format!("audit chain broken at {b}: investigate before working"),
        ),
    }
    for g in send_gaps(&entries) {
        line(false, format!("audit: {g}"));
    }
    match desk.store.call(|s| s.load_model()).await? {
        Some((n, at, _)) => println!(
            "tone      rules + a model learned from {n} correction(s), trained {}",
            OffsetDateTime::from_unix_timestamp(at).map_or(
                "at an unknown time".to_owned(),
                crate::domain::audit::format_utc
            )
        ),
        None => println!("tone      rules only (no corrections yet)"),
    }
    line(
        desk.library_errors.is_empty(),
        format!(
            "library: {} replies, {} error(s){}",
            desk.library.replies.len(),
            desk.library_errors.len(),
            if desk.library_errors.is_empty() {
                ""
            } else {
                " — run `tonedesk library check`"
            }
        ),
    );
    let statuses = desk.store.call(|s| s.poll_statuses()).await?;
    let at = |t: Option<i64>| {
        t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .map_or("never".to_owned(), crate::domain::audit::format_utc)
    };
    for c in &desk.connectors {
        line(
            true,
            format!("account {} ({}): connected", c.account(), c.platform()),
        );
        for st in statuses.iter().filter(|s| s.account == c.account()) {
            let failing = st.last_error_at > st.last_ok_at;
            let budget = match (st.budget_remaining, st.budget_limit) {
                (Some(r), Some(l)) => format!("{r}/{l} requests left"),
                (Some(r), None) => format!("{r} requests left"),
                _ => "no rate-limit headers seen".to_owned(),
            };
            line(
                !failing,
                format!(
                    "  {}: last success {}, next poll {}, {budget}{}",
                    st.stream,
                    at(st.last_ok_at),
                    at(st.next_at),
                    match (&st.last_error, failing) {
                        (Some(e), true) => format!("; failing: {e}"),
                        (Some(e), false) => format!("; last error ({}): {e}", at(st.last_error_at)),
                        (None, _) => String::new(),
                    }
                ),
            );
        }
    }
    for (a, why) in &desk.unconnected {
        line(false, format!("account {a}: {why}"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut check = |path: &std::path::Path, want: u32| {
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = meta.permissions().mode() & 0o777;
                line(
                    mode & 0o077 == 0,
                    format!(
                        "{} is {mode:o}{}",
                        path.display(),
                        if mode & 0o077 == 0 {
                            String::new()
                        } else {
                            format!(
                                ": others can read it; run chmod {want:o} {}",
                                path.display()
                            )
                        }
                    ),
                );
            }
        };
        if let Some(h) = &p.home {
            check(h, 0o700);
        }
        check(&p.database, 0o600);
        check(&crate::paths::search_index_beside(&p.database), 0o600);
        check(&p.config_file, 0o600);
        // Files a person edits or that grow by themselves: the library and the logs.
        for dir in [&p.library_dir, &p.log_dir] {
            check(dir, 0o700);
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            for f in files.iter().filter(|f| f.is_file()) {
                check(f, 0o600);
            }
        }
    }
    match crate::tui::colors_wanted(desk.config.ui.color) {
        true => println!("colours   on"),
        false => println!("colours   off (NO_COLOR or [ui] color = false)"),
    }
    let ssh = crate::tui::over_ssh();
    let terminal = if ssh { "over SSH" } else { "local terminal" };
    match desk.config.ui.detail.open_at_start(ssh) {
        true => println!("detail    pane open at start ({terminal})"),
        false => println!(
            "detail    pane closed at start ({terminal}): Enter opens it; [ui] detail = \"open\" keeps it open"
        ),
    }
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn tone(cmd: &ToneCommand, home: Option<&std::path::Path>) -> Result<ExitCode> {
    let config = match home {
        Some(h) => Config::load(&Paths::under(h).config_file)?,
        None => Paths::xdg()
            .ok()
            .map(|p| Config::load(&p.config_file))
            .transpose()?
            .unwrap_or_default(),
    };
    let classifier = Classifier::new(config.tone_config());
    // The model learned from this desk's corrections takes part, as it does at ingest.
    let paths = match home {
        Some(h) => Some(Paths::under(h)),
        None => Paths::xdg().ok(),
    };
    if let Some(db) = paths.map(|p| p.database).filter(|db| db.exists()) {
        let store = crate::store::Store::open(&db)?;
        if let Some((n, _, json)) = store.load_model()? {
            let model = crate::tone::Model::from_json(&json).map_err(|e| {
                anyhow::anyhow!(
                    "the stored tone model is unreadable ({e}); run `tonedesk tone learn`"
                )
            })?;
            eprintln!("using the model learned from {n} correction(s)");
            classifier.set_model(Some(model));
        }
    }
    let author = Author::default();
    match cmd {
        ToneCommand::Learn => Ok(ExitCode::SUCCESS),
        ToneCommand::Curve { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let rows: Vec<(String, String)> = text
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .filter(|(label, _)| label_index(label.trim()).is_some())
                .map(|(label, body)| (label.trim().to_owned(), body.to_owned()))
                .collect();
            if rows.is_empty() {
                bail!(
                    "{}: no labelled lines (expected label<TAB>text)",
                    file.display()
                );
            }
            println!(
                "{:>5} {:>6}  {:>9} {:>9}  {:>9} {:>9}",
                "k", "eval", "rules acc", "rules F1", "+model acc", "+model F1"
            );
            for p in crate::tone::learning_curve(&rows, &[100, 300, 1000, 3000]) {
                println!(
                    "{:>5} {:>6}  {:>9.3} {:>9.3}  {:>10.3} {:>9.3}",
                    p.k,
                    p.n_eval,
                    p.rules_accuracy,
                    p.rules_macro_f1,
                    p.blended_accuracy,
                    p.blended_macro_f1
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ToneCommand::Classify => {
            let stdin = std::io::stdin().lock();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in stdin.lines() {
                let line = line.context("reading standard input")?;
                let tags = classifier.classify(&line, &author);
                let j = serde_json::json!({
                    "tone": tags.tone.as_str(),
                    "flags": tags.flags,
                    "confidence": (f64::from(tags.confidence) * 1000.0).round() / 1000.0,
                    "reasons": tags.reasons,
                });
                writeln!(out, "{j}")?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        ToneCommand::Eval { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut scores = Scores::default();
            let mut skipped = 0;
            for (n, line) in text.lines().enumerate() {
                let Some((label, body)) = line.split_once('\t') else {
                    if !line.trim().is_empty() {
                        skipped += 1;
                        eprintln!(
                            "{}:{}: skipped: expected label<TAB>text",
                            file.display(),
                            n + 1
                        );
                    }
                    continue;
                };
                let Some(gold) = label_index(label.trim()) else {
                    skipped += 1;
                    eprintln!(
                        "{}:{}: skipped: label '{label}' is not positive, neutral or negative",
                        file.display(),
                        n + 1
                    );
                    continue;
                };
                let predicted = classifier.classify(body, &author).tone.polarity();
                scores.add(gold, label_index(predicted).unwrap_or(1));
            }
            if scores.total() == 0 {
                bail!(
                    "{}: no labelled lines (expected label<TAB>text)",
                    file.display()
                );
            }
            print!("{scores}");
            if skipped > 0 {
                println!("skipped   {skipped} malformed line(s)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vars_parse() {
        let v = parse_vars(&["topic=copay card".into()]).unwrap();
        assert_eq!(v["topic"], "copay card");
        assert!(parse_vars(&["nope".into()]).is_err());
    }

    #[test]
    fn library_starter_is_what_seeding_writes() {
        use crate::app::library::Library;
        let dir = tempfile::tempdir().unwrap();
        Library::seed(dir.path()).unwrap();
        assert!(Library::load(dir.path()).is_ok());
    }
}
