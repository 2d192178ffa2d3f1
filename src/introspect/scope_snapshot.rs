//! [`ScopeSnapshot`]: one scope in a snapshot.

use std::borrow::Cow;
use std::panic::Location;

use super::task_snapshot::TaskSnapshot;
use crate::cancel::CancelReason;

/// One scope of a [`Snapshot`](crate::Snapshot), with its body and children.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ScopeSnapshot {
    /// Unique in the process (scopes are numbered as they are created).
    pub id: u64,
    /// The name given to [`Builder::name`](crate::Builder::name).
    pub name: Option<Cow<'static, str>>,
    /// Where the scope was made: the line that called
    /// [`scope`](crate::scope), [`par_scope`](crate::par_scope()), a
    /// [`Builder`](crate::Builder)'s method, ... Serialized as
    /// `file:line:column`.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "super::serde_location::serialize")
    )]
    pub location: &'static Location<'static>,
    /// Why the scope's token is cancelled, if it is.
    #[cfg_attr(
        feature = "serde",
        serde(serialize_with = "super::serde_reason::serialize")
    )]
    pub cancelled: Option<CancelReason>,
    /// The body, until it returns; after that only while a scope it made
    /// still runs (in state [`TaskState::Returned`](crate::TaskState::Returned)).
    pub body: Option<TaskSnapshot>,
    /// The children that run, and those that finished but were not joined,
    /// in spawn order. A finished child whose handle is still alive drops
    /// out once a newer child takes its place in the scope's table (the
    /// table keeps finished children without a lock of their own per
    /// child; design/introspection.md): it is not lost, only no longer
    /// shown.
    pub tasks: Vec<TaskSnapshot>,
}

impl ScopeSnapshot {
    /// The body and the children, body first.
    pub fn all_tasks(&self) -> impl Iterator<Item = &TaskSnapshot> {
        self.body.iter().chain(&self.tasks)
    }

    /// The first task named `name` in this scope or below, depth first.
    pub fn find_task(&self, name: &str) -> Option<&TaskSnapshot> {
        self.all_tasks().find_map(|task| {
            if task.name.as_deref() == Some(name) {
                return Some(task);
            }
            task.scopes.iter().find_map(|scope| scope.find_task(name))
        })
    }

    /// The first scope named `name`, this one or below, depth first.
    pub fn find_scope(&self, name: &str) -> Option<&ScopeSnapshot> {
        if self.name.as_deref() == Some(name) {
            return Some(self);
        }
        self.all_tasks()
            .flat_map(|task| &task.scopes)
            .find_map(|scope| scope.find_scope(name))
    }
}
