//! The read routes: sync (one pass), conversations, history; and device presence.

use courier_core::api::{
    ConversationSummary, ConversationsResponse, HistoryQuery, HistoryResponse, SyncQuery,
    SyncResponse,
};
use courier_core::auth::Identity;
use courier_core::{Config, ConvId, Error, Seq, streams};
use courier_store::{Sql, devices, reads};

use crate::entries::to_entry;
use crate::errors::{from_sql, from_store};

/// Conversations listed at most (most recent first).
pub const MAX_CONVERSATIONS: i64 = 500;

/// The caller's stream head, or 404 if the caller is not a user.
pub fn head<S: Sql + ?Sized>(sql: &S, caller: &Identity) -> Result<Seq, Error> {
    let head = courier_store::streams::head(sql, caller.user.as_str())
        .map_err(from_sql)?
        .ok_or_else(|| Error::NotFound(format!("user {}", caller.user)))?;
    Seq::new(head)
}

/// Marks the calling device online. The write is skipped while the stored
/// `last_seen` is fresher than a quarter of the presence TTL.
pub fn touch<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    now: i64,
) -> Result<(), Error> {
    let refresh_ms = (config.presence_ttl_secs as i64).saturating_mul(250);
    devices::touch(
        sql,
        caller.user.as_str(),
        caller.device.as_str(),
        now,
        refresh_ms,
    )
    .map_err(from_store)
}

/// One pass of `GET /v1/sync`: the entries after `after`, ascending; `trimmed_before`
/// when `after` points into history the retention purge removed.
pub fn sync_once<S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
    query: &SyncQuery,
) -> Result<SyncResponse, Error> {
    let page = reads::sync_page(
        sql,
        caller.user.as_str(),
        query.after.get(),
        i64::from(query.limit),
    )
    .map_err(from_store)?;
    let entries = page
        .entries
        .into_iter()
        .map(to_entry)
        .collect::<Result<Vec<_>, _>>()?;
    streams::sync_page(
        query.after,
        Seq::new(page.head)?,
        Seq::new(page.trimmed)?,
        entries,
    )
}

/// `GET /v1/conversations`: the offline counters, most recent first.
pub fn conversations<S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
) -> Result<ConversationsResponse, Error> {
    head(sql, caller)?;
    let rows =
        reads::conversations(sql, caller.user.as_str(), MAX_CONVERSATIONS).map_err(from_store)?;
    let conversations = rows
        .into_iter()
        .map(|row| {
            Ok(ConversationSummary {
                conv: ConvId::read_back(&row.conv)?,
                unread: row.unread.max(0) as u64,
                last: to_entry(row.last)?,
                updated_at: row.updated_at,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(ConversationsResponse { conversations })
}

/// `GET /v1/conversations/{conv}/messages`: the caller's message entries of one
/// conversation, newest first.
pub fn history<S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
    conv: &str,
    query: &HistoryQuery,
) -> Result<HistoryResponse, Error> {
    let conv = ConvId::parse_for(conv, &caller.user)?;
    head(sql, caller)?;
    let (rows, more) = reads::history(
        sql,
        caller.user.as_str(),
        conv.as_str(),
        query.before.map(Seq::get),
        i64::from(query.limit),
    )
    .map_err(from_store)?;
    let entries = rows
        .into_iter()
        .map(to_entry)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HistoryResponse { entries, more })
}
