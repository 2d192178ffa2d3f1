//! The admission gate of a scope's fan-outs: helper jobs that borrow a
//! fan-out's state, that the fan-out waits for only if they arrived in
//! time, and that stay a moment for the scope's next fan-out.
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
//! fork-join: its wait takes the fan-out's own unclaimed helper jobs back.
//! Not from a thread that is serving a gate's fan-out as a helper, though
//! ([`serving_a_fan_out`]): rayon's wait may run any pool job, also one
//! that waits for the executor whose thread owns the outer fan-out, and
//! that owner waits for this helper.)
//!
//! One gate serves all the fan-outs of a scope ([`Helpers`]), each of which
//! opens it for its own state and closes it before it returns. A helper that
//! leaves an open fan-out lingers for up to [`LINGER`], spinning, and enters
//! the scope's next fan-out if one opens meanwhile: waking a pool thread
//! for every fan-out cost workload 4 about 3% of its speed-up
//! (design/performance.md).
//!
//! # Invariants
//!
//! - **G1.** A helper dereferences a fan-out's pointer only between a
//!   successful entry ([`GateState::enter`]) and its [`Gate::leave`], and
//!   it takes the pointer from the gate under the gate's mutex at that
//!   entry, so it is always the open fan-out's.
//! - **G2.** An entry succeeds only while a fan-out holds the gate open:
//!   between [`Gate::open`] and [`Gate::close_and_wait`].
//! - **G3.** [`Gate::close_and_wait`] returns only when every entry has been
//!   matched by a `leave`; the gate's mutex orders the helpers' uses of the
//!   state before that return.
//! - **G4.** [`Helpers::run`] closes the gate and waits before it returns,
//!   also when its own call of the work or a spawn unwinds (`CloseOnDrop`),
//!   so the borrowed state outlives every admitted helper. Its frame cannot
//!   be forgotten halfway: the caller gets control back only by its return
//!   or its unwinding.
//!
//! A helper job that starts while no fan-out is open touches nothing; it
//! lingers and enters the next one, or returns. See design/soundness.md,
//! "The admission gate".
//!
//! # Jobs still to come
//!
//! The gate counts the helpers lingering, the jobs offered and the jobs
//! that reached it, admitted or not. A fan-out offers a new job for each
//! helper it wants that no lingering one covers, and none once the pool
//! holds [`MAX_QUEUED_PER_HELPER`] of the scope's jobs unstarted per helper
//! wanted, so a saturated pool does not collect one per fan-out. A job still
//! queued enters whichever fan-out is open when it starts. The counts decide
//! how many jobs are offered, never whether one is admitted.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use crate::sync::{Arc, Condvar, Mutex, MutexGuard, mutant};
#[cfg(not(loom))]
use crate::sync::{AtomicBool, AtomicUsize, Ordering};

/// A job for a pool: owns everything it touches but the gated state.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

crate::sync::const_thread_local! {
    /// How many gate fan-outs this thread is serving as a helper right now
    /// (more than one when a child it polls runs a nested scope).
    static SERVING: Cell<u32> = Cell::new(0);
}

/// Whether this thread is a helper inside a gate's fan-out: its owner (an
/// executor's thread, maybe) waits for it, so it must not run arbitrary
/// pool work while it waits for anything itself. A nested fan-out from here
/// goes through a gate of its own rather than rayon's fork-join.
#[cfg_attr(not(feature = "parallel"), allow(dead_code))]
pub(crate) fn serving_a_fan_out() -> bool {
    SERVING.with(|serving| serving.get() > 0)
}

/// Marks this thread as serving a gate for as long as it lives.
#[must_use = "the thread is marked only while the guard lives"]
struct Serving;

impl Serving {
    fn enter() -> Self {
        SERVING.with(|serving| serving.set(serving.get() + 1));
        Serving
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        SERVING.with(|serving| serving.set(serving.get() - 1));
    }
}

