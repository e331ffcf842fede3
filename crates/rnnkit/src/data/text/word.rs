//! Word-level tokenization, in two modes.
//!
//! **[`WordMode::Whitespace`]**: split on Unicode whitespace, nothing else. This is how the
//! word-level language-model corpora (Penn Treebank, WikiText-2) are read: they come already
//! tokenized, one sentence or paragraph per line, rare words already `<unk>`.
//!
//! **[`WordMode::Punctuation`]** (the default): split on whitespace, then split each piece so
//! that punctuation stands alone:
//! - a *word* is a maximal run of word characters: letters, digits, `_`, and combining marks
//!   (so `é` written as `e` + accent stays one word);
//! - an apostrophe (`'` or `’`) with word characters on both sides stays inside the word:
//!   `don't`, `o'clock`, `rock'n'roll` are one token each; other apostrophes are punctuation
//!   (`'quoted'` is `'`, `quoted`, `'`);
//! - `<` + ASCII letters, digits or `_` + `>` is one token, so the reserved tokens (`<unk>`,
//!   `<eos>`) and the cleaner's number token (`<num>`) survive;
//! - every other character is a token by itself: `...` is three `.` tokens, `state-of-the-art`
//!   is seven tokens, `3.14` is `3`, `.`, `14` (replace numbers while cleaning to avoid that).
//!
//! Detokenizing is not the exact inverse, since whitespace is lost: tokens are joined with one
//! space, except that no space goes before `. , ; : ! ? ) ] } %` nor after `( [ {`. Use the
//! character or BPE tokenizers where text must come back exactly.
//!
//! ```
//! use rnnkit::data::text::word::{WordMode, WordTokenizer};
//!
//! let words = WordTokenizer::new(WordMode::Punctuation);
//! let tokens = words.tokenize("Don't panic, (it's <num> km)!");
//! assert_eq!(tokens, ["Don't", "panic", ",", "(", "it's", "<num>", "km", ")", "!"]);
//! assert_eq!(words.detokenize(&tokens), "Don't panic, (it's <num> km)!");
//!
//! let ptb = WordTokenizer::new(WordMode::Whitespace);
//! assert_eq!(ptb.tokenize(" the <unk> co. 's\n"), ["the", "<unk>", "co.", "'s"]);
//! ```

use serde::{Deserialize, Serialize};
use unicode_normalization::char::is_combining_mark;

/// How words are split; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WordMode {
    /// Split on whitespace only (PTB, WikiText).
    Whitespace,
    /// Split on whitespace, and punctuation into tokens of its own.
    #[default]
    Punctuation,
}

/// A word tokenizer in one of the [`WordMode`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordTokenizer {
    /// The splitting rules.
    pub mode: WordMode,
}

impl WordTokenizer {
    /// A tokenizer with the given rules.
    pub fn new(mode: WordMode) -> Self {
        WordTokenizer { mode }
    }

    /// Splits `text` into words (and punctuation, in [`WordMode::Punctuation`]).
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let pieces = text.split_whitespace();
        match self.mode {
            WordMode::Whitespace => pieces.map(str::to_owned).collect(),
            WordMode::Punctuation => {
                let mut out = Vec::new();
                for piece in pieces {
                    split_punctuation(piece, &mut out);
                }
                out
            }
        }
    }

    /// Joins tokens back into text (not exact; see the [module docs](self)).
    pub fn detokenize<S: AsRef<str>>(&self, tokens: &[S]) -> String {
        let mut out = String::new();
        let mut after_opening = false;
        for t in tokens {
            let t = t.as_ref();
            let closing = self.mode == WordMode::Punctuation
                && matches!(t, "." | "," | ";" | ":" | "!" | "?" | ")" | "]" | "}" | "%");
            if !out.is_empty() && !after_opening && !closing {
                out.push(' ');
            }
            out.push_str(t);
            after_opening = self.mode == WordMode::Punctuation && matches!(t, "(" | "[" | "{");
        }
        out
    }
}

/// Letters, digits, `_` and combining marks.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining_mark(c)
}

/// `'` and the typographic `’`.
fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// If `chars[i..]` starts with `<name>` (ASCII letters, digits, `_`), the index of its `>`.
fn angle_token_end(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    (j > i + 1 && chars.get(j) == Some(&'>')).then_some(j)
}

/// Splits one whitespace-free piece by the punctuation rules, appending to `out`.
fn split_punctuation(piece: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = piece.chars().collect();
    let n = chars.len();
    let mut i = 0;
    while i < n {
        let start = i;
        if chars[i] == '<'
            && let Some(end) = angle_token_end(&chars, i)
        {
            i = end + 1;
            out.push(chars[start..i].iter().collect());
            continue;
        }
        if is_word_char(chars[i]) {
            loop {
                while i < n && is_word_char(chars[i]) {
                    i += 1;
                }
                // An apostrophe between word characters continues the word.
                if i + 1 < n && is_apostrophe(chars[i]) && is_word_char(chars[i + 1]) {
                    i += 1;
                } else {
                    break;
                }
            }
        } else {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn punct(s: &str) -> Vec<String> {
        WordTokenizer::new(WordMode::Punctuation).tokenize(s)
    }

    #[test]
    fn apostrophes_inside_words_stay() {
        assert_eq!(
            punct("don't o’clock rock'n'roll"),
            ["don't", "o’clock", "rock'n'roll"]
        );
        assert_eq!(
            punct("'quoted' dogs' 'tis"),
            ["'", "quoted", "'", "dogs", "'", "'", "tis"]
        );
    }

    #[test]
    fn punctuation_splits_one_char_each() {
        assert_eq!(
            punct("wait...what?!"),
            ["wait", ".", ".", ".", "what", "?", "!"]
        );
        assert_eq!(
            punct("state-of-the-art"),
            ["state", "-", "of", "-", "the", "-", "art"]
        );
        assert_eq!(punct("3.14"), ["3", ".", "14"]);
        assert_eq!(punct("snake_case x86"), ["snake_case", "x86"]);
    }

    #[test]
    fn angle_tokens_and_marks_stay_whole() {
        assert_eq!(
            punct("a<unk>b <num>% <> <a b>"),
            [
                "a", "<unk>", "b", "<num>", "%", "<", ">", "<", "a", "b", ">"
            ]
        );
        assert_eq!(punct("cafe\u{301}!"), ["cafe\u{301}", "!"]);
    }

    #[test]
    fn whitespace_mode_keeps_punctuation_attached() {
        let w = WordTokenizer::new(WordMode::Whitespace);
        assert_eq!(w.tokenize("a,b  c.\n\td"), ["a,b", "c.", "d"]);
        assert_eq!(w.detokenize(&["a", ",", "(b", ")"]), "a , (b )");
    }

    #[test]
    fn detokenize_attaches_closing_and_opening() {
        let w = WordTokenizer::new(WordMode::Punctuation);
        assert_eq!(
            w.detokenize(&["(", "a", ",", "b", ")", ".", "c", "%"]),
            "(a, b). c%"
        );
        assert_eq!(w.detokenize::<&str>(&[]), "");
    }
}
