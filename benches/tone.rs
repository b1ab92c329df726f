//! Classifier throughput on one core (rules alone, and with a learned model) against
//! `vader-sentimental` on the same texts, in one run.
//! `cargo bench --bench tone` (texts: ../shared/data/tone/airline-dev.tsv when present, else the
//! built-in demo mentions). Prints posts per second for each and the ratio (target: at least 2×),
//! plus each one's accuracy on the labelled file when it is there. The three are measured in
//! alternating rounds; rates and ratios are the rounds' medians.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tonedesk::config::Config;
use tonedesk::domain::{Author, Tone};
use tonedesk::platforms::demo::demo_mentions;
use tonedesk::tone::{Classifier, Example, Model};
use vader_sentimental::SentimentIntensityAnalyzer;

const DEV: &str = "../shared/data/tone/airline-dev.tsv";

fn texts() -> (Vec<(String, String)>, &'static str) {
    if let Ok(text) = std::fs::read_to_string(DEV) {
        let rows = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(label, body)| (label.to_owned(), body.to_owned()))
            .collect();
        return (rows, DEV);
    }
    let demo = demo_mentions().expect("demo data parses");
    let rows = demo
        .iter()
        .map(|m| (m.expect_tone.polarity().to_owned(), m.text.clone()))
        .collect();
    (rows, "the built-in demo mentions (../shared absent)")
}

/// Rounds of the three measurements.
const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn spread(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

/// Runs `f` over all texts repeatedly for at least `min` and returns posts per second.
fn rate(texts: &[String], min: Duration, mut f: impl FnMut(&str)) -> f64 {
    for t in texts.iter().take(200) {
        f(t); // warm-up
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for t in texts {
            f(t);
        }
        n += texts.len() as u64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let (rows, source) = texts();
    let bodies: Vec<String> = rows.iter().map(|(_, t)| t.clone()).collect();
    let classifier = Classifier::new(Config::default().tone_config());
    let author = Author::default();
    let vader = SentimentIntensityAnalyzer::new();
    // The same classifier with a model learned from corrections (the first 3,000 rows, or all
    // the demo mentions, taught as an operator would).
    let examples: Vec<Example> = rows
        .iter()
        .take(3000)
        .filter_map(|(label, text)| {
            let tone = match label.as_str() {
                "negative" => Tone::Complaint,
                other => other.parse().ok()?,
            };
            Some(Example {
                text: text.clone(),
                tone,
            })
        })
        .collect();
    let learned = Classifier::new(Config::default().tone_config());
    learned.set_model(Some(Model::train(&examples)));

    // Rounds that measure the three side by side, so that a load that comes and goes on a shared
    // machine weighs on each alike; each ratio is the median of the rounds' ratios.
    let min = Duration::from_millis(600);
    let (mut ours, mut theirs, mut with_model) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        ours.push(rate(&bodies, min, |t| {
            black_box(classifier.classify(black_box(t), &author));
        }));
        theirs.push(rate(&bodies, min, |t| {
            black_box(vader.polarity_scores(black_box(t)));
        }));
        with_model.push(rate(&bodies, min, |t| {
            black_box(learned.classify(black_box(t), &author));
        }));
    }
    let ratio = median(ours.iter().zip(&theirs).map(|(a, b)| a / b).collect());
    let ratio_model = median(with_model.iter().zip(&theirs).map(|(a, b)| a / b).collect());
    let (lo, hi) = spread(ours.iter().zip(&theirs).map(|(a, b)| a / b));
    let (ours, theirs, with_model) = (median(ours), median(theirs), median(with_model));

    println!("texts: {} from {source}", bodies.len());
    println!("tonedesk classifier  {ours:>12.0} posts/s (one core, median of {ROUNDS} rounds)");
    println!(
        "  with a model        {with_model:>12.0} posts/s ({} corrections)",
        examples.len()
    );
    println!("vader-sentimental    {theirs:>12.0} posts/s (one core)");
    println!("ratio                {ratio:>12.2}x (target >= 2x; rounds {lo:.2}-{hi:.2}x)");
    println!("ratio with a model   {ratio_model:>12.2}x");

    if rows.iter().any(|(l, _)| l == "negative") {
        let (mut ok_ours, mut ok_vader) = (0usize, 0usize);
        for (label, text) in &rows {
            if classifier.classify(text, &author).tone.polarity() == label {
                ok_ours += 1;
            }
            let c = vader.polarity_scores(text).compound;
            let v = if c >= 0.05 {
                "positive"
            } else if c <= -0.05 {
                "negative"
            } else {
                "neutral"
            };
            if v == label {
                ok_vader += 1;
            }
        }
        let n = rows.len() as f64;
        println!(
            "accuracy on the same texts: tonedesk {:.3}, vader {:.3} (compound ±0.05)",
            ok_ours as f64 / n,
            ok_vader as f64 / n
        );
    }
}
