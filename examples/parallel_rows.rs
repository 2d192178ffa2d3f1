//! CPU-heavy work per row of a real SQLite database: serially, then with
//! `par_scope`, whose children borrow the rows and run on every core.
//!
//! ```text
//! cargo run --release --example parallel_rows            # 20 000 rows
//! cargo run --release --example parallel_rows -- --quick # 2 000 rows
//! ```
//!
//! The parallel step is [`score_rows_in_parallel`]: one child per row, each
//! borrowing its row from the caller's `Vec`; nothing is copied or
//! `'static`. It needs only the rows, so another example can include this
//! file as a module (`#[path = "parallel_rows.rs"] mod parallel_rows;`)
//! and call it.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// One row of the `notes` table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The primary key.
    pub id: i64,
    /// The note's text, around a hundred bytes.
    pub body: String,
}

/// How many hashing rounds go over a row's text: about 10 µs of work per
/// row on a current desktop core in a release build.
const ROUNDS: u32 = 100;

/// The CPU-heavy part: an iterated 64-bit FNV-1a hash of the row's text,
/// mixed with its id. Deterministic, so both runs can be compared.
pub fn score(row: &Row) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ row.id as u64;
    for round in 0..ROUNDS {
        for byte in row.body.bytes() {
            hash ^= u64::from(byte) ^ u64::from(round);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Scores every row on one thread.
pub fn score_rows_serially(rows: &[Row]) -> Vec<u64> {
    rows.iter().map(score).collect()
}

/// Scores every row in a `par_scope`: one child per row, each borrowing its
/// row; the scope polls ready children on all of rayon's threads at once.
pub async fn score_rows_in_parallel(rows: &[Row]) -> Vec<u64> {
    taskscope::par_scope(|s| async move {
        let handles: Vec<_> = rows
            .iter()
            .map(|row| s.spawn(async move { score(row) }))
            .collect();
        let mut scores = Vec::with_capacity(handles.len());
        for handle in handles {
            scores.push(handle.await);
        }
        scores
    })
    .await
}

/// Creates the database in `dir` with `count` rows and reads them back.
fn load_rows(dir: &std::path::Path, count: usize) -> rusqlite::Result<Vec<Row>> {
    let connection = Connection::open(dir.join("notes.db"))?;
    connection.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);")?;
    let transaction = connection.unchecked_transaction()?;
    {
        let mut insert = transaction.prepare("INSERT INTO notes (id, body) VALUES (?1, ?2)")?;
        for id in 0..count as i64 {
            let body = format!(
                "note {id}: the quick brown fox jumps over the lazy dog, then files report #{}",
                id * 7_919 % 100_003
            );
            insert.execute((id, body))?;
        }
    }
    transaction.commit()?;
    let mut select = connection.prepare("SELECT id, body FROM notes ORDER BY id")?;
    select
        .query_map([], |row| {
            Ok(Row {
                id: row.get(0)?,
                body: row.get(1)?,
            })
        })?
        .collect()
}

/// A directory of our own under the system's temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "taskscope-parallel-rows-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let count = if quick { 2_000 } else { 20_000 };
    let dir = TempDir::new()?;
    let rows = load_rows(&dir.0, count)?;
    println!(
        "{} rows from {} ({} threads in rayon's pool)",
        rows.len(),
        dir.0.join("notes.db").display(),
        rayon_core::current_num_threads()
    );

    // Warm-up: the pool's threads start on first use.
    futures::executor::block_on(score_rows_in_parallel(&rows[..rows.len().min(500)]));

    let (serial, serial_time) = timed(|| score_rows_serially(&rows));
    let (parallel, parallel_time) =
        timed(|| futures::executor::block_on(score_rows_in_parallel(&rows)));
    assert_eq!(serial, parallel, "both runs score every row alike");

    let per_row = serial_time / u32::try_from(rows.len())?;
    println!("serial:    {serial_time:>10.2?}  ({per_row:.2?} per row)");
    println!("par_scope: {parallel_time:>10.2?}");
    println!(
        "speed-up:  {:.2}x",
        serial_time.as_secs_f64() / parallel_time.as_secs_f64()
    );
    Ok(())
}

fn timed<T>(run: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = run();
    (value, started.elapsed())
}
