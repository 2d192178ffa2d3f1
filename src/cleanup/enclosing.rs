//! Which clean-up a new scope runs inside.
//!
//! A scope's clean-up runs under a token of its own, shielded from the
//! scope's cancellation; only the scope's clean-up timeout cancels it
//! (design/cleanup.md). A scope made inside another scope's clean-up (a
//! deferred future that opens a scope, a `prepare_drop` that does) has a
//! clean-up of its own, which must hear the enclosing clean-up's deadline
//! too: otherwise a value adopted there commits after the deadline where
//! the same value adopted one scope up rolls back. So its clean-up token is
//! a child of the enclosing one.
//!
//! The enclosing clean-up is found where the scope is made: the clean-up
//! being polled on this thread, else the one the current task's scope was
//! made inside (a child of a `par_scope` polled on a pool thread, where no
//! clean-up is being polled).

use std::cell::RefCell;

use crate::cancel::CancelToken;
use crate::scope::cell::TaskRef;
use crate::sync::thread_local;

#[cfg(not(loom))]
thread_local! {
    /// The token of the clean-up being polled on this thread, if any.
    static POLLED: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

// loom's `thread_local!` rejects a `const` block initialiser.
#[cfg(loom)]
thread_local! {
    static POLLED: RefCell<Option<CancelToken>> = RefCell::new(None);
}

/// The clean-up a scope made now, in `task`'s poll, runs inside.
pub(crate) fn enclosing_cleanup(task: Option<&TaskRef>) -> Option<CancelToken> {
    POLLED
        .with(|polled| polled.borrow().clone())
        .or_else(|| task.and_then(|task| task.shared().enclosing_cleanup().cloned()))
}

/// Marks `token`'s clean-up as the one polled on this thread until the
/// guard is dropped (also on unwind), then restores the one before.
pub(crate) fn polling(token: &CancelToken) -> Polling {
    let previous = POLLED.with(|polled| polled.replace(Some(token.clone())));
    Polling { previous }
}

#[must_use = "the clean-up counts as polled only while the guard lives"]
pub(crate) struct Polling {
    previous: Option<CancelToken>,
}

impl Drop for Polling {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // The token put back is dropped outside the borrow: dropping a
        // token may unlink it under its parent's lock, which runs no user
        // code, but keeping borrows short costs nothing.
        let replaced = POLLED.with(|polled| polled.replace(previous));
        drop(replaced);
    }
}
