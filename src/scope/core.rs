//! The children of a scope and the polling of one child.
//!
//! `Core<T>` is generic over the boxed child type `T`: `dyn Future + Send`
//! for [`scope`](crate::scope) and [`par_scope`](crate::par_scope), plain
//! `dyn Future` for [`local_scope`](crate::local_scope). Children are polled
//! only by the scope future's own `poll` (never by a waker, never by a
//! handle), which is what makes `mem::forget` of a scope future harmless:
//! see design/soundness.md.
//!
//! A child's future lives in its task cell (src/scope/cell.rs); the slab
//! holds the scope's reference to it, an `OwnedTask`. That reference is taken
//! out of its slab entry while the child is polled, so no lock is held
//! during a poll (a child may spawn into its own scope) and, in a parallel
//! scope, distinct children can be polled on distinct threads.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe, Location};
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::cell::{Holds, OwnedTask, TaskRef};
use super::gone::Gone;
use super::join_handle::JoinHandle;
use super::shared::ScopeShared;
use super::task::{DEAD, PanicBox, TaskExit, TaskHeader, drop_after_panic};
use crate::cancel::ambient::{self, Ambient};
use crate::cleanup::CleanupTimeout;
use crate::cleanup::queue::CleanupQueue;
use crate::sync::{Mutex, Ordering, Padded, StatU64, WakerArc, mutant};

pub(crate) struct Core<T: ?Sized> {
    shared: WakerArc<ScopeShared>,
    /// Padded: in a parallel scope the participants take and put back
    /// children under it while the body spawns, which reads `shared` and
    /// bumps `next_seq` next to it (design/performance.md, workload 4).
    state: Padded<Mutex<State<T>>>,
    /// The number the next child gets in snapshots (the body is 0).
    next_seq: StatU64,
    /// Adopted values and deferred futures, run once every child finished.
    cleanup: CleanupQueue<T>,
}

struct State<T: ?Sized> {
    tasks: Slab<Entry<T>>,
    /// Set when the scope finished or was dropped (how, for the message):
    /// spawning is a bug then.
    ended: Option<Gone>,
}

struct Entry<T: ?Sized> {
    /// `None` while the child is being polled: moved out, so no lock is held
    /// during the poll and no reference count is touched.
    parts: Option<Parts<T>>,
    /// Woken while being polled elsewhere (parallel scope): queue it again
    /// when it is put back, or the wake-up would be lost.
    rewake: bool,
}

/// What polling a child needs, made once at spawn and reused for every poll.
pub(crate) struct Parts<T: ?Sized> {
    /// The scope's reference to the child's cell: the only way to its future.
    pub(crate) task: OwnedTask<T>,
    /// A second count on the cell, moved into the ambient slot for each poll.
    pub(crate) header: TaskRef,
    pub(crate) waker: Waker,
}

/// A child taken out of the slab to be polled.
pub(crate) struct Taken<T: ?Sized> {
    pub(crate) index: usize,
    pub(crate) parts: Parts<T>,
}

/// Work left for after the lock is released: user code may run in it.
#[must_use = "the follow-up must run once the lock is released"]
pub(crate) enum FollowUp<T: ?Sized> {
    Nothing,
    Reschedule(usize),
    Finished(Parts<T>, TaskExit),
}

impl<T: ?Sized> Core<T> {
    pub(crate) fn new(shared: WakerArc<ScopeShared>) -> Self {
        Core {
            shared,
            state: Padded(Mutex::new(State {
                tasks: Slab::new(),
                ended: None,
            })),
            next_seq: StatU64::new(1),
            cleanup: CleanupQueue::new(CleanupTimeout::default()),
        }
    }

    /// Bounds the scope's clean-up; see `Builder::cleanup_timeout_when`.
    pub(crate) fn with_cleanup_timeout(mut self, timeout: CleanupTimeout) -> Self {
        self.cleanup = CleanupQueue::new(timeout);
        self
    }

    pub(crate) fn shared(&self) -> &WakerArc<ScopeShared> {
        &self.shared
    }

    /// How many children the scope has spawned so far.
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn spawns(&self) -> u64 {
        // Relaxed: a count for the parallel runner's guess; a spawn racing
        // with the read on another thread may be missed.
        self.next_seq.load(Ordering::Relaxed) - 1
    }

    pub(crate) fn cleanup(&self) -> &CleanupQueue<T> {
        &self.cleanup
    }

