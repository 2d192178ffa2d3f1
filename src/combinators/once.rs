//! [`Once`]: a future that says so when it is polled again after it
//! completed (or panicked), for futures built from `async` blocks, whose own
//! message ("`async fn` resumed after completion") names neither the
//! combinator nor the fix.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

pin_project! {
    /// `future`, named `name` in the panic of a poll after it completed or
    /// panicked. Exported for the macros; not part of the API.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Once<F> {
        #[pin]
        future: F,
        name: &'static str,
        done: bool,
    }
}

impl<F> Once<F> {
    /// Wraps `future`, the body of `name` (`"join!"`, `"Adopted::close"`).
    pub fn new(name: &'static str, future: F) -> Self {
        Once {
            future,
            name,
            done: false,
        }
    }
}

impl<F: Future> Future for Once<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        assert!(
            !*this.done,
            "taskscope: `{}` polled after it completed (or panicked); await it once",
            this.name
        );
        // Set first, so that a panic of `future` leaves it set too.
        *this.done = true;
        let output = this.future.poll(cx);
        *this.done = output.is_ready();
        output
    }
}

impl<F> fmt::Debug for Once<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.name)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
