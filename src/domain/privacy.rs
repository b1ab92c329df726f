//! The privacy guard (DESIGN §2): a public reply must never confirm a person's health condition or
//! treatment. Approved wording is MLR's responsibility (a template that speaks of the person's
//! health declares `confirms_health` and may only go private); what the program fills into a
//! template at send time is checked here against a list of health terms and the brand's products.

use std::sync::OnceLock;

const BUILT_IN: &str = include_str!("../../assets/privacy/health-terms.txt");

/// The built-in terms, each as lowercase words.
fn built_in() -> &'static [Vec<String>] {
    static TERMS: OnceLock<Vec<Vec<String>>> = OnceLock::new();
    TERMS.get_or_init(|| {
        BUILT_IN
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(words)
            .collect()
    })
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn same_word(found: &str, term: &str) -> bool {
    found == term
        || found.strip_suffix('s') == Some(term)
        || found.strip_suffix("es") == Some(term)
        || found.strip_suffix("'s") == Some(term)
}

/// The first health term (built-in, or one of `products`) that `value` contains, as written in
/// the list.
pub fn health_term(value: &str, products: &[String]) -> Option<String> {
    let found = words(value);
    let products: Vec<Vec<String>> = products.iter().map(|p| words(p)).collect();
    built_in()
        .iter()
        .chain(products.iter())
        .filter(|term| !term.is_empty())
        .find(|term| {
            found
                .windows(term.len())
                .any(|w| w.iter().zip(term.iter()).all(|(f, t)| same_word(f, t)))
        })
        .map(|term| term.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_conditions_treatments_and_products_as_whole_words() {
        let products = vec!["Zyntriva".to_owned()];
        assert_eq!(
            health_term("your migraines", &products).as_deref(),
            Some("migraine")
        );
        assert_eq!(
            health_term("the Zyntriva refill", &products).as_deref(),
            Some("zyntriva")
        );
        assert_eq!(
            health_term("High Blood Pressure", &products).as_deref(),
            Some("blood pressure")
        );
        assert_eq!(health_term("your order", &products), None);
        assert_eq!(health_term("the delivery app", &products), None);
        assert_eq!(health_term("painting", &products), None, "whole words only");
        assert!(built_in().len() > 50, "the term list parses");
    }
}
