//! Helpers for the combinators' unit tests.

use std::future::Future;
use std::task::Poll;

/// Returns `Pending` once (waking itself at once), then `Ready`.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}
