//! Scopes: child tasks that borrow, always joined before the scope returns.

mod builder;
pub(crate) mod cell;
mod child;
pub(crate) mod core;
pub(crate) mod driver;
mod first_error;
#[cfg(feature = "parallel")]
mod gate;
pub(crate) mod gone;
mod handle;
mod join_handle;
mod local;
mod local_scope_future;
mod local_try_scope;
mod local_try_scope_future;
#[cfg(feature = "parallel")]
mod par_scope;
#[cfg(feature = "parallel")]
mod parallel;
mod poller_link;
mod scope_future;
pub(crate) mod shared;
pub(crate) mod task;
mod try_scope;
mod try_scope_future;

pub use builder::Builder;
pub use driver::POLL_BUDGET;
#[cfg(all(loom, feature = "parallel"))]
pub use gate::for_loom as loom_gate;
pub use handle::Scope;
pub use join_handle::JoinHandle;
pub use local::LocalScope;
pub use local_scope_future::{LocalScopeFuture, local_scope};
pub use local_try_scope::{LocalTryScope, local_try_scope};
pub use local_try_scope_future::LocalTryScopeFuture;
#[cfg(feature = "parallel")]
pub use par_scope::{par_scope, try_par_scope};
#[cfg(all(loom, feature = "parallel"))]
pub use parallel::on_loom_threads::{loom_par_scope, loom_par_scope_fanning_out_the_body};
pub use scope_future::{ScopeFuture, scope};
pub use try_scope::{TryScope, try_scope};
pub use try_scope_future::TryScopeFuture;
