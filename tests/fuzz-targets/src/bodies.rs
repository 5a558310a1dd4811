//! `request_bodies`: every request body through `parse_request`, the one decoder the
//! components call. The first byte picks the body type (and, with its high bit, tight
//! limits so that they are reached); the rest is the body.
//!
//! Properties: only `bad_request` or `too_large` errors, `too_large` exactly when the
//! body is over its limit or a text/data limit is passed; an accepted body obeys its
//! type's rules (ids unique, owner first, 1–100 receipts, …) and its value serializes
//! to a body that parses back to the same value (validation is idempotent); content
//! survives the store's canonical form.

use courier_core::api::{
    AckRequest, MembersChange, PutGroup, PutRelation, PutUser, PutWebhook, ReceiptsRequest,
    RequestBody, SendRequest, parse_request,
};
use courier_core::content::MAX_CUSTOM_BYTES;
use courier_core::{Config, Content, Error, UserId};
use serde::Serialize;
use serde_json::json;

use crate::bytes::Bytes;

pub fn request_bodies(data: &[u8]) {
    let mut input = Bytes::new(data);
    let selector = input.u8();
    let body = input.rest();
    let config = if selector & 0x80 == 0 {
        Config::default()
    } else {
        Config {
            max_text_bytes: 8,
            max_body_bytes: 256,
            max_directory_body_bytes: 256,
            max_group_members: 3,
            ..Config::default()
        }
    };
    match selector % 8 {
        0 => round_trip::<SendRequest>(body, &config, check_send),
        1 => round_trip::<AckRequest>(body, &config, |_, _| {}),
        2 => round_trip::<ReceiptsRequest>(body, &config, check_receipts),
        3 => round_trip::<PutUser>(body, &config, check_user),
        4 => round_trip::<PutGroup>(body, &config, check_group),
        5 => round_trip::<MembersChange>(body, &config, check_members),
        6 => round_trip::<PutRelation>(body, &config, |_, _| {}),
        _ => webhook(body, &config),
    }
}

/// Parses `body` as `T`; checks the error kinds, the type's rules (`check`) and that
/// the value serializes to a body that parses back to itself.
fn round_trip<T>(body: &[u8], config: &Config, check: fn(&T, &Config))
where
    T: RequestBody + Serialize + PartialEq + std::fmt::Debug,
{
    let Some(value) = parse::<T>(body, config) else {
        return;
    };
    check(&value, config);
    let again = serde_json::to_vec(&value).expect("a parsed body serializes");
    // Serializing may add defaults (`priority`), so the limit is the value's own rules.
    let roomy = Config {
        max_body_bytes: usize::MAX,
        max_directory_body_bytes: usize::MAX,
        ..config.clone()
    };
    match parse_request::<T>(&again, &roomy) {
        Ok(reparsed) => assert_eq!(reparsed, value, "re-parsing {}", lossy(&again)),
        Err(e) => panic!("{value:?} serialized to a refused body: {e:?}"),
    }
}

/// `parse_request` with the error-kind properties; `Some` when accepted.
fn parse<T: RequestBody>(body: &[u8], config: &Config) -> Option<T> {
    let max = T::max_body_bytes(config);
    match parse_request::<T>(body, config) {
        Ok(value) => {
            assert!(body.len() <= max, "a body over {max} bytes was accepted");
            assert!(std::str::from_utf8(body).is_ok(), "non-UTF-8 accepted");
            Some(value)
        }
        Err(Error::TooLarge(_)) if body.len() > max => None,
        Err(Error::TooLarge(m)) => {
            // Within the body limit only content may be too large.
            assert!(m.starts_with("content."), "too_large for {m:?}");
            None
        }
        Err(Error::BadRequest(_)) => {
            assert!(body.len() <= max, "over-limit body must be too_large");
            None
        }
        Err(other) => panic!("request body gave {other:?}"),
    }
}

fn check_send(request: &SendRequest, config: &Config) {
    check_content(&request.content, config);
    // The conversation of any sender prints a text that sender parses back.
    let sender = UserId::parse("fuzz:sender").expect("valid");
    let conv = request.to.conv(&sender);
    let parsed = courier_core::ConvId::parse_for(conv.as_str(), &sender);
    assert_eq!(parsed.as_ref(), Ok(&conv), "{}", conv.as_str());
}

/// Content is stored as its canonical JSON and read back with `from_stored`.
fn check_content(content: &Content, config: &Config) {
    assert!(content.validate(config.max_text_bytes).is_ok());
    match content {
        Content::Text { text } => assert!(!text.is_empty() && text.len() <= config.max_text_bytes),
        Content::Custom { data } => {
            let size = serde_json::to_string(data).map(|s| s.len());
            assert!(size.is_ok_and(|n| n <= MAX_CUSTOM_BYTES));
        }
        Content::Image(media) | Content::File(media) => {
            let url = media.url.as_bytes();
            let has = |scheme: &str| {
                url.len() > scheme.len()
                    && url[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
            };
            assert!(has("http://") || has("https://"), "{}", media.url);
            assert!(media.size.is_none_or(|s| s >= 0));
        }
    }
    let canonical = content.canonical_json();
    let stored = Content::from_stored(&canonical).expect("canonical content reads back");
    assert_eq!(
        stored.canonical_json(),
        canonical,
        "the canonical form is stable"
    );
    assert_eq!(&stored, content, "stored content reads back equal");
}

fn check_receipts(request: &ReceiptsRequest, _config: &Config) {
    let ids = &request.msg_ids;
    assert!((1..=courier_core::api::MAX_RECEIPT_IDS).contains(&ids.len()));
    assert!(unique(ids), "receipt ids repeat");
}

fn check_user(user: &PutUser, _config: &Config) {
    assert!(user.name.len() <= courier_core::api::MAX_DISPLAY_NAME_BYTES);
}

fn check_group(group: &PutGroup, config: &Config) {
    assert!(group.name.len() <= courier_core::api::MAX_DISPLAY_NAME_BYTES);
    assert_eq!(group.members.first(), Some(&group.owner), "owner first");
    assert!(unique(&group.members), "members repeat");
    assert!(group.members.len() <= config.max_group_members);
}

fn check_members(change: &MembersChange, config: &Config) {
    assert!(!(change.add.is_empty() && change.remove.is_empty()));
    assert!(unique(&change.add) && unique(&change.remove));
    assert!(!change.add.iter().any(|u| change.remove.contains(u)));
    assert!(change.add.len() <= config.max_group_members);
}

/// `PutWebhook` has no `Serialize` (its secret is never shown): rebuilt by hand.
fn webhook(body: &[u8], config: &Config) {
    let Some(hook) = parse::<PutWebhook>(body, config) else {
        return;
    };
    assert!(!hook.events.is_empty() && unique(&hook.events));
    assert!((16..=256).contains(&hook.secret.len()));
    let origin = courier_core::api::Origin::of_url(&hook.url).expect("an accepted url");
    assert!(matches!(origin.scheme.as_str(), "http" | "https") && origin.port > 0);
    let again = json!({
        "org": hook.org, "url": hook.url, "secret": hook.secret,
        "events": hook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
    })
    .to_string();
    let roomy = Config {
        max_body_bytes: usize::MAX,
        ..config.clone()
    };
    let reparsed = parse_request::<PutWebhook>(again.as_bytes(), &roomy);
    assert_eq!(reparsed, Ok(hook));
}

fn unique<T: Ord>(items: &[T]) -> bool {
    let set: std::collections::BTreeSet<&T> = items.iter().collect();
    set.len() == items.len()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
