//! Bodies of the directory routes (admin token): users, groups, members, relations.
//!
//! They may be larger than messaging bodies (a group of 10000 ids is ~700 KB), so they
//! use `max_directory_body_bytes`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{RequestBody, dedup_in_order};
use crate::config::Config;
use crate::error::Error;
use crate::ids::{OrgId, UserId};

/// The longest user or group display name, in UTF-8 bytes.
pub const MAX_DISPLAY_NAME_BYTES: usize = 256;

fn check_name(name: &str) -> Result<(), Error> {
    if name.len() > MAX_DISPLAY_NAME_BYTES {
        Err(Error::BadRequest(format!(
            "name is over {MAX_DISPLAY_NAME_BYTES} bytes"
        )))
    } else if name.contains('\0') {
        // PostgreSQL text cannot hold NUL: refused on every store alike.
        Err(Error::BadRequest("name must not contain NUL".into()))
    } else {
        Ok(())
    }
}

/// A group may hold at most `max_group_members` members; more is a bad request.
/// For a member change, call it with the member count the change would leave.
pub fn check_group_size(members: usize, config: &Config) -> Result<(), Error> {
    if members > config.max_group_members {
        Err(Error::BadRequest(format!(
            "a group holds at most {} members",
            config.max_group_members
        )))
    } else {
        Ok(())
    }
}

/// `PUT /v1/users/{uid}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutUser {
    /// Display name, at most 256 bytes (may be empty).
    pub name: String,
    /// The organisation; users of one org may message each other.
    pub org: OrgId,
}

impl RequestBody for PutUser {
    fn max_body_bytes(config: &Config) -> usize {
        config.max_directory_body_bytes
    }

    fn validate(self, _config: &Config) -> Result<Self, Error> {
        check_name(&self.name)?;
        Ok(self)
    }
}

/// `PUT /v1/groups/{gid}`. Validation puts the owner first among the members (the owner
/// is always a member) and drops repeated ids; the result must fit `max_group_members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutGroup {
    /// Display name, at most 256 bytes (may be empty).
    pub name: String,
    /// The owner; always a member.
    pub owner: UserId,
    /// The members, owner first, each once.
    pub members: Vec<UserId>,
}

impl RequestBody for PutGroup {
    fn max_body_bytes(config: &Config) -> usize {
        config.max_directory_body_bytes
    }

    fn validate(self, config: &Config) -> Result<Self, Error> {
        check_name(&self.name)?;
        let members = dedup_in_order(
            std::iter::once(self.owner.clone())
                .chain(self.members)
                .collect(),
        );
        check_group_size(members.len(), config)?;
        Ok(PutGroup { members, ..self })
    }
}

/// `POST /v1/groups/{gid}/members`: both lists optional, not both empty, no id in both.
/// Validation drops repeated ids within each list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersChange {
    /// Users to add (already members: no-op).
    #[serde(default)]
    pub add: Vec<UserId>,
    /// Users to remove (not members: no-op).
    #[serde(default)]
    pub remove: Vec<UserId>,
}

impl RequestBody for MembersChange {
    fn max_body_bytes(config: &Config) -> usize {
        config.max_directory_body_bytes
    }

    fn validate(self, config: &Config) -> Result<Self, Error> {
        let add = dedup_in_order(self.add);
        let remove = dedup_in_order(self.remove);
        if add.is_empty() && remove.is_empty() {
            return Err(Error::BadRequest(
                "add or remove must name at least one user".into(),
            ));
        }
        let removed: BTreeSet<&UserId> = remove.iter().collect();
        if let Some(both) = add.iter().find(|uid| removed.contains(uid)) {
            return Err(Error::BadRequest(format!(
                "{both} is both added and removed"
            )));
        }
        check_group_size(add.len(), config)?;
        if remove.len() > config.max_group_members {
            return Err(Error::BadRequest(
                "remove names more users than a group holds".into(),
            ));
        }
        Ok(MembersChange { add, remove })
    }
}

/// `PUT /v1/relations/{a}/{b}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRelation {
    /// The only kind API.md defines is `friend`.
    pub kind: RelationKind,
}

impl RequestBody for PutRelation {
    fn max_body_bytes(config: &Config) -> usize {
        config.max_directory_body_bytes
    }