/// Work shared by several threads, each calling [`Shared::work`] once.
pub(crate) trait Shared: Sync {
    /// One participant's share: returns when nothing is left to take.
    fn work(&self);
}

/// How long a helper that left a fan-out waits, spinning, for the scope's
/// next one before it returns to the pool.
///
/// Longer than the gap between two fan-outs of a busy scope (its `poll`
/// returns and is called again, a few microseconds), and of the order of
/// the spinning that rayon's own idle threads do before they sleep, which
/// is what a lingering helper stands in for.
#[cfg(not(loom))]
pub(crate) const LINGER: Linger = std::time::Duration::from_micros(50);
/// In loom builds a lingering helper waits for one yield: nothing may
/// depend on the clock.
#[cfg(loom)]
pub(crate) const LINGER: Linger = true;

/// How long a helper lingers: a time, or in loom builds whether it does.
#[cfg(not(loom))]
type Linger = std::time::Duration;
#[cfg(loom)]
type Linger = bool;

/// A helper returns as soon as it left a fan-out.
#[cfg(not(loom))]
const NO_LINGER: Linger = std::time::Duration::ZERO;
#[cfg(loom)]
const NO_LINGER: Linger = false;

/// How many of a scope's helper jobs a busy pool may hold unstarted, per
/// helper a fan-out wants, before the scope offers it no more.
///
/// Not 0, which would leave a fan-out without a new job whenever an earlier
/// one had not started yet. On this 2-core VM a pool thread regularly takes
/// longer than a whole fan-out to start its job, and then the next job,
/// queued behind it, helps as soon as a thread comes. Measured on workload
/// 4 (design/performance.md): a bound of 1 cost a sixth of its speed-up
/// (before helpers lingered); a bound of 0 cost a third with helpers that
/// did not linger, and the child-per-64-items row 5% with lingering ones.
pub(crate) const MAX_QUEUED_PER_HELPER: usize = 4;

/// A scope's helpers: the gate its fan-outs from outside the pool share,
/// made at the first one. Dropping it (when the scope ends) sends the
/// lingering helpers away at once.
pub(crate) struct Helpers {
    gate: Option<Arc<Gate>>,
    /// [`LINGER`], but for tests and loom models.
    linger: Linger,
}

impl Default for Helpers {
    fn default() -> Self {
        Helpers {
            gate: None,
            linger: LINGER,
        }
    }
}

impl Helpers {
    /// [`Helpers::run_with`], this thread's share being `shared.work()`.
    #[cfg(any(test, loom))]
    pub(crate) fn run<S: Shared>(&mut self, shared: &S, wanted: usize, spawn: impl Fn(Job)) {
        self.run_with(shared, wanted, spawn, || shared.work());
    }

    /// Calls `own` on this thread and gets `wanted` helpers to call
    /// `shared.work()` meanwhile: helpers lingering from the scope's last
    /// fan-out, and a new job handed to `spawn` for each wanted helper they
    /// leave (none while the pool holds too many of the scope's jobs
    /// unstarted; see [`MAX_QUEUED_PER_HELPER`]). A job queued earlier helps
    /// if it starts meanwhile. Returns once `own` returned and every helper
    /// that entered meanwhile has left (G1 to G4). `own` is the owner's
    /// share: `shared.work()`, or the parallel runner's body poll followed
    /// by it (only this thread may poll the body).
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `own`, else the first panic of a helper's, once
    /// every admitted helper has left.
    pub(crate) fn run_with<S: Shared>(
        &mut self,
        shared: &S,
        wanted: usize,
        spawn: impl Fn(Job),
        own: impl FnOnce(),
    ) {
        let gate = self.gate.get_or_insert_with(|| Gate::new(self.linger));
        let new_jobs = gate.open(Erased::new(shared), wanted);
        // Before the first spawn: if a spawn panics, the helpers already
        // admitted are still waited for (G4).
        let close = CloseOnDrop(gate);
        for _ in 0..new_jobs {
            let gate = gate.clone();
            spawn(Box::new(move || gate.serve()));
        }
        own();
        if let Some(payload) = close.close_and_wait() {
            panic::resume_unwind(payload);
        }
    }

