//! `local_try_scope`: `try_scope`'s error policy for children that are not
//! `Send`, among them children borrowing one SQLite connection.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use common::{panic_message, yield_once};
use rusqlite::Connection;
use taskscope::{Builder, CancelReason, CancelToken, local_try_scope};

/// A connection with a table of five accounts, 100 each.
fn bank() -> Connection {
    let db = Connection::open_in_memory().expect("an in-memory database");
    db.execute_batch(
        "CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0));
         INSERT INTO account (id, balance) VALUES (1, 100), (2, 100), (3, 100), (4, 100), (5, 100);",
    )
    .expect("the schema");
    db
}

fn balance(db: &Connection, id: i64) -> i64 {
    db.query_row("SELECT balance FROM account WHERE id = ?1", [id], |row| {
        row.get(0)
    })
    .expect("the account exists")
}

#[test]
fn children_sharing_one_connection_fail_with_the_databases_own_error() {
    let db = bank();
    let db = &db;
    let siblings_cancelled = Cell::new(0);
    let siblings_cancelled = &siblings_cancelled;
    let result: Result<(), rusqlite::Error> = common::run(local_try_scope(|s| async move {
        // The overdraft breaks the CHECK constraint: its child fails first.
        s.spawn_try(async move {
            db.execute(
                "UPDATE account SET balance = balance - 500 WHERE id = 1",
                [],
            )?;
            Ok(())
        });
        for id in 2..=5 {
            s.spawn_try(async move {
                yield_once().await;
                if taskscope::checkpoint().is_err() {
                    siblings_cancelled.set(siblings_cancelled.get() + 1);
                    return Ok(());
                }
                db.execute("UPDATE account SET balance = 0 WHERE id = ?1", [id])?;
                Ok(())
            });
        }
        Ok(())
    }));
    let error = result.expect_err("the overdraft failed");
    assert!(
        error.to_string().contains("CHECK constraint failed"),
        "the scope returns SQLite's error itself: {error}"
    );
    assert_eq!(siblings_cancelled.get(), 4, "every sibling saw the failure");
    assert!(
        (1..=5).all(|id| balance(db, id) == 100),
        "no write happened after the failure"
    );
}

#[test]
fn a_local_childs_error_cancels_siblings_that_hold_an_rc() {
    let seen = Rc::new(RefCell::new(None::<CancelReason>));
    let result: Result<u8, String> = common::run(local_try_scope(|s| {
        let seen = seen.clone();
        async move {
            s.spawn(async move {
                let cancelled = taskscope::cancelled().await;
                *seen.borrow_mut() = Some(cancelled.into_reason());
            });
            let failing = s.spawn_try(async { Err::<(), _>(String::from("no such row")) });
            failing.await.map_err(|c| c.to_string())?;
            Ok(7)
        }
    }));
    assert_eq!(result, Err(String::from("no such row")));
    let reason = seen
        .borrow_mut()
        .take()
        .expect("the sibling finished first");
    assert!(
        matches!(reason.origin(), CancelReason::Failed(text) if &**text == "\"no such row\""),
        "{reason:?}"
    );
}

#[test]
fn later_local_errors_are_counted_and_the_first_is_kept() {
    let mut counted = None;
    let result: Result<(), usize> = common::run(local_try_scope(|s| {
        let counted = &mut counted;
        async move {
            let handles: Vec<_> = (0..5_usize)
                .map(|i| s.spawn_try(async move { Err::<(), _>(i) }))
                .collect();
            for handle in handles {
                assert!(handle.await.is_err(), "every handle says its child failed");
            }
            *counted = Some(s.suppressed_errors());
            Ok(())
        }
    }));
    assert_eq!(
        result,
        Err(0),
        "children run in spawn order here: the first wins"
    );
    assert_eq!(counted, Some(4));
}

#[test]
fn a_failing_local_clean_up_is_the_scopes_error_when_there_was_none() {
    let closed = Rc::new(Cell::new(false));
    let result: Result<(), &str> = common::run(local_try_scope(|s| {
        let closed = closed.clone();
        async move {
            s.defer_try(async move {
                closed.set(true);
                Err("close failed")
            });
            Ok(())
        }
    }));
    assert_eq!(result, Err("close failed"));
    assert!(closed.get(), "the clean-up ran");
}

#[test]
fn a_local_panic_wins_over_an_error() {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        common::run(local_try_scope(|s| async move {
            s.spawn_try(async { Err::<(), _>("recorded first") });
            s.spawn(async {
                yield_once().await;
                panic!("the child panicked");
            });
            Ok::<(), &str>(())
        }))
    }));
    let payload = outcome.expect_err("the panic is re-raised, not turned into an Err");
    assert_eq!(panic_message(&*payload), "the child panicked");
}

#[test]
fn the_builder_hangs_a_local_try_scope_under_a_given_token() {
    let parent = CancelToken::new();
    parent.cancel();
    let result: Result<bool, ()> = common::run(Builder::new().parent(&parent).local_try_scope(
        |s| async move {
            let watcher = s.spawn_try(async { Ok(taskscope::checkpoint().is_err()) });
            Ok(watcher.await.expect("the watcher did not fail"))
        },
    ));
    assert_eq!(result, Ok(true), "the parent's cancel reached the child");
}

#[test]
fn a_local_try_scope_handle_drives_the_stream_adapters() {
    use futures::StreamExt as _;
    use taskscope::ScopedStreamExt as _;
    let shared = std::rc::Rc::new(10);
    let shared_ref = &shared;
    let outputs: Result<Vec<i32>, ()> = common::run(local_try_scope(|s| async move {
        // Items that are not `Send`: only a local scope can run them.
        let items = futures::stream::iter(1..=3).map(|n| {
            let shared = shared_ref.clone();
            async move { n * *shared }
        });
        Ok(items.buffered_in(2, &s).collect().await)
    }));
    assert_eq!(outputs, Ok(vec![10, 20, 30]));
}
