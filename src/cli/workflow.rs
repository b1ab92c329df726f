//! The compliance subcommands: AE intake and export, the review queue and `library approve`,
//! snoozes and follow-ups.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::compliance::Approval;
use crate::app::desk::Desk;
use crate::app::export;
use crate::domain::audit::format_utc;
use crate::domain::{ChannelRule, Draft, DraftState, ElementState, Flag, MentionId, Tone};

#[derive(Debug, Subcommand)]
pub enum AeCommand {
    /// Export every adverse event for the safety team (audited): the four minimum elements with
    /// their state, the verbatim text and the clock. Saved intake records are marked exported.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: AeFormat,
    },
    /// Show a mention's intake record (saved, or pre-filled from the tags).
    Show { mention: MentionId },
    /// Save a mention's intake record (audited), starting from what is saved or pre-filled; flags
    /// the mention as AE if it was not.
    Intake {
        mention: MentionId,
        #[arg(long)]
        reporter: Option<String>,
        #[arg(long)]
        patient: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long)]
        reaction: Option<String>,
        /// An element to ask the reporter about (reporter, patient, product, reaction); repeatable.
        #[arg(long, value_name = "ELEMENT")]
        ask: Vec<String>,
        /// An element that stays unknown; repeatable.
        #[arg(long, value_name = "ELEMENT")]
        missing: Vec<String>,
        #[arg(long)]
        notes: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AeFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// File custom wording for MLR review (from --file, or standard input). It is never sent as
    /// it is: only `library approve` makes it a reply.
    Add {
        /// The mention it answers, if any.
        #[arg(long)]
        mention: Option<MentionId>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// The drafts waiting for review (all of them with --all).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Export the waiting drafts for MLR review.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: AeFormat,
    },
    /// Turn a draft down (audited).
    Reject {
        draft: i64,
        #[arg(long)]
        reason: String,
    },
}

/// `library approve`: a reviewed draft becomes a library reply.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The draft's id (see `tonedesk review list`).
    pub draft: i64,
    /// The MLR approval reference.
    #[arg(long)]
    pub approval: String,
    /// The last day the reply may be sent (YYYY-MM-DD).
    #[arg(long)]
    pub expires: String,
    /// The new reply's id (default: custom-<draft>).
    #[arg(long)]
    pub id: Option<String>,
    /// Tones it suits (repeatable).
    #[arg(long = "tone")]
    pub tones: Vec<Tone>,
    /// Flags it suits (repeatable).
    #[arg(long = "flag")]
    pub flags: Vec<Flag>,
    /// public, private or either.
    #[arg(long, default_value = "private")]
    pub channel: ChannelRule,
}

