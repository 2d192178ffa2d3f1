//! Loom models of the parallel scope's admission gate: a helper job that
//! reaches the fan-out's borrowed state through an erased lifetime touches
//! it only while the owner waits for it, never after the owner returned,
//! however late the job runs.
//!
//! The state lives in an `Arc` for the whole model, so that a broken gate
//! shows as a data race on the `alive` cell (which loom reports) rather
//! than as a use after free; the owner's write to `alive` after
//! `run_with_helpers` returned stands for the state being freed. See
//! design/loom.md, "The parallel scope".
#![cfg(loom)]

use std::panic::{self, AssertUnwindSafe};

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use taskscope::__loom_gate::{Helpers, Work, run_with_helpers};
use taskscope_loom_tests::check;

/// The fan-out's state, as the gate sees it.
struct State {
    /// False once the owner "freed" the state: written after
    /// `run_with_helpers` returned, read by every call of the work.
    alive: UnsafeCell<bool>,
    /// How many calls of the work ran, the owner's included.
    calls: AtomicUsize,
    /// The thread whose call panics once it has read the state.
    panicking: Option<loom::thread::ThreadId>,
    /// The owner's thread (the one that made the state) and its calls:
    /// a std atomic, read only after the owner's own call, so that
    /// counting adds no interleavings.
    owner: loom::thread::ThreadId,
    owner_calls: std::sync::atomic::AtomicUsize,
}

impl State {
    fn new(panicking: Option<loom::thread::ThreadId>) -> Arc<Self> {
        Arc::new(State {
            alive: UnsafeCell::new(true),
            calls: AtomicUsize::new(0),
            panicking,
            owner: loom::thread::current().id(),
            owner_calls: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The owner frees the state: a write loom checks against every read.
    fn free(&self) {
        // SAFETY: see `State::work`; loom checks the ordering.
        self.alive.with_mut(|alive| unsafe { *alive = false });
    }
}

// SAFETY: the one non-`Sync` field, `alive`, is a loom cell: loom checks
// every access to it for ordering, which is the property under test.
unsafe impl Sync for State {}

impl Work for State {
    fn work(&self) {
        self.alive.with(|alive| {
            // SAFETY: loom's cell checks this read against the owner's
            // write; a read it cannot order before that write fails the
            // model as a data race.
            assert!(unsafe { *alive }, "a helper used freed state");
        });
        self.calls.fetch_add(1, Ordering::Relaxed);
        if loom::thread::current().id() == self.owner {
            self.owner_calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if self.panicking == Some(loom::thread::current().id()) {
            panic::panic_any(OwnersPanic);
        }
    }
}

/// The payload of the owner's planned panic, which the panic hook keeps
/// quiet (the model panics in every interleaving).
struct OwnersPanic;

/// Property: a helper touches the state only if it was admitted before the
/// owner closed the gate, and the owner returns only after every admitted
/// helper left; the owner's own call always runs. Two helpers race the
/// owner's close from two loom threads: admitted before it, during the
/// owner's own work, or after the owner returned.
///
/// Last run: 2574 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `gate_admits_after_close` (a late helper reads the
/// state as the owner frees it: loom reports the race) and
/// `gate_owner_does_not_wait` (the owner frees the state while an admitted
/// helper still reads it), and with `gate_leave_skips_wake` (the last
/// helper to leave does not wake the sleeping owner: loom reports the
/// deadlock).
#[test]
fn a_helper_touches_the_state_only_while_the_owner_waits_for_it() {
    check(
        "gate::a_helper_touches_the_state_only_while_the_owner_waits_for_it",
        3,
        || {
            let state = State::new(None);
            run_with_helpers(&*state, 2);
            state.free();
            let calls = state.calls.load(Ordering::Relaxed);
            assert!((1..=3).contains(&calls), "{calls} calls");
            let owners = state.owner_calls.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(owners, 1, "the owner's own call runs, once");
        },
    );
}

/// Property: a helper that lingers after one fan-out and enters the
/// scope's next touches each fan-out's state only while that fan-out's
/// owner waits for it: never the first once it is freed, never the second
/// before it opened or after it closed. One helper (or, if it has gone by
/// the second fan-out, a new one) races two fan-outs and the scope's end.
///
/// Last run: 2715 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
#[test]
fn a_lingering_helper_touches_only_the_fan_out_that_admitted_it() {
    check(
        "gate::a_lingering_helper_touches_only_the_fan_out_that_admitted_it",
        3,
        || {
            let mut helpers = Helpers::default();
            let first = State::new(None);
            helpers.run(&*first, 1);
            first.free();
            let second = State::new(None);
            helpers.run(&*second, 1);
            second.free();
            drop(helpers);
        },
    );
}

/// Property: an owner unwinding from a panic in its own call of the work
/// closes the gate and waits for every admitted helper before the unwind
/// leaves `run_with_helpers`, so the state it frees afterwards is never
/// read by a helper. One helper races the owner's panic.
///
/// Last run: 45 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `gate_unwind_skips_wait` (the unwinding owner closes
/// the gate without waiting: loom reports the race).
#[test]
fn an_owner_unwinding_from_its_own_panic_waits_for_its_helpers_first() {
    let quiet = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<OwnersPanic>() {
            quiet(info);
        }
    }));
    check(
        "gate::an_owner_unwinding_from_its_own_panic_waits_for_its_helpers_first",
        3,
        || {
            let state = State::new(Some(loom::thread::current().id()));
            let unwound = panic::catch_unwind(AssertUnwindSafe(|| run_with_helpers(&*state, 1)));
            let payload = unwound.expect_err("the owner's call panics");
            assert!(payload.is::<OwnersPanic>(), "the owner's own panic goes on");
            state.free();
        },
    );
}
