//! A child token that is only created when a task first asks for it.
//!
//! Every child of a scope is individually cancellable
//! ([`JoinHandle::cancel`](crate::JoinHandle::cancel)), but most children never
//! look at a token of their own. Creating a real child token for each would
//! cost an allocation and a lock of the scope's node per spawn, so a child
//! starts with this stand-in: it answers `is_cancelled` from the scope's
//! token plus a local flag, and makes the real child token on first demand.

use std::fmt;

use super::reason::{CancelReason, Cancelled};
use super::token::CancelToken;
use crate::sync::{AtomicU8, Mutex, Ordering, mutant};

/// `cancel` was called on this task alone.
const REQUESTED: u8 = 1;
/// `own` holds the real child token; it answers from now on.
const MADE: u8 = 2;

pub(crate) struct LazyToken {
    parent: CancelToken,
    /// Mirrors what is under `own`'s lock, for lock-free checks. Written only
    /// under that lock, so the two never disagree for a reader holding it.
    flags: AtomicU8,
    own: Mutex<Option<CancelToken>>,
}

impl LazyToken {
    pub(crate) fn new(parent: CancelToken) -> Self {
        LazyToken {
            parent,
            flags: AtomicU8::new(0),
            own: Mutex::new(None),
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        // Acquire pairs with the Release updates below: a reader that sees
        // MADE also sees the token stored in `own`.
        let flags = self.flags.load(Ordering::Acquire);
        if flags & MADE != 0 {
            return self
                .own
                .lock()
                .as_ref()
                .is_some_and(CancelToken::is_cancelled);
        }
        flags & REQUESTED != 0 || self.parent.is_cancelled()
    }

    pub(crate) fn check(&self) -> Result<(), Cancelled> {
        let flags = self.flags.load(Ordering::Acquire);
        if flags & MADE != 0 {
            return self.token().check();
        }
        if flags & REQUESTED != 0 {
            return Err(Cancelled::new(CancelReason::Requested));
        }
        self.parent
            .check()
            .map_err(|c| Cancelled::new(c.reason().inherited()))
    }

    /// The task's own token, made now if this is the first request.
    pub(crate) fn token(&self) -> CancelToken {
        let mut own = self.own.lock();
        if let Some(token) = own.as_ref() {
            return token.clone();
        }
        let token = self.parent.child();
        let requested = self.flags.load(Ordering::Relaxed) & REQUESTED != 0;
        *own = Some(token.clone());
        self.flags.fetch_or(MADE, Ordering::Release);
        drop(own);
        if requested {
            token.cancel();
        }
        token
    }

    /// Cancels this task alone.
    pub(crate) fn cancel(&self) {
        let own = self.own.lock();
        let outside = mutant("lazy_cancel_flags_after_unlock");
        // Under the lock, so `token()` either sees the flag or has stored
        // the token we cancel below: the request is never lost.
        if !outside {
            self.flags.fetch_or(REQUESTED, Ordering::Release);
        }
        let made = own.clone();
        drop(own);
        if outside {
            self.flags.fetch_or(REQUESTED, Ordering::Release);
        }
        if let Some(token) = made {
            token.cancel();
        }
    }
}

impl fmt::Debug for LazyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn follows_the_parent_before_and_after_it_is_made() {
        let parent = CancelToken::new();
        let lazy = LazyToken::new(parent.clone());
        assert!(lazy.check().is_ok());
        parent.cancel();
        assert!(lazy.is_cancelled());
        assert!(lazy.token().is_cancelled());
    }

    #[test]
    fn a_cancel_before_the_token_is_made_is_kept() {
        let parent = CancelToken::new();
        let lazy = LazyToken::new(parent.clone());
        lazy.cancel();
        assert!(lazy.is_cancelled());
        let token = lazy.token();
        assert!(token.is_cancelled());
        assert!(!parent.is_cancelled());
    }

    #[test]
    fn a_cancel_after_the_token_is_made_reaches_it() {
        let lazy = LazyToken::new(CancelToken::new());
        let token = lazy.token();
        lazy.cancel();
        assert!(token.is_cancelled());
        assert!(matches!(
            lazy.check().unwrap_err().reason(),
            CancelReason::Requested
        ));
    }
}
