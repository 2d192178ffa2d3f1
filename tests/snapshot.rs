//! Snapshots of the scope tree: contents, states, reasons, where they can be
//! taken from, and their `Display`.

mod common;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::yield_once;
use futures::channel::oneshot;
use futures::executor::block_on;
use taskscope::{Builder, CancelReason, TaskState};

/// The tree with ids and times left out, for string comparison.
fn plain(snapshot: &taskscope::Snapshot) -> String {
    let display = snapshot.display();
    display.hide_ids().hide_times().hide_locations().to_string()
}

#[test]
fn nested_scopes_appear_under_the_task_that_created_them() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let snapshot = block_on(Builder::new().name("outer").scope(|s| async move {
        s.spawn_named("parent", async move {
            Builder::new()
                .name("inner")
                .scope(|inner| async move {
                    inner
                        .spawn_named("leaf", async move {
                            started_tx.send(()).unwrap();
                            release_rx.await.unwrap();
                        })
                        .await
                })
                .await
        });
        started_rx.await.unwrap();
        let snapshot = taskscope::snapshot();
        release_tx.send(()).unwrap();
        snapshot
    }));
    assert_eq!(
        plain(&snapshot),
        "scope \"outer\"\n\
         ├─ body: being polled, 2 polls\n\
         └─ task \"parent\": pending, 1 poll\n   \
            └─ scope \"inner\"\n      \
               ├─ body: pending, 1 poll\n      \
               └─ task \"leaf\": pending, 1 poll\n"
    );
    let outer = &snapshot.scopes[0];
    let inner = snapshot.find_scope("inner").unwrap();
    assert!(
        inner.id > outer.id,
        "scopes are numbered as they are created"
    );
    assert_eq!(outer.tasks[0].id, 1, "children count from 1");
    assert_eq!(inner.tasks[0].id, 1);
    assert!(outer.body.as_ref().unwrap().is_body());
}

#[test]
fn ids_show_in_the_default_display() {
    let text = block_on(Builder::new().name("ids").scope(|s| async move {
        s.spawn_named("first", async {});
        let snapshot = s.snapshot();
        let id = snapshot.scopes[0].id;
        (
            id,
            snapshot.display().hide_times().hide_locations().to_string(),
        )
    }));
    let (id, text) = text;
    assert_eq!(
        text,
        format!(
            "scope {id} \"ids\"\n\
             ├─ body {id}.0: being polled, 1 poll\n\
             └─ task {id}.1 \"first\": pending, 0 polls\n"
        )
    );
}

#[test]
fn a_cancelled_scope_shows_its_reason_and_its_children_follow_it() {
    let snapshot = block_on(Builder::new().name("deadline").scope(|s| async move {
        s.spawn_named("worker", taskscope::cancelled());
        s.token().cancel_with(CancelReason::Deadline);
        s.snapshot()
    }));
    let scope = &snapshot.scopes[0];
    assert!(matches!(scope.cancelled, Some(CancelReason::Deadline)));
    let worker = &scope.tasks[0];
    assert!(matches!(
        worker.cancelled.as_ref().map(CancelReason::origin),
        Some(CancelReason::Deadline)
    ));
    assert_eq!(
        plain(&snapshot),
        "scope \"deadline\": cancelling (the deadline passed)\n\
         ├─ body: being polled, 1 poll\n\
         └─ task \"worker\": pending, 0 polls, cancelling (with its scope)\n"
    );
}

#[test]
fn a_child_cancelled_alone_shows_its_own_reason() {
    let snapshot = block_on(Builder::new().name("calm").scope(|s| async move {
        // The token is looked up inside the child: its own.
        let solo = s.spawn_named("solo", async { taskscope::cancelled().await });
        s.spawn_named("other", async {});
        solo.cancel();
        s.snapshot()
    }));
    assert!(snapshot.scopes[0].cancelled.is_none());
    assert!(snapshot.find_task("other").unwrap().cancelled.is_none());
    assert_eq!(
        plain(&snapshot),
        "scope \"calm\"\n\
         ├─ body: being polled, 1 poll\n\
         ├─ task \"solo\": pending, 0 polls, cancelling (cancellation was requested)\n\
         └─ task \"other\": pending, 0 polls\n"
    );
}

