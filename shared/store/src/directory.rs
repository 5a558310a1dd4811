//! The directory: users, groups, memberships and relations, and the facts the
//! authorization rules need.

use std::collections::BTreeSet;

use crate::error::StoreError;
use crate::sql::{Sql, SqlValue, params_list, write_tx};
use crate::streams::{NewEntry, UserSet, append, lock};

/// Rows per multi-row `INSERT`, well under every engine's parameter limit.
const CHUNK: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: String,
    pub org: String,
    pub name: String,
    pub head_seq: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    pub version: i64,
    pub members: i64,
}

/// What links two users, for the direct-message rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelationFacts {
    pub same_org: bool,
    pub friend: bool,
    pub shared_group: bool,
}

/// Membership changes with `control` entries only up to this many members.
#[derive(Debug, Clone, Copy)]
pub struct ControlPolicy {
    pub max_members: i64,
}

pub fn put_user<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    name: &str,
    org: &str,
    now: i64,
) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO users (uid, org, name, head_seq, created_at) VALUES (?, ?, ?, 0, ?)
         ON CONFLICT (uid) DO UPDATE SET org = excluded.org, name = excluded.name",
        &[uid.into(), org.into(), name.into(), now.into()],
    )?;
    Ok(())
}

pub fn user<S: Sql + ?Sized>(sql: &S, uid: &str) -> Result<Option<User>, StoreError> {
    let row = sql.query_row(
        "SELECT uid, org, name, head_seq FROM users WHERE uid = ?",
        &[uid.into()],
    )?;
    Ok(row.map(|mut r| User {
        head_seq: r[3].as_i64().unwrap_or(0),
        name: std::mem::replace(&mut r[2], SqlValue::Null)
            .into_string()
            .unwrap_or_default(),
        org: std::mem::replace(&mut r[1], SqlValue::Null)
            .into_string()
            .unwrap_or_default(),
        uid: std::mem::replace(&mut r[0], SqlValue::Null)
            .into_string()
            .unwrap_or_default(),
    }))
}

/// The ids in `uids` that are not users.
fn missing_users<S: Sql + ?Sized>(
    sql: &S,
    uids: &BTreeSet<&str>,
) -> Result<Vec<String>, StoreError> {
    let mut found = BTreeSet::new();
    let list: Vec<&str> = uids.iter().copied().collect();
    for chunk in list.chunks(CHUNK) {
        let params: Vec<SqlValue> = chunk.iter().map(|u| (*u).into()).collect();
        for row in sql.query(
            &format!(
                "SELECT uid FROM users WHERE uid IN ({})",
                params_list(chunk.len())
            ),
            &params,
        )? {
            if let Some(uid) = row.into_iter().next().and_then(SqlValue::into_string) {
                found.insert(uid);
            }
        }
    }
    Ok(uids
        .iter()
        .filter(|u| !found.contains(**u))
        .map(|u| u.to_string())
        .collect())
}

fn insert_members<S: Sql + ?Sized>(sql: &S, gid: &str, uids: &[&str]) -> Result<(), StoreError> {
    for chunk in uids.chunks(CHUNK) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let params: Vec<SqlValue> = chunk
            .iter()
            .flat_map(|u| [gid.into(), (*u).into()])
            .collect();
        sql.execute(
            &format!(
                "INSERT INTO members (gid, uid) VALUES {values} ON CONFLICT (gid, uid) DO NOTHING"
            ),
            &params,
        )?;
    }
    Ok(())
}

fn delete_members<S: Sql + ?Sized>(sql: &S, gid: &str, uids: &[&str]) -> Result<(), StoreError> {
    for chunk in uids.chunks(CHUNK) {
        let mut params: Vec<SqlValue> = vec![gid.into()];
        params.extend(chunk.iter().map(|u| SqlValue::from(*u)));
        sql.execute(
            &format!(
                "DELETE FROM members WHERE gid = ? AND uid IN ({})",
                params_list(chunk.len())
            ),
            &params,
        )?;
    }
    Ok(())
}

fn member_count<S: Sql + ?Sized>(sql: &S, gid: &str) -> Result<i64, StoreError> {
    Ok(sql
        .query_i64("SELECT count(*) FROM members WHERE gid = ?", &[gid.into()])?
        .unwrap_or(0))
}

