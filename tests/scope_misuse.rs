//! Bad use gets a clear message, never a hang or a lost task.

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::{CountingWaker, panic_message};
use futures::FutureExt;
use futures::executor::block_on;
use taskscope::{JoinHandle, scope};

#[test]
fn spawning_through_a_handle_that_outlived_its_scope_panics_clearly() {
    let escaped = block_on(scope(|s| async move { s }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        drop(escaped.spawn(async {}));
    }));
    let message = panic_message(&*outcome.unwrap_err());
    assert!(
        message.contains("spawn on a scope that has already finished (its scope returned)"),
        "{message}"
    );
}

#[test]
fn defer_and_adopt_through_a_handle_that_outlived_its_scope_say_it_returned() {
    struct Value;
    impl taskscope::AsyncDrop for Value {
        async fn prepare_drop(&mut self) {}
    }
    let escaped = block_on(scope(|s| async move { s }));
    let deferred = std::panic::catch_unwind(AssertUnwindSafe(|| escaped.defer(async {})));
    let adopted = std::panic::catch_unwind(AssertUnwindSafe(|| drop(escaped.adopt(Value))));
    for (what, outcome) in [("defer", deferred), ("adopt", adopted)] {
        let message = panic_message(&*outcome.expect_err("the scope is gone"));
        assert!(
            message.contains(&format!(
                "{what} on a scope that has already finished (its scope returned)"
            )),
            "{message}"
        );
    }
}

#[test]
fn a_handle_used_after_its_scope_future_was_dropped_says_it_was_dropped() {
    let mut escaped = None;
    let mut fut = Box::pin(scope(|s| {
        escaped = Some(s.clone());
        std::future::pending::<()>()
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    drop(fut);
    let escaped = escaped.expect("the body closure ran");
    let deferred = std::panic::catch_unwind(AssertUnwindSafe(|| escaped.defer(async {})));
    let spawned = std::panic::catch_unwind(AssertUnwindSafe(|| drop(escaped.spawn(async {}))));
    for (what, outcome) in [("defer", deferred), ("spawn", spawned)] {
        let message = panic_message(&*outcome.expect_err("the scope is gone"));
        assert!(
            message.contains(&format!(
                "{what} on a scope that was dropped before it finished"
            )),
            "{message}"
        );
    }
}

/// Records whether it was polled and how often it was dropped.
struct Probe {
    polled: Arc<AtomicBool>,
    drops: Arc<AtomicUsize>,
}

impl Future for Probe {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        self.polled.store(true, Ordering::SeqCst);
        Poll::Ready(())
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_refused_spawn_drops_its_future_once_and_never_polls_it() {
    let escaped = block_on(scope(|s| async move { s }));
    let polled = Arc::new(AtomicBool::new(false));
    let drops = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        polled: polled.clone(),
        drops: drops.clone(),
    };
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| drop(escaped.spawn(probe))));
    assert!(outcome.is_err(), "the spawn is refused");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped exactly once");
    assert!(!polled.load(Ordering::SeqCst), "never polled");
}

#[test]
fn polling_a_finished_scope_future_panics_clearly() {
    let mut fut = Box::pin(scope(|_s| async { 1 }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_ready());
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut())));
    assert!(panic_message(&*outcome.unwrap_err()).contains("polled after it completed"));
}

#[test]
fn polling_a_finished_cancel_when_or_shield_panics_clearly_without_repolling_its_future() {
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = |polls: Arc<AtomicUsize>| {
        std::future::poll_fn(move |_| {
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(())
        })
    };
    let waker = CountingWaker::new();
    let mut deadline = Box::pin(taskscope::cancel_when(
        counted(polls.clone()),
        std::future::pending::<()>(),
    ));
    assert!(waker.poll(deadline.as_mut()).is_ready());
    let again = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(deadline.as_mut())));
    let message = panic_message(&*again.unwrap_err());
    assert!(
        message.contains("cancel_when") && message.contains("after it completed"),
        "{message}"
    );
    let mut shielded = Box::pin(taskscope::shield(counted(polls.clone())));
    assert!(waker.poll(shielded.as_mut()).is_ready());
    let again = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(shielded.as_mut())));
    let message = panic_message(&*again.unwrap_err());
    assert!(
        message.contains("shield") && message.contains("after it completed"),
        "{message}"
    );
    assert_eq!(
        polls.load(Ordering::SeqCst),
        2,
        "neither polled its future again"
    );
}

/// A future that counts its polls and panics at each.
fn panicking(polls: Arc<AtomicUsize>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |_| {
        polls.fetch_add(1, Ordering::SeqCst);
        panic!("the inner future panicked")
    })
}

/// Polls `fut` twice, each inside `catch_unwind`; the second poll's message.
fn second_panic<F: Future>(fut: F) -> String {
    let mut fut = Box::pin(fut);
    let waker = CountingWaker::new();
    let first = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut())));
    assert!(first.is_err(), "the inner panic propagates");
    let again = std::panic::catch_unwind(AssertUnwindSafe(|| waker.poll(fut.as_mut()).is_ready()));
    panic_message(&*again.expect_err("the second poll panics"))
}

