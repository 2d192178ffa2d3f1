//! Workload 5: what the parallel scope costs where nothing runs in parallel:
//! children that only wait on I/O-like readiness, so each poll is short and
//! there is nothing to fan out.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::measure::{Config, Contender, by_name, compare, ratio};
use crate::report::{Goal, Report, Row};
use crate::util::{YieldOnce, check_sum, current_thread};

const CHILDREN: usize = 1_000;
const WAITS: usize = 3;
const SCOPE: &str = "taskscope scope";
const PAR_SCOPE: &str = "taskscope par_scope";

/// A child that waits three times for readiness and computes nothing.
async fn io_child(x: &u64) -> u64 {
    for _ in 0..WAITS {
        YieldOnce::default().await;
    }
    *x
}

/// The body both scopes run: spawn every child, then join them in order.
async fn io_children<'env>(s: taskscope::Scope<'env>, data: &'env [u64]) -> u64 {
    let handles: Vec<_> = data.iter().map(|x| s.spawn(io_child(x))).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await;
    }
    sum
}

fn scope(rt: &Runtime, data: &[u64], parallel: bool, iters: u64) -> Duration {
    let expected: u64 = data.iter().sum();
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let sum = if parallel {
                taskscope::par_scope(|s| io_children(s, data)).await
            } else {
                taskscope::scope(|s| io_children(s, data)).await
            };
            check_sum(if parallel { "par_scope" } else { "scope" }, sum, expected);
        }
        start.elapsed()
    })
}

/// Measures `par_scope` against `scope` on the same children.
pub fn run(config: &Config, report: &mut Report) {
    let rt = current_thread();
    let data: Vec<u64> = (0..CHILDREN as u64).collect();
    // A target within 10% needs more than the usual rounds to be told
    // apart from noise, and these rounds are cheap (a few ms each).
    let rounds = Config {
        rounds: config.rounds * 4,
        ..config.clone()
    };
    let m = compare(
        &rounds,
        vec![
            Contender::new(SCOPE, CHILDREN as f64, |i| scope(&rt, &data, false, i)),
            Contender::new(PAR_SCOPE, CHILDREN as f64, |i| scope(&rt, &data, true, i)),
        ],
    );
    let workload = format!("5 I/O-only children x{CHILDREN}, {WAITS} waits each");
    report.measured(&workload, "ns/child", &m);
    report.rows.push(Row {
        workload: format!("{workload}: par_scope / scope"),
        ours: Some(format!("{:.0} ns/child", by_name(&m, PAR_SCOPE).median_ns)),
        peer: format!("scope {:.0} ns/child", by_name(&m, SCOPE).median_ns),
        checked: Some(ratio(by_name(&m, PAR_SCOPE), by_name(&m, SCOPE))),
        ratio_kind: "ours/peer",
        target: "<= 1.10x scope".into(),
        goal: Goal::AtMost(1.10),
    });
}
