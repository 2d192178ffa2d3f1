//! The admission gate of a fan-out: helper jobs that borrow the fan-out's
//! state, and that the fan-out waits for only if they arrived in time.
//!
//! A fork-join through `rayon_core::in_place_scope` returns only once every
//! job it spawned has *run*. Called from outside the pool (an async
//! executor's thread), its wait cannot run those jobs itself: on a pool
//! saturated with other long jobs, the scope's `poll` waited for a pool
//! thread to take its helper up even after the calling thread had polled
//! every child itself, and deadlocked when those jobs waited for the
//! executor polling the scope. Here a helper job is `'static` and reaches
//! the borrowed state through a pointer whose lifetime was erased; the gate
//! makes that sound. (From a pool thread the fan-out keeps rayon's
//! fork-join: its wait takes the fan-out's own unclaimed helper jobs back.)
//!
//! # Invariants
//!
//! - **G1.** A helper dereferences the pointer only between a successful
//!   [`Gate::enter`] and its [`Gate::leave`].
//! - **G2.** [`Gate::enter`] succeeds only before [`Gate::close_and_wait`]
//!   closed the gate.
//! - **G3.** [`Gate::close_and_wait`] returns only when every successful
//!   `enter` has been matched by a `leave`; the gate's mutex orders the
//!   helper's uses of the state before that return.
//! - **G4.** [`run_with_helpers`] closes the gate and waits before it
//!   returns, also when its own call of the work unwinds (`CloseOnDrop`),
//!   so the borrowed state outlives every admitted helper. Its frame cannot
//!   be forgotten halfway: the caller gets control back only by its return
//!   or its unwinding.
//!
//! A helper job that starts after the gate closed returns without touching
//! the state, however late it runs. See design/soundness.md, "The admission
//! gate".
//!
//! # The backlog
//!
//! The gate also counts the jobs that reached it, admitted or not, so that
//! a fan-out can tell which of the jobs it offered are still queued in a
//! busy pool ([`Offered::still_queued`]), and a scope can stop offering
//! more to a pool that has not started several of them ([`Backlog`]). The
//! count is bookkeeping beside the invariants: it never admits, delays or
//! frees anything.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::sync::{Arc, Condvar, Mutex, mutant};

/// A job for a pool: owns everything it touches but the gated state.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Work shared by several threads, each calling [`Shared::work`] once.
pub(crate) trait Shared: Sync {
    /// One participant's share: returns when nothing is left to take.
    fn work(&self);
}

/// Calls `shared.work()` on this thread and offers `helpers` more calls of
/// it to the threads that `spawn` hands jobs to. Returns once this thread's
/// call returned and every offered call that started before that returned;
/// an offered call that starts later returns at once, without touching
/// `shared` (G1 to G4).
///
/// # Panics
///
/// Re-raises a panic of this thread's call, else the first panic of a
/// helper's, once every admitted helper has left.
pub(crate) fn run_with_helpers<S: Shared>(
    shared: &S,
    helpers: usize,
    spawn: impl Fn(Job),
) -> Offered {
    let gate = Arc::new(Gate::default());
    // Before the first spawn: if a spawn panics, the helpers already
    // admitted are still waited for (G4).
    let close = CloseOnDrop(&gate);
    for _ in 0..helpers {
        let erased = Erased::new(shared);
        let gate = gate.clone();
        spawn(Box::new(move || gate.admit(erased)));
    }
    shared.work();
    let helper_panic = close.close_and_wait();
    if let Some(payload) = helper_panic {
        panic::resume_unwind(payload);
    }
    Offered {
        gate,
        jobs: helpers,
    }
}

/// The helper jobs one fan-out handed to the pool, for the count of those
/// that have not reached its gate yet.
#[must_use = "the backlog is what tells the next fan-out how many jobs still wait"]
pub(crate) struct Offered {
    gate: Arc<Gate>,
    jobs: usize,
}

