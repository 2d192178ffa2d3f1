//! Workload 1: spawn N children that borrow their input, then join them all.
//!
//! Models the fan-out at the heart of every scope: per-child overhead of
//! spawning, waking and collecting outputs, with children that are ready at
//! once (pure overhead) or await once (one trip through the wake path).
//! Everything runs inside one tokio current-thread `block_on`, so the
//! executor around the contenders is the same, except the rows marked
//! multi-thread (tokio's spawns for reference, and async-scoped, whose safe
//! entry needs that runtime); the `'static` peers get a copy of the input
//! instead of a borrow.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tokio::runtime::Runtime;

use crate::alloc::count_allocs;
use crate::measure::{Config, Contender, Measured, by_name, compare, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::{YieldOnce, check_sum, current_thread, multi_thread};

const FLOOR: &str = "floor: a Vec of boxed futures, polled in turn";
const SCOPE: &str = "taskscope scope";
const LOCAL_SCOPE: &str = "taskscope local_scope";
const FUTURE_GROUP: &str = "futures-concurrency FutureGroup";
const FUTURES_UNORDERED: &str = "futures FuturesUnordered";
const FUTURES_BUFFERED: &str = "futures-buffered FuturesUnordered";
const TOKIO_SPAWN: &str = "tokio::spawn (current-thread)";
const JOIN_SET: &str = "tokio JoinSet (current-thread)";
const TOKIO_SPAWN_MT: &str = "tokio::spawn (multi-thread)";
const JOIN_SET_MT: &str = "tokio JoinSet (multi-thread)";
const MORO: &str = "moro-local async_scope";
const ASYNC_SCOPED: &str = "async-scoped scope_and_block (multi-thread)";

async fn child(x: &u64, yield_once: bool) -> u64 {
    if yield_once {
        YieldOnce::default().await;
    }
    *x
}

async fn child_owned(x: u64, yield_once: bool) -> u64 {
    child(&x, yield_once).await
}

/// Measures every contender for N in {10, 1,000, 100,000}, ready and
/// yield-once, and adds the rows of workload 1.
pub fn run(config: &Config, report: &mut Report) {
    let rt = current_thread();
    let rt_mt = multi_thread();
    if config.quick {
        report.notes.push(format!(
            "quick mode: {ASYNC_SCOPED} is not measured at N=100000 (seconds per sample)"
        ));
    }
    for n in [10_usize, 1_000, 100_000] {
        let data: Vec<u64> = (0..n as u64).collect();
        for yield_once in [false, true] {
            let kind = if yield_once { "yield-once" } else { "ready" };
            let workload = format!("1 spawn+join N={n} {kind}");
            let measured = measure(config, &rt, &rt_mt, &data, yield_once);
            report.measured(&workload, "ns/task", &measured);
            rows(report, &workload, &measured);
            if !yield_once {
                allocations(report, &workload, &rt, &data);
            }
        }
    }
}

fn measure(config: &Config, rt: &Runtime, rt_mt: &Runtime, data: &[u64], y: bool) -> Vec<Measured> {
    let n = data.len() as f64;
    let mut contenders = vec![
        Contender::new(FLOOR, n, |iters| floor(rt, data, y, iters)),
        Contender::new(SCOPE, n, |iters| taskscope_scope(rt, data, y, iters)),
        Contender::new(LOCAL_SCOPE, n, |iters| {
            taskscope_local_scope(rt, data, y, iters)
        }),
        Contender::new(FUTURES_UNORDERED, n, |iters| {
            futures_unordered(rt, data, y, iters)
        }),
        Contender::new(FUTURES_BUFFERED, n, |iters| {
            futures_buffered(rt, data, y, iters)
        }),
        Contender::new(FUTURE_GROUP, n, |iters| future_group(rt, data, y, iters)),
        Contender::new(TOKIO_SPAWN, n, |iters| tokio_spawn(rt, data, y, iters)),
        Contender::new(JOIN_SET, n, |iters| join_set(rt, data, y, iters)),
        Contender::new(MORO, n, |iters| moro(rt, data, y, iters)),
        Contender::new(TOKIO_SPAWN_MT, n, |iters| {
            tokio_spawn(rt_mt, data, y, iters)
        }),
        Contender::new(JOIN_SET_MT, n, |iters| join_set(rt_mt, data, y, iters)),
    ];
    if data.len() < 100_000 {
        contenders.push(Contender::new(ASYNC_SCOPED, n, |iters| {
            async_scoped(rt_mt, data, y, iters)
        }));
        return compare(config, contenders);
    }
    let mut measured = compare(config, contenders);
    // async-scoped grows worse than linearly (about 60 µs per task at
    // N = 100,000, seconds per sample): the quick mode skips it, the full
    // mode gives it three rounds of its own (it has no target to pair with).
    if !config.quick {
        let rounds = Config {
            rounds: 3,
            ..config.clone()
        };
        let slow = Contender::fixed(ASYNC_SCOPED, n, 1, |_| async_scoped(rt_mt, data, y, 1));
        measured.extend(compare(&rounds, vec![slow]));
    }
    measured
}

fn rows(report: &mut Report, workload: &str, m: &[Measured]) {
    let ours = by_name(m, SCOPE).median_ns;
    let fig = |v: f64| format!("{v:.1} ns/task");
    let mut row = |peer: &str, checked: f64, kind, target: &str, goal| {
        report.rows.push(Row {
            workload: workload.to_owned(),
            ours: Some(fig(ours)),
            peer: format!("{peer} {}", fig(by_name(m, peer).median_ns)),
            checked: Some(checked),
            ratio_kind: kind,
            target: target.to_owned(),
            goal,
        });
    };
    let us = by_name(m, SCOPE);
    let fu = ratio(us, by_name(m, FUTURES_UNORDERED));
    row(
        FUTURES_UNORDERED,
        fu,
        "ours/peer",
        "<= 1.0x FuturesUnordered",
        Goal::AtMost(1.0),
    );
    let moro = ratio(by_name(m, MORO), us);
    row(
        MORO,
        moro,
        "peer/ours",
        ">= 8x faster than moro",
        Goal::AtLeast(8.0),
    );
    let js = ratio(by_name(m, JOIN_SET), us);
    row(
        JOIN_SET,
        js,
        "peer/ours",
        ">= 5x faster than JoinSet",
        Goal::AtLeast(5.0),
    );
}

/// Allocations per task, counted on one warm iteration of each contender
/// that runs on the current thread (a multi-thread runtime's workers would
/// add their own allocations to the global count).
fn allocations(report: &mut Report, workload: &str, rt: &Runtime, data: &[u64]) {
    type Run = fn(&Runtime, &[u64], bool, u64) -> Duration;
    let runs: [(&str, Run); 9] = [
        (SCOPE, taskscope_scope),
        (FUTURES_UNORDERED, futures_unordered),
        (LOCAL_SCOPE, taskscope_local_scope),
        (FUTURES_BUFFERED, futures_buffered),
        (FUTURE_GROUP, future_group),
        (TOKIO_SPAWN, tokio_spawn),
        (JOIN_SET, join_set),
        (MORO, moro),
        (FLOOR, floor),
    ];
    let mut per_task = Vec::new();
    for (name, run) in runs {
        run(rt, data, false, 1); // warm: thread-locals and runtime queues are allocated once
        let ((), allocs) = count_allocs(|| {
            run(rt, data, false, 1);
        });
        let Some(allocs) = allocs else {
            report
                .notes
                .push("allocations not counted: CountingAlloc is not installed".into());
            return;
        };
        let v = allocs as f64 / data.len() as f64;
        report.detail(workload, name, v, "allocs/task");
        per_task.push((name, v));
    }
    let ours = per_task[0].1;
    report.rows.push(Row {
        workload: workload.to_owned(),
        ours: Some(format!("{ours:.2} allocs/task")),
        peer: format!("{FUTURES_UNORDERED} {:.2} allocs/task", per_task[1].1),
        checked: Some(ours),
        ratio_kind: "allocs/task",
        target: "<= 1 allocation per task".into(),
        goal: Goal::AtMost(1.0),
    });
}

type BoxedChild<'a> = Pin<Box<dyn Future<Output = u64> + Send + 'a>>;

/// What any fan-out of boxed children must at least pay: one allocation,
/// one poll (two with a wake in between) and one free per child, with no
/// wakers of its own, no ready queue and no join handles.
fn floor(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let mut children: Vec<BoxedChild<'_>> = data
                .iter()
                .map(|x| Box::pin(child(x, y)) as BoxedChild<'_>)
                .collect();
            let mut sum = 0;
            poll_fn(|cx| {
                children.retain_mut(|c| match c.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        sum += v;
                        false
                    }
                    Poll::Pending => true,
                });
                if children.is_empty() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            check_sum("floor", sum, expected);
        }
        start.elapsed()
    })
}

