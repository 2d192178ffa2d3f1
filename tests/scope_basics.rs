//! The concurrent scope: borrowing, nesting, progress, runtimes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{CountingWaker, Gate, yield_once};
use futures::executor::block_on;
use taskscope::{POLL_BUDGET, scope};

#[test]
fn children_borrow_from_the_callers_stack() {
    let names = vec![String::from("ada"), String::from("grace")];
    let names_ref = &names;
    let mut lengths = block_on(scope(|s| async move {
        let handles: Vec<_> = names_ref
            .iter()
            .map(|name| s.spawn(async move { name.len() }))
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await);
        }
        out
    }));
    lengths.sort();
    assert_eq!(lengths, vec![3, 5]);
    assert_eq!(names.len(), 2, "the data is still ours after the scope");
}

#[test]
fn children_spawn_grandchildren_into_the_same_scope() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    block_on(scope(|s| async move {
        for _ in 0..10 {
            let inner = s.clone();
            s.spawn(async move {
                for _ in 0..10 {
                    inner.spawn(async move {
                        yield_once().await;
                        finished_ref.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
    }));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        100,
        "every grandchild was joined"
    );
}

#[test]
fn dropped_handles_do_not_detach_children() {
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    block_on(scope(|s| async move {
        for _ in 0..50 {
            drop(s.spawn(async move {
                yield_once().await;
                yield_once().await;
                finished_ref.fetch_add(1, Ordering::SeqCst);
            }));
        }
    }));
    assert_eq!(finished.load(Ordering::SeqCst), 50);
}

#[test]
fn ten_thousand_children_all_finish() {
    let sum = AtomicUsize::new(0);
    let sum_ref = &sum;
    block_on(scope(|s| async move {
        for i in 0..10_000 {
            let sum = sum_ref;
            s.spawn(async move {
                yield_once().await;
                sum.fetch_add(i, Ordering::Relaxed);
            });
        }
    }));
    assert_eq!(sum.load(Ordering::Relaxed), (0..10_000).sum::<usize>());
}

#[tokio::test(start_paused = true)]
async fn a_child_finishes_while_the_body_awaits_something_long() {
    let start = tokio::time::Instant::now();
    let (child_done, body_done) = scope(|s| async move {
        let child = s.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tokio::time::Instant::now()
        });
        // The body is busy for a long time and does not look at `child`.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let body_done = tokio::time::Instant::now();
        (child.await, body_done)
    })
    .await;
    assert_eq!(
        child_done - start,
        Duration::from_millis(10),
        "the child did not wait for the body"
    );
    assert!(child_done < body_done);
}

#[test]
fn only_children_whose_waker_fired_are_polled_again() {
    let gates: Vec<_> = (0..3).map(|_| Gate::new()).collect();
    let polls: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut fut = Box::pin(scope(|s| {
        for (gate, count) in gates.iter().zip(&polls) {
            s.spawn(gate.wait(count.clone()));
        }
        async {}
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    let counts = |polls: &[Arc<AtomicUsize>]| {
        polls
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&polls), vec![1, 1, 1]);

    gates[1].open();
    assert_eq!(waker.count(), 1, "the child's wake woke the scope");
    assert!(waker.poll(fut.as_mut()).is_pending());
    assert_eq!(
        counts(&polls),
        vec![1, 2, 1],
        "only the woken child was polled"
    );

    gates[0].open();
    gates[2].open();
    assert!(waker.poll(fut.as_mut()).is_ready());
    assert_eq!(counts(&polls), vec![2, 2, 2]);
}

#[test]
fn many_ready_children_make_the_scope_yield_after_its_budget() {
    let polled = AtomicUsize::new(0);
    let mut fut = Box::pin(scope(|s| {
        for _ in 0..(POLL_BUDGET * 3) {
            let polled = &polled;
            s.spawn(async move {
                polled.fetch_add(1, Ordering::SeqCst);
            });
        }
        async {}
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    let first = polled.load(Ordering::SeqCst);
    assert!(
        first > 0 && first <= POLL_BUDGET,
        "one poll makes at most the budget of polls: {first}"
    );
    assert_eq!(waker.count(), 1, "the scope asked to be polled again");
    let mut rounds = 1;
    while waker.poll(fut.as_mut()).is_pending() {
        rounds += 1;
        assert!(rounds < 10, "the scope makes progress every poll");
    }
    assert_eq!(polled.load(Ordering::SeqCst), POLL_BUDGET * 3);
}

#[test]
fn the_scope_future_runs_inside_tokio_spawn_on_the_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        tokio::spawn(async {
            let data: Vec<u64> = (1..=100).collect();
            let data = &data;
            scope(|s| async move {
                let handles: Vec<_> = data
                    .chunks(10)
                    .map(|chunk| {
                        s.spawn(async move {
                            tokio::task::yield_now().await;
                            chunk.iter().sum::<u64>()
                        })
                    })
                    .collect();
                let mut total = 0;
                for handle in handles {
                    total += handle.await;
                }
                total
            })
            .await
        })
        .await
        .unwrap()
    });
    assert_eq!(total, 5050);
}

#[tokio::test(flavor = "current_thread")]
async fn the_scope_runs_on_tokios_current_thread_runtime() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let got = scope(|s| async move {
        s.spawn(async move { tx.send(7).unwrap() });
        s.spawn(async move { rx.await.unwrap() }).await
    })
    .await;
    assert_eq!(got, 7);
}

#[test]
fn a_local_scope_runs_non_send_children() {
    let counter = std::rc::Rc::new(std::cell::RefCell::new(0));
    let counter_ref = &counter;
    block_on(taskscope::local_scope(|s| async move {
        for _ in 0..5 {
            let counter = counter_ref.clone();
            s.spawn(async move {
                yield_once().await;
                *counter.borrow_mut() += 1;
            });
        }
    }));
    assert_eq!(*counter.borrow(), 5);
}

#[test]
fn a_local_scope_shares_one_sqlite_connection_between_children() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    let db_ref = &db;
    block_on(taskscope::local_scope(|s| async move {
        for id in 0..20 {
            let db = db_ref;
            s.spawn(async move {
                yield_once().await;
                db.execute(
                    "INSERT INTO t (id, v) VALUES (?1, ?2)",
                    (id, format!("row {id}")),
                )
                .unwrap();
            });
        }
    }));
    let rows: i64 = db
        .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 20);
}

#[test]
fn the_scope_future_is_send_when_its_body_is() {
    fn assert_send<T: Send>(_: &T) {}
    let data = [1, 2, 3];
    let data = &data;
    let fut = scope(|s| async move { s.spawn(async move { data.len() }).await });
    assert_send(&fut);
    assert_eq!(block_on(fut), 3);
}

#[test]
fn a_scope_nested_in_a_child_restores_the_childs_token_after_polling() {
    let (before, between_polls, saw_inner_cancel, after) = block_on(scope(|s| async move {
        s.spawn(async {
            let before = taskscope::current_token();
            let (open, gate) = futures::channel::oneshot::channel::<()>();
            let mut inner = Box::pin(scope(|inner| async move {
                inner.spawn(yield_once());
                gate.await.expect("opened");
            }));
            // One poll by hand, which leaves the inner scope pending.
            std::future::poll_fn(|cx| {
                assert!(inner.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            let between_polls = taskscope::current_token();
            // Were anything of the inner scope still current, the child
            // would now see itself cancelled.
            inner.token().cancel();
            let saw_inner_cancel = taskscope::is_cancelled();
            open.send(()).expect("the inner body waits");
            inner.await;
            (
                before,
                between_polls,
                saw_inner_cancel,
                taskscope::current_token(),
            )
        })
        .await
    }));
    assert_eq!(before, between_polls, "restored after a pending poll");
    assert!(!saw_inner_cancel, "the inner scope's token is not current");
    assert_eq!(before, after, "restored after the last poll");
}

#[test]
fn debug_output_names_each_scope_type() {
    let fut = scope(|s| async move { format!("{s:?}") });
    assert!(format!("{fut:?}").starts_with("ScopeFuture {"), "{fut:?}");
    assert!(block_on(fut).starts_with("Scope {"));
    let local = taskscope::local_scope(|s| async move { format!("{s:?}") });
    assert!(
        format!("{local:?}").starts_with("LocalScopeFuture {"),
        "{local:?}"
    );
    assert!(block_on(local).starts_with("LocalScope {"));
}

#[test]
fn a_woken_body_is_polled_before_the_children_queued_ahead_of_it() {
    const CHILDREN: usize = 3 * POLL_BUDGET;
    let polled = AtomicUsize::new(0);
    let polled = &polled;
    let seen_at_second_poll = block_on(scope(|s| async move {
        for _ in 0..CHILDREN {
            s.spawn(async move {
                polled.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Woken at once, behind every child just queued.
        yield_once().await;
        polled.load(Ordering::SeqCst)
    }));
    assert_eq!(
        seen_at_second_poll, 0,
        "the body waited behind the children queued before its wake"
    );
    assert_eq!(polled.load(Ordering::SeqCst), CHILDREN);
}
