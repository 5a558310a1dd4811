//! The directory routes (admin token): users, groups, members, relations.

use courier_core::api::{
    MembersChange, MembersChangeResponse, PutGroup, PutGroupResponse, PutRelation, PutUser,
    PutUserResponse, parse_request,
};
use courier_core::auth::Identity;
use courier_core::{Config, Error, GroupId, UserId};
use courier_store::Sql;
use courier_store::directory::{self, ControlPolicy};

use crate::errors::from_store;
use crate::{Reply, body};

fn policy(config: &Config) -> ControlPolicy {
    ControlPolicy {
        max_members: config.control_fanout_max_members as i64,
    }
}

/// The store takes plain ids: the request validated them already.
fn uids(users: &[UserId]) -> Vec<String> {
    users.iter().map(|u| u.as_str().to_string()).collect()
}

/// `PUT /v1/users/{uid}`: creates or updates a user; idempotent.
pub fn put_user<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    uid: &str,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let uid = UserId::parse(uid)?;
    let req: PutUser = parse_request(raw, config)?;
    directory::put_user(sql, uid.as_str(), &req.name, req.org.as_str(), now).map_err(from_store)?;
    Ok(Reply::ok(body(&PutUserResponse { uid })))
}

/// `PUT /v1/groups/{gid}`: creates or replaces a group and its members.
pub fn put_group<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    gid: &str,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let gid = GroupId::parse(gid)?;
    let req: PutGroup = parse_request(raw, config)?;
    let members = uids(&req.members);
    let info = directory::put_group(
        sql,
        gid.as_str(),
        &req.name,
        req.owner.as_str(),
        &members,
        policy(config),
        now,
    )
    .map_err(from_store)?;
    Ok(Reply::ok(body(&PutGroupResponse {
        gid,
        version: info.version,
        members: info.members as u64,
    })))
}

/// `POST /v1/groups/{gid}/members`: adds and removes members.
pub fn change_members<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    gid: &str,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let gid = GroupId::parse(gid)?;
    let req: MembersChange = parse_request(raw, config)?;
    let add = uids(&req.add);
    let remove = uids(&req.remove);
    let info = directory::change_members(
        sql,
        gid.as_str(),
        &add,
        &remove,
        config.max_group_members as i64,
        policy(config),
        now,
    )
    .map_err(from_store)?;
    Ok(Reply::ok(body(&MembersChangeResponse {
        version: info.version,
        members: info.members as u64,
    })))
}

/// `PUT /v1/relations/{a}/{b}`: a symmetric relation between two users.
pub fn put_relation<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    a: &str,
    b: &str,
    raw: &[u8],
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let (a, b) = (UserId::parse(a)?, UserId::parse(b)?);
    let req: PutRelation = parse_request(raw, config)?;
    directory::put_relation(sql, a.as_str(), b.as_str(), req.kind.as_str()).map_err(from_store)?;
    Ok(Reply::ok(
        serde_json::json!({ "a": a, "b": b, "kind": req.kind.as_str() }),
    ))
}

/// `DELETE /v1/relations/{a}/{b}`: removes the relation; removing none is fine.
pub fn delete_relation<S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
    a: &str,
    b: &str,
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let (a, b) = (UserId::parse(a)?, UserId::parse(b)?);
    directory::delete_relation(sql, a.as_str(), b.as_str()).map_err(from_store)?;
    Ok(Reply::no_content())
}
