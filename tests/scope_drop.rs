//! Dropping or forgetting a scope future mid-flight.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use common::{CountingWaker, DropCounter};
use taskscope::{CancelReason, scope};

#[test]
fn dropping_the_scope_drops_each_child_once_after_telling_its_token() {
    let drops = Arc::new(AtomicUsize::new(0));
    let told = Arc::new(AtomicUsize::new(0));
    let mut fut = Box::pin(scope(|s| {
        for _ in 0..10 {
            let (drops, told) = (drops.clone(), told.clone());
            s.spawn(async move {
                let token = taskscope::current_token();
                let _counter = DropCounter(drops);
                let _check = OnDrop(move || {
                    if matches!(
                        token.reason().map(|r| r.origin().clone()),
                        Some(CancelReason::ScopeDropped)
                    ) {
                        told.fetch_add(1, Ordering::SeqCst);
                    }
                });
                std::future::pending::<()>().await;
            });
        }
        async { std::future::pending::<()>().await }
    }));
    let waker = CountingWaker::new();
    assert!(waker.poll(fut.as_mut()).is_pending());
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(fut);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        10,
        "every child dropped exactly once"
    );
    assert_eq!(
        told.load(Ordering::SeqCst),
        10,
        "each saw ScopeDropped before its destructor ran"
    );
}

#[test]
fn dropping_an_unpolled_scope_drops_children_that_never_ran() {
    let drops = Arc::new(AtomicUsize::new(0));
    let fut = scope(|s| {
        for _ in 0..3 {
            let counter = DropCounter(drops.clone());
            s.spawn(async move {
                let _counter = counter;
            });
        }
        async {}
    });
    drop(fut);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn a_forgotten_scope_future_never_polls_its_children_again() {
    // Run under Miri (see .ci/run): a child of the forgotten scope borrows
    // heap data that is freed after the forget, and its waker is then woken
    // and dropped. If a wake could poll the child (a broken design: the waker
    // driving the child itself), the child would read the freed data and
    // Miri would report a use-after-free; without Miri, the poll count
    // catches it. Children are only polled by the scope's own `poll`, which
    // nobody can call again.
    let polls = Arc::new(AtomicUsize::new(0));
    let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
    let outer = CountingWaker::new();
    {
        let data = vec![1_u8; 16];
        let data_ref = &data;
        let (child_polls, child_stash) = (polls.clone(), stash.clone());
        let mut fut = Box::pin(scope(move |s| async move {
            s.spawn(std::future::poll_fn(move |cx| {
                child_polls.fetch_add(1, Ordering::SeqCst);
                // Reads the borrowed allocation on every poll.
                assert_eq!(data_ref.iter().map(|&b| usize::from(b)).sum::<usize>(), 16);
                *child_stash.lock().unwrap() = Some(cx.waker().clone());
                Poll::<()>::Pending
            }));
            std::future::pending::<()>().await;
        }));
        assert!(outer.poll(fut.as_mut()).is_pending());
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "the child ran once and is pending"
        );
        std::mem::forget(fut);
        // The borrow ended with the forget: free what the child borrows.
        drop(data);
    }
    let waker = stash
        .lock()
        .unwrap()
        .take()
        .expect("the child kept its waker");
    let woken_before = outer.count();
    waker.wake_by_ref();
    let clone = waker.clone();
    drop(waker);
    clone.wake();
    // The wakes reached the scope's 'static shared state and, through it,
    // the executor's waker (which would poll the scope, never the child).
    assert!(
        outer.count() > woken_before,
        "waking the child wakes the task that polls the scope"
    );
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "nothing polls a forgotten child, whatever wakes it"
    );
}

#[test]
fn a_forgotten_scopes_join_handles_and_wakers_outlive_the_borrowed_data_harmlessly() {
    // Run under Miri with leak checks off (see .ci/run): each child lives in
    // a task cell that its handle and its wakers share with the scope. After
    // the forget and the free, the handles and wakers are dropped: the
    // scope's reference to each cell leaked with it, so no handle or waker
    // is ever the last one, and nobody drops or touches the futures (Miri
    // would report the use of the freed vector their destructors read).
    let future_drops = Arc::new(AtomicUsize::new(0));
    let stash: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let handles: Arc<Mutex<Vec<taskscope::JoinHandle<usize>>>> = Arc::default();
    let outer = CountingWaker::new();
    {
        let data = vec![1_u8; 16];
        let data_ref = &data;
        let (wakers, kept, drops) = (stash.clone(), handles.clone(), future_drops.clone());
        let mut fut = Box::pin(scope(move |s| async move {
            for _ in 0..2 {
                let (wakers, drops) = (wakers.clone(), drops.clone());
                let guard = OnDrop(move || {
                    // Reads the borrowed allocation when the future is dropped.
                    assert_eq!(data_ref.len(), 16);
                    drops.fetch_add(1, Ordering::SeqCst);
                });
                let handle = s.spawn(std::future::poll_fn(move |cx| {
                    let _guard = &guard;
                    wakers.lock().unwrap().push(cx.waker().clone());
                    Poll::<usize>::Pending
                }));
                kept.lock().unwrap().push(handle);
            }
            std::future::pending::<()>().await;
        }));
        assert!(outer.poll(fut.as_mut()).is_pending());
        std::mem::forget(fut);
        drop(data);
    }
    let handles = std::mem::take(&mut *handles.lock().unwrap());
    let wakers = std::mem::take(&mut *stash.lock().unwrap());
    assert_eq!((handles.len(), wakers.len()), (2, 2));
    for handle in &handles {
        assert!(!handle.is_finished());
    }
    // Handles first for one child, wakers first for the other.
    let mut handles = handles.into_iter();
    let mut wakers = wakers.into_iter();
    drop(handles.next());
    wakers.next().unwrap().wake();
    wakers.next().unwrap().wake_by_ref();
    drop(wakers);
    drop(handles);
    assert_eq!(
        future_drops.load(Ordering::SeqCst),
        0,
        "a forgotten child's future is never dropped"
    );
}

