//! The learned model: training, persistence, blending with the rules, and the learning curve.
//! Every text here is written for these tests; none comes from a data set.

use super::learn::{Params, learning_curve_with};
use super::*;
use crate::domain::{Author, Flag, Tone};

fn airline_rows() -> Option<Vec<(String, String)>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/tone/airline-dev.tsv");
    let Ok(data) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is not there", path.display());
        return None;
    };
    Some(
        data.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
    )
}

fn print_curve(points: &[CurvePoint]) {
    println!(
        "{:>5} {:>6}  {:>9} {:>9}  {:>9} {:>9}",
        "k", "n_eval", "rules acc", "rules F1", "blend acc", "blend F1"
    );
    for p in points {
        println!(
            "{:>5} {:>6}  {:>9.3} {:>9.3}  {:>9.3} {:>9.3}",
            p.k,
            p.n_eval,
            p.rules_accuracy,
            p.rules_macro_f1,
            p.blended_accuracy,
            p.blended_macro_f1
        );
    }
}

/// `cargo test --release --lib tone::learn_tests::curve_airline_dev -- --ignored --nocapture`
#[test]
#[ignore = "needs ../shared/data/tone/airline-dev.tsv"]
fn curve_airline_dev() {
    let Some(rows) = airline_rows() else { return };
    let start = std::time::Instant::now();
    let points = learning_curve(&rows, &[100, 300, 1000, 3000]);
    print_curve(&points);
    println!("({:.2}s)", start.elapsed().as_secs_f64());
    // How far the model moves the rules: the share of evaluated posts whose tone it changes.
    let c = Classifier::new(ToneConfig::default());
    let who = Author::default();
    for k in [10, 30, 100, 300, 1000, 3000]
        .into_iter()
        .filter(|&k| k < rows.len())
    {
        let train: Vec<Example> = rows[..k]
            .iter()
            .map(|(l, t)| {
                ex(
                    if l == "negative" {
                        Tone::Complaint
                    } else {
                        l.parse().unwrap()
                    },
                    t,
                )
            })
            .collect();
        let rest = &rows[k..];
        let rules: Vec<Tone> = rest.iter().map(|(_, t)| c.classify(t, &who).tone).collect();
        c.set_model(Some(Model::train(&train)));
        let changed = rest
            .iter()
            .zip(&rules)
            .filter(|((_, t), r)| c.classify(t, &who).tone != **r)
            .count();
        c.set_model(None);
        println!(
            "k={k:>5}: the model changes {:.1}% of the tones after",
            100.0 * changed as f64 / rest.len() as f64
        );
    }
}

#[test]
#[ignore = "parameter sweep, by hand"]
fn sweep() {
    let Some(rows) = airline_rows() else { return };
    let ks = [100, 300, 1000, 3000];
    let base = Params::DEFAULT;
    let spec = std::env::var("SWEEP").unwrap_or_default();
    let mut variants = vec![base];
    for item in spec.split(';').filter(|s| !s.is_empty()) {
        let mut p = base;
        for kv in item.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v: f32 = v.parse().unwrap_or(0.0);
            match k {
                "beta" => p.beta = v,
                "k" => p.k = v,
                "l2" => p.l2 = v,
                "l1" => p.l1 = v,
                "bias" => p.bias = v > 0.0,
                "meta" => p.meta = v > 0.0,
                "prune" => p.prune = v,
                "stop" => p.stop = v > 0.0,
                "rate" => p.rate = v,
                "epochs" => p.epochs = v as usize,
                "bigrams" => p.bigrams = v > 0.0,
                _ => {}
            }
        }
        variants.push(p);
    }
    for p in variants {
        println!("{p:?}");
        let c = Classifier::new(ToneConfig::default());
        let big: Vec<Example> = rows[..rows.len().min(3000)]
            .iter()
            .map(|(l, t)| {
                ex(
                    if l == "negative" {
                        Tone::Complaint
                    } else {
                        l.parse().unwrap()
                    },
                    t,
                )
            })
            .collect();
        let t0 = std::time::Instant::now();
        let m = Model::train_with(&big, &p);
        println!(
            "   3000: {:.3}s, {} bytes of JSON, {m:?}",
            t0.elapsed().as_secs_f64(),
            m.to_json().len(),
        );
        let m = Model::train_with(&copay_corrections(), &p);
        c.set_model(Some(m));
        for t in [
            COPAY_NEW,
            COPAY_NEW_2,
            "Picked up my refill at the pharmacy counter today.",
            "Is the patient support line open on Sundays?",
            "Thank you, the refill reminder works great",
        ] {
            let tags = c.classify(t, &Author::default());
            println!(
                "   {:?} {:.2} {:?} <- {t}",
                tags.tone,
                tags.confidence,
                tags.reasons.first()
            );
        }
        print_curve(&learning_curve_with(&rows, &ks, &p));
    }
}