impl Offered {
    /// How many of the offered jobs no pool thread has started yet.
    pub(crate) fn still_queued(&self) -> usize {
        self.jobs - self.gate.state.lock().arrived
    }
}

/// The jobs a scope's earlier fan-outs offered that are still queued in the
/// pool, so that a scope can bound how many it leaves there.
#[derive(Default)]
pub(crate) struct Backlog {
    offered: Vec<Offered>,
}

impl Backlog {
    /// How many offered jobs are still queued; forgets the fan-outs whose
    /// jobs have all started.
    pub(crate) fn queued(&mut self) -> usize {
        let mut queued = 0;
        self.offered.retain(|offered| {
            let still = offered.still_queued();
            queued += still;
            still > 0
        });
        queued
    }

    /// Remembers a fan-out's jobs if some have not started yet.
    pub(crate) fn keep(&mut self, offered: Offered) {
        if offered.still_queued() > 0 {
            self.offered.push(offered);
        }
    }
}

impl fmt::Debug for Backlog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backlog")
            .field("fan_outs", &self.offered.len())
            .finish()
    }
}

/// A `&S` with its lifetime erased, and the function that calls its work.
struct Erased {
    data: *const (),
    work: unsafe fn(*const ()),
}

#[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
// SAFETY: `Erased` stands for a `&S` with `S: Sync`, which is `Send`; it is
// only dereferenced while the gate admits its holder (G1).
unsafe impl Send for Erased {}

impl Erased {
    fn new<S: Shared>(shared: &S) -> Self {
        Erased {
            data: std::ptr::from_ref(shared).cast(),
            work: call_work::<S>,
        }
    }
}

/// Calls the work of the `S` that `data` points to.
///
/// # Safety
///
/// `data` must come from `Erased::new::<S>` and its referent must still be
/// alive: the caller holds a pass of the gate (G1 to G4).
#[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
unsafe fn call_work<S: Shared>(data: *const ()) {
    // SAFETY: `data` was made from a `&S` (`Erased::new`), and the caller
    // was admitted by the gate, so the referent is alive until it leaves
    // (G1 to G4); `S: Sync` allows the shared access from here.
    let shared = unsafe { &*data.cast::<S>() };
    shared.work();
}

/// Who is inside, and whether more may come in.
struct Gate {
    state: Mutex<GateState>,
    /// Signalled when the last admitted helper leaves a closed gate.
    emptied: Condvar,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            state: Mutex::new(GateState::default()),
            emptied: Condvar::new(),
        }
    }
}

#[derive(Default)]
struct GateState {
    closed: bool,
    inside: usize,
    /// Jobs that reached the gate, admitted or turned away (the backlog).
    arrived: usize,
    /// The first panic of an admitted helper, for the owner to raise.
    panic: Option<Box<dyn Any + Send>>,
}

impl Gate {
    /// A helper job's whole life: the work if admitted, else nothing.
    fn admit(&self, erased: Erased) {
        if !self.enter() {
            return;
        }
        let work = AssertUnwindSafe(|| {
            #[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
            // SAFETY: admitted (`enter` returned true) and not yet left:
            // the owner keeps the state alive until this helper leaves.
            unsafe {
                (erased.work)(erased.data);
            }
        });
        let outcome = panic::catch_unwind(work);
        self.leave(outcome.err());
    }

    /// Admits a helper unless the gate is closed (G2).
    fn enter(&self) -> bool {
        let mut state = self.state.lock();
        state.arrived += 1;
        if state.closed && !mutant("gate_admits_after_close") {
            return false;
        }
        state.inside += 1;
        true
    }

    /// An admitted helper is done with the state.
    fn leave(&self, panic: Option<Box<dyn Any + Send>>) {
        let unraised = {
            let mut state = self.state.lock();
            state.inside -= 1;
            let unraised = match panic {
                Some(payload) if state.panic.is_none() => {
                    state.panic = Some(payload);
                    None
                }
                later => later,
            };
            if state.closed && state.inside == 0 {
                self.emptied.notify_all();
            }
            unraised
        };
        // Only the first helper panic is raised; a payload's destructor is
        // user code, so it runs with no lock held.
        if let Some(payload) = unraised {
            crate::scope::task::drop_after_panic(payload);
        }
    }

