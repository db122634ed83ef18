//! `{env:NAME}` in scenario values: taken from the caller's variables first (the demo passes
//! its stack's), then from the process environment. Nothing here sets the environment.

use std::collections::BTreeMap;

/// Values for `{env:NAME}` that win over the process environment.
pub type Vars = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error("unclosed `{{env:` in `{text}`")]
    Unclosed { text: String },
    #[error(
        "environment variable {var} is not set (`harness stack env` exports the local stack's)"
    )]
    Unset { var: String },
}

/// Replaces every `{env:NAME}` in `text`; an unset variable is an error naming it.
pub fn expand_env(text: &str, vars: &Vars) -> Result<String, EnvError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{env:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let end = after.find('}').ok_or_else(|| EnvError::Unclosed {
            text: text.to_owned(),
        })?;
        let var = &after[..end];
        let value = match vars.get(var) {
            Some(v) => v.clone(),
            None => std::env::var(var).map_err(|_| EnvError::Unset {
                var: var.to_owned(),
            })?,
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_vars_win_and_unset_ones_are_named() {
        let vars = Vars::from([("HARNESS_TEST_X".to_owned(), "a".to_owned())]);
        assert_eq!(expand_env("{env:HARNESS_TEST_X}/b", &vars).unwrap(), "a/b");
        let unset = expand_env("{env:HARNESS_SURELY_UNSET_1}", &vars).unwrap_err();
        assert_eq!(
            unset,
            EnvError::Unset {
                var: "HARNESS_SURELY_UNSET_1".into()
            }
        );
        assert!(matches!(
            expand_env("{env:X", &vars),
            Err(EnvError::Unclosed { .. })
        ));
    }
}
