//! What PostgreSQL's backends of one database are doing under load, sampled from
//! `pg_stat_activity` every few milliseconds by a thread of its own: for each
//! sample, every backend that is active or idle inside a transaction, by wait event
//! (or "on CPU") and the statement it runs. `courier-bench scale` prints the tally
//! of its PostgreSQL send loops, so a claim such as "sends wait on the org's bucket
//! row" is read off the server, not guessed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, anyhow};
use courier_store::native_pg::NativePostgres;
use courier_store::sql::{Sql, SqlValue};

/// How often the sampler looks.
const EVERY: Duration = Duration::from_millis(20);

/// A sampler running until [`Sampler::stop`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Waits>>,
}

/// The tally: for each (what the backend waits on, its state, the statement's
/// start), how many backends were seen so across all samples.
#[derive(Debug, Default)]
pub struct Waits {
    pub samples: usize,
    pub seen: HashMap<(String, String, String), usize>,
}

impl Sampler {
    /// Starts sampling the backends of `database` on the server at `server_url`
    /// (on a connection of its own, which it leaves out). A failure to connect or
    /// to sample is [`Sampler::stop`]'s error.
    pub fn start(server_url: &str, database: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let (server_url, database) = (server_url.to_string(), database.to_string());
        // Its own thread, connection included: the synchronous driver blocks, and
        // must not run on an async runtime's thread.
        let thread = std::thread::spawn(move || {
            let conn = NativePostgres::connect(&server_url)
                .map_err(|e| anyhow!("the wait sampler's connection: {e}"))?;
            let mut waits = Waits::default();
            while !stopped.load(Ordering::Relaxed) {
                waits.add(&conn, &database)?;
                std::thread::sleep(EVERY);
            }
            Ok(waits)
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Result<Waits> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow!("the wait sampler panicked"))?
    }
}

impl Waits {
    fn add(&mut self, conn: &NativePostgres, database: &str) -> Result<()> {
        // The components' queries reach the server wrapped (`WITH courier_q AS (…)`,
        // see courier_store::sql::never_empty): the statement is what follows.
        let rows = conn
            .query(
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU'), state,
                        left(regexp_replace(regexp_replace(query, '^WITH courier_q AS \\(', ''),
                                            '\\s+', ' ', 'g'), 60),
                        count(*)
                 FROM pg_stat_activity
                 WHERE datname = ? AND pid <> pg_backend_pid()
                   AND state IN ('active', 'idle in transaction')
                 GROUP BY 1, 2, 3",
                &[database.into()],
            )
            .map_err(|e| anyhow!("sampling pg_stat_activity: {e}"))?;
        self.samples += 1;
        for row in rows {
            let text = |i: usize| {
                row.get(i)
                    .and_then(SqlValue::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let n = row.get(3).and_then(SqlValue::as_i64).unwrap_or(0);
            *self.seen.entry((text(0), text(1), text(2))).or_default() +=
                usize::try_from(n).unwrap_or(0);
        }
        Ok(())
    }

    /// The `top` most seen, as "backends on average per sample", most first.
    pub fn top(&self, top: usize) -> Vec<(f64, &(String, String, String))> {
        let mut seen: Vec<_> = self
            .seen
            .iter()
            .map(|(key, &n)| (n as f64 / self.samples.max(1) as f64, key))
            .collect();
        seen.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        seen.truncate(top);
        seen
    }
}

/// One statement's line of `pg_stat_statements`.
#[derive(Debug)]
pub struct Statement {
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
    pub query: String,
}

/// Empties `pg_stat_statements` for the database at `database_url`, creating the
/// extension there first; `Err` with the server's reason when the server does not
/// load it (`shared_preload_libraries`, see `tests/postgres/start.sh`). Blocks: call
/// it off the async runtime.
pub fn reset_statements(database_url: &str) -> Result<()> {
    let conn = NativePostgres::connect(database_url).map_err(|e| anyhow!("{e}"))?;
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", &[])
        .and_then(|()| conn.execute("SELECT pg_stat_statements_reset()", &[]))
        .map_err(|e| anyhow!("pg_stat_statements is not available: {e}"))
}

/// The `top` statements of the database at `database_url` by total execution time
/// since [`reset_statements`]. Blocks, like it.
pub fn top_statements(database_url: &str, top: usize) -> Result<Vec<Statement>> {
    let conn = NativePostgres::connect(database_url).map_err(|e| anyhow!("{e}"))?;
    let rows = conn
        .query(
            "SELECT calls, total_exec_time, mean_exec_time,
                    left(regexp_replace(regexp_replace(query, '^WITH courier_q AS \\(', ''),
                                        '\\s+', ' ', 'g'), 70)
             FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY total_exec_time DESC LIMIT ?",
            &[i64::try_from(top).unwrap_or(i64::MAX).into()],
        )
        .map_err(|e| anyhow!("reading pg_stat_statements: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|row| Statement {
            calls: row.first().and_then(SqlValue::as_i64).unwrap_or(0),
            total_ms: row.get(1).and_then(SqlValue::as_f64).unwrap_or(0.0),
            mean_ms: row.get(2).and_then(SqlValue::as_f64).unwrap_or(0.0),
            query: row
                .get(3)
                .and_then(SqlValue::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect())
}
