//! Integration tests of text data preparation: loader errors that name the file and line,
//! round trips of the tokenizers (property tests), and saved pipelines that encode exactly as
//! the fitted ones.

use proptest::prelude::*;
use rnnkit::Error;
use rnnkit::data::text::bpe::BpeTokenizer;
use rnnkit::data::text::char::CharTokenizer;
use rnnkit::data::text::load::{
    TableConfig, TableFormat, load_dir, load_file, load_table, read_text,
};
use rnnkit::data::text::pipeline::{TextConfig, TextPipeline};
use rnnkit::data::text::split::split_by_fraction;
use rnnkit::data::text::tokenizer::TokenizerConfig;
use rnnkit::data::text::vocab::{EOS_ID, UNK_ID};
use rnnkit::data::text::word::WordMode;
use rnnkit::data::text::{CleanConfig, Normalization};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A small training text (public-domain Shakespeare, Sonnet 18 and a few lines of Hamlet).
const CORPUS: &str = "Shall I compare thee to a summer's day?
Thou art more lovely and more temperate:
Rough winds do shake the darling buds of May,
And summer's lease hath all too short a date;
Sometime too hot the eye of heaven shines,
And often is his gold complexion dimm'd;
And every fair from fair sometime declines,
By chance or nature's changing course untrimm'd;
But thy eternal summer shall not fade,
Nor lose possession of that fair thou ow'st;
Nor shall death brag thou wander'st in his shade,
When in eternal lines to time thou grow'st:
So long as men can breathe or eyes can see,
So long lives this, and this gives life to thee.
To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die - to sleep,
No more; and by a sleep to say we end
The heart-ache and the thousand natural shocks
That flesh is heir to: 'tis a consummation
Devoutly to be wish'd. To die, to sleep;
To sleep, perchance to dream - ay, there's the rub:
For in that sleep of death what dreams may come,
When we have shuffled off this mortal coil,
Must give us pause - there's the respect
That makes calamity of so long life.
";

/// A fresh, empty directory under the system temp dir, unique to this process and test.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnkit-data-text-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `bytes` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that `result` is an `Error::Data` whose message names `file` and `at`, and contains
/// `what`.
fn assert_data_err<T: std::fmt::Debug>(
    result: rnnkit::Result<T>,
    file: &str,
    at: &str,
    what: &str,
) {
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Data { .. }), "not a data error: {msg}");
    assert!(msg.contains(file), "message does not name {file}: {msg}");
    assert!(msg.contains(at), "message does not name {at:?}: {msg}");
    assert!(msg.contains(what), "message does not say {what:?}: {msg}");
}

fn cfg(text: &str, label: Option<&str>) -> TableConfig {
    TableConfig {
        text_column: text.into(),
        label_column: label.map(Into::into),
        format: None,
    }
}

