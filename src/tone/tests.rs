//! Classifier behaviour on hand-written posts (no text here comes from any data set).

use super::lexicon::Lexicon;
use super::*;
use crate::domain::{Flag, TagSource, Tone};

fn classifier() -> Classifier {
    Classifier::new(ToneConfig {
        products: vec!["Zyntriva".into(), "zyntrivastat".into()],
        crisis_keywords: vec![
            "recall".into(),
            "death".into(),
            "lawsuit".into(),
            "class action".into(),
        ],
        hcp_handles: vec!["@DrKnownHCP".into()],
    })
}

fn anyone() -> Author {
    Author {
        handle: "someone".into(),
        display_name: "Sam".into(),
        bio: "coffee, hiking, dogs".into(),
    }
}

fn tags(text: &str) -> Tags {
    classifier().classify(text, &anyone())
}

#[track_caller]
fn assert_tone(text: &str, tone: Tone) {
    let t = tags(text);
    assert_eq!(t.tone, tone, "{text:?} → {t:?}");
}

#[track_caller]
fn assert_flag(text: &str, flag: Flag, expected: bool) {
    let t = tags(text);
    assert_eq!(t.flags.contains(flag), expected, "{text:?} → {t:?}");
}

// ---- data ------------------------------------------------------------------------------------

#[test]
fn embedded_lexicons_parse() {
    let (lex, errors) = Lexicon::embedded();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        lex.valence.len() >= 300,
        "valence has {} words",
        lex.valence.len()
    );
    assert!(lex.cues.len() >= 200);
    assert!(lex.ae.len() >= 150);
    assert!(!lex.medical.is_empty());
    assert!(!lex.hcp.credentials.is_empty() && !lex.hcp.text_cues.is_empty());
}

#[test]
fn a_broken_file_is_reported_and_the_rest_still_works() {
    let mut src = super::lexicon::EMBEDDED;
    src.cues = "[[group]]\neffect = \"grumpy\"\n";
    src.valence = "good 1.0\nbad\nworse -9\n";
    let (lex, errors) = Lexicon::from_sources(&src);
    assert!(errors.iter().any(|e| e.file == "cues.toml"), "{errors:?}");
    assert_eq!(
        errors.iter().filter(|e| e.file == "valence.txt").count(),
        2,
        "{errors:?}"
    );
    assert!(lex.cues.is_empty());
    assert_eq!(lex.valence.get("good"), Some(&1.0));
    assert!(!lex.ae.is_empty());
}

#[test]
fn classifier_is_send_sync_and_cheap_to_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Classifier>();
    let c = classifier();
    let d = c.clone();
    assert!(Arc::ptr_eq(&c.engine, &d.engine));
    assert!(format!("{c:?}").contains("valence_words"));
}

// ---- tone ------------------------------------------------------------------------------------

#[test]
fn positive_posts() {
    assert_tone(
        "@acmecare thank you so much, the nurse line was wonderful",
        Tone::Positive,
    );
    assert_tone(
        "Loving the new app, refills are so easy now 😍",
        Tone::Positive,
    );
    assert_tone(
        "Big shout out to your support team, sorted in five minutes!",
        Tone::Positive,
    );
}

#[test]
fn a_success_story_stays_positive() {
    let t = tags(
        "Three months on Zyntriva and I finally have my weekends back. No more migraines, thank you!",
    );
    assert_eq!(t.tone, Tone::Positive, "{t:?}");
    assert!(!t.flags.contains(Flag::Ae), "{t:?}");
}

#[test]
fn neutral_posts() {
    assert_tone(
        "@acmecare when does the new pack size reach pharmacies?",
        Tone::Neutral,
    );
    assert_tone("Picked up my refill today.", Tone::Neutral);
    assert_tone(
        "Is the patient support line open on Sundays?",
        Tone::Neutral,
    );
}

#[test]
fn complaints() {
    assert_tone(
        "Terrible experience with the copay card, nobody can tell me anything",
        Tone::Complaint,
    );
    assert_tone(
        "@acmecare I have been on hold for 40 minutes",
        Tone::Complaint,
    );
    assert_tone(
        "Third week in a row the refill is out of stock at my pharmacy",
        Tone::Complaint,
    );
}