fn taskscope_scope(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let sum = taskscope::scope(|s| async move {
                let handles: Vec<_> = data.iter().map(|x| s.spawn(child(x, y))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await;
                }
                sum
            })
            .await;
            check_sum("taskscope_scope", sum, expected);
        }
        start.elapsed()
    })
}

fn taskscope_local_scope(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let sum = taskscope::local_scope(|s| async move {
                let handles: Vec<_> = data.iter().map(|x| s.spawn(child(x, y))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await;
                }
                sum
            })
            .await;
            check_sum("taskscope_local_scope", sum, expected);
        }
        start.elapsed()
    })
}

fn futures_unordered(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let mut set = futures::stream::FuturesUnordered::new();
            for x in data {
                set.push(child(x, y));
            }
            let mut sum = 0;
            while let Some(v) = set.next().await {
                sum += v;
            }
            check_sum("futures_unordered", sum, expected);
        }
        start.elapsed()
    })
}

fn futures_buffered(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let mut set = futures_buffered::FuturesUnordered::new();
            for x in data {
                set.push(child(x, y));
            }
            let mut sum = 0;
            while let Some(v) = set.next().await {
                sum += v;
            }
            check_sum("futures_buffered", sum, expected);
        }
        start.elapsed()
    })
}

fn future_group(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let mut group = futures_concurrency::future::FutureGroup::new();
            for x in data {
                group.insert(child(x, y));
            }
            let mut group = pin!(group);
            let mut sum = 0;
            while let Some(v) = group.next().await {
                sum += v;
            }
            check_sum("future_group", sum, expected);
        }
        start.elapsed()
    })
}

