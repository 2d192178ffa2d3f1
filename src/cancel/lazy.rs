//! A child token that is only created when a task first asks for it.
//!
//! Every child of a scope is individually cancellable
//! ([`JoinHandle::cancel`](crate::JoinHandle::cancel)), but most children never
//! look at a token of their own. Creating a real child token for each would
//! cost an allocation and a lock of the scope's node per spawn, so a child
//! starts with this stand-in: it answers `is_cancelled` from the scope's
//! token plus a local flag, and makes the real child token on first demand.
//! Neither answer takes a lock while nothing is cancelled (see `Made`); a
//! check once the scope is cancelled locks to read the reason.
//!
//! The stand-in keeps no handle of the scope's token: the task's header
//! reaches that token through its scope anyway, and lends it for each call
//! ([`TaskToken`]). So a spawn and a child's end cost no reference counting
//! on the scope's token, whose counts every child of the scope shares.

use std::fmt;

use super::reason::{CancelReason, Cancelled};
use super::token::CancelToken;
use crate::sync::{AtomicU8, Mutex, Ordering, mutant};

/// `cancel` was called on this task alone.
const REQUESTED: u8 = 1;
/// `check` reported the scope's cancellation as this task's reason: a
/// request made after that changes nothing (the first reason stays).
const SAW_PARENT: u8 = 2;

pub(crate) struct LazyToken {
    /// `REQUESTED`, set only while `making` is held.
    flags: AtomicU8,
    /// The real child token, once made; it answers from then on.
    made: Made,
    /// Serialises `token()` and `cancel()`, so that a cancel is never lost
    /// between the two (see `cancel`).
    making: Mutex<()>,
}

impl LazyToken {
    pub(crate) fn new() -> Self {
        LazyToken {
            flags: AtomicU8::new(0),
            made: Made::default(),
            making: Mutex::new(()),
        }
    }
}

/// A task's lazy token with its parent, the scope's token, lent for a call.
///
/// Every call must lend the same parent for one `LazyToken` (a task's
/// header always lends its scope's token).
#[derive(Clone, Copy)]
pub(crate) struct TaskToken<'a> {
    lazy: &'a LazyToken,
    parent: &'a CancelToken,
}

impl<'a> TaskToken<'a> {
    pub(crate) fn new(lazy: &'a LazyToken, parent: &'a CancelToken) -> Self {
        TaskToken { lazy, parent }
    }

    /// Lock-free: two or three atomic loads.
    pub(crate) fn is_cancelled(self) -> bool {
        let TaskToken { lazy: this, parent } = self;
        if let Some(cancelled) = this.made.with(CancelToken::is_cancelled) {
            return cancelled;
        }
        // Relaxed: the flag carries no data, and the answer only has to be
        // true at some instant of the call (the flag is never cleared).
        this.flags.load(Ordering::Relaxed) & REQUESTED != 0 || parent.is_cancelled()
    }

    pub(crate) fn check(self) -> Result<(), Cancelled> {
        let TaskToken { lazy: this, parent } = self;
        if let Some(result) = this.made.with(CancelToken::check) {
            return result;
        }
        // Relaxed: as in `is_cancelled`; the reason is a constant.
        let flags = this.flags.load(Ordering::Relaxed);
        if flags & REQUESTED != 0 {
            return Err(Cancelled::new(CancelReason::Requested));
        }
        let result = parent.check_as_child();
        // The mutant reports the scope's reason without settling it under
        // `making` (the code before that fix): a racing request can then
        // change a reason the task already saw.
        if result.is_ok() || flags & SAW_PARENT != 0 || mutant("check_skips_first_sight") {
            return result;
        }
        self.first_sight_of_the_scopes_cancel(result)
    }

    /// Settles, under `making`, which reason the task reports from now on,
    /// the first time it sees its scope cancelled: a request that got the
    /// lock first wins; else the scope's reason stays, and `cancel` finds
    /// `SAW_PARENT`. Without the lock a request racing the scope's cancel
    /// could change a reason the task had already seen.
    #[cold]
    fn first_sight_of_the_scopes_cancel(
        self,
        parent_said: Result<(), Cancelled>,
    ) -> Result<(), Cancelled> {
        let this = self.lazy;
        let _making = this.making.lock();
        if let Some(result) = this.made.with(CancelToken::check) {
            return result;
        }
        // Relaxed: `making` orders it with `cancel`'s update.
        if this.flags.fetch_or(SAW_PARENT, Ordering::Relaxed) & REQUESTED != 0 {
            return Err(Cancelled::new(CancelReason::Requested));
        }
        parent_said
    }

    /// The task's own token, made now if this is the first request.
    pub(crate) fn token(self) -> CancelToken {
        let TaskToken { lazy: this, parent } = self;
        if let Some(token) = this.made.with(CancelToken::clone) {
            return token;
        }
        let making = this.making.lock();
        if let Some(token) = this.made.with(CancelToken::clone) {
            return token; // made by another thread while we waited
        }
        // Relaxed: `making` orders this read with `cancel`'s update.
        let requested = this.flags.load(Ordering::Relaxed) & REQUESTED != 0;
        // A request made before the token keeps its reason even if the scope
        // was cancelled since: the first reason stays, as on a real token.
        let token = if requested {
            CancelToken::born_cancelled(CancelReason::Requested)
        } else {
            parent.child()
        };
        this.made.set(token.clone());
        drop(making);
        token
    }