#[test]
fn polite_complaints_are_complaints() {
    let t = tags("Thanks for nothing @acmecare, still waiting on the callback you promised.");
    assert_eq!(t.tone, Tone::Complaint, "{t:?}");
    assert!(
        t.reasons
            .iter()
            .any(|r| r == "negative cue 'Thanks for nothing'"),
        "{t:?}"
    );
    assert_tone(
        "Hi, kindly note that no one answered my email from last month. Thank you.",
        Tone::Complaint,
    );
    assert_tone(
        "Why is the savings card still not working at checkout?",
        Tone::Complaint,
    );
}

#[test]
fn sarcasm_is_a_complaint() {
    let t = tags("Great, another delay on my shipment. Love it 🙄");
    assert_eq!(t.tone, Tone::Complaint, "{t:?}");
    assert!(t.reasons.iter().any(|r| r == "emoji 🙄 (sarcasm)"), "{t:?}");
    assert_tone(
        "Oh wonderful, the website is down again. Best service ever /s",
        Tone::Complaint,
    );
    assert_tone(
        "Yeah right, 'we will call you back within the hour'",
        Tone::Complaint,
    );
    assert_tone(
        "Gotta love how the pharmacy portal logs me out every two minutes",
        Tone::Complaint,
    );
}

#[test]
fn trolls() {
    assert_tone("@acmecare you are all pharma shills and liars", Tone::Troll);
    assert_tone("Scam company run by clowns. Go to hell", Tone::Troll);
    assert_tone("I think you are all idiots", Tone::Troll);
}

#[test]
fn swearing_about_a_symptom_is_not_troll() {
    let t = tags("this damn migraine has been going since noon, fml");
    assert_ne!(t.tone, Tone::Troll, "{t:?}");
    let t =
        tags("Felt like an idiot for forgetting my appointment, the staff were lovely about it");
    assert_ne!(t.tone, Tone::Troll, "{t:?}");
}

#[test]
fn spam() {
    assert_tone(
        "Cheap meds no prescription needed!! Buy now bit.ly/xyz",
        Tone::Spam,
    );
    assert_tone(
        "Gain 10k followers fast, DM me for crypto signals https://tinyurl.com/abc",
        Tone::Spam,
    );
    assert_tone(
        "win win win win free free free gift gift click here",
        Tone::Spam,
    );
}

#[test]
fn negation_flips() {
    assert_tone("The new formula is not good at all", Tone::Complaint);
    assert_tone(
        "It never worked for me and support didn't help",
        Tone::Complaint,
    );
    assert_tone(
        "Honestly not bad, the delivery was no problem",
        Tone::Positive,
    );
}

#[test]
fn contrast_weighs_the_second_clause() {
    assert_tone(
        "The staff were friendly but I am still waiting for my refund",
        Tone::Complaint,
    );
    assert_tone(
        "Took a while to get through, but the pharmacist was fantastic and so helpful",
        Tone::Positive,
    );
}

#[test]
fn emphasis_strengthens() {
    let calm = tags("the service was bad");
    let loud = tags("the service was BAD!!!");
    assert_eq!(loud.tone, Tone::Complaint);
    assert!(loud.confidence > calm.confidence, "{calm:?} vs {loud:?}");
}

#[test]
fn confidence_and_reasons_are_bounded() {
    let t = tags(
        "Worst, most useless, pathetic, terrible, awful, horrible, disgusting service. Still waiting, \
         on hold for 3 hours, no one answered, thanks for nothing 😡😡",
    );
    assert_eq!(t.tone, Tone::Complaint);
    assert!((0.0..=1.0).contains(&t.confidence));
    assert!(t.confidence > 0.9);
    assert!(
        !t.reasons.is_empty() && t.reasons.len() <= 6,
        "{:?}",
        t.reasons
    );
    assert_eq!(t.source, TagSource::Classifier);
    let empty = tags("");
    assert_eq!(empty.tone, Tone::Neutral);
    assert!((0.0..=1.0).contains(&empty.confidence));
}