#[test]
fn a_failed_try_scope_shows_the_error_as_its_reason() {
    let (seen_tx, seen_rx) = oneshot::channel::<taskscope::Snapshot>();
    let result: Result<(), String> = block_on(taskscope::try_scope(|s| async move {
        s.spawn_try(async { Err::<(), _>("disk full".to_string()) });
        // A child that is still there when the error arrives, and looks.
        s.spawn_named("witness", async move {
            taskscope::cancelled().await;
            seen_tx.send(taskscope::snapshot()).unwrap();
        });
        Ok(())
    }));
    assert_eq!(result.unwrap_err(), "disk full");
    let snapshot = block_on(seen_rx).unwrap();
    let scope = &snapshot.scopes[0];
    assert!(
        matches!(&scope.cancelled, Some(CancelReason::Failed(text)) if &**text == "\"disk full\""),
        "{:?}",
        scope.cancelled
    );
    assert_eq!(
        snapshot.find_task("witness").unwrap().state,
        TaskState::Polling
    );
}

#[test]
fn a_snapshot_from_inside_a_child_starts_at_the_outermost_scope() {
    let snapshot = block_on(Builder::new().name("root").scope(|s| async move {
        s.spawn_named("middle", async {
            Builder::new()
                .name("nested")
                .scope(
                    |n| async move { n.spawn_named("me", async { taskscope::snapshot() }).await },
                )
                .await
        })
        .await
    }));
    assert_eq!(snapshot.scopes.len(), 1);
    assert_eq!(snapshot.scopes[0].name.as_deref(), Some("root"));
    let me = snapshot.find_task("me").unwrap();
    assert_eq!(me.state, TaskState::Polling);
    assert_eq!(me.polls, 1);
    assert_eq!(
        snapshot.find_task("middle").unwrap().state,
        TaskState::Polling,
        "the task around a nested scope is being polled too"
    );
}

#[test]
fn a_snapshot_outside_every_scope_is_empty() {
    let snapshot = taskscope::snapshot();
    assert!(snapshot.is_empty());
    assert_eq!(snapshot.to_string(), "(no scope)\n");
}

#[test]
fn a_snapshot_from_another_thread_sees_the_running_scope() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let text = block_on(Builder::new().name("watched").scope(|s| async move {
        let (started_tx, started_rx) = oneshot::channel::<()>();
        s.spawn_named("waiter", async move {
            started_tx.send(()).unwrap();
            release_rx.await.unwrap()
        });
        started_rx.await.unwrap();
        let handle = s.snapshot_handle();
        let (text_tx, text_rx) = oneshot::channel();
        let watcher = std::thread::spawn(move || {
            let snapshot = handle.snapshot();
            text_tx.send(plain(&snapshot)).unwrap();
        });
        // The scope goes on running while the other thread looks.
        let text = text_rx.await.unwrap();
        watcher.join().unwrap();
        release_tx.send(()).unwrap();
        text
    }));
    // The body may be pending or being polled when the other thread
    // looks; the rest is fixed.
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "scope \"watched\"");
    assert!(lines[1].starts_with("├─ body: "), "{text}");
    assert_eq!(lines[2], "└─ task \"waiter\": pending, 1 poll");
}

#[test]
fn snapshots_taken_in_a_loop_from_another_thread_see_a_busy_scope_and_disturb_nothing() {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (ten_seen, ten) = futures::channel::oneshot::channel::<()>();
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let handle: taskscope::SnapshotHandle = handle_rx.recv().unwrap();
            let mut ten_seen = Some(ten_seen);
            let mut live = 0;
            while !stop.load(Ordering::SeqCst) {
                let snapshot = handle.snapshot();
                assert!(snapshot.scopes.len() <= 1);
                live += snapshot.scopes.len();
                if live >= 10 {
                    if let Some(signal) = ten_seen.take() {
                        let _ = signal.send(());
                    }
                }
            }
        })
    };
    let outputs = runtime.block_on(Builder::new().name("busy").scope(|s| async move {
        handle_tx.send(s.snapshot_handle()).unwrap();
        let workers: Vec<_> = (0..200)
            .map(|round| {
                s.spawn_named("worker", async move {
                    Builder::new()
                        .scope(|n| async move {
                            for _ in 0..3 {
                                n.spawn(async {
                                    yield_once().await;
                                    // From inside, concurrently with the watcher.
                                    let _ = taskscope::snapshot();
                                });
                            }
                        })
                        .await;
                    round
                })
            })
            .collect();
        // The scope stays running until the watcher has seen it ten times
        // (a watcher that panicked drops the sender: no hang).
        ten.await
            .expect("the watcher saw the running scope ten times");
        let mut outputs = Vec::new();
        for worker in workers {
            outputs.push(worker.await);
        }
        outputs
    }));
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    assert_eq!(
        outputs,
        (0..200).collect::<Vec<_>>(),
        "every worker ran to its end"
    );
}

