//! [`ConvId`]: the conversation a message belongs to.
//!
//! `dm:<a>:<b>` for two users (sorted, so both sides name it the same) and `g:<gid>` for a
//! group. User ids may themselves contain `:`, so a `dm:` text has several places to
//! split; parsing tries every `:` and keeps the splits whose halves are valid user ids in
//! sorted order. Rarely more than one split qualifies, because the format of API.md is not
//! injective: `dm:x:x:y:z` is both `x` with `x:y:z` and `x:x` with `y:z`.
//! [`ConvId::parse`] rejects such a text as ambiguous; [`ConvId::parse_for`] keeps only
//! the splits that include the caller, which settles almost every case (not all:
//! `dm:a:b:a:b:a` is `a:b:a` with `a:b` and with `b:a`; then it is rejected too). Parsing
//! never returns a pair other than the one that printed the text. [`ConvId::read_back`]
//! and deserializing, which read texts the server printed (stored rows, answers), never
//! refuse one: any pair of such a text prints it. A store that keys direct conversations
//! by their text must know the same text may, for such ids, name two conversations;
//! keying by the user pair avoids it.

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GroupId, UserId};
use crate::error::Error;

const DIRECT_PREFIX: &str = "dm:";
const GROUP_PREFIX: &str = "g:";

/// A conversation: between two users (possibly the same one: "note to self") or in a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConvId {
    text: String,
    parties: Parties,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Parties {
    /// Sorted: `.0 <= .1`.
    Direct(UserId, UserId),
    Group(GroupId),
}

impl ConvId {
    /// The conversation of `a` and `b`, in whichever order they are given.
    pub fn direct(a: &UserId, b: &UserId) -> ConvId {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        ConvId {
            text: format!("{DIRECT_PREFIX}{low}:{high}"),
            parties: Parties::Direct(low.clone(), high.clone()),
        }
    }

    /// The conversation of a group.
    pub fn group(gid: &GroupId) -> ConvId {
        ConvId {
            text: format!("{GROUP_PREFIX}{gid}"),
            parties: Parties::Group(gid.clone()),
        }
    }

    /// Parses `dm:<a>:<b>` (valid ids, `a <= b`) or `g:<gid>`. A `dm:` text that splits
    /// into more than one sorted pair of valid ids is rejected as ambiguous; use
    /// [`ConvId::parse_for`] where the caller is known.
    pub fn parse(s: &str) -> Result<ConvId, Error> {
        if let Some(gid) = s.strip_prefix(GROUP_PREFIX) {
            return GroupId::parse(gid)
                .map(|gid| ConvId::group(&gid))
                .map_err(|_| invalid());
        }
        let mut splits = direct_splits(s)?;
        match (splits.next(), splits.next()) {
            (Some((a, b)), None) => Ok(ConvId::direct(&a, &b)),
            (Some(_), Some(_)) => Err(Error::BadRequest(
                "ambiguous conversation id: it names more than one pair of users".into(),
            )),
            (None, _) => Err(invalid()),
        }
    }

    /// Parses like [`ConvId::parse`], but resolves a `dm:` text with the user asking:
    /// only a split that has `caller` as one of its two users is kept. A `g:` text is
    /// parsed as is (membership is the store's question). A `dm:` text that does not
    /// include `caller` is forbidden (403, "not a member", as API.md says; it tells
    /// nothing about whether the conversation exists).
    pub fn parse_for(s: &str, caller: &UserId) -> Result<ConvId, Error> {
        if s.starts_with(GROUP_PREFIX) {
            return ConvId::parse(s);
        }
        let mut mine = direct_splits(s)?.filter(|(a, b)| a == caller || b == caller);
        match (mine.next(), mine.next()) {
            (Some((a, b)), None) => Ok(ConvId::direct(&a, &b)),
            // Unreachable for valid ids (see the module doc), kept as a safe answer.
            (Some(_), Some(_)) => Err(Error::BadRequest("ambiguous conversation id".into())),
            (None, _) => Err(Error::Forbidden("not a conversation of the caller".into())),
        }
    }

    /// Reads back a text the server printed (a stored row, an answer): like
    /// [`ConvId::parse`], but a `dm:` text that names more than one pair of users is not
    /// refused, since [`ConvId::direct`] printed it: every such pair prints the same text,
    /// and the text is what answers and the store use. The pair kept is the first (split
    /// at the earliest `:` that gives two valid ids in order), so [`ConvId::direct_users`]
    /// of such an id may name the other pair. A client's text goes through
    /// [`ConvId::parse_for`] instead.
    pub fn read_back(s: &str) -> Result<ConvId, Error> {
        if s.starts_with(GROUP_PREFIX) {
            return ConvId::parse(s);
        }
        direct_splits(s)?
            .next()
            .map(|(a, b)| ConvId::direct(&a, &b))
            .ok_or_else(invalid)
    }

