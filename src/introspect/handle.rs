//! [`SnapshotHandle`]: takes snapshots of a scope from anywhere.

use std::fmt;

use super::snapshot::Snapshot;
use crate::scope::shared::ScopeShared;
use crate::sync::WakerArc;

/// Takes [snapshots](Snapshot) of one scope from anywhere: it is `'static`,
/// `Send` and `Sync`, so a watchdog thread can hold it while the scope runs.
///
/// Made by [`Scope::snapshot_handle`](crate::Scope::snapshot_handle). It
/// keeps a little bookkeeping alive, not the scope's tasks; once the scope
/// finished its snapshots are empty.
///
/// ```
/// # futures::executor::block_on(async {
/// taskscope::scope(|s| async move {
///     s.spawn_named("worker", async {});
///     let handle = s.snapshot_handle();
///     let seen = std::thread::spawn(move || handle.snapshot()).join().unwrap();
///     assert!(seen.find_task("worker").is_some());
/// })
/// .await;
/// # });
/// ```
#[derive(Clone)]
pub struct SnapshotHandle {
    shared: WakerArc<ScopeShared>,
}

impl SnapshotHandle {
    pub(crate) fn new(shared: WakerArc<ScopeShared>) -> Self {
        SnapshotHandle { shared }
    }

    /// A snapshot of the scope and everything below it; empty once the
    /// scope finished. See [`Scope::snapshot`](crate::Scope::snapshot).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::of_scope(&self.shared)
    }
}

impl fmt::Debug for SnapshotHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotHandle")
            .field("scope", &self.shared.info().id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_can_go_to_another_thread() {
        fn assert_send_sync_static<T: Send + Sync + 'static>() {}
        assert_send_sync_static::<SnapshotHandle>();
    }
}
