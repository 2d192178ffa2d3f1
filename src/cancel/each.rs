//! Cancelling where an `on_cancel` callback's panic must not stop the rest.
//!
//! A token's `cancel` runs the callbacks registered on it and its subtree,
//! which are user code and may panic. `CancelToken::cancel` itself runs them
//! all and then resumes the first panic; a caller that cancels several
//! tokens (a stream's items in flight) or cancels from a destructor must do
//! the same one level up, or a panic of the first would leave the others
//! running, or abort the process when it is raised while unwinding.

use std::panic::{self, AssertUnwindSafe};

use crate::scope::task::drop_after_panic;

/// Runs `cancel` on every item, even if some panic, then resumes the first
/// panic; if this thread is already unwinding (`cancel` called from a
/// destructor during a panic), the panic is dropped instead, because a
/// second one would abort the process.
pub(crate) fn cancel_each<T>(items: impl IntoIterator<Item = T>, mut cancel: impl FnMut(T)) {
    let mut first = None;
    for item in items {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| cancel(item))) {
            if first.is_none() {
                first = Some(payload);
            } else {
                drop_after_panic(payload);
            }
        }
    }
    match first {
        Some(payload) if std::thread::panicking() => drop_after_panic(payload),
        Some(payload) => panic::resume_unwind(payload),
        None => {}
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};

    use super::cancel_each;

    #[test]
    fn every_item_is_cancelled_and_the_first_panic_goes_on() {
        let cancelled = Cell::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            cancel_each([1, 2, 3], |item| {
                cancelled.set(cancelled.get() + 1);
                if item != 3 {
                    panic!("callback {item}");
                }
            });
        }));
        assert_eq!(cancelled.get(), 3);
        let payload = caught.expect_err("the first panic is resumed");
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("callback 1")
        );
    }

    #[test]
    fn a_panic_while_unwinding_is_dropped_rather_than_aborting() {
        struct CancelsOnDrop<'a>(&'a Cell<u32>);
        impl Drop for CancelsOnDrop<'_> {
            fn drop(&mut self) {
                cancel_each([()], |()| {
                    self.0.set(self.0.get() + 1);
                    panic!("callback while unwinding");
                });
            }
        }
        let cancelled = Cell::new(0);
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            let _guard = CancelsOnDrop(&cancelled);
            panic!("the first panic");
        }));
        assert_eq!(cancelled.get(), 1);
        let payload = caught.expect_err("the body's panic goes on");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"the first panic"));
    }
}
