//! `manifest` and `outbound_hosts`: the gateway's `spin.toml` parser and the
//! `allowed_outbound_hosts` syntax, shared with the webhook origin rules of the core.
//!
//! `manifest` properties: an accepted manifest is consistent (every trigger names a
//! component, no route is claimed twice, every variable has a default or is
//! required, every grant parses); every route prints a text that parses back to it and
//! matches a path built from it; parsing is deterministic. Each line of the input is
//! also tried as a route and as a template.
//!
//! `outbound_hosts` properties, per line: an allow-list entry prints a text that parses
//! back to it and allows what it names; a webhook origin pattern that both parsers
//! accept allows the same origins in both; a webhook URL gives a lowercase host and a
//! real port, and `https://*:*`/`http://*:*` allow exactly the URLs that parse.

use std::path::PathBuf;

use courier_core::api::{Origin, OriginPattern, check_url};

use crate::bytes::text;
use crate::manifest::{Manifest, check_variable_name};
use crate::outbound::AllowedHost;
use crate::routes::{Route, Segment};
use crate::variables::template_references;

pub fn manifest(data: &[u8]) {
    let text = text(data);
    let parsed = Manifest::parse(&text, PathBuf::from("/app"));
    if let Ok(manifest) = &parsed {
        consistent(manifest);
        let again = Manifest::parse(&text, PathBuf::from("/app")).expect("parses twice");
        assert_eq!(format!("{again:?}"), format!("{manifest:?}"));
    }
    for line in text.lines().take(64) {
        if let Ok(route) = Route::parse(line) {
            route_round_trip(&route);
        }
        if let Ok(names) = template_references(line) {
            assert!(names.iter().all(|n| check_variable_name(n).is_ok()));
        }
    }
}

fn consistent(manifest: &Manifest) {
    for (name, variable) in &manifest.variables {
        assert!(check_variable_name(name).is_ok(), "{name}");
        assert!(variable.default.is_some() != variable.required, "{name}");
    }
    let mut seen = Vec::new();
    for trigger in &manifest.triggers {
        assert!(manifest.components.contains_key(&trigger.component));
        if trigger.route != Route::Private {
            assert!(!seen.contains(&&trigger.route), "{} twice", trigger.route);
            seen.push(&trigger.route);
            route_round_trip(&trigger.route);
        }
    }
    for (id, component) in &manifest.components {
        for host in &component.allowed_outbound_hosts {
            if !host.contains("{{") {
                let entry = AllowedHost::parse(host).expect("a validated grant parses");
                entry_round_trip(&entry);
            }
        }
        for template in component.variables.values() {
            for name in template_references(template).expect("validated") {
                assert!(manifest.variables.contains_key(&name), "{id}: {name}");
            }
        }
    }
}

fn route_round_trip(route: &Route) {
    let printed = route.to_string();
    let reparsed = Route::parse(&printed).map_err(|e| e.to_string());
    assert_eq!(reparsed.as_ref(), Ok(route), "{printed}");
    let Route::Path { segments, wildcard } = route else {
        return;
    };
    let mut path = String::new();
    let mut captures = 0;
    for segment in segments {
        path.push('/');
        match segment {
            Segment::Literal(literal) => path.push_str(literal),
            Segment::Capture(_) => {
                path.push('x');
                captures += 1;
            }
        }
    }
    if *wildcard {
        path.push_str("/below");
    }
    if path.is_empty() {
        path.push('/');
    }
    let matched = route.matches(&path);
    let matched = matched.unwrap_or_else(|| panic!("{printed} does not match {path}"));
    assert_eq!(matched.captures.len(), captures);
    assert_eq!(matched.raw_route, printed);
    let expected_info = if *wildcard { "/below" } else { "" };
    assert_eq!(matched.path_info, expected_info, "{printed} on {path}");
}

/// An allow-list entry prints a text that parses back to it, and allows what it names.
fn entry_round_trip(entry: &AllowedHost) {
    let printed = entry.to_string();
    let reparsed = AllowedHost::parse(&printed).map_err(|e| e.to_string());
    assert_eq!(reparsed.as_ref(), Ok(entry), "{printed}");
    let (scheme, rest) = printed.split_once("://").expect("printed with a scheme");
    let (host, port) = rest.rsplit_once(':').expect("printed with a port");
    let scheme = if scheme == "*" { "https" } else { scheme };
    let host = match host.strip_prefix('*') {
        Some("") => "any.example".to_string(),
        Some(suffix) => format!("sub{suffix}"),
        None => host.to_string(),
    };
    let ports: Vec<u16> = match port.split_once("..") {
        _ if port == "*" => vec![1, 443, 65535],
        Some((low, high)) => {
            let low: u16 = low.parse().expect("printed port");
            let high: u32 = high.parse().expect("printed port");
            vec![low, (high - 1) as u16]
        }
        None => vec![port.parse().expect("printed port")],
    };
    for port in ports {
        assert!(
            entry.allows(scheme, &host, port),
            "{printed}: {host}:{port}"
        );
        assert!(entry.allows(scheme, &host.to_ascii_uppercase(), port));
    }
}

pub fn outbound_hosts(data: &[u8]) {
    let text = text(data);
    let lines: Vec<&str> = text.lines().take(32).collect();
    let any = OriginPattern::parse_list("https://*:*, http://*:*").expect("valid");
    for (i, line) in lines.iter().enumerate() {
        let entry = AllowedHost::parse(line);
        if let Ok(entry) = &entry {
            entry_round_trip(entry);
        }
        if !line.contains("{{") {
            assert_eq!(AllowedHost::parse_template(line).is_ok(), entry.is_ok());
        }
        let url = lines
            .get(i + 1)
            .copied()
            .unwrap_or("https://crm.example/hook");
        let origin = Origin::of_url(url);
        if let Ok(origin) = &origin {
            assert!(!origin.host.is_empty() && origin.port > 0);
            assert_eq!(origin.host, origin.host.to_ascii_lowercase());
            assert!(matches!(origin.scheme.as_str(), "http" | "https"));
            assert!(
                !origin
                    .host
                    .trim_end_matches('.')
                    .ends_with(".spin.internal")
            );
        }
        assert_eq!(check_url(url, &any).is_ok(), origin.is_ok(), "{url}");
        // One entry, as both read it (the webhook list also splits at commas and trims).
        let single = !line.contains(',') && line.trim() == *line;
        if let (true, Ok(patterns), Ok(entry), Ok(origin)) =
            (single, OriginPattern::parse_list(line), &entry, &origin)
        {
            // Same syntax: both parsers must agree on what it allows.
            if let [pattern] = patterns.as_slice() {
                assert_eq!(
                    pattern.allows(origin),
                    entry.allows(&origin.scheme, &origin.host, origin.port),
                    "{line:?} on {url:?}"
                );
                let checked = check_url(url, &patterns);
                assert_eq!(checked.is_ok(), pattern.allows(origin));
            }
        }
    }
}
