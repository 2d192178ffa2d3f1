//! The part of a scope that wakers reach: the ready queue and the scope's waker.
//!
//! Wakers may outlive the scope and run on any thread, so this part is
//! `'static` and shared through an `Arc`; it never touches a child future.
//!
//! The queue's protocol (checked by the loom models in `loom-tests/`):
//!
//! 1. A child's index is pushed at most once between two polls of it (its
//!    header's `queued` flag).
//! 2. `notified` is true from the moment somebody is sure to look at the
//!    queue again (the scope's `poll` is running, or the scope's waker was
//!    woken) until the poll that empties the queue clears it, under the lock.
//!    A push while it is false wakes the scope's waker: no wake-up is lost.
//! 3. The push that sets `notified` takes the scope's waker out and wakes it
//!    by value, so no waker is cloned under the lock (a clone is executor
//!    code, which may wake a child of this scope and take this lock again).
//!    The poll that wake brings stores a waker again (`begin_poll`); while
//!    `notified` stays true no push needs one.
//!
//! "The queue" is the children's queue and the body's flag together: a
//! woken body is not queued behind the children but flagged, and the
//! driver's next batch starts with it. Pushing it obeys (1) to (3) as a
//! child's push does, and the queue is empty only when the flag is clear.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use super::cell::TaskRef;
use super::task::{BODY, PanicBox};
use crate::cancel::ambient;
use crate::cancel::{CancelToken, OnCancel};
use crate::introspect::ScopeInfo;
use crate::sync::{Mutex, Padded, WakerArc, WakerWeak, mutant};

pub(crate) struct ScopeShared {
    token: CancelToken,
    /// Padded: away from the reference count of the `Arc` this lives in,
    /// which every spawn bumps while a parallel scope's participants claim
    /// children under this lock (design/performance.md, workload 4).
    ready: Padded<Mutex<Ready>>,
    /// Panics of the body and the children, in the order they happened.
    panics: Mutex<Vec<WakerArc<PanicBox>>>,
    info: ScopeInfo,
    /// Scopes created while one of this scope's tasks was polled (each
    /// knows which task: its `ScopeInfo::parent`). Weak: they point back
    /// here strongly. Kept per scope rather than per task so that a task's
    /// header stays small.
    nested: Mutex<Vec<WakerWeak<ScopeShared>>>,
    /// With `tracing`: the callback that reports the scope's cancellation.
    _traced: Option<OnCancel>,
    /// The token's parent is the ambient one where the scope was made (no
    /// explicit `Builder::parent`), so the scope also follows the token of
    /// the task that first polls it (`PollerLink`).
    follows_poller: bool,
    /// The token of the clean-up this scope was made inside, if any: its
    /// own clean-up's token hangs under it (`cleanup::enclosing`).
    enclosing_cleanup: Option<CancelToken>,
}

#[derive(Default)]
struct Ready {
    /// The children's indices, in the order they were woken.
    queue: VecDeque<usize>,
    /// The body was woken: kept apart from the queue, so the driver's next
    /// batch starts with it wherever it was woken. Queued behind thousands
    /// of children, a body that takes their outputs would wait for all of
    /// them, and a parallel scope's would take them all at the end, alone.
    body_queued: bool,
    waker: Option<Waker>,
    notified: bool,
    /// The headers of the children by slab index, for snapshots (the slab
    /// itself is `'env` and out of a snapshot's reach). Kept under this lock
    /// because spawning takes it anyway: registering costs no extra lock.
    /// A finished child's header stays until a new child reuses its index
    /// (removing it would cost a lock per child) or the scope retires.
    tasks: Vec<Option<TaskRef>>,
    body: Option<TaskRef>,
    /// The task that was being polled when the scope's latest poll began:
    /// the one polling it now, while any of its tasks runs. Not the task
    /// that created it (`ScopeInfo::parent`, for snapshots): a scope future
    /// made in one child may be spawned as its sibling, and only the task
    /// that polls a scope waits for its children.
    poller: Option<TaskRef>,
}

impl ScopeShared {
    pub(crate) fn new(token: CancelToken, info: ScopeInfo) -> Self {
        let traced = info.trace_cancellation(&token);
        ScopeShared {
            token,
            ready: Padded(Mutex::new(Ready::default())),
            panics: Mutex::new(Vec::new()),
            info,
            nested: Mutex::new(Vec::new()),
            _traced: traced,
            follows_poller: false,
            enclosing_cleanup: None,
        }
    }

    /// See `enclosing_cleanup`.
    pub(crate) fn inside_cleanup(mut self, cleanup: Option<CancelToken>) -> Self {
        self.enclosing_cleanup = cleanup;
        self
    }

    pub(crate) fn enclosing_cleanup(&self) -> Option<&CancelToken> {
        self.enclosing_cleanup.as_ref()
    }

