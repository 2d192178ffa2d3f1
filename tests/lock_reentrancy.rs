//! User code (a waker's `clone`, a `fmt::Write` sink) must never run while
//! the crate holds one of its locks: it may re-enter the crate and deadlock.

mod common;

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::future::{Future, poll_fn};
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use common::returns;
use futures::StreamExt as _;
use futures::task::noop_waker_ref;
use taskscope::ScopedStreamExt as _;

/// An executor's waker whose `clone` runs a hook once armed (once).
///
/// The hook need not be `Send`: each test keeps the waker and every copy of
/// it on the one thread that `returns` runs it on.
struct Hooked {
    hook: Mutex<Option<Box<dyn FnOnce()>>>,
}

struct HookWaker {
    inner: Arc<Hooked>,
    waker: Waker,
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, drop_raw, noop_raw, drop_raw);

fn raw(inner: Arc<Hooked>) -> RawWaker {
    RawWaker::new(Arc::into_raw(inner).cast(), &VTABLE)
}

unsafe fn clone_raw(data: *const ()) -> RawWaker {
    // SAFETY: `data` came from `raw`, and the waker being cloned keeps its count.
    let inner = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<Hooked>()) });
    let hook = inner.hook.lock().unwrap().take();
    if let Some(hook) = hook {
        hook(); // the executor's code, run by `Waker::clone`
    }
    raw(Arc::clone(&inner))
}

/// Waking by reference does nothing (the tests count no wakes).
unsafe fn noop_raw(_: *const ()) {}

/// Dropping a waker, and waking it by value (which consumes it), give its
/// count back.
unsafe fn drop_raw(data: *const ()) {
    // SAFETY: `data` came from `raw`; the dropped waker gives its count back.
    drop(unsafe { Arc::from_raw(data.cast::<Hooked>()) });
}

impl HookWaker {
    #[allow(clippy::arc_with_non_send_sync)] // see `Hooked`
    fn new() -> Self {
        let inner = Arc::new(Hooked {
            hook: Mutex::new(None),
        });
        // SAFETY: the vtable's functions keep `raw`'s count exactly (clone
        // takes one, drop gives one back; wakes do nothing).
        let waker = unsafe { Waker::from_raw(raw(inner.clone())) };
        HookWaker { inner, waker }
    }

    /// The next clone of this waker (or of any copy of it) runs `hook`.
    fn arm(&self, hook: impl FnOnce() + 'static) {
        *self.inner.hook.lock().unwrap() = Some(Box::new(hook));
    }

    fn cx(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }
}

impl Drop for HookWaker {
    /// Disarms: a hook that never ran may hold wakers or futures that hold
    /// a copy of this waker, a cycle that would leak (Miri checks for leaks).
    fn drop(&mut self) {
        drop(self.inner.hook.lock().unwrap().take());
    }
}

type Saved = Arc<Mutex<Option<Waker>>>;

/// A pending future that saves its waker.
fn saving(saved: Saved) -> impl Future<Output = ()> + Send + 'static {
    poll_fn(move |cx| {
        *saved.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
}

fn saved(slot: &Saved) -> Waker {
    slot.lock().unwrap().clone().expect("polled once")
}

// shared.rs `Ready::push`: `self.waker.clone()` under the scope's `ready` lock.
#[test]
fn a_childs_wake_does_not_clone_the_scopes_waker_under_its_lock() {
    assert!(returns(|| {
        let (a, b) = (Saved::default(), Saved::default());
        let (a2, b2) = (a.clone(), b.clone());
        let mut scope = Box::pin(taskscope::scope(move |s| async move {
            s.spawn(saving(a2));
            s.spawn(saving(b2));
            std::future::pending::<()>().await
        }));
        let executor = HookWaker::new();
        assert!(scope.as_mut().poll(&mut executor.cx()).is_pending());
        let b = saved(&b);
        // The executor's clone wakes another child of the same scope.
        executor.arm(move || b.wake_by_ref());
        saved(&a).wake_by_ref();
    }));
}

// dynamic.rs `BranchWaker::wake_by_ref`: `self.shared.waker.lock().clone()`.
#[test]
fn a_branch_wake_of_join_all_does_not_clone_the_task_waker_under_its_lock() {
    assert!(returns(|| {
        let (a, b) = (Saved::default(), Saved::default());
        let mut join = Box::pin(taskscope::join_all([saving(a.clone()), saving(b.clone())]));
        let task = HookWaker::new();
        assert!(join.as_mut().poll(&mut task.cx()).is_pending());
        let b = saved(&b);
        task.arm(move || b.wake_by_ref());
        saved(&a).wake_by_ref();
    }));
}

// dynamic.rs `poll_dynamic`: `slot.replace(cx.waker().clone())` under the lock.
#[test]
fn join_all_does_not_clone_a_new_task_waker_under_its_lock() {
    assert!(returns(|| {
        let (a, b) = (Saved::default(), Saved::default());
        let mut join = Box::pin(taskscope::join_all([saving(a.clone()), saving(b.clone())]));
        let first = HookWaker::new();
        assert!(join.as_mut().poll(&mut first.cx()).is_pending());
        let second = HookWaker::new();
        let a = saved(&a);
        second.arm(move || a.wake_by_ref());
        assert!(join.as_mut().poll(&mut second.cx()).is_pending());
    }));
}

type Stream = Pin<Box<dyn futures::Stream<Item = ()>>>;
type ScopeFut = Pin<Box<dyn Future<Output = ()>>>;

/// A scope that never ends by itself, an unordered stream of two items
/// spawned into it and polled once by `consumer` (the items are spawned and
/// their handles registered, nothing has run yet).
fn scope_and_stream(consumer: &HookWaker) -> (Rc<RefCell<ScopeFut>>, Rc<RefCell<Stream>>) {
    let handle = Arc::new(Mutex::new(None));
    let out = handle.clone();
    let scope: ScopeFut = Box::pin(taskscope::scope(move |s: taskscope::Scope<'static>| {
        *out.lock().unwrap() = Some(s);
        std::future::pending::<()>()
    }));
    let s = handle.lock().unwrap().take().unwrap();
    let mut stream: Stream = Box::pin(
        futures::stream::iter([(), ()])
            .map(|()| async {})
            .buffer_unordered_in(2, &s),
    );
    assert!(stream.poll_next_unpin(&mut consumer.cx()).is_pending());
    (Rc::new(RefCell::new(scope)), Rc::new(RefCell::new(stream)))
}

