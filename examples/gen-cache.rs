//! Writes a large, realistic cache under a tonedesk home, for the scale benchmark and anyone
//! reproducing its figures:
//!
//! ```text
//! cargo run --release --example gen-cache -- --home /tmp/big --mentions 1000000
//! tonedesk --home /tmp/big          # the console on the generated cache (demo accounts)
//! ```
//!
//! The mentions go through the real classifier and the store's real ingest path in batches; the
//! history (answers, follow-ups, AE intake records and exports) through the store's real writes,
//! each audited. See `tonedesk::app::generate`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use time::OffsetDateTime;

use tonedesk::app::generate;
use tonedesk::config::Config;
use tonedesk::paths::Paths;
use tonedesk::store::Store;
use tonedesk::tone::Classifier;

#[derive(Parser)]
#[command(about = "Generate a large realistic tonedesk cache")]
struct Args {
    /// The tonedesk home to write (its database must not hold mentions yet).
    #[arg(long)]
    home: PathBuf,
    /// How many mentions.
    #[arg(long, default_value_t = 1_000_000)]
    mentions: usize,
    /// The random seed (the same seed and count give the same mentions).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let paths = Paths::under(&args.home);
    paths.create_dirs()?;
    let mut store = Store::open(&paths.database)
        .with_context(|| format!("cannot open {}", paths.database.display()))?;
    generate::demo_accounts(&mut store)?;
    let classifier = Classifier::new(Config::default().tone_config());
    let start = Instant::now();
    let now = OffsetDateTime::now_utc();
    let step = (args.mentions / 20).max(generate::BATCH);
    let mut next = step;
    let done = generate::populate(
        &mut store,
        &classifier,
        args.seed,
        now,
        args.mentions,
        &mut |p| {
            if p.mentions >= next || p.mentions == args.mentions {
                next += step;
                eprintln!(
                    "{:>9} mentions  {:>6.1}s",
                    p.mentions,
                    start.elapsed().as_secs_f64()
                );
            }
        },
    )?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} mentions in {} ({:.0}/s): {} answered, {} open, {} snoozed for a follow-up, {} AE intake records exported",
        done.mentions,
        paths.database.display(),
        done.mentions as f64 / secs,
        done.done,
        done.open,
        done.snoozed,
        done.ae_cases
    );
    Ok(())
}
