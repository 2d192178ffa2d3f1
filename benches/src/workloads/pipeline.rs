//! Workload 3: the nested-await pipeline of the `buffered_in` issue.
//!
//! A stream of items, each made by a producer that waits once on I/O (a
//! 1 ms timer: a query) and then hops a few times (channel sends, a pooled
//! connection handed back: ready at once, but each one needs a poll), with a
//! window of 5, and a slow consumer that awaits 1 ms of its own per item (a
//! write). A window whose futures are polled only from the consumer's
//! `next()` makes each hop wait for the consumer's write to finish: the
//! producers stall and the pipeline falls behind its floor, the consumer
//! alone. The floor is measured in the same run (same timer granularity).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures_buffered::BufferedStreamExt as _;
use taskscope::ScopedStreamExt as _;
use tokio::runtime::Runtime;

use crate::measure::{Config, Contender, Measured, by_name, compare, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::{Hop, current_thread};

const WINDOW: usize = 5;
const HOPS: usize = 5;
const IO: Duration = Duration::from_millis(1);

const FLOOR: &str = "floor: the consumer alone";
const BUFFERED_IN: &str = "taskscope buffered_in(5)";
const BUFFER_UNORDERED_IN: &str = "taskscope buffer_unordered_in(5)";
const CONTENDERS: [&str; 6] = [
    BUFFERED_IN,
    "futures buffered(5)",
    "futures buffer_unordered(5)",
    "futures-buffered buffered_ordered(5)",
    "tokio::spawn window of 5",
    BUFFER_UNORDERED_IN,
];

async fn produce(item: u64, stall_ns: &AtomicU64) -> u64 {
    tokio::time::sleep(IO).await;
    for _ in 0..HOPS {
        Hop::new(stall_ns).await;
    }
    item
}

async fn consume(item: u64, sum: &mut u64) {
    tokio::time::sleep(IO).await;
    *sum += item;
}

/// One whole pipeline run; returns its wall time, and adds the producers'
/// stall to `stall_ns`.
fn run_once(rt: &Runtime, which: &str, items: u64, stall_ns: &Arc<AtomicU64>) -> Duration {
    rt.block_on(async {
        let stall = &**stall_ns;
        let mut sum = 0;
        let start = Instant::now();
        match which {
            FLOOR => {
                for item in 0..items {
                    consume(item, &mut sum).await;
                }
            }
            BUFFERED_IN => {
                // The producers are children of the scope: they run while the
                // body awaits the consumer's write, and they borrow `stall`.
                sum = taskscope::scope(|s| async move {
                    let mut sum = 0;
                    let mut st = futures::stream::iter(0..items)
                        .map(|i| produce(i, stall))
                        .buffered_in(WINDOW, &s);
                    while let Some(item) = st.next().await {
                        consume(item, &mut sum).await;
                    }
                    sum
                })
                .await;
            }
            BUFFER_UNORDERED_IN => {
                sum = taskscope::scope(|s| async move {
                    let mut sum = 0;
                    let mut st = futures::stream::iter(0..items)
                        .map(|i| produce(i, stall))
                        .buffer_unordered_in(WINDOW, &s);
                    while let Some(item) = st.next().await {
                        consume(item, &mut sum).await;
                    }
                    sum
                })
                .await;
            }
            "futures buffered(5)" => {
                let mut s = futures::stream::iter(0..items)
                    .map(|i| produce(i, stall))
                    .buffered(WINDOW);
                while let Some(item) = s.next().await {
                    consume(item, &mut sum).await;
                }
            }
            "futures buffer_unordered(5)" => {
                let mut s = futures::stream::iter(0..items)
                    .map(|i| produce(i, stall))
                    .buffer_unordered(WINDOW);
                while let Some(item) = s.next().await {
                    consume(item, &mut sum).await;
                }
            }
            "futures-buffered buffered_ordered(5)" => {
                let mut s = futures::stream::iter(0..items)
                    .map(|i| produce(i, stall))
                    .buffered_ordered(WINDOW);
                while let Some(item) = s.next().await {
                    consume(item, &mut sum).await;
                }
            }
            "tokio::spawn window of 5" => {
                // Spawned producers run while the consumer writes; they need
                // `'static`, hence the `Arc`.
                let mut window = std::collections::VecDeque::new();
                let mut next = 0..items;
                loop {
                    while window.len() < WINDOW
                        && let Some(i) = next.next()
                    {
                        let stall = stall_ns.clone();
                        window.push_back(tokio::spawn(async move { produce(i, &stall).await }));
                    }
                    let Some(head) = window.pop_front() else {
                        break;
                    };
                    consume(head.await.expect("no panic"), &mut sum).await;
                }
            }
            other => unreachable!("no pipeline named {other}"),
        }
        let elapsed = start.elapsed();
        assert_eq!(
            sum,
            items * (items - 1) / 2,
            "{which} lost or repeated items"
        );
        elapsed
    })
}

/// Measures the pipeline and adds the rows of workload 3.
pub fn run(config: &Config, report: &mut Report) {
    let rt = &current_thread();
    // 10,000 items as in the issue; the quick mode keeps the same shape with
    // fewer items, since every item costs at least 1 ms of timer.
    let items: u64 = if config.quick { 300 } else { 10_000 };
    let rounds = Config {
        rounds: 3,
        ..config.clone()
    };
    let workload = format!("3 pipeline {items} items, window {WINDOW}, slow consumer");
    let stalls: Vec<Arc<AtomicU64>> = (0..=CONTENDERS.len()).map(|_| Arc::default()).collect();
    // The runs each contender made: a round spoiled by the host is run
    // again, so the stall is divided by what ran, not by the rounds kept.
    let runs: Vec<AtomicU64> = (0..=CONTENDERS.len()).map(|_| AtomicU64::new(0)).collect();
    let mut contenders = vec![Contender::fixed(FLOOR, items as f64, 1, |_| {
        runs[0].fetch_add(1, Ordering::Relaxed);
        run_once(rt, FLOOR, items, &stalls[0])
    })];
    for (k, name) in CONTENDERS.into_iter().enumerate() {
        let (stall, runs) = (&stalls[k + 1], &runs[k + 1]);
        contenders.push(Contender::fixed(name, items as f64, 1, move |_| {
            runs.fetch_add(1, Ordering::Relaxed);
            run_once(rt, name, items, stall)
        }));
    }
    let m = compare(&rounds, contenders);
    report.measured(&workload, "ns/item", &m);
    for (k, name) in CONTENDERS.into_iter().enumerate() {
        let items_run = (runs[k + 1].load(Ordering::Relaxed) * items).max(1) as f64;
        let stall_us = stalls[k + 1].load(Ordering::Relaxed) as f64 / items_run / 1e3;
        report.detail(
            &workload,
            &format!("{name}: producer stall"),
            stall_us,
            "us/item",
        );
    }
    rows(report, &workload, &m);
}

fn rows(report: &mut Report, workload: &str, m: &[Measured]) {
    let floor = by_name(m, FLOOR).median_ns;
    for name in CONTENDERS {
        let over_floor = ratio(by_name(m, name), by_name(m, FLOOR));
        report.detail(workload, &format!("{name}: wall / floor"), over_floor, "x");
    }
    let ours = ratio(by_name(m, BUFFERED_IN), by_name(m, FLOOR));
    report.rows.push(Row {
        workload: format!("{workload}: buffered_in wall / floor"),
        ours: Some(format!(
            "{:.0} us/item",
            by_name(m, BUFFERED_IN).median_ns / 1e3
        )),
        peer: format!(
            "floor {:.0} us/item; buffered {:.2}x",
            floor / 1e3,
            ratio(by_name(m, CONTENDERS[1]), by_name(m, FLOOR))
        ),
        checked: Some(ours),
        ratio_kind: "ours/floor",
        target: "<= 1.05x the consumer-bound floor".into(),
        goal: Goal::AtMost(1.05),
    });
}
