//! The web client (`web` component): its files over HTTP (types, validators, `HEAD`,
//! the API's 404 and 405), and the browser scenario of `tests/browser/chat.spec.mjs`
//! — two users in headless Chromium against a gateway started here.
//!
//! The scenario needs Debian's Chromium (`/usr/bin/chromium`, or `COURIER_BROWSER`) and
//! Node.js with npm (`tests/browser/ci.sh` installs what is missing). Without them the
//! test prints `SKIPPED: ...` and passes, unless `COURIER_REQUIRE_BROWSER=1` (CI), when
//! it fails. Screenshots go to `target/browser-artifacts/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::client::{Api, JWT_SECRET};
use crate::harness::{call, get, root};

#[test]
fn web_client_files_are_served_with_their_types_and_validators() {
    let api = Api::start();
    let page = get(&api.url("/"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body
            .contains(r#"<script type="module" src="/web/app.js">"#)
    );
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    for (path, content_type) in [
        ("/web/app.js", "text/javascript; charset=utf-8"),
        ("/web/style.css", "text/css; charset=utf-8"),
        ("/web/icon.svg", "image/svg+xml"),
        ("/web/sw.js", "text/javascript; charset=utf-8"),
    ] {
        let reply = get(&api.url(path));
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        let etag = reply.header("etag").expect("etag").to_string();
        let again = call("GET", &api.url(path), &[("if-none-match", &etag)], None);
        assert_eq!(
            (again.status, again.body.as_str()),
            (304, ""),
            "{path} revalidated"
        );
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        let changed = call("GET", &api.url(path), &[("if-none-match", "\"x\"")], None);
        assert_eq!(changed.status, 200, "{path} with another tag");
        let head = call("HEAD", &api.url(path), &[], None);
        assert_eq!(
            (head.status, head.header("etag"), head.body.as_str()),
            (200, Some(etag.as_str()), ""),
            "HEAD {path}"
        );
    }
    assert_eq!(
        get(&api.url("/web/sw.js")).header("service-worker-allowed"),
        Some("/")
    );
}

#[test]
fn web_client_answers_unknown_files_and_other_methods_in_the_api_shape() {
    let api = Api::start();
    for path in ["/web/nope.js", "/web/", "/web", "/web/app.js/x"] {
        let reply = get(&api.url(path));
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
        assert_eq!(reply.code(), "not_found", "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    for (method, path) in [
        ("POST", "/"),
        ("PUT", "/web/app.js"),
        ("DELETE", "/web/style.css"),
    ] {
        let reply = call(method, &api.url(path), &[], Some(b"{}"));
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.body);
        assert_eq!(reply.code(), "method_not_allowed");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"), "{method} {path}");
    }
}

/// What the browser scenario needs, or why it cannot run.
fn browser_tools() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("COURIER_BROWSER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium, or tests/browser/ci.sh)",
            chromium.display()
        ));
    }
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!("no `{tool}` on PATH"));
        }
    }
    Ok(chromium)
}

/// Writes past the test harness's output capture, so a skip is seen even on success.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn npm_ci(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("run npm ci");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[test]
fn browser_chat_scenario_passes_in_headless_chromium() {
    let required = std::env::var("COURIER_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = match browser_tools() {
        Ok(chromium) => chromium,
        Err(reason) if required => {
            panic!("COURIER_REQUIRE_BROWSER=1 but the browser test cannot run: {reason}")
        }
        Err(reason) => {
            loud(&format!(
                "SKIPPED: browser_chat_scenario_passes_in_headless_chromium: {reason} \
                 (set COURIER_REQUIRE_BROWSER=1 to make this a failure)"
            ));
            return;
        }
    };
    let dir = root().join("tests/browser");
    npm_ci(&dir);
    let api = Api::start();
    // The page follows its stream over Server-Sent Events, then over long-polls (its
    // fallback where a server has no event stream).
    for transport in ["stream", "poll"] {
        let started = std::time::Instant::now();
        let status = Command::new("node")
            .arg(dir.join("chat.spec.mjs"))
            .arg(&api.gw.base)
            .arg(JWT_SECRET)
            .env("COURIER_BROWSER", &chromium)
            .env("COURIER_ARTIFACTS", root().join("target/browser-artifacts"))
            .env("COURIER_WEB_TRANSPORT", transport)
            .status()
            .expect("run node");
        loud(&format!(
            "browser scenario over {transport}: {status} after {:.1} s; screenshots in \
             target/browser-artifacts/",
            started.elapsed().as_secs_f64()
        ));
        assert!(
            status.success(),
            "tests/browser/chat.spec.mjs over {transport} failed ({status}); see its output \
             above and the screenshots in target/browser-artifacts/"
        );
    }
}
