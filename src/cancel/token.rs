//! The hierarchical cancellation token.
//!
//! Tokens form a tree. Each [`CancelToken`] is a handle to a node; the node
//! holds a lock-free `cancelled` flag, and behind a mutex its reason, its
//! linked children and its waiters (wakers of [`WhenCancelled`] futures and
//! [`on_cancel`](CancelToken::on_cancel) callbacks). The invariants below are
//! cited in the code as `(I1)` and so on; design/cancellation.md explains the
//! whole state machine.
//!
//! 1. `cancelled` goes from false to true once, only while the node's lock is
//!    held and after `reason` was written; it never goes back. A thread that
//!    reads `true` with `Acquire` also sees the reason.
//! 2. Once `cancelled` is true, `waiters` is empty and stays empty: every
//!    registration re-checks the flag under the lock.
//! 3. Once `cancelled` is true, no child is linked into `children`: `child()`
//!    checks the flag under the lock and returns a token born cancelled. The
//!    children linked before are popped by the cancelling thread, each once,
//!    and each is cancelled by whichever thread marks it first.
//! 4. For every linked child `c` of `p`, `p.children[c.index] == c`; `index`
//!    is only read or written under `p`'s lock.
//! 5. A node stays linked in its parent while it has a handle or a linked
//!    child; whichever of these goes last unlinks it, walking up the tree. So
//!    dropped tokens leave no residue, and a token whose own handles are gone
//!    still carries cancellation to its live descendants.
//! 6. Wakers and callbacks run with no lock held.

use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use slab::Slab;

use super::reason::{CancelReason, Cancelled};
use super::when_cancelled::WhenCancelled;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, mutant};

/// A callback registered with [`CancelToken::on_cancel`].
pub(crate) type Callback = Box<dyn FnOnce(&CancelReason) + Send>;

pub(crate) enum Waiter {
    Waker(Waker),
    Callback(Callback),
}

pub(crate) struct Node {
    /// (I1) Written under `inner`'s lock; read anywhere.
    cancelled: AtomicBool,
    /// Live `CancelToken` handles of this node (I5).
    handles: AtomicUsize,
    /// (I4) Position in the parent's `children`; guarded by the parent's lock.
    index: AtomicUsize,
    parent: Option<Arc<Node>>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    reason: Option<CancelReason>,
    children: Vec<Arc<Node>>,
    waiters: Slab<Waiter>,
}

/// A cheap, clonable handle to a node of a cancellation tree.
///
/// Cancelling a token cancels every descendant, at any depth, including
/// children created after it was cancelled (they are born cancelled).
/// Cancelling a child never touches its parent or siblings. Cancellation is
/// *voluntary*: it sets a flag and wakes waiters; tasks notice it through
/// [`is_cancelled`](Self::is_cancelled), [`cancelled`](Self::cancelled) or
/// [`checkpoint`](crate::checkpoint) and finish through their ordinary error
/// paths.
///
/// ```
/// use taskscope::CancelToken;
///
/// let root = CancelToken::new();
/// let child = root.child();
/// let grandchild = child.child();
/// child.cancel();
/// assert!(grandchild.is_cancelled());
/// assert!(!root.is_cancelled());
/// ```
pub struct CancelToken {
    node: Arc<Node>,
}

impl CancelToken {
    /// A new root token, not cancelled.
    pub fn new() -> Self {
        Self::from_node(Arc::new(Node::new(None, 0)))
    }

    fn from_node(node: Arc<Node>) -> Self {
        node.handles.fetch_add(1, Ordering::Relaxed);
        CancelToken { node }
    }

    /// A child token: cancelled whenever `self` is, and cancellable alone.
    ///
    /// If `self` is already cancelled, the child is born cancelled with the
    /// reason [`CancelReason::Parent`].
    pub fn child(&self) -> CancelToken {
        let mut inner = self.node.inner.lock();
        // (I3) Under the lock the flag cannot change, so either we link the
        // child before a cancel pops it, or we see the flag and skip linking.
        if self.node.cancelled.load(Ordering::Relaxed) && !mutant("child_skips_flag_check") {
            let reason = inner.reason.as_ref().map(CancelReason::inherited);
            drop(inner);
            let node = Node::new(None, 0);
            node.inner.lock().reason = reason;
            node.cancelled.store(true, Ordering::Release);
            return Self::from_node(Arc::new(node));
        }
        let index = inner.children.len();
        let child = Arc::new(Node::new(Some(self.node.clone()), index));
        inner.children.push(child.clone());
        drop(inner);
        Self::from_node(child)
    }

    /// Cancels this token and its descendants with [`CancelReason::Requested`].
    ///
    /// # Panics
    ///
    /// If an [`on_cancel`](Self::on_cancel) callback panics, the other
    /// callbacks and the rest of the subtree are still cancelled, and the
    /// first panic is then resumed from here. The token is not poisoned.
    pub fn cancel(&self) {
        self.cancel_with(CancelReason::Requested);
    }