    fn validate(self, _config: &Config) -> Result<Self, Error> {
        Ok(self)
    }
}

/// A relation between two users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// The users may message each other.
    Friend,
}

impl RelationKind {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::Friend => "friend",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_request;
    use serde_json::json;

    fn parse<T: RequestBody>(value: serde_json::Value) -> Result<T, Error> {
        parse_request(value.to_string().as_bytes(), &Config::default())
    }

    fn names(ids: &[UserId]) -> Vec<&str> {
        ids.iter().map(UserId::as_str).collect()
    }

    #[test]
    fn put_user_needs_a_name_and_a_valid_org() {
        let user: PutUser = parse(json!({"name": "Ann", "org": "acme"})).expect("valid");
        assert_eq!((user.name.as_str(), user.org.as_str()), ("Ann", "acme"));
        assert!(parse::<PutUser>(json!({"name": "Ann"})).is_err());
        assert!(parse::<PutUser>(json!({"name": "Ann", "org": "a cme"})).is_err());
        assert!(parse::<PutUser>(json!({"name": "x".repeat(257), "org": "acme"})).is_err());
        assert!(parse::<PutUser>(json!({"name": "A\u{0}nn", "org": "acme"})).is_err());
        let group = json!({"name": "G\u{0}", "owner": "u1", "members": []});
        assert!(parse::<PutGroup>(group).is_err());
    }

    #[test]
    fn put_group_makes_the_owner_a_member_and_drops_repeats() {
        let group: PutGroup =
            parse(json!({"name": "G", "owner": "u1", "members": ["u2", "u1", "u2", "u3"]}))
                .expect("valid");
        assert_eq!(names(&group.members), ["u1", "u2", "u3"]);
    }

    #[test]
    fn put_group_counts_members_against_max_group_members() {
        let config = Config {
            max_group_members: 3,
            ..Config::default()
        };
        let body = |members: serde_json::Value| {
            json!({"name": "G", "owner": "u1", "members": members}).to_string()
        };
        let fits = body(json!(["u1", "u2", "u3", "u3"]));
        assert!(parse_request::<PutGroup>(fits.as_bytes(), &config).is_ok());
        let over = body(json!(["u2", "u3", "u4"])); // the owner makes four
        let err = parse_request::<PutGroup>(over.as_bytes(), &config).expect_err("over");
        assert_eq!(err.code(), "bad_request");
    }

    #[test]
    fn a_full_size_group_body_fits_the_directory_limit() {
        let members: Vec<String> = (0..10_000).map(|i| format!("{i:0>64}")).collect();
        let body = json!({"name": "big", "owner": members[0], "members": members}).to_string();
        let group = parse_request::<PutGroup>(body.as_bytes(), &Config::default()).expect("fits");
        assert_eq!(group.members.len(), 10_000);
    }

    #[test]
    fn members_change_defaults_missing_lists_to_empty() {
        let change: MembersChange = parse(json!({"add": ["u4", "u4"]})).expect("valid");
        assert_eq!(names(&change.add), ["u4"]);
        assert!(change.remove.is_empty());
    }

    #[test]
    fn members_change_rejects_nothing_to_do_and_contradictions() {
        assert!(parse::<MembersChange>(json!({})).is_err());
        assert!(parse::<MembersChange>(json!({"add": [], "remove": []})).is_err());
        assert!(parse::<MembersChange>(json!({"add": ["u1"], "remove": ["u1"]})).is_err());
        assert!(parse::<MembersChange>(json!({"add": ["bad id"]})).is_err());
    }

    #[test]
    fn relation_kind_must_be_friend() {
        let relation: PutRelation = parse(json!({"kind": "friend"})).expect("valid");
        assert_eq!(relation.kind.as_str(), "friend");
        assert!(parse::<PutRelation>(json!({"kind": "enemy"})).is_err());
        assert!(parse::<PutRelation>(json!({})).is_err());
    }

    #[test]
    fn group_size_check_allows_exactly_the_maximum() {
        let config = Config {
            max_group_members: 2,
            ..Config::default()
        };
        assert!(check_group_size(2, &config).is_ok());
        assert!(check_group_size(3, &config).is_err());
    }
}
