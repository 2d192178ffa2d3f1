//! [`par_scope`] and [`try_par_scope`]: scopes whose children are polled in
//! parallel.

use std::fmt;
use std::future::Future;

use super::builder::Builder;
use super::handle::Scope;
use super::scope_future::ScopeFuture;
use super::try_scope::TryScope;
use super::try_scope_future::TryScopeFuture;

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
/// and exactly the parallelism asked for with CPU-heavy children. Unlike
/// `rayon::join` called from outside the pool, a fan-out does not wait for
/// the pool to take its helper jobs up: on a pool saturated with other long
/// jobs (even jobs that wait for the executor polling the scope), the
/// calling thread polls the batch alone and the `poll` returns once it is
/// done; a helper that starts later finds the fan-out closed and returns.
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
/// polling, joining), part of it on the body's thread; for items of a few microseconds of
/// work each, spawn one child per chunk of items rather than one per item.
/// Measured on 2 cores with items of 1 to 10 µs: a child per item runs
/// 1.6 to 1.8 times as fast as a serial loop, a child per 64 items 1.9 to
/// 1.97 times, rayon's `par_iter` 1.9 to 2.0 times (design/performance.md,
/// workload 4).
///
/// The body is always polled on the thread that polls the scope future, so
/// it need not be `Send`. When its poll is expected to spawn children worth
/// a fan-out (its last poll did; for a new scope, the first poll of the
/// last `par_scope` on its thread did), that poll is the calling thread's
/// share of one: pool threads poll the children while the body is still
/// spawning them, or still computing after it spawned them, as the second
/// closure of `rayon::join` runs while the first does. A pool thread that
/// finds nothing left to claim goes back to the pool 50 µs after the body's
/// last spawn rather than wait through a long computation of the body's.
///
/// Children run on the pool of the thread that polls the scope: rayon's
/// global pool, or the pool of `ThreadPool::install` when called inside it.
/// A `par_scope` inside a child of a `par_scope` (at any depth) shares that
/// pool; a pool thread that waits for its helpers runs other pool work
/// meanwhile (unless it is itself helping an outer scope's fan-out, whose
/// owner waits for it), and a thread outside the pool waits only for
/// helpers that already started, so nesting does not deadlock. Like any rayon work, a child
/// must not *block* its thread on something that only another child of the
/// same pool would release (a `std::sync::Barrier`, a lock held across an
/// `.await`): when the pool is busy both may end up on one thread.
///
/// A child may need its runtime's context where it is polled (a tokio timer
/// or socket made inside it). With the `tokio` feature, every thread taking
/// part in a fan-out enters the tokio runtime the scope is polled in, so a
/// child finds on a pool thread what it would find inline. Other runtimes'
/// contexts are not carried over: create such resources before spawning the
/// child, or use runtime-independent futures. Whether a child is polled on a
/// pool thread depends on the load (a batch fans out only when it pays), so
/// code that misses a context there can pass its tests and panic in
/// production.
///
/// A child may be polled by a pool thread that the thread polling the scope
/// waits for. If that child calls rayon's blocking APIs (`rayon::join`,
/// `rayon::scope`, a `par_iter`), rayon's wait may run another pool job
/// meanwhile; if that job waits for the executor that polls the scope (a
/// `block_on` of the executor's work inside `rayon::spawn`, say), neither
/// can go on. Where pool jobs may wait for the executor, fan out inside a
/// child with a nested `par_scope`, which does not run pool work while it
/// waits, rather than with rayon's own calls.
///
/// A thread waiting for its helpers may run unrelated pool work meanwhile;
/// that work sees no task of the scope ([`current_token`](crate::current_token)
/// is not the scope's) and, with the `tracing` feature, runs outside the
/// scope's span. One case is left: when the waiting fan-out belongs to a
/// `par_scope` nested in a child, that work runs inside the *outer child's*
/// span, which the thread entered to poll it and cannot leave halfway
/// (tracing has no way to set a thread's entered spans aside).
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
/// finished, and so are the panics of a `tracing` subscriber (with the
/// `tracing` feature). What can still unwind out of a poll is std's panic
/// on a thread-local being destroyed, if the scope is polled from another
/// thread-local's destructor as its thread exits. If that happens during a
/// fan-out, the other threads go on claiming and polling children until the
/// batch and the poll budget are used up, and return; then the panic is resumed from the scope future's `poll`, and the scope cannot
/// complete after it (the children the unwinding thread held were dropped while
/// still registered): drop it, which cancels and drops what is left, as
/// under "Cancel safety".
///
/// Polling the scope future again after it completed panics.
#[track_caller]
pub fn par_scope<'env, F, Fut>(body: F) -> ScopeFuture<'env, Fut>
where
    F: FnOnce(Scope<'env>) -> Fut,
    Fut: Future,
{
    Builder::new().par_scope(body)
}

/// A [`try_scope`](crate::try_scope) whose ready children are polled in
/// parallel, as in [`par_scope`]: children that can fail, borrow, and run
/// on several cores.
///
/// ```
/// # futures::executor::block_on(async {
/// let lines: Vec<String> = (1..=1_000).map(|n| n.to_string()).chain(["x".into()]).collect();
/// let lines = &lines;
/// let result: Result<u64, String> = taskscope::try_par_scope(|s| async move {
///     let handles: Vec<_> = lines
///         .chunks(100)
///         .map(|chunk| {
///             s.spawn_try(async move {
///                 let mut sum = 0;
///                 for line in chunk {
///                     // Siblings on other threads stop at their next
///                     // checkpoint once one chunk failed.
///                     taskscope::checkpoint().map_err(|c| c.to_string())?;
///                     sum += line.parse::<u64>().map_err(|e| format!("{line:?}: {e}"))?;
///                 }
///                 Ok(sum)
///             })
///         })
///         .collect();
///     let mut total = 0;
///     for handle in handles {
///         total += handle.await.map_err(|c| c.to_string())?;
///     }
///     Ok(total)
/// })
/// .await;
/// assert_eq!(result.unwrap_err(), "\"x\": invalid digit found in string");
/// # });
/// ```
///
/// The error policy (the first `Err` in time wins, cancels the scope with
/// [`CancelReason::Failed`](crate::CancelReason::Failed), and is returned
/// once the body and every child finished) is
/// [`try_scope`](crate::try_scope#error-policy)'s; "first in time" is the
/// first error recorded, whichever thread its child ran on. How the
/// children run, and when a batch fans out, is [`par_scope`]'s.
///
/// # Cancel safety
///
/// As for [`par_scope`](crate::par_scope#cancel-safety).
///
/// # Panics
///
/// As for [`par_scope`](crate::par_scope#panics); a panic is never turned
/// into an `Err`, and wins over an error, as in
/// [`try_scope`](crate::try_scope#panics).
#[track_caller]
pub fn try_par_scope<'env, F, Fut, R, E>(body: F) -> TryScopeFuture<'env, Fut, R, E>
where
    F: FnOnce(TryScope<'env, E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    E: fmt::Debug,
{
    Builder::new().try_par_scope(body)
}
