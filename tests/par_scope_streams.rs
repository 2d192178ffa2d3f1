//! The stream adapters (`buffered_in`, `buffer_unordered_in`, `for_each_in`)
//! inside `par_scope`: items that borrow from around the scope, polled on
//! several threads, with results, order and window checked.
//!
//! Where a test shows that items really ran in parallel, it uses the
//! fan-out rule of `par_scope` (as `par_scope_threads.rs` does): the first
//! item's poll spins for milliseconds, a scope's first child poll is always
//! timed, so the rest of that batch fans out; two later items then wait
//! inside their polls for each other, which only two threads can satisfy.
//! Those tests run in a rayon pool of exactly two threads of their own
//! (`in_a_pool_of_two`), so they assert this on a single-CPU machine too.
#![cfg(feature = "parallel")]

mod common;
mod par_support;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::yield_once;
use futures::executor::block_on;
use futures::stream::{self, StreamExt};
use par_support::{digest, in_a_pool_of_two, spin_for, spin_until_count};
use taskscope::{ScopedStreamExt, par_scope};

/// Pulled minus yielded, and the most it ever was (atomics: the stream is
/// polled on the body's thread, but keep the body `Send`).
#[derive(Default)]
struct Window {
    pulled: AtomicUsize,
    yielded: AtomicUsize,
    most: AtomicUsize,
}

impl Window {
    fn pull(&self) {
        let pulled = self.pulled.fetch_add(1, SeqCst) + 1;
        self.most
            .fetch_max(pulled - self.yielded.load(SeqCst), SeqCst);
    }

    fn yielded(&self) {
        self.yielded.fetch_add(1, SeqCst);
    }
}

/// What item `index` does to prove parallelism: item 0 is heavy (so its
/// batch fans out), items 1 and 2 meet inside their polls, which needs two
/// threads: call it only inside `in_a_pool_of_two`.
fn rendezvous(index: usize, met: &AtomicUsize) {
    match index {
        0 => spin_for(Duration::from_millis(3)),
        1 | 2 => {
            met.fetch_add(1, SeqCst);
            spin_until_count(met, 2, "items 1 and 2 were never polled at the same time");
        }
        _ => {}
    }
}

/// A deterministic number of yields for item `index`, 0 to 3.
fn yields(index: usize) -> usize {
    (index * 7 + index / 3) % 4
}

fn rows() -> Vec<String> {
    (0..300).map(|i| format!("row-{i}-{}", i * 13)).collect()
}

#[test]
fn buffered_in_in_a_par_scope_yields_borrowed_rows_results_in_input_order() {
    in_a_pool_of_two(|| {
        let rows = rows();
        let expected: Vec<(usize, u64)> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (i, digest(row, 100)))
            .collect();
        let (window, met, threads) = (
            Window::default(),
            AtomicUsize::new(0),
            Mutex::new(HashSet::<ThreadId>::new()),
        );
        let (rows, pulls, met, threads) = (&rows, &window, &met, &threads);
        const N: usize = 4;
        let got = block_on(par_scope(|s| async move {
            let mut got = Vec::new();
            let mut stream = std::pin::pin!(
                stream::iter(rows.iter().enumerate())
                    .inspect(|_| pulls.pull())
                    .map(|(i, row)| async move {
                        threads.lock().unwrap().insert(thread::current().id());
                        rendezvous(i, met);
                        for _ in 0..yields(i) {
                            yield_once().await;
                        }
                        (i, digest(row, 100))
                    })
                    .buffered_in(N, &s)
            );
            while let Some(output) = stream.next().await {
                pulls.yielded();
                got.push(output);
                // The consumer awaits too, while items run.
                yield_once().await;
            }
            got
        }));
        assert_eq!(got, expected, "every result, in input order");
        let most = window.most.load(SeqCst);
        assert!(
            most <= N,
            "{most} items pulled and not yet yielded, window {N}"
        );
        assert!(threads.lock().unwrap().len() >= 2, "items ran on 2 threads");
    });
}

