//! Time-series preparation end to end: loading excerpts of the real files (co2, airline
//! passengers, sunspots, ETTh1) written to temp files, error messages that name file and place,
//! and the properties of scalers, transforms, windows and splits.

use ndarray::Array2;
use proptest::prelude::*;
use rnnkit::data::series::*;
use std::path::{Path, PathBuf};

/// Writes `text` to a fresh temp file named after the test and returns its path.
fn temp_csv(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnkit-data-series-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn cfg(path: &Path, targets: &[&str], ts: Option<&str>) -> SeriesConfig {
    SeriesConfig {
        path: path.to_path_buf(),
        target_columns: targets.iter().map(|s| s.to_string()).collect(),
        timestamp_column: ts.map(str::to_string),
        lookback: 2,
        ..SeriesConfig::default()
    }
}

fn load_err(name: &str, text: &str, opts: &LoadOptions) -> (String, String) {
    let path = temp_csv(name, text);
    let e = SeriesTable::from_path(&path, opts).unwrap_err();
    assert!(matches!(e, rnnkit::Error::Data { .. }), "{e:?}");
    (path.display().to_string(), e.to_string())
}

// co2.csv, lines 1-16, with the row of 1958-04-19 deleted (a gap of one week).
const CO2: &str = "date,co2
19580329,316.1
19580405,317.3
19580412,317.6
19580426,316.4
19580503,316.9
19580510,
19580517,317.5
19580524,317.9
19580531,
19580607,
19580614,
19580621,
19580628,
19580705,315.8
";

#[test]
fn co2_gap_reported_and_interpolated() {
    let path = temp_csv("co2.csv", CO2);
    let mut c = cfg(&path, &["co2"], Some("date"));
    c.missing = MissingPolicy::Interpolate;
    c.split = SplitSpec::Fractions {
        train: 0.6,
        val: 0.2,
    };
    let data = SeriesData::load(&c).unwrap();
    let t = &data.table;
    assert_eq!(t.step, Some(7 * 86_400));
    assert_eq!(
        data.gaps(),
        &[Gap {
            row: 3,
            line: 5,
            missing: 1
        }]
    );
    assert_eq!(t.filled.len(), 6);
    assert_eq!(
        t.filled[0],
        FilledCell {
            row: 5,
            line: 7,
            column: "co2".into()
        }
    );
    let y = t.values.column(0);
    assert!((y[5] - 317.2).abs() < 1e-9); // halfway between 316.9 and 317.5
    // 317.9 → 315.8 over six weeks: −0.35 a week.
    for (i, want) in [317.55, 317.2, 316.85, 316.5, 316.15].iter().enumerate() {
        assert!(
            (y[8 + i] - want).abs() < 1e-9,
            "row {}: {} vs {want}",
            8 + i,
            y[8 + i]
        );
    }
    // The default policy stops at the first empty cell, naming it and the option to set.
    c.missing = MissingPolicy::Error;
    let e = SeriesData::load(&c).unwrap_err().to_string();
    assert!(
        e.contains("row 7, column \"co2\"") && e.contains("missing = \"interpolate\""),
        "{e}"
    );
}

#[test]
fn airline_cr_only_parses() {
    let text = "ds,y\r1949-01-01,112\r1949-02-01,118\r1949-03-01,132\r1949-04-01,129\r\
                1949-05-01,121\r1949-06-01,135\r1949-07-01,148\r1949-08-01,148\r";
    let path = temp_csv("example_air_passengers.csv", text);
    let mut c = cfg(&path, &["y"], Some("ds"));
    c.transform = Transform::Log;
    c.split = SplitSpec::Fractions {
        train: 0.5,
        val: 0.25,
    };
    let data = SeriesData::load(&c).unwrap();
    assert_eq!(data.table.len(), 8);
    assert_eq!(data.table.lines, (2..10).collect::<Vec<_>>());
    assert_eq!(data.table.values[[7, 0]], 148.0);
    assert!(data.gaps().is_empty()); // months of 28 to 31 days are one step each
    assert_eq!(data.train.len(), 2); // rows 0..4, L = 2, H = 1
    // Errors in a CR-only file still name the editor's line.
    let bad = text.replace("1949-05-01,121", "1949-05-01,12l");
    let (p, e) = load_err(
        "air_bad.csv",
        &bad,
        &LoadOptions::new(&["y"]).timestamp("ds"),
    );
    assert!(
        e.starts_with(&format!(
            "{p}: row 6, column \"y\": not a finite number: \"12l\""
        )),
        "{e}"
    );
}

#[test]
fn sunspots_year_floats_parse() {
    let text = "\"YEAR\",\"SUNACTIVITY\"\n1700.0,5\n1701.0,11\n1702.0,16\n1703.0,23\n1704.0,36\n\
                1705.0,58\n1706.0,29\n1707.0,20\n";
    let path = temp_csv("sunspots.csv", text);
    let mut c = cfg(&path, &["SUNACTIVITY"], Some("YEAR"));
    c.scaler = ScalerKind::MinMax;
    c.split = SplitSpec::Cutoffs {
        val_start: "1704".into(),
        test_start: "1706".into(),
    };
    let data = SeriesData::load(&c).unwrap();
    let ts = data.table.timestamps.as_ref().unwrap();
    assert_eq!(ts[0], parse_timestamp("1700-01-01").unwrap());
    assert_eq!(data.table.step, Some(365 * 86_400));
    assert!(data.gaps().is_empty()); // 1704 is a leap year: 366 days still one step
    assert_eq!(
        (data.rows.train.clone(), data.rows.val.clone()),
        (0..4, 4..6)
    );
    // Min-max on the training rows 5..23: 23 maps to 1.
    assert_eq!(data.train.target(1)[[0, 0]], 1.0);
}

#[test]
fn windows_of_a_longer_series_are_an_error_in_original_units() {
    let long: String = (0..40).map(|i| format!("{i},{}\n", (i * 7) % 11)).collect();
    let short: String = (0..12).map(|i| format!("{i},{}\n", (i * 5) % 11)).collect();
    let long = SeriesData::load(&cfg(
        &temp_csv("long.csv", &format!("t,v\n{long}")),
        &["v"],
        None,
    ))
    .unwrap();
    let short = SeriesData::load(&cfg(
        &temp_csv("short.csv", &format!("t,v\n{short}")),
        &["v"],
        None,
    ))
    .unwrap();
    let w = &long.test;
    let forecast = ndarray::Array2::<f32>::zeros((w.len(), w.horizon() * w.n_targets()));
    assert!(long.to_original_units(w, forecast.view()).is_ok());
    let err = short.to_original_units(w, forecast.view()).unwrap_err();
    assert!(err.to_string().contains("not from this data"), "{err}");
}

#[test]
fn etth1_multivariate_windows() {
    let text = "date,HUFL,HULL,MUFL,MULL,LUFL,LULL,OT
2016-07-01 00:00:00,5.827,2.009,1.599,0.462,4.203,1.340,30.531
2016-07-01 01:00:00,5.693,2.076,1.492,0.426,4.142,1.371,27.787
2016-07-01 02:00:00,5.157,1.741,1.279,0.355,3.777,1.218,27.787
2016-07-01 03:00:00,5.090,1.942,1.279,0.391,3.807,1.279,25.044
2016-07-01 04:00:00,5.358,1.942,1.492,0.462,3.868,1.279,21.948
2016-07-01 05:00:00,5.626,2.143,1.528,0.533,4.051,1.371,21.174
2016-07-01 06:00:00,7.167,2.947,2.132,0.782,5.026,1.858,22.792
2016-07-01 07:00:00,7.435,3.282,2.310,1.031,5.179,2.041,23.144
2016-07-01 08:00:00,5.559,3.014,2.452,1.173,5.179,2.041,21.667
2016-07-01 09:00:00,4.555,2.545,1.919,0.817,5.179,2.071,17.446
";
    let path = temp_csv("ETTh1.csv", text);
    let mut c = cfg(&path, &["OT"], Some("date"));
    c.feature_columns = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"]
        .map(String::from)
        .to_vec();
    c.lookback = 3;
    c.horizon = 2;
    c.split = SplitSpec::Fractions {
        train: 0.6,
        val: 0.2,
    };
    let data = SeriesData::load(&c).unwrap();
    assert_eq!(data.table.step, Some(3600));
    assert_eq!(data.train.n_features(), 7); // OT's past first, then the six loads
    assert_eq!(data.train.len(), 2); // rows 0..6
    let b = data.train.batch(&[0, 1]).unwrap();
    assert_eq!(b.inputs.shape(), &[3, 2, 7]);
    assert_eq!(b.targets.shape(), &[2, 2]);
    // Context on: each validation/test row is a target exactly once with H = 2, S = 1 … as
    // far as a full horizon fits inside the split.
    assert_eq!(data.val.len(), 1);
    assert_eq!(data.val.target_rows(0), 6..8);
    let base = data.baselines(&data.test, Some(2)).unwrap();
    // Test targets rows 8, 9 (21.667, 17.446); naive repeats row 7 (23.144).
    let want = ((23.144f64 - 21.667).abs() + (23.144f64 - 17.446).abs()) / 2.0;
    assert!((base.naive.mae - want).abs() < 1e-9);
}

#[test]
fn bad_inputs_name_file_and_place() {
    let ts = LoadOptions::new(&["co2"]).timestamp("date");
    let (p, e) = load_err(
        "nonnum.csv",
        "date,co2\n19580329,316.1\n19580405,n/a\n",
        &ts,
    );
    assert!(
        e.starts_with(&format!(
            "{p}: row 3, column \"co2\": not a finite number: \"n/a\""
        )),
        "{e}"
    );

    let (p, e) = load_err(
        "missing.csv",
        "date,co2\n19580329,316.1\n19580405,NaN\n",
        &ts,
    );
    assert!(
        e.starts_with(&format!("{p}: row 3, column \"co2\": missing value")),
        "{e}"
    );
    assert!(e.contains("missing = \"ffill\""), "{e}");

    let text = "date,co2\n19580329,316.1\n19580405,317.3\n19580405,317.6\n";
    let (p, e) = load_err("order.csv", text, &ts);
    assert!(
        e.starts_with(&format!(
            "{p}: row 4, column \"date\": timestamp \"19580405\""
        )),
        "{e}"
    );
    assert!(e.contains("previous row's (line 3)"), "{e}");

    let (p, e) = load_err("badts.csv", "date,co2\n1958-13-01,316.1\n", &ts);
    assert!(
        e.starts_with(&format!("{p}: row 2, column \"date\"")) && e.contains("YYYYMMDD"),
        "{e}"
    );

    let (p, e) = load_err(
        "col.csv",
        "date,co2\n19580329,316.1\n",
        &LoadOptions::new(&["c02"]),
    );
    assert!(e.starts_with(&format!("{p}: no column \"c02\"")), "{e}");
    assert!(
        e.contains("\"date\", \"co2\"") && e.contains("did you mean \"co2\"?"),
        "{e}"
    );

    let (p, e) = load_err("empty.csv", "", &ts);
    assert!(e.starts_with(&format!("{p}: the file is empty")), "{e}");

    let (p, e) = load_err("header.csv", "date,co2\n", &ts);
    assert!(
        e.starts_with(&format!("{p}: the file has a header but no data rows")),
        "{e}"
    );

    let (p, e) = load_err("ragged.csv", "date,co2\n19580329,316.1\n19580405\n", &ts);
    assert!(
        e.starts_with(&format!("{p}: line 3: 1 fields where the header has 2")),
        "{e}"
    );

    let missing_file = std::env::temp_dir().join("rnnkit-no-such-dir/none.csv");
    let e = SeriesTable::from_path(&missing_file, &ts).unwrap_err();
    assert!(matches!(e, rnnkit::Error::Read { .. }));

    // Log of a non-positive value names the row.
    let path = temp_csv("neg.csv", "y\n3\n-1\n2\n4\n5\n6\n7\n8\n");
    let mut c = cfg(&path, &["y"], None);
    c.transform = Transform::Log;
    let e = SeriesData::load(&c).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: row 3, column \"y\": transform \"log\"",
            path.display()
        )),
        "{e}"
    );
}

