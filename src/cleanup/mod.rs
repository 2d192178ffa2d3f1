//! Async-drop-style clean-up: values adopted by a scope and deferred futures,
//! run after every child finished and before the scope returns.
//!
//! See design/cleanup.md for the choices (one LIFO stack, shielding, the
//! timeout, what happens when the scope future is dropped).

mod adopted;
mod async_drop;
mod cleanup_task;
mod defer;
pub(crate) mod enclosing;
mod guard;
mod local_adopted;
mod local_async_drop;
pub(crate) mod queue;
mod run;
mod skipped;
mod timeout;

pub use adopted::Adopted;
pub use async_drop::AsyncDrop;
pub use local_adopted::LocalAdopted;
pub use local_async_drop::LocalAsyncDrop;
pub use skipped::cleanup_skipped_count;
pub(crate) use timeout::CleanupTimeout;
