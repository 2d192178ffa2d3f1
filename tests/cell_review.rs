//! An adversarial review of the task cells (src/scope/cell.rs;
//! design/soundness.md, "Task cells", C1-C7), kept as regression tests.
//!
//! Each test drives a cell through an order of events that the invariants
//! must survive: the last count released by a waker on another thread, a
//! handle dropped or awaited on another thread while its child completes,
//! snapshots taken from another thread while cells are freed, panics in
//! destructors on the paths that release counts, and forgotten scopes whose
//! handles, wakers and snapshot handles go on living on other threads. They
//! run under Miri (`.ci/run`), which would report a use of freed memory, a
//! data race, a double drop or a leaked cell (the `forgotten` tests run with
//! leak checks off: forgetting leaks on purpose); `!Send` values check the
//! thread they are dropped on themselves, and drops are counted.

mod common;

use std::future::Future;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::{self, ThreadId};

use common::{CountingWaker, DropCounter, yield_once};
use futures::FutureExt;
use futures::executor::block_on;
use taskscope::{JoinHandle, local_scope, scope};

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `!Send` value that checks it is dropped on the thread that made it,
/// and counts its drops.
struct ThreadBound {
    made_on: ThreadId,
    drops: Arc<AtomicUsize>,
    _not_send: PhantomData<Rc<()>>,
}

