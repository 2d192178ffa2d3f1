//! `par_scope`: children that borrow, polled on several threads at once:
//! results over borrowed data, nesting, drop, tokio. The thread-level
//! properties are in `par_scope_threads.rs`.
#![cfg(feature = "parallel")]

mod common;
mod par_support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use common::{CountingWaker, DropCounter, yield_once};
use futures::executor::block_on;
use par_support::{OnDrop, digest, spin_for, spin_until_count};
use taskscope::{CancelReason, par_scope};

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
    // Only the child is cancelled, through its handle: a nested scope hung
    // under the outer scope's token (as it would be, were the child polled
    // with that token rather than its own) never hears of it.
    let started = AtomicBool::new(false);
    let started = &started;
    let mut fut = std::pin::pin!(par_scope(|s| async move {
        let child = s.spawn(async move {
            par_scope(|nested| async move {
                let grandchild = nested.spawn(async move {
                    started.store(true, Ordering::SeqCst);
                    taskscope::cancelled().await.into_reason()
                });
                let grandchild = grandchild.await;
                (nested.token().reason(), grandchild)
            })
            .await
        });
        // The nested scope exists, and its child waits, before the cancel.
        while !started.load(Ordering::SeqCst) {
            yield_once().await;
        }
        child.cancel();
        let (nested, grandchild) = child.await;
        (nested, grandchild, s.token().reason())
    }));
    // Polled by hand, a bounded number of times: were the cancellation
    // never to reach the nested scope, its child would wait for ever.
    let waker = CountingWaker::new();
    let (nested, grandchild, outer) = (0..100)
        .find_map(|_| match waker.poll(fut.as_mut()) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
        .expect("cancelling the child reached the nested scope's child");
    assert!(
        matches!(&nested, Some(CancelReason::Parent(inner)) if matches!(inner.origin(), CancelReason::Requested)),
        "the nested scope's token was cancelled through the child's: {nested:?}"
    );
    assert!(
        matches!(&grandchild, CancelReason::Parent(inner) if matches!(inner.origin(), CancelReason::Requested)),
        "the nested scope's child was cancelled through it: {grandchild:?}"
    );
    assert!(
        outer.is_none(),
        "the outer scope's token is not cancelled: {outer:?}"
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

#[test]
fn a_forgotten_par_scope_leaves_no_child_running_and_never_polls_one_again() {
    // Not under Miri: rayon's pool under Miri takes well over ten minutes
    // (see .ci/run); scripts/tsan.sh runs this file under ThreadSanitizer.
    // What Miri would check (the freed data is never read) is checked here
    // by counting: every read of the borrowed data goes through `touch`.
    // The scope is polled in a pool of exactly two threads of its own, so
    // two of its children are polled at once whatever the core count.
    let pool = rayon_core::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads");
    let touches = Arc::new(AtomicUsize::new(0));
    let in_poll = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let outer = CountingWaker::new();
    let touches_at_forget = pool.install(|| {
        let data: Vec<u64> = (1..=64).collect();
        let data = &data;
        let probe = Probe {
            touches: touches.clone(),
            in_poll: in_poll.clone(),
            threads: threads.clone(),
        };
        let mut fut = Box::pin(par_scope(|s| {
            // Heavy first child: the rest of the batch is worth a fan-out.
            let first = probe.clone();
            let stash = wakers.clone();
            s.spawn(std::future::poll_fn(move |cx| {
                first.poll(data, || spin_for(Duration::from_millis(3)));
                stash.lock().unwrap().push(cx.waker().clone());
                Poll::<()>::Pending
            }));
            // Two that are inside their polls at the same time (so on two
            // threads), each keeping its waker.
            for _ in 0..2 {
                let (probe, stash, arrived) = (probe.clone(), wakers.clone(), arrived.clone());
                s.spawn(std::future::poll_fn(move |cx| {
                    probe.poll(data, || {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        spin_until_count(&arrived, 2, "the other child never ran meanwhile");
                    });
                    stash.lock().unwrap().push(cx.waker().clone());
                    Poll::<()>::Pending
                }));
            }
            // One that is always ready again: whatever polled it would go
            // on polling it, were polls not confined to the scope's `poll`.
            let busy = probe.clone();
            s.spawn(std::future::poll_fn(move |cx| {
                busy.poll(data, || ());
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }));
            std::future::pending::<()>()
        }));
        assert!(outer.poll(fut.as_mut()).is_pending());
        assert_eq!(
            in_poll.load(Ordering::SeqCst),
            0,
            "the scope's poll returned while a child was still being polled"
        );
        assert_eq!(
            wakers.lock().unwrap().len(),
            3,
            "each parked child polled once"
        );
        assert!(
            threads.lock().unwrap().len() >= 2,
            "the children were polled on several threads"
        );
        std::mem::forget(fut);
        // The borrow ended with the forget: `data` is freed at the end of
        // this closure, while the forgotten children still refer to it.
        touches.load(Ordering::SeqCst)
    });
    assert_eq!(in_poll.load(Ordering::SeqCst), 0, "no child is running");
    // Wake every parked child, from this thread and from another one.
    let parked = std::mem::take(&mut *wakers.lock().unwrap());
    let (here, elsewhere) = parked.split_at(1);
    let elsewhere = elsewhere.to_vec();
    here[0].wake_by_ref();
    thread::spawn(move || elsewhere.into_iter().for_each(Waker::wake))
        .join()
        .unwrap();
    drop(parked);
    // Every thread of both pools (the scope's, and the global one a wake
    // from outside it would reach) has gone back to rayon's job loop since
    // the wakes: a child poll queued on a pool by a wake would have run by now.
    pool.broadcast(|_| ());
    rayon_core::broadcast(|_| ());
    assert!(outer.count() >= 1, "the wakes reached the scope's waker");
    assert_eq!(in_poll.load(Ordering::SeqCst), 0, "no child is running");
    assert_eq!(
        touches.load(Ordering::SeqCst),
        touches_at_forget,
        "a child of the forgotten scope was polled again and read the freed data"
    );
}

/// Counts a child's polls, each of which reads the borrowed data, and
/// whether one is under way.
#[derive(Clone)]
struct Probe {
    touches: Arc<AtomicUsize>,
    in_poll: Arc<AtomicUsize>,
    threads: Arc<Mutex<HashSet<thread::ThreadId>>>,
}

impl Probe {
    fn poll(&self, data: &[u64], work: impl FnOnce()) {
        self.in_poll.fetch_add(1, Ordering::SeqCst);
        self.threads.lock().unwrap().insert(thread::current().id());
        assert_eq!(data.iter().sum::<u64>(), 64 * 65 / 2);
        self.touches.fetch_add(1, Ordering::SeqCst);
        work();
        self.in_poll.fetch_sub(1, Ordering::SeqCst);
    }
}
