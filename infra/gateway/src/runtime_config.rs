//! `courier up --runtime-config-file`: Spin's runtime-config TOML, read as `spin up`
//! reads it (Spin 4.0.2, `crates/runtime-config` and
//! `crates/factor-outbound-networking/src/runtime_config/spin.rs`).
//!
//! The gateway honours `[[client_tls]]`, the TLS of outbound HTTPS per component and
//! host. Every other key Spin knows configures a service only Spin has here (its
//! stores, variables providers, LLMs, network blocks, state and log directories), so
//! it stops start-up with an error naming it rather than being ignored; a key Spin
//! does not know is refused too, as Spin refuses it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// What the gateway takes from a runtime-config file.
#[derive(Debug, Default)]
pub struct RuntimeConfig {
    /// The `[[client_tls]]` entries, in file order (the first match wins).
    pub client_tls: Vec<ClientTls>,
}

/// One `[[client_tls]]` entry, its files read.
#[derive(Debug)]
pub struct ClientTls {
    /// The components it applies to.
    pub component_ids: Vec<String>,
    /// The hosts it applies to: exactly as a request's URL names them, no port.
    pub hosts: Vec<String>,
    /// Trust the system's roots (`ca_use_platform_roots`).
    pub use_platform_roots: bool,
    /// Trust the webpki (Mozilla) roots (`ca_use_webpki_roots`).
    pub use_webpki_roots: bool,
    /// The certificates of `ca_roots_file`, trusted beside those.
    pub root_certificates: Vec<CertificateDer<'static>>,
    /// The client certificate chain and key of mutual TLS.
    pub client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// The keys Spin reads that configure a Spin-only service, and what the gateway
/// does instead.
const SPIN_ONLY: &[(&str, &str)] = &[
    (
        "key_value_store",
        "the gateway's key-value stores are SQLite files in --data",
    ),
    (
        "sqlite_database",
        "the gateway's SQLite databases are files in --data (or PostgreSQL by database_url)",
    ),
    (
        "variables_provider",
        "the gateway reads variables from SPIN_VARIABLE_* and the development secrets",
    ),
    (
        "config_provider",
        "the gateway reads variables from SPIN_VARIABLE_* and the development secrets",
    ),
    ("llm_compute", "the gateway has no LLM interface"),
    (
        "outbound_http",
        "the gateway pools outbound HTTPS connections (90 s idle) and does not limit them",
    ),
    (
        "outbound_networking",
        "the gateway blocks no networks beyond allowed_outbound_hosts",
    ),
    ("state_dir", "the gateway's state is in --data"),
    ("log_dir", "the gateway logs to stderr"),
    (
        "max_instance_memory",
        "the gateway's limit of an instance's memory is fixed (256 MiB)",
    ),
];

/// A `[[client_tls]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientTlsToml {
    component_ids: Vec<String>,
    hosts: Vec<String>,
    ca_use_platform_roots: Option<bool>,
    ca_use_webpki_roots: Option<bool>,
    ca_roots_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_private_key_file: Option<PathBuf>,
}

impl RuntimeConfig {
    /// Reads `path`; the files it names are relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read runtime config file {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Self::parse(&text, dir).with_context(|| format!("runtime config file {}", path.display()))
    }

    /// Parses a runtime config whose relative paths are relative to `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let mut config = RuntimeConfig::default();
        for (key, value) in &table {
            if key == "client_tls" {
                let entries: Vec<ClientTlsToml> = value
                    .clone()
                    .try_into()
                    .context("[[client_tls]]: expected an array of tables")?;
                for (n, entry) in entries.into_iter().enumerate() {
                    let entry = ClientTls::read(entry, dir)
                        .with_context(|| format!("[[client_tls]] entry {}", n + 1))?;
                    config.client_tls.push(entry);
                }
            } else if let Some((_, instead)) = SPIN_ONLY.iter().find(|(k, _)| k == key) {
                bail!(
                    "`{key}` configures a service only Spin provides; the gateway does not \
                     implement it ({instead}): remove it from the file given to `courier up`, \
                     or run the app with `spin up`"
                );
            } else {
                bail!("`{key}` is not a runtime-config key Spin knows");
            }
        }
        Ok(config)
    }
}

impl ClientTls {
    /// Spin's reading of one entry: which roots, which files.
    fn read(toml: ClientTlsToml, dir: &Path) -> Result<Self> {
        ensure!(
            !toml.component_ids.is_empty(),
            "'component_ids' list may not be empty"
        );
        ensure!(!toml.hosts.is_empty(), "'hosts' list may not be empty");
        for id in &toml.component_ids {
            crate::manifest::check_component_id(id)?;
        }
        for host in &toml.hosts {
            check_host(host)?;
        }
        // Spin's defaults: the system's roots unless a roots file is given; naming one
        // kind of roots turns the other off.
        let (use_platform_roots, use_webpki_roots) =
            match (toml.ca_use_platform_roots, toml.ca_use_webpki_roots) {
                (Some(platform), Some(webpki)) => (platform, webpki),
                (Some(platform), None) => (platform, false),
                (None, Some(webpki)) => (false, webpki),
                (None, None) => (toml.ca_roots_file.is_none(), false),
            };
        let root_certificates = match &toml.ca_roots_file {
            Some(path) => load_certs(&dir.join(path))?,
            None => Vec::new(),
        };
        ensure!(
            use_platform_roots || use_webpki_roots || !root_certificates.is_empty(),
            "at least one of 'ca_use_platform_roots', 'ca_use_webpki_roots', or \
             'ca_roots_file' (with certificates in it) must be set"
        );
        let client_cert = match (toml.client_cert_file, toml.client_private_key_file) {
            (Some(cert), Some(key)) => {
                Some((load_certs(&dir.join(cert))?, load_key(&dir.join(key))?))
            }
            (None, None) => None,
            (Some(_), None) => bail!("client_cert_file specified without client_private_key_file"),
            (None, Some(_)) => bail!("client_private_key_file specified without client_cert_file"),
        };
        Ok(ClientTls {
            component_ids: toml.component_ids,
            hosts: toml.hosts,
            use_platform_roots,
            use_webpki_roots,
            root_certificates,
            client_cert,
        })
    }
}