impl ThreadBound {
    fn new(drops: Arc<AtomicUsize>) -> Self {
        ThreadBound {
            made_on: thread::current().id(),
            drops,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ThreadBound {
    fn drop(&mut self) {
        assert_eq!(
            thread::current().id(),
            self.made_on,
            "a !Send value was dropped on another thread"
        );
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// An output whose destructor panics.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic!("output dropped");
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// The waker of the task being polled.
fn current_waker() -> impl Future<Output = Waker> {
    std::future::poll_fn(|cx| Poll::Ready(cx.waker().clone()))
}

#[test]
#[allow(clippy::async_yields_async)] // a handle leaves the scope on purpose
fn non_send_futures_and_outputs_stay_on_their_thread_when_wakers_free_the_cells_elsewhere() {
    // C5/C7: a local scope's children and outputs are `!Send`, their wakers
    // are not. Every cell is freed by a waker dropped on another thread
    // (the last count: the scope retired its registry, the futures were
    // dropped, the handles are gone), which must drop nothing of the child
    // there: `ThreadBound` would fail the thread, Miri would see the race.
    let drops = Arc::new(AtomicUsize::new(0));
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let kept = {
        let data = vec![3_u8; 8];
        let data = &data;
        let (drops, wakers) = (drops.clone(), wakers.clone());
        block_on(local_scope(move |s| async move {
            let body_waker = current_waker().await;
            wakers.lock().unwrap().push(body_waker);
            let mut handles = Vec::new();
            for _ in 0..3 {
                let (drops, wakers) = (drops.clone(), wakers.clone());
                let state = ThreadBound::new(drops.clone());
                handles.push(s.spawn(async move {
                    let _state = state; // held across the awaits: in the cell
                    let waker = current_waker().await;
                    wakers.lock().unwrap().push(waker);
                    yield_once().await;
                    assert_eq!(data.len(), 8);
                    ThreadBound::new(drops)
                }));
            }
            let mut handles = handles.into_iter();
            // Dropped before its child finishes: the child's poll drops the
            // output (C4).
            drop(handles.next());
            // Awaited: the body drops the output.
            drop(handles.next().unwrap().await);
            // Kept past the scope: the handle drops it (below).
            handles.next().unwrap()
        }))
    };
    assert!(kept.is_finished());
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3 + 2,
        "futures' state, two outputs"
    );
    drop(kept);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        6,
        "and the kept handle's output"
    );
    let wakers = std::mem::take(&mut *wakers.lock().unwrap());
    assert_eq!(wakers.len(), 4, "the body's and each child's");
    thread::spawn(move || {
        for waker in wakers {
            waker.wake_by_ref(); // DEAD: schedules nothing
            let clone = waker.clone();
            drop(waker);
            clone.wake(); // the last count: frees the cell on this thread
        }
    })
    .join()
    .expect("no !Send value is touched on the waker's thread");
    assert_eq!(drops.load(Ordering::SeqCst), 6, "nothing more was dropped");
}

#[test]
fn a_handle_dropped_or_awaited_on_another_thread_while_its_child_completes_drops_the_output_once() {
    // C4 under a race: the child stores its output under the slot's lock
    // while another thread detaches the slot (drop) or registers its waker
    // and takes the output (await). Either way the output is dropped
    // exactly once, and the cells are freed by whichever side is last.
    for round in 0..3 {
        let drops = Arc::new(AtomicUsize::new(0));
        let from_thread = thread::scope(|threads| {
            let (dropper, awaiter) = block_on(scope(|s| {
                let drops = drops.clone();
                async move {
                    let early = drops.clone();
                    let dropped = s.spawn(async move {
                        for _ in 0..round {
                            yield_once().await;
                        }
                        Counted(early)
                    });
                    let late = drops.clone();
                    let awaited = s.spawn(async move {
                        for _ in 0..round + 1 {
                            yield_once().await;
                        }
                        Counted(late)
                    });
                    let dropper = threads.spawn(move || drop(dropped));
                    let awaiter = threads.spawn(move || block_on(awaited));
                    (dropper, awaiter)
                }
            }));
            dropper.join().unwrap();
            awaiter.join().unwrap()
        });
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "round {round}: the unwanted output"
        );
        drop(from_thread);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "round {round}: each output once"
        );
    }
}

#[test]
fn snapshots_from_another_thread_race_cells_being_freed_and_the_scope_retiring() {
    // The registry's counts (`ScopeShared::headers`) against the frees of
    // finished children's cells (a reused index drops the old header, the
    // scope's retirement drops the rest) and of the body's header.
    let drops = Arc::new(AtomicUsize::new(0));
    let seen = thread::scope(|threads| {
        let watcher = block_on(scope(|s| {
            let drops = drops.clone();
            async move {
                let snapshots = s.snapshot_handle();
                let (started, start) = std::sync::mpsc::channel();
                let watcher = threads.spawn(move || {
                    let mut seen = 0;
                    for round in 0..6 {
                        if round == 1 {
                            // The first snapshot saw the scope live.
                            started.send(()).unwrap();
                        }
                        seen += snapshots
                            .snapshot()
                            .scopes
                            .iter()
                            .map(|scope| scope.all_tasks().count())
                            .sum::<usize>();
                        thread::yield_now();
                    }
                    seen
                });
                // The children are spawned (and freed) only once the
                // watcher is taking snapshots.
                start.recv().unwrap();
                for _ in 0..3 {
                    let handles: Vec<_> = (0..2)
                        .map(|_| {
                            let drops = drops.clone();
                            s.spawn(async move {
                                yield_once().await;
                                Counted(drops)
                            })
                        })
                        .collect();
                    for handle in handles {
                        drop(handle.await);
                    }
                }
                watcher
            }
        }));
        watcher.join().unwrap()
    });
    assert_eq!(drops.load(Ordering::SeqCst), 6);
    // How much more the watcher saw depends on the interleaving; that it ran
    // beside the frees without a fault (Miri, TSan) is the point.
    assert!(seen >= 1, "the first snapshot saw at least the body");
}

#[test]
fn a_kept_handles_panicking_output_destructor_still_frees_the_cell() {
    // C4/C1: `JoinRef`'s destructor drops the output, which panics; the
    // count is released by the drop glue during the unwind all the same
    // (Miri's leak check would report the cell otherwise).
    #[allow(clippy::async_yields_async)] // the handle leaves the scope on purpose
    let handle = block_on(scope(
        |s| async move { s.spawn(async { PanicsWhenDropped }) },
    ));
    assert!(handle.is_finished());
    let payload = panic::catch_unwind(AssertUnwindSafe(|| drop(handle))).unwrap_err();
    assert_eq!(panic_message(&*payload), "output dropped");
}

#[test]
fn dropping_a_scope_whose_child_destructor_panics_releases_every_cell() {
    // C3: a child's destructor panics while the scope drops its children;
    // the other children are still dropped (once), every `OwnedTask`
    // releases its count during the unwind, and the handles and wakers that
    // outlive the scope report the abandonment and then free the cells.
    struct Explodes;
    impl Drop for Explodes {
        fn drop(&mut self) {
            panic!("child dropped");
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let handles: Arc<Mutex<Vec<JoinHandle<u8>>>> = Arc::default();
    let outer = CountingWaker::new();
    let mut fut = Box::pin(scope(|s| {
        for i in 0..3_u8 {
            let (drops, wakers) = (drops.clone(), wakers.clone());
            let handle = s.spawn(async move {
                let _counted = Counted(drops);
                let _bomb = if i == 1 { Some(Explodes) } else { None };
                let waker = current_waker().await;
                wakers.lock().unwrap().push(waker);
                std::future::pending::<()>().await;
                i
            });
            handles.lock().unwrap().push(handle);
        }
        async { std::future::pending::<()>().await }
    }));
    assert!(outer.poll(fut.as_mut()).is_pending());
    let payload = panic::catch_unwind(AssertUnwindSafe(|| drop(fut))).unwrap_err();
    assert_eq!(panic_message(&*payload), "child dropped");
    assert_eq!(drops.load(Ordering::SeqCst), 3, "every child dropped once");
    let handles = std::mem::take(&mut *handles.lock().unwrap());
    for handle in handles {
        assert!(handle.is_finished());
        let late = block_on(AssertUnwindSafe(handle).catch_unwind());
        assert!(panic_message(&*late.unwrap_err()).contains("dropped before this child finished"));
    }
    let wakers = std::mem::take(&mut *wakers.lock().unwrap());
    thread::spawn(move || drop(wakers)).join().unwrap();
}

#[test]
fn two_children_awaiting_each_others_handles_are_dropped_and_freed_with_the_scope() {
    // Each slot holds the other child's waker (a count on the other's cell)
    // while both wait: a cycle that the scope's drop breaks (`abandon` takes
    // each waker out and wakes it). Miri checks that no cell leaks. (A child
    // awaiting its own handle, the same cycle on one cell, now panics.)
    let drops = Arc::new(AtomicUsize::new(0));
    let outer = CountingWaker::new();
    let mut fut = Box::pin(scope(|s| {
        let (send_a, recv_a) = std::sync::mpsc::channel::<JoinHandle<()>>();
        let (send_b, recv_b) = std::sync::mpsc::channel::<JoinHandle<()>>();
        let (count_a, count_b) = (DropCounter(drops.clone()), DropCounter(drops.clone()));
        let a = s.spawn(async move {
            let _count = count_a;
            recv_b.recv().unwrap().await;
        });
        let b = s.spawn(async move {
            let _count = count_b;
            recv_a.recv().unwrap().await;
        });
        send_a.send(a).unwrap();
        send_b.send(b).unwrap();
        async { std::future::pending::<()>().await }
    }));
    assert!(outer.poll(fut.as_mut()).is_pending());
    assert_eq!(drops.load(Ordering::SeqCst), 0, "both wait for each other");
    drop(fut);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "both dropped with the scope"
    );
}

/// A child future that completes at once with an output whose destructor
/// panics, and whose own destructor (run by the scope right after
/// completion) panics too.
struct ReadyThenExplodes;

impl Future for ReadyThenExplodes {
    type Output = PanicsWhenDropped;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<PanicsWhenDropped> {
        Poll::Ready(PanicsWhenDropped)
    }
}

impl Drop for ReadyThenExplodes {
    fn drop(&mut self) {
        panic!("future dropped");
    }
}

#[test]
fn an_output_dropped_after_its_futures_destructor_panicked_is_dropped_inside_catch_unwind() {
    // `ChildFuture::poll_child`: the future returned its output, then its
    // destructor panicked (caught). The arm `(Ok(_), Err(payload))` leaves
    // the output in the scrutinee, dropped when `poll_child` returns,
    // outside any `catch_unwind`: its panic unwinds out of the scope's
    // poll, the siblings behind it in the batch are lost (their `queued`
    // flags stay set), and the scope never raises "future dropped".
    let finished = AtomicUsize::new(0);
    let finished_ref = &finished;
    let outcome = block_on(
        AssertUnwindSafe(scope(|s| async move {
            drop(s.spawn(ReadyThenExplodes));
            for _ in 0..3 {
                s.spawn(async move {
                    yield_once().await;
                    finished_ref.fetch_add(1, Ordering::SeqCst);
                });
            }
        }))
        .catch_unwind(),
    );
    let payload = outcome.expect_err("the scope raises the child's panic");
    assert_eq!(panic_message(&*payload), "future dropped");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        3,
        "the siblings polled after it were joined"
    );
}

#[test]
fn a_body_output_dropped_after_the_bodys_destructor_panicked_is_dropped_inside_catch_unwind() {
    // The body's twin of the test above: `poll_body` records the body's
    // destructor's panic, then drops the output outside any `catch_unwind`.
    let outcome = block_on(AssertUnwindSafe(scope(|_s| ReadyThenExplodes)).catch_unwind());
    let payload = match outcome {
        Ok(output) => {
            std::mem::forget(output); // its destructor panics
            panic!("the scope raised no panic");
        }
        Err(payload) => payload,
    };
    assert_eq!(panic_message(&*payload), "future dropped");
}

/// Owns a scope future: the last clone of its waker drops the scope.
struct OwnsScope {
    _scope: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
}

impl std::task::Wake for OwnsScope {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_handles_old_waker_dropped_by_a_poll_may_drop_the_scope_without_deadlocking() {
    // `JoinHandle::poll` replaces the waker stored in the slot with
    // `Waker::clone_from` while it holds the slot's lock, which drops the
    // old waker there: user code under our lock. If that waker was the last
    // owner of the scope future, the scope's drop drops the child, whose
    // `drop_future` calls `JoinSlot::abandon` on the same slot: it locks the
    // lock this thread already holds.
    let (done, finished) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let stash: Arc<Mutex<Option<JoinHandle<()>>>> = Arc::default();
        let stash_in = stash.clone();
        let mut fut: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(scope(move |s| {
            *stash_in.lock().unwrap() = Some(s.spawn(std::future::pending::<()>()));
            std::future::pending::<()>()
        }));
        let outer = CountingWaker::new();
        assert!(outer.poll(fut.as_mut()).is_pending());
        let owner = Waker::from(Arc::new(OwnsScope {
            _scope: Mutex::new(Some(fut)),
        }));
        let mut handle = stash.lock().unwrap().take().unwrap();
        // The slot keeps a clone of `owner`; then it is the last one.
        assert!(
            Pin::new(&mut handle)
                .poll(&mut Context::from_waker(&owner))
                .is_pending()
        );
        drop(owner);
        // Another waker: the slot's clone of `owner` is dropped, and with it
        // the scope (its child is abandoned: the handle then panics).
        let mut poll_panics = || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                Pin::new(&mut handle).poll(&mut Context::from_waker(Waker::noop()))
            }))
            .is_err()
        };
        // The old waker goes after the new one is stored, so this poll may
        // still return `Pending` (the abandonment then wakes the new one);
        // the next one panics at the latest.
        let abandoned = poll_panics() || poll_panics();
        done.send(abandoned).unwrap();
    });
    // A bound for a hang, not a timing.
    let outcome = finished.recv_timeout(std::time::Duration::from_secs(60));
    assert_eq!(
        outcome,
        Ok(true),
        "no deadlock on the handle's own slot, and the scope was dropped (its child abandoned)"
    );
}