#[test]
fn odd_input_never_panics() {
    let c = classifier();
    let who = anyone();
    let samples = [
        "",
        " ",
        "\n\n",
        "?",
        "!!!",
        "...",
        "@",
        "#",
        "/",
        "/s",
        "http://",
        "www.",
        "a.b/",
        "'",
        "''",
        "n't",
        "'s",
        ":",
        ":(",
        "<3",
        "😀",
        "👍🏽",
        "🧑‍⚕️",
        "\u{200D}",
        "\u{FE0F}",
        "ǅungla",
        "İstanbul",
        "ÀÉÎ ÕÜ ñ ß",
        "日本語のテキスト",
        "مرحبا",
        "http://a€b.example/x",
        "@€",
        "#€",
        "x@y.z",
        "zyntriva's",
        "Zyntriva!!!!!!!!!!!!!!!!!!!!!!!!!",
        "$$$$$$$$",
        "soooooooooooooooo",
        "not not not not",
        "why .. not",
        "* * *",
        "<num> <url>",
        "the the the the",
    ];
    for s in samples {
        let t = c.classify(s, &who);
        assert!((0.0..=1.0).contains(&t.confidence), "{s:?}");
        assert!(t.reasons.len() <= 6);
    }
    let long = "Zyntriva 😀 made me dizzy?! Can I take it with alcohol... ".repeat(500);
    let t = c.classify(&long, &who);
    assert!(t.flags.contains(Flag::Ae) && t.flags.contains(Flag::MedicalQuestion));
    // Every prefix of a mixed-script text (at char boundaries).
    let mixed = "Ça va? 👍🏽 Zyntrïva—NOT good!! didn't help 😡 bit.ly/x #NoMore :-( ok";
    for (i, _) in mixed.char_indices() {
        let _ = c.classify(&mixed[..i], &who);
    }
}

// ---- flags -----------------------------------------------------------------------------------

#[test]
fn adverse_events() {
    let t = tags("Started Zyntriva last week and now I have a rash on both arms");
    assert!(t.flags.contains(Flag::Ae), "{t:?}");
    assert_eq!(t.reasons[0], "ae: product 'Zyntriva' + reaction 'rash'");
    assert_flag(
        "zyntriva made my husband so dizzy he had to lie down",
        Flag::Ae,
        true,
    );
    assert_flag("Zyntriva stopped working after two months", Flag::Ae, true);
    assert_flag(
        "I took two Zyntriva by mistake this morning",
        Flag::Ae,
        true,
    );
    assert_flag(
        "my pharmacy gave me the wrong strength of zyntrivastat",
        Flag::Ae,
        true,
    );
    assert_flag(
        "Just found out I'm pregnant and I've been taking Zyntriva",
        Flag::Ae,
        true,
    );
    assert_flag(
        "Zyntriva didn't do anything for my migraine",
        Flag::Ae,
        true,
    );
    assert_flag(
        "Heart palpitations every evening since the Zyntriva dose went up",
        Flag::Ae,
        true,
    );
}

#[test]
fn adverse_event_needs_product_and_reaction() {
    assert_flag("I have a rash from the new laundry soap", Flag::Ae, false);
    assert_flag("Zyntriva arrived today, thanks", Flag::Ae, false);
    assert_flag(
        "No side effects at all on Zyntriva, very happy",
        Flag::Ae,
        false,
    );
    assert_flag("Does Zyntriva cause hair loss?", Flag::Ae, false);
}

#[test]
fn misspelt_products_still_count() {
    let t = tags("zyntirva gave me hives all over");
    assert!(t.flags.contains(Flag::Ae), "{t:?}");
    assert!(t.reasons[0].contains("(written 'zyntirva')"), "{t:?}");
    assert_flag("#Zintriva and awful nausea since Monday", Flag::Ae, true);
    assert_flag(
        "Zyntrivas side effects are making me nauseous",
        Flag::Ae,
        true,
    );
}

