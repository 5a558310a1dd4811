//! `allowed_outbound_hosts`: the per-component allow-list for outgoing HTTP.
//!
//! Entries follow Spin's syntax: `scheme://host[:port]`, where the scheme may be `*`,
//! the host may be `*`, `*.domain` or a name/address, and the port may be `*`, a
//! number or a range `a..b` (exclusive end). Without a port the scheme's default port
//! (80/443) is meant. Entries may contain `{{ variable }}` templates, expanded once at
//! start-up. `http://<component>.spin.internal` names another component of the app.

use std::fmt;

use anyhow::{Context, Result, bail};

/// A parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Suffix(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

/// The suffix of in-process component hosts (`http://worker.spin.internal`).
pub const INTERNAL_SUFFIX: &str = ".spin.internal";

impl AllowedHost {
    /// Parses an entry that may still contain templates: the templates are replaced by
    /// a placeholder host so the entry's shape can be validated before variables are known.
    pub fn parse_template(text: &str) -> Result<()> {
        if text.contains("{{") {
            crate::variables::template_references(text)?;
            return Ok(());
        }
        Self::parse(text).map(|_| ())
    }

    pub fn parse(text: &str) -> Result<Self> {
        let (scheme, rest) = text
            .split_once("://")
            .with_context(|| format!("`{text}` needs a scheme, e.g. `https://{text}`"))?;
        let scheme = match scheme {
            "*" => None,
            s if s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !s.is_empty() =>
            {
                Some(s.to_ascii_lowercase())
            }
            _ => bail!("`{text}`: invalid scheme"),
        };
        if rest.contains('/') && rest.trim_end_matches('/').contains('/') {
            bail!("`{text}`: an allowed host has no path");
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            // The colons of an IPv6 literal are inside its brackets; a port follows `]`.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (rest, None),
        };
        let host = match host {
            "" => bail!("`{text}`: missing host"),
            h if !brackets_ok(h) => bail!("`{text}`: brackets only around an IPv6 address"),
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                bail!("`{text}`: `*` may only stand for the whole host or its first labels")
            }
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let port = match port {
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((a, b)) => {
                    let (a, b) = (parse_port(text, a)?, parse_port(text, b)?);
                    if a >= b {
                        bail!("`{text}`: empty port range");
                    }
                    PortPattern::Range(a, b - 1)
                }
                None => {
                    let p = parse_port(text, p)?;
                    PortPattern::Range(p, p)
                }
            },
            None => match scheme.as_deref().and_then(default_port) {
                Some(p) => PortPattern::Range(p, p),
                None => bail!(
                    "`{text}`: give a port (a wildcard or unknown scheme has no default port)"
                ),
            },
        };
        Ok(Self { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Suffix(suffix) => {
                    host.ends_with(suffix.as_str()) && host.len() > suffix.len()
                }
                HostPattern::Exact(exact) => *exact == host,
            }
            && match self.port {
                PortPattern::Any => true,
                PortPattern::Range(a, b) => (a..=b).contains(&port),
            }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Any => "*".to_string(),
            HostPattern::Suffix(s) => format!("*{s}"),
            HostPattern::Exact(h) => h.clone(),
        };
        let port = match self.port {
            PortPattern::Any => "*".to_string(),
            PortPattern::Range(a, b) if a == b => a.to_string(),
            PortPattern::Range(a, b) => format!("{a}..{}", u32::from(b) + 1),
        };
        write!(
            f,
            "{}://{host}:{port}",
            self.scheme.as_deref().unwrap_or("*")
        )
    }
}

/// A host holds brackets only as an IPv6 literal: `[` first, `]` last, none inside.
fn brackets_ok(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => !inner.contains(['[', ']']),
        None => !host.contains(['[', ']']),
    }
}

fn parse_port(text: &str, port: &str) -> Result<u16> {
    port.parse()
        .with_context(|| format!("`{text}`: invalid port `{port}`"))
}

/// The port a scheme means when an entry or URL names none (Spin's well-known ports).
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "postgres" | "postgresql" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        _ => None,
    }
}

/// A component's expanded allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<AllowedHost>,
}

impl AllowList {
    pub fn new(entries: Vec<AllowedHost>) -> Self {
        Self { entries }
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.entries.iter().any(|e| e.allows(scheme, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entry: &str, scheme: &str, host: &str, port: u16) -> bool {
        AllowedHost::parse(entry)
            .unwrap()
            .allows(scheme, host, port)
    }

    #[test]
    fn exact_hosts_use_the_default_port_of_their_scheme() {
        assert!(allows(
            "https://fcm.googleapis.com",
            "https",
            "fcm.googleapis.com",
            443
        ));
        assert!(!allows(
            "https://fcm.googleapis.com",
            "https",
            "fcm.googleapis.com",
            8443
        ));
        assert!(!allows(
            "https://fcm.googleapis.com",
            "http",
            "fcm.googleapis.com",
            443
        ));
        assert!(!allows(
            "https://fcm.googleapis.com",
            "https",
            "evil.com",
            443
        ));
        assert!(allows("http://127.0.0.1:9000", "http", "127.0.0.1", 9000));
        assert!(allows(
            "postgres://db.internal",
            "postgres",
            "db.internal",
            5432
        ));
        assert!(!allows(
            "postgres://db.internal",
            "postgres",
            "db.internal",
            5433
        ));
        assert!(allows(
            "postgres://127.0.0.1:5433",
            "postgres",
            "127.0.0.1",
            5433
        ));
        assert!(!allows(
            "postgres://127.0.0.1:5433",
            "http",
            "127.0.0.1",
            5433
        ));
    }

    #[test]
    fn wildcards_cover_subdomains_ports_and_schemes() {
        assert!(allows(
            "https://*.push.apple.com",
            "https",
            "api.push.apple.com",
            443
        ));
        assert!(!allows(
            "https://*.push.apple.com",
            "https",
            "push.apple.com",
            443
        ));
        assert!(!allows(
            "https://*.push.apple.com",
            "https",
            "apple.com",
            443
        ));
        assert!(allows("*://*:*", "http", "anything", 1));
        assert!(allows(
            "http://localhost:8000..8002",
            "http",
            "localhost",
            8001
        ));
        assert!(!allows(
            "http://localhost:8000..8002",
            "http",
            "localhost",
            8002
        ));
        assert!(allows(
            "http://*.spin.internal",
            "http",
            "worker.spin.internal",
            80
        ));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "example.com",
            "https://",
            "https://ex*ample.com",
            "*://example.com",
            "https://a.com/path",
            "http://a:99999",
            "http://a:5..5",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        assert!(AllowedHost::parse_template("https://{{ vendor_host }}").is_ok());
        assert!(AllowedHost::parse_template("https://{{ Vendor }}").is_err());
    }

    #[test]
    fn allow_list_is_empty_by_default() {
        assert!(!AllowList::default().allows("https", "example.com", 443));
    }
}