    /// Cancels this token and its descendants with `reason`.
    ///
    /// Does nothing if the token is already cancelled (the first reason
    /// stays). Costs time linear in the size of the subtree and allocates at
    /// most once, for the [`Parent`](CancelReason::Parent) reason its
    /// descendants share.
    ///
    /// When the call returns, every descendant is cancelled, except those
    /// below a node that a concurrent `cancel` reached first: that call
    /// finishes them.
    ///
    /// # Panics
    ///
    /// As [`cancel`](Self::cancel).
    pub fn cancel_with(&self, reason: CancelReason) {
        let mut panic = None;
        if mark(&self.node, reason.clone(), &mut panic) {
            cancel_descendants(&self.node, reason.inherited(), &mut panic);
        }
        if let Some(payload) = panic {
            panic::resume_unwind(payload);
        }
    }

    /// Whether the token was cancelled. A single atomic load, no lock.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        // (I1) Acquire pairs with the Release store in `mark`, so a caller
        // that sees `true` can read the reason.
        self.node.cancelled.load(Ordering::Acquire)
    }

    /// Why the token was cancelled, or `None` while it is not.
    pub fn reason(&self) -> Option<CancelReason> {
        if !self.is_cancelled() {
            return None;
        }
        self.node.inner.lock().reason.clone()
    }

    /// `Err(Cancelled)` once the token is cancelled, `Ok(())` before.
    pub fn check(&self) -> Result<(), Cancelled> {
        match self.reason() {
            Some(reason) => Err(Cancelled::new(reason)),
            None => Ok(()),
        }
    }

    /// A future that completes, with the reason, once the token is cancelled.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it unregisters its waker and loses nothing.
    pub fn cancelled(&self) -> WhenCancelled {
        WhenCancelled::new(self.clone())
    }

    /// Runs `callback` once, when the token is cancelled.
    ///
    /// If the token is already cancelled, `callback` runs now, on this thread.
    /// Callbacks run outside every internal lock (I6), so a callback may
    /// cancel or create tokens. Dropping the returned registration before
    /// the token is cancelled unregisters the callback.
    ///
    /// # Panics
    ///
    /// A callback's panic surfaces from the `cancel` call that ran it (or from
    /// here, for a token already cancelled), after every other callback ran.
    pub fn on_cancel<F>(&self, callback: F) -> OnCancel
    where
        F: FnOnce(&CancelReason) + Send + 'static,
    {
        let seen_before_lock = mutant("on_cancel_checks_before_lock")
            .then(|| self.node.cancelled.load(Ordering::Acquire));
        let mut inner = self.node.inner.lock();
        if seen_before_lock.unwrap_or_else(|| self.node.cancelled.load(Ordering::Relaxed)) {
            // (I2) No registration after cancellation: run it now instead.
            let reason = inner.reason.clone().unwrap_or(CancelReason::Requested);
            drop(inner);
            callback(&reason);
            return OnCancel {
                token: self.clone(),
                key: None,
            };
        }
        let key = inner.waiters.insert(Waiter::Callback(Box::new(callback)));
        OnCancel {
            token: self.clone(),
            key: Some(key),
        }
    }

    /// A guard that cancels this token when dropped, unless disarmed.
    pub fn drop_guard(self) -> CancelOnDrop {
        CancelOnDrop { token: Some(self) }
    }

    /// Registers or refreshes a waker; `None` if the token is cancelled.
    pub(crate) fn register_waker(&self, key: Option<usize>, waker: &Waker) -> Option<usize> {
        let mut inner = self.node.inner.lock();
        if self.node.cancelled.load(Ordering::Relaxed) && !mutant("register_skips_recheck") {
            return None; // (I2)
        }
        match key.and_then(|key| inner.waiters.get_mut(key).map(|slot| (key, slot))) {
            Some((key, Waiter::Waker(current))) => {
                if !current.will_wake(waker) {
                    current.clone_from(waker);
                }
                Some(key)
            }
            _ => Some(inner.waiters.insert(Waiter::Waker(waker.clone()))),
        }
    }

    /// Removes a registration, unless cancellation already consumed it.
    pub(crate) fn unregister(&self, key: usize) {
        let mut inner = self.node.inner.lock();
        // (I2) After cancellation the slab was emptied and stays empty, so a
        // key from before must not be looked up in it.
        if !self.node.cancelled.load(Ordering::Relaxed) && inner.waiters.contains(key) {
            inner.waiters.remove(key);
        }
    }

    #[cfg(test)]
    pub(crate) fn linked_children(&self) -> usize {
        self.node.inner.lock().children.len()
    }

    #[cfg(test)]
    pub(crate) fn registered_waiters(&self) -> usize {
        self.node.inner.lock().waiters.len()
    }
}

impl Node {
    fn new(parent: Option<Arc<Node>>, index: usize) -> Node {
        Node {
            cancelled: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
            index: AtomicUsize::new(index),
            parent,
            inner: Mutex::new(Inner::default()),
        }
    }
}