/// Writes a `control` entry (`members_changed`) to the current members and to the
/// removed ones, unless the group is over the policy's size (degradation).
fn announce<S: Sql + ?Sized>(
    sql: &S,
    gid: &str,
    info: GroupInfo,
    removed: &[String],
    policy: ControlPolicy,
    now: i64,
) -> Result<(), StoreError> {
    if info.members > policy.max_members {
        return Ok(());
    }
    let conv = format!("g:{gid}");
    let data =
        serde_json::json!({ "event": "members_changed", "group": gid, "version": info.version })
            .to_string();
    let entry = NewEntry {
        kind: "control",
        conv: Some(&conv),
        data: Some(data),
        created_at: now,
        ..NewEntry::default()
    };
    let (members, removed) = (UserSet::Members(gid), UserSet::List(removed));
    lock(sql, &[&members, &removed])?;
    append(sql, &members, &entry)?;
    append(sql, &removed, &entry)?;
    Ok(())
}

/// Creates or replaces a group and its member list, in one transaction.
pub fn put_group<S: Sql + ?Sized>(
    sql: &S,
    gid: &str,
    name: &str,
    owner: &str,
    members: &[String],
    policy: ControlPolicy,
    now: i64,
) -> Result<GroupInfo, StoreError> {
    let wanted: BTreeSet<&str> = members.iter().map(String::as_str).chain([owner]).collect();
    write_tx(sql, |sql| {
        let missing = missing_users(sql, &wanted)?;
        if let Some(first) = missing.first() {
            return Err(StoreError::NotFound(format!("user {first}")));
        }
        // The group's row first: it serializes concurrent changes of one group.
        let count = wanted.len() as i64;
        sql.execute(
            "INSERT INTO groups (gid, name, owner, version, member_count) VALUES (?, ?, ?, 1, ?)
             ON CONFLICT (gid) DO UPDATE SET name = excluded.name, owner = excluded.owner,
               version = groups.version + 1, member_count = excluded.member_count",
            &[gid.into(), name.into(), owner.into(), count.into()],
        )?;
        let current: BTreeSet<String> = sql
            .query("SELECT uid FROM members WHERE gid = ?", &[gid.into()])?
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
            .collect();
        let removed: Vec<String> = current
            .iter()
            .filter(|u| !wanted.contains(u.as_str()))
            .cloned()
            .collect();
        let added: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|u| !current.contains(*u))
            .collect();
        delete_members(
            sql,
            gid,
            &removed.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        insert_members(sql, gid, &added)?;
        let version = sql
            .query_i64("SELECT version FROM groups WHERE gid = ?", &[gid.into()])?
            .unwrap_or(1);
        let info = GroupInfo {
            version,
            members: count,
        };
        if !added.is_empty() || !removed.is_empty() {
            announce(sql, gid, info, &removed, policy, now)?;
        }
        Ok(info)
    })
}

/// Adds and removes members, in one transaction. `max_members` caps the result.
pub fn change_members<S: Sql + ?Sized>(
    sql: &S,
    gid: &str,
    add: &[String],
    remove: &[String],
    max_members: i64,
    policy: ControlPolicy,
    now: i64,
) -> Result<GroupInfo, StoreError> {
    write_tx(sql, |sql| {
        if sql
            .query_row(
                &format!(
                    "SELECT 1 FROM groups WHERE gid = ?{}",
                    sql.dialect().for_update()
                ),
                &[gid.into()],
            )?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("group {gid}")));
        }
        let add_set: BTreeSet<&str> = add.iter().map(String::as_str).collect();
        let missing = missing_users(sql, &add_set)?;
        if let Some(first) = missing.first() {
            return Err(StoreError::NotFound(format!("user {first}")));
        }
        let removed: Vec<String> = {
            let mut params: Vec<SqlValue> = vec![gid.into()];
            let mut found = Vec::new();
            for chunk in remove.chunks(CHUNK) {
                params.truncate(1);
                params.extend(chunk.iter().map(SqlValue::from));
                for row in sql.query(
                    &format!(
                        "SELECT uid FROM members WHERE gid = ? AND uid IN ({})",
                        params_list(chunk.len())
                    ),
                    &params,
                )? {
                    found.extend(row.into_iter().next().and_then(SqlValue::into_string));
                }
            }
            found
        };
        let remove_refs: Vec<&str> = removed.iter().map(String::as_str).collect();
        delete_members(sql, gid, &remove_refs)?;
        let before = member_count(sql, gid)?;
        let add_refs: Vec<&str> = add_set
            .iter()
            .copied()
            .filter(|u| !remove_refs.contains(u))
            .collect();
        insert_members(sql, gid, &add_refs)?;
        let count = member_count(sql, gid)?;
        if count > max_members {
            return Err(StoreError::Invalid(format!(
                "a group has at most {max_members} members"
            )));
        }
        let changed = count != before || !removed.is_empty();
        if changed {
            sql.execute(
                "UPDATE groups SET version = version + 1, member_count = ? WHERE gid = ?",
                &[count.into(), gid.into()],
            )?;
        }
        let version = sql
            .query_i64("SELECT version FROM groups WHERE gid = ?", &[gid.into()])?
            .unwrap_or(1);
        let info = GroupInfo {
            version,
            members: count,
        };
        if changed {
            announce(sql, gid, info, &removed, policy, now)?;
        }
        Ok(info)
    })
}