    /// Adds a child, in a task cell of its own, and schedules its first poll.
    ///
    /// `location` is where the user asked for the child, for snapshots.
    ///
    /// # Panics
    ///
    /// If the scope has already finished or been dropped.
    #[track_caller]
    pub(crate) fn insert<F>(
        &self,
        future: F,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future,
        T: Holds<F>,
    {
        // The cell is made before the lock is taken, so that the allocation
        // does not hold up the threads of a parallel scope that take and
        // put back children under it; its slot is filled in under the lock.
        // Relaxed: a diagnostic number (snapshots); it need only be distinct.
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let header = TaskHeader::new(self.shared.clone(), DEAD, seq, name, location);
        let (task, join, [header, for_waker, registered]) = OwnedTask::new(future, header);
        let mut state = self.state.lock();
        if let Some(gone) = state.ended {
            drop(state);
            // The refusal's message is what the caller needs: a panic of
            // the refused future's destructor would hide it, so it is
            // dropped (the future never ran), its payload's too.
            drop_after_panic((task, join, header, for_waker, registered));
            self.refuse_spawn(gone);
        }
        let index = state.tasks.vacant_key();
        header.place(index);
        let parts = Parts {
            task,
            header,
            waker: for_waker.into_waker(),
        };
        state.tasks.insert(Entry {
            parts: Some(parts),
            rewake: false,
        });
        drop(state);
        self.shared.spawned(index, registered);
        JoinHandle::new(join)
    }

    /// Why a spawn into the closed scope is a bug. The check is here, on
    /// the refusing path, rather than before every spawn: the clean-up runs
    /// only once the scope closed, and its phase is read under a lock.
    #[track_caller]
    fn refuse_spawn(&self, gone: Gone) -> ! {
        assert!(
            !self.cleanup.is_running(),
            "taskscope: spawn while the scope's clean-up runs (from an adopted value's \
             prepare_drop, a deferred future, or another thread holding the scope's handle); \
             the scope's children were already joined, so it cannot take new ones: spawn into \
             a nested scope inside the clean-up, or into a scope that is still running"
        );
        gone.refuse("spawn")
    }

    /// Refuses, as a spawn would, a scope that no longer takes children:
    /// for the stream adapters, which spawn only from their polls, so that
    /// the panic names the line that made the adapter.
    #[track_caller]
    pub(crate) fn check_open(&self) {
        let ended = self.state.lock().ended;
        if let Some(gone) = ended {
            self.refuse_spawn(gone);
        }
    }

    /// Polls the children of `batch` one after the other on this thread,
    /// putting one back and taking the next under a single lock.
    pub(crate) fn run_serial(&self, batch: &[usize])
    where
        T: Future<Output = TaskExit>,
    {
        let mut follow_up = FollowUp::Nothing;
        let mut polled = None;
        let mut next = batch.iter();
        loop {
            let taken = {
                let mut state = self.state.lock();
                if let Some((taken, exit)) = polled.take() {
                    follow_up = put_back_locked(&mut state, taken, exit);
                }
                next.by_ref()
                    .find_map(|&index| take_locked(&mut state, index))
            };
            self.follow_up(std::mem::replace(&mut follow_up, FollowUp::Nothing));
            let Some(taken) = taken else { return };
            polled = Some(poll_taken(taken));
        }
    }

    /// Polls the children that `claim` hands out, a bite at a time, one
    /// after the other on this thread (a parallel scope's participant).
    /// `claim` fills the bite with no lock held; the whole bite is taken out
    /// under one lock and put back under one more, so a participant touches
    /// the state its siblings share twice per bite rather than per child.
    /// Returns how many children it polled.
    ///
    /// The polled children are put back and their follow-ups run *before*
    /// the next claim: a follow-up runs user code that may panic (the
    /// callbacks of the scope's token, when it records a panic), and a
    /// participant unwinding from it must hold no child, neither taken (it
    /// would be dropped unpolled) nor claimed (nobody else would poll it).
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub(crate) fn run_claimed(&self, mut claim: impl FnMut(&mut Vec<usize>)) -> u64
    where
        T: Future<Output = TaskExit>,
    {
        let mut bite = Vec::new();
        let mut taken = Vec::new();
        let mut polled = Vec::new();
        let mut follow_ups = Vec::new();
        let mut polls = 0;
        loop {
            if !polled.is_empty() {
                self.put_back_all(&mut polled, &mut follow_ups);
            }
            bite.clear();
            claim(&mut bite);
            if bite.is_empty() {
                return polls;
            }
            {
                let mut state = self.state.lock();
                // A child missing here is being polled elsewhere (its
                // `rewake` is now set) or has finished.
                taken.extend(
                    bite.iter()
                        .filter_map(|&index| take_locked(&mut state, index)),
                );
            }
            polls += taken.len() as u64;
            polled.extend(taken.drain(..).map(|child| {
                let (child, exit) = poll_taken(child);
                (child, self.record_panic_at_once(exit))
            }));
        }
    }

    /// Records a child's panic as soon as its poll returns it, not when its
    /// bite is put back: the scope's cancellation then reaches the siblings
    /// this participant polls next in the same bite, and the scope's first
    /// panic is the first in time. The exit handed on is `Completed`, so
    /// the follow-up does not record it again. `record_panic` catches the
    /// panics of the callbacks it runs, so nothing unwinds here while the
    /// rest of the bite is taken.
    fn record_panic_at_once(&self, exit: Poll<TaskExit>) -> Poll<TaskExit> {
        match exit {
            Poll::Ready(TaskExit::Panicked(panic)) => {
                self.shared.record_panic(panic);
                Poll::Ready(TaskExit::Completed)
            }
            other => other,
        }
    }

    /// Puts every polled child back under one lock, then runs their
    /// follow-ups with none held. Each follow-up runs even if one before it
    /// panics (a lost re-schedule would leave its child unpolled); the first
    /// panic goes on once all have run.
    fn put_back_all(
        &self,
        polled: &mut Vec<(Taken<T>, Poll<TaskExit>)>,
        follow_ups: &mut Vec<FollowUp<T>>,
    ) {
        {
            let mut state = self.state.lock();
            follow_ups.extend(
                polled
                    .drain(..)
                    .map(|(taken, exit)| put_back_locked(&mut state, taken, exit)),
            );
        }
        let mut first_panic = None;
        for follow_up in follow_ups.drain(..) {
            let run = panic::catch_unwind(AssertUnwindSafe(|| self.follow_up(follow_up)));
            if let Err(payload) = run {
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }

    /// Runs what `put_back_locked` left for outside the lock.
    pub(crate) fn follow_up(&self, follow_up: FollowUp<T>) {
        match follow_up {
            FollowUp::Nothing => {}
            // Bypasses the `queued` flag on purpose: the wake that set
            // `rewake` found the child queued and must not be lost.
            FollowUp::Reschedule(index) => self.shared.schedule(index),
            FollowUp::Finished(parts, exit) => {
                if let TaskExit::Panicked(panic) = exit {
                    self.shared.record_panic(panic);
                }
                // The future and an unwanted output were dropped inside the
                // child's poll; releasing the scope's counts may free the
                // cell, whose header holds the child's token. Caught and
                // raised by the scope like a child's panic all the same,
                // rather than unwinding out of the poll loop, which may hold
                // the next child taken out of the slab.
                let release = || parts.task.release_with(parts.header, parts.waker);
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(release)) {
                    self.shared.record_panic(PanicBox::new(payload));
                }
            }
        }
    }

    /// If every child has finished, refuses further spawns and says so.
    pub(crate) fn close_if_empty(&self) -> bool {
        let mut state = self.state.lock();
        if state.tasks.is_empty() {
            state.ended.get_or_insert(Gone::Returned);
        }
        state.ended.is_some() && state.tasks.is_empty()
    }

    /// Drops every child, unpolled, and closes the scope; returns the first
    /// panic of their destructors, for the caller to raise once the rest of
    /// the shutdown is done.
    ///
    /// A child's destructor may spawn into the scope (it still holds a
    /// handle); such late children are dropped in the next round. Each child
    /// is dropped on its own, its panic caught: a second panic unwinding
    /// through the rest of the round would abort the process, and one
    /// escaping would leave the scope open and its clean-up not abandoned.
    pub(crate) fn drop_children(&self) -> Option<Box<dyn Any + Send>> {
        let mut first_panic = None;
        loop {
            let futures: Vec<_> = {
                let mut state = self.state.lock();
                if state.tasks.is_empty() {
                    state.ended = Some(Gone::Dropped);
                    return first_panic;
                }
                state
                    .tasks
                    .drain()
                    .filter_map(|entry| {
                        let parts = entry.parts?;
                        parts.header.info().abandon();
                        parts.header.mark_dead();
                        Some(parts.task)
                    })
                    .collect()
            };
            // Outside the lock: destructors are user code.
            for task in futures {
                if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| drop(task))) {
                    keep_first(&mut first_panic, payload);
                }
            }
        }
    }
}

