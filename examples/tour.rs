//! A tour of taskscope over a real SQLite database.
//!
//! ```text
//! cargo run --release --example tour            # under a minute
//! cargo run --release --example tour -- --quick # a few seconds (or TASKSCOPE_TOUR_QUICK=1)
//! ```
//!
//! 1. creates a database in a temporary directory and fills it with work items;
//! 2. runs the pipeline `map(prepare).buffered(5).for_each(process)` with
//!    `futures::StreamExt::buffered` and with taskscope's `buffered_in`, over
//!    the same borrowed connection, and prints the wall times, the
//!    consumer-bound floor and the stall;
//! 3. lets a deadline cancel a scope of workers mid-run and shows in the
//!    database that every item is either fully written or untouched;
//! 4. adopts a SQLite connection into a scope that gets cancelled, and shows
//!    it rolled back, checkpointed and closed before the scope returned;
//! 5. scores every row of the database with CPU-heavy work, serially and in a
//!    `par_scope` whose children borrow the rows, and prints the speed-up.
//!
//! The timings vary from machine to machine and are only printed. The claims
//! the story makes (both pipelines wrote the same results, the deadline
//! stopped workers mid-run, each finished the item it had begun and recorded
//! where it stopped, the adopted connection closed before its scope returned,
//! the parallel scores equal the serial ones) are checked: if one fails the
//! tour says which and exits with an error.

#[path = "tour/db.rs"]
mod db;
#[path = "tour/deadline.rs"]
mod deadline;
#[path = "shared/par_rows.rs"]
mod par_rows;
#[path = "tour/pipeline.rs"]
mod pipeline;
#[path = "tour/report.rs"]
mod report;
#[path = "shared/sqlite_cleanup.rs"]
mod sqlite_cleanup;

use std::fmt;
use std::time::{Duration, Instant};

use db::{Db, TempDir};
use pipeline::Latency;
use report::{Align, millis, print_table, seconds};

