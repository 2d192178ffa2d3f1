//! A SQLite connection adopted by a scope that gets cancelled is rolled back,
//! optimised, checkpointed and closed before the scope returns.
//!
//! Run with `cargo run --example cleanup_sqlite`.

#[path = "shared/sqlite_cleanup.rs"]
mod sqlite_cleanup;

/// The database's files, removed however `main` leaves (an error included).
struct DbFiles(std::path::PathBuf);

impl Drop for DbFiles {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Unique per run, so a file left by a crashed run under a reused
    // process id is never read as this run's.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let name = format!("taskscope-cleanup-{}-{nanos}.db", std::process::id());
    let files = DbFiles(std::env::temp_dir().join(name));
    println!("events, in order:");
    let (events, rows) = futures::executor::block_on(sqlite_cleanup::run(&files.0))?;
    drop(files);

    let position = |prefix: &str| {
        events
            .iter()
            .position(|e| e.starts_with(prefix))
            .unwrap_or_else(|| panic!("no event starting with {prefix:?} in {events:#?}"))
    };
    // The clean-up ran, shielded, after the cancellation and before the scope returned.
    assert!(position("shutdown: cancelling") < position("db: clean-up starts (shielded: true)"));
    assert!(position("db: clean-up starts") < position("db: rolled back"));
    assert!(position("db: rolled back") < position("db: WAL checkpointed"));
    assert!(position("db: WAL checkpointed") < position("db: sync drop"));
    assert!(position("db: sync drop") < position("scope returned"));
    assert!(
        position("scope returned") < position("after the scope: no -wal file"),
        "SQLite removed the -wal file: the connection really closed"
    );
    assert_eq!(
        rows, 3,
        "batch 1 was committed, the cancelled batch 2 rolled back"
    );
    println!("ok: the connection was closed before the scope returned");
    Ok(())
}