    /// See `follows_poller`.
    pub(crate) fn following_its_poller(mut self, follows: bool) -> Self {
        self.follows_poller = follows;
        self
    }

    pub(crate) fn follows_poller(&self) -> bool {
        self.follows_poller
    }

    pub(crate) fn info(&self) -> &ScopeInfo {
        &self.info
    }

    /// Remembers a scope created while one of this scope's tasks was polled.
    pub(crate) fn adopt_scope(&self, scope: &WakerArc<ScopeShared>) {
        let mut nested = self.nested.lock();
        // Forget scopes that are gone, so that a long-lived scope whose
        // tasks create many short ones keeps a short list (amortised: the
        // list at most doubles between two sweeps).
        if nested.len() == nested.capacity() {
            nested.retain(|weak| weak.strong_count() > 0);
        }
        nested.push(WakerArc::downgrade(scope));
    }

    /// The scopes created inside this scope's tasks that still exist.
    pub(crate) fn nested_scopes(&self) -> Vec<WakerArc<ScopeShared>> {
        // Upgraded under the lock, inspected after it is released: a
        // snapshot holds at most one lock at a time.
        let nested = self.nested.lock();
        nested.iter().filter_map(WakerWeak::upgrade).collect()
    }

    /// Registers a new child's header and queues its first poll, under one lock.
    ///
    /// A spawn from another thread puts its child in the slab, then comes
    /// here with no lock held; the scope future's drop may drain the slab
    /// and retire the registry in between. Registered after that, the
    /// header and this shared part would keep each other alive: so a
    /// retired scope registers nothing (its child was already dropped).
    /// `retire` sets the flag before it takes this lock, so whoever takes
    /// the lock after its section sees the flag.
    pub(crate) fn spawned(&self, index: usize, header: TaskRef) {
        let (replaced, waker) = {
            let mut ready = self.ready.lock();
            if self.info.is_retired() && !mutant("spawned_after_retire_registers") {
                drop(ready);
                drop(header);
                return;
            }
            if ready.tasks.len() <= index {
                ready.tasks.resize_with(index + 1, || None);
            }
            let replaced = ready.tasks[index].replace(header);
            (replaced, ready.push(index))
        };
        // Outside the lock: the old header may be the last reference to a
        // token, whose destructor takes the token's lock.
        drop(replaced);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Registers the body's header and queues its first poll.
    pub(crate) fn body_started(&self, header: TaskRef) {
        let waker = {
            let mut ready = self.ready.lock();
            ready.body = Some(header);
            ready.push(BODY)
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The registered headers (body first), copied out so that the caller
    /// inspects them with no lock held.
    pub(crate) fn headers(&self) -> Vec<TaskRef> {
        let ready = self.ready.lock();
        ready
            .body
            .iter()
            .chain(ready.tasks.iter().flatten())
            .cloned()
            .collect()
    }

    /// The scope finished or was dropped: forget the registered headers.
    ///
    /// They point back at this shared part, so keeping them would leak it.
    pub(crate) fn retire(&self) {
        self.info.retire();
        // The executor's waker goes too: a child's waker kept after the
        // scope (in a static, a channel) keeps this part alive, and must
        // not keep the executor's task with it.
        let (tasks, body, waker, poller) = {
            let mut ready = self.ready.lock();
            let tasks = std::mem::take(&mut ready.tasks);
            (
                tasks,
                ready.body.take(),
                ready.waker.take(),
                ready.poller.take(),
            )
        };
        // Outside the lock, as in `spawned`.
        drop((tasks, body, waker, poller));
    }

    pub(crate) fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Queues `index` for a poll and wakes the scope if nobody will look (2).
    pub(crate) fn schedule(&self, index: usize) {
        let waker = self.ready.lock().push(index);
        // Woken outside the lock: an executor may poll the scope right here.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Starts a poll of the scope: remembers its waker; pushes need not wake.
    ///
    /// After a wake the stored waker is gone (3), so this stores a clone
    /// again. A new waker is cloned, and the old one dropped, outside the
    /// lock: both run the executor's code, and dropping the last waker of the
    /// task that owns this scope drops the scope, whose retirement takes this
    /// lock.
    /// Storing it after `notified` is set loses nothing: until the poll ends
    /// (`try_end_poll`), pushes need no wake.
    pub(crate) fn begin_poll(&self, waker: &Waker) {
        let poller = ambient::current_task();
        let (old_poller, same_waker) = {
            let mut ready = self.ready.lock();
            ready.notified = true;
            let old_poller = std::mem::replace(&mut ready.poller, poller);
            let same = (ready.waker.as_ref()).is_some_and(|current| current.will_wake(waker));
            (old_poller, same)
        };
        // Outside the lock: it may be the last reference to a task's cell.
        drop(old_poller);
        if same_waker {
            return;
        }
        let new = waker.clone();
        let old = self.ready.lock().waker.replace(new);
        drop(old);
    }

    /// The task polling this scope now (see `Ready::poller`), while one of
    /// its tasks runs.
    pub(crate) fn poller(&self) -> Option<TaskRef> {
        self.ready.lock().poller.clone()
    }

    /// Moves up to `limit` ready indices into `batch`: the body's first, if
    /// it is ready, then the children's in the order they were woken.
    pub(crate) fn take_ready(&self, batch: &mut Vec<usize>, mut limit: usize) {
        let mut ready = self.ready.lock();
        if limit > 0 && std::mem::take(&mut ready.body_queued) {
            batch.push(BODY);
            limit -= 1;
        }
        let count = limit.min(ready.queue.len());
        batch.extend(ready.queue.drain(..count));
    }

    /// Moves up to `limit` children's indices from the front of the queue
    /// into `into`, and no more than a `1 / divisor` share of what it holds
    /// (at least one): how a parallel scope's participants find children
    /// woken (or left over) while a batch runs. Never the body, which only
    /// the driver may poll (on the scope's thread), and which is not in the
    /// queue. Returns how many moved.
    ///
    /// For the scope's own thread (`owner`), a woken body comes first:
    /// nothing moves, the body's wake is taken, and `None` says to poll it
    /// (on that thread, the only one that may) before claiming again. So a
    /// body woken during a fan-out waits for its thread's bites in hand,
    /// not for the rest of the fan-out's budget.
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn take_ready_children(
        &self,
        into: &mut Vec<usize>,
        limit: usize,
        divisor: usize,
        owner: bool,
    ) -> Option<usize> {
        let mut ready = self.ready.lock();
        if owner && ready.body_queued && !mutant("fan_out_starves_the_body") {
            ready.body_queued = false;
            return None;
        }
        let share = ready.queue.len().div_ceil(divisor.max(1));
        let count = limit.min(share);
        into.extend(ready.queue.drain(..count));
        Some(count)
    }

    /// Ends a poll if the queue is empty (clearing `notified`, (2)); false if
    /// more work arrived and the caller should go on.
    pub(crate) fn try_end_poll(&self) -> bool {
        let mut ready = self.ready.lock();
        if ready.queue.is_empty() && !ready.body_queued {
            ready.notified = false;
            true
        } else {
            false
        }
    }

    /// Records a panic; the first one cancels the scope with its reason.
    pub(crate) fn record_panic(&self, panic: WakerArc<PanicBox>) {
        let first = {
            let mut panics = self.panics.lock();
            panics.push(panic.clone());
            panics.len() == 1
        };
        if first {
            // An `on_cancel` callback may panic. Unwinding from here would
            // leave the poller's loop half done (a child taken out and never
            // put back), so that panic joins the list and is raised with the
            // others once every child has finished.
            let cancel = AssertUnwindSafe(|| self.token.cancel_with(panic.reason().clone()));
            if let Err(payload) = panic::catch_unwind(cancel) {
                self.panics.lock().push(PanicBox::new(payload));
            }
        }
    }

    /// Runs `report`, a call into `tracing`, where its panic cannot unwind
    /// through the poll loop: a subscriber is user code and may panic, and
    /// the loop may hold children taken out of the slab (they would be
    /// lost) or a body not yet marked for its next poll. The panic is
    /// recorded as the scope's, raised once every child finished, as a
    /// child's is; `None` then.
    #[cfg(feature = "tracing")]
    pub(crate) fn traced<R>(&self, report: impl FnOnce() -> R) -> Option<R> {
        match panic::catch_unwind(AssertUnwindSafe(report)) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.record_panic(PanicBox::new(payload));
                None
            }
        }
    }

    /// Runs `work` inside the scope's `tracing` span (with the feature),
    /// entering and leaving it through [`traced`](Self::traced).
    pub(crate) fn in_span<R>(&self, work: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        let span = self.traced(|| self.info.span().enter());
        let value = work();
        #[cfg(feature = "tracing")]
        self.traced(|| drop(span));
        value
    }

    /// The first panic that nobody re-raised yet, if any.
    pub(crate) fn take_unraised_panic(&self) -> Option<Box<dyn std::any::Any + Send>> {
        let panics = std::mem::take(&mut *self.panics.lock());
        panics.iter().find_map(|panic| panic.take())
    }
}

impl Ready {
    /// Queues `index`; the waker to wake (outside the lock) if nobody will
    /// look (2), taken out rather than cloned (3).
    fn push(&mut self, index: usize) -> Option<Waker> {
        if index == BODY {
            self.body_queued = true;
        } else {
            self.queue.push_back(index);
        }
        if self.notified || mutant("schedule_never_wakes") {
            None
        } else {
            self.notified = true;
            self.waker.take()
        }
    }
}

impl fmt::Debug for ScopeShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeShared")
            .field("id", &self.info.id())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
