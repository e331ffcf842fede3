//! Character-level tokenization: one token per Unicode scalar value (a Rust `char`).
//!
//! Nothing is dropped or merged, so detokenizing the tokens gives back the text exactly;
//! newlines and spaces are tokens like any other character (as in char-rnn). A user-perceived
//! character made of several scalars (`e` + combining accent, a flag emoji) is several tokens;
//! NFC normalization ([`crate::data::text::clean`]) composes the common ones first.
//!
//! ```
//! use rnnkit::data::text::char::CharTokenizer;
//! let tokens = CharTokenizer.tokenize("hé!\n");
//! assert_eq!(tokens, ["h", "é", "!", "\n"]);
//! assert_eq!(CharTokenizer.detokenize(&tokens), "hé!\n");
//! ```

use serde::{Deserialize, Serialize};

/// Splits text into its characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CharTokenizer;

impl CharTokenizer {
    /// One token per `char`.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        text.chars().map(String::from).collect()
    }

    /// Concatenates the tokens: the exact inverse of [`CharTokenizer::tokenize`].
    pub fn detokenize<S: AsRef<str>>(&self, tokens: &[S]) -> String {
        tokens.iter().map(AsRef::as_ref).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scalars_not_bytes() {
        assert_eq!(CharTokenizer.tokenize("a\u{301}😀"), ["a", "\u{301}", "😀"]);
        assert!(CharTokenizer.tokenize("").is_empty());
    }
}
