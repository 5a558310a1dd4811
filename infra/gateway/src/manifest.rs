//! The Spin application manifest (`spin.toml`, manifest version 2): the subset courier
//! uses, parsed strictly so that a typo fails at start-up rather than at request time.
//!
//! The shapes follow the Spin manifest reference: `[application]`, `[variables]`,
//! `[[trigger.http]]` with `route` (a path or `{ private = true }`) and `component`,
//! and `[component.<id>]` with `source`, `description`, `allowed_outbound_hosts`,
//! `sqlite_databases`, `key_value_stores`, `variables` and `build`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::routes::Route;

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Directory of the manifest file; relative paths in it are resolved against this.
    pub dir: PathBuf,
    pub application: Application,
    /// Application variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// HTTP triggers in manifest order.
    pub triggers: Vec<HttpTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, Component>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: Option<toml::Value>,
}

/// An application variable: either required (no default) or with a default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    pub route: Route,
    pub component: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Component {
    #[serde(default)]
    pub description: Option<String>,
    pub source: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    /// Component variables: name → template (e.g. `"{{ jwt_secret }}"`).
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub build: Option<Build>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, Component>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[serde(default)]
    id: Option<String>,
    route: RawRoute,
    component: String,
    #[serde(default)]
    executor: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private { private: bool },
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let dir = path
            .canonicalize()
            .with_context(|| format!("cannot resolve manifest path {}", path.display()))?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Self::parse(&text, dir).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses and validates manifest text; `dir` is where relative paths start.
    pub fn parse(text: &str, dir: PathBuf) -> Result<Self> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        if raw.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version must be 2, found {}",
                raw.spin_manifest_version
            );
        }
        for (name, var) in &raw.variables {
            check_variable_name(name)?;
            match (&var.default, var.required) {
                (Some(_), true) => {
                    bail!("variable `{name}`: `required` and `default` are exclusive")
                }
                (None, false) => bail!("variable `{name}`: needs `default` or `required = true`"),
                _ => {}
            }
        }
        for (id, component) in &raw.component {
            check_component_id(id)?;
            for (name, template) in &component.variables {
                check_variable_name(name).with_context(|| format!("component `{id}`"))?;
                for reference in crate::variables::template_references(template)
                    .with_context(|| format!("component `{id}` variable `{name}`"))?
                {
                    if !raw.variables.contains_key(&reference) {
                        bail!(
                            "component `{id}` variable `{name}` refers to undefined application variable `{reference}`"
                        );
                    }
                }
            }
            for host in &component.allowed_outbound_hosts {
                crate::outbound::AllowedHost::parse_template(host)
                    .with_context(|| format!("component `{id}`: allowed_outbound_hosts"))?;
            }
        }
        let mut triggers = Vec::new();
        for trigger in raw.trigger.http {
            if !raw.component.contains_key(&trigger.component) {
                bail!(
                    "trigger {} refers to unknown component `{}`",
                    trigger.id.as_deref().unwrap_or("(http)"),
                    trigger.component
                );
            }
            let route = match trigger.route {
                RawRoute::Path(path) => Route::parse(&path)?,
                RawRoute::Private { private: true } => Route::Private,
                RawRoute::Private { private: false } => {
                    bail!("route `{{ private = false }}` is not a route")
                }
            };
            if route != Route::Private
                && let Some(other) = triggers.iter().find(|t: &&HttpTrigger| t.route == route)
            {
                bail!(
                    "route {} is claimed by both `{}` and `{}`",
                    route,
                    other.component,
                    trigger.component
                );
            }
            let _ = trigger.executor;
            triggers.push(HttpTrigger {
                route,
                component: trigger.component,
            });
        }
        Ok(Self {
            dir,
            application: raw.application,
            variables: raw.variables,
            triggers,
            components: raw.component,
        })
    }

    /// Absolute path of a component's `.wasm` file.
    pub fn source_path(&self, component: &Component) -> PathBuf {
        self.dir.join(&component.source)
    }
}

/// Spin's rule for variable names: lower-case letters, digits and `_`, starting with a letter.
pub fn check_variable_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!(
            "invalid variable name `{name}`: use lower-case letters, digits and `_`, starting with a letter"
        );
    }
    Ok(())
}

/// Spin's rule for component ids: kebab-case words of lower-case letters and digits.
pub(crate) fn check_component_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.split('-').all(|word| {
            !word.is_empty()
                && word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !ok {
        bail!("invalid component id `{id}`: use kebab-case (e.g. `push-notify`)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
jwt_secret = { required = true, secret = true }
limit = { default = "10" }
[[trigger.http]]
route = "/healthz"
component = "health"
[[trigger.http]]
route = "/v1/..."
component = "api-one"
[[trigger.http]]
route = { private = true }
component = "worker"
[component.health]
source = "health.wasm"
sqlite_databases = ["default"]
key_value_stores = ["default"]
[component.health.variables]
secret = "{{ jwt_secret }}"
[component.health.build]
command = "cargo build"
workdir = "functions/health"
[component.api-one]
source = "a.wasm"
allowed_outbound_hosts = ["https://*.example.com", "http://worker.spin.internal"]
[component.worker]
source = "w.wasm"
"#;

    fn parse(text: &str) -> Result<Manifest> {
        Manifest::parse(text, PathBuf::from("/app"))
    }

    #[test]
    fn parses_routes_variables_and_grants() {
        let m = parse(GOOD).unwrap();
        assert_eq!(m.triggers.len(), 3);
        assert_eq!(m.triggers[2].route, Route::Private);
        assert!(m.variables["jwt_secret"].required);
        assert_eq!(m.variables["limit"].default.as_deref(), Some("10"));
        let health = &m.components["health"];
        assert_eq!(health.sqlite_databases, ["default"]);
        assert_eq!(health.variables["secret"], "{{ jwt_secret }}");
        assert_eq!(
            health.build.as_ref().unwrap().workdir.as_deref(),
            Some("functions/health")
        );
        assert_eq!(m.source_path(health), PathBuf::from("/app/health.wasm"));
    }

    #[test]
    fn rejects_unknown_fields_and_versions() {
        let typo = GOOD.replace("sqlite_databases", "sqlite_database");
        assert!(parse(&typo).is_err());
        let v1 = GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(parse(&v1).unwrap_err().to_string().contains("must be 2"));
    }

    #[test]
    fn rejects_dangling_references() {
        let bad = GOOD.replace("component = \"health\"", "component = \"nope\"");
        assert!(
            parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("unknown component")
        );
        let bad = GOOD.replace("{{ jwt_secret }}", "{{ missing }}");
        assert!(
            format!("{:#}", parse(&bad).unwrap_err()).contains("undefined application variable")
        );
    }

    #[test]
    fn rejects_bad_names_and_duplicate_routes() {
        assert!(parse(&GOOD.replace("[component.api-one]", "[component.Api]")).is_err());
        assert!(parse(&GOOD.replace("limit =", "Limit =")).is_err());
        let dup = GOOD.replace("route = \"/v1/...\"", "route = \"/healthz\"");
        assert!(
            parse(&dup)
                .unwrap_err()
                .to_string()
                .contains("claimed by both")
        );
        let both = GOOD.replace(
            "{ default = \"10\" }",
            "{ default = \"10\", required = true }",
        );
        assert!(parse(&both).is_err());
    }
}