    /// The text form (`dm:a:b` / `g:gid`), for JSON and SQL.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The two users of a direct conversation, sorted; `None` for a group.
    pub fn direct_users(&self) -> Option<(&UserId, &UserId)> {
        match &self.parties {
            Parties::Direct(a, b) => Some((a, b)),
            Parties::Group(_) => None,
        }
    }

    /// The group of a group conversation; `None` for a direct one.
    pub fn group_id(&self) -> Option<&GroupId> {
        match &self.parties {
            Parties::Group(gid) => Some(gid),
            Parties::Direct(..) => None,
        }
    }

    /// In a direct conversation that includes `me`, the other user (`me` itself in a
    /// note-to-self conversation); otherwise `None`.
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        match &self.parties {
            Parties::Direct(a, b) if a == me => Some(b),
            Parties::Direct(a, b) if b == me => Some(a),
            _ => None,
        }
    }
}

fn invalid() -> Error {
    Error::BadRequest("invalid conversation id: expected dm:<uid>:<uid> or g:<gid>".into())
}

/// Every way to read `s` as `dm:<a>:<b>` with valid ids and `a <= b`.
fn direct_splits(s: &str) -> Result<impl Iterator<Item = (UserId, UserId)> + '_, Error> {
    let rest = s.strip_prefix(DIRECT_PREFIX).ok_or_else(invalid)?;
    Ok(rest.match_indices(':').filter_map(move |(i, _)| {
        let a = UserId::parse(&rest[..i]).ok()?;
        let b = UserId::parse(&rest[i + 1..]).ok()?;
        (a <= b).then_some((a, b))
    }))
}

impl FromStr for ConvId {
    type Err = Error;

