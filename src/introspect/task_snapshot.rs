//! [`TaskSnapshot`]: one task (a scope's body or child) in a snapshot.

use std::borrow::Cow;
use std::panic::Location;
use std::time::Duration;

use super::scope_snapshot::ScopeSnapshot;
use super::task_state::TaskState;
use crate::cancel::CancelReason;

/// One task of a [`Snapshot`](crate::Snapshot): a scope's body or one of its
/// children.
///
/// Combinator branches ([`join`](crate::join()), [`race`](crate::race()), ...)
/// and wrappers ([`shield`](crate::shield), [`cancel_when`](crate::cancel_when))
/// run inside a task's poll and are not tasks of their own: they do not
/// appear, but scopes created inside them appear under the task.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's number in its scope: 0 for the body, then 1, 2, ... in
    /// spawn order. Written `scope.task` in the tree, e.g. `3.1`.
    pub id: u64,
    /// The name given to [`Scope::spawn_named`](crate::Scope::spawn_named).
    pub name: Option<Cow<'static, str>>,
    /// Where the task was spawned: the line that called
    /// [`Scope::spawn`](crate::Scope::spawn) or one of its kin, or that made
    /// the stream adapter that spawned it. For a body, where its scope was
    /// made. Serialized as `file:line:column`.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "super::serde_location::serialize")
    )]
    pub location: &'static Location<'static>,
    /// Pending, being polled, finished (or panicked) but not joined, finished and shown
    /// for a scope it made that still runs, or dropped unfinished: see
    /// [`TaskState`].
    pub state: TaskState,
    /// Why the task's token is cancelled, if it is: the task should be
    /// winding down. For a body, the scope's reason.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "super::serde_reason::serialize")
    )]
    pub cancelled: Option<CancelReason>,
    /// How many times the task has been polled.
    pub polls: u64,
    /// How long ago its last poll started; `None` if no poll recorded a
    /// time (see [`record_poll_times`](crate::record_poll_times)).
    pub since_last_poll: Option<Duration>,
    /// Scopes created while this task was polled, that still run.
    pub scopes: Vec<ScopeSnapshot>,
}

impl TaskSnapshot {
    /// Whether this is the body of its scope rather than a spawned child.
    pub fn is_body(&self) -> bool {
        self.id == 0
    }
}