/// The sizes of one run of the tour.
struct Settings {
    quick: bool,
    items_in_db: usize,
    pipeline_items: usize,
    window: usize,
    latency: Latency,
    workers: usize,
    deadline: Duration,
    /// Each worker's share needs at least this many times the deadline in
    /// remote calls alone, so the deadline always lands mid-run.
    work_per_deadline: u32,
    line_latency: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let flag = std::env::args().skip(1).any(|arg| arg == "--quick");
        let env = std::env::var("TASKSCOPE_TOUR_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let quick = flag || env;
        let latency = Latency {
            producer_call: Duration::from_millis(1),
            consumer_call: Duration::from_millis(1),
        };
        Settings {
            quick,
            items_in_db: if quick { 2_000 } else { 10_000 },
            pipeline_items: if quick { 300 } else { 2_000 },
            window: 5,
            latency,
            workers: 4,
            deadline: if quick {
                Duration::from_millis(300)
            } else {
                Duration::from_millis(1_500)
            },
            work_per_deadline: 3,
            line_latency: Duration::from_millis(1),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let started = Instant::now();
    println!(
        "taskscope tour ({} mode{})",
        if settings.quick { "quick" } else { "full" },
        if settings.quick {
            ""
        } else {
            "; `--quick` or TASKSCOPE_TOUR_QUICK=1 for a short run"
        }
    );

    // Step 1: a real database.
    let dir = TempDir::new()?;
    let filled = Instant::now();
    let db = Db::create(dir.path(), settings.items_in_db)?;
    println!();
    println!("1. A real database");
    println!(
        "   SQLite {} (rusqlite, bundled) in {}",
        rusqlite::version(),
        dir.path().display()
    );
    println!(
        "   {} work items for 200 customers, written in {}",
        settings.items_in_db,
        millis(filled.elapsed())
    );

    let mut claims = Claims::default();
    runtime.block_on(pipeline_step(&db, &settings, &mut claims))?;
    runtime.block_on(deadline_step(&db, &settings, &mut claims))?;

    runtime.block_on(cleanup_step(&dir, &mut claims))?;
    parallel_step(&db, &mut claims)?;

    drop(db);
    let dir_path = dir.path().to_path_buf();
    drop(dir);
    println!();
    println!(
        "Done in {}; the temporary directory {}.",
        seconds(started.elapsed()),
        if dir_path.exists() {
            format!("could not be removed: {}", dir_path.display())
        } else {
            "was removed".to_owned()
        }
    );
    claims.into_result()
}

/// The story's claims that hold on every machine (not the timings): each
/// step checks its own; any that failed make the tour exit with an error.
#[derive(Default)]
struct Claims {
    failed: Vec<String>,
}

impl Claims {
    /// Records `claim` as failed unless it `holds`; returns `holds`.
    fn check(&mut self, holds: bool, claim: impl Into<String>) -> bool {
        if !holds {
            self.failed.push(claim.into());
        }
        holds
    }

    fn into_result(self) -> Result<(), Box<dyn std::error::Error>> {
        if self.failed.is_empty() {
            Ok(())
        } else {
            Err(Box::new(StoryBroken(self.failed)))
        }
    }
}

/// The claims that failed (`Debug` too, as `main` prints its error that way).
struct StoryBroken(Vec<String>);

impl fmt::Display for StoryBroken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the tour's story broke; these claims failed:")?;
        for claim in &self.0 {
            write!(f, "\n  - {claim}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoryBroken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for StoryBroken {}

fn yes_no(holds: bool) -> &'static str {
    if holds { "yes" } else { "NO" }
}

async fn pipeline_step(
    db: &Db,
    settings: &Settings,
    claims: &mut Claims,
) -> Result<(), Box<dyn std::error::Error>> {
    let ids: Vec<i64> = (1..=settings.pipeline_items as i64).collect();
    let window = settings.window;
    let latency = settings.latency;
    println!();
    println!(
        "2. The pipeline `stream.map(prepare).buffered({window}).for_each(process)`, {} items",
        ids.len()
    );
    println!(
        "   prepare: 2 queries and 3 network calls of {} ms; process: 1 call of {} ms and 1 insert",
        latency.producer_call.as_millis(),
        latency.consumer_call.as_millis()
    );
    println!("   everything runs on one thread and borrows one `&Connection`");
    println!();
    let floor = pipeline::consumer_alone(db, &ids, latency).await;
    let buffered = pipeline::with_buffered(db, &ids, window, latency).await;
    let buffered_in = pipeline::with_buffered_in(db, &ids, window, latency).await;

    let ratio =
        |run: &pipeline::Run| format!("{:.2}x", run.wall.as_secs_f64() / floor.wall.as_secs_f64());
    let per_item = |run: &pipeline::Run| millis(run.stall / run.items as u32);
    let rows = vec![
        vec![
            "consumer alone (the floor)".to_string(),
            seconds(floor.wall),
            ratio(&floor),
            "-".to_string(),
            "-".to_string(),
        ],
        vec![
            format!("futures' buffered({window})"),
            seconds(buffered.wall),
            ratio(&buffered),
            seconds(buffered.stall),
            per_item(&buffered),
        ],
        vec![
            format!("taskscope's buffered_in({window}, &scope)"),
            seconds(buffered_in.wall),
            ratio(&buffered_in),
            seconds(buffered_in.stall),
            per_item(&buffered_in),
        ],
    ];
    print_table(
        "   ",
        &["pipeline", "wall", "vs floor", "stall", "stall per item"],
        &[
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
        ],
        &rows,
    );
    println!();
    println!("   stall: how long producers sat woken (their call had answered) but unpolled,");
    println!("   because the consumer was busy; summed over all awaits of all producers.");
    let (same, count) = db.same_results("buffered", "buffered_in")?;
    let same = claims.check(
        same && count == ids.len() as i64,
        format!(
            "step 2: `buffered` and `buffered_in` wrote the same {} results in the same order",
            ids.len()
        ),
    );
    println!(
        "   both runs wrote the same {count} results in the same order: {}",
        yes_no(same)
    );
    Ok(())
}

async fn deadline_step(
    db: &Db,
    settings: &Settings,
    claims: &mut Claims,
) -> Result<(), Box<dyn std::error::Error>> {
    // Enough items that no share can be finished before the deadline,
    // however fast the machine: their remote calls alone take longer.
    let pending = db.pending_items()?;
    let (ids, share_floor) = deadline::items_outlasting(
        &pending,
        settings.workers,
        settings.line_latency,
        settings.deadline * settings.work_per_deadline,
    )
    .ok_or("step 3: too few pending items in the database for the deadline to land mid-run")?;
    println!();
    println!(
        "3. A deadline of {} cancels a scope of {} workers invoicing {} items",
        seconds(settings.deadline),
        settings.workers,
        ids.len()
    );
    println!(
        "   each item: {{1..4}} remote calls of {} ms, then one transaction; workers call \
         `checkpoint()` between items",
        settings.line_latency.as_millis()
    );
    println!(
        "   each worker's share takes at least {} in remote calls alone ({}x the deadline),\n   \
         so on any machine the deadline lands mid-run",
        seconds(share_floor),
        settings.work_per_deadline
    );
    println!();
    let (ends, elapsed) = deadline::run(
        db,
        &ids,
        settings.workers,
        settings.deadline,
        settings.line_latency,
    )
    .await;
    let rows: Vec<Vec<String>> = ends
        .iter()
        .map(|end| {
            vec![
                end.worker.to_string(),
                format!("{}..={}", end.items[0], end.items[end.items.len() - 1]),
                end.done.to_string(),
                end.next_item.map_or("-".to_string(), |id| id.to_string()),
                end.last_write.map_or("-".to_string(), seconds),
                end.why.clone(),
            ]
        })
        .collect();
    print_table(
        "   ",
        &[
            "worker",
            "share",
            "invoiced",
            "stopped before",
            "last commit",
            "why",
        ],
        &[
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ],
        &rows,
    );
    println!();
    println!(
        "   the scope returned after {}, every worker joined; a commit after {} is an item",
        seconds(elapsed),
        seconds(settings.deadline)
    );
    println!("   that was in progress at the deadline and was finished rather than dropped");

    // What the database says.
    let (invoiced, complete) = db.invoice_counts()?;
    let half = db.half_written()?;
    let stops = db.stops()?;
    let mut resumable = stops.len() == ends.len();
    for (end, stop) in ends.iter().zip(&stops) {
        let (before, after) = db.invoiced_split(&end.items, stop.next_item)?;
        resumable &= stop.worker == end.worker as i64
            && stop.next_item == end.next_item
            && before == stop.items_done
            && after == 0
            && before as usize == end.done;
    }
    let done: usize = ends.iter().map(|end| end.done).sum();
    let started: usize = ends.iter().map(|end| end.started).sum();
    let stopped = ends.iter().filter(|end| end.stopped_by_deadline).count();
    println!("   the database:");
    println!("     items marked invoiced                      {invoiced}");
    println!("     with their invoice and every line          {complete}");
    println!(
        "     half-written items                         {half} (one transaction per item: \
         0 however the workers stop)"
    );
    println!(
        "     each worker's recorded stop point matches  {}",
        if resumable {
            "yes: a restart resumes exactly there"
        } else {
            "NO"
        }
    );
    println!(
        "   workers the deadline stopped mid-share: {stopped} of {}",
        ends.len()
    );
    println!(
        "   items whose remote calls were made: {started}, written: {done} (a dropped \
         future would have thrown the calls for the items in flight away)"
    );
    claims.check(
        stopped > 0,
        "step 3: the deadline stopped at least one worker before the end of its share",
    );
    claims.check(
        invoiced == complete && invoiced as usize == done,
        format!(
            "step 3: every item marked invoiced has its invoice and every line \
             ({invoiced} marked, {complete} complete, {done} reported by the workers)"
        ),
    );
    claims.check(
        half == 0,
        format!("step 3: no half-written item ({half} found)"),
    );
    claims.check(
        resumable,
        "step 3: each worker recorded where it stopped, and the database agrees",
    );
    claims.check(
        started == done,
        format!(
            "step 3: no worker abandoned an item it had begun ({started} begun, {done} written)"
        ),
    );
    Ok(())
}

/// Step 4: async clean-up of an adopted connection in a cancelled scope.
async fn cleanup_step(
    dir: &TempDir,
    claims: &mut Claims,
) -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("4. A cancelled scope closes its adopted SQLite connection before it returns");
    println!("   `s.adopt(db)`: the scope runs `db.prepare_drop().await` (shielded from the");
    println!("   cancellation), then the sync drop, and only then returns. Events, in order:");
    let path = dir.path().join("cleanup.db");
    let (events, rows) = sqlite_cleanup::run(&path)
        .await
        .map_err(|e| e.to_string())?;
    let at = |prefix: &str| events.iter().position(|e| e.starts_with(prefix));
    let closed_first = matches!(
        (at("db: sync drop"), at("scope returned")),
        (Some(closed), Some(returned)) if closed < returned
    );
    let closed_first = claims.check(
        closed_first,
        "step 4: the adopted connection was closed before the scope returned",
    );
    println!(
        "   closed before the scope returned: {}",
        yes_no(closed_first)
    );
    let wal_gone = claims.check(
        at("after the scope: no -wal file").is_some(),
        "step 4: no -wal file right after the scope returned: SQLite saw the connection close",
    );
    println!(
        "   no -wal file right after the scope returned (SQLite removes it on a clean \
         close): {}",
        yes_no(wal_gone)
    );
    let in_order = |earlier: &str, later: &str| matches!((at(earlier), at(later)), (Some(a), Some(b)) if a < b);
    let shielded_rollback = claims.check(
        in_order("db: clean-up starts (shielded: true)", "db: rolled back")
            && in_order("db: rolled back", "db: WAL checkpointed"),
        "step 4: the clean-up ran shielded, rolled back, then checkpointed",
    );
    println!(
        "   the clean-up ran shielded, rolled back, then checkpointed: {}",
        yes_no(shielded_rollback)
    );
    let committed_only = claims.check(
        rows == 3,
        "step 4: the reopened file holds the 3 committed rows and none of the cancelled batch",
    );
    println!(
        "   the file reopened at once has {rows} rows, the committed batch only: {}",
        yes_no(committed_only)
    );
    Ok(())
}

/// Step 5: CPU-heavy work per row, serially and in a `par_scope`.
fn parallel_step(db: &Db, claims: &mut Claims) -> Result<(), Box<dyn std::error::Error>> {
    use par_rows::{Row, score_chunks_in_parallel, score_rows_in_parallel, score_rows_serially};

    // Each item is scored under several salts, so the step lasts long
    // enough (tens of milliseconds) for the timings to mean something.
    let items = db.item_texts()?;
    let rows: Vec<Row> = (0..8)
        .flat_map(|salt| {
            items.iter().map(move |(id, body)| Row {
                id: id * 8 + salt,
                body: body.clone(),
            })
        })
        .collect();
    println!();
    println!("5. CPU-heavy work per row, on every core, borrowing the rows");
    let threads = rayon_core::current_num_threads();
    println!(
        "   {} items read from the database, each scored under 8 salts: {} rows; {threads} \
         thread{} in rayon's pool; the children borrow `&rows`",
        items.len(),
        rows.len(),
        if threads == 1 { "" } else { "s" },
    );
    use futures::executor::block_on;
    // Warm-up: the pool's threads start on first use.
    block_on(score_rows_in_parallel(&rows[..rows.len().min(500)]));

    let timed = |run: &dyn Fn() -> Vec<u64>| {
        let started = Instant::now();
        let scores = run();
        (scores, started.elapsed())
    };
    let (serial, serial_time) = timed(&|| score_rows_serially(&rows));
    let (per_row, per_row_time) = timed(&|| block_on(score_rows_in_parallel(&rows)));
    let (per_chunk, per_chunk_time) = timed(&|| block_on(score_chunks_in_parallel(&rows, 64)));
    let same = claims.check(
        serial == per_row && serial == per_chunk,
        "step 5: both par_scope runs computed the same scores as the serial run",
    );
    let speedup =
        |time: Duration| format!("{:.2}x", serial_time.as_secs_f64() / time.as_secs_f64());
    println!();
    print_table(
        "   ",
        &["how", "wall", "speed-up"],
        &[Align::Left, Align::Right, Align::Right],
        &[
            vec![
                "serial, one thread".into(),
                millis(serial_time),
                "1.00x".into(),
            ],
            vec![
                "par_scope, a child per row".into(),
                millis(per_row_time),
                speedup(per_row_time),
            ],
            vec![
                "par_scope, a child per 64 rows".into(),
                millis(per_chunk_time),
                speedup(per_chunk_time),
            ],
        ],
    );
    println!("   every run computed the same scores: {}", yes_no(same));
    println!(
        "   (one timing of each, for the story; on a busy machine the speed-ups are noise: \
         benches/ measures them in alternating rounds)"
    );
    Ok(())
}
