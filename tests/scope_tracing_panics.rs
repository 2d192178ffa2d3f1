//! A `tracing` subscriber is user code: when it panics inside a scope's
//! poll loop or its clean-up runner, no child and no clean-up may be lost.
//! The panic is raised by the scope once every child and clean-up finished,
//! as a child's panic is.
#![cfg(feature = "tracing")]

use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::task::noop_waker;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Panics once, when armed, on entering a child's span.
#[derive(Default)]
struct PanicsOnEnteringATask {
    next_id: AtomicU64,
    tasks: Mutex<HashSet<u64>>,
    armed: Arc<AtomicBool>,
}

impl Subscriber for PanicsOnEnteringATask {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next_id.fetch_add(1, SeqCst) + 1;
        if span.metadata().name() == "taskscope.task" {
            self.tasks.lock().unwrap().insert(id);
        }
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, span: &Id) {
        if self.tasks.lock().unwrap().contains(&span.into_u64()) && self.armed.swap(false, SeqCst) {
            panic!("the subscriber panicked entering a task's span");
        }
    }

    fn exit(&self, _: &Id) {}
}

#[test]
fn a_subscriber_panic_entering_a_childs_span_loses_no_child_and_is_raised_by_the_scope() {
    let subscriber = PanicsOnEnteringATask::default();
    let armed = subscriber.armed.clone();
    let _default = tracing::subscriber::set_default(subscriber);
    let open = AtomicBool::new(false);
    let child_waker: Mutex<Option<Waker>> = Mutex::new(None);
    let joined = AtomicBool::new(false);
    let (open, child_waker, joined) = (&open, &child_waker, &joined);
    let mut scope = pin!(taskscope::scope(|s| async move {
        let child = s.spawn(poll_fn(move |cx| {
            if open.load(SeqCst) {
                Poll::Ready(7)
            } else {
                *child_waker.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }
        }));
        assert_eq!(child.await, 7);
        joined.store(true, SeqCst);
    }));
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(scope.as_mut().poll(&mut cx).is_pending(), "the child waits");
    armed.store(true, SeqCst);
    open.store(true, SeqCst);
    child_waker
        .lock()
        .unwrap()
        .take()
        .expect("polled once")
        .wake();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        (0..100).find_map(|_| match scope.as_mut().poll(&mut cx) {
            Poll::Ready(()) => Some(()),
            Poll::Pending => None,
        })
    }));
    assert!(!armed.load(SeqCst), "the subscriber did panic");
    let payload = outcome.expect_err("the scope raises the subscriber's panic at its end");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the subscriber panicked entering a task's span")
    );
    assert!(
        joined.load(SeqCst),
        "the child was polled and joined all the same"
    );
}

/// Panics once on the clean-up runner's event.
struct PanicsOnTheCleanUpEvent;

impl Subscriber for PanicsOnTheCleanUpEvent {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(
            &mut |field: &tracing::field::Field, value: &dyn std::fmt::Debug| {
                if field.name() == "message" {
                    message = format!("{value:?}");
                }
            },
        );
        if message.contains("running a clean-up") {
            panic!("the subscriber panicked on a clean-up event");
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[test]
fn a_subscriber_panic_on_the_clean_up_event_loses_no_clean_up_and_is_raised_by_the_scope() {
    let _default = tracing::subscriber::set_default(PanicsOnTheCleanUpEvent);
    let ran = AtomicU64::new(0);
    let ran = &ran;
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(taskscope::scope(|s| async move {
            for _ in 0..2 {
                s.defer(async move {
                    ran.fetch_add(1, SeqCst);
                });
            }
        }))
    }));
    assert_eq!(ran.load(SeqCst), 2, "both clean-ups ran");
    let payload = outcome.expect_err("the scope raises the subscriber's panic at its end");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the subscriber panicked on a clean-up event")
    );
}