#[test]
fn config_from_json_and_errors() {
    let c: SeriesConfig = serde_json::from_str(
        r#"{"path": "x.csv", "target_columns": ["y"], "scaler": "robust", "transform": "diff",
            "split": {"by": "cutoffs", "val_start": "2001-01-01", "test_start": "2002-01-01"}}"#,
    )
    .unwrap();
    assert_eq!(
        (c.scaler, c.transform),
        (ScalerKind::Robust, Transform::Diff)
    );
    c.validate().unwrap();
    let none = SeriesConfig::default().validate().unwrap_err().to_string();
    assert!(none.contains("target_columns"), "{none}");
    let zero = SeriesConfig {
        target_columns: vec!["y".into()],
        stride: 0,
        ..Default::default()
    };
    assert!(zero.validate().unwrap_err().to_string().contains("stride"));
}

/// Rows of the three splits and their windows, for a series of `n` rows.
fn splits(
    n: usize,
    train: f64,
    val: f64,
    l: usize,
    h: usize,
    s: usize,
    ctx: bool,
) -> (SplitRows, SplitWindows) {
    let x = Array2::from_shape_fn((n, 2), |(t, f)| (t * 2 + f) as f64);
    let rows = SplitSpec::Fractions { train, val }
        .split_rows(n, None)
        .unwrap();
    let w = window_splits(x.view(), x.view(), &rows, 0, l, h, s, ctx).unwrap();
    (rows, w)
}

