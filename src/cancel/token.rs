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
//!    held and after `reason` was written; it never goes back (a node born
//!    cancelled is built with both set, before any other thread can see it).
//!    It is stored with `Release`, and lock-free readers load it with
//!    `Acquire`, so a thread that reads `true` also sees the reason. Reads
//!    under the lock may be `Relaxed`: every store happens under the same
//!    lock, so the lock alone orders the read after it.
//! 2. Once `cancelled` is true, `waiters` is empty and stays empty: every
//!    registration re-checks the flag under the lock.
//! 3. Once `cancelled` is true, no child is newly linked into `children`:
//!    `child()` checks the flag under the lock and returns a token born
//!    cancelled. The children linked before stay linked until the thread
//!    that marked the node pops them, each once (so a cancelled node may
//!    still have linked children for a while); each is cancelled by
//!    whichever thread marks it first. A child marked while it had no linked
//!    children never gets any, so its subtree is done.
//! 4. For every linked child `c` of `p`, `p.children[c.index] == c`; `index`
//!    is only read or written under `p`'s lock.
//! 5. A node stays linked in its parent while it has a handle or a linked
//!    child; whichever of these goes last unlinks it, walking up the tree. So
//!    dropped tokens leave no residue, and a token whose own handles are gone
//!    still carries cancellation to its live descendants.
//! 6. Wakers and callbacks run, and are cloned and dropped, with no lock
//!    held: dropping one may drop the last handle of another token, whose
//!    unlinking takes the locks of its ancestors, and a waker's clone is
//!    executor code that may use this very token.
//! 7. Cancelling allocates nothing. Descendants share one
//!    `CancelReason::Parent(arc)`; its `arc` is `for_children`, set aside
//!    (holding a placeholder) when a node's first child is linked. `mark`
//!    fills it in place with the node's own reason: until the node is
//!    cancelled nothing clones it, so the fill never needs an allocation. A
//!    node cancelled with a `Parent` reason hands that very reason down and
//!    leaves its spare unused.
//! 8. Dropping a node never recurses: `Node::drop` frees, one at a time,
//!    each ancestor it held the last reference to (a cancelled chain of a
//!    million nodes is held together only by `parent` links).

use std::any::Any;
use std::fmt;
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use slab::Slab;

use super::each::cancel_each;
use super::reason::{CancelReason, Cancelled};
use super::when_cancelled::WhenCancelled;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, mutant};

/// A callback registered with [`CancelToken::on_cancel`].
pub(crate) type Callback = Box<dyn FnOnce(&CancelReason) + Send>;

/// The first panic of a waiter, resumed once the cancellation is complete.
type Panic = Option<Box<dyn Any + Send>>;

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
    /// Taken only by `Drop` (I8).
    parent: Option<Arc<Node>>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    reason: Option<CancelReason>,
    /// (I7) The `Arc` inside the `Parent` reason this node's children
    /// inherit: a spare until `mark` fills it. The payload `Arc` of
    /// `CancelReason` is std's, even under loom (see reason.rs).
    for_children: Option<std::sync::Arc<CancelReason>>,
    children: Vec<Arc<Node>>,
    waiters: Slab<Waiter>,
}

