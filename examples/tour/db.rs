//! The tour's database: a real SQLite file in a temporary directory.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// A temporary directory, removed (with everything in it) when dropped.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new() -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let name = format!("taskscope-tour-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// One work item, as the preparation step reads it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Item {
    pub(crate) id: i64,
    pub(crate) customer_id: i64,
    pub(crate) amount_cents: i64,
    pub(crate) quantity: i64,
}

/// What a worker wrote down when it stopped.
#[derive(Debug)]
pub(crate) struct Stop {
    pub(crate) worker: i64,
    pub(crate) next_item: Option<i64>,
    pub(crate) items_done: i64,
}

/// The database handle every step borrows. A `rusqlite::Connection` is
/// `Send` but not `Sync`, so children that share `&Db` live in a
/// `local_scope`: no `Arc`, no `Mutex`, no pool.
pub(crate) struct Db {
    conn: Connection,
}

const CUSTOMERS: i64 = 200;

impl Db {
    /// Creates the schema in `dir` and fills it with `items` pending work items.
    pub(crate) fn create(dir: &Path, items: usize) -> rusqlite::Result<Db> {
        let conn = Connection::open(dir.join("tour.sqlite3"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             CREATE TABLE customers (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL
             );
             CREATE TABLE work_items (
                 id INTEGER PRIMARY KEY,
                 customer_id INTEGER NOT NULL REFERENCES customers(id),
                 amount_cents INTEGER NOT NULL,
                 quantity INTEGER NOT NULL,
                 status TEXT NOT NULL DEFAULT 'pending'
             );
             CREATE INDEX work_items_by_customer ON work_items(customer_id);
             CREATE TABLE results (
                 run TEXT NOT NULL,
                 position INTEGER NOT NULL,
                 item_id INTEGER NOT NULL REFERENCES work_items(id),
                 score INTEGER NOT NULL,
                 PRIMARY KEY (run, position)
             );
             CREATE TABLE invoices (
                 item_id INTEGER PRIMARY KEY REFERENCES work_items(id),
                 worker INTEGER NOT NULL,
                 total_cents INTEGER NOT NULL
             );
             CREATE TABLE invoice_lines (
                 item_id INTEGER NOT NULL REFERENCES invoices(item_id),
                 line INTEGER NOT NULL,
                 cents INTEGER NOT NULL,
                 PRIMARY KEY (item_id, line)
             );
             CREATE TABLE worker_stops (
                 worker INTEGER PRIMARY KEY,
                 next_item INTEGER,
                 items_done INTEGER NOT NULL,
                 reason TEXT NOT NULL
             );",
        )?;
        let tx = conn.unchecked_transaction()?;
        {
            let mut customer = tx.prepare("INSERT INTO customers (id, name) VALUES (?1, ?2)")?;
            for id in 1..=CUSTOMERS {
                customer.execute(params![id, format!("customer-{id:03}")])?;
            }
            let mut item = tx.prepare(
                "INSERT INTO work_items (id, customer_id, amount_cents, quantity) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut random = 0x2545_f491_4f6c_dd1d_u64;
            for id in 1..=items as i64 {
                // xorshift: deterministic data, no dependency
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                let customer_id = (random % CUSTOMERS as u64) as i64 + 1;
                let amount = (random >> 8) % 50_000 + 100;
                let quantity = (random >> 24) % 4 + 1;
                item.execute(params![id, customer_id, amount as i64, quantity as i64])?;
            }
        }
        tx.commit()?;
        Ok(Db { conn })
    }

    pub(crate) fn item(&self, id: i64) -> rusqlite::Result<Item> {
        self.conn
            .prepare_cached(
                "SELECT id, customer_id, amount_cents, quantity FROM work_items WHERE id = ?1",
            )?
            .query_row([id], |row| {
                Ok(Item {
                    id: row.get(0)?,
                    customer_id: row.get(1)?,
                    amount_cents: row.get(2)?,
                    quantity: row.get(3)?,
                })
            })
    }

    /// How many items the customer has and their summed amount.
    pub(crate) fn customer_history(&self, customer_id: i64) -> rusqlite::Result<(i64, i64)> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(amount_cents), 0) FROM work_items WHERE customer_id = ?1",
            )?
            .query_row([customer_id], |row| Ok((row.get(0)?, row.get(1)?)))
    }

    pub(crate) fn record_result(
        &self,
        run: &str,
        position: usize,
        item_id: i64,
        score: i64,
    ) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO results (run, position, item_id, score) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![run, position as i64, item_id, score])?;
        Ok(())
    }

    /// Whether two runs recorded the same items with the same scores in the same order.
    pub(crate) fn same_results(&self, a: &str, b: &str) -> rusqlite::Result<(bool, i64)> {
        let differing: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM results x
             LEFT JOIN results y ON y.run = ?2 AND y.position = x.position
             WHERE x.run = ?1 AND (y.item_id IS NOT x.item_id OR y.score IS NOT x.score)",
            params![a, b],
            |row| row.get(0),
        )?;
        let count = |run: &str| -> rusqlite::Result<i64> {
            self.conn.query_row(
                "SELECT COUNT(*) FROM results WHERE run = ?1",
                [run],
                |row| row.get(0),
            )
        };
        let (count_a, count_b) = (count(a)?, count(b)?);
        Ok((differing == 0 && count_a == count_b, count_a))
    }

    /// Every work item with its customer's name, as text to score.
    pub(crate) fn item_texts(&self) -> rusqlite::Result<Vec<(i64, String)>> {
        let mut statement = self.conn.prepare(
            "SELECT w.id, c.name, w.amount_cents, w.quantity, w.status
             FROM work_items w JOIN customers c ON c.id = w.customer_id ORDER BY w.id",
        )?;
        let rows = statement.query_map([], |row| {
            let (id, name, cents, quantity, status): (i64, String, i64, i64, String) = (
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            );
            Ok((
                id,
                format!("item {id} for {name}: {quantity} x {cents} cents, {status}"),
            ))
        })?;
        rows.collect()
    }

    /// Every pending item's id and quantity (its number of lines), in id order.
    pub(crate) fn pending_items(&self) -> rusqlite::Result<Vec<(i64, i64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT id, quantity FROM work_items WHERE status = 'pending' ORDER BY id")?;
        let items = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        items.collect()
    }

    /// Writes an item's invoice, its lines and its new status in one transaction.
    pub(crate) fn write_invoice(
        &self,
        worker: usize,
        item_id: i64,
        lines: &[i64],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.prepare_cached(
            "INSERT INTO invoices (item_id, worker, total_cents) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![item_id, worker as i64, lines.iter().sum::<i64>()])?;
        {
            let mut line = tx.prepare_cached(
                "INSERT INTO invoice_lines (item_id, line, cents) VALUES (?1, ?2, ?3)",
            )?;
            for (number, cents) in lines.iter().enumerate() {
                line.execute(params![item_id, number as i64 + 1, cents])?;
            }
        }
        tx.prepare_cached("UPDATE work_items SET status = 'invoiced' WHERE id = ?1")?
            .execute([item_id])?;
        tx.commit()
    }

    pub(crate) fn record_stop(
        &self,
        worker: usize,
        next_item: Option<i64>,
        items_done: usize,
        reason: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO worker_stops (worker, next_item, items_done, reason) VALUES (?1, ?2, ?3, ?4)",
            params![worker as i64, next_item, items_done as i64, reason],
        )?;
        Ok(())
    }

    pub(crate) fn stops(&self) -> rusqlite::Result<Vec<Stop>> {
        let mut statement = self
            .conn
            .prepare("SELECT worker, next_item, items_done FROM worker_stops ORDER BY worker")?;
        let stops = statement.query_map([], |row| {
            Ok(Stop {
                worker: row.get(0)?,
                next_item: row.get(1)?,
                items_done: row.get(2)?,
            })
        })?;
        stops.collect()
    }

    /// Items marked invoiced, and complete invoices (invoice, every line, totals agree).
    pub(crate) fn invoice_counts(&self) -> rusqlite::Result<(i64, i64)> {
        let invoiced = self.conn.query_row(
            "SELECT COUNT(*) FROM work_items WHERE status = 'invoiced'",
            [],
            |row| row.get(0),
        )?;
        let complete = self.conn.query_row(
            "SELECT COUNT(*) FROM work_items w JOIN invoices i ON i.item_id = w.id
             WHERE w.status = 'invoiced'
               AND (SELECT COUNT(*) FROM invoice_lines l WHERE l.item_id = w.id) = w.quantity
               AND (SELECT SUM(cents) FROM invoice_lines l WHERE l.item_id = w.id) = i.total_cents",
            [],
            |row| row.get(0),
        )?;
        Ok((invoiced, complete))
    }

    /// Items with part of their work written: an invoice without the status,
    /// the status without the invoice, or missing lines.
    pub(crate) fn half_written(&self) -> rusqlite::Result<i64> {
        self.conn.query_row(
            "SELECT COUNT(*) FROM work_items w LEFT JOIN invoices i ON i.item_id = w.id
             WHERE (w.status = 'invoiced') != (i.item_id IS NOT NULL)
                OR (i.item_id IS NOT NULL
                    AND (SELECT COUNT(*) FROM invoice_lines l WHERE l.item_id = w.id) != w.quantity)
                OR (i.item_id IS NULL
                    AND EXISTS (SELECT 1 FROM invoice_lines l WHERE l.item_id = w.id))",
            [],
            |row| row.get(0),
        )
    }

    /// Invoiced items among `ids` that are before / at-or-after `next` (None: all before).
    pub(crate) fn invoiced_split(
        &self,
        ids: &[i64],
        next: Option<i64>,
    ) -> rusqlite::Result<(i64, i64)> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT status = 'invoiced' FROM work_items WHERE id = ?1")?;
        let (mut before, mut after) = (0, 0);
        for &id in ids {
            let invoiced: bool = statement.query_row([id], |row| row.get(0))?;
            if invoiced {
                if next.is_none_or(|next| id < next) {
                    before += 1;
                } else {
                    after += 1;
                }
            }
        }
        Ok((before, after))
    }
}
