//! One component instance for one request.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::App;
use super::answers::{error_response, unavailable};
use super::spin_headers::with_spin_headers;
use crate::host::{Grants, HostState, InternalRoutes};
use crate::metrics::Metrics;
use crate::routes::RouteMatch;

impl App {
    /// Instantiates `component` once in a fresh store and drops it, without calling
    /// it: the per-request instantiation cost, for benchmarks.
    pub async fn instantiate_only(self: &Arc<Self>, component: &str) -> Result<Duration> {
        let loaded = self
            .components
            .get(component)
            .ok_or_else(|| anyhow!("no component `{component}`"))?;
        let started = Instant::now();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .build();
        let mut store = Store::new(&self.engine, self.host_state(&loaded.grants, limits));
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(u64::MAX / 2);
        loaded.pre.instantiate_async(&mut store).await?;
        drop(store);
        Ok(started.elapsed())
    }

    /// The host state of one run of a component granted `grants`.
    fn host_state(self: &Arc<Self>, grants: &Arc<Grants>, limits: StoreLimits) -> HostState {
        let internal: Weak<dyn InternalRoutes> = Arc::downgrade(self) as Weak<App>;
        HostState::new(
            &self.stores,
            internal,
            self.faults.clone(),
            Arc::clone(grants),
            limits,
        )
    }

    /// Runs one component instance for one request, within the request timeout.
    pub(crate) async fn call<B>(
        self: &Arc<Self>,
        component: &str,
        req: Request<B>,
        matched: Option<&RouteMatch>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Some(loaded) = self.components.get(component) else {
            return error_response(StatusCode::NOT_FOUND, "not_found", "no such component");
        };
        let req = with_spin_headers(req, matched, client);
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.max_memory_bytes)
            .instances(64)
            .build();
        let mut store = Store::new(&self.engine, self.host_state(&loaded.grants, limits));
        store.limiter(|s| s.limiter());
        let deadline = Instant::now() + self.limits.request_timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(TimedOut))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = (|| {
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)?;
            let out = store.data_mut().http().new_response_outparam(sender)?;
            anyhow::Ok((req, out))
        })();
        let (req, out) = match prepared {
            Ok(v) => v,
            Err(e) => {
                return error_response(StatusCode::BAD_REQUEST, "bad_request", &format!("{e}"));
            }
        };
        let pre = loaded.pre.clone();
        let app = Arc::clone(self);
        let component_id = component.to_string();
        let task = tokio::spawn(async move {
            let _in_use = app.metrics.instance_started();
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        // Dropped with this future when the client goes away before the answer
        // (hyper drops a request's future when its connection closes): the instance
        // stops at its next yield and what it held (SQLite connection, an open
        // transaction, rolled back, its slot in the pool) is freed at once.
        let mut abandon = Abandon {
            task: Some(task.abort_handle()),
            metrics: &self.metrics,
        };

        let timeout = self.limits.request_timeout;
        let answer = tokio::time::timeout(timeout, receiver).await;
        // From here the task runs to its end (it streams the body of its answer).
        abandon.task = None;
        match answer {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(e))) => {
                // The guest gave up on its answer with a wasi-http error code (its SDK
                // does when the answer's body fails): nothing says whether it changed
                // anything, so the client may retry, as after any 503.
                tracing::warn!(component = component_id, error = ?e, "guest answered with an error code");
                unavailable("component failed")
            }
            Ok(Err(_)) => {
                // The guest never set a response: look at how its task ended.
                let error = match task.await {
                    Ok(Ok(())) => {
                        tracing::error!(
                            component = component_id,
                            "guest returned without a response"
                        );
                        return failed();
                    }
                    Ok(Err(e)) => e,
                    Err(e) => {
                        tracing::error!(component = component_id, error = %e, "component task failed");
                        return failed();
                    }
                };
                match Failure::of(&error) {
                    Failure::TimedOut => {
                        tracing::warn!(component = component_id, "request timed out");
                        unavailable("request timed out")
                    }
                    Failure::OutOfInstances => {
                        tracing::warn!(
                            component = component_id,
                            error = format!("{error:#}"),
                            "out of instances"
                        );
                        unavailable("too many requests in flight")
                    }
                    Failure::Trapped => {
                        tracing::error!(
                            component = component_id,
                            error = format!("{error:#}"),
                            "component trapped"
                        );
                        failed()
                    }
                }
            }
            Err(_) => {
                task.abort();
                tracing::warn!(component = component_id, "request timed out");
                unavailable("request timed out")
            }
        }
    }
}

/// Stops a request's instance if the request's future is dropped before the answer.
struct Abandon<'a> {
    task: Option<tokio::task::AbortHandle>,
    metrics: &'a Metrics,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            self.metrics.request_abandoned();
        }
    }
}

/// The error a run's epoch callback stops it with once its deadline has passed.
#[derive(Debug)]
struct TimedOut;

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request timed out")
    }
}

impl std::error::Error for TimedOut {}

/// How a run that set no response ended, told by the type of its error.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// Stopped by [`TimedOut`].
    TimedOut,
    /// Not instantiated: the pooling allocator's instances, memories, tables or
    /// stacks (`--max-instances`) are all in use.
    OutOfInstances,
    /// Anything else: a trap of the guest, or a host call that failed it.
    Trapped,
}

impl Failure {
    fn of(error: &wasmtime::Error) -> Self {
        if error.is::<TimedOut>() {
            Self::TimedOut
        } else if error.is::<wasmtime::PoolConcurrencyLimitError>() {
            Self::OutOfInstances
        } else {
            Self::Trapped
        }
    }
}

/// The answer to a run that failed without an answer of its own.
fn failed() -> Response<HyperOutgoingBody> {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "component failed",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_by_type_through_context() {
        let timed_out =
            wasmtime::Error::new(TimedOut).context("error while executing at wasm backtrace");
        assert_eq!(Failure::of(&timed_out), Failure::TimedOut);
        // Text alone does not make a timeout.
        let trap = wasmtime::format_err!("request timed out");
        assert_eq!(Failure::of(&trap), Failure::Trapped);
    }
}