fn within(r: &std::ops::Range<usize>, outer: &std::ops::Range<usize>) -> bool {
    r.start >= outer.start && r.end <= outer.end
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn scaler_round_trip(
        n in 1usize..30, c in 1usize..4, vals in prop::collection::vec(-1e3f64..1e3, 120),
        kind in prop_oneof![Just(ScalerKind::Standard), Just(ScalerKind::MinMax), Just(ScalerKind::Robust), Just(ScalerKind::None)],
        constant in any::<bool>(),
    ) {
        let mut x = Array2::from_shape_fn((n, c), |(i, j)| vals[i * c + j]);
        if constant { x.column_mut(0).fill(7.5); }
        let train = x.slice(ndarray::s![..n.div_ceil(2), ..]);
        let s = Scaler::fit(kind, train).unwrap();
        let y = s.transform(x.view()).unwrap();
        prop_assert!(y.iter().all(|v| v.is_finite()));
        let back = s.inverse_transform(y.view()).unwrap();
        for (a, b) in back.iter().zip(x.iter()) {
            prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
        // serde_json parses floats to within one ulp (exact only with its `float_roundtrip`
        // feature), so a saved scaler reloads within rounding.
        let saved: Scaler = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        prop_assert_eq!(saved.kind, s.kind);
        for (a, b) in saved.center.iter().chain(&saved.scale).zip(s.center.iter().chain(&s.scale)) {
            prop_assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "{a} vs {b}");
        }
    }

    #[test]
    fn transform_round_trip(x in prop::collection::vec(1e-3f64..1e4, 2..40)) {
        for t in [Transform::None, Transform::Log, Transform::Log1p] {
            let back = t.inverse(&t.forward(&x).unwrap(), f64::NAN);
            for (a, b) in back.iter().zip(&x) {
                prop_assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{t:?}: {a} vs {b}");
            }
        }
        // Differencing: a run of differences after x[k] gives back x[k+1..].
        let d = Transform::Diff.forward(&x).unwrap();
        prop_assert_eq!(d.len(), x.len() - 1);
        let k = x.len() / 2;
        let back = Transform::Diff.inverse(&d[k..], x[k]);
        for (a, b) in back.iter().zip(&x[k + 1..]) {
            prop_assert!((a - b).abs() <= 1e-8 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn window_count_is_closed_form(n in 0usize..60, l in 1usize..10, h in 1usize..5, s in 1usize..6) {
        let x = Array2::<f64>::zeros((n, 1));
        let w = Windows::new(x.view(), x.view(), 0, l, h, s).unwrap();
        let want = if n >= l + h { (n - l - h) / s + 1 } else { 0 };
        prop_assert_eq!(w.len(), want);
        prop_assert_eq!(n_windows(n, l, h, s), want);
        // Every window fits, and one more would not.
        if want > 0 { prop_assert!(w.target_rows(want - 1).end <= n); }
        prop_assert!(want * s + l + h > n);
    }

    #[test]
    fn no_window_crosses_a_split(
        n in 0usize..80, train in 0.2f64..0.8, val in 0.0f64..0.2,
        l in 1usize..8, h in 1usize..4, s in 1usize..4,
    ) {
        let (rows, w) = splits(n, train, val, l, h, s, false);
        for (win, r) in [(&w.train, &rows.train), (&w.val, &rows.val), (&w.test, &rows.test)] {
            prop_assert_eq!(win.len(), n_windows(r.len(), l, h, s));
            for i in 0..win.len() {
                prop_assert!(within(&win.input_rows(i), r) && within(&win.target_rows(i), r));
                // The data really comes from those rows (column 0 holds 2·row).
                prop_assert_eq!(win.input(i)[[0, 0]] as usize, 2 * win.input_rows(i).start);
                prop_assert_eq!(win.target(i)[[0, 0]] as usize, 2 * win.target_rows(i).start);
            }
        }
    }

    #[test]
    fn context_windows_keep_targets_inside(
        n in 0usize..80, train in 0.2f64..0.8, val in 0.0f64..0.2,
        l in 1usize..8, h in 1usize..4, s in 1usize..4,
    ) {
        let (rows, w) = splits(n, train, val, l, h, s, true);
        for (win, r) in [(&w.train, &rows.train), (&w.val, &rows.val), (&w.test, &rows.test)] {
            for i in 0..win.len() {
                prop_assert!(within(&win.target_rows(i), r), "{:?} outside {r:?}", win.target_rows(i));
                prop_assert!(win.input_rows(i).end == win.target_rows(i).start);
                prop_assert_eq!(win.target(i)[[0, 0]] as usize, 2 * win.target_rows(i).start);
            }
            // With stride 1 and enough history, every row of the split that can start a full
            // horizon is a first target once.
            if s == 1 && r.start >= l {
                prop_assert_eq!(win.len(), (r.len() + 1).saturating_sub(h));
            }
        }
    }
}
