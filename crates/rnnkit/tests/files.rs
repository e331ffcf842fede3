//! Parameter files and case files: round trips, and clear errors for bad files.

use ndarray::ArrayD;
use rnnkit::io::TensorFile;
use rnnkit::verify::VerifyCase;
use rnnkit::{CellKind, Init, Rnn, RnnConfig};
use std::path::PathBuf;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnkit-files-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn saved_lstm(dir: &std::path::Path) -> (Rnn, PathBuf) {
    let cfg = RnnConfig::new(CellKind::Lstm, 3, 5)
        .num_layers(2)
        .bidirectional(true)
        .proj_size(2);
    let rnn = Rnn::new(cfg, &Init::practitioner(), 4).unwrap();
    let path = dir.join("model.safetensors");
    rnn.save(&path).unwrap();
    (rnn, path)
}

#[test]
fn save_load_round_trip_keeps_pytorch_names() {
    let dir = temp_dir("roundtrip");
    let (rnn, path) = saved_lstm(&dir);
    let file = TensorFile::read(&path).unwrap();
    let names: Vec<&str> = file.f32.keys().map(|s| s.as_str()).collect();
    for want in [
        "weight_ih_l0",
        "weight_hh_l1_reverse",
        "bias_ih_l1",
        "weight_hr_l0_reverse",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(file.f32["weight_hh_l0"].shape(), &[20, 2]);
    assert_eq!(file.f32["weight_ih_l1"].shape(), &[20, 4]);
    assert_eq!(file.metadata["cell"], "lstm");
    let back = Rnn::load(&path).unwrap();
    assert_eq!(back.params(), rnn.params());
    assert_eq!(back.config(), rnn.config());
}

fn edit_and_load(name: &str, edit: impl FnOnce(&mut TensorFile)) -> String {
    let dir = temp_dir(name);
    let (_, path) = saved_lstm(&dir);
    let mut file = TensorFile::read(&path).unwrap();
    edit(&mut file);
    file.write(&path).unwrap();
    Rnn::load(&path).unwrap_err().to_string()
}

#[test]
fn missing_extra_and_misshapen_tensors_are_named() {
    let msg = edit_and_load("missing", |f| {
        f.f32.remove("bias_hh_l1_reverse");
    });
    assert!(msg.contains("missing tensor `bias_hh_l1_reverse`"), "{msg}");
    let msg = edit_and_load("extra", |f| {
        f.f32
            .insert("weight_ih_l2".into(), ArrayD::zeros(vec![20, 4]));
    });
    assert!(msg.contains("unexpected tensor `weight_ih_l2`"), "{msg}");
    let msg = edit_and_load("shape", |f| {
        f.f32
            .insert("weight_hr_l1".into(), ArrayD::zeros(vec![5, 2]));
    });
    assert!(
        msg.contains("`weight_hr_l1` has shape [5, 2], expected [2, 5]"),
        "{msg}"
    );
    let msg = edit_and_load("meta", |f| {
        f.metadata.insert("hidden_size".into(), "five".into());
    });
    assert!(msg.contains("hidden_size") && msg.contains("five"), "{msg}");
    let msg = edit_and_load("cell", |f| {
        f.metadata.insert("cell".into(), "transformer".into());
    });
    assert!(msg.contains("unknown cell `transformer`"), "{msg}");
}

#[test]
fn garbage_files_are_errors_naming_the_file() {
    let dir = temp_dir("garbage");
    let path = dir.join("junk.safetensors");
    std::fs::write(&path, b"not a safetensors file at all").unwrap();
    let msg = Rnn::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("junk.safetensors") && msg.contains("not a valid safetensors"),
        "{msg}"
    );
    let msg = VerifyCase::read(&dir.join("absent.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("absent.safetensors"), "{msg}");
}

#[test]
fn case_files_with_bad_tensors_are_clear_errors() {
    let dir = temp_dir("case");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cases/lstm_l2_bi_h0_varlen.safetensors");
    let base = TensorFile::read(&src).unwrap();
    let check = |name: &str, edit: &dyn Fn(&mut TensorFile), want: &str| {
        let mut f = TensorFile::read(&src).unwrap();
        edit(&mut f);
        let path = dir.join(format!("{name}.safetensors"));
        f.write(&path).unwrap();
        let msg = VerifyCase::read(&path).unwrap_err().to_string();
        assert!(msg.contains(want), "{name}: {msg}");
        assert!(
            msg.contains(&format!("{name}.safetensors")),
            "{name}: {msg}"
        );
    };
    assert!(base.i64.contains_key("lengths"));
    check(
        "nolengthvalue",
        &|f| {
            f.i64.get_mut("lengths").unwrap()[0] = 0;
        },
        "outside 1..=",
    );
    check(
        "noinput",
        &|f| {
            f.f32.remove("input");
        },
        "`input`",
    );
    check(
        "badh0",
        &|f| {
            f.f32.insert("h0".into(), ArrayD::zeros(vec![1, 2, 3]));
        },
        "`h0` has shape [1, 2, 3]",
    );
    check(
        "badgrad",
        &|f| {
            f.f32.remove("grad_output");
        },
        "`grad_output` is missing",
    );
    check(
        "badparam",
        &|f| {
            f.f32.remove("weight_hh_l1_reverse");
        },
        "weight_hh_l1_reverse",
    );
    check(
        "badmeta",
        &|f| {
            f.metadata.remove("hidden_size");
        },
        "`hidden_size` is missing",
    );
}

#[test]
fn i32_lengths_from_other_tools_are_accepted() {
    use safetensors::tensor::TensorView;
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/cases/gru_l1_uni_varlen.safetensors");
    let case = TensorFile::read(&src).unwrap();
    let lengths: Vec<i32> = case.i64["lengths"].iter().map(|&v| v as i32).collect();
    let mut f32_bytes: Vec<(String, Vec<usize>, Vec<u8>)> = case
        .f32
        .iter()
        .map(|(n, a)| {
            (
                n.clone(),
                a.shape().to_vec(),
                a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    f32_bytes.sort();
    let len_bytes: Vec<u8> = lengths.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut views: Vec<(String, TensorView)> = f32_bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    views.push((
        "lengths".into(),
        TensorView::new(safetensors::Dtype::I32, vec![lengths.len()], &len_bytes).unwrap(),
    ));
    let bytes = safetensors::serialize(views, Some(case.metadata.clone())).unwrap();
    let path = temp_dir("i32").join("case.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let parsed = VerifyCase::read(&path).unwrap();
    let want: Vec<usize> = lengths.iter().map(|&v| v as usize).collect();
    assert_eq!(parsed.lengths, Some(want));
}
