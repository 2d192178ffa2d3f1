//! [`Scope::defer`](crate::Scope::defer) and
//! [`LocalScope::defer`](crate::LocalScope::defer).

use std::future::Future;

use super::cleanup_task::CleanupTask;
use crate::{LocalScope, Scope};

impl<'env> Scope<'env> {
    /// Runs `future` when the scope is finishing: after the body and every
    /// child finished, before the scope returns. Deferred futures run one
    /// at a time, last-in, first-out, like Go's `defer`; adopted values
    /// share the same stack (see [`adopt`](Scope::adopt)).
    ///
    /// ```
    /// # use std::sync::{Arc, Mutex};
    /// # futures::executor::block_on(async {
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let log_ref = &log;
    /// taskscope::scope(|s| async move {
    ///     for step in ["first", "second"] {
    ///         let log = log_ref.clone();
    ///         s.defer(async move { log.lock().unwrap().push(step) });
    ///     }
    ///     let log = log_ref.clone();
    ///     s.spawn(async move { log.lock().unwrap().push("child") });
    /// })
    /// .await;
    /// assert_eq!(*log.lock().unwrap(), ["child", "second", "first"]);
    /// # });
    /// ```
    ///
    /// It runs shielded from the scope's cancellation, under a fresh token
    /// that only the scope's clean-up timeout
    /// ([`Builder::cleanup_timeout_when`](crate::Builder::cleanup_timeout_when))
    /// cancels (and, for a scope made inside another scope's clean-up, that
    /// one's timeout). It may adopt values and defer more futures (they run
    /// next), but not spawn children: those were already joined.
    ///
    /// The shield covers what the future makes when it runs, not what was
    /// made before: a scope future takes its token's parent where it is
    /// made, so `s.defer(scope(..))` makes the nested scope in the body,
    /// under the scope's token, and a cancel of the scope reaches it. Make
    /// it inside the deferred future instead:
    /// `s.defer(async move { scope(..).await })`.
    ///
    /// If the scope future is dropped before it finishes, deferred futures
    /// are dropped unrun and counted by
    /// [`cleanup_skipped_count`](crate::cleanup_skipped_count).
    ///
    /// # Panics
    ///
    /// If the scope has already finished (the handle outlived its scope). A
    /// panic inside `future` does not stop the other clean-ups; the scope
    /// re-raises it after all of them finished (unless the body or a child
    /// panicked first).
    #[track_caller]
    pub fn defer<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'env,
    {
        self.cleanup().push(Box::pin(CleanupTask::new(future)));
    }
}

impl<'env> LocalScope<'env> {
    /// Runs `future` when the scope is finishing; see [`Scope::defer`]. The
    /// future need not be `Send`.
    ///
    /// # Panics
    ///
    /// As for [`Scope::defer`].
    #[track_caller]
    pub fn defer<F>(&self, future: F)
    where
        F: Future<Output = ()> + 'env,
    {
        self.cleanup().push(Box::pin(CleanupTask::new(future)));
    }
}
