//! Reading streams: sync pages, conversation history and the conversation list.

use crate::error::StoreError;
use crate::sql::{Row, Sql, SqlValue};

/// One stream entry as stored, joined with its message body for `message` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub seq: i64,
    pub kind: String,
    pub conv: Option<String>,
    pub msg_id: Option<String>,
    pub sender: Option<String>,
    /// Extra JSON fields of non-message entries.
    pub data: Option<String>,
    pub client_msg_id: Option<String>,
    pub sent_at: Option<i64>,
    /// Canonical JSON content; `None` once recalled.
    pub content: Option<String>,
    pub recalled: bool,
}

const ENTRY_COLUMNS: &str = "e.seq, e.kind, e.conv, e.msg_id, e.sender, e.data,
    m.client_msg_id, m.sent_at, m.content, m.recalled";

const ENTRY_JOIN: &str = "LEFT JOIN messages m ON m.msg_id = e.msg_id";

fn entry_from(row: &mut std::vec::IntoIter<SqlValue>) -> StoredEntry {
    let mut next = || row.next().unwrap_or(SqlValue::Null);
    StoredEntry {
        seq: next().as_i64().unwrap_or_default(),
        kind: next().into_string().unwrap_or_default(),
        conv: next().into_string(),
        msg_id: next().into_string(),
        sender: next().into_string(),
        data: next().into_string(),
        client_msg_id: next().into_string(),
        sent_at: next().as_i64(),
        content: next().into_string(),
        recalled: next().as_i64().unwrap_or(0) != 0,
    }
}

fn entries(rows: Vec<Row>) -> Vec<StoredEntry> {
    rows.into_iter()
        .map(|r| entry_from(&mut r.into_iter()))
        .collect()
}

/// A page of one user's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<StoredEntry>,
    pub head: i64,
    pub more: bool,
    /// Entries at or below this seq were purged (retention); 0 if none were.
    pub trimmed: i64,
}

/// Entries with `seq > after`, ascending, at most `limit`.
pub fn sync_page<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    after: i64,
    limit: i64,
) -> Result<Page, StoreError> {
    let row = sql
        .query_row(
            "SELECT head_seq, trimmed_seq FROM users WHERE uid = ?",
            &[uid.into()],
        )?
        .ok_or_else(|| StoreError::NotFound(format!("user {uid}")))?;
    let head = row.first().and_then(SqlValue::as_i64).unwrap_or(0);
    let trimmed = row.get(1).and_then(SqlValue::as_i64).unwrap_or(0);
    if after >= head {
        return Ok(Page {
            entries: Vec::new(),
            head,
            more: false,
            trimmed,
        });
    }
    let rows = sql.query(
        &format!("SELECT {ENTRY_COLUMNS} FROM entries e {ENTRY_JOIN} WHERE e.uid = ? AND e.seq > ? ORDER BY e.seq LIMIT ?"),
        &[uid.into(), after.into(), limit.into()],
    )?;
    let entries = entries(rows);
    let last = entries.last().map_or(after.max(trimmed), |e| e.seq);
    Ok(Page {
        more: last < head,
        entries,
        head,
        trimmed,
    })
}

/// One user's `message` entries of a conversation, newest first, `seq < before`.
pub fn history<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    conv: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<StoredEntry>, bool), StoreError> {
    let before = before.unwrap_or(i64::MAX);
    let rows = sql.query(
        &format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e {ENTRY_JOIN}
             WHERE e.uid = ? AND e.conv = ? AND e.kind = 'message' AND e.seq < ?
             ORDER BY e.seq DESC LIMIT ?"
        ),
        &[uid.into(), conv.into(), before.into(), (limit + 1).into()],
    )?;
    let mut page = entries(rows);
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok((page, more))
}

/// One row of the conversation list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    pub conv: String,
    pub unread: i64,
    pub updated_at: i64,
    pub last: StoredEntry,
}

/// The user's conversations, most recent first (at most `limit`).
pub fn conversations<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    limit: i64,
) -> Result<Vec<ConversationRow>, StoreError> {
    let rows = sql.query(
        &format!(
            "SELECT c.conv, c.unread, c.updated_at, {ENTRY_COLUMNS}
             FROM conversations c
             JOIN entries e ON e.uid = c.uid AND e.seq = c.last_seq
             {ENTRY_JOIN}
             WHERE c.uid = ?
             ORDER BY c.updated_at DESC, c.conv LIMIT ?"
        ),
        &[uid.into(), limit.into()],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut cols = r.into_iter();
            let conv = cols
                .next()
                .and_then(SqlValue::into_string)
                .unwrap_or_default();
            let unread = cols.next().and_then(|v| v.as_i64()).unwrap_or(0);
            let updated_at = cols.next().and_then(|v| v.as_i64()).unwrap_or(0);
            ConversationRow {
                conv,
                unread,
                updated_at,
                last: entry_from(&mut cols),
            }
        })
        .collect())
}