/// Keeps `payload` if it is the first panic, else drops it (a payload's
/// own destructor may panic too).
fn keep_first(first: &mut Option<Box<dyn Any + Send>>, payload: Box<dyn Any + Send>) {
    if first.is_none() {
        *first = Some(payload);
    } else {
        drop_after_panic(payload);
    }
}

fn take_locked<T: ?Sized>(state: &mut State<T>, index: usize) -> Option<Taken<T>> {
    let entry = state.tasks.get_mut(index)?;
    match entry.parts.take() {
        Some(parts) => Some(Taken { index, parts }),
        None => {
            entry.rewake = true;
            None
        }
    }
}

// Always inlined, as `poll_taken`: see there.
#[inline(always)]
fn put_back_locked<T: ?Sized>(
    state: &mut State<T>,
    taken: Taken<T>,
    exit: Poll<TaskExit>,
) -> FollowUp<T> {
    let Taken { index, parts } = taken;
    match exit {
        Poll::Pending => {
            let entry = &mut state.tasks[index];
            entry.parts = Some(parts);
            if std::mem::take(&mut entry.rewake) && !mutant("put_back_ignores_rewake") {
                FollowUp::Reschedule(index)
            } else {
                FollowUp::Nothing
            }
        }
        Poll::Ready(exit) => {
            if mutant("completed_child_stays")
                && !std::mem::replace(&mut state.tasks[index].rewake, true)
            {
                // The broken variant keeps a finished child in the slab
                // once, live and scheduled, so it is polled again.
                state.tasks[index].parts = Some(parts);
                return FollowUp::Reschedule(index);
            }
            state.tasks.remove(index);
            parts.header.mark_dead();
            // The future's destructor already ran inside the child's poll;
            // the scope's counts are released after the lock all the same.
            FollowUp::Finished(parts, exit)
        }
    }
}

