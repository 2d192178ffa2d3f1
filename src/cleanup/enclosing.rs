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
//! The enclosing clean-up is found where the scope is made:
//!
//! - made directly in a clean-up's poll (the task current on this thread
//!   is still the one that was current when that poll began): that
//!   clean-up;
//! - made in a task's poll: the clean-up the task's scope was made inside,
//!   recorded in its `ScopeShared` (a child of a scope opened in a
//!   clean-up, also on a pool thread where no clean-up is being polled);
//! - otherwise none.
//!
//! The parallel scope hides the polled clean-up while its thread waits for
//! helpers, as it hides the ambient task: pool work run meanwhile is not
//! inside that clean-up.

use std::cell::RefCell;

use crate::cancel::CancelToken;
use crate::scope::cell::TaskRef;
use crate::sync::const_thread_local;

/// The clean-up being polled on this thread.
struct Polled {
    token: CancelToken,
    /// The address of the task current when the clean-up's poll began.
    task: Option<usize>,
}

const_thread_local! {
    static POLLED: RefCell<Option<Polled>> = RefCell::new(None);
}

/// The clean-up a scope made now, with `task` current, runs inside.
pub(crate) fn enclosing_cleanup(task: Option<&TaskRef>) -> Option<CancelToken> {
    let task_addr = task.map(TaskRef::addr);
    let polled = POLLED.with(|polled| match &*polled.borrow() {
        Some(polled) if polled.task == task_addr => Some(polled.token.clone()),
        _ => None,
    });
    polled.or_else(|| task.and_then(|task| task.shared().enclosing_cleanup().cloned()))
}

/// Marks `token`'s clean-up as the one polled on this thread, inside
/// `task`, until the guard is dropped (also on unwind); then restores the
/// one before.
pub(crate) fn polling(token: &CancelToken, task: Option<&TaskRef>) -> Polling {
    let now = Polled {
        token: token.clone(),
        task: task.map(TaskRef::addr),
    };
    Polling {
        previous: POLLED.with(|polled| polled.replace(Some(now))),
    }
}

/// Hides the clean-up polled on this thread until the guard is dropped.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) fn hide() -> Polling {
    Polling {
        previous: POLLED.with(RefCell::take),
    }
}

#[must_use = "the clean-up counts as polled only while the guard lives"]
pub(crate) struct Polling {
    previous: Option<Polled>,
}

impl Drop for Polling {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // What is put back replaces the guard's own entry, dropped here,
        // outside the borrow.
        let replaced = POLLED.with(|polled| polled.replace(previous));
        drop(replaced);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_scope_made_in_a_clean_ups_poll_is_inside_it_unless_hidden() {
        let token = CancelToken::new();
        let _polling = polling(&token, None);
        let inside = enclosing_cleanup(None).expect("made in the clean-up's poll");
        token.cancel();
        assert!(inside.is_cancelled(), "the same token");
        {
            // Pool work run while a fan-out waits is not inside it.
            let _hidden = hide();
            assert!(enclosing_cleanup(None).is_none());
        }
        assert!(enclosing_cleanup(None).is_some(), "restored");
    }

    #[test]
    fn nested_clean_up_polls_restore_the_outer_one() {
        let (outer, inner) = (CancelToken::new(), CancelToken::new());
        let _outer = polling(&outer, None);
        {
            let _inner = polling(&inner, None);
            inner.cancel();
            assert!(enclosing_cleanup(None).unwrap().is_cancelled());
        }
        assert!(
            !enclosing_cleanup(None).unwrap().is_cancelled(),
            "the outer one again"
        );
    }
}
