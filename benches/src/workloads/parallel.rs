//! Workload 4: CPU-bound work over borrowed items (1 to 10 µs each), on all
//! cores, as a speed-up over the same loop run serially in the same run.
//!
//! Models "parallel async iteration over a borrowed database": the rows
//! stay where they are and each item is computed where it lies. The peers
//! show what this machine allows: rayon's `par_iter`, `thread::scope` with
//! one chunk per core, and `JoinSet` with the data behind an `Arc` (what
//! `'static` spawning forces on the user). Two peers spawn a task per item,
//! as `par_scope`'s target row does: rayon (a boxed closure per item, stolen
//! while the loop still spawns) and `JoinSet` (what a task per item costs in
//! the runtime most async code runs on).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::measure::{Config, Contender, Measured, by_name, compare, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::multi_thread;

const SERIAL: &str = "serial loop";
const RAYON: &str = "rayon par_iter";
const RAYON_SPAWN: &str = "rayon scope, a spawn per item";
const THREAD_SCOPE: &str = "std thread::scope, a chunk per core";
const JOIN_SET: &str = "tokio JoinSet + Arc, chunks of 64 (multi-thread)";
const JOIN_SET_PER_ITEM: &str = "tokio JoinSet + Arc, a task per item (multi-thread)";
const PAR_SCOPE: &str = "taskscope par_scope, a child per item";
const PAR_SCOPE_CHUNKS: &str = "taskscope par_scope, a child per 64 items";

/// A data-dependent loop the optimiser cannot shorten: `spins` rounds of
/// xorshift.
fn work(seed: u32, spins: u32) -> u64 {
    let mut x = u64::from(seed) | 1;
    for _ in 0..spins {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// Spins per microsecond on this machine: the fastest of five timings.
///
/// Interference (the host taking the core, another process) only ever
/// slows a timing down. A single timing taken in a bad moment once made
/// every item about 3 times shorter than meant (1 to 10 µs), and that run's
/// speed-ups were those of much finer work (rayon: 1.50x).
fn spins_per_us() -> f64 {
    let spins = 2_000_000;
    (0..5)
        .map(|_| {
            let start = Instant::now();
            black_box(work(black_box(7), spins));
            spins as f64 / (start.elapsed().as_secs_f64() * 1e6)
        })
        .fold(0.0, f64::max)
}

/// Items costing 1 to 10 µs each, spread evenly (a fixed sequence, so every
/// contender and every run sees the same data).
fn items(count: usize) -> Vec<u32> {
    let per_us = spins_per_us();
    let mut state = 0x2545_f491_u32;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let us = 1.0 + f64::from(state >> 8) / f64::from(1_u32 << 24) * 9.0;
            (us * per_us) as u32
        })
        .collect()
}

fn serial(data: &[u32]) -> u64 {
    data.iter().map(|&s| work(s, s)).fold(0, u64::wrapping_add)
}

/// A task per item where tasks are plain closures: each spawn is a boxed
/// job pushed onto the spawning worker's own deque, stolen by the other
/// worker while the loop still spawns.
fn rayon_spawn_per_item(data: &[u32]) -> u64 {
    let sum = AtomicU64::new(0);
    rayon::scope(|s| {
        for &item in data {
            let sum = &sum;
            s.spawn(move |_| {
                // Relaxed: a sum, read after the scope joined every spawn.
                sum.fetch_add(work(item, item), Ordering::Relaxed);
            });
        }
    });
    sum.into_inner()
}

