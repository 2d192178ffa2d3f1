//! Workload 2: cancellation trees (depth x width) with a task waiting on
//! every node.
//!
//! Models a server's shutdown tree: one token per connection, request and
//! sub-request, everybody parked on `cancelled()`. Four costs: building the
//! tree (`child()`), polling the flag (`is_cancelled()`, which hot loops call
//! per item), cancelling the root (per node, wakes included), and the time
//! until the last waiting task on a multi-thread runtime has seen it.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::measure::{Config, Contender, by_name, compare, percentile, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::{CountingWaker, multi_thread};

const OURS: &str = "taskscope CancelToken";
const TOKIO_UTIL: &str = "tokio-util CancellationToken";

/// What the workload needs of a token, implemented for ours and tokio-util's.
trait Token: Clone + Send + Sync + 'static {
    type Waiting: Future + Send + 'static;
    fn root() -> Self;
    fn child(&self) -> Self;
    fn cancel(&self);
    fn is_cancelled(&self) -> bool;
    fn waiting(&self) -> Self::Waiting;
}

impl Token for taskscope::CancelToken {
    type Waiting = taskscope::WhenCancelled;
    fn root() -> Self {
        Self::new()
    }
    fn child(&self) -> Self {
        self.child()
    }
    fn cancel(&self) {
        self.cancel();
    }
    fn is_cancelled(&self) -> bool {
        self.is_cancelled()
    }
    fn waiting(&self) -> Self::Waiting {
        self.cancelled()
    }
}

impl Token for CancellationToken {
    type Waiting = WaitForCancellationFutureOwned;
    fn root() -> Self {
        Self::new()
    }
    fn child(&self) -> Self {
        self.child_token()
    }
    fn cancel(&self) {
        self.cancel();
    }
    fn is_cancelled(&self) -> bool {
        self.is_cancelled()
    }
    fn waiting(&self) -> Self::Waiting {
        self.clone().cancelled_owned()
    }
}

/// (depth, width): every node of level d has `width` children.
const SHAPES: [(usize, usize); 4] = [(1, 10_000), (3, 20), (10, 2), (100, 1)];

fn node_count(depth: usize, width: usize) -> usize {
    (1..=depth as u32).map(|d| width.pow(d)).sum()
}

/// The root and every other node, level by level; returns the time spent
/// in `child()` (the pushes go to a vector allocated beforehand).
fn build<T: Token>(depth: usize, width: usize) -> (T, Vec<T>, Duration) {
    let root = T::root();
    let mut nodes = Vec::with_capacity(node_count(depth, width));
    let start = Instant::now();
    let mut level = 0..0;
    for d in 0..depth {
        let next_start = nodes.len();
        if d == 0 {
            for _ in 0..width {
                nodes.push(root.child());
            }
        } else {
            for parent in level.clone() {
                for _ in 0..width {
                    let child = nodes[parent].child();
                    nodes.push(child);
                }
            }
        }
        level = next_start..nodes.len();
    }
    (root, nodes, start.elapsed())
}

fn child_cost<T: Token>(depth: usize, width: usize, iters: u64) -> Duration {
    (0..iters).map(|_| build::<T>(depth, width).2).sum()
}

fn is_cancelled_cost<T: Token>(leaf: &T, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(black_box(leaf).is_cancelled());
    }
    start.elapsed()
}

/// The root's `cancel()` with one registered waiter on every node; the
/// waiters' waker only counts, so the figure is the token's own work.
fn cancel_cost<T: Token>(depth: usize, width: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (root, nodes, _) = build::<T>(depth, width);
        let waker = Arc::new(CountingWaker::default());
        let waker_ref = Waker::from(waker.clone());
        let mut cx = Context::from_waker(&waker_ref);
        let mut waiting: Vec<_> = nodes.iter().map(|n| Box::pin(n.waiting())).collect();
        for w in &mut waiting {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        let start = Instant::now();
        root.cancel();
        total += start.elapsed();
        assert_eq!(waker.wakes.load(Ordering::Relaxed), nodes.len() as u64);
        assert!(nodes.iter().all(Token::is_cancelled));
    }
    total
}

