//! Step 2: the motivating pipeline, with `buffered` and with `buffered_in`.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use taskscope::ScopedStreamExt;
use tokio::time::sleep;

use crate::db::Db;
use crate::report::{Metered, Progress};

/// The simulated latencies of the pipeline.
#[derive(Clone, Copy)]
pub(crate) struct Latency {
    /// Each of the producer's three remote calls.
    pub(crate) producer_call: Duration,
    /// The consumer's one slow call.
    pub(crate) consumer_call: Duration,
}

/// A prepared work item.
pub(crate) struct Prepared {
    id: i64,
    score: i64,
}

/// The preparation step: two real queries and three simulated network calls.
async fn prepare(db: &Db, id: i64, latency: Latency) -> Prepared {
    let item = db.item(id).expect("select the work item");
    sleep(latency.producer_call).await; // fetch the customer's profile
    let (orders, spent) = db
        .customer_history(item.customer_id)
        .expect("select the customer's history");
    sleep(latency.producer_call).await; // ask the pricing service
    sleep(latency.producer_call).await; // ask the fraud service
    let score = (item.amount_cents * item.quantity + spent / 100) / orders.max(1);
    Prepared { id: item.id, score }
}

/// The processing step: one slow call, then the result is written.
async fn process(db: &Db, run: &str, position: usize, prepared: Prepared, latency: Latency) {
    sleep(latency.consumer_call).await; // hand the result to a slow service
    db.record_result(run, position, prepared.id, prepared.score)
        .expect("insert the result");
}

/// What one run measured.
pub(crate) struct Run {
    pub(crate) wall: Duration,
    /// Summed over all producers: time from a wake-up to the poll it asked for.
    pub(crate) stall: Duration,
    pub(crate) items: usize,
}

/// The floor: the consumer alone, fed items that are already prepared.
pub(crate) async fn consumer_alone(db: &Db, ids: &[i64], latency: Latency) -> Run {
    let mut progress = Progress::new("consumer alone", ids.len());
    let start = Instant::now();
    for (position, &id) in ids.iter().enumerate() {
        process(db, "floor", position, Prepared { id, score: 0 }, latency).await;
        progress.update(position + 1);
    }
    progress.finish();
    Run {
        wall: start.elapsed(),
        stall: Duration::ZERO,
        items: ids.len(),
    }
}

/// `futures::StreamExt::buffered`: the producers run only while the stream is polled.
pub(crate) async fn with_buffered(db: &Db, ids: &[i64], window: usize, latency: Latency) -> Run {
    let mut progress = Progress::new("StreamExt::buffered", ids.len());
    let mut stall = Duration::ZERO;
    let start = Instant::now();
    stream::iter(ids)
        .map(|&id| Metered::new(prepare(db, id, latency)))
        .buffered(window)
        .enumerate()
        .for_each(|(position, (prepared, waited))| {
            stall += waited;
            progress.update(position + 1);
            process(db, "buffered", position, prepared, latency)
        })
        .await;
    progress.finish();
    Run {
        wall: start.elapsed(),
        stall,
        items: ids.len(),
    }
}

/// `buffered_in`: the producers are children of a scope and run whenever it is polled.
pub(crate) async fn with_buffered_in(db: &Db, ids: &[i64], window: usize, latency: Latency) -> Run {
    let start = Instant::now();
    // A local scope: the children borrow `db`, whose connection is not `Sync`.
    let stall = taskscope::local_scope(|s| async move {
        let mut progress = Progress::new("buffered_in", ids.len());
        let mut stall = Duration::ZERO;
        stream::iter(ids)
            .map(|&id| Metered::new(prepare(db, id, latency)))
            .buffered_in(window, &s)
            .enumerate()
            .for_each(|(position, (prepared, waited))| {
                stall += waited;
                progress.update(position + 1);
                process(db, "buffered_in", position, prepared, latency)
            })
            .await;
        progress.finish();
        stall
    })
    .await;
    Run {
        wall: start.elapsed(),
        stall,
        items: ids.len(),
    }
}
