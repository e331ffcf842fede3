//! Filling a config's missing keys from its task's defaults: a config file, and a table in
//! it, states only what differs.

use toml::Value;

use serde_path_to_error::{Segment, Track};

/// The keys that can name the variant of an internally tagged config enum: `kind`
/// (optimizer, schedule, tokenizer, init) and `by` (the series split).
pub(crate) const TAG_KEYS: [&str; 2] = ["kind", "by"];

/// The tables of `config` that hold an internally tagged enum. A plain enum field can be
/// called `kind` too (the synthetic task's `data.kind`), so ask serde: `read` deserializes a
/// whole config, and without its tag a tagged enum's table fails with "missing field `kind`"
/// right there, where a struct's field would take its default.
pub(crate) fn tagged_tables<T>(
    config: &Value,
    read: impl Fn(Value, &mut Track) -> Result<T, String>,
) -> Vec<Vec<String>> {
    let mut candidates = Vec::new();
    tables_with_tags(config, &mut Vec::new(), &mut candidates);
    candidates
        .into_iter()
        .filter(|(path, tag)| {
            let mut probe = config.clone();
            let table = path
                .iter()
                .try_fold(&mut probe, |v, k| v.get_mut(k))
                .and_then(Value::as_table_mut);
            if let Some(t) = table {
                t.remove(*tag);
            }
            let mut track = Track::new();
            match read(probe, &mut track) {
                Err(msg) => {
                    msg == format!("missing field `{tag}`") && segments(&track.path()) == *path
                }
                Ok(_) => false,
            }
        })
        .map(|(path, _)| path)
        .collect()
}

/// Every table (at any depth) that has a key named like a tag, with that key.
fn tables_with_tags(
    value: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'static str)>,
) {
    let Value::Table(t) = value else { return };
    if let Some(tag) = TAG_KEYS
        .iter()
        .find(|k| t.get(**k).is_some_and(Value::is_str))
    {
        out.push((path.clone(), *tag));
    }
    for (k, v) in t {
        path.push(k.clone());
        tables_with_tags(v, path, out);
        path.pop();
    }
}

/// The keys of a serde path.
pub(crate) fn segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Seq { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Fills every key missing from `user` with its value in `defaults` (both TOML tables). A
/// table of `tagged` that names another variant (`kind = "sgd"` in `[train.optimizer]`
/// against the default `adam`) replaces the default instead of merging with it, so it starts
/// from its own defaults, not the other variant's keys.
pub(crate) fn merge_defaults(defaults: Value, user: Value, tagged: &[Vec<String>]) -> Value {
    merge_at(defaults, user, tagged, &mut Vec::new())
}

fn merge_at(defaults: Value, user: Value, tagged: &[Vec<String>], path: &mut Vec<String>) -> Value {
    match (defaults, user) {
        (Value::Table(mut d), Value::Table(u)) => {
            let is_variant_switch = tagged.contains(path)
                && TAG_KEYS
                    .iter()
                    .any(|tag| matches!((d.get(*tag), u.get(*tag)), (Some(a), Some(b)) if a != b));
            if is_variant_switch {
                return Value::Table(u);
            }
            for (k, v) in u {
                path.push(k.clone());
                let merged = match d.remove(&k) {
                    Some(dv) => merge_at(dv, v, tagged, path),
                    None => v,
                };
                path.pop();
                d.insert(k, merged);
            }
            Value::Table(d)
        }
        (_, user) => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;
    use crate::tasks::lm::LmConfig;
    use crate::tasks::{AnyConfig, TaskKind};

    #[test]
    fn every_default_config_round_trips_through_toml() {
        for &kind in TaskKind::ALL {
            let cfg = AnyConfig::default_for(kind);
            let text = toml::to_string(&cfg).unwrap();
            let back =
                AnyConfig::deserialize_as(kind, toml::from_str::<Value>(&text).unwrap()).unwrap();
            assert_eq!(back, cfg, "{kind}");
        }
    }

    fn parse(text: &str) -> LmConfig {
        let defaults = Value::try_from(LmConfig::default()).unwrap();
        let user: Value = toml::from_str(text).unwrap();
        let tagged = vec![vec!["train".to_string(), "optimizer".to_string()]];
        merge_defaults(defaults, user, &tagged).try_into().unwrap()
    }

    #[test]
    fn tagged_tables_are_told_from_plain_kind_fields() {
        let keys = |v: &[Vec<String>]| v.iter().map(|p| p.join(".")).collect::<Vec<_>>();
        for &kind in TaskKind::ALL {
            let value = Value::try_from(AnyConfig::default_for(kind)).unwrap();
            let tagged = tagged_tables(&value, |v, t| {
                AnyConfig::deserialize_as(kind, serde_path_to_error::Deserializer::new(v, t))
                    .map_err(|e| e.message().trim().to_string())
            });
            let tagged = keys(&tagged);
            assert!(
                tagged.contains(&"train.optimizer".to_string()),
                "{kind}: {tagged:?}"
            );
            assert!(!tagged.contains(&"data".to_string()), "{kind}: {tagged:?}");
            if kind == TaskKind::Forecast {
                assert!(tagged.contains(&"data.split".to_string()), "{tagged:?}");
            }
        }
    }

    #[test]
    fn missing_keys_take_the_bundled_defaults_even_inside_a_table() {
        assert_eq!(parse(""), LmConfig::default());
        let cfg = parse("[train]\nepochs = 2\n[model]\nhidden_size = 32\n");
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(
            cfg.train.bptt, 100,
            "the bundled bptt, not TrainConfig's 35"
        );
        assert_eq!(cfg.model.hidden_size, 32);
        assert_eq!(cfg.model.embedding_size, 64);
        let sgd = parse("[train.optimizer]\nkind = \"sgd\"\nlr = 1.0\n");
        assert!(
            matches!(sgd.train.optimizer, OptimizerConfig::Sgd(_)),
            "{sgd:?}"
        );
    }
}
