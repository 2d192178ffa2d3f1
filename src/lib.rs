//! Structured concurrency for async Rust: child tasks that borrow, voluntary
//! cancellation that does not lose work, and clean-up that runs.
//!
//! ```
//! # futures::executor::block_on(async {
//! let data = vec![1_u64, 2, 3, 4];
//! let data = &data; // the body moves in references, never the data itself
//! let total = taskscope::scope(|s| async move {
//!     // Children borrow `data`; they run whenever the scope is polled,
//!     // even while the body awaits something else.
//!     let handles: Vec<_> = data.chunks(2).map(|chunk| s.spawn(async move { chunk.iter().sum::<u64>() })).collect();
//!     let mut total = 0;
//!     for handle in handles {
//!         total += handle.await;
//!     }
//!     total
//! })
//! .await; // every child has finished here
//! assert_eq!(total, 10);
//! # });
//! ```
//!
//! # Borrowing from the caller
//!
//! The body is an `async move` block: it takes in what it names. Name a
//! reference to the caller's data (`let data = &data;` above), not the data
//! itself: moved into the body, the data lives only as long as the body,
//! and children may only borrow what outlives the scope. rustc then says
//! the data "does not live long enough":
//!
//! ```compile_fail,E0597
//! # futures::executor::block_on(async {
//! let data = vec![1_u64, 2, 3, 4];
//! // No `let data = &data;`: the `async move` body takes `data` itself.
//! let total = taskscope::scope(|s| async move {
//!     let handles: Vec<_> = data.chunks(2).map(|chunk| s.spawn(async move { chunk.iter().sum::<u64>() })).collect();
//!     let mut total = 0;
//!     for handle in handles {
//!         total += handle.await;
//!     }
//!     total
//! })
//! .await;
//! assert_eq!(total, 10);
//! # });
//! ```
//!
//! See design/overview.md in the repository for the model: scopes form a
//! tree, each scope's future polls its body and its woken children, and
//! every scope owns a [`CancelToken`] that is a child of the token current
//! where the scope is created (its task's, or a wrapper's around it), or of
//! [`Builder::parent`]'s.
//!
//! # Features
//!
//! - `parallel` (on by default): [`par_scope`] and [`try_par_scope`],
//!   children polled in parallel on rayon's pool.
//! - `tokio`: deadlines (`CancelExt::cancel_after`,
//!   `CancelExt::cancel_at`, `Builder::cleanup_timeout`), tokio's I/O
//!   traits for [`CancellableIo`], and tokio's runtime context for
//!   `par_scope` children polled on rayon's threads.
//! - `tokio-util`: conversions to and from tokio-util's
//!   `CancellationToken`.
//! - `tracing`: spans and events for scopes, tasks, cancellation and
//!   clean-up (below).
//! - `serde`: `serde::Serialize` for [`Snapshot`] and its parts (format on
//!   [`Snapshot`]).
//!
//! # Seeing inside
//!
//! [`snapshot`] (or [`Scope::snapshot`], or a [`SnapshotHandle`] from
//! another thread) returns the live tree of scopes and tasks: names, where
//! each was made or spawned, states, cancellation reasons, poll counts and
//! times; its `Display` is an indented tree. With the `tracing` feature:
//!
//! - every scope has a span `taskscope.scope` (fields `id`, `name`, `at`),
//!   entered while its future is polled, under the span current where the
//!   scope was made;
//! - every child has a span `taskscope.task` (fields `id` written
//!   `scope.task`, `name`, `at`), under its scope's span, entered while
//!   the child is polled;
//! - both are at DEBUG, so a subscriber at INFO sees none of them;
//! - events: a scope cancelled and a task cancelled through its handle
//!   (INFO, with the reason), a task, body or clean-up panicked (ERROR,
//!   with the message), each clean-up run (DEBUG), skipped clean-ups and
//!   a fired clean-up timeout (WARN). The cancellation and panic events
//!   name their task (`task`, `name`) or scope (`scope`, `name`) in fields,
//!   so they say which one at INFO too. The scope-cancelled event is
//!   registered when the scope is made, and only if INFO is enabled then.
// Four places with `unsafe` code in the crate, each allowed where it
// stands: building a branch's waker from an integer
// (src/combinators/wake_slots.rs), the array forms' pin projection
// (src/combinators/array.rs), the scope's task cells, one allocation per
// child counted by hand (src/scope/cell.rs), and the parallel scope's
// admission gate, helper jobs that reach a fan-out's borrowed state through
// an erased lifetime (src/scope/gate.rs); the arguments are in
// design/soundness.md, "Branch wakers", "Array forms", "Task cells" and
// "The admission gate". Everything else is denied.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod cancel;
mod cleanup;
mod combinators;
mod introspect;
mod scope;
pub(crate) mod stream;
mod sync;
#[cfg(test)]
mod test_util;

#[cfg(feature = "tokio-util")]
pub use cancel::TokioUtilBridge;
pub use cancel::{
    CancelExt, CancelStreamExt, CancelWhen, CancellableIo, CancellableStream, Shield,
    UntilCancelled, cancel_when, shield,
};
pub use cancel::{
    CancelOnDrop, CancelReason, CancelToken, Cancelled, OnCancel, WhenCancelled, cancelled,
    checkpoint, current_token, is_cancelled,
};
pub use cleanup::{Adopted, AsyncDrop, LocalAdopted, LocalAsyncDrop, cleanup_skipped_count};
#[doc(hidden)]
pub use combinators::private as __private;
pub use combinators::{
    ArrayForm, Join, JoinAll, JoinArray, Race, RaceAll, RaceArray, RaceOk, Select, TryJoin,
    TryJoinAll, TryJoinArray, join, join_all, join_array, race, race_all, race_array, race_ok,
    select, try_join, try_join_all, try_join_array,
};
pub use introspect::{
    ScopeSnapshot, Snapshot, SnapshotDisplay, SnapshotHandle, TaskSnapshot, TaskState,
    record_poll_times, snapshot,
};
#[cfg(all(loom, feature = "parallel"))]
#[doc(hidden)]
pub use scope::loom_gate as __loom_gate;
#[cfg(all(loom, feature = "parallel"))]
#[doc(hidden)]
pub use scope::loom_par_scope as __loom_par_scope;
#[cfg(all(loom, feature = "parallel"))]
#[doc(hidden)]
pub use scope::loom_par_scope_fanning_out_the_body as __loom_par_scope_fanning_out_the_body;
pub use scope::{
    Builder, JoinHandle, LocalScope, LocalScopeFuture, POLL_BUDGET, Scope, ScopeFuture,
    local_scope, scope,
};
pub use scope::{
    LocalTryScope, LocalTryScopeFuture, TryScope, TryScopeFuture, local_try_scope, try_scope,
};
#[cfg(feature = "parallel")]
pub use scope::{par_scope, try_par_scope};
pub use stream::{BufferUnorderedIn, BufferedIn, ForEachIn, ScopedStreamExt, Spawner};
