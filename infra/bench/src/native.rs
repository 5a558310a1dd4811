//! The baseline: a native hyper server whose `/healthz` does what the `health`
//! component does through the gateway, step for step, with the gateway's own SQLite
//! pool and SQL:
//! - SQLite: check out a pooled connection to `sqlite_db.db` on the executor (as the
//!   gateway's `open` does), run `SELECT count(*) FROM sqlite_master` on the blocking
//!   pool, and return the connection on the blocking pool without waiting (as the
//!   gateway's `drop` does, after the key-value calls, when the guest drops it).
//! - Key-value: a get of the probe key on the `spin_key_value` table of
//!   `key_value.db` (plus a set and a second get when it is missing, on the first
//!   request), each on the blocking pool with its own checkout.
//! - → 200 `{"ok":true}`; a store failure → 503; any method but GET → 405.
//!
//! The listener is the gateway's: HTTP/1.1 keep-alive, `TCP_NODELAY`, one task a
//! connection, graceful shutdown.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rusqlite::types::Value;
use tokio::net::TcpListener;

use courier_gateway::host::sqlite::pool::Pool;

const PROBE_KEY: &str = "courier:health:probe";
const STORE: &str = "default";

/// The native app's stores.
#[derive(Debug)]
pub struct Native {
    db: Pool,
    kv: Pool,
}

impl Native {
    /// Opens the two SQLite files in `dir` as the gateway does.
    pub fn open(dir: &Path) -> Result<Arc<Self>> {
        let db = Pool::open(dir.join("sqlite_db.db"))?;
        let kv = Pool::open(dir.join("key_value.db"))?;
        let conn = kv.checkout()?;
        let created = conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
               store TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
               PRIMARY KEY (store, key))",
        );
        kv.checkin(conn);
        created.context("cannot create the key-value table")?;
        Ok(Arc::new(Self { db, kv }))
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/healthz" {
            return json(
                StatusCode::NOT_FOUND,
                r#"{"error":{"code":"not_found","message":"no route"}}"#.into(),
            );
        }
        if req.method() != Method::GET {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                r#"{"error":{"code":"method_not_allowed","message":"use GET /healthz"}}"#.into(),
            );
        }
        match self.check_stores().await {
            Ok(()) => json(StatusCode::OK, r#"{"ok":true}"#.into()),
            Err(reason) => {
                let mut response = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        r#"{{"error":{{"code":"unavailable","message":"store check failed: {reason}"}}}}"#
                    ),
                );
                response
                    .headers_mut()
                    .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
                response
            }
        }
    }

    async fn check_stores(self: &Arc<Self>) -> Result<(), String> {
        let conn = self
            .db
            .checkout()
            .map_err(|e| format!("sqlite open: {e:#}"))?;
        let (conn, rows) = tokio::task::spawn_blocking(move || {
            let rows = query(&conn, "SELECT count(*) FROM sqlite_master");
            (conn, rows)
        })
        .await
        .map_err(|e| e.to_string())?;
        let checked = match rows {
            Ok(rows) => match rows.first().and_then(|r| r.first()) {
                Some(Value::Integer(_)) => self.kv_round_trip().await,
                other => Err(format!("sqlite returned {other:?}")),
            },
            Err(e) => Err(format!("sqlite query: {e}")),
        };
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.db.checkin(conn));
        checked
    }

    /// The component's key-value check: read the probe key, and write it (then read
    /// it back) only when it is missing, i.e. on the first probe of a store.
    async fn kv_round_trip(self: &Arc<Self>) -> Result<(), String> {
        let value = b"ok".to_vec();
        match self.kv_get().await? {
            Some(read) if read == value => return Ok(()),
            Some(other) => return Err(format!("key-value get returned {other:?}")),
            None => {}
        }
        let stored = value.clone();
        self.kv(move |c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(rusqlite::params![STORE, PROBE_KEY, stored])
            .map(drop)
        })
        .await
        .map_err(|e| format!("key-value set: {e}"))?;
        match self.kv_get().await? {
            Some(read) if read == value => Ok(()),
            other => Err(format!("key-value get after set returned {other:?}")),
        }
    }

    async fn kv_get(self: &Arc<Self>) -> Result<Option<Vec<u8>>, String> {
        self.kv(|c| {
            let mut stmt =
                c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
            let mut rows = stmt.query(rusqlite::params![STORE, PROBE_KEY])?;
            rows.next()?.map(|r| r.get(0)).transpose()
        })
        .await
        .map_err(|e| format!("key-value get: {e}"))
    }

    /// One key-value statement on the blocking pool with its own pooled connection.
    async fn kv<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = me.kv.checkout().map_err(|e| format!("{e:#}"))?;
            let result = op(&conn).map_err(|e| e.to_string());
            me.kv.checkin(conn);
            result
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Runs a statement and collects its rows as owned values, as the gateway's sqlite
/// host does for the guest.
fn query(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(
            (0..columns)
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()?,
        );
    }
    Ok(out)
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Serves `/healthz` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    native: Arc<Native>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _client)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let native = Arc::clone(&native);
                let service = hyper::service::service_fn(move |req| {
                    let native = Arc::clone(&native);
                    async move { Ok::<_, Infallible>(native.handle(req).await) }
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
