//! Helpers for the adapters' unit tests.

use std::future::Future;

use futures::StreamExt;

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

/// Four items, 0 to 3, of which item 1 panics.
pub(crate) fn items_where_1_panics() -> impl futures::Stream<Item = impl Future<Output = u32>> {
    futures::stream::iter(0..4_u32).map(|i| async move {
        assert_ne!(i, 1, "item 1 fails");
        i
    })
}

/// Drains `items`, catching the panics a poll re-raises: `Err` where one
/// was caught. `check` runs after every poll.
pub(crate) async fn drain_catching_panics<S: futures::Stream + Unpin>(
    mut items: S,
    mut check: impl FnMut(&S),
) -> Vec<Result<S::Item, &'static str>> {
    use futures::{FutureExt, StreamExt};
    let mut outputs = Vec::new();
    loop {
        match std::panic::AssertUnwindSafe(items.next())
            .catch_unwind()
            .await
        {
            Ok(Some(output)) => outputs.push(Ok(output)),
            Ok(None) => return outputs,
            Err(_) => outputs.push(Err("panicked")),
        }
        check(&items);
    }
}