#[test]
fn wrappers_never_poll_a_future_again_after_it_panicked() {
    use taskscope::CancelExt;
    let polls = Arc::new(AtomicUsize::new(0));
    let shielded = second_panic(taskscope::shield(panicking(polls.clone())));
    assert!(
        shielded.contains("shield") && shielded.contains("panicked"),
        "{shielded}"
    );
    let deadline = second_panic(taskscope::cancel_when(
        panicking(polls.clone()),
        std::future::pending::<()>(),
    ));
    assert!(
        deadline.contains("cancel_when") && deadline.contains("panicked"),
        "{deadline}"
    );
    let token = taskscope::CancelToken::new();
    let until = second_panic(panicking(polls.clone()).until_cancelled(&token));
    assert!(
        until.contains("UntilCancelled") && until.contains("panicked"),
        "{until}"
    );
    assert_eq!(
        polls.load(Ordering::SeqCst),
        3,
        "each inner future polled once"
    );
}

#[test]
fn polling_a_join_handle_after_it_completed_panics_clearly() {
    block_on(scope(|s| async move {
        let mut handle = s.spawn(async { 5 });
        assert_eq!((&mut handle).await, 5);
        let again = AssertUnwindSafe(&mut handle).catch_unwind().await;
        assert!(panic_message(&*again.unwrap_err()).contains("polled after it completed"));
    }));
}

#[test]
fn a_handle_of_a_child_dropped_with_its_scope_panics_clearly() {
    let escaped = std::sync::Mutex::new(None);
    let escaped_ref = &escaped;
    let mut fut = Box::pin(scope(|s| async move {
        *escaped_ref.lock().unwrap() = Some(s.spawn(std::future::pending::<()>()));
        std::future::pending::<()>().await;
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    drop(fut);
    let handle = escaped.lock().unwrap().take().unwrap();
    assert!(handle.is_finished());
    let outcome = block_on(AssertUnwindSafe(handle).catch_unwind());
    assert!(panic_message(&*outcome.unwrap_err()).contains("dropped before this child finished"));
}

/// An adoptable value with nothing to close.
struct NothingToClose;

impl taskscope::AsyncDrop for NothingToClose {
    async fn prepare_drop(&mut self) {}
}

/// The file a panic inside `f` reports as its location (recorded by a panic
/// hook for this thread only; other threads' panics go to the previous hook).
fn panic_location_of(f: impl FnOnce()) -> String {
    let here = std::thread::current().id();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let recorded = seen.clone();
    let previous = Arc::new(std::panic::take_hook());
    let fallback = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == here {
            *recorded.lock().unwrap() = info
                .location()
                .map(|l| l.file().to_owned())
                .unwrap_or_default();
        } else {
            fallback(info);
        }
    }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    drop(std::panic::take_hook());
    let previous = Arc::try_unwrap(previous).unwrap_or_else(|_| panic!("the hook was dropped"));
    std::panic::set_hook(previous);
    assert!(outcome.is_err(), "the misuse panics");
    seen.lock().unwrap().clone()
}

/// A stream of ready futures, for the adapters.
fn items() -> impl futures::Stream<Item = std::future::Ready<()>> {
    use futures::StreamExt;
    futures::stream::iter([(); 2]).map(std::future::ready)
}

#[test]
fn misuse_of_an_escaped_handle_is_reported_at_the_callers_line() {
    use taskscope::ScopedStreamExt;
    let escaped = block_on(scope(|s| async move { s }));
    for (what, file) in [
        ("spawn", panic_location_of(|| drop(escaped.spawn(async {})))),
        ("defer", panic_location_of(|| escaped.defer(async {}))),
        (
            "adopt",
            panic_location_of(|| drop(escaped.adopt(NothingToClose))),
        ),
        (
            "buffered_in",
            panic_location_of(|| drop(items().buffered_in(2, &escaped))),
        ),
        (
            "buffer_unordered_in",
            panic_location_of(|| drop(items().buffer_unordered_in(2, &escaped))),
        ),
        (
            "for_each_in",
            panic_location_of(|| drop(items().for_each_in(2, &escaped, |item| item))),
        ),
        (
            "race_all",
            panic_location_of(|| drop(taskscope::race_all(Vec::<std::future::Ready<u8>>::new()))),
        ),
        (
            "race_array",
            panic_location_of(|| drop(taskscope::race_array::<std::future::Ready<u8>, 0>([]))),
        ),
    ] {
        assert!(
            file.ends_with("scope_misuse.rs"),
            "{what} reported at {file}"
        );
    }
}

/// Runs `self_join` (a scope whose child awaits its own handle) on a thread
/// of its own, so that a hang fails the test, and checks that it panics
/// saying why.
fn assert_self_join_panics(self_join: impl FnOnce() + Send + 'static) {
    assert!(common::returns(|| {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(self_join));
        let message = panic_message(&*outcome.expect_err("a self-join panics instead of hanging"));
        assert!(message.contains("awaited its own JoinHandle"), "{message}");
    }));
}

#[test]
fn a_child_awaiting_its_own_handle_panics_instead_of_hanging() {
    for nested in [false, true] {
        assert_self_join_panics(move || {
            block_on(scope(|s| async move {
                let (send, receive) = futures::channel::oneshot::channel::<JoinHandle<()>>();
                let me = s.spawn(async move {
                    let handle = receive.await.expect("sent");
                    if nested {
                        scope(|inner| async move { inner.spawn(handle).await }).await;
                    } else {
                        handle.await;
                    }
                });
                send.send(me).expect("the child waits for it");
            }));
        });
    }
}

#[test]
fn a_child_awaiting_its_own_handle_in_a_local_scope_panics() {
    assert_self_join_panics(|| {
        block_on(taskscope::local_scope(|s| async move {
            let (send, receive) = futures::channel::oneshot::channel::<JoinHandle<()>>();
            let me = s.spawn(async move { receive.await.expect("sent").await });
            send.send(me).expect("the child waits for it");
        }));
    });
}

#[test]
#[cfg(feature = "parallel")]
fn a_child_awaiting_its_own_handle_in_a_parallel_scope_panics() {
    assert_self_join_panics(|| {
        block_on(taskscope::par_scope(|s| async move {
            let (send, receive) = futures::channel::oneshot::channel::<JoinHandle<()>>();
            let me = s.spawn(async move { receive.await.expect("sent").await });
            send.send(me).expect("the child waits for it");
        }));
    });
}

#[test]
fn a_scope_made_in_a_child_but_polled_as_its_sibling_may_await_that_child() {
    use futures::channel::oneshot;
    assert!(common::returns(|| {
        let joined = block_on(scope(|s| async move {
            let (handle_tx, handle_rx) = oneshot::channel::<JoinHandle<u32>>();
            let (result_tx, result_rx) = oneshot::channel::<u32>();
            let sibling_spawner = s.clone();
            let child = s.spawn(async move {
                let (registered_tx, registered_rx) = oneshot::channel::<()>();
                // Made here, but spawned as a sibling: this child neither
                // polls it nor waits for it, so the sibling may await it.
                let made_here = scope(move |_| async move {
                    let mut handle = handle_rx.await.expect("sent");
                    let first =
                        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut handle).poll(cx)))
                            .await;
                    assert!(first.is_pending(), "the child is still running");
                    registered_tx.send(()).expect("the child waits for it");
                    result_tx.send(handle.await).expect("the body waits for it");
                });
                drop(sibling_spawner.spawn(made_here));
                registered_rx.await.expect("the sibling awaits this child");
                5
            });
            handle_tx.send(child).expect("the sibling waits for it");
            result_rx.await.expect("the sibling joined the child")
        }));
        assert_eq!(joined, 5);
    }));
}

