//! Helpers for the adapters' unit tests.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Returns `Pending` once (waking itself), so the scope polls its children.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}

/// `n` one-shot channels: the senders, and the receivers as item sources.
pub(crate) fn gates<T>(
    n: usize,
) -> (
    Vec<Option<futures::channel::oneshot::Sender<T>>>,
    Vec<futures::channel::oneshot::Receiver<T>>,
) {
    (0..n)
        .map(|_| {
            let (sender, receiver) = futures::channel::oneshot::channel();
            (Some(sender), receiver)
        })
        .unzip()
}