    /// Cancels this task alone.
    ///
    /// A request that comes after the scope's own cancellation changes
    /// nothing, as for a real token, whose first reason stays: without the
    /// token made, the request would otherwise be reported (`Requested`)
    /// before the scope's earlier reason, and the reason would change once
    /// the token is made. A scope cancelled during this call counts as
    /// after it unless the task saw that cancellation first (`SAW_PARENT`):
    /// the two happened at once, and either order is a true one, as long as
    /// the task is never told both.
    pub(crate) fn cancel(self) {
        let TaskToken { lazy: this, parent } = self;
        let making = this.making.lock();
        // Read once: the token is only ever made with `making` held.
        let made = this.made.with(CancelToken::clone);
        // Relaxed: `making` orders it with `check`'s update.
        let saw_parent = this.flags.load(Ordering::Relaxed) & SAW_PARENT != 0;
        if made.is_none() && (saw_parent || parent.is_cancelled()) {
            return; // `token()` makes a child born with the scope's reason
        }
        let outside = mutant("lazy_cancel_flags_after_unlock");
        // Under the lock, so `token()` either sees the flag or has stored
        // the token we cancel below: the request is never lost. Relaxed:
        // `making` orders it with `token()`'s read, and lock-free readers
        // need no data with it.
        if !outside {
            this.flags.fetch_or(REQUESTED, Ordering::Relaxed);
        }
        drop(making);
        if outside {
            this.flags.fetch_or(REQUESTED, Ordering::Relaxed);
        }
        if let Some(token) = made {
            token.cancel();
        }
    }
}

impl fmt::Debug for TaskToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A cell written once, under `making`, and read without a lock.
///
/// std's `OnceLock`, whose `get` is one `Acquire` load that pairs with the
/// `Release` of `set`: a reader that finds the token sees all of it. loom
/// has no `OnceLock`, so loom builds use a mutex instead: the models then
/// check the `making` protocol above, and the lock-free read is std's.
#[derive(Default)]
struct Made {
    #[cfg(not(loom))]
    cell: std::sync::OnceLock<CancelToken>,
    #[cfg(loom)]
    cell: Mutex<Option<CancelToken>>,
}

impl Made {
    fn with<R>(&self, f: impl FnOnce(&CancelToken) -> R) -> Option<R> {
        #[cfg(not(loom))]
        let made = self.cell.get();
        #[cfg(loom)]
        let guard = self.cell.lock();
        #[cfg(loom)]
        let made = guard.as_ref();
        made.map(f)
    }

    /// Called with `making` held, once.
    fn set(&self, token: CancelToken) {
        #[cfg(not(loom))]
        let _ = self.cell.set(token);
        #[cfg(loom)]
        {
            *self.cell.lock() = Some(token);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn follows_the_parent_before_and_after_it_is_made() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        assert!(task.check().is_ok());
        parent.cancel();
        assert!(task.is_cancelled());
        assert!(task.token().is_cancelled());
    }

    #[test]
    fn a_cancel_before_the_token_is_made_is_kept() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        task.cancel();
        assert!(task.is_cancelled());
        let token = task.token();
        assert!(token.is_cancelled());
        assert!(!parent.is_cancelled());
    }

    #[test]
    fn a_cancel_after_the_token_is_made_reaches_it() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        let token = task.token();
        task.cancel();
        assert!(token.is_cancelled());
        assert!(matches!(
            task.check().unwrap_err().reason(),
            CancelReason::Requested
        ));
    }

    #[test]
    fn a_cancel_before_the_token_is_made_fails_the_check_as_requested() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        task.cancel();
        assert!(matches!(
            task.check().unwrap_err().reason(),
            CancelReason::Requested
        ));
    }

    #[test]
    fn once_made_the_token_answers_even_when_cancelled_directly() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        // The task's own token, handed to code that cancels it.
        task.token().cancel_with(CancelReason::Deadline);
        assert!(task.is_cancelled());
        assert!(matches!(
            task.check().unwrap_err().reason(),
            CancelReason::Deadline
        ));
        assert!(!parent.is_cancelled());
    }

    #[test]
    fn an_unmade_token_reports_the_parents_cancellation_as_inherited() {
        let (parent, lazy) = (CancelToken::new(), LazyToken::new());
        let task = TaskToken::new(&lazy, &parent);
        parent.cancel_with(CancelReason::Deadline);
        let reason = task.check().unwrap_err().into_reason();
        assert!(matches!(reason, CancelReason::Parent(_)));
        assert!(matches!(reason.origin(), CancelReason::Deadline));
        assert!(matches!(
            task.token().reason(),
            Some(CancelReason::Parent(_))
        ));
    }
}
