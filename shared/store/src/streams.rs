//! Appending to per-user streams, set-based: one `UPDATE` allocates the next seq of
//! every user in a set and one `INSERT … SELECT` writes their entries, however many
//! users there are — no per-recipient round trips. Must run inside a write transaction.
//!
//! Concurrency: on SQLite a write transaction holds the database's one write lock.
//! On PostgreSQL (READ COMMITTED) `UPDATE … head_seq = head_seq + 1` locks each row
//! and increments the latest committed value, and the transaction's own reads see
//! its increments, so seqs stay dense with concurrent writers. To keep writers from
//! deadlocking on rows locked in different orders, every transaction that appends
//! first takes all the user rows it will touch with [`lock`], in uid order.

use crate::sql::{Dialect, Row, Sql, SqlError, SqlValue, params_list};

/// A set of users, as SQL: a literal list or a group's members.
#[derive(Debug, Clone)]
pub enum UserSet<'a> {
    List(&'a [String]),
    Members(&'a str),
    /// Any `SELECT uid …` with its parameters.
    Query(String, Vec<SqlValue>),
}

impl UserSet<'_> {
    pub(crate) fn sql(&self) -> (String, Vec<SqlValue>) {
        match self {
            UserSet::List(uids) => (
                params_list(uids.len()),
                uids.iter().map(SqlValue::from).collect(),
            ),
            UserSet::Members(gid) => (
                "SELECT uid FROM members WHERE gid = ?".into(),
                vec![(*gid).into()],
            ),
            UserSet::Query(sql, params) => (sql.clone(), params.clone()),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, UserSet::List(uids) if uids.is_empty())
    }
}

/// Locks the `users` rows of every set, in uid order, until the transaction ends
/// (PostgreSQL; a no-op on SQLite, whose write transaction already excludes every
/// other writer). Call it before the first write of a transaction that appends,
/// with every user the transaction will append to or read the head of.
pub fn lock<S: Sql + ?Sized>(sql: &S, sets: &[&UserSet<'_>]) -> Result<(), SqlError> {
    if sql.dialect() == Dialect::Sqlite {
        return Ok(());
    }
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    for set in sets.iter().filter(|s| !s.is_empty()) {
        let (set_sql, set_params) = set.sql();
        clauses.push(format!("uid IN ({set_sql})"));
        params.extend(set_params);
    }
    if clauses.is_empty() {
        return Ok(());
    }
    sql.execute(
        &format!(
            "SELECT uid FROM users WHERE {} ORDER BY uid{}",
            clauses.join(" OR "),
            sql.dialect().for_update()
        ),
        &params,
    )
}

/// The fields of the entries to append (the same for every user in the set).
#[derive(Debug, Clone, Default)]
pub struct NewEntry<'a> {
    pub kind: &'a str,
    pub conv: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    pub sender: Option<&'a str>,
    /// Extra JSON fields of non-message entries.
    pub data: Option<String>,
    pub created_at: i64,
}

/// Appends one entry to the stream of every user in `set`, allocating each user's
/// next seq. Afterwards `users.head_seq` of each is the new entry's seq.
pub fn append<S: Sql + ?Sized>(
    sql: &S,
    set: &UserSet<'_>,
    entry: &NewEntry<'_>,
) -> Result<(), SqlError> {
    append_with(sql, set, entry, "").map(drop)
}

/// [`append`] that answers `uid`'s new head (the seq of its new entry) from the
/// allocating `UPDATE … RETURNING`, with no read after it; `None` when `uid` is not
/// in `set` (or is no user).
pub fn append_reading<S: Sql + ?Sized>(
    sql: &S,
    set: &UserSet<'_>,
    entry: &NewEntry<'_>,
    uid: &str,
) -> Result<Option<i64>, SqlError> {
    let heads = append_with(sql, set, entry, " RETURNING uid, head_seq")?;
    Ok(heads
        .iter()
        .find(|row| row.first().and_then(SqlValue::as_str) == Some(uid))
        .and_then(|row| row.get(1).and_then(SqlValue::as_i64)))
}

fn append_with<S: Sql + ?Sized>(
    sql: &S,
    set: &UserSet<'_>,
    entry: &NewEntry<'_>,
    returning: &str,
) -> Result<Vec<Row>, SqlError> {
    if set.is_empty() {
        return Ok(Vec::new());
    }
    let (set_sql, set_params) = set.sql();
    let bump =
        format!("UPDATE users SET head_seq = head_seq + 1 WHERE uid IN ({set_sql}){returning}");
    // A statement without RETURNING is no query: PostgreSQL's host refuses one
    // wrapped as a query (a data-modifying WITH needs RETURNING).
    let heads = if returning.is_empty() {
        sql.execute(&bump, &set_params)?;
        Vec::new()
    } else {
        sql.query(&bump, &set_params)?
    };
    let mut params: Vec<SqlValue> = vec![
        entry.kind.into(),
        entry.conv.into(),
        entry.msg_id.into(),
        entry.sender.into(),
        entry.data.clone().into(),
        entry.created_at.into(),
    ];
    params.extend(set_params);
    sql.execute(
        &format!(
            "INSERT INTO entries (uid, seq, kind, conv, msg_id, sender, data, created_at)
             SELECT uid, head_seq, ?, ?, ?, ?, ?, ? FROM users WHERE uid IN ({set_sql})"
        ),
        &params,
    )?;
    Ok(heads)
}

/// Moves each user's conversation to the top with the entry just appended (their
/// head), counting it as unread for everyone but `sender`.
pub fn bump_conversations<S: Sql + ?Sized>(
    sql: &S,
    set: &UserSet<'_>,
    conv: &str,
    sender: Option<&str>,
    now: i64,
) -> Result<(), SqlError> {
    if set.is_empty() {
        return Ok(());
    }
    let (set_sql, set_params) = set.sql();
    let mut params: Vec<SqlValue> = vec![conv.into(), sender.into(), now.into()];
    params.extend(set_params);
    sql.execute(
        &format!(
            "INSERT INTO conversations (uid, conv, last_seq, unread, updated_at)
             SELECT uid, ?, head_seq, CASE WHEN uid = ? THEN 0 ELSE 1 END, ?
             FROM users WHERE uid IN ({set_sql})
             ON CONFLICT (uid, conv) DO UPDATE SET
               last_seq = excluded.last_seq,
               unread = conversations.unread + excluded.unread,
               updated_at = excluded.updated_at"
        ),
        &params,
    )
}

/// The stream head of one user (0 for an empty stream), or `None` for no such user.
pub fn head<S: Sql + ?Sized>(sql: &S, uid: &str) -> Result<Option<i64>, SqlError> {
    sql.query_i64("SELECT head_seq FROM users WHERE uid = ?", &[uid.into()])
}
