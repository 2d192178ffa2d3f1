//! Seeing inside: snapshots of the scope tree, task names, tracing.

mod collect;
mod display;
mod handle;
#[cfg(feature = "tracing")]
mod in_span;
mod poll_times;
mod scope_info;
mod scope_snapshot;
#[cfg(feature = "serde")]
mod serde_location;
#[cfg(feature = "serde")]
mod serde_reason;
mod snapshot;
mod task_info;
mod task_snapshot;
mod task_state;

pub use display::SnapshotDisplay;
pub use handle::SnapshotHandle;
pub use poll_times::record_poll_times;
pub(crate) use scope_info::ScopeInfo;
pub use scope_snapshot::ScopeSnapshot;
pub use snapshot::{Snapshot, snapshot};
pub(crate) use task_info::TaskInfo;
pub use task_snapshot::TaskSnapshot;
pub use task_state::TaskState;
