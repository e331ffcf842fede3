//! Text cleaning before tokenization: Unicode normalization, lowercasing, control-character
//! stripping, number replacement and whitespace collapsing, each off by default.
//!
//! The steps run in this fixed order, each on the previous one's output:
//!
//! 1. **Unicode normalization** (NFC or NFKC). First, so that later steps see one spelling of
//!    each character: NFKC turns full-width digits `１２` into `12` before numbers are
//!    looked for, and no-break spaces into spaces before whitespace is collapsed.
//! 2. **Strip control characters**: drops every character of Unicode category Cc
//!    ([`char::is_control`]) except `\n` and `\t`. Format characters (category Cf, e.g. the
//!    zero-width joiner inside emoji) are kept: they carry meaning.
//! 3. **Lowercase**: Unicode lowercasing ([`str::to_lowercase`]; `Σ` at a word end becomes `ς`).
//! 4. **Replace numbers** with a token such as `<num>`. A *number* is a maximal run of ASCII
//!    digits, optionally with single `.` or `,` separators between digit groups (`7`, `2024`,
//!    `3.14`, `1,000,000`), that is not part of a word: the characters just before and after it
//!    are not letters, digits or `_` (so `mp3`, `2nd` and `x86_64` stay as they are). A sign is
//!    not part of the number (`-5` becomes `-<num>`). Digits of other scripts are not numbers
//!    here; NFKC maps the compatibility ones (full-width, superscript) to ASCII first.
//! 5. **Collapse whitespace**: each run of whitespace becomes one `\n` if it holds a newline
//!    (so line structure survives, but blank lines go), else one space; whitespace at the start
//!    and end of the text is removed. Last, because the earlier steps can create such runs.
//!
//! Cleaning is a pure function of the text and the config: no locale, no randomness.
//!
//! ```
//! use rnnkit::data::text::clean::{CleanConfig, Normalization};
//!
//! let cfg = CleanConfig {
//!     normalization: Normalization::Nfkc,
//!     lowercase: true,
//!     collapse_whitespace: true,
//!     strip_control: true,
//!     replace_numbers: Some("<num>".into()),
//! };
//! assert_eq!(cfg.clean("  The ＴＯＴＡＬ\u{7}:\u{a0}１,２００ mp3s \n\n ok "), "the total: <num> mp3s\nok");
//! assert_eq!(CleanConfig::default().clean(" As Is "), " As Is ");
//! ```

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Which Unicode normalization form to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// Leave the text as it is.
    #[default]
    None,
    /// Canonical composition: `e` + combining acute becomes `é`; nothing visible changes.
    Nfc,
    /// Compatibility composition: also folds look-alikes (`ﬁ` → `fi`, `１` → `1`, `²` → `2`,
    /// no-break space → space). Loses distinctions, gains a smaller vocabulary.
    Nfkc,
}

/// What cleaning to apply; see the [module docs](self) for the order and exact rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanConfig {
    /// Unicode normalization form (step 1).
    pub normalization: Normalization,
    /// Remove control characters except `\n` and `\t` (step 2).
    pub strip_control: bool,
    /// Lowercase (step 3).
    pub lowercase: bool,
    /// Replace each number by this token, e.g. `<num>` (step 4).
    pub replace_numbers: Option<String>,
    /// Collapse whitespace runs to one space, or one `\n` if they hold a newline, and trim
    /// (step 5).
    pub collapse_whitespace: bool,
}

impl Default for CleanConfig {
    /// Everything off: the text reaches the tokenizer exactly as loaded. Cleaning loses
    /// information (case, digits, layout), so it is a choice the user makes per data set; and
    /// with cleaning off a character or byte-level model decodes back to the very text it read.
    fn default() -> Self {
        CleanConfig {
            normalization: Normalization::None,
            strip_control: false,
            lowercase: false,
            replace_numbers: None,
            collapse_whitespace: false,
        }
    }
}

impl CleanConfig {
    /// Whether this config leaves every text unchanged.
    ///
    /// ```
    /// use rnnkit::data::text::clean::CleanConfig;
    /// assert!(CleanConfig::default().is_identity());
    /// assert!(!CleanConfig { lowercase: true, ..Default::default() }.is_identity());
    /// ```
    pub fn is_identity(&self) -> bool {
        *self == CleanConfig::default()
    }

    /// Cleans `text` (steps 1–5 of the [module docs](self), the enabled ones).
    ///
    /// ```
    /// use rnnkit::data::text::clean::CleanConfig;
    /// let cfg = CleanConfig { lowercase: true, replace_numbers: Some("N".into()), ..Default::default() };
    /// assert_eq!(cfg.clean("In 1999, Prince"), "in N, prince");
    /// ```
    pub fn clean(&self, text: &str) -> String {
        let mut s = match self.normalization {
            Normalization::None => text.to_owned(),
            Normalization::Nfc => text.nfc().collect(),
            Normalization::Nfkc => text.nfkc().collect(),
        };
        if self.strip_control {
            s.retain(|c| !c.is_control() || c == '\n' || c == '\t');
        }
        if self.lowercase {
            s = s.to_lowercase();
        }
        if let Some(token) = &self.replace_numbers {
            s = replace_numbers(&s, token);
        }
        if self.collapse_whitespace {
            s = collapse_whitespace(&s);
        }
        s
    }
}

