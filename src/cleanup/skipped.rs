//! Noticing clean-up that could not run: a counter and a `tracing` warning.

use crate::sync::{Ordering, StaticCounter};

/// Clean-ups that did not run to completion, since the process started.
static SKIPPED: StaticCounter = StaticCounter::new(0);

/// Why a clean-up did not run to completion.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Skip {
    /// The scope future was dropped before it finished.
    ScopeDropped,
    /// A guard was dropped after its scope had finished (it outlived the
    /// scope, e.g. through a `'static` handle on another thread).
    AfterScope,
    /// The scope's clean-up timeout fired and the clean-up did not finish
    /// within its last poll.
    TimedOut,
}

/// How many clean-ups (an adopted value's `prepare_drop` or a deferred
/// future) did not run to completion in this process so far.
///
/// A clean-up is skipped when the scope future is dropped before it
/// finishes (deferred futures are dropped unrun, adopted values get only
/// their sync `Drop`), when the scope's clean-up timeout cuts it off, or when
/// an [`Adopted`](crate::Adopted) guard is dropped after its scope returned.
/// With the `tracing` feature, each skip also logs a warning.
///
/// Use it in tests or health checks to notice scopes that are dropped
/// instead of awaited:
///
/// ```
/// # futures::executor::block_on(async {
/// let before = taskscope::cleanup_skipped_count();
/// let fut = taskscope::scope(|s| {
///     // Deferred when the body closure is called, which `scope` does at once.
///     s.defer(async { unreachable!("never polled") });
///     async { std::future::pending::<()>().await }
/// });
/// drop(fut); // dropped, not awaited: the deferred future cannot run
/// assert!(taskscope::cleanup_skipped_count() > before);
/// # });
/// ```
pub fn cleanup_skipped_count() -> usize {
    // Relaxed: a statistic; nothing is published through it.
    SKIPPED.load(Ordering::Relaxed)
}

pub(crate) fn note_skipped(why: Skip) {
    // Relaxed: see `cleanup_skipped_count`.
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    #[cfg(feature = "tracing")]
    tracing::warn!(
        reason = ?why,
        "taskscope: a clean-up (adopted value or deferred future) did not run to completion; \
         adopted values still got their sync Drop"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = why;
}