#[test]
fn a_finished_child_shows_until_its_handle_is_joined_or_dropped() {
    block_on(Builder::new().scope(|s| async move {
        let joined = s.spawn_named("joined", async { 1 });
        let dropped = s.spawn_named("dropped", async { 2 });
        while !joined.is_finished() || !dropped.is_finished() {
            yield_once().await;
        }
        let snapshot = s.snapshot();
        assert_eq!(
            snapshot.find_task("joined").unwrap().state,
            TaskState::Finished
        );
        assert_eq!(
            snapshot.find_task("dropped").unwrap().state,
            TaskState::Finished
        );
        assert!(plain(&snapshot).contains("task \"joined\": finished, not joined, 1 poll\n"));
        assert_eq!(joined.await, 1);
        drop(dropped);
        let snapshot = s.snapshot();
        assert!(snapshot.find_task("joined").is_none());
        assert!(snapshot.find_task("dropped").is_none());
    }));
}

#[test]
fn a_snapshot_handle_sees_nothing_once_its_scope_finished() {
    let handle = block_on(taskscope::scope(|s| async move { s.snapshot_handle() }));
    assert!(handle.snapshot().is_empty());
}

#[test]
fn poll_counts_and_times_are_recorded() {
    taskscope::record_poll_times();
    block_on(Builder::new().scope(|s| async move {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let (parked_tx, parked_rx) = oneshot::channel::<()>();
        s.spawn_named("thrice", async move {
            yield_once().await;
            yield_once().await;
            parked_tx.send(()).unwrap(); // in its third poll
            release_rx.await.unwrap();
        });
        parked_rx.await.unwrap();
        let snapshot = s.snapshot();
        let task = snapshot.find_task("thrice").unwrap();
        assert_eq!(task.polls, 3);
        assert!(task.since_last_poll.is_some());
        assert!(snapshot.to_string().contains(", last poll "));
        release_tx.send(()).unwrap();
    }));
}

#[test]
fn scopes_inside_wrappers_and_combinators_appear_under_their_task() {
    let snapshot = block_on(Builder::new().name("top").scope(|s| async move {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        s.spawn_named("wrapped", async move {
            let shielded =
                taskscope::shield(Builder::new().name("shielded").scope(|n| async move {
                    n.spawn_named("deep", async move {
                        started_tx.send(()).unwrap();
                        release_rx.await.unwrap();
                    })
                    .await
                }));
            let other = Builder::new().name("in-branch").scope(|_| async {});
            taskscope::join(shielded, other).await;
        });
        started_rx.await.unwrap();
        let snapshot = s.snapshot();
        release_tx.send(()).unwrap();
        snapshot
    }));
    let wrapped = snapshot.find_task("wrapped").unwrap();
    let names: Vec<_> = wrapped
        .scopes
        .iter()
        .map(|scope| scope.name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("shielded")],
        "the finished branch scope is gone"
    );
    assert!(wrapped.scopes[0].find_task("deep").is_some());
}

#[test]
fn local_scopes_take_named_children_and_snapshots() {
    let text = block_on(Builder::new().name("local").local_scope(|s| async move {
        let shared = std::rc::Rc::new(1);
        s.spawn_named(String::from("rc"), async move { *shared });
        plain(&s.snapshot())
    }));
    assert_eq!(
        text,
        "scope \"local\"\n\
         ├─ body: being polled, 1 poll\n\
         └─ task \"rc\": pending, 0 polls\n"
    );
}

#[test]
fn a_running_scope_shows_under_its_creator_after_the_creator_finished() {
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let (seen_tx, seen_rx) = oneshot::channel::<String>();
    block_on(Builder::new().name("outer").scope(|s| async move {
        // Created by the body, awaited by a child; the body returns first.
        let inner = Builder::new().name("inner").scope(|i| async move {
            i.spawn_named("leaf", async move {
                started_tx.send(()).unwrap();
                release_rx.await.unwrap();
            })
            .await
        });
        s.spawn_named("runner", inner);
        s.spawn_named("watcher", async move {
            started_rx.await.unwrap();
            seen_tx.send(plain(&taskscope::snapshot())).unwrap();
            release_tx.send(()).unwrap();
        });
    }));
    let seen = block_on(seen_rx).unwrap();
    assert_eq!(
        seen,
        "scope \"outer\"\n\
         ├─ body: finished, 1 poll\n\
         │  └─ scope \"inner\"\n\
         │     ├─ body: pending, 1 poll\n\
         │     └─ task \"leaf\": pending, 1 poll\n\
         ├─ task \"runner\": pending, 1 poll\n\
         └─ task \"watcher\": being polled, 1 poll\n",
        "the body returned, but the scope it created still runs"
    );
}

