//! Loom models of the parallel scope's fan-out and hand-back: the children
//! of a batch are claimed through a shared cursor and polled by several
//! participants at once, each exactly once per wake; a child woken while
//! another participant polls it is handed back (`rewake`) and polled again.
//!
//! Loom cannot see rayon's threads, so the models use the loom build's
//! `__loom_par_scope`: the same driver, `FanOut` (claim cursor, spare
//! budget, bites), `run_claimed`, `take_locked`/`put_back_locked` and
//! `rewake` code as `par_scope`, with the fan-out's helper on a loom thread
//! (children must then be `'static`). Every batch of two or more ready
//! children is fanned out to the scope's thread and one helper; see
//! design/loom.md, "The parallel scope".
//!
//! Every child is a [`Probed`] future that asserts, on each poll, that no
//! other thread is polling it, that it has not completed, and that it was
//! woken since it last returned `Pending`; when the scope future completes,
//! every child must have completed and none may be inside a poll. Each
//! model names the mutant (scripts/loom.sh `--mutants`) that makes it fail.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use taskscope::__loom_par_scope as par_scope;
use taskscope::__loom_par_scope_fanning_out_the_body as par_scope_fanning_out_the_body;
use taskscope_loom_tests::{Flag, check};

/// What a model learns about one child from inside its future.
#[derive(Default)]
struct Probe {
    /// True for the length of a poll: two participants polling the child at
    /// once would find it set on entry.
    polling: AtomicBool,
    /// Set when the child's future returned `Ready`.
    done: AtomicBool,
}

impl Probe {
    /// The property that ends every model: the scope future completed only
    /// after this child did, and nobody is polling it any more.
    fn assert_finished(&self, child: &str) {
        assert!(
            self.done.load(Ordering::Relaxed),
            "the scope completed while {child} was still running"
        );
        assert!(
            !self.polling.load(Ordering::Relaxed),
            "the scope completed while {child} was being polled"
        );
    }
}

/// A child that completes once `flag` is set, checking how it is polled.
struct Probed {
    probe: Arc<Probe>,
    flag: Flag,
    /// It returned `Pending`: the next poll must follow a wake, that is, the
    /// flag must be set (nothing else wakes it).
    waiting: bool,
}

impl Probed {
    fn new(flag: &Flag) -> (Self, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        let child = Probed {
            probe: probe.clone(),
            flag: flag.clone(),
            waiting: false,
        };
        (child, probe)
    }
}

impl Future for Probed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SeqCst (loom treats it as AcqRel): a second poller's swap reads the
        // first one's `true` unless the first poll's final store came first.
        assert!(
            !self.probe.polling.swap(true, Ordering::SeqCst),
            "a child was polled by two participants at once"
        );
        assert!(
            !self.probe.done.load(Ordering::SeqCst),
            "a child was polled after it completed"
        );
        assert!(
            !self.waiting || self.flag.is_set(),
            "a child was polled again without having been woken"
        );
        let poll = Pin::new(&mut self.flag.wait()).poll(cx);
        self.waiting = poll.is_pending();
        if poll.is_ready() {
            self.probe.done.store(true, Ordering::SeqCst);
        }
        self.probe.polling.store(false, Ordering::SeqCst);
        poll
    }
}

/// Makes `c0`, which waits on a flag that a third thread sets at any point,
/// and `c1`, ready at once; `run_scope` spawns both from a scope's body and
/// awaits the scope. Checks that both finished before the scope did.
fn one_woken_child_and_one_ready(run_scope: impl FnOnce(Probed, Probed)) {
    let woken = Flag::new();
    let ready = Flag::new();
    ready.set();
    let (c0, probe0) = Probed::new(&woken);
    let (c1, probe1) = Probed::new(&ready);
    let setter = thread::spawn(move || woken.set());
    run_scope(c0, c1);
    probe0.assert_finished("c0");
    probe1.assert_finished("c1");
    setter.join().unwrap();
}

/// Property: every child of a fanned-out batch is polled exactly once per
/// wake, by exactly one participant (the claim cursor and `take`), never by
/// two at once and never after it completed; the scope completes only after
/// both children. Two children wait on their own flags, which one thread
/// sets one after the other at any point: before, during or after the
/// fan-out of the batch `[c0, c1]` to the scope's thread and a helper, so
/// the wakes are picked up by the participants from the ready queue or by
/// the driver's next batch (fanned out again, or polled inline).
///
/// Last run: 1301651 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `claim_reclaims_position` (two participants claim the
/// same position of the batch: the child is polled again without a wake)
/// and `put_back_ignores_rewake` (a wake picked up while its child was
/// being polled is lost: loom reports a deadlock).
#[test]
fn every_child_of_a_fanned_out_batch_is_polled_once_per_wake() {
    check(
        "parallel::every_child_of_a_fanned_out_batch_is_polled_once_per_wake",
        3,
        || {
            let flags = [Flag::new(), Flag::new()];
            let (c0, probe0) = Probed::new(&flags[0]);
            let (c1, probe1) = Probed::new(&flags[1]);
            let setter = thread::spawn(move || {
                for flag in &flags {
                    flag.set();
                }
            });
            block_on(par_scope(|s| async move {
                s.spawn(c0);
                s.spawn(c1);
            }));
            probe0.assert_finished("c0");
            probe1.assert_finished("c1");
            setter.join().unwrap();
        },
    );
}

