//! Workload 5: what the parallel scope costs where nothing runs in parallel:
//! children that only wait on I/O-like readiness, so each poll is short and
//! there is nothing to fan out.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::measure::{Config, Contender, by_name, compare};
use crate::report::{Goal, Report, Row};
use crate::util::{YieldOnce, current_thread};

const CHILDREN: usize = 1_000;
const WAITS: usize = 3;
const SCOPE: &str = "taskscope scope";

/// A child that waits three times for readiness and computes nothing.
async fn io_child(x: &u64) -> u64 {
    for _ in 0..WAITS {
        YieldOnce::default().await;
    }
    *x
}

fn scope(rt: &Runtime, data: &[u64], iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let sum = taskscope::scope(|s| async move {
                let handles: Vec<_> = data.iter().map(|x| s.spawn(io_child(x))).collect();
                let mut sum = 0;
                for handle in handles {
                    sum += handle.await;
                }
                sum
            })
            .await;
            black_box(sum);
        }
        start.elapsed()
    })
}

/// Measures `scope`, and `par_scope` once it exists on `main`.
pub fn run(config: &Config, report: &mut Report) {
    let rt = current_thread();
    let data: Vec<u64> = (0..CHILDREN as u64).collect();
    let m = compare(
        config,
        vec![Contender::new(SCOPE, CHILDREN as f64, |i| {
            scope(&rt, &data, i)
        })],
    );
    let workload = format!("5 I/O-only children x{CHILDREN}, {WAITS} waits each");
    report.measured(&workload, "ns/child", &m);
    report.rows.push(Row {
        workload: format!("{workload}: par_scope / scope"),
        ours: None,
        peer: format!("scope {:.0} ns/child", by_name(&m, SCOPE).median_ns),
        checked: None,
        ratio_kind: "ours/peer",
        target: "<= 1.10x scope".into(),
        goal: Goal::AtMost(1.10),
    });
}