/// Runs `on_drop` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Drops, after one poll, a scope whose body waits forever beside a pending
/// child `victim` and a child `witness` that takes a snapshot in its
/// destructor; returns that snapshot. The victim's handle outlives the body
/// if `handle_kept`, else it is a local of the body, dropped with it.
fn snapshot_while_the_scope_future_is_dropped(handle_kept: bool) -> taskscope::Snapshot {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let kept = Arc::new(std::sync::Mutex::new(None));
    let (seen_in_witness, kept_in_body) = (seen.clone(), kept.clone());
    let mut scope = Box::pin(Builder::new().name("s").scope(|s| {
        let handle = s.snapshot_handle();
        async move {
            let victim = s.spawn_named("victim", std::future::pending::<()>());
            let _in_the_body = if handle_kept {
                *kept_in_body.lock().unwrap() = Some(victim);
                None
            } else {
                Some(victim)
            };
            s.spawn_named("witness", async move {
                let _snapshot_on_drop = OnDrop(move || {
                    *seen_in_witness.lock().unwrap() = Some(handle.snapshot());
                });
                std::future::pending::<()>().await
            });
            std::future::pending::<()>().await
        }
    }));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(scope.as_mut().poll(&mut cx).is_pending());
    drop(scope);
    let snapshot = seen.lock().unwrap().take();
    snapshot.expect("the witness's destructor ran")
}

#[test]
fn a_body_dropped_with_its_scope_future_no_longer_shows() {
    let snapshot = snapshot_while_the_scope_future_is_dropped(true);
    assert!(
        snapshot.scopes[0].body.is_none(),
        "the dropped body still shows:\n{}",
        plain(&snapshot)
    );
}

#[test]
fn children_dropped_unfinished_with_their_scope_future_show_as_dropped_not_finished() {
    for handle_kept in [true, false] {
        let snapshot = snapshot_while_the_scope_future_is_dropped(handle_kept);
        let victim = snapshot.find_task("victim").map(|task| task.state);
        assert_eq!(
            victim,
            Some(TaskState::Dropped),
            "handle kept: {handle_kept}\n{}",
            plain(&snapshot)
        );
        assert!(
            plain(&snapshot).contains("task \"victim\": dropped unfinished, 1 poll\n"),
            "{}",
            plain(&snapshot)
        );
    }
}

#[test]
fn a_multi_line_panic_message_keeps_one_line_per_scope_or_task() {
    let snapshot = block_on(Builder::new().name("s").scope(|s| async move {
        let checker = s.spawn_named("checker", async {
            panic!("first line\nsecond line");
        });
        let caught = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(checker)).await;
        assert!(caught.is_err());
        s.spawn_named("sibling", taskscope::cancelled());
        s.snapshot()
    }));
    let text = plain(&snapshot);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("first line\\nsecond line"), "{text}");
}

#[test]
fn a_child_that_panicked_shows_as_panicked_until_the_scope_re_raises_it() {
    let (tx, rx) = std::sync::mpsc::channel();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(taskscope::scope(|s| async move {
            let (ran, both_ran) = oneshot::channel();
            // Its handle dropped at once: the scope re-raises the panic.
            drop(s.spawn_named("doomed", async { panic!("boom") }));
            // Polled after `doomed`, in spawn order.
            let fine = s.spawn_named("fine", async move { ran.send(()).unwrap() });
            both_ran.await.unwrap();
            tx.send(s.snapshot()).unwrap();
            drop(fine);
        }))
    }));
    assert!(caught.is_err(), "the scope re-raises the panic");
    let snapshot = rx.recv().unwrap();
    assert_eq!(
        snapshot.find_task("doomed").unwrap().state,
        TaskState::Panicked
    );
    assert_eq!(
        snapshot.find_task("fine").unwrap().state,
        TaskState::Finished
    );
    assert!(
        plain(&snapshot).contains("task \"doomed\": panicked, not joined, 1 poll"),
        "{snapshot}"
    );
}

#[test]
fn a_panic_re_raised_by_its_handle_no_longer_shows() {
    let (tx, rx) = std::sync::mpsc::channel();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(taskscope::scope(|s| async move {
            let doomed = s.spawn_named("doomed", async { panic!("boom") });
            let reraised = futures::FutureExt::catch_unwind(AssertUnwindSafe(doomed)).await;
            assert!(reraised.is_err(), "the handle re-raises the panic");
            tx.send(s.snapshot()).unwrap();
        }))
    }));
    assert!(
        caught.is_ok(),
        "a panic the handle re-raised is not raised again"
    );
    let snapshot = rx.recv().unwrap();
    assert!(snapshot.find_task("doomed").is_none(), "{snapshot}");
}
