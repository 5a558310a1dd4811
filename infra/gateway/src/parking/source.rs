//! Where a parked poll's head is read and its wakes come from: the app's SQLite file
//! (woken by the update hook of the gateway's connections), or PostgreSQL (woken by
//! the schema's `NOTIFY`, on a `LISTEN` session of this gateway's own).

use std::sync::Arc;
use std::time::Duration;

use super::{CHANNEL, Parking};
use crate::host::sqlite::pool::Pool;

/// Where heads are read and wakes come from.
pub(super) enum Source {
    Sqlite(Arc<Pool>),
    Postgres(PgListener),
}

/// The PostgreSQL session that listens, shared with head reads.
#[derive(Default)]
pub(super) struct PgListener {
    pub(super) client: tokio::sync::RwLock<Option<tokio_postgres::Client>>,
}

impl Parking {
    /// The user's head (and, on SQLite, the rowid of their `users` row); `None` for
    /// no such user.
    pub(super) async fn head(&self, uid: &str) -> anyhow::Result<Option<(i64, Option<i64>)>> {
        match &self.source {
            Source::Sqlite(pool) => {
                let conn = pool.checkout()?;
                // A read in WAL mode never waits for a lock.
                let row = conn.query_row(
                    "SELECT head_seq, rowid FROM users WHERE uid = ?",
                    [uid],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                );
                pool.checkin(conn);
                match row {
                    Ok((head, rowid)) => Ok(Some((head, Some(rowid)))),
                    Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Source::Postgres(listener) => {
                let client = listener.client.read().await;
                let Some(client) = client.as_ref() else {
                    anyhow::bail!("the wake listener is not connected");
                };
                let row = client
                    .query_opt("SELECT head_seq FROM users WHERE uid = $1", &[&uid])
                    .await?;
                Ok(row.map(|r| (r.get::<_, i64>(0), None)))
            }
        }
    }
}

/// Keeps a `LISTEN courier_wake` session to `config` open, handing its notifications to
/// `parking`, reconnecting with backoff. Runs until the process ends.
pub async fn listen(parking: Arc<Parking>, config: tokio_postgres::Config) {
    let Source::Postgres(listener) = &parking.source else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let woken = Arc::clone(&parking);
                let driver = tokio::spawn(async move {
                    loop {
                        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
                        match message {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                                woken.moved_uids(n.payload().split(','));
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "wake listener: connection failed");
                                break;
                            }
                            None => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        *listener.client.write().await = Some(client);
                        tracing::info!("wake listener: listening on PostgreSQL");
                        backoff = Duration::from_millis(100);
                        // Wakes sent while no session listened are lost: look again.
                        parking.wake_all();
                        let _ = driver.await;
                        *listener.client.write().await = None;
                        parking.wake_all();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "wake listener: LISTEN failed");
                        driver.abort();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "wake listener: cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
