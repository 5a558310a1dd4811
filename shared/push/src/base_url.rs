//! Vendor base URLs from configuration (`https://api.push.apple.com`, or a local fake's
//! `http://127.0.0.1:port` in tests): scheme, host and optional port, no path.

use http::Uri;

use crate::Error;

/// Checks `text` as a base URL and returns it without a trailing `/`. `what` names the
/// setting in the error.
pub(crate) fn check_base_url(text: &str, what: &str) -> Result<String, Error> {
    let bad = || Error::Config(format!("{what} must be an http(s)://host[:port] URL"));
    let trimmed = text.trim().trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https" | "http"));
    let host_ok = uri
        .authority()
        .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'));
    let bare = uri
        .path_and_query()
        .is_none_or(|p| p.as_str() == "/" || p.as_str().is_empty());
    if scheme_ok && host_ok && bare {
        Ok(trimmed.to_string())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_lose_their_trailing_slash() {
        for (text, base) in [
            ("https://api.push.apple.com", "https://api.push.apple.com"),
            ("https://fcm.googleapis.com/", "https://fcm.googleapis.com"),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ] {
            assert_eq!(check_base_url(text, "base").expect("valid"), base);
        }
    }

    #[test]
    fn paths_other_schemes_and_user_info_are_refused() {
        for text in [
            "",
            "api.push.apple.com",
            "ftp://x.example",
            "https://x.example/v1",
            "https://x.example?q=1",
            "https://u@x.example",
        ] {
            assert!(
                matches!(check_base_url(text, "base"), Err(Error::Config(_))),
                "{text:?}"
            );
        }
    }
}