fn ex(tone: Tone, text: &str) -> Example {
    Example {
        text: text.to_owned(),
        tone,
    }
}

/// A desk's first corrections: copay-card trouble the rules read as neutral, and a few others.
fn copay_corrections() -> Vec<Example> {
    vec![
        ex(
            Tone::Complaint,
            "tried to use the copay card and it bounced",
        ),
        ex(
            Tone::Complaint,
            "copay card still shows inactive at the pharmacy",
        ),
        ex(Tone::Complaint, "the copay card says invalid member id"),
        ex(
            Tone::Complaint,
            "copay card came back with an error code at pickup",
        ),
        ex(
            Tone::Complaint,
            "pharmacist ran my copay card twice, same message",
        ),
        ex(
            Tone::Complaint,
            "copay card is showing a zero balance after one fill",
        ),
        ex(
            Tone::Positive,
            "the nurse line was so helpful today, thank you",
        ),
        ex(Tone::Neutral, "picked up my refill this morning"),
        ex(
            Tone::Neutral,
            "what time does the support line open on saturday",
        ),
        ex(Tone::Positive, "love the new reminder feature in the app"),
        ex(Tone::Neutral, "switching pharmacies next month"),
        ex(Tone::Complaint, "on hold for an hour, again"),
    ]
}

const COPAY_NEW: &str = "Copay card shows an error code at the pharmacy counter";
const COPAY_NEW_2: &str = "the copay card says my member id is invalid";

// ---- unit tests ------------------------------------------------------------------------------

fn classifier() -> Classifier {
    Classifier::new(ToneConfig {
        products: vec!["Zyntriva".into(), "zyntrivastat".into()],
        crisis_keywords: vec!["recall".into(), "lawsuit".into()],
        hcp_handles: vec![],
    })
}

fn anyone() -> Author {
    Author {
        handle: "someone".into(),
        display_name: "Sam".into(),
        bio: "coffee, hiking, dogs".into(),
    }
}

/// Corrections from a desk whose posts the rules read differently: app sync trouble is a
/// complaint, "props to …" is praise, and pharmacy-hours chatter is neutral.
fn desk_corrections() -> Vec<Example> {
    let mut v = copay_corrections();
    v.extend([
        ex(
            Tone::Complaint,
            "the refill app will not sync with my pharmacy account",
        ),
        ex(Tone::Complaint, "app sync keeps failing after the update"),
        ex(Tone::Complaint, "refill app sync spins forever on my phone"),
        ex(
            Tone::Complaint,
            "still no sync between the app and my pharmacy",
        ),
        ex(Tone::Positive, "props to the weekend pharmacist team"),
        ex(Tone::Positive, "props to the nurse who called me back"),
        ex(Tone::Positive, "big props to the delivery driver"),
        ex(Tone::Neutral, "pharmacy hours on the holiday are 9 to 1"),
        ex(Tone::Neutral, "the pharmacy hours changed for the summer"),
        ex(Tone::Neutral, "pharmacy hours posted on the door"),
        ex(Tone::Spam, "earn 500 a day from home dm me now"),
        ex(Tone::Troll, "you people are clowns and everyone knows it"),
    ]);
    v
}

