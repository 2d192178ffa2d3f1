//! The wrapper a scope stores for each clean-up: catches panics.

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::scope::task::{PanicBox, TaskExit};

pin_project! {
    /// A deferred future, or an adopted value's `prepare_drop` followed by
    /// its drop, in the scope's child type so the clean-up stack holds the
    /// same boxes as the slab (`Send` exactly when the scope's children are).
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct CleanupTask<F> {
        #[pin]
        future: Option<F>,
    }
}

impl<F: Future<Output = ()>> CleanupTask<F> {
    pub(crate) fn new(future: F) -> Self {
        CleanupTask {
            future: Some(future),
        }
    }
}

impl<F: Future<Output = ()>> Future for CleanupTask<F> {
    type Output = TaskExit;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TaskExit> {
        let mut this = self.project();
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(TaskExit::Completed);
        };
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(())) => None,
            Err(payload) => Some(payload),
        };
        // Dropped here, inside a catch, so that an adopted value's sync
        // `Drop` runs right after its `prepare_drop` even when it panicked,
        // and a panic in that `Drop` is caught like any other.
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| this.future.set(None))).err();
        match outcome.or(dropped) {
            None => Poll::Ready(TaskExit::Completed),
            Some(payload) => Poll::Ready(TaskExit::Panicked(PanicBox::new(payload))),
        }
    }
}

impl<F> fmt::Debug for CleanupTask<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CleanupTask")
            .field("finished", &self.future.is_none())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::CountingWaker;

    #[test]
    fn a_panic_is_caught_and_the_future_dropped_at_once() {
        struct Flag<'a>(&'a std::cell::Cell<bool>);
        impl Drop for Flag<'_> {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = std::cell::Cell::new(false);
        let flag = Flag(&dropped);
        let mut task = Box::pin(CleanupTask::new(async move {
            let _flag = flag;
            panic!("clean-up failed");
        }));
        let waker = CountingWaker::new();
        let exit = task.as_mut().poll(&mut waker.context());
        assert!(matches!(exit, Poll::Ready(TaskExit::Panicked(_))));
        assert!(
            dropped.get(),
            "the value's sync drop ran right after the panic"
        );
    }
}
