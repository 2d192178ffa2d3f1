//! [`LocalAsyncDrop`]: [`AsyncDrop`] for clean-up futures that are not `Send`.

use std::future::Future;

use super::async_drop::AsyncDrop;

/// Like [`AsyncDrop`], for values whose clean-up future is not `Send`
/// (it holds an `Rc`, a `RefCell` borrow, a `!Send` connection).
///
/// Only a [`local_scope`](crate::local_scope) adopts such values
/// ([`LocalScope::adopt`](crate::LocalScope::adopt)). Every [`AsyncDrop`] type
/// implements this trait too, so a local scope adopts both kinds.
///
/// ```
/// use std::{cell::RefCell, future::Future, rc::Rc};
/// use taskscope::LocalAsyncDrop;
///
/// struct Session { log: Rc<RefCell<Vec<&'static str>>> }
///
/// impl LocalAsyncDrop for Session {
///     fn prepare_drop(&mut self) -> impl Future<Output = ()> + '_ {
///         async move { self.log.borrow_mut().push("closed") }
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let log_ref = &log;
/// taskscope::local_scope(|s| async move {
///     let _session = s.adopt(Session { log: log_ref.clone() });
/// })
/// .await;
/// assert_eq!(*log.borrow(), ["closed"]);
/// # });
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `LocalAsyncDrop` clean-up for a local scope to run",
    note = "implement `taskscope::LocalAsyncDrop` for it (a type with an `AsyncDrop` clean-up \
            has one already)"
)]
pub trait LocalAsyncDrop {
    /// The asynchronous part of dropping `self`; see [`AsyncDrop::prepare_drop`].
    fn prepare_drop(&mut self) -> impl Future<Output = ()> + '_;
}

impl<V: AsyncDrop + ?Sized> LocalAsyncDrop for V {
    fn prepare_drop(&mut self) -> impl Future<Output = ()> + '_ {
        AsyncDrop::prepare_drop(self)
    }
}