#[test]
fn buffer_unordered_in_in_a_par_scope_yields_every_borrowed_entry_once() {
    in_a_pool_of_two(|| {
        let map: HashMap<String, Vec<u32>> = (0..200)
            .map(|i| (format!("key-{i}"), (0..(i % 17)).collect()))
            .collect();
        let mut expected: Vec<(String, u64)> = map
            .iter()
            .map(|(key, values)| {
                let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
                (key.clone(), digest(key, 50) % 1_000 + sum)
            })
            .collect();
        expected.sort();
        let (window, met, finished) = (Window::default(), AtomicUsize::new(0), AtomicUsize::new(0));
        let (map, pulls, met, finished) = (&map, &window, &met, &finished);
        const N: usize = 5;
        let got = block_on(par_scope(|s| async move {
            let mut got = Vec::new();
            let mut stream = std::pin::pin!(
                stream::iter(map.iter().enumerate())
                    .inspect(|_| pulls.pull())
                    .map(|(i, (key, values))| async move {
                        rendezvous(i, met);
                        for _ in 0..yields(i) {
                            yield_once().await;
                        }
                        let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
                        finished.fetch_add(1, SeqCst);
                        // Borrowed `&str` out: the key lives outside the scope.
                        (key.as_str(), digest(key, 50) % 1_000 + sum)
                    })
                    .buffer_unordered_in(N, &s)
            );
            while let Some(output) = stream.next().await {
                pulls.yielded();
                // Yielded only once finished (completion order, not input order).
                assert!(finished.load(SeqCst) > got.len());
                got.push(output);
                yield_once().await;
            }
            got
        }));
        let mut got: Vec<(String, u64)> = got
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        got.sort();
        assert_eq!(got, expected, "every entry exactly once, with its result");
        let most = window.most.load(SeqCst);
        assert!(
            most <= N,
            "{most} items pulled and not yet yielded, window {N}"
        );
    });
}

#[test]
fn for_each_in_in_a_par_scope_runs_each_body_once_over_borrowed_rows() {
    in_a_pool_of_two(|| {
        let rows = rows();
        let expected: Vec<u64> = rows.iter().map(|row| digest(row, 100)).collect();
        let results: Vec<Mutex<Option<u64>>> = rows.iter().map(|_| Mutex::new(None)).collect();
        let (running, most, met, threads) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            Mutex::new(HashSet::<ThreadId>::new()),
        );
        let (rows, results, running, most, met, threads) =
            (&rows, &results, &running, &most, &met, &threads);
        const N: usize = 4;
        block_on(par_scope(|s| async move {
            stream::iter(rows.iter().enumerate())
                .for_each_in(N, &s, |(i, row)| async move {
                    most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                    threads.lock().unwrap().insert(thread::current().id());
                    rendezvous(i, met);
                    for _ in 0..yields(i) {
                        yield_once().await;
                    }
                    let previous = results[i].lock().unwrap().replace(digest(row, 100));
                    assert!(previous.is_none(), "item {i} ran twice");
                    running.fetch_sub(1, SeqCst);
                })
                .await;
            assert_eq!(
                running.load(SeqCst),
                0,
                "completes once every body finished"
            );
        }));
        let got: Vec<u64> = results
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.lock()
                    .unwrap()
                    .unwrap_or_else(|| panic!("item {i} never ran"))
            })
            .collect();
        assert_eq!(got, expected);
        let most = most.load(SeqCst);
        assert!(most <= N, "{most} bodies at once, window {N}");
        assert!(
            threads.lock().unwrap().len() >= 2,
            "bodies ran on 2 threads"
        );
    });
}

#[test]
fn buffered_in_feeding_for_each_in_in_a_par_scope_inside_tokio_spawn() {
    // The two adapters chained in one par_scope, whose future (streams
    // included) must be `Send` for `tokio::spawn`; the items borrow `rows`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (total, expected) = runtime.block_on(async {
        tokio::spawn(async {
            let rows = rows();
            let rows = &rows;
            let total = AtomicUsize::new(0);
            let total_ref = &total;
            par_scope(|s| async move {
                // Indices, not `rows.iter()`: a closure over `&String` items
                // trips rustc's higher-ranked `Send` check in `tokio::spawn`
                // ("implementation of `FnOnce` is not general enough",
                // rust-lang/rust#89976), a compiler limitation, not ours.
                stream::iter(0..rows.len())
                    .map(|i| async move {
                        yield_once().await;
                        digest(&rows[i], 20) as usize % 1_000
                    })
                    .buffered_in(3, &s)
                    .for_each_in(3, &s, |score| async move {
                        yield_once().await;
                        total_ref.fetch_add(score, SeqCst);
                    })
                    .await;
            })
            .await;
            let expected: usize = rows
                .iter()
                .map(|row| digest(row, 20) as usize % 1_000)
                .sum();
            (total.into_inner(), expected)
        })
        .await
        .unwrap()
    });
    assert_eq!(total, expected);
}