// ---- Forgotten scopes: run with leak checks off (`-Zmiri-ignore-leaks`). ----

#[test]
fn a_forgotten_local_scopes_handles_wakers_and_snapshots_are_harmless_on_other_threads() {
    // C3/C5/C7 after `mem::forget`: the children's futures (`!Send`,
    // borrowing freed data) stay leaked in their cells; handles with `Send`
    // outputs, wakers and a snapshot handle are used and dropped on another
    // thread, and none of them is ever the last count.
    let drops = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let handles: Arc<Mutex<Vec<JoinHandle<usize>>>> = Arc::default();
    let snapshots = Arc::new(Mutex::new(None));
    let outer = CountingWaker::new();
    {
        let data = vec![1_u8; 16];
        let data_ref = &data;
        let (drops_in, polls_in, wakers_in, handles_in, snapshots_in) = (
            drops.clone(),
            polls.clone(),
            wakers.clone(),
            handles.clone(),
            snapshots.clone(),
        );
        let mut fut = Box::pin(local_scope(move |s| {
            *snapshots_in.lock().unwrap() = Some(s.snapshot_handle());
            for _ in 0..2 {
                let state = ThreadBound::new(drops_in.clone());
                let (polls, wakers) = (polls_in.clone(), wakers_in.clone());
                let handle = s.spawn(std::future::poll_fn(move |cx| {
                    let _state = &state;
                    polls.fetch_add(1, Ordering::SeqCst);
                    wakers.lock().unwrap().push(cx.waker().clone());
                    assert_eq!(data_ref.len(), 16);
                    Poll::<usize>::Pending
                }));
                handles_in.lock().unwrap().push(handle);
            }
            async { std::future::pending::<()>().await }
        }));
        assert!(outer.poll(fut.as_mut()).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        std::mem::forget(fut);
        drop(data);
    }
    let handles = std::mem::take(&mut *handles.lock().unwrap());
    let wakers = std::mem::take(&mut *wakers.lock().unwrap());
    let snapshots = snapshots.lock().unwrap().take().unwrap();
    thread::spawn(move || {
        let seen = snapshots.snapshot();
        assert_eq!(seen.scopes.len(), 1);
        assert_eq!(seen.scopes[0].tasks.len(), 2);
        let mut handles = handles.into_iter();
        let mut first = handles.next().unwrap();
        assert!(!first.is_finished());
        first.cancel();
        // Registers this thread's waker in the slot: still pending.
        let noop = Waker::noop();
        assert!(
            Pin::new(&mut first)
                .poll(&mut Context::from_waker(noop))
                .is_pending()
        );
        drop(first);
        for waker in wakers {
            waker.wake_by_ref();
            waker.wake();
        }
        drop(handles);
        drop(snapshots);
    })
    .join()
    .unwrap();
    assert_eq!(
        polls.load(Ordering::SeqCst),
        2,
        "no forgotten child was polled"
    );
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "no forgotten future was dropped"
    );
}

#[test]
fn forgotten_handles_and_wakers_leak_their_cells_but_never_free_them_early() {
    // C1: a forgotten `JoinHandle` keeps its count forever (the output it
    // was left stays in the slot, never dropped); forgotten waker clones
    // too. The scope completes normally and releases its own counts.
    let drops = Arc::new(AtomicUsize::new(0));
    let drops_in = drops.clone();
    block_on(scope(move |s| async move {
        let handle = s.spawn({
            let drops = drops_in.clone();
            async move {
                let waker = current_waker().await;
                std::mem::forget(waker.clone());
                std::mem::forget(waker);
                yield_once().await;
                Counted(drops)
            }
        });
        std::mem::forget(handle);
        let awaited = s.spawn(async move { Counted(drops_in) });
        drop(awaited.await);
    }));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the forgotten handle's output leaked"
    );
}