#[test]
fn training_and_prediction_on_written_examples() {
    let examples = desk_corrections();
    let model = Model::train(&examples);
    assert_eq!(model.examples(), examples.len());
    let per_tone = model.examples_per_tone();
    assert_eq!(
        per_tone.iter().map(|(_, n)| n).sum::<usize>(),
        examples.len()
    );
    assert!(per_tone.contains(&(Tone::Complaint, 11)), "{per_tone:?}");

    let c = classifier();
    let who = anyone();
    let rules_fitted = examples
        .iter()
        .filter(|e| c.classify(&e.text, &who).tone == e.tone)
        .count();
    c.set_model(Some(model));
    // It learned its corrections (the rules alone get far fewer of them right).
    let fitted = examples
        .iter()
        .filter(|e| c.classify(&e.text, &who).tone == e.tone)
        .count();
    assert!(
        fitted * 10 >= examples.len() * 9,
        "{fitted} of {}",
        examples.len()
    );
    assert!(
        rules_fitted + 5 <= fitted,
        "rules {rules_fitted}, model {fitted}"
    );
    // And new posts like them follow, where the rules said otherwise.
    let held_out = [
        (
            "the refill app sync spins on my tablet too",
            Tone::Complaint,
        ),
        (
            "the copay card says my member id is invalid",
            Tone::Complaint,
        ),
        ("props to the pharmacist on call", Tone::Positive),
    ];
    for (text, tone) in held_out {
        let t = c.classify(text, &who);
        assert_eq!(t.tone, tone, "{text:?} → {t:?}");
    }
    c.set_model(None);
    for (text, tone) in held_out {
        let t = c.classify(text, &who);
        assert_ne!(t.tone, tone, "the rules already knew: {text:?} → {t:?}");
    }
}

#[test]
fn json_round_trip() {
    let model = Model::train(&desk_corrections());
    let json = model.to_json();
    let back = Model::from_json(&json).expect("round trip");
    assert_eq!(back.examples(), model.examples());
    assert_eq!(back.to_json(), json);
    let (a, b) = (classifier(), classifier());
    a.set_model(Some(model));
    b.set_model(Some(back));
    let who = anyone();
    for text in [
        COPAY_NEW,
        COPAY_NEW_2,
        "props to the pharmacy team",
        "ok",
        "",
    ] {
        assert_eq!(a.classify(text, &who), b.classify(text, &who), "{text:?}");
    }
}

#[test]
fn garbage_json_is_an_error() {
    let good = Model::train(&copay_corrections()).to_json();
    let value: serde_json::Value = serde_json::from_str(&good).expect("valid json");
    let with = |key: &str, v: serde_json::Value| {
        let mut m = value.clone();
        m[key] = v;
        m.to_string()
    };
    let first = value["features"][0].clone();
    let bad = [
        String::new(),
        "null".into(),
        "{}".into(),
        "[1, 2, 3]".into(),
        "not json at all".into(),
        good[..good.len() / 2].to_string(),
        with("format", 99.into()),
        with("weight", 2.0.into()),
        with("beta", (-1.0).into()),
        with("examples", 13.into()),
        with("features", serde_json::json!([first, first])),
        with("weights", serde_json::json!([[1e40, 0, 0, 0, 0]])),
        with("bias", serde_json::json!([0, 0, 0])),
        with("features", serde_json::json!(["x"])),
    ];
    for s in &bad {
        let r = Model::from_json(s);
        assert!(r.is_err(), "accepted {:?}", &s[..s.len().min(80)]);
    }
}

/// The "done": after an operator retags posts like X as complaints, a similar new post is
/// tagged complaint where the rules alone said otherwise, and says why.
#[test]
fn a_correction_changes_later_predictions_on_similar_text() {
    let c = classifier();
    let who = anyone();
    let before = c.classify(COPAY_NEW_2, &who);
    assert_eq!(before.tone, Tone::Neutral, "{before:?}");

    // Clones share the model slot: the console's copy sees the model the store installs.
    let console = c.clone();
    c.set_model(Some(Model::train(&copay_corrections())));
    let after = console.classify(COPAY_NEW_2, &who);
    assert_eq!(after.tone, Tone::Complaint, "{after:?}");
    let learned = after
        .reasons
        .iter()
        .find(|r| r.starts_with("learned: "))
        .expect("a learned reason");
    assert!(
        learned.contains("copay") && learned.ends_with("→ complaint (from 12 corrections)"),
        "{learned}"
    );

    // Unrelated posts keep their tone.
    for (text, tone) in [
        (
            "Picked up my refill at the pharmacy counter today.",
            Tone::Neutral,
        ),
        (
            "Is the patient support line open on Sundays?",
            Tone::Neutral,
        ),
        ("Thank you, the refill reminder works great", Tone::Positive),
        (
            "@acmecare I have been on hold for 40 minutes",
            Tone::Complaint,
        ),
    ] {
        let t = console.classify(text, &who);
        assert_eq!(t.tone, tone, "{text:?} → {t:?}");
        assert!(!t.reasons.iter().any(|r| r.starts_with("learned")), "{t:?}");
    }
}