/// Marks `node` cancelled and runs its waiters; false if it already was.
fn mark(
    node: &Node,
    reason: CancelReason,
    panic: &mut Option<Box<dyn std::any::Any + Send>>,
) -> bool {
    let waiters = {
        let mut inner = node.inner.lock();
        if node.cancelled.load(Ordering::Relaxed) {
            return false;
        }
        inner.reason = Some(reason.clone());
        // (I1) Release: the reason written above is visible to any thread
        // that reads `true` with Acquire.
        node.cancelled.store(true, Ordering::Release);
        mem::take(&mut inner.waiters) // (I2)
    };
    for (_, waiter) in waiters {
        // (I6) The lock is released; a waiter may re-enter the tree.
        let run = AssertUnwindSafe(|| match waiter {
            Waiter::Waker(waker) => waker.wake(),
            Waiter::Callback(callback) => callback(&reason),
        });
        if let Err(payload) = panic::catch_unwind(run) {
            panic.get_or_insert(payload);
        }
    }
    true
}

/// Cancels every node below `root` (already marked), depth first, without
/// recursion or allocation: children are popped one at a time (I3) and the
/// walk climbs back through the `parent` links.
fn cancel_descendants(
    root: &Arc<Node>,
    reason: CancelReason,
    panic: &mut Option<Box<dyn std::any::Any + Send>>,
) {
    let mut current = root.clone();
    loop {
        let next = if mutant("cancel_pops_in_two_steps") {
            let last = current.inner.lock().children.last().cloned();
            if last.is_some() {
                current.inner.lock().children.pop();
            }
            last
        } else {
            current.inner.lock().children.pop()
        };
        match next {
            Some(child) => {
                // Descend only into a child we marked: one marked by someone
                // else is being finished by that thread (I3).
                if mark(&child, reason.clone(), panic)
                    && (!mutant("cancel_stops_at_depth_one") || Arc::ptr_eq(&current, root))
                {
                    current = child;
                }
            }
            None if Arc::ptr_eq(&current, root) => return,
            None => {
                let parent = current.parent.clone();
                current = parent.expect("a node we descended into has a parent");
            }
        }
    }
}

/// Unlinks `node` from its parent if it is dead (I5), then its parent, and so on.
fn unlink_if_dead(node: &Arc<Node>) {
    let mut current = node.clone();
    loop {
        {
            let inner = current.inner.lock();
            // Acquire pairs with the AcqRel decrement in `Drop`.
            if !inner.children.is_empty() || current.handles.load(Ordering::Acquire) != 0 {
                return;
            }
        }
        let Some(parent) = current.parent.clone() else {
            return;
        };
        {
            let mut siblings = parent.inner.lock();
            let index = current.index.load(Ordering::Relaxed); // (I4) under parent's lock
            let linked = siblings
                .children
                .get(index)
                .is_some_and(|c| Arc::ptr_eq(c, &current));
            if !linked {
                // Popped by a cancel (I3): nothing above needs us any more.
                return;
            }
            siblings.children.swap_remove(index);
            if let Some(moved) = siblings.children.get(index) {
                moved.index.store(index, Ordering::Relaxed); // (I4)
            }
        }
        if mutant("unlink_does_not_climb") {
            return;
        }
        current = parent;
    }
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for CancelToken {
    fn clone(&self) -> Self {
        // Relaxed suffices: the caller holds a handle, so the count is at
        // least one and cannot reach zero concurrently (as in `Arc::clone`).
        self.node.handles.fetch_add(1, Ordering::Relaxed);
        CancelToken {
            node: self.node.clone(),
        }
    }
}

impl Drop for CancelToken {
    fn drop(&mut self) {
        // AcqRel: the last handle's owner must see every other handle's
        // prior writes before it decides the node is dead (I5).
        if self.node.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            unlink_if_dead(&self.node);
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl PartialEq for CancelToken {
    /// Two handles are equal when they point at the same node.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.node, &other.node)
    }
}

impl Eq for CancelToken {}

/// The registration returned by [`CancelToken::on_cancel`]; unregisters on drop.
#[must_use = "dropping the registration unregisters the callback at once"]
pub struct OnCancel {
    token: CancelToken,
    key: Option<usize>,
}

impl OnCancel {
    /// Keeps the callback registered for as long as the token lives.
    pub fn forget(mut self) {
        self.key = None;
    }
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.token.unregister(key);
        }
    }
}

impl fmt::Debug for OnCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCancel")
            .field("registered", &self.key.is_some())
            .finish()
    }
}

/// Cancels its token when dropped, unless [`disarm`](Self::disarm)ed.
#[must_use = "the token is cancelled as soon as the guard is dropped"]
pub struct CancelOnDrop {
    token: Option<CancelToken>,
}

impl CancelOnDrop {
    /// Gives the token back without cancelling it.
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("a guard holds its token until disarmed or dropped")
    }

    /// The guarded token.
    pub fn token(&self) -> &CancelToken {
        self.token
            .as_ref()
            .expect("a guard holds its token until disarmed or dropped")
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

impl fmt::Debug for CancelOnDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelOnDrop")
            .field("token", &self.token)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
#[path = "token_tests.rs"]
mod tests;
