//! Keys nobody reads. serde skips a field it does not know, so `poll_intervall`, `acces_token`
//! or a `[syncc]` section would run as if absent — the merchant's setting silently lost. Every
//! key the settings do not read is refused instead, with the nearest key that exists.

use std::collections::{BTreeSet, HashMap};

use serde::de::DeserializeOwned;

use super::{ConfigError, DEFAULT_TOML};

/// Deserializes the layered configuration, failing on any key the settings ignore. `env` is
/// the `TIERSYNC__…` environment, to say where a key came from.
pub(super) fn deserialize_known<T: DeserializeOwned>(
    config: config::Config,
    env: &HashMap<String, String>,
) -> Result<T, ConfigError> {
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(config, |path| unknown.push(path.to_string()))
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    match unknown.first() {
        None => Ok(value),
        Some(key) => Err(ConfigError::Unknown {
            key: key.clone(),
            origin: origin(key, env),
            suggestion: nearest(key)
                .map_or_else(String::new, |k| format!(" (did you mean `{k}`?)")),
        }),
    }
}

/// Where an unknown key was set: the environment variable naming it, or the file.
fn origin(key: &str, env: &HashMap<String, String>) -> String {
    let variable = format!("TIERSYNC__{}", key.replace('.', "__").to_uppercase());
    if env.keys().any(|k| k.eq_ignore_ascii_case(&variable)) {
        format!("the environment variable {variable}")
    } else {
        "the configuration file".to_string()
    }
}

/// The known key closest to `key` (by edit distance over the whole dotted path, so a
/// misspelt section is found too), when it is close enough to be a typo.
fn nearest(key: &str) -> Option<String> {
    let key = generic(key);
    known_keys()
        .into_iter()
        .map(|known| (strsim::damerau_levenshtein(&key, &known), known))
        .filter(|(distance, known)| *distance <= (known.len() / 3).max(2))
        .min()
        .map(|(_, known)| known)
}

/// Array indices as `N`, so `tiers.levels.2.min_spnd` compares with `tiers.levels.N.min_spend`.
fn generic(path: &str) -> String {
    path.split('.')
        .map(|part| {
            if part.chars().all(|c| c.is_ascii_digit()) {
                "N"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Keys the settings read that have no default, so they are absent from `default.toml`.
const WITHOUT_DEFAULT: &[&str] = &["tiers.levels.N.min_spend", "tiers.levels.N.top_percent"];

/// Every key of the documented defaults, sections included, as dotted paths.
fn known_keys() -> BTreeSet<String> {
    let defaults: toml_tree::Table = toml_tree::parse(DEFAULT_TOML);
    let mut keys: BTreeSet<String> = WITHOUT_DEFAULT.iter().map(|k| k.to_string()).collect();
    toml_tree::collect("", &defaults, &mut keys);
    keys
}

/// The defaults' key tree, read with the `config` crate's own TOML reader.
mod toml_tree {
    use std::collections::BTreeSet;

    use config::{Value, ValueKind};

    pub type Table = config::Map<String, Value>;

    pub fn parse(text: &str) -> Table {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<Table>())
            .expect("the compiled-in defaults parse")
    }

    pub fn collect(prefix: &str, table: &Table, keys: &mut BTreeSet<String>) {
        for (name, value) in table {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            walk(&path, value, keys);
            keys.insert(path);
        }
    }

    fn walk(path: &str, value: &Value, keys: &mut BTreeSet<String>) {
        match &value.kind {
            ValueKind::Table(table) => collect(path, table, keys),
            ValueKind::Array(items) => {
                for item in items {
                    walk(&format!("{path}.N"), item, keys);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_key_they_meant() {
        assert_eq!(
            nearest("sync.poll_intervall").as_deref(),
            Some("sync.poll_interval")
        );
        assert_eq!(
            nearest("shopify.acces_token").as_deref(),
            Some("shopify.access_token")
        );
        assert_eq!(nearest("syncc").as_deref(), Some("sync"));
        assert_eq!(
            nearest("tiers.levels.1.min_spnd").as_deref(),
            Some("tiers.levels.N.min_spend")
        );
        assert_eq!(nearest("completely_unrelated_setting"), None);
    }
}
