//! A waker's clone is executor code: it may use the very token it is
//! registered with, so the token clones it with no lock held (I6 of
//! src/cancel/token.rs).

mod common;

use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::ptr;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use common::returns;
use taskscope::{CancelReason, CancelToken};

std::thread_local! {
    /// The token a [`cancels_when_cloned`] waker cancels (per thread, so
    /// that the waker's data can be a null pointer).
    static CANCELLED_BY_CLONE: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

fn clone_and_cancel(_: *const ()) -> RawWaker {
    CANCELLED_BY_CLONE.with(|token| {
        if let Some(token) = token.borrow().as_ref() {
            token.cancel();
        }
    });
    RawWaker::new(ptr::null(), &CANCELS_WHEN_CLONED)
}

fn ignore(_: *const ()) {}

static CANCELS_WHEN_CLONED: RawWakerVTable =
    RawWakerVTable::new(clone_and_cancel, ignore, ignore, ignore);

/// A waker whose every clone cancels `token`.
fn cancels_when_cloned(token: &CancelToken) -> Waker {
    CANCELLED_BY_CLONE.with(|slot| *slot.borrow_mut() = Some(token.clone()));
    // SAFETY: the vtable's functions never read the data pointer (null), so
    // every contract of `RawWaker` holds for any copy of it on any thread.
    #[allow(unsafe_code)]
    unsafe {
        Waker::from_raw(RawWaker::new(ptr::null(), &CANCELS_WHEN_CLONED))
    }
}

#[test]
fn a_waker_whose_clone_cancels_the_token_it_waits_on_does_not_deadlock() {
    assert!(returns(|| {
        let token = CancelToken::new();
        let waker = cancels_when_cloned(&token);
        let mut cancelled = pin!(token.cancelled());
        let polled = cancelled.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(
            matches!(polled, Poll::Ready(ref c) if matches!(c.reason(), CancelReason::Requested)),
            "cancelled by the clone, seen at the registration: {polled:?}"
        );
    }));
}

#[test]
fn a_changed_waker_whose_clone_cancels_the_token_does_not_deadlock() {
    assert!(returns(|| {
        let token = CancelToken::new();
        let mut cancelled = pin!(token.cancelled());
        let first = cancelled
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(first.is_pending());
        let waker = cancels_when_cloned(&token);
        let polled = cancelled.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(polled.is_ready(), "cancelled by the clone: {polled:?}");
    }));
}