#[test]
fn invalid_utf8_names_file_line_and_offset() {
    let dir = temp_dir("utf8");
    let p = write(&dir, "latin1.txt", b"caf\xc3\xa9\r\nna\xefve\n");
    assert_data_err(read_text(&p), "latin1.txt", "line 2", "byte offset 9");
    let p = write(&dir, "bad.csv", b"text,label\nok,1\ncr\xe8me,0\n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "bad.csv",
        "line 3",
        "invalid UTF-8",
    );
    // Lone CRs end lines too.
    let p = write(&dir, "mac.txt", b"a\rb\r\xff");
    assert_data_err(load_file(&p), "mac.txt", "line 3", "byte offset 4");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_files_are_errors() {
    let dir = temp_dir("empty");
    let p = write(&dir, "empty.txt", b"");
    assert_data_err(load_file(&p), "empty.txt", "", "empty");
    let p = write(&dir, "header_only.csv", b"text,label\n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "header_only.csv",
        "",
        "no rows",
    );
    let p = write(&dir, "blank.jsonl", b"\n  \n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "blank.jsonl",
        "",
        "no rows",
    );
    let sub = dir.join("docs");
    std::fs::create_dir_all(&sub).unwrap();
    write(&sub, "a.txt", b"fine");
    write(&sub, "b.txt", b"");
    assert_data_err(load_dir(&sub), "b.txt", "", "empty");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_columns_list_the_ones_there_are() {
    let dir = temp_dir("columns");
    let p = write(&dir, "t.csv", b"review,stars\nnice,5\n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "t.csv",
        "line 1",
        "\"review\", \"stars\"",
    );
    assert_data_err(
        load_table(&p, &cfg("review", Some("label"))),
        "t.csv",
        "line 1",
        "no column \"label\"",
    );
    let p = write(
        &dir,
        "t.jsonl",
        b"{\"text\": \"a\", \"y\": 1}\n{\"txt\": \"b\", \"y\": 0}\n",
    );
    assert_data_err(
        load_table(&p, &cfg("text", Some("y"))),
        "t.jsonl",
        "line 2",
        "\"txt\", \"y\"",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_json_lines_name_the_line() {
    let dir = temp_dir("json");
    let p = write(
        &dir,
        "a.jsonl",
        b"{\"text\": \"ok\"}\r\n{\"text\": \"unterminated}\r\n",
    );
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "a.jsonl",
        "line 2",
        "not valid JSON",
    );
    let p = write(
        &dir,
        "b.jsonl",
        b"{\"text\": \"ok\"}\n\n[\"text\", \"x\"]\n",
    );
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "b.jsonl",
        "line 3",
        "found an array",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ragged_rows_name_the_line() {
    let dir = temp_dir("ragged");
    let p = write(&dir, "r.csv", b"text,label\n\"a, b\",1\nc,0,extra\n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "r.csv",
        "line 3",
        "3 fields but the header has 2",
    );
    let p = write(&dir, "r.tsv", b"text\tlabel\nx\t1\ny\n");
    assert_data_err(
        load_table(&p, &cfg("text", None)),
        "r.tsv",
        "line 3",
        "1 fields",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tables_in_every_layout_and_line_ending() {
    let dir = temp_dir("tables");
    let csv = write(
        &dir,
        "a.csv",
        b"label,text\r\npos,\"two\r\nlines\"\r\nneg,plain\r\n",
    );
    let docs = load_table(&csv, &cfg("text", Some("label"))).unwrap();
    assert_eq!(docs[0].text, "two\nlines");
    assert_eq!(
        (docs[1].label.as_deref(), docs[1].line),
        (Some("neg"), Some(4))
    );
    let cr = write(&dir, "cr.data", b"text\rone\rtwo\r");
    let tsv_cfg = TableConfig {
        format: Some(TableFormat::Tsv),
        ..cfg("text", None)
    };
    let docs = load_table(&cr, &tsv_cfg).unwrap();
    assert_eq!(
        docs.iter()
            .map(|d| (d.text.as_str(), d.line.unwrap()))
            .collect::<Vec<_>>(),
        [("one", 2), ("two", 3)]
    );
    let e = load_table(&cr, &cfg("text", None)).unwrap_err();
    assert!(matches!(e, Error::Config(m) if m.contains("cr.data")));
    let jl = write(
        &dir,
        "a.jsonl",
        "{\"text\": \"é\", \"y\": true}\n".as_bytes(),
    );
    let docs = load_table(&jl, &cfg("text", Some("y"))).unwrap();
    assert_eq!(
        (docs[0].text.as_str(), docs[0].label.as_deref()),
        ("é", Some("true"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directories_load_sorted_skipping_hidden_and_subdirectories() {
    let dir = temp_dir("dir");
    write(&dir, "10.txt", b"ten");
    write(&dir, "02.txt", b"two\r\n");
    write(&dir, ".hidden", b"no");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let docs = load_dir(&dir).unwrap();
    assert_eq!(
        docs.iter().map(|d| d.text.as_str()).collect::<Vec<_>>(),
        ["two\n", "ten"]
    );
    assert!(docs[0].path.ends_with("02.txt"));
    std::fs::remove_dir_all(dir.join("sub")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ptb_style_stream_and_split() {
    let corpus = " the <unk> rose \n no it was n't \n";
    let cfg = TextConfig {
        tokenizer: TokenizerConfig::Word {
            mode: WordMode::Whitespace,
        },
        ..Default::default()
    };
    let text = TextPipeline::fit(&[corpus], &cfg).unwrap();
    let ids = text.encode_stream(&[corpus], true).unwrap();
    assert_eq!(ids.len(), 3 + 1 + 4 + 1);
    assert_eq!((ids[1], ids[3], ids[8]), (UNK_ID, EOS_ID, EOS_ID));
    // "<unk>" in the text is the reserved token, not a new word.
    assert_eq!(text.vocab().len(), 4 + 6);
    let (train, valid) = split_by_fraction(&ids, 0.9).unwrap();
    assert_eq!((train.len(), valid.len()), (8, 1));
}

/// One small byte-level BPE shared by the property tests (training takes a few milliseconds, but
/// proptest calls the body hundreds of times).
fn bpe() -> &'static TextPipeline {
    static BPE: OnceLock<TextPipeline> = OnceLock::new();
    BPE.get_or_init(|| {
        let cfg = TextConfig {
            tokenizer: TokenizerConfig::Bpe {
                vocab_size: 400,
                min_frequency: 2,
            },
            ..Default::default()
        };
        TextPipeline::fit(&[CORPUS], &cfg).unwrap()
    })
}

#[test]
fn bpe_learns_words_and_saves_as_tokenizer_json() {
    let text = bpe();
    assert!(text.vocab().len() > 300, "{}", text.vocab().len());
    let ids = text.encode("To be, or not to be").unwrap();
    assert!(ids.len() < "To be, or not to be".len() / 2, "{ids:?}");
    let dir = temp_dir("bpe-json");
    let path = dir.join("tokenizer.json");
    let rnnkit::data::text::Tokenizer::Bpe(b) = text.tokenizer() else {
        panic!("not BPE")
    };
    b.save(&path).unwrap();
    let cfg = TextConfig {
        tokenizer: TokenizerConfig::Pretrained { path: path.clone() },
        ..Default::default()
    };
    let loaded = TextPipeline::fit(&[""], &cfg).unwrap();
    assert_eq!(loaded.vocab(), text.vocab());
    assert_eq!(loaded.encode(CORPUS).unwrap(), text.encode(CORPUS).unwrap());
    assert_eq!(
        BpeTokenizer::from_file(&path).unwrap().tokens(),
        text.vocab().tokens()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_pipeline_files_name_the_file() {
    let dir = temp_dir("bad-pipeline");
    let text = TextPipeline::fit(&["abc"], &TextConfig::default()).unwrap();
    let good = dir.join("text.json");
    text.save(&good).unwrap();
    let saved = std::fs::read_to_string(&good).unwrap();

    let swapped = saved
        .replacen("\"<pad>\"", "\"<tmp>\"", 1)
        .replacen("\"<unk>\"", "\"<pad>\"", 1);
    let p = write(&dir, "swapped.json", swapped.as_bytes());
    assert_data_err(
        TextPipeline::load(&p),
        "swapped.json",
        "line",
        "reserved tokens",
    );
    let p = write(
        &dir,
        "dup.json",
        saved.replacen("\"b\"", "\"a\"", 1).as_bytes(),
    );
    assert_data_err(TextPipeline::load(&p), "dup.json", "line", "twice");
    let p = write(&dir, "cut.json", &saved.as_bytes()[..saved.len() / 2]);
    assert_data_err(
        TextPipeline::load(&p),
        "cut.json",
        "line",
        "not a valid text pipeline",
    );
    let p = write(&dir, "other.json", b"{\"tokens\": []}");
    let e = TextPipeline::load(&p).unwrap_err();
    assert!(
        matches!(&e, Error::Format { path, .. } if path.ends_with("other.json")),
        "{e}"
    );
    let p = write(
        &dir,
        "kind.json",
        saved.replace("\"char\"", "\"morse\"").as_bytes(),
    );
    assert_data_err(TextPipeline::load(&p), "kind.json", "line", "morse");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Pipelines of every kind, each with some cleaning, for the save/load property.
fn saved_pipelines() -> &'static Vec<(TextPipeline, TextPipeline)> {
    static P: OnceLock<Vec<(TextPipeline, TextPipeline)>> = OnceLock::new();
    P.get_or_init(|| {
        let dir = temp_dir("save-load");
        let clean = CleanConfig {
            normalization: Normalization::Nfkc,
            lowercase: true,
            replace_numbers: Some("<num>".into()),
            ..Default::default()
        };
        let configs = [
            TokenizerConfig::Char,
            TokenizerConfig::Word {
                mode: WordMode::Punctuation,
            },
            TokenizerConfig::Word {
                mode: WordMode::Whitespace,
            },
            TokenizerConfig::Bpe {
                vocab_size: 320,
                min_frequency: 2,
            },
        ];
        let pairs = configs
            .into_iter()
            .enumerate()
            .map(|(i, tokenizer)| {
                let cfg = TextConfig {
                    clean: clean.clone(),
                    tokenizer,
                    ..Default::default()
                };
                let fitted = TextPipeline::fit(&[CORPUS], &cfg).unwrap();
                let path = dir.join(format!("text{i}.json"));
                fitted.save(&path).unwrap();
                (fitted, TextPipeline::load(&path).unwrap())
            })
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        pairs
    })
}

/// Any string: every Unicode scalar value is possible, controls and unassigned ones included
/// (proptest's `any::<String>()` leaves out control characters).
fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..64).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn char_round_trip(s in any_text()) {
        let tokens = CharTokenizer.tokenize(&s);
        prop_assert_eq!(tokens.len(), s.chars().count());
        prop_assert_eq!(CharTokenizer.detokenize(&tokens), s);
    }

    #[test]
    fn bpe_round_trip(s in any_text()) {
        let text = bpe();
        let ids = text.encode(&s).unwrap();
        prop_assert!(!ids.contains(&UNK_ID));
        prop_assert_eq!(text.decode(&ids).unwrap(), s);
    }

    #[test]
    fn bpe_round_trip_corpus_like(s in "[a-zA-Z ,.;:'\n-]{0,80}") {
        let text = bpe();
        prop_assert_eq!(text.decode(&text.encode(&s).unwrap()).unwrap(), s);
    }

    #[test]
    fn saved_pipelines_encode_identically(s in any_text(), w in "[a-zA-Z0-9 ,.'\n]{0,60}") {
        for (fitted, loaded) in saved_pipelines() {
            for text in [&s, &w] {
                prop_assert_eq!(fitted.encode(text).unwrap(), loaded.encode(text).unwrap());
                prop_assert_eq!(fitted.encode_stream(&[text], true).unwrap(), loaded.encode_stream(&[text], true).unwrap());
            }
        }
    }
}
