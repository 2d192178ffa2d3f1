//! Workload 6: what per-branch wakers buy a fixed-arity `join!`. One busy
//! branch wakes itself many times while seven others wait for it to finish:
//! `futures::join!` polls all eight on every wake, `taskscope::join!` polls
//! the one that woke (its branch wakers need no allocation), and
//! futures-concurrency's tuple `join` polls the one that woke with wakers it
//! allocates. A second shape, two branches that both wake on every poll,
//! shows what the wakers cost where they buy nothing.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::hint::black_box;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures_concurrency::future::Join as _;

use crate::measure::{Config, Contender, by_name, compare, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::YieldOnce;

const WAKES: usize = 1_000;
const WAITERS: usize = 7;
const TASKSCOPE: &str = "taskscope join!";
const FUTURES: &str = "futures::join!";
const CONCURRENCY: &str = "futures-concurrency join";

/// What the waiting branches wait for: the busy branch to finish.
#[derive(Default)]
struct Finish {
    done: Cell<bool>,
    wakers: RefCell<[Option<Waker>; WAITERS]>,
}

impl Finish {
    fn wait(&self, index: usize) -> impl Future<Output = ()> + '_ {
        poll_fn(move |cx| {
            if self.done.get() {
                return Poll::Ready(());
            }
            self.wakers.borrow_mut()[index] = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    fn set(&self) {
        self.done.set(true);
        for waker in self.wakers.borrow_mut().iter_mut().filter_map(Option::take) {
            waker.wake();
        }
    }
}

async fn busy(wakes: usize, finish: Option<&Finish>) {
    for _ in 0..wakes {
        YieldOnce::default().await;
    }
    if let Some(finish) = finish {
        finish.set();
    }
}

/// Runs `join` of one busy branch and seven waiters `iters` times.
fn one_busy_seven_waiting(which: &str, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let f = Finish::default();
        let b = busy(WAKES, Some(&f));
        let w = |i| f.wait(i);
        block_on(async {
            match which {
                TASKSCOPE => {
                    black_box(taskscope::join!(b, w(0), w(1), w(2), w(3), w(4), w(5), w(6)).await);
                }
                FUTURES => {
                    black_box(futures::join!(b, w(0), w(1), w(2), w(3), w(4), w(5), w(6)));
                }
                _ => {
                    black_box((b, w(0), w(1), w(2), w(3), w(4), w(5), w(6)).join().await);
                }
            }
        });
    }
    start.elapsed()
}

/// Runs `join` of two branches that both wake on every poll.
fn two_busy(which: &str, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let (a, b) = (busy(WAKES, None), busy(WAKES, None));
        block_on(async {
            match which {
                TASKSCOPE => black_box(taskscope::join(a, b).await),
                FUTURES => black_box(futures::join!(a, b)),
                _ => black_box((a, b).join().await),
            }
        });
    }
    start.elapsed()
}

fn contenders(shape: fn(&str, u64) -> Duration) -> Vec<Contender<'static>> {
    [TASKSCOPE, FUTURES, CONCURRENCY]
        .into_iter()
        .map(|name| Contender::new(name, WAKES as f64, move |iters| shape(name, iters)))
        .collect()
}

/// Measures both shapes.
pub fn run(config: &Config, report: &mut Report) {
    let one_busy = compare(config, contenders(one_busy_seven_waiting));
    let workload = format!("6 join of 1 busy branch ({WAKES} wakes) + {WAITERS} waiting");
    report.measured(&workload, "ns/wake", &one_busy);
    report.rows.push(Row {
        workload: format!("{workload}: taskscope / futures::join!"),
        ours: Some(format!(
            "{:.0} ns/wake",
            by_name(&one_busy, TASKSCOPE).median_ns
        )),
        peer: format!("{:.0} ns/wake", by_name(&one_busy, FUTURES).median_ns),
        checked: Some(ratio(
            by_name(&one_busy, TASKSCOPE),
            by_name(&one_busy, FUTURES),
        )),
        ratio_kind: "ours/peer",
        target: "< 1.00x futures::join! (per-branch wakers pay off)".into(),
        goal: Goal::AtMost(1.0),
    });

    let both_busy = compare(config, contenders(two_busy));
    let workload = format!("6 join of 2 branches, both waking ({WAKES} wakes each)");
    report.measured(&workload, "ns/wake", &both_busy);
    report.rows.push(Row {
        workload: format!("{workload}: taskscope / futures-concurrency"),
        ours: Some(format!(
            "{:.0} ns/wake",
            by_name(&both_busy, TASKSCOPE).median_ns
        )),
        peer: format!("{:.0} ns/wake", by_name(&both_busy, CONCURRENCY).median_ns),
        checked: Some(ratio(
            by_name(&both_busy, TASKSCOPE),
            by_name(&both_busy, CONCURRENCY),
        )),
        ratio_kind: "ours/peer",
        target: "<= 1.00x futures-concurrency (per-branch wakers, no allocation)".into(),
        goal: Goal::AtMost(1.0),
    });
}
