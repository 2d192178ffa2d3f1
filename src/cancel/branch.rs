//! The token of one branch of a combinator (`join`, `race`, ...), made on
//! first demand.
//!
//! A combinator must give every branch its own child token, but creating one
//! costs an allocation, and the fixed-arity combinators promise none. So a
//! branch starts with this stand-in: a handle to its parent (whatever was
//! ambient when the combinator was first polled) plus the reason the
//! combinator cancelled it, if it did. The real child token is made only when
//! code inside the branch asks for a [`CancelToken`] (`current_token()`,
//! `cancelled()`, a nested scope).
//!
//! While the branch is polled, the combinator moves this state into the
//! thread's ambient slot ([`enter`]) and takes it back afterwards, so a token
//! made during the poll is kept for later polls and for later cancellation.

use std::fmt;
use std::mem;

use super::ambient::{self, Ambient};
use super::reason::{CancelReason, Cancelled};
use super::token::CancelToken;
use crate::scope::cell::TaskRef;

/// What a branch's token hangs under.
#[derive(Clone, Default)]
pub(crate) enum Parent {
    /// Nothing was ambient: the branch's token, if made, is a root.
    #[default]
    Root,
    Token(CancelToken),
    /// A scope's child whose own token may not exist yet.
    Task(TaskRef),
}

impl Parent {
    fn is_cancelled(&self) -> bool {
        match self {
            Parent::Root => false,
            Parent::Token(token) => token.is_cancelled(),
            Parent::Task(task) => task.token().is_cancelled(),
        }
    }

    /// What `check` on a child of this parent returns, allocating at most
    /// once per token node (I7) rather than once per check.
    fn check_as_child(&self) -> Result<(), Cancelled> {
        match self {
            Parent::Root => Ok(()),
            Parent::Token(token) => token.check_as_child(),
            // Through the task's own token, made once if need be: its spare
            // serves every later check. (Wrapping the task's reason here
            // would allocate per check when that reason is its own, e.g.
            // `Requested` by its handle, not a `Parent` one.)
            Parent::Task(task) => {
                let token = task.token();
                if token.is_cancelled() {
                    token.token().check_as_child()
                } else {
                    Ok(())
                }
            }
        }
    }

    /// A new child token under this parent (or a root token).
    fn child(&self) -> CancelToken {
        match self {
            Parent::Root => CancelToken::new(),
            Parent::Token(token) => token.child(),
            Parent::Task(task) => task.token().token().child(),
        }
    }
}

/// The lazily made token of one branch; see the module docs.
#[doc(hidden)]
#[derive(Default)]
pub struct BranchToken {
    parent: Parent,
    /// The branch's own token, once something asked for it.
    own: Option<CancelToken>,
    /// Why the combinator cancelled this branch, if it did.
    reason: Option<CancelReason>,
}

impl BranchToken {
    pub(crate) fn new(parent: Parent) -> Self {
        BranchToken {
            parent,
            own: None,
            reason: None,
        }
    }

    /// The branch's own token, made now if this is the first request.
    ///
    /// Allocates one token node on the first call only.
    pub(crate) fn token(&mut self) -> CancelToken {
        if let Some(own) = &self.own {
            return own.clone();
        }
        let own = match &self.reason {
            // Already cancelled for good: the node needs no link to the
            // parent, and keeps the reason the combinator gave.
            Some(reason) => {
                let own = CancelToken::new();
                own.cancel_with(reason.clone());
                own
            }
            None => self.parent.child(),
        };
        self.own = Some(own.clone());
        own
    }