/// Property: no lost wake-up in the hand-back. A child woken from another
/// thread while a participant polls it may be claimed from the ready queue
/// by the other participant meanwhile; that claim finds it taken and sets
/// its `rewake`, and the poller must queue it again when it puts it back.
/// `c0` waits on a flag that a third thread sets at any point, `c1` is
/// ready at once, so the participant that polls `c1` goes on to the ready
/// queue while `c0` may still be in its poll. The scope completes (loom
/// reports a deadlock otherwise), after both children.
///
/// Last run: 56728 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `put_back_ignores_rewake` (the wake is lost: loom
/// reports a deadlock) and with `finish_ignores_children` (the scope
/// completes while `c0` is still running).
#[test]
fn child_woken_while_another_participant_polls_it_is_polled_again() {
    check(
        "parallel::child_woken_while_another_participant_polls_it_is_polled_again",
        3,
        || {
            one_woken_child_and_one_ready(|c0, c1| {
                block_on(par_scope(|s| async move {
                    s.spawn(c0);
                    s.spawn(c1);
                }));
            });
        },
    );
}

/// Property: no lost wake-up and exactly one poll per wake when the wakes
/// come from two threads at once. Both children of the fanned-out batch
/// wait on their own flags, each set by its own thread, so the two pushes
/// to the ready queue race with each other, with the participants taking
/// children from it and with the hand-backs of children polled elsewhere.
///
/// Last run: 137145 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `claim_reclaims_position` and `put_back_ignores_rewake`.
#[test]
fn children_woken_from_two_threads_during_a_fan_out_are_each_polled_once_more() {
    check(
        "parallel::children_woken_from_two_threads_during_a_fan_out",
        2,
        || {
            let flags = [Flag::new(), Flag::new()];
            let (c0, probe0) = Probed::new(&flags[0]);
            let (c1, probe1) = Probed::new(&flags[1]);
            let setters = flags.map(|flag| thread::spawn(move || flag.set()));
            block_on(par_scope(|s| async move {
                s.spawn(c0);
                s.spawn(c1);
            }));
            probe0.assert_finished("c0");
            probe1.assert_finished("c1");
            for setter in setters {
                setter.join().unwrap();
            }
        },
    );
}

/// Property: a body woken during a fan-out (by the handle of a child that
/// a participant completes) is polled by the scope's thread, the only one
/// that may poll it, and its wake is not lost whether that thread finds it
/// at a claim (polling it inside the fan-out) or the driver does after.
/// The body spawns `c0`, which waits on a flag that a third thread sets at
/// any point, and `c1`, ready at once, then awaits `c0`'s handle.
///
/// Last run: 76801 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `fan_out_drops_the_body_wake` (the scope's thread
/// takes the body's wake at a claim but does not poll it: loom reports a
/// deadlock).
#[test]
fn a_body_woken_during_a_fan_out_is_polled_by_the_scopes_thread() {
    check(
        "parallel::a_body_woken_during_a_fan_out_is_polled_by_the_scopes_thread",
        3,
        || {
            let owner = thread::current().id();
            one_woken_child_and_one_ready(|c0, c1| {
                let got = block_on(par_scope(|s| async move {
                    let first = s.spawn(c0);
                    s.spawn(c1);
                    first.await;
                    thread::current().id()
                }));
                assert_eq!(got, owner, "the body was polled off the scope's thread");
            });
        },
    );
}

/// Property: a child spawned while the body's poll is fanned out is polled
/// exactly once per wake, by the helper (claiming from the ready queue while
/// the body still runs) or by the scope's thread (after the body's poll),
/// never by both; and the fan-out ends (the helper stops looking once the
/// body's poll returned, or, once the body has spawned, after two empty
/// looks: its patience). The body spawns `c0`, which waits on a flag that
/// a third thread sets at any point, and `c1`, ready at once.
///
/// Last run: 203890 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `put_back_ignores_rewake` (a wake of `c0` picked up
/// while it was being polled is lost: loom reports a deadlock) and
/// `finish_ignores_children`.
#[test]
fn children_spawned_while_the_body_is_polled_in_a_fan_out_are_polled_once_per_wake() {
    check(
        "parallel::children_spawned_while_the_body_is_polled_in_a_fan_out",
        3,
        || {
            one_woken_child_and_one_ready(|c0, c1| {
                block_on(par_scope_fanning_out_the_body(|s| async move {
                    s.spawn(c0);
                    s.spawn(c1);
                }));
            });
        },
    );
}
