//! `par_scope`: children that borrow, polled on several threads at once.
//!
//! Several tests rely on the fan-out rule (see `par_scope`'s docs): a batch
//! is polled inline until its expected work is worth a fan-out. Their first
//! child spins for milliseconds; a scope's first child poll is always timed,
//! so the rest of that batch fans out whatever the machine's speed.
#![cfg(feature = "parallel")]

mod common;

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::{CountingWaker, DropCounter, panic_message, yield_once};
use futures::FutureExt;
use futures::executor::block_on;
use taskscope::{Builder, CancelToken, par_scope};

/// CPU work over `text`: iterated FNV-style hashing, long enough to matter.
fn digest(text: &str, rounds: u32) -> u64 {
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
fn spin_for(duration: Duration) {
    let started = Instant::now();
    let mut x = 1_u64;
    while started.elapsed() < duration {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

/// Waits, spinning, until `flag` is set, or fails the test after a long
/// time rather than hanging it (the wait is for another thread's poll).
fn spin_until(flag: &AtomicBool, what: &str) {
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
fn spin_until_count(count: &AtomicUsize, target: usize, what: &str) {
    let started = Instant::now();
    while count.load(Ordering::SeqCst) < target {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gave up waiting: {what}"
        );
        std::hint::spin_loop();
    }
}

fn two_threads_available() -> bool {
    // From outside the pool one pool thread would do, but the tests below
    // also run inside a pool; keep one rule.
    rayon_core::current_num_threads() >= 2
}

#[test]
fn borrowed_slice_is_processed_by_many_children_with_results_checked() {
    let rows: Vec<String> = (0..4_000).map(|i| format!("row-{i}-{}", i * 7)).collect();
    let expected: Vec<u64> = rows.iter().map(|row| digest(row, 200)).collect();
    let rows = &rows;
    let got = block_on(par_scope(|s| async move {
        let handles: Vec<_> = rows
            .chunks(25)
            .map(|chunk| {
                s.spawn(async move {
                    let mut out = Vec::with_capacity(chunk.len());
                    for row in chunk {
                        out.push(digest(row, 200));
                        yield_once().await;
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for handle in handles {
            all.extend(handle.await);
        }
        all
    }));
    assert_eq!(got, expected);
}

#[test]
fn borrowed_hash_map_is_read_by_many_children_with_results_checked() {
    let map: HashMap<String, Vec<u32>> = (0..500)
        .map(|i| (format!("key-{i}"), (0..(i % 50)).collect()))
        .collect();
    let expected: u64 = map
        .iter()
        .map(|(key, values)| {
            digest(key, 100) % 1_000 + values.iter().map(|&v| u64::from(v)).sum::<u64>()
        })
        .sum();
    let map = &map;
    let total = block_on(par_scope(|s| async move {
        let handles: Vec<_> = map
            .iter()
            .map(|(key, values)| {
                s.spawn(async move {
                    yield_once().await;
                    digest(key, 100) % 1_000 + values.iter().map(|&v| u64::from(v)).sum::<u64>()
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle.await;
        }
        total
    }));
    assert_eq!(total, expected);
}

#[test]
fn children_that_spawn_children_are_all_joined_with_results_checked() {
    let words: Vec<String> = (0..64).map(|i| "w".repeat(i + 1)).collect();
    let words = &words;
    let done = AtomicUsize::new(0);
    let done = &done;
    let total = block_on(par_scope(|s| async move {
        let parents: Vec<_> = words
            .chunks(8)
            .map(|chunk| {
                let inner = s.clone();
                s.spawn(async move {
                    let kids: Vec<_> = chunk
                        .iter()
                        .map(|word| {
                            inner.spawn(async move {
                                spin_for(Duration::from_micros(200));
                                done.fetch_add(1, Ordering::SeqCst);
                                word.len()
                            })
                        })
                        .collect();
                    let mut sum = 0;
                    for kid in kids {
                        sum += kid.await;
                    }
                    sum
                })
            })
            .collect();
        let mut total = 0;
        for parent in parents {
            total += parent.await;
        }
        total
    }));
    assert_eq!(total, (1..=64).sum::<usize>());
    assert_eq!(done.load(Ordering::SeqCst), 64);
}

#[test]
fn children_really_run_on_two_threads_at_once() {
    if !two_threads_available() {
        eprintln!("skipped: rayon's pool has a single thread");
        return;
    }
    let arrived = AtomicUsize::new(0);
    let arrived = &arrived;
    let seen = Mutex::new(Vec::<ThreadId>::new());
    let seen = &seen;
    block_on(par_scope(|s| async move {
        // Heavy first child: the rest of the batch is worth a fan-out.
        s.spawn(async { spin_for(Duration::from_millis(3)) });
        for _ in 0..2 {
            s.spawn(async move {
                // Both must be inside their polls at the same time to pass:
                // only possible on two threads.
                arrived.fetch_add(1, Ordering::SeqCst);
                spin_until_count(arrived, 2, "the other child never ran meanwhile");
                seen.lock().unwrap().push(thread::current().id());
            });
        }
    }));
    let seen = seen.lock().unwrap();
    let distinct: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(distinct.len(), 2, "the two children ran on two threads");
}

#[test]
fn a_child_woken_during_a_fan_out_is_polled_by_a_free_thread_in_the_same_poll() {
    if !two_threads_available() {
        eprintln!("skipped: rayon's pool has a single thread");
        return;
    }
    let late_waker = Mutex::new(None::<Waker>);
    let (parked, woken, late_ran) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicBool::new(false),
    );
    let (late_waker, parked, woken, late_ran) = (&late_waker, &parked, &woken, &late_ran);
    let threads = Mutex::new(HashMap::<&str, ThreadId>::new());
    let threads = &threads;
    let mut fut = Box::pin(par_scope(|s| async move {
        s.spawn(async { spin_for(Duration::from_millis(3)) });
        // The rest is fanned out. The late child parks until `waker` wakes it.
        s.spawn(async move {
            let mut polled = false;
            std::future::poll_fn(|cx| {
                if polled {
                    return std::task::Poll::Ready(());
                }
                polled = true;
                *late_waker.lock().unwrap() = Some(cx.waker().clone());
                parked.store(true, Ordering::SeqCst);
                std::task::Poll::Pending
            })
            .await;
            threads
                .lock()
                .unwrap()
                .insert("late", thread::current().id());
            late_ran.store(true, Ordering::SeqCst);
        });
        // Holds its thread until the late child has run, so another thread
        // must pick that child up meanwhile.
        s.spawn(async move {
            spin_until(parked, "the late child was never polled");
            let waker = late_waker.lock().unwrap().take().expect("parked");
            waker.wake();
            woken.store(true, Ordering::SeqCst);
            spin_until(late_ran, "the woken child was never polled meanwhile");
            threads
                .lock()
                .unwrap()
                .insert("waker", thread::current().id());
        });
        s.spawn(async move {
            // Returns only once the late child is queued, so its thread is
            // free to pick it up.
            spin_until(woken, "the late child was never woken");
        });
    }));
    let waker = CountingWaker::new();
    assert!(
        waker.poll(fut.as_mut()).is_ready(),
        "every child finished within one poll of the scope"
    );
    let threads = threads.lock().unwrap();
    assert_ne!(threads["late"], threads["waker"]);
}

#[test]
fn a_single_ready_child_is_polled_on_the_calling_thread() {
    let caller = thread::current().id();
    let seen = Mutex::new(Vec::new());
    let seen = &seen;
    block_on(par_scope(|s| async move {
        for _ in 0..5 {
            // One child at a time: each batch holds one ready child.
            s.spawn(async move {
                spin_for(Duration::from_millis(1));
                seen.lock().unwrap().push(thread::current().id());
            })
            .await;
        }
    }));
    assert_eq!(*seen.lock().unwrap(), vec![caller; 5]);
}

#[test]
fn a_childs_panic_on_another_thread_is_re_raised_at_its_handle() {
    let outcome = block_on(par_scope(|s| async move {
        s.spawn(async { spin_for(Duration::from_millis(3)) });
        let failing = s.spawn(async {
            spin_for(Duration::from_millis(1));
            panic!("child failed on a worker");
        });
        let fine = s.spawn(async {
            spin_for(Duration::from_millis(1));
            7
        });
        let caught = AssertUnwindSafe(failing).catch_unwind().await;
        (
            caught.map_err(|payload| panic_message(&*payload)),
            fine.await,
        )
    }));
    assert_eq!(outcome, (Err("child failed on a worker".to_string()), 7));
}

#[test]
fn a_panic_on_a_pool_thread_reaches_the_scope_after_the_other_polls_finished() {
    // Inside a pool of two: every thread that polls children is a worker.
    let pool = rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let callback_ran = Arc::new(AtomicBool::new(false));
    let sibling_done = AtomicBool::new(false);
    let (callback_flag, sibling_done) = (&*callback_ran.clone(), &sibling_done);
    let outcome = pool.install(|| {
        block_on(
            AssertUnwindSafe(par_scope(|s| async move {
                // A child's panic cancels the scope; this callback then
                // panics on the thread that polled that child, outside every
                // catch of the child: it unwinds through the worker.
                let callback_ran = callback_ran.clone();
                let _registration = s.token().on_cancel(move |_| {
                    callback_ran.store(true, Ordering::SeqCst);
                    panic!("callback failed");
                });
                s.spawn(async { spin_for(Duration::from_millis(3)) });
                drop(s.spawn(async { panic!("child failed") }));
                s.spawn(async move {
                    spin_until(callback_flag, "the callback never ran");
                    spin_for(Duration::from_millis(2));
                    sibling_done.store(true, Ordering::SeqCst);
                });
                std::future::pending::<()>().await;
            }))
            .catch_unwind(),
        )
    });
    let payload = outcome.expect_err("the callback's panic reaches the scope's poll");
    assert_eq!(panic_message(&*payload), "callback failed");
    assert!(
        sibling_done.load(Ordering::SeqCst),
        "the sibling's poll finished before the panic was resumed"
    );
}

#[test]
fn nested_par_scopes_three_levels_deep_finish_with_results_checked() {
    let data: Vec<u64> = (0..512).collect();
    let data = &data;
    let total = block_on(par_scope(|outer| async move {
        let handles: Vec<_> = data
            .chunks(128)
            .map(|block| {
                outer.spawn(async move {
                    par_scope(|middle| async move {
                        let handles: Vec<_> = block
                            .chunks(32)
                            .map(|part| {
                                middle.spawn(async move {
                                    par_scope(|inner| async move {
                                        let handles: Vec<_> = part
                                            .iter()
                                            .map(|&n| {
                                                inner.spawn(async move {
                                                    spin_for(Duration::from_micros(50));
                                                    n * n
                                                })
                                            })
                                            .collect();
                                        let mut sum = 0;
                                        for handle in handles {
                                            sum += handle.await;
                                        }
                                        sum
                                    })
                                    .await
                                })
                            })
                            .collect();
                        let mut sum = 0;
                        for handle in handles {
                            sum += handle.await;
                        }
                        sum
                    })
                    .await
                })
            })
            .collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await;
        }
        sum
    }));
    assert_eq!(total, (0..512_u64).map(|n| n * n).sum::<u64>());
}

#[test]
fn a_nested_scope_inherits_the_token_of_the_child_that_created_it() {
    let parent = CancelToken::new();
    let seen = block_on(Builder::new().parent(&parent).par_scope(|s| async move {
        let child = s.spawn(async {
            par_scope(|inner| async move {
                inner
                    .spawn(async { taskscope::cancelled().await.into_reason() })
                    .await
            })
            .await
        });
        parent.cancel();
        child.await
    }));
    assert!(
        matches!(seen.origin(), taskscope::CancelReason::Requested),
        "{seen:?}"
    );
}

#[test]
fn dropping_a_par_scope_between_polls_drops_its_children_on_the_dropping_thread() {
    let drops = Arc::new(AtomicUsize::new(0));
    let dropped_on = Arc::new(Mutex::new(Vec::new()));
    let mut fut = Box::pin(par_scope(|s| {
        for _ in 0..8 {
            let drops = DropCounter(drops.clone());
            let dropped_on = dropped_on.clone();
            s.spawn(async move {
                let _drops = drops;
                let _record =
                    OnDrop(move || dropped_on.lock().unwrap().push(thread::current().id()));
                spin_for(Duration::from_micros(100));
                std::future::pending::<()>().await;
            });
        }
        std::future::pending::<()>()
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(fut);
    assert_eq!(drops.load(Ordering::SeqCst), 8, "each child dropped once");
    assert_eq!(*dropped_on.lock().unwrap(), vec![thread::current().id(); 8]);
}

#[test]
fn par_scope_runs_inside_tokio_spawn_on_the_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        tokio::spawn(async {
            let rows: Vec<String> = (0..1_000).map(|i| format!("{i:05}")).collect();
            let rows = &rows;
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
            let sum = par_scope(|s| async move {
                for chunk in rows.chunks(50) {
                    let sender = sender.clone();
                    s.spawn(async move {
                        for row in chunk {
                            tokio::task::yield_now().await;
                            sender.send(digest(row, 50) % 1_000).unwrap();
                        }
                    });
                }
                drop(sender);
                let mut sum = 0;
                while let Some(value) = receiver.recv().await {
                    sum += value;
                }
                sum
            })
            .await;
            let expected: u64 = rows.iter().map(|row| digest(row, 50) % 1_000).sum();
            (sum, expected)
        })
        .await
        .unwrap()
    });
    assert_eq!(total.0, total.1);
}

#[test]
fn the_par_scope_future_is_send_when_its_body_is() {
    fn assert_send<T: Send>(_: &T) {}
    let data = [1, 2, 3];
    let data = &data;
    let fut = par_scope(|s| async move { s.spawn(async move { data.len() }).await });
    assert_send(&fut);
    assert_eq!(block_on(fut), 3);
}

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