    /// Cancels this branch alone; the first reason stays.
    ///
    /// Without a token made yet, the parent's cancellation is the branch's
    /// first reason (`check` reports it): a later cancel of the branch must
    /// not replace it, as a token made under the parent would keep it.
    pub(crate) fn cancel(&mut self, reason: CancelReason) {
        if self.reason.is_some() || self.own.is_none() && self.parent.is_cancelled() {
            return;
        }
        self.reason = Some(reason.clone());
        if let Some(own) = &self.own {
            own.cancel_with(reason);
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        match &self.own {
            Some(own) => own.is_cancelled(),
            None => self.reason.is_some() || self.parent.is_cancelled(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), Cancelled> {
        if let Some(own) = &self.own {
            return own.check();
        }
        if let Some(reason) = &self.reason {
            return Err(Cancelled::new(reason.clone()));
        }
        // Shares the parent's inherited reason (I7): no allocation per check.
        self.parent.check_as_child()
    }
}

impl fmt::Debug for BranchToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchToken")
            .field("made", &self.own.is_some())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The parent for the branches of a combinator polled right now.
///
/// Inside another combinator's branch this makes that branch's own token
/// (one allocation, once), so that cancelling the outer branch reaches the
/// inner branches through the token tree.
pub(crate) fn capture_parent() -> Parent {
    ambient::with_current_mut(|current, task| match (current, task) {
        (None, _) | (Some(Ambient::Task), None) => Parent::Root,
        (Some(Ambient::Token(token)), _) => Parent::Token(token.clone()),
        (Some(Ambient::Task), Some(task)) => Parent::Task(task.clone()),
        (Some(Ambient::Branch(branch)), _) => Parent::Token(branch.token()),
    })
}

/// Makes `slot` the ambient token until the guard is dropped, when the
/// (possibly updated) state is moved back into `slot`.
pub(crate) fn enter(slot: &mut BranchToken) -> Entered<'_> {
    let state = mem::take(slot);
    let previous = ambient::replace_current(Some(Ambient::Branch(state)));
    Entered { slot, previous }
}

/// Restores the previous ambient token and returns the branch state, also on
/// unwind.
#[must_use = "the branch's token stops being ambient as soon as the guard is dropped"]
pub(crate) struct Entered<'a> {
    slot: &'a mut BranchToken,
    previous: Option<Ambient>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let ours = ambient::replace_current(self.previous.take());
        // Anything else means a guard of a nested poll was leaked
        // (`mem::forget`); the branch then loses its token state, which
        // costs it nothing but a fresh token on its next request.
        if let Some(Ambient::Branch(state)) = ours {
            *self.slot = state;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_before_the_token_is_made_is_kept_with_its_reason() {
        let parent = CancelToken::new();
        let mut branch = BranchToken::new(Parent::Token(parent.clone()));
        branch.cancel(CancelReason::LostRace);
        assert!(branch.is_cancelled());
        let token = branch.token();
        assert!(matches!(token.reason(), Some(CancelReason::LostRace)));
        assert!(!parent.is_cancelled(), "a branch's cancel never reaches up");
    }

    #[test]
    fn a_made_token_follows_the_parent_and_the_combinator() {
        let parent = CancelToken::new();
        let mut branch = BranchToken::new(Parent::Token(parent.clone()));
        let token = branch.token();
        assert_eq!(branch.token(), token, "made once, then reused");
        branch.cancel(CancelReason::SiblingFailed);
        assert!(matches!(token.reason(), Some(CancelReason::SiblingFailed)));
        let mut other = BranchToken::new(Parent::Token(parent.clone()));
        let other_token = other.token();
        parent.cancel();
        assert!(other_token.is_cancelled());
        assert!(matches!(
            other.check().unwrap_err().reason().origin(),
            CancelReason::Requested
        ));
    }

    #[test]
    fn an_unmade_token_reports_the_parents_cancellation_as_inherited() {
        let parent = CancelToken::new();
        let branch = BranchToken::new(Parent::Token(parent.clone()));
        assert!(branch.check().is_ok());
        parent.cancel_with(CancelReason::Deadline);
        let reason = branch.check().unwrap_err().into_reason();
        assert!(matches!(reason, CancelReason::Parent(_)));
        assert!(matches!(reason.origin(), CancelReason::Deadline));
    }

    #[test]
    fn a_parents_cancellation_stays_the_first_reason_of_an_unmade_token() {
        let parent = CancelToken::new();
        let mut branch = BranchToken::new(Parent::Token(parent.clone()));
        parent.cancel();
        let first = branch.check().unwrap_err().into_reason();
        branch.cancel(CancelReason::LostRace);
        let second = branch.check().unwrap_err().into_reason();
        assert!(matches!(first, CancelReason::Parent(_)));
        assert!(
            matches!(second, CancelReason::Parent(_)),
            "the reason changed to {second:?}"
        );
        let made = branch.token();
        assert!(matches!(made.reason(), Some(CancelReason::Parent(_))));
    }

    #[test]
    fn entering_moves_the_state_in_and_back_out_with_a_token_made_inside() {
        let mut slot = BranchToken::new(Parent::Root);
        let made = {
            let _entered = enter(&mut slot);
            crate::current_token()
        };
        assert_eq!(
            slot.token(),
            made,
            "the token made during the poll was kept"
        );
        assert!(
            ambient::replace_current(None).is_none(),
            "the previous ambient was restored"
        );
    }
}