/// A future whose destructor panics.
struct PanicsWhenDropped;

impl Future for PanicsWhenDropped {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("the refused future's drop panicked");
    }
}

#[test]
fn a_refused_spawn_says_why_even_when_the_refused_futures_drop_panics() {
    let escaped = block_on(scope(|s| async move { s }));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        drop(escaped.spawn(PanicsWhenDropped));
    }));
    let message = panic_message(&*outcome.unwrap_err());
    assert!(
        message.contains("spawn on a scope that has already finished"),
        "{message}"
    );
}

#[test]
fn a_self_join_through_a_scope_polled_by_another_executor_still_panics() {
    use futures::channel::oneshot;
    type Sub = Pin<Box<dyn Future<Output = ()> + Send>>;
    assert!(common::returns(|| {
        let (sub_tx, sub_rx) = std::sync::mpsc::channel::<Sub>();
        let message = std::thread::scope(|threads| {
            // Another executor, outside every task of the outer scope.
            let runner = threads.spawn(move || {
                let sub = sub_rx.recv().expect("the child sends its scope");
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| block_on(sub)));
                outcome.err().map(|payload| panic_message(&*payload))
            });
            block_on(scope(|s| async move {
                let (handle_tx, handle_rx) = oneshot::channel::<JoinHandle<()>>();
                let me = s.spawn(async move {
                    let handle = handle_rx.await.expect("sent");
                    let (done_tx, done_rx) = oneshot::channel::<()>();
                    // Made here and waited for here, polled elsewhere: its
                    // child awaits this very child, which waits for it.
                    let made_here = scope(move |inner| async move {
                        inner.spawn(handle).await;
                        drop(done_tx);
                    });
                    sub_tx.send(Box::pin(made_here)).expect("the runner waits");
                    let _ = done_rx.await;
                });
                handle_tx.send(me).expect("the child waits for it");
            }));
            runner.join().expect("the runner returns")
        });
        let message = message.expect("the self-join panicked instead of hanging");
        assert!(message.contains("awaited its own JoinHandle"), "{message}");
    }));
}
