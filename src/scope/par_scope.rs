//! [`par_scope`]: a scope whose children are polled in parallel.

use std::future::Future;

use super::builder::Builder;
use super::handle::Scope;
use super::scope_future::ScopeFuture;

/// Like [`scope`](crate::scope), but the ready children are polled in
/// parallel on rayon's thread pool: children that borrow, on several cores.
///
/// ```
/// # futures::executor::block_on(async {
/// let rows: Vec<u64> = (1..=1_000).collect();
/// let rows = &rows; // children borrow the rows; they are never copied
/// let total = taskscope::par_scope(|s| async move {
///     let handles: Vec<_> = rows
///         .chunks(100)
///         .map(|chunk| s.spawn(async move { chunk.iter().map(|n| n * n).sum::<u64>() }))
///         .collect();
///     let mut total = 0;
///     for handle in handles {
///         total += handle.await;
///     }
///     total
/// })
/// .await;
/// assert_eq!(total, (1..=1_000).map(|n: u64| n * n).sum::<u64>());
/// # });
/// ```
///
/// The handle, [`JoinHandle`](crate::JoinHandle)s, tokens and panics behave
/// exactly as in [`scope`](crate::scope), and so does everything built on
/// [`Scope`]. Children must be `Send` and what they borrow `Sync`, which
/// [`Scope::spawn`] already requires.
///
/// # How it runs
///
/// Children are polled only inside the scope future's own `poll`, as in
/// [`scope`](crate::scope). That `poll` takes the batch of ready children
/// and, when the batch is worth it, polls them on the calling thread and on
/// rayon's other pool threads at once (fork-join), picking up children that
/// are woken meanwhile; it returns only after every one of those polls has
/// returned. So the thread that polls the scope is busy for as long as the
/// longest child poll of the batch: short for children that mostly wait,
/// and exactly the parallelism asked for with CPU-heavy children. As with
/// `rayon::join` called from outside the pool, a fan-out also waits until
/// the pool has taken up each helper job it spawned: on a pool saturated
/// with other long jobs, the scope's poll waits for one of them to end, and
/// pool jobs that wait for the executor polling a `par_scope` deadlock it.
///
/// A batch is fanned out only when at least two children are ready and
/// their expected work (the scope's running estimate of one poll, times
/// their number) is some tens of microseconds; otherwise its children are
/// polled one after the other on the calling thread, as in
/// [`scope`](crate::scope), so children that mostly wait on I/O cost about
/// what they cost there. A single ready child is always polled inline. A
/// new scope learns the cost of a poll from its first one, timed alone,
/// unless the last `par_scope` polled on its thread had heavy children:
/// then it starts from that estimate, so that even two heavy children (a
/// divide-and-conquer step) run at once.
///
/// Each child costs a few hundred nanoseconds of bookkeeping (spawning,
/// polling, joining), part of it on the body's thread, and the pool threads
/// are woken again for every fan-out; for items of a few microseconds of
/// work each, spawn one child per chunk of items rather than one per item.
/// Measured on 2 cores with items of 1 to 10 µs: a child per item runs
/// 1.6 to 1.75 times as fast as a serial loop, a child per 64 items 1.9 to
/// 1.97 times, rayon's `par_iter` 1.85 to 1.95 times (design/performance.md,
/// workload 4).
///
/// The body is always polled on the thread that polls the scope future, so
/// it need not be `Send`.
///
/// Children run on the pool of the thread that polls the scope: rayon's
/// global pool, or the pool of `ThreadPool::install` when called inside it.
/// A `par_scope` inside a child of a `par_scope` (at any depth) shares that
/// pool; a pool thread that waits for its helpers runs other pool work
/// meanwhile, so nesting does not deadlock. Like any rayon work, a child
/// must not *block* its thread on something that only another child of the
/// same pool would release (a `std::sync::Barrier`, a lock held across an
/// `.await`): when the pool is busy both may end up on one thread. Code
/// that needs a runtime's context (a tokio timer created inside a child,
/// say) may not find it on a pool thread: create such resources before
/// spawning the child, or use runtime-independent futures.
///
/// # Cancel safety
///
/// As [`scope`](crate::scope): dropping the scope future before it
/// completes cancels the scope's token with
/// [`CancelReason::ScopeDropped`](crate::CancelReason::ScopeDropped) and
/// then drops the body and every unfinished child, on the dropping thread.
/// A drop cannot happen while a `poll` is running, so no child is being
/// polled on another thread then.
///
/// # Panics
///
/// As [`scope`](crate::scope): a child's panic is caught on whichever
/// thread polled the child and re-raised where its handle is awaited, or
/// else by the scope future once every other child finished; the first
/// panic cancels the scope. A panicking
/// [`on_cancel`](crate::CancelToken::on_cancel) callback run by that
/// cancellation is caught too, and kept with the scope's panics.
///
/// Code that runs around a child's poll rather than inside it is guarded
/// too: a panicking waker of a [`JoinHandle`](crate::JoinHandle) awaited
/// outside the scope, and a panicking destructor of an output whose handle
/// was dropped, are caught and raised by the scope once every child
/// finished. What can still unwind out of a poll is a `tracing` subscriber
/// that panics (with the `tracing` feature), or std's panic on a
/// thread-local being destroyed, if the scope is polled from another
/// thread-local's destructor as its thread exits. If that happens during a
/// fan-out, the other threads finish the polls they are making first; then
/// the panic is resumed from the scope future's `poll`, and the scope cannot
/// complete after it (the children the unwinding thread held were dropped while
/// still registered): drop it, which cancels and drops what is left, as
/// under "Cancel safety".
///
/// Polling the scope future again after it completed panics.
pub fn par_scope<'env, F, Fut>(body: F) -> ScopeFuture<'env, Fut>
where
    F: FnOnce(Scope<'env>) -> Fut,
    Fut: Future,
{
    Builder::new().par_scope(body)
}
