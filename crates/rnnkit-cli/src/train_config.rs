//! Filling a config's missing keys from its task's defaults: a config file, and a table in
//! it, states only what differs.

/// The keys that name the variant of an internally tagged enum in a config table.
pub const TAG_KEYS: [&str; 2] = ["kind", "by"];

/// Fills every key missing from `user` with its value in `defaults` (both TOML tables), so a
/// config file, and a table in it, states only what differs. A table standing for an enum
/// variant (`kind = "sgd"` in `[train.optimizer]` against the default `adam`) replaces the
/// default instead of merging with it: tagged enums carry a `kind` key, and a different `kind` starts over from the
/// user's table.
pub fn merge_defaults(defaults: toml::Value, user: toml::Value) -> toml::Value {
    // The tags of rnnkit's internally tagged config enums: `kind` (optimizer, schedule,
    // tokenizer, init) and `by` (the series split). A test below switches each of them.
    match (defaults, user) {
        (toml::Value::Table(mut d), toml::Value::Table(u)) => {
            let is_variant_switch = TAG_KEYS
                .iter()
                .any(|tag| matches!((d.get(*tag), u.get(*tag)), (Some(a), Some(b)) if a != b));
            if is_variant_switch {
                return toml::Value::Table(u);
            }
            for (k, v) in u {
                let merged = match d.remove(&k) {
                    Some(dv) => merge_defaults(dv, v),
                    None => v,
                };
                d.insert(k, merged);
            }
            toml::Value::Table(d)
        }
        (_, user) => user,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rnnkit::optim::OptimizerConfig;
    use rnnkit::tasks::lm::LmConfig;
    use rnnkit::tasks::{AnyConfig, TaskKind};

    #[test]
    fn every_default_config_round_trips_through_toml() {
        for &kind in TaskKind::ALL {
            let cfg = AnyConfig::default_for(kind);
            let text = toml::to_string(&cfg).unwrap();
            let back =
                AnyConfig::deserialize_as(kind, toml::from_str::<toml::Value>(&text).unwrap())
                    .unwrap();
            assert_eq!(back, cfg, "{kind}");
        }
    }

    fn parse(text: &str) -> LmConfig {
        let defaults = toml::Value::try_from(LmConfig::default()).unwrap();
        let user: toml::Value = toml::from_str(text).unwrap();
        merge_defaults(defaults, user).try_into().unwrap()
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

    #[test]
    fn a_typo_is_an_error() {
        let err = toml::from_str::<LmConfig>("[model]\nhiden_size = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
    }
}
