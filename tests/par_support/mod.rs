//! Helpers shared by the `par_scope` integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
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

/// What the jobs of an unrelated client of a pool saw (see
/// [`beside_an_unrelated_client`]).
pub struct ClientSaw {
    /// Jobs that ran before the work under test had finished.
    pub ran_during: usize,
    /// Jobs for which the probe returned `true`.
    pub probed_true: usize,
}

/// Runs `work` on a rayon pool of two threads while another thread, an
/// unrelated client of the same pool, keeps spawning small jobs onto it
/// (one per 50 µs) until `work` has returned; each job calls `probe`.
///
/// A fan-out's calling thread runs other pool work while it waits for its
/// helpers: the client's jobs are that work, and `probe` tells what they
/// could see of the scope.
pub fn beside_an_unrelated_client(probe: fn() -> bool, work: impl FnOnce() + Send) -> ClientSaw {
    let pool = Arc::new(
        rayon_core::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("a pool of two threads"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let ran_during = Arc::new(AtomicUsize::new(0));
    let probed_true = Arc::new(AtomicUsize::new(0));
    let client = {
        let (pool, done) = (pool.clone(), done.clone());
        let (ran_during, probed_true) = (ran_during.clone(), probed_true.clone());
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let (done, ran_during, probed_true) =
                    (done.clone(), ran_during.clone(), probed_true.clone());
                pool.spawn(move || {
                    if !done.load(Ordering::SeqCst) {
                        ran_during.fetch_add(1, Ordering::SeqCst);
                    }
                    if probe() {
                        probed_true.fetch_add(1, Ordering::SeqCst);
                    }
                });
                spin_for(Duration::from_micros(50));
            }
        })
    };
    pool.install(work);
    done.store(true, Ordering::SeqCst);
    client.join().expect("the client thread does not panic");
    // Queued behind the client's last jobs: lets them run before the
    // counts are read.
    pool.install(|| ());
    ClientSaw {
        ran_during: ran_during.load(Ordering::SeqCst),
        probed_true: probed_true.load(Ordering::SeqCst),
    }
}

pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
