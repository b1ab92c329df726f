//! Scoring the classifier against labelled text (`tone eval`, `tone curve`): accuracy and macro-F1 over the
//! three polarities positive, neutral, negative.

use std::fmt;

use crate::domain::Tone;

pub const LABELS: [&str; 3] = ["positive", "neutral", "negative"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scores {
    /// confusion[gold][predicted], indices into [`LABELS`].
    pub confusion: [[u64; 3]; 3],
}

impl Scores {
    pub fn add(&mut self, gold: usize, predicted: usize) {
        self.confusion[gold][predicted] += 1;
    }

    /// Counts one text by the polarities of its gold and predicted tones.
    pub fn add_tones(&mut self, gold: Tone, predicted: Tone) {
        let index = |t: Tone| label_index(t.polarity()).unwrap_or(1);
        self.add(index(gold), index(predicted));
    }

    pub fn total(&self) -> u64 {
        self.confusion.iter().flatten().sum()
    }

    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..3).map(|i| self.confusion[i][i]).sum();
        ratio(right, self.total())
    }

    /// (precision, recall, F1) of one label.
    pub fn per_label(&self, i: usize) -> (f64, f64, f64) {
        let tp = self.confusion[i][i];
        let predicted: u64 = (0..3).map(|g| self.confusion[g][i]).sum();
        let gold: u64 = self.confusion[i].iter().sum();
        let p = ratio(tp, predicted);
        let r = ratio(tp, gold);
        let f = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        (p, r, f)
    }

    pub fn macro_f1(&self) -> f64 {
        (0..3).map(|i| self.per_label(i).2).sum::<f64>() / 3.0
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

pub fn label_index(label: &str) -> Option<usize> {
    LABELS.iter().position(|l| *l == label)
}

impl fmt::Display for Scores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "texts     {}", self.total())?;
        writeln!(f, "accuracy  {:.3}", self.accuracy())?;
        writeln!(f, "macro-F1  {:.3}", self.macro_f1())?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>9}",
            "label", "precision", "recall", "F1"
        )?;
        for (i, l) in LABELS.iter().enumerate() {
            let (p, r, f1) = self.per_label(i);
            writeln!(f, "{l:<10} {p:>9.3} {r:>9.3} {f1:>9.3}")?;
        }
        writeln!(
            f,
            "confusion (rows gold, columns predicted: positive neutral negative)"
        )?;
        for (i, l) in LABELS.iter().enumerate() {
            let row = self.confusion[i];
            writeln!(f, "{l:<10} {:>8} {:>8} {:>8}", row[0], row[1], row[2])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computed_example() {
        let mut s = Scores::default();
        // gold positive: 2 right, 1 called negative; gold negative: 3 right; gold neutral: 1 called positive.
        for (g, p) in [(0, 0), (0, 0), (0, 2), (2, 2), (2, 2), (2, 2), (1, 0)] {
            s.add(g, p);
        }
        assert_eq!(s.total(), 7);
        assert!((s.accuracy() - 5.0 / 7.0).abs() < 1e-9);
        let (p, r, f) = s.per_label(0);
        assert!(
            (p - 2.0 / 3.0).abs() < 1e-9
                && (r - 2.0 / 3.0).abs() < 1e-9
                && (f - 2.0 / 3.0).abs() < 1e-9
        );
        assert_eq!(s.per_label(1), (0.0, 0.0, 0.0));
        let (_, _, f_neg) = s.per_label(2);
        assert!((s.macro_f1() - (2.0 / 3.0 + 0.0 + f_neg) / 3.0).abs() < 1e-9);
        assert!(s.to_string().contains("macro-F1"));
    }
}
