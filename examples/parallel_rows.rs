//! CPU-heavy work per row of a real SQLite database: serially, then with
//! `par_scope`, whose children borrow the rows and run on every core.
//!
//! ```text
//! cargo run --release --example parallel_rows            # 20 000 rows
//! cargo run --release --example parallel_rows -- --quick # 2 000 rows
//! ```
//!
//! The parallel step is `score_rows_in_parallel` in `shared/par_rows.rs`:
//! one child per row, each borrowing its row from the caller's `Vec`;
//! nothing is copied or `'static`. The `tour` example uses it too.

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rusqlite::Connection;

#[path = "shared/par_rows.rs"]
mod par_rows;

use par_rows::{Row, score_chunks_in_parallel, score_rows_in_parallel, score_rows_serially};

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
    let (chunked, chunked_time) =
        timed(|| futures::executor::block_on(score_chunks_in_parallel(&rows, 64)));
    assert_eq!(serial, chunked, "chunked runs score every row alike");

    let per_row = serial_time / u32::try_from(rows.len())?;
    println!("serial:                         {serial_time:>10.2?}  ({per_row:.2?} per row)");
    let speedup = |time: Duration| serial_time.as_secs_f64() / time.as_secs_f64();
    println!(
        "par_scope, a child per row:     {parallel_time:>10.2?}  ({:.2}x)",
        speedup(parallel_time)
    );
    println!(
        "par_scope, a child per 64 rows: {chunked_time:>10.2?}  ({:.2}x)",
        speedup(chunked_time)
    );
    println!(
        "(one timing each: on a busy machine the ratios are noise; benches/ measures them \
         in alternating rounds)"
    );
    Ok(())
}

fn timed<T>(run: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = run();
    (value, started.elapsed())
}
