//! [`AsyncDrop`]: the async work a value needs before it goes away.

use std::future::Future;

/// Asynchronous preparation for a value's destruction, run by the scope that
/// [adopted](crate::Scope::adopt) the value before the scope returns.
///
/// `prepare_drop` does the part of clean-up that must await something (flush
/// a buffer, send a goodbye frame, commit or roll back a transaction). The
/// ordinary synchronous [`Drop`] of the value **always** runs afterwards,
/// whether `prepare_drop` ran to completion, was cut off by the scope's
/// clean-up timeout, or never ran at all because the scope future was
/// dropped. (The one exception is a scope future leaked with
/// [`mem::forget`](std::mem::forget): its values leak with it, as the
/// values of a forgotten `Vec` do, including values whose guards are
/// dropped after it was forgotten.) So keep the sync `Drop` correct on its own (release the OS
/// handle, log that the value was not closed cleanly) and treat
/// `prepare_drop` as the polite path.
///
/// The future must be `Send`, so values adopted by a [`scope`](crate::scope)
/// (whose future may move between threads) can be cleaned up there. A value
/// whose clean-up future is not `Send` implements [`LocalAsyncDrop`](crate::LocalAsyncDrop)
/// instead and is adopted by a [`local_scope`](crate::local_scope). Every
/// `AsyncDrop` type is also a `LocalAsyncDrop` type.
///
/// ```
/// use taskscope::AsyncDrop;
///
/// struct Connection { open: bool }
///
/// impl AsyncDrop for Connection {
///     // An `async fn` implements the method; it must produce a `Send` future.
///     async fn prepare_drop(&mut self) {
///         // e.g. `self.stream.write_all(b"QUIT").await`
///         self.open = false;
///     }
/// }
///
/// impl Drop for Connection {
///     fn drop(&mut self) {
///         if self.open {
///             eprintln!("connection dropped without a clean close");
///         }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     let conn = s.adopt(Connection { open: true });
///     assert!(conn.open);
///     // Dropped here (or by an early return, `?`, a panic): the scope runs
///     // `prepare_drop` before it returns, then the sync `Drop`.
/// })
/// .await;
/// # });
/// ```
///
/// # Calling it more than once
///
/// If `prepare_drop`'s future is dropped before it completes (a cancelled
/// [`Adopted::close`](crate::Adopted::close)), the value goes back to its
/// scope, which calls `prepare_drop` again from the start. Write it so that
/// a second call finishes whatever the first left undone.
///
/// # Cancellation
///
/// The scope runs clean-up under a fresh token of its own, not the scope's
/// (cleaning up after a cancelled scope is the point), so
/// [`checkpoint`](crate::checkpoint) and [`cancelled`](crate::cancelled)
/// inside `prepare_drop` observe only the scope's clean-up timeout (with
/// [`CancelReason::Deadline`](crate::CancelReason::Deadline)), and, for a
/// scope made inside another scope's clean-up, that clean-up's timeout too
/// (with `Parent(Deadline)`).
///
/// That timeout gives a running clean-up one more poll to finish before it
/// is dropped (see [`Builder::cleanup_timeout_when`](crate::Builder::cleanup_timeout_when)),
/// so stop *within* that poll: `flush.until_cancelled_ambient()` or a
/// `select` on [`cancelled`](crate::cancelled) returns at once, whereas
/// [`race`](crate::race()) waits for its loser, which may take longer than one
/// poll and get the clean-up dropped and counted as skipped.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `AsyncDrop` clean-up for a scope to run",
    note = "implement `taskscope::AsyncDrop` for it; if it implements `LocalAsyncDrop` (a clean-up \
            that is not `Send`), adopt it in a `local_scope` instead"
)]
pub trait AsyncDrop {
    /// The asynchronous part of dropping `self`; the sync `Drop` follows.
    fn prepare_drop(&mut self) -> impl Future<Output = ()> + Send + '_;
}