/// A TLS host is an authority without a port, as Spin validates it.
fn check_host(host: &str) -> Result<()> {
    let authority: http::uri::Authority = host
        .parse()
        .with_context(|| format!("invalid TLS 'host' {host:?}"))?;
    ensure!(
        authority.port().is_none(),
        "invalid TLS 'host' {host:?}; ports not currently supported"
    );
    Ok(())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("failed to load certificate(s) from {}", path.display()))
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("failed to load key from {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM.
    fn write_cert(dir: &Path) {
        let cert = rcgen::generate_simple_self_signed(vec!["vendor.test".into()]).expect("cert");
        std::fs::write(dir.join("ca.pem"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).expect("write");
    }

    fn parse(text: &str, dir: &Path) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(text, dir)
    }

    #[test]
    fn an_entry_without_roots_trusts_the_platform_roots_only() {
        let config = parse(
            "[[client_tls]]\ncomponent_ids = [\"push-notify\"]\nhosts = [\"api.push.apple.com\"]\n",
            Path::new("/nowhere"),
        )
        .expect("valid");
        let entry = &config.client_tls[0];
        assert!(entry.use_platform_roots && !entry.use_webpki_roots);
        assert!(entry.root_certificates.is_empty() && entry.client_cert.is_none());
    }

    #[test]
    fn a_roots_file_relative_to_the_file_replaces_the_platform_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_cert(dir.path());
        let config = parse(
            "[[client_tls]]\ncomponent_ids = [\"push-notify\"]\nhosts = [\"127.0.0.1\"]\n\
             ca_roots_file = \"ca.pem\"\nclient_cert_file = \"ca.pem\"\n\
             client_private_key_file = \"key.pem\"\n",
            dir.path(),
        )
        .expect("valid");
        let entry = &config.client_tls[0];
        assert!(!entry.use_platform_roots && !entry.use_webpki_roots);
        assert_eq!(entry.root_certificates.len(), 1);
        assert!(entry.client_cert.is_some());
    }

    #[test]
    fn naming_one_kind_of_roots_turns_the_other_off() {
        let config = parse(
            "[[client_tls]]\ncomponent_ids = [\"a\"]\nhosts = [\"h\"]\nca_use_webpki_roots = true\n",
            Path::new("/"),
        )
        .expect("valid");
        let entry = &config.client_tls[0];
        assert!(!entry.use_platform_roots && entry.use_webpki_roots);
    }

    #[test]
    fn spin_only_tables_are_refused_by_name() {
        for key in [
            "key_value_store.default",
            "sqlite_database.default",
            "llm_compute",
        ] {
            let err = parse(&format!("[{key}]\ntype = \"spin\"\n"), Path::new("/"))
                .expect_err("refused")
                .to_string();
            let table = key.split('.').next().expect("key");
            assert!(err.contains(table) && err.contains("only Spin"), "{err}");
        }
        let err = parse("state_dir = \".spin\"\n", Path::new("/")).expect_err("refused");
        assert!(err.to_string().contains("state_dir"), "{err}");
        let err = parse("[client_tsl]\n", Path::new("/")).expect_err("refused");
        assert!(err.to_string().contains("client_tsl"), "{err}");
    }

    #[test]
    fn bad_entries_are_refused() {
        let cases = [
            ("component_ids = []\nhosts = [\"h\"]", "component_ids"),
            ("component_ids = [\"a\"]\nhosts = []", "hosts"),
            ("component_ids = [\"Push\"]\nhosts = [\"h\"]", "Push"),
            ("component_ids = [\"a\"]\nhosts = [\"h:443\"]", "ports"),
            (
                "component_ids = [\"a\"]\nhosts = [\"h\"]\nca_use_platform_roots = false",
                "at least one",
            ),
            (
                "component_ids = [\"a\"]\nhosts = [\"h\"]\nca_roots_file = \"missing.pem\"",
                "missing.pem",
            ),
            (
                "component_ids = [\"a\"]\nhosts = [\"h\"]\nclient_cert_file = \"c.pem\"",
                "without",
            ),
            (
                "component_ids = [\"a\"]\nhosts = [\"h\"]\nca_root_file = \"c.pem\"",
                "ca_root_file",
            ),
        ];
        for (entry, why) in cases {
            let err = parse(&format!("[[client_tls]]\n{entry}\n"), Path::new("/nowhere"))
                .expect_err(entry);
            assert!(format!("{err:#}").contains(why), "{entry}: {err:#}");
        }
    }
}
