//! A task waker is executor code: its `clone` or `wake` may panic. When one
//! unwinds out of a combinator's poll, the next poll must still reach every
//! branch that is owed one, or the combinator waits forever.

use std::future::{Future, poll_fn, ready};
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// An executor's waker that counts its wakes and, once armed, panics in its
/// next `clone` or its next wake.
#[derive(Default)]
struct Faulty {
    wakes: AtomicUsize,
    panic_on_clone: AtomicBool,
    panic_on_wake: AtomicBool,
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_by_ref_raw, drop_raw);

fn raw(faulty: Arc<Faulty>) -> RawWaker {
    RawWaker::new(Arc::into_raw(faulty).cast(), &VTABLE)
}

/// The `Faulty` behind `data`, without touching its count.
///
/// # Safety
///
/// `data` came from `raw`, and the waker it belongs to is alive.
unsafe fn faulty(data: *const ()) -> ManuallyDrop<Arc<Faulty>> {
    // SAFETY: the caller's promise; `ManuallyDrop` leaves the count as is.
    ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<Faulty>()) })
}

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: the waker being cloned is alive.
    let faulty = unsafe { faulty(data) };
    if faulty.panic_on_clone.swap(false, SeqCst) {
        panic!("the task waker's clone panicked");
    }
    raw(Arc::clone(&faulty))
}

unsafe fn wake_by_ref_raw(data: *const ()) {
    // SAFETY: the waker being woken is alive.
    let faulty = unsafe { faulty(data) };
    faulty.wakes.fetch_add(1, SeqCst);
    if faulty.panic_on_wake.swap(false, SeqCst) {
        panic!("the task waker's wake panicked");
    }
}

unsafe fn wake_raw(data: *const ()) {
    // SAFETY: a wake by value consumes the waker: its count goes back
    // whether or not the wake panics.
    let _count = unsafe { Arc::from_raw(data.cast::<Faulty>()) };
    // SAFETY: `_count` keeps the `Faulty` alive for the wake.
    unsafe { wake_by_ref_raw(data) };
}

unsafe fn drop_raw(data: *const ()) {
    // SAFETY: the dropped waker gives its count back.
    drop(unsafe { Arc::from_raw(data.cast::<Faulty>()) });
}

struct FaultyWaker {
    faulty: Arc<Faulty>,
    waker: Waker,
}

impl FaultyWaker {
    fn new() -> Self {
        let faulty = Arc::new(Faulty::default());
        // SAFETY: the vtable keeps `raw`'s count exact: a clone takes one,
        // a drop or a wake by value gives one back.
        let waker = unsafe { Waker::from_raw(raw(faulty.clone())) };
        FaultyWaker { faulty, waker }
    }

    fn wakes(&self) -> usize {
        self.faulty.wakes.load(SeqCst)
    }

    /// One poll whose panic is caught; true if it panicked.
    fn poll_panics<F: Future + ?Sized>(&self, future: Pin<&mut F>) -> bool {
        let mut cx = Context::from_waker(&self.waker);
        panic::catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))).is_err()
    }

    /// Polls as an executor does: once now, then again only after a wake.
    /// `None` when the future is pending with no wake to come.
    fn run<F: Future + ?Sized>(&self, mut future: Pin<&mut F>) -> Option<F::Output> {
        for _ in 0..10 {
            let before = self.wakes();
            let mut cx = Context::from_waker(&self.waker);
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Some(output);
            }
            if self.wakes() == before {
                return None;
            }
        }
        panic!("still pending after ten woken polls");
    }
}

#[test]
fn join_polls_every_branch_after_a_first_poll_whose_waker_clone_panicked() {
    let task = FaultyWaker::new();
    let mut join = pin!(taskscope::join(ready(1), ready(2)));
    task.faulty.panic_on_clone.store(true, SeqCst);
    assert!(task.poll_panics(join.as_mut()), "the clone's panic unwinds");
    assert_eq!(task.run(join.as_mut()), Some((1, 2)));
}

#[test]
fn race_array_polls_every_branch_after_a_first_poll_whose_waker_clone_panicked() {
    let task = FaultyWaker::new();
    let mut race = pin!(taskscope::race_array([ready(1), ready(2)]));
    task.faulty.panic_on_clone.store(true, SeqCst);
    assert!(task.poll_panics(race.as_mut()), "the clone's panic unwinds");
    assert!(task.run(race.as_mut()).is_some(), "the race ends");
}

/// Pending until its branch is cancelled, then `Ok(0)`.
fn until_cancelled() -> impl Future<Output = Result<u8, &'static str>> {
    poll_fn(|_| {
        if taskscope::is_cancelled() {
            Poll::Ready(Ok(0))
        } else {
            Poll::Pending
        }
    })
}

#[test]
fn try_join_all_polls_every_cancelled_sibling_though_the_task_wakers_wake_panics() {
    type Branch = Pin<Box<dyn Future<Output = Result<u8, &'static str>>>>;
    let branches: Vec<Branch> = vec![
        Box::pin(until_cancelled()),
        Box::pin(until_cancelled()),
        Box::pin(ready(Err("failed"))),
    ];
    let task = FaultyWaker::new();
    let mut try_join = pin!(taskscope::try_join_all(branches));
    task.faulty.panic_on_wake.store(true, SeqCst);
    let mut cx = Context::from_waker(&task.waker);
    let first = panic::catch_unwind(AssertUnwindSafe(|| try_join.as_mut().poll(&mut cx)));
    let outcome = match first {
        Ok(Poll::Ready(output)) => Some(output),
        Ok(Poll::Pending) | Err(_) => task.run(try_join.as_mut()),
    };
    assert_eq!(outcome, Some(Err("failed")), "both siblings saw the cancel");
}
