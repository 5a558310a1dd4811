//! Query strings of `GET /v1/sync`, `GET /v1/stream` and
//! `GET /v1/conversations/{conv}/messages`.
//!
//! Values are plain decimal integers, so no percent-decoding is done: an encoded digit
//! (`%31`) is a bad request like any other non-digit. Unknown keys are ignored (clients
//! add cache busters); a known key given twice or with a value out of range is a bad
//! request.

use crate::error::Error;
use crate::ids::Seq;

/// `GET /v1/sync?after=<seq>&limit=<n>&wait=<s>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncQuery {
    /// Entries with `seq > after`; default 0.
    pub after: Seq,
    /// 1–500, default 100.
    pub limit: u32,
    /// Long-poll seconds, 0–30, default 0.
    pub wait_secs: u32,
}

impl SyncQuery {
    /// Largest `limit`.
    pub const MAX_LIMIT: u32 = 500;
    /// Largest `wait`, in seconds.
    pub const MAX_WAIT_SECS: u32 = 30;

    /// Parses the query string (without `?`; empty for none).
    pub fn parse(query: &str) -> Result<SyncQuery, Error> {
        let mut parsed = SyncQuery {
            after: Seq::ZERO,
            limit: 100,
            wait_secs: 0,
        };
        let mut seen = Seen::default();
        for (key, value) in pairs(query) {
            match key {
                "after" => {
                    seen.first("after")?;
                    parsed.after = after(value)?;
                }
                "limit" => {
                    seen.first("limit")?;
                    parsed.limit = bounded("limit", value, 1, Self::MAX_LIMIT)?;
                }
                "wait" => {
                    seen.first("wait")?;
                    parsed.wait_secs = bounded("wait", value, 0, Self::MAX_WAIT_SECS)?;
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// The `after` of a sync or a stream.
fn after(value: &str) -> Result<Seq, Error> {
    Seq::parse(value).map_err(|_| Error::BadRequest("after must be a non-negative integer".into()))
}

/// `GET /v1/stream?after=<seq>&wait=<s>`, with the `Last-Event-ID` header of a
/// reconnecting event source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamQuery {
    /// Events for entries with `seq > after`; default 0.
    pub after: Seq,
    /// Seconds to keep the stream open after the backlog, 0–30, default 30 (the
    /// server ends it by 29.5 s, inside the platform's request limit).
    pub wait_secs: u32,
}

impl StreamQuery {
    /// Parses the query string (without `?`; empty for none) and the `Last-Event-ID`
    /// header, which overrides `after` when present (an event source sends it on
    /// reconnect, holding the id of the last event it saw).
    pub fn parse(query: &str, last_event_id: Option<&str>) -> Result<StreamQuery, Error> {
        let mut parsed = StreamQuery {
            after: Seq::ZERO,
            wait_secs: SyncQuery::MAX_WAIT_SECS,
        };
        let mut seen = Seen::default();
        for (key, value) in pairs(query) {
            match key {
                "after" => {
                    seen.first("after")?;
                    parsed.after = after(value)?;
                }
                "wait" => {
                    seen.first("wait")?;
                    parsed.wait_secs = bounded("wait", value, 0, SyncQuery::MAX_WAIT_SECS)?;
                }
                _ => {}
            }
        }
        if let Some(id) = last_event_id {
            parsed.after = Seq::parse(id.trim()).map_err(|_| {
                Error::BadRequest("Last-Event-ID must be a non-negative integer".into())
            })?;
        }
        Ok(parsed)
    }
}

/// `GET /v1/conversations/{conv}/messages?before=<seq>&limit=<n>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Entries with `seq < before`; `None`: from the head.
    pub before: Option<Seq>,
    /// 1–100, default 50.
    pub limit: u32,
}

impl HistoryQuery {
    /// Largest `limit`.
    pub const MAX_LIMIT: u32 = 100;

    /// Parses the query string (without `?`; empty for none).
    pub fn parse(query: &str) -> Result<HistoryQuery, Error> {
        let mut parsed = HistoryQuery {
            before: None,
            limit: 50,
        };
        let mut seen = Seen::default();
        for (key, value) in pairs(query) {
            match key {
                "before" => {
                    seen.first("before")?;
                    parsed.before = Some(Seq::parse(value).map_err(|_| {
                        Error::BadRequest("before must be a non-negative integer".into())
                    })?);
                }
                "limit" => {
                    seen.first("limit")?;
                    parsed.limit = bounded("limit", value, 1, Self::MAX_LIMIT)?;
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// `key=value` pairs; a key without `=` has an empty value; empty segments are skipped.
pub(super) fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .strip_prefix('?')
        .unwrap_or(query)
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// The known keys met so far, to reject repeats.
#[derive(Default)]
pub(super) struct Seen(Vec<&'static str>);

impl Seen {
    pub(super) fn first(&mut self, key: &'static str) -> Result<(), Error> {
        if self.0.contains(&key) {
            return Err(Error::BadRequest(format!("{key} is given more than once")));
        }
        self.0.push(key);
        Ok(())
    }
}

fn bounded(key: &str, value: &str, min: u32, max: u32) -> Result<u32, Error> {
    let out_of_range =
        || Error::BadRequest(format!("{key} must be an integer from {min} to {max}"));
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(out_of_range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(result: Result<T, Error>) -> &'static str {
        result.map(|_| "ok").unwrap_or_else(|e| e.code())
    }

    #[test]
    fn sync_query_defaults_when_empty() {
        let query = SyncQuery::parse("").expect("valid");
        assert_eq!(
            query,
            SyncQuery {
                after: Seq::ZERO,
                limit: 100,
                wait_secs: 0
            }
        );
    }

    #[test]
    fn sync_query_reads_all_three_values() {
        let query = SyncQuery::parse("?after=42&limit=500&wait=30").expect("valid");
        assert_eq!(
            (query.after.get(), query.limit, query.wait_secs),
            (42, 500, 30)
        );
    }

    #[test]
    fn sync_query_rejects_values_out_of_range_or_not_integers() {
        for bad in [
            "limit=0",
            "limit=501",
            "wait=31",
            "after=-1",
            "after=x",
            "limit=",
            "after",
            "wait=1.5",
            "limit=%31",
            "after=99999999999999999999",
            "limit=99999999999",
        ] {
            assert_eq!(code(SyncQuery::parse(bad)), "bad_request", "{bad}");
        }
    }

    #[test]
    fn sync_query_ignores_unknown_keys_and_empty_segments() {
        let query = SyncQuery::parse("_=123&&after=1&foo").expect("valid");
        assert_eq!(query.after.get(), 1);
    }

    #[test]
    fn repeated_known_keys_are_a_bad_request() {
        assert_eq!(code(SyncQuery::parse("after=1&after=2")), "bad_request");
        assert_eq!(code(HistoryQuery::parse("limit=1&limit=2")), "bad_request");
    }

    #[test]
    fn history_query_defaults_to_the_head_and_fifty() {
        assert_eq!(
            HistoryQuery::parse("").expect("valid"),
            HistoryQuery {
                before: None,
                limit: 50
            }
        );
    }

    #[test]
    fn history_query_limit_is_one_to_a_hundred() {
        let query = HistoryQuery::parse("before=7&limit=100").expect("valid");
        assert_eq!((query.before.map(Seq::get), query.limit), (Some(7), 100));
        assert_eq!(code(HistoryQuery::parse("limit=101")), "bad_request");
        assert_eq!(code(HistoryQuery::parse("limit=0")), "bad_request");
        assert_eq!(code(HistoryQuery::parse("before=-3")), "bad_request");
    }

    #[test]
    fn stream_query_takes_after_and_wait_and_lets_last_event_id_override_after() {
        let parse = StreamQuery::parse;
        assert_eq!(parse("", None).unwrap().after, Seq::ZERO);
        assert_eq!(parse("after=7&x=1", None).unwrap().after.get(), 7);
        assert_eq!(parse("after=7", Some("9")).unwrap().after.get(), 9);
        assert_eq!(parse("", Some(" 3 ")).unwrap().after.get(), 3);
        assert_eq!(code(parse("after=-1", None)), "bad_request");
        assert_eq!(code(parse("after=1&after=2", None)), "bad_request");
        assert_eq!(code(parse("after=1", Some("x"))), "bad_request");
        assert_eq!(parse("", None).unwrap().wait_secs, 30);
        assert_eq!(parse("wait=0", None).unwrap().wait_secs, 0);
        assert_eq!(code(parse("wait=31", None)), "bad_request");
        assert_eq!(code(parse("wait=1&wait=2", None)), "bad_request");
    }
}