    /// Admits nobody more and waits until every admitted helper has left
    /// (G3); returns the first panic of a helper.
    fn close_and_wait(&self) -> Option<Box<dyn Any + Send>> {
        let mut state = self.state.lock();
        state.closed = true;
        while state.inside > 0 && !mutant("gate_owner_does_not_wait") {
            state = self.emptied.wait(state);
        }
        state.panic.take()
    }
}

/// Closes the gate and waits when dropped: on unwind, G4.
struct CloseOnDrop<'a>(&'a Gate);

impl CloseOnDrop<'_> {
    fn close_and_wait(self) -> Option<Box<dyn Any + Send>> {
        let panic = self.0.close_and_wait();
        std::mem::forget(self); // closed already; holds only a reference
        panic
    }
}

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        if mutant("gate_unwind_skips_wait") {
            // Broken on purpose (loom models only): closed, not waited for.
            self.0.state.lock().closed = true;
            return;
        }
        // Unwinding from this thread's own work: its panic goes on, a
        // helper's is dropped.
        if let Some(payload) = self.0.close_and_wait() {
            crate::scope::task::drop_after_panic(payload);
        }
    }
}

/// The gate for loom models: `run_with_helpers` with loom threads for
/// helpers, reachable from the `loom-tests` crate.
///
/// Only in loom builds (`--cfg loom`); not part of the API.
#[cfg(loom)]
pub mod for_loom {
    /// Work that the owner and its helpers share; see `run_with_helpers`.
    pub trait Work: Sync {
        /// One participant's share.
        fn work(&self);
    }

    // The model's own state is what the helpers point to, so that a helper
    // admitted by a broken gate reads that state (which the model keeps
    // alive and loom checks), not a freed adapter on the owner's stack.
    impl<W: Work> super::Shared for W {
        fn work(&self) {
            Work::work(self);
        }
    }