/// A letter, digit or `_`: a character that makes adjacent digits part of a word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Replaces every number (module docs, step 4) with `token`.
fn replace_numbers(text: &str, token: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts_number = c.is_ascii_digit() && (i == 0 || !is_word_char(chars[i - 1]));
        if !starts_number {
            out.push(c);
            i += 1;
            continue;
        }
        // Scan digits, then (separator, digits) groups.
        let mut end = i;
        while end < chars.len() && chars[end].is_ascii_digit() {
            end += 1;
        }
        while end + 1 < chars.len()
            && matches!(chars[end], '.' | ',')
            && chars[end + 1].is_ascii_digit()
        {
            end += 1;
            while end < chars.len() && chars[end].is_ascii_digit() {
                end += 1;
            }
        }
        if end < chars.len() && is_word_char(chars[end]) {
            // Digits glued to a word (`2nd`, `3.5mm`): keep the whole run as written.
            out.extend(&chars[i..end]);
        } else {
            out.push_str(token);
        }
        i = end;
    }
    out
}

/// Whitespace runs → `\n` (if they hold one) or ` `; trimmed at both ends.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending: Option<char> = None;
    for c in text.chars() {
        if c.is_whitespace() {
            if c == '\n' {
                pending = Some('\n');
            } else if pending.is_none() {
                pending = Some(' ');
            }
        } else {
            if let Some(ws) = pending.take()
                && !out.is_empty()
            {
                out.push(ws);
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(f: impl FnOnce(&mut CleanConfig)) -> CleanConfig {
        let mut cfg = CleanConfig::default();
        f(&mut cfg);
        cfg
    }

    #[test]
    fn default_is_identity() {
        let s = " A\u{301}\r\t１２ x\u{0}\n\n";
        assert_eq!(CleanConfig::default().clean(s), s);
    }

    #[test]
    fn nfc_composes_and_nfkc_folds() {
        let nfc = only(|c| c.normalization = Normalization::Nfc);
        assert_eq!(nfc.clean("e\u{301}"), "\u{e9}");
        assert_eq!(nfc.clean("ﬁ１"), "ﬁ１");
        let nfkc = only(|c| c.normalization = Normalization::Nfkc);
        assert_eq!(nfkc.clean("ﬁ１²e\u{301}"), "fi12\u{e9}");
    }

    #[test]
    fn lowercase_is_unicode() {
        let cfg = only(|c| c.lowercase = true);
        assert_eq!(cfg.clean("ÀB ΟΔΟΣ"), "àb οδος");
    }

    #[test]
    fn collapse_keeps_single_newlines_and_trims() {
        let cfg = only(|c| c.collapse_whitespace = true);
        assert_eq!(cfg.clean("  a \t b \n\n  c\u{a0}d  \n"), "a b\nc d");
        assert_eq!(cfg.clean(" \n "), "");
    }

    #[test]
    fn strip_control_keeps_newline_and_tab() {
        let cfg = only(|c| c.strip_control = true);
        assert_eq!(
            cfg.clean("a\u{0}b\u{7}\tc\r\nd\u{200d}e\u{85}"),
            "ab\tc\nd\u{200d}e"
        );
    }

    #[test]
    fn numbers_are_standalone_digit_groups() {
        let cfg = only(|c| c.replace_numbers = Some("<num>".into()));
        assert_eq!(
            cfg.clean("7 2024 3.14 1,000,000."),
            "<num> <num> <num> <num>."
        );
        assert_eq!(cfg.clean("mp3 2nd x86_64 3.5mm"), "mp3 2nd x86_64 3.5mm");
        assert_eq!(cfg.clean("-5,x 1.2.3 (42)"), "-<num>,x <num> (<num>)");
        assert_eq!(cfg.clean("1..2 ３"), "<num>..<num> ３");
    }

    #[test]
    fn order_normalizes_before_numbers_and_collapses_last() {
        let cfg = CleanConfig {
            normalization: Normalization::Nfkc,
            replace_numbers: Some("#".into()),
            strip_control: true,
            collapse_whitespace: true,
            ..Default::default()
        };
        // Full-width digits count once NFKC made them ASCII; the stripped BEL leaves no gap.
        assert_eq!(cfg.clean("a \u{7} ３４ b"), "a # b");
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let cfg: CleanConfig = serde_json::from_str(r#"{"normalization": "nfkc"}"#).unwrap();
        assert_eq!(cfg.normalization, Normalization::Nfkc);
        assert!(serde_json::from_str::<CleanConfig>(r#"{"lower": true}"#).is_err());
    }
}