/// From the root's `cancel()` to the moment the last of the tasks waiting on
/// the nodes ran again, on the multi-thread runtime.
fn latency<T: Token>(rt: &Runtime, depth: usize, width: usize) -> Duration {
    let (root, nodes, _) = build::<T>(depth, width);
    rt.block_on(async {
        let n = nodes.len();
        let registered = Arc::new(AtomicUsize::new(0));
        let all_registered = Arc::new(tokio::sync::Notify::new());
        let last_seen = Arc::new(AtomicU64::new(0));
        let base = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for node in &nodes {
            let (waiting, registered) = (node.waiting(), registered.clone());
            let (all_registered, last_seen) = (all_registered.clone(), last_seen.clone());
            tasks.spawn(async move {
                let mut waiting = pin!(waiting);
                // Registered before counting itself, so that the cancel
                // below finds a waiter on every node.
                let early = futures::poll!(waiting.as_mut()).is_ready();
                // AcqRel: the last one to count notifies, after everybody's registration.
                if registered.fetch_add(1, Ordering::AcqRel) + 1 == n {
                    all_registered.notify_one();
                }
                if !early {
                    waiting.await;
                }
                // Relaxed: read after every task was joined.
                last_seen.fetch_max(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
            });
        }
        all_registered.notified().await;
        let cancelled_at = base.elapsed();
        root.cancel();
        while tasks.join_next().await.is_some() {}
        Duration::from_nanos(last_seen.load(Ordering::Relaxed)).saturating_sub(cancelled_at)
    })
}

/// Measures every shape and adds the rows of workload 2.
pub fn run(config: &Config, report: &mut Report) {
    let rt_mt = multi_thread();
    for (depth, width) in SHAPES {
        let nodes = node_count(depth, width) as f64;
        let shape = format!("2 cancel tree {depth}x{width} ({nodes} nodes)");

        let w = format!("{shape} child()");
        let m = compare(
            config,
            vec![
                Contender::new(OURS, nodes, |i| {
                    child_cost::<taskscope::CancelToken>(depth, width, i)
                }),
                Contender::new(TOKIO_UTIL, nodes, |i| {
                    child_cost::<CancellationToken>(depth, width, i)
                }),
            ],
        );
        report.measured(&w, "ns/node", &m);

        let (_r1, ours_nodes, _) = build::<taskscope::CancelToken>(depth, width);
        let (_r2, peer_nodes, _) = build::<CancellationToken>(depth, width);
        let (ours_leaf, peer_leaf) = (ours_nodes.last().unwrap(), peer_nodes.last().unwrap());
        let w = format!("{shape} is_cancelled() on a leaf");
        let m = compare(
            config,
            vec![
                Contender::new(OURS, 1.0, |i| is_cancelled_cost(ours_leaf, i)),
                Contender::new(TOKIO_UTIL, 1.0, |i| is_cancelled_cost(peer_leaf, i)),
            ],
        );
        report.measured(&w, "ns/call", &m);
        push_row(
            report,
            &w,
            &m,
            "ns/call",
            true,
            ">= 4x cheaper than tokio-util",
            Goal::AtLeast(4.0),
        );

        let w = format!("{shape} cancel() with a waiter per node");
        let m = compare(
            config,
            vec![
                Contender::new(OURS, nodes, |i| {
                    cancel_cost::<taskscope::CancelToken>(depth, width, i)
                }),
                Contender::new(TOKIO_UTIL, nodes, |i| {
                    cancel_cost::<CancellationToken>(depth, width, i)
                }),
            ],
        );
        report.measured(&w, "ns/node", &m);
        push_row(
            report,
            &w,
            &m,
            "ns/node",
            false,
            "no slower than tokio-util (<= 1.0x)",
            Goal::AtMost(1.0),
        );

        latencies(config, report, &rt_mt, &shape, depth, width);
    }
}

/// `peer_over_ours`: whether the ratio is peer/ours (a speed-up) or ours/peer.
fn push_row(
    report: &mut Report,
    workload: &str,
    m: &[crate::measure::Measured],
    unit: &str,
    peer_over_ours: bool,
    target: &str,
    goal: Goal,
) {
    let (ours, peer) = (by_name(m, OURS).median_ns, by_name(m, TOKIO_UTIL).median_ns);
    report.rows.push(Row {
        workload: workload.to_owned(),
        ours: Some(format!("{ours:.2} {unit}")),
        peer: format!("tokio-util {peer:.2} {unit}"),
        checked: Some(if peer_over_ours {
            ratio(by_name(m, TOKIO_UTIL), by_name(m, OURS))
        } else {
            ratio(by_name(m, OURS), by_name(m, TOKIO_UTIL))
        }),
        ratio_kind: if peer_over_ours {
            "peer/ours"
        } else {
            "ours/peer"
        },
        target: target.to_owned(),
        goal,
    });
}

/// p50 and p99 over interleaved samples (with few samples, as in the quick
/// mode, p99 is the slowest sample).
fn latencies(
    config: &Config,
    report: &mut Report,
    rt: &Runtime,
    shape: &str,
    depth: usize,
    width: usize,
) {
    let samples = if config.quick { 15 } else { 101 };
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    latency::<taskscope::CancelToken>(rt, depth, width); // warm the runtime's threads
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    for i in 0..samples {
        // Each goes first in every other sample, so neither always runs on
        // the caches and clock the other just warmed.
        if i % 2 == 0 {
            ours.push(micros(latency::<taskscope::CancelToken>(rt, depth, width)));
            peer.push(micros(latency::<CancellationToken>(rt, depth, width)));
        } else {
            peer.push(micros(latency::<CancellationToken>(rt, depth, width)));
            ours.push(micros(latency::<taskscope::CancelToken>(rt, depth, width)));
        }
    }
    let w = format!("{shape} latency to the last waiter (multi-thread)");
    for (name, s) in [(OURS, &ours), (TOKIO_UTIL, &peer)] {
        report.detail(&w, &format!("{name} p50"), percentile(s, 50.0), "us");
        report.detail(&w, &format!("{name} p99"), percentile(s, 99.0), "us");
    }
}
