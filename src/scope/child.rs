//! The wrapper a scope stores for each child: catches panics, fills the slot.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::join_handle::JoinSlot;
use super::task::{PanicBox, TaskExit};
use crate::sync::Arc;

pin_project! {
    /// A child future plus the slot its output goes to.
    ///
    /// The user's future is dropped as soon as it completes (inside the same
    /// `catch_unwind`), so its destructor runs once, on the polling thread.
    pub(crate) struct ChildFuture<F: Future> {
        #[pin]
        future: Option<F>,
        slot: Arc<JoinSlot<F::Output>>,
    }

    impl<F: Future> PinnedDrop for ChildFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped unfinished (the scope was dropped): tell the handle.
            this.slot.abandon();
        }
    }
}

impl<F: Future> ChildFuture<F> {
    pub(crate) fn new(future: F, slot: Arc<JoinSlot<F::Output>>) -> Self {
        ChildFuture {
            future: Some(future),
            slot,
        }
    }
}

impl<F: Future> Future for ChildFuture<F> {
    type Output = TaskExit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskExit> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(TaskExit::Completed);
        };
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(payload) => Err(payload),
        };
        // Finished: drop the future now, once, where a panic in its
        // destructor is caught too.
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| this.future.set(None)));
        match (outcome, dropped) {
            (Ok(value), Ok(())) => match this.slot.complete(value) {
                Ok(()) => Poll::Ready(TaskExit::Completed),
                // The handle's waker panicked: the output is stored, and the
                // scope raises that panic once every child has finished.
                Err(payload) => Poll::Ready(TaskExit::Panicked(PanicBox::new(payload))),
            },
            (Err(payload), _) | (Ok(_), Err(payload)) => {
                let panic = PanicBox::new(payload);
                // A panicking waker of the handle is dropped here: the
                // child's own panic is the one to raise.
                let _ = this.slot.panicked(panic.clone());
                Poll::Ready(TaskExit::Panicked(panic))
            }
        }
    }
}
