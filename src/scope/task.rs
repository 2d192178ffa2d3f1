//! The per-child header: the child's waker, its index and its token.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};

use super::shared::ScopeShared;
use crate::cancel::CancelReason;
use crate::cancel::lazy::{LazyToken, TaskToken};
use crate::introspect::TaskInfo;
use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering, WakerArc};

/// The index of a child that has finished: its waker no longer schedules.
pub(crate) const DEAD: usize = usize::MAX;
/// The index the body of a scope is scheduled under.
pub(crate) const BODY: usize = usize::MAX - 1;

/// What a scope keeps of each child that the child's waker can reach.
///
/// It is `'static` (it holds nothing borrowed), because wakers may be kept
/// anywhere and live arbitrarily long: a stray waker of a finished child
/// reaches only this header, whose index is then [`DEAD`]. It lives at the
/// head of the child's task cell (src/scope/cell.rs), reached through a
/// counted `TaskRef`; a body's header is alone in its allocation.
pub(crate) struct TaskHeader {
    shared: WakerArc<ScopeShared>,
    /// The child's slot in the scope's slab, or [`DEAD`] once it finished.
    index: AtomicUsize,
    /// Set by a wake, cleared by the poller just before it polls: a child is
    /// in the ready queue at most once, however often it is woken.
    queued: AtomicBool,
    token: LazyToken,
    /// Name, number, poll statistics and nested scopes, for snapshots.
    info: TaskInfo,
}

impl TaskHeader {
    /// A header for a child at `index`, already counted as queued: a new
    /// child is scheduled for its first poll by the spawner.
    ///
    /// `seq` numbers the task inside its scope (0 for the body).
    pub(crate) fn new(
        shared: WakerArc<ScopeShared>,
        index: usize,
        seq: u64,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
    ) -> Self {
        let token = LazyToken::new();
        let info = TaskInfo::new(seq, name, location, shared.info());
        TaskHeader {
            shared,
            index: AtomicUsize::new(index),
            queued: AtomicBool::new(true),
            token,
            info,
        }
    }

    pub(crate) fn info(&self) -> &TaskInfo {
        &self.info
    }

    /// The scope this task belongs to.
    pub(crate) fn shared(&self) -> &WakerArc<ScopeShared> {
        &self.shared
    }

    /// The task's own token, made on first demand, under its scope's.
    pub(crate) fn token(&self) -> TaskToken<'_> {
        TaskToken::new(&self.token, self.shared.token())
    }

    pub(crate) fn index(&self) -> usize {
        self.index.load(Ordering::Acquire)
    }

    /// Called by the poller right before it polls the child.
    pub(crate) fn clear_queued(&self) {
        // AcqRel: acquire what a waker published before it set the flag, so
        // the poll that follows sees it; a wake after this swap queues again.
        self.queued.swap(false, Ordering::AcqRel);
    }

    /// Gives a header made with the index [`DEAD`] its slot, before anybody
    /// else can reach it (the spawner allocates the cell before it knows the
    /// slot, so that the allocation stays outside the core's lock).
    pub(crate) fn place(&self, index: usize) {
        // Relaxed: the header is not shared yet; the core's lock, under which
        // it is placed and inserted, publishes it with the index.
        self.index.store(index, Ordering::Relaxed);
    }

    /// The child finished: later wakes must not schedule its (reused) index.
    pub(crate) fn mark_dead(&self) {
        self.index.store(DEAD, Ordering::Release);
    }
}

impl TaskHeader {
    /// What the task's waker does: queue the task, once until its next poll.
    pub(crate) fn wake(&self) {
        // AcqRel: release what the waking side wrote before it woke us, to
        // the poller's `clear_queued`.
        if self.queued.swap(true, Ordering::AcqRel) {
            return; // already in the ready queue
        }
        let index = self.index();
        if index != DEAD {
            self.shared.schedule(index);
        }
    }
}

impl fmt::Debug for TaskHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHeader")
            .field("seq", &self.info.seq())
            .field("index", &self.index())
            .field("cancelled", &self.token().is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Drops what is left of a task whose panic is already being raised (its
/// output, or a second panic's payload), where a panic of that destructor
/// cannot unwind out of the scope's poll loop: one panic is raised per task,
/// so a second is dropped, and a payload whose own destructor panics is
/// leaked rather than dropped again.
pub(crate) fn drop_after_panic<T>(value: T) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(value))) {
        if let Err(again) = panic::catch_unwind(AssertUnwindSafe(|| drop(payload))) {
            std::mem::forget(again);
        }
    }
}

/// A caught panic, waiting to be re-raised by a `JoinHandle` or the scope.
///
/// Whoever takes the payload first re-raises it; the other side then knows
/// it was already raised. So a panic is raised exactly once.
pub(crate) struct PanicBox {
    payload: Mutex<Option<Box<dyn Any + Send>>>,
    reason: CancelReason,
    /// See [`PanicBox::of_the_task`].
    of_the_task: bool,
}

impl PanicBox {
    pub(crate) fn new(payload: Box<dyn Any + Send>) -> WakerArc<Self> {
        Self::with_origin(payload, false)
    }

    /// The panic of a task's own future (its poll or its destructor), as
    /// opposed to one of code around it (its handle's waker): snapshots show
    /// only the first kind as the task's.
    pub(crate) fn of_the_task(payload: Box<dyn Any + Send>) -> WakerArc<Self> {
        Self::with_origin(payload, true)
    }

    fn with_origin(payload: Box<dyn Any + Send>, of_the_task: bool) -> WakerArc<Self> {
        let reason = CancelReason::from_panic(&*payload);
        WakerArc::new(PanicBox {
            payload: Mutex::new(Some(payload)),
            reason,
            of_the_task,
        })
    }

    pub(crate) fn is_the_tasks(&self) -> bool {
        self.of_the_task
    }

    pub(crate) fn take(&self) -> Option<Box<dyn Any + Send>> {
        self.payload.lock().take()
    }

    /// The reason a scope is cancelled with because of this panic.
    pub(crate) fn reason(&self) -> &CancelReason {
        &self.reason
    }
}

/// How a child left the scope.
pub(crate) enum TaskExit {
    Completed,
    Panicked(WakerArc<PanicBox>),
}
