//! A plugin's config table (from the scenario, passed as JSON) with typed getters whose errors
//! name the key, so a typo in a scenario comes back as a clear `configure` error.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct Config(Map<String, Value>);

impl Config {
    pub fn parse(json: &str) -> Result<Config, String> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(m)) => Ok(Config(m)),
            Ok(other) => Err(format!("config must be a table, got {other}")),
            Err(e) => Err(format!("config is not valid JSON: {e}")),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.0.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("config `{key}` must be a number, got {v}")),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String, String> {
        match self.0.get(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!("config `{key}` must be a string, got {v}")),
        }
    }

    /// Deserialises `key` into `T`; a missing key is an error.
    pub fn required<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, String> {
        let v = self
            .0
            .get(key)
            .ok_or_else(|| format!("config `{key}` is required"))?;
        serde_json::from_value(v.clone()).map_err(|e| format!("config `{key}`: {e}"))
    }

    /// Keys outside `known` (plus the host's own `time_scale`) are errors: a misspelt key
    /// silently ignored would change what a gate or fault does.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), String> {
        match self
            .0
            .keys()
            .find(|k| *k != "time_scale" && !known.contains(&k.as_str()))
        {
            Some(k) => Err(format!(
                "unknown config key `{k}` (known: {})",
                known.join(", ")
            )),
            None => Ok(()),
        }
    }
}