#[test]
fn hcp_author() {
    let c = classifier();
    let by = |handle: &str, display_name: &str, bio: &str| {
        c.classify(
            "Interesting data from the conference today.",
            &Author {
                handle: handle.into(),
                display_name: display_name.into(),
                bio: bio.into(),
            },
        )
    };
    let t = by("pharmalee", "Lee", "Clinical PharmD, views my own");
    assert!(t.flags.contains(Flag::Hcp), "{t:?}");
    assert!(
        t.reasons.contains(&"hcp: bio 'PharmD'".to_string()),
        "{t:?}"
    );
    assert!(by("x", "Dr. Ana Ruiz", "").flags.contains(Flag::Hcp));
    assert!(
        by("x", "Ana", "Neurologist | headache nerd")
            .flags
            .contains(Flag::Hcp)
    );
    assert!(
        by("x", "Ana", "ER nurse, mom of two")
            .flags
            .contains(Flag::Hcp)
    );
    assert!(by("x", "Ana Ruiz, MD", "").flags.contains(Flag::Hcp));
    assert!(by("x", "Jo", "FNP-C. Runner").flags.contains(Flag::Hcp));
    assert!(by("drknownhcp", "", "").flags.contains(Flag::Hcp));
    assert!(
        !by("x", "Ana", "I do love a good book, md-ish weather fan")
            .flags
            .contains(Flag::Hcp)
    );
    assert!(!by("x", "Ana", "Pittsburgh, PA").flags.contains(Flag::Hcp));
    let t = c.classify("As a nurse I see this question a lot", &anyone());
    assert!(t.flags.contains(Flag::Hcp), "{t:?}");
}

#[test]
fn medical_questions() {
    let t = tags("Can I take Zyntriva with alcohol?");
    assert!(t.flags.contains(Flag::MedicalQuestion), "{t:?}");
    assert!(
        t.reasons
            .iter()
            .any(|r| r == "medical question: 'Can I take' + interaction 'with alcohol'"),
        "{t:?}"
    );
    assert_flag(
        "is it ok to use it together with sumatriptan?",
        Flag::MedicalQuestion,
        true,
    );
    assert_flag(
        "I missed a dose yesterday, what should I do",
        Flag::MedicalQuestion,
        true,
    );
    assert_flag("What's the max dose per day?", Flag::MedicalQuestion, true);
    assert_flag(
        "Is Zyntriva safe while breastfeeding?",
        Flag::MedicalQuestion,
        true,
    );
    assert_flag(
        "Can my 12 year old take zyntriva?",
        Flag::MedicalQuestion,
        true,
    );
    assert_flag(
        "Anyone use Zyntriva off label for cluster headaches?",
        Flag::MedicalQuestion,
        true,
    );
    assert_flag(
        "Does the Zyntriva pen need to be refrigerated?",
        Flag::MedicalQuestion,
        true,
    );
    let t = tags("how many zyntriva can I take in a day");
    assert!(
        t.reasons
            .iter()
            .any(|r| r == "medical question: dosing 'how many zyntriva can I take'"),
        "{t:?}"
    );
    let t = tags("Can I take Zyntriva?");
    assert!(
        t.reasons
            .iter()
            .any(|r| r == "medical question: 'Can I take'"),
        "{t:?}"
    );
}

#[test]
fn not_medical_questions() {
    assert_flag(
        "Can I take my dog to the clinic?",
        Flag::MedicalQuestion,
        false,
    );
    assert_flag("How much does shipping cost?", Flag::MedicalQuestion, false);
    assert_flag(
        "Zyntriva with my morning coffee, the usual.",
        Flag::MedicalQuestion,
        false,
    );
}

#[test]
fn crisis_keywords() {
    let t = tags("Heard there is a RECALL on some batches?");
    assert!(t.flags.contains(Flag::Crisis), "{t:?}");
    assert!(
        t.reasons.contains(&"crisis keyword 'RECALL'".to_string()),
        "{t:?}"
    );
    assert_flag("Joining the class-action against them", Flag::Crisis, true);
    assert_flag("two lawsuits already", Flag::Crisis, true);
    assert_flag("I recalled the number wrong", Flag::Crisis, false);
    assert_flag("a deathly quiet waiting room", Flag::Crisis, false);
    let none = Classifier::new(ToneConfig::default());
    assert!(none.classify("recall", &anyone()).flags.is_empty());
}

