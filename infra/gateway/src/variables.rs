//! Variable resolution exactly as Spin does it.
//!
//! Application variables (`[variables]`) get their value from the environment
//! (`SPIN_VARIABLE_<NAME>`, upper-cased), else from the development secrets file the
//! gateway may generate (see `secrets.rs`), else from their `default`. A required
//! variable with no value stops start-up. A component sees only the variables in its
//! own `[component.<id>.variables]` table, whose values are templates such as
//! `"{{ jwt_secret }}"` or `"https://{{ host }}/path"`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::manifest::{Manifest, check_variable_name};

/// Application variable values, resolved once at start-up.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: BTreeMap<String, String>,
}

impl AppVariables {
    /// Resolves every application variable. `env` looks up environment variables and
    /// `dev_secrets` holds generated development values; both are passed in so tests
    /// control them.
    pub fn resolve(
        manifest: &Manifest,
        env: impl Fn(&str) -> Option<String>,
        dev_secrets: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, var) in &manifest.variables {
            let value = env(&env_name(name))
                .or_else(|| dev_secrets.get(name).cloned())
                .or_else(|| var.default.clone());
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => missing.push(format!("`{name}` (set {})", env_name(name))),
            }
        }
        if !missing.is_empty() {
            bail!("missing required variable {}", missing.join(", "));
        }
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Expands a template against the application variables.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        for piece in parse_template(template)? {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Reference(name) => match self.values.get(name) {
                    Some(value) => out.push_str(value),
                    None => bail!("template refers to undefined variable `{name}`"),
                },
            }
        }
        Ok(out)
    }

    /// The resolved variables of one component (name → value).
    pub fn for_component(
        &self,
        templates: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        templates
            .iter()
            .map(|(name, template)| Ok((name.clone(), self.expand(template)?)))
            .collect()
    }
}

/// `jwt_secret` → `SPIN_VARIABLE_JWT_SECRET`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// The application variables a template refers to.
pub fn template_references(template: &str) -> Result<Vec<String>> {
    Ok(parse_template(template)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Reference(name) => Some(name.to_string()),
            Piece::Literal(_) => None,
        })
        .collect())
}

enum Piece<'a> {
    Literal(&'a str),
    Reference(&'a str),
}

fn parse_template(template: &str) -> Result<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Literal(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed `{{{{` in template `{template}`");
        };
        let name = after[..end].trim();
        check_variable_name(name)?;
        pieces.push(Piece::Reference(name));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        bail!("unopened `}}}}` in template `{template}`");
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
jwt_secret = { required = true, secret = true }
host = { default = "push.example.com" }
[component.c]
source = "c.wasm"
[component.c.variables]
secret = "{{ jwt_secret }}"
url = "https://{{host}}/v1"
"#,
            PathBuf::from("/"),
        )
        .unwrap()
    }

    #[test]
    fn environment_beats_dev_secrets_beats_default() {
        let m = manifest();
        let dev = BTreeMap::from([("jwt_secret".to_string(), "dev".to_string())]);
        let vars = AppVariables::resolve(&m, |_| None, &dev).unwrap();
        assert_eq!(vars.get("jwt_secret"), Some("dev"));
        assert_eq!(vars.get("host"), Some("push.example.com"));
        let env = |name: &str| match name {
            "SPIN_VARIABLE_JWT_SECRET" => Some("env".to_string()),
            "SPIN_VARIABLE_HOST" => Some("local".to_string()),
            _ => None,
        };
        let vars = AppVariables::resolve(&m, env, &dev).unwrap();
        assert_eq!(vars.get("jwt_secret"), Some("env"));
        assert_eq!(vars.get("host"), Some("local"));
    }

    #[test]
    fn missing_required_variable_names_it_and_its_env_var() {
        let err = AppVariables::resolve(&manifest(), |_| None, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required variable `jwt_secret` (set SPIN_VARIABLE_JWT_SECRET)"
        );
    }

    #[test]
    fn component_templates_expand() {
        let m = manifest();
        let dev = BTreeMap::from([("jwt_secret".to_string(), "s3".to_string())]);
        let vars = AppVariables::resolve(&m, |_| None, &dev).unwrap();
        let resolved = vars.for_component(&m.components["c"].variables).unwrap();
        assert_eq!(resolved["secret"], "s3");
        assert_eq!(resolved["url"], "https://push.example.com/v1");
    }

    #[test]
    fn malformed_templates_are_rejected() {
        assert!(template_references("{{ open").is_err());
        assert!(template_references("close }}").is_err());
        assert!(template_references("{{ Bad }}").is_err());
        assert_eq!(
            template_references("a{{x}}b{{ y_2 }}").unwrap(),
            ["x", "y_2"]
        );
    }
}
