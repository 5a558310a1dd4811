//! `ids`: the id rule and everything built on it. The input is text: its first line is
//! the id or conversation id under test, the second a caller (for
//! `ConvId::parse_for`); the whole text is also tried as each query string and as an
//! `Authorization` header.
//!
//! Properties: every id type accepts exactly the texts of API.md's rule (checked
//! against an independent statement of it) and round-trips through JSON; a seq parses
//! exactly the digit strings up to `i64::MAX`; a conversation id that parses prints
//! the same text and names users that print it again, and the caller is one of them;
//! query values stay in their documented ranges; a bearer token has no blanks.

use courier_core::api::{HistoryQuery, SyncQuery, WebhooksQuery};
use courier_core::auth::bearer_token;
use courier_core::{ClientMsgId, ConvId, DeviceId, GroupId, MsgId, OrgId, Seq, UserId, WebhookId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bytes::{Bytes, text};

pub fn ids(data: &[u8]) {
    let whole = text(data);
    let mut input = Bytes::new(data);
    let first = text(input.line());
    let second = text(input.line());

    for candidate in [&first, &whole] {
        id_rule::<UserId>(candidate, UserId::parse, UserId::as_str);
        id_rule::<GroupId>(candidate, GroupId::parse, GroupId::as_str);
        id_rule::<MsgId>(candidate, MsgId::parse, MsgId::as_str);
        id_rule::<ClientMsgId>(candidate, ClientMsgId::parse, ClientMsgId::as_str);
        id_rule::<DeviceId>(candidate, DeviceId::parse, DeviceId::as_str);
        id_rule::<OrgId>(candidate, OrgId::parse, OrgId::as_str);
        id_rule::<WebhookId>(candidate, WebhookId::parse, WebhookId::as_str);
        seq(candidate);
        conv(candidate, &second);
        queries(candidate);
        bearer(candidate);
    }
    generated_msg_id(data);
}

/// API.md's id rule, stated independently of the code under test.
fn obeys_rule(s: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
    !s.is_empty() && s.chars().count() <= 64 && s.chars().all(allowed)
}

fn id_rule<T>(s: &str, parse: fn(&str) -> Result<T, courier_core::Error>, as_str: fn(&T) -> &str)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let parsed = parse(s);
    assert_eq!(parsed.is_ok(), obeys_rule(s), "{s:?}: {parsed:?}");
    // Deserializing validates the same way.
    let quoted = serde_json::to_string(s).expect("a string serializes");
    let from_json = serde_json::from_str::<T>(&quoted);
    assert_eq!(from_json.is_ok(), parsed.is_ok(), "{quoted}");
    match parsed {
        Ok(id) => {
            assert_eq!(as_str(&id), s);
            let json = serde_json::to_string(&id).expect("an id serializes");
            assert_eq!(json, quoted);
            assert_eq!(from_json.ok(), Some(id));
        }
        Err(e) => {
            assert_eq!(e.code(), "bad_request");
            // The refused text is never echoed back: the message is the same for all.
            let fixed = parse("").map(|_| ()).map_err(|e| e.public_message());
            assert_eq!(Err(e.public_message()), fixed, "{s:?}");
        }
    }
}

fn seq(s: &str) {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let significant = s.trim_start_matches('0');
    let fits = digits
        && significant.len() <= 19
        && significant.parse::<u64>().unwrap_or(0) <= i64::MAX as u64;
    match Seq::parse(s) {
        Ok(seq) => {
            assert!(fits, "{s:?} parsed as {seq}");
            assert!(seq.get() >= 0);
            assert_eq!(Seq::parse(&seq.to_string()), Ok(seq));
            let canonical = if significant.is_empty() {
                "0"
            } else {
                significant
            };
            assert_eq!(seq.to_string(), canonical);
        }
        Err(e) => {
            assert!(!fits, "{s:?} refused: {e:?}");
            assert_eq!(e.code(), "bad_request");
        }
    }
}

fn conv(s: &str, caller: &str) {
    let parsed = ConvId::parse(s);
    if let Ok(conv) = &parsed {
        printed_by_its_parties(conv, s);
        // The server's own reading agrees.
        assert_eq!(ConvId::read_back(s).as_ref(), Ok(conv));
        let json = serde_json::to_string(conv).expect("serializes");
        assert_eq!(
            serde_json::from_str::<ConvId>(&json).ok().as_ref(),
            Some(conv)
        );
    }
    if let Ok(conv) = ConvId::read_back(s) {
        assert_eq!(conv.as_str(), s);
        match conv.direct_users() {
            Some((a, b)) => assert_eq!(ConvId::direct(a, b).as_str(), s),
            None => assert!(conv.group_id().is_some()),
        }
    } else {
        assert!(
            parsed.is_err(),
            "parse accepts what read_back refuses: {s:?}"
        );
    }
    let Ok(caller) = UserId::parse(caller) else {
        return;
    };
    if let Ok(conv) = ConvId::parse_for(s, &caller) {
        printed_by_its_parties(&conv, s);
        if let Some((a, b)) = conv.direct_users() {
            assert!(a == &caller || b == &caller, "{s:?} is not {caller}'s");
            assert!(conv.peer_of(&caller).is_some());
        }
        // An unambiguous text means the same for everyone.
        if let Ok(plain) = &parsed {
            assert_eq!(plain, &conv);
        }
    }
}

/// A parsed conversation prints `s`, and so does building it from its parties.
fn printed_by_its_parties(conv: &ConvId, s: &str) {
    assert_eq!(conv.as_str(), s);
    match (conv.direct_users(), conv.group_id()) {
        (Some((a, b)), None) => {
            assert!(a <= b, "parties sorted");
            assert_eq!(&ConvId::direct(b, a), conv);
        }
        (None, Some(gid)) => assert_eq!(&ConvId::group(gid), conv),
        other => panic!("a conversation is direct or a group: {other:?}"),
    }
}

fn queries(s: &str) {
    if let Ok(q) = SyncQuery::parse(s) {
        assert!((1..=SyncQuery::MAX_LIMIT).contains(&q.limit));
        assert!(q.wait_secs <= SyncQuery::MAX_WAIT_SECS);
        let again = format!("after={}&limit={}&wait={}", q.after, q.limit, q.wait_secs);
        assert_eq!(SyncQuery::parse(&again), Ok(q));
    }
    if let Ok(q) = HistoryQuery::parse(s) {
        assert!((1..=HistoryQuery::MAX_LIMIT).contains(&q.limit));
    }
    match WebhooksQuery::parse(s) {
        Ok(q) => {
            if let Some(org) = q.org {
                assert!(obeys_rule(org.as_str()));
            }
        }
        Err(e) => assert_eq!(e.code(), "bad_request"),
    }
}

fn bearer(s: &str) {
    match bearer_token(Some(s)) {
        Ok(token) => {
            assert!(!token.is_empty() && !token.contains(char::is_whitespace));
            let scheme = s.trim_start().get(..6).unwrap_or_default();
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{s:?}");
            assert!(s.contains(token));
        }
        Err(e) => assert_eq!(e.code(), "unauthorized"),
    }
}

fn generated_msg_id(data: &[u8]) {
    let mut input = Bytes::new(data);
    let now = i64::from(input.u32()) * 1000 + i64::from(input.u16());
    let random = u64::from(input.u32()) << 32 | u64::from(input.u32());
    let id = MsgId::generate(now, random);
    assert!(obeys_rule(id.as_str()));
    assert_eq!(id.as_str().len(), 30);
    let later = MsgId::generate(now + 1, 0);
    assert!(id < later, "ids sort by time");
}
