//! [`PollerLink`]: a scope also follows the token of the task that first
//! polls it.
//!
//! A scope's token is made with the scope future, as a child of the ambient
//! token where `scope(..)` is called. A scope future made in one place and
//! awaited in another, as a branch of [`race`](crate::race()) or
//! [`join`](crate::join()), as a child (`s.spawn(scope(..))`) or as an item of
//! [`buffered_in`](crate::ScopedStreamExt::buffered_in), is polled under a
//! token below the one it was made under, and cancelling that token (the
//! race's loser, `JoinHandle::cancel`, `BufferedIn::cancel`) must reach the
//! scope just as it would reach `async { scope(..).await }`. The token cannot
//! move to a new parent once made (its handles may already be out, and the
//! tree's invariants rely on a fixed `parent`), so at its first poll the
//! scope registers an `on_cancel` callback on the poller's token instead, held
//! until the scope future is dropped.

use std::fmt;

use crate::cancel::ambient;
use crate::cancel::{CancelToken, OnCancel};

/// Whether a scope future still has to look at its first poller's token.
pub(crate) enum PollerLink {
    /// Made under the ambient token, not polled yet.
    Pending,
    /// Polled (or made under an explicit parent): the callback on the first
    /// poller's token, if that token is not the scope token's parent.
    Done(Option<OnCancel>),
}

impl PollerLink {
    /// `follows_poller`: the scope's parent is the ambient token where it
    /// was made (an explicit `Builder::parent` replaces the ambient token
    /// for good, at the poll as at the making).
    pub(crate) fn new(follows_poller: bool) -> Self {
        if follows_poller {
            PollerLink::Pending
        } else {
            PollerLink::Done(None)
        }
    }

    /// Called at the start of every poll of the scope future; acts on the
    /// first. If the poller's token is already cancelled, `token` is
    /// cancelled here.
    ///
    /// # Panics
    ///
    /// If an `on_cancel` callback of `token` panics, as `token.cancel()`
    /// would; the link is made all the same.
    pub(crate) fn first_poll(&mut self, token: &CancelToken) {
        if matches!(self, PollerLink::Pending) {
            // Marked first: a panicking callback of `token` (run at once if
            // the poller is already cancelled) leaves it linked, not pending.
            *self = PollerLink::Done(None);
            *self = PollerLink::Done(link(token));
        }
    }
}

/// Cancels `token` (with the `Parent` reason a child token would get) when
/// the token ambient now is cancelled, unless that is `token`'s parent.
fn link(token: &CancelToken) -> Option<OnCancel> {
    let poller = ambient::current_token_in_task()?;
    if poller.is_parent_of(token) {
        return None; // the common `scope(..).await`: the tree already links them
    }
    let scope = token.clone();
    Some(poller.on_cancel(move |reason| scope.cancel_with(reason.inherited())))
}

impl fmt::Debug for PollerLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollerLink::Pending => f.write_str("Pending"),
            PollerLink::Done(link) => f.debug_tuple("Done").field(&link.is_some()).finish(),
        }
    }
}
