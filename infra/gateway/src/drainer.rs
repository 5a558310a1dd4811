//! The gateway's own queue timer: calls the app's drain route (`POST /internal/drain`
//! with the internal secret) continuously while jobs are due, right after a request
//! that queued work (a component marks such a response with `x-courier-queued`), and
//! every [`IDLE_INTERVAL`] otherwise (retries coming due, expired leases). On Spin and
//! SpinKube a scheduler calls the same route instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::Notify;

use crate::server::App;

/// The route the worker serves.
pub const DRAIN_PATH: &str = "/internal/drain";
/// How often an idle queue is looked at.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(1);
/// The response header by which a component says it queued work.
pub const QUEUED_HEADER: &str = "x-courier-queued";

/// Wakes the drainer early.
#[derive(Debug, Default)]
pub struct Poke(Notify);

impl Poke {
    pub fn poke(&self) {
        self.0.notify_one();
    }
}

/// Runs until the app is dropped or `stop` is notified.
pub async fn run(app: Arc<App>, component: String, secret: String, stop: Arc<Notify>) {
    loop {
        let remaining = match drain_once(&app, &component, &secret).await {
            Ok(remaining) => remaining,
            Err(e) => {
                tracing::warn!(error = %e, "drain failed");
                0
            }
        };
        if remaining > 0 {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = app.poke.0.notified() => {}
            () = tokio::time::sleep(IDLE_INTERVAL) => {}
            () = stop.notified() => return,
        }
    }
}

async fn drain_once(app: &Arc<App>, component: &str, secret: &str) -> anyhow::Result<i64> {
    let request = http::Request::post(format!("http://localhost{DRAIN_PATH}"))
        .header("x-internal-secret", secret)
        .header(http::header::HOST, "localhost")
        .body(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed_unsync(),
        )?;
    let response = app
        .handle_internal(component, request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_bytes();
    if !status.is_success() {
        anyhow::bail!(
            "drain answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&body)?;
    let field = |name: &str| report[name].as_i64().unwrap_or(0);
    app.metrics
        .drained(field("done"), field("remaining"), field("dead"));
    if field("done") > 0 || field("dead_lettered") > 0 {
        tracing::info!(
            done = field("done"),
            remaining = field("remaining"),
            retried = field("retried"),
            dead_lettered = field("dead_lettered"),
            "drained"
        );
    }
    Ok(field("remaining"))
}
