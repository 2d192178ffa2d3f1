//! Loom models of `race` and `race_all`: the winner's output is returned
//! only once every loser has finished, losers are cancelled and woken, and
//! no wake-up of a branch woken from another thread is lost.
//!
//! Each model names the mutant (scripts/loom.sh `--mutants`) that makes it
//! fail.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use taskscope::{race, race_all};
use taskscope_loom_tests::{Flag, check};

/// Property: `race` waits for its loser. The winner waits on a flag set by
/// one thread; the loser waits for its cancellation, then for a second
/// flag (its clean-up) set by another thread. The race returns the winner's
/// output only after the loser finished.
///
/// Last run: 632 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000);
/// 621 before a race's first pass started at a pseudo-random branch.
/// Fails with mutant `race_returns_before_losers`.
#[test]
fn race_returns_the_winner_only_after_its_loser_finished() {
    check(
        "race::race_returns_the_winner_only_after_its_loser_finished",
        2,
        || {
            let win = Flag::new();
            let loser_cleanup = Flag::new();
            let setters =
                [win.clone(), loser_cleanup.clone()].map(|flag| thread::spawn(move || flag.set()));
            let loser_done = AtomicBool::new(false);
            let (win, loser_cleanup, loser_done_ref) = (&win, &loser_cleanup, &loser_done);
            let output = block_on(race(
                async move {
                    win.wait().await;
                    "winner"
                },
                async move {
                    let _ = taskscope::cancelled().await;
                    loser_cleanup.wait().await;
                    loser_done_ref.store(true, Ordering::Relaxed);
                    "loser"
                },
            ));
            assert_eq!(output, "winner");
            assert!(
                loser_done.load(Ordering::Relaxed),
                "the race returned before its loser finished"
            );
            for setter in setters {
                setter.join().unwrap();
            }
        },
    );
}

/// A branch of `race_all`: waits on its flag (whatever its token says, so a
/// loser keeps running after it is cancelled), then counts itself done.
/// Waits for `flag`; returns how many branches finished before it.
async fn branch(flag: &Flag, done: &AtomicUsize) -> usize {
    flag.wait().await;
    done.fetch_add(1, Ordering::Relaxed)
}

/// Property: no lost wake-up in the per-branch wakers of the iterator forms,
/// and `race_all` waits for every loser. Two branches are woken from two
/// threads in any order, racing with the combinator's poll; the first to
/// finish wins and the race returns once both finished.
///
/// Last run: 1657 interleavings (preemption bound 2, LOOM_MAX_BRANCHES=10000).
/// Fails with mutants `branch_clears_queued_after_poll` (deadlock) and
/// `race_returns_before_losers`.
#[test]
fn race_all_with_branches_woken_from_two_threads_waits_for_both() {
    check(
        "race::race_all_with_branches_woken_from_two_threads",
        2,
        || {
            let flags = [Flag::new(), Flag::new()];
            let setters = flags.clone().map(|flag| thread::spawn(move || flag.set()));
            let done = AtomicUsize::new(0);
            let finished_before_the_winner = block_on(race_all([
                branch(&flags[0], &done),
                branch(&flags[1], &done),
            ]));
            assert_eq!(finished_before_the_winner, 0, "the first to finish wins");
            assert_eq!(
                done.load(Ordering::Relaxed),
                2,
                "race_all returned before its loser finished"
            );
            for setter in setters {
                setter.join().unwrap();
            }
        },
    );
}
