//! Outbound HTTP as the delivery services need it ([`Transport`]): every request of a
//! round at once over Spin's outbound HTTP, each given up after a time limit if the
//! component sets one ([`Outbound`], raced against a [`Deadline`]). Push delivery and
//! webhook delivery share it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use courier_messaging::push::deliver::Transport;
use futures::future::{Either, select};

/// Spin's outbound HTTP: a round's requests are sent concurrently, each given up
/// after `timeout_ms` when set (dropping it cancels the host's request).
pub struct Outbound {
    pub timeout_ms: Option<u64>,
}

impl Transport for Outbound {
    fn send_all(
        &mut self,
        requests: Vec<http::Request<Vec<u8>>>,
    ) -> Vec<Result<http::Response<Vec<u8>>, String>> {
        let timeout_ms = self.timeout_ms;
        let sends = requests.into_iter().map(|req| async move {
            let send = Box::pin(spin_sdk::http::send::<_, http::Response<Vec<u8>>>(req));
            let Some(timeout_ms) = timeout_ms else {
                return send.await.map_err(|e| e.to_string());
            };
            match select(send, Deadline::after_ms(timeout_ms)).await {
                Either::Left((answer, _)) => answer.map_err(|e| e.to_string()),
                Either::Right(((), _)) => Err(format!("no answer within {timeout_ms} ms")),
            }
        });
        spin_sdk::http::run(futures::future::join_all(sends))
    }
}

/// A future ready at a point of the monotonic clock (`wasi:clocks`), woken by
/// spin-sdk's executor through a timer pollable.
pub struct Deadline {
    at_ns: u64,
    _registration: Option<spin_executor::CancelOnDropToken>,
}

impl Deadline {
    pub fn after_ms(ms: u64) -> Deadline {
        let now = wasi::clocks::monotonic_clock::now();
        Deadline {
            at_ns: now.saturating_add(ms.saturating_mul(1_000_000)),
            _registration: None,
        }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if wasi::clocks::monotonic_clock::now() >= self.at_ns {
            return Poll::Ready(());
        }
        let timer = wasi::clocks::monotonic_clock::subscribe_instant(self.at_ns);
        // Replacing the token drops (cancels) the previous registration.
        self._registration =
            Some(spin_executor::push_waker_and_get_token(timer, cx.waker().clone()).into());
        Poll::Pending
    }
}