    /// Helpers that return as soon as they left a fan-out: for the tests of
    /// one fan-out, where a late job need not spin for [`LINGER`].
    #[cfg(all(test, not(loom)))]
    pub(crate) fn not_lingering() -> Self {
        Helpers::lingering_for(NO_LINGER)
    }

    /// Makes the scope's helpers return as soon as they left a fan-out;
    /// called before its first fan-out, which makes the gate.
    #[cfg(loom)]
    pub(crate) fn stop_lingering(&mut self) {
        self.linger = NO_LINGER;
    }

    /// Helpers that linger for `linger` instead of [`LINGER`].
    #[cfg(all(test, not(loom)))]
    pub(crate) fn lingering_for(linger: std::time::Duration) -> Self {
        Helpers { gate: None, linger }
    }

    /// How many offered jobs no pool thread has started yet.
    pub(crate) fn still_queued(&self) -> usize {
        self.gate
            .as_ref()
            .map_or(0, |gate| gate.state.lock().queued())
    }
}

impl Drop for Helpers {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            gate.retire();
        }
    }
}

impl fmt::Debug for Helpers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Helpers")
            .field("still_queued", &self.still_queued())
            .finish_non_exhaustive()
    }
}

/// A `&S` with its lifetime erased, and the function that calls its work.
#[derive(Clone, Copy)]
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

    /// Calls the work, catching its panic.
    ///
    /// # Safety
    ///
    /// The caller holds an entry of the gate that handed out `self` (G1):
    /// the fan-out it points to has not closed.
    #[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
    unsafe fn call(self) -> Option<Box<dyn Any + Send>> {
        let work = AssertUnwindSafe(|| {
            // SAFETY: the caller's entry keeps the state alive (G1 to G4).
            unsafe { (self.work)(self.data) };
        });
        panic::catch_unwind(work).err()
    }
}

/// Calls the work of the `S` that `data` points to.
///
/// # Safety
///
/// `data` must come from `Erased::new::<S>` and its referent must still be
/// alive: the caller holds an entry of the gate (G1 to G4).
#[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
unsafe fn call_work<S: Shared>(data: *const ()) {
    // SAFETY: `data` was made from a `&S` (`Erased::new`), and the caller
    // was admitted by the gate, so the referent is alive until it leaves
    // (G1 to G4); `S: Sync` allows the shared access from here.
    let shared = unsafe { &*data.cast::<S>() };
    shared.work();
}

/// Who is inside, who waits, and whether more may come in.
struct Gate {
    state: Mutex<GateState>,
    /// Signalled when the last admitted helper leaves a closed fan-out.
    emptied: Condvar,
    /// A copy of `GateState::openings` that a lingering helper can watch
    /// without taking the lock.
    #[cfg(not(loom))]
    openings_hint: AtomicUsize,
    /// Set by the helper that leaves a closed fan-out last: the owner
    /// spinning in [`Gate::close_and_wait`] watches it without the lock.
    #[cfg(not(loom))]
    emptied_hint: AtomicBool,
    /// How long a helper lingers.
    linger: Linger,
}

#[derive(Default)]
struct GateState {
    /// A fan-out holds the gate open: entries are admitted (G2).
    open: bool,
    /// The pointer of the fan-out that opened the gate last; dangling once
    /// it closed, and read only on an entry while `open` (G1).
    erased: Option<Erased>,
    /// Helpers inside the open fan-out.
    inside: usize,
    /// Bumped by every opening and by the retirement: what a lingering
    /// helper waits for.
    openings: usize,
    /// Helpers between fan-outs, waiting for the next one.
    lingering: usize,
    /// Jobs offered, and jobs that reached the gate (admitted or not).
    offered: usize,
    arrived: usize,
    /// The scope has ended: lingering helpers return at once.
    retired: bool,
    /// The first panic of an admitted helper, for the owner to raise.
    panic: Option<Box<dyn Any + Send>>,
    /// The owner sleeps on `emptied`: the last helper to leave must wake it.
    owner_sleeps: bool,
}

