//! `par_scope`: children that borrow, polled on several threads at once:
//! results over borrowed data, nesting, drop, tokio. The thread-level
//! properties are in `par_scope_threads.rs`.
#![cfg(feature = "parallel")]

mod common;
mod par_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{CountingWaker, DropCounter, yield_once};
use futures::executor::block_on;
use par_support::{OnDrop, digest, spin_for};
use taskscope::{Builder, CancelToken, par_scope};

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