// window.rs `ChildWaker::wake_by_ref`: `state.consumer.clone()` under the lock.
#[test]
fn a_finished_item_does_not_clone_the_consumers_waker_under_its_lock() {
    assert!(returns(|| {
        let consumer = HookWaker::new();
        let (scope, stream) = scope_and_stream(&consumer);
        // The consumer's executor polls the stream from its waker's clone.
        let again = stream.clone();
        consumer.arm(move || {
            let _ = again
                .borrow_mut()
                .poll_next_unpin(&mut Context::from_waker(noop_waker_ref()));
        });
        // The items run and finish: their handles' wakers wake the consumer.
        let _ = scope
            .borrow_mut()
            .as_mut()
            .poll(&mut Context::from_waker(noop_waker_ref()));
    }));
}

// window.rs `Unordered::register_consumer`: `slot.replace(cx.waker().clone())`.
#[test]
fn a_stream_does_not_clone_a_new_consumer_waker_under_its_lock() {
    assert!(returns(|| {
        let first = HookWaker::new();
        let (scope, stream) = scope_and_stream(&first);
        // The new consumer's executor drives the scope from its waker's
        // clone, where the items finish and wake the consumer.
        let second = HookWaker::new();
        let driven = scope.clone();
        second.arm(move || {
            let _ = driven
                .borrow_mut()
                .as_mut()
                .poll(&mut Context::from_waker(noop_waker_ref()));
        });
        let _ = stream.borrow_mut().poll_next_unpin(&mut second.cx());
    }));
}

/// Spawns into the scope when the field name `children` is written.
struct SpawningSink<'a> {
    scope: &'a taskscope::Scope<'static>,
}

impl fmt::Write for SpawningSink<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if text == "children" {
            self.scope.spawn(async {});
        }
        Ok(())
    }
}

// core.rs `Debug for Core`: writes into the caller's sink under the core lock.
#[test]
fn formatting_a_scope_writes_to_the_sink_outside_its_lock() {
    assert!(returns(|| {
        futures::executor::block_on(taskscope::scope(
            |s: taskscope::Scope<'static>| async move {
                let _ = write!(SpawningSink { scope: &s }, "{s:?}");
            },
        ));
    }));
}

// token.rs `register_waker`: a waiter's waker cloned under the token's lock.
#[test]
fn a_waker_whose_clone_cancels_the_token_it_waits_on_does_not_deadlock() {
    assert!(returns(|| {
        let token = taskscope::CancelToken::new();
        let waker = HookWaker::new();
        let cancel = token.clone();
        waker.arm(move || cancel.cancel());
        let mut cancelled = Box::pin(token.cancelled());
        let polled = cancelled.as_mut().poll(&mut waker.cx());
        assert!(
            matches!(&polled, Poll::Ready(c) if matches!(c.reason(), taskscope::CancelReason::Requested)),
            "cancelled by the clone, seen at the registration: {polled:?}"
        );
    }));
}

// token.rs `register_waker`, a changed waker: the same, on the second poll.
#[test]
fn a_changed_waker_whose_clone_cancels_the_token_does_not_deadlock() {
    assert!(returns(|| {
        let token = taskscope::CancelToken::new();
        let mut cancelled = Box::pin(token.cancelled());
        assert!(
            cancelled
                .as_mut()
                .poll(&mut Context::from_waker(noop_waker_ref()))
                .is_pending()
        );
        let waker = HookWaker::new();
        let cancel = token.clone();
        waker.arm(move || cancel.cancel());
        let polled = cancelled.as_mut().poll(&mut waker.cx());
        assert!(polled.is_ready(), "cancelled by the clone: {polled:?}");
    }));
}