/// What [`mark`] found.
#[derive(PartialEq)]
enum Marked {
    /// Another thread marked the node first; it finishes the subtree (I3).
    Before,
    /// Marked now, with no linked child: the subtree is done (I3).
    Leaf,
    /// Marked now; its linked children are still to be cancelled.
    WithChildren,
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
        // Relaxed: the node is new. Only `unlink_if_dead` acts on the count,
        // and it reaches a node from the node's own handles or children, of
        // which it has none yet; a cancel walk that finds it in its parent
        // never reads the count. Whoever later drops this handle got it
        // through a synchronising hand-over, so its AcqRel decrement comes
        // after this increment.
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
        // (I1) Relaxed: read under the lock every store is made under.
        if self.node.cancelled.load(Ordering::Relaxed) && !mutant("child_skips_flag_check") {
            let reason = inner.inherited();
            drop(inner);
            return Self::from_node(Arc::new(Node::born_cancelled(reason)));
        }
        // (I7) Set aside before the first child is linked, for `mark` to fill.
        inner
            .for_children
            .get_or_insert_with(|| std::sync::Arc::new(CancelReason::Requested));
        let index = inner.children.len();
        let child = Arc::new(Node::new(Some(self.node.clone()), index));
        inner.children.push(child.clone());
        drop(inner);
        Self::from_node(child)
    }

    /// A token cancelled from the start with `reason`, linked to no parent
    /// (cancellation is final, so no parent could add anything).
    pub(crate) fn born_cancelled(reason: CancelReason) -> CancelToken {
        Self::from_node(Arc::new(Node::born_cancelled(reason)))
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
    /// stays). Costs time linear in the size of the subtree and allocates
    /// nothing: the descendants share one [`Parent`](CancelReason::Parent)
    /// reason whose allocation was set aside when the first child was made.
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
        if mark(&self.node, &reason, &mut panic) == Marked::WithChildren {
            // (I7) `mark` filled the spare, so this allocates nothing.
            let inherited = self.node.inner.lock().inherited();
            cancel_descendants(&self.node, &inherited, &mut panic);
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
    ///
    /// A token cancelled because an ancestor was reports
    /// [`Parent`](CancelReason::Parent) carrying the reason the ancestor was
    /// given (or the ancestor's own `Parent` reason, unchanged, if it was
    /// cancelled through one), so [`origin`](CancelReason::origin) is the
    /// reason the cancellation started with.
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

    /// What `check` on a child of this token would return, without making
    /// the child. Allocates at most once per node (I7).
    pub(crate) fn check_as_child(&self) -> Result<(), Cancelled> {
        if !self.is_cancelled() {
            return Ok(());
        }
        Err(Cancelled::new(self.node.inner.lock().inherited()))
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
        // (I1) Relaxed: read under the lock every store is made under.
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
        if let Some(key) = key {
            match self.still_registered(key, waker) {
                Some(true) => return Some(key),
                Some(false) => {}
                None => return None,
            }
        }
        // (I6) Cloned with no lock held: a clone is executor code, which may
        // take this node's lock (cancel this token, link a child to it).
        let new = waker.clone();
        let (registered, unused) = {
            let mut inner = self.node.inner.lock();
            // (I2) Re-checked under the lock; (I1) Relaxed, as the lock orders
            // this read after `mark`'s store, or `mark` after our registration.
            if self.node.cancelled.load(Ordering::Relaxed) && !mutant("register_skips_recheck") {
                (None, Some(new))
            } else {
                match key.and_then(|key| inner.waiters.get_mut(key).map(|slot| (key, slot))) {
                    Some((key, Waiter::Waker(current))) => {
                        (Some(key), Some(mem::replace(current, new)))
                    }
                    _ => (Some(inner.waiters.insert(Waiter::Waker(new))), None),
                }
            }
        };
        // (I6) Dropped with no lock held: it may hold the last handle of a
        // token below this one, whose unlinking takes this node's lock.
        drop(unused);
        registered
    }

    /// Whether registration `key` already holds a waker that wakes the same
    /// task as `waker` (`Some(false)`: it needs the new one); `None` once
    /// the token is cancelled. Takes no clone, so the common re-poll with
    /// an unchanged waker costs one lock.
    fn still_registered(&self, key: usize, waker: &Waker) -> Option<bool> {
        let inner = self.node.inner.lock();
        // (I2), (I1) as in `register_waker`.
        if self.node.cancelled.load(Ordering::Relaxed) && !mutant("register_skips_recheck") {
            return None;
        }
        Some(
            matches!(inner.waiters.get(key), Some(Waiter::Waker(current)) if current.will_wake(waker)),
        )
    }

    /// Whether `child` was made by `self.child()` (and not born cancelled).
    pub(crate) fn is_parent_of(&self, child: &CancelToken) -> bool {
        (child.node.parent.as_ref()).is_some_and(|parent| Arc::ptr_eq(parent, &self.node))
    }

    /// Removes a registration, unless cancellation already consumed it.
    pub(crate) fn unregister(&self, key: usize) {
        let removed = {
            let mut inner = self.node.inner.lock();
            // (I2) After cancellation the slab was emptied and stays empty, so a
            // key from before must not be looked up in it. (I1) Relaxed: read
            // under the lock every store is made under.
            let live = !self.node.cancelled.load(Ordering::Relaxed);
            (live && inner.waiters.contains(key)).then(|| inner.waiters.remove(key))
        };
        // (I6) Dropped with no lock held, as in `register_waker`.
        drop(removed);
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

    /// A parentless node, cancelled from the start (I1). No store to order:
    /// the fields are initialised before the node is shared, and whatever
    /// hands its token to another thread synchronises with that thread.
    fn born_cancelled(reason: CancelReason) -> Node {
        let inner = Inner {
            reason: Some(reason),
            ..Inner::default()
        };
        Node {
            cancelled: AtomicBool::new(true),
            handles: AtomicUsize::new(0),
            index: AtomicUsize::new(0),
            parent: None,
            inner: Mutex::new(inner),
        }
    }
}

impl Drop for Node {
    /// (I8) Takes over each ancestor this node held the last reference to,
    /// so that dropping it does not recurse into the ancestor's drop.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(mut parent) = next.and_then(last_reference) {
            next = parent.parent.take();
        }
    }
}