/// Polls one taken child with its own waker and its token made current.
///
/// The header is moved into the ambient slot and back out, so a poll costs
/// no reference-count traffic.
///
/// Always inlined (with `put_back_locked`): each codegen unit that calls
/// `Core::run_serial` makes its own copy of it, and LLVM inlined these two
/// into `scope`'s copy but called them out of line from `par_scope`'s, which
/// made the same serial loop 8-10% slower there (design/performance.md,
/// workload 5).
#[inline(always)]
pub(crate) fn poll_taken<T: ?Sized + Future<Output = TaskExit>>(
    taken: Taken<T>,
) -> (Taken<T>, Poll<TaskExit>) {
    let Taken { index, parts } = taken;
    let Parts {
        mut task,
        header,
        waker,
    } = parts;
    let late = mutant("clear_queued_after_poll");
    if !late {
        header.clear_queued();
    }
    header.info().begin_poll(header.shared().info().epoch());
    #[cfg(feature = "tracing")]
    let span = header
        .shared()
        .traced(|| header.info().span().clone().entered());
    let (header, poll) = ambient::run_as_task(header, Ambient::Task, || {
        task.poll(&mut Context::from_waker(&waker))
    });
    #[cfg(feature = "tracing")]
    header.shared().traced(|| {
        if let Poll::Ready(TaskExit::Panicked(panic)) = &poll {
            let info = header.info();
            info.trace_panic(header.shared().info(), &panic.reason());
        }
        drop(span);
    });
    if let Poll::Ready(TaskExit::Panicked(panic)) = &poll {
        if panic.is_the_tasks() {
            header.info().mark_panicked();
        }
    }
    header.info().end_poll();
    if late {
        header.clear_queued();
    }
    (
        Taken {
            index,
            parts: Parts {
                task,
                header,
                waker,
            },
        },
        poll,
    )
}

impl<T: ?Sized> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Read under the lock, written after it: the formatter's sink is the
        // caller's code, which may spawn here.
        let (children, closed) = {
            let state = self.state.lock();
            (state.tasks.len(), state.ended.is_some())
        };
        f.debug_struct("Core")
            .field("children", &children)
            .field("closed", &closed)
            .field("cleanup", &self.cleanup)
            .finish()
    }
}