fn thread_scope(data: &[u32]) -> u64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = data.len().div_ceil(cores);
    std::thread::scope(|s| {
        let handles: Vec<_> = data.chunks(chunk).map(|c| s.spawn(|| serial(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .fold(0, u64::wrapping_add)
    })
}

/// Measures serial and parallel peers and adds the rows of workload 4.
pub fn run(config: &Config, report: &mut Report) {
    // Long enough (about 110 ms serial in the quick mode) that the pools of
    // the previous contender spinning down do not weigh on the next one.
    let count = if config.quick { 20_000 } else { 40_000 };
    let data = items(count);
    let shared = Arc::new(data.clone());
    let rt = multi_thread();
    let expected = serial(&data);
    let check = |sum: u64, name: &str| assert_eq!(sum, expected, "{name} computed a different sum");
    let timed = |f: &dyn Fn() -> u64, name: &str, iters: u64| -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            check(f(), name);
        }
        start.elapsed()
    };
    let m = compare(
        config,
        vec![
            Contender::new(SERIAL, count as f64, |i| {
                timed(&|| serial(&data), SERIAL, i)
            }),
            Contender::new(RAYON, count as f64, |i| {
                timed(
                    &|| {
                        data.par_iter()
                            .map(|&s| work(s, s))
                            .reduce(|| 0, u64::wrapping_add)
                    },
                    RAYON,
                    i,
                )
            }),
            Contender::new(RAYON_SPAWN, count as f64, |i| {
                timed(&|| rayon_spawn_per_item(&data), RAYON_SPAWN, i)
            }),
            Contender::new(THREAD_SCOPE, count as f64, |i| {
                timed(&|| thread_scope(&data), THREAD_SCOPE, i)
            }),
            Contender::new(JOIN_SET, count as f64, |i| {
                timed(&|| join_set(&rt, &shared), JOIN_SET, i)
            }),
            Contender::new(JOIN_SET_PER_ITEM, count as f64, |i| {
                timed(&|| join_set_per_item(&rt, &shared), JOIN_SET_PER_ITEM, i)
            }),
            Contender::new(PAR_SCOPE, count as f64, |i| {
                timed(&|| par_scope(&data, 1), PAR_SCOPE, i)
            }),
            Contender::new(PAR_SCOPE_CHUNKS, count as f64, |i| {
                timed(&|| par_scope(&data, 64), PAR_SCOPE_CHUNKS, i)
            }),
        ],
    );
    let workload = format!("4 parallel CPU items 1-10us x{count}");
    report.measured(&workload, "ns/item", &m);
    rows(report, &workload, &m);
}

/// Every child borrows its chunk of `data`; the scope future is driven by a
/// plain `block_on`, whose thread takes part in the polls.
fn par_scope(data: &[u32], chunk: usize) -> u64 {
    futures::executor::block_on(taskscope::par_scope(|s| async move {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|c| s.spawn(async move { serial(c) }))
            .collect();
        let mut sum = 0_u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.await);
        }
        sum
    }))
}

fn join_set(rt: &tokio::runtime::Runtime, data: &Arc<Vec<u32>>) -> u64 {
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for start in (0..data.len()).step_by(64) {
            let data = data.clone();
            set.spawn(async move { serial(&data[start..(start + 64).min(data.len())]) });
        }
        sum_of(set).await
    })
}

/// What a task per item costs where spawning demands `'static`: the
/// spawning loop runs on a worker (spawned, not `block_on`'s own thread), so
/// the children go to that worker's local queue and the other worker steals
/// them, tokio's fastest path.
fn join_set_per_item(rt: &tokio::runtime::Runtime, data: &Arc<Vec<u32>>) -> u64 {
    let data = data.clone();
    let driver = rt.spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        for index in 0..data.len() {
            let data = data.clone();
            set.spawn(async move { work(data[index], data[index]) });
        }
        sum_of(set).await
    });
    rt.block_on(driver).expect("no panic")
}

/// Joins every task of `set` and sums their outputs.
async fn sum_of(mut set: tokio::task::JoinSet<u64>) -> u64 {
    let mut sum = 0_u64;
    while let Some(part) = set.join_next().await {
        sum = sum.wrapping_add(part.expect("no panic"));
    }
    sum
}

fn rows(report: &mut Report, workload: &str, m: &[Measured]) {
    let serial = by_name(m, SERIAL);
    for name in [
        RAYON,
        RAYON_SPAWN,
        THREAD_SCOPE,
        JOIN_SET,
        JOIN_SET_PER_ITEM,
        PAR_SCOPE,
        PAR_SCOPE_CHUNKS,
    ] {
        report.detail(
            workload,
            &format!("{name}: speed-up over serial"),
            ratio(serial, by_name(m, name)),
            "x",
        );
    }
    let rayon = ratio(serial, by_name(m, RAYON));
    let ours = by_name(m, PAR_SCOPE);
    report.rows.push(Row {
        workload: format!("{workload}: par_scope speed-up over serial"),
        ours: Some(format!("{:.2}x", ratio(serial, ours))),
        peer: format!("rayon {rayon:.2}x"),
        checked: Some(ratio(serial, ours)),
        ratio_kind: "serial/ours",
        target: ">= 1.85x on 2 cores".into(),
        goal: Goal::AtLeast(1.85),
    });
    report.rows.push(Row {
        workload: format!("{workload}: par_scope time vs rayon"),
        ours: Some(format!("{:.0} ns/item", ours.median_ns)),
        peer: format!("rayon {:.0} ns/item", by_name(m, RAYON).median_ns),
        checked: Some(ratio(ours, by_name(m, RAYON))),
        ratio_kind: "ours/peer",
        target: "within 5% of rayon (<= 1.05x)".into(),
        goal: Goal::AtMost(1.05),
    });
}