/// The node itself if `node` was its last reference; else drops `node`.
fn last_reference(node: Arc<Node>) -> Option<Node> {
    #[cfg(not(loom))]
    {
        Arc::into_inner(node)
    }
    // loom's `Arc` has no `into_inner`. If another thread drops its
    // reference between our failed `try_unwrap` and our drop, this drop runs
    // that node's `Drop`, nested once: bounded, unlike the recursion I8 avoids.
    #[cfg(loom)]
    {
        match Arc::try_unwrap(node) {
            Ok(node) => Some(node),
            // Broken on purpose: a shared ancestor's reference is leaked
            // rather than dropped.
            Err(shared) if mutant("chain_drop_forgets_shared_ancestor") => {
                std::mem::forget(shared);
                None
            }
            Err(_) => None,
        }
    }
}

impl Inner {
    /// Records `reason` (I1), filling the spare for the children (I7).
    fn set_reason(&mut self, reason: &CancelReason) {
        if !matches!(reason, CancelReason::Parent(_)) {
            if let Some(spare) = &mut self.for_children {
                match std::sync::Arc::get_mut(spare) {
                    Some(slot) => *slot = reason.clone(),
                    // Not reached: nothing clones the spare before (I7).
                    None => *spare = std::sync::Arc::new(reason.clone()),
                }
            }
        }
        self.reason = Some(reason.clone());
    }

    /// The reason a child of this cancelled node inherits. Allocates only
    /// if no child was ever linked (I7), for the first child born cancelled.
    fn inherited(&mut self) -> CancelReason {
        match &self.reason {
            Some(reason @ CancelReason::Parent(_)) => reason.clone(),
            Some(reason) => CancelReason::Parent(
                self.for_children
                    .get_or_insert_with(|| std::sync::Arc::new(reason.clone()))
                    .clone(),
            ),
            None => unreachable!("(I1) a cancelled node has its reason"),
        }
    }
}

/// Marks `node` cancelled with `reason` and runs its waiters.
fn mark(node: &Node, reason: &CancelReason, panic: &mut Panic) -> Marked {
    let ((lone, rest), marked) = {
        let mut inner = node.inner.lock();
        // (I1) Relaxed: read under the lock every store is made under.
        if node.cancelled.load(Ordering::Relaxed) {
            return Marked::Before;
        }
        inner.set_reason(reason);
        // (I1) Release: the reason written above is visible to any thread
        // that reads `true` with Acquire.
        node.cancelled.store(true, Ordering::Release);
        let marked = if inner.children.is_empty() {
            Marked::Leaf // (I3) and none will be linked
        } else {
            Marked::WithChildren
        };
        (take_waiters(&mut inner.waiters), marked)
    };
    let rest = rest.into_iter().map(|(_, waiter)| waiter);
    for waiter in lone.into_iter().chain(rest) {
        // (I6) The lock is released; a waiter may re-enter the tree.
        let run = AssertUnwindSafe(|| match waiter {
            Waiter::Waker(waker) => waker.wake(),
            Waiter::Callback(callback) => callback(reason),
        });
        if let Err(payload) = panic::catch_unwind(run) {
            panic.get_or_insert(payload);
        }
    }
    marked
}

/// Empties the slab of a node being marked (I2), handing its waiters out to
/// run with no lock held (I6). A lone waiter, the common case, is moved out
/// of the slab, which keeps its storage for the node's drop to free, so a
/// cancel walk frees nothing either; several go with the slab.
fn take_waiters(waiters: &mut Slab<Waiter>) -> (Option<Waiter>, Slab<Waiter>) {
    if waiters.len() <= 1 {
        (waiters.drain().next(), Slab::new())
    } else {
        (None, mem::take(waiters))
    }
}

/// Cancels every node below `root` (already marked), depth first, without
/// recursion or allocation: children are popped one at a time (I3) and the
/// walk climbs back through the `parent` links.
fn cancel_descendants(root: &Arc<Node>, reason: &CancelReason, panic: &mut Panic) {
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
                // Descend only into a child we marked with children of its
                // own: one marked by someone else is being finished by that
                // thread, and a leaf stays one (I3).
                if mark(&child, reason, panic) == Marked::WithChildren
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
///
/// # Panics
///
/// Dropping it panics as [`CancelToken::cancel`] does, if an
/// [`on_cancel`](CancelToken::on_cancel) callback panics; while the thread
/// is already unwinding, that panic is dropped instead of raised (a second
/// panic would abort the process). The token is cancelled either way.
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
        // A panicking callback is resumed from here, unless the guard is
        // dropped while unwinding: then it is dropped (`cancel_each`).
        cancel_each(self.token.take(), |token| token.cancel());
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