#[test]
fn flags_are_independent_of_tone() {
    let t =
        tags("Thank you Zyntriva team, but it gave me terrible nausea. Can I take it with food?");
    assert!(
        t.flags.contains(Flag::Ae) && t.flags.contains(Flag::MedicalQuestion),
        "{t:?}"
    );
}

// ---- measurements (run by hand) --------------------------------------------------------------

/// `cargo test --lib tone::tests::eval_airline_dev -- --ignored --nocapture`
#[test]
#[ignore = "needs ../shared/data/tone/airline-dev.tsv"]
fn eval_airline_dev() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/tone/airline-dev.tsv");
    let Ok(data) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is not there", path.display());
        return;
    };
    let c = classifier();
    let author = Author::default();
    let labels = ["positive", "neutral", "negative"];
    // TONE_EVAL_MISTAKES=/tmp/file writes the misclassified posts there (keep it outside the repo).
    let mut mistakes = String::new();
    let mut confusion = [[0usize; 3]; 3];
    for line in data.lines() {
        let Some((label, text)) = line.split_once('\t') else {
            continue;
        };
        let Some(gold) = labels.iter().position(|l| *l == label.trim()) else {
            continue;
        };
        let tags = c.classify(text, &author);
        let Some(pred) = labels.iter().position(|l| *l == tags.tone.polarity()) else {
            continue;
        };
        confusion[gold][pred] += 1;
        if gold != pred {
            mistakes.push_str(&format!(
                "{}\t{}\t{text}\t{:?}\n",
                labels[gold], tags.tone, tags.reasons
            ));
        }
    }
    if let Ok(out) = std::env::var("TONE_EVAL_MISTAKES") {
        let _ = std::fs::write(out, mistakes);
    }
    let total: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..3).map(|i| confusion[i][i]).sum();
    let mut f1s = Vec::new();
    for k in 0..3 {
        let tp = confusion[k][k] as f64;
        let predicted: usize = (0..3).map(|g| confusion[g][k]).sum();
        let actual: usize = confusion[k].iter().sum();
        let p = if predicted > 0 {
            tp / predicted as f64
        } else {
            0.0
        };
        let r = if actual > 0 { tp / actual as f64 } else { 0.0 };
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        println!(
            "{:>8}: precision {p:.3} recall {r:.3} f1 {f1:.3}",
            labels[k]
        );
        f1s.push(f1);
    }
    println!("confusion (rows gold, cols predicted; pos neu neg): {confusion:?}");
    println!(
        "n={total} accuracy={:.3} macro-F1={:.3}",
        correct as f64 / total as f64,
        f1s.iter().sum::<f64>() / 3.0
    );
}

// ---- adverse-event quality on hand-written posts -----------------------------------------------

/// Adverse-event reports about a configured product: side effects, lack of effect, misuse or
/// overdose, medication errors, pregnancy or breastfeeding exposure; some misspelt.
const AE_POSTS: [&str; 30] = [
    "Zyntriva gave me the worst headache of my life",
    "been on zyntriva 2 weeks and my hair is coming out in clumps",
    "Day 3 on Zyntrva and I can't stop throwing up",
    "zyntriva makes my heart race at night",
    "Anyone else get really bad stomach cramps from Zyntriva?",
    "My daughter broke out in hives after her first zyntriva dose",
    "started zyntrivastat and now my ankles are swollen",
    "Had a seizure two days after starting Zyntriva",
    "Zyntriva did nothing for my migraines, total waste",
    "Three months on zintriva and still getting migraines every week",
    "The Zyntriva stopped working after the second refill",
    "zyntriva isnt helping at all anymore",
    "I accidentally took my Zyntriva twice today",
    "My toddler got into my zyntriva bottle, we're on the phone with poison control",
    "took 4 zyntriva at once because the pain was so bad",
    "Crushed my Zyntriva and snorted it, felt nothing",
    "The pharmacy gave me Zyntrivastat 20 instead of 10",
    "Pharmacist filled my script with the wrong strength of zyntriva",
    "Took my husband's Zyntriva by mistake",
    "Just found out I'm pregnant, been on Zyntriva since January",
    "Is my baby ok? I was breastfeeding while taking zyntriva",
    "I'm 8 weeks pregnant and took Zyntriva last night",
    "Zyntriva left me so dizzy I fell down the stairs",
    "zyntriva => nausea every single morning",
    "my vision went blurry an hour after the zyntriva shot",
    "Since switching to Zyntriva I can't sleep at all",
    "ZYNTRIVA GAVE ME CHEST PAINS",
    "zyntriva made my migraines worse not better",
    "Started zyntriva and my BP shot up to 170/100",
    "Gave my son double his zyntriva dose by accident",
];

