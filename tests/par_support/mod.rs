//! Helpers shared by the `par_scope` integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// CPU work over `text`: iterated FNV-style hashing, long enough to matter.
pub fn digest(text: &str, rounds: u32) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for round in 0..rounds {
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte) ^ u64::from(round)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Keeps this thread busy for `duration` (CPU work, not a wait): makes the
/// poll that calls it heavy enough for its batch to fan out.
pub fn spin_for(duration: Duration) {
    let started = Instant::now();
    let mut x = 1_u64;
    while started.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

/// Waits, spinning, until `flag` is set, or fails the test after a long
/// time rather than hanging it (the wait is for another thread's poll).
pub fn spin_until(flag: &AtomicBool, what: &str) {
    let started = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        std::hint::spin_loop();
    }
}

/// As [`spin_until`], until `count` reaches `target`.
pub fn spin_until_count(count: &AtomicUsize, target: usize, what: &str) {
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < target {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        std::hint::spin_loop();
    }
}

/// Runs `f` on a thread of a rayon pool of its own with exactly two
/// threads, whatever the machine's core count: a test that needs two
/// children polled at once then never depends on the size of the global
/// pool (one thread on a single-CPU machine). Inside `f` every fan-out of
/// `par_scope` goes to this pool; its other thread is free to help.
pub fn in_a_pool_of_two<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
        .install(f)
}

pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