    fn from_str(s: &str) -> Result<ConvId, Error> {
        ConvId::parse(s)
    }
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for ConvId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl Serialize for ConvId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

/// JSON holds texts the server printed (stored entries, answers), read with
/// [`ConvId::read_back`]; no request body carries a conversation id.
impl<'de> Deserialize<'de> for ConvId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ConvId, D::Error> {
        let s = String::deserialize(deserializer)?;
        ConvId::read_back(&s).map_err(|e| D::Error::custom(e.public_message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(s: &str) -> UserId {
        UserId::parse(s).expect("valid user id")
    }

    #[test]
    fn dm_conv_id_sorts_the_two_users() {
        let forward = ConvId::direct(&uid("u2"), &uid("u1"));
        assert_eq!(forward.as_str(), "dm:u1:u2");
        assert_eq!(forward, ConvId::direct(&uid("u1"), &uid("u2")));
        assert_eq!(forward.direct_users(), Some((&uid("u1"), &uid("u2"))));
    }

    #[test]
    fn note_to_self_conv_names_the_user_twice() {
        let conv = ConvId::direct(&uid("u1"), &uid("u1"));
        assert_eq!(conv.as_str(), "dm:u1:u1");
        assert_eq!(conv.peer_of(&uid("u1")), Some(&uid("u1")));
        assert_eq!(ConvId::parse("dm:u1:u1"), Ok(conv));
    }

    #[test]
    fn group_conv_id_is_g_prefixed() {
        let gid = GroupId::parse("team:a").expect("valid");
        let conv = ConvId::group(&gid);
        assert_eq!(conv.as_str(), "g:team:a");
        assert_eq!(conv.group_id(), Some(&gid));
        assert_eq!(conv.direct_users(), None);
        assert_eq!(ConvId::parse("g:team:a"), Ok(conv));
    }

    #[test]
    fn parse_round_trips_direct_ids_with_colons() {
        let conv = ConvId::direct(&uid("org:ann"), &uid("org:bob"));
        assert_eq!(conv.as_str(), "dm:org:ann:org:bob");
        assert_eq!(ConvId::parse(conv.as_str()), Ok(conv));
    }

    #[test]
    fn parse_rejects_unsorted_malformed_and_unknown_prefixes() {
        for bad in [
            "dm:u2:u1", "dm:u1", "dm::u1", "dm:u1:", "g:", "x:u1:u2", "", "dm:a b:c", "G:g1",
        ] {
            assert_eq!(
                ConvId::parse(bad).map_err(|e| e.code()),
                Err("bad_request"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_a_dm_text_that_names_two_pairs() {
        // "x" with "x:y:z", and "x:x" with "y:z", both print as this text.
        assert_eq!(
            ConvId::direct(&uid("x"), &uid("x:y:z")).as_str(),
            ConvId::direct(&uid("x:x"), &uid("y:z")).as_str()
        );
        assert!(ConvId::parse("dm:x:x:y:z").is_err());
    }

    #[test]
    fn read_back_accepts_every_text_the_server_prints() {
        for (a, b) in [
            ("x", "x:y:z"),
            ("a:b", "a:b:a"),
            ("ann", "ann:work"),
            ("u1", "u2"),
        ] {
            let conv = ConvId::direct(&uid(a), &uid(b));
            let read = ConvId::read_back(conv.as_str()).expect("printed by direct");
            assert_eq!(read.as_str(), conv.as_str());
            let json = serde_json::to_string(&conv).expect("serializes");
            let back: ConvId = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back.as_str(), conv.as_str());
        }
        let group = ConvId::group(&GroupId::parse("g:1").expect("valid"));
        assert_eq!(ConvId::read_back("g:g:1"), Ok(group));
        for bad in ["dm:b:a", "dm:a", "g:", "x:a:b", "dm:a b:c"] {
            assert!(ConvId::read_back(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_for_resolves_the_ambiguity_with_the_caller() {
        let first = ConvId::parse_for("dm:x:x:y:z", &uid("x")).expect("x is in one split");
        assert_eq!(first.direct_users(), Some((&uid("x"), &uid("x:y:z"))));
        let second = ConvId::parse_for("dm:x:x:y:z", &uid("y:z")).expect("y:z is in one split");
        assert_eq!(second.direct_users(), Some((&uid("x:x"), &uid("y:z"))));
        assert!(ConvId::parse_for("dm:x:x:y:z", &uid("q")).is_err());
        assert!(ConvId::parse_for("g:g1", &uid("q")).is_ok());
    }

    #[test]
    fn parse_for_rejects_a_text_ambiguous_even_for_the_caller() {
        // "a:b:a" is a party of both readings: with "a:b" and with "b:a".
        let text = ConvId::direct(&uid("a:b"), &uid("a:b:a"))
            .as_str()
            .to_owned();
        assert_eq!(text, ConvId::direct(&uid("a:b:a"), &uid("b:a")).as_str());
        assert!(ConvId::parse_for(&text, &uid("a:b:a")).is_err());
        assert!(ConvId::parse_for(&text, &uid("a:b")).is_ok());
    }

    #[test]
    fn parsing_never_returns_a_different_pair_than_the_one_printed() {
        // Exhaustive over short ids made of the characters that matter here.
        let mut ids: Vec<String> = vec![String::new()];
        let mut universe = Vec::new();
        for _ in 0..3 {
            ids = ids
                .iter()
                .flat_map(|t| ['a', 'b', ':'].map(|c| format!("{t}{c}")))
                .collect();
            universe.extend(ids.iter().map(|s| uid(s)));
        }
        for a in &universe {
            for b in &universe {
                let conv = ConvId::direct(a, b);
                for parsed in [
                    ConvId::parse(conv.as_str()),
                    ConvId::parse_for(conv.as_str(), a),
                ]
                .into_iter()
                .flatten()
                {
                    assert_eq!(parsed, conv);
                }
            }
        }
    }

    #[test]
    fn peer_of_is_none_for_outsiders_and_groups() {
        let conv = ConvId::direct(&uid("u1"), &uid("u2"));
        assert_eq!(conv.peer_of(&uid("u1")), Some(&uid("u2")));
        assert_eq!(conv.peer_of(&uid("u2")), Some(&uid("u1")));
        assert_eq!(conv.peer_of(&uid("u3")), None);
        let group = ConvId::group(&GroupId::parse("g1").expect("valid"));
        assert_eq!(group.peer_of(&uid("u1")), None);
    }

    #[test]
    fn conv_id_serializes_as_its_text() {
        let conv = ConvId::direct(&uid("b"), &uid("a"));
        assert_eq!(
            serde_json::to_string(&conv).expect("serializes"),
            r#""dm:a:b""#
        );
        assert_eq!(
            serde_json::from_str::<ConvId>(r#""dm:a:b""#).expect("parses"),
            conv
        );
        assert!(serde_json::from_str::<ConvId>(r#""dm:b:a""#).is_err());
    }

    #[test]
    fn component_ids_may_be_64_chars_each() {
        let long_a = "a".repeat(64);
        let long_b = "b".repeat(64);
        let conv = ConvId::direct(&uid(&long_a), &uid(&long_b));
        assert_eq!(conv.as_str().len(), 3 + 64 + 1 + 64);
        assert_eq!(ConvId::parse(conv.as_str()), Ok(conv));
    }
}