impl GateState {
    fn queued(&self) -> usize {
        self.offered - self.arrived
    }

    /// Admits a helper if a fan-out holds the gate open (G2), handing it
    /// that fan-out's pointer (G1).
    fn enter(&mut self) -> Option<Erased> {
        if (!self.open && !mutant("gate_admits_after_close")) || self.retired {
            return None;
        }
        self.inside += 1;
        self.erased
    }
}

impl Gate {
    fn new(linger: Linger) -> Arc<Self> {
        Arc::new(Gate {
            state: Mutex::new(GateState::default()),
            emptied: Condvar::new(),
            #[cfg(not(loom))]
            openings_hint: AtomicUsize::new(0),
            #[cfg(not(loom))]
            emptied_hint: AtomicBool::new(false),
            linger,
        })
    }

    /// Opens the gate for a fan-out's state; returns how many new jobs to
    /// offer (and counts them offered) for `wanted` helpers: one for each
    /// that no lingering helper covers, and none while the pool holds
    /// [`MAX_QUEUED_PER_HELPER`] of the scope's jobs unstarted per helper
    /// wanted.
    fn open(&self, erased: Erased, wanted: usize) -> usize {
        let mut state = self.state.lock();
        state.open = true;
        state.erased = Some(erased);
        state.openings += 1;
        let new_jobs = if state.queued() >= MAX_QUEUED_PER_HELPER.saturating_mul(wanted) {
            0
        } else {
            wanted.saturating_sub(state.lingering)
        };
        // Counted before they are spawned, so that an arrival never finds
        // more arrived than offered. A spawn that panics leaves its job
        // counted as queued for good, which only lowers the bound.
        state.offered += new_jobs;
        self.publish(state);
        new_jobs
    }

    /// A helper job's whole life: enters the open fan-out if there is one,
    /// and after each lingers for the next.
    fn serve(&self) {
        let _serving = Serving::enter();
        let mut entry = self.arrive();
        // The pointer of the last fan-out entered: kept only for a mutant.
        let mut last: Option<Erased> = None;
        while let Some(mut erased) = entry {
            if let Some(stale) = last.filter(|_| mutant("gate_lingerer_keeps_its_pointer")) {
                // Broken on purpose (loom models only): the last fan-out's
                // pointer, dangling once it closed.
                erased = stale;
            }
            last = Some(erased);
            #[allow(unsafe_code)] // the fan-out's admission gate (design/soundness.md, G1)
            // SAFETY: `GateState::enter` admitted this helper and handed it
            // the open fan-out's pointer; it leaves just below (G1).
            let panic = unsafe { erased.call() };
            let seen = self.leave(panic);
            entry = self.linger(seen);
        }
    }

    /// A job reaches the gate: its entry to the open fan-out, else to one
    /// opened while it lingers.
    fn arrive(&self) -> Option<Erased> {
        let mut state = self.state.lock();
        state.arrived += 1;
        if let Some(erased) = state.enter() {
            return Some(erased);
        }
        // A job that starts after its scope ended has nothing to wait for.
        if !self.lingers() || state.retired {
            return None;
        }
        state.lingering += 1;
        let seen = state.openings;
        drop(state);
        self.linger(seen)
    }

    /// An admitted helper is done with the state; it lingers, if helpers
    /// do. Returns the openings it has seen.
    fn leave(&self, panic: Option<Box<dyn Any + Send>>) -> usize {
        let (unraised, seen) = {
            let mut state = self.state.lock();
            state.inside -= 1;
            if self.lingers() {
                state.lingering += 1;
            }
            let unraised = match panic {
                Some(payload) if state.panic.is_none() => {
                    state.panic = Some(payload);
                    None
                }
                later => later,
            };
            if !state.open && state.inside == 0 {
                self.emptied_now(&state);
            }
            (unraised, state.openings)
        };
        // Only the first helper panic is raised; a payload's destructor is
        // user code, so it runs with no lock held.
        if let Some(payload) = unraised {
            crate::scope::task::drop_after_panic(payload);
        }
        seen
    }

