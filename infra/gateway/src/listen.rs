//! The HTTP listener: accepts connections, serves HTTP/1.1 with keep-alive, and on
//! SIGINT/SIGTERM stops accepting and lets in-flight requests finish.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
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
    let connections = Arc::new(Connections::new(app.limits().max_connections_per_address));
    app.start_parking();
    app.start_housekeeping();
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
                let admitted = connections.admit(client.ip());
                let app = Arc::clone(&app);
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(app.limits().header_timeout);
                let conn = match admitted {
                    Some(admitted) => {
                        let service = hyper::service::service_fn({
                            let app = Arc::clone(&app);
                            move |req| {
                                let app = Arc::clone(&app);
                                async move {
                                    Ok::<_, std::convert::Infallible>(
                                        app.handle_incoming(req, client).await,
                                    )
                                }
                            }
                        });
                        let conn = builder
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service);
                        let conn = graceful.watch(conn);
                        Box::pin(async move {
                            let _admitted = admitted;
                            conn.await
                        }) as std::pin::Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>
                    }
                    None => {
                        // Over the address's cap: its request is read (within the
                        // header timeout) and answered 503, and the connection closes.
                        app.metrics.connection_refused();
                        tracing::warn!(%client, "too many connections from this address");
                        let service = hyper::service::service_fn(|_req| async {
                            Ok::<_, std::convert::Infallible>(crate::server::unavailable(
                                "too many connections from this address",
                            ))
                        });
                        Box::pin(
                            builder
                                .keep_alive(false)
                                .serve_connection(TokioIo::new(stream), service),
                        )
                    }
                };
                tokio::spawn(async move {
                    app.metrics.connection_opened();
                    if let Err(e) = conn.await {
                        if e.is_timeout() {
                            app.metrics.header_timed_out();
                            tracing::debug!(%client, "request head not received in time");
                        } else {
                            tracing::debug!(error = %e, %client, "connection ended with an error");
                        }
                    }
                    app.metrics.connection_closed();
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

/// `--header-timeout`: a client has this long to send a request head, so a
/// connection that trickles its headers (slowloris) or sits idle is closed. Node's
/// HTTP server closes idle keep-alive connections after the same 5 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// `--max-connections-per-address`: one address can hold at most this share of the
/// open-file budget (parked polls included). Raise it, or turn it off with 0, behind
/// a reverse proxy or a large NAT, where many clients share one address.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 1024;

/// Open connections by client address, against a cap.
struct Connections {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; frees its place when dropped.
struct Admitted {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection of `ip`, unless it holds `cap` already.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_default();
        if self.cap != 0 && *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Admitted {
            connections: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
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