/// The group's member count, or `None` if there is no such group.
pub fn group_size<S: Sql + ?Sized>(sql: &S, gid: &str) -> Result<Option<i64>, StoreError> {
    Ok(sql.query_i64(
        "SELECT member_count FROM groups WHERE gid = ?",
        &[gid.into()],
    )?)
}

pub fn is_member<S: Sql + ?Sized>(sql: &S, gid: &str, uid: &str) -> Result<bool, StoreError> {
    Ok(sql
        .query_row(
            "SELECT 1 FROM members WHERE gid = ? AND uid = ?",
            &[gid.into(), uid.into()],
        )?
        .is_some())
}

/// Stores a symmetric relation. Both users must exist.
pub fn put_relation<S: Sql + ?Sized>(
    sql: &S,
    a: &str,
    b: &str,
    kind: &str,
) -> Result<(), StoreError> {
    write_tx(sql, |sql| {
        let both: BTreeSet<&str> = [a, b].into_iter().collect();
        if let Some(first) = missing_users(sql, &both)?.first() {
            return Err(StoreError::NotFound(format!("user {first}")));
        }
        for (x, y) in [(a, b), (b, a)] {
            sql.execute(
                "INSERT INTO relations (a, b, kind) VALUES (?, ?, ?)
                 ON CONFLICT (a, b) DO UPDATE SET kind = excluded.kind",
                &[x.into(), y.into(), kind.into()],
            )?;
        }
        Ok(())
    })
}

/// Removes a relation (both directions); removing a missing one is not an error.
pub fn delete_relation<S: Sql + ?Sized>(sql: &S, a: &str, b: &str) -> Result<(), StoreError> {
    sql.execute(
        "DELETE FROM relations WHERE (a = ? AND b = ?) OR (a = ? AND b = ?)",
        &[a.into(), b.into(), b.into(), a.into()],
    )?;
    Ok(())
}

/// What links `a` and `b`; `None` if `b` is not a user.
pub fn relation_facts<S: Sql + ?Sized>(
    sql: &S,
    a: &str,
    b: &str,
) -> Result<Option<RelationFacts>, StoreError> {
    let row = sql.query_row(
        "SELECT
           CASE WHEN ub.org = ua.org THEN 1 ELSE 0 END,
           CASE WHEN EXISTS (SELECT 1 FROM relations WHERE a = ? AND b = ? AND kind = 'friend') THEN 1 ELSE 0 END,
           CASE WHEN EXISTS (SELECT 1 FROM members m1 JOIN members m2 ON m1.gid = m2.gid
                             WHERE m1.uid = ? AND m2.uid = ?) THEN 1 ELSE 0 END
         FROM users ub LEFT JOIN users ua ON ua.uid = ?
         WHERE ub.uid = ?",
        &[a.into(), b.into(), a.into(), b.into(), a.into(), b.into()],
    )?;
    Ok(row.map(|r| RelationFacts {
        same_org: r[0].as_i64() == Some(1),
        friend: r[1].as_i64() == Some(1),
        shared_group: r[2].as_i64() == Some(1),
    }))
}
