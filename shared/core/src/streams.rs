//! Rules of reading a stream: sync pages and their events. (The ack rule is the
//! store's monotonic upsert, `courier_store::devices::ack`; presence is the push
//! policy's `presence_ttl_ms` in `courier_store::push`.)
//!
//! Streams are dense: seqs `trimmed + 1 ..= head` (a recall erases content but keeps
//! the entry; retention purges only a stream's oldest entries, and records how far in
//! `trimmed`), which is what lets `more` be computed from `head` alone.

use crate::api::{Entry, SyncResponse};
use crate::error::Error;
use crate::ids::Seq;

/// A seq a client sends (`after`, an ack) may not pass the stream's head: that client
/// holds state from another stream (e.g. a reset store) and must start over.
pub fn check_within_head(field: &str, seq: Seq, head: Seq) -> Result<(), Error> {
    if seq > head {
        Err(Error::BadRequest(format!(
            "{field} {seq} is beyond the stream head {head}"
        )))
    } else {
        Ok(())
    }
}

/// The sync answer for `entries` (ascending, all `> after`, as many as the store read
/// up to `limit`) of a stream whose entries up to `trimmed` were purged. `next` is the
/// last entry's seq or, when there is none, `after` (or `trimmed`, if `after` points
/// into purged history, which the answer then names in `trimmed_before`).
/// `after > head` is a bad request.
pub fn sync_page(
    after: Seq,
    head: Seq,
    trimmed: Seq,
    entries: Vec<Entry>,
) -> Result<SyncResponse, Error> {
    check_within_head("after", after, head)?;
    let trimmed_before = (after < trimmed).then_some(trimmed);
    let next = entries.last().map_or(after.max(trimmed), |entry| entry.seq);
    Ok(SyncResponse {
        more: next < head,
        next,
        head,
        entries,
        trimmed_before,
    })
}

/// A page of `GET /v1/stream` as Server-Sent Events: the purged gap first (`event:
/// trimmed`, its id the seq the client now holds from), then one `event: entry` per
/// entry with the seq as its `id`, so that an event source's `Last-Event-ID` is the
/// cursor. Entry JSON is written compact, so it never holds a line break.
pub fn sse_events(page: &SyncResponse) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(trimmed) = page.trimmed_before {
        let _ = write!(
            out,
            "id: {trimmed}\nevent: trimmed\ndata: {{\"trimmed_before\":{trimmed}}}\n\n"
        );
    }
    for entry in &page.entries {
        let data = serde_json::to_string(entry).unwrap_or_else(|_| "null".into());
        let _ = write!(out, "id: {}\nevent: entry\ndata: {data}\n\n", entry.seq);
    }
    out
}

/// The heartbeat of an idle event stream (an SSE comment line).
pub const SSE_PING: &str = ": ping\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::EntryBody;

    fn seq(n: i64) -> Seq {
        Seq::new(n).expect("valid")
    }

    fn entries(seqs: &[i64]) -> Vec<Entry> {
        seqs.iter()
            .map(|&n| Entry {
                seq: seq(n),
                body: EntryBody::Read { msg_ids: vec![] },
            })
            .collect()
    }

    #[test]
    fn sync_page_points_next_at_the_last_entry_and_reports_more() {
        let page = sync_page(seq(4), seq(10), Seq::ZERO, entries(&[5, 6, 7])).expect("valid");
        assert_eq!((page.next, page.head, page.more), (seq(7), seq(10), true));
        let last = sync_page(seq(7), seq(10), Seq::ZERO, entries(&[8, 9, 10])).expect("valid");
        assert_eq!((last.next, last.more), (seq(10), false));
    }

    #[test]
    fn empty_sync_page_keeps_next_at_after() {
        let page = sync_page(seq(10), seq(10), Seq::ZERO, vec![]).expect("valid");
        assert_eq!((page.next, page.more), (seq(10), false));
        let fresh = sync_page(Seq::ZERO, Seq::ZERO, Seq::ZERO, vec![]).expect("valid");
        assert_eq!(
            (fresh.next, fresh.head, fresh.more),
            (Seq::ZERO, Seq::ZERO, false)
        );
    }

    #[test]
    fn sync_from_purged_history_names_the_trim_and_starts_above_it() {
        let page = sync_page(seq(3), seq(20), seq(10), entries(&[11, 12])).expect("valid");
        assert_eq!(page.trimmed_before, Some(seq(10)));
        assert_eq!((page.next, page.more), (seq(12), true));
        // Everything purged: `next` moves past the trim, so the client cannot loop.
        let gone = sync_page(Seq::ZERO, seq(10), seq(10), vec![]).expect("valid");
        assert_eq!(
            (gone.trimmed_before, gone.next, gone.more),
            (Some(seq(10)), seq(10), false)
        );
        // A cursor at or past the trim saw nothing purged.
        let fine = sync_page(seq(10), seq(20), seq(10), entries(&[11])).expect("valid");
        assert_eq!(fine.trimmed_before, None);
        assert!(
            !serde_json::to_string(&fine)
                .expect("serializes")
                .contains("trimmed_before")
        );
    }

    #[test]
    fn sync_after_beyond_head_is_a_bad_request() {
        assert_eq!(
            sync_page(seq(11), seq(10), Seq::ZERO, vec![]).map_err(|e| e.code()),
            Err("bad_request")
        );
    }

    #[test]
    fn sse_events_name_each_entry_by_its_seq_after_the_trimmed_gap() {
        let page = sync_page(seq(1), seq(12), seq(10), entries(&[11, 12])).expect("valid");
        let text = sse_events(&page);
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "{text}");
        assert_eq!(
            events[0],
            "id: 10\nevent: trimmed\ndata: {\"trimmed_before\":10}"
        );
        assert!(
            events[1].starts_with("id: 11\nevent: entry\ndata: {"),
            "{text}"
        );
        let data: serde_json::Value =
            serde_json::from_str(events[2].split("data: ").nth(1).unwrap()).unwrap();
        assert_eq!(
            (data["seq"].as_i64(), data["kind"].as_str()),
            (Some(12), Some("read"))
        );
        let idle = sync_page(seq(12), seq(12), Seq::ZERO, vec![]).expect("valid");
        assert_eq!(sse_events(&idle), "");
    }
}