pub async fn ae(desk: &Desk, cmd: AeCommand) -> Result<ExitCode> {
    match cmd {
        AeCommand::Export { format } => {
            let what = match format {
                AeFormat::Csv => "as CSV",
                AeFormat::Json => "as JSON",
            };
            let reports = desk.ae_export(what).await?;
            let now = OffsetDateTime::now_utc();
            let rows: Vec<Value> = reports.iter().map(|r| export::ae_json(r, now)).collect();
            print_rows(&rows, &export::AE_COLUMNS, format)?;
        }
        AeCommand::Show { mention } => {
            let (case, saved) = desk.ae_case(mention).await?;
            println!(
                "AE intake for mention {mention} ({})",
                if saved {
                    "saved"
                } else {
                    "pre-filled from the tags, not saved"
                }
            );
            for (name, e) in case.elements() {
                println!("  {name:<9} [{:<7}] {}", e.state, e.value);
            }
            println!("  published {}", format_utc(case.published_at));
            println!("  due       {}", format_utc(case.due_at));
            println!("  verbatim  {}", case.verbatim);
            if !case.notes.is_empty() {
                println!("  notes     {}", case.notes);
            }
            match case.gaps().as_slice() {
                [] => println!("valid case: all four elements present"),
                gaps => println!("not yet a valid case: {} to complete", gaps.join(", ")),
            }
        }
        AeCommand::Intake {
            mention,
            reporter,
            patient,
            product,
            reaction,
            ask,
            missing,
            notes,
        } => {
            let (mut case, _) = desk.ae_case(mention).await?;
            for (i, value) in [reporter, patient, product, reaction]
                .into_iter()
                .enumerate()
            {
                if let (Some(v), Some(e)) = (value, case.element_mut(i)) {
                    e.state = if v.trim().is_empty() {
                        ElementState::Ask
                    } else {
                        ElementState::Present
                    };
                    e.value = v;
                }
            }
            for (names, state) in [(ask, ElementState::Ask), (missing, ElementState::Missing)] {
                for name in names {
                    let i = crate::domain::ae::ELEMENTS
                        .iter()
                        .position(|e| *e == name)
                        .with_context(|| {
                            format!(
                                "unknown element '{name}': use reporter, patient, product or reaction"
                            )
                        })?;
                    if let Some(e) = case.element_mut(i) {
                        e.state = state;
                    }
                }
            }
            if let Some(n) = notes {
                case.notes = n;
            }
            let gaps = case.gaps();
            let entry = desk.save_ae_case(case).await?;
            println!(
                "saved the AE intake for mention {mention} (audit entry {}); {}",
                entry.seq,
                if gaps.is_empty() {
                    "valid case: all four elements present".to_owned()
                } else {
                    format!("still to complete: {}", gaps.join(", "))
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn review(desk: &Desk, cmd: ReviewCommand) -> Result<ExitCode> {
    match cmd {
        ReviewCommand::Add { mention, file } => {
            let raw = match &file {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("cannot read the draft from standard input")?;
                    s
                }
            };
            let Some(text) = crate::domain::draft::clean_editor_text(&raw) else {
                bail!("the draft is empty: write the wording in --file or on standard input");
            };
            let (id, entry) = desk.draft(mention, text).await?;
            println!(
                "draft {id} filed for MLR review (audit entry {}); it cannot be sent until `tonedesk library approve {id} --approval REF --expires DATE`",
                entry.seq
            );
        }
        ReviewCommand::List { all, json } => {
            let drafts = desk.drafts((!all).then_some(DraftState::Draft)).await?;
            if json {
                let rows: Vec<Value> = drafts.iter().map(draft_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if drafts.is_empty() {
                println!("no drafts waiting for review");
            } else {
                for d in &drafts {
                    println!(
                        "{:>4}  {:<8}  mention {:<6} {}  {}",
                        d.id,
                        d.state,
                        d.mention.map_or("-".into(), |m| m.to_string()),
                        format_utc(d.created_at),
                        d.text.replace('\n', " ")
                    );
                }
            }
        }
        ReviewCommand::Export { format } => {
            let drafts = desk.drafts(Some(DraftState::Draft)).await?;
            let rows: Vec<Value> = drafts.iter().map(draft_json).collect();
            print_rows(&rows, &DRAFT_COLUMNS, format)?;
        }
        ReviewCommand::Reject { draft, reason } => {
            if reason.trim().is_empty() {
                bail!("--reason must say why the draft is turned down");
            }
            let e = desk.reject_draft(draft, &reason).await?;
            println!("draft {draft} rejected (audit entry {})", e.seq);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn approve(desk: &Desk, a: ApproveArgs) -> Result<ExitCode> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let expires_on = time::Date::parse(&a.expires, &format)
        .with_context(|| format!("--expires '{}' must be a date like 2027-06-30", a.expires))?;
    if expires_on <= OffsetDateTime::now_utc().date() {
        bail!("--expires {expires_on} is not in the future");
    }
    if a.approval.trim().is_empty() {
        bail!("--approval must be the MLR approval reference");
    }
    let reply_id = a.id.unwrap_or_else(|| format!("custom-{}", a.draft));
    let file = desk
        .approve_draft(
            a.draft,
            Approval {
                reply_id: reply_id.clone(),
                reference: a.approval.clone(),
                expires_on,
                tones: a.tones,
                flags: a.flags,
                channel: a.channel,
            },
        )
        .await?;
    println!(
        "draft {} is now library reply '{reply_id}' v1 ({}), in {}",
        a.draft,
        a.approval,
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `snooze MENTION --for 4h` or `--follow-up` (an HCP reminder, `hcp_follow_up_days` later).
pub async fn snooze(
    desk: &Desk,
    mention: MentionId,
    duration: Option<String>,
    follow_up: bool,
) -> Result<ExitCode> {
    if follow_up {
        let (e, until) = desk.follow_up(mention).await?;
        println!(
            "follow-up reminder for mention {mention} on {} (audit entry {})",
            format_utc(until),
            e.seq
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(d) = duration else {
        bail!("say how long: --for 2h (m, h or d), or --follow-up for an HCP reminder");
    };
    let span = parse_duration(&d)?;
    let until = OffsetDateTime::now_utc() + span;
    let e = desk.snooze(mention, until).await?;
    println!(
        "mention {mention} snoozed until {} (audit entry {})",
        format_utc(until),
        e.seq
    );
    Ok(ExitCode::SUCCESS)
}

/// `90m`, `4h`, `2d`.
pub fn parse_duration(s: &str) -> Result<time::Duration> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("'{s}' is not a duration like 90m, 4h or 2d"))?;
    Ok(match unit {
        "m" => time::Duration::minutes(n),
        "h" | "" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => bail!("'{s}' is not a duration like 90m, 4h or 2d"),
    })
}

const DRAFT_COLUMNS: [&str; 8] = [
    "draft",
    "state",
    "mention",
    "operator",
    "created_at",
    "text",
    "approval",
    "reply_id",
];

fn draft_json(d: &Draft) -> Value {
    json!({
        "draft": d.id,
        "state": d.state.as_str(),
        "mention": d.mention,
        "operator": d.operator,
        "created_at": format_utc(d.created_at),
        "text": d.text,
        "approval": d.approval,
        "reply_id": d.reply_id,
    })
}

fn print_rows(rows: &[Value], columns: &[&str], format: AeFormat) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match format {
        AeFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(rows)?)?,
        AeFormat::Csv => {
            writeln!(out, "{}", columns.join(","))?;
            for r in rows {
                writeln!(out, "{}", export::csv_record(r, columns))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), time::Duration::minutes(90));
        assert_eq!(parse_duration("4h").unwrap(), time::Duration::hours(4));
        assert_eq!(parse_duration("2d").unwrap(), time::Duration::days(2));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
