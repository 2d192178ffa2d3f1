//! [`TaskState`]: where a task stands when a snapshot is taken.

use std::fmt;

/// Where a task stood when its [`TaskSnapshot`](crate::TaskSnapshot) was
/// taken. Whether it is cancelled is separate:
/// [`TaskSnapshot::cancelled`](crate::TaskSnapshot::cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting to be woken, or woken and waiting for its scope to poll it.
    Pending,
    /// Being polled right now (on this thread, if the snapshot was taken
    /// from inside it).
    Polling,
    /// Finished, but its [`JoinHandle`](crate::JoinHandle) has neither
    /// taken the output nor been dropped.
    Finished,
    /// Finished by a panic of its own (its poll's or its future's
    /// destructor's) that its [`JoinHandle`](crate::JoinHandle) has not
    /// re-raised: shown also when the handle was dropped, since the scope
    /// then re-raises it once the other tasks finished.
    Panicked,
    /// Finished and joined (or, for a body, returned), and shown only
    /// because a scope it created still runs: a scope future created in one
    /// task and awaited by another shows under the task that created it.
    Returned,
    /// Its scope future was dropped before it finished, and it is being
    /// dropped unfinished with the rest of the scope (seen from a
    /// destructor run by that drop, or from another thread meanwhile).
    Dropped,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Pending => "pending",
            TaskState::Polling => "being polled",
            TaskState::Finished => "finished, not joined",
            TaskState::Panicked => "panicked, not joined",
            TaskState::Returned => "finished",
            TaskState::Dropped => "dropped unfinished",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_words() {
        assert_eq!(TaskState::Pending.to_string(), "pending");
        assert_eq!(TaskState::Polling.to_string(), "being polled");
        assert_eq!(TaskState::Finished.to_string(), "finished, not joined");
        assert_eq!(TaskState::Panicked.to_string(), "panicked, not joined");
        assert_eq!(TaskState::Returned.to_string(), "finished");
        assert_eq!(TaskState::Dropped.to_string(), "dropped unfinished");
    }
}
