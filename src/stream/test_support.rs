//! Helpers for the adapters' unit tests.

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