/// Posts that name the product but report no adverse event: questions, praise, availability, news,
/// a reaction to another drug, "no side effects", a negated reaction.
const NOT_AE_POSTS: [&str; 30] = [
    "Can I take Zyntriva with ibuprofen?",
    "Does Zyntriva cause weight gain?",
    "What are the side effects of zyntriva?",
    "Zyntriva has been a game changer, no side effects at all",
    "No nausea, no dizziness, just relief. Thank you Zyntriva!",
    "Is Zyntriva available in Canada yet?",
    "Zyntriva out of stock at every pharmacy in town",
    "New study on Zyntriva published in the Lancet today",
    "My doctor prescribed Zyntriva today, fingers crossed",
    "Picked up my zyntrivastat refill, copay was $5",
    "Sumatriptan gave me chest tightness so my doctor switched me to Zyntriva",
    "Zyntriva's website is down again",
    "Love that the Zyntriva pen is so easy to use",
    "Zyntriva worked within 20 minutes, amazing",
    "How long does a Zyntriva pen last in the fridge?",
    "That Zyntriva commercial during the game was so cheesy",
    "Stock up on zyntriva before the holidays, pharmacies close early",
    "Not a single migraine since starting Zyntriva",
    "zyntriva did not make me dizzy like topiramate did",
    "Zyntriva price went up again, ridiculous",
    "Will Zyntriva be covered by my insurance next year?",
    "The Zyntriva patient support nurse was super kind",
    "Zyntriva vs the older pills, which one has fewer side effects?",
    "Our clinic is hosting a Zyntriva info night on Thursday",
    "Zyntriva no longer needs prior authorization with my plan",
    "Got my first zyntriva shipment, no issues at all",
    "Does zyntrivastat come in a generic?",
    "Never had a reaction to Zyntriva in 2 years",
    "Zyntriva is the only thing that works for my migraines",
    "Switched from Zyntriva's tablets to the pen, much more convenient",
];

/// Recall and precision of the `ae` flag on the posts above; prints the misses and false alarms.
fn ae_scores() -> (f64, f64) {
    let c = classifier();
    let who = anyone();
    let is_ae = |t: &str| c.classify(t, &who).flags.contains(Flag::Ae);
    let mut tp = 0;
    let mut fp = 0;
    for t in AE_POSTS {
        if is_ae(t) {
            tp += 1;
        } else {
            eprintln!("missed AE: {t:?} → {:?}", c.classify(t, &who).reasons);
        }
    }
    for t in NOT_AE_POSTS {
        if is_ae(t) {
            fp += 1;
            eprintln!("false AE: {t:?} → {:?}", c.classify(t, &who).reasons);
        }
    }
    let recall = tp as f64 / AE_POSTS.len() as f64;
    let precision = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    eprintln!("AE recall {recall:.3} precision {precision:.3} (tp {tp}, fp {fp})");
    (recall, precision)
}

#[test]
fn adverse_event_recall_and_precision() {
    let (recall, precision) = ae_scores();
    assert!(recall >= 0.95, "AE recall {recall:.3}");
    assert!(precision >= 0.6, "AE precision {precision:.3}");
}
