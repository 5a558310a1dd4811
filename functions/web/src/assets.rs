//! The client's files, embedded from `static/` at build time, and the conditional
//! request check. Pure: the handler does the I/O.

/// One file of the client.
#[derive(Debug)]
pub struct Asset {
    /// The request path that serves it.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The bytes, as in `static/`.
    pub body: &'static [u8],
    /// FNV-1a of the bytes, computed at build time: the `ETag`.
    hash: u64,
}

impl Asset {
    /// The strong validator: changes whenever the file does.
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }

    /// An HTML page (it gets the Content-Security-Policy).
    pub fn is_page(&self) -> bool {
        self.content_type.starts_with("text/html")
    }

    /// The service worker (it may control the whole origin, not just `/web/`).
    pub fn is_service_worker(&self) -> bool {
        self.path == SERVICE_WORKER
    }
}

/// What the page may load and connect to: only its own origin. There is no inline
/// script or style, and media of messages are shown as links, never fetched.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; worker-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SERVICE_WORKER: &str = "/web/sw.js";
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// 64-bit FNV-1a; `const` so that every ETag is computed by the compiler.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($path:expr, $file:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../static/", $file)),
            hash: fnv1a(include_bytes!(concat!("../static/", $file))),
        }
    };
}

/// Every file, by request path.
pub static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/web/style.css", "style.css", CSS),
    asset!("/web/icon.svg", "icon.svg", SVG),
    asset!("/web/app.js", "app.js", JS),
    asset!("/web/api.js", "api.js", JS),
    asset!("/web/chat.js", "chat.js", JS),
    asset!("/web/messages.js", "messages.js", JS),
    asset!("/web/outbox.js", "outbox.js", JS),
    asset!("/web/push.js", "push.js", JS),
    asset!("/web/sync.js", "sync.js", JS),
    asset!("/web/token.js", "token.js", JS),
    asset!("/web/dom.js", "dom.js", JS),
    asset!(SERVICE_WORKER, "sw.js", JS),
];

/// The file served at `path`, if any (exact match: no directory listing, no
/// `index.html` aliases, nothing outside the list).
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Whether `If-None-Match` (a list of entity tags, or `*`) names `asset`'s current
/// tag, so the answer is 304. Weak comparison, as RFC 9110 §13.1.2 asks for GET.
pub fn not_modified(asset: &Asset, if_none_match: Option<&str>) -> bool {
    let Some(header) = if_none_match else {
        return false;
    };
    let etag = asset.etag();
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn static_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static")
    }

    #[test]
    fn every_file_of_static_is_served_and_nothing_else() {
        let mut on_disk: Vec<String> = std::fs::read_dir(static_dir())
            .expect("static/")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS
            .iter()
            .map(|a| match a.path {
                "/" => "index.html".to_string(),
                path => path.trim_start_matches("/web/").to_string(),
            })
            .collect();
        served.sort();
        assert_eq!(served, on_disk);
        for asset in ASSETS {
            let file = static_dir().join(if asset.path == "/" {
                "index.html"
            } else {
                asset.path.trim_start_matches("/web/")
            });
            assert_eq!(asset.body, std::fs::read(&file).expect("read").as_slice());
        }
    }

    #[test]
    fn paths_match_exactly() {
        assert_eq!(find("/").map(|a| a.content_type), Some(HTML));
        assert_eq!(find("/web/app.js").map(|a| a.content_type), Some(JS));
        assert_eq!(find("/web/style.css").map(|a| a.content_type), Some(CSS));
        for path in [
            "/web",
            "/web/",
            "/index.html",
            "/web/index.html",
            "/web/../web/app.js",
            "/web/app.js/",
            "/web/APP.JS",
            "/web/nope.js",
        ] {
            assert!(find(path).is_none(), "{path}");
        }
    }

    #[test]
    fn etags_are_quoted_and_differ_between_files() {
        let mut tags: Vec<String> = ASSETS.iter().map(Asset::etag).collect();
        assert!(
            tags.iter()
                .all(|t| t.len() == 18 && t.starts_with('"') && t.ends_with('"'))
        );
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn if_none_match_with_the_current_tag_is_not_modified() {
        let asset = find("/web/app.js").expect("app.js");
        let tag = asset.etag();
        assert!(not_modified(asset, Some(&tag)));
        assert!(not_modified(asset, Some(&format!("W/{tag}"))));
        assert!(not_modified(asset, Some(&format!("\"old\", {tag}"))));
        assert!(not_modified(asset, Some("*")));
        assert!(!not_modified(asset, None));
        assert!(!not_modified(asset, Some("\"old\"")));
        assert!(!not_modified(asset, Some(&tag[1..17])));
    }

    #[test]
    fn only_the_service_worker_may_control_the_origin_and_only_pages_get_the_policy() {
        let workers: Vec<&str> = ASSETS
            .iter()
            .filter(|a| a.is_service_worker())
            .map(|a| a.path)
            .collect();
        assert_eq!(workers, ["/web/sw.js"]);
        let pages: Vec<&str> = ASSETS
            .iter()
            .filter(|a| a.is_page())
            .map(|a| a.path)
            .collect();
        assert_eq!(pages, ["/"]);
    }

    /// The OpenAPI description lists exactly the files served under `/web/`.
    #[test]
    fn the_openapi_description_lists_every_file() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read openapi.json"))
                .expect("openapi.json parses");
        let parameter = &doc["paths"]["/web/{file}"]["parameters"][0];
        assert_eq!(parameter["name"], "file");
        let mut listed: Vec<&str> = parameter["schema"]["enum"]
            .as_array()
            .expect("an enum of files")
            .iter()
            .map(|f| f.as_str().expect("a file name"))
            .collect();
        listed.sort_unstable();
        let mut served: Vec<&str> = ASSETS
            .iter()
            .filter_map(|a| a.path.strip_prefix("/web/"))
            .collect();
        served.sort_unstable();
        assert_eq!(listed, served);
        assert!(doc["paths"]["/"]["get"].is_object());
    }

    /// User text reaches the page only through `textContent` and attributes: no
    /// HTML parsing of strings anywhere in the client.
    #[test]
    fn the_client_never_parses_strings_as_html_or_code() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(asset.body).expect("UTF-8");
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "createContextualFragment",
            ] {
                assert!(!text.contains(sink), "{} uses {sink}", asset.path);
            }
        }
        let page = std::str::from_utf8(find("/").expect("page").body).expect("UTF-8");
        assert!(!page.contains("<script>"), "inline script in the page");
        let handler = page.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(
            handler.is_none(),
            "inline event handler in the page: on{handler:?}"
        );
    }
}