    /// Waits for an opening after `seen`, up to the linger time each time:
    /// the entry to the fan-out that opened, or `None` once none did (or
    /// the scope ended) and the helper stopped lingering.
    fn linger(&self, mut seen: usize) -> Option<Erased> {
        if !self.lingers() {
            return None;
        }
        loop {
            self.wait_for_opening(seen);
            let mut state = self.state.lock();
            if state.openings == seen || state.retired {
                state.lingering -= 1;
                return None;
            }
            if let Some(erased) = state.enter() {
                state.lingering -= 1;
                return Some(erased);
            }
            // Opened and closed again meanwhile: wait for the next one.
            seen = state.openings;
        }
    }

    fn lingers(&self) -> bool {
        self.linger != NO_LINGER
    }

    /// Spins until the count of openings moves past `seen`, or the linger
    /// time ([`LINGER`]) passed. Only a hint: [`Gate::linger`] decides
    /// under the lock.
    #[cfg(not(loom))]
    fn wait_for_opening(&self, seen: usize) {
        let started = std::time::Instant::now();
        let mut spins = 0_u32;
        // Relaxed: a hint only; a stale value delays the look under the
        // lock by one spin, and `linger` decides under the lock.
        while self.openings_hint.load(Ordering::Relaxed) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin.
            if spins % 64 == 0 && started.elapsed() >= self.linger {
                return;
            }
        }
    }

    /// Loom replays interleavings, so nothing may depend on the clock: a
    /// lingering helper gives the owner one chance to open the next fan-out.
    #[cfg(loom)]
    fn wait_for_opening(&self, _seen: usize) {
        loom::thread::yield_now();
    }

    /// Unlocks, then copies the count of openings where lingering helpers
    /// watch it. Only the scope's owner opens and retires, one call after
    /// the other, so the copies it stores never go back.
    fn publish(&self, state: MutexGuard<'_, GateState>) {
        let openings = state.openings;
        drop(state);
        #[cfg(not(loom))]
        // Relaxed: a hint, see `wait_for_opening`.
        self.openings_hint.store(openings, Ordering::Relaxed);
        #[cfg(loom)]
        let _ = openings;
    }

    /// Tells the owner that the last helper left the closed fan-out (G3):
    /// sets the hint it spins on, and wakes it if it sleeps.
    fn emptied_now(&self, state: &GateState) {
        // Relaxed: a hint; the owner decides under the lock.
        #[cfg(not(loom))]
        self.emptied_hint.store(true, Ordering::Relaxed);
        if state.owner_sleeps && !mutant("gate_leave_skips_wake") {
            self.emptied.notify_all();
        }
    }

    /// Spins, with the lock released, until the last helper inside has left
    /// or [`LINGER`] passed; returns the lock again. Only a wait: the caller
    /// decides under the lock (G3).
    #[cfg(not(loom))]
    fn spin_until_emptied<'a>(
        &'a self,
        state: MutexGuard<'a, GateState>,
    ) -> MutexGuard<'a, GateState> {
        // Relaxed: a hint; reset under the lock, and set only under it by
        // a `leave` that comes after, so no stale `true` is read.
        self.emptied_hint.store(false, Ordering::Relaxed);
        drop(state);
        let started = std::time::Instant::now();
        let mut spins = 0_u32;
        while !self.emptied_hint.load(Ordering::Relaxed) {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            // Reading the clock costs more than a spin.
            if spins % 64 == 0 && started.elapsed() >= LINGER {
                break;
            }
        }
        self.state.lock()
    }

    /// Loom replays interleavings: the owner sleeps at once.
    #[cfg(loom)]
    fn spin_until_emptied<'a>(
        &'a self,
        state: MutexGuard<'a, GateState>,
    ) -> MutexGuard<'a, GateState> {
        state
    }

    /// Sends the lingering helpers away: the scope has ended.
    fn retire(&self) {
        let mut state = self.state.lock();
        state.retired = true;
        state.openings += 1;
        self.publish(state);
    }

    /// Admits nobody more and waits until every admitted helper has left
    /// (G3); returns the first panic of a helper.
    ///
    /// The helpers still inside are usually a poll or two from leaving, so
    /// the owner first spins for them, up to [`LINGER`], before it sleeps:
    /// a sleep and a wake-up cost this 2-core VM tens of microseconds at
    /// every one of a busy scope's fan-outs (design/performance.md).
    fn close_and_wait(&self) -> Option<Box<dyn Any + Send>> {
        let mut state = self.state.lock();
        state.open = false;
        if state.inside > 0 {
            state = self.spin_until_emptied(state);
        }
        while state.inside > 0 && !mutant("gate_owner_does_not_wait") {
            state.owner_sleeps = true;
            state = self.emptied.wait(state);
        }
        state.owner_sleeps = false;
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
            self.0.state.lock().open = false;
            return;
        }
        // Unwinding from this thread's own work: its panic goes on, a
        // helper's is dropped.
        if let Some(payload) = self.0.close_and_wait() {
            crate::scope::task::drop_after_panic(payload);
        }
    }
}

