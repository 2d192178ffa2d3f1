//! Step 3: a deadline cancels a scope mid-run; the children finish the item
//! they are on, write down where they stopped, and nothing is half-written.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use tokio::time::sleep;

use crate::db::Db;
use crate::report::Progress;

/// How one worker ended.
pub(crate) struct WorkerEnd {
    pub(crate) worker: usize,
    pub(crate) items: Vec<i64>,
    pub(crate) done: usize,
    /// Items it began pricing (remote calls made): equal to `done` unless
    /// it dropped one half-way, which voluntary cancellation never does.
    pub(crate) started: usize,
    /// The first item it did not start, if it stopped early.
    pub(crate) next_item: Option<i64>,
    pub(crate) why: String,
    /// Whether it stopped early because the deadline cancelled the scope.
    pub(crate) stopped_by_deadline: bool,
    /// When its last transaction committed, from the start of the scope.
    pub(crate) last_write: Option<Duration>,
}

/// Runs `workers` children over `ids` (one contiguous share each) in a scope
/// that a deadline cancels; returns how each ended and the elapsed time.
pub(crate) async fn run(
    db: &Db,
    ids: &[i64],
    workers: usize,
    deadline: Duration,
    line_latency: Duration,
) -> (Vec<WorkerEnd>, Duration) {
    let invoiced = Cell::new(0_usize);
    let progress = RefCell::new(Progress::new("invoicing", ids.len()));
    let (invoiced, progress) = (&invoiced, &progress);
    let start = Instant::now();
    // The deadline cancels the scope's token (reason: Deadline); the scope
    // still waits for every worker, which stops at its next checkpoint.
    let ends = taskscope::local_scope(|s| async move {
        let share = ids.len().div_ceil(workers);
        let handles: Vec<_> = ids
            .chunks(share)
            .enumerate()
            .map(|(worker, items)| {
                s.spawn(invoice(db, worker, items, line_latency, start, || {
                    invoiced.set(invoiced.get() + 1);
                    progress.borrow_mut().update(invoiced.get());
                }))
            })
            .collect();
        let mut ends = Vec::new();
        for handle in handles {
            ends.push(handle.await);
        }
        ends
    })
    .cancel_when(sleep(deadline))
    .await;
    progress.borrow_mut().finish();
    (ends, start.elapsed())
}

/// One worker: invoices its items one by one and checks for cancellation
/// between items, never inside one.
async fn invoice(
    db: &Db,
    worker: usize,
    items: &[i64],
    line_latency: Duration,
    start: Instant,
    mut on_item: impl FnMut(),
) -> WorkerEnd {
    let mut done = 0;
    let mut started = 0;
    let mut last_write = None;
    for &id in items {
        if let Err(cancelled) = taskscope::checkpoint() {
            let origin = cancelled.reason().origin();
            let why = origin.to_string();
            let stopped_by_deadline = matches!(origin, taskscope::CancelReason::Deadline);
            db.record_stop(worker, Some(id), done, &why)
                .expect("record where the worker stopped");
            return WorkerEnd {
                worker,
                items: items.to_vec(),
                done,
                started,
                next_item: Some(id),
                why,
                stopped_by_deadline,
                last_write,
            };
        }
        // Price each line with a remote call: several awaits per item, the
        // points where a dropped future would lose work half-way.
        let item = db.item(id).expect("select the work item");
        started += 1;
        let mut lines = Vec::new();
        for line in 0..item.quantity {
            sleep(line_latency).await;
            lines.push(item.amount_cents / item.quantity + line);
        }
        // All of the item's writes in one transaction.
        db.write_invoice(worker, id, &lines)
            .expect("write the invoice");
        done += 1;
        last_write = Some(start.elapsed());
        on_item();
    }
    db.record_stop(worker, None, done, "finished its share")
        .expect("record where the worker stopped");
    WorkerEnd {
        worker,
        items: items.to_vec(),
        done,
        started,
        next_item: None,
        why: "finished its share".to_string(),
        stopped_by_deadline: false,
        last_write,
    }
}

/// The fewest pending items that, cut into `workers` contiguous shares as
/// [`run`] cuts them, give every share at least `floor` of remote calls
/// alone (each line's call sleeps `line_latency`, and no sleep ends early):
/// then no worker can finish its share before a deadline of `floor / k`, on
/// any machine. Returns the ids and the smallest share's floor, or `None`
/// if the database holds too few pending items.
pub(crate) fn items_outlasting(
    pending: &[(i64, i64)],
    workers: usize,
    line_latency: Duration,
    floor: Duration,
) -> Option<(Vec<i64>, Duration)> {
    let share_floor = |share: &[(i64, i64)]| {
        let lines: i64 = share.iter().map(|&(_, lines)| lines).sum();
        line_latency * u32::try_from(lines).unwrap_or(u32::MAX)
    };
    (1..=pending.len() / workers).find_map(|share| {
        let items = &pending[..share * workers];
        let smallest = items.chunks(share).map(share_floor).min()?;
        (smallest >= floor).then(|| (items.iter().map(|&(id, _)| id).collect(), smallest))
    })
}
