//! [`Snapshot`] and [`snapshot`]: the scope tree at one moment.

use std::fmt;
use std::time::Instant;

use super::display::SnapshotDisplay;
use super::scope_snapshot::ScopeSnapshot;
use super::task_snapshot::TaskSnapshot;
use super::{collect, poll_times};
use crate::cancel::ambient;
use crate::scope::shared::ScopeShared;

/// The live scopes and tasks of a scope tree at one moment: names, ids,
/// states, cancellation reasons, poll counts and times.
///
/// Take one with [`snapshot`] (the tree of the task calling it),
/// [`Scope::snapshot`](crate::Scope::snapshot) (one scope and what is below
/// it) or a [`SnapshotHandle`](crate::SnapshotHandle) (from another
/// thread). Its `Display` is an indented tree for a terminal; with the
/// `serde` feature it implements `serde::Serialize`.
///
/// ```
/// # futures::executor::block_on(async {
/// taskscope::Builder::new()
///     .name("server")
///     .scope(|s| async move {
///         s.spawn_named("listener", taskscope::cancelled());
///         s.cancel();
///         let snapshot = s.snapshot();
///         let tree = snapshot.display().hide_ids().hide_times().hide_locations();
///         assert_eq!(
///             tree.to_string(),
///             "scope \"server\": cancelling (cancellation was requested)\n\
///              ├─ body: being polled, 1 poll\n\
///              └─ task \"listener\": pending, 0 polls, cancelling (with its scope)\n"
///         );
///     })
///     .await;
/// # });
/// ```
///
/// # Serialized
///
/// With the `serde` feature, a snapshot serializes as its fields: scopes
/// with `id`, `name`, `location` (`"file:line:column"`), `cancelled` (the
/// reason's text, or `null`), `body` and `tasks`; tasks with `id` (the
/// number in their scope; `Display` writes `scope.task`), `name`,
/// `location`, `state` (the [`TaskState`](crate::TaskState) variant's name: `"Finished"` is
/// what `Display` calls "finished, not joined", `"Returned"` what it calls
/// "finished"), `cancelled`, `polls`, `since_last_poll` (serde's form of a
/// [`Duration`](std::time::Duration), `{"secs": 1, "nanos": 204000000}`, or
/// `null`) and `scopes`. There is no `Deserialize`: read it back as a
/// generic value (`serde_json::Value`).
///
/// ```json
/// {"scopes": [{"id": 1, "name": "server", "location": "src/main.rs:20:10",
///   "cancelled": null,
///   "body": {"id": 0, "name": null, "location": "src/main.rs:20:10",
///            "state": "Polling", "cancelled": null, "polls": 2,
///            "since_last_poll": {"secs": 0, "nanos": 0}, "scopes": []},
///   "tasks": [{"id": 1, "name": "listener", "location": "src/main.rs:22:11",
///              "state": "Pending", "cancelled": null, "polls": 1,
///              "since_last_poll": {"secs": 1, "nanos": 204000000},
///              "scopes": []}]}]}
/// ```
///
/// # Consistency
///
/// Tasks keep running while a snapshot is taken, so it is not atomic:
/// each task's entry is read at a slightly different moment. Each value is
/// one that really occurred.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// The root scopes: one, or none for a snapshot taken outside every scope.
    pub scopes: Vec<ScopeSnapshot>,
}

/// A snapshot of the scope tree the current task belongs to, from its
/// outermost scope down; empty outside every scope.
///
/// Never blocks on a running task and never deadlocks, also when called
/// from inside a child (see [`Snapshot`]). Turns on
/// [poll times](crate::record_poll_times) for later polls.
///
/// ```
/// # futures::executor::block_on(async {
/// assert!(taskscope::snapshot().is_empty());
/// taskscope::scope(|s| async move {
///     let inner = s.spawn_named("inner", async { taskscope::snapshot() });
///     let snapshot = inner.await;
///     assert_eq!(
///         snapshot.find_task("inner").unwrap().state,
///         taskscope::TaskState::Polling
///     );
/// })
/// .await;
/// # });
/// ```
///
/// # Panics
///
/// Never, short of a call from a thread-local's destructor after this
/// thread's ambient slot was torn down (where `std`'s thread-local access
/// panics), as for [`current_token`](crate::current_token).
pub fn snapshot() -> Snapshot {
    poll_times::record_poll_times();
    match ambient::current_task() {
        Some(task) => Snapshot::of(&collect::root_of(&task)),
        None => Snapshot::default(),
    }
}

impl Snapshot {
    pub(crate) fn of_scope(shared: &ScopeShared) -> Snapshot {
        poll_times::record_poll_times();
        Snapshot::of(shared)
    }

    fn of(shared: &ScopeShared) -> Snapshot {
        let scopes = collect::scope(shared, Instant::now(), 0)
            .into_iter()
            .collect();
        Snapshot { scopes }
    }

    /// Whether it holds no scope at all.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The first task named `name`, depth first.
    pub fn find_task(&self, name: &str) -> Option<&TaskSnapshot> {
        self.scopes.iter().find_map(|scope| scope.find_task(name))
    }

    /// The first scope named `name`, depth first.
    pub fn find_scope(&self, name: &str) -> Option<&ScopeSnapshot> {
        self.scopes.iter().find_map(|scope| scope.find_scope(name))
    }

    /// A `Display` of the tree with options: leave out ids or times, e.g.
    /// to compare the output in a test.
    pub fn display(&self) -> SnapshotDisplay<'_> {
        SnapshotDisplay::new(self)
    }
}

/// The tree with ids and times; see [`display`](Snapshot::display) for options.
impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display().fmt(f)
    }
}