    /// Calls `work` on this thread and offers `helpers` more calls to
    /// detached loom threads, through the gate; see the module docs.
    pub fn run_with_helpers<W: Work>(work: &W, helpers: usize) {
        drop(super::run_with_helpers(work, helpers, |job| {
            loom::thread::spawn(job);
        }));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread::{self, ThreadId};

    /// Counts the calls of its work.
    #[derive(Default)]
    struct Counted {
        calls: AtomicUsize,
    }

    impl Shared for Counted {
        fn work(&self) {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_helper_that_starts_after_the_owner_returned_does_nothing() {
        let (send, receive) = mpsc::channel::<Job>();
        let counted = Box::new(Counted::default());
        let offered = run_with_helpers(&*counted, 2, |job| send.send(job).unwrap());
        assert_eq!(counted.calls.load(Ordering::SeqCst), 1, "only the owner");
        assert_eq!(offered.still_queued(), 2, "neither job has started");
        drop(counted);
        // The jobs run after the state is freed: admitted, they would read
        // freed memory (Miri runs this test).
        let late: Vec<Job> = receive.try_iter().collect();
        assert_eq!(late.len(), 2, "both offered");
        late.into_iter().for_each(|job| job());
        assert_eq!(offered.still_queued(), 0, "turned away, but arrived");
    }

    /// Who panics in `OwnerLeavesFirst`.
    #[derive(Clone, Copy, PartialEq)]
    enum Panicking {
        Nobody,
        Helper,
        Owner,
    }

    /// The owner's call ends (returns or unwinds) once the helper is
    /// inside its own; the helper's call goes on for a while after the
    /// owner's has ended. Either may panic.
    struct OwnerLeavesFirst {
        owner: ThreadId,
        helper_inside: AtomicBool,
        owner_left: AtomicBool,
        helper_done: AtomicBool,
        panicking: Panicking,
    }

    /// Sets its flag when dropped: on return and on unwind alike.
    struct SetOnDrop<'a>(&'a AtomicBool);

    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl OwnerLeavesFirst {
        fn new(panicking: Panicking) -> Self {
            OwnerLeavesFirst {
                owner: thread::current().id(),
                helper_inside: AtomicBool::new(false),
                owner_left: AtomicBool::new(false),
                helper_done: AtomicBool::new(false),
                panicking,
            }
        }

        /// `run_with_helpers` with one helper on a thread of its own.
        fn run(&self) {
            thread::scope(|threads| {
                drop(run_with_helpers(self, 1, |job| {
                    threads.spawn(job);
                }));
            });
        }
    }

    impl Shared for OwnerLeavesFirst {
        fn work(&self) {
            if thread::current().id() == self.owner {
                while !self.helper_inside.load(Ordering::SeqCst) {
                    thread::yield_now();
                }
                let _left = SetOnDrop(&self.owner_left);
                assert!(self.panicking != Panicking::Owner, "the owner's panic");
                return;
            }
            self.helper_inside.store(true, Ordering::SeqCst);
            assert!(self.panicking != Panicking::Helper, "the helper's panic");
            while !self.owner_left.load(Ordering::SeqCst) {
                thread::yield_now();
            }
            for _ in 0..100 {
                thread::yield_now();
            }
            self.helper_done.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_owner_waits_for_a_helper_admitted_in_time() {
        let shared = OwnerLeavesFirst::new(Panicking::Nobody);
        // Checked before the thread scope's own join could order it.
        let checked = AtomicBool::new(false);
        thread::scope(|threads| {
            drop(run_with_helpers(&shared, 1, |job| {
                threads.spawn(job);
            }));
            checked.store(shared.helper_done.load(Ordering::SeqCst), Ordering::SeqCst);
        });
        assert!(
            checked.load(Ordering::SeqCst),
            "returned while an admitted helper was still inside"
        );
    }

    /// The message of the panic that `run` raised.
    fn panic_of_run(shared: &OwnerLeavesFirst) -> &'static str {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| shared.run()));
        let payload = outcome.expect_err("a call panicked");
        payload.downcast_ref::<&str>().copied().unwrap_or_default()
    }

    #[test]
    fn a_helpers_panic_is_raised_by_the_owner_after_it_left() {
        let shared = OwnerLeavesFirst::new(Panicking::Helper);
        assert_eq!(panic_of_run(&shared), "the helper's panic");
    }

    #[test]
    fn an_owner_unwinding_from_its_own_panic_first_waits_for_the_admitted_helper() {
        let shared = OwnerLeavesFirst::new(Panicking::Owner);
        // `run`'s thread scope joins the helper thread too, but only after
        // `run_with_helpers` unwound; the check must come before that join.
        let outcome = thread::scope(|threads| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                drop(run_with_helpers(&shared, 1, |job| {
                    threads.spawn(job);
                }));
            }))
            .map_err(|_| shared.helper_done.load(Ordering::SeqCst))
        });
        assert_eq!(
            outcome,
            Err(true),
            "the owner's panic left only once the helper was done"
        );
    }

    #[test]
    fn a_panicking_spawn_leaves_its_queued_helpers_nothing_to_touch() {
        let queued = std::cell::RefCell::new(Vec::<Job>::new());
        let counted = Box::new(Counted::default());
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            drop(run_with_helpers(&*counted, 3, |job| {
                assert!(queued.borrow().is_empty(), "the pool refuses a second job");
                queued.borrow_mut().push(job);
            }));
        }));
        assert!(outcome.is_err(), "the second spawn panicked");
        assert_eq!(counted.calls.load(Ordering::SeqCst), 0, "no call was made");
        drop(counted);
        // Run after the state is freed: Miri would report a use after free.
        queued.into_inner().into_iter().for_each(|job| job());
    }
}