fn tokio_spawn(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let handles: Vec<_> = data
                .iter()
                .map(|&x| tokio::spawn(child_owned(x, y)))
                .collect();
            let mut sum = 0;
            for handle in handles {
                sum += handle.await.expect("the task does not panic");
            }
            check_sum("tokio_spawn", sum, expected);
        }
        start.elapsed()
    })
}

fn join_set(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let mut set = tokio::task::JoinSet::new();
            for &x in data {
                set.spawn(child_owned(x, y));
            }
            let mut sum = 0;
            while let Some(v) = set.join_next().await {
                sum += v.expect("the task does not panic");
            }
            check_sum("join_set", sum, expected);
        }
        start.elapsed()
    })
}

fn moro(rt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let expected: u64 = data.iter().sum();
        let start = Instant::now();
        for _ in 0..iters {
            let sum = moro_local::async_scope!(|scope| {
                let handles: Vec<_> = data.iter().map(|x| scope.spawn(child(x, y))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await;
                }
                sum
            })
            .await;
            check_sum("moro", sum, expected);
        }
        start.elapsed()
    })
}

/// async-scoped's safe entry blocks the calling thread on a fresh
/// current-thread runtime while the children run on the multi-thread one;
/// that is its design (its async entry is `unsafe`), so it is measured so.
fn async_scoped(rt_mt: &Runtime, data: &[u64], y: bool, iters: u64) -> Duration {
    let _context = rt_mt.enter();
    let expected: u64 = data.iter().sum();
    let start = Instant::now();
    for _ in 0..iters {
        let ((), outputs) = async_scoped::TokioScope::scope_and_block(|s| {
            for x in data {
                s.spawn(child(x, y));
            }
        });
        let sum = outputs.into_iter().map(|r| r.expect("no panic")).sum();
        check_sum("async_scoped", sum, expected);
    }
    start.elapsed()
}