#[test]
fn set_model_none_restores_the_rules_only_output() {
    let c = classifier();
    let who = anyone();
    let posts = [
        COPAY_NEW,
        COPAY_NEW_2,
        "Thanks for nothing @acmecare, still waiting on the callback you promised.",
        "Started Zyntriva last week and now I have a rash on both arms",
        "Loving the new app, refills are so easy now 😍",
        "Cheap meds no prescription needed!! Buy now bit.ly/xyz",
        "props to the pharmacy team",
        "",
    ];
    let rules_only: Vec<Tags> = posts.iter().map(|p| c.classify(p, &who)).collect();
    c.set_model(Some(Model::train(&desk_corrections())));
    let blended: Vec<Tags> = posts.iter().map(|p| c.classify(p, &who)).collect();
    assert_ne!(rules_only, blended);
    c.set_model(None);
    let again: Vec<Tags> = posts.iter().map(|p| c.classify(p, &who)).collect();
    assert_eq!(rules_only, again);
    // A model trained on nothing changes nothing.
    c.set_model(Some(Model::train(&[])));
    let empty: Vec<Tags> = posts.iter().map(|p| c.classify(p, &who)).collect();
    assert_eq!(rules_only, empty);
}

#[test]
fn model_examples() {
    let c = classifier();
    let clone = c.clone();
    assert_eq!(c.model_examples(), 0);
    c.set_model(Some(Model::train(&copay_corrections())));
    assert_eq!(c.model_examples(), 12);
    assert_eq!(clone.model_examples(), 12);
    clone.set_model(Some(Model::train(&desk_corrections())));
    assert_eq!(c.model_examples(), 24);
    c.set_model(None);
    assert_eq!(clone.model_examples(), 0);
    assert_eq!(Model::train(&[]).examples(), 0);
    assert!(format!("{c:?}").contains("model_examples"));
}

#[test]
fn flags_stay_with_the_rules() {
    // Corrections that call adverse-event posts positive teach tone, never the flags.
    let examples: Vec<Example> = [
        "Zyntriva gave me a rash but I love it",
        "Zyntriva made me dizzy, still my favourite",
        "took two zyntriva by mistake, all good",
        "Zyntriva gave me hives, fine though",
    ]
    .iter()
    .flat_map(|t| [ex(Tone::Positive, t), ex(Tone::Positive, t)])
    .chain(copay_corrections())
    .collect();
    let c = classifier();
    c.set_model(Some(Model::train(&examples)));
    let who = anyone();
    let t = c.classify(
        "Zyntriva gave me a rash. Can I take it with alcohol? Heard about a recall",
        &who,
    );
    for flag in [Flag::Ae, Flag::MedicalQuestion, Flag::Crisis] {
        assert!(t.flags.contains(flag), "{t:?}");
    }
    assert!(t.reasons.len() <= 6, "{t:?}");
    assert!(t.reasons[0].starts_with("ae: "), "{t:?}");
    let t = c.classify("zyntriva gave me hives all over", &who);
    assert!(t.flags.contains(Flag::Ae), "{t:?}");
    if let Some(i) = t.reasons.iter().position(|r| r.starts_with("learned")) {
        // The learned reason comes after the flags.
        assert!(
            t.reasons[..i].iter().all(|r| r.starts_with("ae: ")),
            "{t:?}"
        );
    }
}

#[test]
fn training_is_deterministic() {
    let a = Model::train(&desk_corrections()).to_json();
    let b = Model::train(&desk_corrections()).to_json();
    assert_eq!(a, b);
}

#[test]
fn learning_curve_on_written_rows() {
    let rows: Vec<(String, String)> = desk_corrections()
        .iter()
        .map(|e| (e.tone.polarity().to_owned(), e.text.clone()))
        .chain([("label".to_owned(), "a header row is skipped".to_owned())])
        .collect();
    let points = learning_curve(&rows, &[5, 20, 100]);
    assert_eq!(points.len(), 2, "{points:?}");
    assert_eq!((points[0].k, points[0].n_eval), (5, 19));
    assert_eq!((points[1].k, points[1].n_eval), (20, 4));
    for p in &points {
        for x in [
            p.rules_accuracy,
            p.rules_macro_f1,
            p.blended_accuracy,
            p.blended_macro_f1,
        ] {
            assert!((0.0..=1.0).contains(&x), "{p:?}");
        }
    }
}