/// The gate for loom models: [`Helpers`] with loom threads for helper
/// jobs, reachable from the `loom-tests` crate.
///
/// Only in loom builds (`--cfg loom`); not part of the API.
#[cfg(loom)]
pub mod for_loom {
    /// Work that the owner and its helpers share; see `Helpers::run`.
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

    /// The helpers of one scope: its fan-outs share them, one after the
    /// other. Dropping it sends the lingering ones away.
    #[derive(Debug, Default)]
    pub struct Helpers(super::Helpers);

    impl Helpers {
        /// Calls `work` on this thread and gets `helpers` more calls of it,
        /// new jobs on detached loom threads or helpers that linger from
        /// this scope's last fan-out; see the module docs.
        pub fn run<W: Work>(&mut self, work: &W, helpers: usize) {
            self.0.run(work, helpers, |job| {
                loom::thread::spawn(job);
            });
        }
    }

    /// One fan-out of a scope of its own: [`Helpers::run`] once.
    pub fn run_with_helpers<W: Work>(work: &W, helpers: usize) {
        Helpers::default().run(work, helpers);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread::{self, ThreadId};
    use std::time::Duration;

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

    /// One fan-out of a scope of its own.
    fn run_once<S: Shared>(shared: &S, wanted: usize, spawn: impl Fn(Job)) {
        Helpers::not_lingering().run(shared, wanted, spawn);
    }

    #[test]
    fn a_helper_that_starts_after_the_owner_returned_does_nothing() {
        let (send, receive) = mpsc::channel::<Job>();
        let counted = Box::new(Counted::default());
        let mut helpers = Helpers::not_lingering();
        helpers.run(&*counted, 2, |job| send.send(job).unwrap());
        assert_eq!(counted.calls.load(Ordering::SeqCst), 1, "only the owner");
        assert_eq!(helpers.still_queued(), 2, "neither job has started");
        drop(counted);
        // The jobs run after the state is freed: admitted, they would read
        // freed memory (Miri runs this test).
        let late: Vec<Job> = receive.try_iter().collect();
        assert_eq!(late.len(), 2, "both offered");
        late.into_iter().for_each(|job| job());
        assert_eq!(helpers.still_queued(), 0, "turned away, but arrived");
    }

    #[test]
    fn a_helper_that_starts_after_the_owner_returned_leaves_the_live_state_alone() {
        // As above, with the state kept alive, so that a late job admitted
        // by mistake shows natively as an extra call, not only under Miri.
        let (send, receive) = mpsc::channel::<Job>();
        let counted = Counted::default();
        let mut helpers = Helpers::not_lingering();
        helpers.run(&counted, 2, |job| send.send(job).unwrap());
        receive.try_iter().for_each(|job| job());
        assert_eq!(
            counted.calls.load(Ordering::SeqCst),
            1,
            "only the owner's own call"
        );
    }

    #[test]
    fn a_job_that_starts_after_its_scope_ended_leaves_without_lingering() {
        let (send, receive) = mpsc::channel::<Job>();
        let counted = Box::new(Counted::default());
        // Lingering for an hour: a late job that lingered would hang here.
        let mut helpers = Helpers::lingering_for(Duration::from_secs(3600));
        helpers.run(&*counted, 1, |job| send.send(job).unwrap());
        drop(helpers); // the scope ends: its gate retires
        drop(counted);
        let late = receive.try_recv().expect("the job was offered");
        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            late();
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the late job lingered for a scope that had ended");
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

        /// `run_once` with one helper on a thread of its own.
        fn run(&self) {
            thread::scope(|threads| {
                run_once(self, 1, |job| {
                    threads.spawn(job);
                });
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
    fn an_owner_asleep_in_its_wait_is_woken_by_the_last_helper_to_leave() {
        let gate = Gate::new(NO_LINGER);
        // Its pointer is never called here: nobody works.
        let counted = Counted::default();
        gate.open(Erased::new(&counted), 1);
        assert!(gate.state.lock().enter().is_some(), "a helper is inside");
        let (done, closed) = mpsc::channel();
        // Not a scoped thread: an owner that is never woken must not hang
        // the test, which fails after its minute.
        let owner_gate = gate.clone();
        let owner = thread::spawn(move || {
            let panic = owner_gate.close_and_wait();
            done.send(panic.is_none()).unwrap();
        });
        // The helper leaves only once the owner stopped spinning.
        while !gate.state.lock().owner_sleeps {
            thread::yield_now();
        }
        gate.leave(None);
        let woken = closed.recv_timeout(Duration::from_secs(60));
        assert_eq!(woken, Ok(true), "the owner slept through the last leave");
        owner.join().unwrap();
    }

    #[test]
    fn the_owner_waits_for_a_helper_admitted_in_time() {
        let shared = OwnerLeavesFirst::new(Panicking::Nobody);
        // Checked before the thread scope's own join could order it.
        let checked = AtomicBool::new(false);
        thread::scope(|threads| {
            run_once(&shared, 1, |job| {
                threads.spawn(job);
            });
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
        // `run_once` unwound; the check must come before that join.
        let outcome = thread::scope(|threads| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                run_once(&shared, 1, |job| {
                    threads.spawn(job);
                });
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
            run_once(&*counted, 3, |job| {
                assert!(queued.borrow().is_empty(), "the pool refuses a second job");
                queued.borrow_mut().push(job);
            });
        }));
        assert!(outcome.is_err(), "the second spawn panicked");
        assert_eq!(counted.calls.load(Ordering::SeqCst), 0, "no call was made");
        drop(counted);
        // Run after the state is freed: Miri would report a use after free.
        queued.into_inner().into_iter().for_each(|job| job());
    }

    #[test]
    fn a_scope_stops_offering_jobs_to_a_pool_that_started_none_of_its_last_ones() {
        let pool = std::cell::RefCell::new(Vec::<Job>::new());
        let counted = Counted::default();
        let mut helpers = Helpers::not_lingering();
        for offered in 1..=MAX_QUEUED_PER_HELPER {
            helpers.run(&counted, 1, |job| pool.borrow_mut().push(job));
            assert_eq!(pool.borrow().len(), offered, "a busy pool holds every job");
        }
        helpers.run(&counted, 1, |job| pool.borrow_mut().push(job));
        assert_eq!(
            pool.borrow().len(),
            MAX_QUEUED_PER_HELPER,
            "no more for a saturated pool"
        );
        helpers.run(&counted, 2, |job| pool.borrow_mut().push(job));
        assert_eq!(
            pool.borrow().len(),
            MAX_QUEUED_PER_HELPER + 2,
            "the bound grows with the helpers wanted"
        );
        pool.borrow_mut().drain(..).for_each(|job| job());
        assert_eq!(helpers.still_queued(), 0, "all started, between fan-outs");
        helpers.run(&counted, 1, |job| pool.borrow_mut().push(job));
        assert_eq!(pool.borrow().len(), 1, "nothing queued: offered again");
        let calls = counted.calls.load(Ordering::SeqCst);
        assert_eq!(calls, MAX_QUEUED_PER_HELPER + 3, "the owner's calls only");
    }

    /// The owner's call runs the job that `job` holds on a thread of its
    /// own and waits for it; a helper's call counts itself.
    struct RunsALateJob {
        owner: ThreadId,
        job: std::sync::Mutex<Option<Job>>,
        helper_calls: AtomicUsize,
    }

    impl Shared for RunsALateJob {
        fn work(&self) {
            if thread::current().id() != self.owner {
                self.helper_calls.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if let Some(job) = self.job.lock().unwrap().take() {
                thread::spawn(job).join().unwrap();
            }
        }
    }

    #[test]
    fn a_job_still_queued_helps_whichever_fan_out_is_open_when_it_starts() {
        let (send, receive) = mpsc::channel::<Job>();
        let mut helpers = Helpers::not_lingering();
        let first = Counted::default();
        helpers.run(&first, 1, |job| send.send(job).unwrap());
        let second = RunsALateJob {
            owner: thread::current().id(),
            job: std::sync::Mutex::new(receive.try_recv().ok()),
            helper_calls: AtomicUsize::new(0),
        };
        // The second fan-out's own job stays queued: only the first's helps.
        helpers.run(&second, 1, drop);
        assert_eq!(
            first.calls.load(Ordering::SeqCst),
            1,
            "the first: its owner only"
        );
        assert_eq!(
            second.helper_calls.load(Ordering::SeqCst),
            1,
            "the first fan-out's job helped the second"
        );
        assert_eq!(helpers.still_queued(), 1, "it arrived; the new one did not");
    }

    /// Counts the helpers' calls; the owner's call waits for one of them.
    struct WaitsForAHelper {
        owner: ThreadId,
        helper_calls: AtomicUsize,
    }

    impl WaitsForAHelper {
        fn new() -> Self {
            WaitsForAHelper {
                owner: thread::current().id(),
                helper_calls: AtomicUsize::new(0),
            }
        }
    }

    impl Shared for WaitsForAHelper {
        fn work(&self) {
            if thread::current().id() != self.owner {
                self.helper_calls.fetch_add(1, Ordering::SeqCst);
                return;
            }
            while self.helper_calls.load(Ordering::SeqCst) == 0 {
                thread::yield_now();
            }
        }
    }

    #[test]
    fn a_helper_that_left_serves_the_next_fan_outs_until_the_scope_ends() {
        // Lingering for an hour: only the next fan-out or the end of the
        // scope can end it, whatever the scheduler does meanwhile.
        let mut helpers = Helpers::lingering_for(Duration::from_secs(3600));
        let (ended, helper_ended) = mpsc::channel();
        let first = WaitsForAHelper::new();
        helpers.run(&first, 1, |job| {
            let ended = ended.clone();
            thread::spawn(move || {
                job();
                ended.send(()).unwrap();
            });
        });
        for _ in 0..3 {
            let next = WaitsForAHelper::new();
            helpers.run(&next, 1, |_| panic!("a helper lingers: no new job"));
            assert_eq!(next.helper_calls.load(Ordering::SeqCst), 1, "it came back");
        }
        assert!(
            helper_ended.try_recv().is_err(),
            "the helper lingers while the scope lives"
        );
        drop(helpers);
        helper_ended
            .recv_timeout(Duration::from_secs(60))
            .expect("the scope's end sent the lingering helper away");
    }
}
