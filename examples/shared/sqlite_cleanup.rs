//! A real SQLite connection adopted by a scope that gets cancelled: the
//! scope rolls back the unfinished transaction, optimises and checkpoints the
//! database, and closes the connection **before** it returns, so the next
//! open of the file never races the previous close.
//!
//! `run` is runtime-agnostic; the `cleanup_sqlite` example calls it, and the
//! `tour` example can too (`#[path = "shared/sqlite_cleanup.rs"] mod sqlite_cleanup;`).

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use rusqlite::Connection;
use taskscope::AsyncDrop;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The order things happened in, shared by the demo's parts.
#[derive(Clone, Default)]
pub(crate) struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    pub(crate) fn push(&self, event: impl Into<String>) {
        let event = event.into();
        println!("     {event}");
        self.0.lock().unwrap().push(event);
    }

    pub(crate) fn list(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A connection whose clean-up needs several steps, with awaits between them.
pub(crate) struct Db {
    conn: Connection,
    events: Events,
}

impl Db {
    pub(crate) fn open(path: &Path, events: &Events) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, note TEXT)")?;
        events.push("db: opened");
        Ok(Db {
            conn,
            events: events.clone(),
        })
    }
}

impl AsyncDrop for Db {
    async fn prepare_drop(&mut self) {
        // Runs shielded: the scope was cancelled, its clean-up is not.
        let shielded = !taskscope::is_cancelled();
        self.events
            .push(format!("db: clean-up starts (shielded: {shielded})"));
        if !self.conn.is_autocommit() {
            // Work that was cut short is not committed.
            match self.conn.execute_batch("ROLLBACK") {
                Ok(()) => self
                    .events
                    .push("db: rolled back the unfinished transaction"),
                Err(e) => self.events.push(format!("db: rollback failed: {e}")),
            }
        }
        yield_now().await;
        if let Err(e) = self.conn.execute_batch("PRAGMA optimize") {
            self.events.push(format!("db: optimize failed: {e}"));
        } else {
            self.events.push("db: PRAGMA optimize");
        }
        yield_now().await;
        let checkpoint = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
        match checkpoint {
            Ok(_) => self.events.push("db: WAL checkpointed"),
            Err(e) => self.events.push(format!("db: checkpoint failed: {e}")),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // The connection handle itself is closed right after this, by
        // `Connection`'s own (synchronous) drop.
        self.events.push("db: sync drop, connection closed");
    }
}

/// Returns `Pending` once, so the clean-up really spans several polls.
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    std::future::poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// Commits one batch of jobs, starts a second, and gets cancelled in the
/// middle of it (a sibling task cancels the scope, like a shutdown signal).
/// Returns the events in order and the number of rows in the file afterwards.
pub(crate) async fn run(path: &Path) -> Result<(Vec<String>, i64), Error> {
    let events = Events::default();
    let events_ref = &events;
    let outcome: Result<(), Error> = taskscope::scope(|s| async move {
        let db = s.adopt(Db::open(path, events_ref)?);
        db.conn.execute_batch("BEGIN")?;
        for n in 1..=3 {
            db.conn.execute(
                "INSERT INTO jobs (note) VALUES (?1)",
                [format!("batch 1, job {n}")],
            )?;
        }
        db.conn.execute_batch("COMMIT")?;
        events_ref.push("body: committed batch 1 (3 jobs)");

        // A shutdown hook: cancels the whole scope (through a handle clone;
        // its own `current_token()` would be the child's alone).
        let scope_handle = s.clone();
        s.spawn(async move {
            yield_now().await;
            events_ref.push("shutdown: cancelling the scope");
            scope_handle.cancel();
        });

        db.conn.execute_batch("BEGIN")?;
        for n in 1.. {
            taskscope::checkpoint()?; // `Err(Cancelled)` once the scope is cancelled
            db.conn.execute(
                "INSERT INTO jobs (note) VALUES (?1)",
                [format!("batch 2, job {n}")],
            )?;
            events_ref.push(format!("body: inserted batch 2, job {n}"));
            yield_now().await;
        }
        unreachable!("the loop only ends by cancellation")
    })
    .await;
    match &outcome {
        Ok(()) => events.push("scope returned Ok"),
        Err(e) => events.push(format!("scope returned: {e}")),
    }
    // Evidence from the file system, not from our own log: SQLite removes
    // the `-wal` file when the last connection to a WAL database closes
    // cleanly. A connection still open (or leaked) would leave it there.
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    events.push(if wal.exists() {
        "after the scope: the -wal file is still there (a connection is open)"
    } else {
        "after the scope: no -wal file (the connection closed cleanly)"
    });
    // Opening the file again right away: the previous connection is closed,
    // its WAL checkpointed, the cancelled batch rolled back.
    let again = Connection::open(path)?;
    let rows: i64 = again.query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))?;
    events.push(format!("reopened: {rows} jobs in the table"));
    Ok((events.list(), rows))
}
