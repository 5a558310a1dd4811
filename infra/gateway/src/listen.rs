//! The HTTP listener: accepts connections, serves HTTP/1.1 with keep-alive, and on
//! SIGINT/SIGTERM stops accepting and lets in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::server::App;

/// How long shutdown waits for in-flight requests before giving up on them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// Binds the listen address; kept apart from [`serve`] so the caller reports a port in
/// use as a configuration error.
pub async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let stop_drainer = Arc::new(tokio::sync::Notify::new());
    let drainer = app.start_drainer(Arc::clone(&stop_drainer));
    app.start_parking();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, client) = match accepted {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = hyper::service::service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, std::convert::Infallible>(app.handle_incoming(req, client).await) }
                });
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, %client, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    // Parked polls answer now, with what their streams hold.
    if let Some(parking) = &app.parking {
        parking.close();
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
    }
    // A drain in progress finishes its current job (its work is transactional either way).
    stop_drainer.notify_one();
    if let Some(drainer) = drainer {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, drainer).await;
    }
    Ok(())
}

/// `--max-parked` when the open-file limit allows it: 20,000 parked clients on one
/// 2-core node is the goal of `courier-bench online`.
pub const DEFAULT_MAX_PARKED: usize = 20_000;
/// Descriptors kept for everything but parked clients (database files, the
/// instances' own connections, the listener).
const RESERVED_FILES: u64 = 1024;

/// Raises the soft open-file limit to the hard one (every parked client is a socket)
/// and returns the limit in force, logging both.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    let now = match setrlimit(Resource::Nofile, raised) {
        Ok(()) => getrlimit(Resource::Nofile).current,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            before.current
        }
    };
    let shown = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    tracing::info!(
        before = shown(before.current),
        now = shown(now),
        "open-file limit"
    );
    now.unwrap_or(u64::MAX)
}

/// The default `--max-parked` under an open-file limit of `open_files`.
pub fn default_max_parked(open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FILES);
    usize::try_from(room).map_or(DEFAULT_MAX_PARKED, |room| room.min(DEFAULT_MAX_PARKED))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
