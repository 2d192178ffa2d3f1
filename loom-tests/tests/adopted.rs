//! Loom models of adopted values handed back to their scope: a guard
//! dropped on another thread gives its value to the scope's clean-up if the
//! scope is still open or cleaning up, and otherwise drops it as skipped; in
//! both cases the value is dropped exactly once.
//!
//! Each model names the mutant (scripts/loom.sh `--mutants`) that makes it
//! fail.
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use taskscope::{AsyncDrop, scope};
use taskscope_loom_tests::{Flag, check};

/// A value that records its async clean-up and its drops.
struct Resource {
    prepared: Arc<AtomicBool>,
    drops: Arc<AtomicUsize>,
}

impl AsyncDrop for Resource {
    async fn prepare_drop(&mut self) {
        self.prepared.store(true, Ordering::Relaxed);
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn resource() -> (Resource, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let prepared = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let value = Resource {
        prepared: prepared.clone(),
        drops: drops.clone(),
    };
    (value, prepared, drops)
}

/// Property: a value handed back while the scope is open or running its
/// clean-up is cleaned up (its `prepare_drop` runs) and dropped once before
/// the scope returns. The guard goes to another thread, which drops it and
/// only then releases a deferred clean-up that keeps the scope in its
/// clean-up phase; the hand-back races with the end of the children and
/// with the clean-up runner.
///
/// Last run: 234 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `hand_back_skips_while_running`.
#[test]
fn value_handed_back_during_cleanup_is_cleaned_up_before_the_scope_returns() {
    check(
        "adopted::value_handed_back_during_cleanup_is_cleaned_up",
        3,
        || {
            let (value, prepared, drops) = resource();
            let release = Flag::new();
            let dropper = block_on(scope(|s| {
                let release = release.clone();
                async move {
                    let adopted = s.adopt(value);
                    let deferred = release.clone();
                    s.defer(async move { deferred.wait().await });
                    thread::spawn(move || {
                        drop(adopted);
                        release.set();
                    })
                }
            }));
            assert!(prepared.load(Ordering::Relaxed), "the value's clean-up ran");
            assert_eq!(drops.load(Ordering::Relaxed), 1);
            dropper.join().unwrap();
        },
    );
}

/// Property: no lost or doubled drop. A guard dropped on another thread at
/// any point while its scope finishes is either cleaned up by the scope or,
/// once the scope has finished, dropped on that thread as skipped; the
/// value is dropped exactly once either way and nothing panics.
///
/// Last run: 25 interleavings (preemption bound 3, LOOM_MAX_BRANCHES=10000).
/// Fails with mutant `skipped_hand_back_leaks`.
#[test]
fn value_dropped_elsewhere_as_the_scope_finishes_is_dropped_once() {
    check(
        "adopted::value_dropped_elsewhere_as_the_scope_finishes",
        3,
        || {
            let (value, _prepared, drops) = resource();
            let dropper = block_on(scope(|s| async move {
                let adopted = s.adopt(value);
                thread::spawn(move || drop(adopted))
            }));
            dropper.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        },
    );
}