/// The body of a scope dropped unfinished, whose destructor spawns a child
/// and defers a clean-up through the scope's handle.
async fn body_that_spawns_and_defers_when_dropped(
    s: taskscope::Scope<'_>,
    dropped: Arc<AtomicUsize>,
) {
    {
        let _on_drop = OnDrop(move || {
            let spawned = DropCounter(dropped.clone());
            let deferred = DropCounter(dropped.clone());
            drop(s.spawn(async move {
                let _spawned = &spawned;
                unreachable!("a child spawned while its scope is dropped is never polled");
            }));
            s.defer(async move {
                let _deferred = &deferred;
                unreachable!("a clean-up deferred while its scope is dropped never runs");
            });
        });
        std::future::pending::<()>().await;
    }
}

#[test]
fn a_body_dropped_with_its_scope_may_still_spawn_and_defer() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut fut = Box::pin(scope(|s| {
        body_that_spawns_and_defers_when_dropped(s, dropped.clone())
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    drop(fut);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        2,
        "the late child and the late clean-up were both dropped, unpolled"
    );
}

#[test]
fn a_scope_dropped_while_unwinding_takes_its_bodys_late_spawn_and_defer() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut fut = Box::pin(scope(|s| {
            body_that_spawns_and_defers_when_dropped(s, dropped.clone())
        }));
        assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
        panic!("the caller failed while the scope was pending");
    }));
    let payload = unwound.expect_err("the caller's panic goes on");
    assert_eq!(
        common::panic_message(&*payload),
        "the caller failed while the scope was pending",
        "no second panic (which would abort) from the body's destructor"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

#[test]
fn every_poll_of_a_handle_whose_scope_was_dropped_says_why() {
    let kept = Arc::new(Mutex::new(None));
    let mut fut = Box::pin(scope(|s| {
        *kept.lock().unwrap() = Some(s.spawn(std::future::pending::<u8>()));
        async { std::future::pending::<()>().await }
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    drop(fut);
    let mut handle = kept.lock().unwrap().take().expect("the body spawned");
    for poll in 0..2 {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            CountingWaker::new().poll(std::pin::Pin::new(&mut handle))
        }));
        let message = common::panic_message(&*caught.expect_err("no output to give"));
        assert!(
            message.contains("the scope was dropped before this child finished"),
            "poll {poll}: {message}"
        );
    }
}

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Panics when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("a child's destructor panicked");
    }
}

#[test]
fn two_child_destructors_panicking_as_the_scope_is_dropped_raise_one_panic() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let mut fut = Box::pin(scope(|s| {
        for _ in 0..2 {
            let counter = DropCounter(dropped.clone());
            s.spawn(async move {
                let _counter = counter;
                let _bomb = Bomb;
                std::future::pending::<()>().await;
            });
        }
        std::future::pending::<()>()
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    // Without each child's drop caught, the second panic unwinds through the
    // first's and aborts the whole test process.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    let message = common::panic_message(&*caught.expect_err("the first panic is raised"));
    assert!(message.contains("destructor panicked"), "{message}");
    assert_eq!(dropped.load(Ordering::SeqCst), 2, "both children dropped");
}

#[test]
fn a_child_destructor_panicking_as_the_scope_is_dropped_still_closes_it_and_drops_its_clean_up() {
    let deferred = Arc::new(AtomicUsize::new(0));
    let mut escaped = None;
    let flag = DropCounter(deferred.clone());
    let mut fut = Box::pin(scope(|s| {
        escaped = Some(s.clone());
        s.defer(async move {
            let _flag = flag;
        });
        s.spawn(async {
            let _bomb = Bomb;
            std::future::pending::<()>().await;
        });
        std::future::pending::<()>()
    }));
    assert!(CountingWaker::new().poll(fut.as_mut()).is_pending());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    assert!(caught.is_err(), "the destructor's panic is raised");
    assert_eq!(
        deferred.load(Ordering::SeqCst),
        1,
        "the clean-up was abandoned"
    );
    let escaped = escaped.expect("the body ran");
    let late = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| escaped.spawn(async {})));
    let message = common::panic_message(&*late.expect_err("the scope is closed"));
    assert!(
        message.contains("spawn on a scope that was dropped before it finished"),
        "{message}"
    );
}

/// An executor's waker that wakes nothing; only its count matters.
struct Inert;

impl std::task::Wake for Inert {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_childs_waker_kept_after_its_scope_does_not_keep_the_executors_waker() {
    let executor = Arc::new(Inert);
    let executor_waker = Waker::from(executor.clone());
    let kept: Mutex<Option<Waker>> = Mutex::new(None);
    let kept_ref = &kept;
    let mut scope = Box::pin(scope(|s| async move {
        let child = s.spawn(std::future::poll_fn(move |cx| {
            *kept_ref.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(())
        }));
        child.await;
    }));
    let mut cx = std::task::Context::from_waker(&executor_waker);
    assert!(scope.as_mut().poll(&mut cx).is_ready());
    drop(scope);
    assert!(
        kept.lock().unwrap().is_some(),
        "the child's waker outlives the scope"
    );
    assert_eq!(
        Arc::strong_count(&executor),
        2,
        "the finished scope still holds a clone of the executor's waker"
    );
}
